//! G.722 (ITU-T G.722 at 64 kbit/s), decoded straight to 8 kHz: the decoder
//! keeps the lower sub-band of its QMF split, which is the 0..4 kHz band
//! already low-passed by the codec's own filter bank.
//!
//! Remember that G.722's RTP clock is 8000 although it carries 16 kHz audio
//! (RFC 3551): one payload byte is two 16 kHz samples, one 8 kHz sample, one
//! RTP timestamp unit. This module must never report 16000 as the clock.

use ezk_g722::libg722::{Bitrate, decoder::Decoder as LibDecoder};

use super::{Codec, CodecError, Decoder};

/// Decodes G.722 payloads to 8 kHz mono.
pub struct G722Decoder {
    inner: LibDecoder,
}

impl G722Decoder {
    /// A decoder for 64 kbit/s G.722 (the only mode used in RTP).
    pub fn new() -> Self {
        G722Decoder {
            inner: LibDecoder::new(Bitrate::Mode1_64000, false, true),
        }
    }
}

impl Default for G722Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder for G722Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        out.extend(self.inner.decode(payload));
        Ok(())
    }

    fn codec(&self) -> Codec {
        Codec::G722
    }
}
