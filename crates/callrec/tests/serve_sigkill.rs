//! `callrec serve`, the real binary, killed with SIGKILL in the middle of a
//! SIPREC call and started again on the same data directory: the cut-off
//! recording is repaired (WAV header from its length), delivered to the
//! local storage, and marked partial in the catalog.
//!
//! The second test leaves MP3 recordings in every state (delivered,
//! uploading, spooled, recording, paused) at the kill, with a real S3 server
//! (`s3s-fs`) that goes away and a black-hole endpoint that never answers.
//!
//! Needs `sipp` (Debian sip-tester), `sox`, `ffmpeg` and `s3s-fs` (installed
//! by scripts/install-test-deps.sh).

#[path = "../../callrec-server/tests/common/mod.rs"]
mod siprec;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use siprec::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `callrec serve --config <config>` and waits until it is ready.
fn serve(config: &Path, http: SocketAddr, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_callrec"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let p = Proc(child);
    wait_ready(http, 60);
    p
}

/// SIPp placing one call with `scenario`, in the background.
fn spawn_sipp(dir: &Path, scenario: &str, target: SocketAddr) -> Proc {
    spawn_sipp_named(dir, "scenario", scenario, target)
}

/// As [`spawn_sipp`], the scenario file named `name` (one per concurrent call).
fn spawn_sipp_named(dir: &Path, name: &str, scenario: &str, target: SocketAddr) -> Proc {
    let sf = dir.join(format!("{name}.xml"));
    std::fs::write(&sf, scenario).unwrap();
    let child = Command::new("sipp")
        .args(["-sf", sf.to_str().unwrap(), "-m", "1", "-nostdin"])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-mp", &(free_port() & !1).to_string(), "-t", "u1"])
        .arg(target.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sipp (Debian sip-tester) must be installed");
    Proc(child)
}

/// The loopback addresses and the configuration file of one test server:
/// SIP and HTTP on free ports, a private RTP range, checkpoints every
/// second, the agent recognised by its domain; `format` and the TOML
/// sections `extra` (storage, delivery) vary per test.
struct TestServer {
    data: std::path::PathBuf,
    sip: SocketAddr,
    http: SocketAddr,
    config: std::path::PathBuf,
}

fn test_server(dir: &Path, rtp_base: u16, format: &str, extra: &str) -> TestServer {
    let data = dir.join("data");
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let rtp = rtp_base + (std::process::id() % 50) as u16 * 200;
    let config = dir.join("callrec.toml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir = "{data}"
[sip]
udp_listen = "{sip}"
tcp_listen = ""
[http]
listen = "{http}"
[rtp]
bind_address = "127.0.0.1"
port_min = {rtp}
port_max = {rtp_max}
[recording]
format = "{format}"
checkpoint_secs = 1
role_rules = [{{ rule = "agent_address_pattern", pattern = "*@agents.example.com" }}]
{extra}"#,
            data = data.display(),
            rtp_max = rtp + 199,
        ),
    )
    .unwrap();
    TestServer {
        data,
        sip,
        http,
        config,
    }
}

#[test]
fn sigkill_mid_call_then_restart_delivers_the_repaired_recording_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let TestServer {
        data,
        sip,
        http,
        config,
    } = test_server(
        dir.path(),
        30000,
        "wav",
        "[delivery]\nscan_interval_secs = 1\n",
    );

    let mut server = serve(&config, http, &dir.path().join("first.log"));
    // Tone on both streams for 20 s; the call would last 60 s.
    let pcap = dir.path().join("call.pcap");
    two_tone_capture(&pcap, 20.0);
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(&pcap, 60_000));
    body.push_str(&hang_up(2));
    let mut sipp = spawn_sipp(dir.path(), &scenario(&body), sip);

    // Wait until the recording has at least 2 s of audio on disk (the
    // checkpoint makes it readable every second), then kill -9.
    let spool = data.join("spool");
    let deadline = Instant::now() + Duration::from_secs(90);
    let wav = loop {
        let found = std::fs::read_dir(&spool).ok().and_then(|d| {
            d.flatten()
                .flat_map(|e| std::fs::read_dir(e.path()).into_iter().flatten().flatten())
                .map(|f| f.path())
                .find(|p| p.extension().is_some_and(|x| x == "wav"))
        });
        if let Some(p) = found
            && std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 44 + 2 * 8000 * 4
        {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the call never reached 2 s of audio"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let call_id = wav.file_stem().unwrap().to_str().unwrap().to_owned();
    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();
    let _ = sipp.0.kill();
    let _ = sipp.0.wait();
    assert!(
        spool_holds_one_recording(&data),
        "the recording is still in the spool after the kill"
    );

    let _server = serve(&config, http, &dir.path().join("second.log"));
    let list = wait_for_recordings(http, 120, |l| l.len() == 1 && l[0]["status"] == "delivered");
    let rec = &list[0];
    assert_eq!(rec["call_id"], call_id.as_str());
    assert_eq!(rec["partial"], true, "{rec:#}");
    let key = rec["delivery"]["key"].as_str().unwrap();
    let stored = data.join("storage").join(key);
    assert_eq!(rec["sha256"], sha256_hex(&stored).as_str());
    // The repaired WAV reads to its end: a valid header whose length is
    // what was recorded (at least the 2 s seen before the kill).
    let (left, right) = read_stereo_wav(&stored);
    let secs = left.len() as f64 / 8000.0;
    assert!(secs >= 1.0, "repaired recording is {secs} s long");
    assert!(tone_db(&left, 400.0) > -20.0 || tone_db(&right, 400.0) > -20.0);
    let md: serde_json::Value =
        serde_json::from_slice(&std::fs::read(stored.with_extension("json")).unwrap()).unwrap();
    assert_eq!(md["partial"], true, "{md:#}");
    let left_over: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left_over.is_empty(), "spool not empty: {left_over:?}");
}

/// Whether the killed server left its recording in the spool.
fn spool_holds_one_recording(data: &Path) -> bool {
    std::fs::read_dir(data.join("spool"))
        .map(|d| d.count() == 1)
        .unwrap_or(false)
}

/// s3s-fs on 127.0.0.1:`port` over `dir` (each top folder a bucket).
fn start_s3(dir: &Path, port: u16) -> Proc {
    let bin = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cargo/bin/s3s-fs"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "s3s-fs".into());
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", "sigkill-ak", "--secret-key", "sigkill-sk"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs must be installed: cargo install --locked s3s-fs@0.14.1 --features binary");
    let p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

/// An S3 endpoint that accepts connections and never answers: uploads to it
/// hang (until callrec's step timeout), so a recording stays "uploading".
/// Closes its port and every connection when dropped.
struct BlackHole {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn open(port: u16) -> BlackHole {
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the black hole");
        l.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match l.accept() {
                    Ok((c, _)) => held.push(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        BlackHole {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The status of the recording of `call_id` in `list`.
fn status_of<'a>(list: &'a [serde_json::Value], call_id: &str) -> &'a str {
    list.iter()
        .find(|r| r["call_id"] == call_id)
        .and_then(|r| r["status"].as_str())
        .unwrap_or("absent")
}

/// The call ids the API lists, in the order of `list`.
fn call_ids(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .map(|r| r["call_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sigkill_with_recordings_in_every_state_then_restart_delivers_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let s3_dir = dir.path().join("s3");
    std::fs::create_dir_all(s3_dir.join("rec")).unwrap();
    let s3_port = free_port();
    let TestServer {
        data,
        sip,
        http,
        config,
    } = test_server(
        dir.path(),
        20000,
        "mp3",
        &format!(
            r#"[storage]
backend = "s3"
endpoint = "http://127.0.0.1:{s3_port}"
region = "us-east-1"
bucket = "rec"
access_key = "sigkill-ak"
secret_key = "sigkill-sk"
prefix = "callrec"
[delivery]
concurrency = 1
scan_interval_secs = 1
backoff_base_secs = 1
backoff_max_secs = 2
"#
        ),
    );
    // 60 s of 1 kHz from the agent (label 1, the first stream) and 400 Hz
    // from the end user (label 2).
    let pcap = dir.path().join("call.pcap");
    two_tone_capture(&pcap, 60.0);
    let short_call = || {
        let mut b = establish("sendonly");
        b.push_str(&play_and_wait(&pcap, 2_000));
        b.push_str(&hang_up(2));
        scenario(&b)
    };

    let mut s3 = start_s3(&s3_dir, s3_port);
    let mut server = serve(&config, http, &dir.path().join("first.log"));

    // A: delivered before the kill.
    let _a = spawn_sipp_named(dir.path(), "a", &short_call(), sip);
    let list = wait_for_recordings(http, 60, |l| l.len() == 1 && l[0]["status"] == "delivered");
    let a = call_ids(&list)[0].clone();

    // The storage goes; in its place an endpoint that never answers.
    let _ = s3.0.kill();
    let _ = s3.0.wait();
    let hole = BlackHole::open(s3_port);

    // B and C end while storage hangs: one upload at a time, so one is
    // "uploading" (stuck) and the other waits "spooled".
    let _b = spawn_sipp_named(dir.path(), "b", &short_call(), sip);
    let _c = spawn_sipp_named(dir.path(), "c", &short_call(), sip);
    // D: recording at the kill. E: paused at the kill (every stream
    // inactive after 3 s).
    let mut d_body = establish("sendonly");
    d_body.push_str(&play_and_wait(&pcap, 60_000));
    d_body.push_str(&hang_up(2));
    let _d = spawn_sipp_named(dir.path(), "d", &scenario(&d_body), sip);
    let mut e_body = establish("sendonly");
    e_body.push_str(&play_and_wait(&pcap, 3_000));
    e_body.push_str(&send(
        &invite(2, "[last_To:]", "inactive", false, "[branch]"),
        true,
    ));
    e_body.push_str("  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\"/>\n");
    e_body.push_str(&send(&in_dialog("ACK", 2), false));
    e_body.push_str("  <pause milliseconds=\"60000\"/>\n");
    e_body.push_str(&hang_up(3));
    let _e = spawn_sipp_named(dir.path(), "e", &scenario(&e_body), sip);

    let before = wait_for_recordings(http, 60, |l| {
        let mut s: Vec<&str> = l.iter().map(|r| r["status"].as_str().unwrap()).collect();
        s.sort();
        s == ["delivered", "paused", "recording", "spooled", "uploading"]
    });
    // Let D record a few seconds past E's pause, so both have checkpoints.
    std::thread::sleep(Duration::from_secs(3));
    let before = {
        let now = api_recordings(http);
        assert_eq!(
            call_ids(&now).len(),
            5,
            "still five recordings: {now:#?} (was {before:#?})"
        );
        now
    };
    let ids = call_ids(&before);
    let d = ids
        .iter()
        .find(|c| status_of(&before, c) == "recording")
        .unwrap()
        .clone();
    let e = ids
        .iter()
        .find(|c| status_of(&before, c) == "paused")
        .unwrap()
        .clone();
    assert_eq!(status_of(&before, &a), "delivered");
    // D's MP3 has its PCM backup beside it while the call runs.
    assert!(
        data.join("spool").join(&d).join("pcm-backup.wav").exists(),
        "no PCM backup for the MP3 in progress"
    );

    server.0.kill().unwrap(); // SIGKILL
    server.0.wait().unwrap();

    // Storage is back (same port, same data); callrec starts again.
    drop(hole);
    let _s3 = start_s3(&s3_dir, s3_port);
    let _server = serve(&config, http, &dir.path().join("second.log"));
    let after = wait_for_recordings(http, 120, |l| {
        l.len() == 5 && l.iter().all(|r| r["status"] == "delivered")
    });
    for rec in &after {
        let call = rec["call_id"].as_str().unwrap();
        let cut = call == d || call == e;
        assert_eq!(rec["partial"], cut, "partial flag of {call}: {rec:#}");
        // The object in the S3 server's own directory is what the catalog says.
        let key = rec["delivery"]["key"].as_str().unwrap();
        // The configured prefix `callrec` is the root of the keys in the bucket.
        let stored = s3_dir.join("rec").join("callrec").join(key);
        assert_eq!(rec["sha256"], sha256_hex(&stored).as_str(), "{call}");
        let md: serde_json::Value = serde_json::from_slice(
            &std::fs::read(stored.with_extension("json")).expect("metadata beside the audio"),
        )
        .unwrap();
        assert_eq!(md["partial"], cut, "{md:#}");
        // Measured by ffmpeg: the end user's tone on the left, the agent's
        // on the right, in every recording, cut or not.
        let (left, right) = decode_with_ffmpeg(&stored);
        let secs = left.len() as f64 / 8000.0;
        assert!(secs >= 1.5, "{call}: {secs} s");
        assert!(
            tone_db(&left, 400.0) > -20.0,
            "{call}: no 400 Hz on the left"
        );
        assert!(
            tone_db(&right, 1000.0) > -20.0,
            "{call}: no 1 kHz on the right"
        );
        let crosstalk = tone_db(&left, 1000.0);
        assert!(
            crosstalk < -50.0,
            "{call}: agent on the left at {crosstalk:.1} dB"
        );
        if call == d {
            // Re-encoded from the PCM backup: it reaches the last checkpoint
            // before the kill (at least 3 s were seen recorded), and its
            // metadata duration is what ffmpeg decodes.
            assert!(secs >= 3.0, "D is {secs} s long");
            let why = md["partial_reason"].as_str().unwrap();
            assert!(why.contains("re-encoded from the spooled PCM"), "{why}");
            let ms = md["duration_ms"].as_u64().unwrap();
            assert!(
                (ms as f64 - secs * 1000.0).abs() < 2.0,
                "{ms} ms vs {secs} s"
            );
        }
    }
    let left_over: Vec<_> = std::fs::read_dir(data.join("spool")).unwrap().collect();
    assert!(left_over.is_empty(), "spool not empty: {left_over:?}");
}
