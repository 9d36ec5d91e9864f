//! The catalog conformance suite: every test here runs on SQLite and on
//! PostgreSQL (`conformance!` at the bottom makes one test per backend), so
//! both backends keep the semantics written on the `Catalog` trait.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use callrec_catalog::*;
use common::TestDb;
use serde_json::json;

use RecordingStatus::{
    Declined, Deleted, Delivered, Failed, Finalizing, Paused, Recording as Rec, Spooled, Uploading,
};

fn call_id(s: &str) -> CallId {
    CallId::new(s).expect("valid call id")
}

fn t(ms: i64) -> UnixMillis {
    UnixMillis(1_800_000_000_000 + ms)
}

fn new_call(id: &str, direction: Direction, queue: Option<&str>, started: i64) -> NewCall {
    NewCall {
        id: call_id(id),
        direction,
        kind: "queue".to_owned(),
        queue: queue.map(str::to_owned),
        language: Some("es-ES".to_owned()),
        started_at: t(started),
        settings_version: Some(3),
    }
}

async fn create_call(db: &TestDb, id: &str) -> CallId {
    db.catalog
        .create_call(&new_call(id, Direction::Inbound, Some("sales"), 0))
        .await
        .expect("create call");
    call_id(id)
}

async fn create_recording(db: &TestDb, call: &CallId, at: i64) -> Recording {
    db.catalog
        .create_recording(&NewRecording {
            call_id: call.clone(),
            format: RecordingFormat::Mp3,
            status: Rec,
            reason: "policy: record all inbound".to_owned(),
            created_at: t(at),
        })
        .await
        .expect("create recording")
}

fn audio(path: &str) -> SpooledAudio {
    SpooledAudio {
        spool_path: path.to_owned(),
        size_bytes: 48_000,
        sha256: "ab".repeat(32),
        duration_ms: 12_000,
        partial: false,
    }
}

fn audit(target: &str, action: AuditAction) -> NewAuditEntry {
    NewAuditEntry {
        at: t(500),
        actor: "alice".to_owned(),
        action,
        target: target.to_owned(),
        detail: json!({ "why": "test" }),
    }
}

/// Creates a recording and walks it to `status` along allowed changes.
async fn recording_in(db: &TestDb, call: &CallId, status: RecordingStatus) -> Recording {
    let c = &db.catalog;
    if status == Declined {
        return c
            .create_recording(&NewRecording {
                call_id: call.clone(),
                format: RecordingFormat::Wav,
                status: Declined,
                reason: "policy: queue support does not record".to_owned(),
                created_at: t(1),
            })
            .await
            .expect("create declined");
    }
    let r = create_recording(db, call, 1).await;
    let path: &[RecordingStatus] = match status {
        Rec => &[],
        Paused => &[Paused],
        Finalizing => &[Finalizing],
        Spooled => &[Finalizing, Spooled],
        Uploading => &[Finalizing, Spooled, Uploading],
        Failed => &[Finalizing, Spooled, Uploading, Failed],
        Delivered => &[Finalizing, Spooled, Uploading, Delivered],
        Deleted => &[Finalizing, Spooled, Uploading, Delivered, Deleted],
        Declined => unreachable!(),
    };
    let mut current = r;
    for step in path {
        current = match step {
            Spooled => c
                .mark_spooled(current.id, &audio("/spool/a.mp3"), "spooled", t(10))
                .await
                .expect("mark spooled"),
            Failed => c
                .record_attempt_failure(current.id, "s3: connection refused", t(60_000), t(20))
                .await
                .expect("record failure"),
            Delivered => c
                .mark_delivered(
                    current.id,
                    &StorageLocation {
                        backend: "local".to_owned(),
                        key: "recordings/2027/01/15/x.mp3".to_owned(),
                    },
                    t(30),
                )
                .await
                .expect("mark delivered"),
            Deleted => c
                .mark_deleted(
                    current.id,
                    "deleted by alice",
                    &audit("recording/x", AuditAction::Delete),
                )
                .await
                .expect("mark deleted"),
            other => c
                .transition(current.id, &[current.status], *other, "step", t(5))
                .await
                .expect("transition"),
        };
    }
    assert_eq!(current.status, status);
    current
}

// ---------------------------------------------------------------- calls

async fn calls_round_trip(db: &TestDb) {
    let c = &db.catalog;
    let new = new_call("call-1@pbx.example", Direction::Outbound, Some("sales"), 7);
    c.create_call(&new).await.unwrap();
    let got = c.get_call(&new.id).await.unwrap();
    assert_eq!(
        got,
        Call {
            id: new.id.clone(),
            direction: Direction::Outbound,
            kind: "queue".to_owned(),
            queue: Some("sales".to_owned()),
            language: Some("es-ES".to_owned()),
            started_at: t(7),
            ended_at: None,
            settings_version: Some(3),
            decisions: vec![],
        }
    );

    let again = c.create_call(&new).await.unwrap_err();
    assert!(
        matches!(again, CatalogError::AlreadyExists { what: "call", .. }),
        "{again}"
    );

    c.end_call(&new.id, t(90)).await.unwrap();
    let d1 = PolicyDecision {
        at: t(8),
        decision: "record".to_owned(),
        reason: "queue sales records all calls".to_owned(),
    };
    let d2 = PolicyDecision {
        at: t(9),
        decision: "announce".to_owned(),
        reason: "language es-ES: message 2".to_owned(),
    };
    c.add_decision(&new.id, &d1).await.unwrap();
    c.add_decision(&new.id, &d2).await.unwrap();
    let got = c.get_call(&new.id).await.unwrap();
    assert_eq!(got.ended_at, Some(t(90)));
    assert_eq!(got.decisions, vec![d1.clone(), d2]);

    let missing = call_id("nope");
    for err in [
        c.get_call(&missing).await.unwrap_err(),
        c.end_call(&missing, t(1)).await.unwrap_err(),
        c.add_decision(&missing, &d1).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, CatalogError::NotFound { what: "call", .. }),
            "{err}"
        );
    }
}

async fn participants_with_roles(db: &TestDb) {
    let c = &db.catalog;
    let call = create_call(db, "call-p").await;
    let number = PhoneNumber::new("+34911234567").unwrap();
    let end_user = c
        .add_participant(
            &call,
            &NewParticipant {
                role: ParticipantRole::EndUser,
                channel: Channel::Left,
                number: Some(number.clone()),
                name: None,
                joined_at: t(0),
            },
        )
        .await
        .unwrap();
    let third = c
        .add_participant(
            &call,
            &NewParticipant {
                role: ParticipantRole::ThirdParty,
                channel: Channel::Right,
                number: Some(PhoneNumber::new("+34600000000").unwrap()),
                name: Some("Supervisor".to_owned()),
                joined_at: t(30),
            },
        )
        .await
        .unwrap();
    let agent = c
        .add_participant(
            &call,
            &NewParticipant {
                role: ParticipantRole::Agent,
                channel: Channel::Right,
                number: None,
                name: Some("Agent 7".to_owned()),
                joined_at: t(2),
            },
        )
        .await
        .unwrap();
    c.participant_left(agent.id, t(40)).await.unwrap();

    let all = c.participants(&call).await.unwrap();
    let roles: Vec<_> = all.iter().map(|p| p.role).collect();
    assert_eq!(
        roles,
        [
            ParticipantRole::EndUser,
            ParticipantRole::Agent,
            ParticipantRole::ThirdParty
        ]
    );
    assert_eq!(all[0], end_user);
    assert_eq!(all[0].number.as_ref(), Some(&number));
    assert_eq!(all[1].left_at, Some(t(40)));
    assert_eq!(all[1].channel, Channel::Right);
    assert_eq!(all[2].id, third.id);
    assert!(
        !format!("{all:?}").contains("911234567"),
        "Debug must hide phone numbers"
    );

    let err = c
        .add_participant(
            &call_id("nope"),
            &NewParticipant {
                role: ParticipantRole::Emergency,
                channel: Channel::Right,
                number: Some(PhoneNumber::new("112").unwrap()),
                name: None,
                joined_at: t(0),
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, CatalogError::NotFound { what: "call", .. }),
        "{err}"
    );
    let err = c.participant_left(999_999, t(1)).await.unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                what: "participant",
                ..
            }
        ),
        "{err}"
    );
}

// ----------------------------------------------------------- recordings

async fn recording_lifecycle_to_delivery(db: &TestDb) {
    let c = &db.catalog;
    let call = create_call(db, "call-life").await;
    let r = create_recording(db, &call, 100).await;
    assert_eq!(r.status, Rec);
    assert_eq!(r.attempts, 0);
    assert_eq!(r.created_at, t(100));
    assert_eq!(c.get_recording(r.id).await.unwrap(), r);

    c.transition(r.id, &[Rec], Paused, "agent paused", t(110))
        .await
        .unwrap();
    c.add_pause(
        r.id,
        PauseSpan {
            start_ms: 10_000,
            end_ms: 15_000,
        },
    )
    .await
    .unwrap();
    c.add_pause(
        r.id,
        PauseSpan {
            start_ms: 2_000,
            end_ms: 3_000,
        },
    )
    .await
    .unwrap();
    c.transition(r.id, &[Paused], Rec, "agent resumed", t(115))
        .await
        .unwrap();
    let fin = c
        .transition(r.id, &[Rec, Paused], Finalizing, "call ended", t(200))
        .await
        .unwrap();
    assert_eq!(fin.status, Finalizing);
    assert_eq!(fin.status_reason, "call ended");
    assert_eq!(fin.status_changed_at, t(200));

    let spooled = c
        .mark_spooled(r.id, &audio("/spool/call-life.mp3"), "on spool", t(210))
        .await
        .unwrap();
    assert_eq!(spooled.status, Spooled);
    assert_eq!(spooled.spool_path.as_deref(), Some("/spool/call-life.mp3"));
    assert_eq!(spooled.size_bytes, Some(48_000));
    assert_eq!(spooled.sha256, Some("ab".repeat(32)));
    assert_eq!(spooled.duration_ms, Some(12_000));
    assert!(!spooled.partial);
    assert_eq!(spooled.next_attempt_at, Some(t(210)));

    c.transition(r.id, &[Spooled, Failed], Uploading, "upload", t(220))
        .await
        .unwrap();
    let failed = c
        .record_attempt_failure(r.id, "s3: bucket not found", t(5_000), t(230))
        .await
        .unwrap();
    assert_eq!(failed.status, Failed);
    assert_eq!(failed.attempts, 1);
    assert_eq!(failed.last_error.as_deref(), Some("s3: bucket not found"));
    assert_eq!(failed.status_reason, "s3: bucket not found");
    assert_eq!(failed.next_attempt_at, Some(t(5_000)));
    // failed -> failed is allowed for a failure recorded without a claim.
    let failed = c
        .record_attempt_failure(r.id, "s3: timeout", t(9_000), t(240))
        .await
        .unwrap();
    assert_eq!(failed.attempts, 2);

    c.transition(r.id, &[Spooled, Failed], Uploading, "retry", t(9_001))
        .await
        .unwrap();
    let location = StorageLocation {
        backend: "s3".to_owned(),
        key: "recordings/2027/01/15/call-life.mp3".to_owned(),
    };
    let delivered = c.mark_delivered(r.id, &location, t(9_500)).await.unwrap();
    assert_eq!(delivered.status, Delivered);
    assert_eq!(delivered.attempts, 3);
    assert_eq!(delivered.location, Some(location));
    assert_eq!(delivered.delivered_at, Some(t(9_500)));
    assert_eq!(delivered.spool_path, None);
    assert_eq!(delivered.next_attempt_at, None);
    assert_eq!(delivered.last_error.as_deref(), Some("s3: timeout"));
    assert_eq!(delivered.sha256, Some("ab".repeat(32)));

    let detail = c.recording_detail(r.id).await.unwrap();
    assert_eq!(detail.recording, delivered);
    assert_eq!(detail.call.id, call);
    assert_eq!(
        detail.pauses,
        vec![
            PauseSpan {
                start_ms: 2_000,
                end_ms: 3_000
            },
            PauseSpan {
                start_ms: 10_000,
                end_ms: 15_000
            }
        ]
    );
    let steps: Vec<(Option<RecordingStatus>, RecordingStatus)> =
        detail.history.iter().map(|h| (h.from, h.to)).collect();
    assert_eq!(
        steps,
        vec![
            (None, Rec),
            (Some(Rec), Paused),
            (Some(Paused), Rec),
            (Some(Rec), Finalizing),
            (Some(Finalizing), Spooled),
            (Some(Spooled), Uploading),
            (Some(Uploading), Failed),
            (Some(Failed), Failed),
            (Some(Failed), Uploading),
            (Some(Uploading), Delivered),
        ]
    );
    assert_eq!(detail.history[0].reason, "policy: record all inbound");
    assert_eq!(detail.history[3].reason, "call ended");
    assert_eq!(detail.history[3].at, t(200));
    assert_eq!(
        c.recordings_of_call(&call).await.unwrap(),
        vec![delivered.clone()]
    );

    // A cut recording (crash repair) keeps its partial flag.
    let cut = create_recording(db, &call, 300).await;
    c.transition(cut.id, &[Rec], Finalizing, "repair after crash", t(301))
        .await
        .unwrap();
    let spooled = c
        .mark_spooled(
            cut.id,
            &SpooledAudio {
                partial: true,
                ..audio("/spool/call-life-2.mp3")
            },
            "repaired, partial",
            t(302),
        )
        .await
        .unwrap();
    assert!(spooled.partial);
    assert!(c.get_recording(cut.id).await.unwrap().partial);
    assert_eq!(
        c.recordings_of_call(&call)
            .await
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![delivered.id, cut.id]
    );
}

async fn recording_bad_input(db: &TestDb) {
    let c = &db.catalog;
    let err = c
        .create_recording(&NewRecording {
            call_id: call_id("missing-call"),
            format: RecordingFormat::Mp3,
            status: Rec,
            reason: "x".to_owned(),
            created_at: t(0),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, CatalogError::NotFound { what: "call", .. }),
        "{err}"
    );

    let call = create_call(db, "call-bad").await;
    let err = c
        .create_recording(&NewRecording {
            call_id: call.clone(),
            format: RecordingFormat::Mp3,
            status: Delivered,
            reason: "x".to_owned(),
            created_at: t(0),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Invalid { .. }), "{err}");

    let missing = RecordingId::generate();
    let err = c.get_recording(missing).await.unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                what: "recording",
                ..
            }
        ),
        "{err}"
    );
    let err = c
        .transition(missing, &[Rec], Paused, "x", t(0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                what: "recording",
                ..
            }
        ),
        "{err}"
    );
    let err = c
        .add_pause(
            missing,
            PauseSpan {
                start_ms: 0,
                end_ms: 1,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::NotFound {
                what: "recording",
                ..
            }
        ),
        "{err}"
    );

    let r = create_recording(db, &call, 0).await;
    let err = c
        .add_pause(
            r.id,
            PauseSpan {
                start_ms: 5,
                end_ms: 4,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Invalid { .. }), "{err}");
    let err = c
        .list_recordings(&RecordingFilter::default(), &PageRequest::first(0))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CatalogError::Invalid { what: "limit", .. }),
        "{err}"
    );
}

/// Every (from, to) pair: allowed exactly when `can_become` says so, and a
/// refused change leaves the recording as it was.
async fn transition_rules(db: &TestDb) {
    let c = &db.catalog;
    let call = create_call(db, "call-rules").await;
    for &from in RecordingStatus::ALL {
        for &to in RecordingStatus::ALL {
            let r = recording_in(db, &call, from).await;
            let result = c.transition(r.id, &[from], to, "rule check", t(77)).await;
            if from.can_become(to) {
                let got = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                assert_eq!(got.status, to, "{from} -> {to}");
            } else {
                match result {
                    Err(CatalogError::ForbiddenTransition { from: f, to: t2 }) => {
                        assert_eq!((f, t2), (from, to));
                    }
                    other => panic!("{from} -> {to} should be forbidden, got {other:?}"),
                }
                assert_eq!(c.get_recording(r.id).await.unwrap(), r, "{from} -> {to}");
            }
        }
    }

    // `from` not holding the current status: StatusMismatch with the current.
    let r = recording_in(db, &call, Spooled).await;
    let err = c
        .transition(r.id, &[Rec, Paused], Finalizing, "late", t(1))
        .await
        .unwrap_err();
    match err {
        CatalogError::StatusMismatch {
            id,
            current,
            ref expected,
        } => {
            assert_eq!((id, current), (r.id, Spooled));
            assert_eq!(expected, "recording, paused");
        }
        other => panic!("expected StatusMismatch, got {other}"),
    }
    // mark_* check their own `from` sets.
    let err = c
        .mark_delivered(
            r.id,
            &StorageLocation {
                backend: "local".to_owned(),
                key: "k".to_owned(),
            },
            t(1),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::StatusMismatch {
                current: Spooled,
                ..
            }
        ),
        "{err}"
    );
    let delivered = recording_in(db, &call, Delivered).await;
    let err = c
        .record_attempt_failure(delivered.id, "late failure", t(1), t(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::StatusMismatch {
                current: Delivered,
                ..
            }
        ),
        "{err}"
    );
    let err = c
        .mark_spooled(delivered.id, &audio("/x"), "again", t(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::StatusMismatch {
                current: Delivered,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(c.get_recording(delivered.id).await.unwrap(), delivered);
}

/// Several workers claim one recording: exactly one gets it.
async fn concurrent_claims_have_one_winner(db: &TestDb) {
    let call = create_call(db, "call-claim").await;
    let r = recording_in(db, &call, Spooled).await;
    let catalog = Arc::new(db.catalog.clone());
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let catalog = catalog.clone();
        tasks.push(tokio::spawn(async move {
            catalog
                .transition(
                    r.id,
                    &[Spooled, Failed],
                    Uploading,
                    &format!("claimed by worker {worker}"),
                    t(1_000),
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(rec) => {
                won += 1;
                assert_eq!(rec.status, Uploading);
            }
            Err(CatalogError::StatusMismatch { current, .. }) => assert_eq!(current, Uploading),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(won, 1);
    let history = catalog.recording_detail(r.id).await.unwrap().history;
    assert_eq!(history.iter().filter(|h| h.to == Uploading).count(), 1);
}

async fn mark_deleted_keeps_the_audit(db: &TestDb) {
    let c = &db.catalog;
    let call = create_call(db, "call-del").await;
    let delivered = recording_in(db, &call, Delivered).await;
    let target = format!("recording/{}", delivered.id);
    let deleted = c
        .mark_deleted(
            delivered.id,
            "retention: 30 days",
            &audit(&target, AuditAction::RetentionDelete),
        )
        .await
        .unwrap();
    assert_eq!(deleted.status, Deleted);
    assert_eq!(deleted.status_reason, "retention: 30 days");
    assert_eq!(deleted.location, delivered.location, "location kept");

    let uploading = recording_in(db, &call, Uploading).await;
    let other_target = format!("recording/{}", uploading.id);
    let err = c
        .mark_deleted(
            uploading.id,
            "by alice",
            &audit(&other_target, AuditAction::Delete),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::StatusMismatch {
                current: Uploading,
                ..
            }
        ),
        "{err}"
    );

    let entries = c
        .audit_log(&AuditQuery {
            target: Some(target.clone()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, AuditAction::RetentionDelete);
    let none = c
        .audit_log(&AuditQuery {
            target: Some(other_target),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "a refused delete must not be audited");
}

async fn delivery_queries(db: &TestDb) {
    let c = &db.catalog;
    let call = create_call(db, "call-due").await;
    // a: spooled, due at t(10); b: failed, due at t(60_000); d: delivered.
    let a = recording_in(db, &call, Spooled).await;
    let b = recording_in(db, &call, Failed).await;
    let up = recording_in(db, &call, Uploading).await;
    let d = recording_in(db, &call, Delivered).await;
    let later = c
        .record_attempt_failure(up.id, "sftp: permission denied", t(30_000), t(25))
        .await
        .unwrap();

    let due_now = c
        .find_by_status(&StatusQuery {
            statuses: vec![Spooled, Failed],
            due_by: Some(t(40_000)),
            limit: 10,
        })
        .await
        .unwrap();
    let ids: Vec<_> = due_now.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![a.id, later.id], "due ones, soonest first");

    let all_pending = c
        .find_by_status(&StatusQuery {
            statuses: RecordingStatus::PENDING_DELIVERY.to_vec(),
            due_by: None,
            limit: 10,
        })
        .await
        .unwrap();
    let ids: Vec<_> = all_pending.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![a.id, later.id, b.id]);

    let limited = c
        .find_by_status(&StatusQuery {
            statuses: vec![Spooled, Failed],
            due_by: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert!(
        c.find_by_status(&StatusQuery {
            statuses: vec![],
            due_by: None,
            limit: 5
        })
        .await
        .unwrap()
        .is_empty()
    );

    let counts = c.count_by_status().await.unwrap();
    assert_eq!(counts.len(), RecordingStatus::ALL.len());
    assert_eq!(counts[&Spooled], 1);
    assert_eq!(counts[&Failed], 2);
    assert_eq!(counts[&Delivered], 1);
    assert_eq!(counts[&Rec], 0);

    // Retention: delivered at t(30).
    let old = c.delivered_before(t(31), 10).await.unwrap();
    assert_eq!(old.iter().map(|r| r.id).collect::<Vec<_>>(), vec![d.id]);
    assert!(c.delivered_before(t(30), 10).await.unwrap().is_empty());
}

async fn filters_and_paging(db: &TestDb) {
    let c = &db.catalog;
    let wanted = PhoneNumber::new("+34911000111").unwrap();
    let mut all = Vec::new();
    for i in 0..25_i64 {
        let direction = if i % 2 == 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let queue = if i % 3 == 0 { "sales" } else { "support" };
        let id = format!("call-{i:02}");
        c.create_call(&new_call(&id, direction, Some(queue), i * 1000))
            .await
            .unwrap();
        let number = if i % 5 == 0 {
            wanted.clone()
        } else {
            PhoneNumber::new(format!("+3460000{i:04}")).unwrap()
        };
        c.add_participant(
            &call_id(&id),
            &NewParticipant {
                role: ParticipantRole::EndUser,
                channel: Channel::Left,
                number: Some(number),
                name: None,
                joined_at: t(i * 1000),
            },
        )
        .await
        .unwrap();
        // Three recordings share one creation time: the id breaks the tie.
        let r = create_recording(db, &call_id(&id), (i / 3) * 1000).await;
        if i % 4 == 0 {
            c.transition(r.id, &[Rec], Finalizing, "ended", t(1))
                .await
                .unwrap();
        }
        all.push((i, r.id, direction, queue));
    }

    // Paging through everything: newest first, each once.
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let got = c
            .list_recordings(&RecordingFilter::default(), &page)
            .await
            .unwrap();
        assert!(got.items.len() <= 7);
        seen.extend(
            got.items
                .iter()
                .map(|item| (item.recording.created_at, item.recording.id)),
        );
        match got.next {
            Some(cursor) => {
                // The cursor survives its text form (it goes into URLs).
                let text = cursor.as_string();
                page.after = Some(text.parse().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(seen, sorted, "newest first, id descending on ties");
    let unique: BTreeSet<_> = seen.iter().map(|(_, id)| *id).collect();
    assert_eq!(unique.len(), 25);

    // Each filter, checked against the same filter applied here.
    let check = |filter: RecordingFilter, expected: Vec<RecordingId>| async move {
        let got = c
            .list_recordings(&filter, &PageRequest::first(100))
            .await
            .unwrap();
        let mut got: Vec<_> = got.items.iter().map(|i| i.recording.id).collect();
        let mut expected = expected;
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{filter:?}");
    };
    let ids = |pred: &dyn Fn(i64, Direction, &str) -> bool| {
        all.iter()
            .filter(|(i, _, d, q)| pred(*i, *d, q))
            .map(|(_, id, _, _)| *id)
            .collect::<Vec<_>>()
    };
    check(
        RecordingFilter {
            direction: Some(Direction::Outbound),
            ..Default::default()
        },
        ids(&|_, d, _| d == Direction::Outbound),
    )
    .await;
    check(
        RecordingFilter {
            queue: Some("sales".to_owned()),
            ..Default::default()
        },
        ids(&|_, _, q| q == "sales"),
    )
    .await;
    check(
        RecordingFilter {
            statuses: vec![Finalizing],
            ..Default::default()
        },
        ids(&|i, _, _| i % 4 == 0),
    )
    .await;
    check(
        RecordingFilter {
            participant_number: Some(wanted.clone()),
            ..Default::default()
        },
        ids(&|i, _, _| i % 5 == 0),
    )
    .await;
    // created_at = (i / 3) * 1000: [2000, 5000) holds i = 6..=14.
    check(
        RecordingFilter {
            from: Some(t(2000)),
            until: Some(t(5000)),
            ..Default::default()
        },
        ids(&|i, _, _| (6..=14).contains(&i)),
    )
    .await;
    check(
        RecordingFilter {
            direction: Some(Direction::Inbound),
            queue: Some("sales".to_owned()),
            statuses: vec![Rec, Finalizing],
            participant_number: Some(wanted.clone()),
            ..Default::default()
        },
        ids(&|i, d, q| d == Direction::Inbound && q == "sales" && i % 5 == 0),
    )
    .await;
    check(
        RecordingFilter {
            call_id: Some(call_id("call-07")),
            ..Default::default()
        },
        ids(&|i, _, _| i == 7),
    )
    .await;

    // The listing carries the call's fields.
    let one = c
        .list_recordings(
            &RecordingFilter {
                call_id: Some(call_id("call-03")),
                ..Default::default()
            },
            &PageRequest::first(5),
        )
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert_eq!(one.next, None);
    assert_eq!(one.items[0].direction, Direction::Outbound);
    assert_eq!(one.items[0].queue.as_deref(), Some("sales"));
    assert_eq!(one.items[0].call_started_at, t(3000));
}

// ------------------------------------------------------------- settings

fn settings(n: u64) -> NewSettings {
    NewSettings {
        document: json!({ "recording": { "format": "mp3", "retention_days": n } }),
        author: format!("admin{n}"),
        summary: format!("retention {n} days"),
        at: t(n as i64),
    }
}

async fn settings_versions(db: &TestDb) {
    let c = &db.catalog;
    assert_eq!(c.current_settings().await.unwrap(), None);
    let v1 = c.save_settings(0, &settings(1)).await.unwrap();
    assert_eq!(v1.version, 1);
    assert_eq!(v1.document, settings(1).document);

    let err = c.save_settings(0, &settings(9)).await.unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::SettingsConflict {
                base: 0,
                current: 1
            }
        ),
        "{err}"
    );
    let v2 = c.save_settings(1, &settings(2)).await.unwrap();
    assert_eq!(v2.version, 2);
    let err = c.save_settings(5, &settings(9)).await.unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::SettingsConflict {
                base: 5,
                current: 2
            }
        ),
        "{err}"
    );

    assert_eq!(c.current_settings().await.unwrap(), Some(v2.clone()));
    assert_eq!(c.settings_version(1).await.unwrap(), v1);
    let err = c.settings_version(3).await.unwrap_err();
    assert!(matches!(err, CatalogError::NotFound { .. }), "{err}");
    assert_eq!(
        c.settings_history(10).await.unwrap(),
        vec![v2.clone(), v1.clone()]
    );
    assert_eq!(c.settings_history(1).await.unwrap(), vec![v2]);

    let audit = c
        .audit_log(&AuditQuery {
            action: Some(AuditAction::SettingsChange),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let targets: Vec<_> = audit.iter().map(|a| a.target.as_str()).collect();
    assert_eq!(targets, ["settings/2", "settings/1"]);
    assert_eq!(audit[0].actor, "admin2");
    assert_eq!(audit[0].detail, json!({ "summary": "retention 2 days" }));
}

async fn concurrent_settings_saves_have_one_winner(db: &TestDb) {
    let c = &db.catalog;
    c.save_settings(0, &settings(1)).await.unwrap();
    let catalog = Arc::new(db.catalog.clone());
    let mut tasks = Vec::new();
    for n in 10..18 {
        let catalog = catalog.clone();
        tasks.push(tokio::spawn(async move {
            catalog.save_settings(1, &settings(n)).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(v) => winners.push(v),
            Err(CatalogError::SettingsConflict { base, current }) => {
                assert_eq!((base, current), (1, 2));
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one save wins");
    let current = c.current_settings().await.unwrap().unwrap();
    assert_eq!(current, winners[0]);
    assert_eq!(current.version, 2);
    let changes = c
        .audit_log(&AuditQuery {
            action: Some(AuditAction::SettingsChange),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(changes.len(), 2, "losers leave no audit entry");
}

// ---------------------------------------------------------------- audit

async fn audit_is_append_only(db: &TestDb) {
    let c = &db.catalog;
    let a = c
        .append_audit(&audit("recording/1", AuditAction::Listen))
        .await
        .unwrap();
    let b = c
        .append_audit(&NewAuditEntry {
            actor: "bob".to_owned(),
            ..audit("recording/1", AuditAction::Download)
        })
        .await
        .unwrap();
    let d = c
        .append_audit(&audit("recording/2", AuditAction::Listen))
        .await
        .unwrap();
    assert!(a.seq < b.seq && b.seq < d.seq);
    assert_eq!(a.detail, json!({ "why": "test" }));

    let all = c
        .audit_log(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all, vec![d.clone(), b.clone(), a.clone()]);
    let check = |q: AuditQuery, expected: Vec<AuditEntry>| async move {
        assert_eq!(c.audit_log(&q).await.unwrap(), expected, "{q:?}");
    };
    check(
        AuditQuery {
            target: Some("recording/1".to_owned()),
            limit: 10,
            ..Default::default()
        },
        vec![b.clone(), a.clone()],
    )
    .await;
    check(
        AuditQuery {
            actor: Some("bob".to_owned()),
            limit: 10,
            ..Default::default()
        },
        vec![b.clone()],
    )
    .await;
    check(
        AuditQuery {
            action: Some(AuditAction::Listen),
            limit: 10,
            ..Default::default()
        },
        vec![d.clone(), a.clone()],
    )
    .await;
    check(
        AuditQuery {
            before: Some(d.seq),
            limit: 1,
            ..Default::default()
        },
        vec![b.clone()],
    )
    .await;

    // The database itself refuses to change or remove entries.
    let pool = c.pool();
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
        .execute(pool)
        .await;
    assert!(update.is_err(), "UPDATE on the audit log must fail");
    let delete = sqlx::query("DELETE FROM audit_log").execute(pool).await;
    assert!(delete.is_err(), "DELETE on the audit log must fail");
    assert_eq!(
        c.audit_log(&AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap(),
        vec![d, b, a]
    );
}

// ----------------------------------------------------- storage settings

async fn storage_settings_replace_and_audit(db: &TestDb) {
    let c = &db.catalog;
    assert_eq!(c.storage_settings().await.unwrap(), None);
    let first = StorageSettings {
        document: json!({ "backend": "s3", "bucket": "a", "secret_key": "sk-one" }),
        author: "alice".to_owned(),
        saved_at: t(10),
    };
    c.save_storage_settings(&first, "backend s3, bucket a")
        .await
        .unwrap();
    assert_eq!(c.storage_settings().await.unwrap(), Some(first.clone()));
    let second = StorageSettings {
        document: json!({ "backend": "local", "root": "/srv/rec" }),
        author: "bob".to_owned(),
        saved_at: t(20),
    };
    c.save_storage_settings(&second, "backend local")
        .await
        .unwrap();
    assert_eq!(c.storage_settings().await.unwrap(), Some(second.clone()));
    assert!(
        !format!("{first:?}").contains("sk-one"),
        "debug shows no credential"
    );
    let audit = c
        .audit_log(&AuditQuery {
            action: Some(AuditAction::StorageSettingsChange),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let who: Vec<_> = audit
        .iter()
        .map(|a| (a.actor.as_str(), a.target.as_str(), a.detail.clone()))
        .collect();
    assert_eq!(
        who,
        [
            ("bob", "storage", json!({ "summary": "backend local" })),
            (
                "alice",
                "storage",
                json!({ "summary": "backend s3, bucket a" })
            ),
        ]
    );
    let reopened = db.reopen().await;
    assert_eq!(reopened.storage_settings().await.unwrap(), Some(second));
    reopened.close().await;
}

// ----------------------------------------------------------- migrations

async fn migrations_are_idempotent(db: &TestDb) {
    let call = create_call(db, "call-before-reopen").await;
    let r = create_recording(db, &call, 5).await;
    let second = db.reopen().await;
    let third = db.reopen().await;
    assert_eq!(second.get_recording(r.id).await.unwrap(), r);
    assert_eq!(third.get_call(&call).await.unwrap().id, call);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(second.pool())
        .await
        .unwrap();
    assert_eq!(applied, 1, "each migration is applied once");
    second.close().await;
    third.close().await;
}

async fn start_call_writes_everything_or_nothing(db: &TestDb) {
    let c = &db.catalog;
    let start = |id: &str, status: RecordingStatus| CallStart {
        call: new_call(id, Direction::Inbound, Some("sales"), 0),
        participants: vec![
            NewParticipant {
                role: ParticipantRole::EndUser,
                channel: Channel::Left,
                number: Some(PhoneNumber::new("+34911234567").unwrap()),
                name: None,
                joined_at: t(0),
            },
            NewParticipant {
                role: ParticipantRole::Agent,
                channel: Channel::Right,
                number: Some(PhoneNumber::new("1001").unwrap()),
                name: Some("Agent".to_owned()),
                joined_at: t(0),
            },
        ],
        decision: PolicyDecision {
            at: t(0),
            decision: "record".to_owned(),
            reason: "queue sales records all calls".to_owned(),
        },
        recording: NewRecording {
            call_id: call_id(id),
            format: RecordingFormat::Wav,
            status,
            reason: "policy: record".to_owned(),
            created_at: t(0),
        },
    };
    let done = c.start_call(&start("call-s", Rec)).await.unwrap();
    assert_eq!(done.recording.status, Rec);
    assert_eq!(done.recording.call_id, call_id("call-s"));
    assert_eq!(done.participants.len(), 2);
    assert_eq!(done.participants[1].role, ParticipantRole::Agent);
    assert_ne!(done.participants[0].id, done.participants[1].id);
    let call = c.get_call(&call_id("call-s")).await.unwrap();
    assert_eq!(call.decisions.len(), 1);
    assert_eq!(
        c.participants(&call_id("call-s")).await.unwrap(),
        done.participants
    );
    assert_eq!(
        c.get_recording(done.recording.id).await.unwrap(),
        done.recording
    );
    // A recording that may not start so: nothing of the call is written.
    let err = c
        .start_call(&start("call-bad", RecordingStatus::Delivered))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Invalid { .. }), "{err:?}");
    assert!(matches!(
        c.get_call(&call_id("call-bad")).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(
        c.participants(&call_id("call-bad"))
            .await
            .unwrap()
            .is_empty()
    );
    // The same call twice: refused, the first untouched.
    let err = c.start_call(&start("call-s", Rec)).await.unwrap_err();
    assert!(matches!(err, CatalogError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(c.participants(&call_id("call-s")).await.unwrap().len(), 2);
}

async fn apply_changes_commits_the_good_and_leaves_out_the_bad(db: &TestDb) {
    use CatalogChange::*;
    let c = &db.catalog;
    let call = create_call(db, "call-batch").await;
    let r = create_recording(db, &call, 1).await;
    let missing_call = call_id("call-nowhere");
    let missing_recording = RecordingId(uuid::Uuid::new_v4());
    let agent = NewParticipant {
        role: ParticipantRole::Agent,
        channel: Channel::Right,
        number: None,
        name: Some("Agent".to_owned()),
        joined_at: t(2),
    };
    let changes = vec![
        Transition {
            id: r.id,
            from: vec![Rec, Paused],
            to: Finalizing,
            reason: "call ended".to_owned(),
            at: t(100),
        },
        // Fails before any SQL.
        AddPause {
            id: r.id,
            span: PauseSpan {
                start_ms: 9,
                end_ms: 1,
            },
        },
        AddPause {
            id: r.id,
            span: PauseSpan {
                start_ms: 10,
                end_ms: 20,
            },
        },
        // Fail in the database (a foreign key): PostgreSQL would abort the
        // whole transaction here without the savepoint.
        AddPause {
            id: missing_recording,
            span: PauseSpan {
                start_ms: 1,
                end_ms: 2,
            },
        },
        AddDecision {
            call: missing_call.clone(),
            decision: PolicyDecision {
                at: t(3),
                decision: "record".to_owned(),
                reason: "x".to_owned(),
            },
        },
        EndCall {
            call: missing_call,
            at: t(100),
        },
        // Stale: the recording is finalizing by now.
        Transition {
            id: r.id,
            from: vec![Rec],
            to: Paused,
            reason: "hold".to_owned(),
            at: t(101),
        },
        EndCall {
            call: call.clone(),
            at: t(100),
        },
        AddParticipant {
            call: call.clone(),
            participant: agent,
        },
        AddDecision {
            call: call.clone(),
            decision: PolicyDecision {
                at: t(50),
                decision: "continue".to_owned(),
                reason: "the agent left; continuation is on".to_owned(),
            },
        },
        ParticipantLeft {
            participant_id: i64::MAX,
            at: t(60),
        },
        MarkSpooled {
            id: r.id,
            audio: audio("/spool/batch.wav"),
            reason: "file complete".to_owned(),
            at: t(110),
        },
    ];
    let out = c.apply_changes(&changes).await.expect("the batch commits");
    assert_eq!(out.len(), changes.len());
    let ok: Vec<bool> = out.iter().map(Result::is_ok).collect();
    assert_eq!(
        ok,
        [
            true, false, true, false, false, false, false, true, true, true, false, true
        ]
    );
    assert!(
        matches!(out[1], Err(CatalogError::Invalid { .. })),
        "{:?}",
        out[1]
    );
    assert!(
        matches!(out[3], Err(CatalogError::NotFound { .. })),
        "{:?}",
        out[3]
    );
    assert!(
        matches!(out[5], Err(CatalogError::NotFound { .. })),
        "{:?}",
        out[5]
    );
    assert!(
        matches!(
            out[6],
            Err(CatalogError::StatusMismatch {
                current: Finalizing,
                ..
            })
        ),
        "{:?}",
        out[6]
    );
    assert!(
        matches!(out[10], Err(CatalogError::NotFound { .. })),
        "{:?}",
        out[10]
    );
    let Ok(ChangeOutcome::Participant(p)) = &out[8] else {
        panic!("{:?}", out[8]);
    };
    let Ok(ChangeOutcome::Recording(spooled)) = &out[11] else {
        panic!("{:?}", out[11]);
    };
    assert_eq!(spooled.status, Spooled);
    assert_eq!(spooled.sha256.as_deref(), Some("ab".repeat(32).as_str()));
    // What is in the catalog now: the good changes, and nothing of the bad.
    let detail = c.recording_detail(r.id).await.unwrap();
    assert_eq!(detail.recording, **spooled);
    assert_eq!(
        detail.pauses,
        vec![PauseSpan {
            start_ms: 10,
            end_ms: 20
        }]
    );
    let statuses: Vec<RecordingStatus> = detail.history.iter().map(|h| h.to).collect();
    assert_eq!(statuses, [Rec, Finalizing, Spooled]);
    assert_eq!(detail.call.ended_at, Some(t(100)));
    assert_eq!(detail.call.decisions.len(), 1);
    assert_eq!(detail.call.decisions[0].decision, "continue");
    assert!(detail.participants.contains(p));
    assert!(matches!(
        c.get_call(&call_id("call-nowhere")).await,
        Err(CatalogError::NotFound { .. })
    ));
    // An empty batch is a no-op.
    assert!(c.apply_changes(&[]).await.unwrap().is_empty());
}

async fn group_commit_routes_each_result_to_its_caller(db: &TestDb) {
    let catalog: Arc<dyn Catalog> = Arc::new(db.catalog.clone());
    let group = GroupCommit::spawn(catalog.clone(), 16);
    let call = create_call(db, "call-group").await;
    let mut recordings = Vec::new();
    for i in 0..60 {
        recordings.push(create_recording(db, &call, i).await);
    }
    // 60 callers at once: the even recordings finalize, the odd ones ask
    // for a change the state machine forbids (recording -> delivered):
    // every caller must get its own answer, in batches of up to 16.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, r) in recordings.iter().enumerate() {
        let group = group.clone();
        let id = r.id;
        tasks.spawn(async move {
            let to = if i % 2 == 0 { Finalizing } else { Delivered };
            let change = CatalogChange::Transition {
                id,
                from: vec![Rec],
                to,
                reason: format!("caller {i}"),
                at: t(1_000 + i as i64),
            };
            (i, id, group.apply(change).await)
        });
    }
    let mut answered = 0;
    while let Some(done) = tasks.join_next().await {
        let (i, id, result) = done.unwrap();
        answered += 1;
        if i % 2 == 0 {
            match result {
                Ok(ChangeOutcome::Recording(r)) => {
                    assert_eq!(r.id, id, "caller {i} got another recording");
                    assert_eq!(r.status, Finalizing);
                    assert_eq!(r.status_reason, format!("caller {i}"));
                }
                other => panic!("caller {i}: {other:?}"),
            }
        } else {
            assert!(
                matches!(
                    result,
                    Err(CatalogError::ForbiddenTransition {
                        from: Rec,
                        to: Delivered
                    })
                ),
                "caller {i}: {result:?}"
            );
            assert_eq!(c_status(&catalog, id).await, Rec);
        }
    }
    assert_eq!(answered, 60);
    // Once every handle is gone the task ends; a new one works as before.
    drop(group);
    let again = GroupCommit::spawn(catalog.clone(), 1);
    let r = again
        .apply(CatalogChange::EndCall {
            call: call.clone(),
            at: t(9_000),
        })
        .await;
    assert!(matches!(r, Ok(ChangeOutcome::Done)), "{r:?}");
    assert_eq!(
        catalog.get_call(&call).await.unwrap().ended_at,
        Some(t(9_000))
    );
    // A call's start through the group: all of it, or (a second time,
    // the id taken) nothing of it.
    let start = CallStart {
        call: new_call("call-group-start", Direction::Inbound, None, 0),
        participants: vec![NewParticipant {
            role: ParticipantRole::EndUser,
            channel: Channel::Left,
            number: None,
            name: None,
            joined_at: t(0),
        }],
        decision: PolicyDecision {
            at: t(0),
            decision: "record".to_owned(),
            reason: "inbound calls are recorded".to_owned(),
        },
        recording: NewRecording {
            call_id: call_id("call-group-start"),
            format: RecordingFormat::Mp3,
            status: Rec,
            reason: "policy: record".to_owned(),
            created_at: t(0),
        },
    };
    let first = again
        .apply(CatalogChange::StartCall(Box::new(start.clone())))
        .await;
    let Ok(ChangeOutcome::Started(started)) = first else {
        panic!("{first:?}");
    };
    assert_eq!(started.participants.len(), 1);
    assert_eq!(started.recording.status, Rec);
    let second = again.apply(CatalogChange::StartCall(Box::new(start))).await;
    assert!(
        matches!(second, Err(CatalogError::AlreadyExists { .. })),
        "{second:?}"
    );
    let id = call_id("call-group-start");
    assert_eq!(catalog.participants(&id).await.unwrap().len(), 1);
    assert_eq!(catalog.recordings_of_call(&id).await.unwrap().len(), 1);
}

async fn c_status(catalog: &Arc<dyn Catalog>, id: RecordingId) -> RecordingStatus {
    catalog.get_recording(id).await.unwrap().status
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.catalog.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = super::TestDb::postgres().await;
                    super::$name(&db).await;
                    db.catalog.close().await;
                }
            )*
        }
    };
}

conformance!(
    calls_round_trip,
    participants_with_roles,
    recording_lifecycle_to_delivery,
    recording_bad_input,
    transition_rules,
    concurrent_claims_have_one_winner,
    mark_deleted_keeps_the_audit,
    delivery_queries,
    filters_and_paging,
    settings_versions,
    concurrent_settings_saves_have_one_winner,
    audit_is_append_only,
    storage_settings_replace_and_audit,
    migrations_are_idempotent,
    start_call_writes_everything_or_nothing,
    apply_changes_commits_the_good_and_leaves_out_the_bad,
    group_commit_routes_each_result_to_its_caller,
);
