//! The delivery worker against real peers: storage outages (S3 server down,
//! then up; killed in the middle of uploads), a worker dropped mid-delivery
//! and a new one on the same spool and catalog, a WAV cut off by a crash, and
//! bad storage settings. The catalog is the real SQLite catalog.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use callrec_catalog::{
    CallId, Catalog, Direction, NewCall, NewRecording, Recording, RecordingFormat, RecordingId,
    RecordingStatus, SqlCatalog, UnixMillis,
};
use callrec_media::encode::{Format, wav};
use callrec_storage::delivery::{DeliveryConfig, DeliveryHandle, DeliveryWorker};
use callrec_storage::{
    ByteStream, ListedObject, ObjectKey, ObjectStat, PutReceipt, RecordingStore, Spool, StoreError,
    StoreErrorKind, StoredCallId, open_store,
};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A WAV of `frames` stereo frames with a tone that differs per `seed`.
fn make_wav(frames: usize, seed: u32) -> Vec<u8> {
    let mut out = wav::header((frames * 4) as u64).to_vec();
    for i in 0..frames {
        let l = ((i as u32).wrapping_mul(seed + 3) % 2000) as i16 - 1000;
        let r = ((i as u32).wrapping_mul(seed + 7) % 3000) as i16 - 1500;
        out.extend_from_slice(&l.to_le_bytes());
        out.extend_from_slice(&r.to_le_bytes());
    }
    out
}

struct Env {
    dir: tempfile::TempDir,
    spool: Spool,
    catalog: Arc<SqlCatalog>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path().join("spool")).unwrap();
        let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
        let catalog = Arc::new(SqlCatalog::open(&url).await.unwrap());
        Env {
            dir,
            spool,
            catalog,
        }
    }

    fn worker(&self, store: Arc<dyn RecordingStore>, backend: &str) -> DeliveryWorker {
        self.worker_with(store, backend, 4)
    }

    fn worker_with(
        &self,
        store: Arc<dyn RecordingStore>,
        backend: &str,
        concurrency: usize,
    ) -> DeliveryWorker {
        DeliveryWorker::new(
            store,
            self.catalog.clone(),
            self.spool.clone(),
            DeliveryConfig {
                concurrency,
                scan_interval: Duration::from_millis(100),
                backoff_base: Duration::from_millis(50),
                backoff_max: Duration::from_millis(400),
                backend_name: backend.into(),
                ..DeliveryConfig::default()
            },
        )
    }

    /// A call and its recording, created in the catalog as the media path
    /// would (recording, then finalizing).
    async fn new_call(&self, call: &str) -> RecordingId {
        let started = UnixMillis(1_764_000_000_000); // 2025-11-24
        self.catalog
            .create_call(&NewCall {
                id: CallId::new(call).unwrap(),
                direction: Direction::Inbound,
                kind: "queue".into(),
                queue: Some("sales".into()),
                language: None,
                started_at: started,
                settings_version: None,
            })
            .await
            .unwrap();
        self.catalog
            .create_recording(&NewRecording {
                call_id: CallId::new(call).unwrap(),
                format: RecordingFormat::Wav,
                status: RecordingStatus::Recording,
                reason: "policy: record all".into(),
                created_at: started,
            })
            .await
            .unwrap()
            .id
    }

    /// A finished call: audio and metadata in the spool (fsynced), the
    /// catalog says spooled, the worker is notified. Returns the audio.
    async fn finished_call(
        &self,
        call: &str,
        frames: usize,
        seed: u32,
        handle: Option<&DeliveryHandle>,
    ) -> (RecordingId, Vec<u8>) {
        let id = self.new_call(call).await;
        let audio = make_wav(frames, seed);
        let src = self.dir.path().join(format!("{call}.src.wav"));
        std::fs::write(&src, &audio).unwrap();
        self.catalog
            .transition(
                id,
                &[RecordingStatus::Recording],
                RecordingStatus::Finalizing,
                "call ended",
                UnixMillis::now(),
            )
            .await
            .unwrap();
        let entry = self
            .spool
            .put(
                &StoredCallId::new(call).unwrap(),
                &id.0.to_string(),
                UnixMillis(1_764_000_000_000).to_offset_date_time().unwrap(),
                Format::Wav,
                &src,
                serde_json::json!({ "call_id": call, "direction": "inbound", "format": "wav" }),
            )
            .unwrap();
        std::fs::remove_file(&src).unwrap();
        callrec_storage::delivery::mark_spooled(self.catalog.as_ref(), id, &entry)
            .await
            .unwrap();
        if let Some(h) = handle {
            h.notify(id);
        }
        (id, audio)
    }

    async fn count(&self, status: RecordingStatus) -> u64 {
        self.catalog.count_by_status().await.unwrap()[&status]
    }

    /// Waits (checking, not timing) until `pred` holds on the status counts.
    async fn wait_for(&self, what: &str, pred: impl Fn(&HashMap<RecordingStatus, u64>) -> bool) {
        for _ in 0..3000 {
            let counts: HashMap<_, _> = self
                .catalog
                .count_by_status()
                .await
                .unwrap()
                .into_iter()
                .collect();
            if pred(&counts) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let counts = self.catalog.count_by_status().await.unwrap();
        panic!("gave up waiting for {what}: {counts:?}");
    }

    /// Waits (checking, not timing) until the worker is done with every
    /// recording it delivered: the catalog says delivered before the spool
    /// copy is removed and the counter counts it, so a status count alone
    /// can be seen a moment before the worker has finished.
    async fn wait_settled(&self, handle: Option<&DeliveryHandle>, delivered: u64) {
        for _ in 0..3000 {
            if self.spool_is_empty() && handle.is_none_or(|h| h.stats().delivered >= delivered) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "gave up waiting for the worker to finish: spool lists {:?}",
            self.spool.list()
        );
    }

    fn spool_is_empty(&self) -> bool {
        std::fs::read_dir(self.spool.dir())
            .unwrap()
            .next()
            .is_none()
    }
}

/// Everything delivered is in storage byte for byte, with its metadata, and
/// the catalog agrees.
async fn check_all_delivered(
    env: &Env,
    store: &dyn RecordingStore,
    expected: &[(RecordingId, Vec<u8>)],
) {
    assert!(
        env.spool.list().unwrap().is_empty(),
        "spool still lists recordings"
    );
    assert!(env.spool_is_empty(), "spool directory not empty");
    for (id, audio) in expected {
        let rec: Recording = env.catalog.get_recording(*id).await.unwrap();
        assert_eq!(rec.status, RecordingStatus::Delivered, "{rec:?}");
        assert_eq!(rec.sha256.as_deref(), Some(sha(audio).as_str()));
        assert_eq!(rec.size_bytes, Some(audio.len() as u64));
        assert!(rec.spool_path.is_none());
        let location = rec.location.expect("location set");
        let key = ObjectKey::new(location.key.clone()).unwrap();
        assert!(
            location.key.starts_with("recordings/2025/11/24/"),
            "{}",
            location.key
        );
        let got = store.stat(&key).await.unwrap();
        assert_eq!((got.size, got.sha256), (audio.len() as u64, sha(audio)));
        let meta_key = ObjectKey::new(location.key.replace(".wav", ".json")).unwrap();
        let meta = store
            .read_range(&meta_key, 0..store.size(&meta_key).await.unwrap())
            .await
            .unwrap();
        let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
        assert_eq!(meta["sha256"], sha(audio));
        assert_eq!(meta["partial"], false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_100_recordings_spooled_while_s3_is_down_then_all_delivered() {
    let env = Env::new().await;
    let mut server = common::S3Server::new("bucket"); // not started: storage is down
    let store = open_store(&server.config("bucket")).unwrap();
    let worker = env.worker(store.clone(), "s3");
    let handle = worker.handle();
    let mut expected = Vec::new();
    for i in 0..100 {
        expected.push(
            env.finished_call(&format!("out-{i:03}"), 2000 + i as usize, i, Some(&handle))
                .await,
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    // Every recording is tried and fails visibly while storage is down.
    let mut pending: Vec<RecordingId> = expected.iter().map(|(id, _)| *id).collect();
    for _ in 0..3000 {
        let mut still = Vec::new();
        for id in pending {
            let rec = env.catalog.get_recording(id).await.unwrap();
            if rec.attempts == 0 {
                still.push(id);
                continue;
            }
            assert_ne!(rec.status, RecordingStatus::Delivered);
            let err = rec.last_error.unwrap();
            assert!(err.contains("cannot be reached"), "{err}");
            assert!(
                !err.contains(common::S3_SECRET_KEY),
                "credential leaked: {err}"
            );
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        pending.is_empty(),
        "{} recordings never tried",
        pending.len()
    );
    assert_eq!(
        env.spool.list().unwrap().len(),
        100,
        "nothing left the spool"
    );
    let up = Instant::now();
    server.start();
    env.wait_for("100 delivered", |c| c[&RecordingStatus::Delivered] == 100)
        .await;
    env.wait_settled(Some(&handle), 100).await;
    eprintln!(
        "outage: 100 recordings delivered {:?} after s3 came back",
        up.elapsed()
    );
    let stats = handle.stats();
    assert_eq!(stats.delivered, 100, "{stats:?}");
    assert!(stats.failed_attempts >= 100, "{stats:?}");
    let _ = stop.send(());
    task.await.unwrap();
    check_all_delivered(&env, store.as_ref(), &expected).await;
    // And s3s-fs's own files hold the same bytes.
    let on_disk = std::fs::read(
        server
            .dir
            .path()
            .join("bucket/callrec/recordings/2025/11/24/out-042.wav"),
    )
    .unwrap();
    assert_eq!(sha(&on_disk), sha(&expected[42].1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_s3_killed_in_the_middle_of_uploads_then_restarted() {
    let env = Env::new().await;
    let mut server = common::S3Server::start_new("bucket");
    let store = open_store(&server.config("bucket")).unwrap();
    let worker = env.worker(store.clone(), "s3");
    let handle = worker.handle();
    let mut expected = Vec::new();
    for i in 0..100 {
        // 15 s of audio each (~480 kB): uploads take long enough to be cut.
        expected.push(
            env.finished_call(&format!("kill-{i:03}"), 120_000 + i as usize, i, None)
                .await,
        );
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    for (id, _) in &expected {
        handle.notify(*id);
    }
    env.wait_for("some delivered", |c| c[&RecordingStatus::Delivered] >= 5)
        .await;
    server.kill();
    let at_kill = env.count(RecordingStatus::Delivered).await;
    assert!(
        at_kill < 100,
        "all delivered before the kill: the test cut nothing"
    );
    env.wait_for("failures after the kill", |c| {
        c[&RecordingStatus::Failed] >= 1
    })
    .await;
    let down = Instant::now();
    server.start();
    env.wait_for("100 delivered", |c| c[&RecordingStatus::Delivered] == 100)
        .await;
    eprintln!(
        "kill: {at_kill} delivered before the kill, the other {} delivered {:?} after restart",
        100 - at_kill,
        down.elapsed()
    );
    env.wait_settled(None, 0).await;
    let _ = stop.send(());
    task.await.unwrap();
    check_all_delivered(&env, store.as_ref(), &expected).await;
}

/// A real store whose audio uploads for calls named `hold-*` wait until the
/// gate opens: so that a worker is certainly mid-delivery when dropped.
#[derive(Debug)]
struct Gated {
    inner: Arc<dyn RecordingStore>,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait::async_trait]
impl RecordingStore for Gated {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put_stream(
        &self,
        key: &ObjectKey,
        body: ByteStream,
    ) -> Result<PutReceipt, StoreError> {
        if key.as_str().contains("/hold-") && key.as_str().ends_with(".wav") {
            let _permit = self.gate.acquire().await.unwrap();
        }
        self.inner.put_stream(key, body).await
    }
    async fn stat(&self, key: &ObjectKey) -> Result<ObjectStat, StoreError> {
        self.inner.stat(key).await
    }
    async fn size(&self, key: &ObjectKey) -> Result<u64, StoreError> {
        self.inner.size(key).await
    }
    async fn read_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, StoreError> {
        self.inner.read_range(key, range).await
    }
    async fn read_stream(
        &self,
        key: &ObjectKey,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ByteStream, StoreError> {
        self.inner.read_stream(key, range).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StoreError> {
        self.inner.list(prefix).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_worker_dropped_mid_delivery_and_truncated_wav_delivered_partial() {
    let env = Env::new().await;
    let storage = env.dir.path().join("storage");
    let real = open_store(&callrec_storage::StorageConfig::Local {
        root: storage.clone(),
    })
    .unwrap();
    let gated: Arc<dyn RecordingStore> = Arc::new(Gated {
        inner: real.clone(),
        gate: Arc::new(tokio::sync::Semaphore::new(0)), // closed: held uploads never finish
    });
    // Room for the 4 held uploads and the others.
    let worker = env.worker_with(gated, "local", 8);
    let handle = worker.handle();
    let mut expected = Vec::new();
    for i in 0..20 {
        let name = if i % 5 == 0 {
            format!("hold-{i}")
        } else {
            format!("free-{i}")
        };
        expected.push(env.finished_call(&name, 4000, i, Some(&handle)).await);
    }
    // A call in progress when the process dies: its WAV is half-written
    // (header still says 0 bytes, last frame torn) and never finished.
    let cut_id = env.new_call("cut-1").await;
    let call = StoredCallId::new("cut-1").unwrap();
    let path = env
        .spool
        .begin(
            &call,
            &cut_id.0.to_string(),
            UnixMillis(1_764_000_000_000).to_offset_date_time().unwrap(),
            Format::Wav,
        )
        .unwrap();
    let full = make_wav(3000, 99);
    let mut cut = wav::header(0).to_vec();
    cut.extend_from_slice(&full[44..44 + 10_001]);
    std::fs::write(&path, &cut).unwrap();

    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    env.wait_for("the free ones delivered", |c| {
        c[&RecordingStatus::Delivered] == 16
    })
    .await;
    // The 4 held uploads are in flight: the process "dies".
    assert_eq!(env.count(RecordingStatus::Uploading).await, 4);
    task.abort();
    let _ = task.await;

    // A new process: same spool, same catalog, the storage as it is.
    let worker = env.worker(real.clone(), "local");
    let report = worker.startup().await.unwrap();
    assert_eq!(report.requeued, 4, "{report:?}");
    assert_eq!(report.repaired_partial, 1, "{report:?}");
    assert_eq!(report.spooled_from_spool, 1, "{report:?}");
    assert_eq!(report.waiting, 5, "{report:?}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    env.wait_for("all 21 delivered", |c| c[&RecordingStatus::Delivered] == 21)
        .await;
    env.wait_settled(None, 0).await;
    let _ = stop.send(());
    task.await.unwrap();
    check_all_delivered(&env, real.as_ref(), &expected).await;

    // The cut recording: repaired (sizes from its length, torn frame cut),
    // delivered, and partial in the catalog and its metadata.
    let rec = env.catalog.get_recording(cut_id).await.unwrap();
    assert!(rec.partial, "{rec:?}");
    assert_eq!(rec.size_bytes, Some(44 + 10_000));
    let key = ObjectKey::new(rec.location.unwrap().key).unwrap();
    let stored = real.read_range(&key, 0..44 + 10_000).await.unwrap();
    assert_eq!(
        u32::from_le_bytes(stored[4..8].try_into().unwrap()),
        10_000 + 36,
        "riff size"
    );
    assert_eq!(
        u32::from_le_bytes(stored[40..44].try_into().unwrap()),
        10_000,
        "data size"
    );
    assert_eq!(
        &stored[44..],
        &full[44..44 + 10_000],
        "audio kept as recorded"
    );
    let meta = real
        .read_range(
            &ObjectKey::new(key.as_str().replace(".wav", ".json")).unwrap(),
            0..real
                .size(&ObjectKey::new(key.as_str().replace(".wav", ".json")).unwrap())
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&meta).unwrap();
    assert_eq!(meta["partial"], true);
    assert_eq!(rec.duration_ms, Some(10_000 / 4 / 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_keep_everything_then_deliver_once_fixed() {
    let env = Env::new().await;
    let server = common::S3Server::start_new("bucket");
    let mut bad = server.config("bucket");
    if let callrec_storage::StorageConfig::S3 { secret_key, .. } = &mut bad {
        *secret_key = callrec_storage::Secret::new("wrong-secret");
    }
    let e = callrec_storage::test_connection(&bad).await.unwrap_err();
    assert_eq!(e.kind(), StoreErrorKind::Credentials, "{e}");
    assert_eq!(e.step, callrec_storage::ProbeStep::List);
    assert!(!e.to_string().contains("wrong-secret"));

    let worker = env.worker(open_store(&bad).unwrap(), "s3");
    let (id, audio) = env.finished_call("cred-1", 3000, 1, None).await;
    let outcome = worker.deliver_now(id).await.unwrap();
    assert!(
        matches!(outcome, callrec_storage::delivery::Outcome::Failed { .. }),
        "{outcome:?}"
    );
    let rec = env.catalog.get_recording(id).await.unwrap();
    assert_eq!(rec.status, RecordingStatus::Failed);
    assert!(
        rec.last_error.as_deref().unwrap().contains("credentials"),
        "{:?}",
        rec.last_error
    );
    assert_eq!(
        env.spool.list().unwrap().len(),
        1,
        "the recording is still in the spool"
    );

    // Fixed settings: a new worker delivers what waited (due: retried now).
    let good = open_store(&server.config("bucket")).unwrap();
    let worker = env.worker(good.clone(), "s3");
    worker.startup().await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    env.wait_for("delivered", |c| c[&RecordingStatus::Delivered] == 1)
        .await;
    env.wait_settled(None, 0).await;
    let _ = stop.send(());
    task.await.unwrap();
    check_all_delivered(&env, good.as_ref(), &[(id, audio)]).await;
    let rec = env.catalog.get_recording(id).await.unwrap();
    assert_eq!(rec.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_recordings_from_storage_and_keeps_the_row() {
    let env = Env::new().await;
    let store = open_store(&callrec_storage::StorageConfig::Local {
        root: env.dir.path().join("storage"),
    })
    .unwrap();
    let worker = DeliveryWorker::new(
        store.clone(),
        env.catalog.clone(),
        env.spool.clone(),
        DeliveryConfig {
            retention_days: Some(30),
            ..DeliveryConfig::default()
        },
    );
    let (id, _) = env.finished_call("ret-1", 1000, 1, None).await;
    assert_eq!(
        worker.deliver_now(id).await.unwrap(),
        callrec_storage::delivery::Outcome::Delivered
    );
    let key = ObjectKey::new(
        env.catalog
            .get_recording(id)
            .await
            .unwrap()
            .location
            .unwrap()
            .key,
    )
    .unwrap();
    // 29 days later: kept. 31 days later: deleted.
    let day = 86_400_000;
    assert_eq!(
        worker
            .retention_now(UnixMillis::now().plus_millis(29 * day))
            .await
            .unwrap()
            .deleted,
        0
    );
    store.stat(&key).await.unwrap();
    assert_eq!(
        worker
            .retention_now(UnixMillis::now().plus_millis(31 * day))
            .await
            .unwrap()
            .deleted,
        1
    );
    assert_eq!(
        store.stat(&key).await.unwrap_err().kind(),
        StoreErrorKind::NotFound
    );
    assert!(
        store.list("recordings/").await.unwrap().is_empty(),
        "metadata deleted too"
    );
    let rec = env.catalog.get_recording(id).await.unwrap();
    assert_eq!(rec.status, RecordingStatus::Deleted);
    let audit = env
        .catalog
        .audit_log(&callrec_catalog::AuditQuery {
            target: Some(format!("recording/{}", id.0)),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "system");
}
