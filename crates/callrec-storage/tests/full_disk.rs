//! A full disk under the spool: a real 512 KiB tmpfs mounted as the spool
//! directory. The recording that does not fit is refused with an error that
//! says what failed, where (the spool path) and what to do (free space);
//! the recordings accepted before are intact and are still delivered.
//!
//! Needs root to mount (CI runs as root); without it the test fails and
//! says so, rather than skipping.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use callrec_catalog::{
    CallId, Catalog, Direction, NewCall, NewRecording, RecordingFormat, RecordingId,
    RecordingStatus, SqlCatalog, UnixMillis,
};
use callrec_media::encode::{Format, wav};
use callrec_storage::delivery::{DeliveryConfig, DeliveryWorker, Outcome, mark_spooled};
use callrec_storage::{ObjectKey, Spool, SpoolError, StorageConfig, StoredCallId, open_store};
use sha2::{Digest, Sha256};

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    mount_point: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let uid = Command::new("id").arg("-u").output().expect("run id -u");
        let uid = String::from_utf8_lossy(&uid.stdout).trim().to_owned();
        assert_eq!(
            uid, "0",
            "the full-disk spool test needs root to mount a small tmpfs (it runs as uid {uid}): run it as root, as ci does"
        );
        let dir = tempfile::tempdir().unwrap();
        let mount_point = dir.path().join("spool");
        std::fs::create_dir(&mount_point).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs on {} failed: {}",
            mount_point.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs {
            mount_point,
            _dir: dir,
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount_point).status();
    }
}

/// A WAV with `data` bytes of samples that differ per `seed`.
fn make_wav(data: usize, seed: u8) -> Vec<u8> {
    let mut out = wav::header(data as u64).to_vec();
    out.extend((0..data).map(|i| (i as u8).wrapping_mul(seed | 1)));
    out
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

const STARTED: UnixMillis = UnixMillis(1_764_000_000_000); // 2025-11-24

/// Creates the call and its recording (finalizing) in the catalog and puts
/// `audio` into the spool, as the media path does at the end of a call.
async fn accept(
    catalog: &SqlCatalog,
    spool: &Spool,
    src_dir: &Path,
    call: &str,
    audio: &[u8],
) -> (
    RecordingId,
    Result<callrec_storage::SpooledRecording, SpoolError>,
) {
    catalog
        .create_call(&NewCall {
            id: CallId::new(call).unwrap(),
            direction: Direction::Inbound,
            kind: "queue".into(),
            queue: None,
            language: None,
            started_at: STARTED,
            settings_version: None,
        })
        .await
        .unwrap();
    let id = catalog
        .create_recording(&NewRecording {
            call_id: CallId::new(call).unwrap(),
            format: RecordingFormat::Wav,
            status: RecordingStatus::Recording,
            reason: "policy: record all".into(),
            created_at: STARTED,
        })
        .await
        .unwrap()
        .id;
    catalog
        .transition(
            id,
            &[RecordingStatus::Recording],
            RecordingStatus::Finalizing,
            "call ended",
            STARTED,
        )
        .await
        .unwrap();
    let src = src_dir.join(format!("{call}.wav"));
    std::fs::write(&src, audio).unwrap();
    let put = spool.put(
        &StoredCallId::new(call).unwrap(),
        &id.0.to_string(),
        STARTED.to_offset_date_time().unwrap(),
        Format::Wav,
        &src,
        serde_json::json!({ "call_id": call }),
    );
    (id, put)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_refuses_clearly_and_keeps_what_it_accepted() {
    let disk = Tmpfs::mount("512k");
    let work = tempfile::tempdir().unwrap();
    let catalog = SqlCatalog::open(&format!(
        "sqlite://{}",
        work.path().join("catalog.db").display()
    ))
    .await
    .unwrap();
    let spool = Spool::open(&disk.mount_point).unwrap();

    let mut accepted = Vec::new();
    for (n, call) in ["call-1", "call-2", "call-3"].into_iter().enumerate() {
        let audio = make_wav(40_000, n as u8 + 1);
        let (id, put) = accept(&catalog, &spool, work.path(), call, &audio).await;
        let entry = put.unwrap_or_else(|e| panic!("{call} should fit: {e}"));
        mark_spooled(&catalog, id, &entry).await.unwrap();
        accepted.push((id, call, audio));
    }

    // 1 MB does not fit in what is left of 512 KiB.
    let big = make_wav(1_000_000, 9);
    let (big_id, put) = accept(&catalog, &spool, work.path(), "call-big", &big).await;
    let e = put.expect_err("a recording larger than the free space must be refused");
    let SpoolError::Io { path, source, .. } = &e else {
        panic!("expected an i/o error naming the spool file, got {e:?}");
    };
    assert!(
        path.starts_with(&disk.mount_point),
        "{} is not in the spool",
        path.display()
    );
    assert_eq!(source.raw_os_error(), Some(28), "ENOSPC expected: {source}");
    let msg = e.to_string();
    assert!(
        msg.contains(&disk.mount_point.display().to_string()),
        "the error does not say where: {msg}"
    );
    assert!(msg.contains("in the spool"), "{msg}");
    assert!(
        msg.contains("check free disk space"),
        "the error does not say what to do: {msg}"
    );
    // The refused recording is not half in the spool, and the catalog still
    // has it waiting (finalizing): it was never reported finalized.
    assert!(
        spool
            .get(&StoredCallId::new("call-big").unwrap())
            .unwrap()
            .is_none()
    );
    assert_eq!(
        catalog.get_recording(big_id).await.unwrap().status,
        RecordingStatus::Finalizing
    );

    // The earlier ones are intact, byte for byte.
    let listed = spool.list().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (_, call, audio) in &accepted {
        let entry = spool
            .get(&StoredCallId::new(*call).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(
            sha(&std::fs::read(&entry.audio_path).unwrap()),
            sha(audio),
            "{call}"
        );
    }
    // The space the refused one took was given back: a small one fits again.
    let (small_id, put) = accept(
        &catalog,
        &spool,
        work.path(),
        "call-4",
        &make_wav(40_000, 4),
    )
    .await;
    let small = put.expect("the space of the refused recording was freed");
    mark_spooled(&catalog, small_id, &small).await.unwrap();

    // And all of them are delivered from the full disk.
    let root = work.path().join("storage");
    let store = open_store(&StorageConfig::Local { root: root.clone() }).unwrap();
    let worker = DeliveryWorker::new(
        store.clone(),
        Arc::new(catalog.clone()),
        spool.clone(),
        DeliveryConfig::default(),
    );
    for (id, call, audio) in &accepted {
        assert_eq!(
            worker.deliver_now(*id).await.unwrap(),
            Outcome::Delivered,
            "{call}"
        );
        let key = ObjectKey::new(format!("recordings/2025/11/24/{call}.wav")).unwrap();
        assert_eq!(store.stat(&key).await.unwrap().sha256, sha(audio), "{call}");
    }
    assert_eq!(
        worker.deliver_now(small_id).await.unwrap(),
        Outcome::Delivered
    );
    assert!(spool.list().unwrap().is_empty());
    catalog.close().await;
}
