//! RTP streams in a packet capture (pcap or pcapng; Ethernet, Linux cooked,
//! raw IP or BSD loopback framing; IPv4 and IPv6; UDP), and the SIP in it.
//!
//! The capture is read twice by `callrec mix`: once to list the streams and
//! find the SIP offer and answer, once to feed the chosen streams to the
//! timeline. Neither pass holds more than one packet in memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use callrec_siprec::sdp::{MediaKind, SessionDescription};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::{Block, PcapNgReader};

/// A UDP datagram out of the capture.
pub struct Datagram<'a> {
    /// Capture time.
    pub at: Duration,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: &'a [u8],
}

/// Calls `f` for every UDP datagram in the capture, in capture order.
pub fn for_each_datagram(path: &Path, mut f: impl FnMut(Datagram<'_>) -> Result<()>) -> Result<()> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    reader.read_exact(&mut magic).map_err(|_| {
        anyhow!(
            "{} is not a packet capture: it is shorter than a capture header",
            path.display()
        )
    })?;
    // Re-open so the pcap readers see the header they expect.
    let reader = BufReader::new(
        File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    let not_capture = |e: pcap_file::PcapError| {
        anyhow!(
            "{} is not a pcap or pcapng capture ({e}): capture with tcpdump -w or Wireshark",
            path.display()
        )
    };
    if magic == [0x0A, 0x0D, 0x0D, 0x0A] {
        let mut ng = PcapNgReader::new(reader).map_err(not_capture)?;
        // Link types by interface id, as the capture describes its interfaces.
        let mut links: Vec<DataLink> = Vec::new();
        let mut index = 0u64;
        while let Some(block) = ng.next_block() {
            index += 1;
            let block = block
                .map_err(|e| anyhow!("{}: damaged pcapng block {index}: {e}", path.display()))?;
            let (interface, at, data): (u32, Duration, Cow<'_, [u8]>) = match block {
                Block::SectionHeader(_) => {
                    links.clear();
                    continue;
                }
                Block::InterfaceDescription(i) => {
                    links.push(i.linktype);
                    continue;
                }
                Block::EnhancedPacket(p) => (p.interface_id, p.timestamp, p.data),
                Block::SimplePacket(p) => (0, Duration::ZERO, p.data),
                _ => continue,
            };
            let Some(&link) = links.get(interface as usize) else {
                bail!(
                    "{}: packet {index} names interface {interface}, which the capture never describes",
                    path.display()
                );
            };
            if let Some(d) = udp_of(link, at, &data) {
                f(d)?;
            }
        }
    } else {
        let mut pcap = PcapReader::new(reader).map_err(not_capture)?;
        let link = pcap.header().datalink;
        let mut index = 0u64;
        while let Some(packet) = pcap.next_packet() {
            index += 1;
            let packet =
                packet.map_err(|e| anyhow!("{}: damaged packet {index}: {e}", path.display()))?;
            if let Some(d) = udp_of(link, packet.timestamp, &packet.data) {
                f(d)?;
            }
        }
    }
    Ok(())
}

fn udp_of(link: DataLink, at: Duration, data: &[u8]) -> Option<Datagram<'_>> {
    let sliced = match link {
        DataLink::ETHERNET => SlicedPacket::from_ethernet(data),
        DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => SlicedPacket::from_ip(data),
        // BSD loopback: a 4-byte address family, then IP.
        DataLink::NULL | DataLink::LOOP => SlicedPacket::from_ip(data.get(4..)?),
        _ => return None,
    }
    .ok()?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match sliced.net? {
        NetSlice::Ipv4(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(ip) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        NetSlice::Arp(_) => return None,
    };
    let TransportSlice::Udp(udp) = sliced.transport? else {
        return None;
    };
    Some(Datagram {
        at,
        src: SocketAddr::new(src_ip, udp.source_port()),
        dst: SocketAddr::new(dst_ip, udp.destination_port()),
        payload: udp.payload(),
    })
}

/// One RTP stream: one SSRC from one source address to one destination.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
}

/// What the first pass learnt of one RTP stream.
#[derive(Debug, Clone)]
pub struct RtpStream {
    pub key: StreamKey,
    pub packets: u64,
    /// Packets per payload type.
    pub payload_types: BTreeMap<u8, u64>,
    pub first: Duration,
    pub last: Duration,
    /// RTP ticks of one packet (timestamp step between the first two
    /// consecutive packets), if seen.
    pub frame_ticks: Option<u32>,
    /// Sequence number and timestamp of the last packet, for `frame_ticks`.
    last_seq_ts: (u16, u32),
}

impl RtpStream {
    /// The payload type that carries most of the stream's packets.
    pub fn main_payload_type(&self) -> Option<u8> {
        self.payload_types
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(pt, _)| *pt)
    }
}

impl fmt::Display for RtpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pts: Vec<String> = self.payload_types.keys().map(|pt| pt.to_string()).collect();
        write!(
            f,
            "ssrc 0x{:08X} from {} to {}: {} packets, payload type {}, {:.1} s",
            self.key.ssrc,
            self.key.src,
            self.key.dst,
            self.packets,
            pts.join("/"),
            (self.last.saturating_sub(self.first)).as_secs_f64()
        )
    }
}

/// The audio part of one SDP body seen in the capture's SIP.
#[derive(Debug, Clone, Default)]
pub struct SdpAudio {
    /// Where this side receives its audio (and, by symmetric RTP, sends from).
    pub addr: Option<SocketAddr>,
    /// `a=rtpmap` lines: payload type -> (encoding name, clock rate, channels).
    pub rtpmap: BTreeMap<u8, (String, u32, Option<u8>)>,
}

/// What the first pass found in the capture.
#[derive(Debug, Default)]
pub struct Scan {
    pub streams: Vec<RtpStream>,
    /// The SDP of the first INVITE (the caller's side).
    pub caller_sdp: Option<SdpAudio>,
    /// The SDP of the first 2xx answer to it (the callee's side).
    pub callee_sdp: Option<SdpAudio>,
}

/// Whether a UDP payload looks like RTP (version 2, not RTCP, long enough).
fn looks_like_rtp(p: &[u8]) -> bool {
    p.len() >= 12 && p[0] >> 6 == 2 && !(72..=76).contains(&(p[1] & 0x7F))
}

/// The first pass: lists the RTP streams and finds the SIP offer/answer.
pub fn scan(path: &Path) -> Result<Scan> {
    let mut streams: BTreeMap<StreamKey, RtpStream> = BTreeMap::new();
    let mut scan = Scan::default();
    for_each_datagram(path, |d| {
        if let Some(key) = stream_key(&d) {
            let p = d.payload;
            let seq = u16::from_be_bytes([p[2], p[3]]);
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            let s = streams.entry(key.clone()).or_insert_with(|| RtpStream {
                key,
                packets: 0,
                payload_types: BTreeMap::new(),
                first: d.at,
                last: d.at,
                frame_ticks: None,
                last_seq_ts: (seq.wrapping_sub(2), ts),
            });
            if s.frame_ticks.is_none() && s.last_seq_ts.0.wrapping_add(1) == seq {
                let step = ts.wrapping_sub(s.last_seq_ts.1);
                if step > 0 && step < 48_000 {
                    s.frame_ticks = Some(step);
                }
            }
            s.last_seq_ts = (seq, ts);
            s.packets += 1;
            *s.payload_types.entry(p[1] & 0x7F).or_default() += 1;
            s.last = d.at;
        } else if let Ok(text) = std::str::from_utf8(d.payload) {
            if scan.caller_sdp.is_none() && text.starts_with("INVITE ") {
                scan.caller_sdp = sip_sdp(text);
            } else if scan.caller_sdp.is_some() && scan.callee_sdp.is_none() && is_invite_2xx(text)
            {
                scan.callee_sdp = sip_sdp(text);
            }
        }
        Ok(())
    })?;
    let mut list: Vec<RtpStream> = streams.into_values().filter(|s| s.packets >= 2).collect();
    list.sort_by_key(|s| (s.first, s.key.clone()));
    scan.streams = list;
    Ok(scan)
}

fn is_invite_2xx(text: &str) -> bool {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    first.starts_with("SIP/2.0 2")
        && lines.any(|l| {
            let l = l.to_ascii_lowercase();
            (l.starts_with("cseq:") || l.starts_with("cseq :")) && l.contains("invite")
        })
}

/// The audio address and rtpmap of the SDP body of a SIP message, if any
/// (the first audio m-line with a port), read with `callrec-siprec`'s parser.
fn sip_sdp(text: &str) -> Option<SdpAudio> {
    let body = text
        .split_once("\r\n\r\n")
        .or_else(|| text.split_once("\n\n"))?
        .1;
    let sdp = SessionDescription::parse(body.as_bytes()).ok()?;
    let (index, media) = sdp
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| m.kind == MediaKind::Audio && m.port != 0)?;
    let ip = sdp.effective_connection(index)?.ip()?;
    Some(SdpAudio {
        addr: Some(SocketAddr::new(ip, media.port)),
        rtpmap: media
            .rtpmaps
            .iter()
            .map(|m| {
                (
                    m.payload_type,
                    (m.encoding.clone(), m.clock_rate, m.channels),
                )
            })
            .collect(),
    })
}

/// The stream a UDP datagram belongs to, if it looks like RTP.
pub fn stream_key(d: &Datagram<'_>) -> Option<StreamKey> {
    let p = d.payload;
    looks_like_rtp(p).then(|| StreamKey {
        src: d.src,
        dst: d.dst,
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_is_told_from_rtcp_and_text() {
        let mut rtp = [0u8; 12];
        rtp[0] = 0x80;
        rtp[1] = 8;
        assert!(looks_like_rtp(&rtp));
        rtp[1] = 200 & 0x7F | 0x80; // RTCP sender report
        assert!(!looks_like_rtp(&rtp));
        assert!(!looks_like_rtp(b"INVITE sip:x SIP/2.0\r\n"));
        assert!(!looks_like_rtp(&[0x80, 0]));
    }

    #[test]
    fn sdp_of_an_invite_gives_the_audio_address_and_rtpmap() {
        let msg = "INVITE sip:a@b SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\nv=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        let sdp = sip_sdp(msg).unwrap();
        assert_eq!(sdp.addr, Some("10.0.0.1:4000".parse().unwrap()));
        assert_eq!(sdp.rtpmap.len(), 1, "the video rtpmap is not audio");
        assert_eq!(sdp.rtpmap[&101].0, "telephone-event");
    }

    #[test]
    fn a_2xx_to_invite_is_recognised() {
        assert!(is_invite_2xx("SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n"));
        assert!(!is_invite_2xx("SIP/2.0 200 OK\r\nCSeq: 2 BYE\r\n\r\n"));
        assert!(!is_invite_2xx(
            "SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\n\r\n"
        ));
    }
}
