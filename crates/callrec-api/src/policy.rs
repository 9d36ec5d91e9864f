//! `POST /api/v1/policy/evaluate`: what callrec would do with a described
//! call, so that an integrator can check the settings before real calls.
//!
//! The body describes the call, optionally the consent answer and the
//! participant events in order; the answer is each decision with its reason.
//! It changes nothing. By default the current settings decide; give
//! `settings_version` to replay a call with an older version.
//!
//! ```json
//! {"call": {"direction": "inbound", "entry": "phone_or_ivr", "queue": "sales", "language": "es-MX"},
//!  "consent": {"key": "1"},
//!  "events": [{"event": "third_party_added", "number": "+52 55 1234 5678"}, {"event": "agent_left"}]}
//! ```

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use callrec_policy::{
    CallDecision, CallPolicy, ConsentAnswer, ConsentDecision, NewCall, ParticipantDecision,
    ParticipantEvent, RecordingState, SettingsVersion,
};
use serde::{Deserialize, Serialize};

use crate::ApiState;
use crate::error::{ApiError, parse_json};

/// The policy routes.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/policy/evaluate", post(evaluate))
}

/// A described call.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// The settings version to decide with; the current one when left out.
    #[serde(default)]
    pub settings_version: Option<SettingsVersion>,
    /// The call's facts.
    pub call: NewCall,
    /// The answer to the permission prompt, if the caller answers.
    #[serde(default)]
    pub consent: Option<ConsentAnswer>,
    /// Participant events, in order.
    #[serde(default)]
    pub events: Vec<ParticipantEvent>,
}

/// The decisions for a described call.
#[derive(Debug, Serialize, Deserialize)]
pub struct EvaluateResponse {
    /// The settings version used.
    pub settings_version: SettingsVersion,
    /// The decision when the call starts.
    pub call: CallDecision,
    /// The decision for the consent answer, if one was given.
    pub consent: Option<ConsentDecision>,
    /// One decision per event, in order.
    pub events: Vec<EventOutcome>,
    /// Where the recording stands at the end.
    pub final_state: RecordingState,
}

/// An event and its decision.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventOutcome {
    /// The event as given.
    pub event: ParticipantEvent,
    /// What callrec does.
    pub decision: ParticipantDecision,
    /// Where the recording stands after it.
    pub state: RecordingState,
}

async fn evaluate(
    State(state): State<ApiState>,
    body: Bytes,
) -> Result<Json<EvaluateResponse>, ApiError> {
    let request: EvaluateRequest = parse_json(&body, "")?;
    let settings = match request.settings_version {
        None => state.settings.current().await?,
        Some(v) => state.settings.version(v).await?.ok_or_else(|| {
            ApiError::NotFound(format!(
                "there is no settings version {v}: leave settings_version out to use the current one"
            ))
        })?,
    };
    let settings_version = settings.version;
    let (mut policy, call) = CallPolicy::start(Arc::new(settings), &request.call);
    let consent = request.consent.map(|answer| policy.consent(answer));
    let events = request
        .events
        .into_iter()
        .map(|event| {
            let decision = policy.participant(&event);
            EventOutcome {
                event,
                decision,
                state: policy.state(),
            }
        })
        .collect();
    Ok(Json(EvaluateResponse {
        settings_version,
        call,
        consent,
        events,
        final_state: policy.state(),
    }))
}
