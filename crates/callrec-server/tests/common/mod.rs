//! Test harness: the real server on loopback ports in its own runtime, SIPp
//! as the recording client, speech from espeak-ng, RTP captures for
//! `play_pcap_audio`, and audio measurements.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callrec_server::{App, Config, Listeners, RecordingFinished};

/// A running server; shut down (gracefully) on drop.
pub struct Server {
    pub sip: SocketAddr,
    pub http: SocketAddr,
    pub data: tempfile::TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    recordings: std::sync::mpsc::Receiver<RecordingFinished>,
}

impl Server {
    /// Starts the server with `tweak` applied to a test configuration (WAV,
    /// loopback, a private RTP range).
    pub fn start(tweak: impl FnOnce(&mut Config)) -> Server {
        Self::start_with_settings(tweak, callrec_policy::ValidSettings::default())
    }

    /// As [`Server::start`], with these recording policy settings.
    pub fn start_with_settings(
        tweak: impl FnOnce(&mut Config),
        settings: callrec_policy::ValidSettings,
    ) -> Server {
        Self::start_mode(tweak, Some(settings))
    }

    /// The whole server as `callrec serve` runs it ([`App::open`]): the
    /// catalog in the data directory, the spool, delivery to the local
    /// storage `<data_dir>/storage`, and the API.
    pub fn start_wired(tweak: impl FnOnce(&mut Config)) -> Server {
        Self::start_mode(tweak, None)
    }

    fn start_mode(
        tweak: impl FnOnce(&mut Config),
        settings: Option<callrec_policy::ValidSettings>,
    ) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        config.recording.format = Some(callrec_server::config::FormatSetting::Wav);
        config.recording.pause_mode = Some(callrec_server::config::PauseModeSetting::Skip);
        config.rtp.bind_address = "127.0.0.1".parse().unwrap();
        // A range of 400 ports per server: per test process and per server
        // in it (tests run in parallel).
        static SERVERS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
        let base = 20000 + (std::process::id() % 10) as u16 * 4000 + n * 400;
        config.rtp.port_min = base;
        config.rtp.port_max = base + 399;
        config.rtp.port_rest_secs = 1;
        // The test machine is shared and often saturated: SIPp's sending
        // threads and the debug-build server both stall for hundreds of ms.
        // A longer jitter delay keeps those stalls from turning into gaps.
        config.rtp.jitter_delay_ms = 1000;
        // The test metadata names the agent by domain, not by a role hint.
        config.recording.role_rules = vec![
            callrec_server::config::RoleRuleConfig::AgentAddressPattern {
                pattern: "*@agents.example.com".into(),
            },
        ];
        tweak(&mut config);
        let mut listeners = Listeners::loopback().unwrap();
        // SIP over TLS when the test configures it.
        listeners.sip_tls = Listeners::tls(&config.sip).unwrap();
        let sip = listeners.sip_addr().unwrap();
        let http = listeners.http_addr().unwrap();
        let (stx, srx) = tokio::sync::oneshot::channel::<()>();
        let (rtx, rrx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = match settings {
                    Some(settings) => {
                        let store = callrec_policy::InMemorySettingsStore::new(
                            settings,
                            time::OffsetDateTime::now_utc(),
                        );
                        App::build_with_settings(config, std::sync::Arc::new(store)).unwrap()
                    }
                    None => App::open(config).await.unwrap().0,
                };
                let mut rec = app.recordings();
                tokio::spawn(async move {
                    while let Ok(r) = rec.recv().await {
                        if rtx.send(r).is_err() {
                            break;
                        }
                    }
                });
                ready_tx.send(()).unwrap();
                app.run(listeners, async {
                    let _ = srx.await;
                })
                .await
                .unwrap();
            });
        });
        ready_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let server = Server {
            sip,
            http,
            data,
            shutdown: Some(stx),
            thread: Some(thread),
            recordings: rrx,
        };
        // Ready: HTTP answers and every SIP listener accepts.
        wait_ready(http, 30);
        server
    }

    /// The next finished recording (waits up to `secs`).
    pub fn next_recording(&self, secs: u64) -> RecordingFinished {
        self.recordings
            .recv_timeout(Duration::from_secs(secs))
            .expect("no recording was finished")
    }

    /// Whether a recording finishes within `secs`.
    pub fn try_recording(&self, secs: u64) -> Option<RecordingFinished> {
        self.recordings.recv_timeout(Duration::from_secs(secs)).ok()
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn spool(&self) -> PathBuf {
        self.data.path().join("spool")
    }

    pub fn metrics(&self) -> String {
        http_get(self.http, "/metrics").1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A blocking HTTP/1.0 GET: (status, body).
/// Waits until `/readyz` at `http` answers 200, for at most `secs`.
pub fn wait_ready(http: SocketAddr, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while http_get(http, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "the server never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An out-of-dialog OPTIONS from `me` to the recording server at `srs`
/// over `transport` (TCP, TLS), CRLF line ends.
pub fn options_request(
    transport: &str,
    me: SocketAddr,
    srs: SocketAddr,
    call_id: &str,
    cseq: u32,
) -> String {
    format!(
        "OPTIONS sip:srs@{srs} SIP/2.0\r\nVia: SIP/2.0/{transport} {me};branch=z9hG4bK-{call_id}-{cseq}\r\n\
From: <sip:src@{me}>;tag=t1\r\nTo: <sip:srs@{srs}>\r\nCall-ID: {call_id}@test\r\n\
CSeq: {cseq} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Writes `msg` on a SIP TCP connection and reads one answer (at most 10 s).
pub fn ask_tcp(conn: &mut std::net::TcpStream, msg: &str) -> String {
    use std::io::Read;
    conn.write_all(msg.as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = conn.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A blocking HTTP/1.0 request with a JSON body: (status, body).
pub fn http_send(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let _ = write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: x\r\nX-Callrec-User: test-admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The recordings the API lists (`GET /api/v1/recordings`).
pub fn api_recordings(addr: SocketAddr) -> Vec<serde_json::Value> {
    let (status, body) = http_get(addr, "/api/v1/recordings");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["recordings"].as_array().cloned().unwrap_or_default()
}

/// Polls the API until `pred` holds for the listed recordings (up to
/// `secs`: a bound for a stuck server, not a speed requirement); returns
/// them.
pub fn wait_for_recordings(
    addr: SocketAddr,
    secs: u64,
    pred: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let list = api_recordings(addr);
        if pred(&list) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "the recordings never reached the expected state: {list:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Lowercase hex sha256 of a file.
pub fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// The value of a metric line (`name{labels} value`).
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
        .unwrap_or_else(|| panic!("metric {series} not found in\n{text}"))
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs SIPp with `scenario` (XML text) against `target` for one call;
/// returns whether it succeeded and its error log.
pub fn run_sipp(dir: &Path, scenario: &str, target: SocketAddr, transport: &str) -> (bool, String) {
    run_sipp_calls(dir, scenario, target, transport, 1)
}

/// Runs SIPp with `calls` calls placed at once.
pub fn run_sipp_calls(
    dir: &Path,
    scenario: &str,
    target: SocketAddr,
    transport: &str,
    calls: u32,
) -> (bool, String) {
    let sf = dir.join(format!("scenario-{}.xml", free_udp_port()));
    std::fs::write(&sf, scenario).unwrap();
    let err = dir.join(format!("sipp-{}.err", free_udp_port()));
    let msgs = dir.join(format!("sipp-{}.msg", free_udp_port()));
    let local_port = free_udp_port();
    let media_port = free_udp_port() & !1;
    let child = Command::new("sipp")
        .args([
            "-sf",
            sf.to_str().unwrap(),
            "-m",
            &calls.to_string(),
            "-l",
            &calls.to_string(),
            "-r",
            &calls.to_string(),
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-p",
            &local_port.to_string(),
            "-mp",
            &media_port.to_string(),
            "-t",
            transport,
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_err",
            "-error_file",
            err.to_str().unwrap(),
            "-trace_msg",
            "-message_file",
            msgs.to_str().unwrap(),
            &target.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp (Debian sip-tester) must be installed");
    let mut p = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "sipp did not finish");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = format!(
        "{}\n--- messages ---\n{}",
        std::fs::read_to_string(&err).unwrap_or_default(),
        std::fs::read_to_string(&msgs).unwrap_or_default()
    );
    (status.success(), log)
}

/// Headerless 8 kHz mono linear samples of `text` spoken by espeak-ng.
pub fn speech(dir: &Path, text: &str, voice: &str) -> Vec<i16> {
    let wav = dir.join(format!("speech-{}.wav", free_udp_port()));
    let raw = dir.join(format!("speech-{}.s16", free_udp_port()));
    let ok = Command::new("espeak-ng")
        .args(["-v", voice, "-s", "150", "-w", wav.to_str().unwrap(), text])
        .status()
        .expect("espeak-ng must be installed")
        .success();
    assert!(ok, "espeak-ng failed");
    let ok = Command::new("sox")
        .args([
            wav.to_str().unwrap(),
            "-r",
            "8000",
            "-c",
            "1",
            "-e",
            "signed-integer",
            "-b",
            "16",
            "-t",
            "raw",
            raw.to_str().unwrap(),
        ])
        .status()
        .expect("sox must be installed")
        .success();
    assert!(ok, "sox failed");
    std::fs::read(&raw)
        .unwrap()
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// A sine tone.
pub fn tone(freq: f64, secs: f64, amplitude: f64) -> Vec<i16> {
    let n = (secs * 8000.0) as usize;
    (0..n)
        .map(|i| {
            (amplitude * 32767.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / 8000.0).sin())
                as i16
        })
        .collect()
}

/// G.711 mu-law encoding (ITU-T G.711, as in the reference code).
pub fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// One RTP stream of a capture: destination port offset and audio.
pub struct PcapStream {
    pub dport: u16,
    pub ssrc: u32,
    pub samples: Vec<i16>,
}

/// Writes an Ethernet/IPv4/UDP capture of PCMU RTP, 20 ms packets, all
/// streams starting together; SIPp's `play_pcap_audio` sends each stream to
/// the answered port plus (its port - the lowest port of the capture).
pub fn write_pcap(path: &Path, streams: &[PcapStream]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
    let packets = streams
        .iter()
        .map(|s| s.samples.len().div_ceil(160))
        .max()
        .unwrap_or(0);
    for i in 0..packets {
        let t_us = i as u64 * 20_000;
        for s in streams {
            if i * 160 >= s.samples.len() {
                continue;
            }
            let mut rtp = vec![0x80u8, 0];
            rtp.extend_from_slice(&(i as u16).to_be_bytes());
            rtp.extend_from_slice(&((i * 160) as u32).to_be_bytes());
            rtp.extend_from_slice(&s.ssrc.to_be_bytes());
            for k in 0..160 {
                rtp.push(ulaw(*s.samples.get(i * 160 + k).unwrap_or(&0)));
            }
            let udp_len = 8 + rtp.len();
            let ip_len = 20 + udp_len;
            let mut frame = vec![0u8; 12];
            frame.extend_from_slice(&[0x08, 0x00]);
            let mut ip = vec![
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
            ];
            ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            let sum = ip
                .chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .sum::<u32>();
            let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
            frame.extend_from_slice(&ip);
            frame.extend_from_slice(&(s.dport + 1000).to_be_bytes());
            frame.extend_from_slice(&s.dport.to_be_bytes());
            frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
            frame.extend_from_slice(&[0, 0]);
            frame.extend_from_slice(&rtp);
            out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        }
    }
    std::fs::write(path, out).unwrap();
}

/// A stereo WAV as (left, right).
pub fn read_stereo_wav(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// RMS level in dBFS.
pub fn level_db(x: &[i16]) -> f64 {
    if x.is_empty() {
        return -120.0;
    }
    let e: f64 = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len() as f64;
    10.0 * (e.max(1e-3) / (32768.0 * 32768.0)).log10()
}

/// Power of `freq` (Goertzel), relative to full scale, in dB.
pub fn tone_db(x: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - c * s1 * s2;
    let n = x.len().max(1) as f64;
    10.0 * (p.max(1e-12) * 2.0 / (n * n)).log10() + 3.0
}

/// The lag (in samples) at which `reference` best matches inside `x`, and
/// the normalized correlation there; searches lags `0..max_lag`.
pub fn best_match(x: &[i16], reference: &[i16], max_lag: usize) -> (usize, f64) {
    let r: Vec<f64> = reference.iter().map(|&v| f64::from(v)).collect();
    let rn = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut best = (0, -1.0);
    for lag in (0..max_lag).step_by(4) {
        if lag + r.len() > x.len() {
            break;
        }
        let seg = &x[lag..lag + r.len()];
        let dot: f64 = seg.iter().zip(&r).map(|(&a, b)| f64::from(a) * b).sum();
        let sn = seg
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let c = dot / (rn * sn).max(1e-9);
        if c > best.1 {
            best = (lag, c);
        }
    }
    // refine around the coarse best
    let (coarse, _) = best;
    for lag in coarse.saturating_sub(4)..coarse + 4 {
        if lag + r.len() > x.len() {
            break;
        }
        let seg = &x[lag..lag + r.len()];
        let dot: f64 = seg.iter().zip(&r).map(|(&a, b)| f64::from(a) * b).sum();
        let sn = seg
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let c = dot / (rn * sn).max(1e-9);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// The first sample index where a 10 ms window exceeds `db` dBFS.
pub fn onset(x: &[i16], db: f64) -> Option<usize> {
    x.chunks(80).position(|c| level_db(c) > db).map(|i| i * 80)
}

/// The RFC 7865 metadata of the test calls: the agent (an address in the
/// agents' domain) sends on label 1, the customer on label 2.
pub const METADATA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>complete</datamode>
  <session session_id="c2Vzc2lvbi0x">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
  </session>
  <participant participant_id="YWdlbnQtMQ==">
    <nameID aor="sip:1001@agents.example.com"><name>Agent 1001</name></nameID>
  </participant>
  <participant participant_id="Y3VzdG9tZXI=">
    <nameID aor="sip:+15550100200@carrier.example.net"><name>Customer</name></nameID>
  </participant>
  <participantsessionassoc participant_id="YWdlbnQtMQ==" session_id="c2Vzc2lvbi0x"/>
  <participantsessionassoc participant_id="Y3VzdG9tZXI=" session_id="c2Vzc2lvbi0x"/>
  <stream stream_id="c3RyZWFtLTE=" session_id="c2Vzc2lvbi0x"><label>1</label></stream>
  <stream stream_id="c3RyZWFtLTI=" session_id="c2Vzc2lvbi0x"><label>2</label></stream>
  <participantstreamassoc participant_id="YWdlbnQtMQ==">
    <send>c3RyZWFtLTE=</send><recv>c3RyZWFtLTI=</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="Y3VzdG9tZXI=">
    <send>c3RyZWFtLTI=</send><recv>c3RyZWFtLTE=</recv>
  </participantstreamassoc>
</recording>"#;

/// The SDP offer: two labelled PCMU streams, at SIPp's media port and +2.
pub fn sdp_offer(direction: &str) -> String {
    format!(
        "v=0\n\
o=SRC 1 [cseq] IN IP[local_ip_type] [local_ip]\n\
s=SIPREC\n\
c=IN IP[media_ip_type] [media_ip]\n\
t=0 0\n\
m=audio [media_port] RTP/AVP 0 101\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=label:1\n\
a={direction}\n\
m=audio [media_port+2] RTP/AVP 0 101\n\
a=rtpmap:0 PCMU/8000\n\
a=rtpmap:101 telephone-event/8000\n\
a=label:2\n\
a={direction}\n"
    )
}

/// The INVITE (initial when `to` is the plain To, re-INVITE with
/// `[last_To:]`), multipart SDP + metadata.
pub fn invite(cseq: u32, to: &str, direction: &str, with_metadata: bool, branch: &str) -> String {
    invite_with(
        cseq,
        to,
        direction,
        with_metadata.then_some(METADATA),
        branch,
    )
}

/// As [`invite`], with the given metadata document (if any).
pub fn invite_with(
    cseq: u32,
    to: &str,
    direction: &str,
    metadata: Option<&str>,
    branch: &str,
) -> String {
    let with_metadata = metadata.is_some();
    let md = metadata.unwrap_or_default();
    let body = if with_metadata {
        format!(
            "--callrec-boundary\n\
Content-Type: application/sdp\n\
\n\
{}\
--callrec-boundary\n\
Content-Type: application/rs-metadata+xml\n\
Content-Disposition: recording-session\n\
\n\
{md}\n\
--callrec-boundary--\n",
            sdp_offer(direction)
        )
    } else {
        sdp_offer(direction)
    };
    let ct = if with_metadata {
        "multipart/mixed;boundary=callrec-boundary"
    } else {
        "application/sdp"
    };
    format!(
        "INVITE sip:srs@[remote_ip]:[remote_port] SIP/2.0\n\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}\n\
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
{to}\n\
Call-ID: [call_id]\n\
CSeq: {cseq} INVITE\n\
Contact: <sip:src@[local_ip]:[local_port];transport=[transport]>;+sip.src\n\
Require: siprec\n\
Max-Forwards: 70\n\
Content-Type: {ct}\n\
Content-Length: [len]\n\
\n\
{body}"
    )
}

/// ACK or BYE within the dialog.
pub fn in_dialog(method: &str, cseq: u32) -> String {
    format!(
        "{method} sip:srs@[remote_ip]:[remote_port] SIP/2.0\n\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n\
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
[last_To:]\n\
Call-ID: [call_id]\n\
CSeq: {cseq} {method}\n\
Contact: <sip:src@[local_ip]:[local_port];transport=[transport]>;+sip.src\n\
Max-Forwards: 70\n\
Content-Length: 0\n\n"
    )
}

/// `<send>` of a message.
pub fn send(msg: &str, retrans: bool) -> String {
    let r = if retrans { " retrans=\"500\"" } else { "" };
    format!("  <send{r}><![CDATA[\n{msg}\n]]></send>\n")
}

/// The scenario around `body`.
pub fn scenario(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?>\n<!DOCTYPE scenario SYSTEM \"sipp.dtd\">\n<scenario name=\"callrec test\">\n{body}</scenario>\n"
    )
}

/// INVITE, 100/180 optional, 200 (with its To kept), ACK.
pub fn establish(direction: &str) -> String {
    let mut s = send(
        &invite(
            1,
            "To: <sip:srs@[remote_ip]:[remote_port]>",
            direction,
            true,
            "[branch]",
        ),
        true,
    );
    s.push_str("  <recv response=\"100\" optional=\"true\"/>\n");
    s.push_str("  <recv response=\"180\" optional=\"true\"/>\n");
    s.push_str("  <recv response=\"200\" rtd=\"true\"/>\n");
    s.push_str(&send(&in_dialog("ACK", 1), false));
    s
}

/// Plays the capture (asynchronously) and waits `ms`.
pub fn play_and_wait(pcap: &Path, ms: u64) -> String {
    format!(
        "  <nop><action><exec play_pcap_audio=\"{}\"/></action></nop>\n  <pause milliseconds=\"{ms}\"/>\n",
        pcap.display()
    )
}

/// BYE and its 200.
pub fn hang_up(cseq: u32) -> String {
    let mut s = send(&in_dialog("BYE", cseq), true);
    s.push_str("  <recv response=\"200\" crlf=\"true\"/>\n");
    s
}

/// Partial metadata: the agent disassociates from the session.
pub const AGENT_LEAVES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>partial</datamode>
  <participantsessionassoc participant_id="YWdlbnQtMQ==" session_id="c2Vzc2lvbi0x">
    <disassociate-time>2026-11-24T12:00:05Z</disassociate-time>
  </participantsessionassoc>
</recording>"#;

/// Partial metadata: the agent adds a third party (a phone number).
pub const THIRD_PARTY_JOINS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns="urn:ietf:params:xml:ns:recording:1">
  <datamode>partial</datamode>
  <participant participant_id="dGhpcmQtcGFydHk=">
    <nameID aor="tel:+15550100999"><name>Third party</name></nameID>
  </participant>
  <participantsessionassoc participant_id="dGhpcmQtcGFydHk=" session_id="c2Vzc2lvbi0x">
    <associate-time>2026-11-24T12:00:03Z</associate-time>
  </participantsessionassoc>
</recording>"#;

/// A re-INVITE with the same SDP and `metadata`, its 200 and the ACK.
pub fn reinvite_metadata(cseq: u32, metadata: &str) -> String {
    let mut s = send(
        &invite_with(cseq, "[last_To:]", "sendonly", Some(metadata), "[branch]"),
        true,
    );
    s.push_str("  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"200\"/>\n");
    s.push_str(&send(&in_dialog("ACK", cseq), false));
    s
}

/// Decodes any recording with ffmpeg to 8 kHz stereo s16le: (left, right).
pub fn decode_with_ffmpeg(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path.to_str().unwrap()])
        .args([
            "-f",
            "s16le",
            "-acodec",
            "pcm_s16le",
            "-ac",
            "2",
            "-ar",
            "8000",
            "-",
        ])
        .output()
        .expect("ffmpeg must be installed");
    assert!(
        out.status.success(),
        "ffmpeg cannot decode {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// As [`best_match`], searching every lag within `radius` of `center`.
pub fn best_match_near(x: &[i16], reference: &[i16], center: usize, radius: usize) -> (usize, f64) {
    let r: Vec<f64> = reference.iter().map(|&v| f64::from(v)).collect();
    let rn = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut best = (0, -1.0);
    for lag in center.saturating_sub(radius)..center + radius {
        if lag + r.len() > x.len() {
            break;
        }
        let seg = &x[lag..lag + r.len()];
        let dot: f64 = seg.iter().zip(&r).map(|(&a, b)| f64::from(a) * b).sum();
        let sn = seg
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let c = dot / (rn * sn).max(1e-9);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

/// A SIPp scenario body: a SIPREC INVITE that the server refuses with
/// `status`, and the ACK for that final response.
pub fn invite_refused(status: u16) -> String {
    let mut body = send(
        &invite(
            1,
            "To: <sip:srs@[remote_ip]:[remote_port]>",
            "sendonly",
            true,
            "[branch]",
        ),
        true,
    );
    body.push_str(&format!(
        "  <recv response=\"100\" optional=\"true\"/>\n  <recv response=\"{status}\"/>\n"
    ));
    body.push_str(&ack_final_failure("[branch-3]"));
    body
}

/// The ACK of a non-2xx final response to the initial INVITE (same
/// transaction: its `branch`).
pub fn ack_final_failure(branch: &str) -> String {
    send(
        &format!(
            "ACK sip:srs@[remote_ip]:[remote_port] SIP/2.0\n\
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}\n\
From: <sip:src@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]\n\
[last_To:]\n\
Call-ID: [call_id]\n\
CSeq: 1 ACK\n\
Max-Forwards: 70\n\
Content-Length: 0\n"
        ),
        false,
    )
}

/// A capture of the two tones most tests use, `secs` long: the agent's
/// 1 kHz on label 1 (port 6000), the end user's 400 Hz on label 2 (6002).
pub fn two_tone_capture(path: &Path, secs: f64) {
    write_pcap(
        path,
        &[
            PcapStream {
                dport: 6000,
                ssrc: 0x1111,
                samples: tone(1000.0, secs, 0.25),
            },
            PcapStream {
                dport: 6002,
                ssrc: 0x2222,
                samples: tone(400.0, secs, 0.25),
            },
        ],
    );
}

/// Scenario body: play `pcap`, a third party joins (metadata), the agent
/// leaves, `tail_ms` later BYE.
pub fn third_party_joins_then_agent_leaves(pcap: &Path, tail_ms: u64) -> String {
    let mut body = establish("sendonly");
    body.push_str(&play_and_wait(pcap, 1000));
    body.push_str(&reinvite_metadata(2, THIRD_PARTY_JOINS));
    body.push_str("  <pause milliseconds=\"500\"/>\n");
    body.push_str(&reinvite_metadata(3, AGENT_LEAVES));
    body.push_str(&format!("  <pause milliseconds=\"{tail_ms}\"/>\n"));
    body.push_str(&hang_up(4));
    body
}
