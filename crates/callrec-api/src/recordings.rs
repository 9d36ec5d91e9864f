//! The recordings endpoints: browse the catalog, read one recording with
//! its delivery status, play or download its audio from storage (with range
//! requests), and delete it.
//!
//! - `GET /api/v1/recordings`: filters `from`, `until` (RFC 3339, on the
//!   recording's start), `direction`, `queue`, `status` (comma-separated),
//!   `number` (a participant's exact number), `call_id`; paging with
//!   `limit` (default 50, at most 1000) and `after` (the `next` of the
//!   previous page). Newest first.
//! - `GET /api/v1/recordings/{id}`: the recording, its call, participants,
//!   pauses, status history and delivery state.
//! - `GET /api/v1/recordings/{id}/audio`: the audio from storage, with
//!   `Range: bytes=...` (one range) answered 206. `?download=true` sends it
//!   as an attachment. Audited: a request that starts at byte 0 is one
//!   `listen` (or `download`) by the `X-Callrec-User`; the later range
//!   requests of the same playback are not audited again.
//! - `DELETE /api/v1/recordings/{id}`: deletes a delivered (or declined)
//!   recording: first the objects in storage (audio and metadata), then the
//!   catalog marks it deleted and audits it in one transaction. A recording
//!   still on its way to storage answers 409: delete it once delivered.
//!
//! Phone numbers appear in responses (participants) but never in logs or
//! error messages. This module never touches the spool.

use std::ops::Range;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use callrec_catalog::{
    AuditAction, Catalog, CatalogError, Cursor, Direction, NewAuditEntry, PageRequest, PhoneNumber,
    Recording, RecordingDetail, RecordingFilter, RecordingFormat, RecordingId, RecordingListItem,
    RecordingStatus, UnixMillis,
};
use callrec_storage::{ObjectKey, RecordingStore, StoreError, StoreErrorKind};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::Clock;

/// What the recordings endpoints need.
#[derive(Clone)]
pub struct RecordingsState {
    /// Where recordings are listed and their status kept.
    pub catalog: Arc<dyn Catalog>,
    /// Where delivered audio is (the configured storage).
    pub store: Arc<dyn RecordingStore>,
    /// The time of audit entries.
    pub clock: Clock,
}

/// The recordings routes, with their state: merge into the API router.
pub fn router(state: RecordingsState) -> Router {
    Router::new()
        .route("/api/v1/recordings", get(list))
        .route("/api/v1/recordings/{id}", get(detail).delete(delete))
        .route("/api/v1/recordings/{id}/audio", get(audio))
        .with_state(state)
}

/// Why a recordings request failed. The body is `{"error": "..."}` like
/// the rest of the API.
#[derive(Debug, thiserror::Error)]
pub enum RecordingsError {
    /// The request cannot be understood (400).
    #[error("{0}")]
    BadRequest(String),
    /// No such recording (404).
    #[error("{0}")]
    NotFound(String),
    /// The recording is not in a state that allows this (409).
    #[error("{0}")]
    Conflict(String),
    /// The recording was deleted (410).
    #[error("{0}")]
    Gone(String),
    /// The range starts past the end of the audio (416).
    #[error(
        "the range starts past the end of the audio ({size} bytes): ask for bytes below {size}"
    )]
    RangeNotSatisfiable { size: u64 },
    /// The catalog or the storage failed (503).
    #[error("{0}")]
    Unavailable(String),
}

impl RecordingsError {
    fn status(&self) -> StatusCode {
        match self {
            RecordingsError::BadRequest(_) => StatusCode::BAD_REQUEST,
            RecordingsError::NotFound(_) => StatusCode::NOT_FOUND,
            RecordingsError::Conflict(_) => StatusCode::CONFLICT,
            RecordingsError::Gone(_) => StatusCode::GONE,
            RecordingsError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            RecordingsError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<CatalogError> for RecordingsError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => RecordingsError::NotFound(e.to_string()),
            CatalogError::Invalid { .. } => RecordingsError::BadRequest(e.to_string()),
            CatalogError::StatusMismatch { .. }
            | CatalogError::ForbiddenTransition { .. }
            | CatalogError::AlreadyExists { .. }
            | CatalogError::SettingsConflict { .. } => RecordingsError::Conflict(e.to_string()),
            _ => RecordingsError::Unavailable(e.to_string()),
        }
    }
}

impl From<StoreError> for RecordingsError {
    fn from(e: StoreError) -> Self {
        match e.kind() {
            StoreErrorKind::NotFound => RecordingsError::NotFound(format!(
                "the catalog says this recording was delivered but storage does not have it ({e}): check the storage settings"
            )),
            _ => RecordingsError::Unavailable(e.to_string()),
        }
    }
}

impl IntoResponse for RecordingsError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!(error = %self, "recordings request failed");
        }
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if let RecordingsError::RangeNotSatisfiable { size } = self
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        response
    }
}

// ------------------------------------------------------------ JSON shapes

/// A time in the API: RFC 3339 in UTC, e.g. `2026-11-24T12:00:00.000Z`.
fn rfc3339(t: UnixMillis) -> String {
    t.to_offset_date_time()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.as_i64().to_string())
}

/// Where a recording is in its delivery.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeliveryJson {
    /// Delivery attempts that ended (failed or succeeded).
    pub attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When the next attempt is due (while not delivered).
    pub next_attempt_at: Option<String>,
    pub delivered_at: Option<String>,
    /// The storage backend's name and the object key of the audio.
    pub backend: Option<String>,
    pub key: Option<String>,
}

/// A recording as listed and as part of its detail.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordingJson {
    pub id: String,
    pub call_id: String,
    pub format: RecordingFormat,
    pub status: RecordingStatus,
    pub status_reason: String,
    pub status_changed_at: String,
    pub created_at: String,
    pub direction: Direction,
    pub queue: Option<String>,
    pub call_started_at: String,
    pub size_bytes: Option<u64>,
    pub sha256: Option<String>,
    pub duration_ms: Option<u64>,
    /// The audio was cut (a crash) and delivered as far as it went.
    pub partial: bool,
    pub delivery: DeliveryJson,
}

impl RecordingJson {
    fn new(
        r: &Recording,
        direction: Direction,
        queue: Option<String>,
        started: UnixMillis,
    ) -> Self {
        RecordingJson {
            id: r.id.to_string(),
            call_id: r.call_id.to_string(),
            format: r.format,
            status: r.status,
            status_reason: r.status_reason.clone(),
            status_changed_at: rfc3339(r.status_changed_at),
            created_at: rfc3339(r.created_at),
            direction,
            queue,
            call_started_at: rfc3339(started),
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
            duration_ms: r.duration_ms,
            partial: r.partial,
            delivery: DeliveryJson {
                attempts: r.attempts,
                last_error: r.last_error.clone(),
                next_attempt_at: r.next_attempt_at.map(rfc3339),
                delivered_at: r.delivered_at.map(rfc3339),
                backend: r.location.as_ref().map(|l| l.backend.clone()),
                key: r.location.as_ref().map(|l| l.key.clone()),
            },
        }
    }

    fn from_item(item: &RecordingListItem) -> Self {
        Self::new(
            &item.recording,
            item.direction,
            item.queue.clone(),
            item.call_started_at,
        )
    }
}

/// The answer of `GET /api/v1/recordings`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordingList {
    /// Newest first.
    pub recordings: Vec<RecordingJson>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// A policy decision of the call.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DecisionJson {
    pub at: String,
    pub decision: String,
    pub reason: String,
}

/// The call a recording belongs to.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CallJson {
    pub id: String,
    pub direction: Direction,
    pub kind: String,
    pub queue: Option<String>,
    pub language: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub settings_version: Option<u64>,
    pub decisions: Vec<DecisionJson>,
}

/// A participant; `channel` is 1 (left, end user) or 2 (right, agent side).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ParticipantJson {
    pub role: callrec_catalog::ParticipantRole,
    pub channel: i64,
    pub number: Option<String>,
    pub name: Option<String>,
    pub joined_at: String,
    pub left_at: Option<String>,
}

/// A paused span in ms from the recording's start.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PauseJson {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// One status change.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatusChangeJson {
    pub at: String,
    pub from: Option<RecordingStatus>,
    pub to: RecordingStatus,
    pub reason: String,
}

/// The answer of `GET /api/v1/recordings/{id}`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordingDetailJson {
    pub recording: RecordingJson,
    pub call: CallJson,
    pub participants: Vec<ParticipantJson>,
    pub pauses: Vec<PauseJson>,
    /// Oldest first.
    pub history: Vec<StatusChangeJson>,
}

impl From<&RecordingDetail> for RecordingDetailJson {
    fn from(d: &RecordingDetail) -> Self {
        let c = &d.call;
        RecordingDetailJson {
            recording: RecordingJson::new(&d.recording, c.direction, c.queue.clone(), c.started_at),
            call: CallJson {
                id: c.id.to_string(),
                direction: c.direction,
                kind: c.kind.clone(),
                queue: c.queue.clone(),
                language: c.language.clone(),
                started_at: rfc3339(c.started_at),
                ended_at: c.ended_at.map(rfc3339),
                settings_version: c.settings_version,
                decisions: c
                    .decisions
                    .iter()
                    .map(|x| DecisionJson {
                        at: rfc3339(x.at),
                        decision: x.decision.clone(),
                        reason: x.reason.clone(),
                    })
                    .collect(),
            },
            participants: d
                .participants
                .iter()
                .map(|p| ParticipantJson {
                    role: p.role,
                    channel: p.channel.number(),
                    number: p.number.as_ref().map(|n| n.as_str().to_owned()),
                    name: p.name.clone(),
                    joined_at: rfc3339(p.joined_at),
                    left_at: p.left_at.map(rfc3339),
                })
                .collect(),
            pauses: d
                .pauses
                .iter()
                .map(|p| PauseJson {
                    start_ms: p.start_ms,
                    end_ms: p.end_ms,
                })
                .collect(),
            history: d
                .history
                .iter()
                .map(|h| StatusChangeJson {
                    at: rfc3339(h.at),
                    from: h.from,
                    to: h.to,
                    reason: h.reason.clone(),
                })
                .collect(),
        }
    }
}

// ------------------------------------------------------------- handlers

/// The query of `GET /api/v1/recordings`; every field is text so that a bad
/// value gets our message rather than the extractor's.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    from: Option<String>,
    until: Option<String>,
    direction: Option<String>,
    queue: Option<String>,
    status: Option<String>,
    number: Option<String>,
    call_id: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

fn bad(message: String) -> RecordingsError {
    RecordingsError::BadRequest(message)
}

fn parse_time(name: &str, text: &str) -> Result<UnixMillis, RecordingsError> {
    time::OffsetDateTime::parse(text, &Rfc3339)
        .map(UnixMillis::from)
        .map_err(|_| {
            bad(format!(
                "`{name}` is not an RFC 3339 time: write it like 2026-11-24T09:00:00Z"
            ))
        })
}

impl ListQuery {
    fn parse(self) -> Result<(RecordingFilter, PageRequest), RecordingsError> {
        let mut filter = RecordingFilter::default();
        if let Some(t) = self.from.as_deref() {
            filter.from = Some(parse_time("from", t)?);
        }
        if let Some(t) = self.until.as_deref() {
            filter.until = Some(parse_time("until", t)?);
        }
        if let Some(d) = self.direction.as_deref() {
            filter.direction = Some(Direction::parse(d).map_err(|e| bad(e.to_string()))?);
        }
        filter.queue = self.queue.filter(|q| !q.is_empty());
        if let Some(list) = self.status.as_deref() {
            for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                filter
                    .statuses
                    .push(RecordingStatus::parse(s).map_err(|e| bad(e.to_string()))?);
            }
        }
        if let Some(n) = self.number {
            // The error never repeats the number.
            filter.participant_number = Some(PhoneNumber::new(n).map_err(|e| bad(e.to_string()))?);
        }
        if let Some(id) = self.call_id {
            filter.call_id = Some(id.parse().map_err(|e: CatalogError| bad(e.to_string()))?);
        }
        let limit = match self.limit.as_deref() {
            None => 50,
            Some(l) => match l.parse::<u32>() {
                Ok(n) if (1..=PageRequest::MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(bad(format!(
                        "`limit` must be a number from 1 to {}",
                        PageRequest::MAX_LIMIT
                    )));
                }
            },
        };
        let after = match self.after.as_deref() {
            None | Some("") => None,
            Some(c) => Some(c.parse::<Cursor>().map_err(|e| bad(e.to_string()))?),
        };
        Ok((filter, PageRequest { limit, after }))
    }
}

async fn list(
    State(state): State<RecordingsState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<RecordingList>, RecordingsError> {
    let (filter, page) = query.parse()?;
    let found = state.catalog.list_recordings(&filter, &page).await?;
    Ok(Json(RecordingList {
        recordings: found.items.iter().map(RecordingJson::from_item).collect(),
        next: found.next.map(|c| c.as_string()),
    }))
}

fn parse_id(text: &str) -> Result<RecordingId, RecordingsError> {
    text.parse().map_err(|_| {
        bad(format!(
            "`{text}` is not a recording id: use the id from the recordings list"
        ))
    })
}

async fn detail(
    State(state): State<RecordingsState>,
    Path(id): Path<String>,
) -> Result<Json<RecordingDetailJson>, RecordingsError> {
    let id = parse_id(&id)?;
    let detail = state.catalog.recording_detail(id).await?;
    Ok(Json(RecordingDetailJson::from(&detail)))
}

/// Who asks, from the `X-Callrec-User` header (required where audited).
fn user(headers: &HeaderMap) -> Result<String, RecordingsError> {
    crate::settings::actor(headers)
        .map(|a| a.as_str().to_owned())
        .map_err(|_| {
            bad("say who you are in the x-callrec-user header (a user name): listening, downloading and deleting are audited".to_owned())
        })
}

/// The metadata object beside the audio: `<call-id>.json` for
/// `<call-id>.<ext>` (SPEC section 2).
fn metadata_key(audio_key: &str) -> Option<String> {
    let (stem, _ext) = audio_key.rsplit_once('.')?;
    Some(format!("{stem}.json"))
}

async fn delete(
    State(state): State<RecordingsState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<RecordingJson>, RecordingsError> {
    let who = user(&headers)?;
    let id = parse_id(&id)?;
    let recording = state.catalog.get_recording(id).await?;
    match recording.status {
        RecordingStatus::Delivered | RecordingStatus::Declined => {}
        RecordingStatus::Deleted => {
            return Err(RecordingsError::Gone(format!(
                "recording {id} was deleted already"
            )));
        }
        other => {
            return Err(RecordingsError::Conflict(format!(
                "recording {id} is {other}, still on its way to storage: delete it once it is delivered"
            )));
        }
    }
    // Storage first: if it fails, the catalog still points at the objects
    // and the delete can be retried (deleting an absent object succeeds).
    if let Some(location) = &recording.location {
        let audio = ObjectKey::new(location.key.as_str())?;
        state.store.delete(&audio).await?;
        if let Some(meta) = metadata_key(&location.key) {
            state.store.delete(&ObjectKey::new(meta)?).await?;
        }
    }
    let deleted = state
        .catalog
        .mark_deleted(
            id,
            &format!("deleted by {who}"),
            &NewAuditEntry {
                at: UnixMillis::from((state.clock)()),
                actor: who.clone(),
                action: AuditAction::Delete,
                target: format!("recording/{id}"),
                detail: json!({
                    "call_id": recording.call_id.as_str(),
                    "key": recording.location.as_ref().map(|l| l.key.as_str()),
                }),
            },
        )
        .await?;
    tracing::info!(recording = %id, actor = %who, "recording deleted");
    let call = state.catalog.get_call(&deleted.call_id).await?;
    Ok(Json(RecordingJson::new(
        &deleted,
        call.direction,
        call.queue,
        call.started_at,
    )))
}

/// The query of the audio endpoint.
#[derive(Debug, Default, Deserialize)]
pub struct AudioQuery {
    /// `true` to download as a file (audited as `download`).
    #[serde(default)]
    download: Option<String>,
}

/// Parses a `Range` header against an object of `size` bytes.
/// `Ok(None)`: serve everything (no header, or one we do not serve, such
/// as several ranges, which HTTP lets a server ignore).
fn parse_range(value: Option<&str>, size: u64) -> Result<Option<Range<u64>>, RecordingsError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| s.trim().parse::<u64>().ok();
    let range = match (start.trim().is_empty(), end.trim().is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => {
            let Some(n) = num(end) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(RecordingsError::RangeNotSatisfiable { size });
            }
            size.saturating_sub(n)..size
        }
        // bytes=A-: from A to the end.
        (false, true) => {
            let Some(a) = num(start) else { return Ok(None) };
            a..size
        }
        // bytes=A-B: inclusive.
        (false, false) => {
            let (Some(a), Some(b)) = (num(start), num(end)) else {
                return Ok(None);
            };
            if b < a {
                return Ok(None);
            }
            a..size.min(b.saturating_add(1))
        }
        (true, true) => return Ok(None),
    };
    if range.start >= size {
        return Err(RecordingsError::RangeNotSatisfiable { size });
    }
    Ok(Some(range))
}

async fn audio(
    State(state): State<RecordingsState>,
    Path(id): Path<String>,
    Query(query): Query<AudioQuery>,
    headers: HeaderMap,
) -> Result<Response, RecordingsError> {
    let who = user(&headers)?;
    let id = parse_id(&id)?;
    let download = matches!(query.download.as_deref(), Some("true" | "1" | "yes"));
    let recording = state.catalog.get_recording(id).await?;
    let location = match (recording.status, &recording.location) {
        (RecordingStatus::Delivered, Some(location)) => location,
        (RecordingStatus::Deleted, _) => {
            return Err(RecordingsError::Gone(format!("recording {id} was deleted")));
        }
        (RecordingStatus::Declined, _) => {
            return Err(RecordingsError::NotFound(format!(
                "recording {id} was declined by the policy: there is no audio"
            )));
        }
        (status, _) => {
            return Err(RecordingsError::Conflict(format!(
                "recording {id} is {status}, not yet in storage: try again once it is delivered"
            )));
        }
    };
    let key = ObjectKey::new(location.key.as_str())?;
    let size = state.store.size(&key).await?;
    let range_header = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = parse_range(range_header, size)?;

    // One playback is one listen: audit the request that starts at byte 0.
    if range.as_ref().is_none_or(|r| r.start == 0) {
        state
            .catalog
            .append_audit(&NewAuditEntry {
                at: UnixMillis::from((state.clock)()),
                actor: who,
                action: if download {
                    AuditAction::Download
                } else {
                    AuditAction::Listen
                },
                target: format!("recording/{id}"),
                detail: json!({ "call_id": recording.call_id.as_str() }),
            })
            .await?;
    }

    let (status, served) = match &range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.clone()),
        None => (StatusCode::OK, 0..size),
    };
    let stream = state.store.read_stream(&key, range.clone()).await?;
    let content_type = match recording.format {
        RecordingFormat::Wav => "audio/wav",
        RecordingFormat::Mp3 => "audio/mpeg",
    };
    let file_name = format!("{}.{}", recording.call_id, recording.format.extension());
    let disposition = if download {
        format!("attachment; filename=\"{file_name}\"")
    } else {
        format!("inline; filename=\"{file_name}\"")
    };
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, served.end - served.start)
        .header(header::CONTENT_DISPOSITION, disposition);
    if let Some(sha) = &recording.sha256 {
        response = response.header(header::ETAG, format!("\"{sha}\""));
    }
    if let Some(r) = &range {
        response = response.header(
            header::CONTENT_RANGE,
            format!("bytes {}-{}/{size}", r.start, r.end - 1),
        );
    }
    response
        .body(Body::from_stream(stream))
        .map_err(|e| RecordingsError::Unavailable(format!("cannot build the audio response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let check = |header: Option<&str>, expected: Result<Option<Range<u64>>, ()>| {
            let got = parse_range(header, 100).map_err(|_| ());
            assert_eq!(got, expected, "{header:?}");
        };
        check(None, Ok(None));
        check(Some("bytes=0-9"), Ok(Some(0..10)));
        check(Some("bytes=90-"), Ok(Some(90..100)));
        check(Some("bytes=-10"), Ok(Some(90..100)));
        check(Some("bytes=-1000"), Ok(Some(0..100)));
        check(Some("bytes=50-5000"), Ok(Some(50..100)));
        check(Some("bytes=100-"), Err(()));
        check(Some("bytes=200-300"), Err(()));
        check(Some("bytes=-0"), Err(()));
        check(Some("bytes=0-1,5-6"), Ok(None));
        check(Some("items=0-1"), Ok(None));
        check(Some("bytes=9-3"), Ok(None));
        check(Some("bytes=x-3"), Ok(None));
    }

    #[test]
    fn metadata_key_is_beside_the_audio() {
        assert_eq!(
            metadata_key("recordings/2026/01/03/c-42.mp3").as_deref(),
            Some("recordings/2026/01/03/c-42.json")
        );
        assert_eq!(
            metadata_key("recordings/2026/01/03/a.b@pbx.wav").as_deref(),
            Some("recordings/2026/01/03/a.b@pbx.json")
        );
    }
}
