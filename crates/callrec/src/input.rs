//! Audio files as call legs for `callrec mix`: WAV at any rate, channel
//! count and sample format, and headerless G.711 (`.ulaw`, `.alaw`).
//!
//! Every input is read in chunks and turned into 8 kHz mono on the fly, so
//! memory does not grow with the file's length.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use callrec_media::codec::g711;
use callrec_media::codec::resample::Resampler;

/// How many input frames are read per chunk.
const CHUNK_FRAMES: usize = 8_000;

/// A call leg read from a file, delivered as 8 kHz mono.
pub struct AudioInput {
    path: PathBuf,
    kind: Kind,
    resampler: Resampler,
    /// Input frames in the whole file (for the progress bar and the length).
    pub input_frames: u64,
    done: bool,
}

enum Kind {
    Wav {
        reader: hound::WavReader<BufReader<File>>,
        format: hound::SampleFormat,
        bits: u16,
        channels: u16,
    },
    G711 {
        reader: BufReader<File>,
        decode: fn(u8) -> i16,
    },
}

impl AudioInput {
    /// Opens `path` by its content (a RIFF/WAVE header) or, for headerless
    /// G.711, by its extension.
    pub fn open(path: &Path) -> Result<AudioInput> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        let g711: Option<fn(u8) -> i16> = match ext.as_str() {
            "ulaw" | "mulaw" | "ul" | "pcmu" | "u8" => Some(g711::ulaw_to_linear),
            "alaw" | "al" | "pcma" => Some(g711::alaw_to_linear),
            _ => None,
        };
        let (kind, input_frames, input_rate, channels) = if let Some(decode) = g711 {
            let reader = BufReader::new(file);
            (Kind::G711 { reader, decode }, len, 8_000, 1)
        } else {
            let reader = hound::WavReader::new(BufReader::new(file)).map_err(|e| {
                anyhow::anyhow!(
                    "{} is not audio callrec can read ({e}): give a WAV file, or headerless G.711 named .ulaw or .alaw",
                    path.display()
                )
            })?;
            let spec = reader.spec();
            if spec.channels == 0 || spec.sample_rate == 0 {
                bail!(
                    "{} has a broken WAV header (0 channels or 0 Hz)",
                    path.display()
                );
            }
            let frames = u64::from(reader.duration());
            let kind = Kind::Wav {
                format: spec.sample_format,
                bits: spec.bits_per_sample,
                channels: spec.channels,
                reader,
            };
            (kind, frames, spec.sample_rate, spec.channels)
        };
        let resampler = Resampler::new(input_rate, channels)
            .with_context(|| format!("cannot resample {}", path.display()))?;
        Ok(AudioInput {
            path: path.to_owned(),
            kind,
            resampler,
            input_frames,
            done: false,
        })
    }

    /// Reads the next chunk, appending 8 kHz mono samples to `out`. Returns
    /// the number of input frames consumed (0 once the file is done; the
    /// resampler's tail has then been flushed to `out`).
    pub fn read_chunk(&mut self, out: &mut Vec<i16>) -> Result<u64> {
        if self.done {
            return Ok(0);
        }
        let mut raw: Vec<i16> = Vec::with_capacity(CHUNK_FRAMES * 2);
        let frames = match &mut self.kind {
            Kind::G711 { reader, decode } => {
                let mut buf = vec![0u8; CHUNK_FRAMES];
                let n = read_full(reader, &mut buf)
                    .with_context(|| format!("cannot read {}", self.path.display()))?;
                raw.extend(buf[..n].iter().map(|&b| decode(b)));
                n as u64
            }
            Kind::Wav {
                reader,
                format,
                bits,
                channels,
            } => {
                let want = CHUNK_FRAMES * usize::from(*channels);
                match (*format, *bits) {
                    (hound::SampleFormat::Float, _) => {
                        for s in reader.samples::<f32>().take(want) {
                            let s =
                                s.with_context(|| format!("cannot read {}", self.path.display()))?;
                            raw.push((s.clamp(-1.0, 1.0) * 32767.0).round() as i16);
                        }
                    }
                    (hound::SampleFormat::Int, b) if b <= 16 => {
                        let shift = 16 - u32::from(b);
                        for s in reader.samples::<i16>().take(want) {
                            let s =
                                s.with_context(|| format!("cannot read {}", self.path.display()))?;
                            raw.push(s << shift);
                        }
                    }
                    (hound::SampleFormat::Int, b) => {
                        let shift = u32::from(b) - 16;
                        for s in reader.samples::<i32>().take(want) {
                            let s =
                                s.with_context(|| format!("cannot read {}", self.path.display()))?;
                            raw.push((s >> shift) as i16);
                        }
                    }
                }
                (raw.len() / usize::from(*channels)) as u64
            }
        };
        if frames == 0 {
            self.resampler.finish(out);
            self.done = true;
            return Ok(0);
        }
        self.resampler.push(&raw, out);
        Ok(frames)
    }
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}
