//! The one mapping from API errors to HTTP statuses and JSON bodies.
//!
//! Every error body is `{"error": "<what happened and what to do>"}`, plus
//! `problems` (a list of `{field, message}`) for validation errors and
//! `current_version` for conflicts. Messages are lowercase and say what to
//! do; they never include phone numbers or secrets.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use callrec_policy::{FieldProblem, SettingsVersion, StoreError, ValidationErrors};
use serde_json::json;
use thiserror::Error;

use crate::announcements::AnnouncementStoreError;
use crate::audio::NotAudio;

/// Why a request failed.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The body or the settings have wrong fields (422).
    #[error("the request has invalid fields: fix each field listed in problems and send it again")]
    Invalid(Vec<FieldProblem>),
    /// The change was based on a stale settings version (409).
    #[error("{0}")]
    Conflict(StoreError),
    /// The request cannot be understood (400).
    #[error("{0}")]
    BadRequest(String),
    /// The upload is not audio callrec can read (400).
    #[error(transparent)]
    NotAudio(#[from] NotAudio),
    /// Nothing at that address (404).
    #[error("{0}")]
    NotFound(String),
    /// A store failed (503).
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The `X-Callrec-User` header is missing or unusable.
    pub fn missing_user() -> Self {
        ApiError::BadRequest(
            "say who makes this change in the x-callrec-user header (a user name)".to_owned(),
        )
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) | ApiError::NotAudio(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => ApiError::Conflict(e),
            StoreError::Backend(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::Invalid(e.0)
    }
}

impl From<AnnouncementStoreError> for ApiError {
    fn from(e: AnnouncementStoreError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.to_string() });
        match &self {
            ApiError::Invalid(problems) => body["problems"] = json!(problems),
            ApiError::Conflict(StoreError::Conflict { current, .. }) => {
                body["current_version"] = json!(current);
            }
            _ => {}
        }
        if status.is_server_error() {
            tracing::warn!(error = %self, "api request failed");
        }
        (status, Json(body)).into_response()
    }
}

/// Reads a JSON body into `T`; a field that does not fit comes back as a
/// 422 problem with its path (with `strip` removed from its start), and a
/// body that is not JSON at all as a 400.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], strip: &str) -> Result<T, ApiError> {
    let not_json = |e: serde_json::Error| {
        ApiError::BadRequest(format!(
            "the body is not valid JSON ({e}): send a JSON object"
        ))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return not_json(inner);
        }
        let field = match path.as_str() {
            "." => String::new(),
            p => p.strip_prefix(strip).unwrap_or(p).to_owned(),
        };
        // serde's messages end with a position that means nothing to an
        // admin reading a list of fields.
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_owned();
        ApiError::Invalid(vec![FieldProblem::new(field, message)])
    })?;
    de.end().map_err(not_json)?;
    Ok(value)
}

/// The version in a path or query, e.g. `3`.
pub fn parse_version(text: &str) -> Result<SettingsVersion, ApiError> {
    text.parse::<u64>().map(SettingsVersion).map_err(|_| {
        ApiError::BadRequest(format!(
            "`{text}` is not a settings version: give the version number, e.g. 3"
        ))
    })
}
