//! Property tests: the parsers never panic on arbitrary or mutated input,
//! and an SDP answer keeps the offer's m-lines, in order.

use callrec_siprec::metadata::{Metadata, MetadataState};
use callrec_siprec::multipart;
use callrec_siprec::recording_session::{RecordingSessionCheck, srs_contact};
use callrec_siprec::roles::{AddressPattern, RoleResolver, RoleRule};
use callrec_siprec::sdp::{AnswerParams, Direction, MediaKind, SessionDescription, build_answer};
use callrec_siprec::{Side, parse_body};
use proptest::prelude::*;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("fixtures/oracle-acme-rfc7865.sip"),
    include_bytes!("fixtures/partial-agent-leaves.sip"),
    include_bytes!("fixtures/cisco-cube-video.sip"),
    include_bytes!("fixtures/audiocodes.sip"),
    include_bytes!("fixtures/ribbon-sonus-draft.sip"),
    include_bytes!("fixtures/avaya-sbce.sip"),
    include_bytes!("fixtures/freeswitch-drachtio.sip"),
    include_bytes!("fixtures/lf-only.sip"),
    include_bytes!("fixtures/inactive-first-offer.sip"),
    include_bytes!("fixtures/two-sessions-four-audio.sip"),
    include_bytes!("fixtures/sdp-only-no-metadata.sip"),
];

/// The body and Content-Type of a fixture (a tiny SIP reader for tests).
fn body_of(fixture: &[u8]) -> (String, &[u8]) {
    let (head_end, body_start) = match fixture.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (i, i + 4),
        None => {
            let i = fixture.windows(2).position(|w| w == b"\n\n").unwrap();
            (i, i + 2)
        }
    };
    let head = std::str::from_utf8(&fixture[..head_end]).unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            (n.eq_ignore_ascii_case("content-type") || n == "c").then(|| v.trim().to_string())
        })
        .unwrap();
    (content_type, &fixture[body_start..])
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'\r'),
                    Just(b'\n'),
                    Just(b'<'),
                    Just(b'>'),
                    Just(b'/'),
                    Just(b'='),
                    Just(b'-'),
                    Just(b'&'),
                    Just(b':'),
                    any::<u8>()
                ],
                0..8
            )
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn mutate(data: &mut Vec<u8>, m: &Mutation) {
    let len = data.len().max(1);
    match m {
        Mutation::Flip(i, b) => {
            if !data.is_empty() {
                let i = i % data.len();
                data[i] ^= b | 1;
            }
        }
        Mutation::Insert(i, v) => {
            let i = i % (data.len() + 1);
            data.splice(i..i, v.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = i % len;
            let end = (i + n).min(data.len());
            if i < end {
                data.drain(i..end);
            }
        }
        Mutation::Duplicate(i, n) => {
            let i = i % len;
            let end = (i + n).min(data.len());
            if i < end {
                let copy = data[i..end].to_vec();
                data.splice(end..end, copy);
            }
        }
    }
}

/// Runs everything the server would run on a body; must not panic.
fn exercise(content_type: &str, body: &[u8]) {
    let Ok(parsed) = parse_body(content_type, body) else {
        return;
    };
    let mut state = MetadataState::new();
    if let Some(md) = &parsed.metadata {
        state.apply(md);
        state.apply(md);
    }
    if let Some(sdp) = &parsed.sdp {
        let mut resolver = RoleResolver::new(vec![
            RoleRule::AgentAddressPattern(AddressPattern::new("*@agents.*")),
            RoleRule::LabelOrder {
                first: Side::EndUser,
            },
        ]);
        let labels = sdp.recordable_labels();
        let map = resolver.resolve(&labels, Some(&state));
        assert_eq!(map.entries.len(), labels.len());
        let ports: Vec<Option<u16>> = (0..sdp.media.len())
            .map(|i| Some(1000 + i as u16))
            .collect();
        let params = AnswerParams {
            address: "::1".parse().unwrap(),
            session_id: 1,
            session_version: 1,
        };
        let answer = build_answer(sdp, &ports, &params).unwrap();
        assert_eq!(answer.streams.len(), sdp.media.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sdp_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = SessionDescription::parse(&bytes);
    }

    #[test]
    fn sdp_parser_never_panics_on_sdp_like_text(
        lines in prop::collection::vec(
            ("[vosctmab]", "[ -~]{0,40}").prop_map(|(k, v)| format!("{k}={v}")), 0..20)
    ) {
        let text = format!("v=0\r\n{}", lines.join("\r\n"));
        if let Ok(sdp) = SessionDescription::parse(text.as_bytes()) {
            let ports = vec![Some(5000); sdp.media.len()];
            let params = AnswerParams { address: "192.0.2.1".parse().unwrap(), session_id: 1, session_version: 2 };
            let answer = build_answer(&sdp, &ports, &params).unwrap();
            prop_assert_eq!(answer.streams.len(), sdp.media.len());
        }
    }

    #[test]
    fn metadata_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Metadata::parse(&bytes);
    }

    #[test]
    fn metadata_parser_never_panics_on_xml_like_text(
        tokens in prop::collection::vec(prop_oneof![
            Just("<recording xmlns='urn:ietf:params:xml:ns:recording:1'>".to_string()),
            Just("</recording>".to_string()),
            Just("<participant participant_id='p'>".to_string()),
            Just("</participant>".to_string()),
            Just("<send>s</send>".to_string()),
            Just("<stream stream_id='s'><label>1</label></stream>".to_string()),
            Just("<datamode>partial</datamode>".to_string()),
            Just("<participantsessionassoc participant_id='p'><disassociate-time/></participantsessionassoc>".to_string()),
            Just("&amp;&#x41;&bogus;".to_string()),
            Just("<![CDATA[x]]>".to_string()),
            "[<>/a-z'\"=&; ]{0,12}",
        ], 0..30)
    ) {
        let text = tokens.concat();
        if let Ok(md) = Metadata::parse(text.as_bytes()) {
            let mut state = MetadataState::new();
            state.apply(&md);
            let again = state.apply(&md);
            prop_assert!(again.is_empty(), "applying the same document twice reported {:?}", again);
        }
    }

    #[test]
    fn multipart_never_panics(
        content_type in "[ -~]{0,60}",
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let _ = multipart::split(&content_type, &bytes);
        let _ = parse_body(&content_type, &bytes);
    }

    #[test]
    fn multipart_never_panics_on_boundary_like_bodies(
        pieces in prop::collection::vec(prop_oneof![
            Just("--b".to_string()), Just("--b--".to_string()), Just("\r\n".to_string()),
            Just("\n".to_string()), Just("Content-Type: application/sdp".to_string()),
            Just(" folded".to_string()), Just("v=0".to_string()), "[ -~]{0,10}",
        ], 0..30)
    ) {
        let body = pieces.concat();
        if let Ok(parts) = multipart::split("multipart/mixed; boundary=b", body.as_bytes()) {
            for p in &parts {
                prop_assert!(p.body.len() <= body.len());
            }
        }
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let (content_type, body) = body_of(FIXTURES[which]);
        let mut body = body.to_vec();
        for m in &mutations {
            mutate(&mut body, m);
        }
        exercise(&content_type, &body);
    }

    #[test]
    fn header_helpers_never_panic(require in "[ -~]{0,40}", contact in "[ -~]{0,60}", aor in "[ -~]{0,40}", pat in "[ -~*?]{0,20}") {
        let check = RecordingSessionCheck::from_headers([require.as_str()], [contact.as_str()]);
        let _ = check.is_recording_session();
        let _ = srs_contact(&contact);
        let _ = AddressPattern::new(pat).matches(&aor);
    }

    #[test]
    fn answer_keeps_m_line_count_and_order(
        lines in prop::collection::vec(
            (
                prop_oneof![Just("audio"), Just("video"), Just("text")],
                0u16..=65535,
                prop_oneof![Just("RTP/AVP"), Just("RTP/SAVP"), Just("RTP/AVPF"), Just("UDP/TLS/RTP/SAVPF")],
                prop::collection::vec(prop_oneof![Just("0"), Just("8"), Just("9"), Just("18"), Just("96"), Just("101"), Just("111")], 1..5),
                prop::option::of("[A-Za-z0-9-]{1,36}"),
                prop::option::of(prop_oneof![Just("sendonly"), Just("sendrecv"), Just("recvonly"), Just("inactive")]),
                prop::option::of(1u16..=65535),
            ),
            0..8,
        ),
        lf in any::<bool>(),
    ) {
        let nl = if lf { "\n" } else { "\r\n" };
        let mut text = format!("v=0{nl}o=- 1 1 IN IP4 192.0.2.1{nl}s=-{nl}c=IN IP4 192.0.2.1{nl}t=0 0{nl}");
        for (kind, port, proto, fmts, label, dir, _) in &lines {
            text += &format!("m={kind} {port} {proto} {}{nl}", fmts.join(" "));
            text += &format!("a=rtpmap:96 opus/48000/2{nl}a=rtpmap:101 telephone-event/8000{nl}a=rtpmap:111 opus/48000/2{nl}");
            if let Some(l) = label { text += &format!("a=label:{l}{nl}"); }
            if let Some(d) = dir { text += &format!("a={d}{nl}"); }
        }
        let offer = SessionDescription::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(offer.media.len(), lines.len());
        let ports: Vec<Option<u16>> = lines.iter().map(|l| l.6).collect();
        let params = AnswerParams { address: "2001:db8::1".parse().unwrap(), session_id: 9, session_version: 3 };
        let answer = build_answer(&offer, &ports, &params).unwrap();
        prop_assert!(!answer.sdp.replace("\r\n", "").contains('\n'), "answer lines end in CRLF");
        let reparsed = SessionDescription::parse(answer.sdp.as_bytes()).unwrap();
        prop_assert_eq!(reparsed.media.len(), lines.len());
        for (i, (kind, port, proto, _, label, dir, given)) in lines.iter().enumerate() {
            let m = &reparsed.media[i];
            prop_assert_eq!(m.kind.as_str(), *kind);
            prop_assert_eq!(&m.proto, proto);
            prop_assert_eq!(&m.label, label);
            let recordable = *kind == "audio" && *port != 0 && (*proto == "RTP/AVP" || *proto == "RTP/AVPF")
                && offer.media[i].supported_codecs().iter().any(|(pt, _)| *pt != 101);
            match given {
                Some(p) if recordable => {
                    prop_assert_eq!(m.port, *p);
                    let expected = if matches!(*dir, Some("inactive") | Some("recvonly")) {
                        Direction::Inactive
                    } else {
                        Direction::RecvOnly
                    };
                    prop_assert_eq!(m.direction, Some(expected));
                    prop_assert!(!m.formats.is_empty());
                }
                _ => prop_assert_eq!(m.port, 0),
            }
            prop_assert!(m.kind != MediaKind::Video || m.port == 0);
        }
    }
}

/// Metadata where participant `p{n}` sends on the stream labelled `l{i}`,
/// given as (label index, participant index or none).
fn metadata_for(senders: &[(u8, Option<u8>)], agent_hint: Option<u8>) -> MetadataState {
    let mut xml = String::from("<recording xmlns='urn:ietf:params:xml:ns:recording:1'>");
    for (label, sender) in senders {
        xml += &format!("<stream stream_id='s{label}'><label>l{label}</label></stream>");
        if let Some(p) = sender {
            let aor = if *p == 9 {
                "sip:9@agents.example.com".to_string()
            } else {
                format!("sip:+1555000{p}@pstn.example")
            };
            let hint = if agent_hint == Some(*p) {
                "<extensiondata><role>agent</role></extensiondata>"
            } else {
                ""
            };
            xml += &format!(
                "<participant participant_id='p{p}'><nameID aor='{aor}'/>{hint}</participant>"
            );
            xml += &format!(
                "<participantstreamassoc participant_id='p{p}'><send>s{label}</send></participantstreamassoc>"
            );
        }
    }
    xml += "</recording>";
    let mut state = MetadataState::new();
    state.apply(&Metadata::parse(xml.as_bytes()).unwrap());
    state
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Once a label has a side, it keeps it as long as the same participant
    /// (or the same unknown one) sends on it, whatever offers and metadata
    /// come later: the channels never swap mid-call.
    #[test]
    fn sides_are_sticky(
        steps in prop::collection::vec(
            (
                prop::collection::vec((0u8..6, prop::option::of(prop_oneof![0u8..4, Just(9u8)])), 1..6),
                prop::option::of(0u8..4),
                any::<bool>(),
            ),
            1..6,
        ),
        first in prop_oneof![Just(Side::EndUser), Just(Side::Agent)],
    ) {
        let mut resolver = RoleResolver::new(vec![
            RoleRule::AgentAddressPattern(AddressPattern::new("*@agents.example.com")),
            RoleRule::LabelOrder { first },
        ]);
        let mut seen: std::collections::HashMap<(String, Option<String>), Side> = Default::default();
        for (senders, hint, with_metadata) in steps {
            let mut senders = senders;
            senders.sort_by_key(|(l, _)| *l);
            senders.dedup_by_key(|(l, _)| *l);
            let labels: Vec<String> = senders.iter().map(|(l, _)| format!("l{l}")).collect();
            let state = metadata_for(&senders, hint);
            let map = resolver.resolve(&labels, with_metadata.then_some(&state));
            prop_assert_eq!(map.entries.len(), labels.len());
            for e in &map.entries {
                let key = (e.label.clone(), e.participant_id.clone());
                if let Some(previous) = seen.get(&key) {
                    prop_assert_eq!(*previous, e.side, "label {} changed side", e.label);
                }
                seen.insert(key, e.side);
            }
        }
    }
}
