//! The connection test run before storage settings are saved: list the probe
//! folder, write a small probe object, read it back, delete it, and say precisely which step failed
//! and why (credentials, bucket, path, permission, unreachable).
//!
//! It leaves nothing behind when it succeeds, and never reports a credential.

use bytes::Bytes;

use crate::backend::OpendalStore;
use crate::config::StorageConfig;
use crate::store::{ObjectKey, RecordingStore, StoreError, StoreErrorKind};

/// The steps of the connection test, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStep {
    /// Reading the settings and setting up the client.
    Configure,
    /// Listing the probe folder: proves the bucket exists and may be read
    /// (some S3 servers create a missing bucket on write).
    List,
    /// Writing the probe object.
    Write,
    /// Reading it back and comparing.
    ReadBack,
    /// Deleting it.
    Delete,
}

impl std::fmt::Display for ProbeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProbeStep::Configure => "setting up the storage client",
            ProbeStep::List => "listing the bucket or folder",
            ProbeStep::Write => "writing the probe object",
            ProbeStep::ReadBack => "reading the probe object back",
            ProbeStep::Delete => "deleting the probe object",
        })
    }
}

/// A connection test that failed: at which step, what kind of failure, and
/// the storage's own explanation.
#[derive(Debug, thiserror::Error)]
#[error("storage connection test failed while {step}: {error}")]
pub struct ConnectionTestError {
    /// The step that failed.
    pub step: ProbeStep,
    /// Why.
    #[source]
    pub error: StoreError,
}

impl ConnectionTestError {
    /// The kind of failure (credentials, bucket, permission, ...).
    pub fn kind(&self) -> StoreErrorKind {
        self.error.kind()
    }
}

/// A connection test that passed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionReport {
    /// Where the probe went (no credentials).
    pub storage: String,
    /// The probe object's key, written, read back and deleted.
    pub probe_key: String,
}

/// Writes, reads back and deletes a probe object on the storage `config`
/// describes.
pub async fn test_connection(
    config: &StorageConfig,
) -> Result<ConnectionReport, ConnectionTestError> {
    let at = |step| move |error| ConnectionTestError { step, error };
    let store = OpendalStore::from_config(config).map_err(at(ProbeStep::Configure))?;
    let key = ObjectKey::new(format!("callrec-probe/{:016x}.txt", fastrand::u64(..)))
        .map_err(at(ProbeStep::Configure))?;
    store
        .list("callrec-probe/")
        .await
        .map_err(at(ProbeStep::List))?;
    let content = Bytes::from(format!(
        "callrec connection test {}\n",
        time::OffsetDateTime::now_utc()
    ));
    store
        .put_bytes(&key, content.clone())
        .await
        .map_err(at(ProbeStep::Write))?;
    let back = store
        .read_range(&key, 0..content.len() as u64)
        .await
        .map_err(at(ProbeStep::ReadBack))?;
    if back != content {
        return Err(ConnectionTestError {
            step: ProbeStep::ReadBack,
            error: StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "the probe {key} read back from {} differs from what was written: the storage corrupts data, do not use it",
                    store.describe()
                ),
            ),
        });
    }
    store.delete(&key).await.map_err(at(ProbeStep::Delete))?;
    Ok(ConnectionReport {
        storage: store.describe(),
        probe_key: key.to_string(),
    })
}
