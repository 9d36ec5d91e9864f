//! The OpenDAL implementation of [`RecordingStore`], built from a
//! [`StorageConfig`]: local directory, S3-compatible, GCS, Azure Blob, SFTP.
//!
//! Every storage call goes through here with a timeout per step, and every
//! OpenDAL error is turned into a [`StoreError`] that says what to do. This
//! module must never log or return a credential, and never retry (retrying,
//! with backoff, is the delivery worker's).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator, services};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::config::{ConfigError, HostKeyPolicy, StorageConfig};
use crate::secret::Secret;
use crate::store::{
    ByteStream, ListedObject, ObjectKey, ObjectStat, PutReceipt, RecordingStore, StoreError,
    StoreErrorKind,
};

/// Upload part size: objects up to this size go in one request; larger ones
/// in parts of this size (S3 needs parts of at least 5 MiB).
const WRITE_CHUNK: usize = 8 * 1024 * 1024;
/// Size of the pieces a local file is read in for upload.
const FILE_READ_CHUNK: usize = 256 * 1024;
/// Default limit for one step (one request, one chunk) of a storage call.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs OpenDAL's HTTP transport and service registry (default features
/// are off, so nothing does it for us). Idempotent; called by every
/// constructor here.
pub fn install_opendal() {
    opendal::install_default();
}

/// Opens the store described by `config` (validated first). Nothing is
/// contacted: use [`crate::probe::test_connection`] to know it works.
pub fn open_store(config: &StorageConfig) -> Result<Arc<dyn RecordingStore>, StoreError> {
    Ok(Arc::new(OpendalStore::from_config(config)?))
}

/// A [`RecordingStore`] on an OpenDAL operator.
#[derive(Clone)]
pub struct OpendalStore {
    op: Operator,
    description: String,
    step_timeout: Duration,
}

impl std::fmt::Debug for OpendalStore {
    /// Only the description: the operator holds credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpendalStore")
            .field("storage", &self.description)
            .finish_non_exhaustive()
    }
}

impl From<ConfigError> for StoreError {
    fn from(e: ConfigError) -> Self {
        StoreError::new(StoreErrorKind::InvalidConfig, e.to_string())
    }
}

/// The GCS credential as OpenDAL wants it (base64 of the key JSON), from the
/// key JSON or its base64.
pub(crate) fn gcs_credential_base64(credential: &Secret) -> Result<String, ConfigError> {
    let raw = credential.expose().trim();
    let invalid = || ConfigError::Invalid {
        backend: "gcs",
        field: "credential",
        why:
            "it is neither a service-account json key nor its base64: paste the key file's content"
                .into(),
    };
    let json_ok = |s: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(s)
            .ok()
            .is_some_and(|v| v.is_object())
    };
    if raw.starts_with('{') {
        if json_ok(raw.as_bytes()) {
            return Ok(base64::engine::general_purpose::STANDARD.encode(raw));
        }
        return Err(invalid());
    }
    match base64::engine::general_purpose::STANDARD.decode(raw) {
        Ok(decoded) if json_ok(&decoded) => Ok(raw.to_owned()),
        _ => Err(invalid()),
    }
}

fn root_of(prefix: &str) -> String {
    let p = prefix.trim_matches('/');
    if p.is_empty() {
        "/".to_owned()
    } else {
        format!("/{p}/")
    }
}

impl OpendalStore {
    /// Builds the operator for `config` after [`StorageConfig::validate`].
    pub fn from_config(config: &StorageConfig) -> Result<Self, StoreError> {
        install_opendal();
        config.validate()?;
        let description = config.describe();
        let build_err = |e: opendal::Error| {
            StoreError::new(
                StoreErrorKind::InvalidConfig,
                format!(
                    "cannot set up {description}: {}: check the storage settings",
                    short(&e.to_string())
                ),
            )
        };
        let op = match config {
            StorageConfig::Local { root } => {
                let abs: PathBuf = if root.is_absolute() {
                    root.clone()
                } else {
                    std::env::current_dir()
                        .map_err(|e| {
                            StoreError::new(
                                StoreErrorKind::LocalIo,
                                format!(
                                    "cannot resolve the local storage directory {}: {e}",
                                    root.display()
                                ),
                            )
                        })?
                        .join(root)
                };
                Operator::new(services::Fs::default().root(&abs.to_string_lossy()))
            }
            StorageConfig::S3 {
                endpoint,
                region,
                bucket,
                access_key,
                secret_key,
                prefix,
            } => {
                let mut b = services::S3::default()
                    .bucket(bucket)
                    .region(region)
                    .access_key_id(access_key)
                    .secret_access_key(secret_key.expose())
                    .root(&root_of(prefix))
                    .disable_config_load()
                    .disable_ec2_metadata();
                if !endpoint.is_empty() {
                    b = b.endpoint(endpoint);
                }
                Operator::new(b)
            }
            StorageConfig::Gcs {
                bucket,
                credential,
                prefix,
                endpoint,
            } => {
                let mut b = services::Gcs::default()
                    .bucket(bucket)
                    .credential(&gcs_credential_base64(credential)?)
                    .root(&root_of(prefix))
                    .disable_config_load()
                    .disable_vm_metadata();
                if !endpoint.is_empty() {
                    b = b.endpoint(endpoint);
                }
                Operator::new(b)
            }
            StorageConfig::Azure {
                endpoint,
                account_name,
                account_key,
                container,
                prefix,
            } => Operator::new(
                services::Azblob::default()
                    .endpoint(endpoint)
                    .account_name(account_name)
                    .account_key(account_key.expose())
                    .container(container)
                    .root(&root_of(prefix)),
            ),
            StorageConfig::Sftp {
                endpoint,
                user,
                key_path,
                root,
                host_key,
            } => {
                let endpoint = if endpoint.starts_with("ssh://") {
                    endpoint.clone()
                } else {
                    format!("ssh://{endpoint}")
                };
                Operator::new(
                    services::Sftp::default()
                        .endpoint(&endpoint)
                        .user(user)
                        .key(&key_path.to_string_lossy())
                        .root(&root_of(root))
                        .known_hosts_strategy(match host_key {
                            HostKeyPolicy::Strict => "strict",
                            HostKeyPolicy::AcceptAny => "accept",
                        }),
                )
            }
        }
        .map_err(build_err)?;
        Ok(OpendalStore {
            op,
            description,
            step_timeout: DEFAULT_STEP_TIMEOUT,
        })
    }

    /// Sets the limit for each step of a storage call (default 60 s).
    pub fn with_step_timeout(mut self, limit: Duration) -> Self {
        self.step_timeout = limit;
        self
    }

    async fn step<T>(
        &self,
        op: &str,
        key: &str,
        fut: impl Future<Output = opendal::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.step_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(op, key, &self.description, &e)),
            Err(_) => Err(StoreError::new(
                StoreErrorKind::Unreachable,
                format!(
                    "{op} {key} on {} timed out after {} s: check that the storage is reachable; callrec retries",
                    self.description,
                    self.step_timeout.as_secs()
                ),
            )),
        }
    }

    async fn check_range(&self, key: &ObjectKey, range: &Range<u64>) -> Result<(), StoreError> {
        let size = self.size(key).await?;
        if range.start > range.end || range.end > size {
            return Err(StoreError::new(
                StoreErrorKind::InvalidRequest,
                format!(
                    "read {key} on {}: range {}..{} is outside the object's {size} bytes",
                    self.description, range.start, range.end
                ),
            ));
        }
        Ok(())
    }
}

/// Shortens a backend message so that an error stays readable, keeping
/// the backend's own explanation (after the last `=>`) whole.
fn short(detail: &str) -> String {
    fn cut(s: &str, max: usize) -> String {
        if s.len() <= max {
            return s.to_owned();
        }
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
    let one_line = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.rsplit_once(" => ") {
        Some((head, cause)) => format!("{} => {}", cut(head, 200), cut(cause, 300)),
        None => cut(&one_line, 400),
    }
}

/// Turns an OpenDAL error into a [`StoreError`] saying what failed and what
/// to do.
fn classify(op: &str, key: &str, where_: &str, e: &opendal::Error) -> StoreError {
    let detail = e.to_string();
    let has = |needles: &[&str]| needles.iter().any(|n| detail.contains(n));
    let (kind, what) = match e.kind() {
        // OpenDAL reports a missing bucket as NotFound or ConfigInvalid.
        _ if has(&[
            "NoSuchBucket",
            "ContainerNotFound",
            "bucket does not exist",
            "The specified bucket",
            "The specified container",
        ]) =>
        {
            (
                StoreErrorKind::BucketNotFound,
                "the bucket or container does not exist: create it or correct its name in the storage settings",
            )
        }
        ErrorKind::NotFound => (StoreErrorKind::NotFound, "no such object"),
        ErrorKind::PermissionDenied
            if has(&[
                "InvalidAccessKeyId",
                "NotSignedUp",
                "AuthorizationFailure",
                "failed to authenticate",
                "InvalidSecurity",
                "InvalidToken",
                "SignatureDoesNotMatch",
                "AuthenticationFailed",
                "InvalidAuthenticationInfo",
                "invalid_grant",
                "AccessDenied: invalid",
            ]) =>
        {
            (
                StoreErrorKind::Credentials,
                "the storage rejected the credentials: check the access key and secret in the storage settings",
            )
        }
        ErrorKind::PermissionDenied => (
            StoreErrorKind::PermissionDenied,
            "permission denied: give the storage account read, write and delete rights on this bucket or path",
        ),
        ErrorKind::ConfigInvalid => (
            StoreErrorKind::InvalidConfig,
            "the storage settings are invalid: correct them",
        ),
        ErrorKind::RangeNotSatisfied => (
            StoreErrorKind::InvalidRequest,
            "the range is outside the object",
        ),
        ErrorKind::IsADirectory | ErrorKind::NotADirectory => (
            StoreErrorKind::PermissionDenied,
            "a path on the storage is a directory where a file is expected (or the reverse): fix or remove it",
        ),
        _ if has(&["signing http request", "private key", "PrivateKey"]) => (
            StoreErrorKind::Credentials,
            "the credential cannot be used to sign requests: paste the whole service-account key (json) again",
        ),
        _ if has(&["ssh error"]) => (
            StoreErrorKind::Unreachable,
            "could not log in to the sftp server: check the endpoint, the user, and that the key is in the server's authorized_keys (and its host key in known_hosts)",
        ),
        _ if has(&[
            "Permission denied (publickey",
            "Permission denied, please try again",
        ]) =>
        {
            (
                StoreErrorKind::Credentials,
                "the sftp server refused the key: check the user and that the key is in its authorized_keys",
            )
        }
        _ if has(&["ermission denied"]) => (
            StoreErrorKind::PermissionDenied,
            "permission denied: give the storage account write rights on this path",
        ),
        _ if e.is_temporary()
            || has(&[
                "send http request",
                "onnection refused",
                "onnection reset",
                "timed out",
                "dns error",
                "failed to connect",
                "error sending request",
                "Connection closed",
                "ssh",
            ]) =>
        {
            (
                StoreErrorKind::Unreachable,
                "the storage cannot be reached: check the endpoint and that the storage is running; callrec retries",
            )
        }
        _ => (StoreErrorKind::Other, "the storage reported an error"),
    };
    StoreError::new(
        kind,
        format!("{op} {key} on {where_} failed: {what} ({})", short(&detail)),
    )
}

/// Streams a local file in pieces, for an upload.
pub(crate) async fn file_stream(path: &Path) -> Result<ByteStream, StoreError> {
    let io_err = |path: &Path, e: std::io::Error| {
        StoreError::new(
            StoreErrorKind::LocalIo,
            format!("cannot read {} for upload: {e}", path.display()),
        )
    };
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| io_err(path, e))?;
    let path = path.to_owned();
    let stream = futures::stream::try_unfold((file, path), move |(mut file, path)| async move {
        let mut buf = vec![0u8; FILE_READ_CHUNK];
        let n = file.read(&mut buf).await.map_err(|e| io_err(&path, e))?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Bytes::from(buf), (file, path))))
    });
    Ok(Box::pin(stream))
}

#[async_trait::async_trait]
impl RecordingStore for OpendalStore {
    fn describe(&self) -> String {
        self.description.clone()
    }

    async fn put_stream(
        &self,
        key: &ObjectKey,
        mut body: ByteStream,
    ) -> Result<PutReceipt, StoreError> {
        let k = key.as_str();
        let mut writer = self
            .step(
                "write",
                k,
                self.op.writer_with(k).chunk(WRITE_CHUNK).into_future(),
            )
            .await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    hasher.update(&bytes);
                    size += bytes.len() as u64;
                    if let Err(e) = self.step("write", k, writer.write(bytes)).await {
                        failure = Some(e);
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if failure.is_none()
            && let Err(e) = self.step("write", k, writer.close()).await
        {
            failure = Some(e);
        }
        if let Some(e) = failure {
            // Best effort: the object may stay partial; delivery verifies anyway.
            let _ = tokio::time::timeout(self.step_timeout, writer.abort()).await;
            return Err(e);
        }
        Ok(PutReceipt {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    async fn stat(&self, key: &ObjectKey) -> Result<ObjectStat, StoreError> {
        // No backend reports a sha256 through OpenDAL 0.59: read it back.
        let mut stream = self.read_stream(key, None).await?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            hasher.update(&chunk);
            size += chunk.len() as u64;
        }
        Ok(ObjectStat {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    }

    async fn size(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        let k = key.as_str();
        let meta = self.step("stat", k, self.op.stat(k)).await?;
        if meta.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::NotFound,
                format!(
                    "stat {k} on {}: it is a directory, not a recording",
                    self.description
                ),
            ));
        }
        Ok(meta.content_length())
    }

    async fn read_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes, StoreError> {
        self.check_range(key, &range).await?;
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let k = key.as_str();
        let want = range.end - range.start;
        let buf = self
            .step("read", k, self.op.read_with(k).range(range).into_future())
            .await?;
        let bytes = buf.to_bytes();
        if bytes.len() as u64 != want {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "read {k} on {}: got {} bytes where {want} were asked for; try again",
                    self.description,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    async fn read_stream(
        &self,
        key: &ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<ByteStream, StoreError> {
        let k = key.as_str().to_owned();
        if let Some(r) = &range {
            self.check_range(key, r).await?;
        }
        let reader = self
            .step(
                "read",
                &k,
                self.op.reader_with(&k).chunk(FILE_READ_CHUNK).into_future(),
            )
            .await?;
        let stream = match range {
            Some(r) => self.step("read", &k, reader.into_bytes_stream(r)).await?,
            None => self.step("read", &k, reader.into_bytes_stream(..)).await?,
        };
        let where_ = self.description.clone();
        let limit = self.step_timeout;
        // Each chunk gets the step timeout too: a stalled read fails, not hangs.
        let stream = futures::stream::try_unfold(stream, move |mut s| {
            let k = k.clone();
            let where_ = where_.clone();
            async move {
                match tokio::time::timeout(limit, s.try_next()).await {
                    Ok(Ok(Some(b))) => Ok(Some((b, s))),
                    Ok(Ok(None)) => Ok(None),
                    Ok(Err(e)) => Err(StoreError::new(
                        StoreErrorKind::Unreachable,
                        format!("read {k} on {where_} failed midway: {e}; try again"),
                    )),
                    Err(_) => Err(StoreError::new(
                        StoreErrorKind::Unreachable,
                        format!(
                            "read {k} on {where_} stalled for {} s; try again",
                            limit.as_secs()
                        ),
                    )),
                }
            }
        });
        Ok(Box::pin(stream))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let k = key.as_str();
        match self.step("delete", k, self.op.delete(k)).await {
            Err(e) if e.kind() == StoreErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        if !(prefix.is_empty() || prefix.ends_with('/')) || prefix.starts_with('/') {
            return Err(StoreError::new(
                StoreErrorKind::InvalidRequest,
                format!("list {prefix:?}: a prefix is empty or a relative folder ending in '/'"),
            ));
        }
        let path = if prefix.is_empty() { "/" } else { prefix };
        let entries = match self
            .step(
                "list",
                path,
                self.op.list_with(path).recursive(true).into_future(),
            )
            .await
        {
            Ok(entries) => entries,
            Err(e) if e.kind() == StoreErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            if !entry.metadata().is_file() {
                continue;
            }
            let key = ObjectKey::new(entry.path().trim_start_matches('/'))?;
            let mut size = entry.metadata().content_length();
            if size == 0 {
                // Some listers (fs, sftp) give no length: ask.
                size = self.size(&key).await?;
            }
            out.push(ListedObject { key, size });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}
