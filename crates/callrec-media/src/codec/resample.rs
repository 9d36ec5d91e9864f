//! A streaming resampler from any rate and channel count to 8 kHz mono,
//! with a proper anti-aliasing low-pass (rubato's FFT resampler): flat
//! through the telephone band (to 3.6 kHz), below -80 dB from 4.2 kHz.
//!
//! It works in bounded memory on inputs of any length (one FFT chunk of
//! state), and it keeps exact length: after [`Resampler::finish`] the total
//! output is `round(input_frames * 8000 / input_rate)` samples, with the
//! resampler's own delay removed, so that sample n of the output is at the
//! time of input time n / 8000 s. It must never drop or repeat audio to
//! reach that length other than at the very end (the tail is padded or cut
//! by at most a fraction of one sample period's rounding).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _, WindowFunction};

use super::{CodecError, OUTPUT_RATE};

/// Resamples interleaved 16-bit audio to 8 kHz mono (channels are averaged).
pub struct Resampler {
    input_rate: u32,
    channels: usize,
    /// `None` when the input is already 8 kHz: only the downmix is done.
    fft: Option<FftState>,
    input_frames: u64,
    output_frames: u64,
}

struct FftState {
    fft: Fft<f32>,
    /// Mono input waiting for a full chunk.
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    /// Output frames still to drop at the start (the resampler's delay).
    delay_left: usize,
}

impl Resampler {
    /// A resampler from `input_rate` Hz with `input_channels` interleaved channels.
    pub fn new(input_rate: u32, input_channels: u16) -> Result<Self, CodecError> {
        // 40 ms blocks: flat to 3.6 kHz, -2 dB at 3.8 kHz, below -80 dB from 4.2 kHz
        Self::with_chunk_frames(
            input_rate,
            input_channels,
            (input_rate / 25).max(1) as usize,
        )
    }

    /// As [`Resampler::new`], processing `chunk_frames` input frames at a time
    /// in one FFT block: output comes out at most one chunk after its input.
    /// Smaller chunks lower the latency and the filter's steepness: 20 ms of
    /// input is flat to 3.4 kHz (the telephone band), 10 ms is not.
    pub fn with_chunk_frames(
        input_rate: u32,
        input_channels: u16,
        chunk_frames: usize,
    ) -> Result<Self, CodecError> {
        if input_rate == 0 || input_channels == 0 {
            return Err(CodecError::BadFormat {
                rate: input_rate,
                channels: input_channels,
            });
        }
        let fft = if input_rate == OUTPUT_RATE {
            None
        } else {
            // One FFT block per chunk: the longer the block, the steeper the
            // low-pass (flat to 3.4 kHz, the telephone band, with 1024 frames).
            let fft = Fft::<f32>::new_custom(
                input_rate as usize,
                OUTPUT_RATE as usize,
                chunk_frames.max(1),
                1,
                1,
                WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(|e| CodecError::Resample {
                rate: input_rate,
                reason: e.to_string(),
            })?;
            let delay_left = fft.output_delay();
            let out_buf = vec![0.0; fft.output_frames_max()];
            Some(FftState {
                fft,
                pending: Vec::with_capacity(2 * chunk_frames.max(1)),
                out_buf,
                delay_left,
            })
        };
        Ok(Resampler {
            input_rate,
            channels: usize::from(input_channels),
            fft,
            input_frames: 0,
            output_frames: 0,
        })
    }

    /// The input rate, in Hz.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// Pushes interleaved samples (a whole number of frames; a trailing partial
    /// frame is ignored) and appends whatever 8 kHz output is ready to `out`.
    pub fn push(&mut self, interleaved: &[i16], out: &mut Vec<i16>) {
        let channels = self.channels;
        let frames = interleaved.len() / channels;
        self.input_frames += frames as u64;
        let frames_iter = interleaved.chunks_exact(channels);
        match &mut self.fft {
            None => {
                let before = out.len();
                if channels == 1 {
                    out.extend_from_slice(interleaved);
                } else {
                    out.extend(frames_iter.map(|f| {
                        let sum: i32 = f.iter().map(|&s| i32::from(s)).sum();
                        (sum / channels as i32) as i16
                    }));
                }
                self.output_frames += (out.len() - before) as u64;
            }
            Some(state) => {
                let scale = 1.0 / (32768.0 * channels as f32);
                state.pending.extend(frames_iter.map(|f| {
                    let sum: i32 = f.iter().map(|&s| i32::from(s)).sum();
                    sum as f32 * scale
                }));
                self.output_frames += state.run(false, out);
            }
        }
    }

    /// Flushes the resampler: appends the rest of the output so that the total
    /// is `round(input_frames * 8000 / input_rate)`. Pushing after finishing
    /// starts a new stream of the same format.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        let expected = (self.input_frames * u64::from(OUTPUT_RATE) * 2
            + u64::from(self.input_rate))
            / (2 * u64::from(self.input_rate));
        if let Some(state) = &mut self.fft {
            let mut produced = self.output_frames;
            // Pump zeros until the delayed tail is out.
            while produced < expected {
                let want = state.fft.input_frames_next();
                if state.pending.len() < want {
                    state.pending.resize(want, 0.0);
                }
                let start = out.len();
                produced += state.run(true, out);
                if produced > expected {
                    out.truncate(start + (out.len() - start) - (produced - expected) as usize);
                    produced = expected;
                }
            }
            state.fft.reset();
            state.pending.clear();
            state.delay_left = state.fft.output_delay();
        }
        self.input_frames = 0;
        self.output_frames = 0;
    }
}

impl FftState {
    /// Processes every full chunk in `pending`; returns the output frames appended.
    fn run(&mut self, _flushing: bool, out: &mut Vec<i16>) -> u64 {
        let mut appended = 0u64;
        let mut consumed = 0;
        loop {
            let need = self.fft.input_frames_next();
            if self.pending.len() - consumed < need {
                break;
            }
            let input = InterleavedSlice::new(&self.pending[consumed..consumed + need], 1, need)
                .expect("input slice holds exactly one chunk");
            let out_len = self.out_buf.len();
            let mut output = InterleavedSlice::new_mut(&mut self.out_buf, 1, out_len)
                .expect("output buffer holds output_frames_max");
            let (used, written) = self
                .fft
                .process_into_buffer(&input, &mut output, None)
                .expect("buffers are sized from the resampler's own figures");
            consumed += used;
            let skip = self.delay_left.min(written);
            self.delay_left -= skip;
            out.extend(
                self.out_buf[skip..written]
                    .iter()
                    .map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16),
            );
            appended += (written - skip) as u64;
        }
        self.pending.drain(..consumed);
        appended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_khz_mono_passes_through_unchanged() {
        let mut r = Resampler::new(8_000, 1).unwrap();
        let input: Vec<i16> = (0..1000).map(|i| (i * 7 % 2000 - 1000) as i16).collect();
        let mut out = Vec::new();
        r.push(&input, &mut out);
        r.finish(&mut out);
        assert_eq!(out, input);
    }

    #[test]
    fn eight_khz_stereo_is_averaged_to_mono() {
        let mut r = Resampler::new(8_000, 2).unwrap();
        let mut out = Vec::new();
        r.push(&[100, 300, -200, -400], &mut out);
        assert_eq!(out, vec![200, -300]);
    }

    #[test]
    fn zero_rate_is_refused() {
        assert!(Resampler::new(0, 1).is_err());
        assert!(Resampler::new(8_000, 0).is_err());
    }
}
