//! The recordings endpoints, driven through the router with `oneshot`, on a
//! real SQLite catalog and a real local-directory store in a temporary
//! directory.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use callrec_api::recordings::{RecordingDetailJson, RecordingList, RecordingsState, router};
use callrec_catalog::*;
use callrec_storage::{ObjectKey, RecordingStore, StorageConfig, StoreErrorKind, open_store};
use serde_json::Value;
use tower::ServiceExt;

const USER: &str = "x-callrec-user";

struct Fixture {
    app: Router,
    catalog: SqlCatalog,
    store: Arc<dyn RecordingStore>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let catalog = SqlCatalog::open(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    let store = open_store(&StorageConfig::Local {
        root: dir.path().join("store"),
    })
    .unwrap();
    let app = router(RecordingsState {
        catalog: Arc::new(catalog.clone()),
        store: store.clone(),
        clock: Arc::new(|| time::macros::datetime!(2026-11-24 12:00 UTC)),
    });
    Fixture {
        app,
        catalog,
        store,
        _dir: dir,
    }
}

fn t(ms: i64) -> UnixMillis {
    UnixMillis(1_795_000_000_000 + ms)
}

struct Spec<'a> {
    call: &'a str,
    direction: Direction,
    queue: &'a str,
    number: &'a str,
    created: i64,
    deliver: bool,
}

/// The audio of a test recording: 1000 distinct-ish bytes.
fn audio_bytes() -> Vec<u8> {
    (0..1000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// A recording spooled and, if `deliver`, put in the store and delivered.
async fn recording(fx: &Fixture, spec: Spec<'_>) -> Recording {
    let c = &fx.catalog;
    let call = CallId::new(spec.call).unwrap();
    c.create_call(&NewCall {
        id: call.clone(),
        direction: spec.direction,
        kind: "queue".to_owned(),
        queue: Some(spec.queue.to_owned()),
        language: Some("es-ES".to_owned()),
        started_at: t(spec.created),
        settings_version: Some(1),
    })
    .await
    .unwrap();
    c.add_decision(
        &call,
        &PolicyDecision {
            at: t(spec.created),
            decision: "record".to_owned(),
            reason: "queue records all calls".to_owned(),
        },
    )
    .await
    .unwrap();
    c.add_participant(
        &call,
        &NewParticipant {
            role: ParticipantRole::EndUser,
            channel: Channel::Left,
            number: Some(PhoneNumber::new(spec.number).unwrap()),
            name: None,
            joined_at: t(spec.created),
        },
    )
    .await
    .unwrap();
    let r = c
        .create_recording(&NewRecording {
            call_id: call.clone(),
            format: RecordingFormat::Mp3,
            status: RecordingStatus::Recording,
            reason: "policy: record".to_owned(),
            created_at: t(spec.created),
        })
        .await
        .unwrap();
    c.transition(
        r.id,
        &[RecordingStatus::Recording],
        RecordingStatus::Finalizing,
        "call ended",
        t(spec.created + 10),
    )
    .await
    .unwrap();
    let audio = audio_bytes();
    let r = c
        .mark_spooled(
            r.id,
            &SpooledAudio {
                spool_path: format!("/spool/{}.mp3", spec.call),
                size_bytes: audio.len() as u64,
                sha256: "cd".repeat(32),
                duration_ms: 250,
                partial: false,
            },
            "on spool",
            t(spec.created + 20),
        )
        .await
        .unwrap();
    if !spec.deliver {
        return r;
    }
    c.transition(
        r.id,
        &[RecordingStatus::Spooled],
        RecordingStatus::Uploading,
        "upload",
        t(spec.created + 30),
    )
    .await
    .unwrap();
    let key = format!("recordings/2026/11/18/{}.mp3", spec.call);
    fx.store
        .put_bytes(&ObjectKey::new(key.as_str()).unwrap(), audio.into())
        .await
        .unwrap();
    fx.store
        .put_bytes(
            &ObjectKey::new(format!("recordings/2026/11/18/{}.json", spec.call)).unwrap(),
            b"{}".to_vec().into(),
        )
        .await
        .unwrap();
    c.mark_delivered(
        r.id,
        &StorageLocation {
            backend: "local".to_owned(),
            key,
        },
        t(spec.created + 40),
    )
    .await
    .unwrap()
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap()
        .to_vec();
    (status, headers, body)
}

async fn get_json(app: &Router, uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(app, Method::GET, uri, &[]).await;
    (status, serde_json::from_slice(&body).expect("a JSON body"))
}

async fn three(fx: &Fixture) -> (Recording, Recording, Recording) {
    let a = recording(
        fx,
        Spec {
            call: "call-a",
            direction: Direction::Inbound,
            queue: "sales",
            number: "+34911000111",
            created: 1_000,
            deliver: true,
        },
    )
    .await;
    let b = recording(
        fx,
        Spec {
            call: "call-b",
            direction: Direction::Outbound,
            queue: "support",
            number: "+34600000002",
            created: 2_000,
            deliver: false,
        },
    )
    .await;
    let c = recording(
        fx,
        Spec {
            call: "call-c",
            direction: Direction::Inbound,
            queue: "support",
            number: "+34600000003",
            created: 3_000,
            deliver: true,
        },
    )
    .await;
    (a, b, c)
}

fn ids(list: &RecordingList) -> Vec<String> {
    list.recordings.iter().map(|r| r.call_id.clone()).collect()
}

#[tokio::test]
async fn list_filters_and_pages() {
    let fx = fixture().await;
    three(&fx).await;
    let check = |query: &'static str, expected: &'static [&'static str]| {
        let app = fx.app.clone();
        async move {
            let (status, body) = get_json(&app, &format!("/api/v1/recordings{query}")).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            let list: RecordingList = serde_json::from_value(body).unwrap();
            assert_eq!(ids(&list), expected, "{query}");
        }
    };
    check("", &["call-c", "call-b", "call-a"]).await;
    check("?status=delivered", &["call-c", "call-a"]).await;
    check("?status=spooled,failed", &["call-b"]).await;
    check("?direction=outbound", &["call-b"]).await;
    check("?queue=support&direction=inbound", &["call-c"]).await;
    check("?number=%2B34911000111", &["call-a"]).await;
    check("?call_id=call-b", &["call-b"]).await;
    // created: a 1000, b 2000, c 3000 ms after t(0) = 2026-11-18T11:06:40Z.
    check(
        "?from=2026-11-18T11:06:42Z&until=2026-11-18T11:06:43Z",
        &["call-b"],
    )
    .await;

    let (_, body) = get_json(&fx.app, "/api/v1/recordings?limit=2").await;
    let first: RecordingList = serde_json::from_value(body).unwrap();
    assert_eq!(ids(&first), ["call-c", "call-b"]);
    let next = first.next.expect("a next page");
    let (_, body) = get_json(&fx.app, &format!("/api/v1/recordings?limit=2&after={next}")).await;
    let second: RecordingList = serde_json::from_value(body).unwrap();
    assert_eq!(ids(&second), ["call-a"]);
    assert_eq!(second.next, None);

    // The listing carries the delivery state.
    let a = &second.recordings[0];
    assert_eq!(a.status, RecordingStatus::Delivered);
    assert_eq!(a.delivery.attempts, 1);
    assert_eq!(a.delivery.backend.as_deref(), Some("local"));
    assert_eq!(a.queue.as_deref(), Some("sales"));
}

#[tokio::test]
async fn list_refuses_bad_filters_clearly() {
    let fx = fixture().await;
    for (query, says) in [
        ("?status=lost", "recording status"),
        ("?direction=up", "call direction"),
        ("?from=yesterday", "rfc 3339"),
        ("?limit=0", "limit"),
        ("?limit=5000", "limit"),
        ("?after=garbage", "page cursor"),
        ("?call_id=a/b", "call id"),
        ("?number=%2B34%20911%20000", "phone number"),
    ] {
        let (status, body) = get_json(&fx.app, &format!("/api/v1/recordings{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let message = body["error"].as_str().unwrap().to_lowercase();
        assert!(message.contains(says), "{query}: {message}");
    }
    // The refused number is not echoed back.
    let (_, body) = get_json(&fx.app, "/api/v1/recordings?number=%2B34%20911%20000").await;
    assert!(!body.to_string().contains("911"), "{body}");
}

#[tokio::test]
async fn detail_shows_call_participants_and_delivery() {
    let fx = fixture().await;
    let (a, b, _) = three(&fx).await;
    fx.catalog
        .record_attempt_failure(b.id, "s3: bucket callrec not found", t(90_000), t(5_000))
        .await
        .unwrap();

    let (status, body) = get_json(&fx.app, &format!("/api/v1/recordings/{}", a.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail: RecordingDetailJson = serde_json::from_value(body).unwrap();
    assert_eq!(detail.recording.id, a.id.to_string());
    assert_eq!(detail.recording.status, RecordingStatus::Delivered);
    assert_eq!(
        detail.recording.delivery.key.as_deref(),
        Some("recordings/2026/11/18/call-a.mp3")
    );
    assert_eq!(detail.call.decisions.len(), 1);
    assert_eq!(detail.call.decisions[0].reason, "queue records all calls");
    assert_eq!(detail.participants.len(), 1);
    assert_eq!(detail.participants[0].channel, 1);
    assert_eq!(
        detail.participants[0].number.as_deref(),
        Some("+34911000111")
    );
    let steps: Vec<_> = detail.history.iter().map(|h| h.to).collect();
    assert_eq!(
        steps,
        [
            RecordingStatus::Recording,
            RecordingStatus::Finalizing,
            RecordingStatus::Spooled,
            RecordingStatus::Uploading,
            RecordingStatus::Delivered
        ]
    );

    let (_, body) = get_json(&fx.app, &format!("/api/v1/recordings/{}", b.id)).await;
    let failed: RecordingDetailJson = serde_json::from_value(body).unwrap();
    assert_eq!(failed.recording.status, RecordingStatus::Failed);
    assert_eq!(failed.recording.delivery.attempts, 1);
    assert_eq!(
        failed.recording.delivery.last_error.as_deref(),
        Some("s3: bucket callrec not found")
    );
    assert_eq!(
        failed.recording.delivery.next_attempt_at.as_deref(),
        Some("2026-11-18T11:08:10Z")
    );

    let (status, _) = get_json(
        &fx.app,
        &format!("/api/v1/recordings/{}", RecordingId::generate()),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get_json(&fx.app, "/api/v1/recordings/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("recording id"));
}

async fn audit_actions(fx: &Fixture, id: RecordingId) -> Vec<(AuditAction, String)> {
    fx.catalog
        .audit_log(&AuditQuery {
            target: Some(format!("recording/{id}")),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.actor))
        .collect()
}

#[tokio::test]
async fn audio_streams_with_ranges_and_is_audited() {
    let fx = fixture().await;
    let (a, b, _) = three(&fx).await;
    let audio = audio_bytes();
    let uri = format!("/api/v1/recordings/{}/audio", a.id);
    let user = (USER, "alice");

    let (status, headers, body) = send(&fx.app, Method::GET, &uri, &[user]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, audio);
    assert_eq!(headers[header::CONTENT_TYPE], "audio/mpeg");
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    assert_eq!(headers[header::CONTENT_LENGTH], "1000");
    assert!(
        headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );

    let check =
        |range: &'static str, expected: std::ops::Range<usize>, content_range: &'static str| {
            let app = fx.app.clone();
            let uri = uri.clone();
            let audio = audio.clone();
            async move {
                let (status, headers, body) =
                    send(&app, Method::GET, &uri, &[user, ("range", range)]).await;
                assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
                assert_eq!(body, audio[expected.clone()], "{range}");
                assert_eq!(headers[header::CONTENT_RANGE], content_range, "{range}");
                assert_eq!(
                    headers[header::CONTENT_LENGTH],
                    (expected.end - expected.start).to_string().as_str()
                );
            }
        };
    check("bytes=0-99", 0..100, "bytes 0-99/1000").await;
    check("bytes=10-19", 10..20, "bytes 10-19/1000").await;
    check("bytes=990-", 990..1000, "bytes 990-999/1000").await;
    check("bytes=-5", 995..1000, "bytes 995-999/1000").await;
    check("bytes=900-5000", 900..1000, "bytes 900-999/1000").await;

    let (status, headers, _) = send(
        &fx.app,
        Method::GET,
        &uri,
        &[user, ("range", "bytes=1000-")],
    )
    .await;
    assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(headers[header::CONTENT_RANGE], "bytes */1000");

    let (status, headers, body) = send(
        &fx.app,
        Method::GET,
        &format!("{uri}?download=true"),
        &[(USER, "bob")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, audio);
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"call-a.mp3\""
    );

    // The full listen and the 0-99 range start playbacks; the rest do not.
    let mut audited = audit_actions(&fx, a.id).await;
    audited.reverse();
    assert_eq!(
        audited,
        [
            (AuditAction::Listen, "alice".to_owned()),
            (AuditAction::Listen, "alice".to_owned()),
            (AuditAction::Download, "bob".to_owned()),
        ]
    );

    // Who listens must be known.
    let (status, _, body) = send(&fx.app, Method::GET, &uri, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("x-callrec-user"));
    // Not in storage yet.
    let (status, _, body) = send(
        &fx.app,
        Method::GET,
        &format!("/api/v1/recordings/{}/audio", b.id),
        &[user],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&body).contains("spooled"));
    assert!(audit_actions(&fx, b.id).await.is_empty());
}

#[tokio::test]
async fn delete_removes_from_storage_then_marks_deleted() {
    let fx = fixture().await;
    let (a, b, _) = three(&fx).await;
    let uri = format!("/api/v1/recordings/{}", a.id);
    let key = ObjectKey::new("recordings/2026/11/18/call-a.mp3").unwrap();
    let meta = ObjectKey::new("recordings/2026/11/18/call-a.json").unwrap();

    let (status, _, _) = send(&fx.app, Method::DELETE, &uri, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "who deletes must be known");
    assert_eq!(fx.store.size(&key).await.unwrap(), 1000, "nothing deleted");

    // Still on its way to storage: refused, unchanged.
    let (status, _, _) = send(
        &fx.app,
        Method::DELETE,
        &format!("/api/v1/recordings/{}", b.id),
        &[(USER, "carol")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        fx.catalog.get_recording(b.id).await.unwrap().status,
        RecordingStatus::Spooled
    );

    let (status, _, body) = send(&fx.app, Method::DELETE, &uri, &[(USER, "carol")]).await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], "deleted");
    for k in [&key, &meta] {
        let err = fx.store.size(k).await.unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::NotFound, "{k} still in storage");
    }
    let rec = fx.catalog.get_recording(a.id).await.unwrap();
    assert_eq!(rec.status, RecordingStatus::Deleted);
    assert_eq!(rec.status_reason, "deleted by carol");
    assert_eq!(
        audit_actions(&fx, a.id).await,
        [(AuditAction::Delete, "carol".to_owned())]
    );

    let (status, _, _) = send(&fx.app, Method::DELETE, &uri, &[(USER, "carol")]).await;
    assert_eq!(status, StatusCode::GONE);
    let (status, _, _) = send(
        &fx.app,
        Method::GET,
        &format!("{uri}/audio"),
        &[(USER, "carol")],
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    // The row stays for the record.
    let (status, _) = get_json(&fx.app, &uri).await;
    assert_eq!(status, StatusCode::OK);
}
