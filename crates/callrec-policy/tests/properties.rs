//! Properties of the decision engine over random settings, calls, consent
//! answers and event sequences:
//! - recording never starts when call recording is off or the queue says do
//!   not record;
//! - a caller who declines is never recorded;
//! - without the continuation settings, nothing is recorded after the agent
//!   leaves.

mod common;

use std::sync::Arc;

use callrec_policy::*;
use common::*;
use proptest::prelude::*;

fn mode() -> impl Strategy<Value = QueueRecordingMode> {
    prop_oneof![
        Just(QueueRecordingMode::Record),
        Just(QueueRecordingMode::DoNotRecord),
        Just(QueueRecordingMode::AskPermission),
    ]
}

fn type_settings() -> impl Strategy<Value = OutboundTypeSettings> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(record, ask_permission, prompt_first)| OutboundTypeSettings {
            record,
            ask_permission,
            first_message: if prompt_first {
                FirstMessage::PermissionPrompt
            } else {
                FirstMessage::RecordingMessage
            },
        },
    )
}

/// Random valid settings (a [`VersionedSettings`] holds only valid ones):
/// random switches, queue modes and outbound types, with what validation
/// would refuse turned off.
fn settings() -> impl Strategy<Value = Settings> {
    (
        any::<[bool; 5]>(),
        mode(),
        mode(),
        type_settings(),
        type_settings(),
    )
        .prop_map(|(flags, q1, q2, callback, agent)| {
            let mut s = fixture();
            s.call_details.use_call_recording = flags[0];
            s.call_details.ask_user_permission = flags[1];
            s.call_details.leave_ongoing_calls_with_third_parties = flags[2];
            s.call_recording.continue_third_party_after_agent_leaves = flags[3];
            s.call_recording.continue_emergency_after_agent_leaves = flags[4];
            s.queues[0].recording_mode = q1;
            s.queues[2].recording_mode = q2;
            s.outbound.callback = callback;
            s.outbound.agent_initiated = agent;
            if !s.call_details.ask_user_permission {
                for q in &mut s.queues {
                    if q.recording_mode == QueueRecordingMode::AskPermission {
                        q.recording_mode = QueueRecordingMode::Record;
                    }
                }
                s.outbound.callback.ask_permission = false;
                s.outbound.agent_initiated.ask_permission = false;
            }
            if !s
                .call_details
                .missing_continuation_prerequisites()
                .is_empty()
            {
                s.call_recording = CallRecording::default();
            }
            s
        })
}

fn call() -> impl Strategy<Value = NewCall> {
    let origin = prop_oneof![
        proptest::sample::select(InboundEntry::ALL.to_vec())
            .prop_map(|entry| CallOrigin::Inbound { entry }),
        proptest::sample::select(OutboundKind::ALL.to_vec())
            .prop_map(|kind| CallOrigin::Outbound { kind }),
    ];
    let queue = proptest::option::of(proptest::sample::select(vec![
        "sales",
        "hr",
        "collections",
        "unlisted",
    ]));
    (origin, queue).prop_map(|(origin, q)| NewCall {
        origin,
        queue: q.map(common::queue),
        language: None,
    })
}

fn answer() -> impl Strategy<Value = ConsentAnswer> {
    prop_oneof![
        Just(ConsentAnswer::Timeout),
        (0u8..16).prop_map(|code| ConsentAnswer::Key(DtmfDigit::from_event(code).unwrap())),
    ]
}

fn event() -> impl Strategy<Value = ParticipantEvent> {
    let n = proptest::sample::select(vec!["911", "112", "5551234", "+525512345678"]);
    prop_oneof![
        n.clone()
            .prop_map(|x| ParticipantEvent::ThirdPartyAdded { number: number(x) }),
        n.clone()
            .prop_map(|x| ParticipantEvent::EmergencyNumberAdded { number: number(x) }),
        n.prop_map(|x| ParticipantEvent::ThirdPartyLeft { number: number(x) }),
        Just(ParticipantEvent::AgentLeft),
        Just(ParticipantEvent::EndUserLeft),
        Just(ParticipantEvent::Pause),
        Just(ParticipantEvent::Resume),
    ]
}

/// The actions under which audio is being taken after the step.
fn records(action: RecordingAction) -> bool {
    matches!(
        action,
        RecordingAction::Start
            | RecordingAction::Continue
            | RecordingAction::Resume
            | RecordingAction::Pause
    )
}

/// Runs a call and returns every action, the consent answer first.
fn run(
    settings: &Arc<VersionedSettings>,
    call: &NewCall,
    consent: Option<ConsentAnswer>,
    events: &[ParticipantEvent],
) -> (CallDecision, Vec<RecordingAction>, Vec<RecordingState>) {
    let (mut policy, decision) = CallPolicy::start(settings.clone(), call);
    let mut actions = Vec::new();
    let mut states = Vec::new();
    if let Some(a) = consent {
        actions.push(policy.consent(a).action);
        states.push(policy.state());
    }
    for e in events {
        actions.push(policy.participant(e).action);
        states.push(policy.state());
    }
    (decision, actions, states)
}

proptest! {
    #[test]
    fn recording_never_starts_when_call_recording_is_off_or_the_queue_says_do_not_record(
        s in settings(),
        call in call(),
        consent in proptest::option::of(answer()),
        events in proptest::collection::vec(event(), 0..8),
    ) {
        let v = version(s);
        let doc: &Settings = &v.settings;
        let dnr = call.queue.as_ref().and_then(|q| doc.queue(q)).map(|q| q.recording_mode)
            == Some(QueueRecordingMode::DoNotRecord);
        prop_assume!(!doc.call_details.use_call_recording || dnr);
        let (decision, actions, states) = run(&v, &call, consent, &events);
        prop_assert_eq!(decision.recording, StartRecording::Never);
        prop_assert!(decision.prompts.is_empty());
        prop_assert!(actions.iter().all(|a| *a == RecordingAction::NotRecorded), "{:?}", actions);
        prop_assert!(states.iter().all(|s| *s == RecordingState::Off));
    }

    #[test]
    fn a_declined_caller_is_never_recorded(
        s in settings(),
        call in call(),
        events in proptest::collection::vec(event(), 0..8),
    ) {
        let v = version(s);
        let (decision, actions, states) = run(&v, &call, Some(ConsentAnswer::Key(DtmfDigit::DECLINE)), &events);
        if decision.recording == StartRecording::AfterConsent {
            prop_assert!(actions.iter().all(|a| *a == RecordingAction::NotRecorded), "{:?}", actions);
            prop_assert!(states.iter().all(|s| *s == RecordingState::Declined));
        }
    }

    #[test]
    fn without_continuation_settings_nothing_is_recorded_after_the_agent_leaves(
        s in settings(),
        call in call(),
        consent in proptest::option::of(answer()),
        before in proptest::collection::vec(event(), 0..6),
        after in proptest::collection::vec(event(), 0..6),
    ) {
        let mut s = s;
        s.call_recording.continue_third_party_after_agent_leaves = false;
        s.call_recording.continue_emergency_after_agent_leaves = false;
        let v = version(s);
        let mut events = before;
        events.push(ParticipantEvent::AgentLeft);
        let left_at = events.len() - 1 + usize::from(consent.is_some());
        events.extend(after);
        let (_, actions, states) = run(&v, &call, consent, &events);
        for (i, (action, state)) in actions.iter().zip(&states).enumerate().skip(left_at) {
            prop_assert!(!records(*action), "step {}: {:?} in {:?}", i, action, actions);
            prop_assert!(!state.is_active(), "step {}: {:?}", i, state);
        }
    }
}
