//! Opus (RFC 6716, RTP payload RFC 7587) through libopus, decoded straight
//! to 8 kHz mono: libopus band-limits and resamples internally.
//!
//! The RTP clock of Opus is always 48000, whatever the audio bandwidth; one
//! 8 kHz output sample is six timestamp units. Loss is left to the timeline
//! (a gap is silence, as the spec wants). This module must never decode at
//! another rate than 8 kHz.

use super::{Codec, CodecError, Decoder};

/// The longest Opus packet: 120 ms, at 8 kHz.
const MAX_FRAME_SAMPLES: usize = 960;

/// Decodes Opus payloads to 8 kHz mono.
pub struct OpusDecoder {
    inner: opus::Decoder,
    buf: Vec<i16>,
}

impl OpusDecoder {
    /// A mono 8 kHz libopus decoder (stereo streams are downmixed by libopus).
    pub fn new() -> Result<Self, CodecError> {
        let inner =
            opus::Decoder::new(8_000, opus::Channels::Mono).map_err(|e| CodecError::Init {
                codec: "opus",
                reason: e.to_string(),
            })?;
        Ok(OpusDecoder {
            inner,
            buf: vec![0; MAX_FRAME_SAMPLES],
        })
    }
}

impl Decoder for OpusDecoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        if payload.is_empty() {
            // An empty payload would ask libopus for concealment; treat it as nothing.
            return Ok(());
        }
        let n = self
            .inner
            .decode(payload, &mut self.buf, false)
            .map_err(|e| CodecError::Corrupt {
                codec: "opus",
                len: payload.len(),
                reason: e.to_string(),
            })?;
        out.extend_from_slice(&self.buf[..n]);
        Ok(())
    }

    fn codec(&self) -> Codec {
        Codec::Opus
    }
}
