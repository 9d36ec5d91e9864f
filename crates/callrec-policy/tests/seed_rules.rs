//! One table-driven test per rule of the seed document (and of SPEC.md
//! sections 3 to 6), named after the rule, with the seed's Spanish sentence
//! above it. Each area has one `check` helper: the input, and what the
//! policy must answer.

mod common;

use std::sync::Arc;

use callrec_policy::*;
use common::*;

use MessageKind::{
    OutboundRecordingMessage as Outbound, PermissionPrompt as Permission,
    RecordingAnnouncement as Announcement,
};

/// What a new call must get: when recording starts and which prompts play,
/// as (message, language) in order.
struct Expect {
    recording: StartRecording,
    prompts: Vec<(MessageKind, &'static str)>,
}

fn expect(recording: StartRecording, prompts: &[(MessageKind, &'static str)]) -> Expect {
    Expect {
        recording,
        prompts: prompts.to_vec(),
    }
}

fn check(settings: &Arc<VersionedSettings>, call: NewCall, expected: Expect) {
    let (policy, decision) = CallPolicy::start(settings.clone(), &call);
    let got: Vec<(MessageKind, String)> = decision
        .prompts
        .iter()
        .map(|p| (p.message, p.language.to_string()))
        .collect();
    let want: Vec<(MessageKind, String)> = expected
        .prompts
        .iter()
        .map(|(k, l)| (*k, (*l).to_owned()))
        .collect();
    assert_eq!(
        decision.recording, expected.recording,
        "{call:?}: {}",
        decision.reason
    );
    assert_eq!(got, want, "{call:?}: {}", decision.reason);
    assert_eq!(
        decision.wait_for_opt_out_key,
        expected.recording == StartRecording::AfterConsent,
        "{call:?}"
    );
    assert_eq!(decision.settings_version, SettingsVersion(7));
    assert_eq!(policy.settings_version(), SettingsVersion(7));
    assert!(!decision.reason.is_empty());
}

// "El mensaje de anuncio se configura en el portal de la Plataforma de CCAI
// en Configuración > Idiomas y mensajes y se reproduce para las llamadas
// entrantes."
#[test]
fn inbound_calls_hear_the_recording_announcement() {
    let s = version(fixture());
    for entry in InboundEntry::ALL {
        // In the caller's language, falling back to the general tag, then
        // to the default language.
        check(
            &s,
            inbound(entry, Some("sales"), Some("es-MX")),
            expect(StartRecording::Now, &[(Announcement, "es-MX")]),
        );
        check(
            &s,
            inbound(entry, Some("sales"), Some("es-AR")),
            expect(StartRecording::Now, &[(Announcement, "es")]),
        );
        check(
            &s,
            inbound(entry, Some("sales"), Some("fr-CA")),
            expect(StartRecording::Now, &[(Announcement, "en")]),
        );
        check(
            &s,
            inbound(entry, Some("sales"), None),
            expect(StartRecording::Now, &[(Announcement, "en")]),
        );
        // A call without a queue, or of a queue the settings do not list, is recorded.
        check(
            &s,
            inbound(entry, None, Some("es")),
            expect(StartRecording::Now, &[(Announcement, "es")]),
        );
        check(
            &s,
            inbound(entry, Some("unlisted"), None),
            expect(StartRecording::Now, &[(Announcement, "en")]),
        );
    }
}

// "En el caso de las llamadas salientes, consulta Grabación de llamadas:
// Opciones de configuración"
#[test]
fn inbound_announcement_not_played_for_outbound_calls() {
    let s = version(fixture());
    for kind in OutboundKind::ALL {
        check(
            &s,
            outbound(kind, Some("sales"), Some("es")),
            expect(StartRecording::Now, &[(Outbound, "es")]),
        );
        check(
            &s,
            outbound(kind, None, None),
            expect(StartRecording::Now, &[(Outbound, "en")]),
        );
    }
}

// "Un agente hace clic en la opción “Colgar y devolver la llamada” en el
// adaptador del agente durante una llamada."
#[test]
fn inbound_announcement_not_played_for_hang_up_and_call_back() {
    let s = version(fixture());
    check(
        &s,
        outbound(
            OutboundKind::HangUpAndCallBack,
            Some("sales"),
            Some("es-MX"),
        ),
        // es-MX has no outbound message: the general `es` plays.
        expect(StartRecording::Now, &[(Outbound, "es")]),
    );
    assert_eq!(
        OutboundKind::HangUpAndCallBack.outbound_type(),
        OutboundType::AgentInitiated
    );
}

// "La persona que llama elige "Devolución de llamada" como opción cuando no
// hay agentes disponibles para atender la llamada (debe tener activada la
// opción Devolución de llamada como opción de desvío por exceso de
// capacidad)."
#[test]
fn inbound_announcement_not_played_for_overflow_callback() {
    let s = version(fixture());
    check(
        &s,
        outbound(OutboundKind::OverflowCallback, Some("sales"), Some("es")),
        expect(StartRecording::Now, &[(Outbound, "es")]),
    );
}

// "La opción "Programar una llamada" que selecciona la persona que llama
// está disponible para los SDKs para dispositivos móviles y web."
#[test]
fn inbound_announcement_not_played_for_scheduled_call() {
    let s = version(fixture());
    check(
        &s,
        outbound(OutboundKind::ScheduledCall, Some("sales"), None),
        expect(StartRecording::Now, &[(Outbound, "en")]),
    );
}

// "Existen 2 tipos de llamadas salientes para los fines de la Grabación de
// llamadas: Devolución de llamada y Llamada iniciada por el agente."
// "El sistema realiza automáticamente las llamadas salientes de devolución de
// llamada cuando el llamador llega al principio de la fila al seleccionar
// "devolución de llamada" en la configuración de sobrecapacidad o para las
// llamadas programadas."
// "Las llamadas iniciadas por el agente son llamadas salientes en las que el
// agente debe realizar una acción deliberada para hacer la llamada"
#[test]
fn outbound_calls_are_of_two_types_callback_and_agent_initiated() {
    let cases = [
        (OutboundKind::OverflowCallback, OutboundType::Callback),
        (OutboundKind::ScheduledCall, OutboundType::Callback),
        (
            OutboundKind::HangUpAndCallBack,
            OutboundType::AgentInitiated,
        ),
        (OutboundKind::Dialpad, OutboundType::AgentInitiated),
        (OutboundKind::CrmClickToCall, OutboundType::AgentInitiated),
        (
            OutboundKind::VoicemailCallback,
            OutboundType::AgentInitiated,
        ),
        (
            OutboundKind::ShortAbandonedCallback,
            OutboundType::AgentInitiated,
        ),
    ];
    assert_eq!(cases.len(), OutboundKind::ALL.len());
    for (kind, ty) in cases {
        assert_eq!(kind.outbound_type(), ty, "{kind:?}");
    }
}

// "Un agente usa el teclado de marcado en el adaptador de agentes para
// realizar una llamada" / "Un agente hace clic en un número de teléfono en el
// registro del CRM para realizar una llamada." / "Un agente escucha un
// mensaje de voz y usa la función de devolución de llamada" / "Las
// devoluciones de llamada de llamadas cortas se ven en las funciones de
// recuperación de llamadas"
// (SPEC 3: each type enabled for recording separately.)
#[test]
fn each_outbound_type_is_recorded_separately() {
    let mut only_callbacks = fixture();
    only_callbacks.outbound.agent_initiated.record = false;
    let only_callbacks = version(only_callbacks);
    let mut only_agents = fixture();
    only_agents.outbound.callback.record = false;
    let only_agents = version(only_agents);
    for kind in OutboundKind::ALL {
        let (recorded, not_recorded) = match kind.outbound_type() {
            OutboundType::Callback => (&only_callbacks, &only_agents),
            OutboundType::AgentInitiated => (&only_agents, &only_callbacks),
        };
        check(
            recorded,
            outbound(kind, None, None),
            expect(StartRecording::Now, &[(Outbound, "en")]),
        );
        check(
            not_recorded,
            outbound(kind, None, None),
            expect(StartRecording::Never, &[]),
        );
    }
}

// "Graba un mensaje de llamada saliente ... se reproduce para las llamadas
// salientes." (SPEC 3: an optional permission prompt, and an admin choice of
// which of the two messages plays first.)
#[test]
fn outbound_first_message_is_the_admins_choice() {
    for kind in OutboundKind::ALL {
        for first in [
            FirstMessage::PermissionPrompt,
            FirstMessage::RecordingMessage,
        ] {
            let mut s = fixture();
            s.outbound.callback.ask_permission = true;
            s.outbound.callback.first_message = first;
            s.outbound.agent_initiated.ask_permission = true;
            s.outbound.agent_initiated.first_message = first;
            let s = version(s);
            let order: &[(MessageKind, &str)] = match first {
                FirstMessage::PermissionPrompt => &[(Permission, "es"), (Outbound, "es")],
                FirstMessage::RecordingMessage => &[(Outbound, "es"), (Permission, "es")],
            };
            check(
                &s,
                outbound(kind, None, Some("es")),
                expect(StartRecording::AfterConsent, order),
            );
        }
    }
}

// SPEC 4: "Per queue: Record, Do not record, or Ask permission."
#[test]
fn queue_recording_mode_decides_recording() {
    let s = version(fixture());
    for entry in InboundEntry::ALL {
        check(
            &s,
            inbound(entry, Some("sales"), None),
            expect(StartRecording::Now, &[(Announcement, "en")]),
        );
        check(
            &s,
            inbound(entry, Some("hr"), None),
            expect(StartRecording::Never, &[]),
        );
        check(
            &s,
            inbound(entry, Some("collections"), Some("es")),
            expect(
                StartRecording::AfterConsent,
                &[(Announcement, "es"), (Permission, "es")],
            ),
        );
    }
    // Outbound: the stricter of the queue and the outbound type.
    for kind in OutboundKind::ALL {
        check(
            &s,
            outbound(kind, Some("hr"), None),
            expect(StartRecording::Never, &[]),
        );
        check(
            &s,
            outbound(kind, Some("collections"), None),
            expect(
                StartRecording::AfterConsent,
                &[(Outbound, "en"), (Permission, "en")],
            ),
        );
    }
}

// SPEC 3-4: "Use call recording" is the master switch.
#[test]
fn nothing_is_recorded_when_call_recording_is_off() {
    let mut s = fixture();
    s.call_details.use_call_recording = false;
    let s = version(s);
    for entry in InboundEntry::ALL {
        for q in ["sales", "hr", "collections"] {
            check(
                &s,
                inbound(entry, Some(q), None),
                expect(StartRecording::Never, &[]),
            );
        }
    }
    for kind in OutboundKind::ALL {
        check(
            &s,
            outbound(kind, Some("sales"), None),
            expect(StartRecording::Never, &[]),
        );
    }
}

/// Starts a call, answers the permission prompt if given, feeds the events,
/// and compares the action of each step (the consent answer first).
fn check_events(
    settings: &Arc<VersionedSettings>,
    call: NewCall,
    consent: Option<ConsentAnswer>,
    events: &[ParticipantEvent],
    expected: &[RecordingAction],
) {
    let (mut policy, _) = CallPolicy::start(settings.clone(), &call);
    let mut got = Vec::new();
    let mut reasons = Vec::new();
    if let Some(answer) = consent {
        let d = policy.consent(answer);
        got.push(d.action);
        reasons.push(d.reason);
    }
    for event in events {
        let d = policy.participant(event);
        assert_eq!(d.settings_version, SettingsVersion(7));
        got.push(d.action);
        reasons.push(d.reason);
    }
    assert_eq!(
        got, expected,
        "{call:?} {consent:?} {events:?}\n{reasons:#?}"
    );
}

// SPEC 4: "the prompt says to press 1 to not be recorded; any other key, or
// none before the timeout, means recorded. A caller who declines is not
// recorded at all"
#[test]
fn pressing_1_declines_and_anything_else_records() {
    use RecordingAction::*;
    let s = version(fixture());
    let call = || inbound(InboundEntry::PhoneOrIvr, Some("collections"), None);
    let key = |k: &str| ConsentAnswer::Key(DtmfDigit::parse(k).unwrap());
    check_events(
        &s,
        call(),
        Some(key("1")),
        &[ParticipantEvent::Pause, ParticipantEvent::Resume],
        &[NotRecorded, NotRecorded, NotRecorded],
    );
    for k in ["0", "2", "9", "*", "#", "A"] {
        check_events(
            &s,
            call(),
            Some(key(k)),
            &[ParticipantEvent::Pause],
            &[Start, Pause],
        );
    }
    check_events(&s, call(), Some(ConsentAnswer::Timeout), &[], &[Start]);
    // No permission asked: a key changes nothing.
    check_events(
        &s,
        inbound(InboundEntry::PhoneOrIvr, Some("sales"), None),
        Some(key("1")),
        &[],
        &[Continue],
    );

    let (mut policy, _) = CallPolicy::start(s.clone(), &call());
    assert_eq!(
        policy.consent(key("1")).outcome,
        Some(ConsentOutcome::Declined)
    );
    assert_eq!(policy.state(), RecordingState::Declined);
    let (mut policy, _) = CallPolicy::start(s.clone(), &call());
    assert_eq!(
        policy.consent(key("5")).outcome,
        Some(ConsentOutcome::OtherKey)
    );
    let (mut policy, _) = CallPolicy::start(s, &call());
    assert_eq!(
        policy.consent(ConsentAnswer::Timeout).outcome,
        Some(ConsentOutcome::NoAnswer)
    );
}

fn with_continuation(third_party: bool, emergency: bool) -> Arc<VersionedSettings> {
    let mut s = fixture();
    s.call_details.leave_ongoing_calls_with_third_parties = true;
    s.call_recording.continue_third_party_after_agent_leaves = third_party;
    s.call_recording.continue_emergency_after_agent_leaves = emergency;
    version(s)
}

// "Puedes habilitar la grabación de llamadas para que continúe si un agente
// abandona la llamada después de agregar a un tercero. También se puede
// habilitar para los números de emergencia."
#[test]
fn recording_continues_after_agent_leaves_only_when_enabled() {
    use ParticipantEvent as E;
    use ParticipantEvent::{AgentLeft, ThirdPartyLeft};
    use RecordingAction::*;
    let emergency = || ParticipantEvent::EmergencyNumberAdded {
        number: number("911"),
    };
    let listed_emergency = || third_party("1-1-2");
    let call = || inbound(InboundEntry::PhoneOrIvr, Some("sales"), None);
    let cases: [(bool, bool, Vec<ParticipantEvent>, Vec<RecordingAction>); 12] = [
        // Without any added party the recording stops when the agent leaves.
        (true, true, vec![AgentLeft], vec![Stop]),
        // Third party.
        (
            false,
            false,
            vec![third_party("+52 55 1234 5678"), AgentLeft],
            vec![Continue, Stop],
        ),
        (
            true,
            false,
            vec![third_party("+52 55 1234 5678"), AgentLeft],
            vec![Continue, Continue],
        ),
        (
            false,
            true,
            vec![third_party("+52 55 1234 5678"), AgentLeft],
            vec![Continue, Stop],
        ),
        // Emergency number, by signalling or by the list.
        (
            false,
            false,
            vec![emergency(), AgentLeft],
            vec![Continue, Stop],
        ),
        (
            false,
            true,
            vec![emergency(), AgentLeft],
            vec![Continue, Continue],
        ),
        (
            true,
            false,
            vec![emergency(), AgentLeft],
            vec![Continue, Stop],
        ),
        (
            true,
            false,
            vec![listed_emergency(), AgentLeft],
            vec![Continue, Stop],
        ),
        (
            false,
            true,
            vec![listed_emergency(), AgentLeft],
            vec![Continue, Continue],
        ),
        // Both kinds present: both settings needed.
        (
            true,
            false,
            vec![third_party("5551234"), emergency(), AgentLeft],
            vec![Continue, Continue, Stop],
        ),
        (
            true,
            true,
            vec![third_party("5551234"), emergency(), AgentLeft],
            vec![Continue, Continue, Continue],
        ),
        // After continuing, the last added party leaving ends the recording.
        (
            true,
            false,
            vec![
                third_party("5551234"),
                AgentLeft,
                E::Pause,
                E::Resume,
                ThirdPartyLeft {
                    number: number("555-1234"),
                },
                E::Pause,
            ],
            vec![Continue, Continue, Pause, Resume, Stop, NotRecorded],
        ),
    ];
    for (tp, em, events, expected) in cases {
        check_events(&with_continuation(tp, em), call(), None, &events, &expected);
    }
    // Outbound calls follow the same rule.
    for kind in OutboundKind::ALL {
        check_events(
            &with_continuation(false, false),
            outbound(kind, None, None),
            None,
            &[third_party("5551234"), AgentLeft],
            &[Continue, Stop],
        );
        check_events(
            &with_continuation(true, false),
            outbound(kind, None, None),
            None,
            &[third_party("5551234"), AgentLeft],
            &[Continue, Continue],
        );
    }
}

// "Estéreo de doble canal, con el usuario final en el canal 1 y el agente en
// el canal 2." (SPEC 1: parties the agent adds are mixed into channel 2.)
#[test]
fn added_parties_go_to_the_agent_channel() {
    let s = version(fixture());
    let cases = [
        (third_party("5551234"), AddedPartyKind::ThirdParty),
        (third_party("(911)"), AddedPartyKind::EmergencyNumber),
        (
            ParticipantEvent::EmergencyNumberAdded {
                number: number("5551234"),
            },
            AddedPartyKind::EmergencyNumber,
        ),
    ];
    for (event, kind) in cases {
        let (mut policy, _) =
            CallPolicy::start(s.clone(), &inbound(InboundEntry::PhoneOrIvr, None, None));
        let d = policy.participant(&event);
        assert_eq!(d.channel, Some(Channel::Agent));
        assert_eq!(d.channel.map(Channel::number), Some(2));
        assert_eq!(d.party, Some(kind), "{event:?}");
    }
    assert_eq!(Channel::EndUser.number(), 1);
}

// SPEC 5: "an emergency number (a configurable list, e.g. 911, 112, 999)"
#[test]
fn emergency_numbers_are_recognized_on_normalized_numbers() {
    let mut s = Settings::default();
    let cases = [
        ("911", true),
        ("9-1-1", true),
        (" 112 ", true),
        ("(999)", true),
        ("+1 911", false),
        ("9110", false),
    ];
    for (n, emergency) in cases {
        assert_eq!(s.is_emergency_number(&number(n)), emergency, "{n}");
    }
    s.emergency_numbers = vec![number("066")];
    assert!(s.is_emergency_number(&number("0-6-6")));
    assert!(!s.is_emergency_number(&number("911")));
}

// SPEC 6: "The agent or an integration pauses and resumes the recording
// (card numbers, PCI)."
#[test]
fn pause_and_resume_redact_a_span() {
    use ParticipantEvent as E;
    use RecordingAction::*;
    let s = version(fixture());
    let recorded = || inbound(InboundEntry::WebOrMobileSdk, Some("sales"), None);
    check_events(
        &s,
        recorded(),
        None,
        &[E::Pause, E::Pause, E::Resume, E::Resume],
        &[Pause, Continue, Resume, Continue],
    );
    check_events(
        &s,
        inbound(InboundEntry::PhoneOrIvr, Some("hr"), None),
        None,
        &[E::Pause, E::Resume],
        &[NotRecorded, NotRecorded],
    );
    check_events(
        &s,
        recorded(),
        None,
        &[E::Pause, E::EndUserLeft, E::Resume],
        &[Pause, Stop, NotRecorded],
    );
    assert_eq!(Settings::default().pause_mode, PauseMode::Silence);
}

// "El formato del archivo de audio se puede configurar como MP3 o WAV."
#[test]
fn format_is_mp3_by_default_or_wav() {
    assert_eq!(Settings::default().format, RecordingFormat::Mp3);
    let wav: Settings = serde_json::from_str(r#"{"format": "wav"}"#).unwrap();
    assert_eq!(wav.format, RecordingFormat::Wav);
    assert!(serde_json::from_str::<Settings>(r#"{"format": "ogg"}"#).is_err());
}
