//! Fixtures shared by the policy tests: a settings document with three
//! queues (one per recording mode) and three languages, and short
//! constructors for calls and events.

#![allow(dead_code)]

use std::sync::Arc;

use callrec_policy::*;
use time::OffsetDateTime;

pub fn lang(tag: &str) -> Language {
    Language::parse(tag).unwrap()
}

pub fn number(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n).unwrap()
}

pub fn queue(id: &str) -> QueueId {
    QueueId::parse(id).unwrap()
}

fn text(t: &str) -> Option<Message> {
    Some(Message::Text(t.to_owned()))
}

/// Queues `sales` (record), `hr` (do not record), `collections` (ask
/// permission); languages `en` (default, all messages), `es` (all
/// messages), `es-MX` (only the recording announcement); asking permission
/// allowed; everything else default.
pub fn fixture() -> Settings {
    let mut s = Settings::default();
    s.call_details.ask_user_permission = true;
    s.queues = vec![
        Queue {
            id: queue("sales"),
            name: "Sales".into(),
            recording_mode: QueueRecordingMode::Record,
        },
        Queue {
            id: queue("hr"),
            name: "Human resources".into(),
            recording_mode: QueueRecordingMode::DoNotRecord,
        },
        Queue {
            id: queue("collections"),
            name: "Collections".into(),
            recording_mode: QueueRecordingMode::AskPermission,
        },
    ];
    s.languages.messages.insert(
        lang("es"),
        LanguageMessages {
            recording_announcement: text("Esta llamada será grabada."),
            outbound_recording_message: text("Esta llamada saliente será grabada."),
            permission_prompt: text("Para no ser grabado, marque 1."),
        },
    );
    s.languages.messages.insert(
        lang("es-MX"),
        LanguageMessages {
            recording_announcement: text("Su llamada será grabada."),
            ..Default::default()
        },
    );
    s
}

/// The settings as version 7, validated.
pub fn version(settings: Settings) -> Arc<VersionedSettings> {
    Arc::new(VersionedSettings {
        version: SettingsVersion(7),
        settings: settings.validate().expect("test settings are valid"),
        changed_by: Actor::parse("ana").unwrap(),
        changed_at: OffsetDateTime::UNIX_EPOCH,
        changes: Vec::new(),
    })
}

pub fn inbound(entry: InboundEntry, q: Option<&str>, language: Option<&str>) -> NewCall {
    NewCall {
        origin: CallOrigin::Inbound { entry },
        queue: q.map(queue),
        language: language.map(lang),
    }
}

pub fn outbound(kind: OutboundKind, q: Option<&str>, language: Option<&str>) -> NewCall {
    NewCall {
        origin: CallOrigin::Outbound { kind },
        queue: q.map(queue),
        language: language.map(lang),
    }
}

pub fn third_party(n: &str) -> ParticipantEvent {
    ParticipantEvent::ThirdPartyAdded { number: number(n) }
}
