//! The settings endpoints: read the current settings, save a new version,
//! read the history and old versions.
//!
//! `PUT /api/v1/settings` takes the whole document with the version it
//! replaces, `{"version": 3, "settings": {...}}`; it answers 200 with the
//! new version, 409 with `current_version` when version 3 is no longer
//! current, 422 with every field problem when the document is refused. A
//! save is the only way settings change (the seed's "Save call details"),
//! and each save is one audited version.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use callrec_policy::{Actor, HistoryEntry, Settings, SettingsVersion, VersionedSettings};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, parse_json, parse_version};
use crate::{ApiState, USER_HEADER};

/// The settings routes.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/settings", get(current).put(save))
        .route("/api/v1/settings/history", get(history))
        .route("/api/v1/settings/versions/{version}", get(version))
}

/// The body of `PUT /api/v1/settings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaveSettings {
    /// The version this document replaces (the one the admin loaded).
    pub version: SettingsVersion,
    /// The whole document.
    pub settings: Settings,
}

/// The answer of `GET /api/v1/settings/history`.
#[derive(Debug, Serialize, Deserialize)]
pub struct History {
    /// Newest first.
    pub versions: Vec<HistoryEntry>,
}

/// The query of the history: `?limit=N` (default 100, at most 1000).
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    limit: Option<usize>,
}

/// Who makes the change, from the `X-Callrec-User` header.
pub(crate) fn actor(headers: &HeaderMap) -> Result<Actor, ApiError> {
    let value = headers
        .get(USER_HEADER)
        .ok_or_else(ApiError::missing_user)?;
    let text = value.to_str().map_err(|_| ApiError::missing_user())?;
    Actor::parse(text).map_err(|_| ApiError::missing_user())
}

async fn current(State(state): State<ApiState>) -> Result<Json<VersionedSettings>, ApiError> {
    Ok(Json(state.settings.current().await?))
}

async fn save(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<VersionedSettings>, ApiError> {
    let who = actor(&headers)?;
    let request: SaveSettings = parse_json(&body, "settings.")?;
    let valid = request.settings.validate()?;
    let saved = state
        .settings
        .save(request.version, valid, who, (state.clock)())
        .await?;
    tracing::info!(version = %saved.version, changed_by = %saved.changed_by, changes = ?saved.changes, "settings saved");
    Ok(Json(saved))
}

async fn history(
    State(state): State<ApiState>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    let limit = query.limit.unwrap_or(100).min(1000);
    Ok(Json(History {
        versions: state.settings.history(limit).await?,
    }))
}

async fn version(
    State(state): State<ApiState>,
    Path(version): Path<String>,
) -> Result<Json<VersionedSettings>, ApiError> {
    let version = parse_version(&version)?;
    state
        .settings
        .version(version)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "there is no settings version {version}: list them with get /api/v1/settings/history"
            ))
        })
}
