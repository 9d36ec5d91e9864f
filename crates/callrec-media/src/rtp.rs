//! RTP packets (RFC 3550): parse a datagram into a borrowed view, and write
//! one back (for tests and simulators).
//!
//! Parsing checks the fixed header, the CSRC list, the header extension and
//! the padding against the datagram's length, and refuses RTCP that arrived
//! on the RTP port. It must never allocate for the payload, never panic on any
//! input, and never interpret the payload (that is the codecs' job).

use thiserror::Error;

/// The length of the fixed RTP header, in bytes.
pub const FIXED_HEADER_LEN: usize = 12;

/// Why a datagram is not a usable RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtpError {
    /// Fewer bytes than the 12-byte fixed header.
    #[error(
        "rtp datagram is {len} bytes, shorter than the 12-byte fixed header; drop it and check what sends to this port"
    )]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The version bits are not 2.
    #[error("rtp version is {version}, expected 2; this is not an rtp packet, drop it")]
    BadVersion {
        /// The version found.
        version: u8,
    },
    /// The packet type byte says RTCP (200..=204): RTCP was sent to the RTP port (or rtcp-mux).
    #[error(
        "this is rtcp (packet type {packet_type}), not rtp; route it to the rtcp handler instead"
    )]
    Rtcp {
        /// The RTCP packet type.
        packet_type: u8,
    },
    /// The CSRC list runs past the end of the datagram.
    #[error(
        "rtp header announces {count} csrcs but the datagram ends first ({len} bytes); the packet is truncated, drop it"
    )]
    CsrcOverrun {
        /// The CSRC count.
        count: u8,
        /// The datagram's length.
        len: usize,
    },
    /// The header extension runs past the end of the datagram.
    #[error(
        "rtp header extension runs past the end of the datagram ({len} bytes); the packet is truncated, drop it"
    )]
    ExtensionOverrun {
        /// The datagram's length.
        len: usize,
    },
    /// The padding count is zero or larger than the payload.
    #[error(
        "rtp padding length {padding} is invalid for a {available}-byte payload; the packet is corrupt, drop it"
    )]
    BadPadding {
        /// The padding count from the last byte.
        padding: u8,
        /// Bytes available after the header.
        available: usize,
    },
}

/// An RTP header extension (RFC 3550 section 5.3.1): a profile-defined
/// 16-bit value and data whose length is a multiple of four bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpExtension<'a> {
    /// The "defined by profile" field (0xBEDE for RFC 8285 one-byte headers).
    pub profile: u16,
    /// The extension data, without the 4-byte extension header.
    pub data: &'a [u8],
}

/// One RTP packet, borrowing its extension and payload from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit (start of a talk spurt for audio).
    pub marker: bool,
    /// The payload type, 0..=127.
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The RTP timestamp, in the codec's clock rate.
    pub timestamp: u32,
    /// The synchronisation source.
    pub ssrc: u32,
    /// Contributing sources (at most 15).
    pub csrcs: Vec<u32>,
    /// The header extension, if the X bit was set.
    pub extension: Option<RtpExtension<'a>>,
    /// The payload, with any padding removed.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        let len = datagram.len();
        if len < FIXED_HEADER_LEN {
            // A short RTCP packet is still RTCP: say so if the bytes allow it.
            if len >= 2 && datagram[0] >> 6 == 2 && (200..=204).contains(&datagram[1]) {
                return Err(RtpError::Rtcp {
                    packet_type: datagram[1],
                });
            }
            return Err(RtpError::TooShort { len });
        }
        let version = datagram[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion { version });
        }
        if (200..=204).contains(&datagram[1]) {
            return Err(RtpError::Rtcp {
                packet_type: datagram[1],
            });
        }
        let has_padding = datagram[0] & 0x20 != 0;
        let has_extension = datagram[0] & 0x10 != 0;
        let csrc_count = datagram[0] & 0x0f;
        let marker = datagram[1] & 0x80 != 0;
        let payload_type = datagram[1] & 0x7f;
        let sequence = u16::from_be_bytes([datagram[2], datagram[3]]);
        let timestamp = u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);

        let mut pos = FIXED_HEADER_LEN;
        let csrc_end = pos + 4 * usize::from(csrc_count);
        if csrc_end > len {
            return Err(RtpError::CsrcOverrun {
                count: csrc_count,
                len,
            });
        }
        let csrcs = datagram[pos..csrc_end]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        pos = csrc_end;

        let extension = if has_extension {
            if pos + 4 > len {
                return Err(RtpError::ExtensionOverrun { len });
            }
            let profile = u16::from_be_bytes([datagram[pos], datagram[pos + 1]]);
            let words = usize::from(u16::from_be_bytes([datagram[pos + 2], datagram[pos + 3]]));
            let start = pos + 4;
            let end = start + 4 * words;
            if end > len {
                return Err(RtpError::ExtensionOverrun { len });
            }
            pos = end;
            Some(RtpExtension {
                profile,
                data: &datagram[start..end],
            })
        } else {
            None
        };

        let mut end = len;
        if has_padding {
            let available = len - pos;
            let padding = datagram[len - 1];
            if padding == 0 || usize::from(padding) > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            end -= usize::from(padding);
        }

        Ok(RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs,
            extension,
            payload: &datagram[pos..end],
        })
    }

    /// Appends this packet, without padding, to `out`.
    ///
    /// # Panics
    /// When there are more than 15 CSRCs, the payload type is above 127, or the
    /// extension data is not a whole number of 32-bit words: those packets
    /// cannot be written, and only tests and simulators write packets.
    pub fn write(&self, out: &mut Vec<u8>) {
        self.write_padded(0, out);
    }

    /// Appends this packet followed by `padding` bytes of padding (the last one
    /// holding the count), as a sender padding for encryption would.
    ///
    /// # Panics
    /// As [`RtpPacket::write`].
    pub fn write_padded(&self, padding: u8, out: &mut Vec<u8>) {
        assert!(self.csrcs.len() <= 15, "rtp allows at most 15 csrcs");
        assert!(self.payload_type <= 127, "rtp payload types are 0..=127");
        let mut b0 = 2u8 << 6 | self.csrcs.len() as u8;
        if padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out.push(b0);
        out.push(u8::from(self.marker) << 7 | self.payload_type);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for csrc in &self.csrcs {
            out.extend_from_slice(&csrc.to_be_bytes());
        }
        if let Some(ext) = &self.extension {
            assert!(
                ext.data.len().is_multiple_of(4) && ext.data.len() / 4 <= usize::from(u16::MAX),
                "rtp extension data must be whole 32-bit words"
            );
            out.extend_from_slice(&ext.profile.to_be_bytes());
            out.extend_from_slice(&((ext.data.len() / 4) as u16).to_be_bytes());
            out.extend_from_slice(ext.data);
        }
        out.extend_from_slice(self.payload);
        if padding > 0 {
            out.extend(std::iter::repeat_n(0u8, usize::from(padding) - 1));
            out.push(padding);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_packet() {
        let d = [
            0x80, 0x00, 0x12, 0x34, 0, 0, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef, 0xff, 0x7f,
        ];
        let p = RtpPacket::parse(&d).unwrap();
        assert!(!p.marker);
        assert_eq!(p.payload_type, 0);
        assert_eq!(p.sequence, 0x1234);
        assert_eq!(p.timestamp, 320);
        assert_eq!(p.ssrc, 0xdeadbeef);
        assert!(p.csrcs.is_empty());
        assert_eq!(p.extension, None);
        assert_eq!(p.payload, &[0xff, 0x7f]);
    }
}
