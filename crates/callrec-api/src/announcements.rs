//! Announcement audio: upload per language and message, converted to 8 kHz
//! mono, and read back by reference.
//!
//! `PUT /api/v1/settings/languages/{language}/messages/{message}/audio?version=N`
//! takes the audio as the raw body (any `Content-Type` but multipart) or as
//! the first file of a `multipart/form-data` body. It converts it, stores
//! it, and saves a new settings version where that message is the uploaded
//! audio: one explicit, audited change (who, when, which field), refused
//! with 409 when version N is no longer current. Not audio: 400.
//!
//! `GET /api/v1/announcements/{reference}` returns the converted WAV.
//!
//! The audio lives behind [`AnnouncementStore`]; the catalog will implement
//! it on its database. References are opaque; a stored reference never
//! changes what it points to.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use callrec_policy::{Language, Message, MessageKind, VersionedSettings};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ApiState;
use crate::audio::{ANNOUNCEMENT_RATE, convert_announcement};
use crate::error::{ApiError, parse_version};
use crate::settings::actor;

/// The largest upload accepted, in bytes (a few minutes of CD-quality WAV).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// The announcement routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/v1/settings/languages/{language}/messages/{message}/audio",
            put(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES)),
        )
        .route("/api/v1/announcements/{reference}", get(download))
}

/// The announcement store failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the announcement store failed: {0}; check the catalog database and retry")]
pub struct AnnouncementStoreError(pub String);

/// Where converted announcement audio is kept.
///
/// Semantics every implementation keeps: [`put`](Self::put) stores the
/// bytes and returns a new reference, made of letters, digits, `-`, `_` and
/// `.` (it goes into URLs and settings documents); a reference is never
/// reused for other bytes, so settings versions that name it keep meaning
/// the same audio; [`get`](Self::get) returns exactly the bytes stored, or
/// `None` for an unknown reference. Audio named by old settings versions is
/// not deleted.
#[async_trait]
pub trait AnnouncementStore: Send + Sync {
    /// Stores an 8 kHz mono WAV for a language's message; returns its reference.
    async fn put(
        &self,
        language: &Language,
        message: MessageKind,
        wav: Vec<u8>,
    ) -> Result<String, AnnouncementStoreError>;

    /// The WAV stored under `reference`.
    async fn get(&self, reference: &str) -> Result<Option<Vec<u8>>, AnnouncementStoreError>;
}

/// An [`AnnouncementStore`] in memory.
#[derive(Debug, Default)]
pub struct InMemoryAnnouncementStore {
    audio: Mutex<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl AnnouncementStore for InMemoryAnnouncementStore {
    async fn put(
        &self,
        language: &Language,
        message: MessageKind,
        wav: Vec<u8>,
    ) -> Result<String, AnnouncementStoreError> {
        let mut audio = self
            .audio
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let reference = format!("{language}.{message}.{}", audio.len() + 1);
        audio.insert(reference.clone(), wav);
        Ok(reference)
    }

    async fn get(&self, reference: &str) -> Result<Option<Vec<u8>>, AnnouncementStoreError> {
        let audio = self
            .audio
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(audio.get(reference).cloned())
    }
}

/// `?version=N`: the settings version the upload changes.
#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    version: Option<String>,
}

/// What an upload made.
#[derive(Debug, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The new settings version, whose message is the uploaded audio.
    pub settings: VersionedSettings,
    /// The converted audio.
    pub audio: AudioInfo,
}

/// The converted audio of an upload.
#[derive(Debug, Serialize, Deserialize)]
pub struct AudioInfo {
    /// The reference now in the settings (`{"audio": reference}`).
    pub reference: String,
    /// The duration, in milliseconds.
    pub duration_ms: u64,
    /// Always 8,000.
    pub sample_rate: u32,
    /// Always 1.
    pub channels: u16,
    /// The uploaded file's rate, in Hz.
    pub source_sample_rate: u32,
    /// The uploaded file's channels.
    pub source_channels: u16,
}

async fn upload(
    State(state): State<ApiState>,
    Path((language, message)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<UploadResponse>, ApiError> {
    let who = actor(&headers)?;
    let language = Language::parse(&language).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let kind = MessageKind::parse(&message).ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no message `{message}`: use recording_announcement, outbound_recording_message or permission_prompt"
        ))
    })?;
    let base = match query.version.as_deref() {
        Some(v) => parse_version(v)?,
        None => {
            return Err(ApiError::BadRequest(
                "add ?version=N, the settings version this upload changes (see get /api/v1/settings)"
                    .to_owned(),
            ));
        }
    };
    // Refuse a stale change before the work of converting.
    let current = state.settings.current().await?;
    if current.version != base {
        return Err(ApiError::Conflict(callrec_policy::StoreError::Conflict {
            base,
            current: current.version,
        }));
    }

    let bytes = body_audio(&state, request).await?;
    let converted = tokio::task::spawn_blocking(move || convert_announcement(bytes))
        .await
        .map_err(|e| ApiError::Unavailable(format!("the audio conversion failed: {e}; retry")))??;
    let reference = state
        .announcements
        .put(&language, kind, converted.wav.clone())
        .await?;

    let mut settings = current.settings.into_inner();
    settings
        .languages
        .messages
        .entry(language.clone())
        .or_default()
        .set(kind, Message::Audio(reference.clone()));
    let saved = state
        .settings
        .save(base, settings.validate()?, who, (state.clock)())
        .await?;
    tracing::info!(version = %saved.version, %language, message = %kind, duration_ms = converted.duration_ms(), "announcement uploaded");
    Ok(Json(UploadResponse {
        settings: saved,
        audio: AudioInfo {
            reference,
            duration_ms: converted.duration_ms(),
            sample_rate: ANNOUNCEMENT_RATE,
            channels: 1,
            source_sample_rate: converted.source_rate,
            source_channels: converted.source_channels,
        },
    }))
}

/// The audio bytes of an upload: the first file part of a multipart body,
/// or the whole body.
async fn body_audio(state: &ApiState, request: Request) -> Result<Vec<u8>, ApiError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    let too_big = |e: &dyn std::fmt::Display| {
        ApiError::BadRequest(format!(
            "the upload could not be read ({e}): send one audio file of at most {} MiB",
            MAX_UPLOAD_BYTES / (1024 * 1024)
        ))
    };
    if multipart {
        let mut form = Multipart::from_request(request, state)
            .await
            .map_err(|e| too_big(&e))?;
        while let Some(field) = form.next_field().await.map_err(|e| too_big(&e))? {
            if field.file_name().is_some() || field.name() == Some("file") {
                return Ok(field.bytes().await.map_err(|e| too_big(&e))?.to_vec());
            }
        }
        Err(ApiError::BadRequest(
            "the multipart body has no file: send the audio as a part named `file`".to_owned(),
        ))
    } else {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|e| too_big(&e))?;
        Ok(bytes.to_vec())
    }
}

async fn download(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let wav = state.announcements.get(&reference).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "there is no announcement `{reference}`: take the reference from the settings' audio messages"
        ))
    })?;
    Ok(([(header::CONTENT_TYPE, "audio/wav")], wav))
}
