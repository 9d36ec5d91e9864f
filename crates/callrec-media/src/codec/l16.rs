//! L16: linear 16-bit big-endian PCM in RTP (RFC 3551), at any rate and
//! channel count, resampled to 8 kHz mono.
//!
//! Every packet decodes to exactly its duration at 8 kHz (the timeline
//! places samples by count), so the resampler's output goes through a small
//! FIFO: at rates other than 8 kHz the audio lags by half the resampler's
//! FFT block (10 ms). It must never assume the rate is 8 kHz; it
//! keeps the resampler's state across packets so that packet boundaries
//! leave no clicks.

use std::collections::VecDeque;

use super::resample::Resampler;
use super::{Codec, CodecError, Decoder};

/// Decodes L16 payloads to 8 kHz mono.
pub struct L16Decoder {
    rate: u32,
    channels: u8,
    resampler: Resampler,
    scratch: Vec<i16>,
    resampled: Vec<i16>,
    fifo: VecDeque<i16>,
    /// Input frames decoded so far, modulo the rate (for exact output counts).
    frames_mod: u64,
}

impl L16Decoder {
    /// A decoder for L16 at `rate` Hz with `channels` interleaved channels.
    pub fn new(rate: u32, channels: u8) -> Result<Self, CodecError> {
        Ok(L16Decoder {
            rate,
            channels,
            resampler: Resampler::with_chunk_frames(
                rate,
                u16::from(channels),
                (rate / 50).max(1) as usize,
            )?,
            scratch: Vec::new(),
            resampled: Vec::new(),
            fifo: VecDeque::new(),
            frames_mod: 0,
        })
    }
}

impl Decoder for L16Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let frame = 2 * usize::from(self.channels);
        if !payload.len().is_multiple_of(frame) {
            return Err(CodecError::Corrupt {
                codec: "L16",
                len: payload.len(),
                reason: format!("not a whole number of {frame}-byte frames"),
            });
        }
        self.scratch.clear();
        self.scratch.extend(
            payload
                .chunks_exact(2)
                .map(|b| i16::from_be_bytes([b[0], b[1]])),
        );
        self.resampled.clear();
        self.resampler.push(&self.scratch, &mut self.resampled);
        self.fifo.extend(&self.resampled);
        // output frames this packet is worth: floor(total * 8000 / rate) increments
        let frames = (payload.len() / frame) as u64;
        let rate = u64::from(self.rate);
        let before = self.frames_mod * 8000 / rate;
        self.frames_mod += frames;
        let wanted = (self.frames_mod * 8000 / rate - before) as usize;
        self.frames_mod %= rate;
        let short = wanted.saturating_sub(self.fifo.len());
        out.extend(std::iter::repeat_n(0, short));
        out.extend(self.fifo.drain(..wanted - short));
        Ok(())
    }

    fn codec(&self) -> Codec {
        Codec::L16 {
            rate: self.rate,
            channels: self.channels,
        }
    }
}
