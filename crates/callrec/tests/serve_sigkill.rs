//! `callrec serve`, the real binary, killed with SIGKILL in the middle of a
//! SIPREC call and started again on the same data directory: the cut-off
//! recording is repaired (WAV header from its length), delivered to the
//! local storage, and marked partial in the catalog.
//!
//! Needs `sipp` (Debian sip-tester), `espeak-ng` and `sox` on the PATH.

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
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(http, "/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "callrec serve never became ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

/// SIPp placing one call with `scenario`, in the background.
fn spawn_sipp(dir: &Path, scenario: &str, target: SocketAddr) -> Proc {
    let sf = dir.join("scenario.xml");
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

#[test]
fn sigkill_mid_call_then_restart_delivers_the_repaired_recording_as_partial() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sip: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let rtp = 30000 + (std::process::id() % 50) as u16 * 200;
    let config = dir.path().join("callrec.toml");
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
format = "wav"
checkpoint_secs = 1
role_rules = [{{ rule = "agent_address_pattern", pattern = "*@agents.example.com" }}]
[delivery]
scan_interval_secs = 1
"#,
            data = data.display(),
            rtp_max = rtp + 199,
        ),
    )
    .unwrap();

    let mut server = serve(&config, http, &dir.path().join("first.log"));
    // Tone on both streams for 20 s; the call would last 60 s.
    let pcap = dir.path().join("call.pcap");
    write_pcap(
        &pcap,
        &[
            PcapStream {
                dport: 6000,
                ssrc: 0x1111,
                samples: tone(1000.0, 20.0, 0.25),
            },
            PcapStream {
                dport: 6002,
                ssrc: 0x2222,
                samples: tone(400.0, 20.0, 0.25),
            },
        ],
    );
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
