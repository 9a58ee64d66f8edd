//! Region: this node's virtual entities, and the way to reach any entity
//! wherever it lives.
//!
//! Board and thread actors are virtual: nobody starts or stops them by
//! hand. The first message for an entity makes the region activate it (its
//! shard's lease taken, its state loaded from the store in `pre_start`); an
//! actor idle for `idle_timeout` stops itself (passivation); a panicking one
//! is dropped and re-activated, state reloaded from the store, by the next
//! message for it. A crash loop is cut off by a [`RestartPolicy`]: past its
//! budget the entity answers "unavailable" until the window passes.
//!
//! ```text
//! Region
//! ├── BoardActor(board id)    one per active board
//! └── ThreadActor(thread id)  one per active thread
//! ```
//!
//! The region knows entity kinds only through the [`Entity`] and
//! [`EntityMsg`] traits: a kind's actor and its message enum live in the
//! kind's own file. Activations run concurrently, each on its own task:
//! the region's mailbox only records who is active, so during a failover a
//! thousand threads re-activate as fast as one, and one slow load never
//! delays another entity.
//!
//! [`Entities`] is the handle callers use: [`Entities::ask`] and
//! [`Entities::tell`] route by placement — to the actor here (looked up in
//! a shared map, with no mailbox hop when it is active), or over the
//! transport to the owning node's region, which delivers it the same way.
//! A call that finds its entity gone or moved is routed again until the
//! failover deadline; writes carry idempotency keys, so a retried post is
//! stored once.

use crate::context::Shared;
use crate::error::ActorError;
use crate::lease::Leases;
use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use wani_store::Fence;
use wani_supervision::transport::{delivered, Delivery, Fault, NoReply, Remote, Reply, Transport};
#[cfg(debug_assertions)]
use wani_supervision::tree::CrashFn;
use wani_supervision::tree::{ChildSpec, Policy, Slot};
use wani_supervision::{
    owner_of, shard_of, EntityKey, NodeName, RestartDecision, RestartPolicy, Role,
};

/// A kind of virtual actor: activated by the region on its first message.
pub trait Entity: Actor<Arguments = Activation<Self::Cache>> + Default {
    /// What readers on this node share with the running actor (its
    /// rendered views), so a read of an active entity needs no mailbox hop.
    type Cache: Clone + Default + Send + Sync + 'static;
}

/// The message enum of an entity kind.
pub trait EntityMsg: Remote + ractor::Message + Sized {
    /// The kind's actor.
    type Actor: Entity<Msg = Self>;
    /// The kind's id type (any `i64` names one; the store says whether it
    /// exists).
    type Id: Copy + Into<i64> + From<i64> + Send + Sync + 'static;

    /// Whether this message activates an inactive entity. A notice about
    /// state that an activation reloads from the store anyway (a reply
    /// recorded, an archive) need not wake it.
    fn activates(&self) -> bool {
        true
    }
}

/// What an entity actor starts with.
pub struct Activation<C> {
    pub id: i64,
    pub shared: Shared,
    pub entities: Entities,
    /// The shard lease this activation writes under (clusters only).
    pub fence: Option<Fence>,
    /// Shared with readers on this node.
    pub cache: C,
}
impl<C: Send + 'static> ractor::Message for Activation<C> {}

/// How long the region waits for a stuck entity when stopping it.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// How many times a call is retried when the entity stopped between lookup
/// and delivery (passivation or a crash); a retried write is safe because it
/// carries its idempotency key.
const DELIVERY_ATTEMPTS: usize = 3;

/// An active entity as readers see it.
#[derive(Clone)]
struct Active {
    cell: ActorCell,
    cache: Arc<dyn Any + Send + Sync>,
}

/// The active entities of this node, written by the region only.
#[derive(Default)]
struct Maps {
    active: RwLock<HashMap<EntityKey, Active>>,
    /// Entities activated since start (metrics).
    activations: std::sync::atomic::AtomicU64,
    /// Entity crashes since start, by kind (metrics).
    crashes: std::sync::Mutex<HashMap<&'static str, u64>>,
}

/// A started activation: the actor, and the cache it shares with readers.
type Started = Result<(ActorCell, Arc<dyn Any + Send + Sync>), ActorError>;

/// Starts one entity, linked to the region, with the fence it was leased.
type Starter = Box<dyn FnOnce(ActorCell, Option<Fence>) -> BoxFuture<'static, Started> + Send>;

/// The region's mailbox.
pub enum RegionMsg {
    /// Answers with the running actor of `key`, activating it if needed.
    Activate {
        key: EntityKey,
        start: Starter,
        reply: oneshot::Sender<Result<ActorCell, ActorError>>,
    },
    /// An activation's task finished.
    Activated { key: EntityKey, started: Started },
    /// Stops every active entity and answers once all have stopped.
    PassivateAll { reply: oneshot::Sender<()> },
    /// Stops the active entities `moved` selects (their shard now belongs
    /// to another node) and answers how many once they have stopped.
    PassivateMoved {
        moved: Box<dyn Fn(EntityKey) -> bool + Send>,
        reply: oneshot::Sender<usize>,
    },
    /// Panics inside the region, to exercise supervision. Debug builds only.
    #[cfg(debug_assertions)]
    Crash,
}
impl ractor::Message for RegionMsg {}

/// Arguments of [`Region`].
pub struct RegionArgs {
    pub entities: Entities,
}
impl ractor::Message for RegionArgs {}

/// The region's state.
pub struct RegionState {
    entities: Entities,
    /// Which entity each child actor is, to clean the map when it exits.
    children: HashMap<ActorId, EntityKey>,
    /// Callers waiting for an activation in flight, by entity.
    activating: HashMap<EntityKey, Vec<oneshot::Sender<Result<ActorCell, ActorError>>>>,
    policies: HashMap<EntityKey, RestartPolicy>,
    /// Entities refused until this time (ms) after crashing too often.
    refused_until: HashMap<EntityKey, u64>,
}

/// The region actor.
pub struct Region;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn startup_error(e: ractor::SpawnErr, what: String) -> ActorError {
    match e {
        ractor::SpawnErr::StartupFailed(inner) => match inner.downcast_ref::<ActorError>() {
            Some(err) => err.clone(),
            None => ActorError::Unavailable(format!("{what} failed to start: {inner}")),
        },
        other => ActorError::Unavailable(format!("{what} failed to start: {other}")),
    }
}

impl RegionState {
    fn check_refused(&mut self, key: EntityKey) -> Result<(), ActorError> {
        if let Some(&until) = self.refused_until.get(&key) {
            if now_ms() < until {
                return Err(ActorError::Unavailable(format!(
                    "{key} crashed repeatedly and is paused; try again in a few seconds"
                )));
            }
            self.refused_until.remove(&key);
        }
        Ok(())
    }

    /// Starts an activation on its own task, unless one is in flight.
    fn activate(
        &mut self,
        myself: &ActorRef<RegionMsg>,
        key: EntityKey,
        start: Starter,
        reply: oneshot::Sender<Result<ActorCell, ActorError>>,
    ) {
        if let Some(a) = self.entities.active(key) {
            let _ = reply.send(Ok(a.cell));
            return;
        }
        if let Some(waiting) = self.activating.get_mut(&key) {
            waiting.push(reply);
            return;
        }
        if let Err(e) = self
            .entities
            .refuse_unless_owner(key)
            .and_then(|()| self.check_refused(key))
        {
            let _ = reply.send(Err(e));
            return;
        }
        self.activating.insert(key, vec![reply]);
        let region = myself.clone();
        let leases = self.entities.inner.leases.clone();
        tokio::spawn(async move {
            let fence = match &leases {
                Some(l) => l.fence_for(key).await.map(Some),
                None => Ok(None),
            };
            let started = match fence {
                Ok(fence) => start(region.get_cell(), fence).await,
                Err(e) => Err(e),
            };
            if let Err(ractor::MessagingErr::SendErr(RegionMsg::Activated {
                started: Ok((cell, _)),
                ..
            })) = region.cast(RegionMsg::Activated { key, started })
            {
                // The region stopped meanwhile: so does what it started.
                cell.stop(Some("its region stopped".into()));
            }
        });
    }

    /// Records a finished activation and answers whoever waited for it.
    fn activated(&mut self, key: EntityKey, started: Started) {
        let waiting = self.activating.remove(&key).unwrap_or_default();
        let result = match started {
            Ok((cell, _))
                if !matches!(
                    cell.get_status(),
                    ActorStatus::Running | ActorStatus::Starting
                ) =>
            {
                Err(ActorError::Unavailable(format!(
                    "{key} stopped as it started"
                )))
            }
            Ok((cell, cache)) => match self.entities.refuse_unless_owner(key) {
                // The view moved the shard while this was loading: the new
                // owner must not find it leased here.
                Err(e) => {
                    cell.stop(Some("its shard moved while it activated".into()));
                    Err(e)
                }
                Ok(()) => {
                    self.children.insert(cell.get_id(), key);
                    if let Ok(mut m) = self.entities.inner.maps.active.write() {
                        m.insert(
                            key,
                            Active {
                                cell: cell.clone(),
                                cache,
                            },
                        );
                    }
                    self.entities
                        .inner
                        .maps
                        .activations
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(cell)
                }
            },
            Err(e) => Err(e),
        };
        for w in waiting {
            let _ = w.send(result.clone());
        }
    }

    /// Forgets a child that exited, unless a newer activation replaced it.
    fn forget(&mut self, cell: &ActorCell) -> Option<EntityKey> {
        let key = self.children.remove(&cell.get_id())?;
        if let Ok(mut m) = self.entities.inner.maps.active.write() {
            if m.get(&key).map(|a| a.cell.get_id()) == Some(cell.get_id()) {
                m.remove(&key);
            }
        }
        Some(key)
    }

    /// Stops the children `which` selects and waits (bounded) for them.
    async fn stop_children(
        &mut self,
        myself: &ActorRef<RegionMsg>,
        which: impl Fn(EntityKey) -> bool,
        why: &str,
    ) -> usize {
        let children: Vec<ActorCell> = myself
            .get_children()
            .into_iter()
            .filter(|c| self.children.get(&c.get_id()).is_some_and(|k| which(*k)))
            .collect();
        for c in &children {
            c.stop(Some(why.into()));
        }
        for c in &children {
            // Bounded: a stuck child must not hold up a hand-over or shutdown.
            let _ = c.wait(Some(STOP_WAIT)).await;
            self.forget(c);
        }
        children.len()
    }
}

impl Actor for Region {
    type Msg = RegionMsg;
    type State = RegionState;
    type Arguments = RegionArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RegionMsg>,
        args: RegionArgs,
    ) -> Result<RegionState, ActorProcessingErr> {
        // A restarted region starts empty: its entities died with the old
        // one (ractor stops an actor's children with it) and re-activate
        // from the store on their next message.
        if let Ok(mut m) = args.entities.inner.maps.active.write() {
            m.clear();
        }
        args.entities.inner.region.set(myself);
        Ok(RegionState {
            entities: args.entities,
            children: HashMap::new(),
            activating: HashMap::new(),
            policies: HashMap::new(),
            refused_until: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RegionMsg>,
        msg: RegionMsg,
        state: &mut RegionState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegionMsg::Activate { key, start, reply } => state.activate(&myself, key, start, reply),
            RegionMsg::Activated { key, started } => state.activated(key, started),
            RegionMsg::PassivateAll { reply } => {
                state
                    .stop_children(&myself, |_| true, "node shutting down")
                    .await;
                let _ = reply.send(());
            }
            RegionMsg::PassivateMoved { moved, reply } => {
                let n = state
                    .stop_children(&myself, moved, "its shard moved to another node")
                    .await;
                let _ = reply.send(n);
            }
            #[cfg(debug_assertions)]
            RegionMsg::Crash => panic!("crash requested for the region (test hook)"),
        }
        Ok(())
    }

    // ractor's default stops the supervisor when any child exits; a region
    // outlives its entities.
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<RegionMsg>,
        event: SupervisionEvent,
        state: &mut RegionState,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                if let Some(key) = state.forget(&cell) {
                    tracing::debug!(%key, reason = reason.as_deref().unwrap_or(""), "entity stopped");
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                if let Some(key) = state.forget(&cell) {
                    if let Ok(mut c) = state.entities.inner.maps.crashes.lock() {
                        *c.entry(key.kind).or_insert(0) += 1;
                    }
                    let decision = state.policies.entry(key).or_default().on_crash(now_ms());
                    match decision {
                        RestartDecision::Restart { .. } => {
                            tracing::warn!(%key, error = %err, "entity crashed; it restarts from the store on its next message");
                        }
                        RestartDecision::GiveUp { until_ms } => {
                            tracing::error!(%key, error = %err, "entity keeps crashing; refusing it for a while");
                            state.refused_until.insert(key, until_ms);
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Where an entity lives, as this node sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Here,
    There(NodeName),
    /// No node with the `entities` role is up, or this node has only just
    /// joined and does not know yet who is.
    Nobody,
}

struct Inner {
    region: Slot<RegionMsg>,
    maps: Maps,
    shared: RwLock<Option<Shared>>,
    transport: Transport,
    leases: Option<Arc<Leases>>,
    shards: u32,
    timeout: Duration,
    /// Woken on every view change: a call waiting to route again goes at
    /// once, instead of sleeping out its backoff after the view moved.
    view_changed: Arc<tokio::sync::Notify>,
    /// Counts view changes, so a call that failed just as the view changed
    /// (before it waits) does not sleep through the wake-up it missed.
    view_version: Arc<std::sync::atomic::AtomicU64>,
}

/// A handle to reach entities, here or on other nodes. Cheap to clone.
#[derive(Clone)]
pub struct Entities {
    inner: Arc<Inner>,
}

impl Entities {
    /// A handle for this node's entities, before its region runs (start
    /// it with [`Region`] and [`RegionArgs`]; calls fail as unavailable
    /// until then). `leases` fence writes in a cluster; `shards` is the
    /// cluster's shard count.
    pub fn new(
        transport: Transport,
        leases: Option<Arc<Leases>>,
        shards: u32,
        timeout: Duration,
    ) -> Entities {
        let view_changed = Arc::new(tokio::sync::Notify::new());
        let view_version = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if let Some(c) = transport.cluster() {
            let (wake, version) = (view_changed.clone(), view_version.clone());
            c.on_change(move |_| {
                version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                wake.notify_waiters();
            });
        }
        Entities {
            inner: Arc::new(Inner {
                region: Slot::default(),
                maps: Maps::default(),
                shared: RwLock::new(None),
                transport,
                leases,
                shards,
                timeout,
                view_changed,
                view_version,
            }),
        }
    }

    /// Gives the entities what they need; before this, nothing activates.
    pub fn set_shared(&self, shared: Shared) {
        if let Ok(mut s) = self.inner.shared.write() {
            *s = Some(shared);
        }
    }

    fn shared(&self) -> Result<Shared, ActorError> {
        self.inner
            .shared
            .read()
            .ok()
            .and_then(|s| s.clone())
            .ok_or_else(|| ActorError::Unavailable("entities are not started yet".into()))
    }

    /// Takes messages of kind `M` from other nodes and delivers them here.
    pub fn serve<M: EntityMsg>(&self) {
        let entities = self.clone();
        self.inner
            .transport
            .serve::<M>(move |id, msg| entities.delivery(id, msg));
    }

    /// The region, for the node's tree. A restart stops every entity of
    /// this node (they die with it); each re-activates, state reloaded from
    /// the store, on its next message.
    pub fn child(&self) -> ChildSpec {
        let entities = self.clone();
        #[cfg(debug_assertions)]
        let crash: Option<CrashFn> = {
            let slot = self.inner.region.clone();
            Some(Box::new(move || slot.cast(RegionMsg::Crash).is_ok()))
        };
        #[cfg(not(debug_assertions))]
        let crash = None;
        ChildSpec {
            name: "region",
            policy: Policy::Restart,
            restart_means: "entities re-activate from the store on their next message",
            start: Box::new(move |sup| {
                let entities = entities.clone();
                Box::pin(async move {
                    let (actor, _) =
                        Actor::spawn_linked(None, Region, RegionArgs { entities }, sup)
                            .await
                            .map_err(|e| format!("{e}"))?;
                    Ok(actor.get_cell())
                })
            }),
            crash,
        }
    }

    /// Entity crashes on this node since it started, by kind.
    pub fn crashes(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = self
            .inner
            .maps
            .crashes
            .lock()
            .map(|c| c.iter().map(|(k, n)| (*k, *n)).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    fn active(&self, key: EntityKey) -> Option<Active> {
        let a = self.inner.maps.active.read().ok()?.get(&key).cloned()?;
        matches!(
            a.cell.get_status(),
            ActorStatus::Running | ActorStatus::Starting
        )
        .then_some(a)
    }

    /// Where the entity `key` lives now.
    pub fn route(&self, key: EntityKey) -> Route {
        let Some(cluster) = self.inner.transport.cluster() else {
            return Route::Here;
        };
        if !cluster.is_settled() {
            return Route::Nobody;
        }
        let owners = cluster.owners_for(Role::Entities);
        match owner_of(shard_of(&key, self.inner.shards), &owners) {
            None => Route::Nobody,
            Some(n) if n == self.inner.transport.me() => Route::Here,
            Some(n) => Route::There(n.clone()),
        }
    }

    /// Whether this node is cut off from the majority of the cluster
    /// (never when alone, nor before its view settles). Cut off, no owner
    /// it can reach may take a shard over and its view changes only when
    /// the partition heals: a call retried there would wait out the whole
    /// call timeout. It fails at once instead, so the client hears 503 and
    /// can try another node.
    fn cut_off(&self) -> bool {
        self.inner
            .transport
            .cluster()
            .is_some_and(|c| c.is_settled() && !c.has_quorum())
    }

    fn view_version(&self) -> u64 {
        self.inner
            .view_version
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether this node owns `shard` in the current view.
    pub fn owns_shard(&self, shard: i64) -> bool {
        let Some(cluster) = self.inner.transport.cluster() else {
            return true;
        };
        let owners = cluster.owners_for(Role::Entities);
        owner_of(wani_supervision::ShardId(shard as u32), &owners)
            == Some(self.inner.transport.me())
    }

    /// Whether `node` (just declared down) owned the entity `key`: it
    /// would win the rendezvous again if it were back among the owners.
    pub fn was_owner(&self, node: &NodeName, key: EntityKey) -> bool {
        let Some(cluster) = self.inner.transport.cluster() else {
            return false;
        };
        let mut before = cluster.owners_for(Role::Entities);
        if !before.contains(node) {
            before.push(node.clone());
        }
        owner_of(shard_of(&key, self.inner.shards), &before) == Some(node)
    }

    /// A draining node activates nothing: a call that still reaches it (a
    /// peer that has not heard it is leaving, or a local call that started
    /// before the drain) gets a retryable error and is routed again, to the
    /// new owner, instead of taking the shard's lease back.
    ///
    /// Likewise a node whose settled view names another owner: the call was
    /// routed here before a view change, and activating now would take back
    /// a shard lease the new owner is waiting for.
    fn refuse_unless_owner(&self, key: EntityKey) -> Result<(), ActorError> {
        let Some(cluster) = self.inner.transport.cluster() else {
            return Ok(());
        };
        if cluster.is_draining() {
            return Err(ActorError::Unavailable(format!(
                "{key}: this node is draining; ask its new owner"
            )));
        }
        match self.route(key) {
            Route::There(owner) => Err(ActorError::Unavailable(format!(
                "{key} belongs to {owner} now; ask it"
            ))),
            Route::Here | Route::Nobody => Ok(()),
        }
    }

    /// The running actor of an entity of this node, activated if needed.
    pub async fn actor<M: EntityMsg>(&self, id: M::Id) -> Result<ActorRef<M>, ActorError> {
        let key = EntityKey::new(M::KIND, id.into());
        if let Some(a) = self.active(key) {
            return Ok(a.cell.into());
        }
        let shared = self.shared()?;
        let entities = self.clone();
        let start: Starter = Box::new(move |region, fence| {
            Box::pin(async move {
                let cache = <M::Actor as Entity>::Cache::default();
                let args = Activation {
                    id: key.id,
                    shared,
                    entities,
                    fence,
                    cache: cache.clone(),
                };
                let (actor, _) = Actor::spawn_linked(None, M::Actor::default(), args, region)
                    .await
                    .map_err(|e| startup_error(e, key.to_string()))?;
                let cache: Arc<dyn Any + Send + Sync> = Arc::new(cache);
                Ok((actor.get_cell(), cache))
            })
        });
        let (tx, rx) = oneshot::channel();
        self.inner
            .region
            .cast(RegionMsg::Activate {
                key,
                start,
                reply: tx,
            })
            .map_err(|_| ActorError::Unavailable("this node's region is not running".into()))?;
        match tokio::time::timeout(self.inner.timeout, rx).await {
            Ok(Ok(r)) => r.map(ActorRef::from),
            Ok(Err(_)) => Err(ActorError::Unavailable(
                "the region stopped before activating".into(),
            )),
            Err(_) => Err(ActorError::Unavailable(format!(
                "{key} did not activate in time"
            ))),
        }
    }

    /// The cache an active entity of this node shares with readers.
    pub fn cached<M: EntityMsg>(&self, id: M::Id) -> Option<<M::Actor as Entity>::Cache> {
        let key = EntityKey::new(M::KIND, id.into());
        if self.route(key) != Route::Here {
            return None;
        }
        self.active(key)?
            .cache
            .downcast_ref::<<M::Actor as Entity>::Cache>()
            .cloned()
    }

    /// Asks an entity here, re-activating it if it stopped between lookup
    /// and delivery.
    async fn ask_here<M: EntityMsg, T: Send + 'static>(
        &self,
        id: M::Id,
        make: &impl Fn(Reply<T>) -> M,
    ) -> Result<T, ActorError> {
        for attempt in 0..DELIVERY_ATTEMPTS {
            if attempt > 0 {
                // The entity stopped (passivated, crashed) or the region is
                // restarting: a moment for either to be back.
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            let actor = match self.actor::<M>(id).await {
                Ok(a) => a,
                Err(e) if e.is_retryable() && attempt + 1 < DELIVERY_ATTEMPTS => continue,
                Err(e) => return Err(e),
            };
            let (reply, wait) = Reply::local();
            if actor.cast(make(reply)).is_err() {
                continue;
            }
            match wait.wait(self.inner.timeout).await {
                Ok(v) => return Ok(v),
                Err(NoReply::TimedOut) => {
                    return Err(ActorError::Unavailable(format!(
                        "{}:{} timed out",
                        M::KIND,
                        id.into()
                    )))
                }
                Err(NoReply::Dropped) => {}
            }
        }
        Err(ActorError::Unavailable(format!(
            "{}:{} stopped before answering",
            M::KIND,
            id.into()
        )))
    }

    /// Asks an entity wherever it lives and waits for its answer. If the
    /// owner cannot be reached, or the entity moved, the call is routed
    /// again (the view may have moved it) until the failover deadline.
    pub async fn ask<M, T>(&self, id: M::Id, make: impl Fn(Reply<T>) -> M) -> Result<T, ActorError>
    where
        M: EntityMsg,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let key = EntityKey::new(M::KIND, id.into());
        let deadline = Instant::now() + self.inner.timeout;
        let mut backoff = Duration::from_millis(50);
        loop {
            let version = self.view_version();
            let err = match self.route(key) {
                // A view change or a drain while the call runs here makes
                // it fail (its entity stops, re-activation is refused):
                // route it again, to the new owner.
                Route::Here => match self.ask_here(id, &make).await {
                    Err(e) if e.is_retryable() && self.route(key) != Route::Here => e,
                    done => return done,
                },
                Route::Nobody => {
                    ActorError::Unavailable("no node with the entities role is up".into())
                }
                Route::There(node) => match self.inner.transport.ask(&node, key.id, &make).await {
                    Ok(v) => return Ok(v),
                    Err(f) if !f.is_retryable() => return Err(f.into()),
                    Err(f) => f.into(),
                },
            };
            if Instant::now() + backoff > deadline || self.cut_off() {
                return Err(err);
            }
            tracing::debug!(%key, error = %err, "retrying on the current owner");
            let changed = self.inner.view_changed.notified();
            // The view moved while this attempt ran: route again at once.
            if self.view_version() == version {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = changed => {}
                }
            }
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Sends to an entity wherever it lives, without waiting. An active
    /// entity here gets it at once, in the caller's order; an inactive one
    /// is activated off the caller's path (unless the message says it need
    /// not be); another node's entity gets it over the transport.
    pub fn tell<M: EntityMsg>(&self, id: M::Id, msg: M) {
        let key = EntityKey::new(M::KIND, id.into());
        match self.route(key) {
            Route::Here => {
                let mut delivery = self.delivery(key.id, msg);
                let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
                match delivery.poll_unpin(&mut cx) {
                    std::task::Poll::Ready(Err(e)) => {
                        tracing::warn!(%key, error = %e, "could not deliver a message")
                    }
                    std::task::Poll::Ready(Ok(())) => {}
                    std::task::Poll::Pending => {
                        tokio::spawn(async move {
                            if let Err(e) = delivery.await {
                                tracing::warn!(%key, error = %e, "could not deliver a message");
                            }
                        });
                    }
                }
            }
            Route::There(node) => {
                if let Err(e) = self.inner.transport.tell(&node, key.id, &msg) {
                    tracing::debug!(%key, %node, error = %e, "could not send a message");
                }
            }
            Route::Nobody => {
                tracing::debug!(%key, "no owner to send a message to");
            }
        }
    }

    /// Delivers a message to an entity of this node: at once when it is
    /// active, after its activation otherwise.
    fn delivery<M: EntityMsg>(&self, id: i64, msg: M) -> Delivery {
        let key = EntityKey::new(M::KIND, id);
        if let Some(a) = self.active(key) {
            let actor: ActorRef<M> = a.cell.into();
            return delivered(
                actor
                    .cast(msg)
                    .map_err(|e| Fault::Unavailable(format!("{key}: {e}"))),
            );
        }
        if !msg.activates() {
            return delivered(Ok(()));
        }
        let entities = self.clone();
        Box::pin(async move {
            let actor = entities
                .actor::<M>(M::Id::from(id))
                .await
                .map_err(Fault::from)?;
            actor
                .cast(msg)
                .map_err(|e| Fault::Unavailable(format!("{key}: {e}")))
        })
    }

    /// Entities activated on this node since it started.
    pub fn activations(&self) -> u64 {
        self.inner
            .maps
            .activations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The shard leases, when the node is in a cluster.
    pub fn leases(&self) -> Option<&Arc<Leases>> {
        self.inner.leases.as_ref()
    }

    /// Active entities of `kind` on this node.
    pub fn active_of(&self, kind: &str) -> usize {
        self.inner
            .maps
            .active
            .read()
            .map(|m| m.keys().filter(|k| k.kind == kind).count())
            .unwrap_or(0)
    }

    /// Active entities on this node, every kind.
    pub fn active_total(&self) -> usize {
        self.inner.maps.active.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Stops the active entities `moved` selects and waits for them.
    pub async fn passivate_moved(
        &self,
        moved: impl Fn(EntityKey) -> bool + Send + 'static,
    ) -> usize {
        let (tx, rx) = oneshot::channel();
        let sent = self.inner.region.cast(RegionMsg::PassivateMoved {
            moved: Box::new(moved),
            reply: tx,
        });
        if sent.is_err() {
            return 0;
        }
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or(0)
    }

    /// Stops every active entity (graceful shutdown) and waits for them.
    pub async fn passivate_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .inner
            .region
            .cast(RegionMsg::PassivateAll { reply: tx })
            .is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_secs(30), rx).await;
        }
    }

    /// Stops the region itself.
    pub fn stop(&self) {
        if let Some(r) = self.inner.region.get() {
            r.stop(None);
        }
    }
}
