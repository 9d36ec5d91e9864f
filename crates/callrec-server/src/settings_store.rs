//! The recording policy's settings kept in the catalog: a
//! [`callrec_policy::SettingsStore`] over the catalog's settings versions,
//! so that a save through the API survives a restart and every node reads
//! the same versions.
//!
//! The catalog keeps each version's document (the settings as JSON), its
//! author and a one-line summary; the summary is the list of changed field
//! paths joined by `, ` (or `no changes`), which is how the changes are read
//! back. This module never decides anything about a call.

use std::sync::Arc;

use async_trait::async_trait;
use callrec_catalog::{Catalog, CatalogError, NewSettings, UnixMillis};
use callrec_policy::{
    Actor, HistoryEntry, SettingsStore, SettingsVersion, StoreError, ValidSettings,
    VersionedSettings, settings::changed_fields,
};
use time::OffsetDateTime;

const NO_CHANGES: &str = "no changes";

/// The settings versions of the catalog, as the policy sees them.
#[derive(Clone)]
pub struct CatalogSettingsStore {
    catalog: Arc<dyn Catalog>,
}

impl CatalogSettingsStore {
    /// A store over `catalog`. An empty catalog gets the default settings
    /// as version 1 (by `system`) the first time they are read.
    pub fn new(catalog: Arc<dyn Catalog>) -> Self {
        CatalogSettingsStore { catalog }
    }
}

fn backend(e: CatalogError) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn to_time(at: UnixMillis) -> OffsetDateTime {
    at.to_offset_date_time()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn summary(changes: &[String]) -> String {
    if changes.is_empty() {
        NO_CHANGES.to_owned()
    } else {
        changes.join(", ")
    }
}

fn changes_of(summary: &str) -> Vec<String> {
    if summary == NO_CHANGES || summary.is_empty() {
        return Vec::new();
    }
    summary.split(", ").map(str::to_owned).collect()
}

fn from_catalog(v: callrec_catalog::SettingsVersion) -> Result<VersionedSettings, StoreError> {
    let settings: ValidSettings = serde_json::from_value(v.document).map_err(|e| {
        StoreError::Backend(format!(
            "settings version {} in the catalog is not valid settings ({e}); save the settings again",
            v.version
        ))
    })?;
    Ok(VersionedSettings {
        version: SettingsVersion(v.version),
        settings,
        changed_by: Actor::parse(&v.author).unwrap_or_else(|_| Actor::system()),
        changed_at: to_time(v.created_at),
        changes: changes_of(&v.summary),
    })
}

#[async_trait]
impl SettingsStore for CatalogSettingsStore {
    async fn current(&self) -> Result<VersionedSettings, StoreError> {
        if let Some(v) = self.catalog.current_settings().await.map_err(backend)? {
            return from_catalog(v);
        }
        // A store is never empty: the defaults become version 1. Of two
        // nodes doing this at once, one wins and the other reads its save.
        let first = NewSettings {
            document: serde_json::to_value(ValidSettings::default()).expect("settings serialize"),
            author: Actor::system().as_str().to_owned(),
            summary: NO_CHANGES.to_owned(),
            at: UnixMillis::now(),
        };
        match self.catalog.save_settings(0, &first).await {
            Ok(v) => from_catalog(v),
            Err(CatalogError::SettingsConflict { .. }) => {
                match self.catalog.current_settings().await.map_err(backend)? {
                    Some(v) => from_catalog(v),
                    None => Err(StoreError::Backend(
                        "the catalog has no settings after a conflicting save; retry".into(),
                    )),
                }
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn version(
        &self,
        version: SettingsVersion,
    ) -> Result<Option<VersionedSettings>, StoreError> {
        // Version 1 exists once anything read the settings.
        self.current().await?;
        match self.catalog.settings_version(version.0).await {
            Ok(v) => from_catalog(v).map(Some),
            Err(CatalogError::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn save(
        &self,
        base: SettingsVersion,
        settings: ValidSettings,
        changed_by: Actor,
        changed_at: OffsetDateTime,
    ) -> Result<VersionedSettings, StoreError> {
        let current = self.current().await?;
        if current.version != base {
            return Err(StoreError::Conflict {
                base,
                current: current.version,
            });
        }
        let changes = changed_fields(&current.settings, &settings);
        let new = NewSettings {
            document: serde_json::to_value(&settings).expect("settings serialize"),
            author: changed_by.as_str().to_owned(),
            summary: summary(&changes),
            at: UnixMillis::from(changed_at),
        };
        match self.catalog.save_settings(base.0, &new).await {
            Ok(v) => from_catalog(v),
            Err(CatalogError::SettingsConflict { .. }) => {
                let now = self.current().await?;
                Err(StoreError::Conflict {
                    base,
                    current: now.version,
                })
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn history(&self, limit: usize) -> Result<Vec<HistoryEntry>, StoreError> {
        self.current().await?;
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        let versions = self
            .catalog
            .settings_history(limit)
            .await
            .map_err(backend)?;
        Ok(versions
            .into_iter()
            .map(|v| HistoryEntry {
                version: SettingsVersion(v.version),
                changed_by: Actor::parse(&v.author).unwrap_or_else(|_| Actor::system()),
                changed_at: to_time(v.created_at),
                changes: changes_of(&v.summary),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> CatalogSettingsStore {
        let catalog = callrec_catalog::SqlCatalog::open("sqlite::memory:")
            .await
            .unwrap();
        CatalogSettingsStore::new(Arc::new(catalog))
    }

    #[tokio::test]
    async fn starts_with_the_defaults_and_saves_versions_with_their_changes() {
        let s = store().await;
        let v1 = s.current().await.unwrap();
        assert_eq!(v1.version, SettingsVersion::FIRST);
        assert_eq!(v1.settings, ValidSettings::default());
        let mut changed = v1.settings.clone().into_inner();
        changed.call_details.use_call_recording = !changed.call_details.use_call_recording;
        let changed = changed.validate().unwrap();
        let v2 = s
            .save(
                v1.version,
                changed.clone(),
                Actor::parse("ana").unwrap(),
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert_eq!(v2.version, SettingsVersion(2));
        assert_eq!(s.current().await.unwrap().settings, changed);
        assert!(!v2.changes.is_empty(), "{:?}", v2.changes);
        assert_eq!(
            s.version(SettingsVersion::FIRST)
                .await
                .unwrap()
                .unwrap()
                .settings,
            ValidSettings::default()
        );
        let conflict = s
            .save(
                v1.version,
                changed,
                Actor::system(),
                OffsetDateTime::now_utc(),
            )
            .await;
        assert!(matches!(conflict, Err(StoreError::Conflict { .. })));
        let history = s.history(10).await.unwrap();
        assert_eq!(history[0].version, SettingsVersion(2));
        assert_eq!(history[0].changed_by.as_str(), "ana");
    }
}
