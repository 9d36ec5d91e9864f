//! The decision engine: for one call, with the settings version it started
//! with, whether it is recorded, what the caller hears, what a consent answer
//! means, and what each participant event does to the recording.
//!
//! [`CallPolicy`] is a plain state machine (in the spirit of str0m's
//! `handle_input`): facts and events go in, decisions come out. It never
//! reads a clock, plays audio or touches a file; the SIP bridge, the SIPREC
//! server and the API feed it and act on its answers. Every decision carries
//! the settings version it was made with and its reason in words, so the
//! catalog and the logs can say why a call was or was not recorded. Reasons
//! never contain phone numbers (logs keep them out at info level).
//!
//! Choices made where the seed is silent:
//! - A call without a queue, or with a queue the settings do not list, is
//!   recorded (when call recording is on), with the announcement: callrec is
//!   installed to record, and a forgotten queue must not silently go
//!   unrecorded. List the queue as `do_not_record` to exclude it.
//! - A queue in `do_not_record` mode is never recorded, outbound calls of
//!   that queue included; a queue in `ask_permission` mode also asks on its
//!   outbound calls. For outbound calls the stricter of the queue and the
//!   outbound type wins.
//! - Inbound calls in an `ask_permission` queue hear the recording
//!   announcement and then the permission prompt (the announcement is the
//!   legal notice, the prompt offers the opt-out), then callrec waits for
//!   the key. Recording starts only after the answer, so a caller who
//!   declines leaves no audio at all.
//! - Asking permission while "Ask user permission to record" is off cannot
//!   be saved; if such settings reach the engine anyway, the call is not
//!   recorded (not asking would go against the admin's intent).
//! - When the agent leaves a call with several added parties, recording
//!   continues only if the setting of each kind of party present is on: a
//!   call with both a third party and an emergency number continues only if
//!   both checkboxes are on.
//! - When the end user leaves, the recording stops even if the agent and a
//!   third party stay: the recording is the end user's call.
//! - A pause before recording has started, a resume when not paused, and a
//!   second pause change nothing.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{DtmfDigit, Language, PhoneNumber, QueueId};
use crate::settings::{
    FirstMessage, Message, MessageKind, OutboundTypeSettings, QueueRecordingMode, Settings,
};
use crate::store::{SettingsVersion, VersionedSettings};

/// How a caller reached the contact center on an inbound call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboundEntry {
    /// A phone call, through the IVR or straight to a queue.
    PhoneOrIvr,
    /// A call started from the web or mobile SDK.
    WebOrMobileSdk,
}

impl InboundEntry {
    /// All inbound entries.
    pub const ALL: [InboundEntry; 2] = [InboundEntry::PhoneOrIvr, InboundEntry::WebOrMobileSdk];

    fn human(self) -> &'static str {
        match self {
            InboundEntry::PhoneOrIvr => "phone or IVR",
            InboundEntry::WebOrMobileSdk => "web or mobile SDK",
        }
    }
}

/// What placed an outbound call. Each kind belongs to one of the two
/// outbound types ([`OutboundKind::outbound_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundKind {
    /// The caller chose "Callback" when no agent was available (overflow
    /// deflection) and reached the head of the queue.
    OverflowCallback,
    /// A call the caller booked with "Schedule a call" in the web or mobile SDK.
    ScheduledCall,
    /// The agent used "Hang up and call back" in the agent adapter.
    HangUpAndCallBack,
    /// The agent dialed with the dialpad of the agent adapter.
    Dialpad,
    /// The agent clicked a phone number in a CRM record.
    CrmClickToCall,
    /// The agent listened to a voicemail and called back.
    VoicemailCallback,
    /// A callback of a short-abandoned call (call recovery).
    ShortAbandonedCallback,
}

impl OutboundKind {
    /// All outbound kinds.
    pub const ALL: [OutboundKind; 7] = [
        OutboundKind::OverflowCallback,
        OutboundKind::ScheduledCall,
        OutboundKind::HangUpAndCallBack,
        OutboundKind::Dialpad,
        OutboundKind::CrmClickToCall,
        OutboundKind::VoicemailCallback,
        OutboundKind::ShortAbandonedCallback,
    ];

    /// The outbound type whose settings apply: the system's callbacks
    /// (overflow, scheduled) are Callback; everything an agent deliberately
    /// dials, "Hang up and call back" included, is AgentInitiated.
    pub fn outbound_type(self) -> OutboundType {
        match self {
            OutboundKind::OverflowCallback | OutboundKind::ScheduledCall => OutboundType::Callback,
            OutboundKind::HangUpAndCallBack
            | OutboundKind::Dialpad
            | OutboundKind::CrmClickToCall
            | OutboundKind::VoicemailCallback
            | OutboundKind::ShortAbandonedCallback => OutboundType::AgentInitiated,
        }
    }

    fn human(self) -> &'static str {
        match self {
            OutboundKind::OverflowCallback => "overflow callback",
            OutboundKind::ScheduledCall => "scheduled call",
            OutboundKind::HangUpAndCallBack => "hang up and call back",
            OutboundKind::Dialpad => "dialpad call",
            OutboundKind::CrmClickToCall => "CRM click-to-call",
            OutboundKind::VoicemailCallback => "voicemail callback",
            OutboundKind::ShortAbandonedCallback => "short-abandoned callback",
        }
    }
}

/// The two outbound types of the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboundType {
    /// Placed by the system.
    Callback,
    /// Placed by an agent.
    AgentInitiated,
}

impl OutboundType {
    /// This type's settings.
    pub fn settings(self, settings: &Settings) -> &OutboundTypeSettings {
        match self {
            OutboundType::Callback => &settings.outbound.callback,
            OutboundType::AgentInitiated => &settings.outbound.agent_initiated,
        }
    }

    fn path(self) -> &'static str {
        match self {
            OutboundType::Callback => "outbound.callback",
            OutboundType::AgentInitiated => "outbound.agent_initiated",
        }
    }
}

/// Which way a call goes and how it came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "direction", rename_all = "snake_case")]
pub enum CallOrigin {
    /// The end user called in.
    Inbound {
        /// How the end user reached the contact center.
        entry: InboundEntry,
    },
    /// The contact center called the end user.
    Outbound {
        /// What placed the call.
        kind: OutboundKind,
    },
}

/// The facts of a new call that the policy needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCall {
    /// Direction, and the inbound entry or outbound kind.
    #[serde(flatten)]
    pub origin: CallOrigin,
    /// The queue, if the call has one.
    #[serde(default)]
    pub queue: Option<QueueId>,
    /// The end user's language, if known; else the default language.
    #[serde(default)]
    pub language: Option<Language>,
}

/// Whether and when the recording of a new call starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartRecording {
    /// Record from now on.
    Now,
    /// Play the prompts, wait for the opt-out key; start unless declined.
    AfterConsent,
    /// This call is not recorded.
    Never,
}

/// One message to play, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// Which message.
    pub message: MessageKind,
    /// The language it is played in (after falling back).
    pub language: Language,
    /// The audio or text to play.
    pub content: Message,
}

/// The decision for a new call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallDecision {
    /// The settings version the call is decided with, for its whole life.
    pub settings_version: SettingsVersion,
    /// Whether and when recording starts.
    pub recording: StartRecording,
    /// The messages to play, in order, before the call reaches an agent
    /// (inbound) or when the callee answers (outbound).
    pub prompts: Vec<Prompt>,
    /// Whether to wait for the opt-out key after the prompts.
    pub wait_for_opt_out_key: bool,
    /// Why, in words.
    pub reason: String,
}

/// The answer to the permission prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentAnswer {
    /// The caller pressed a key.
    Key(DtmfDigit),
    /// No key before the timeout.
    Timeout,
}

/// What the caller's answer to the permission prompt was, as the catalog
/// records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentOutcome {
    /// The caller pressed 1: not recorded at all.
    Declined,
    /// The caller pressed another key: recorded.
    OtherKey,
    /// No key before the timeout: recorded.
    NoAnswer,
}

/// What happens to the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingAction {
    /// Start recording now.
    Start,
    /// The recording goes on as it is (recording, or paused).
    Continue,
    /// Stop recording for good; the call may go on.
    Stop,
    /// Pause: the span until resume is redacted.
    Pause,
    /// Resume after a pause.
    Resume,
    /// Nothing is being recorded, and nothing starts.
    NotRecorded,
}

/// Where the recording of a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// The settings say this call is not recorded.
    Off,
    /// The prompts play; the opt-out key is awaited.
    AwaitingConsent,
    /// Recording.
    Recording,
    /// Recording, in a paused (redacted) span.
    Paused,
    /// The caller declined: no audio is kept.
    Declined,
    /// The recording stopped; nothing more is recorded for this call.
    Stopped,
}

impl RecordingState {
    /// Whether the recording has started and not stopped (paused included).
    pub fn is_active(self) -> bool {
        matches!(self, RecordingState::Recording | RecordingState::Paused)
    }
}

/// The channel of the recording a party is mixed into. Mirrors
/// `callrec_media::Role` (this crate does not depend on the media core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Channel 1, left: the end user.
    EndUser,
    /// Channel 2, right: the agent and every party the agent adds.
    Agent,
}

impl Channel {
    /// 1 for the end user, 2 for the agent side.
    pub fn number(self) -> u8 {
        match self {
            Channel::EndUser => 1,
            Channel::Agent => 2,
        }
    }
}

/// Something that happened to the participants of a call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ParticipantEvent {
    /// The agent added a party by number; numbers in the emergency list are
    /// treated as emergency numbers.
    ThirdPartyAdded {
        /// The number called.
        number: PhoneNumber,
    },
    /// The agent added an emergency number (signalling says so, whatever the list says).
    EmergencyNumberAdded {
        /// The number called.
        number: PhoneNumber,
    },
    /// An added party hung up.
    ThirdPartyLeft {
        /// The number that left.
        number: PhoneNumber,
    },
    /// The agent left the call.
    AgentLeft,
    /// The end user left the call.
    EndUserLeft,
    /// The agent or an integration paused the recording (card numbers, PCI).
    Pause,
    /// The recording is resumed after a pause.
    Resume,
}

/// The kind of a party the agent added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AddedPartyKind {
    /// A third-party number.
    ThirdParty,
    /// An emergency number.
    EmergencyNumber,
}

/// The decision for a consent answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentDecision {
    /// The settings version of the call.
    pub settings_version: SettingsVersion,
    /// The outcome, or `None` when no answer was awaited (the key is ignored).
    pub outcome: Option<ConsentOutcome>,
    /// What happens to the recording.
    pub action: RecordingAction,
    /// Why, in words.
    pub reason: String,
}

/// The decision for a participant event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantDecision {
    /// The settings version of the call.
    pub settings_version: SettingsVersion,
    /// What happens to the recording.
    pub action: RecordingAction,
    /// For a party joining: the channel its audio goes to.
    pub channel: Option<Channel>,
    /// For a party joining: whether it is a third party or an emergency number.
    pub party: Option<AddedPartyKind>,
    /// Why, in words.
    pub reason: String,
}

/// The recording policy of one call, from its start to its end.
#[derive(Debug, Clone)]
pub struct CallPolicy {
    settings: Arc<VersionedSettings>,
    state: RecordingState,
    agent_present: bool,
    added: Vec<(PhoneNumber, AddedPartyKind)>,
}

impl CallPolicy {
    /// Decides a new call with the settings version in force when it
    /// started; the returned policy keeps that version for the whole call.
    pub fn start(settings: Arc<VersionedSettings>, call: &NewCall) -> (Self, CallDecision) {
        let (recording, kinds, why) = decide_start(&settings.settings, call);
        let (prompts, notes) = resolve_prompts(&settings.settings, call.language.as_ref(), &kinds);
        let reason = if notes.is_empty() {
            why
        } else {
            format!("{why}; {}", notes.join("; "))
        };
        let decision = CallDecision {
            settings_version: settings.version,
            recording,
            prompts,
            wait_for_opt_out_key: recording == StartRecording::AfterConsent,
            reason,
        };
        let state = match recording {
            StartRecording::Now => RecordingState::Recording,
            StartRecording::AfterConsent => RecordingState::AwaitingConsent,
            StartRecording::Never => RecordingState::Off,
        };
        let policy = Self {
            settings,
            state,
            agent_present: true,
            added: Vec::new(),
        };
        (policy, decision)
    }

    /// The settings version this call is decided with.
    pub fn settings_version(&self) -> SettingsVersion {
        self.settings.version
    }

    /// Where the recording stands.
    pub fn state(&self) -> RecordingState {
        self.state
    }

    /// The caller's answer to the permission prompt: pressing 1 declines,
    /// any other key or no key before the timeout means recorded.
    pub fn consent(&mut self, answer: ConsentAnswer) -> ConsentDecision {
        let (outcome, action, reason) = if self.state != RecordingState::AwaitingConsent {
            let action = self.steady_action();
            (
                None,
                action,
                format!(
                    "no permission answer was awaited ({}): the key is ignored",
                    self.state_words()
                ),
            )
        } else {
            match answer {
                ConsentAnswer::Key(DtmfDigit::DECLINE) => {
                    self.state = RecordingState::Declined;
                    (
                        Some(ConsentOutcome::Declined),
                        RecordingAction::NotRecorded,
                        "the caller pressed 1 to not be recorded: nothing of this call is recorded and the catalog keeps it as declined".to_owned(),
                    )
                }
                ConsentAnswer::Key(digit) => {
                    self.state = RecordingState::Recording;
                    (
                        Some(ConsentOutcome::OtherKey),
                        RecordingAction::Start,
                        format!("the caller pressed {digit}, not 1: the call is recorded"),
                    )
                }
                ConsentAnswer::Timeout => {
                    self.state = RecordingState::Recording;
                    (
                        Some(ConsentOutcome::NoAnswer),
                        RecordingAction::Start,
                        "the caller pressed no key before the timeout: the call is recorded"
                            .to_owned(),
                    )
                }
            }
        };
        ConsentDecision {
            settings_version: self.settings.version,
            outcome,
            action,
            reason,
        }
    }

    /// What a participant event does to the recording.
    pub fn participant(&mut self, event: &ParticipantEvent) -> ParticipantDecision {
        let mut channel = None;
        let mut party = None;
        let (action, reason) = match event {
            ParticipantEvent::ThirdPartyAdded { number }
            | ParticipantEvent::EmergencyNumberAdded { number } => {
                let kind = match event {
                    ParticipantEvent::EmergencyNumberAdded { .. } => {
                        AddedPartyKind::EmergencyNumber
                    }
                    _ if self.settings.settings.is_emergency_number(number) => {
                        AddedPartyKind::EmergencyNumber
                    }
                    _ => AddedPartyKind::ThirdParty,
                };
                self.added.push((number.clone(), kind));
                channel = Some(Channel::Agent);
                party = Some(kind);
                let who = match kind {
                    AddedPartyKind::ThirdParty => "a third party",
                    AddedPartyKind::EmergencyNumber => "an emergency number",
                };
                (
                    self.steady_action(),
                    format!(
                        "the agent added {who}: its audio goes to channel 2 with the agent; {}",
                        self.state_words()
                    ),
                )
            }
            ParticipantEvent::ThirdPartyLeft { number } => {
                if let Some(i) = self.added.iter().position(|(n, _)| n == number) {
                    self.added.remove(i);
                }
                if !self.agent_present && self.added.is_empty() && self.state.is_active() {
                    self.state = RecordingState::Stopped;
                    (
                        RecordingAction::Stop,
                        "the last added party left after the agent: only the end user is left, the recording stops".to_owned(),
                    )
                } else {
                    (
                        self.steady_action(),
                        format!("an added party left; {}", self.state_words()),
                    )
                }
            }
            ParticipantEvent::AgentLeft => self.agent_left(),
            ParticipantEvent::EndUserLeft => {
                if self.state.is_active() {
                    self.state = RecordingState::Stopped;
                    (
                        RecordingAction::Stop,
                        "the end user left: the recording is of the end user's call, it stops"
                            .to_owned(),
                    )
                } else {
                    if self.state == RecordingState::AwaitingConsent {
                        self.state = RecordingState::Stopped;
                    }
                    (
                        RecordingAction::NotRecorded,
                        format!("the end user left; {}", self.state_words()),
                    )
                }
            }
            ParticipantEvent::Pause => match self.state {
                RecordingState::Recording => {
                    self.state = RecordingState::Paused;
                    let mode = match self.settings.settings.pause_mode {
                        crate::settings::PauseMode::Skip => "left out of the file",
                        crate::settings::PauseMode::Silence => "kept as silence",
                    };
                    (
                        RecordingAction::Pause,
                        format!(
                            "paused: the span until resume is {mode} and its start and end go into the metadata"
                        ),
                    )
                }
                RecordingState::Paused => (
                    RecordingAction::Continue,
                    "already paused: the pause goes on".to_owned(),
                ),
                _ => (
                    RecordingAction::NotRecorded,
                    format!("nothing to pause: {}", self.state_words()),
                ),
            },
            ParticipantEvent::Resume => match self.state {
                RecordingState::Paused => {
                    self.state = RecordingState::Recording;
                    (
                        RecordingAction::Resume,
                        "resumed after the pause".to_owned(),
                    )
                }
                RecordingState::Recording => (
                    RecordingAction::Continue,
                    "not paused: the recording goes on".to_owned(),
                ),
                _ => (
                    RecordingAction::NotRecorded,
                    format!("nothing to resume: {}", self.state_words()),
                ),
            },
        };
        ParticipantDecision {
            settings_version: self.settings.version,
            action,
            channel,
            party,
            reason,
        }
    }

    fn agent_left(&mut self) -> (RecordingAction, String) {
        self.agent_present = false;
        let settings = &self.settings.settings;
        let (continues, why) = self.continuation(settings);
        if self.state.is_active() {
            if continues {
                (RecordingAction::Continue, why)
            } else {
                self.state = RecordingState::Stopped;
                (RecordingAction::Stop, why)
            }
        } else {
            if self.state == RecordingState::AwaitingConsent && !continues {
                self.state = RecordingState::Stopped;
            }
            (
                RecordingAction::NotRecorded,
                format!("the agent left; {}", self.state_words()),
            )
        }
    }

    /// Whether recording may go on after the agent left, and why.
    fn continuation(&self, settings: &Settings) -> (bool, String) {
        if self.added.is_empty() {
            return (
                false,
                "the agent left with no added party on the call: nothing is recorded after the agent leaves".to_owned(),
            );
        }
        let missing = settings.call_details.missing_continuation_prerequisites();
        if !missing.is_empty() {
            return (
                false,
                format!(
                    "the agent left: recording after the agent leaves needs {} on, so the recording stops",
                    missing.join(", ")
                ),
            );
        }
        let rec = &settings.call_recording;
        let has = |k| self.added.iter().any(|(_, kind)| *kind == k);
        let mut off = Vec::new();
        let mut on = Vec::new();
        for (kind, flag, path) in [
            (
                AddedPartyKind::ThirdParty,
                rec.continue_third_party_after_agent_leaves,
                "call_recording.continue_third_party_after_agent_leaves",
            ),
            (
                AddedPartyKind::EmergencyNumber,
                rec.continue_emergency_after_agent_leaves,
                "call_recording.continue_emergency_after_agent_leaves",
            ),
        ] {
            if has(kind) {
                if flag { on.push(path) } else { off.push(path) }
            }
        }
        if off.is_empty() {
            (
                true,
                format!(
                    "the agent left the end user with the added parties and {} is on: the recording goes on",
                    on.join(" and ")
                ),
            )
        } else {
            (
                false,
                format!(
                    "the agent left and {} is off: nothing is recorded after the agent leaves",
                    off.join(" and ")
                ),
            )
        }
    }

    /// The action that says "nothing changes" in the current state.
    fn steady_action(&self) -> RecordingAction {
        if self.state.is_active() {
            RecordingAction::Continue
        } else {
            RecordingAction::NotRecorded
        }
    }

    fn state_words(&self) -> &'static str {
        match self.state {
            RecordingState::Off => "this call is not recorded",
            RecordingState::AwaitingConsent => "recording waits for the permission answer",
            RecordingState::Recording => "the recording goes on",
            RecordingState::Paused => "the recording stays paused",
            RecordingState::Declined => "the caller declined: nothing is recorded",
            RecordingState::Stopped => "the recording has stopped for good",
        }
    }
}

/// Whether to record, which messages play (by kind, in order), and why.
fn decide_start(s: &Settings, call: &NewCall) -> (StartRecording, Vec<MessageKind>, String) {
    use MessageKind::{OutboundRecordingMessage, PermissionPrompt, RecordingAnnouncement};
    let never = |why: String| (StartRecording::Never, Vec::new(), why);
    if !s.call_details.use_call_recording {
        return never(
            "not recorded: call recording is off (call_details.use_call_recording)".to_owned(),
        );
    }
    let queue = call.queue.as_ref().and_then(|id| s.queue(id));
    let queue_mode = queue.map(|q| q.recording_mode);
    let queue_words = match (queue, &call.queue) {
        (Some(q), _) => format!("queue `{}` is set to {}", q.id, q.recording_mode),
        (None, Some(id)) => {
            format!("queue `{id}` is not in the settings, so its calls are recorded")
        }
        (None, None) => "the call has no queue, so it is recorded".to_owned(),
    };
    if queue_mode == Some(QueueRecordingMode::DoNotRecord) {
        return never(format!(
            "not recorded: queue `{}` is set to do not record",
            queue.map(|q| q.id.as_str()).unwrap_or_default()
        ));
    }
    let asking_off = "asking permission is configured but call_details.ask_user_permission is off, so the call is not recorded rather than recorded without asking";
    match call.origin {
        CallOrigin::Inbound { entry } => {
            let base = format!("inbound call from {}: {queue_words}", entry.human());
            if queue_mode == Some(QueueRecordingMode::AskPermission) {
                if !s.call_details.ask_user_permission {
                    return never(format!("not recorded: {base}; {asking_off}"));
                }
                (
                    StartRecording::AfterConsent,
                    vec![RecordingAnnouncement, PermissionPrompt],
                    format!(
                        "recorded unless the caller presses 1: {base}; the caller hears the recording announcement and the permission prompt before reaching an agent"
                    ),
                )
            } else {
                (
                    StartRecording::Now,
                    vec![RecordingAnnouncement],
                    format!(
                        "recorded: {base}; the caller hears the recording announcement before reaching an agent"
                    ),
                )
            }
        }
        CallOrigin::Outbound { kind } => {
            let kind_type = kind.outbound_type();
            let ts = kind_type.settings(s);
            let path = kind_type.path();
            let base = format!(
                "outbound {} ({path}); no inbound recording announcement on outbound calls",
                kind.human()
            );
            if !ts.record {
                return never(format!("not recorded: {base}; {path}.record is off"));
            }
            let queue_asks = queue_mode == Some(QueueRecordingMode::AskPermission);
            if ts.ask_permission || queue_asks {
                if !s.call_details.ask_user_permission {
                    return never(format!("not recorded: {base}; {asking_off}"));
                }
                let order = match ts.first_message {
                    FirstMessage::PermissionPrompt => {
                        vec![PermissionPrompt, OutboundRecordingMessage]
                    }
                    FirstMessage::RecordingMessage => {
                        vec![OutboundRecordingMessage, PermissionPrompt]
                    }
                };
                let by = if ts.ask_permission {
                    format!("{path}.ask_permission is on")
                } else {
                    queue_words
                };
                (
                    StartRecording::AfterConsent,
                    order,
                    format!(
                        "recorded unless the callee presses 1: {base}; {by}; the {} plays first",
                        match ts.first_message {
                            FirstMessage::PermissionPrompt => "permission prompt",
                            FirstMessage::RecordingMessage => "outbound recording message",
                        }
                    ),
                )
            } else {
                (
                    StartRecording::Now,
                    vec![OutboundRecordingMessage],
                    format!("recorded: {base}; the callee hears the outbound recording message"),
                )
            }
        }
    }
}

/// The prompts of each kind in the caller's language, falling back to more
/// general tags and then to the default language; notes for the reason.
fn resolve_prompts(
    s: &Settings,
    language: Option<&Language>,
    kinds: &[MessageKind],
) -> (Vec<Prompt>, Vec<String>) {
    let default = &s.languages.default;
    let wanted = language.unwrap_or(default);
    let mut prompts = Vec::new();
    let mut notes = Vec::new();
    for &kind in kinds {
        let found = wanted
            .fallbacks()
            .chain(std::iter::once(default.clone()))
            .find_map(|tag| {
                let content = s.languages.messages.get(&tag)?.get(kind)?.clone();
                Some((tag, content))
            });
        match found {
            Some((tag, content)) => {
                if &tag != wanted {
                    notes.push(format!(
                        "no {} in {wanted}, played in {tag}",
                        kind.human()
                    ));
                }
                prompts.push(Prompt {
                    message: kind,
                    language: tag,
                    content,
                });
            }
            None => notes.push(format!(
                "no {} is set for {wanted} or the default language {default}: nothing is played for it",
                kind.human()
            )),
        }
    }
    (prompts, notes)
}
