//! The live recording store: a handle that the delivery worker and the audio
//! endpoint hold for the whole life of the process, and that the storage
//! settings API switches to a new store when the admin saves new settings.
//!
//! [`StoreHandle`] is itself a [`RecordingStore`]: every call reads the
//! store in force at that moment, so a switch takes effect for the next
//! upload or read without a restart. A delivery that is in the middle of an
//! attempt when the store is switched may write to the old store and verify
//! on the new one; the verification then fails, the attempt is retried on
//! the new store, and the spool copy is kept until then, so nothing is lost.
//!
//! This module never connects anywhere and never tests settings: the caller
//! (the settings API) runs [`crate::test_connection`] before switching.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::config::StorageConfig;
use crate::store::{
    ByteStream, ListedObject, ObjectKey, ObjectStat, PutReceipt, RecordingStore, StoreError,
};

/// The store in force and the settings it was opened from.
struct Live {
    config: StorageConfig,
    store: Arc<dyn RecordingStore>,
}

/// The recording store in force, switchable while the process runs. Cheap to
/// clone: clones share the same live store.
#[derive(Clone)]
pub struct StoreHandle {
    live: Arc<RwLock<Live>>,
}

impl StoreHandle {
    /// A handle over `store`, opened from `config`.
    pub fn new(config: StorageConfig, store: Arc<dyn RecordingStore>) -> Self {
        StoreHandle {
            live: Arc::new(RwLock::new(Live { config, store })),
        }
    }

    /// A handle over the store `config` describes (no connection is made).
    pub fn open(config: StorageConfig) -> Result<Self, StoreError> {
        let store = crate::backend::open_store(&config)?;
        Ok(Self::new(config, store))
    }

    /// The store in force now. Hold it for one operation, not longer.
    pub fn current(&self) -> Arc<dyn RecordingStore> {
        self.read().store.clone()
    }

    /// The settings of the store in force now (with their credentials: do
    /// not log or return them as they are, `Secret` hides them when printed).
    pub fn config(&self) -> StorageConfig {
        self.read().config.clone()
    }

    /// Makes `store` (opened from `config`) the store in force for every
    /// later operation, and returns the settings it replaces.
    pub fn switch(&self, config: StorageConfig, store: Arc<dyn RecordingStore>) -> StorageConfig {
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *live, Live { config, store });
        old.config
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        // A writer cannot panic while holding the lock (it only swaps), so a
        // poisoned lock still holds a whole `Live`.
        self.live.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreHandle")
            .field("store", &self.describe())
            .finish()
    }
}

#[async_trait::async_trait]
impl RecordingStore for StoreHandle {
    fn describe(&self) -> String {
        self.current().describe()
    }

    async fn put_stream(
        &self,
        key: &ObjectKey,
        body: ByteStream,
    ) -> Result<PutReceipt, StoreError> {
        self.current().put_stream(key, body).await
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path) -> Result<PutReceipt, StoreError> {
        self.current().put_file(key, path).await
    }

    async fn put_bytes(&self, key: &ObjectKey, bytes: Bytes) -> Result<PutReceipt, StoreError> {
        self.current().put_bytes(key, bytes).await
    }

    async fn stat(&self, key: &ObjectKey) -> Result<ObjectStat, StoreError> {
        self.current().stat(key).await
    }

    async fn size(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        self.current().size(key).await
    }

    async fn read_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.current().read_range(key, range).await
    }

    async fn read_stream(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError> {
        self.current().read_stream(key, range).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.current().delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        self.current().list(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_switch_takes_effect_for_the_next_operation() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let config_a = StorageConfig::Local {
            root: a.path().to_owned(),
        };
        let config_b = StorageConfig::Local {
            root: b.path().to_owned(),
        };
        let handle = StoreHandle::open(config_a.clone()).unwrap();
        let shared: Arc<dyn RecordingStore> = Arc::new(handle.clone());
        let key = ObjectKey::new("x/one.txt").unwrap();
        shared
            .put_bytes(&key, Bytes::from_static(b"1"))
            .await
            .unwrap();
        let old = handle.switch(
            config_b.clone(),
            crate::backend::open_store(&config_b).unwrap(),
        );
        assert_eq!(old, config_a);
        assert_eq!(handle.config(), config_b);
        let key2 = ObjectKey::new("x/two.txt").unwrap();
        shared
            .put_bytes(&key2, Bytes::from_static(b"2"))
            .await
            .unwrap();
        assert!(a.path().join("x/one.txt").is_file());
        assert!(!a.path().join("x/two.txt").exists());
        assert!(b.path().join("x/two.txt").is_file());
        assert!(shared.describe().contains(&b.path().display().to_string()));
    }
}
