//! The one error type of the catalog.
//!
//! Messages are lowercase and say what to do. They never contain a phone
//! number nor a database password: callers may log them as they are.

use crate::types::{RecordingId, RecordingStatus};

/// Everything that can go wrong in the catalog.
///
/// The API edge maps these to HTTP statuses: `NotFound` to 404,
/// `StatusMismatch`, `ForbiddenTransition`, `AlreadyExists` and
/// `SettingsConflict` to 409, `Invalid` to 400, the rest to 500/503.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog URL names a database the catalog does not support.
    #[error(
        "unsupported catalog url scheme `{scheme}`: use `sqlite://PATH?mode=rwc` or `postgres://USER@HOST:PORT/DATABASE`"
    )]
    UnsupportedUrl { scheme: String },

    /// The database could not be reached or refused the connection.
    #[error("cannot connect to the catalog database at {target}: {source}; {hint}")]
    Connect {
        /// The URL with any password replaced by `***`.
        target: String,
        #[source]
        source: sqlx::Error,
        /// What to check, for this backend.
        hint: &'static str,
    },

    /// The schema migrations could not be applied.
    #[error(
        "cannot migrate the catalog database: {source}; check that the database user may create tables, or restore the database from a backup"
    )]
    Migrate {
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// The row asked for does not exist.
    #[error("{what} `{id}` not found in the catalog: check the id")]
    NotFound { what: &'static str, id: String },

    /// A row with this id exists already.
    #[error("{what} `{id}` already exists in the catalog: use a new id")]
    AlreadyExists { what: &'static str, id: String },

    /// A status change was asked for with `from` statuses that do not hold
    /// the recording's current status: somebody else changed it first.
    #[error(
        "recording {id} is {current}, not one of [{expected}]: reload the recording and decide again"
    )]
    StatusMismatch {
        id: RecordingId,
        current: RecordingStatus,
        expected: String,
    },

    /// The state machine of [`RecordingStatus`] does not allow this change.
    #[error(
        "a recording cannot go from {from} to {to}: see RecordingStatus::can_become for the allowed changes"
    )]
    ForbiddenTransition {
        from: RecordingStatus,
        to: RecordingStatus,
    },

    /// Settings were saved against a version that is no longer current.
    /// `current` is the version now in force (0 when there is none).
    #[error(
        "the settings were changed meanwhile: version {current} is current, not {base}; reload the settings and apply your change again"
    )]
    SettingsConflict { base: u64, current: u64 },

    /// A value handed to the catalog is not acceptable. `reason` never
    /// repeats personal data such as a phone number.
    #[error("invalid {what}: {reason}")]
    Invalid { what: &'static str, reason: String },

    /// The database holds a value this version of callrec cannot read.
    #[error(
        "the catalog holds an unreadable {what} ({detail}): the database was changed outside callrec or by a newer version"
    )]
    Corrupt { what: &'static str, detail: String },

    /// The batch this change was written in failed as a whole (see
    /// [`GroupCommit`](crate::GroupCommit)): nothing of it was written.
    #[error("the catalog batch this change was in failed: {0}; it is retried by whoever asked")]
    BatchFailed(String),

    /// Any other database failure.
    #[error("catalog database error: {0}; check that the database server is up and see its log")]
    Database(#[from] sqlx::Error),
}

impl CatalogError {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        CatalogError::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(what: &'static str, id: impl ToString) -> Self {
        CatalogError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl Into<String>) -> Self {
        CatalogError::Corrupt {
            what,
            detail: detail.into(),
        }
    }
}
