//! Where the settings versions live: the [`SettingsStore`] trait and an
//! in-memory implementation for tests and single-process use.
//!
//! The catalog implements the same trait on SQLite and PostgreSQL; its
//! semantics are written on the trait and must hold for every backend. The
//! in-memory store takes the time of each change as an argument: this crate
//! never reads a clock.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use crate::domain::Actor;
use crate::settings::{ValidSettings, changed_fields};

/// The number of one saved version of the settings. The first version is 1;
/// each save makes the next number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SettingsVersion(pub u64);

impl SettingsVersion {
    /// The version a new store starts with.
    pub const FIRST: SettingsVersion = SettingsVersion(1);

    /// The version after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for SettingsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One saved version: who saved it, when, what changed, and the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedSettings {
    /// The version's number.
    pub version: SettingsVersion,
    /// What this version says.
    pub settings: ValidSettings,
    /// Who made the change.
    pub changed_by: Actor,
    /// When the change was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    /// The field paths that differ from the previous version (see
    /// [`changed_fields`]); empty for the first version.
    pub changes: Vec<String>,
}

impl VersionedSettings {
    /// The entry of this version in the history (the document left out).
    pub fn history_entry(&self) -> HistoryEntry {
        HistoryEntry {
            version: self.version,
            changed_by: self.changed_by.clone(),
            changed_at: self.changed_at,
            changes: self.changes.clone(),
        }
    }
}

/// A version in the audit history, without its document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The version's number.
    pub version: SettingsVersion,
    /// Who made the change.
    pub changed_by: Actor,
    /// When the change was saved.
    #[serde(with = "time::serde::rfc3339")]
    pub changed_at: OffsetDateTime,
    /// The field paths that changed.
    pub changes: Vec<String>,
}

/// Why a settings store refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The change was based on a version that is no longer the current one.
    #[error(
        "the settings changed since version {base} (now version {current}): reload them, redo the change and save again"
    )]
    Conflict {
        /// The version the change was based on.
        base: SettingsVersion,
        /// The current version.
        current: SettingsVersion,
    },
    /// The backend (database) failed.
    #[error("the settings store failed: {0}; check the catalog database and retry")]
    Backend(String),
}

/// The versioned settings, as one audited sequence of saves.
///
/// Semantics every implementation keeps:
/// - A store is never empty: a new store holds version
///   [`SettingsVersion::FIRST`], made by [`Actor::system`], usually with the
///   default settings and no changes listed.
/// - Versions are strictly increasing and never reused or rewritten: each
///   successful [`save`](Self::save) makes exactly `current + 1`.
/// - Optimistic concurrency: `save` names the version it replaces (`base`).
///   If that is not the current version, nothing is saved and
///   [`StoreError::Conflict`] carries the current version. Two concurrent
///   saves on the same base: one succeeds, the other gets a conflict.
/// - Each version records who saved it, when (the time passed in), and the
///   change summary: [`changed_fields`] between the previous version and the
///   new one. A save that changes nothing still makes a version (the admin
///   pressed save; the audit log shows it with no changes).
/// - [`history`](Self::history) lists versions newest first.
/// - Old versions stay readable with [`version`](Self::version): a call is
///   decided with the version it started with, even after later saves.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The current (newest) version.
    async fn current(&self) -> Result<VersionedSettings, StoreError>;

    /// One version, or `None` when there is no such version.
    async fn version(
        &self,
        version: SettingsVersion,
    ) -> Result<Option<VersionedSettings>, StoreError>;

    /// Saves `settings` as the version after `base`, if `base` is current.
    async fn save(
        &self,
        base: SettingsVersion,
        settings: ValidSettings,
        changed_by: Actor,
        changed_at: OffsetDateTime,
    ) -> Result<VersionedSettings, StoreError>;

    /// Up to `limit` versions, newest first.
    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError>;
}

/// A [`SettingsStore`] in memory: every version kept in a vector.
#[derive(Debug)]
pub struct InMemorySettingsStore {
    versions: Mutex<Vec<VersionedSettings>>,
}

impl InMemorySettingsStore {
    /// A store whose first version holds `initial`, made by the system at `at`.
    pub fn new(initial: ValidSettings, at: OffsetDateTime) -> Self {
        let first = VersionedSettings {
            version: SettingsVersion::FIRST,
            settings: initial,
            changed_by: Actor::system(),
            changed_at: at,
            changes: Vec::new(),
        };
        Self {
            versions: Mutex::new(vec![first]),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<VersionedSettings>> {
        // A panic while holding the lock cannot leave the vector half
        // updated (pushes are the only writes), so a poisoned lock is usable.
        self.versions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SettingsStore for InMemorySettingsStore {
    async fn current(&self) -> Result<VersionedSettings, StoreError> {
        Ok(self.lock().last().expect("a store is never empty").clone())
    }

    async fn version(
        &self,
        version: SettingsVersion,
    ) -> Result<Option<VersionedSettings>, StoreError> {
        Ok(self.lock().iter().find(|v| v.version == version).cloned())
    }

    async fn save(
        &self,
        base: SettingsVersion,
        settings: ValidSettings,
        changed_by: Actor,
        changed_at: OffsetDateTime,
    ) -> Result<VersionedSettings, StoreError> {
        let mut versions = self.lock();
        let current = versions.last().expect("a store is never empty");
        if current.version != base {
            return Err(StoreError::Conflict {
                base,
                current: current.version,
            });
        }
        let saved = VersionedSettings {
            version: current.version.next(),
            changes: changed_fields(&current.settings, &settings),
            settings,
            changed_by,
            changed_at,
        };
        versions.push(saved.clone());
        Ok(saved)
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        Ok(self
            .lock()
            .iter()
            .rev()
            .take(limit)
            .map(VersionedSettings::history_entry)
            .collect())
    }
}
