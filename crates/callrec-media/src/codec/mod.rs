//! Decoders from RTP payloads (and raw audio) to 8 kHz mono 16-bit PCM, the
//! only sample format the timeline knows.
//!
//! Every decoder here is sans-IO and stateful per source: one RTP payload in,
//! its samples at 8 kHz appended to a caller's buffer out. A decoder must
//! never guess timing (the timeline places samples by RTP timestamp), never
//! read a clock, and never produce any rate other than 8 kHz: codecs with
//! other rates are decoded straight to 8 kHz (Opus, G.722's low band) or go
//! through [`resample::Resampler`].

pub mod g711;
pub mod g722;
pub mod l16;
pub mod opus;
pub mod resample;

use thiserror::Error;

/// The output rate of every decoder, in Hz.
pub const OUTPUT_RATE: u32 = 8_000;

/// Why audio could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// A sample rate of zero, or channels of zero.
    #[error(
        "invalid audio format: {rate} hz with {channels} channels; the rate and channel count must be above zero"
    )]
    BadFormat {
        /// The sample rate given.
        rate: u32,
        /// The channel count given.
        channels: u16,
    },
    /// The resampler refused the rate.
    #[error("cannot resample from {rate} hz: {reason}; convert the audio to 8000 hz first")]
    Resample {
        /// The input rate.
        rate: u32,
        /// What rubato said.
        reason: String,
    },
    /// The payload cannot be decoded by this codec.
    #[error("corrupt {codec} payload of {len} bytes: {reason}; the packet is skipped as silence")]
    Corrupt {
        /// The codec's name.
        codec: &'static str,
        /// The payload's length.
        len: usize,
        /// What the decoder said.
        reason: String,
    },
    /// The decoder library could not be set up.
    #[error("cannot create the {codec} decoder: {reason}; this is a bug or a broken build")]
    Init {
        /// The codec's name.
        codec: &'static str,
        /// What the library said.
        reason: String,
    },
}

/// An audio codec that callrec decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 mu-law (static payload type 0).
    Pcmu,
    /// G.711 A-law (static payload type 8).
    Pcma,
    /// G.722 (static payload type 9): 16 kHz audio, but an RTP clock of 8000 (RFC 3551).
    G722,
    /// Opus (dynamic payload type): RTP clock 48000, always "opus/48000/2" in SDP.
    Opus,
    /// Linear 16-bit big-endian PCM (static 10 and 11 at 44.1 kHz, or dynamic).
    L16 {
        /// Samples per second (also the RTP clock).
        rate: u32,
        /// Interleaved channels.
        channels: u8,
    },
}

impl Codec {
    /// The RTP timestamp clock rate, in Hz.
    pub fn clock_rate(&self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8_000,
            Codec::Opus => 48_000,
            Codec::L16 { rate, .. } => *rate,
        }
    }

    /// The codec of a static payload type (RFC 3551), if callrec decodes it.
    pub fn from_static_payload_type(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            10 => Some(Codec::L16 {
                rate: 44_100,
                channels: 2,
            }),
            11 => Some(Codec::L16 {
                rate: 44_100,
                channels: 1,
            }),
            _ => None,
        }
    }

    /// The codec of an SDP `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`, if callrec decodes it.
    ///
    /// The encoding name is matched case-insensitively. The clock rate must be
    /// the one the RTP profile prescribes (8000 for G.711 and G.722, 48000 for Opus).
    pub fn from_rtpmap(
        encoding_name: &str,
        clock_rate: u32,
        channels: Option<u8>,
    ) -> Option<Codec> {
        let name = encoding_name.to_ascii_lowercase();
        match (name.as_str(), clock_rate) {
            ("pcmu", 8_000) => Some(Codec::Pcmu),
            ("pcma", 8_000) => Some(Codec::Pcma),
            ("g722", 8_000) => Some(Codec::G722),
            ("opus", 48_000) => Some(Codec::Opus),
            ("l16", rate) if rate > 0 => Some(Codec::L16 {
                rate,
                channels: channels.unwrap_or(1).max(1),
            }),
            _ => None,
        }
    }

    /// The codec's name as SDP spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
            Codec::L16 { .. } => "L16",
        }
    }

    /// Converts a span of RTP timestamp units to 8 kHz output samples
    /// (rounded to the nearest sample).
    pub fn ticks_to_samples(&self, ticks: i64) -> i64 {
        let rate = i64::from(self.clock_rate());
        if rate == i64::from(OUTPUT_RATE) {
            ticks
        } else {
            let num = ticks * i64::from(OUTPUT_RATE);
            // round half away from zero
            if num >= 0 {
                (num + rate / 2) / rate
            } else {
                (num - rate / 2) / rate
            }
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::L16 { rate, channels } => write!(f, "L16/{rate}/{channels}"),
            other => write!(f, "{}/{}", other.name(), other.clock_rate()),
        }
    }
}

/// A stateful decoder for one source: RTP payloads in, 8 kHz mono samples out.
pub trait Decoder: Send {
    /// Decodes one RTP payload to 8 kHz mono, appending to `out`.
    ///
    /// On error nothing is appended; the caller treats the packet as lost.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;

    /// The codec this decoder decodes.
    fn codec(&self) -> Codec;
}

/// Makes a decoder for one source.
pub fn decoder_for(codec: Codec) -> Result<Box<dyn Decoder>, CodecError> {
    Ok(match codec {
        Codec::Pcmu => Box::new(g711::G711Decoder::ulaw()),
        Codec::Pcma => Box::new(g711::G711Decoder::alaw()),
        Codec::G722 => Box::new(g722::G722Decoder::new()),
        Codec::Opus => Box::new(opus::OpusDecoder::new()?),
        Codec::L16 { rate, channels } => Box::new(l16::L16Decoder::new(rate, channels)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_payload_types_and_rtpmaps_name_the_codecs() {
        assert_eq!(Codec::from_static_payload_type(0), Some(Codec::Pcmu));
        assert_eq!(Codec::from_static_payload_type(8), Some(Codec::Pcma));
        assert_eq!(Codec::from_static_payload_type(9), Some(Codec::G722));
        assert_eq!(Codec::from_static_payload_type(18), None);
        assert_eq!(
            Codec::from_rtpmap("OPUS", 48_000, Some(2)),
            Some(Codec::Opus)
        );
        assert_eq!(Codec::from_rtpmap("pcmu", 8_000, None), Some(Codec::Pcmu));
        assert_eq!(Codec::from_rtpmap("G722", 8_000, None), Some(Codec::G722));
        assert_eq!(Codec::from_rtpmap("telephone-event", 8_000, None), None);
        assert_eq!(Codec::G722.clock_rate(), 8_000);
        assert_eq!(Codec::Opus.clock_rate(), 48_000);
        assert_eq!(Codec::Opus.ticks_to_samples(960), 160);
        assert_eq!(Codec::Pcmu.ticks_to_samples(-160), -160);
    }
}
