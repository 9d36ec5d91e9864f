//! The SIP socket's front door: every UDP datagram is checked before the SIP
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
//! copy). Every one is logged at warn and counted in
//! `callrec_sip_malformed_total`. Sources outside the allowed networks get
//! no answer, as they get nothing else from callrec.
//!
//! Over TCP rsipstack closes the connection on an unparseable message; that
//! framing is its own and has no seam, so the 400 is UDP's.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::platform::net::UdpSocket as SipUdpSocket;
use tracing::warn;

use crate::AppState;
use crate::sip::reason_phrase;

/// What [`check`] made of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A message the SIP stack can take (or a keep-alive).
    Pass,
    /// A malformed request that can be answered: the answer's bytes.
    Answer {
        /// Why it was refused, in words.
        reason: String,
        /// The whole `400` response.
        response: Vec<u8>,
    },
    /// Malformed, and nothing may or can be answered.
    Drop {
        /// Why it was refused, in words.
        reason: String,
    },
}

/// Headers a request must have (full name, compact form).
const MANDATORY: [(&str, Option<&str>); 5] = [
    ("Via", Some("v")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("Call-ID", Some("i")),
    ("CSeq", None),
];

/// Checks one datagram; `server` goes in the answer's Server header.
pub fn check(packet: &[u8], server: &str) -> Verdict {
    // CRLF keep-alives (RFC 5626) and stray whitespace: the stack's business.
    if packet.iter().all(|b| b.is_ascii_whitespace()) {
        return Verdict::Pass;
    }
    // The headers end at the first empty line, CRLF or bare LF.
    let head_len = [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)]
        .iter()
        .filter_map(|(end, n)| find(packet, end).map(|i| (i, i + n)))
        .min();
    let (head, body_len) = match head_len {
        Some((end, body_start)) => (&packet[..end], packet.len() - body_start),
        None => (packet, 0),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return Verdict::Drop {
            reason: "the start line and headers are not UTF-8 text".into(),
        };
    };
    let lines = unfold(head);
    let start = lines.first().map(String::as_str).unwrap_or("");
    if start.starts_with("SIP/") {
        // A response: only the stack's own parser decides.
        return match parse_error(packet) {
            None => Verdict::Pass,
            Some(e) => Verdict::Drop {
                reason: format!("malformed response: {e}"),
            },
        };
    }
    let method = match request_method(start) {
        Ok(m) => m,
        Err(reason) => return refuse_or_drop(&lines, "", reason, server),
    };
    let mut reason = None;
    for (n, line) in lines.iter().enumerate().skip(1) {
        if header_name(line).is_none() {
            reason = Some(format!(
                "header line {} ({}) is not 'Name: value'",
                n + 1,
                quote(line)
            ));
            break;
        }
    }
    if reason.is_none() {
        reason = MANDATORY
            .iter()
            .find(|(full, compact)| header(&lines, full, *compact).is_empty())
            .map(|(full, _)| format!("missing {full} header"));
    }
    if reason.is_none() {
        reason = cseq_problem(&lines, method);
    }
    if reason.is_none() {
        reason = content_length_problem(&lines, body_len, head_len.is_some());
    }
    if reason.is_none() {
        reason = parse_error(packet);
    }
    match reason {
        None => Verdict::Pass,
        Some(reason) => refuse_or_drop(&lines, method, reason, server),
    }
}

/// The 400 for a malformed request, or a drop when it is an ACK or lacks
/// what an answer copies.
fn refuse_or_drop(lines: &[String], method: &str, reason: String, server: &str) -> Verdict {
    if method == "ACK" {
        return Verdict::Drop {
            reason: format!("malformed ACK (never answered): {reason}"),
        };
    }
    let vias = header(lines, "Via", Some("v"));
    let from = header(lines, "From", Some("f"));
    let to = header(lines, "To", Some("t"));
    let call_id = header(lines, "Call-ID", Some("i"));
    let cseq = header(lines, "CSeq", None);
    if vias.is_empty() || from.len() != 1 || to.len() != 1 || call_id.len() != 1 || cseq.len() != 1
    {
        return Verdict::Drop {
            reason: format!("{reason} (and no Via, From, To, Call-ID and CSeq to answer with)"),
        };
    }
    let phrase = reason_phrase(&format!("Malformed SIP: {reason}"));
    let mut r = format!("SIP/2.0 400 {phrase}\r\n");
    for v in &vias {
        r.push_str(&format!("Via: {v}\r\n"));
    }
    r.push_str(&format!("From: {}\r\n", from[0]));
    let to = if has_tag(to[0]) {
        to[0].to_string()
    } else {
        format!("{};tag={}", to[0], uuid::Uuid::new_v4().simple())
    };
    r.push_str(&format!("To: {to}\r\n"));
    r.push_str(&format!("Call-ID: {}\r\n", call_id[0]));
    r.push_str(&format!("CSeq: {}\r\n", cseq[0]));
    r.push_str(&format!("Server: {server}\r\nContent-Length: 0\r\n\r\n"));
    Verdict::Answer {
        reason,
        response: r.into_bytes(),
    }
}

/// The method of a request line `METHOD SP Request-URI SP SIP/2.0`.
fn request_method(start: &str) -> Result<&str, String> {
    let parts: Vec<&str> = start.split(' ').collect();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    };
    match parts.as_slice() {
        [method, uri, version]
            if token(method) && uri.contains(':') && version.eq_ignore_ascii_case("SIP/2.0") =>
        {
            Ok(method)
        }
        _ => Err(format!(
            "start line {} is not 'METHOD sip:uri SIP/2.0'",
            quote(start)
        )),
    }
}

/// Header lines with folded continuation lines joined (RFC 3261 §7.3.1).
fn unfold(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        // A header may be folded; the start line may not.
        let folds = lines.len() > 1 && line.starts_with([' ', '\t']);
        match lines.last_mut() {
            Some(last) if folds => {
                last.push(' ');
                last.push_str(line.trim_start());
            }
            _ => lines.push(line.to_string()),
        }
    }
    lines
}

/// The name of a header line, when it is `token ":" value`.
fn header_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(':')?;
    let name = name.trim_end();
    (!name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)))
    .then_some(name)
}

/// Every value of a header (full or compact name), in order; a
/// comma-separated Via line counts once, which is all an answer needs.
fn header<'a>(lines: &'a [String], full: &str, compact: Option<&str>) -> Vec<&'a str> {
    lines
        .iter()
        .skip(1)
        .filter_map(|l| {
            let name = header_name(l)?;
            let hit = name.eq_ignore_ascii_case(full)
                || compact.is_some_and(|c| name.eq_ignore_ascii_case(c));
            hit.then(|| l.split_once(':').map(|(_, v)| v.trim()).unwrap_or(""))
        })
        .collect()
}

fn cseq_problem(lines: &[String], method: &str) -> Option<String> {
    let cseq = header(lines, "CSeq", None);
    if cseq.len() > 1 {
        return Some("more than one CSeq header".into());
    }
    let value = cseq[0];
    let mut parts = value.split_whitespace();
    let number = parts.next().and_then(|n| n.parse::<u32>().ok());
    let cseq_method = parts.next();
    match (number, cseq_method, parts.next()) {
        (Some(n), Some(m), None) if n < 1 << 31 && m == method => None,
        (Some(_), Some(m), None) if m != method => Some(format!(
            "CSeq method {} does not match the request's {method}",
            quote(m)
        )),
        _ => Some(format!(
            "CSeq {} is not 'number METHOD' (number below 2^31)",
            quote(value)
        )),
    }
}

fn content_length_problem(lines: &[String], body_len: usize, head_ended: bool) -> Option<String> {
    let values = header(lines, "Content-Length", Some("l"));
    if values.len() > 1 {
        return Some("more than one Content-Length header".into());
    }
    if !head_ended {
        return Some("the headers do not end with an empty line".into());
    }
    let value = values.first()?;
    match value.parse::<usize>() {
        Err(_) => Some(format!("Content-Length {} is not a number", quote(value))),
        Ok(n) if n > body_len => Some(format!(
            "Content-Length {n} is more than the {body_len} bytes of body in the datagram"
        )),
        Ok(_) => None,
    }
}

/// What the SIP stack's own parser says of the datagram, in one short line.
fn parse_error(packet: &[u8]) -> Option<String> {
    rsipstack::sip::SipMessage::try_from(packet)
        .err()
        .map(|e| quote_plain(&e.to_string()))
}

fn has_tag(value: &str) -> bool {
    // Parameters follow the closing '>' of a name-addr, or the URI itself.
    let params = value.rsplit_once('>').map(|(_, p)| p).unwrap_or(value);
    params
        .split(';')
        .skip(1)
        .any(|p| p.trim().to_ascii_lowercase().starts_with("tag="))
}

/// A fragment of the message for a reason: single-quoted, at most 60 chars.
fn quote(s: &str) -> String {
    format!("'{}'", quote_plain(s))
}

fn quote_plain(s: &str) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > 60 {
        let cut: String = one_line.chars().take(57).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
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
                warn!(src = %from, %reason, "malformed SIP request answered 400");
                if let Err(e) = self.socket.send_to(&response, from).await {
                    warn!(src = %from, error = %e, "could not send the 400");
                }
            }
            Verdict::Answer { reason, .. } | Verdict::Drop { reason } => {
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

    const SERVER: &str = "callrec-test";

    fn request(lines: &[&str], body: &str) -> Vec<u8> {
        let mut s = lines.join("\r\n");
        s.push_str("\r\n\r\n");
        s.push_str(body);
        s.into_bytes()
    }

    const GOOD: [&str; 7] = [
        "OPTIONS sip:srs@192.0.2.1:5060 SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-1",
        "From: <sip:sbc@192.0.2.9>;tag=a1",
        "To: <sip:srs@192.0.2.1>",
        "Call-ID: c-1@192.0.2.9",
        "CSeq: 7 OPTIONS",
        "Content-Length: 0",
    ];

    fn with(replace: usize, line: &str) -> Vec<u8> {
        let mut l = GOOD.to_vec();
        l[replace] = line;
        request(&l, "")
    }

    fn without(skip: usize) -> Vec<u8> {
        let l: Vec<&str> = GOOD
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        request(&l, "")
    }

    fn answer(v: Verdict) -> (String, String) {
        match v {
            Verdict::Answer { reason, response } => (reason, String::from_utf8(response).unwrap()),
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_and_keepalives_pass() {
        assert_eq!(check(&request(&GOOD, ""), SERVER), Verdict::Pass);
        assert_eq!(check(b"\r\n\r\n", SERVER), Verdict::Pass);
        assert_eq!(check(b"\r\n", SERVER), Verdict::Pass);
        // Compact header forms and a folded header line.
        let compact = request(
            &[
                "OPTIONS sip:srs@192.0.2.1 SIP/2.0",
                "v: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-2",
                "f: <sip:sbc@192.0.2.9>;tag=a1",
                "t: <sip:srs@192.0.2.1>",
                "i: c-2",
                "CSeq: 1",
                " OPTIONS",
                "l: 0",
            ],
            "",
        );
        assert_eq!(check(&compact, SERVER), Verdict::Pass);
        // Bare LF line ends, and a body with a CRLF empty line in it.
        let lf = format!(
            "{}\n\nv=0\r\n\r\nx",
            GOOD[..6].join("\n").replace("Content-Length: 0", "")
        );
        assert_eq!(check(lf.as_bytes(), SERVER), Verdict::Pass);
    }

    #[test]
    fn a_broken_header_line_is_answered_with_its_line_number() {
        let (reason, r) = answer(check(&with(6, "Content-Length 0"), SERVER));
        assert_eq!(
            reason,
            "header line 7 ('Content-Length 0') is not 'Name: value'"
        );
        assert!(
            r.starts_with("SIP/2.0 400 Malformed SIP: header line 7 ('Content-Length 0')"),
            "{r}"
        );
        // A broken From cannot be copied into an answer: dropped, with the reason.
        match check(&with(2, "From <sip:sbc@192.0.2.9>;tag=a1"), SERVER) {
            Verdict::Drop { reason } => assert!(
                reason.starts_with("header line 3 ('From <sip:sbc@192.0.2.9>;tag=a1')"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_answer_copies_via_from_call_id_and_cseq_and_tags_to() {
        let (reason, r) = answer(check(&with(5, "CSeq: seven OPTIONS"), SERVER));
        assert_eq!(
            reason,
            "CSeq 'seven OPTIONS' is not 'number METHOD' (number below 2^31)"
        );
        let lines: Vec<&str> = r.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "SIP/2.0 400 Malformed SIP: CSeq 'seven OPTIONS' is not 'number METHOD' (number below 2^31)"
        );
        assert!(lines.contains(&"Via: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-1"));
        assert!(lines.contains(&"From: <sip:sbc@192.0.2.9>;tag=a1"));
        assert!(lines.contains(&"Call-ID: c-1@192.0.2.9"));
        assert!(lines.contains(&"CSeq: seven OPTIONS"));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("To: <sip:srs@192.0.2.1>;tag="))
        );
        assert!(lines.contains(&"Content-Length: 0"));
        assert!(r.ends_with("\r\n\r\n"));
        // The 400 itself is a response the stack can parse.
        assert!(rsipstack::sip::SipMessage::try_from(r.as_bytes()).is_ok());
    }

    #[test]
    fn each_missing_mandatory_header_is_named() {
        for (i, name) in [
            (1, "Via"),
            (2, "From"),
            (3, "To"),
            (4, "Call-ID"),
            (5, "CSeq"),
        ] {
            match check(&without(i), SERVER) {
                Verdict::Answer { reason, .. } | Verdict::Drop { reason } => {
                    assert!(
                        reason.starts_with(&format!("missing {name} header")),
                        "{reason}"
                    )
                }
                Verdict::Pass => panic!("missing {name} passed"),
            }
        }
        // Without a Via there is no one to answer.
        assert!(matches!(check(&without(1), SERVER), Verdict::Drop { .. }));
        // Without a Call-ID neither (the answer must carry one).
        assert!(matches!(check(&without(4), SERVER), Verdict::Drop { .. }));
    }

    #[test]
    fn cseq_method_and_content_length_are_checked() {
        let (reason, _) = answer(check(&with(5, "CSeq: 7 INVITE"), SERVER));
        assert_eq!(
            reason,
            "CSeq method 'INVITE' does not match the request's OPTIONS"
        );
        let (reason, _) = answer(check(&with(6, "Content-Length: 120"), SERVER));
        assert_eq!(
            reason,
            "Content-Length 120 is more than the 0 bytes of body in the datagram"
        );
        let (reason, _) = answer(check(&with(6, "Content-Length: twelve"), SERVER));
        assert_eq!(reason, "Content-Length 'twelve' is not a number");
    }

    #[test]
    fn a_bad_start_line_is_answered_when_the_headers_allow() {
        let (reason, r) = answer(check(&with(0, "OPTIONS sip:srs@192.0.2.1"), SERVER));
        assert_eq!(
            reason,
            "start line 'OPTIONS sip:srs@192.0.2.1' is not 'METHOD sip:uri SIP/2.0'"
        );
        assert!(r.contains("Call-ID: c-1@192.0.2.9\r\n"));
    }

    #[test]
    fn acks_responses_and_garbage_are_dropped_not_answered() {
        let mut ack = GOOD.to_vec();
        ack[0] = "ACK sip:srs@192.0.2.1 SIP/2.0";
        ack[5] = "CSeq: x ACK";
        assert!(matches!(
            check(&request(&ack, ""), SERVER),
            Verdict::Drop { .. }
        ));
        let bad_response = b"SIP/2.0 2OO OK\r\nVia: x\r\n\r\n";
        assert!(matches!(check(bad_response, SERVER), Verdict::Drop { .. }));
        assert!(matches!(
            check(&[0x80, 0x00, 0x12, 0x34, 0xff, 0xfe], SERVER),
            Verdict::Drop { .. }
        ));
        let (reason, _) = match check(b"hello world\r\n\r\n", SERVER) {
            Verdict::Drop { reason } => (reason, ()),
            other => panic!("{other:?}"),
        };
        assert!(reason.starts_with("start line 'hello world'"), "{reason}");
    }

    #[test]
    fn a_long_culprit_is_cut_in_the_reason() {
        let long = format!("X-Junk {}", "y".repeat(500));
        let (reason, r) = answer(check(&with(6, &long), SERVER));
        assert!(reason.len() < 120, "{reason}");
        assert!(reason.contains("..."), "{reason}");
        assert!(r.lines().next().unwrap().len() < 160);
    }
}
