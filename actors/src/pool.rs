//! A node's pool of workers of one kind — the renderer, the thumbnailer —
//! and the way to reach one wherever it runs.
//!
//! A pool is a ractor factory under the node's supervision tree: its jobs
//! go to whichever worker is free, a panicking worker is replaced by the
//! factory (and counted here), and the factory itself is restarted by the
//! tree. A node without the pool's role has none: its jobs go, as the very
//! same message, to a node with the role over the transport, taking turns
//! among them.

use crate::error::ActorError;
use ractor::factory::{
    queues, routing, worker_builder, DiscardMode, DiscardSettings, Factory, FactoryArguments,
    FactoryMessage, Job, Worker, WorkerBuilder, WorkerId,
};
use ractor::Actor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wani_supervision::transport::{delivered, Fault, NoReply, Remote, Reply, Transport};
use wani_supervision::tree::{ChildSpec, CrashFn, Policy, Slot};
use wani_supervision::Role;

/// Why a job was not done.
#[derive(Debug)]
pub enum PoolError {
    /// The job was dropped: the queue was full, or its worker died.
    Dropped,
    /// No answer in time.
    TimedOut,
    /// No node with the pool's role is up.
    NoNode,
    /// The node asked could not take it.
    Fault(Fault),
}

impl From<PoolError> for ActorError {
    fn from(e: PoolError) -> Self {
        ActorError::Unavailable(match e {
            PoolError::Dropped => "the pool dropped the job (busy, or a worker failed)".into(),
            PoolError::TimedOut => "the pool did not answer in time".into(),
            PoolError::NoNode => "no node with the pool's role is up".into(),
            PoolError::Fault(f) => f.to_string(),
        })
    }
}

/// Counts the panics of a pool's workers: held across a job, it counts
/// the job's panic as it unwinds (the factory then replaces the worker).
pub struct PanicCounter(pub Arc<AtomicU64>);

impl Drop for PanicCounter {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A handle on one kind of pool. Cheap to clone.
pub struct Pool<M: Remote + ractor::Message> {
    /// This node's factory; `None` without the role.
    factory: Option<Slot<FactoryMessage<(), M>>>,
    role: Role,
    transport: Transport,
    timeout: Duration,
    /// Whose turn it is among the nodes with the role.
    turn: Arc<AtomicU64>,
    /// Worker panics since start.
    crashes: Arc<AtomicU64>,
}

impl<M: Remote + ractor::Message> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            factory: self.factory.clone(),
            role: self.role,
            transport: self.transport.clone(),
            timeout: self.timeout,
            turn: self.turn.clone(),
            crashes: self.crashes.clone(),
        }
    }
}

impl<M: Remote + ractor::Message> Pool<M> {
    /// A pool of `role`; with `here`, this node runs one (start it with
    /// [`Pool::child`]) and takes jobs from other nodes too.
    pub fn new(transport: Transport, role: Role, here: bool, timeout: Duration) -> Pool<M> {
        let pool = Pool {
            factory: here.then(Slot::default),
            role,
            transport,
            timeout,
            turn: Arc::default(),
            crashes: Arc::default(),
        };
        if let Some(slot) = &pool.factory {
            let slot = slot.clone();
            pool.transport.serve::<M>(move |_, msg| {
                delivered(
                    slot.cast(FactoryMessage::Dispatch(Job::new((), msg)))
                        .map_err(|e| Fault::Unavailable(format!("{}: {e}", M::KIND))),
                )
            });
        }
        pool
    }

    /// The factory as a child of the node's tree (`None` without the role):
    /// `workers` workers built by `build`, at most `queue` jobs waiting (a
    /// job beyond is dropped at once, and its caller told the pool is busy).
    /// `crash` is a job that makes a worker panic (debug builds' hook).
    pub fn child<W>(
        &self,
        name: &'static str,
        workers: usize,
        queue: Option<usize>,
        build: impl Fn(Arc<AtomicU64>) -> (W, W::Arguments) + Send + Sync + Clone + 'static,
        crash: Option<fn() -> M>,
    ) -> Option<ChildSpec>
    where
        W: Worker<Key = (), Message = M>,
    {
        let slot = self.factory.clone()?;
        let crashes = self.crashes.clone();
        let crash_slot = slot.clone();
        let crash: Option<CrashFn> = crash.map(|make| -> CrashFn {
            Box::new(move || {
                crash_slot
                    .cast(FactoryMessage::Dispatch(Job::new((), make())))
                    .is_ok()
            })
        });
        Some(ChildSpec {
            name,
            policy: Policy::Restart,
            restart_means: "workers start afresh; jobs in its queue are refused as busy",
            start: Box::new(move |sup| {
                let (slot, crashes, build) = (slot.clone(), crashes.clone(), build.clone());
                Box::pin(async move {
                    let builder: Box<dyn WorkerBuilder<W, W::Arguments>> =
                        Box::new(worker_builder(move |_wid: WorkerId| build(crashes.clone())));
                    let args = FactoryArguments::builder()
                        .worker_builder(builder)
                        .queue(queues::DefaultQueue::default())
                        .router(routing::QueuerRouting::default())
                        .num_initial_workers(workers.max(1))
                        .maybe_discard_settings(queue.map(|limit| DiscardSettings::Static {
                            limit,
                            mode: DiscardMode::Newest,
                        }))
                        .build();
                    let factory = Factory::<(), M, W::Arguments, W, _, _>::default();
                    let (actor, _) = Actor::spawn_linked(None, factory, args, sup)
                        .await
                        .map_err(|e| format!("{e}"))?;
                    slot.set(actor.clone());
                    Ok(actor.get_cell())
                })
            }),
            crash,
        })
    }

    /// Runs `make(reply)` on this node's pool, or on a node with the role.
    pub async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> M) -> Result<T, PoolError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        if let Some(slot) = &self.factory {
            let (reply, wait) = Reply::local();
            slot.cast(FactoryMessage::Dispatch(Job::new((), make(reply))))
                .map_err(|_| PoolError::Dropped)?;
            return wait.wait(self.timeout).await.map_err(|e| match e {
                NoReply::Dropped => PoolError::Dropped,
                NoReply::TimedOut => PoolError::TimedOut,
            });
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let node = self
            .transport
            .cluster()
            .and_then(|c| c.pick(self.role, turn))
            .ok_or(PoolError::NoNode)?;
        self.transport
            .ask(&node, 0, make)
            .await
            .map_err(PoolError::Fault)
    }

    /// Jobs waiting for a worker here.
    pub async fn queue_depth(&self) -> usize {
        let Some(factory) = self.factory.as_ref().and_then(|s| s.get()) else {
            return 0;
        };
        match factory.queue_depth(Some(Duration::from_secs(1))).await {
            Ok(ractor::rpc::CallResult::Success(n)) => n,
            _ => 0,
        }
    }

    /// Worker panics on this node since it started (each worker was
    /// replaced by the factory).
    pub fn worker_crashes(&self) -> u64 {
        self.crashes.load(Ordering::Relaxed)
    }
}
