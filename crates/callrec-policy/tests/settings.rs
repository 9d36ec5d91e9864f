//! The settings rules of the seed (prerequisites, defaults, the explicit
//! save) and the semantics of the settings store.

mod common;

use std::sync::Arc;

use callrec_policy::*;
use common::*;
use time::OffsetDateTime;

/// Validates `settings` and compares the problems as (field, message start).
fn check(settings: Settings, expected: &[(&str, &str)]) {
    let problems = settings.problems();
    let got: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.message.as_str()))
        .collect();
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for ((field, message), (want_field, want_start)) in got.iter().zip(expected) {
        assert_eq!(field, want_field, "{got:#?}");
        assert!(
            message.starts_with(want_start),
            "{field}: {message:?} should start with {want_start:?}"
        );
    }
}

// "Requisitos previos: Para habilitar la grabación continua de llamadas a
// números de terceros y de emergencia, debes habilitar los siguientes
// parámetros de configuración en Detalles de la llamada: Cómo usar la
// Grabación de llamadas; Ask User Permission to Record; Cómo abandonar
// llamadas en curso con terceros"
#[test]
fn continuation_needs_the_three_call_details_prerequisites() {
    const TP: &str = "call_recording.continue_third_party_after_agent_leaves";
    const EM: &str = "call_recording.continue_emergency_after_agent_leaves";
    let with = |use_rec: bool, ask: bool, leave: bool, tp: bool, em: bool| {
        let mut s = Settings::default();
        s.call_details.use_call_recording = use_rec;
        s.call_details.ask_user_permission = ask;
        s.call_details.leave_ongoing_calls_with_third_parties = leave;
        s.call_recording.continue_third_party_after_agent_leaves = tp;
        s.call_recording.continue_emergency_after_agent_leaves = em;
        s
    };
    check(with(true, true, true, true, true), &[]);
    check(with(false, false, false, false, false), &[]);
    check(
        with(false, false, false, true, false),
        &[
            (TP, "needs call_details.use_call_recording on"),
            (TP, "needs call_details.ask_user_permission on"),
            (
                TP,
                "needs call_details.leave_ongoing_calls_with_third_parties on",
            ),
        ],
    );
    check(
        with(true, false, true, false, true),
        &[(EM, "needs call_details.ask_user_permission on")],
    );
    check(
        with(true, true, false, true, true),
        &[
            (
                TP,
                "needs call_details.leave_ongoing_calls_with_third_parties on",
            ),
            (
                EM,
                "needs call_details.leave_ongoing_calls_with_third_parties on",
            ),
        ],
    );
    let err = with(true, false, false, true, false)
        .validate()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ask_user_permission")
            && text.contains("leave_ongoing_calls_with_third_parties"),
        "{text}"
    );
}

// "Selecciona Continuar la grabación de llamadas a números de terceros después
// de que el agente abandone la llamada. Esta casilla está desmarcada de forma
// predeterminada." (and the same for emergency numbers)
#[test]
fn continuation_checkboxes_are_unchecked_by_default() {
    let s = Settings::default();
    assert!(!s.call_recording.continue_third_party_after_agent_leaves);
    assert!(!s.call_recording.continue_emergency_after_agent_leaves);
    let from_empty: Settings = serde_json::from_str("{}").unwrap();
    assert_eq!(from_empty, s);
    assert!(s.problems().is_empty(), "{:?}", s.problems());
    let numbers: Vec<&str> = s
        .emergency_numbers
        .iter()
        .map(PhoneNumber::as_str)
        .collect();
    assert_eq!(numbers, ["911", "112", "999"]);
}

#[test]
fn validation_reports_every_problem_with_its_field() {
    let mut s = fixture();
    s.call_details.ask_user_permission = false;
    s.queues.push(Queue {
        id: queue("sales"),
        name: " ".into(),
        recording_mode: QueueRecordingMode::Record,
    });
    s.outbound.agent_initiated.ask_permission = true;
    s.emergency_numbers.push(number("9 1 1"));
    s.languages
        .messages
        .get_mut(&lang("es"))
        .unwrap()
        .permission_prompt = Some(Message::Text("  ".into()));
    check(
        s,
        &[
            (
                "queues[2].recording_mode",
                "needs call_details.ask_user_permission on",
            ),
            (
                "queues[3].id",
                "queue id `sales` is already used by queues[0]",
            ),
            ("queues[3].name", "give the queue a name"),
            (
                "outbound.agent_initiated.ask_permission",
                "needs call_details.ask_user_permission on",
            ),
            (
                "emergency_numbers[3]",
                "911 is already listed at emergency_numbers[0]",
            ),
            (
                "languages.messages.es.permission_prompt",
                "the message is empty",
            ),
        ],
    );

    let mut s = Settings::default();
    s.languages.default = lang("fr");
    check(s, &[("languages.default", "fr has no messages")]);

    let mut s = Settings::default();
    s.languages
        .messages
        .get_mut(&lang("en"))
        .unwrap()
        .recording_announcement = None;
    check(
        s.clone(),
        &[(
            "languages.messages.en.recording_announcement",
            "set the recording announcement of the default language",
        )],
    );
    s.call_details.use_call_recording = false;
    check(s, &[]);
}

#[test]
fn the_settings_document_round_trips_through_json() {
    let s = fixture();
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["queues"][2]["recording_mode"], "ask_permission");
    assert_eq!(
        json["outbound"]["callback"]["first_message"],
        "recording_message"
    );
    assert_eq!(
        json["languages"]["messages"]["es-MX"]["recording_announcement"]["text"],
        "Su llamada será grabada."
    );
    assert_eq!(json["emergency_numbers"][0], "911");
    let back: Settings = serde_json::from_value(json).unwrap();
    assert_eq!(back, s);
    // Reading valid settings from JSON validates them.
    let mut bad = serde_json::to_value(Settings::default()).unwrap();
    bad["call_recording"]["continue_emergency_after_agent_leaves"] = true.into();
    assert!(serde_json::from_value::<ValidSettings>(bad).is_err());
    assert!(
        serde_json::from_str::<Settings>(r#"{"emergency_numbers": ["nine-one-one"]}"#).is_err()
    );
    assert!(serde_json::from_str::<Settings>(r#"{"surprise": 1}"#).is_err());
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000 + seconds).unwrap()
}

// "Haz clic en Guardar detalles de llamadas." (SPEC 5: "Settings change only
// through an explicit save, as one versioned, audited change (who, when,
// what).")
#[tokio::test]
async fn settings_change_only_through_an_explicit_versioned_save() {
    let store = InMemorySettingsStore::new(ValidSettings::default(), at(0));
    let first = store.current().await.unwrap();
    assert_eq!(first.version, SettingsVersion::FIRST);
    assert_eq!(first.changed_by, Actor::system());

    let mut s = Settings::default();
    s.call_details.ask_user_permission = true;
    s.call_details.leave_ongoing_calls_with_third_parties = true;
    s.call_recording.continue_emergency_after_agent_leaves = true;
    let ana = Actor::parse("ana").unwrap();
    let second = store
        .save(
            SettingsVersion(1),
            s.clone().validate().unwrap(),
            ana.clone(),
            at(60),
        )
        .await
        .unwrap();
    assert_eq!(second.version, SettingsVersion(2));
    assert_eq!(second.changed_by, ana);
    assert_eq!(second.changed_at, at(60));
    assert_eq!(
        second.changes,
        [
            "call_details.ask_user_permission",
            "call_details.leave_ongoing_calls_with_third_parties",
            "call_recording.continue_emergency_after_agent_leaves",
        ]
    );

    // A save based on version 1 is stale now: refused, with the current version.
    let luis = Actor::parse("luis").unwrap();
    let stale = store
        .save(
            SettingsVersion(1),
            ValidSettings::default(),
            luis.clone(),
            at(61),
        )
        .await
        .unwrap_err();
    assert_eq!(
        stale,
        StoreError::Conflict {
            base: SettingsVersion(1),
            current: SettingsVersion(2)
        }
    );
    assert!(stale.to_string().contains("reload"), "{stale}");
    assert_eq!(store.current().await.unwrap(), second);

    // A save that changes nothing is still a version, with no changes listed.
    let third = store
        .save(
            SettingsVersion(2),
            s.validate().unwrap(),
            luis.clone(),
            at(120),
        )
        .await
        .unwrap();
    assert_eq!(third.version, SettingsVersion(3));
    assert!(third.changes.is_empty());

    let history = store.history(10).await.unwrap();
    let versions: Vec<u64> = history.iter().map(|h| h.version.0).collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(history[1].changed_by, ana);
    assert_eq!(store.history(1).await.unwrap().len(), 1);
    assert_eq!(
        store.version(SettingsVersion(1)).await.unwrap(),
        Some(first)
    );
    assert_eq!(store.version(SettingsVersion(9)).await.unwrap(), None);
}

#[test]
fn changed_fields_name_list_items_and_languages() {
    let old = fixture();
    let mut new = old.clone();
    new.queues[1].recording_mode = QueueRecordingMode::Record;
    new.languages
        .messages
        .get_mut(&lang("es-MX"))
        .unwrap()
        .permission_prompt = Some(Message::Audio("a1".into()));
    new.format = RecordingFormat::Wav;
    assert_eq!(
        settings::changed_fields(&old, &new),
        [
            "format",
            "languages.messages.es-MX.permission_prompt",
            "queues[1].recording_mode"
        ]
    );
    new.queues.pop();
    assert!(settings::changed_fields(&old, &new).contains(&"queues".to_owned()));
}

// SPEC 5: "A call keeps the settings version that it started with."
#[tokio::test]
async fn a_call_keeps_the_settings_version_it_started_with() {
    let store = InMemorySettingsStore::new(fixture().validate().unwrap(), at(0));
    let started_with = Arc::new(store.current().await.unwrap());
    let call = inbound(InboundEntry::PhoneOrIvr, Some("sales"), None);
    let (mut policy, decision) = CallPolicy::start(started_with, &call);
    assert_eq!(decision.recording, StartRecording::Now);

    // The admin turns recording off while the call goes on.
    let mut off = fixture();
    off.call_details.use_call_recording = false;
    let admin = Actor::parse("admin").unwrap();
    store
        .save(SettingsVersion(1), off.validate().unwrap(), admin, at(5))
        .await
        .unwrap();

    let d = policy.participant(&ParticipantEvent::Pause);
    assert_eq!(d.action, RecordingAction::Pause);
    assert_eq!(d.settings_version, SettingsVersion(1));
    let (_, next_call) = CallPolicy::start(Arc::new(store.current().await.unwrap()), &call);
    assert_eq!(next_call.recording, StartRecording::Never);
    assert_eq!(next_call.settings_version, SettingsVersion(2));
}
