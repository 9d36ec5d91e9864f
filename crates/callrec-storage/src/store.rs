//! The recording store: the one trait every storage backend implements, its
//! object keys and the storage layout (`recordings/YYYY/MM/DD/<call-id>.<ext>`
//! plus `<call-id>.json`), and the errors it reports.
//!
//! The trait describes storage, not delivery: it never retries, never touches
//! the spool or the catalog, and never decides that something is delivered
//! (that is [`crate::delivery`], which verifies what the store reports).

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;

use bytes::Bytes;
use callrec_media::encode::Format;
use futures::Stream;
use time::OffsetDateTime;

/// A stream of bytes going to or coming from storage.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StoreError>> + Send>>;

/// What kind of failure a [`StoreError`] is, so that callers (the connection
/// test, the API, the delivery worker) can say what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The storage refused the credentials (wrong key, secret or signature).
    Credentials,
    /// The bucket or container does not exist.
    BucketNotFound,
    /// The object does not exist.
    NotFound,
    /// The credentials are valid but may not do this (or a path is not writable).
    PermissionDenied,
    /// The storage could not be reached (refused, reset, timed out, dns).
    Unreachable,
    /// The settings cannot work (see [`crate::config::ConfigError`]).
    InvalidConfig,
    /// A key or range that the store does not accept.
    InvalidRequest,
    /// A local file (the source of an upload) could not be read.
    LocalIo,
    /// Anything else the backend reported.
    Other,
}

/// A failed storage operation: what was attempted, on what, why, and what to
/// do. Never contains a credential.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    kind: StoreErrorKind,
    message: String,
}

impl StoreError {
    /// An error of `kind` with a full lowercase message.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> Self {
        StoreError {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed without anyone changing
    /// anything (the storage was down or busy).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            StoreErrorKind::Unreachable | StoreErrorKind::Other
        )
    }
}

/// An object's key inside the store, relative to the configured prefix:
/// `/`-separated segments of `[A-Za-z0-9._@+-]`, none empty, `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Checks and wraps a key.
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b))
            });
        if ok {
            Ok(ObjectKey(key))
        } else {
            Err(StoreError::new(
                StoreErrorKind::InvalidRequest,
                format!(
                    "invalid object key {key:?}: use /-separated names of letters, digits, '.', '_', '@', '+' and '-'"
                ),
            ))
        }
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A call id as it appears in object and spool names: 1 to 128 of
/// `[A-Za-z0-9._@+-]`, not starting with `.` (the catalog's `CallId` rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoredCallId(String);

impl StoredCallId {
    /// Checks and wraps a call id.
    pub fn new(id: impl Into<String>) -> Result<Self, StoreError> {
        let id = id.into();
        let ok = (1..=128).contains(&id.len())
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
        if ok {
            Ok(StoredCallId(id))
        } else {
            Err(StoreError::new(
                StoreErrorKind::InvalidRequest,
                format!(
                    "invalid call id {id:?} for storage: use 1 to 128 letters, digits, '.', '_', '@', '+' or '-'"
                ),
            ))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoredCallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two objects of one recording in storage (SPEC section 2):
/// `recordings/YYYY/MM/DD/<call-id>.<mp3|wav>` and `<call-id>.json` beside it.
/// The date is the call's start in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingKeys {
    /// The audio file.
    pub audio: ObjectKey,
    /// The metadata JSON, written after the audio.
    pub metadata: ObjectKey,
}

impl RecordingKeys {
    /// The keys of the recording of `call_id`, started at `started_at`.
    pub fn new(call_id: &StoredCallId, started_at: OffsetDateTime, format: Format) -> Self {
        let d = started_at.to_offset(time::UtcOffset::UTC).date();
        let dir = format!(
            "recordings/{:04}/{:02}/{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        );
        RecordingKeys {
            audio: ObjectKey(format!("{dir}/{call_id}.{}", format.extension())),
            metadata: ObjectKey(format!("{dir}/{call_id}.json")),
        }
    }
}

/// What a `put` sent: the size and sha256 of the bytes the store accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    /// Bytes written.
    pub size: u64,
    /// Lowercase hex sha256 of the bytes written.
    pub sha256: String,
}

/// What the store holds under a key, measured by the store's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStat {
    /// The object's size in bytes.
    pub size: u64,
    /// Lowercase hex sha256 of the object's content.
    pub sha256: String,
}

/// One object found by [`RecordingStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Its key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
}

/// A place recordings are kept: a local directory, a bucket, a container or
/// a directory on an SFTP server.
///
/// Semantics every implementation keeps (checked by the conformance suite in
/// `tests/conformance.rs`, run on every backend that can run here):
/// - `put_*` creates or replaces the object under `key`, creating any
///   intermediate "directories". It returns only after the store has accepted
///   all bytes; an error means the object may be absent, old or partial (on
///   SFTP and the local directory a reader may see a partial object while a
///   put runs), never that it is complete. So a `put` alone proves nothing:
///   [`crate::delivery`] verifies with [`stat`](Self::stat) afterwards.
/// - `stat` reports the size and sha256 of what the store holds, as the store
///   reports it or, where it reports no sha256 (all backends in OpenDAL 0.59),
///   by reading the object back. `NotFound` if there is no object.
/// - `size` is the cheap metadata-only size (no read-back), for serving.
/// - `read_range` and `read_stream` return exactly the bytes in the range
///   (end exclusive); a range past the end is `InvalidRequest`. `NotFound`
///   if there is no object.
/// - `delete` removes the object; deleting an absent object succeeds.
/// - `list(prefix)` returns every object whose key starts with `prefix`
///   (which is empty or ends with `/`), at any depth, sorted by key.
/// - No method retries: one call is one attempt. Retrying is the caller's.
/// - Errors say which operation, which key and which kind of failure
///   ([`StoreErrorKind`]) and never carry credentials.
#[async_trait::async_trait]
pub trait RecordingStore: Send + Sync + fmt::Debug {
    /// Where this store writes, for people and logs (no credentials).
    fn describe(&self) -> String;

    /// Writes `body` under `key`.
    async fn put_stream(&self, key: &ObjectKey, body: ByteStream)
    -> Result<PutReceipt, StoreError>;

    /// Writes the content of the local file `path` under `key`.
    async fn put_file(&self, key: &ObjectKey, path: &Path) -> Result<PutReceipt, StoreError> {
        let body = crate::backend::file_stream(path).await?;
        self.put_stream(key, body).await
    }

    /// Writes `bytes` under `key`.
    async fn put_bytes(&self, key: &ObjectKey, bytes: Bytes) -> Result<PutReceipt, StoreError> {
        let body: ByteStream = Box::pin(futures::stream::once(async move { Ok(bytes) }));
        self.put_stream(key, body).await
    }

    /// The size and sha256 of the object under `key`, measured by the store.
    async fn stat(&self, key: &ObjectKey) -> Result<ObjectStat, StoreError>;

    /// The size of the object under `key`, from metadata only.
    async fn size(&self, key: &ObjectKey) -> Result<u64, StoreError>;

    /// The bytes `range` of the object under `key`.
    async fn read_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes, StoreError>;

    /// The bytes `range` (all if `None`) of the object under `key`, streamed.
    async fn read_stream(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError>;

    /// Removes the object under `key`; absent is fine.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;

    /// Every object under `prefix` (empty or ending in `/`), sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_by_utc_start_date() {
        let id = StoredCallId::new("c-42").unwrap();
        let t = time::macros::datetime!(2026-01-02 23:30 -02:00); // 2026-01-03 01:30 UTC
        let keys = RecordingKeys::new(&id, t, Format::Mp3);
        assert_eq!(keys.audio.as_str(), "recordings/2026/01/03/c-42.mp3");
        assert_eq!(keys.metadata.as_str(), "recordings/2026/01/03/c-42.json");
        let keys = RecordingKeys::new(&id, t, Format::Wav);
        assert_eq!(keys.audio.as_str(), "recordings/2026/01/03/c-42.wav");
    }

    #[test]
    fn keys_and_ids_refuse_escapes() {
        for bad in ["", "/a", "a//b", "a/../b", "a/./b", "a b", "a/"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(ObjectKey::new("recordings/2026/01/03/c.json").is_ok());
        for bad in ["", ".hidden", "a/b", "x".repeat(129).as_str()] {
            assert!(StoredCallId::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(StoredCallId::new("0193-abc_DEF.1@pbx+2").is_ok());
    }
}
