//! Group commit: one writer task per [`Store`](super::Store) runs every
//! batched write.
//!
//! Callers send a write and wait on a oneshot. The task takes one write,
//! then whatever else is already queued (up to [`MAX_BATCH`]), and runs them
//! all in ONE transaction, each inside its own savepoint: a write that fails
//! rolls back to its savepoint and gets its own error while the others go
//! on. After the commit every caller is answered, so a post is acknowledged
//! only once it is durable. The commit (the fsync, the round trip) is paid
//! once per batch instead of once per post; under load the batch grows by
//! itself, because callers queue while the previous batch commits.
//!
//! If the transaction itself fails (the connection drops, the commit is
//! refused), every write in the batch gets `Unavailable`; none of them was
//! stored, or — when the commit's answer was lost — all were, and a retry
//! with the same idempotency keys replays them.
//!
//! Not here: retries (the caller decides) and ordering across stores (each
//! node has its own writer; PostgreSQL row locks order them).

use std::sync::Mutex;

use sqlx::{AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::write::{Write, Written};
use super::{db_err, Backend};
use crate::error::StoreError;

/// Writes per transaction at most: bounds how long one commit holds the
/// SQLite write lock and how much a failed commit takes down with it.
pub(super) const MAX_BATCH: usize = 256;

/// Writes waiting for the writer; beyond this, callers wait to enqueue
/// (backpressure instead of unbounded memory).
const QUEUE: usize = 4 * MAX_BATCH;

type Reply = oneshot::Sender<Result<Written, StoreError>>;

struct Job {
    write: Write,
    reply: Reply,
}

/// The handle to a store's writer task.
pub(super) struct Writer {
    /// `None` once closed. Cloned per submit and dropped right after, so
    /// closing (taking it) lets the task see the channel end once queued
    /// writes are done.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    task: Mutex<Option<JoinHandle<()>>>,
    pool: AnyPool,
}

/// The error for an answer of the wrong kind, which `run_batch` never gives.
pub(super) fn wrong_answer() -> StoreError {
    StoreError::Unavailable("writer answered a different kind of write".into())
}

fn closed() -> StoreError {
    StoreError::Unavailable("store is closed".into())
}

impl Writer {
    /// Starts the writer task on `pool` (a pool of one connection).
    pub(super) fn spawn(backend: Backend, pool: AnyPool) -> Writer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(backend, pool.clone(), rx));
        Writer {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            pool,
        }
    }

    /// Queues a write and waits until its batch has committed (or failed).
    pub(super) async fn submit(&self, write: Write) -> Result<Written, StoreError> {
        let tx = self
            .tx
            .lock()
            .map_err(|_| closed())?
            .clone()
            .ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Job { write, reply }).await.map_err(|_| closed())?;
        drop(tx);
        answer
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped before answering".into()))?
    }

    /// Stops accepting writes, waits for the queued ones to commit, then
    /// closes the writer's connection.
    pub(super) async fn close(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "store writer task failed");
            }
        }
        self.pool.close().await;
    }
}

async fn run(backend: Backend, pool: AnyPool, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (writes, replies): (Vec<Write>, Vec<Reply>) =
            jobs.drain(..).map(|j| (j.write, j.reply)).unzip();
        match run_batch(backend, &pool, &writes).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have given up waiting; its write stands.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = writes.len(), "group commit failed");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(message.clone())));
                }
            }
        }
    }
}

/// Runs one batch in one transaction. `Ok` holds one result per write, in
/// order; `Err` means nothing (knowingly) committed.
async fn run_batch(
    backend: Backend,
    pool: &AnyPool,
    writes: &[Write],
) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    let mut tx = pool
        .begin_with(backend.begin_write())
        .await
        .map_err(db_err)?;
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let mut savepoint = tx.begin().await.map_err(db_err)?;
        match write.apply(&mut savepoint, backend).await {
            Ok(written) => {
                savepoint.commit().await.map_err(db_err)?;
                results.push(Ok(written));
            }
            Err(e) => {
                // If the rollback itself fails the connection is unusable,
                // and the `?` fails the whole batch.
                savepoint.rollback().await.map_err(db_err)?;
                results.push(recover(&mut tx, write, e).await?);
            }
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(results)
}

/// A write failed and was rolled back. A conflict may be a duplicate
/// idempotency key committed by another node since our lookup (PostgreSQL):
/// then the caller gets that post as a replay. Only an error of the
/// connection itself (returned as `Err`) fails the batch.
async fn recover(
    conn: &mut sqlx::AnyConnection,
    write: &Write,
    error: StoreError,
) -> Result<Result<Written, StoreError>, StoreError> {
    if !matches!(error, StoreError::Conflict(_)) {
        return Ok(Err(error));
    }
    // Its own savepoint: on PostgreSQL a failed lookup would otherwise leave
    // the whole batch's transaction aborted.
    let mut savepoint = conn.begin().await.map_err(db_err)?;
    match write.replay_after_conflict(&mut savepoint).await {
        Ok(replay) => {
            savepoint.commit().await.map_err(db_err)?;
            Ok(replay.ok_or(error))
        }
        Err(e) => {
            savepoint.rollback().await.map_err(db_err)?;
            Ok(Err(e))
        }
    }
}
