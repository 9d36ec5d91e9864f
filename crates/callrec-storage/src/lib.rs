//! Where recordings go after a call: the recording store over OpenDAL (local
//! directory, S3-compatible, GCS, Azure Blob, SFTP), the connection test, the
//! local spool that holds every finished recording until it is delivered, and
//! the delivery worker that uploads, verifies and only then forgets.
//!
//! Invariant: a recording accepted into the spool leaves it only after the
//! store reported the same size and sha256 that the spool holds. Nothing in
//! this crate logs or returns a credential.

pub mod backend;
pub mod config;
pub mod delivery;
pub mod handle;
pub mod probe;
pub mod secret;
pub mod spool;
pub mod store;

pub use backend::{OpendalStore, open_store};
pub use config::{ConfigError, HostKeyPolicy, StorageConfig};
pub use handle::StoreHandle;
pub use probe::{ConnectionReport, ConnectionTestError, ProbeStep, test_connection};
pub use secret::Secret;
pub use spool::{Recovered, Spool, SpoolError, SpooledRecording};

pub use store::{
    ByteStream, ListedObject, ObjectKey, ObjectStat, PutReceipt, RecordingKeys, RecordingStore,
    StoreError, StoreErrorKind, StoredCallId,
};
