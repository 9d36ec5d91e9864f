//! The recording's life outside the media path: the catalog rows of each
//! call and the hand-over of finished recordings to the delivery worker.
//!
//! A call's task writes its calls/recordings rows once, before it answers
//! (signalling, not media: the id of the recording names its spool entry),
//! through a group commit shared by the calls arriving together.
//! Everything later goes through one bounded channel to one catalog task,
//! which applies the events in order, what is queued together with one
//! commit, and, once a recording is marked spooled, notifies the delivery
//! worker.
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
    Catalog, CatalogChange, ChangeOutcome, NewParticipant, PauseSpan, PolicyDecision, RecordingId,
    RecordingStatus, UnixMillis,
};
use callrec_storage::SpooledRecording;
use callrec_storage::delivery::{DeliveryHandle, spooled_change};
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
    /// The calls' start rows, group-committed: calls arriving together
    /// share commits (each call's rows still all or nothing).
    pub starts: callrec_catalog::GroupCommit,
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

/// Most events applied with one commit.
pub const CATALOG_BATCH: usize = 256;

/// Applies the events in order until [`CatalogEvent::Stop`] or every
/// sender is gone. Group commit: it waits for an event, takes whatever else
/// is queued (up to [`CATALOG_BATCH`]) and writes it all with one commit
/// ([`Catalog::apply_changes`]), so a burst of call ends costs a few
/// commits instead of three per call, and a lone event is written at once.
/// A catalog error is logged and the next change is taken: the spool and
/// the delivery worker's startup bring the catalog back in line with the
/// files.
pub(crate) async fn catalog_task(
    catalog: Arc<dyn Catalog>,
    delivery: DeliveryHandle,
    mut rx: mpsc::Receiver<CatalogEvent>,
) {
    let mut batch = Batch {
        catalog,
        delivery,
        participants: HashMap::new(),
        changes: Vec::new(),
        then: Vec::new(),
    };
    let mut events = Vec::with_capacity(CATALOG_BATCH);
    loop {
        if rx.recv_many(&mut events, CATALOG_BATCH).await == 0 {
            break;
        }
        let mut stop = false;
        for event in events.drain(..) {
            if matches!(event, CatalogEvent::Stop) {
                stop = true;
                break;
            }
            batch.add(event).await;
        }
        batch.commit().await;
        if stop {
            break;
        }
    }
}

/// What to do once a change of the batch is committed.
enum Then {
    /// Log a failure only.
    Nothing,
    /// Remember the participant's catalog id under (call, key).
    Joined(String, String),
    /// Hand the recording to the delivery worker.
    Deliver(RecordingId),
    /// The recording could not be finished: say so.
    FinishFailed(RecordingId),
}

/// The changes of the events taken so far, not yet committed.
struct Batch {
    catalog: Arc<dyn Catalog>,
    delivery: DeliveryHandle,
    /// The catalog ids of the participants of live calls, by (call, key).
    participants: HashMap<(String, String), i64>,
    changes: Vec<CatalogChange>,
    then: Vec<Then>,
}

impl Batch {
    fn push(&mut self, change: CatalogChange, then: Then) {
        self.changes.push(change);
        self.then.push(then);
    }

    async fn add(&mut self, event: CatalogEvent) {
        use RecordingStatus::*;
        let now = UnixMillis::now();
        match event {
            CatalogEvent::ParticipantJoined {
                call,
                key,
                participant,
            } => {
                let then = Then::Joined(call.as_str().to_owned(), key);
                self.push(CatalogChange::AddParticipant { call, participant }, then);
            }
            CatalogEvent::ParticipantsKnown { call, ids } => {
                for (key, id) in ids {
                    self.participants
                        .insert((call.as_str().to_owned(), key), id);
                }
            }
            CatalogEvent::ParticipantLeft { call, key, at } => {
                let k = (call.as_str().to_owned(), key);
                let joined_in_batch = self
                    .then
                    .iter()
                    .any(|t| matches!(t, Then::Joined(c, key) if (c, key) == (&k.0, &k.1)));
                if joined_in_batch {
                    // Its id comes with the commit.
                    self.commit().await;
                }
                // Unknown: joined before a restart, or its join was dropped.
                if let Some(&participant_id) = self.participants.get(&k) {
                    self.push(
                        CatalogChange::ParticipantLeft { participant_id, at },
                        Then::Nothing,
                    );
                }
            }
            CatalogEvent::Paused { id, paused, reason } => {
                let to = if paused { Paused } else { Recording };
                let change = CatalogChange::Transition {
                    id,
                    from: vec![Recording, Paused],
                    to,
                    reason,
                    at: now,
                };
                self.push(change, Then::Nothing);
            }
            CatalogEvent::Decision { call, decision } => {
                self.push(CatalogChange::AddDecision { call, decision }, Then::Nothing)
            }
            CatalogEvent::Finalizing { id, reason } => {
                let change = CatalogChange::Transition {
                    id,
                    from: vec![Recording, Paused],
                    to: Finalizing,
                    reason,
                    at: now,
                };
                self.push(change, Then::Nothing);
            }
            CatalogEvent::Spooled {
                id,
                call,
                entry,
                pauses,
                ended_at,
            } => {
                self.participants.retain(|(c, _), _| c != call.as_str());
                for span in pauses {
                    self.push(CatalogChange::AddPause { id, span }, Then::Nothing);
                }
                self.push(CatalogChange::EndCall { call, at: ended_at }, Then::Nothing);
                self.push(spooled_change(id, &entry), Then::Deliver(id));
            }
            CatalogEvent::FinishFailed { id, call, ended_at } => {
                self.participants.retain(|(c, _), _| c != call.as_str());
                self.push(
                    CatalogChange::EndCall { call, at: ended_at },
                    Then::FinishFailed(id),
                );
            }
            CatalogEvent::Stop => {}
        }
    }

    /// Writes the changes taken so far with one commit, then does what
    /// each asked for.
    async fn commit(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let changes = std::mem::take(&mut self.changes);
        let then = std::mem::take(&mut self.then);
        let results = match self.catalog.apply_changes(&changes).await {
            Ok(results) => results,
            Err(e) => {
                tracing::warn!(error = %e, changes = changes.len(), "catalog batch failed; nothing of it was written");
                return;
            }
        };
        for (result, then) in results.into_iter().zip(then) {
            match (result, then) {
                (Ok(ChangeOutcome::Participant(p)), Then::Joined(call, key)) => {
                    self.participants.insert((call, key), p.id);
                }
                (Ok(_), Then::Deliver(id)) => {
                    self.delivery.notify(id);
                }
                (_, Then::FinishFailed(id)) => tracing::warn!(
                    recording = %id,
                    "recording could not be finished; it stays in the spool and is repaired at the next start"
                ),
                (Ok(_), _) => {}
                (Err(e), _) => tracing::warn!(error = %e, "catalog update failed"),
            }
        }
    }
}
