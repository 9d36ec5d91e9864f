//! `callrec serve`, the real binary, at start-up: a SIP port already in use
//! is a clear error (not a server that runs without it), and once `/readyz`
//! says ready, SIP over TCP answers at once (rsipstack binds its TCP
//! listener in a task of its own; ready waits for it).

#[path = "../../callrec-server/tests/common/mod.rs"]
mod siprec;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use siprec::*;

/// A configuration with SIP (UDP and TCP) on `sip` and HTTP on `http`.
fn config(dir: &Path, sip: SocketAddr, http: SocketAddr) -> std::path::PathBuf {
    let path = dir.join("callrec.toml");
    let rtp = 36000 + (std::process::id() % 50) as u16 * 40;
    std::fs::write(
        &path,
        format!(
            r#"data_dir = "{data}"
[sip]
udp_listen = "{sip}"
tcp_listen = "{sip}"
[http]
listen = "{http}"
[rtp]
bind_address = "127.0.0.1"
port_min = {rtp}
port_max = {rtp_max}
"#,
            data = dir.join("data").display(),
            rtp_max = rtp + 39,
        ),
    )
    .unwrap();
    path
}

/// A port free for both UDP and TCP on the loopback.
fn free_sip_port() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

fn free_tcp_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn a_sip_tcp_port_in_use_stops_the_start_with_the_address_named() {
    let dir = tempfile::tempdir().unwrap();
    let sip = free_sip_port();
    // Somebody else listens on the SIP TCP port.
    let _taken = TcpListener::bind(sip).unwrap();
    let http = free_tcp_port();
    let cfg = config(dir.path(), sip, http);
    let mut child = Command::new(env!("CARGO_BIN_EXE_callrec"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("callrec serve kept running without its SIP TCP port");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "{err}");
    assert!(
        err.contains(&format!("cannot listen on sip tcp {sip}")) && err.contains("in use"),
        "{err}"
    );
    // It never served: nothing answers on its HTTP address.
    assert!(TcpStream::connect(http).is_err());
}

#[test]
fn when_ready_sip_over_tcp_answers_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sip = free_sip_port();
    let http = free_tcp_port();
    let cfg = config(dir.path(), sip, http);
    let child = Command::new(env!("CARGO_BIN_EXE_callrec"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Proc(child);
    wait_ready(http, 60);
    // No retry: ready means the TCP listener accepts.
    let mut conn = TcpStream::connect(sip).expect("SIP TCP accepts once ready");
    let me = conn.local_addr().unwrap();
    let answer = ask_tcp(&mut conn, &options_request("TCP", me, sip, "ready", 1));
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
}

#[test]
fn a_tls_key_that_does_not_fit_stops_the_start_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let sip = free_sip_port();
    let http = free_tcp_port();
    let tls = free_tcp_port();
    let cfg = config(dir.path(), sip, http);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("srs.crt"), cert.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("srs.key"),
        other.signing_key.serialize_pem(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_callrec"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .env("CALLREC_SIP__TLS_LISTEN", tls.to_string())
        .env("CALLREC_SIP__TLS_CERTIFICATE", dir.path().join("srs.crt"))
        .env("CALLREC_SIP__TLS_PRIVATE_KEY", dir.path().join("srs.key"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let key = dir.path().join("srs.key");
    assert!(
        err.contains(&format!("cannot use sip.tls_private_key {}", key.display()))
            && err.contains("does not fit the certificate"),
        "{err}"
    );
    assert!(TcpStream::connect(http).is_err());
}
