//! Bad settings and a broken spool give clear errors (what failed, what to
//! do), and nothing already accepted is lost.

mod common;

use callrec_media::encode::{Format, wav};
use callrec_storage::{
    ConfigError, ProbeStep, Spool, SpoolError, StorageConfig, StoreErrorKind, StoredCallId,
    test_connection,
};

fn check_probe(
    result: Result<callrec_storage::ConnectionReport, callrec_storage::ConnectionTestError>,
    step: ProbeStep,
    kind: StoreErrorKind,
    says: &str,
) {
    let e = result.expect_err("the connection test should fail");
    assert_eq!((e.step, e.kind()), (step, kind), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(says), "{msg:?} does not say {says:?}");
    assert!(
        msg.starts_with("storage connection test failed while "),
        "{msg}"
    );
}

#[test]
fn unknown_backend_is_named() {
    let e = StorageConfig::from_json(r#"{"backend":"dropbox","root":"/x"}"#).unwrap_err();
    assert_eq!(e, ConfigError::UnknownBackend("dropbox".into()));
    assert_eq!(
        e.to_string(),
        "unknown storage backend \"dropbox\": use one of local, s3, gcs, azure, sftp"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_settings_that_cannot_work() {
    let server = common::S3Server::start_new("bucket");
    check_probe(
        test_connection(&server.config("no-such-bucket")).await,
        ProbeStep::List,
        StoreErrorKind::BucketNotFound,
        "create it or correct its name",
    );
    let mut wrong = server.config("bucket");
    if let StorageConfig::S3 { access_key, .. } = &mut wrong {
        *access_key = "nobody".into();
    }
    check_probe(
        test_connection(&wrong).await,
        ProbeStep::List,
        StoreErrorKind::Credentials,
        "check the access key",
    );
    // Nothing listens there.
    let down = StorageConfig::S3 {
        endpoint: format!("http://127.0.0.1:{}", common::free_port()),
        region: "us-east-1".into(),
        bucket: "bucket".into(),
        access_key: "a".into(),
        secret_key: "s".into(),
        prefix: String::new(),
    };
    check_probe(
        test_connection(&down).await,
        ProbeStep::List,
        StoreErrorKind::Unreachable,
        "check the endpoint",
    );
    // Missing fields are found before connecting.
    let e = StorageConfig::from_json(
        r#"{"backend":"s3","bucket":"b","access_key":"","secret_key":"s"}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the s3 storage settings need a access_key: fill it in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_wrong_key_and_bad_root() {
    let server = common::SftpServer::start();
    let other = tempfile::tempdir().unwrap();
    let key = other.path().join("k");
    let ok = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut wrong = server.config();
    if let StorageConfig::Sftp { key_path, .. } = &mut wrong {
        *key_path = key;
    }
    let e = test_connection(&wrong).await.unwrap_err();
    assert!(
        matches!(
            e.kind(),
            StoreErrorKind::Credentials | StoreErrorKind::Unreachable
        ),
        "{e}"
    );
    assert_eq!(e.step, ProbeStep::List, "{e}");
    assert!(e.to_string().contains("authorized_keys"), "{e}");

    // The root is a file on the server.
    let file = server.root.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let mut bad = server.config();
    if let StorageConfig::Sftp { root, .. } = &mut bad {
        *root = file.to_string_lossy().into_owned();
    }
    let e = test_connection(&bad).await.unwrap_err();
    assert!(matches!(e.step, ProbeStep::List | ProbeStep::Write), "{e}");
    assert_ne!(e.kind(), StoreErrorKind::Credentials, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_root_under_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), b"x").unwrap();
    let config = StorageConfig::Local {
        root: dir.path().join("file/storage"),
    };
    let e = test_connection(&config).await.unwrap_err();
    assert_eq!(e.step, ProbeStep::Configure, "{e}");
    assert!(e.to_string().contains("Not a directory"), "{e}");
}

#[test]
fn spool_that_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let e = Spool::open(&file).unwrap_err();
    assert!(matches!(e, SpoolError::NotADirectory(_)), "{e}");
    assert!(e.to_string().contains("is not a directory"), "{e}");
    let e = Spool::open(file.join("spool")).unwrap_err();
    assert!(e.to_string().contains("spool"), "{e}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a directory",
        "the file is untouched"
    );
}

#[test]
fn accepted_recordings_survive_failed_puts() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path().join("spool")).unwrap();
    let src = dir.path().join("a.wav");
    let mut audio = wav::header(400).to_vec();
    audio.extend(std::iter::repeat_n(7u8, 400));
    std::fs::write(&src, &audio).unwrap();
    let id = StoredCallId::new("call-1").unwrap();
    let t = time::macros::datetime!(2026-11-24 10:00 UTC);
    let meta = serde_json::json!({"call_id": "call-1"});
    let first = spool
        .put(&id, "r1", t, Format::Wav, &src, meta.clone())
        .unwrap();
    // The same call again: refused, the first is untouched.
    let e = spool
        .put(&id, "r2", t, Format::Wav, &src, meta.clone())
        .unwrap_err();
    assert!(matches!(e, SpoolError::AlreadySpooled(_)), "{e}");
    // A source that cannot be read: refused, nothing half-made left.
    let other = StoredCallId::new("call-2").unwrap();
    let e = spool
        .put(
            &other,
            "r3",
            t,
            Format::Wav,
            &dir.path().join("missing.wav"),
            meta.clone(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("missing.wav"), "{e}");
    // Metadata that is not an object: refused, nothing half-made left.
    let e = spool
        .put(&other, "r3", t, Format::Wav, &src, serde_json::json!([1]))
        .unwrap_err();
    assert!(matches!(e, SpoolError::MetadataNotAnObject(_)), "{e}");
    let listed = spool.list().unwrap();
    assert_eq!(listed, vec![first.clone()]);
    assert_eq!(std::fs::read(&first.audio_path).unwrap(), audio);
    assert_eq!(first.recording_id, "r1");
    // A new process finds it the same.
    let again = Spool::open(dir.path().join("spool")).unwrap();
    assert!(again.recover().unwrap().is_empty());
    assert_eq!(again.list().unwrap(), vec![first]);
}

/// GCS without Google: the settings are checked, the client is set up, and a
/// connection test against an endpoint where nothing listens fails at the
/// first step with an error that carries no credential. Real GCS (OAuth
/// token exchange, bucket and permission errors) cannot be tested here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_without_google() {
    let port = common::free_port();
    let key_json = format!(
        r#"{{"type":"service_account","client_email":"rec@example.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nSECRETMATERIAL\n-----END PRIVATE KEY-----\n","token_uri":"http://127.0.0.1:{port}/token"}}"#
    );
    let json = serde_json::json!({
        "backend": "gcs",
        "bucket": "recordings",
        "credential": key_json,
        "endpoint": format!("http://127.0.0.1:{port}"),
    });
    let config = StorageConfig::from_json(&json.to_string()).unwrap();
    assert!(!format!("{config:?}").contains("SECRETMATERIAL"));
    let store = callrec_storage::open_store(&config).unwrap();
    assert!(!format!("{store:?}").contains("SECRETMATERIAL"));
    let e = test_connection(&config).await.unwrap_err();
    assert_eq!(
        (e.step, e.kind()),
        (ProbeStep::List, StoreErrorKind::Credentials),
        "{e}"
    );
    assert!(!e.to_string().contains("SECRETMATERIAL"), "{e}");
}
