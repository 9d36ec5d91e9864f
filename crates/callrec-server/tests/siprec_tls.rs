//! SIPREC over TLS: a recording client on a real TLS connection (rustls,
//! trusting the server's self-signed certificate made here with rcgen)
//! opens a recording session, sends two G.711 streams over UDP, hangs up;
//! the recording has the end user's 400 Hz on the left and the agent's
//! 1 kHz on the right. SIPp has no TLS in Debian's build, so the client is
//! this test's own SIP over a rustls stream.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

const AGENT_HZ: f64 = 1000.0;
const USER_HZ: f64 = 400.0;

/// One SIP message from the stream: head up to the blank line, then
/// Content-Length bytes of body.
async fn read_message(s: &mut TlsStream<tokio::net::TcpStream>, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim().eq_ignore_ascii_case("content-length") || k.trim() == "l")
                        .then(|| v.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let msg = String::from_utf8_lossy(&buf[..end + 4 + len]).to_string();
                buf.drain(..end + 4 + len);
                return msg;
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "the server closed the TLS connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// The two m-line ports of an SDP answer.
fn answered_ports(msg: &str) -> Vec<u16> {
    msg.lines()
        .filter_map(|l| l.strip_prefix("m=audio "))
        .map(|l| l.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_siprec_session_over_tls_is_recorded_end_user_left_agent_right() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_pem = made.cert.pem();
    let cert_path = dir.path().join("srs.crt");
    let key_path = dir.path().join("srs.key");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, made.signing_key.serialize_pem()).unwrap();
    let tls: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = Server::start(|c| {
        c.sip.tls_listen = Some(tls);
        c.sip.tls_certificate = Some(cert_path.clone());
        c.sip.tls_private_key = Some(key_path.clone());
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rtp_a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rtp_b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (port_a, port_b) = (
        rtp_a.local_addr().unwrap().port(),
        rtp_b.local_addr().unwrap().port(),
    );
    rt.block_on(async {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(tls).await.unwrap();
        let me = tcp.local_addr().unwrap();
        let mut s = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .expect("TLS handshake with the server's certificate");
        let mut buf = Vec::new();
        let via = |branch: &str| format!("Via: SIP/2.0/TLS {me};branch=z9hG4bK-{branch}");
        let from = format!("From: <sip:src@{me}>;tag=src1");
        let common_headers = |branch: &str, cseq: &str, to: &str| {
            format!(
                "{}\r\n{from}\r\nTo: {to}\r\nCall-ID: tls-1@test\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n",
                via(branch)
            )
        };
        let plain_to = format!("<sip:srs@{tls}>");

        // OPTIONS keep-alive over TLS.
        let options = format!(
            "OPTIONS sip:srs@{tls};transport=tls SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            common_headers("o1", "1 OPTIONS", &plain_to)
        )
        .replace("Call-ID: tls-1@test", "Call-ID: tls-options@test");
        s.write_all(options.as_bytes()).await.unwrap();
        let answer = read_message(&mut s, &mut buf).await;
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");

        // The recording session.
        let sdp = format!(
            "v=0\r\no=SRC 1 1 IN IP4 127.0.0.1\r\ns=SIPREC\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio {port_a} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:1\r\na=sendonly\r\n\
m=audio {port_b} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:2\r\na=sendonly\r\n"
        );
        let body = format!(
            "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}--b1\r\n\
Content-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n\
{METADATA}\r\n--b1--\r\n"
        );
        let invite = format!(
            "INVITE sip:srs@{tls};transport=tls SIP/2.0\r\n{}\
Contact: <sip:src@{me};transport=tls>;+sip.src\r\nRequire: siprec\r\n\
Content-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
            common_headers("i1", "1 INVITE", &plain_to),
            body.len()
        );
        s.write_all(invite.as_bytes()).await.unwrap();
        let ok = loop {
            let m = read_message(&mut s, &mut buf).await;
            if !m.starts_with("SIP/2.0 1") {
                break m;
            }
        };
        assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
        let contact = header(&ok, "Contact").unwrap();
        assert!(
            contact.contains(&format!("sip:srs@{tls};transport=tls")) && contact.contains("+sip.srs"),
            "Contact: {contact}"
        );
        let to = header(&ok, "To").unwrap().to_owned();
        let ports = answered_ports(&ok);
        assert_eq!(ports.len(), 2, "{ok}");
        let ack = format!(
            "ACK sip:srs@{tls};transport=tls SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            common_headers("a1", "1 ACK", &to)
        );
        s.write_all(ack.as_bytes()).await.unwrap();

        // Two seconds of each tone, 20 ms packets: the agent on label 1,
        // the end user on label 2 (as the metadata says).
        let agent = tone(AGENT_HZ, 2.0, 0.25);
        let user = tone(USER_HZ, 2.0, 0.25);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (i, (a, u)) in agent.chunks(160).zip(user.chunks(160)).enumerate() {
            tick.tick().await;
            for (sock, samples, ssrc, port) in
                [(&rtp_a, a, 0x1111u32, ports[0]), (&rtp_b, u, 0x2222, ports[1])]
            {
                let mut pkt = vec![0x80, 0];
                pkt.extend_from_slice(&(i as u16).to_be_bytes());
                pkt.extend_from_slice(&((i * 160) as u32).to_be_bytes());
                pkt.extend_from_slice(&ssrc.to_be_bytes());
                pkt.extend(samples.iter().map(|&v| ulaw(v)));
                sock.send_to(&pkt, ("127.0.0.1", port)).unwrap();
            }
        }

        let bye = format!(
            "BYE sip:srs@{tls};transport=tls SIP/2.0\r\n{}Content-Length: 0\r\n\r\n",
            common_headers("b2", "2 BYE", &to)
        );
        s.write_all(bye.as_bytes()).await.unwrap();
        let answer = read_message(&mut s, &mut buf).await;
        assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
        assert!(answer.contains("CSeq: 2 BYE"), "{answer}");
    });

    let rec = server.next_recording(30);
    assert_eq!(
        rec.metadata["end_reason"], "bye_from_recording_client",
        "{}",
        rec.metadata
    );
    let (left, right) = read_stereo_wav(&rec.audio_path);
    let secs = left.len() as f64 / 8000.0;
    assert!((1.8..3.5).contains(&secs), "duration {secs} s");
    let (user_left, user_right) = (tone_db(&left, USER_HZ), tone_db(&right, USER_HZ));
    let (agent_left, agent_right) = (tone_db(&left, AGENT_HZ), tone_db(&right, AGENT_HZ));
    assert!(
        user_left > -20.0,
        "end user's tone on the left: {user_left:.1} dB"
    );
    assert!(
        agent_right > -20.0,
        "agent's tone on the right: {agent_right:.1} dB"
    );
    assert!(
        user_left - user_right > 40.0 && agent_right - agent_left > 40.0,
        "crosstalk: user {user_left:.1}/{user_right:.1} dB, agent {agent_left:.1}/{agent_right:.1} dB"
    );
}
