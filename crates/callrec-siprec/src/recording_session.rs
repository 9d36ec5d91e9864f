//! Recognising a SIPREC INVITE by its headers, and the SRS Contact.
//!
//! RFC 7866: a recording client (SRC) sends `Require: siprec` and the
//! `+sip.src` feature tag in its Contact; the recording server (SRS) answers
//! with `+sip.srs` in its Contact. This module reads header *values* as
//! strings, so it works with any SIP stack. It never panics on any input.

/// The option tag of RFC 7866 (`Require: siprec`).
pub const SIPREC_OPTION_TAG: &str = "siprec";
/// The feature tag a recording client puts in its Contact.
pub const SRC_FEATURE_TAG: &str = "+sip.src";
/// The feature tag the recording server puts in its Contact.
pub const SRS_FEATURE_TAG: &str = "+sip.srs";

/// Whether any of the `Require` header values (each a comma list, e.g.
/// `timer, siprec`) contains the `siprec` option tag, case-insensitively.
pub fn requires_siprec<'a>(require_values: impl IntoIterator<Item = &'a str>) -> bool {
    require_values.into_iter().any(|v| {
        v.split(',')
            .any(|tag| tag.trim().eq_ignore_ascii_case(SIPREC_OPTION_TAG))
    })
}

/// Whether any contact in the `Contact` header values carries `tag` as a
/// parameter (e.g. `+sip.src`), case-insensitively, with or without a value.
/// The tag belongs after the `>` of a name-addr; one found among the URI
/// parameters inside the brackets is accepted too, because some SBCs put it
/// there.
pub fn contact_has_feature<'a>(
    contact_values: impl IntoIterator<Item = &'a str>,
    tag: &str,
) -> bool {
    contact_values
        .into_iter()
        .flat_map(split_top_level_commas)
        .any(|contact| contact_params(contact).any(|name| name.eq_ignore_ascii_case(tag)))
}

/// Whether the Contact values mark the sender as a recording client.
pub fn is_src_contact<'a>(contact_values: impl IntoIterator<Item = &'a str>) -> bool {
    contact_has_feature(contact_values, SRC_FEATURE_TAG)
}

/// The SRS Contact header value for `uri`: `<uri>;+sip.srs`.
pub fn srs_contact(uri: &str) -> String {
    format!(
        "<{}>;{SRS_FEATURE_TAG}",
        uri.trim().trim_start_matches('<').trim_end_matches('>')
    )
}

/// What the headers of an INVITE say about recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordingSessionCheck {
    /// `Require: siprec` is present.
    pub require_siprec: bool,
    /// The Contact carries `+sip.src`.
    pub src_contact: bool,
}

impl RecordingSessionCheck {
    /// Reads the Require and Contact header values of a request.
    pub fn from_headers<'a>(
        require_values: impl IntoIterator<Item = &'a str>,
        contact_values: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        RecordingSessionCheck {
            require_siprec: requires_siprec(require_values),
            src_contact: is_src_contact(contact_values),
        }
    }

    /// Whether to treat the INVITE as a recording session: either mark is
    /// enough (RFC 7866 requires both; deployed SBCs sometimes send only
    /// one, and refusing them loses recordings).
    pub fn is_recording_session(self) -> bool {
        self.require_siprec || self.src_contact
    }

    /// Whether both marks RFC 7866 requires are present.
    pub fn is_strict(self) -> bool {
        self.require_siprec && self.src_contact
    }
}

/// Splits a header value on commas that are outside quotes and `<...>`.
fn split_top_level_commas(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' if !in_angle => in_quotes = !in_quotes,
            '<' if !in_quotes => in_angle = true,
            '>' if !in_quotes => in_angle = false,
            ',' if !in_quotes && !in_angle => {
                out.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The parameter names of one contact: header parameters, then the URI
/// parameters inside angle brackets.
fn contact_params(contact: &str) -> impl Iterator<Item = &str> {
    // Skip a quoted display name.
    let mut rest = contact.trim();
    if let Some(q) = rest.strip_prefix('"') {
        let mut escaped = false;
        let mut end = q.len();
        for (i, c) in q.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = i + 1;
                break;
            }
        }
        rest = &q[end.min(q.len())..];
    }
    let (uri_params, header_params) = match (rest.find('<'), rest.find('>')) {
        (Some(open), Some(close)) if open < close => {
            let uri = &rest[open + 1..close];
            let uri_params = uri.find(';').map_or("", |i| &uri[i..]);
            (uri_params, &rest[close + 1..])
        }
        _ => ("", rest.find(';').map_or("", |i| &rest[i..])),
    };
    header_params
        .split(';')
        .chain(uri_params.split(';'))
        .map(|p| p.split('=').next().unwrap_or("").trim())
        .filter(|n| !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn require_in_comma_lists() {
        assert!(requires_siprec(["timer, SIPREC"]));
        assert!(requires_siprec(["100rel", "siprec"]));
        assert!(!requires_siprec(["siprecx, timer"]));
        assert!(!requires_siprec([]));
    }

    #[test]
    fn src_feature_tag_in_contacts() {
        let check = |v: &str, expected: bool| assert_eq!(is_src_contact([v]), expected, "{v}");
        check("<sip:sbc@192.0.2.1:5060;transport=udp>;+sip.src", true);
        check("\"SBC, Inc <x>\" <sip:sbc@h>;expires=60;+SIP.SRC", true);
        check("sip:sbc@h;+sip.src", true);
        check("<sip:sbc@h;+sip.src>", true);
        check("<sip:a@h>, <sip:b@h>;+sip.src=\"\"", true);
        check("<sip:sbc@h>;+sip.srcx", false);
        check("\"a;+sip.src\" <sip:sbc@h>", false);
        check("", false);
    }

    #[test]
    fn srs_contact_and_check() {
        assert_eq!(
            srs_contact("sip:srs@203.0.113.5:5060"),
            "<sip:srs@203.0.113.5:5060>;+sip.srs"
        );
        assert!(contact_has_feature(
            [srs_contact("<sip:x@y>").as_str()],
            SRS_FEATURE_TAG
        ));
        let c = RecordingSessionCheck::from_headers(["siprec"], ["<sip:a@b>"]);
        assert!(c.is_recording_session());
        assert!(!c.is_strict());
        assert!(!RecordingSessionCheck::from_headers([], ["<sip:a@b>"]).is_recording_session());
    }
}
