//! Recording metadata: RFC 7865 XML and the older draft format.
//!
//! [`Metadata::parse`] reads one metadata body in either namespace:
//! `urn:ietf:params:xml:ns:recording:1` (RFC 7865; also the unversioned
//! `urn:ietf:params:xml:ns:recording` that early Acme Packet releases sent)
//! and `urn:ietf:params:xml:ns:siprec` (the draft that deployed SBCs still
//! send: `id`/`session` attributes, `send`/`recv` and association times
//! inside `participant`). Both are normalised into one model; IDs are kept as
//! the strings they are (base64, UUIDs, anything). Elements in other
//! namespaces and `extensiondata` are ignored, except a participant role
//! hint (see [`Participant::role_hint`]).
//!
//! [`MetadataState`] applies a complete snapshot and then partial updates,
//! and reports what changed as [`MetadataEvent`]s.
//!
//! No I/O here, and the parser must never panic on any input: it is fuzzed.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use thiserror::Error;

use crate::Side;
use crate::multipart::cut;

/// RFC 7865 namespace.
pub const NS_RECORDING_1: &str = "urn:ietf:params:xml:ns:recording:1";
/// Unversioned namespace of pre-RFC implementations.
pub const NS_RECORDING: &str = "urn:ietf:params:xml:ns:recording";
/// The draft (draft-ietf-siprec-metadata) namespace.
pub const NS_SIPREC_DRAFT: &str = "urn:ietf:params:xml:ns:siprec";

/// Deeper nesting than this is refused (keeps the tree and its drop shallow).
const MAX_DEPTH: usize = 32;

/// Whether a media type (essence, lowercase) is a metadata content type:
/// `application/rs-metadata+xml` (RFC 7866) or `application/rs-metadata`.
pub fn is_metadata_content_type(essence: &str) -> bool {
    essence.eq_ignore_ascii_case("application/rs-metadata+xml")
        || essence.eq_ignore_ascii_case("application/rs-metadata")
}

/// What was wrong with a metadata body, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MetadataError {
    /// The body is not UTF-8.
    #[error("metadata is not utf-8 text (byte {0})")]
    NotUtf8(usize),
    /// The XML itself is malformed.
    #[error("metadata line {line}: malformed xml: {reason}")]
    Xml {
        /// 1-based line.
        line: usize,
        /// quick-xml's description.
        reason: String,
    },
    /// The document has no root element.
    #[error("metadata has no root element")]
    Empty,
    /// The root element is not `recording`.
    #[error("metadata line {line}: root element is <{found}>, expected <recording>")]
    WrongRoot {
        /// 1-based line.
        line: usize,
        /// The root's local name.
        found: String,
    },
    /// Elements nested deeper than the limit.
    #[error("metadata line {line}: elements nested deeper than {MAX_DEPTH}")]
    TooDeep {
        /// 1-based line.
        line: usize,
    },
    /// An element lacks its identifier attribute.
    #[error("metadata line {line}: <{element}> has no {attribute} attribute")]
    MissingId {
        /// 1-based line.
        line: usize,
        /// The element.
        element: &'static str,
        /// The attribute expected (RFC 7865 name).
        attribute: &'static str,
    },
    /// `dataMode` is neither `complete` nor `partial`.
    #[error("metadata line {line}: <dataMode> is {found:?}, expected complete or partial")]
    BadDataMode {
        /// 1-based line.
        line: usize,
        /// The text found.
        found: String,
    },
}

/// Which schema the document used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataFormat {
    /// RFC 7865 (`urn:ietf:params:xml:ns:recording:1` or the unversioned one).
    Rfc7865,
    /// The draft format (`urn:ietf:params:xml:ns:siprec`).
    Draft,
    /// No namespace or another one: read as RFC 7865, leniently.
    Other(String),
}

/// `complete` snapshot or `partial` update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// The document describes everything (the default when absent).
    #[default]
    Complete,
    /// The document describes only what changed.
    Partial,
}

/// A `group` (a set of related sessions, e.g. a transfer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `group_id`.
    pub id: String,
    /// `associate-time`, as written.
    pub associate_time: Option<String>,
}

/// A communication session being recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `session_id` (draft: `id`).
    pub id: String,
    /// The `sipSessionID` values (RFC 7989 Session-ID).
    pub sip_session_ids: Vec<String>,
    /// `group-ref`, if any.
    pub group_ref: Option<String>,
    /// `associate-time` (draft: `start-time`), as written.
    pub associate_time: Option<String>,
    /// `disassociate-time` (draft: `end-time`), as written.
    pub disassociate_time: Option<String>,
}

/// A participant in the communication session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// `participant_id` (draft: `id`).
    pub id: String,
    /// `nameID@aor` (draft: also an `aor` element), e.g. `sip:bob@example.com`.
    pub aor: Option<String>,
    /// The display name (`nameID/name` or `name`).
    pub name: Option<String>,
    /// A role that the recording client stated in extension data: an element
    /// named `role` or `participantRole` (any namespace, anywhere inside the
    /// participant) whose text is `agent` or one of `enduser`, `end-user`,
    /// `customer`. This is a convention callrec reads, not a standard field.
    pub role_hint: Option<Side>,
}

/// A media stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// `stream_id` (draft: `id`).
    pub id: String,
    /// `session_id` (draft: `session`), if given.
    pub session_id: Option<String>,
    /// The `label` that matches the SDP `a=label`.
    pub label: Option<String>,
}

/// Which streams a participant sends and receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantStreamAssoc {
    /// The participant.
    pub participant_id: String,
    /// Stream ids the participant sends on.
    pub send: Vec<String>,
    /// Stream ids the participant receives.
    pub recv: Vec<String>,
    /// `associate-time`, as written.
    pub associate_time: Option<String>,
    /// `disassociate-time`, as written: the association ended.
    pub disassociate_time: Option<String>,
}

/// A participant joining or leaving a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantSessionAssoc {
    /// The participant.
    pub participant_id: String,
    /// The session, if given.
    pub session_id: Option<String>,
    /// `associate-time`, as written.
    pub associate_time: Option<String>,
    /// `disassociate-time`, as written: the participant left.
    pub disassociate_time: Option<String>,
}

/// One metadata document, normalised across the two formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The schema used.
    pub format: MetadataFormat,
    /// Complete or partial.
    pub data_mode: DataMode,
    /// `group` elements.
    pub groups: Vec<Group>,
    /// `session` elements.
    pub sessions: Vec<Session>,
    /// `participant` elements.
    pub participants: Vec<Participant>,
    /// `stream` elements.
    pub streams: Vec<Stream>,
    /// `participantstreamassoc` elements (and draft inline send/recv).
    pub stream_assocs: Vec<ParticipantStreamAssoc>,
    /// `participantsessionassoc` elements (and draft inline times).
    pub session_assocs: Vec<ParticipantSessionAssoc>,
}

/// A tiny element tree, built without recursion and at most MAX_DEPTH deep.
#[derive(Debug, Default)]
struct Element {
    /// Local name, lowercased.
    name: String,
    /// In a namespace that is not a recording namespace.
    foreign: bool,
    /// (local name, value) pairs.
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
    line: usize,
}

impl Element {
    fn attr(&self, names: &[&str]) -> Option<&str> {
        names.iter().find_map(|n| {
            self.attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        })
    }

    fn own_children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter(|c| !c.foreign)
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.own_children().find(|c| c.name == name)
    }

    fn child_text(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|n| self.child(n))
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    fn children_text(&self, name: &str) -> Vec<String> {
        self.own_children()
            .filter(|c| c.name == name)
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }
}

fn is_recording_ns(ns: &str) -> bool {
    ns == NS_RECORDING_1 || ns == NS_RECORDING || ns == NS_SIPREC_DRAFT
}

fn line_of(text: &str, offset: u64) -> usize {
    let end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses the document into a tree and returns the root and its namespace.
fn parse_tree(text: &str) -> Result<(Element, Option<String>), MetadataError> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<(Element, Option<String>)> = None;
    let mut root_ns: Option<String> = None;
    loop {
        let pos = reader.buffer_position();
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(r) => r,
            Err(e) => {
                return Err(MetadataError::Xml {
                    line: line_of(text, reader.error_position()),
                    reason: e.to_string(),
                });
            }
        };
        let line = line_of(text, pos);
        let ns = match &resolved {
            ResolveResult::Bound(ns) => Some(ns.into_inner().to_string()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(_) => Some(String::new()),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                if root.is_some() {
                    // Content after the root element: ignore.
                    continue;
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(MetadataError::TooDeep { line });
                }
                let foreign = ns.as_deref().is_some_and(|n| !is_recording_ns(n));
                let mut attrs = Vec::new();
                for a in e.attributes().with_checks(false).flatten() {
                    let key = a.key.local_name().into_inner().to_string();
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map(|v| v.into_owned())
                        .unwrap_or_else(|_| a.value.clone().into_owned());
                    attrs.push((key, value));
                }
                let el = Element {
                    name: e.local_name().into_inner().to_ascii_lowercase(),
                    foreign,
                    attrs,
                    text: String::new(),
                    children: Vec::new(),
                    line,
                };
                if stack.is_empty() {
                    root_ns = ns.clone();
                }
                stack.push(el);
                if is_empty {
                    close(&mut stack, &mut root, &root_ns);
                }
            }
            Event::End(_) => close(&mut stack, &mut root, &root_ns),
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let name = r.xml10_content();
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        _ => match name.as_ref() {
                            "lt" => Some('<'),
                            "gt" => Some('>'),
                            "amp" => Some('&'),
                            "apos" => Some('\''),
                            "quot" => Some('"'),
                            _ => None,
                        },
                    };
                    match resolved {
                        Some(c) => top.text.push(c),
                        None => {
                            top.text.push('&');
                            top.text.push_str(&name);
                            top.text.push(';');
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // An unclosed root is tolerated only if quick-xml did not complain.
    while !stack.is_empty() {
        close(&mut stack, &mut root, &root_ns);
    }
    root.ok_or(MetadataError::Empty)
}

fn close(
    stack: &mut Vec<Element>,
    root: &mut Option<(Element, Option<String>)>,
    root_ns: &Option<String>,
) {
    if let Some(el) = stack.pop() {
        match stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => *root = Some((el, root_ns.clone())),
        }
    }
}

fn role_hint(el: &Element) -> Option<Side> {
    // Depth is bounded by MAX_DEPTH, so recursion is bounded too.
    for c in &el.children {
        if c.name == "role" || c.name == "participantrole" {
            let v = c.text.trim().to_ascii_lowercase();
            match v.as_str() {
                "agent" => return Some(Side::Agent),
                "enduser" | "end-user" | "end_user" | "customer" => return Some(Side::EndUser),
                _ => {}
            }
        }
        if let Some(s) = role_hint(c) {
            return Some(s);
        }
    }
    None
}

impl Metadata {
    /// Parses a metadata body (either format).
    pub fn parse(body: &[u8]) -> Result<Self, MetadataError> {
        let text =
            std::str::from_utf8(body).map_err(|e| MetadataError::NotUtf8(e.valid_up_to()))?;
        let (root, ns) = parse_tree(text)?;
        if root.name != "recording" {
            return Err(MetadataError::WrongRoot {
                line: root.line,
                found: cut(&root.name, 40),
            });
        }
        let format = match ns.as_deref() {
            Some(NS_RECORDING_1) | Some(NS_RECORDING) => MetadataFormat::Rfc7865,
            Some(NS_SIPREC_DRAFT) => MetadataFormat::Draft,
            other => MetadataFormat::Other(other.unwrap_or("").to_string()),
        };
        let mut md = Metadata {
            format,
            data_mode: DataMode::Complete,
            groups: Vec::new(),
            sessions: Vec::new(),
            participants: Vec::new(),
            streams: Vec::new(),
            stream_assocs: Vec::new(),
            session_assocs: Vec::new(),
        };
        let missing = |el: &Element, element, attribute| MetadataError::MissingId {
            line: el.line,
            element,
            attribute,
        };
        for el in root.own_children() {
            match el.name.as_str() {
                "datamode" => {
                    md.data_mode = match el.text.trim().to_ascii_lowercase().as_str() {
                        "complete" => DataMode::Complete,
                        "partial" => DataMode::Partial,
                        _ => {
                            return Err(MetadataError::BadDataMode {
                                line: el.line,
                                found: cut(el.text.trim(), 40),
                            });
                        }
                    }
                }
                "group" => md.groups.push(Group {
                    id: el
                        .attr(&["group_id", "id"])
                        .ok_or_else(|| missing(el, "group", "group_id"))?
                        .to_string(),
                    associate_time: el.child_text(&["associate-time"]),
                }),
                "session" => md.sessions.push(Session {
                    id: el
                        .attr(&["session_id", "id"])
                        .ok_or_else(|| missing(el, "session", "session_id"))?
                        .to_string(),
                    sip_session_ids: el.children_text("sipsessionid"),
                    group_ref: el
                        .child_text(&["group-ref"])
                        .or_else(|| el.attr(&["group_ref", "group"]).map(str::to_string)),
                    associate_time: el.child_text(&["associate-time", "start-time"]),
                    disassociate_time: el.child_text(&["disassociate-time", "end-time"]),
                }),
                "participant" => {
                    let id = el
                        .attr(&["participant_id", "id"])
                        .ok_or_else(|| missing(el, "participant", "participant_id"))?
                        .to_string();
                    let name_id = el.child("nameid");
                    let aor = name_id
                        .and_then(|n| n.attr(&["aor"]).map(str::to_string))
                        .or_else(|| el.child_text(&["aor"]))
                        .filter(|a| !a.is_empty());
                    let name = name_id
                        .and_then(|n| n.child_text(&["name"]))
                        .or_else(|| el.child_text(&["name"]));
                    // Draft format: send/recv and times inside participant.
                    let send = el.children_text("send");
                    let recv = el.children_text("recv");
                    let associate_time = el.child_text(&["associate-time"]);
                    let disassociate_time = el.child_text(&["disassociate-time"]);
                    if !send.is_empty() || !recv.is_empty() {
                        md.stream_assocs.push(ParticipantStreamAssoc {
                            participant_id: id.clone(),
                            send,
                            recv,
                            associate_time: associate_time.clone(),
                            disassociate_time: disassociate_time.clone(),
                        });
                    }
                    if associate_time.is_some() || disassociate_time.is_some() {
                        md.session_assocs.push(ParticipantSessionAssoc {
                            participant_id: id.clone(),
                            session_id: el.attr(&["session", "session_id"]).map(str::to_string),
                            associate_time,
                            disassociate_time,
                        });
                    }
                    md.participants.push(Participant {
                        id,
                        aor,
                        name,
                        role_hint: role_hint(el),
                    });
                }
                "stream" => md.streams.push(Stream {
                    id: el
                        .attr(&["stream_id", "id"])
                        .ok_or_else(|| missing(el, "stream", "stream_id"))?
                        .to_string(),
                    session_id: el.attr(&["session_id", "session"]).map(str::to_string),
                    label: el.child_text(&["label"]),
                }),
                "participantstreamassoc" => md.stream_assocs.push(ParticipantStreamAssoc {
                    participant_id: el
                        .attr(&["participant_id", "participant", "id"])
                        .ok_or_else(|| missing(el, "participantstreamassoc", "participant_id"))?
                        .to_string(),
                    send: el.children_text("send"),
                    recv: el.children_text("recv"),
                    associate_time: el.child_text(&["associate-time"]),
                    disassociate_time: el.child_text(&["disassociate-time"]),
                }),
                "participantsessionassoc" => md.session_assocs.push(ParticipantSessionAssoc {
                    participant_id: el
                        .attr(&["participant_id", "participant"])
                        .ok_or_else(|| missing(el, "participantsessionassoc", "participant_id"))?
                        .to_string(),
                    session_id: el.attr(&["session_id", "session"]).map(str::to_string),
                    associate_time: el.child_text(&["associate-time"]),
                    disassociate_time: el.child_text(&["disassociate-time"]),
                }),
                // sessionrecordingassoc, extensiondata and anything unknown.
                _ => {}
            }
        }
        Ok(md)
    }
}

/// A change reported by [`MetadataState::apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataEvent {
    /// A participant appeared (or came back).
    ParticipantJoined {
        /// The participant.
        participant_id: String,
    },
    /// A participant disassociated (left) or vanished from a complete snapshot.
    ParticipantLeft {
        /// The participant.
        participant_id: String,
    },
    /// A participant now sends on a stream.
    StreamAssociated {
        /// The sender.
        participant_id: String,
        /// The stream.
        stream_id: String,
        /// The stream's label, if known.
        label: Option<String>,
    },
    /// A participant stopped sending on a stream that still exists (for
    /// example the agent leaving, before a new party takes the stream).
    StreamDisassociated {
        /// The former sender.
        participant_id: String,
        /// The stream.
        stream_id: String,
        /// The stream's label, if known.
        label: Option<String>,
    },
    /// A stream vanished from a complete snapshot.
    StreamRemoved {
        /// The stream.
        stream_id: String,
        /// Its label, if it had one.
        label: Option<String>,
    },
}

/// A participant as known after the updates so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantState {
    /// The latest description.
    pub participant: Participant,
    /// Associated with the session (not disassociated).
    pub active: bool,
    /// Stream ids the participant sends on.
    pub sends: Vec<String>,
    /// Stream ids the participant receives.
    pub recvs: Vec<String>,
}

/// What the metadata says so far: one complete snapshot and the partial
/// updates applied to it, in order of arrival.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataState {
    participants: Vec<ParticipantState>,
    streams: Vec<Stream>,
    sessions: Vec<Session>,
    complete_seen: bool,
}

impl MetadataState {
    /// An empty state (nothing received yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a complete snapshot (replacing everything) or a partial update
    /// (merged by ID), and returns what changed: leaves, removed streams and
    /// ended stream associations first, then joins, then new stream
    /// associations. A partial update before any
    /// complete snapshot is merged into the empty state.
    pub fn apply(&mut self, md: &Metadata) -> Vec<MetadataEvent> {
        let old = self.clone();
        if md.data_mode == DataMode::Complete {
            *self = MetadataState {
                complete_seen: true,
                ..MetadataState::default()
            };
        }
        for s in &md.sessions {
            match self.sessions.iter_mut().find(|x| x.id == s.id) {
                Some(x) => *x = s.clone(),
                None => self.sessions.push(s.clone()),
            }
        }
        for s in &md.streams {
            match self.streams.iter_mut().find(|x| x.id == s.id) {
                Some(x) => {
                    if s.label.is_some() {
                        x.label = s.label.clone();
                    }
                    if s.session_id.is_some() {
                        x.session_id = s.session_id.clone();
                    }
                }
                None => self.streams.push(s.clone()),
            }
        }
        for p in &md.participants {
            let state = self.participant_mut(&p.id);
            state.active = true;
            let q = &mut state.participant;
            if p.aor.is_some() {
                q.aor = p.aor.clone();
            }
            if p.name.is_some() {
                q.name = p.name.clone();
            }
            if p.role_hint.is_some() {
                q.role_hint = p.role_hint;
            }
        }
        for a in &md.stream_assocs {
            let state = self.participant_mut(&a.participant_id);
            if a.disassociate_time.is_some() {
                state
                    .sends
                    .retain(|s| !a.send.contains(s) && !a.send.is_empty());
                state
                    .recvs
                    .retain(|s| !a.recv.contains(s) && !a.recv.is_empty());
            } else {
                // The element states the participant's current association.
                state.sends = dedup(&a.send);
                state.recvs = dedup(&a.recv);
            }
        }
        for a in &md.session_assocs {
            let state = self.participant_mut(&a.participant_id);
            state.active = a.disassociate_time.is_none();
        }
        self.diff(&old)
    }

    fn participant_mut(&mut self, id: &str) -> &mut ParticipantState {
        let idx = match self
            .participants
            .iter()
            .position(|p| p.participant.id == id)
        {
            Some(i) => i,
            None => {
                self.participants.push(ParticipantState {
                    participant: Participant {
                        id: id.to_string(),
                        aor: None,
                        name: None,
                        role_hint: None,
                    },
                    active: true,
                    sends: Vec::new(),
                    recvs: Vec::new(),
                });
                self.participants.len() - 1
            }
        };
        &mut self.participants[idx]
    }

    fn diff(&self, old: &MetadataState) -> Vec<MetadataEvent> {
        let mut events = Vec::new();
        let was_active = |id: &str| {
            old.participants
                .iter()
                .any(|p| p.participant.id == id && p.active)
        };
        for p in &old.participants {
            if p.active
                && !self
                    .participant(&p.participant.id)
                    .is_some_and(|n| n.active)
            {
                events.push(MetadataEvent::ParticipantLeft {
                    participant_id: p.participant.id.clone(),
                });
            }
        }
        for s in &old.streams {
            if !self.streams.iter().any(|n| n.id == s.id) {
                events.push(MetadataEvent::StreamRemoved {
                    stream_id: s.id.clone(),
                    label: s.label.clone(),
                });
            }
        }
        for p in &old.participants {
            let now = self.participant(&p.participant.id);
            for s in &p.sends {
                let still_sends = now.is_some_and(|n| n.sends.contains(s));
                if !still_sends && let Some(stream) = self.stream(s) {
                    events.push(MetadataEvent::StreamDisassociated {
                        participant_id: p.participant.id.clone(),
                        stream_id: s.clone(),
                        label: stream.label.clone(),
                    });
                }
            }
        }
        for p in &self.participants {
            if p.active && !was_active(&p.participant.id) {
                events.push(MetadataEvent::ParticipantJoined {
                    participant_id: p.participant.id.clone(),
                });
            }
        }
        for p in &self.participants {
            let before = old.participant(&p.participant.id);
            for s in &p.sends {
                if !before.is_some_and(|b| b.sends.contains(s)) {
                    events.push(MetadataEvent::StreamAssociated {
                        participant_id: p.participant.id.clone(),
                        stream_id: s.clone(),
                        label: self.stream(s).and_then(|x| x.label.clone()),
                    });
                }
            }
        }
        events
    }

    /// Whether a complete snapshot has been applied.
    pub fn complete_seen(&self) -> bool {
        self.complete_seen
    }

    /// All participants ever seen, in order of first appearance.
    pub fn participants(&self) -> &[ParticipantState] {
        &self.participants
    }

    /// A participant by id.
    pub fn participant(&self, id: &str) -> Option<&ParticipantState> {
        self.participants.iter().find(|p| p.participant.id == id)
    }

    /// All streams, in order of first appearance.
    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    /// A stream by id.
    pub fn stream(&self, id: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.id == id)
    }

    /// The sessions described.
    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    /// The participant that sends on the stream with SDP label `label`:
    /// an active sender if there is one, else the last one that sent.
    pub fn sender_of_label(&self, label: &str) -> Option<&ParticipantState> {
        let stream_ids: Vec<&str> = self
            .streams
            .iter()
            .filter(|s| s.label.as_deref() == Some(label))
            .map(|s| s.id.as_str())
            .collect();
        let senders = || {
            self.participants
                .iter()
                .filter(|p| p.sends.iter().any(|s| stream_ids.contains(&s.as_str())))
        };
        senders()
            .find(|p| p.active)
            .or_else(|| senders().next_back())
    }
}

fn dedup(v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for s in v {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7865: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <datamode>complete</datamode>
  <group group_id="7+OTCyoxTmqmqyA/1weDAg==">
    <associate-time>2010-12-16T23:41:07Z</associate-time>
  </group>
  <session session_id="hVpd7YQgRW2nD22h7q60JQ==">
    <sipSessionID>ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2</sipSessionID>
    <group-ref>7+OTCyoxTmqmqyA/1weDAg==</group-ref>
  </session>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <nameID aor="sip:bob@biloxi.com"><name xml:lang="it">Bob &amp; Co</name></nameID>
  </participant>
  <participant participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <nameID aor="sip:alice@atlanta.com"><name>Alice</name></nameID>
  </participant>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>96</label></stream>
  <stream stream_id="i1Pz3to5hGk8fuXl+PbwCw==" session_id="hVpd7YQgRW2nD22h7q60JQ=="><label>97</label></stream>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send><recv>i1Pz3to5hGk8fuXl+PbwCw==</recv>
  </participantstreamassoc>
  <participantstreamassoc participant_id="zSfPoSvdSDCmU3A3TRDxAw==">
    <send>i1Pz3to5hGk8fuXl+PbwCw==</send><recv>UAAMm5GRQKSCMVvLyl4rFw==</recv>
  </participantstreamassoc>
</recording>"#;

    #[test]
    fn parses_rfc7865_example() {
        let md = Metadata::parse(RFC7865.as_bytes()).unwrap();
        assert_eq!(md.format, MetadataFormat::Rfc7865);
        assert_eq!(md.data_mode, DataMode::Complete);
        assert_eq!(
            md.sessions[0].group_ref.as_deref(),
            Some("7+OTCyoxTmqmqyA/1weDAg==")
        );
        assert_eq!(
            md.participants[0].aor.as_deref(),
            Some("sip:bob@biloxi.com")
        );
        assert_eq!(md.participants[0].name.as_deref(), Some("Bob & Co"));
        assert_eq!(md.streams[1].label.as_deref(), Some("97"));
        let mut st = MetadataState::new();
        let ev = st.apply(&md);
        assert_eq!(ev.len(), 4, "{ev:?}");
        assert_eq!(
            st.sender_of_label("97").map(|p| p.participant.id.as_str()),
            Some("zSfPoSvdSDCmU3A3TRDxAw==")
        );
        // The same snapshot again changes nothing.
        assert_eq!(st.apply(&md), vec![]);
    }

    #[test]
    fn complete_snapshot_without_a_participant_means_they_left() {
        let mut st = MetadataState::new();
        st.apply(&Metadata::parse(RFC7865.as_bytes()).unwrap());
        let smaller = Metadata::parse(
            br#"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>
  <participant participant_id="srfBElmCRp2QB23b7Mpk0w=="/>
  <stream stream_id="UAAMm5GRQKSCMVvLyl4rFw=="><label>96</label></stream>
  <participantstreamassoc participant_id="srfBElmCRp2QB23b7Mpk0w==">
    <send>UAAMm5GRQKSCMVvLyl4rFw==</send>
  </participantstreamassoc>
</recording>"#,
        )
        .unwrap();
        assert_eq!(
            st.apply(&smaller),
            vec![
                MetadataEvent::ParticipantLeft {
                    participant_id: "zSfPoSvdSDCmU3A3TRDxAw==".into()
                },
                MetadataEvent::StreamRemoved {
                    stream_id: "i1Pz3to5hGk8fuXl+PbwCw==".into(),
                    label: Some("97".into())
                },
            ]
        );
        assert!(st.participant("zSfPoSvdSDCmU3A3TRDxAw==").is_none());
        assert_eq!(st.sender_of_label("97"), None);
    }

    #[test]
    fn partial_update_before_any_snapshot_is_merged() {
        let mut st = MetadataState::new();
        let md = Metadata::parse(
            b"<recording xmlns='urn:ietf:params:xml:ns:recording:1'><dataMode>partial</dataMode>\
<participantsessionassoc participant_id='x'><disassociate-time>t</disassociate-time></participantsessionassoc></recording>",
        )
        .unwrap();
        assert_eq!(st.apply(&md), vec![]);
        assert!(!st.complete_seen());
        assert!(!st.participant("x").unwrap().active);
    }

    #[test]
    fn errors_name_line_and_element() {
        let check = |input: &str, expected: &str| {
            let err = Metadata::parse(input.as_bytes()).unwrap_err();
            assert_eq!(err.to_string(), expected, "for {input:?}");
        };
        check("", "metadata has no root element");
        check(
            "<foo/>",
            "metadata line 1: root element is <foo>, expected <recording>",
        );
        check(
            "<recording>\n<participant/>\n</recording>",
            "metadata line 2: <participant> has no participant_id attribute",
        );
        check(
            "<recording>\n <dataMode>sometimes</dataMode></recording>",
            "metadata line 2: <dataMode> is \"sometimes\", expected complete or partial",
        );
        let deep = "<recording>".to_string() + &"<a>".repeat(40);
        assert!(matches!(
            Metadata::parse(deep.as_bytes()),
            Err(MetadataError::TooDeep { line: 1 })
        ));
        assert!(matches!(
            Metadata::parse(b"<recording><a></b></recording>"),
            Err(MetadataError::Xml { line: 1, .. })
        ));
    }

    #[test]
    fn foreign_namespaces_are_ignored_but_role_hints_read() {
        let md = Metadata::parse(
            br#"<recording xmlns="urn:ietf:params:xml:ns:recording:1" xmlns:x="urn:example:ext">
<participant participant_id="p1"><nameID aor="sip:1001@pbx"/>
 <extensiondata><x:role>Agent</x:role></extensiondata>
 <x:participant participant_id="bogus"/>
</participant>
<x:participant participant_id="ignored"/>
</recording>"#,
        )
        .unwrap();
        assert_eq!(md.participants.len(), 1);
        assert_eq!(md.participants[0].role_hint, Some(Side::Agent));
    }
}
