//! The storage settings endpoints: where recordings are delivered, changed
//! only after a connection test passes (SPEC section 2).
//!
//! - `GET /api/v1/storage`: `{"storage": {..config, secrets "***"},
//!   "description": "s3 bucket \"rec\" at https://..", "saved_by": "alice" |
//!   null, "saved_at": "<rfc 3339>" | null}` (null until first saved here).
//! - `PUT /api/v1/storage`: the body is the config (`{"backend": "s3", ..}`,
//!   see `callrec_storage::StorageConfig`). A secret sent as `"***"` keeps
//!   the stored one, as long as the backend, endpoint and account or access
//!   key are unchanged (else the secret could be sent to a new endpoint
//!   nobody typed it for). The connection test runs first; when it fails
//!   the answer is 422 `{"error", "step", "kind", "storage"}` and nothing
//!   changes. When it passes, the config is saved in the catalog (with an
//!   audit entry naming who), the live store is switched for the next
//!   upload and read, and the answer is 200 with the GET shape plus
//!   `"connection_test": {"storage", "probe_key"}`.
//! - `POST /api/v1/storage/test`: the connection test of the body's config
//!   (the same `"***"` rule), nothing saved: 200 `{"storage", "probe_key"}`
//!   or the 422 above.
//!
//! `step` is one of `configure`, `list`, `write`, `read_back`, `delete`;
//! `kind` one of `credentials`, `bucket_not_found`, `permission_denied`,
//! `unreachable`, `invalid_config`, `not_found`, `invalid_request`,
//! `local_io`, `other`.
//!
//! Secrets never leave this module except into the catalog: responses and
//! logs carry the config through `Secret`, which prints `***`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use callrec_catalog::{Catalog, CatalogError, StorageSettings, UnixMillis};
use callrec_storage::{
    ConfigError, ConnectionReport, ConnectionTestError, ProbeStep, Secret, StorageConfig,
    StoreErrorKind, StoreHandle, open_store, test_connection,
};
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::Clock;

/// What a secret field holds in responses, and what a PUT sends to keep it.
pub const HIDDEN: &str = "***";

/// What the storage endpoints need.
#[derive(Clone)]
pub struct StorageState {
    /// Where the settings are kept across restarts, with the audit trail.
    catalog: Arc<dyn Catalog>,
    /// The store in force, shared with the delivery worker and the audio
    /// endpoint.
    store: StoreHandle,
    /// The time of saves.
    clock: Clock,
    /// One save at a time, so that the catalog and the live store end with
    /// the same settings when two admins save at once (the last wins).
    saving: Arc<tokio::sync::Mutex<()>>,
}

impl StorageState {
    /// A state over the catalog and the live store.
    pub fn new(catalog: Arc<dyn Catalog>, store: StoreHandle, clock: Clock) -> Self {
        StorageState {
            catalog,
            store,
            clock,
            saving: Arc::default(),
        }
    }
}

/// The storage routes, with their state: merge into the API router.
pub fn router(state: StorageState) -> Router {
    Router::new()
        .route("/api/v1/storage", get(current).put(save))
        .route("/api/v1/storage/test", post(test))
        .with_state(state)
}

/// The storage settings to start with: those saved in the catalog, else
/// `fallback` (the configuration file's). Not validated here: opening the
/// store validates, and says what to fix.
pub async fn load(
    catalog: &dyn Catalog,
    fallback: StorageConfig,
) -> Result<StorageConfig, StorageApiError> {
    match catalog.storage_settings().await? {
        Some(saved) => serde_json::from_value(saved.document).map_err(|e| {
            StorageApiError::Unavailable(format!(
                "the storage settings saved in the catalog cannot be read ({e}): save them again with put /api/v1/storage"
            ))
        }),
        None => Ok(fallback),
    }
}

/// Why a storage request failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageApiError {
    /// The request cannot be understood (400).
    #[error("{0}")]
    BadRequest(String),
    /// The settings are incomplete or malformed (422, step `configure`).
    #[error("{0}; the storage settings were not changed")]
    Invalid(String),
    /// The connection test failed (422 with step and kind).
    #[error("{0}; the storage settings were not changed")]
    Test(#[from] ConnectionTestError),
    /// The catalog failed (503).
    #[error("{0}")]
    Unavailable(String),
}

impl From<CatalogError> for StorageApiError {
    fn from(e: CatalogError) -> Self {
        StorageApiError::Unavailable(format!(
            "{e}: the storage settings were not changed, try again"
        ))
    }
}

impl From<ConfigError> for StorageApiError {
    fn from(e: ConfigError) -> Self {
        StorageApiError::Invalid(e.to_string())
    }
}

fn step_name(step: ProbeStep) -> &'static str {
    match step {
        ProbeStep::Configure => "configure",
        ProbeStep::List => "list",
        ProbeStep::Write => "write",
        ProbeStep::ReadBack => "read_back",
        ProbeStep::Delete => "delete",
    }
}

fn kind_name(kind: StoreErrorKind) -> &'static str {
    match kind {
        StoreErrorKind::Credentials => "credentials",
        StoreErrorKind::BucketNotFound => "bucket_not_found",
        StoreErrorKind::NotFound => "not_found",
        StoreErrorKind::PermissionDenied => "permission_denied",
        StoreErrorKind::Unreachable => "unreachable",
        StoreErrorKind::InvalidConfig => "invalid_config",
        StoreErrorKind::InvalidRequest => "invalid_request",
        StoreErrorKind::LocalIo => "local_io",
        StoreErrorKind::Other => "other",
    }
}

impl IntoResponse for StorageApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        let (status, body) = match &self {
            StorageApiError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, json!({ "error": message }))
            }
            StorageApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "error": message, "step": "configure", "kind": "invalid_config" }),
            ),
            StorageApiError::Test(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "error": message,
                    "step": step_name(e.step),
                    "kind": kind_name(e.kind()),
                }),
            ),
            StorageApiError::Unavailable(_) => {
                tracing::warn!(error = %message, "storage settings request failed");
                (StatusCode::SERVICE_UNAVAILABLE, json!({ "error": message }))
            }
        };
        (status, Json(body)).into_response()
    }
}

/// The answer of `GET /api/v1/storage` (and of a successful PUT).
#[derive(Debug, Serialize)]
pub struct StorageView {
    /// The settings in force; every secret is `"***"`.
    pub storage: StorageConfig,
    /// Where recordings go, in words.
    pub description: String,
    /// Who saved them through this API (null: from the configuration file).
    pub saved_by: Option<String>,
    /// When (RFC 3339).
    pub saved_at: Option<String>,
    /// The connection test that preceded the save (PUT only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_test: Option<ConnectionReport>,
}

fn rfc3339(at: UnixMillis) -> Option<String> {
    at.to_offset_date_time()?.format(&Rfc3339).ok()
}

async fn view(state: &StorageState) -> Result<StorageView, StorageApiError> {
    let config = state.store.config();
    let saved = state.catalog.storage_settings().await?;
    Ok(StorageView {
        description: config.describe(),
        storage: config,
        saved_by: saved.as_ref().map(|s| s.author.clone()),
        saved_at: saved.and_then(|s| rfc3339(s.saved_at)),
        connection_test: None,
    })
}

async fn current(State(state): State<StorageState>) -> Result<Json<StorageView>, StorageApiError> {
    Ok(Json(view(&state).await?))
}

/// The secret fields of each backend, by their JSON names.
fn secret_of<'a>(config: &'a StorageConfig, field: &str) -> Option<&'a Secret> {
    match (config, field) {
        (StorageConfig::S3 { secret_key, .. }, "secret_key") => Some(secret_key),
        (StorageConfig::Gcs { credential, .. }, "credential") => Some(credential),
        (StorageConfig::Azure { account_key, .. }, "account_key") => Some(account_key),
        _ => None,
    }
}

const SECRET_FIELDS: [&str; 3] = ["secret_key", "credential", "account_key"];

/// The fields that must be unchanged for a `"***"` to keep the stored
/// secret: who the secret is for and where it is sent.
const SECRET_BINDING: [&str; 4] = ["backend", "endpoint", "access_key", "account_name"];

/// Reads the body as settings, putting the stored secret where the body
/// says `"***"` and may.
fn settings_from_body(
    body: &[u8],
    stored: &StorageConfig,
) -> Result<StorageConfig, StorageApiError> {
    let mut value: Value = serde_json::from_slice(body).map_err(|e| {
        StorageApiError::BadRequest(format!(
            "the body is not valid json ({e}): send the storage settings as a json object"
        ))
    })?;
    let stored_value = serde_json::to_value(stored).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        for field in SECRET_FIELDS {
            if object.get(field).and_then(Value::as_str) != Some(HIDDEN) {
                continue;
            }
            let same_target = SECRET_BINDING
                .iter()
                .all(|k| object.get(*k) == stored_value.get(*k));
            match secret_of(stored, field) {
                Some(secret) if same_target => {
                    object.insert(field.to_owned(), Value::String(secret.expose().to_owned()));
                }
                _ => {
                    return Err(StorageApiError::Invalid(format!(
                        "{field} is \"***\" but the stored {field} belongs to other settings ({}): type the {field} again when changing the backend, endpoint or account",
                        stored.describe()
                    )));
                }
            }
        }
    }
    Ok(StorageConfig::from_json(&value.to_string())?)
}

/// The settings as saved in the catalog: the JSON of the config with the
/// secrets in clear (the only place they are written).
fn document(config: &StorageConfig) -> Value {
    let mut value = serde_json::to_value(config).unwrap_or(Value::Null);
    for field in SECRET_FIELDS {
        if let Some(secret) = secret_of(config, field) {
            value[field] = Value::String(secret.expose().to_owned());
        }
    }
    value
}

fn author(headers: &HeaderMap) -> Result<String, StorageApiError> {
    crate::settings::actor(headers)
        .map(|a| a.as_str().to_owned())
        .map_err(|e| StorageApiError::BadRequest(e.to_string()))
}

async fn save(
    State(state): State<StorageState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<StorageView>, StorageApiError> {
    let who = author(&headers)?;
    let _one_save = state.saving.lock().await;
    let config = settings_from_body(&body, &state.store.config())?;
    let report = test_connection(&config).await?;
    let store = open_store(&config).map_err(|error| ConnectionTestError {
        step: ProbeStep::Configure,
        error,
    })?;
    let description = config.describe();
    state
        .catalog
        .save_storage_settings(
            &StorageSettings {
                document: document(&config),
                author: who.clone(),
                saved_at: UnixMillis::from((state.clock)()),
            },
            &format!("storage set to {description}"),
        )
        .await?;
    let old = state.store.switch(config, store);
    tracing::info!(storage = %description, previous = %old.describe(), changed_by = %who, "storage settings saved");
    let mut answer = view(&state).await?;
    answer.connection_test = Some(report);
    Ok(Json(answer))
}

async fn test(
    State(state): State<StorageState>,
    body: Bytes,
) -> Result<Json<ConnectionReport>, StorageApiError> {
    let config = settings_from_body(&body, &state.store.config())?;
    Ok(Json(test_connection(&config).await?))
}
