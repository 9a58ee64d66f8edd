//! Hand-over: what this node does when the cluster view changes, or when a
//! shard lease it held was taken over.
//!
//! - [`Handover::reconcile`], on every view change and once a second:
//!   entities whose shard now belongs to another node stop here and their
//!   shard leases are released, so this node never serves a stale copy if
//!   the shard comes back to it later, and the new owner takes the lease at
//!   once (it loads the entities from the store). When a node is declared
//!   down, calls waiting on it fail at once (they route again), and the
//!   live subscribers of the entities it owned are told to resync (a write
//!   it committed but had not fanned out is lost with it).
//! - [`Handover::renew`], every third of the lease time: renews this
//!   node's leases; entities of shards another node took over (this one was
//!   cut off, or paused) stop, since what they hold may be stale.
//!
//! The periodic pass catches what a view change alone misses: an
//! activation that raced the change (routed here before it, leased after
//! the release) would keep a shard this node does not own, and its new
//! owner could never take the lease. Both run as supervised jobs of the
//! node ([`Handover::children`]); neither holds state a restart would lose.

use crate::lease::Leases;
use crate::live::LiveHub;
use crate::region::{Entities, Route};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wani_supervision::transport::Transport;
use wani_supervision::tree::{job, ChildSpec, JobMsg, Work};
use wani_supervision::ViewChange;

/// How often the view is reconciled besides on every change.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// This node's hand-over work and its counters.
pub struct Handover {
    entities: Entities,
    leases: Arc<Leases>,
    live: LiveHub,
    transport: Transport,
    handed_over: AtomicU64,
    leases_released: AtomicU64,
}

impl Handover {
    pub fn new(
        entities: Entities,
        leases: Arc<Leases>,
        live: LiveHub,
        transport: Transport,
    ) -> Arc<Handover> {
        Arc::new(Handover {
            entities,
            leases,
            live,
            transport,
            handed_over: AtomicU64::new(0),
            leases_released: AtomicU64::new(0),
        })
    }

    /// The hand-over jobs, for the node's tree: `handover` runs on every
    /// view change (and once a second), `lease-renewal` every third of the
    /// lease time.
    pub fn children(self: &Arc<Self>) -> Vec<ChildSpec> {
        let Some(cluster) = self.transport.cluster() else {
            return Vec::new();
        };
        let pending: Arc<Mutex<Vec<ViewChange>>> = Arc::default();
        let (me, seen) = (self.clone(), pending.clone());
        let work: Work = Arc::new(move || {
            let (me, seen) = (me.clone(), seen.clone());
            Box::pin(async move {
                let changes = std::mem::take(&mut *seen.lock().unwrap_or_else(|p| p.into_inner()));
                me.reconcile(&changes).await;
            })
        });
        let (handover, nudge) = job(
            "handover",
            "view changes are reconciled again on the next run",
            RECONCILE_EVERY,
            work,
        );
        let me = self.clone();
        cluster.on_change(move |c| {
            // At once, on the thread that saw the change, not when the job
            // gets to it: a job run still busy handing entities over must
            // not hold calls waiting on a dead node.
            if let ViewChange::Downed(node) = c {
                me.downed(node);
            }
            pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(c.clone());
            let _ = nudge.cast(JobMsg::Run);
        });
        let me = self.clone();
        let renew: Work = Arc::new(move || {
            let me = me.clone();
            Box::pin(async move { me.renew().await })
        });
        let (renewal, _) = job(
            "lease-renewal",
            "leases are renewed on the next run, well within their time",
            self.renew_every(),
            renew,
        );
        vec![handover, renewal]
    }

    /// Brings this node's entities and leases in line with the view, after
    /// `changes` (none: the periodic pass).
    pub async fn reconcile(&self, changes: &[ViewChange]) {
        let Some(cluster) = self.transport.cluster() else {
            return;
        };
        // Before the view settles every route is `Nobody`: that is not a
        // reason to stop what peers asked this node to run.
        if changes.is_empty() && !cluster.is_settled() {
            return;
        }
        for change in changes {
            if let ViewChange::Downed(node) = change {
                self.downed(node);
            }
        }
        let entities = self.entities.clone();
        let moved = self
            .entities
            .passivate_moved(move |key| entities.route(key) != Route::Here)
            .await;
        if moved > 0 {
            tracing::info!(entities = moved, "handed entities over after a view change");
        }
        let released = self
            .leases
            .release_unless(|shard| self.entities.owns_shard(shard))
            .await;
        self.handed_over.fetch_add(moved as u64, Ordering::Relaxed);
        self.leases_released
            .fetch_add(released as u64, Ordering::Relaxed);
    }

    /// A node was declared down. A paused node keeps its socket open:
    /// calls waiting on it fail now and route again, instead of waiting for
    /// their timeout; and the subscribers of the entities it owned resync (a
    /// write it committed but had not fanned out is lost with it). Cheap
    /// and idempotent: it runs again from the job's pass.
    fn downed(&self, node: &wani_supervision::NodeName) {
        self.transport.abandon(node);
        let (entities, node) = (self.entities.clone(), node.clone());
        self.live
            .resync_where(move |key| entities.was_owner(&node, key));
    }

    /// Renews this node's shard leases; stops the entities of those lost.
    pub async fn renew(&self) {
        let lost = self.leases.renew().await;
        if lost.is_empty() {
            return;
        }
        // Another node took these shards over (this one was cut off, or
        // paused): what their entities hold in memory may be stale, so they
        // stop, and reload from the store if asked again.
        let leases = self.leases.clone();
        let stopped = self
            .entities
            .passivate_moved(move |key| lost.contains(&leases.shard_of(key)))
            .await;
        if stopped > 0 {
            tracing::warn!(
                entities = stopped,
                "shard leases lost: their entities stopped"
            );
        }
    }

    /// How often to renew.
    pub fn renew_every(&self) -> Duration {
        self.leases.renew_every()
    }

    /// Entities stopped here since start because their shard moved away.
    pub fn handed_over(&self) -> u64 {
        self.handed_over.load(Ordering::Relaxed)
    }

    /// Shard leases released since start because their shard moved away.
    pub fn leases_released(&self) -> u64 {
        self.leases_released.load(Ordering::Relaxed)
    }
}
