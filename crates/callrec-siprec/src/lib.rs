//! SIPREC (RFC 7866) without I/O.
//!
//! Everything a Session Recording Server needs to understand a recording
//! client, as pure functions over bytes and header values, independent of
//! any SIP stack:
//! - [`multipart`]: split the `multipart/mixed` body of an INVITE;
//! - [`sdp`]: parse the SDP offer and build the `recvonly` answer;
//! - [`metadata`]: parse RFC 7865 and draft recording metadata and follow
//!   complete and partial updates;
//! - [`roles`]: map each stream label to a participant and a [`Side`];
//! - [`recording_session`]: recognise a SIPREC INVITE and build the SRS
//!   Contact;
//! - [`sip_check`]: check a SIP datagram before the SIP stack parses it,
//!   and the `400` with the reason for a malformed request.
//!
//! This crate never does I/O, never reads the clock and never spawns: the
//! SIP server feeds it bytes and acts on what it returns. No function here
//! panics on any input; the parsers are fuzzed (see `fuzz/`).
//!
//! The flow for one INVITE, as the SIP server runs it:
//!
//! ```
//! use callrec_siprec::metadata::MetadataState;
//! use callrec_siprec::recording_session::{RecordingSessionCheck, srs_contact};
//! use callrec_siprec::roles::{AddressPattern, RoleResolver, RoleRule};
//! use callrec_siprec::sdp::{AnswerParams, build_answer};
//! use callrec_siprec::{Side, parse_body};
//!
//! let check = RecordingSessionCheck::from_headers(["siprec"], ["<sip:sbc@192.0.2.1>;+sip.src"]);
//! assert!(check.is_recording_session());
//!
//! let body = "--b\r\nContent-Type: application/sdp\r\n\r\n\
//!     v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
//!     m=audio 2000 RTP/AVP 0\r\na=label:1\r\na=sendonly\r\n\
//!     m=audio 2002 RTP/AVP 0\r\na=label:2\r\na=sendonly\r\n\
//!     \r\n--b\r\nContent-Type: application/rs-metadata+xml\r\n\r\n\
//!     <recording xmlns='urn:ietf:params:xml:ns:recording:1'>\
//!     <participant participant_id='c'><nameID aor='sip:+15550100@pstn.example'/></participant>\
//!     <participant participant_id='a'><nameID aor='sip:2001@agents.example.com'/></participant>\
//!     <stream stream_id='s1'><label>1</label></stream><stream stream_id='s2'><label>2</label></stream>\
//!     <participantstreamassoc participant_id='a'><send>s1</send></participantstreamassoc>\
//!     <participantstreamassoc participant_id='c'><send>s2</send></participantstreamassoc>\
//!     </recording>\r\n--b--\r\n";
//! let parsed = parse_body("multipart/mixed;boundary=b", body.as_bytes()).unwrap();
//! let offer = parsed.sdp.unwrap();
//!
//! let mut metadata = MetadataState::new();
//! let events = metadata.apply(&parsed.metadata.unwrap());
//! assert_eq!(events.len(), 4); // two joins, two stream associations
//!
//! // Allocate a port pair per recordable stream; None declines.
//! let ports: Vec<Option<u16>> = (0..offer.media.len())
//!     .map(|i| offer.media[i].is_recordable().then_some(40000 + 2 * i as u16))
//!     .collect();
//! let params = AnswerParams { address: "203.0.113.5".parse().unwrap(), session_id: 1, session_version: 1 };
//! let answer = build_answer(&offer, &ports, &params).unwrap();
//! assert!(answer.sdp.contains("m=audio 40000 RTP/AVP 0\r\n"));
//! let contact = srs_contact("sip:srs@203.0.113.5"); // "<sip:srs@203.0.113.5>;+sip.srs"
//! # assert_eq!(contact, "<sip:srs@203.0.113.5>;+sip.srs");
//!
//! let rule = RoleRule::AgentAddressPattern(AddressPattern::new("*@agents.example.com"));
//! let mut roles = RoleResolver::new(vec![rule]);
//! let channels = roles.resolve(&offer.recordable_labels(), Some(&metadata));
//! assert_eq!(channels.side("1"), Some(Side::Agent)); // the agent sends on label 1
//! assert_eq!(channels.side("2"), Some(Side::EndUser));
//! assert_eq!(channels.get("1").unwrap().decided_by.as_str(), "agent_address_pattern");
//! ```

pub mod metadata;
pub mod multipart;
pub mod recording_session;
pub mod roles;
pub mod sdp;
pub mod sip_check;

use thiserror::Error;

use crate::metadata::{Metadata, MetadataError, is_metadata_content_type};
use crate::multipart::{MediaType, MultipartError};
use crate::sdp::{SdpError, SessionDescription};

/// The side of the call a participant is on; maps one to one onto the
/// recording's channels (`callrec_media::Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The customer, caller or callee: channel 1, left.
    EndUser,
    /// The agent and every party the agent adds: channel 2, right.
    Agent,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::EndUser => Side::Agent,
            Side::Agent => Side::EndUser,
        }
    }

    /// Stable snake_case name for JSON (`end_user`, `agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Side::EndUser => "end_user",
            Side::Agent => "agent",
        }
    }
}

/// What was wrong with the body of a SIPREC request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    /// The multipart structure or a Content-Type.
    #[error(transparent)]
    Multipart(#[from] MultipartError),
    /// The SDP part.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// The metadata part.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// Neither an SDP nor a metadata part.
    #[error("body of type {0} has neither application/sdp nor recording metadata")]
    NothingUseful(String),
}

/// The parts of a SIPREC request body that callrec reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiprecBody {
    /// The SDP, if the body had an `application/sdp` part.
    pub sdp: Option<SessionDescription>,
    /// The metadata, if the body had an `application/rs-metadata+xml` or
    /// `application/rs-metadata` part.
    pub metadata: Option<Metadata>,
}

/// A metadata part: by its content type, or an XML part whose disposition
/// is `recording-session` (RFC 7866 section 9.1) whatever its type says.
fn is_metadata_part(part: &multipart::Part<'_>, media: &MediaType) -> bool {
    if is_metadata_content_type(&media.essence) {
        return true;
    }
    let xml = media.essence.ends_with("/xml") || media.essence.ends_with("+xml");
    let recording_session = part.content_disposition().is_some_and(|d| {
        d.split(';')
            .next()
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("recording-session"))
    });
    xml && recording_session
}

/// Reads the body of an INVITE, re-INVITE or UPDATE by the message's
/// Content-Type value: `multipart/mixed` with SDP and metadata parts, or
/// `application/sdp` alone, or metadata alone. Metadata is a part of type
/// `application/rs-metadata+xml` or `application/rs-metadata`, or any XML
/// part with `Content-Disposition: recording-session`. Other parts are
/// ignored; the first part of each kind is used.
pub fn parse_body(content_type: &str, body: &[u8]) -> Result<SiprecBody, BodyError> {
    let parts = multipart::split(content_type, body)?;
    let mut out = SiprecBody {
        sdp: None,
        metadata: None,
    };
    for part in &parts {
        let Some(media) = part.media_type() else {
            continue;
        };
        if media.essence == "application/sdp" && out.sdp.is_none() {
            out.sdp = Some(SessionDescription::parse(part.body)?);
        } else if is_metadata_part(part, &media) && out.metadata.is_none() {
            out.metadata = Some(Metadata::parse(part.body)?);
        }
    }
    if out.sdp.is_none() && out.metadata.is_none() {
        let essence = MediaType::parse(content_type)
            .map(|m| m.essence)
            .unwrap_or_default();
        return Err(BodyError::NothingUseful(essence));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\nm=audio 1 RTP/AVP 0\r\na=label:1\r\n";
    const XML: &str = "<recording xmlns='urn:ietf:params:xml:ns:recording:1'/>";

    fn multipart(metadata_headers: &str) -> String {
        format!(
            "--x\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--x\r\n{metadata_headers}\r\n\r\n{XML}\r\n--x--\r\n"
        )
    }

    #[test]
    fn finds_metadata_by_type_or_disposition() {
        let check = |headers: &str, expected: bool| {
            let body = multipart(headers);
            let parsed = parse_body("multipart/mixed; boundary=x", body.as_bytes()).unwrap();
            assert!(parsed.sdp.is_some());
            assert_eq!(parsed.metadata.is_some(), expected, "{headers}");
        };
        check("Content-Type: application/rs-metadata+xml", true);
        check("Content-Type: Application/RS-Metadata", true);
        check(
            "Content-Type: application/xml\r\nContent-Disposition: recording-session;handling=required",
            true,
        );
        check("Content-Type: application/xml", false);
        check(
            "Content-Type: text/plain\r\nContent-Disposition: recording-session",
            false,
        );
    }

    #[test]
    fn single_part_bodies_and_errors() {
        let sdp_only = parse_body("application/sdp", SDP.as_bytes()).unwrap();
        assert!(sdp_only.sdp.is_some() && sdp_only.metadata.is_none());
        let md_only = parse_body("application/rs-metadata+xml", XML.as_bytes()).unwrap();
        assert!(md_only.sdp.is_none() && md_only.metadata.is_some());
        assert_eq!(
            parse_body("text/plain", b"hello").unwrap_err().to_string(),
            "body of type text/plain has neither application/sdp nor recording metadata"
        );
        assert_eq!(
            parse_body("application/sdp", b"v=1")
                .unwrap_err()
                .to_string(),
            "sdp does not start with v=0"
        );
    }
}
