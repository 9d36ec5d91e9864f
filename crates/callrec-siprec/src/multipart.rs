//! Splitting a SIP message body into its MIME parts.
//!
//! A SIPREC INVITE carries `multipart/mixed` with one `application/sdp` part
//! and one recording-metadata part; a re-INVITE or UPDATE may carry either
//! alone. This module finds the boundary in the Content-Type header value
//! (quoted or not, among other parameters), splits the body on it (CRLF or
//! bare LF, with preamble and epilogue ignored) and reads each part's
//! headers. It borrows the body and never copies part contents.
//!
//! It must never panic, whatever the bytes: it is fuzzed.

use thiserror::Error;

/// What was wrong with a body or a Content-Type value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MultipartError {
    /// The Content-Type value is not `type/subtype`.
    #[error("content type {0:?} is not of the form type/subtype")]
    BadContentType(String),
    /// A multipart Content-Type without `boundary=`.
    #[error("multipart content type has no boundary parameter")]
    MissingBoundary,
    /// The boundary is empty or longer than RFC 2046 allows (70 characters).
    #[error("multipart boundary {0:?} is empty or longer than 70 characters")]
    BadBoundary(String),
    /// No line of the body is a delimiter for the boundary.
    #[error("no part delimited by boundary {0:?} was found in the body")]
    NoParts(String),
    /// A header line of a part has no colon.
    #[error("part {part}, header line {line}: no colon in {text:?}")]
    BadHeader {
        /// 1-based index of the part.
        part: usize,
        /// 1-based line within the part's header block.
        line: usize,
        /// The offending line (lossily decoded, cut to 80 characters).
        text: String,
    },
}

/// A parsed Content-Type value: the media type and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lowercased (e.g. `multipart/mixed`).
    pub essence: String,
    /// Parameters in order; names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses a Content-Type header value such as
    /// `multipart/mixed;boundary="unique-boundary-1"`.
    pub fn parse(value: &str) -> Result<Self, MultipartError> {
        let bad = || MultipartError::BadContentType(cut(value, 80));
        let (essence, rest) = match value.find(';') {
            Some(i) => (&value[..i], &value[i + 1..]),
            None => (value, ""),
        };
        let essence = essence.trim().to_ascii_lowercase();
        let (ty, sub) = essence.split_once('/').ok_or_else(bad)?;
        if ty.is_empty() || sub.is_empty() || sub.contains('/') {
            return Err(bad());
        }
        Ok(MediaType {
            essence,
            params: parse_params(rest),
        })
    }

    /// The value of a parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this is a `multipart/*` type.
    pub fn is_multipart(&self) -> bool {
        self.essence.starts_with("multipart/")
    }
}

/// Parses `;`-separated `name=value` parameters; values may be quoted
/// strings with backslash escapes, in which `;` does not separate.
fn parse_params(mut s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches([' ', '\t', ';']);
        if s.is_empty() {
            return out;
        }
        let name_end = s.find(['=', ';']).unwrap_or(s.len());
        let name = s[..name_end].trim().to_ascii_lowercase();
        s = &s[name_end..];
        let mut value = String::new();
        if let Some(rest) = s.strip_prefix('=') {
            let rest = rest.trim_start();
            if let Some(quoted) = rest.strip_prefix('"') {
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                value.push(e);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                s = &quoted[end.min(quoted.len())..];
                // Skip anything up to the next separator.
                s = &s[s.find(';').unwrap_or(s.len())..];
            } else {
                let end = rest.find(';').unwrap_or(rest.len());
                value = rest[..end].trim().to_string();
                s = &rest[end..];
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
}

/// One MIME part of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part<'a> {
    /// All headers in order, names as written, values trimmed and unfolded.
    pub headers: Vec<(String, String)>,
    /// The part's content, without the line break before the next delimiter.
    pub body: &'a [u8],
}

impl Part<'_> {
    /// A header value by case-insensitive name (the first if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The part's Content-Type value (also under the compact form `c`).
    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type").or_else(|| self.header("c"))
    }

    /// The part's media type, if it has a Content-Type that parses.
    pub fn media_type(&self) -> Option<MediaType> {
        self.content_type().and_then(|v| MediaType::parse(v).ok())
    }

    /// The part's Content-Disposition value (e.g. `recording-session`).
    pub fn content_disposition(&self) -> Option<&str> {
        self.header("content-disposition")
    }

    /// The part's Content-ID value, angle brackets kept.
    pub fn content_id(&self) -> Option<&str> {
        self.header("content-id")
    }
}

/// Splits a body by the Content-Type header value of its message.
///
/// A `multipart/*` type is split on its boundary; any other type (for
/// example `application/sdp` alone) gives one part whose Content-Type is
/// the message's.
pub fn split<'a>(content_type: &str, body: &'a [u8]) -> Result<Vec<Part<'a>>, MultipartError> {
    let media = MediaType::parse(content_type)?;
    if !media.is_multipart() {
        return Ok(vec![Part {
            headers: vec![("Content-Type".to_string(), content_type.trim().to_string())],
            body,
        }]);
    }
    let boundary = media
        .param("boundary")
        .ok_or(MultipartError::MissingBoundary)?;
    split_with_boundary(boundary, body)
}

/// Splits a multipart body on `boundary` (without the leading `--`).
pub fn split_with_boundary<'a>(
    boundary: &str,
    body: &'a [u8],
) -> Result<Vec<Part<'a>>, MultipartError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(MultipartError::BadBoundary(cut(boundary, 80)));
    }
    let delimiter = {
        let mut d = b"--".to_vec();
        d.extend_from_slice(boundary.as_bytes());
        d
    };
    // (start of the delimiter line, start of the next line, is close)
    let mut delimiters: Vec<(usize, usize, bool)> = Vec::new();
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = memchr(b'\n', &body[line_start..]).map(|i| line_start + i);
        let next = line_end.map_or(body.len(), |e| e + 1);
        let line = &body[line_start..line_end.unwrap_or(body.len())];
        if let Some(rest) = line.strip_prefix(delimiter.as_slice()) {
            let (close, rest) = match rest.strip_prefix(b"--") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            if rest.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                delimiters.push((line_start, next, close));
                if close {
                    break;
                }
            }
        }
        line_start = next;
    }
    if delimiters.is_empty() || delimiters[0].2 {
        return Err(MultipartError::NoParts(cut(boundary, 80)));
    }
    let mut parts = Vec::new();
    for (i, &(_, content_start, close)) in delimiters.iter().enumerate() {
        if close {
            break;
        }
        let content_end = match delimiters.get(i + 1) {
            Some(&(next_start, _, _)) => strip_trailing_newline(body, content_start, next_start),
            // No close delimiter: the SBC cut the epilogue; take the rest.
            None => strip_trailing_newline(body, content_start, body.len()),
        };
        let content = &body[content_start..content_end.max(content_start)];
        parts.push(parse_part(parts.len() + 1, content)?);
    }
    Ok(parts)
}

/// The end of `body[start..end]` without one trailing CRLF or LF.
fn strip_trailing_newline(body: &[u8], start: usize, end: usize) -> usize {
    let mut e = end;
    if e > start && body[e - 1] == b'\n' {
        e -= 1;
        if e > start && body[e - 1] == b'\r' {
            e -= 1;
        }
    }
    e
}

fn parse_part(index: usize, content: &[u8]) -> Result<Part<'_>, MultipartError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    let mut line_no = 0;
    loop {
        if pos >= content.len() {
            // Headers only, no blank line and no body.
            return Ok(Part {
                headers,
                body: &content[content.len()..],
            });
        }
        let end = memchr(b'\n', &content[pos..]).map(|i| pos + i);
        let next = end.map_or(content.len(), |e| e + 1);
        let mut line = &content[pos..end.unwrap_or(content.len())];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        line_no += 1;
        if line.is_empty() {
            return Ok(Part {
                headers,
                body: &content[next..],
            });
        }
        let text = String::from_utf8_lossy(line);
        if line[0] == b' ' || line[0] == b'\t' {
            // Folded continuation of the previous header.
            match headers.last_mut() {
                Some((_, v)) => {
                    v.push(' ');
                    v.push_str(text.trim());
                }
                None => {
                    return Err(MultipartError::BadHeader {
                        part: index,
                        line: line_no,
                        text: cut(&text, 80),
                    });
                }
            }
        } else {
            let Some((name, value)) = text.split_once(':') else {
                return Err(MultipartError::BadHeader {
                    part: index,
                    line: line_no,
                    text: cut(&text, 80),
                });
            };
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        pos = next;
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

/// At most `max` characters of `s`, for error messages.
pub(crate) fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_with_quoted_boundary_and_other_params() {
        let m =
            MediaType::parse("Multipart/Mixed ; charset=utf-8; boundary=\"a;b \\\"c\"; x").unwrap();
        assert_eq!(m.essence, "multipart/mixed");
        assert_eq!(m.param("BOUNDARY"), Some("a;b \"c"));
        assert_eq!(m.param("charset"), Some("utf-8"));
        assert_eq!(m.param("x"), Some(""));
    }

    #[test]
    fn content_type_errors() {
        assert!(matches!(
            MediaType::parse("sdp"),
            Err(MultipartError::BadContentType(_))
        ));
        assert_eq!(
            split("multipart/mixed", b"x"),
            Err(MultipartError::MissingBoundary)
        );
    }

    #[test]
    fn splits_crlf_with_preamble_and_epilogue() {
        let body = b"preamble\r\n--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1  \r\nContent-Type: application/rs-metadata+xml\r\nContent-Disposition: recording-session\r\n\r\n<x/>\r\n--b1--\r\nepilogue\r\n";
        let parts = split("multipart/mixed;boundary=b1", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type(), Some("application/sdp"));
        assert_eq!(parts[0].body, b"v=0\r\n");
        assert_eq!(parts[1].content_disposition(), Some("recording-session"));
        assert_eq!(parts[1].body, b"<x/>");
    }

    #[test]
    fn splits_lf_only_without_close_delimiter() {
        let body = b"--b\nContent-Type: a/b\n folded\n\nhello\n--b\n\nno headers";
        let parts = split_with_boundary("b", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].content_type(), Some("a/b folded"));
        assert_eq!(parts[0].body, b"hello");
        assert!(parts[1].headers.is_empty());
        assert_eq!(parts[1].body, b"no headers");
    }

    #[test]
    fn boundary_prefix_of_longer_line_is_not_a_delimiter() {
        let body = b"--b\r\n\r\n--bx is text\r\n--b--";
        let parts = split_with_boundary("b", body).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].body, b"--bx is text");
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            split_with_boundary("zz", b"--b\r\n\r\n"),
            Err(MultipartError::NoParts("zz".into()))
        );
        let err = split_with_boundary("b", b"--b\r\nContent-Type a/b\r\n\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "part 1, header line 1: no colon in \"Content-Type a/b\""
        );
    }

    #[test]
    fn non_multipart_is_one_part() {
        let parts = split("application/sdp", b"v=0\r\n").unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_type(), Some("application/sdp"));
        assert_eq!(parts[0].body, b"v=0\r\n");
    }
}
