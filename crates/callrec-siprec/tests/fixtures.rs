//! SIPREC INVITEs in the shapes that different recording clients send
//! (`tests/fixtures/*.sip`, written for callrec, byte-exact: CRLF or LF as
//! the vendor would), each run through the whole crate: recognise the
//! request, split the body, parse SDP and metadata, decide the channels and
//! build the answer.

use callrec_siprec::metadata::{DataMode, MetadataEvent, MetadataFormat, MetadataState};
use callrec_siprec::recording_session::RecordingSessionCheck;
use callrec_siprec::roles::{AddressPattern, ChannelMap, DecidedBy, RoleResolver, RoleRule};
use callrec_siprec::sdp::{Answer, AnswerParams, Codec, Direction, build_answer};
use callrec_siprec::{Side, SiprecBody, parse_body};

/// A SIP request read the simplest way: start line, headers, body.
struct Message {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn load(name: &str) -> Message {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        let (head_end, body_start) = match find(&bytes, b"\r\n\r\n") {
            Some(i) => (i, i + 4),
            None => {
                let i = find(&bytes, b"\n\n").expect("fixture has a blank line");
                (i, i + 2)
            }
        };
        let head = std::str::from_utf8(&bytes[..head_end]).unwrap();
        let headers = head
            .lines()
            .skip(1)
            .map(|l| {
                let (n, v) = l.split_once(':').expect("header line");
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let body = bytes[body_start..].to_vec();
        let msg = Message { headers, body };
        let declared: usize = msg.values("Content-Length", "l")[0].parse().unwrap();
        assert_eq!(declared, msg.body.len(), "{name}: Content-Length");
        msg
    }

    /// Values of a header, by full or compact name.
    fn values(&self, name: &str, compact: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Everything the crate says about one fixture.
struct Outcome {
    check: RecordingSessionCheck,
    body: SiprecBody,
    state: MetadataState,
    events: Vec<MetadataEvent>,
    resolver: RoleResolver,
    map: ChannelMap,
    answer: Answer,
}

fn run(name: &str, rules: Vec<RoleRule>) -> Outcome {
    let msg = Message::load(name);
    let check =
        RecordingSessionCheck::from_headers(msg.values("Require", ""), msg.values("Contact", "m"));
    let content_type = msg.values("Content-Type", "c")[0];
    let body = parse_body(content_type, &msg.body).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut state = MetadataState::new();
    let events = body
        .metadata
        .as_ref()
        .map(|m| state.apply(m))
        .unwrap_or_default();
    let sdp = body.sdp.as_ref().expect("an sdp");
    let mut resolver = RoleResolver::new(rules);
    let map = resolver.resolve(
        &sdp.recordable_labels(),
        body.metadata.as_ref().map(|_| &state),
    );
    let mut next = 40000;
    let ports: Vec<Option<u16>> = (0..sdp.media.len())
        .map(|i| {
            sdp.media[i].is_recordable().then(|| {
                next += 2;
                next - 2
            })
        })
        .collect();
    let params = AnswerParams {
        address: "203.0.113.5".parse().unwrap(),
        session_id: 7,
        session_version: 1,
    };
    let answer = build_answer(sdp, &ports, &params).unwrap();
    Outcome {
        check,
        body,
        state,
        events,
        resolver,
        map,
        answer,
    }
}

const ANSWER_HEAD: &str =
    "v=0\r\no=callrec 7 1 IN IP4 203.0.113.5\r\ns=callrec\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n";

/// Checks the answer's media sections, given as lines without line ends.
fn check_answer(answer: &Answer, media: &[&str]) {
    let mut expected = ANSWER_HEAD.to_string();
    for line in media {
        expected.push_str(line);
        expected.push_str("\r\n");
    }
    assert_eq!(answer.sdp, expected);
}

/// Checks the channel map: (label, participant, side, decided by).
fn check_map(map: &ChannelMap, expected: &[(&str, Option<&str>, Side, DecidedBy)]) {
    let got: Vec<(&str, Option<&str>, Side, DecidedBy)> = map
        .entries
        .iter()
        .map(|e| {
            (
                e.label.as_str(),
                e.participant_id.as_deref(),
                e.side,
                e.decided_by,
            )
        })
        .collect();
    assert_eq!(got, expected);
}

fn pattern(p: &str) -> RoleRule {
    RoleRule::AgentAddressPattern(AddressPattern::new(p))
}

const ORACLE_CUSTOMER: &str = "bN9xKJ1qS7S8YqGmP8z1ZQ==";
const ORACLE_AGENT: &str = "e0Vd0ZzvRj2l5YVm0Q2a5w==";

#[test]
fn oracle_acme_rfc7865() {
    let o = run(
        "oracle-acme-rfc7865.sip",
        vec![pattern("*@agents.example.com")],
    );
    assert!(o.check.is_strict());
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.format, MetadataFormat::Rfc7865);
    assert_eq!(md.data_mode, DataMode::Complete);
    assert_eq!(md.participants.len(), 2);
    assert_eq!(
        md.participants[1].aor.as_deref(),
        Some("sip:2001@agents.example.com")
    );
    assert_eq!(md.participants[1].name.as_deref(), Some("Agent 2001"));
    assert_eq!(
        md.participants[1].role_hint, None,
        "apkt extension is not a role"
    );
    assert_eq!(
        md.sessions[0].sip_session_ids,
        vec!["ce1f9a2e5a8f4f7f8e7b2f1c0d3a4b5c;remote=00000000000000000000000000000000"]
    );
    assert_eq!(o.events.len(), 4, "two joins and two stream associations");
    check_map(
        &o.map,
        &[
            (
                "1",
                Some(ORACLE_CUSTOMER),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "2",
                Some(ORACLE_AGENT),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
        ],
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:1",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:2",
            "a=recvonly",
        ],
    );
}

#[test]
fn partial_update_agent_leaves_and_third_party_joins() {
    let mut o = run(
        "oracle-acme-rfc7865.sip",
        vec![pattern("*@agents.example.com")],
    );
    let update = Message::load("partial-agent-leaves.sip");
    let body = parse_body(update.values("Content-Type", "c")[0], &update.body).unwrap();
    let md = body.metadata.unwrap();
    assert_eq!(md.data_mode, DataMode::Partial);
    let events = o.state.apply(&md);
    let third = "Q3zv3M1bS2mU5r9q7xB0Ow==";
    assert_eq!(
        events,
        vec![
            MetadataEvent::ParticipantLeft {
                participant_id: ORACLE_AGENT.into()
            },
            MetadataEvent::StreamDisassociated {
                participant_id: ORACLE_AGENT.into(),
                stream_id: "Yd9tq9H5R1yPz6M5lq0XnA==".into(),
                label: Some("2".into()),
            },
            MetadataEvent::ParticipantJoined {
                participant_id: third.into()
            },
            MetadataEvent::StreamAssociated {
                participant_id: third.into(),
                stream_id: "Yd9tq9H5R1yPz6M5lq0XnA==".into(),
                label: Some("2".into()),
            },
        ]
    );
    assert!(!o.state.participant(ORACLE_AGENT).unwrap().active);
    assert!(o.state.participant(ORACLE_AGENT).unwrap().sends.is_empty());
    // The customer is untouched by a partial update that does not name them.
    assert!(o.state.participant(ORACLE_CUSTOMER).unwrap().active);
    let labels = body.sdp.unwrap().recordable_labels();
    let map = o.resolver.resolve(&labels, Some(&o.state));
    check_map(
        &map,
        &[
            (
                "1",
                Some(ORACLE_CUSTOMER),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
            ("2", Some(third), Side::Agent, DecidedBy::AddedParty),
        ],
    );
}

#[test]
fn cisco_cube_with_video() {
    // No rule configured: label order decides, metadata still names senders.
    let o = run("cisco-cube-video.sip", vec![]);
    assert!(o.check.is_strict());
    let sdp = o.body.sdp.as_ref().unwrap();
    assert_eq!(sdp.media.len(), 4);
    assert_eq!(sdp.recordable_labels(), vec!["1", "2"]);
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.streams.len(), 4);
    assert_eq!(
        o.state
            .sender_of_label("3")
            .map(|p| p.participant.id.as_str()),
        Some("oSY6U9LfEe6A0uTxvCqfEB==")
    );
    check_map(
        &o.map,
        &[
            (
                "1",
                Some("oSY6U9LfEe6A0uTxvCqfEB=="),
                Side::EndUser,
                DecidedBy::LabelOrder,
            ),
            (
                "2",
                Some("oSY6U9LfEe6A0uTxvCqfEE=="),
                Side::Agent,
                DecidedBy::LabelOrder,
            ),
        ],
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=label:1",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=label:2",
            "a=recvonly",
            "m=video 0 RTP/AVP 126",
            "a=label:3",
            "m=video 0 RTP/AVP 126",
            "a=label:4",
        ],
    );
}

#[test]
fn audiocodes_rs_metadata_without_xml_suffix_agent_first() {
    // The SBC records on the PBX side: label 1 is the agent's extension.
    // Label order alone would swap the channels; the pattern gets it right.
    let o = run(
        "audiocodes.sip",
        vec![
            pattern("1??@*"),
            RoleRule::LabelOrder {
                first: Side::EndUser,
            },
        ],
    );
    assert!(o.check.is_strict());
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.groups[0].id, "00000000-0000-0000-0000-1CB1D1E1F1A1");
    assert_eq!(
        md.sessions[0].group_ref.as_deref(),
        Some("00000000-0000-0000-0000-1CB1D1E1F1A1")
    );
    assert_eq!(md.participants[0].aor.as_deref(), Some("100@198.51.100.20"));
    check_map(
        &o.map,
        &[
            (
                "1",
                Some("MdgX1VgaQNy8aF4p4Dv0cA=="),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "2",
                Some("Fq2b+Q3pSA6ShGa7W5pCNQ=="),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
        ],
    );
    let m0 = &o.body.sdp.as_ref().unwrap().media[0];
    assert_eq!(m0.rtcp.as_ref().map(|r| r.port), Some(6011));
    assert_eq!(
        o.answer.streams[0].codecs,
        vec![
            (9, Codec::G722),
            (8, Codec::Pcma),
            (0, Codec::Pcmu),
            (101, Codec::TelephoneEvent { clock_rate: 8000 })
        ]
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 9 8 0 101",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:1",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 9 8 0 101",
            "a=rtpmap:9 G722/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:2",
            "a=recvonly",
        ],
    );
}

#[test]
fn ribbon_sonus_draft_namespace() {
    // The agent pattern matches nobody, so label order decides.
    let o = run(
        "ribbon-sonus-draft.sip",
        vec![pattern("*@agents.example.com")],
    );
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.format, MetadataFormat::Draft);
    assert_eq!(md.participants.len(), 2);
    assert_eq!(md.participants[0].name.as_deref(), Some("WIRELESS CALLER"));
    assert_eq!(
        md.streams[0].session_id.as_deref(),
        Some("DkJ9V2aAR4qU2aDqFqeK0g==")
    );
    // Draft send/recv inside <participant> became stream associations.
    assert_eq!(md.stream_assocs.len(), 2);
    assert_eq!(md.stream_assocs[1].send, vec!["2ZHAm0MTS0qNXcpaOq6B2w=="]);
    check_map(
        &o.map,
        &[
            (
                "10",
                Some("Sa3G8zNlSByeDrnmGZGNmA=="),
                Side::EndUser,
                DecidedBy::LabelOrder,
            ),
            (
                "11",
                Some("CXyMxZN4RYuCSx3PbBPPuQ=="),
                Side::Agent,
                DecidedBy::LabelOrder,
            ),
        ],
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:10",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:11",
            "a=recvonly",
        ],
    );
}

#[test]
fn avaya_sbce_ipv6_prefixed_xml_and_tag_inside_uri() {
    let o = run(
        "avaya-sbce.sip",
        vec![pattern("sip:5???@avaya.example.com")],
    );
    // +sip.src inside the URI brackets and Require as a list.
    assert!(o.check.require_siprec && o.check.src_contact);
    let sdp = o.body.sdp.as_ref().unwrap();
    assert_eq!(sdp.connection, None);
    assert_eq!(
        sdp.effective_connection(1).and_then(|c| c.ip()),
        Some("2001:db8:200::11".parse().unwrap())
    );
    assert_eq!(
        sdp.media[0]
            .rtcp
            .as_ref()
            .and_then(|r| r.connection.as_ref())
            .map(|c| c.address.as_str()),
        Some("2001:db8:200::11")
    );
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.format, MetadataFormat::Rfc7865);
    assert_eq!(md.participants[1].name.as_deref(), Some("Agent 5123"));
    check_map(
        &o.map,
        &[
            (
                "caller",
                Some("cGFydGljaXBhbnQtMQ=="),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "callee",
                Some("cGFydGljaXBhbnQtMg=="),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
        ],
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:caller",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=label:callee",
            "a=recvonly",
        ],
    );
}

#[test]
fn freeswitch_drachtio_uuid_labels_opus_and_role_hint() {
    // Label order would put the agent (first label) on the left; the role
    // hint in the metadata wins.
    let o = run("freeswitch-drachtio.sip", vec![]);
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.participants[0].role_hint, Some(Side::Agent));
    check_map(
        &o.map,
        &[
            (
                "8b5e7f4a-2c1d-4e9b-a7f3-5c0d1e2f3a4b",
                Some("agent-1007"),
                Side::Agent,
                DecidedBy::Metadata,
            ),
            (
                "f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
                Some("caller-1"),
                Side::EndUser,
                DecidedBy::Metadata,
            ),
        ],
    );
    let fmtp = "a=fmtp:111 useinbandfec=1; maxaveragebitrate=30000; maxplaybackrate=48000; ptime=20; minptime=10; maxptime=40";
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 111 0 8 101",
            "a=rtpmap:111 opus/48000/2",
            fmtp,
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/48000",
            "a=fmtp:101 0-16",
            "a=label:8b5e7f4a-2c1d-4e9b-a7f3-5c0d1e2f3a4b",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 111 0 8 101",
            "a=rtpmap:111 opus/48000/2",
            fmtp,
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/48000",
            "a=fmtp:101 0-16",
            "a=label:f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9",
            "a=recvonly",
        ],
    );
}

#[test]
fn lf_only_with_compact_headers() {
    let o = run("lf-only.sip", vec![pattern("*@agents.example.com")]);
    assert!(o.check.is_strict(), "compact m: Contact and Require list");
    let sdp = o.body.sdp.as_ref().unwrap();
    assert_eq!(sdp.media.len(), 2);
    assert_eq!(sdp.media[1].port, 6002);
    // The agent sends on label 0: by the pattern it is on the right.
    check_map(
        &o.map,
        &[
            (
                "0",
                Some("p-agent"),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "1",
                Some("p-cust"),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
        ],
    );
    // The answer is CRLF whatever the offer used.
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=label:0",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=label:1",
            "a=recvonly",
        ],
    );
}

#[test]
fn inactive_first_offer_is_accepted_inactive() {
    let o = run(
        "inactive-first-offer.sip",
        vec![pattern("*@agents.example.com")],
    );
    let sdp = o.body.sdp.as_ref().unwrap();
    assert_eq!(sdp.effective_direction(0), Direction::Inactive);
    assert_eq!(sdp.recordable_labels(), vec!["1", "2"]);
    assert!(o.answer.streams.iter().all(|s| s.accepted()));
    assert!(
        o.answer
            .streams
            .iter()
            .all(|s| s.direction == Direction::Inactive)
    );
    check_map(
        &o.map,
        &[
            (
                "1",
                Some("cA=="),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "2",
                Some("cQ=="),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
        ],
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=label:1",
            "a=inactive",
            "m=audio 40002 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=label:2",
            "a=inactive",
        ],
    );
}

#[test]
fn two_sessions_four_audio_streams() {
    let o = run(
        "two-sessions-four-audio.sip",
        vec![pattern("*@agents.example.com")],
    );
    let md = o.body.metadata.as_ref().unwrap();
    assert_eq!(md.sessions.len(), 2);
    assert_eq!(md.session_assocs.len(), 4);
    // The agent sends on two labels (one per session); the consulted party
    // is a party the agent added: agent side.
    check_map(
        &o.map,
        &[
            (
                "1",
                Some("Y3VzdA=="),
                Side::EndUser,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "2",
                Some("YWdlbnQ="),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "3",
                Some("YWdlbnQ="),
                Side::Agent,
                DecidedBy::AgentAddressPattern,
            ),
            (
                "4",
                Some("Y29uc3VsdA=="),
                Side::Agent,
                DecidedBy::AddedParty,
            ),
        ],
    );
    // Static payload type 0 without rtpmap is PCMU.
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=label:1",
            "a=recvonly",
            "m=audio 40002 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=label:2",
            "a=recvonly",
            "m=audio 40004 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=label:3",
            "a=recvonly",
            "m=audio 40006 RTP/AVP 0",
            "a=rtpmap:0 PCMU/8000",
            "a=label:4",
            "a=recvonly",
        ],
    );
}

#[test]
fn sdp_only_without_metadata_declines_g729_only_stream() {
    let o = run("sdp-only-no-metadata.sip", vec![]);
    assert!(o.body.metadata.is_none());
    assert!(o.events.is_empty());
    assert_eq!(
        o.body.sdp.as_ref().unwrap().recordable_labels(),
        vec!["inbound"]
    );
    check_map(
        &o.map,
        &[("inbound", None, Side::EndUser, DecidedBy::LabelOrder)],
    );
    check_answer(
        &o.answer,
        &[
            "m=audio 40000 RTP/AVP 0 8",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=label:inbound",
            "a=recvonly",
            "m=audio 0 RTP/AVP 18",
            "a=label:outbound",
        ],
    );
}

#[test]
fn metadata_arriving_later_keeps_the_channels() {
    // First decided by label order without metadata, then the metadata says
    // who sends on each label: the participants inherit the decisions.
    let msg = Message::load("oracle-acme-rfc7865.sip");
    let body = parse_body(msg.values("Content-Type", "c")[0], &msg.body).unwrap();
    let labels = body.sdp.unwrap().recordable_labels();
    let mut resolver = RoleResolver::new(vec![]);
    let before = resolver.resolve(&labels, None);
    let mut state = MetadataState::new();
    state.apply(&body.metadata.unwrap());
    let after = resolver.resolve(&labels, Some(&state));
    check_map(
        &after,
        &[
            (
                "1",
                Some(ORACLE_CUSTOMER),
                Side::EndUser,
                DecidedBy::LabelOrder,
            ),
            ("2", Some(ORACLE_AGENT), Side::Agent, DecidedBy::LabelOrder),
        ],
    );
    assert_eq!(before.side("1"), after.side("1"));
}

#[test]
fn re_invite_pausing_with_inactive_keeps_ports_and_sides() {
    // A recording pause: the same offer with a=inactive on both streams.
    let mut o = run(
        "oracle-acme-rfc7865.sip",
        vec![pattern("*@agents.example.com")],
    );
    let msg = Message::load("oracle-acme-rfc7865.sip");
    let paused: Vec<u8> = String::from_utf8(msg.body.clone())
        .unwrap()
        .replace("a=sendonly", "a=inactive")
        .into_bytes();
    let body = parse_body(msg.values("Content-Type", "c")[0], &paused).unwrap();
    let offer = body.sdp.unwrap();
    assert!(o.state.apply(&body.metadata.unwrap()).is_empty());
    let params = AnswerParams {
        address: "203.0.113.5".parse().unwrap(),
        session_id: 7,
        session_version: 2,
    };
    let answer = build_answer(&offer, &[Some(40000), Some(40002)], &params).unwrap();
    assert_eq!(
        answer
            .streams
            .iter()
            .map(|s| (s.port, s.direction))
            .collect::<Vec<_>>(),
        vec![(40000, Direction::Inactive), (40002, Direction::Inactive)]
    );
    assert!(
        answer
            .sdp
            .starts_with("v=0\r\no=callrec 7 2 IN IP4 203.0.113.5\r\n")
    );
    let map = o
        .resolver
        .resolve(&offer.recordable_labels(), Some(&o.state));
    assert_eq!(map, o.map);
}
