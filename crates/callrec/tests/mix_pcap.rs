//! `callrec mix --pcap`: RTP streams out of a capture, with roles from the
//! options or from the capture's SIP, measured in the output with ffmpeg.
//!
//! Inputs: SIPp's own g711a.pcap (a real G.711 A-law capture shipped with
//! sip-tester), and captures this test writes from sox-made A-law audio,
//! with a SIP INVITE and 200 OK so that the roles come from signalling.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

const SIPP_CAPTURE: &str = "/usr/share/sip-tester/g711a.pcap";

fn sipp_capture() -> &'static Path {
    let p = Path::new(SIPP_CAPTURE);
    assert!(
        p.exists(),
        "{SIPP_CAPTURE} is missing: run scripts/install-test-deps.sh (Debian package sip-tester)"
    );
    p
}

#[test]
fn sipp_capture_is_listed_and_mixed_on_the_chosen_side() {
    let dir = tempfile::tempdir().unwrap();
    let list = callrec(&["mix", "--pcap", SIPP_CAPTURE, "--list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("1 RTP stream"), "{text}");
    assert!(
        text.contains("from 10.1.3.143:5000 to 10.1.6.18:2006"),
        "{text}"
    );
    assert!(text.contains("236 packets"), "{text}");

    let out = dir.path().join("call.wav");
    let pcm = mix_ok(
        &[
            "mix",
            "--pcap",
            p(sipp_capture()),
            "--end-user",
            "10.1.3.143:5000",
        ],
        &out,
    );
    // 236 packets of 30 ms: 7.08 s of audio.
    let frames = pcm.len() / 2;
    assert!(
        (frames as i64 - 56_640).abs() <= 16,
        "{frames} frames, want 7.08 s"
    );
    let (l, r) = (rms_dbfs(&channel(&pcm, 0)), rms_dbfs(&channel(&pcm, 1)));
    assert!(l > -45.0, "the captured audio is on the left ({l:.1} dBFS)");
    assert!(
        r <= -120.0,
        "nothing was sent for the agent: the right is silent ({r:.1} dBFS)"
    );
}

#[test]
fn a_capture_without_sip_needs_the_roles_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.mp3");
    let o = callrec(&["mix", "--pcap", p(sipp_capture()), "-o", p(&out)]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--end-user") && err.contains("no SIP INVITE"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A-law bytes of a sox tone.
fn alaw_tone(dir: &Path, freq: u32, seconds: f64) -> Vec<u8> {
    let wav = sox_tone(dir, &format!("t{freq}.wav"), freq, seconds, 8_000, 1);
    let raw = dir.join(format!("t{freq}.al"));
    tool("sox", &[p(&wav), "-t", "al", p(&raw)]);
    std::fs::read(raw).unwrap()
}

struct Leg {
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    ssrc: u32,
    payload_type: u8,
    audio: Vec<u8>,
    /// When the first packet is captured.
    start: Duration,
}

fn rtp(seq: u16, ts: u32, ssrc: u32, pt: u8, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    b.extend(seq.to_be_bytes());
    b.extend(ts.to_be_bytes());
    b.extend(ssrc.to_be_bytes());
    b.extend(payload);
    b
}

fn udp(src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).unwrap();
    out
}

fn sdp(ip: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
}

fn sip(first_line: &str, cseq: &str, body: &str) -> Vec<u8> {
    format!(
        "{first_line}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nCall-ID: c1@test\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Writes a capture: optional SIP offer/answer, then the legs' RTP (20 ms
/// packets), with DTMF events mixed into the first leg, ordered by time.
fn write_capture(path: &Path, with_sip: bool, legs: &[Leg]) {
    let mut packets: Vec<(Duration, Vec<u8>)> = Vec::new();
    if with_sip {
        let invite = sip(
            "INVITE sip:agent@10.0.0.2 SIP/2.0",
            "1 INVITE",
            &sdp("10.0.0.1", 4000),
        );
        let ok = sip("SIP/2.0 200 OK", "1 INVITE", &sdp("10.0.0.2", 5000));
        packets.push((
            Duration::ZERO,
            udp(([10, 0, 0, 1], 5060), ([10, 0, 0, 2], 5060), &invite),
        ));
        packets.push((
            Duration::from_millis(5),
            udp(([10, 0, 0, 2], 5060), ([10, 0, 0, 1], 5060), &ok),
        ));
    }
    for (n, leg) in legs.iter().enumerate() {
        for (i, chunk) in leg.audio.chunks(160).enumerate() {
            let at = leg.start + Duration::from_millis(20 * i as u64);
            let pkt = rtp(
                i as u16,
                160 * i as u32,
                leg.ssrc,
                leg.payload_type,
                i == 0,
                chunk,
            );
            packets.push((at, udp(leg.src, leg.dst, &pkt)));
            if n == 0 && i == 50 {
                // An RFC 4733 DTMF event: no audio, left out of the recording.
                let ev = rtp(
                    40_000,
                    160 * i as u32,
                    leg.ssrc,
                    101,
                    true,
                    &[1, 0x0A, 0, 160],
                );
                packets.push((at + Duration::from_millis(1), udp(leg.src, leg.dst, &ev)));
            }
        }
    }
    packets.sort_by_key(|(at, _)| *at);
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::with_header(file, PcapHeader::default()).unwrap();
    let base = Duration::from_secs(1_700_000_000);
    for (at, data) in packets {
        w.write_packet(&PcapPacket::new(base + at, data.len() as u32, &data))
            .unwrap();
    }
}

fn two_leg_capture(dir: &Path, with_sip: bool, payload_type: u8) -> PathBuf {
    let caller = Leg {
        src: ([10, 0, 0, 1], 4000),
        dst: ([10, 0, 0, 2], 5000),
        ssrc: 0x1111_AAAA,
        payload_type,
        audio: alaw_tone(dir, 450, 5.0),
        start: Duration::from_millis(10),
    };
    let callee = Leg {
        src: ([10, 0, 0, 2], 5000),
        dst: ([10, 0, 0, 1], 4000),
        ssrc: 0x2222_BBBB,
        payload_type,
        audio: alaw_tone(dir, 1230, 4.0),
        start: Duration::from_millis(1010),
    };
    let path = dir.join(if with_sip { "call.pcap" } else { "nosip.pcap" });
    write_capture(&path, with_sip, &[caller, callee]);
    path
}

/// Runs `callrec` with `args` plus `-o out`, which must succeed, and decodes `out`.
fn mix_ok(args: &[&str], out: &Path) -> Vec<i16> {
    let mut all = args.to_vec();
    all.extend(["-o", p(out)]);
    let o = callrec(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ffmpeg_decode(out)
}

fn levels(pcm: &[i16]) -> [(f64, f64); 2] {
    let (l, r) = (channel(pcm, 0), channel(pcm, 1));
    [
        (tone_dbfs(&l, 450.0, 8000.0), tone_dbfs(&l, 1230.0, 8000.0)),
        (tone_dbfs(&r, 450.0, 8000.0), tone_dbfs(&r, 1230.0, 8000.0)),
    ]
}

#[test]
fn roles_come_from_the_sip_in_the_capture() {
    let dir = tempfile::tempdir().unwrap();
    let capture = two_leg_capture(dir.path(), true, 8);
    let out = dir.path().join("inbound.wav");
    let o = callrec(&["mix", "--pcap", p(&capture), "-o", p(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pcm = ffmpeg_decode(&out);
    let [(l450, l1230), (r450, r1230)] = levels(&pcm);
    // Caller (450 Hz) is the end user on an inbound call: left.
    assert!(
        l450 - l1230 >= 60.0,
        "left: 450 Hz {l450:.1} dB, 1230 Hz {l1230:.1} dB"
    );
    assert!(
        r1230 - r450 >= 60.0,
        "right: 1230 Hz {r1230:.1} dB, 450 Hz {r450:.1} dB"
    );

    // The callee's first packet came 1 s after the caller's: its audio starts
    // 1 s into the right channel (placed by arrival, not packed to the start).
    let right = channel(&pcm, 1);
    let onset = right.iter().position(|s| s.abs() > 1000.0).unwrap();
    assert!(
        (onset as i64 - 8000).abs() <= 160,
        "right channel starts at sample {onset}, want 8000 +- 20 ms"
    );

    // An outbound call: the caller is the agent, so the sides swap.
    let out2 = dir.path().join("outbound.wav");
    let pcm = mix_ok(&["mix", "--pcap", p(&capture), "--caller", "agent"], &out2);
    let [(l450, l1230), (r450, r1230)] = levels(&pcm);
    assert!(
        l1230 - l450 >= 60.0 && r450 - r1230 >= 60.0,
        "swapped on --caller agent"
    );
}

#[test]
fn streams_are_chosen_by_ssrc_or_address() {
    let dir = tempfile::tempdir().unwrap();
    let capture = two_leg_capture(dir.path(), false, 8);
    let out = dir.path().join("call.mp3");
    let pcm = mix_ok(
        &[
            "mix",
            "--pcap",
            p(&capture),
            "--end-user",
            "0x2222BBBB",
            "--agent",
            "10.0.0.1:4000",
        ],
        &out,
    );
    let [(l450, l1230), (r450, r1230)] = levels(&pcm);
    assert!(
        l1230 - l450 >= 50.0,
        "left is the 1230 Hz stream: {l1230:.1} vs {l450:.1}"
    );
    assert!(
        r450 - r1230 >= 50.0,
        "right is the 450 Hz stream: {r450:.1} vs {r1230:.1}"
    );

    // Naming one side takes the only other source as the other side.
    let out2 = dir.path().join("one.wav");
    let pcm = mix_ok(
        &["mix", "--pcap", p(&capture), "--agent", "0x1111aaaa"],
        &out2,
    );
    let [(_, l1230), (r450, _)] = levels(&pcm);
    assert!(l1230 > -20.0 && r450 > -20.0);
}

fn fails_with(args: &[&str], needles: &[&str], out: &Path) {
    let o = callrec(args);
    assert!(!o.status.success(), "callrec {args:?} should fail");
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.trim_end().lines().last().unwrap_or("");
    for n in needles {
        assert!(last.contains(n), "the error names {n:?}: {err}");
    }
    assert!(!out.exists(), "no partial output");
    let parts: Vec<_> = std::fs::read_dir(out.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "no temporary file left behind");
}

#[test]
fn a_stream_claimed_for_both_roles_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let capture = two_leg_capture(dir.path(), false, 8);
    let out = dir.path().join("call.mp3");
    fails_with(
        &[
            "mix",
            "--pcap",
            p(&capture),
            "--end-user",
            "0x1111AAAA",
            "--agent",
            "10.0.0.1:4000",
            "-o",
            p(&out),
        ],
        &["claimed by both"],
        &out,
    );
}

#[test]
fn an_unknown_payload_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let capture = two_leg_capture(dir.path(), false, 96);
    let out = dir.path().join("call.mp3");
    fails_with(
        &[
            "mix",
            "--pcap",
            p(&capture),
            "--end-user",
            "0x1111AAAA",
            "--agent",
            "0x2222BBBB",
            "-o",
            p(&out),
        ],
        &["payload type 96"],
        &out,
    );
}

#[test]
fn garbage_is_not_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("trace.pcap");
    std::fs::write(
        &garbage,
        b"\x00\x01 this is not a packet capture at all \xff\xfe".repeat(10),
    )
    .unwrap();
    let out = dir.path().join("call.mp3");
    fails_with(
        &["mix", "--pcap", p(&garbage), "-o", p(&out)],
        &["trace.pcap", "not a pcap"],
        &out,
    );
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    fails_with(
        &["mix", "--pcap", p(&empty), "-o", p(&out)],
        &["empty.pcap"],
        &out,
    );
}

#[test]
fn an_unknown_stream_is_refused_with_a_pointer_to_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.mp3");
    fails_with(
        &[
            "mix",
            "--pcap",
            p(sipp_capture()),
            "--end-user",
            "0xDEADBEEF",
            "-o",
            p(&out),
        ],
        &["--list"],
        &out,
    );
    fails_with(
        &[
            "mix",
            "--pcap",
            p(sipp_capture()),
            "--end-user",
            "somewhere",
            "-o",
            p(&out),
        ],
        &["not a stream"],
        &out,
    );
}
