//! The resampler measured: exact output length, preserved level, removed
//! delay (a click stays at its instant), and the anti-aliasing low-pass.

use callrec_media::codec::resample::Resampler;
use std::f64::consts::PI;

fn tone(rate: u32, channels: u16, freq: f64, amplitude: f64, frames: usize) -> Vec<i16> {
    let mut v = Vec::with_capacity(frames * usize::from(channels));
    for n in 0..frames {
        let s = (amplitude * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin()).round() as i16;
        for _ in 0..channels {
            v.push(s);
        }
    }
    v
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Resamples `input` pushed in chunks of `chunk` frames.
fn resample(rate: u32, channels: u16, input: &[i16], chunk: usize) -> Vec<i16> {
    let mut r = Resampler::new(rate, channels).unwrap();
    let mut out = Vec::new();
    for c in input.chunks(chunk * usize::from(channels)) {
        r.push(c, &mut out);
    }
    r.finish(&mut out);
    out
}

#[test]
fn output_length_is_the_input_duration_at_8_khz() {
    for (rate, channels, frames) in [
        (16_000, 1, 16_000),
        (44_100, 2, 44_100 * 3 + 17),
        (48_000, 1, 480),
        (22_050, 1, 5),
        (11_025, 2, 110_250),
        (32_000, 1, 0),
        (8_000, 2, 1234),
        (12_345, 1, 54_321),
    ] {
        let input = tone(rate, channels, 440.0, 8000.0, frames);
        for chunk in [160, 1000, 4096] {
            let out = resample(rate, channels, &input, chunk);
            let expected = (frames as f64 * 8000.0 / f64::from(rate)).round() as usize;
            assert_eq!(
                out.len(),
                expected,
                "{rate} hz x{channels}, {frames} frames, chunk {chunk}"
            );
        }
    }
}

#[test]
fn a_tone_in_the_passband_keeps_its_level() {
    // the telephone band, 300 to 3400 hz, comes through flat
    for (rate, channels, freq) in [
        (44_100, 2, 1000.0),
        (48_000, 1, 3400.0),
        (16_000, 1, 300.0),
        (22_050, 1, 3400.0),
        (11_025, 2, 3400.0),
    ] {
        let input = tone(rate, channels, freq, 10_000.0, rate as usize * 2);
        let out = resample(rate, channels, &input, 1024);
        let middle = &out[2000..14_000];
        let expected = 10_000.0 / 2f64.sqrt();
        let got = rms(middle);
        assert!(
            (got / expected - 1.0).abs() < 0.01,
            "{rate} hz, {freq} hz tone: rms {got:.1}, expected {expected:.1}"
        );
    }
}

#[test]
fn tones_just_above_4_khz_are_filtered_out() {
    for rate in [16_000, 22_050, 44_100, 48_000] {
        let input = tone(rate, 1, 4300.0, 16_000.0, rate as usize);
        let out = resample(rate, 1, &input, 1000);
        let level_db = 20.0 * (rms(&out[1000..7000]) / (16_000.0 / 2f64.sqrt())).log10();
        assert!(
            level_db < -60.0,
            "4.3 khz from {rate} hz aliases at {level_db:.1} dB"
        );
    }
}

#[test]
fn a_tone_above_4_khz_is_filtered_out() {
    // 6 kHz would alias to 2 kHz without a low-pass.
    let input = tone(48_000, 1, 6000.0, 16_000.0, 48_000);
    let out = resample(48_000, 1, &input, 960);
    let level_db = 20.0 * (rms(&out[1000..7000]) / (16_000.0 / 2f64.sqrt())).log10();
    println!("6 khz tone after 48k -> 8k: {level_db:.1} dB");
    assert!(level_db < -60.0, "aliasing at {level_db:.1} dB");
}

#[test]
fn the_resampler_delay_is_removed_so_a_click_stays_in_place() {
    let rate = 16_000;
    let mut input = vec![0i16; rate as usize];
    let click_at = 8_000; // 0.5 s
    for s in &mut input[click_at..click_at + 4] {
        *s = 20_000;
    }
    let out = resample(rate, 1, &input, 320);
    let peak = out
        .iter()
        .enumerate()
        .max_by_key(|(_, s)| s.unsigned_abs())
        .map(|(i, _)| i)
        .unwrap();
    // 0.5 s at 8 kHz is sample 4000; the 4-sample click's centre is at 4000.75
    assert!(
        (peak as i64 - 4001).abs() <= 1,
        "click at output sample {peak}"
    );
}
