//! Group commit in front of a catalog: many tasks each asking for one
//! change, written together with one commit.
//!
//! On SQLite every commit is an fsync and there is one writer; on
//! PostgreSQL every commit is a round trip. A burst of hundreds of calls
//! ending at once made hundreds of single-change commits, one after the
//! other. [`GroupCommit`] is a task that takes the changes queued while
//! the previous batch was being written and writes them with
//! [`Catalog::apply_changes`]: a lone change is written at once, a burst
//! in a few commits. Each caller gets its own change's result.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::types::{CatalogChange, ChangeOutcome};

type Reply = oneshot::Sender<Result<ChangeOutcome, CatalogError>>;

/// A handle to the group-commit task; cheap to clone. The task ends when
/// every handle is dropped.
#[derive(Clone, Debug)]
pub struct GroupCommit {
    tx: mpsc::Sender<(CatalogChange, Reply)>,
}

impl GroupCommit {
    /// Starts the task (on the current tokio runtime) writing at most
    /// `max_batch` changes per commit.
    pub fn spawn(catalog: Arc<dyn Catalog>, max_batch: usize) -> GroupCommit {
        let max_batch = max_batch.max(1);
        let (tx, mut rx) = mpsc::channel::<(CatalogChange, Reply)>(max_batch * 4);
        tokio::spawn(async move {
            let mut queued = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut queued, max_batch).await > 0 {
                let (changes, replies): (Vec<_>, Vec<_>) = queued.drain(..).unzip();
                match catalog.apply_changes(&changes).await {
                    Ok(results) => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(e) => {
                        let why = e.to_string();
                        for reply in replies {
                            let _ = reply.send(Err(CatalogError::BatchFailed(why.clone())));
                        }
                    }
                }
            }
        });
        GroupCommit { tx }
    }

    /// Writes `change` with whatever else is queued, and returns its result.
    pub async fn apply(&self, change: CatalogChange) -> Result<ChangeOutcome, CatalogError> {
        let (reply, result) = oneshot::channel();
        let stopped = || CatalogError::BatchFailed("the group-commit task has stopped".into());
        self.tx.send((change, reply)).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }
}
