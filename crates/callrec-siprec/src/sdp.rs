//! SDP offers from recording clients and the recording server's answers.
//!
//! [`SessionDescription::parse`] reads an offer (RFC 8866) as SBCs send it in
//! SIPREC: any number of m-lines, `a=label` of any form, `c=` at session or
//! media level (IPv4 or IPv6), `a=rtpmap`, `a=fmtp`, `a=rtcp`, `a=ptime` and
//! the direction attributes (`a=inactive` in a first offer is legal).
//! [`build_answer`] makes the SRS answer (RFC 3264, RFC 7866): one m-line per
//! offered m-line in the same order, each recordable audio stream answered
//! `recvonly` on a port that the caller allocated, with the codecs restricted
//! to what callrec decodes, the label echoed; everything else gets port 0.
//!
//! No I/O and no port allocation here: the caller passes the ports. Parsing
//! must never panic, whatever the bytes: it is fuzzed.

use std::fmt::Write as _;
use std::net::IpAddr;

use thiserror::Error;

use crate::multipart::cut;

/// What was wrong with an SDP body, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    /// The body is not UTF-8.
    #[error("sdp is not utf-8 text (byte {0})")]
    NotUtf8(usize),
    /// The body has no `v=` line or it is not `v=0`.
    #[error("sdp does not start with v=0")]
    MissingVersion,
    /// A line is not `<letter>=<value>`.
    #[error("sdp line {line}: expected <letter>=<value>, found {text:?}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line, cut to 80 characters.
        text: String,
    },
    /// An m-line with missing or malformed fields.
    #[error("sdp line {line}: bad m= line ({reason})")]
    BadMedia {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// A `c=` line with missing fields.
    #[error("sdp line {line}: bad c= line, expected IN IP4|IP6 <address>")]
    BadConnection {
        /// 1-based line number.
        line: usize,
    },
    /// An `a=rtpmap` that is not `<pt> <name>/<rate>[/<channels>]`.
    #[error("sdp line {line}: bad a=rtpmap, expected <payload type> <encoding>/<clock rate>")]
    BadRtpmap {
        /// 1-based line number.
        line: usize,
    },
}

/// What was wrong with the caller's input to [`build_answer`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnswerError {
    /// One port (or `None`) is needed per offered m-line.
    #[error("answer needs one port per offered m-line: offer has {offered}, {given} ports given")]
    PortCount {
        /// m-lines in the offer.
        offered: usize,
        /// Entries given.
        given: usize,
    },
}

/// Media direction attributes (RFC 8866 section 6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `a=sendrecv` (the default).
    SendRecv,
    /// `a=sendonly`: what SIPREC clients normally offer.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`: no media for now (hold, pause).
    Inactive,
}

impl Direction {
    /// The attribute name (`sendrecv`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// Whether the offerer will send media in this direction.
    pub fn offerer_sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
}

/// A `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `IP4` or `IP6` as written (uppercased).
    pub addr_type: String,
    /// The address as written, without a multicast `/ttl` suffix.
    pub address: String,
}

impl Connection {
    /// The address as an IP, if it is a literal (it may be a host name).
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// The media type of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`: always declined.
    Video,
    /// Any other (`application`, `text`, `message`, ...): declined.
    Other(String),
}

impl MediaKind {
    fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            other => MediaKind::Other(other.to_string()),
        }
    }

    /// The SDP token.
    pub fn as_str(&self) -> &str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Other(s) => s,
        }
    }
}

/// An `a=rtpmap` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name as written (e.g. `PCMU`, `opus`).
    pub encoding: String,
    /// The RTP clock rate.
    pub clock_rate: u32,
    /// The encoding parameters (channels for audio), if given.
    pub channels: Option<u8>,
}

/// An `a=rtcp` attribute (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, if given.
    pub connection: Option<Connection>,
}

/// One m-line and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub kind: MediaKind,
    /// The media port (0 means the offerer disabled the stream).
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u16>,
    /// The transport protocol as written (e.g. `RTP/AVP`).
    pub proto: String,
    /// The format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// The media-level `c=`, if any.
    pub connection: Option<Connection>,
    /// The `a=label` (RFC 4574), any text: digits, words, UUIDs.
    pub label: Option<String>,
    /// The media-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// The `a=rtpmap` attributes in order.
    pub rtpmaps: Vec<RtpMap>,
    /// The `a=fmtp` attributes as (payload type, parameters).
    pub fmtps: Vec<(u8, String)>,
    /// The `a=rtcp` attribute, if any.
    pub rtcp: Option<Rtcp>,
    /// `a=ptime` in milliseconds, if any.
    pub ptime: Option<u32>,
    /// Whether `a=rtcp-mux` was offered.
    pub rtcp_mux: bool,
    /// Every attribute as (name, value) in order, known ones included.
    pub attributes: Vec<(String, Option<String>)>,
}

impl MediaDescription {
    /// The codecs callrec decodes among the offered formats, in the
    /// offerer's order of preference.
    pub fn supported_codecs(&self) -> Vec<(u8, Codec)> {
        let mut out = Vec::new();
        for f in &self.formats {
            let Ok(pt) = f.parse::<u8>() else { continue };
            if pt > 127 {
                continue;
            }
            let codec = match self.rtpmaps.iter().find(|m| m.payload_type == pt) {
                Some(map) => Codec::from_rtpmap(map),
                None => Codec::from_static(pt),
            };
            if let Some(codec) = codec
                && !out.iter().any(|(p, _)| *p == pt)
            {
                out.push((pt, codec));
            }
        }
        out
    }

    /// Whether callrec can record this stream: audio over plain RTP with at
    /// least one codec that it decodes (telephone-event alone is not enough),
    /// and a port that the offerer did not set to 0.
    pub fn is_recordable(&self) -> bool {
        self.kind == MediaKind::Audio
            && self.port != 0
            && matches!(
                self.proto.to_ascii_uppercase().as_str(),
                "RTP/AVP" | "RTP/AVPF"
            )
            && self
                .supported_codecs()
                .iter()
                .any(|(_, c)| !matches!(c, Codec::TelephoneEvent { .. }))
    }

    fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, v)| v.as_str())
    }
}

/// A codec that callrec decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 mu-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// G.722 (RTP clock 8000, audio 16 kHz).
    G722,
    /// Opus, RTP clock 48000, 2 channels in SDP.
    Opus,
    /// RFC 4733 DTMF events at the given clock rate.
    TelephoneEvent {
        /// The RTP clock rate.
        clock_rate: u32,
    },
}

impl Codec {
    fn from_static(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }

    fn from_rtpmap(map: &RtpMap) -> Option<Self> {
        let name = map.encoding.to_ascii_lowercase();
        match (name.as_str(), map.clock_rate) {
            ("pcmu", 8000) if map.channels.unwrap_or(1) == 1 => Some(Codec::Pcmu),
            ("pcma", 8000) if map.channels.unwrap_or(1) == 1 => Some(Codec::Pcma),
            ("g722", 8000) if map.channels.unwrap_or(1) == 1 => Some(Codec::G722),
            ("opus", 48000) if map.channels == Some(2) => Some(Codec::Opus),
            ("telephone-event", rate) if rate > 0 => {
                Some(Codec::TelephoneEvent { clock_rate: rate })
            }
            _ => None,
        }
    }

    /// The rtpmap value (`PCMU/8000`, `opus/48000/2`, ...).
    pub fn rtpmap(self) -> String {
        match self {
            Codec::Pcmu => "PCMU/8000".into(),
            Codec::Pcma => "PCMA/8000".into(),
            Codec::G722 => "G722/8000".into(),
            Codec::Opus => "opus/48000/2".into(),
            Codec::TelephoneEvent { clock_rate } => format!("telephone-event/{clock_rate}"),
        }
    }
}

/// A parsed SDP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line's value as written, if any.
    pub origin: Option<String>,
    /// The `s=` value.
    pub session_name: Option<String>,
    /// The session-level `c=`, if any.
    pub connection: Option<Connection>,
    /// The session-level direction attribute, if any.
    pub direction: Option<Direction>,
    /// Session-level attributes as (name, value) in order.
    pub attributes: Vec<(String, Option<String>)>,
    /// The m-lines in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body. CRLF and bare LF line ends are both accepted;
    /// unknown line types and attributes are kept or skipped, never refused.
    pub fn parse(body: &[u8]) -> Result<Self, SdpError> {
        let text = std::str::from_utf8(body).map_err(|e| SdpError::NotUtf8(e.valid_up_to()))?;
        let mut sdp = SessionDescription {
            origin: None,
            session_name: None,
            connection: None,
            direction: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut seen_version = false;
        for (idx, raw) in text.split('\n').enumerate() {
            let line_no = idx + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw).trim_end();
            if line.is_empty() {
                continue;
            }
            let bytes = line.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_alphabetic() {
                return Err(SdpError::BadLine {
                    line: line_no,
                    text: cut(line, 80),
                });
            }
            let value = &line[2..];
            if !seen_version {
                if bytes[0] == b'v' && value.trim() == "0" {
                    seen_version = true;
                    continue;
                }
                return Err(SdpError::MissingVersion);
            }
            match bytes[0] {
                b'o' if sdp.media.is_empty() => sdp.origin = Some(value.to_string()),
                b's' if sdp.media.is_empty() => sdp.session_name = Some(value.to_string()),
                b'c' => {
                    let c = parse_connection(value, line_no)?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => sdp.connection = Some(c),
                    }
                }
                b'm' => sdp.media.push(parse_media(value, line_no)?),
                b'a' => {
                    let (name, val) = match value.split_once(':') {
                        Some((n, v)) => (n.trim(), Some(v.trim())),
                        None => (value.trim(), None),
                    };
                    match sdp.media.last_mut() {
                        Some(m) => apply_media_attribute(m, name, val, line_no)?,
                        None => {
                            if let Some(d) = Direction::parse(name) {
                                sdp.direction = Some(d);
                            }
                            sdp.attributes
                                .push((name.to_string(), val.map(str::to_string)));
                        }
                    }
                }
                _ => {}
            }
        }
        if !seen_version {
            return Err(SdpError::MissingVersion);
        }
        Ok(sdp)
    }

    /// The direction in force for m-line `index`: media level, else session
    /// level, else `sendrecv`.
    pub fn effective_direction(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(|m| m.direction)
            .or(self.direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// The connection in force for m-line `index`: media level, else session.
    pub fn effective_connection(&self, index: usize) -> Option<&Connection> {
        self.media
            .get(index)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }

    /// Indexes of the m-lines that callrec can record, for which the caller
    /// should allocate ports.
    pub fn recordable_streams(&self) -> Vec<usize> {
        (0..self.media.len())
            .filter(|&i| self.media[i].is_recordable())
            .collect()
    }

    /// The labels of the recordable m-lines, in m-line order. A recordable
    /// m-line without `a=label` is named by its index (`"#2"`), so that every
    /// recorded stream has a key.
    pub fn recordable_labels(&self) -> Vec<String> {
        self.recordable_streams()
            .into_iter()
            .map(|i| stream_key(&self.media[i], i))
            .collect()
    }
}

/// The key of an m-line: its label, or `#<index>` when it has none.
pub fn stream_key(m: &MediaDescription, index: usize) -> String {
    m.label.clone().unwrap_or_else(|| format!("#{index}"))
}

fn parse_connection(value: &str, line: usize) -> Result<Connection, SdpError> {
    let mut it = value.split_whitespace();
    let (Some(_net), Some(addr_type), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::BadConnection { line });
    };
    let address = addr.split('/').next().unwrap_or(addr).to_string();
    Ok(Connection {
        addr_type: addr_type.to_ascii_uppercase(),
        address,
    })
}

fn parse_media(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let mut it = value.split_whitespace();
    let bad = |reason| SdpError::BadMedia { line, reason };
    let kind = it.next().ok_or_else(|| bad("no media type"))?;
    let port_field = it.next().ok_or_else(|| bad("no port"))?;
    let proto = it.next().ok_or_else(|| bad("no protocol"))?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (
            p,
            Some(n.parse().map_err(|_| bad("port count is not a number"))?),
        ),
        None => (port_field, None),
    };
    let port = port
        .parse()
        .map_err(|_| bad("port is not a number 0-65535"))?;
    Ok(MediaDescription {
        kind: MediaKind::parse(kind),
        port,
        port_count,
        proto: proto.to_string(),
        formats: it.map(str::to_string).collect(),
        connection: None,
        label: None,
        direction: None,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        rtcp: None,
        ptime: None,
        rtcp_mux: false,
        attributes: Vec::new(),
    })
}

fn apply_media_attribute(
    m: &mut MediaDescription,
    name: &str,
    value: Option<&str>,
    line: usize,
) -> Result<(), SdpError> {
    m.attributes
        .push((name.to_string(), value.map(str::to_string)));
    if let Some(d) = Direction::parse(name) {
        m.direction = Some(d);
        return Ok(());
    }
    match (name, value) {
        ("label", Some(v)) if !v.is_empty() => m.label = Some(v.to_string()),
        ("rtpmap", Some(v)) => m.rtpmaps.push(parse_rtpmap(v, line)?),
        ("fmtp", Some(v)) => {
            let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            // An fmtp for a non-numeric format is not ours to read.
            if let Ok(pt) = pt.parse::<u8>() {
                m.fmtps.push((pt, params.trim().to_string()));
            }
        }
        ("ptime", Some(v)) => m.ptime = v.parse().ok(),
        ("rtcp", Some(v)) => {
            let mut it = v.split_whitespace();
            if let Some(Ok(port)) = it.next().map(str::parse::<u16>) {
                let rest: Vec<&str> = it.collect();
                let connection = (rest.len() >= 3).then(|| Connection {
                    addr_type: rest[1].to_ascii_uppercase(),
                    address: rest[2].to_string(),
                });
                m.rtcp = Some(Rtcp { port, connection });
            }
        }
        ("rtcp-mux", _) => m.rtcp_mux = true,
        _ => {}
    }
    Ok(())
}

fn parse_rtpmap(v: &str, line: usize) -> Result<RtpMap, SdpError> {
    let bad = || SdpError::BadRtpmap { line };
    let (pt, rest) = v.split_once(char::is_whitespace).ok_or_else(bad)?;
    let payload_type = pt.parse::<u8>().map_err(|_| bad())?;
    let mut parts = rest.trim().split('/');
    let encoding = parts.next().filter(|s| !s.is_empty()).ok_or_else(bad)?;
    let clock_rate = parts
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(bad)?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse().map_err(|_| bad())?),
        None => None,
    };
    Ok(RtpMap {
        payload_type,
        encoding: encoding.to_string(),
        clock_rate,
        channels,
    })
}

/// What the SRS puts in its answer besides the streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerParams {
    /// The address RTP should be sent to (goes into `o=` and `c=`).
    pub address: IpAddr,
    /// The `o=` session id (stable for the dialog).
    pub session_id: u64,
    /// The `o=` version: increment it on every new answer in the dialog.
    pub session_version: u64,
}

/// How one offered m-line was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsweredStream {
    /// The m-line index in the offer and the answer.
    pub index: usize,
    /// The offered label, if any.
    pub label: Option<String>,
    /// The answered port; 0 when declined.
    pub port: u16,
    /// The direction answered (`recvonly` or `inactive`).
    pub direction: Direction,
    /// The payload types accepted and what they carry, in answer order;
    /// empty when declined.
    pub codecs: Vec<(u8, Codec)>,
}

impl AnsweredStream {
    /// Whether the stream was accepted (a non-zero port).
    pub fn accepted(&self) -> bool {
        self.port != 0
    }

    /// The stream's key in the channel map: its label, or `#<index>` when
    /// it had none (as [`SessionDescription::recordable_labels`] names it).
    pub fn key(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| format!("#{}", self.index))
    }
}

/// The SRS answer: the SDP text and what it says per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The SDP body, CRLF line ends.
    pub sdp: String,
    /// One entry per m-line, in order.
    pub streams: Vec<AnsweredStream>,
}

/// Builds the recording server's answer to `offer`.
///
/// `ports` has one entry per offered m-line: `Some(port)` for a stream the
/// caller allocated a port for, `None` to decline it. A stream that callrec
/// cannot record ([`MediaDescription::is_recordable`]) is declined (port 0)
/// whatever port was given. Accepted streams are answered `recvonly`, or
/// `inactive` when the offer is `inactive` or `recvonly`.
pub fn build_answer(
    offer: &SessionDescription,
    ports: &[Option<u16>],
    params: &AnswerParams,
) -> Result<Answer, AnswerError> {
    if ports.len() != offer.media.len() {
        return Err(AnswerError::PortCount {
            offered: offer.media.len(),
            given: ports.len(),
        });
    }
    let ip_type = if params.address.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    };
    let mut sdp = String::new();
    // Writing to a String cannot fail.
    let _ = write!(
        sdp,
        "v=0\r\no=callrec {} {} IN {ip_type} {}\r\ns=callrec\r\nc=IN {ip_type} {}\r\nt=0 0\r\n",
        params.session_id, params.session_version, params.address, params.address
    );
    let mut streams = Vec::with_capacity(offer.media.len());
    for (index, (m, port)) in offer.media.iter().zip(ports).enumerate() {
        let port = port.filter(|&p| p != 0 && m.is_recordable());
        let offered_direction = offer.effective_direction(index);
        let direction = if offered_direction.offerer_sends() {
            Direction::RecvOnly
        } else {
            Direction::Inactive
        };
        let proto = if m.proto.is_empty() {
            "RTP/AVP"
        } else {
            &m.proto
        };
        match port {
            Some(port) => {
                let codecs = m.supported_codecs();
                let fmts: Vec<String> = codecs.iter().map(|(pt, _)| pt.to_string()).collect();
                let _ = write!(sdp, "m=audio {port} {proto} {}\r\n", fmts.join(" "));
                for (pt, codec) in &codecs {
                    let _ = write!(sdp, "a=rtpmap:{pt} {}\r\n", codec.rtpmap());
                    if let Some(f) = m.fmtp(*pt).filter(|f| !f.is_empty()) {
                        let _ = write!(sdp, "a=fmtp:{pt} {f}\r\n");
                    }
                }
                if let Some(label) = &m.label {
                    let _ = write!(sdp, "a=label:{label}\r\n");
                }
                let _ = write!(sdp, "a={}\r\n", direction.as_str());
                streams.push(AnsweredStream {
                    index,
                    label: m.label.clone(),
                    port,
                    direction,
                    codecs,
                });
            }
            None => {
                // RFC 3264 6: a declined stream keeps its media type and
                // protocol, port 0, and at least one format.
                let fmts = if m.formats.is_empty() {
                    "0".to_string()
                } else {
                    m.formats.join(" ")
                };
                let _ = write!(sdp, "m={} 0 {proto} {fmts}\r\n", m.kind.as_str());
                if let Some(label) = &m.label {
                    let _ = write!(sdp, "a=label:{label}\r\n");
                }
                streams.push(AnsweredStream {
                    index,
                    label: m.label.clone(),
                    port: 0,
                    direction: Direction::Inactive,
                    codecs: Vec::new(),
                });
            }
        }
    }
    Ok(Answer { sdp, streams })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=SBC 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 10000 RTP/AVP 8 0 101 18\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=rtpmap:18 G729/8000\r\na=ptime:20\r\na=rtcp:10001\r\na=label:1\r\na=sendonly\r\n\
m=audio 10002 RTP/AVP 0\r\nc=IN IP6 2001:db8::7\r\na=label:caller-leg\r\na=inactive\r\n\
m=video 10004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=label:v\r\na=sendonly\r\n";

    fn params() -> AnswerParams {
        AnswerParams {
            address: "203.0.113.5".parse().unwrap(),
            session_id: 42,
            session_version: 1,
        }
    }

    #[test]
    fn parses_media_lines() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(sdp.media.len(), 3);
        let m0 = &sdp.media[0];
        assert_eq!(m0.port, 10000);
        assert_eq!(m0.label.as_deref(), Some("1"));
        assert_eq!(m0.direction, Some(Direction::SendOnly));
        assert_eq!(m0.ptime, Some(20));
        assert_eq!(m0.rtcp.as_ref().map(|r| r.port), Some(10001));
        assert_eq!(
            m0.supported_codecs(),
            vec![
                (8, Codec::Pcma),
                (0, Codec::Pcmu),
                (101, Codec::TelephoneEvent { clock_rate: 8000 })
            ]
        );
        assert_eq!(
            sdp.effective_connection(1).and_then(Connection::ip),
            Some("2001:db8::7".parse().unwrap())
        );
        assert_eq!(
            sdp.effective_connection(0).and_then(Connection::ip),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(sdp.effective_direction(1), Direction::Inactive);
        assert_eq!(sdp.recordable_streams(), vec![0, 1]);
    }

    #[test]
    fn answer_is_recvonly_with_our_codecs_and_declines_video() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        let a = build_answer(&sdp, &[Some(40000), Some(40002), Some(40004)], &params()).unwrap();
        assert_eq!(
            a.sdp,
            "v=0\r\no=callrec 42 1 IN IP4 203.0.113.5\r\ns=callrec\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=label:1\r\na=recvonly\r\n\
m=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=label:caller-leg\r\na=inactive\r\n\
m=video 0 RTP/AVP 96\r\na=label:v\r\n"
        );
        assert_eq!(a.streams[2].port, 0);
        assert_eq!(a.streams[1].key(), "caller-leg");
        assert!(!a.streams[2].accepted());
        assert_eq!(a.streams[1].direction, Direction::Inactive);
    }

    #[test]
    fn answer_direction_follows_the_offer() {
        let check = |session: &str, media: &str, expected: Direction| {
            let text = format!("v=0\r\n{session}m=audio 5 RTP/AVP 0\r\n{media}");
            let sdp = SessionDescription::parse(text.as_bytes()).unwrap();
            let a = build_answer(&sdp, &[Some(7)], &params()).unwrap();
            assert_eq!(a.streams[0].direction, expected, "{session:?} {media:?}");
            assert!(a.sdp.contains(&format!("a={}\r\n", expected.as_str())));
        };
        check("", "a=sendonly\r\n", Direction::RecvOnly);
        check("", "a=sendrecv\r\n", Direction::RecvOnly);
        check("", "", Direction::RecvOnly);
        check("", "a=recvonly\r\n", Direction::Inactive);
        check("", "a=inactive\r\n", Direction::Inactive);
        check("a=inactive\r\n", "", Direction::Inactive);
        check("a=inactive\r\n", "a=sendonly\r\n", Direction::RecvOnly);
    }

    #[test]
    fn answer_needs_one_port_per_m_line() {
        let sdp = SessionDescription::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(
            build_answer(&sdp, &[Some(1)], &params()),
            Err(AnswerError::PortCount {
                offered: 3,
                given: 1
            })
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let check = |input: &str, expected: &str| {
            let err = SessionDescription::parse(input.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), expected, "for {input:?}");
        };
        check("o=x\r\n", "sdp does not start with v=0");
        check("", "sdp does not start with v=0");
        check(
            "v=0\nhello\n",
            "sdp line 2: expected <letter>=<value>, found \"hello\"",
        );
        check(
            "v=0\nm=audio x RTP/AVP 0\n",
            "sdp line 2: bad m= line (port is not a number 0-65535)",
        );
        check("v=0\nm=audio 1\n", "sdp line 2: bad m= line (no protocol)");
        check(
            "v=0\nc=IN IP4\n",
            "sdp line 2: bad c= line, expected IN IP4|IP6 <address>",
        );
        check(
            "v=0\nm=audio 1 RTP/AVP 0\na=rtpmap:0 PCMU\n",
            "sdp line 3: bad a=rtpmap, expected <payload type> <encoding>/<clock rate>",
        );
    }

    #[test]
    fn opus_needs_48000_2_and_srtp_is_not_recordable() {
        let sdp = SessionDescription::parse(
            b"v=0\nm=audio 5 RTP/AVP 111 112\na=rtpmap:111 opus/48000/2\na=fmtp:111 useinbandfec=1\na=rtpmap:112 opus/48000\nm=audio 7 RTP/SAVP 0\n",
        )
        .unwrap();
        assert_eq!(sdp.media[0].supported_codecs(), vec![(111, Codec::Opus)]);
        assert!(sdp.media[0].is_recordable());
        assert!(!sdp.media[1].is_recordable());
        let a = build_answer(&sdp, &[Some(9), Some(11)], &params()).unwrap();
        assert!(a.sdp.contains("a=fmtp:111 useinbandfec=1\r\n"));
        assert!(a.sdp.contains("m=audio 0 RTP/SAVP 0\r\n"));
        assert_eq!(sdp.recordable_labels(), vec!["#0"]);
        assert_eq!(a.streams[0].key(), "#0");
        assert!(
            a.sdp.contains("a=recvonly\r\n"),
            "default sendrecv is answered recvonly"
        );
    }
}
