//! G.711 round trips: every code survives decode -> encode, and every
//! linear sample survives encode -> decode within the law's step size.

use callrec_media::codec::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};
use callrec_media::codec::{Codec, decoder_for};

#[test]
fn every_code_round_trips() {
    for code in 0..=255u8 {
        assert_eq!(
            linear_to_alaw(alaw_to_linear(code)),
            code,
            "a-law {code:#04x}"
        );
        // mu-law has two zeros (0x7f and 0xff); the encoder picks +0 (0xff)
        let expected = if code == 0x7f { 0xff } else { code };
        assert_eq!(
            linear_to_ulaw(ulaw_to_linear(code)),
            expected,
            "mu-law {code:#04x}"
        );
    }
}

#[test]
fn every_sample_round_trips_within_the_quantization_step() {
    for x in i16::MIN..=i16::MAX {
        let xi = i32::from(x);
        // G.711 is about 8 bits of mantissa plus sign: the error is below 1/32 of
        // the magnitude plus the smallest step, and clipping above 32124 (mu-law).
        let bound = |step: i32| xi.abs() / 16 + step;
        let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
        let target = xi.clamp(-32124, 32124);
        assert!((u - target).abs() <= bound(4), "mu-law {x} -> {u}");
        let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
        assert!((a - xi).abs() <= bound(8), "a-law {x} -> {a}");
        // sign is kept (zero may go either way)
        assert!(
            u == 0 || (u > 0) == (x > 0) || x.unsigned_abs() < 8,
            "mu-law sign {x} -> {u}"
        );
        assert!(
            a.signum() == xi.signum() || x.unsigned_abs() < 16,
            "a-law sign {x} -> {a}"
        );
    }
}

#[test]
fn g711_decoders_decode_payloads_sample_for_byte() {
    let mut out = Vec::new();
    let mut pcmu = decoder_for(Codec::Pcmu).unwrap();
    pcmu.decode(&[0x80, 0xff, 0x00], &mut out).unwrap();
    assert_eq!(out, vec![32124, 0, -32124]);
    out.clear();
    let mut pcma = decoder_for(Codec::Pcma).unwrap();
    pcma.decode(&[0xd5, 0x55, 0xaa], &mut out).unwrap();
    assert_eq!(out, vec![8, -8, 32256]);
    assert_eq!(pcma.codec(), Codec::Pcma);
}
