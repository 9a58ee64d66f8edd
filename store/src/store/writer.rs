//! Group commit: one writer task per [`Store`](super::Store) runs every
//! batched write.
//!
//! Callers send a write and wait on a oneshot. The task takes one write,
//! then whatever else is already queued (up to [`MAX_BATCH`]), and runs them
//! all in ONE transaction. A write that fails gets its own error while the
//! others go on: the batch runs first without savepoints (nearly every
//! batch succeeds whole), and if a write fails, the transaction is rolled
//! back and the batch runs again with each write in its own savepoint.
//! After the commit every caller is answered, so a post is acknowledged
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{AnyPool, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::write::{Write, Written};
use super::{bulk, db_err, Backend};
use crate::error::StoreError;
use crate::model::NewPost;

/// Writes per transaction at most: bounds how long one commit holds the
/// SQLite write lock and how much a failed commit takes down with it.
pub(super) const MAX_BATCH: usize = 256;

/// Writes waiting for the writer; beyond this, callers wait to enqueue
/// (backpressure instead of unbounded memory).
const QUEUE: usize = 4 * MAX_BATCH;

type Reply = oneshot::Sender<Result<Written, StoreError>>;

struct Job {
    /// `None`: a barrier, answered once every write queued before it is done.
    write: Option<Write>,
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
    /// Jobs queued or running: a barrier on an idle writer costs nothing.
    in_flight: Arc<AtomicUsize>,
}

/// Counts a job in flight until the writer has answered it, or until its
/// caller gave up before it was queued.
struct InFlight(Option<Arc<AtomicUsize>>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(Some(count.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The writer's answer to one queued write, once its batch committed.
pub(super) struct Answer(oneshot::Receiver<Result<Written, StoreError>>);

impl std::future::Future for Answer {
    type Output = Result<Written, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|answer| {
            answer.unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "writer stopped before answering".into(),
                ))
            })
        })
    }
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
        let in_flight = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(run(backend, pool.clone(), rx, in_flight.clone()));
        Writer {
            tx: Mutex::new(Some(tx)),
            task: Mutex::new(Some(task)),
            pool,
            in_flight,
        }
    }

    /// Queues a write and returns as soon as it is queued, with the answer
    /// to wait for. Writes queued one after another by one caller commit in
    /// that order (one queue, one task), so a caller may queue several
    /// before the first commits.
    pub(super) async fn enqueue(&self, write: Write) -> Result<Answer, StoreError> {
        self.queue(Some(write)).await
    }

    /// Waits until every write queued so far has committed or failed. A
    /// write whose caller stopped waiting (an actor that died mid-write)
    /// still commits: whoever takes over that caller's entity settles its
    /// writer first, so it reads what the write left.
    pub(super) async fn settle(&self) -> Result<(), StoreError> {
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        self.queue(None).await?.await.map(|_| ())
    }

    async fn queue(&self, write: Option<Write>) -> Result<Answer, StoreError> {
        let tx = self
            .tx
            .lock()
            .map_err(|_| closed())?
            .clone()
            .ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        let mut counted = InFlight::new(&self.in_flight);
        tx.send(Job { write, reply }).await.map_err(|_| closed())?;
        // Queued: the writer task uncounts it once answered, even if this
        // caller is gone by then.
        counted.0 = None;
        drop(tx);
        Ok(Answer(answer))
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

async fn run(
    backend: Backend,
    pool: AnyPool,
    mut rx: mpsc::Receiver<Job>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let count = jobs.len();
        let mut writes = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(count);
        let mut barriers = Vec::new();
        for job in jobs.drain(..) {
            match job.write {
                Some(w) => {
                    writes.push(w);
                    replies.push(job.reply);
                }
                None => barriers.push(job.reply),
            }
        }
        let outcome = if writes.is_empty() {
            Ok(Vec::new())
        } else {
            run_batch(backend, &pool, &writes).await
        };
        match outcome {
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
        // Every write queued before a barrier of this batch is done now.
        for reply in barriers {
            let _ = reply.send(Ok(Written::Settled));
        }
        in_flight.fetch_sub(count, Ordering::SeqCst);
    }
}

/// Runs one batch in one transaction. `Ok` holds one result per write, in
/// order; `Err` means nothing (knowingly) committed.
async fn run_batch(
    backend: Backend,
    pool: &AnyPool,
    writes: &[Write],
) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    if let Some(all) = run_unguarded(backend, pool, writes).await? {
        return Ok(all);
    }
    run_guarded(backend, pool, writes).await
}

/// A write transaction on the writer's connection.
async fn begin(
    backend: Backend,
    pool: &AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
    pool.begin_with(backend.begin_write()).await.map_err(db_err)
}

/// Runs the batch without a savepoint per write: two statements fewer for
/// each, a third of a reply's, and each run of consecutive replies in bulk
/// (see `bulk`). Almost every batch succeeds whole; if one write fails, the
/// transaction is rolled back and `None` says to run the batch again one
/// write at a time with savepoints, where that write fails alone.
async fn run_unguarded(
    backend: Backend,
    pool: &AnyPool,
    writes: &[Write],
) -> Result<Option<Vec<Result<Written, StoreError>>>, StoreError> {
    let mut tx = begin(backend, pool).await?;
    let mut results = Vec::with_capacity(writes.len());
    let mut rest = writes;
    while let Some(write) = rest.first() {
        let replies: Vec<&NewPost> = rest
            .iter()
            .map_while(|w| match w {
                Write::Post(new) => Some(new),
                _ => None,
            })
            .collect();
        let done = if replies.len() > 1 {
            rest = &rest[replies.len()..];
            bulk::create_posts(&mut tx, backend, &replies)
                .await
                .map(|posts| results.extend(posts.into_iter().map(|p| Ok(Written::Post(p)))))
        } else {
            rest = &rest[1..];
            write
                .apply(&mut tx, backend)
                .await
                .map(|w| results.push(Ok(w)))
        };
        if done.is_err() {
            tx.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(Some(results))
}

/// Runs the batch with each write in its own savepoint: a write that fails
/// rolls back alone and gets its error.
async fn run_guarded(
    backend: Backend,
    pool: &AnyPool,
    writes: &[Write],
) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
    let mut tx = begin(backend, pool).await?;
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
/// idempotency key (a retry, or the same post committed by another node
/// since our lookup, on PostgreSQL), and a fenced or closed thread may
/// hold the post a retry asks for: then the caller gets that post as a
/// replay. Only an error of the connection itself (returned as `Err`)
/// fails the batch.
async fn recover(
    conn: &mut sqlx::AnyConnection,
    write: &Write,
    error: StoreError,
) -> Result<Result<Written, StoreError>, StoreError> {
    if !matches!(error, StoreError::Conflict(_) | StoreError::Fenced { .. }) {
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
