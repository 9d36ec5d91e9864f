//! The values the catalog stores and returns.
//!
//! Plain data with parsing constructors (`CallId::new`, `PhoneNumber::new`,
//! `RecordingStatus::parse`): a value of these types is valid by
//! construction. Nothing here does I/O. Times are [`UnixMillis`] so that
//! SQLite and PostgreSQL store and compare them the same way.
//!
//! [`PhoneNumber`] is personal data: its `Debug` prints `PhoneNumber(***)`
//! and it has no `Display`, so it cannot end up in a log line by accident.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;

/// A point in time: milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current time of the system clock.
    pub fn now() -> Self {
        Self::from(time::OffsetDateTime::now_utc())
    }

    /// The number of milliseconds since the epoch.
    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// This time as an `OffsetDateTime` in UTC, `None` if out of range.
    pub fn to_offset_date_time(self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000).ok()
    }

    /// This time plus `ms` milliseconds (saturating).
    pub fn plus_millis(self, ms: i64) -> Self {
        UnixMillis(self.0.saturating_add(ms))
    }
}

impl From<time::OffsetDateTime> for UnixMillis {
    /// Truncates to whole milliseconds.
    fn from(t: time::OffsetDateTime) -> Self {
        UnixMillis((t.unix_timestamp_nanos() / 1_000_000) as i64)
    }
}

/// The id of a call (text). Used in object keys
/// (`recordings/YYYY/MM/DD/<call-id>.mp3`), so it is limited to 1 to 128
/// characters out of `A-Z a-z 0-9 . _ - @ +` and must not start with `.`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallId(String);

impl CallId {
    /// Parses a call id; see the type's docs for what is accepted.
    pub fn new(id: impl Into<String>) -> Result<Self, CatalogError> {
        let id = id.into();
        if id.is_empty() || id.len() > 128 {
            return Err(CatalogError::invalid(
                "call id",
                format!("it has {} characters, use 1 to 128", id.len()),
            ));
        }
        if id.starts_with('.') {
            return Err(CatalogError::invalid(
                "call id",
                "it starts with `.`, use a letter or digit first",
            ));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+')))
        {
            return Err(CatalogError::invalid(
                "call id",
                format!("character {c:?} is not allowed, use A-Z a-z 0-9 . _ - @ +"),
            ));
        }
        Ok(CallId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CallId {
    type Error = CatalogError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CallId::new(s)
    }
}

impl From<CallId> for String {
    fn from(id: CallId) -> Self {
        id.0
    }
}

impl FromStr for CallId {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallId::new(s)
    }
}

/// The id of a recording: a UUID v7 chosen by the catalog, so ids sort by
/// creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordingId(pub uuid::Uuid);

impl RecordingId {
    /// A new id for a recording created now.
    pub fn generate() -> Self {
        RecordingId(uuid::Uuid::now_v7())
    }
}

impl fmt::Display for RecordingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for RecordingId {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s)
            .map(RecordingId)
            .map_err(|_| CatalogError::invalid("recording id", "it is not a UUID"))
    }
}

/// A participant's phone number or SIP user part. Personal data: never log
/// it. `Debug` prints `PhoneNumber(***)`; there is no `Display`, use
/// [`PhoneNumber::as_str`] where the number really must be shown (API
/// responses to authorised users).
///
/// Accepted: 1 to 64 characters, no whitespace or control characters.
/// Stored as given (no normalisation): filters match it exactly.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn new(number: impl Into<String>) -> Result<Self, CatalogError> {
        let number = number.into();
        if number.is_empty() || number.chars().count() > 64 {
            return Err(CatalogError::invalid(
                "phone number",
                "use 1 to 64 characters",
            ));
        }
        if number.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(CatalogError::invalid(
                "phone number",
                "it contains whitespace or a control character, remove them",
            ));
        }
        Ok(PhoneNumber(number))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber(***)")
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = CatalogError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PhoneNumber::new(s)
    }
}

impl From<PhoneNumber> for String {
    fn from(n: PhoneNumber) -> Self {
        n.0
    }
}

/// Declares a fieldless enum stored as lowercase text, with `as_str`,
/// `parse`, `ALL`, `Display` and `FromStr`.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The text stored in the database and used in the API.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the text written by [`Self::as_str`].
            pub fn parse(s: &str) -> Result<Self, CatalogError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(CatalogError::invalid(
                        $what,
                        format!(
                            "`{}` is not one of {}",
                            s,
                            [$($text,)+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = CatalogError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }
    };
}

text_enum!(
    /// Who placed the call, seen from the contact center.
    Direction, "call direction" {
        /// The end user called the contact center.
        Inbound = "inbound",
        /// The contact center called the end user.
        Outbound = "outbound",
        /// Between two agents or extensions.
        Internal = "internal",
    }
);

text_enum!(
    /// The file format of a recording (a global setting, SPEC section 1).
    RecordingFormat, "recording format" {
        Mp3 = "mp3",
        Wav = "wav",
    }
);

impl RecordingFormat {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }
}

text_enum!(
    /// The role of a participant in a call (SPEC sections 1 and 5).
    ParticipantRole, "participant role" {
        /// The customer, caller or callee.
        EndUser = "end_user",
        Agent = "agent",
        /// A party the agent added (transfer, conference).
        ThirdParty = "third_party",
        /// An emergency number the agent added.
        Emergency = "emergency",
    }
);

text_enum!(
    /// What audit entries record. New variants may be added; match with a
    /// wildcard arm.
    #[non_exhaustive]
    AuditAction, "audit action" {
        /// Somebody played a recording in the browser.
        Listen = "listen",
        /// Somebody downloaded a recording.
        Download = "download",
        /// Somebody deleted a recording.
        Delete = "delete",
        /// A new settings version was saved (written by `save_settings`).
        SettingsChange = "settings_change",
        /// Retention deleted a recording.
        RetentionDelete = "retention_delete",
        /// The storage settings were replaced (written by
        /// `save_storage_settings`).
        StorageSettingsChange = "storage_settings_change",
    }
);

text_enum!(
    /// Where a recording is in its life. The allowed changes are those of
    /// [`RecordingStatus::can_become`]:
    ///
    /// ```text
    /// recording  -> paused, finalizing, failed
    /// paused     -> recording, finalizing, failed
    /// finalizing -> spooled, failed
    /// spooled    -> uploading, failed, deleted
    /// uploading  -> delivered, failed, spooled
    /// failed     -> uploading, spooled, finalizing, deleted
    /// delivered  -> deleted
    /// declined   -> deleted
    /// deleted    -> (nothing: final)
    /// ```
    ///
    /// A recording is created as `recording` or `declined`.
    RecordingStatus, "recording status" {
        /// Audio is being captured.
        Recording = "recording",
        /// Capture is paused (redaction); the span becomes silence.
        Paused = "paused",
        /// The call ended; the file is being completed on the spool.
        Finalizing = "finalizing",
        /// The complete file is on the local spool (fsynced), waiting for
        /// upload.
        Spooled = "spooled",
        /// An upload is in progress (claimed by one worker).
        Uploading = "uploading",
        /// Stored in external storage and verified; spool copy removed.
        Delivered = "delivered",
        /// The last attempt failed; retried at `next_attempt_at`.
        Failed = "failed",
        /// Policy decided not to record this call; there is no audio.
        Declined = "declined",
        /// Deleted from storage (by a user or retention). The row stays.
        Deleted = "deleted",
    }
);

impl RecordingStatus {
    /// Whether the state machine allows going from `self` to `to`.
    pub fn can_become(self, to: RecordingStatus) -> bool {
        use RecordingStatus::*;
        matches!(
            (self, to),
            (Recording, Paused | Finalizing | Failed)
                | (Paused, Recording | Finalizing | Failed)
                | (Finalizing, Spooled | Failed)
                | (Spooled, Uploading | Failed | Deleted)
                | (Uploading, Delivered | Failed | Spooled)
                | (Failed, Uploading | Spooled | Finalizing | Deleted)
                | (Delivered, Deleted)
                | (Declined, Deleted)
        )
    }

    /// Statuses a recording may be created in.
    pub const INITIAL: &'static [RecordingStatus] =
        &[RecordingStatus::Recording, RecordingStatus::Declined];

    /// Statuses waiting for (or in) delivery: the upload worker's work.
    pub const PENDING_DELIVERY: &'static [RecordingStatus] = &[
        RecordingStatus::Spooled,
        RecordingStatus::Uploading,
        RecordingStatus::Failed,
    ];

    /// Statuses from which [`crate::Catalog::mark_deleted`] may delete.
    pub const DELETABLE: &'static [RecordingStatus] = &[
        RecordingStatus::Spooled,
        RecordingStatus::Failed,
        RecordingStatus::Delivered,
        RecordingStatus::Declined,
    ];
}

/// The stereo channel a participant is heard on (SPEC section 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Channel 1: the end user.
    Left,
    /// Channel 2: the agent side (agent, third parties, emergency numbers).
    Right,
}

impl Channel {
    /// 1 for left, 2 for right, as in the recording's metadata.
    pub fn number(self) -> i64 {
        match self {
            Channel::Left => 1,
            Channel::Right => 2,
        }
    }

    pub fn from_number(n: i64) -> Result<Self, CatalogError> {
        match n {
            1 => Ok(Channel::Left),
            2 => Ok(Channel::Right),
            _ => Err(CatalogError::invalid(
                "channel",
                format!("{n} is not a channel, use 1 (left) or 2 (right)"),
            )),
        }
    }
}

/// A call as first written to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCall {
    pub id: CallId,
    pub direction: Direction,
    /// The call type as the policy names it (free text, e.g. `queue`,
    /// `direct`, `campaign`).
    pub kind: String,
    pub queue: Option<String>,
    /// Language tag, e.g. `es-ES`.
    pub language: Option<String>,
    pub started_at: UnixMillis,
    /// The settings version the policy used for this call.
    pub settings_version: Option<u64>,
}

/// A policy decision and why it was taken (e.g. `record` because
/// `queue sales records all calls`). `decision` is the policy's own word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    pub at: UnixMillis,
    pub decision: String,
    pub reason: String,
}

/// A call with everything the catalog knows about it but its participants
/// and recordings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub direction: Direction,
    pub kind: String,
    pub queue: Option<String>,
    pub language: Option<String>,
    pub started_at: UnixMillis,
    pub ended_at: Option<UnixMillis>,
    pub settings_version: Option<u64>,
    /// In the order they were added.
    pub decisions: Vec<PolicyDecision>,
}

/// A participant as first written to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewParticipant {
    pub role: ParticipantRole,
    pub channel: Channel,
    pub number: Option<PhoneNumber>,
    /// Display name, if signalling gave one (personal data too).
    pub name: Option<String>,
    pub joined_at: UnixMillis,
}

/// A participant of a call. `id` is unique in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: i64,
    pub call_id: CallId,
    pub role: ParticipantRole,
    pub channel: Channel,
    pub number: Option<PhoneNumber>,
    pub name: Option<String>,
    pub joined_at: UnixMillis,
    pub left_at: Option<UnixMillis>,
}

/// A paused span, in milliseconds from the start of the recording;
/// `start_ms <= end_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PauseSpan {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Where a delivered recording is: the storage backend's configured name
/// (e.g. `local`, `s3`) and the object key in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageLocation {
    pub backend: String,
    pub key: String,
}

/// A recording as first written to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecording {
    pub call_id: CallId,
    pub format: RecordingFormat,
    /// One of [`RecordingStatus::INITIAL`].
    pub status: RecordingStatus,
    /// Why it is in that status (e.g. `policy: record all inbound`).
    pub reason: String,
    pub created_at: UnixMillis,
}

/// The audio file finished on the spool, as handed to
/// [`crate::Catalog::mark_spooled`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledAudio {
    /// Path of the file on this node's spool.
    pub spool_path: String,
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    pub duration_ms: u64,
    /// True when the audio was cut (crash repair): delivered anyway.
    pub partial: bool,
}

/// One recording and its delivery state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub id: RecordingId,
    pub call_id: CallId,
    pub format: RecordingFormat,
    pub status: RecordingStatus,
    /// Why the recording is in its current status.
    pub status_reason: String,
    pub status_changed_at: UnixMillis,
    pub spool_path: Option<String>,
    /// Set once delivered.
    pub location: Option<StorageLocation>,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub duration_ms: Option<u64>,
    pub partial: bool,
    /// Delivery attempts that ended, failed or succeeded.
    pub attempts: u32,
    /// The error of the last failed attempt; kept after delivery.
    pub last_error: Option<String>,
    /// When the upload worker should try next. Set by `mark_spooled`
    /// (due at once) and `record_attempt_failure`; cleared on delivery.
    pub next_attempt_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub delivered_at: Option<UnixMillis>,
}

/// One entry of a recording's status history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub at: UnixMillis,
    /// `None` for the status the recording was created in.
    pub from: Option<RecordingStatus>,
    pub to: RecordingStatus,
    pub reason: String,
}

/// A recording with its call, participants, pauses and status history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingDetail {
    pub recording: Recording,
    pub call: Call,
    /// Ordered by join time.
    pub participants: Vec<Participant>,
    /// Ordered by start.
    pub pauses: Vec<PauseSpan>,
    /// Oldest first; the first entry is the creation.
    pub history: Vec<StatusChange>,
}

/// Filters for [`crate::Catalog::list_recordings`]. Every field that is set
/// must match (AND); an empty `statuses` means any status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFilter {
    /// Recordings created at or after this time.
    pub from: Option<UnixMillis>,
    /// Recordings created strictly before this time.
    pub until: Option<UnixMillis>,
    pub direction: Option<Direction>,
    /// Exact queue name.
    pub queue: Option<String>,
    pub statuses: Vec<RecordingStatus>,
    /// A participant of the call has exactly this number.
    pub participant_number: Option<PhoneNumber>,
    pub call_id: Option<CallId>,
}

/// Where a page of a listing continues: an opaque token from
/// [`Page::next`]. Its text form is stable enough to put in a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cursor {
    pub(crate) created_at: i64,
    pub(crate) id: RecordingId,
}

impl Cursor {
    pub fn as_string(&self) -> String {
        format!("{}_{}", self.created_at, self.id)
    }
}

impl FromStr for Cursor {
    type Err = CatalogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad =
            || CatalogError::invalid("page cursor", "use the `next` value of the previous page");
        let (t, id) = s.split_once('_').ok_or_else(bad)?;
        Ok(Cursor {
            created_at: t.parse().map_err(|_| bad())?,
            id: id.parse().map_err(|_| bad())?,
        })
    }
}

impl TryFrom<String> for Cursor {
    type Error = CatalogError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Cursor> for String {
    fn from(c: Cursor) -> Self {
        c.as_string()
    }
}

/// Which page of a listing: newest first, at most `limit` items (1 to
/// 1000), continuing after `after` when set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The largest `limit` accepted.
    pub const MAX_LIMIT: u32 = 1000;

    pub fn first(limit: u32) -> Self {
        PageRequest { limit, after: None }
    }
}

/// A page of a listing. `next` is `Some` when more items may follow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// A recording as listed: the recording with the call fields the listing
/// shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingListItem {
    pub recording: Recording,
    pub direction: Direction,
    pub queue: Option<String>,
    pub call_started_at: UnixMillis,
}

/// What the upload worker asks for: recordings in one of `statuses`, due at
/// `due_by` when set (`next_attempt_at` null or `<= due_by`), ordered by
/// `next_attempt_at` (nulls first) then creation, at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusQuery {
    pub statuses: Vec<RecordingStatus>,
    pub due_by: Option<UnixMillis>,
    pub limit: u32,
}

/// A settings document to save.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSettings {
    pub document: serde_json::Value,
    /// Who saves (user or token name); also the audit actor.
    pub author: String,
    /// What changed, in a sentence, for the history.
    pub summary: String,
    pub at: UnixMillis,
}

/// A saved settings version. Versions count 1, 2, 3... without gaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingsVersion {
    pub version: u64,
    pub document: serde_json::Value,
    pub author: String,
    pub summary: String,
    pub created_at: UnixMillis,
}

/// The storage settings as saved (where recordings are delivered).
///
/// `document` is opaque to the catalog (callrec-storage's `StorageConfig`
/// as JSON) and holds the credentials in clear, like a configuration file
/// would: never return or log it as is.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct StorageSettings {
    pub document: serde_json::Value,
    /// Who saved it; also the audit actor.
    pub author: String,
    pub saved_at: UnixMillis,
}

impl fmt::Debug for StorageSettings {
    /// The document is left out: it holds credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageSettings")
            .field("document", &"<hidden: holds credentials>")
            .field("author", &self.author)
            .field("saved_at", &self.saved_at)
            .finish()
    }
}

/// An audit entry to append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    pub at: UnixMillis,
    /// Who did it: user, token name, or `system` for retention.
    pub actor: String,
    pub action: AuditAction,
    /// What it was done to, e.g. `recording/<id>` or `settings/7`.
    pub target: String,
    /// Anything else worth keeping (never a phone number).
    pub detail: serde_json::Value,
}

/// An appended audit entry; `seq` grows with every append.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub at: UnixMillis,
    pub actor: String,
    pub action: AuditAction,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Which audit entries to read: newest first, those with `seq < before`
/// when set, matching every filter that is set, at most `limit`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub target: Option<String>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub before: Option<u64>,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids() {
        let check = |input: &str, ok: bool| {
            assert_eq!(CallId::new(input).is_ok(), ok, "{input:?}");
        };
        check("a84b4c76e66710@pbx.example.com", true);
        check("call-1_2.3+4", true);
        check("", false);
        check(".hidden", false);
        check("../etc/passwd", false);
        check("a/b", false);
        check("a b", false);
        check(&"x".repeat(128), true);
        check(&"x".repeat(129), false);
        let err = CallId::new("a/b").unwrap_err().to_string();
        assert!(err.contains("'/'") && err.contains("use A-Z"), "{err}");
    }

    #[test]
    fn phone_numbers_stay_out_of_debug_and_errors() {
        let n = PhoneNumber::new("+34911234567").unwrap();
        assert_eq!(format!("{n:?}"), "PhoneNumber(***)");
        assert_eq!(n.as_str(), "+34911234567");
        let err = PhoneNumber::new("+34 911 234 567").unwrap_err().to_string();
        assert!(!err.contains("911"), "{err}");
        assert!(PhoneNumber::new("").is_err());
        assert!(PhoneNumber::new("alice").is_ok());
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<PhoneNumber>(&json).unwrap(), n);
        assert!(serde_json::from_str::<PhoneNumber>("\"a b\"").is_err());
    }

    #[test]
    fn text_enums_round_trip() {
        for s in RecordingStatus::ALL {
            assert_eq!(RecordingStatus::parse(s.as_str()).unwrap(), *s);
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for r in ParticipantRole::ALL {
            assert_eq!(r.as_str().parse::<ParticipantRole>().unwrap(), *r);
        }
        assert_eq!(ParticipantRole::EndUser.as_str(), "end_user");
        let err = Direction::parse("sideways").unwrap_err().to_string();
        assert!(err.contains("inbound, outbound, internal"), "{err}");
    }

    #[test]
    fn status_machine_shape() {
        use RecordingStatus::*;
        // Deleted is final; nothing becomes itself.
        for s in RecordingStatus::ALL {
            assert!(!Deleted.can_become(*s));
            assert!(!s.can_become(*s), "{s}");
        }
        // Delivered only after an upload; declined never gets audio.
        let into_delivered: Vec<_> = RecordingStatus::ALL
            .iter()
            .filter(|s| s.can_become(Delivered))
            .collect();
        assert_eq!(into_delivered, [&Uploading]);
        assert_eq!(
            RecordingStatus::ALL
                .iter()
                .filter(|s| Declined.can_become(**s))
                .collect::<Vec<_>>(),
            [&Deleted]
        );
        // Every status is reachable from an initial one.
        let mut reached: Vec<RecordingStatus> = RecordingStatus::INITIAL.to_vec();
        let mut i = 0;
        while i < reached.len() {
            for s in RecordingStatus::ALL {
                if reached[i].can_become(*s) && !reached.contains(s) {
                    reached.push(*s);
                }
            }
            i += 1;
        }
        assert_eq!(reached.len(), RecordingStatus::ALL.len());
        for s in RecordingStatus::DELETABLE {
            assert!(s.can_become(Deleted), "{s}");
        }
    }

    #[test]
    fn cursors_and_times() {
        let c = Cursor {
            created_at: 1_700_000_000_123,
            id: RecordingId::generate(),
        };
        assert_eq!(c.as_string().parse::<Cursor>().unwrap(), c);
        for bad in [
            "",
            "x",
            "12_notauuid",
            "_",
            "abc_0190f5d2-8a3c-7000-8000-000000000000",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad:?}");
        }
        let t = UnixMillis(1_700_000_000_123);
        assert_eq!(UnixMillis::from(t.to_offset_date_time().unwrap()), t);
        assert_eq!(t.plus_millis(7), UnixMillis(1_700_000_000_130));
    }
}

/// Everything written when a call arrives (see `Catalog::start_call`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStart {
    pub call: NewCall,
    /// In the order given; `participants` of the result keeps it.
    pub participants: Vec<NewParticipant>,
    pub decision: PolicyDecision,
    /// Its `call_id` must be `call.id`.
    pub recording: NewRecording,
}

/// What `Catalog::start_call` wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStarted {
    pub recording: Recording,
    /// With their ids, in the order of `CallStart::participants`.
    pub participants: Vec<Participant>,
}

/// One change of a batch applied by
/// [`Catalog::apply_changes`](crate::Catalog::apply_changes); each is the
/// single write of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogChange {
    /// [`Catalog::start_call`](crate::Catalog::start_call): all or nothing,
    /// as alone.
    StartCall(Box<CallStart>),
    /// [`Catalog::transition`](crate::Catalog::transition).
    Transition {
        id: RecordingId,
        from: Vec<RecordingStatus>,
        to: RecordingStatus,
        reason: String,
        at: UnixMillis,
    },
    /// [`Catalog::mark_spooled`](crate::Catalog::mark_spooled).
    MarkSpooled {
        id: RecordingId,
        audio: SpooledAudio,
        reason: String,
        at: UnixMillis,
    },
    /// [`Catalog::mark_delivered`](crate::Catalog::mark_delivered).
    MarkDelivered {
        id: RecordingId,
        location: StorageLocation,
        at: UnixMillis,
    },
    /// [`Catalog::end_call`](crate::Catalog::end_call).
    EndCall { call: CallId, at: UnixMillis },
    /// [`Catalog::add_pause`](crate::Catalog::add_pause).
    AddPause { id: RecordingId, span: PauseSpan },
    /// [`Catalog::add_decision`](crate::Catalog::add_decision).
    AddDecision {
        call: CallId,
        decision: PolicyDecision,
    },
    /// [`Catalog::add_participant`](crate::Catalog::add_participant).
    AddParticipant {
        call: CallId,
        participant: NewParticipant,
    },
    /// [`Catalog::participant_left`](crate::Catalog::participant_left).
    ParticipantLeft { participant_id: i64, at: UnixMillis },
}

/// What one [`CatalogChange`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// A change that returns nothing.
    Done,
    /// The recording after a status change.
    Recording(Box<Recording>),
    /// The participant added.
    Participant(Participant),
    /// What a call's start wrote.
    Started(Box<CallStarted>),
}
