//! G.722 and Opus decoders measured on audio encoded by the reference
//! encoders (libg722's port, libopus): length, level and frequency at 8 kHz.
//! L16 through the resampler, and Opus placed on the timeline by its 48 kHz clock.

use std::f64::consts::PI;

use callrec_media::Role;
use callrec_media::codec::{Codec, decoder_for};
use callrec_media::rtp::RtpPacket;
use callrec_media::timeline::{MediaTime, Timeline, TimelineConfig};
use ezk_g722::libg722::{Bitrate, encoder::Encoder as G722Encoder};

fn tone(rate: u32, freq: f64, amplitude: f64, n: usize, phase0: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            (amplitude * (2.0 * PI * freq * (i + phase0) as f64 / f64::from(rate)).sin()) as i16
        })
        .collect()
}

fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Frequency from positive-going zero crossings, at 8 kHz.
fn frequency(x: &[i16]) -> f64 {
    let crossings = x.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    crossings as f64 * 8000.0 / x.len() as f64
}

#[test]
fn g722_decodes_to_8_khz_with_the_level_and_pitch_of_the_input() {
    let mut encoder = G722Encoder::new(Bitrate::Mode1_64000, false, false);
    let mut decoder = decoder_for(Codec::G722).unwrap();
    let mut out = Vec::new();
    for frame in 0..100 {
        // 20 ms at 16 kHz = 320 samples -> 160 bytes -> 160 samples at 8 kHz
        let pcm = tone(16_000, 1000.0, 10_000.0, 320, frame * 320);
        let payload = encoder.encode(&pcm);
        assert_eq!(payload.len(), 160);
        let before = out.len();
        decoder.decode(&payload, &mut out).unwrap();
        assert_eq!(
            out.len() - before,
            160,
            "one 8 kHz sample per byte, per RTP tick"
        );
    }
    let steady = &out[1600..];
    let level = rms(steady);
    let expected = 10_000.0 / 2f64.sqrt();
    assert!(
        (level / expected - 1.0).abs() < 0.15,
        "rms {level:.0}, expected {expected:.0}"
    );
    assert!(
        (frequency(steady) - 1000.0).abs() < 10.0,
        "{} hz",
        frequency(steady)
    );
}

#[test]
fn g722_drops_the_upper_band_instead_of_aliasing_it() {
    let mut encoder = G722Encoder::new(Bitrate::Mode1_64000, false, false);
    let mut decoder = decoder_for(Codec::G722).unwrap();
    let mut out = Vec::new();
    for frame in 0..100 {
        let pcm = tone(16_000, 6000.0, 10_000.0, 320, frame * 320);
        decoder.decode(&encoder.encode(&pcm), &mut out).unwrap();
    }
    let level_db = 20.0 * (rms(&out[1600..]) / (10_000.0 / 2f64.sqrt())).log10();
    assert!(
        level_db < -30.0,
        "a 6 khz tone comes out at {level_db:.1} dB"
    );
}

#[test]
fn opus_decodes_straight_to_8_khz() {
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    encoder.set_bitrate(opus::Bitrate::Bits(32_000)).unwrap();
    let mut decoder = decoder_for(Codec::Opus).unwrap();
    let mut out = Vec::new();
    let mut packet = vec![0u8; 1500];
    for frame in 0..100 {
        let pcm = tone(48_000, 440.0, 10_000.0, 960, frame * 960);
        let len = encoder.encode(&pcm, &mut packet).unwrap();
        let before = out.len();
        decoder.decode(&packet[..len], &mut out).unwrap();
        assert_eq!(out.len() - before, 160, "20 ms at 8 kHz");
    }
    let steady = &out[4000..];
    let level = rms(steady);
    let expected = 10_000.0 / 2f64.sqrt();
    assert!(
        (level / expected - 1.0).abs() < 0.25,
        "rms {level:.0}, expected {expected:.0}"
    );
    assert!(
        (frequency(steady) - 440.0).abs() < 10.0,
        "{} hz",
        frequency(steady)
    );
    // garbage is an error, not a panic, and appends nothing
    let before = out.len();
    assert!(decoder.decode(&[0xff; 3], &mut out).is_err() || out.len() - before <= 960);
}

#[test]
fn l16_at_16_khz_stereo_is_resampled_to_8_khz_mono() {
    let mut decoder = decoder_for(Codec::L16 {
        rate: 16_000,
        channels: 2,
    })
    .unwrap();
    let mut out = Vec::new();
    for frame in 0..50 {
        let mono = tone(16_000, 500.0, 8000.0, 320, frame * 320);
        let payload: Vec<u8> = mono
            .iter()
            .flat_map(|s| [s.to_be_bytes(), s.to_be_bytes()])
            .flatten()
            .collect();
        let before = out.len();
        decoder.decode(&payload, &mut out).unwrap();
        assert_eq!(
            out.len() - before,
            160,
            "each 20 ms packet is 20 ms at 8 kHz"
        );
    }
    // the audio lags by half an FFT block (10 ms) at most: find the first loud sample
    let onset = out.iter().position(|s| s.unsigned_abs() > 1000).unwrap();
    assert!(
        onset <= 90,
        "audio starts at sample {onset}: more than 10 ms late"
    );
    assert!((rms(&out[2000..7000]) / (8000.0 / 2f64.sqrt()) - 1.0).abs() < 0.02);
    assert!(
        decoder.decode(&[1, 2, 3], &mut out).is_err(),
        "half a frame"
    );
}

#[test]
fn opus_is_placed_by_its_48_khz_clock() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::Agent, &[(111, Codec::Opus)]);
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut out = Vec::new();
    // 60 ms packets (2880 ticks), 5 s, with packet 40 lost
    for i in 0..84u32 {
        let pcm = tone(48_000, 440.0, 10_000.0, 2880, i as usize * 2880);
        let len = encoder.encode(&pcm, &mut buf).unwrap();
        if i == 40 {
            continue;
        }
        let mut d = Vec::new();
        RtpPacket {
            marker: false,
            payload_type: 111,
            sequence: 7 + i as u16,
            timestamp: 1_000_000 + 2880 * i,
            ssrc: 3,
            csrcs: vec![],
            extension: None,
            payload: &buf[..len],
        }
        .write(&mut d);
        let at = MediaTime::from_millis(60 * (u64::from(i) + 1));
        tl.push_rtp(src, at, &d).unwrap();
        tl.poll(at, &mut out);
    }
    tl.finish(&mut out);
    // each 60 ms packet ends 20 ms after its arrival: packet i covers 60 i + 20 ms on
    let lead = 160;
    assert_eq!(
        out.len() / 2,
        lead + 84 * 480,
        "5.04 s at 8 kHz after 20 ms"
    );
    let right: Vec<i16> = out.chunks_exact(2).map(|f| f[1]).collect();
    let packet = |i: usize| &right[lead + i * 480..lead + (i + 1) * 480];
    assert!(right[..lead].iter().all(|&s| s == 0));
    assert!(
        packet(40).iter().all(|&s| s == 0),
        "the lost packet is a gap"
    );
    assert!(rms(packet(39)) > 5000.0);
    assert!(rms(&packet(41)[200..]) > 3000.0);
    assert!(rms(&right[2000..lead + 40 * 480]) > 5000.0);
}

#[test]
fn a_mid_call_codec_change_from_g722_to_opus_reanchors_and_stays_in_time() {
    let mut tl = Timeline::new(TimelineConfig::default(), MediaTime::ZERO);
    let src = tl.add_rtp_source(Role::EndUser, &[(111, Codec::Opus)]);
    let mut g722 = G722Encoder::new(Bitrate::Mode1_64000, false, false);
    let mut opus_enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    let mut buf = vec![0u8; 1500];
    let mut out = Vec::new();
    // 3 s of G.722 (static type 9, RTP clock 8000), then 3 s of Opus after a re-INVITE:
    // same SSRC and sequence, new timestamp base and clock
    for i in 0..300u32 {
        let (pt, ts, payload): (u8, u32, Vec<u8>) = if i < 150 {
            let pcm = tone(16_000, 500.0, 8000.0, 320, i as usize * 320);
            (9, 777 + 160 * i, g722.encode(&pcm))
        } else {
            let pcm = tone(48_000, 500.0, 8000.0, 960, i as usize * 960);
            let len = opus_enc.encode(&pcm, &mut buf).unwrap();
            (111, 5_000_000 + 960 * (i - 150), buf[..len].to_vec())
        };
        let mut d = Vec::new();
        RtpPacket {
            marker: i == 150,
            payload_type: pt,
            sequence: 100 + i as u16,
            timestamp: ts,
            ssrc: 42,
            csrcs: vec![],
            extension: None,
            payload: &payload,
        }
        .write(&mut d);
        let at = MediaTime::from_millis(20 * u64::from(i));
        tl.push_rtp(src, at, &d).unwrap();
        tl.poll(at, &mut out);
    }
    tl.finish(&mut out);
    assert_eq!(
        out.len() / 2,
        300 * 160,
        "6 s, placed on arrival across the change"
    );
    let left: Vec<i16> = out.chunks_exact(2).map(|f| f[0]).collect();
    let g722_part = &left[800..150 * 160];
    let opus_part = &left[150 * 160 + 800..];
    for (name, part) in [("g.722", g722_part), ("opus", opus_part)] {
        assert!(rms(part) > 3000.0, "{name}: rms {}", rms(part));
        assert!(
            (frequency(part) - 500.0).abs() < 10.0,
            "{name}: {} hz",
            frequency(part)
        );
    }
    assert_eq!(tl.stats(src).reanchors, 1);
}
