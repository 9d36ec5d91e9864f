//! The delivery worker: takes finished recordings from the spool to the
//! recording store, verifies them there (size and sha256 as the store reports
//! them), and only then marks them delivered in the catalog and removes the
//! spool copy. Also retention: deleting recordings delivered more than N days
//! ago, keeping their rows and an audit entry.
//!
//! The media path never waits for this worker: it only calls
//! [`DeliveryHandle::notify`], which never blocks (a bounded channel; when it
//! is full the notification is dropped and the periodic catalog scan finds
//! the recording anyway). Failures are retried forever with exponential
//! backoff and jitter; each one is visible in the catalog (status `failed`,
//! attempt count, last error, next attempt time).
//!
//! This module must never remove a spool copy before the store has reported
//! the same size and sha256 as the spool holds, and never put a credential
//! in the catalog (store errors carry none).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callrec_catalog::{
    AuditAction, Catalog, CatalogChange, CatalogError, ChangeOutcome, GroupCommit, NewAuditEntry,
    Recording, RecordingId, RecordingStatus, SpooledAudio, StatusQuery, StorageLocation,
    UnixMillis,
};
use tokio::sync::{Semaphore, mpsc};

use crate::spool::{Spool, SpoolError, SpooledRecording};
use crate::store::{ObjectKey, RecordingStore, StoreError, StoredCallId};

/// How the worker behaves. The defaults suit one node of a contact center.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Uploads at the same time (a semaphore). Default 4.
    pub concurrency: usize,
    /// Capacity of the notification channel from the media path. When full,
    /// [`DeliveryHandle::notify`] drops the notification (it never blocks)
    /// and the recording is found by the next scan. Default 1024.
    pub queue_capacity: usize,
    /// How often the catalog is scanned for due recordings (new, failed and
    /// due again, or dropped from a full channel). Default 5 s.
    pub scan_interval: Duration,
    /// How many recordings one scan takes at most. Default 200.
    pub scan_batch: u32,
    /// The first retry delay; doubles per failed attempt. Default 2 s.
    pub backoff_base: Duration,
    /// The longest retry delay. Default 15 min.
    pub backoff_max: Duration,
    /// The backend name written in the catalog's storage location.
    pub backend_name: String,
    /// Delete from storage the recordings delivered more than this many days
    /// ago; `None` keeps them forever. Default `None`.
    pub retention_days: Option<u32>,
    /// How often retention runs. Default 1 h.
    pub retention_interval: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 4,
            queue_capacity: 1024,
            scan_interval: Duration::from_secs(5),
            scan_batch: 200,
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(15 * 60),
            backend_name: "local".into(),
            retention_days: None,
            retention_interval: Duration::from_secs(3600),
        }
    }
}

/// What can stop the worker or a step of it.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The catalog failed.
    #[error("delivery could not use the catalog: {0}")]
    Catalog(#[from] CatalogError),
    /// The spool failed.
    #[error("delivery could not use the spool: {0}")]
    Spool(#[from] SpoolError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// What the store holds differs from the spool copy.
    #[error(
        "verification of {key} failed: storage holds {got_size} bytes with sha256 {got_sha}, the spool has {want_size} bytes with sha256 {want_sha}; the upload is retried"
    )]
    Mismatch {
        /// The object.
        key: String,
        /// What the store reported.
        got_size: u64,
        /// What the store reported.
        got_sha: String,
        /// What the spool holds.
        want_size: u64,
        /// What the spool holds.
        want_sha: String,
    },
    /// The spool copy of a recording waiting for delivery is gone.
    #[error(
        "the spool copy of recording {0} is missing and storage does not hold it: the audio is lost; check the spool directory"
    )]
    SpoolCopyMissing(String),
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Uploaded, verified, marked delivered, spool copy removed.
    Delivered,
    /// Failed; retried at the given time.
    Failed {
        /// Why (already in the catalog as `last_error`).
        error: String,
        /// When it is retried.
        next_attempt_at: UnixMillis,
    },
    /// Not ours to deliver now (another worker claimed it, or it is not due).
    Skipped,
}

/// What [`DeliveryWorker::startup`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupReport {
    /// Recordings cut off by the crash, repaired and marked partial.
    pub repaired_partial: usize,
    /// Recordings found `uploading` (interrupted) and put back to `spooled`.
    pub requeued: usize,
    /// Recordings made `spooled` in the catalog from the spool (finalizing
    /// when the process died).
    pub spooled_from_spool: usize,
    /// Spool copies of recordings already delivered or deleted, removed.
    pub stale_removed: usize,
    /// Finished recordings in the spool, now waiting for delivery.
    pub waiting: usize,
}

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Recordings deleted from storage and marked deleted.
    pub deleted: usize,
    /// Recordings whose deletion failed (retried next run).
    pub failed: usize,
}

/// The media path's side of the worker: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct DeliveryHandle {
    tx: mpsc::Sender<RecordingId>,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dropped_notifications: AtomicU64,
    /// Successful uploads (audio, metadata and verification) by duration:
    /// one count per bucket of [`UPLOAD_BUCKETS_MS`] it fits, plus +Inf.
    upload_buckets: [AtomicU64; UPLOAD_BUCKETS_MS.len() + 1],
    upload_ms_sum: AtomicU64,
}

/// Upper bounds, in milliseconds, of the upload-duration histogram.
pub const UPLOAD_BUCKETS_MS: [u64; 10] =
    [25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 60_000];

impl Counters {
    fn observe_upload(&self, took: Duration) {
        let ms = took.as_millis() as u64;
        let k = UPLOAD_BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(UPLOAD_BUCKETS_MS.len());
        self.upload_buckets[k].fetch_add(1, Ordering::Relaxed);
        self.upload_ms_sum.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Counters since the worker was built, for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryStats {
    /// Recordings delivered and verified.
    pub delivered: u64,
    /// Delivery attempts that failed (each is retried).
    pub failed_attempts: u64,
    /// Notifications dropped because the channel was full (those
    /// recordings are delivered after the next scan).
    pub dropped_notifications: u64,
    /// Successful uploads per duration bucket (not cumulative): index `k`
    /// counts uploads that took at most [`UPLOAD_BUCKETS_MS`]`[k]` and more
    /// than the bucket before; the last index, longer than every bound.
    pub upload_buckets: [u64; UPLOAD_BUCKETS_MS.len() + 1],
    /// Sum of the durations of successful uploads, in milliseconds.
    pub upload_ms_sum: u64,
}

impl DeliveryHandle {
    /// Tells the worker a recording was spooled. Never waits: if the channel
    /// is full (or the worker stopped) the notification is dropped and the
    /// periodic scan delivers the recording. Returns whether it was queued.
    pub fn notify(&self, id: RecordingId) -> bool {
        let queued = self.tx.try_send(id).is_ok();
        if !queued {
            self.counters
                .dropped_notifications
                .fetch_add(1, Ordering::Relaxed);
        }
        queued
    }

    /// The worker's counters now.
    pub fn stats(&self) -> DeliveryStats {
        DeliveryStats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed_attempts: self.counters.failed_attempts.load(Ordering::Relaxed),
            dropped_notifications: self.counters.dropped_notifications.load(Ordering::Relaxed),
            upload_buckets: std::array::from_fn(|k| {
                self.counters.upload_buckets[k].load(Ordering::Relaxed)
            }),
            upload_ms_sum: self.counters.upload_ms_sum.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    store: Arc<dyn RecordingStore>,
    catalog: Arc<dyn Catalog>,
    spool: Spool,
    config: DeliveryConfig,
    in_flight: Mutex<HashSet<RecordingId>>,
    counters: Arc<Counters>,
    /// The group commit of the uploads' catalog writes (started on first
    /// use, inside the runtime).
    commits: std::sync::OnceLock<GroupCommit>,
}

impl Shared {
    fn commits(&self) -> &GroupCommit {
        self.commits
            .get_or_init(|| GroupCommit::spawn(self.catalog.clone(), 256))
    }
}

/// The upload worker. Build it, call [`startup`](Self::startup) once, then
/// [`run`](Self::run) until shutdown.
pub struct DeliveryWorker {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<RecordingId>,
    handle: DeliveryHandle,
}

fn now() -> UnixMillis {
    UnixMillis::now()
}

/// The delay before retry number `attempts` (1 = after the first failure):
/// `base * 2^(attempts-1)`, at most `max`, times a random factor in
/// [0.5, 1.0) so that many recordings failing together do not retry together.
pub fn backoff(attempts: u32, base: Duration, max: Duration) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    full.mul_f64(0.5 + fastrand::f64() * 0.5)
}

impl DeliveryWorker {
    /// A worker delivering from `spool` to `store`, recording in `catalog`.
    pub fn new(
        store: Arc<dyn RecordingStore>,
        catalog: Arc<dyn Catalog>,
        spool: Spool,
        config: DeliveryConfig,
    ) -> Self {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        DeliveryWorker {
            shared: Arc::new(Shared {
                store,
                catalog,
                spool,
                config,
                in_flight: Mutex::new(HashSet::new()),
                counters: counters.clone(),
                commits: std::sync::OnceLock::new(),
            }),
            rx,
            handle: DeliveryHandle { tx, counters },
        }
    }

    /// The handle the media path notifies.
    pub fn handle(&self) -> DeliveryHandle {
        self.handle.clone()
    }

    /// After a (re)start, before any call is taken: repairs what a crash cut
    /// off in the spool, and brings the catalog in line with the spool so
    /// that every recording in the spool is delivered.
    pub async fn startup(&self) -> Result<StartupReport, DeliveryError> {
        let s = &self.shared;
        let spool = s.spool.clone();
        let recovered = tokio::task::spawn_blocking(move || spool.recover())
            .await
            .expect("spool recovery panicked")?;
        let mut report = StartupReport {
            repaired_partial: recovered.iter().filter(|r| r.partial.is_some()).count(),
            ..StartupReport::default()
        };
        let spool = s.spool.clone();
        let entries = tokio::task::spawn_blocking(move || spool.list())
            .await
            .expect("spool listing panicked")?;
        for entry in entries {
            let Ok(uuid) = entry.recording_id.parse() else {
                tracing::error!(call_id = %entry.call_id, "spool entry without a valid recording id kept");
                continue;
            };
            let id = RecordingId(uuid);
            let rec = match s.catalog.get_recording(id).await {
                Ok(r) => r,
                Err(CatalogError::NotFound { .. }) => {
                    tracing::error!(call_id = %entry.call_id, "spool entry unknown to the catalog kept");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            use RecordingStatus::*;
            match rec.status {
                Recording | Paused => {
                    s.catalog
                        .transition(
                            id,
                            &[Recording, Paused],
                            Finalizing,
                            "callrec restarted during the call",
                            now(),
                        )
                        .await?;
                    mark_spooled_in(s, id, &entry).await?;
                    report.spooled_from_spool += 1;
                }
                Finalizing => {
                    mark_spooled_in(s, id, &entry).await?;
                    report.spooled_from_spool += 1;
                }
                Uploading => {
                    s.catalog
                        .transition(
                            id,
                            &[Uploading],
                            Spooled,
                            "upload interrupted by a restart; retried",
                            now(),
                        )
                        .await?;
                    report.requeued += 1;
                }
                Spooled | Failed => {}
                Delivered | Deleted | Declined => {
                    let spool = s.spool.clone();
                    let call_id = entry.call_id.clone();
                    tokio::task::spawn_blocking(move || spool.remove(&call_id))
                        .await
                        .expect("spool removal panicked")?;
                    report.stale_removed += 1;
                    continue;
                }
            }
            report.waiting += 1;
        }
        Ok(report)
    }

    /// Runs until `shutdown` resolves: takes notifications, scans the catalog
    /// every `scan_interval`, delivers with at most `concurrency` uploads at
    /// once, and runs retention every `retention_interval` if configured.
    /// Uploads in progress at shutdown are abandoned: their recordings stay
    /// `uploading` and [`startup`](Self::startup) puts them back.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let s = self.shared.clone();
        let permits = Arc::new(Semaphore::new(s.config.concurrency.max(1)));
        let mut scan = tokio::time::interval(s.config.scan_interval);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retention = tokio::time::interval(s.config.retention_interval);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let batch: Vec<RecordingId> = tokio::select! {
                _ = &mut shutdown => break,
                Some(id) = self.rx.recv() => {
                    // Take every notification queued: one pass of this loop
                    // per recording would let a loaded scheduler pace the
                    // deliveries (each pass waits its turn behind the calls).
                    let mut ids = vec![id];
                    while let Ok(id) = self.rx.try_recv() {
                        ids.push(id);
                    }
                    ids
                }
                _ = scan.tick() => match due(&s).await {
                    Ok(ids) => ids,
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery scan failed; retried at the next scan");
                        Vec::new()
                    }
                },
                _ = retention.tick(), if s.config.retention_days.is_some() => {
                    if let Err(e) = apply_retention(&s, now()).await {
                        tracing::warn!(error = %e, "retention run failed; retried at the next run");
                    }
                    Vec::new()
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => Vec::new(),
            };
            for id in batch {
                if !s.in_flight.lock().expect("in-flight set").insert(id) {
                    continue;
                }
                // The task waits for its permit (in order), not this loop.
                let permits = permits.clone();
                let s = s.clone();
                tasks.spawn(async move {
                    let permit = permits.acquire_owned().await.expect("semaphore never closed");
                    let result = deliver(&s, id).await;
                    if let Err(e) = &result {
                        tracing::warn!(recording = %id.0, error = %e, "delivery attempt could not be recorded; retried at the next scan");
                    }
                    s.in_flight.lock().expect("in-flight set").remove(&id);
                    drop(permit);
                });
            }
        }
        tasks.abort_all();
    }

    /// One delivery attempt of one recording, now (for tests and tools).
    pub async fn deliver_now(&self, id: RecordingId) -> Result<Outcome, DeliveryError> {
        deliver(&self.shared, id).await
    }

    /// One retention run as of `now` (for tests and tools).
    pub async fn retention_now(&self, now: UnixMillis) -> Result<RetentionReport, DeliveryError> {
        apply_retention(&self.shared, now).await
    }
}

async fn mark_spooled_in(
    s: &Shared,
    id: RecordingId,
    entry: &SpooledRecording,
) -> Result<Recording, DeliveryError> {
    mark_spooled(s.catalog.as_ref(), id, entry).await
}

/// Records in the catalog that the recording `id` is finished in the spool
/// (path, size, sha256, duration, partial) and due for delivery at once:
/// what the media path calls after [`Spool::finish`], before notifying.
pub async fn mark_spooled(
    catalog: &dyn Catalog,
    id: RecordingId,
    entry: &SpooledRecording,
) -> Result<Recording, DeliveryError> {
    let (audio, reason) = spooled_audio(entry);
    Ok(catalog.mark_spooled(id, &audio, &reason, now()).await?)
}

/// [`mark_spooled`] as a change for a batch
/// ([`Catalog::apply_changes`]); notify the worker once it is committed.
pub fn spooled_change(id: RecordingId, entry: &SpooledRecording) -> CatalogChange {
    let (audio, reason) = spooled_audio(entry);
    CatalogChange::MarkSpooled {
        id,
        audio,
        reason,
        at: now(),
    }
}

/// The catalog's facts of a spool entry, and the reason of its status.
fn spooled_audio(entry: &SpooledRecording) -> (SpooledAudio, String) {
    let reason = match &entry.partial {
        Some(why) => format!("spooled as partial: {why}"),
        None => "spooled".to_owned(),
    };
    let audio = SpooledAudio {
        spool_path: entry.audio_path.to_string_lossy().into_owned(),
        size_bytes: entry.audio_size,
        sha256: entry.audio_sha256.clone(),
        duration_ms: entry.duration_ms,
        partial: entry.partial.is_some(),
    };
    (audio, reason)
}

async fn due(s: &Shared) -> Result<Vec<RecordingId>, DeliveryError> {
    let found = s
        .catalog
        .find_by_status(&StatusQuery {
            statuses: vec![RecordingStatus::Spooled, RecordingStatus::Failed],
            due_by: Some(now()),
            limit: s.config.scan_batch,
        })
        .await?;
    Ok(found.into_iter().map(|r| r.id).collect())
}

/// The metadata key beside an audio key (`.../<call-id>.json`).
fn metadata_key_of(audio_key: &str) -> Option<ObjectKey> {
    let (stem, _) = audio_key.rsplit_once('.')?;
    ObjectKey::new(format!("{stem}.json")).ok()
}

/// One delivery attempt: claims the recording (spooled or failed →
/// uploading; of several workers or nodes exactly one gets it), uploads,
/// verifies, marks delivered, removes the spool copy. A failure after the
/// claim is recorded in the catalog with the next attempt time; `Err` only
/// when the catalog itself could not be updated. The claim and "delivered"
/// go through the group commit, so the uploads running together share
/// commits.
async fn deliver(s: &Shared, id: RecordingId) -> Result<Outcome, DeliveryError> {
    use RecordingStatus::*;
    let claim = CatalogChange::Transition {
        id,
        from: vec![Spooled, Failed],
        to: Uploading,
        reason: "upload started".to_owned(),
        at: now(),
    };
    match s.commits().apply(claim).await {
        Ok(ChangeOutcome::Recording(rec)) => upload_claimed(s, *rec).await,
        Ok(_) => Ok(Outcome::Skipped),
        Err(CatalogError::StatusMismatch { .. }) | Err(CatalogError::NotFound { .. }) => {
            Ok(Outcome::Skipped)
        }
        Err(e) => Err(e.into()),
    }
}

/// Uploads and verifies a recording this worker claimed, and records the
/// outcome.
async fn upload_claimed(s: &Shared, rec: Recording) -> Result<Outcome, DeliveryError> {
    let id = rec.id;
    let started = std::time::Instant::now();
    match upload_and_verify(s, &rec).await {
        Ok(location) => {
            s.counters.observe_upload(started.elapsed());
            s.commits()
                .apply(CatalogChange::MarkDelivered {
                    id,
                    location: location.clone(),
                    at: now(),
                })
                .await?;
            let spool = s.spool.clone();
            let call_id = StoredCallId::new(rec.call_id.as_str())?;
            // Delivered is recorded: if the removal fails, startup removes it.
            match tokio::task::spawn_blocking(move || spool.remove(&call_id)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "delivered, but the spool copy could not be removed; removed at the next start")
                }
                Err(e) => tracing::warn!(error = %e, "spool removal task failed"),
            }
            s.counters.delivered.fetch_add(1, Ordering::Relaxed);
            tracing::info!(recording = %id.0, key = %location.key, "recording delivered and verified");
            Ok(Outcome::Delivered)
        }
        Err(e) => {
            let error = e.to_string();
            let delay = backoff(
                rec.attempts + 1,
                s.config.backoff_base,
                s.config.backoff_max,
            );
            let next = now().plus_millis(delay.as_millis() as i64);
            s.catalog
                .record_attempt_failure(id, &error, next, now())
                .await?;
            s.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(recording = %id.0, attempt = rec.attempts + 1, retry_in_ms = delay.as_millis() as u64, error = %error, "delivery failed; retried later");
            Ok(Outcome::Failed {
                error,
                next_attempt_at: next,
            })
        }
    }
}

async fn upload_and_verify(s: &Shared, rec: &Recording) -> Result<StorageLocation, DeliveryError> {
    let call_id = StoredCallId::new(rec.call_id.as_str())?;
    let spool = s.spool.clone();
    let cid = call_id.clone();
    let entry = tokio::task::spawn_blocking(move || spool.get(&cid))
        .await
        .expect("spool read panicked")?;
    let Some(entry) = entry else {
        // Removed after a delivery whose catalog update was lost? Then the
        // store holds exactly what the catalog recorded.
        return already_delivered(s, rec)
            .await?
            .ok_or_else(|| DeliveryError::SpoolCopyMissing(rec.id.0.to_string()));
    };
    let keys = entry.keys();
    // Audio first, metadata after (SPEC: the json is written after the audio).
    let sent = s.store.put_file(&keys.audio, &entry.audio_path).await?;
    check(
        &keys.audio,
        sent.size,
        &sent.sha256,
        entry.audio_size,
        &entry.audio_sha256,
    )?;
    let meta_sent = s
        .store
        .put_file(&keys.metadata, &entry.metadata_path)
        .await?;
    let got = s.store.stat(&keys.audio).await?;
    check(
        &keys.audio,
        got.size,
        &got.sha256,
        entry.audio_size,
        &entry.audio_sha256,
    )?;
    let got_meta = s.store.stat(&keys.metadata).await?;
    check(
        &keys.metadata,
        got_meta.size,
        &got_meta.sha256,
        meta_sent.size,
        &meta_sent.sha256,
    )?;
    Ok(StorageLocation {
        backend: s.config.backend_name.clone(),
        key: keys.audio.to_string(),
    })
}

/// If the spool copy is gone, whether storage holds what the catalog says
/// was spooled (a delivery whose catalog update was lost).
async fn already_delivered(
    s: &Shared,
    rec: &Recording,
) -> Result<Option<StorageLocation>, DeliveryError> {
    let (Some(size), Some(sha)) = (rec.size_bytes, &rec.sha256) else {
        return Ok(None);
    };
    let call = s.catalog.get_call(&rec.call_id).await?;
    let Some(started) = call.started_at.to_offset_date_time() else {
        return Ok(None);
    };
    let format = match rec.format {
        callrec_catalog::RecordingFormat::Wav => callrec_media::encode::Format::Wav,
        _ => callrec_media::encode::Format::Mp3,
    };
    let keys = crate::store::RecordingKeys::new(
        &StoredCallId::new(rec.call_id.as_str())?,
        started,
        format,
    );
    match s.store.stat(&keys.audio).await {
        Ok(got) if got.size == size && &got.sha256 == sha => Ok(Some(StorageLocation {
            backend: s.config.backend_name.clone(),
            key: keys.audio.to_string(),
        })),
        _ => Ok(None),
    }
}

fn check(
    key: &ObjectKey,
    got_size: u64,
    got_sha: &str,
    want_size: u64,
    want_sha: &str,
) -> Result<(), DeliveryError> {
    if got_size == want_size && got_sha == want_sha {
        Ok(())
    } else {
        Err(DeliveryError::Mismatch {
            key: key.to_string(),
            got_size,
            got_sha: got_sha.to_owned(),
            want_size,
            want_sha: want_sha.to_owned(),
        })
    }
}

async fn apply_retention(s: &Shared, now: UnixMillis) -> Result<RetentionReport, DeliveryError> {
    let Some(days) = s.config.retention_days else {
        return Ok(RetentionReport::default());
    };
    let cutoff = now.plus_millis(-(i64::from(days) * 86_400_000));
    let mut report = RetentionReport::default();
    for rec in s.catalog.delivered_before(cutoff, 500).await? {
        let Some(location) = &rec.location else {
            continue;
        };
        let result: Result<(), StoreError> = async {
            let audio = ObjectKey::new(location.key.clone())?;
            if let Some(meta) = metadata_key_of(&location.key) {
                s.store.delete(&meta).await?;
            }
            s.store.delete(&audio).await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(recording = %rec.id.0, error = %e, "retention could not delete; retried next run");
            report.failed += 1;
            continue;
        }
        s.catalog
            .mark_deleted(
                rec.id,
                &format!("retention: delivered more than {days} days ago"),
                &NewAuditEntry {
                    at: now,
                    actor: "system".into(),
                    action: AuditAction::RetentionDelete,
                    target: format!("recording/{}", rec.id.0),
                    detail: serde_json::json!({
                        "key": location.key,
                        "backend": location.backend,
                        "delivered_at": rec.delivered_at.map(|t| t.as_i64()),
                        "retention_days": days,
                    }),
                },
            )
            .await?;
        report.deleted += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(900);
        for (attempts, full) in [(1, 2), (2, 4), (3, 8), (9, 512), (10, 900), (40, 900)] {
            for _ in 0..50 {
                let d = backoff(attempts, base, max);
                let full = Duration::from_secs(full);
                assert!(d >= full / 2 && d <= full, "attempt {attempts}: {d:?}");
            }
        }
    }
}
