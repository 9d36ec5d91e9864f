//! The settings document: everything an admin sets about when calls are
//! recorded and what callers hear, as one serde (JSON) value.
//!
//! A [`Settings`] value may be invalid (a continuation checkbox on while a
//! Call details prerequisite is off, a duplicated queue id...); only
//! [`Settings::validate`] turns it into a [`ValidSettings`], and only valid
//! settings are saved. Validation reports every problem at once, each with
//! the field path it is about, so the portal can mark every wrong field.
//!
//! Storage settings are not here: they belong to the storage crate.
//! This module does no I/O.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::{Language, PhoneNumber, QueueId};

/// The whole settings document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Settings > Calls > Call details.
    pub call_details: CallDetails,
    /// Settings > Calls > Call recording: third parties and emergency numbers.
    pub call_recording: CallRecording,
    /// The file format of every recording.
    pub format: RecordingFormat,
    /// What a paused span becomes in the file.
    pub pause_mode: PauseMode,
    /// Queues and how each records its calls.
    pub queues: Vec<Queue>,
    /// The two outbound call types.
    pub outbound: Outbound,
    /// Numbers treated as emergency numbers when the agent adds them to a call.
    pub emergency_numbers: Vec<PhoneNumber>,
    /// Settings > Languages and messages.
    pub languages: Languages,
}

/// Settings > Calls > Call details.
///
/// Defaults: call recording on (recording is what callrec is installed for),
/// asking permission off, leaving ongoing calls with third parties off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallDetails {
    /// "Use call recording": the master switch. Off, no call is recorded.
    pub use_call_recording: bool,
    /// "Ask user permission to record": allows queues and outbound types to
    /// ask the caller's permission (opt-out: press 1 to not be recorded).
    pub ask_user_permission: bool,
    /// "Leave ongoing calls with third parties": the agent may leave a call
    /// and let the end user and the added parties go on talking.
    pub leave_ongoing_calls_with_third_parties: bool,
}

impl Default for CallDetails {
    fn default() -> Self {
        Self {
            use_call_recording: true,
            ask_user_permission: false,
            leave_ongoing_calls_with_third_parties: false,
        }
    }
}

/// Settings > Calls > Call recording. Both checkboxes are unchecked by
/// default, and each needs the three Call details prerequisites on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallRecording {
    /// Continue recording calls to third-party numbers after the agent leaves.
    pub continue_third_party_after_agent_leaves: bool,
    /// Continue recording calls to emergency numbers after the agent leaves.
    pub continue_emergency_after_agent_leaves: bool,
}

impl CallRecording {
    /// The field paths of the Call details settings that both continuation
    /// checkboxes need on.
    pub const PREREQUISITES: [&'static str; 3] = [
        "call_details.use_call_recording",
        "call_details.ask_user_permission",
        "call_details.leave_ongoing_calls_with_third_parties",
    ];
}

impl CallDetails {
    /// The prerequisites of the continuation checkboxes that are off, as
    /// field paths, in the order the portal shows them.
    pub fn missing_continuation_prerequisites(&self) -> Vec<&'static str> {
        let on = [
            self.use_call_recording,
            self.ask_user_permission,
            self.leave_ongoing_calls_with_third_parties,
        ];
        CallRecording::PREREQUISITES
            .into_iter()
            .zip(on)
            .filter(|(_, on)| !on)
            .map(|(path, _)| path)
            .collect()
    }
}

/// The file format of recordings. MP3 by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingFormat {
    /// MPEG-2.5 Layer III, 32 kbps, plain stereo.
    #[default]
    Mp3,
    /// RIFF PCM s16le, 2 channels, 8 kHz.
    Wav,
}

/// What a paused (redacted) span becomes in the file. Silence by default:
/// the seed does not say, and keeping the span as silence keeps the file's
/// timeline equal to the call's, so the pause times in the metadata, the
/// call's duration and any timestamps a QA reviewer notes all line up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseMode {
    /// The span is left out: the file is shorter than the call.
    Skip,
    /// The span is kept as digital silence.
    #[default]
    Silence,
}

/// A queue and how its calls are recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// The id calls carry.
    pub id: QueueId,
    /// The name admins see.
    pub name: String,
    /// Record, do not record, or ask permission.
    pub recording_mode: QueueRecordingMode,
}

/// How a queue records its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueRecordingMode {
    /// Every call is recorded; callers hear the recording announcement.
    Record,
    /// No call of this queue is ever recorded, inbound or outbound.
    DoNotRecord,
    /// Callers hear the permission prompt and may press 1 to not be recorded.
    AskPermission,
}

impl fmt::Display for QueueRecordingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueRecordingMode::Record => "record",
            QueueRecordingMode::DoNotRecord => "do not record",
            QueueRecordingMode::AskPermission => "ask permission",
        })
    }
}

/// The two outbound call types, each set separately.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbound {
    /// Callbacks placed by the system: overflow callbacks and scheduled calls.
    pub callback: OutboundTypeSettings,
    /// Calls an agent deliberately makes: dialpad, CRM click-to-call,
    /// voicemail callback, short-abandoned callback, hang up and call back.
    pub agent_initiated: OutboundTypeSettings,
}

/// How one outbound call type is recorded. Default: recorded, no permission
/// asked, the recording message first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundTypeSettings {
    /// Record calls of this type.
    pub record: bool,
    /// Play the permission prompt and let the callee press 1 to not be recorded.
    pub ask_permission: bool,
    /// Which message plays first when both play.
    pub first_message: FirstMessage,
}

impl Default for OutboundTypeSettings {
    fn default() -> Self {
        Self {
            record: true,
            ask_permission: false,
            first_message: FirstMessage::RecordingMessage,
        }
    }
}

/// Which outbound message plays first when both the outbound recording
/// message and the permission prompt play.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstMessage {
    /// The permission prompt, then the outbound recording message.
    PermissionPrompt,
    /// The outbound recording message, then the permission prompt.
    #[default]
    RecordingMessage,
}

/// Settings > Languages and messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Languages {
    /// The language used when the caller's language has no message.
    pub default: Language,
    /// The messages of each language.
    pub messages: BTreeMap<Language, LanguageMessages>,
}

impl Default for Languages {
    /// English, with text messages, so that a new installation announces
    /// recording from the first call (through the text-to-speech command).
    fn default() -> Self {
        let en = Language::parse("en").expect("`en` is a language tag");
        let messages = LanguageMessages {
            recording_announcement: Some(Message::Text(
                "This call will be recorded for quality and training purposes.".to_owned(),
            )),
            outbound_recording_message: Some(Message::Text(
                "This call will be recorded.".to_owned(),
            )),
            permission_prompt: Some(Message::Text(
                "This call may be recorded. To not be recorded, press 1.".to_owned(),
            )),
        };
        Self {
            default: en.clone(),
            messages: BTreeMap::from([(en, messages)]),
        }
    }
}

/// The three messages of one language. A message left out falls back to a
/// more general tag of the same language, then to the default language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LanguageMessages {
    /// Played to inbound callers whose call is recorded.
    pub recording_announcement: Option<Message>,
    /// Played to the callee of a recorded outbound call.
    pub outbound_recording_message: Option<Message>,
    /// Asks permission: "press 1 to not be recorded".
    pub permission_prompt: Option<Message>,
}

impl LanguageMessages {
    /// The message of one kind, if set.
    pub fn get(&self, kind: MessageKind) -> Option<&Message> {
        match kind {
            MessageKind::RecordingAnnouncement => self.recording_announcement.as_ref(),
            MessageKind::OutboundRecordingMessage => self.outbound_recording_message.as_ref(),
            MessageKind::PermissionPrompt => self.permission_prompt.as_ref(),
        }
    }

    /// Sets the message of one kind.
    pub fn set(&mut self, kind: MessageKind, message: Message) {
        let slot = match kind {
            MessageKind::RecordingAnnouncement => &mut self.recording_announcement,
            MessageKind::OutboundRecordingMessage => &mut self.outbound_recording_message,
            MessageKind::PermissionPrompt => &mut self.permission_prompt,
        };
        *slot = Some(message);
    }
}

/// Which of the three messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// The (inbound) call recording announcement.
    RecordingAnnouncement,
    /// The outbound call recording message.
    OutboundRecordingMessage,
    /// The permission prompt.
    PermissionPrompt,
}

impl MessageKind {
    /// All three kinds.
    pub const ALL: [MessageKind; 3] = [
        MessageKind::RecordingAnnouncement,
        MessageKind::OutboundRecordingMessage,
        MessageKind::PermissionPrompt,
    ];

    /// The name used in field paths and URLs, e.g. `permission_prompt`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::RecordingAnnouncement => "recording_announcement",
            MessageKind::OutboundRecordingMessage => "outbound_recording_message",
            MessageKind::PermissionPrompt => "permission_prompt",
        }
    }

    /// Reads the name used in field paths and URLs.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The name admins read, e.g. "permission prompt".
    pub fn human(self) -> &'static str {
        match self {
            MessageKind::RecordingAnnouncement => "recording announcement",
            MessageKind::OutboundRecordingMessage => "outbound recording message",
            MessageKind::PermissionPrompt => "permission prompt",
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message: an uploaded audio file (8 kHz mono, by reference) or a text
/// for the optional text-to-speech command.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// The reference of an uploaded, converted audio file.
    Audio(String),
    /// Text to be spoken by the text-to-speech command.
    Text(String),
}

/// One problem of a settings document: the field path and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The path of the field, e.g. `queues[2].recording_mode`.
    pub field: String,
    /// What is wrong and what to do, lowercase.
    pub message: String,
}

impl FieldProblem {
    /// A problem about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in a settings document; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the settings were not saved, fix these fields: {}", summary(.0))]
pub struct ValidationErrors(pub Vec<FieldProblem>);

fn summary(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            call_details: CallDetails::default(),
            call_recording: CallRecording::default(),
            format: RecordingFormat::default(),
            pause_mode: PauseMode::default(),
            queues: Vec::new(),
            outbound: Outbound::default(),
            emergency_numbers: ["911", "112", "999"]
                .into_iter()
                .map(|n| PhoneNumber::parse(n).expect("default emergency numbers parse"))
                .collect(),
            languages: Languages::default(),
        }
    }
}

impl Settings {
    /// Checks the document and returns it as [`ValidSettings`], or every
    /// problem found.
    ///
    /// Rules:
    /// - each continuation checkbox on needs each Call details prerequisite
    ///   on; one problem per missing prerequisite, on the checkbox's path;
    /// - asking permission (a queue in `ask_permission` mode, an outbound type
    ///   with `ask_permission`) needs `call_details.ask_user_permission` on;
    /// - queue ids are unique and queues have a name;
    /// - emergency numbers are not listed twice;
    /// - the default language has messages, and those that can play are set:
    ///   the recording announcement while call recording is on, the outbound
    ///   recording message while an outbound type records, the permission
    ///   prompt while asking permission is on (other languages fall back to
    ///   the default language, so they may leave messages out);
    /// - no message is an empty text or an empty audio reference.
    pub fn validate(self) -> Result<ValidSettings, ValidationErrors> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(ValidSettings(self))
        } else {
            Err(ValidationErrors(problems))
        }
    }

    /// Every problem of the document (empty when it is valid).
    pub fn problems(&self) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        let details = &self.call_details;

        let missing = details.missing_continuation_prerequisites();
        for (on, field) in [
            (
                self.call_recording.continue_third_party_after_agent_leaves,
                "call_recording.continue_third_party_after_agent_leaves",
            ),
            (
                self.call_recording.continue_emergency_after_agent_leaves,
                "call_recording.continue_emergency_after_agent_leaves",
            ),
        ] {
            if on {
                for prerequisite in &missing {
                    problems.push(FieldProblem::new(
                        field,
                        format!("needs {prerequisite} on: turn it on or uncheck this box"),
                    ));
                }
            }
        }

        let ask_needs =
            "needs call_details.ask_user_permission on: turn it on or choose another mode";
        let mut seen: HashMap<&QueueId, usize> = HashMap::new();
        for (i, queue) in self.queues.iter().enumerate() {
            if let Some(first) = seen.insert(&queue.id, i) {
                problems.push(FieldProblem::new(
                    format!("queues[{i}].id"),
                    format!(
                        "queue id `{}` is already used by queues[{first}]: give each queue its own id",
                        queue.id
                    ),
                ));
            }
            if queue.name.trim().is_empty() {
                problems.push(FieldProblem::new(
                    format!("queues[{i}].name"),
                    "give the queue a name",
                ));
            }
            if queue.recording_mode == QueueRecordingMode::AskPermission
                && !details.ask_user_permission
            {
                problems.push(FieldProblem::new(
                    format!("queues[{i}].recording_mode"),
                    ask_needs,
                ));
            }
        }

        for (name, kind) in [
            ("callback", &self.outbound.callback),
            ("agent_initiated", &self.outbound.agent_initiated),
        ] {
            if kind.ask_permission && !details.ask_user_permission {
                problems.push(FieldProblem::new(
                    format!("outbound.{name}.ask_permission"),
                    "needs call_details.ask_user_permission on: turn it on or uncheck this box",
                ));
            }
        }

        let mut seen_numbers: HashMap<&PhoneNumber, usize> = HashMap::new();
        for (i, number) in self.emergency_numbers.iter().enumerate() {
            if let Some(first) = seen_numbers.insert(number, i) {
                problems.push(FieldProblem::new(
                    format!("emergency_numbers[{i}]"),
                    format!("{number} is already listed at emergency_numbers[{first}]: remove one"),
                ));
            }
        }

        for (language, messages) in &self.languages.messages {
            for kind in MessageKind::ALL {
                let empty = match messages.get(kind) {
                    Some(Message::Text(t)) => t.trim().is_empty(),
                    Some(Message::Audio(r)) => r.trim().is_empty(),
                    None => false,
                };
                if empty {
                    problems.push(FieldProblem::new(
                        format!("languages.messages.{language}.{kind}"),
                        "the message is empty: write a text, upload audio, or remove it",
                    ));
                }
            }
        }

        let default = &self.languages.default;
        match self.languages.messages.get(default) {
            None => problems.push(FieldProblem::new(
                "languages.default",
                format!("{default} has no messages: add messages for {default} or choose a language that has them"),
            )),
            Some(messages) => {
                let outbound_records =
                    self.outbound.callback.record || self.outbound.agent_initiated.record;
                let needed = [
                    (
                        MessageKind::RecordingAnnouncement,
                        details.use_call_recording,
                        "inbound callers must hear it while call recording is on",
                    ),
                    (
                        MessageKind::OutboundRecordingMessage,
                        details.use_call_recording && outbound_records,
                        "callees of recorded outbound calls must hear it",
                    ),
                    (
                        MessageKind::PermissionPrompt,
                        details.use_call_recording && details.ask_user_permission,
                        "callers asked for permission must hear it",
                    ),
                ];
                for (kind, needed, why) in needed {
                    if needed && messages.get(kind).is_none() {
                        problems.push(FieldProblem::new(
                            format!("languages.messages.{default}.{kind}"),
                            format!(
                                "set the {} of the default language (audio or text): {why}",
                                kind.human()
                            ),
                        ));
                    }
                }
            }
        }
        problems
    }

    /// The recording mode of a queue, if the queue is listed.
    pub fn queue(&self, id: &QueueId) -> Option<&Queue> {
        self.queues.iter().find(|q| &q.id == id)
    }

    /// Whether a number is in the emergency numbers list (both normalized).
    pub fn is_emergency_number(&self, number: &PhoneNumber) -> bool {
        self.emergency_numbers.contains(number)
    }
}

/// Settings that passed [`Settings::validate`]; the only kind a settings
/// store saves. Reading one from JSON validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Settings", into = "Settings")]
pub struct ValidSettings(Settings);

impl ValidSettings {
    /// The document.
    pub fn into_inner(self) -> Settings {
        self.0
    }
}

impl Default for ValidSettings {
    fn default() -> Self {
        Settings::default()
            .validate()
            .expect("the default settings are valid")
    }
}

impl Deref for ValidSettings {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.0
    }
}

impl TryFrom<Settings> for ValidSettings {
    type Error = ValidationErrors;
    fn try_from(s: Settings) -> Result<Self, Self::Error> {
        s.validate()
    }
}

impl From<ValidSettings> for Settings {
    fn from(v: ValidSettings) -> Self {
        v.0
    }
}

/// The field paths that differ between two documents, sorted by field name
/// within each section: the change summary of a new settings version.
///
/// Paths are dotted, with `[i]` for list items and the language tag for
/// messages: `queues[1].recording_mode`, `languages.messages.es-MX.permission_prompt`.
/// A list whose length changed is reported as a whole (`queues`).
pub fn changed_fields(old: &Settings, new: &Settings) -> Vec<String> {
    let old = serde_json::to_value(old).expect("settings serialize to JSON");
    let new = serde_json::to_value(new).expect("settings serialize to JSON");
    let mut out = Vec::new();
    diff(&old, &new, String::new(), &mut out);
    out
}

fn diff(old: &serde_json::Value, new: &serde_json::Value, path: String, out: &mut Vec<String>) {
    use serde_json::Value;
    if old == new {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                let null = Value::Null;
                diff(
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    join(key),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff(x, y, format!("{path}[{i}]"), out);
            }
        }
        _ => out.push(path),
    }
}
