//! The catalog trait: what every backend (SQLite, PostgreSQL) promises.
//!
//! The semantics written here are tested by the conformance suite
//! (`tests/conformance.rs`) on every backend. This module does no I/O.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::CatalogError;
use crate::types::*;

/// The catalog of calls, recordings and their delivery, settings versions
/// and the audit trail.
///
/// Rules that hold for every method:
/// - Every method is atomic: it changes all it says or nothing.
/// - Several processes (nodes) may share one catalog: the checks of
///   `transition`, `mark_*` and `save_settings` are done by the database,
///   so of two racing callers exactly one wins and the other gets
///   [`CatalogError::StatusMismatch`] or [`CatalogError::SettingsConflict`].
/// - A missing call or recording is [`CatalogError::NotFound`].
/// - Nothing is ever physically deleted: a deleted recording keeps its row
///   in status `deleted`; the audit trail is append-only.
/// - Every status change is checked against [`RecordingStatus::can_become`]
///   ([`CatalogError::ForbiddenTransition`]) and appended to the
///   recording's history with its reason.
#[async_trait]
pub trait Catalog: Send + Sync + 'static {
    // ----- calls -----

    /// Writes a new call. [`CatalogError::AlreadyExists`] if the id is taken.
    async fn create_call(&self, call: &NewCall) -> Result<(), CatalogError>;

    /// Writes a new call with its first participants, the policy's
    /// decision and its recording, all or nothing (one transaction where the
    /// backend has them): what a recorder does when a call arrives. The
    /// errors are those of the four single writes. The default runs them in
    /// sequence, without atomicity; [`SqlCatalog`](crate::SqlCatalog)
    /// overrides it.
    async fn start_call(&self, start: &CallStart) -> Result<CallStarted, CatalogError> {
        self.create_call(&start.call).await?;
        let mut participants = Vec::with_capacity(start.participants.len());
        for p in &start.participants {
            participants.push(self.add_participant(&start.call.id, p).await?);
        }
        self.add_decision(&start.call.id, &start.decision).await?;
        let recording = self.create_recording(&start.recording).await?;
        Ok(CallStarted {
            recording,
            participants,
        })
    }

    /// The call with its decisions.
    async fn get_call(&self, id: &CallId) -> Result<Call, CatalogError>;

    /// Sets the call's end time (again, if called twice: the last wins).
    async fn end_call(&self, id: &CallId, at: UnixMillis) -> Result<(), CatalogError>;

    /// Appends a policy decision to the call.
    async fn add_decision(
        &self,
        id: &CallId,
        decision: &PolicyDecision,
    ) -> Result<(), CatalogError>;

    /// Adds a participant to the call; returns it with its new id.
    async fn add_participant(
        &self,
        call: &CallId,
        participant: &NewParticipant,
    ) -> Result<Participant, CatalogError>;

    /// Sets when a participant left (the last call wins).
    async fn participant_left(
        &self,
        participant_id: i64,
        at: UnixMillis,
    ) -> Result<(), CatalogError>;

    /// The call's participants, ordered by join time then id.
    async fn participants(&self, call: &CallId) -> Result<Vec<Participant>, CatalogError>;

    // ----- recordings -----

    /// Creates a recording of an existing call in one of
    /// [`RecordingStatus::INITIAL`] (else [`CatalogError::Invalid`]), with a
    /// new id, zero attempts, and a first history entry (`from: None`).
    async fn create_recording(&self, new: &NewRecording) -> Result<Recording, CatalogError>;

    /// One recording.
    async fn get_recording(&self, id: RecordingId) -> Result<Recording, CatalogError>;

    /// All recordings of a call, oldest first.
    async fn recordings_of_call(&self, call: &CallId) -> Result<Vec<Recording>, CatalogError>;

    /// A recording with its call, participants, pauses and status history.
    async fn recording_detail(&self, id: RecordingId) -> Result<RecordingDetail, CatalogError>;

    /// Changes the status to `to` if, and only if, the current status is in
    /// `from` ([`CatalogError::StatusMismatch`] otherwise, with the current
    /// status) and the state machine allows it. Sets the status reason and
    /// time, appends to the history, and returns the updated recording.
    /// Changes no other field: use `mark_spooled`, `mark_delivered`,
    /// `record_attempt_failure` or `mark_deleted` for those steps.
    ///
    /// The upload worker claims a recording with
    /// `transition(id, &[Spooled, Failed], Uploading, ..)`: of several
    /// workers exactly one succeeds. After a crash, `Uploading` recordings
    /// are put back with `transition(id, &[Uploading], Spooled, ..)`.
    async fn transition(
        &self,
        id: RecordingId,
        from: &[RecordingStatus],
        to: RecordingStatus,
        reason: &str,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError>;

    /// The file is complete on the spool: from `finalizing` or `failed` to
    /// `spooled`, storing path, size, sha256, duration and the partial flag,
    /// and making it due at once (`next_attempt_at = at`).
    async fn mark_spooled(
        &self,
        id: RecordingId,
        audio: &SpooledAudio,
        reason: &str,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError>;

    /// Delivery verified: from `uploading` to `delivered`; stores the
    /// location and `delivered_at = at`, counts the attempt, clears
    /// `spool_path` and `next_attempt_at`. `last_error` is kept.
    async fn mark_delivered(
        &self,
        id: RecordingId,
        location: &StorageLocation,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError>;

    /// A delivery attempt failed: from `spooled`, `uploading` or `failed` to
    /// `failed` (`failed -> failed` is allowed here, and only here), with
    /// `attempts + 1`, `last_error = error`, `next_attempt_at`, and the error
    /// as the status reason. `error` must not contain credentials.
    async fn record_attempt_failure(
        &self,
        id: RecordingId,
        error: &str,
        next_attempt_at: UnixMillis,
        at: UnixMillis,
    ) -> Result<Recording, CatalogError>;

    /// Marks a recording deleted (from one of [`RecordingStatus::DELETABLE`])
    /// and appends `audit` in the same transaction, so the audit trail
    /// keeps that it existed. Clears `spool_path`; keeps `location` as a
    /// record of where it was. Deleting the stored object is the caller's.
    async fn mark_deleted(
        &self,
        id: RecordingId,
        reason: &str,
        audit: &NewAuditEntry,
    ) -> Result<Recording, CatalogError>;

    /// Adds a pause span to a recording. [`CatalogError::Invalid`] if
    /// `start_ms > end_ms`.
    async fn add_pause(&self, id: RecordingId, span: PauseSpan) -> Result<(), CatalogError>;

    /// Applies several changes with one commit (group commit: what a
    /// recorder ending hundreds of calls at once needs from SQLite, where
    /// every commit is an fsync, and from PostgreSQL, where it is a round
    /// trip). Each change succeeds or fails on its own, as its single write
    /// would (a savepoint each), and the results come back in order.
    /// `Err` only when the batch as a whole could not be written (no
    /// connection, the commit failed): then none of it was.
    ///
    /// The default applies them one by one, each with its own commit;
    /// [`SqlCatalog`](crate::SqlCatalog) overrides it.
    async fn apply_changes(
        &self,
        changes: &[CatalogChange],
    ) -> Result<Vec<Result<ChangeOutcome, CatalogError>>, CatalogError> {
        let mut out = Vec::with_capacity(changes.len());
        for change in changes {
            use CatalogChange::*;
            out.push(match change {
                StartCall(start) => self
                    .start_call(start)
                    .await
                    .map(|c| ChangeOutcome::Started(Box::new(c))),
                Transition {
                    id,
                    from,
                    to,
                    reason,
                    at,
                } => self
                    .transition(*id, from, *to, reason, *at)
                    .await
                    .map(|r| ChangeOutcome::Recording(Box::new(r))),
                MarkSpooled {
                    id,
                    audio,
                    reason,
                    at,
                } => self
                    .mark_spooled(*id, audio, reason, *at)
                    .await
                    .map(|r| ChangeOutcome::Recording(Box::new(r))),
                MarkDelivered { id, location, at } => self
                    .mark_delivered(*id, location, *at)
                    .await
                    .map(|r| ChangeOutcome::Recording(Box::new(r))),
                EndCall { call, at } => self.end_call(call, *at).await.map(|_| ChangeOutcome::Done),
                AddPause { id, span } => self
                    .add_pause(*id, *span)
                    .await
                    .map(|_| ChangeOutcome::Done),
                AddDecision { call, decision } => self
                    .add_decision(call, decision)
                    .await
                    .map(|_| ChangeOutcome::Done),
                AddParticipant { call, participant } => self
                    .add_participant(call, participant)
                    .await
                    .map(ChangeOutcome::Participant),
                ParticipantLeft { participant_id, at } => self
                    .participant_left(*participant_id, *at)
                    .await
                    .map(|_| ChangeOutcome::Done),
            });
        }
        Ok(out)
    }

    /// Recordings for the upload worker; see [`StatusQuery`].
    async fn find_by_status(&self, query: &StatusQuery) -> Result<Vec<Recording>, CatalogError>;

    /// Recordings matching `filter`, newest first (`created_at`, then id,
    /// both descending), one page at a time. A cursor stays valid while
    /// rows are added.
    async fn list_recordings(
        &self,
        filter: &RecordingFilter,
        page: &PageRequest,
    ) -> Result<Page<RecordingListItem>, CatalogError>;

    /// How many recordings are in each status; every status is present
    /// (0 when none).
    async fn count_by_status(&self) -> Result<BTreeMap<RecordingStatus, u64>, CatalogError>;

    /// Retention: recordings in `delivered` with `delivered_at < cutoff`,
    /// oldest delivery first, at most `limit`.
    async fn delivered_before(
        &self,
        cutoff: UnixMillis,
        limit: u32,
    ) -> Result<Vec<Recording>, CatalogError>;

    // ----- settings -----

    /// The newest settings version, `None` before the first save.
    async fn current_settings(&self) -> Result<Option<SettingsVersion>, CatalogError>;

    /// One settings version.
    async fn settings_version(&self, version: u64) -> Result<SettingsVersion, CatalogError>;

    /// Settings versions newest first, at most `limit`.
    async fn settings_history(&self, limit: u32) -> Result<Vec<SettingsVersion>, CatalogError>;

    /// Saves `new` as version `base + 1` if `base` is the current version
    /// (0 when none was saved yet); else [`CatalogError::SettingsConflict`]
    /// carrying the current version. Of concurrent saves on the same base
    /// exactly one wins. Appends an audit entry (`settings_change`, actor =
    /// author, target `settings/<version>`, detail `{"summary": ..}`) in
    /// the same transaction.
    async fn save_settings(
        &self,
        base: u64,
        new: &NewSettings,
    ) -> Result<SettingsVersion, CatalogError>;

    // ----- storage settings -----

    /// The storage settings saved last, `None` before the first save.
    ///
    /// Added for the storage settings API. Unlike the versioned settings,
    /// this document holds credentials, so it is kept apart from them (the
    /// settings history is shown to admins) and only the newest is kept.
    async fn storage_settings(&self) -> Result<Option<StorageSettings>, CatalogError>;

    /// Replaces the storage settings (the last save wins: the caller tests
    /// the connection before saving) and appends an audit entry
    /// (`storage_settings_change`, actor = author, target `storage`,
    /// detail `{"summary": ..}`) in the same transaction. `summary` says
    /// what changed and must not contain credentials.
    async fn save_storage_settings(
        &self,
        new: &StorageSettings,
        summary: &str,
    ) -> Result<(), CatalogError>;

    // ----- audit -----

    /// Appends an entry to the audit trail. There is no way to change or
    /// remove one (the database refuses UPDATE and DELETE on it too).
    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, CatalogError>;

    /// Reads the audit trail; see [`AuditQuery`].
    async fn audit_log(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, CatalogError>;
}
