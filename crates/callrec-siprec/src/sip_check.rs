//! The first look at a SIP datagram, before any SIP stack parses it: is it
//! a well-formed request, and if not, the `400` that says why.
//!
//! SIP stacks tend to drop what they cannot parse without a word, which
//! leaves an integrating engineer with a silent SBC retransmitting into the
//! void. [`check`] reads a datagram as RFC 3261 frames it: the start line
//! (`METHOD sip:uri SIP/2.0`), `Name: value` header lines (folded lines
//! joined), the headers every request must have (Via, From, To, Call-ID,
//! CSeq, compact forms too), CSeq's number and method, and Content-Length
//! against the bytes in the datagram. A malformed request gets
//! [`Verdict::Answer`]: a `400 Malformed SIP: <reason>` with Via, From,
//! Call-ID and CSeq copied and To tagged. An ACK, or a request without the
//! headers an answer must copy, gets [`Verdict::Drop`]. Responses and
//! CRLF keep-alives pass (the SIP stack judges those); so does anything
//! this check finds well-formed, for the SIP stack's own parser to read:
//! when that parser fails, [`refuse`] makes the answer for its reason.
//!
//! Pure: no I/O; never panics on any input (fuzzed: `fuzz/`, target `sip`).

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
    let (head, body_len) = split_head(packet);
    let Ok(head) = std::str::from_utf8(head) else {
        return Verdict::Drop {
            reason: "the start line and headers are not UTF-8 text".into(),
        };
    };
    let lines = unfold(head);
    let start = lines.first().map(String::as_str).unwrap_or("");
    if start.starts_with("SIP/") {
        // A response: only the SIP stack's own parser decides.
        return Verdict::Pass;
    }
    let method = match request_method(start) {
        Ok(m) => m,
        Err(reason) => return refuse_or_drop(&lines, "", reason, server),
    };
    let reason = bad_header_line(&lines)
        .or_else(|| {
            MANDATORY
                .iter()
                .find(|(full, compact)| header(&lines, full, *compact).is_empty())
                .map(|(full, _)| format!("missing {full} header"))
        })
        .or_else(|| cseq_problem(&lines, method))
        .or_else(|| content_length_problem(&lines, body_len));
    match reason {
        None => Verdict::Pass,
        Some(reason) => refuse_or_drop(&lines, method, reason, server),
    }
}

/// The start line and headers (up to the first empty line, CRLF or bare
/// LF), and the length of the body after them (`None` when the headers
/// never end).
fn split_head(packet: &[u8]) -> (&[u8], Option<usize>) {
    let end = [(&b"\r\n\r\n"[..], 4), (&b"\n\n"[..], 2)]
        .iter()
        .filter_map(|(end, n)| find(packet, end).map(|i| (i, i + n)))
        .min();
    match end {
        Some((end, body_start)) => (&packet[..end], Some(packet.len() - body_start)),
        None => (packet, None),
    }
}

/// The first header line that is not `Name: value`, as a reason.
fn bad_header_line(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, line)| header_name(line).is_none())
        .map(|(n, line)| {
            format!(
                "header line {} ({}) is not 'Name: value'",
                n + 1,
                quote(line)
            )
        })
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
        format!(
            "{};tag={}",
            to[0],
            answer_tag(&[vias[0], call_id[0], cseq[0]])
        )
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

fn content_length_problem(lines: &[String], body_len: Option<usize>) -> Option<String> {
    let values = header(lines, "Content-Length", Some("l"));
    if values.len() > 1 {
        return Some("more than one Content-Length header".into());
    }
    let Some(body_len) = body_len else {
        return Some("the headers do not end with an empty line".into());
    };
    let value = values.first()?;
    match value.parse::<usize>() {
        Err(_) => Some(format!("Content-Length {} is not a number", quote(value))),
        Ok(n) if n > body_len => Some(format!(
            "Content-Length {n} is more than the {body_len} bytes of body in the datagram"
        )),
        Ok(_) => None,
    }
}

/// The answer (or the drop) for a datagram that another parser (the SIP
/// stack's) found malformed for `reason`, after [`check`] passed it.
pub fn refuse(packet: &[u8], reason: &str, server: &str) -> Verdict {
    let head = String::from_utf8_lossy(split_head(packet).0);
    let lines = unfold(&head);
    let start = lines.first().map(String::as_str).unwrap_or("");
    let reason = quote_plain(reason);
    if start.starts_with("SIP/") {
        return Verdict::Drop {
            reason: format!("malformed response: {reason}"),
        };
    }
    let method = request_method(start).unwrap_or("");
    refuse_or_drop(&lines, method, reason, server)
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

/// The To tag of an answer: the same for every retransmission of the same
/// request (FNV-1a of its Via, Call-ID and CSeq), with no clock or random.
fn answer_tag(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("cr{h:016x}")
}

/// `text` with every run of six or more digits replaced by `***`: a reason
/// may quote a header with a phone number in it, and logs carry no phone
/// numbers (addresses and ports have shorter runs).
pub fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 6 {
            out.push_str("***");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

/// A reason phrase that fits a status line: one line, printable, at most
/// 200 bytes.
pub fn reason_phrase(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
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
        // A retransmission gets the same answer, To tag included.
        let (_, again) = answer(check(&with(5, "CSeq: seven OPTIONS"), SERVER));
        assert_eq!(again, r);
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
        // A response passes (the SIP stack judges it); if its parser fails,
        // it is dropped, never answered.
        let bad_response = b"SIP/2.0 2OO OK\r\nVia: x\r\n\r\n";
        assert_eq!(check(bad_response, SERVER), Verdict::Pass);
        assert!(matches!(
            refuse(bad_response, "bad status", SERVER),
            Verdict::Drop { .. }
        ));
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
    fn what_another_parser_refuses_is_answered_with_its_reason() {
        let r = refuse(&request(&GOOD, ""), "unknown\r\nheader", SERVER);
        let (reason, response) = answer(r);
        assert_eq!(reason, "unknown  header");
        assert!(response.starts_with("SIP/2.0 400 Malformed SIP: unknown  header\r\n"));
        assert!(response.contains("Call-ID: c-1@192.0.2.9\r\n"));
    }

    #[test]
    fn phone_numbers_are_masked_for_logs() {
        assert_eq!(
            without_numbers("header line 3 ('From <sip:+34911234567@192.0.2.9:5060>')"),
            "header line 3 ('From <sip:+***@192.0.2.9:5060>')"
        );
        assert_eq!(without_numbers("12345 123456"), "12345 ***");
    }

    #[test]
    fn reason_phrases_are_one_short_line() {
        assert_eq!(reason_phrase("a\r\nb"), "a  b");
        let long = "é".repeat(150);
        let p = reason_phrase(&long);
        assert!(p.len() <= 200 && p.is_char_boundary(p.len()));
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
