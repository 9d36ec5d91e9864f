//! The recording server driven by SIPp as the recording client (SRC), with
//! real RTP (espeak-ng speech and a tone, played from a capture), checked by
//! measuring the recording.
//!
//! Needs `sipp` (Debian sip-tester), `espeak-ng` and `sox` on the PATH.

mod common;

use std::time::Duration;

use common::*;

const AGENT_TONE_HZ: f64 = 1000.0;
/// Where the agent's tone starts in its stream, in samples.
const TONE_START: usize = 4000;

/// End user speech on label 2, agent tone on label 1; returns the capture
/// path, the speech (8 kHz linear) and the audio length in seconds.
fn two_party_capture(dir: &std::path::Path, secs: f64) -> (std::path::PathBuf, Vec<i16>) {
    let mut speech = speech(
        dir,
        "Hello, I am calling about my invoice, the number is four two seven one.",
        "en-us",
    );
    speech.resize((secs * 8000.0) as usize, 0);
    // The agent is silent for the first 0.5 s, then the tone starts: its
    // onset marks the right channel's timing.
    let mut agent = vec![0i16; TONE_START];
    agent.extend(tone(AGENT_TONE_HZ, secs - 0.5, 0.25));
    let pcap = dir.join("call.pcap");
    write_pcap(
        &pcap,
        &[
            // label 1 (first m-line, answered port P): the agent
            PcapStream {
                dport: 6000,
                ssrc: 0x1111,
                samples: agent,
            },
            // label 2 (second m-line, P + 2): the end user
            PcapStream {
                dport: 6002,
                ssrc: 0x2222,
                samples: speech.clone(),
            },
        ],
    );
    (pcap, speech)
}

#[test]
fn siprec_call_records_end_user_left_and_agent_right() {
    let server = Server::start(|c| {
        c.recording.role_rules = vec![
            callrec_server::config::RoleRuleConfig::AgentAddressPattern {
                pattern: "*@agents.example.com".into(),
            },
        ];
    });
    let dir = tempfile::tempdir().unwrap();
    let (pcap, speech) = two_party_capture(dir.path(), 4.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 4500));
    body.push_str(&hang_up(2));
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let rec = server.next_recording(20);
    let md = &rec.metadata;
    assert_eq!(md["format"], "wav");
    assert_eq!(md["end_reason"], "bye_from_recording_client");
    // Channel map: label 2 (the customer) is channel 1, decided by the
    // metadata's participants and the agent address rule, not by order.
    let map = md["channel_map"].as_array().unwrap();
    let by_label = |l: &str| map.iter().find(|c| c["label"] == l).unwrap().clone();
    assert_eq!(by_label("2")["channel"], 1);
    assert_eq!(by_label("2")["side"], "end_user");
    assert_eq!(by_label("1")["channel"], 2);
    assert_eq!(by_label("1")["aor"], "sip:1001@agents.example.com");
    assert_eq!(by_label("1")["decided_by"], "agent_address_pattern");
    let participants = md["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 2);
    assert!(participants.iter().any(|p| p["role"] == "agent"));
    assert_eq!(md["sha256"].as_str().unwrap().len(), 64);
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&rec.metadata_path).unwrap()).unwrap();
    assert_eq!(&on_disk, md);
    assert!(rec.audio_path.starts_with(server.spool()));

    let (left, right) = read_stereo_wav(&rec.audio_path);
    let secs = left.len() as f64 / 8000.0;
    assert!((3.5..5.0).contains(&secs), "duration {secs} s");
    // Right: the agent's tone, loud; left: none of it (no crosstalk).
    let right_tone = tone_db(&right, AGENT_TONE_HZ);
    let left_tone = tone_db(&left, AGENT_TONE_HZ);
    assert!(
        right_tone > -20.0,
        "agent tone on the right: {right_tone:.1} dB"
    );
    assert!(
        right_tone - left_tone > 40.0,
        "crosstalk: tone {right_tone:.1} dB right, {left_tone:.1} dB left"
    );
    // Left: the end user's speech. Every 100 ms probe of what was sent
    // that has speech in it is found in the left channel (r > 0.9), at an
    // offset that matches the agent's tone onset on the right within 20 ms:
    // the channels are aligned all along, not only on average.
    // The tone's first sample above 2000 is its second sample.
    let tone_onset = right
        .iter()
        .position(|s| s.abs() > 2000)
        .expect("tone onset") as i64;
    let tone_shift = tone_onset - 1 - TONE_START as i64;
    let (mut probes, mut found) = (0, 0);
    for off in (800..speech.len() - 1600).step_by(1600) {
        let probe = &speech[off..off + 800];
        if level_db(probe) < -35.0 {
            continue;
        }
        probes += 1;
        let (lag, r) = best_match_near(&left, probe, off, 4000);
        if r > 0.9 {
            found += 1;
            let shift = lag as i64 - off as i64;
            assert!(
                (shift - tone_shift).abs() <= 160,
                "channels misaligned at {off}: speech shifted {shift} samples, tone {tone_shift}"
            );
        }
    }
    assert!(
        probes >= 10,
        "too little speech in the capture: {probes} probes"
    );
    assert!(
        found * 10 >= probes * 8,
        "left channel is not the end user's speech: {found} of {probes} probes found"
    );
    let (_, corr_right) = best_match(&right, &speech[4000..12000], 16000);
    assert!(
        corr_right < 0.3,
        "speech leaks into the right: r = {corr_right:.3}"
    );
    let m = server.metrics();
    assert_eq!(
        metric(&m, "callrec_recordings_total{status=\"finished\"}"),
        1
    );
    assert!(metric(&m, "callrec_rtp_packets_total{result=\"received\"}") >= 390);
}

#[test]
fn reinvite_inactive_pauses_and_sendonly_resumes() {
    let server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 5.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 1000));
    // Pause: every stream inactive.
    body.push_str(&send(
        &invite(2, "[last_To:]", "inactive", false, "[branch]"),
        true,
    ));
    body.push_str("  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\"/>\n");
    body.push_str(&send(&in_dialog("ACK", 2), false));
    body.push_str("  <pause milliseconds=\"2000\"/>\n");
    // Resume.
    body.push_str(&send(
        &invite(3, "[last_To:]", "sendonly", false, "[branch]"),
        true,
    ));
    body.push_str("  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\"/>\n");
    body.push_str(&send(&in_dialog("ACK", 3), false));
    body.push_str("  <pause milliseconds=\"2500\"/>\n");
    body.push_str(&hang_up(4));
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let rec = server.next_recording(20);
    assert_one_skipped_pause(&rec, 5.0);
}

/// A recording of `sent_secs` of the two-party capture with one pause of
/// about 2 s in skip mode: one pause span of 1.5-2.8 s, left out of the
/// file, and the agent's tone on both sides of the pause point. Returns
/// the file's channels (left, right).
fn assert_one_skipped_pause(
    rec: &callrec_server::RecordingFinished,
    sent_secs: f64,
) -> (Vec<i16>, Vec<i16>) {
    let spans = rec.metadata["pause_spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let paused_ms = spans[0]["paused_ms"].as_u64().unwrap();
    assert!((1500..=2800).contains(&paused_ms), "paused {paused_ms} ms");
    // Skip mode: the paused span is left out of the file.
    let (left, right) = read_stereo_wav(&rec.audio_path);
    let secs = left.len() as f64 / 8000.0;
    let expected = sent_secs - paused_ms as f64 / 1000.0;
    assert!(
        (secs - expected).abs() < 0.5,
        "file {secs:.2} s, expected about {expected:.2} s"
    );
    // Audio on both sides of the pause point.
    let cut = spans[0]["start_ms"].as_u64().unwrap() as usize * 8;
    assert!(tone_db(&right[..cut], AGENT_TONE_HZ) > -20.0);
    assert!(tone_db(&right[cut..], AGENT_TONE_HZ) > -20.0);
    (left, right)
}

/// An UPDATE (no ACK follows): `invite_with`'s request as UPDATE.
fn update(cseq: u32, direction: &str) -> String {
    invite(cseq, "[last_To:]", direction, false, "[branch]")
        .replace("INVITE sip:", "UPDATE sip:")
        .replace(
            &format!("CSeq: {cseq} INVITE"),
            &format!("CSeq: {cseq} UPDATE"),
        )
        .replace("Require: siprec\n", "")
}

#[test]
fn session_timers_are_tolerated_and_update_refreshes_pauses_and_resumes() {
    let server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 5.0);
    // The SBC asks for a session timer (RFC 4028), refreshed by itself.
    let timer = "Supported: timer\nSession-Expires: 90;refresher=uac\nMin-SE: 90\n";
    let mut body = establish("sendonly").replacen(
        "Require: siprec\n",
        &format!("Require: siprec\n{timer}"),
        1,
    );
    body.push_str(&play_and_wait(&pcap, 1000));
    // A session refresh: UPDATE without a body, answered 200, nothing changes.
    let refresh = in_dialog("UPDATE", 2).replace(
        "Content-Length: 0",
        "Session-Expires: 90;refresher=uac\nContent-Length: 0",
    );
    body.push_str(&send(&refresh, true));
    body.push_str("  <recv response=\"200\"/>\n");
    // Pause by UPDATE: every stream inactive.
    body.push_str(&send(&update(3, "inactive"), true));
    body.push_str("  <recv response=\"200\"/>\n  <pause milliseconds=\"2000\"/>\n");
    // Resume by UPDATE.
    body.push_str(&send(&update(4, "sendonly"), true));
    body.push_str("  <recv response=\"200\"/>\n  <pause milliseconds=\"2500\"/>\n");
    body.push_str(&hang_up(5));
    assert!(body.contains("Session-Expires: 90;refresher=uac\nMin-SE"));
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let rec = server.next_recording(20);
    assert_eq!(rec.metadata["end_reason"], "bye_from_recording_client");
    // One pause only: the refresh paused nothing.
    let (left, right) = assert_one_skipped_pause(&rec, 5.0);
    let (r, l) = (
        tone_db(&right, AGENT_TONE_HZ),
        tone_db(&left, AGENT_TONE_HZ),
    );
    assert!(r - l > 40.0, "crosstalk: {r:.1} dB right, {l:.1} dB left");
}

#[test]
fn cancel_before_answer_records_nothing() {
    let server = Server::start(|c| c.sip.answer_delay_ms = 3000);
    let dir = tempfile::tempdir().unwrap();
    let branch = "z9hG4bK-callrec-cancel-[call_number]";
    let mut body = send(
        &invite(
            1,
            "To: <sip:srs@[remote_ip]:[remote_port]>",
            "sendonly",
            true,
            branch,
        ),
        true,
    );
    body.push_str("  <recv response=\"100\"/>\n");
    body.push_str(&send(
        &format!(
            "CANCEL sip:srs@[remote_ip]:[remote_port] SIP/2.0\n\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}\n\
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
To: <sip:srs@[remote_ip]:[remote_port]>\n\
Call-ID: [call_id]\n\
CSeq: 1 CANCEL\n\
Max-Forwards: 70\n\
Content-Length: 0\n"
        ),
        true,
    ));
    body.push_str("  <recv response=\"200\"/>\n  <recv response=\"487\"/>\n");
    body.push_str(&ack_final_failure(branch));
    body.push_str("  <pause milliseconds=\"3500\"/>\n");
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");
    assert!(
        server.try_recording(1).is_none(),
        "a cancelled session was recorded"
    );
    let entries: Vec<_> = std::fs::read_dir(server.spool()).unwrap().collect();
    assert!(entries.is_empty(), "spool not empty: {entries:?}");
    let m = server.metrics();
    assert_eq!(
        metric(&m, "callrec_recordings_total{status=\"cancelled\"}"),
        1
    );
    assert_eq!(metric(&m, "callrec_calls_total"), 0);
}

/// An OPTIONS ping, as scenario text.
fn options_ping() -> String {
    let mut s = send(
        "OPTIONS sip:srs@[remote_ip]:[remote_port] SIP/2.0\n\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n\
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]\n\
To: <sip:srs@[remote_ip]:[remote_port]>\n\
Call-ID: [call_id]\n\
CSeq: 2 OPTIONS\n\
Max-Forwards: 70\n\
Content-Length: 0\n",
        true,
    );
    s.push_str("  <recv response=\"200\"/>\n");
    s
}

#[test]
fn malformed_invite_gets_400_with_the_reason_and_server_keeps_serving() {
    let server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    // A multipart INVITE whose boundary never appears, then OPTIONS.
    let mut body = send(
        "INVITE sip:srs@[remote_ip]:[remote_port] SIP/2.0\n\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n\
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
To: <sip:srs@[remote_ip]:[remote_port]>\n\
Call-ID: [call_id]\n\
CSeq: 1 INVITE\n\
Contact: <sip:src@[local_ip]:[local_port]>;+sip.src\n\
Require: siprec\n\
Max-Forwards: 70\n\
Content-Type: multipart/mixed;boundary=nowhere\n\
Content-Length: [len]\n\
\n\
v=0\n\
this is not what the content type says\n",
        true,
    );
    body.push_str("  <recv response=\"100\" optional=\"true\"/>\n");
    body.push_str(
        "  <recv response=\"400\">\n    <action><ereg regexp=\"SIP/2.0 400 malformed body\" search_in=\"msg\" check_it=\"true\" assign_to=\"r\"/></action>\n  </recv>\n",
    );
    body.push_str(&ack_final_failure("[branch-3]"));
    body.push_str(&options_ping());
    body.push_str("  <Reference variables=\"r\"/>\n");
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");
    let m = server.metrics();
    assert_eq!(
        metric(&m, "callrec_sessions_refused_total{status=\"400\"}"),
        1
    );
    assert_eq!(metric(&m, "callrec_options_total"), 1);
}

/// Sends one datagram to the server and returns its answer, if any came
/// within `wait`.
fn udp_exchange(
    socket: &std::net::UdpSocket,
    to: std::net::SocketAddr,
    datagram: &[u8],
    wait: Duration,
) -> Option<String> {
    socket.send_to(datagram, to).unwrap();
    socket.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

#[test]
fn malformed_sip_datagrams_get_400_with_the_reason_or_are_dropped_and_the_server_keeps_serving() {
    let server = Server::start(|_| {});
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = socket.local_addr().unwrap();
    // `n` tells the requests apart (branch and Call-ID).
    let request = |n: u32, start: &str, cseq: &str, extra: &str| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{n}\r\n\
From: <sip:src@{me}>;tag=src1\r\nTo: <sip:srs@{srs}>\r\nCall-ID: bad-{n}@test\r\n\
CSeq: {cseq}\r\n{extra}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            srs = server.sip,
        )
    };
    let ask = |datagram: &[u8], wait| udp_exchange(&socket, server.sip, datagram, wait);
    let invite_line = format!("INVITE sip:srs@{} SIP/2.0", server.sip);
    // 1. An INVITE whose CSeq is not a number: 400, the culprit named, the
    //    dialog-forming headers copied back.
    let bad_cseq = request(1, &invite_line, "one INVITE", "Require: siprec\r\n");
    let answer = ask(bad_cseq.as_bytes(), Duration::from_secs(5)).expect("a 400 for the bad CSeq");
    let first = answer.lines().next().unwrap();
    assert_eq!(
        first,
        "SIP/2.0 400 Malformed SIP: CSeq 'one INVITE' is not 'number METHOD' (number below 2^31)"
    );
    assert!(answer.contains("Call-ID: bad-1@test\r\n"), "{answer}");
    assert!(answer.contains("CSeq: one INVITE\r\n"), "{answer}");
    assert!(
        answer.contains(&format!("Via: SIP/2.0/UDP {me};branch=z9hG4bK-1\r\n")),
        "{answer}"
    );
    // 2. A header line without a colon.
    let no_colon = request(2, &invite_line, "2 INVITE", "Require siprec\r\n");
    let answer = ask(no_colon.as_bytes(), Duration::from_secs(5))
        .expect("a 400 for the header without a colon");
    assert!(
        answer.starts_with(
            "SIP/2.0 400 Malformed SIP: header line 7 ('Require siprec') is not 'Name: value'\r\n"
        ),
        "{answer}"
    );
    // 3. Binary garbage (a stray RTP packet on the SIP port): no answer.
    let garbage = [
        0x80u8, 0x00, 0x00, 0x01, 0, 0, 0, 160, 0x11, 0x11, 0x11, 0x11, 0xff, 0xfe,
    ];
    assert_eq!(ask(&garbage, Duration::from_millis(500)), None);
    // 4. The server still serves: a good OPTIONS is answered 200.
    let options = request(
        3,
        &format!("OPTIONS sip:srs@{} SIP/2.0", server.sip),
        "3 OPTIONS",
        "",
    );
    let answer = ask(options.as_bytes(), Duration::from_secs(5)).expect("OPTIONS answered");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let m = server.metrics();
    assert_eq!(metric(&m, "callrec_sip_malformed_total"), 3);
    assert_eq!(metric(&m, "callrec_options_total"), 1);
    // A malformed datagram never becomes a session.
    assert_eq!(metric(&m, "callrec_calls_total"), 0);
}

#[test]
fn over_tcp_a_malformed_message_closes_its_connection_and_others_are_served() {
    use std::io::{Read, Write};
    let server = Server::start(|_| {});
    let options = |me, n| options_request("TCP", me, server.sip, &format!("tcp-{n}"), n);
    // A message whose Content-Length is not a number: the stream cannot be
    // framed any more, and rsipstack closes the connection.
    let mut bad = std::net::TcpStream::connect(server.sip).unwrap();
    let me = bad.local_addr().unwrap();
    let msg = options(me, 1).replace("Content-Length: 0", "Content-Length: zero");
    bad.write_all(msg.as_bytes()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let closed = bad.read_to_end(&mut rest);
    assert!(closed.is_ok(), "the connection was not closed: {closed:?}");
    assert!(
        rest.is_empty(),
        "unexpected answer: {}",
        String::from_utf8_lossy(&rest)
    );
    // A new connection is served.
    let mut good = std::net::TcpStream::connect(server.sip).unwrap();
    let me = good.local_addr().unwrap();
    let answer = ask_tcp(&mut good, &options(me, 2));
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
}

#[test]
fn sources_outside_the_allowed_networks_get_403() {
    let server = Server::start(|c| {
        c.sip.allowed_networks = vec!["10.0.0.0/8".parse().unwrap()];
    });
    let dir = tempfile::tempdir().unwrap();
    let body = invite_refused(403);
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");
    assert!(server.try_recording(1).is_none());
    assert_eq!(
        metric(
            &server.metrics(),
            "callrec_sessions_refused_total{status=\"403\"}"
        ),
        1
    );
}

#[test]
fn tcp_transport_mp3_file_and_live_calls_endpoint() {
    let server = Server::start(|c| {
        c.recording.format = Some(callrec_server::config::FormatSetting::Mp3);
    });
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 3.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 3500));
    body.push_str(&hang_up(2));
    let sip = server.sip;
    let http = server.http;
    let sipp = std::thread::spawn(move || {
        let d = dir;
        let r = run_sipp(d.path(), &scenario(&body), sip, "t1");
        drop(d);
        r
    });
    // While the call runs, it is listed (a loaded test machine may take
    // seconds to start SIPp and connect over TCP).
    let mut listed = String::new();
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(100));
        let (status, body) = http_get(http, "/api/v1/calls");
        assert_eq!(status, 200);
        if body.contains("\"label\":\"2\"") {
            listed = body;
            break;
        }
    }
    assert!(
        listed.contains("\"side\":\"end_user\""),
        "live calls: {listed}"
    );
    let (ok, log) = sipp.join().unwrap();
    assert!(ok, "sipp over tcp failed:\n{log}");
    let rec = server.next_recording(20);
    assert_eq!(rec.metadata["format"], "mp3");
    assert!(rec.audio_path.extension().is_some_and(|e| e == "mp3"));
    // The default format, decoded by a third-party decoder: the agent's
    // tone on the right only, the end user's speech on the left.
    let (left, right) = decode_with_ffmpeg(&rec.audio_path);
    let secs = left.len() as f64 / 8000.0;
    let expected = rec.metadata["duration_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        (secs - expected).abs() < 0.08,
        "decoded {secs:.3} s, metadata says {expected:.3} s"
    );
    let (tr, tl) = (
        tone_db(&right, AGENT_TONE_HZ),
        tone_db(&left, AGENT_TONE_HZ),
    );
    assert!(
        tr > -20.0 && tr - tl > 30.0,
        "tone {tr:.1} dB right, {tl:.1} dB left"
    );
    assert!(level_db(&left) > -40.0, "left is silent");
    assert_eq!(http_get(http, "/api/v1/calls").1.trim(), "[]");
}

#[test]
fn agent_leaving_stops_the_recording_by_default() {
    let server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 4.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 1500));
    body.push_str(&reinvite_metadata(2, AGENT_LEAVES));
    body.push_str("  <pause milliseconds=\"3000\"/>\n");
    body.push_str(&hang_up(3));
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let rec = server.next_recording(20);
    let md = &rec.metadata;
    assert_eq!(md["recording_stopped"], true, "{md:#}");
    let decisions = md["policy_decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(decisions[0]["event"]["event"], "agent_left");
    assert_eq!(decisions[0]["action"], "stop");
    // Nothing after the agent left: the file ends about 1.5 s in (plus the
    // jitter buffer), not at 4 s.
    let (left, right) = read_stereo_wav(&rec.audio_path);
    let secs = left.len() as f64 / 8000.0;
    assert!((1.0..2.6).contains(&secs), "file is {secs:.2} s long");
    assert!(tone_db(&right, AGENT_TONE_HZ) > -20.0);
    let agent = md["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["aor"] == "sip:1001@agents.example.com")
        .unwrap()
        .clone();
    assert_eq!(agent["active"], false);
    assert!(agent["left_at_ms"].as_u64().is_some());
    assert_eq!(
        metric(
            &server.metrics(),
            "callrec_recordings_total{status=\"stopped_agent_left\"}"
        ),
        1
    );
}

#[test]
fn agent_leaving_a_third_party_call_continues_when_the_settings_say_so() {
    let mut settings = callrec_policy::Settings::default();
    settings.call_details.ask_user_permission = true;
    settings.call_details.leave_ongoing_calls_with_third_parties = true;
    settings
        .call_recording
        .continue_third_party_after_agent_leaves = true;
    let server = Server::start_with_settings(|_| {}, settings.validate().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 4.0);
    let body = third_party_joins_then_agent_leaves(&pcap, 3000);
    let (ok, log) = run_sipp(dir.path(), &scenario(&body), server.sip, "u1");
    assert!(ok, "sipp failed:\n{log}");

    let rec = server.next_recording(20);
    let md = &rec.metadata;
    assert_eq!(md["recording_stopped"], false, "{md:#}");
    let decisions = md["policy_decisions"].as_array().unwrap();
    let events: Vec<_> = decisions
        .iter()
        .map(|d| d["event"]["event"].clone())
        .collect();
    assert_eq!(events, ["third_party_added", "agent_left"], "{decisions:?}");
    assert_eq!(decisions[1]["action"], "continue", "{decisions:?}");
    let (left, _) = read_stereo_wav(&rec.audio_path);
    let secs = left.len() as f64 / 8000.0;
    assert!(
        secs > 3.5,
        "the recording went on after the agent left: {secs:.2} s"
    );
}

#[test]
fn shutdown_ends_live_sessions_with_bye_and_finalizes_their_files() {
    let mut server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 8.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 100));
    // The server hangs up: SIPp answers its BYE.
    body.push_str("  <recv request=\"BYE\"/>\n");
    body.push_str(&send(
        "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0\n",
        false,
    ));
    let sip = server.sip;
    let http = server.http;
    let sipp = std::thread::spawn(move || {
        let r = run_sipp(dir.path(), &scenario(&body), sip, "u1");
        drop(dir);
        r
    });
    // Wait until the call is recording, and some audio is in.
    let mut live = false;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        if http_get(http, "/api/v1/calls").1.contains("\"label\"") {
            live = true;
            break;
        }
    }
    assert!(live, "the call never became live");
    std::thread::sleep(Duration::from_millis(1500));
    server.stop();
    let (ok, log) = sipp.join().unwrap();
    assert!(ok, "sipp did not get a BYE from the server:\n{log}");
    // The file and its metadata are complete in the spool.
    let entries: Vec<_> = std::fs::read_dir(server.spool())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let id = entries[0].file_name().unwrap().to_str().unwrap().to_owned();
    let md: serde_json::Value =
        serde_json::from_slice(&std::fs::read(entries[0].join(format!("{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(md["end_reason"], "shutdown");
    let (left, right) = read_stereo_wav(&entries[0].join(format!("{id}.wav")));
    assert!(left.len() > 8000, "{} samples", left.len());
    assert!(tone_db(&right, AGENT_TONE_HZ) > -20.0);
}

#[test]
fn fifty_calls_at_once_are_all_recorded() {
    const CALLS: u32 = 50;
    // 50 calls x 2 streams x 2 ports fit the test range of 400 ports.
    let server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let (pcap, _) = two_party_capture(dir.path(), 2.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 2500));
    body.push_str(&hang_up(2));
    let (ok, log) = run_sipp_calls(dir.path(), &scenario(&body), server.sip, "u1", CALLS);
    assert!(ok, "sipp failed:\n{log}");
    let mut ids = std::collections::HashSet::new();
    for _ in 0..CALLS {
        let rec = server.next_recording(30);
        let (left, right) = read_stereo_wav(&rec.audio_path);
        let tone_right = tone_db(&right, AGENT_TONE_HZ);
        let tone_left = tone_db(&left, AGENT_TONE_HZ);
        assert!(level_db(&left) > -40.0, "{}: left is silent", rec.call_id);
        // (Loose level bounds: 50 SIPp senders on a shared 2-core machine
        // lose some packets before they reach callrec.)
        assert!(
            tone_right > -30.0 && tone_right - tone_left > 30.0,
            "{}: tone {tone_right:.1} dB right, {tone_left:.1} dB left",
            rec.call_id
        );
        ids.insert(rec.call_id);
    }
    assert_eq!(ids.len(), CALLS as usize);
    // Nothing refused or taken for a foreign sender: every stream latched
    // on its own SIPp stream.
    let m = server.metrics();
    for result in ["refused", "foreign_sender"] {
        let series = format!("callrec_rtp_packets_total{{result=\"{result}\"}}");
        assert_eq!(metric(&m, &series), 0, "{series}");
    }
}

/// Partial metadata: a third party joins on a stream of its own, label 3.
const THIRD_PARTY_STREAM: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>partial</datamode>
  <participant participant_id="dGhpcmQtcGFydHk=">
    <nameID aor="tel:+15550100999"><name>Third party</name></nameID>
  </participant>
  <participantsessionassoc participant_id="dGhpcmQtcGFydHk=" session_id="c2Vzc2lvbi0x">
    <associate-time>2026-11-24T12:00:02Z</associate-time>
  </participantsessionassoc>
  <stream stream_id="c3RyZWFtLTM=" session_id="c2Vzc2lvbi0x"><label>3</label></stream>
  <participantstreamassoc participant_id="dGhpcmQtcGFydHk=">
    <send>c3RyZWFtLTM=</send>
  </participantstreamassoc>
</recording>"#;

/// One RTP packet of PCMU.
fn pcmu_rtp(seq: u16, ts: u32, ssrc: u32, samples: &[i16]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(samples.iter().map(|&s| ulaw(s)));
    p
}

#[test]
fn a_stream_added_by_reinvite_is_recorded_on_its_participants_side() {
    let server = Server::start(|_| {});
    let dir = tempfile::tempdir().unwrap();
    // Agent 1 kHz on label 1, end user 400 Hz on label 2, 6 s.
    let pcap = dir.path().join("call.pcap");
    two_tone_capture(&pcap, 6.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 1500));
    // The re-INVITE adds m-line 3 (label 3) with the third party's metadata.
    let third_mline = "a=label:2\na=sendonly\nm=audio [media_port+4] RTP/AVP 0\na=rtpmap:0 PCMU/8000\na=label:3\na=sendonly\n";
    let reinvite = invite_with(
        2,
        "[last_To:]",
        "sendonly",
        Some(THIRD_PARTY_STREAM),
        "[branch]",
    )
    .replace("a=label:2\na=sendonly\n", third_mline);
    assert!(reinvite.contains("a=label:3"));
    body.push_str(&send(&reinvite, true));
    body.push_str("  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\"/>\n");
    body.push_str(&send(&in_dialog("ACK", 2), false));
    body.push_str("  <pause milliseconds=\"4000\"/>\n");
    body.push_str(&hang_up(3));
    let sip = server.sip;
    let sdir = dir.path().to_owned();
    let sipp = std::thread::spawn(move || run_sipp(&sdir, &scenario(&body), sip, "u1"));

    // The new stream's port, from the live view, once it is answered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let port = loop {
        let (_, text) = http_get(server.http, "/api/v1/calls");
        let calls: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let third = calls
            .as_array()
            .and_then(|c| c.first())
            .and_then(|c| c["streams"].as_array())
            .and_then(|s| s.iter().find(|s| s["label"] == "3").cloned());
        if let Some(s) = third {
            assert_eq!(s["side"], "agent", "{s}");
            break s["port"].as_u64().unwrap() as u16;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream 3 never answered: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    // The third party speaks: 700 Hz, 2 s, real RTP from a socket of ours.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let third = tone(700.0, 2.0, 0.25);
    let t0 = std::time::Instant::now();
    for (k, chunk) in third.chunks(160).enumerate() {
        let pkt = pcmu_rtp(k as u16, (k * 160) as u32, 0x3333, chunk);
        sock.send_to(&pkt, ("127.0.0.1", port)).unwrap();
        let next = t0 + std::time::Duration::from_millis(20 * (k as u64 + 1));
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    let (ok, log) = sipp.join().unwrap();
    assert!(ok, "sipp failed:\n{log}");

    let rec = server.next_recording(20);
    let md = &rec.metadata;
    let s3 = md["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == "3")
        .unwrap_or_else(|| panic!("no stream 3 in {md:#}"));
    assert!(s3["packets_received"].as_u64().unwrap() >= 95, "{s3}");
    let (left, right) = read_stereo_wav(&rec.audio_path);
    // The third party on the agent's channel, not on the end user's.
    let on_right = tone_db(&right, 700.0);
    let on_left = tone_db(&left, 700.0);
    assert!(
        on_right > -30.0,
        "third party on the right at {on_right:.1} dB"
    );
    assert!(
        on_left < -50.0,
        "third party leaks to the left at {on_left:.1} dB"
    );
    // The first two streams are still where they were.
    assert!(tone_db(&left, 400.0) > -20.0);
    assert!(tone_db(&right, 1000.0) > -20.0);
}
