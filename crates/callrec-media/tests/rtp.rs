//! RTP parsing: header fields, CSRCs, extension, padding, malformed input,
//! and a write -> parse round trip over arbitrary packets.

use callrec_media::rtp::{RtpError, RtpExtension, RtpPacket};
use proptest::prelude::*;

/// Parses `datagram` and compares with `expected` (or the expected error).
fn check(datagram: &[u8], expected: Result<RtpPacket<'_>, RtpError>) {
    assert_eq!(
        RtpPacket::parse(datagram),
        expected,
        "datagram {datagram:02x?}"
    );
}

#[test]
fn parses_csrcs_extension_and_padding() {
    #[rustfmt::skip]
    let d = [
        0xb2, 0x88, 0xff, 0xff,             // V=2 P=1 X=1 CC=2, M=1 PT=8, seq 65535
        0xff, 0xff, 0xff, 0x60,             // ts
        0x01, 0x02, 0x03, 0x04,             // ssrc
        0x00, 0x00, 0x00, 0x0a,             // csrc 10
        0x00, 0x00, 0x00, 0x0b,             // csrc 11
        0xbe, 0xde, 0x00, 0x01,             // extension: profile 0xbede, 1 word
        0x10, 0xaa, 0x00, 0x00,             // extension data
        0xd5, 0xd5, 0x55,                   // payload
        0x00, 0x00, 0x03,                   // 3 bytes of padding
    ];
    check(
        &d,
        Ok(RtpPacket {
            marker: true,
            payload_type: 8,
            sequence: 65535,
            timestamp: 0xffff_ff60,
            ssrc: 0x0102_0304,
            csrcs: vec![10, 11],
            extension: Some(RtpExtension {
                profile: 0xbede,
                data: &[0x10, 0xaa, 0, 0],
            }),
            payload: &[0xd5, 0xd5, 0x55],
        }),
    );
}

#[test]
fn padding_may_take_the_whole_payload() {
    let d = [0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4];
    let p = RtpPacket::parse(&d).unwrap();
    assert!(p.payload.is_empty());
}

#[test]
fn malformed_datagrams_are_rejected() {
    check(&[], Err(RtpError::TooShort { len: 0 }));
    check(
        &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        Err(RtpError::TooShort { len: 11 }),
    );
    check(
        &[0x40, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
        Err(RtpError::BadVersion { version: 1 }),
    );
    check(
        &[0xc0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
        Err(RtpError::BadVersion { version: 3 }),
    );
    // CC=3 but only one CSRC present
    check(
        &[0x83, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9],
        Err(RtpError::CsrcOverrun { count: 3, len: 16 }),
    );
    // X=1 but no room for the extension header
    check(
        &[0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde],
        Err(RtpError::ExtensionOverrun { len: 14 }),
    );
    // extension claims 2 words, has 1
    check(
        &[
            0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 2, 1, 2, 3, 4,
        ],
        Err(RtpError::ExtensionOverrun { len: 20 }),
    );
    // padding count 0
    check(
        &[0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 7, 0],
        Err(RtpError::BadPadding {
            padding: 0,
            available: 2,
        }),
    );
    // padding longer than what follows the header
    check(
        &[0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 7, 9],
        Err(RtpError::BadPadding {
            padding: 9,
            available: 2,
        }),
    );
}

#[test]
fn rtcp_on_the_rtp_port_is_named_as_such() {
    for pt in 200..=204u8 {
        let mut d = vec![0x80, pt, 0, 6];
        d.extend_from_slice(&[0; 24]);
        let err = RtpPacket::parse(&d).unwrap_err();
        assert_eq!(err, RtpError::Rtcp { packet_type: pt });
        assert!(err.to_string().contains("this is rtcp"), "{err}");
    }
    // An RTCP BYE-only header shorter than 12 bytes is still RTCP.
    check(
        &[0x81, 203, 0, 1, 0, 0, 0, 1],
        Err(RtpError::Rtcp { packet_type: 203 }),
    );
    // Marker set with payload type 72..=76 reads as 200..=204 too: that is RTCP
    // by RFC 5761's rule, so payload types 72-76 are not usable with a marker.
    let mut d = vec![0x80, 0x80 | 72, 0, 1];
    d.extend_from_slice(&[0; 8]);
    assert_eq!(
        RtpPacket::parse(&d),
        Err(RtpError::Rtcp { packet_type: 200 })
    );
}

#[test]
fn errors_say_what_to_do() {
    let e = RtpPacket::parse(&[1, 2, 3]).unwrap_err().to_string();
    assert!(e.starts_with("rtp datagram is 3 bytes"), "{e}");
    assert!(e.chars().next().unwrap().is_lowercase());
    assert!(!e.ends_with('.'));
}

/// marker, payload type, sequence, timestamp, ssrc, csrcs, extension, payload, padding
type ArbPacket = (
    bool,
    u8,
    u16,
    u32,
    u32,
    Vec<u32>,
    Option<(u16, Vec<u8>)>,
    Vec<u8>,
    u8,
);

fn arb_packet() -> impl Strategy<Value = ArbPacket> {
    (
        any::<bool>(),
        (0u8..=127).prop_filter("not rtcp with marker", |pt| !(72..=76).contains(pt)),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(any::<u32>(), 0..=15),
        proptest::option::of((
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..=8).prop_map(|mut v| {
                v.truncate(v.len() / 4 * 4);
                v
            }),
        )),
        proptest::collection::vec(any::<u8>(), 0..400),
        any::<u8>(),
    )
}

proptest! {
    #[test]
    fn write_then_parse_gives_the_same_packet(
        (marker, payload_type, sequence, timestamp, ssrc, csrcs, ext, payload, padding) in arb_packet()
    ) {
        let packet = RtpPacket {
            marker,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs,
            extension: ext.as_ref().map(|(profile, data)| RtpExtension { profile: *profile, data }),
            payload: &payload,
        };
        let mut bytes = Vec::new();
        packet.write_padded(padding, &mut bytes);
        prop_assert_eq!(RtpPacket::parse(&bytes), Ok(packet));
    }

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            prop_assert!(p.payload.len() + 12 <= bytes.len());
        }
    }
}
