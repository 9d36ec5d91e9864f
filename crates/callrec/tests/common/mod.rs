//! Helpers for the command-line tests: make real audio with real tools
//! (sox, espeak-ng), run the real `callrec` binary, and measure what it wrote
//! with decoders that are not ours (ffmpeg, ffprobe, symphonia).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs a tool that the test needs, failing the test with a clear message if it is missing.
pub fn tool(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program} ({e}): run scripts/install-test-deps.sh to install the test tools")
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `callrec` with `args`.
pub fn callrec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callrec"))
        .args(args)
        .output()
        .expect("run callrec")
}

pub fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// A sine tone made by sox: `seconds` long at `rate` Hz with `channels` channels.
pub fn sox_tone(
    dir: &Path,
    name: &str,
    freq: u32,
    seconds: f64,
    rate: u32,
    channels: u32,
) -> PathBuf {
    let path = dir.join(name);
    tool(
        "sox",
        &[
            "-n",
            "-r",
            &rate.to_string(),
            "-c",
            &channels.to_string(),
            "-b",
            "16",
            p(&path),
            "synth",
            &seconds.to_string(),
            "sine",
            &freq.to_string(),
            "vol",
            "0.5",
        ],
    );
    path
}

/// Silence made by sox.
pub fn sox_silence(dir: &Path, name: &str, seconds: f64, rate: u32) -> PathBuf {
    let path = dir.join(name);
    tool(
        "sox",
        &[
            "-n",
            "-r",
            &rate.to_string(),
            "-c",
            "1",
            "-b",
            "16",
            p(&path),
            "trim",
            "0",
            &seconds.to_string(),
        ],
    );
    path
}

/// Real speech by espeak-ng (22,050 Hz mono WAV).
pub fn speech(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    tool("espeak-ng", &["-w", p(&path), text]);
    path
}

/// The number of sample frames of a WAV file, as sox counts them.
pub fn sox_frames(path: &Path) -> u64 {
    let out = tool("soxi", &["-s", p(path)]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("soxi -s prints a number")
}

/// The sample rate of an audio file, as sox reads it.
pub fn sox_rate(path: &Path) -> u32 {
    let out = tool("soxi", &["-r", p(path)]);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("soxi -r prints a number")
}

/// ffprobe's view of the first audio stream: key=value pairs.
pub fn ffprobe(path: &Path) -> std::collections::BTreeMap<String, String> {
    let out = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "stream=codec_name,codec_long_name,sample_rate,channels,channel_layout,bits_per_sample,sample_fmt,bit_rate",
            "-of",
            "default=noprint_wrappers=1",
            p(path),
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Decodes with ffmpeg to interleaved stereo s16 at 8 kHz (no resampling
/// happens for our files: they are 8 kHz stereo already).
pub fn ffmpeg_decode(path: &Path) -> Vec<i16> {
    let out = tool(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-i",
            p(path),
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "-ac",
            "2",
            "-ar",
            "8000",
            "-",
        ],
    );
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// Decodes with symphonia (a second decoder that is not ours): interleaved stereo.
pub fn symphonia_decode(path: &Path) -> Vec<i16> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let file = std::fs::File::open(path).unwrap();
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .expect("symphonia probes the file");
    let track = format
        .default_track(TrackType::Audio)
        .expect("an audio track")
        .clone();
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .expect("audio params")
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .expect("a decoder");
    let mut samples = Vec::new();
    while let Ok(Some(packet)) = format.next_packet() {
        if packet.track_id != track.id {
            continue;
        }
        let decoded = decoder.decode(&packet).expect("decode");
        let mut buf: Vec<i16> = vec![0; decoded.samples_interleaved()];
        decoded.copy_to_slice_interleaved(&mut buf);
        samples.extend_from_slice(&buf);
    }
    samples
}

/// One channel (0 = left) of interleaved stereo, as f64.
pub fn channel(interleaved: &[i16], ch: usize) -> Vec<f64> {
    interleaved
        .iter()
        .skip(ch)
        .step_by(2)
        .map(|&s| f64::from(s))
        .collect()
}

/// RMS level in dBFS (-inf for digital silence is floored at -200).
pub fn rms_dbfs(x: &[f64]) -> f64 {
    if x.is_empty() {
        return -200.0;
    }
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    if ms == 0.0 {
        -200.0
    } else {
        10.0 * (ms.sqrt() / 32768.0).powi(2).log10()
    }
}

/// The level of one frequency in `x` (Goertzel), in dB relative to full scale.
pub fn tone_dbfs(x: &[f64], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s0 = v + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let amplitude = 2.0 * power.sqrt() / x.len() as f64;
    20.0 * (amplitude.max(1e-9) / 32768.0).log10()
}
