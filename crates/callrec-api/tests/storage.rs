//! The storage settings endpoints, driven through the router with `oneshot`,
//! against a real S3-compatible server (`s3s-fs`, started by the test), a
//! real SQLite catalog and the real delivery worker.

#[path = "../../callrec-storage/tests/common/mod.rs"]
mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use callrec_api::storage::{self, StorageState};
use callrec_api::{ApiState, router_with_storage};
use callrec_catalog::*;
use callrec_media::encode::{Format, wav};
use callrec_storage::delivery::{DeliveryConfig, DeliveryWorker, Outcome, mark_spooled};
use callrec_storage::{Spool, StorageConfig, StoreHandle, StoredCallId, open_store};
use common::{S3_SECRET_KEY, S3Server};
use serde_json::{Value, json};
use tower::ServiceExt;

const USER: &str = "x-callrec-user";

struct Fixture {
    app: Router,
    server: S3Server,
    catalog: SqlCatalog,
    store: StoreHandle,
    dir: tempfile::TempDir,
}

/// An s3s-fs with the buckets `old` (in force) and `new`.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::new("old");
    std::fs::create_dir(server.dir.path().join("new")).unwrap();
    server.start();
    let catalog = SqlCatalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    let store = StoreHandle::open(server.config("old")).unwrap();
    let clock: callrec_api::Clock = Arc::new(|| time::macros::datetime!(2026-11-24 12:00 UTC));
    let app = router_with_storage(
        ApiState::in_memory(clock.clone()),
        StorageState::new(Arc::new(catalog.clone()), store.clone(), clock),
    );
    Fixture {
        app,
        server,
        catalog,
        store,
        dir,
    }
}

impl Fixture {
    async fn send(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, String) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(USER, "alice");
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// The s3 settings for `bucket` on the test server, with `secret`.
    fn s3(&self, bucket: &str, secret: &str) -> Value {
        json!({
            "backend": "s3",
            "endpoint": self.server.endpoint(),
            "region": "us-east-1",
            "bucket": bucket,
            "access_key": common::S3_ACCESS_KEY,
            "secret_key": secret,
            "prefix": "callrec",
        })
    }

    /// A refused PUT: 422 with `step` and `kind`, the settings unchanged
    /// everywhere (live store, catalog, GET). Returns the error message.
    async fn check_refused(&self, body: Value, step: &str, kind: &str) -> String {
        let (status, text) = self.send(Method::PUT, "/api/v1/storage", Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (v["step"].as_str(), v["kind"].as_str()),
            (Some(step), Some(kind)),
            "{text}"
        );
        let error = v["error"].as_str().unwrap().to_owned();
        assert!(
            error.ends_with("the storage settings were not changed"),
            "{error}"
        );
        assert_eq!(self.store.config(), self.server.config("old"));
        assert_eq!(self.catalog.storage_settings().await.unwrap(), None);
        let (_, now) = self.send(Method::GET, "/api/v1/storage", None).await;
        let now: Value = serde_json::from_str(&now).unwrap();
        assert_eq!(now["storage"]["bucket"], "old");
        error
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_the_settings_in_force_without_secrets() {
    let f = fixture().await;
    let (status, text) = f.send(Method::GET, "/api/v1/storage", None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains(S3_SECRET_KEY), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["storage"]["secret_key"], "***");
    assert_eq!(v["storage"]["bucket"], "old");
    assert_eq!(v["storage"]["access_key"], common::S3_ACCESS_KEY);
    assert_eq!(
        v["description"],
        format!(
            "s3 bucket \"old\" at {} under \"callrec\"",
            f.server.endpoint()
        )
    );
    assert_eq!(v["saved_by"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_wrong_key_names_credentials_and_keeps_the_old_settings() {
    let f = fixture().await;
    let mut body = f.s3("new", "wrong-secret-value");
    body["access_key"] = json!("nobody");
    let error = f.check_refused(body, "list", "credentials").await;
    assert!(error.contains("check the access key"), "{error}");
    assert!(!error.contains("wrong-secret-value"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_with_a_missing_bucket_names_the_bucket() {
    let f = fixture().await;
    let error = f
        .check_refused(
            f.s3("no-such-bucket", S3_SECRET_KEY),
            "list",
            "bucket_not_found",
        )
        .await;
    assert!(error.contains("no-such-bucket"), "{error}");
    assert!(error.contains("create it or correct its name"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_that_passes_switches_the_next_delivery_and_survives_a_restart() {
    let f = fixture().await;
    let spool = Spool::open(f.dir.path().join("spool")).unwrap();
    let worker = DeliveryWorker::new(
        Arc::new(f.store.clone()),
        Arc::new(f.catalog.clone()),
        spool.clone(),
        DeliveryConfig {
            backend_name: "s3".into(),
            ..DeliveryConfig::default()
        },
    );
    let first = finished_call(&f, &spool, "call-before").await;
    assert_eq!(worker.deliver_now(first).await.unwrap(), Outcome::Delivered);

    // "***" keeps the stored secret: only the bucket changes.
    let (status, text) = f
        .send(Method::PUT, "/api/v1/storage", Some(f.s3("new", "***")))
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains(S3_SECRET_KEY), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["storage"]["bucket"], "new");
    assert_eq!(v["storage"]["secret_key"], "***");
    assert_eq!(v["saved_by"], "alice");
    assert_eq!(v["saved_at"], "2026-11-24T12:00:00Z");
    assert!(
        v["connection_test"]["probe_key"]
            .as_str()
            .unwrap()
            .starts_with("callrec-probe/"),
        "{text}"
    );

    let second = finished_call(&f, &spool, "call-after").await;
    assert_eq!(
        worker.deliver_now(second).await.unwrap(),
        Outcome::Delivered
    );
    let names = |bucket: &str| {
        let store = open_store(&f.server.config(bucket)).unwrap();
        async move {
            store
                .list("recordings/")
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key.to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names("old").await,
        [
            "recordings/2025/11/24/call-before.json",
            "recordings/2025/11/24/call-before.wav"
        ]
    );
    assert_eq!(
        names("new").await,
        [
            "recordings/2025/11/24/call-after.json",
            "recordings/2025/11/24/call-after.wav"
        ]
    );

    // Saved with the real secret (kept from before), and audited.
    let saved = f.catalog.storage_settings().await.unwrap().unwrap();
    assert_eq!(saved.author, "alice");
    assert_eq!(saved.document["secret_key"], S3_SECRET_KEY);
    let audit = f
        .catalog
        .audit_log(&AuditQuery {
            action: Some(AuditAction::StorageSettingsChange),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "alice");
    assert!(!audit[0].detail.to_string().contains(S3_SECRET_KEY));
    assert!(
        audit[0].detail["summary"]
            .as_str()
            .unwrap()
            .contains("bucket \"new\""),
        "{:?}",
        audit[0].detail
    );

    // A restart reads the saved settings, not the configuration file's.
    let reopened = SqlCatalog::open(&format!("sqlite://{}", f.dir.path().join("c.db").display()))
        .await
        .unwrap();
    let fallback = StorageConfig::Local {
        root: f.dir.path().join("unused"),
    };
    assert_eq!(
        storage::load(&reopened, fallback.clone()).await.unwrap(),
        f.server.config("new")
    );
    let empty = SqlCatalog::open("sqlite::memory:").await.unwrap();
    assert_eq!(
        storage::load(&empty, fallback.clone()).await.unwrap(),
        fallback
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stars_keep_the_secret_only_for_the_same_endpoint_and_test_saves_nothing() {
    let f = fixture().await;
    // The connection test alone, with the stored secret: passes, saves nothing.
    let (status, text) = f
        .send(
            Method::POST,
            "/api/v1/storage/test",
            Some(f.s3("new", "***")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["storage"].as_str().unwrap().contains("\"new\""), "{text}");
    assert_eq!(f.store.config(), f.server.config("old"));
    assert_eq!(f.catalog.storage_settings().await.unwrap(), None);

    // The test endpoint reports failures like a PUT.
    let (status, text) = f
        .send(
            Method::POST,
            "/api/v1/storage/test",
            Some(f.s3("no-such-bucket", "***")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["kind"], "bucket_not_found", "{text}");

    // Another endpoint: "***" would send the stored secret somewhere new.
    let mut elsewhere = f.s3("new", "***");
    elsewhere["endpoint"] = json!("http://127.0.0.1:9");
    let error = f
        .check_refused(elsewhere, "configure", "invalid_config")
        .await;
    assert!(error.contains("type the secret_key again"), "{error}");

    // Missing fields are refused before connecting, naming the field.
    let mut incomplete = f.s3("new", "x");
    incomplete["bucket"] = json!("");
    let error = f
        .check_refused(incomplete, "configure", "invalid_config")
        .await;
    assert!(error.contains("bucket"), "{error}");
}

/// A finished call as the media path leaves it: audio and metadata in the
/// spool, the catalog says spooled.
async fn finished_call(f: &Fixture, spool: &Spool, call: &str) -> RecordingId {
    let started = UnixMillis(1_764_000_000_000); // 2025-11-24
    f.catalog
        .create_call(&NewCall {
            id: CallId::new(call).unwrap(),
            direction: Direction::Inbound,
            kind: "queue".into(),
            queue: None,
            language: None,
            started_at: started,
            settings_version: None,
        })
        .await
        .unwrap();
    let id = f
        .catalog
        .create_recording(&NewRecording {
            call_id: CallId::new(call).unwrap(),
            format: RecordingFormat::Wav,
            status: RecordingStatus::Recording,
            reason: "policy: record all".into(),
            created_at: started,
        })
        .await
        .unwrap()
        .id;
    f.catalog
        .transition(
            id,
            &[RecordingStatus::Recording],
            RecordingStatus::Finalizing,
            "call ended",
            started,
        )
        .await
        .unwrap();
    let mut audio = wav::header(400).to_vec();
    audio.extend(std::iter::repeat_n(9u8, 400));
    let src = f.dir.path().join(format!("{call}.wav"));
    std::fs::write(&src, &audio).unwrap();
    let entry = spool
        .put(
            &StoredCallId::new(call).unwrap(),
            &id.0.to_string(),
            started.to_offset_date_time().unwrap(),
            Format::Wav,
            &src,
            json!({ "call_id": call }),
        )
        .unwrap();
    mark_spooled(&f.catalog, id, &entry).await.unwrap();
    id
}
