//! Which side (end user or agent) each recorded stream belongs to.
//!
//! The label of each recorded stream is mapped to the participant that sends
//! on it (from the metadata), and each participant to a [`Side`]. In order:
//! 1. a role hint in the metadata ([`crate::metadata::Participant::role_hint`]);
//! 2. the configured [`RoleRule`]s, in the order given: an agent address
//!    pattern names the agent, and then the first other participant in label
//!    order is the end user and any further one a party the agent added;
//!    label order gives the first labelled stream (in m-line order) to one
//!    side, the next to the other, and further ones to the agent side;
//! 3. label order with the end user first, when no rule decided.
//!
//! Decisions are sticky: once a label or participant has a side it keeps it
//! for the whole call, so channels never swap mid-call. A participant that
//! appears after the first decision is a party the agent added and goes to
//! the agent side (SPEC section 1) unless the metadata hints otherwise or an
//! agent pattern matches it. Never by packet arrival order: nothing here
//! sees packets.

use std::fmt;

use crate::Side;
use crate::metadata::MetadataState;

/// A glob over addresses of record: `*` matches any run of characters, `?`
/// one character; case-insensitive. A pattern without a URI scheme is
/// matched against the address without its scheme (`sip:`, `sips:`, `tel:`),
/// so `*@agents.example.com` matches `sip:1001@agents.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPattern(String);

impl AddressPattern {
    /// A pattern; any text is a valid glob.
    pub fn new(pattern: impl Into<String>) -> Self {
        AddressPattern(pattern.into().trim().to_ascii_lowercase())
    }

    /// The pattern as given (lowercased).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `aor` matches.
    pub fn matches(&self, aor: &str) -> bool {
        let mut aor = aor.trim().trim_start_matches('<').trim_end_matches('>');
        // URI parameters and headers are not part of the address.
        if let Some(i) = aor.find([';', '?']) {
            aor = &aor[..i];
        }
        let aor = aor.to_ascii_lowercase();
        let has_scheme = |s: &str| ["sip:", "sips:", "tel:"].iter().any(|p| s.starts_with(p));
        let subject = if has_scheme(&self.0) {
            aor.as_str()
        } else {
            ["sip:", "sips:", "tel:"]
                .iter()
                .find_map(|p| aor.strip_prefix(p))
                .unwrap_or(&aor)
        };
        glob(self.0.as_bytes(), subject.as_bytes())
    }
}

/// Iterative glob match with single-star backtracking: linear in practice,
/// never recursive.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// A configured rule for deciding who is the agent when the metadata does
/// not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRule {
    /// The first labelled stream in m-line order goes to `first`, the next
    /// (of another participant) to the other side; further ones to the agent
    /// side.
    LabelOrder {
        /// The side of the first labelled stream (usually the end user).
        first: Side,
    },
    /// A participant whose address of record matches is the agent.
    AgentAddressPattern(AddressPattern),
}

/// A role rule that could not be read from configuration text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "role rule {0:?} is not one of label_order, label_order:agent_first, agent_address:<glob> (e.g. agent_address:*@agents.example.com)"
)]
pub struct RoleRuleError(pub String);

impl std::str::FromStr for RoleRule {
    type Err = RoleRuleError;

    /// Reads a rule as written in configuration: `label_order` (end user
    /// first), `label_order:agent_first`, `label_order:end_user_first`, or
    /// `agent_address:<glob>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RoleRuleError(s.chars().take(80).collect());
        let (kind, arg) = match s.trim().split_once(':') {
            Some((k, a)) => (k.trim(), Some(a.trim())),
            None => (s.trim(), None),
        };
        match (kind.to_ascii_lowercase().as_str(), arg) {
            ("label_order", None) | ("label_order", Some("end_user_first")) => {
                Ok(RoleRule::LabelOrder {
                    first: Side::EndUser,
                })
            }
            ("label_order", Some("agent_first")) => Ok(RoleRule::LabelOrder { first: Side::Agent }),
            ("agent_address", Some(glob)) if !glob.is_empty() => {
                Ok(RoleRule::AgentAddressPattern(AddressPattern::new(glob)))
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for RoleRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleRule::LabelOrder {
                first: Side::EndUser,
            } => f.write_str("label_order"),
            RoleRule::LabelOrder { first: Side::Agent } => f.write_str("label_order:agent_first"),
            RoleRule::AgentAddressPattern(p) => write!(f, "agent_address:{}", p.as_str()),
        }
    }
}

impl Default for RoleRule {
    fn default() -> Self {
        RoleRule::LabelOrder {
            first: Side::EndUser,
        }
    }
}

/// What decided a channel's side, for the recording's metadata JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecidedBy {
    /// A role hint in the recording metadata.
    Metadata,
    /// [`RoleRule::LabelOrder`] (configured or the fallback).
    LabelOrder,
    /// [`RoleRule::AgentAddressPattern`].
    AgentAddressPattern,
    /// The participant joined after the start: a party the agent added.
    AddedParty,
}

impl DecidedBy {
    /// Stable snake_case name for JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Metadata => "metadata",
            DecidedBy::LabelOrder => "label_order",
            DecidedBy::AgentAddressPattern => "agent_address_pattern",
            DecidedBy::AddedParty => "added_party",
        }
    }
}

impl fmt::Display for DecidedBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recorded stream's place in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelEntry {
    /// The stream's SDP label (or `#<index>` when it had none).
    pub label: String,
    /// The participant that sends on it, when the metadata says.
    pub participant_id: Option<String>,
    /// That participant's address of record, if known.
    pub aor: Option<String>,
    /// The side, hence the channel.
    pub side: Side,
    /// What decided the side.
    pub decided_by: DecidedBy,
}

/// The channel map of a recording: one entry per recorded stream, in m-line
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelMap {
    /// The entries.
    pub entries: Vec<ChannelEntry>,
}

impl ChannelMap {
    /// The entry of a label.
    pub fn get(&self, label: &str) -> Option<&ChannelEntry> {
        self.entries.iter().find(|e| e.label == label)
    }

    /// The side of a label.
    pub fn side(&self, label: &str) -> Option<Side> {
        self.get(label).map(|e| e.side)
    }
}

/// Who a stream belongs to, as the decision sees it: a participant if the
/// metadata says, else the label itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Participant(String),
    Label(String),
}

/// Decides and remembers sides for one recording session.
#[derive(Debug, Clone)]
pub struct RoleResolver {
    rules: Vec<RoleRule>,
    decided: Vec<(Owner, Side, DecidedBy)>,
    /// The side each label last had, for a label whose sender becomes
    /// unknown again (metadata not passed, or the stream lost its sender).
    last: Vec<(String, Side, DecidedBy)>,
    started: bool,
}

impl RoleResolver {
    /// A resolver with the configured rules (empty: label order, end user
    /// first).
    pub fn new(rules: Vec<RoleRule>) -> Self {
        RoleResolver {
            rules,
            decided: Vec::new(),
            last: Vec::new(),
            started: false,
        }
    }

    fn lookup(&self, owner: &Owner) -> Option<(Side, DecidedBy)> {
        self.decided
            .iter()
            .find(|(o, _, _)| o == owner)
            .map(|&(_, s, d)| (s, d))
    }

    /// The channel map for the recorded streams `labels` (in m-line order,
    /// e.g. [`crate::sdp::SessionDescription::recordable_labels`]) given what
    /// the metadata says so far. Call again after each offer or metadata
    /// update: earlier decisions are kept.
    pub fn resolve(&mut self, labels: &[String], metadata: Option<&MetadataState>) -> ChannelMap {
        let owners: Vec<(Owner, Option<String>, Option<Side>)> = labels
            .iter()
            .map(
                |label| match metadata.and_then(|m| m.sender_of_label(label)) {
                    Some(p) => (
                        Owner::Participant(p.participant.id.clone()),
                        p.participant.aor.clone(),
                        p.participant.role_hint,
                    ),
                    None => (Owner::Label(label.clone()), None, None),
                },
            )
            .collect();
        // Metadata that arrives after the first decision names the sender of
        // a label decided without it: the participant inherits that decision.
        for (label, (owner, _, _)) in labels.iter().zip(&owners) {
            if matches!(owner, Owner::Participant(_))
                && self.lookup(owner).is_none()
                && let Some((side, by)) = self.lookup(&Owner::Label(label.clone()))
            {
                self.decided.push((owner.clone(), side, by));
            }
            // A label whose sender is no longer known keeps its last side.
            if let Owner::Label(l) = owner
                && self.lookup(owner).is_none()
                && let Some(&(_, side, by)) = self.last.iter().find(|(x, _, _)| x == l)
            {
                self.decided.push((owner.clone(), side, by));
            }
        }
        // Distinct owners in label order.
        let mut distinct: Vec<(Owner, Option<String>, Option<Side>)> = Vec::new();
        for o in &owners {
            if !distinct.iter().any(|d| d.0 == o.0) {
                distinct.push(o.clone());
            }
        }
        let undecided: Vec<_> = distinct
            .into_iter()
            .filter(|(o, _, _)| self.lookup(o).is_none())
            .collect();
        if self.started {
            self.decide_late(&undecided);
        } else if !undecided.is_empty() {
            self.decide_first(&undecided);
            self.started = true;
        }
        let entries = labels
            .iter()
            .zip(&owners)
            .map(|(label, (owner, aor, _))| {
                let (side, decided_by) = self
                    .lookup(owner)
                    .unwrap_or((Side::Agent, DecidedBy::AddedParty));
                ChannelEntry {
                    label: label.clone(),
                    participant_id: match owner {
                        Owner::Participant(p) => Some(p.clone()),
                        Owner::Label(_) => None,
                    },
                    aor: aor.clone(),
                    side,
                    decided_by,
                }
            })
            .collect::<Vec<ChannelEntry>>();
        for e in &entries {
            match self.last.iter_mut().find(|(l, _, _)| *l == e.label) {
                Some(x) => *x = (e.label.clone(), e.side, e.decided_by),
                None => self.last.push((e.label.clone(), e.side, e.decided_by)),
            }
        }
        ChannelMap { entries }
    }

    fn agent_pattern_matches(&self, aor: Option<&str>) -> bool {
        aor.is_some_and(|aor| {
            self.rules.iter().any(|r| match r {
                RoleRule::AgentAddressPattern(p) => p.matches(aor),
                RoleRule::LabelOrder { .. } => false,
            })
        })
    }

    fn decide_late(&mut self, owners: &[(Owner, Option<String>, Option<Side>)]) {
        for (owner, aor, hint) in owners {
            let decision = match hint {
                Some(side) => (*side, DecidedBy::Metadata),
                None if self.agent_pattern_matches(aor.as_deref()) => {
                    (Side::Agent, DecidedBy::AgentAddressPattern)
                }
                None => (Side::Agent, DecidedBy::AddedParty),
            };
            self.decided.push((owner.clone(), decision.0, decision.1));
        }
    }

    fn decide_first(&mut self, owners: &[(Owner, Option<String>, Option<Side>)]) {
        let mut sides: Vec<Option<(Side, DecidedBy)>> = owners
            .iter()
            .map(|(_, _, hint)| hint.map(|s| (s, DecidedBy::Metadata)))
            .collect();
        // A hint on one side settles the others.
        let hinted_agent = sides.iter().flatten().any(|(s, _)| *s == Side::Agent);
        let hinted_user = sides.iter().flatten().any(|(s, _)| *s == Side::EndUser);
        if hinted_agent && !hinted_user {
            fill_after_agent_found(&mut sides, DecidedBy::Metadata);
        } else if hinted_user && !hinted_agent {
            for s in sides.iter_mut().filter(|s| s.is_none()) {
                *s = Some((Side::Agent, DecidedBy::Metadata));
            }
        }
        let rules = self.rules.clone();
        for rule in rules.iter().chain(std::iter::once(&RoleRule::default())) {
            if sides.iter().all(Option::is_some) {
                break;
            }
            match rule {
                RoleRule::AgentAddressPattern(p) => {
                    let mut any = false;
                    for (i, (_, aor, _)) in owners.iter().enumerate() {
                        if sides[i].is_none() && aor.as_deref().is_some_and(|a| p.matches(a)) {
                            sides[i] = Some((Side::Agent, DecidedBy::AgentAddressPattern));
                            any = true;
                        }
                    }
                    if any {
                        fill_after_agent_found(&mut sides, DecidedBy::AgentAddressPattern);
                    }
                }
                RoleRule::LabelOrder { first } => {
                    let first = *first;
                    for (k, s) in sides.iter_mut().enumerate() {
                        if s.is_none() {
                            let side = match k {
                                0 => first,
                                1 => first.other(),
                                _ => Side::Agent,
                            };
                            *s = Some((side, DecidedBy::LabelOrder));
                        }
                    }
                }
            }
        }
        for ((owner, _, _), s) in owners.iter().zip(sides) {
            let (side, by) = s.unwrap_or((Side::Agent, DecidedBy::LabelOrder));
            self.decided.push((owner.clone(), side, by));
        }
    }
}

/// Once the agent is known: the first undecided owner in label order is
/// the end user (decided by `by`), any further one a party the agent added.
fn fill_after_agent_found(sides: &mut [Option<(Side, DecidedBy)>], by: DecidedBy) {
    let mut end_user_found = sides.iter().flatten().any(|(s, _)| *s == Side::EndUser);
    for s in sides.iter_mut().filter(|s| s.is_none()) {
        *s = Some(if end_user_found {
            (Side::Agent, DecidedBy::AddedParty)
        } else {
            end_user_found = true;
            (Side::EndUser, by)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        let check = |pattern: &str, aor: &str, expected: bool| {
            assert_eq!(
                AddressPattern::new(pattern).matches(aor),
                expected,
                "{pattern} vs {aor}"
            );
        };
        check("*@agents.example.com", "sip:1001@agents.example.com", true);
        check(
            "*@agents.example.com",
            "<sips:1001@Agents.Example.com;transport=tls>",
            true,
        );
        check("*@agents.example.com", "sip:1001@example.com", false);
        check("sip:10??@*", "sip:1001@pbx", true);
        check("sip:10??@*", "sip:100@pbx", false);
        check("*", "", true);
        check("a*b*c", "axxbyyc", true);
        check("a*b*c", "axxbyy", false);
        check("tel:+1555*", "tel:+15551234", true);
    }

    #[test]
    fn rules_from_configuration_text() {
        let check = |text: &str, expected: Result<RoleRule, ()>| {
            let got = text.parse::<RoleRule>();
            assert_eq!(got.clone().map_err(|_| ()), expected, "{text}");
            if let Ok(rule) = got {
                assert_eq!(rule.to_string().parse::<RoleRule>().unwrap(), rule);
            }
        };
        check("label_order", Ok(RoleRule::default()));
        check(
            " label_order : agent_first ",
            Ok(RoleRule::LabelOrder { first: Side::Agent }),
        );
        check(
            "agent_address:sip:*@Agents.Example.com",
            Ok(RoleRule::AgentAddressPattern(AddressPattern::new(
                "sip:*@agents.example.com",
            ))),
        );
        check("agent_address:", Err(()));
        check("label_order:sometimes", Err(()));
        check("by_arrival", Err(()));
        assert_eq!(
            "x".parse::<RoleRule>().unwrap_err().to_string(),
            "role rule \"x\" is not one of label_order, label_order:agent_first, agent_address:<glob> (e.g. agent_address:*@agents.example.com)"
        );
    }

    fn labels(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_label_keeps_its_side_when_metadata_is_not_passed() {
        use crate::metadata::{Metadata, MetadataState};
        let md = Metadata::parse(
            b"<recording xmlns='urn:ietf:params:xml:ns:recording:1'>\
              <participant participant_id='a'><nameID aor='sip:1@agents.example.com'/></participant>\
              <stream stream_id='s1'><label>1</label></stream>\
              <participantstreamassoc participant_id='a'><send>s1</send></participantstreamassoc>\
              </recording>",
        )
        .unwrap();
        let mut state = MetadataState::new();
        state.apply(&md);
        let mut r = RoleResolver::new(vec![RoleRule::AgentAddressPattern(AddressPattern::new(
            "*@agents.example.com",
        ))]);
        let with = r.resolve(&labels(&["1", "2"]), Some(&state));
        assert_eq!(with.side("1"), Some(Side::Agent));
        assert_eq!(with.side("2"), Some(Side::EndUser));
        let without = r.resolve(&labels(&["1", "2"]), None);
        assert_eq!(without.side("1"), Some(Side::Agent));
        assert_eq!(
            without.get("1").unwrap().decided_by,
            DecidedBy::AgentAddressPattern
        );
        assert_eq!(without.side("2"), Some(Side::EndUser));
    }

    #[test]
    fn label_order_without_metadata() {
        let mut r = RoleResolver::new(vec![]);
        let map = r.resolve(&labels(&["b", "a"]), None);
        assert_eq!(map.side("b"), Some(Side::EndUser));
        assert_eq!(map.side("a"), Some(Side::Agent));
        assert_eq!(map.get("a").unwrap().decided_by, DecidedBy::LabelOrder);

        let mut r = RoleResolver::new(vec![RoleRule::LabelOrder { first: Side::Agent }]);
        let map = r.resolve(&labels(&["1", "2", "3"]), None);
        assert_eq!(map.side("1"), Some(Side::Agent));
        assert_eq!(map.side("2"), Some(Side::EndUser));
        assert_eq!(map.side("3"), Some(Side::Agent));
        // Decisions stick; a new label later is an added party.
        let map = r.resolve(&labels(&["2", "1", "4"]), None);
        assert_eq!(map.side("2"), Some(Side::EndUser));
        assert_eq!(map.get("4").unwrap().decided_by, DecidedBy::AddedParty);
        assert_eq!(map.side("4"), Some(Side::Agent));
    }
}
