//! The SIP socket's front door: every UDP datagram is checked
//! ([`callrec_siprec::sip_check`], then rsipstack's parser) before the SIP
//! stack sees it, and a malformed request is answered `400` with the reason.
//!
//! rsipstack drops a datagram it cannot parse without a word (its UDP loop
//! logs at debug level and goes on), which leaves an integrating engineer
//! with a silent SBC retransmitting into the void. [`GuardedUdp`] is the
//! socket rsipstack reads from: it receives a datagram, runs [`check`] on
//! it, passes good messages (and keep-alives, and responses) through, and
//! answers a malformed request itself, then goes on receiving. A malformed
//! response or ACK is dropped (nothing may answer them), and so is a request
//! too broken to address an answer to (no Via, Call-ID, From, To or CSeq to
//! copy). Every one is logged at warn (runs of six or more digits masked:
//! no phone numbers in logs) and counted in
//! `callrec_sip_malformed_total`. Sources outside the allowed networks get
//! no answer, as they get nothing else from callrec.
//!
//! Over TCP rsipstack closes the connection on an unparseable message; that
//! framing is its own and has no seam, so the 400 is UDP's.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::platform::net::UdpSocket as SipUdpSocket;
use tracing::warn;

use callrec_siprec::sip_check::{self, Verdict};

use crate::AppState;

/// [`sip_check::check`], then, for what it passes, rsipstack's own parser:
/// a request that parser cannot read is answered with its reason too.
pub fn check(packet: &[u8], server: &str) -> Verdict {
    match sip_check::check(packet, server) {
        Verdict::Pass if !packet.iter().all(u8::is_ascii_whitespace) => {
            match rsipstack::sip::SipMessage::try_from(packet) {
                Ok(_) => Verdict::Pass,
                Err(e) => sip_check::refuse(packet, &e.to_string(), server),
            }
        }
        verdict => verdict,
    }
}

/// The SIP UDP socket, with [`check`] in front of the stack.
pub struct GuardedUdp {
    socket: tokio::net::UdpSocket,
    state: Arc<AppState>,
}

impl GuardedUdp {
    /// Wraps the bound socket.
    pub(crate) fn new(socket: tokio::net::UdpSocket, state: Arc<AppState>) -> Self {
        GuardedUdp { socket, state }
    }

    async fn refuse(&self, verdict: Verdict, from: SocketAddr) {
        self.state.metrics.sip_malformed.inc();
        let allowed = self.state.config.sip.is_allowed(from.ip());
        match verdict {
            Verdict::Answer { reason, response } if allowed => {
                let reason = sip_check::without_numbers(&reason);
                warn!(src = %from, %reason, "malformed SIP request answered 400");
                if let Err(e) = self.socket.send_to(&response, from).await {
                    warn!(src = %from, error = %e, "could not send the 400");
                }
            }
            Verdict::Answer { reason, .. } | Verdict::Drop { reason } => {
                let reason = sip_check::without_numbers(&reason);
                warn!(src = %from, %reason, allowed, "malformed SIP message dropped");
            }
            Verdict::Pass => {}
        }
    }
}

#[async_trait::async_trait]
impl SipUdpSocket for GuardedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        loop {
            let (len, from) = self.socket.recv_from(buf).await?;
            match check(&buf[..len], &self.state.config.sip.user_agent) {
                Verdict::Pass => return Ok((len, from)),
                verdict => self.refuse(verdict, from).await,
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_rsipstack_cannot_parse_is_refused_and_the_answer_parses() {
        // Well-formed by the first look, but a Request-URI port rsipstack
        // refuses.
        let bad_port = "OPTIONS sip:srs@192.0.2.1:99999 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-9\r\n\
From: <sip:sbc@192.0.2.9>;tag=a1\r\nTo: <sip:srs@192.0.2.1>\r\nCall-ID: c-9\r\n\
CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        assert!(rsipstack::sip::SipMessage::try_from(bad_port.as_bytes()).is_err());
        match check(bad_port.as_bytes(), "callrec-test") {
            Verdict::Answer { response, .. } => {
                let r = String::from_utf8(response).unwrap();
                assert!(
                    r.starts_with("SIP/2.0 400 Malformed SIP: ") && r.contains("99999"),
                    "{r}"
                );
                // The 400 itself is a response the stack can parse.
                assert!(
                    rsipstack::sip::SipMessage::try_from(r.as_bytes()).is_ok(),
                    "{r}"
                );
            }
            other => panic!("{other:?}"),
        }
        // A response the stack cannot parse is dropped, never answered.
        assert!(matches!(
            check(b"SIP/2.0 2OO OK\r\nVia: x\r\n\r\n", "callrec-test"),
            Verdict::Drop { .. }
        ));
        // Keep-alives pass untouched.
        assert_eq!(check(b"\r\n\r\n", "callrec-test"), Verdict::Pass);
    }
}
