//! The RTP sockets of one call, read by the call's own task.
//!
//! Each stream has its socket; the call task waits on all of them at once
//! ([`RtpIn::recv`]) beside its SIP and timer events, so a packet costs one
//! task wake and no copy or queue: it is read into the call's buffer and
//! pushed into the timeline from there. The socket's receive buffer is the
//! queue while the call is busy (sized from `rtp.queue_packets`).
//!
//! Latching: a stream takes the first sender (address and SSRC) and keeps
//! it; another sender is taken only after the latched one has been silent
//! for a second (re-anchored SBC legs). RTCP (rtcp-mux) is skipped; what is
//! not RTP version 2 is refused and counted.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::ReadBuf;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// How long a latched sender must be silent before another is taken.
const RELATCH_AFTER: Duration = Duration::from_secs(1);

/// Largest datagram read (RTP of any codec we record fits).
const BUFFER_BYTES: usize = 2048;

/// Datagrams looked at in one poll before the call task lets others run
/// (a flood of refused packets must not hold the thread).
const PER_POLL: usize = 64;

/// The receive sockets of one call.
pub(crate) struct RtpIn {
    streams: Vec<Stream>,
    buf: Box<[u8]>,
    /// Where the next poll starts, so no socket starves the others.
    next: usize,
}

struct Stream {
    socket: UdpSocket,
    /// The recorder's stream index.
    index: usize,
    latched: Option<Latch>,
}

#[derive(Clone, Copy)]
struct Latch {
    from: SocketAddr,
    ssrc: u32,
    last: Instant,
}

/// A packet accepted by a stream; its bytes are [`RtpIn::packet`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    /// The recorder's stream index.
    pub stream: usize,
    /// When it was read.
    pub arrival: Instant,
    len: usize,
}

/// What a datagram is to its stream.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// Not RTP version 2 (or shorter than an RTP header).
    Refused,
    /// RTCP sent to the RTP port (rtcp-mux).
    Rtcp,
    /// From another sender while the latched one is still talking.
    Foreign,
}

fn judge(latched: &mut Option<Latch>, pkt: &[u8], from: SocketAddr, now: Instant) -> Verdict {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return Verdict::Refused;
    }
    if (192..=223).contains(&pkt[1]) {
        return Verdict::Rtcp;
    }
    let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
    match latched {
        Some(l) if l.from == from && l.ssrc == ssrc => l.last = now,
        Some(l) if now.saturating_duration_since(l.last) < RELATCH_AFTER => {
            return Verdict::Foreign;
        }
        _ => {
            *latched = Some(Latch {
                from,
                ssrc,
                last: now,
            })
        }
    }
    Verdict::Accept
}

fn count(metrics: &Metrics, verdict: &Verdict) {
    match verdict {
        Verdict::Refused => metrics.packets_refused.inc(),
        Verdict::Foreign => metrics.packets_foreign.inc(),
        Verdict::Accept | Verdict::Rtcp => {}
    }
}

impl RtpIn {
    pub(crate) fn new() -> RtpIn {
        RtpIn {
            streams: Vec::new(),
            buf: vec![0u8; BUFFER_BYTES].into_boxed_slice(),
            next: 0,
        }
    }

    /// Reads `socket` as the recorder's stream `index` from now on.
    pub(crate) fn add(&mut self, socket: UdpSocket, index: usize) {
        self.streams.push(Stream {
            socket,
            index,
            latched: None,
        });
    }

    /// The bytes of the packet `r` (valid until the next read).
    pub(crate) fn packet(&self, r: &Received) -> &[u8] {
        &self.buf[..r.len]
    }

    /// The next accepted packet of any stream (pending forever without
    /// streams).
    pub(crate) async fn recv(&mut self, metrics: &Metrics) -> Received {
        poll_fn(|cx| self.poll_recv(cx, metrics)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>, metrics: &Metrics) -> Poll<Received> {
        let n = self.streams.len();
        let mut looked = 0;
        for i in 0..n {
            let k = (self.next + i) % n;
            loop {
                if looked == PER_POLL {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                looked += 1;
                let stream = &mut self.streams[k];
                let mut rb = ReadBuf::new(&mut self.buf);
                let from = match stream.socket.poll_recv_from(cx, &mut rb) {
                    Poll::Pending => break,
                    Poll::Ready(Err(e)) => {
                        tracing::debug!(error = %e, "rtp receive error");
                        continue;
                    }
                    Poll::Ready(Ok(from)) => from,
                };
                let len = rb.filled().len();
                let arrival = Instant::now();
                let verdict = judge(&mut stream.latched, &self.buf[..len], from, arrival);
                if verdict == Verdict::Accept {
                    self.next = (k + 1) % n;
                    return Poll::Ready(Received {
                        stream: stream.index,
                        arrival,
                        len,
                    });
                }
                count(metrics, &verdict);
            }
        }
        Poll::Pending
    }

    /// What the sockets hold now, without waiting (the end of the call:
    /// packets already received still count).
    pub(crate) fn drain(&mut self, metrics: &Metrics, mut f: impl FnMut(usize, Instant, &[u8])) {
        for stream in &mut self.streams {
            while let Ok((len, from)) = stream.socket.try_recv_from(&mut self.buf) {
                let arrival = Instant::now();
                let verdict = judge(&mut stream.latched, &self.buf[..len], from, arrival);
                if verdict == Verdict::Accept {
                    f(stream.index, arrival, &self.buf[..len]);
                } else {
                    count(metrics, &verdict);
                }
            }
        }
    }
}

/// Sizes a stream socket's receive buffer for `packets` RTP packets (the
/// kernel caps it at `net.core.rmem_max`).
pub(crate) fn size_receive_buffer(socket: &UdpSocket, packets: usize) {
    // An skb of a small datagram takes about 1 KiB of the buffer.
    let bytes = packets.saturating_mul(1024);
    if let Err(e) = socket2::SockRef::from(socket).set_recv_buffer_size(bytes) {
        tracing::debug!(error = %e, bytes, "cannot size an RTP receive buffer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 1, 0, 0, 0, 160];
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xff; 160]);
        p
    }

    #[test]
    fn latching_refusing_and_relatching() {
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let mut l = None;
        let t0 = Instant::now();
        assert_eq!(judge(&mut l, &rtp(7), a, t0), Verdict::Accept);
        assert_eq!(judge(&mut l, &rtp(7), a, t0), Verdict::Accept);
        // Another SSRC or another address while the first talks: foreign.
        assert_eq!(judge(&mut l, &rtp(8), a, t0), Verdict::Foreign);
        assert_eq!(judge(&mut l, &rtp(7), b, t0), Verdict::Foreign);
        // Short, wrong version, RTCP.
        assert_eq!(judge(&mut l, &[0x80; 8], a, t0), Verdict::Refused);
        assert_eq!(judge(&mut l, &[0x40; 20], a, t0), Verdict::Refused);
        let mut rtcp = rtp(7);
        rtcp[1] = 200;
        assert_eq!(judge(&mut l, &rtcp, a, t0), Verdict::Rtcp);
        // After a second of silence, b is taken; then a is foreign.
        let t1 = t0 + Duration::from_millis(1000);
        assert_eq!(judge(&mut l, &rtp(9), b, t1), Verdict::Accept);
        assert_eq!(judge(&mut l, &rtp(7), a, t1), Verdict::Foreign);
    }

    #[tokio::test]
    async fn packets_of_every_stream_are_read_in_turn_and_drained_at_the_end() {
        let metrics = Metrics::default();
        let mut input = RtpIn::new();
        let mut ports = Vec::new();
        for index in [3, 5] {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            ports.push(s.local_addr().unwrap());
            input.add(s, index);
        }
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..3 {
            tx.send_to(&rtp(1), ports[0]).unwrap();
            tx.send_to(&rtp(2), ports[1]).unwrap();
        }
        tx.send_to(b"not rtp", ports[0]).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Both streams are served although the first has more waiting.
        let first = input.recv(&metrics).await;
        let second = input.recv(&metrics).await;
        assert_eq!(
            [first.stream, second.stream],
            [3, 5],
            "round robin over the sockets"
        );
        assert_eq!(input.packet(&second).len(), 172);
        let mut rest = Vec::new();
        input.drain(&metrics, |k, _, p| rest.push((k, p.len())));
        rest.sort();
        assert_eq!(rest, vec![(3, 172), (3, 172), (5, 172), (5, 172)]);
        assert_eq!(metrics.packets_refused.get(), 1);
    }
}
