//! G.711 mu-law and A-law (ITU-T G.711): 256-entry decode tables built at
//! compile time, and the encoders (for tests, fixtures and simulators).
//!
//! The tables follow the ITU reference (the G.191 software tools, as Sun's
//! `g711.c` and ffmpeg implement it) bit for bit. Nothing here may allocate
//! per sample or keep state: G.711 is stateless.

use super::{Codec, CodecError, Decoder};

const fn ulaw_decode(code: u8) -> i16 {
    let u = !code;
    let mut t: i32 = (((u & 0x0f) as i32) << 3) + 0x84;
    t <<= ((u & 0x70) >> 4) as i32;
    if u & 0x80 != 0 {
        (0x84 - t) as i16
    } else {
        (t - 0x84) as i16
    }
}

const fn alaw_decode(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t: i32 = ((a & 0x0f) as i32) << 4;
    let seg = ((a & 0x70) >> 4) as i32;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    table
}

/// mu-law code to linear 16-bit sample.
pub const ULAW_TO_LINEAR: [i16; 256] = build_table(false);
/// A-law code to linear 16-bit sample.
pub const ALAW_TO_LINEAR: [i16; 256] = build_table(true);

/// Decodes one mu-law code.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(code)]
}

/// Decodes one A-law code.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(code)]
}

/// Encodes one linear sample as mu-law (G.711, with the usual 0x84 bias and clip at 32635).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut pcm = i32::from(sample);
    let mask: u8 = if pcm < 0 {
        pcm = -pcm;
        0x7f
    } else {
        0xff
    };
    pcm = pcm.min(CLIP) + BIAS;
    // segment: position of the highest set bit above bit 7
    let seg = (pcm >> 7).max(1).ilog2().min(7) as u8;
    let mantissa = ((pcm >> (seg + 3)) & 0x0f) as u8;
    ((seg << 4) | mantissa) ^ mask
}

/// Encodes one linear sample as A-law (G.711).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3; // 13-bit
    let mask: u8 = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // segment ends for 13-bit magnitudes: 0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff
    let seg = if pcm <= 0x1f {
        0u8
    } else {
        ((pcm >> 5).ilog2() + 1).min(8) as u8
    };
    if seg >= 8 {
        return 0x7f ^ mask;
    }
    let mut aval = seg << 4;
    aval |= if seg < 2 {
        ((pcm >> 1) & 0x0f) as u8
    } else {
        ((pcm >> seg) & 0x0f) as u8
    };
    aval ^ mask
}

/// A G.711 decoder (stateless; one per source anyway, like every decoder).
#[derive(Debug, Clone, Copy)]
pub struct G711Decoder {
    alaw: bool,
}

impl G711Decoder {
    /// A mu-law (PCMU) decoder.
    pub fn ulaw() -> Self {
        G711Decoder { alaw: false }
    }

    /// An A-law (PCMA) decoder.
    pub fn alaw() -> Self {
        G711Decoder { alaw: true }
    }
}

impl Decoder for G711Decoder {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        let table = if self.alaw {
            &ALAW_TO_LINEAR
        } else {
            &ULAW_TO_LINEAR
        };
        out.extend(payload.iter().map(|&c| table[usize::from(c)]));
        Ok(())
    }

    fn codec(&self) -> Codec {
        if self.alaw { Codec::Pcma } else { Codec::Pcmu }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values of ITU-T G.711 (the G.191 reference decoder; these
    /// figures were read from ffmpeg's pcm_mulaw/pcm_alaw, an independent
    /// implementation): code -> linear.
    #[test]
    fn decode_tables_match_itu_reference_values() {
        let ulaw = [
            (0x00, -32124),
            (0x0f, -16764),
            (0x10, -15996),
            (0x70, -120),
            (0x7e, -8),
            (0x2a, -5372),
            (0x55, -716),
            (0x7f, 0),
            (0x80, 32124),
            (0xaa, 5372),
            (0xc5, 1564),
            (0xef, 132),
            (0xfe, 8),
            (0xff, 0),
        ];
        for (code, linear) in ulaw {
            assert_eq!(ulaw_to_linear(code), linear, "mu-law code {code:#04x}");
        }
        let alaw = [
            (0x00, -5504),
            (0x0f, -6784),
            (0x10, -2752),
            (0x2a, -32256),
            (0x55, -8),
            (0x7f, -848),
            (0x80, 5504),
            (0xaa, 32256),
            (0xc5, 264),
            (0xd4, 24),
            (0xd5, 8),
            (0xff, 848),
        ];
        for (code, linear) in alaw {
            assert_eq!(alaw_to_linear(code), linear, "a-law code {code:#04x}");
        }
    }
}
