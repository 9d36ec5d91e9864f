//! The HTTP API of callrec: axum routers that the server mounts and tests
//! drive directly. Domain types are converted to and from JSON here and
//! nowhere else.
//!
//! [`router`] builds the whole API from an [`ApiState`]. Routes:
//! - `GET /api/v1/settings`, `PUT /api/v1/settings`,
//!   `GET /api/v1/settings/history`, `GET /api/v1/settings/versions/{version}`
//!   ([`settings`]);
//! - `PUT /api/v1/settings/languages/{language}/messages/{message}/audio` and
//!   `GET /api/v1/announcements/{reference}` ([`announcements`]);
//! - `POST /api/v1/policy/evaluate` ([`policy`]);
//! - `GET /api/v1/storage`, `PUT /api/v1/storage`,
//!   `POST /api/v1/storage/test` ([`storage`], in [`router_with_storage`]).
//!
//! Who makes a change is read from the `X-Callrec-User` header until API
//! tokens with roles exist; then the token's user replaces it. The header is
//! trusted as is: do not expose this API beyond the admins' network before
//! tokens land.
//!
//! The API never reads the system clock itself: the [`Clock`] in the state
//! says what time it is, so tests control time.

pub mod announcements;
pub mod audio;
pub mod error;
pub mod policy;
pub mod recordings;
pub mod settings;
pub mod storage;

use std::sync::Arc;

use axum::Router;
use callrec_policy::{InMemorySettingsStore, SettingsStore, ValidSettings};
use time::OffsetDateTime;

pub use announcements::{AnnouncementStore, InMemoryAnnouncementStore};
pub use error::ApiError;

/// Says what time it is (the system clock in the server, a fixed or
/// stepping time in tests).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The header that names who makes a change, until API tokens exist.
pub const USER_HEADER: &str = "x-callrec-user";

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The versioned settings.
    pub settings: Arc<dyn SettingsStore>,
    /// The converted announcement audio.
    pub announcements: Arc<dyn AnnouncementStore>,
    /// The time of changes.
    pub clock: Clock,
}

impl ApiState {
    /// A state over the given stores.
    pub fn new(
        settings: Arc<dyn SettingsStore>,
        announcements: Arc<dyn AnnouncementStore>,
        clock: Clock,
    ) -> Self {
        Self {
            settings,
            announcements,
            clock,
        }
    }

    /// A state with in-memory stores holding the default settings as
    /// version 1, made at the clock's current time. Nothing survives a
    /// restart: for tests, and for the server until the catalog stores
    /// settings.
    pub fn in_memory(clock: Clock) -> Self {
        let settings = InMemorySettingsStore::new(ValidSettings::default(), clock());
        Self::new(
            Arc::new(settings),
            Arc::new(InMemoryAnnouncementStore::default()),
            clock,
        )
    }
}

/// The whole API as one router. Other parts of the API (recordings,
/// storage) add their routes here with one `merge` each.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(settings::routes())
        .merge(announcements::routes())
        .merge(policy::routes())
        .with_state(state)
}

/// [`router`] plus the storage settings endpoints ([`storage`]), which have
/// their own state (the catalog and the live store).
pub fn router_with_storage(state: ApiState, storage: storage::StorageState) -> Router {
    router(state).merge(storage::router(storage))
}
