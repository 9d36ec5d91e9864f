//! The recording's life outside the media path: the catalog rows of each
//! call and the hand-over of finished recordings to the delivery worker.
//!
//! A call's task writes its calls/recordings rows once, before it answers
//! (signalling, not media: the id of the recording names its spool entry).
//! Everything later goes through one bounded channel to one catalog task,
//! which applies the events in order and, once a recording is marked
//! spooled, notifies the delivery worker.
//!
//! Channel: capacity [`EVENT_QUEUE`]. Events sent while the call runs
//! (pause, resume, policy decisions) use `try_send`: when the queue is full
//! they are dropped, counted in `callrec_catalog_events_dropped_total` and
//! logged; the recording's metadata JSON still has them. The events of a
//! call's end (finalizing, spooled) wait for room: the call's media is over
//! by then. This module never touches the packet path and never logs a
//! phone number.

use std::sync::Arc;

use std::collections::HashMap;

use callrec_catalog::{
    Catalog, NewParticipant, PauseSpan, PolicyDecision, RecordingId, RecordingStatus, UnixMillis,
};
use callrec_storage::SpooledRecording;
use callrec_storage::delivery::{DeliveryHandle, mark_spooled};
use tokio::sync::mpsc;

/// Capacity of the channel from the calls to the catalog task.
pub const EVENT_QUEUE: usize = 4096;

/// What a call tells the catalog after its start.
#[derive(Debug)]
pub(crate) enum CatalogEvent {
    /// The recording was paused (`true`) or resumed.
    Paused {
        id: RecordingId,
        paused: bool,
        reason: String,
    },
    /// A policy decision during the call.
    Decision {
        call: callrec_catalog::CallId,
        decision: PolicyDecision,
    },
    /// A participant joined (or was on the call at its start). `key` is
    /// the SIPREC metadata's participant id, to find it again when it leaves.
    ParticipantJoined {
        call: callrec_catalog::CallId,
        key: String,
        participant: NewParticipant,
    },
    /// The catalog ids of the participants written with the call's rows,
    /// by SIPREC participant id.
    ParticipantsKnown {
        call: callrec_catalog::CallId,
        ids: Vec<(String, i64)>,
    },
    /// A participant left.
    ParticipantLeft {
        call: callrec_catalog::CallId,
        key: String,
        at: UnixMillis,
    },
    /// The call ended: the file is being finalized.
    Finalizing { id: RecordingId, reason: String },
    /// The file is complete and fsynced in the spool.
    Spooled {
        id: RecordingId,
        call: callrec_catalog::CallId,
        entry: Box<SpooledRecording>,
        pauses: Vec<PauseSpan>,
        ended_at: UnixMillis,
    },
    /// The file could not be finished (it stays in the spool; the next
    /// start repairs and delivers it).
    FinishFailed {
        id: RecordingId,
        call: callrec_catalog::CallId,
        ended_at: UnixMillis,
    },
    /// Apply everything sent before, then stop (shutdown).
    Stop,
}

/// The catalog, spool and delivery side of a running server.
pub(crate) struct Pipeline {
    pub catalog: Arc<dyn Catalog>,
    pub spool: callrec_storage::Spool,
    pub events: mpsc::Sender<CatalogEvent>,
    pub delivery: DeliveryHandle,
}

impl Pipeline {
    /// Sends an event of a running call without waiting; returns false
    /// (and the caller counts it) when the queue is full.
    pub fn try_event(&self, event: CatalogEvent) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "catalog queue full: a call event is dropped (the recording's metadata keeps it)");
                false
            }
        }
    }
}

/// Applies the events in order until [`CatalogEvent::Stop`] or every
/// sender is gone. A catalog error is logged and the next event is taken:
/// the spool and the delivery worker's startup bring the catalog back in
/// line with the files.
pub(crate) async fn catalog_task(
    catalog: Arc<dyn Catalog>,
    delivery: DeliveryHandle,
    mut rx: mpsc::Receiver<CatalogEvent>,
) {
    use RecordingStatus::*;
    // The catalog ids of the participants of live calls, by (call, key).
    let mut participants: HashMap<(String, String), i64> = HashMap::new();
    while let Some(event) = rx.recv().await {
        let now = UnixMillis::now();
        let result = match event {
            CatalogEvent::ParticipantJoined {
                call,
                key,
                participant,
            } => match catalog.add_participant(&call, &participant).await {
                Ok(p) => {
                    participants.insert((call.as_str().to_owned(), key), p.id);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            CatalogEvent::ParticipantsKnown { call, ids } => {
                for (key, id) in ids {
                    participants.insert((call.as_str().to_owned(), key), id);
                }
                Ok(())
            }
            CatalogEvent::ParticipantLeft { call, key, at } => {
                match participants.get(&(call.as_str().to_owned(), key)) {
                    Some(&id) => catalog
                        .participant_left(id, at)
                        .await
                        .map_err(|e| e.to_string()),
                    // Joined before a restart, or its join was dropped.
                    None => Ok(()),
                }
            }
            CatalogEvent::Stop => break,
            CatalogEvent::Paused { id, paused, reason } => {
                let to = if paused { Paused } else { Recording };
                catalog
                    .transition(id, &[Recording, Paused], to, &reason, now)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            CatalogEvent::Decision { call, decision } => catalog
                .add_decision(&call, &decision)
                .await
                .map_err(|e| e.to_string()),
            CatalogEvent::Finalizing { id, reason } => catalog
                .transition(id, &[Recording, Paused], Finalizing, &reason, now)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            CatalogEvent::Spooled {
                id,
                call,
                entry,
                pauses,
                ended_at,
            } => {
                participants.retain(|(c, _), _| c != call.as_str());
                let mut result = Ok(());
                for p in pauses {
                    if let Err(e) = catalog.add_pause(id, p).await {
                        result = Err(e.to_string());
                    }
                }
                if let Err(e) = catalog.end_call(&call, ended_at).await {
                    result = Err(e.to_string());
                }
                match mark_spooled(catalog.as_ref(), id, &entry).await {
                    Ok(_) => {
                        delivery.notify(id);
                        result
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            CatalogEvent::FinishFailed { id, call, ended_at } => {
                participants.retain(|(c, _), _| c != call.as_str());
                let _ = catalog.end_call(&call, ended_at).await;
                Err(format!(
                    "recording {id} could not be finished; it stays in the spool and is repaired at the next start"
                ))
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "catalog update failed");
        }
    }
}
