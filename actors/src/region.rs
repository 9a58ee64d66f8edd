//! Region: activates board and thread actors on demand and supervises them.
//!
//! Board and thread actors are virtual: nobody starts or stops them by
//! hand. The first message for an entity makes the region spawn it (state
//! loaded from the store in `pre_start`); an actor idle for
//! `idle_timeout` stops itself (passivation); a panicking one is dropped
//! from the map and re-activated, state reloaded from the store, by the next
//! message for it. A crash loop is cut off by a [`RestartPolicy`]: past its
//! budget the entity answers "unavailable" until the window passes.
//!
//! ```text
//! Region
//! ├── BoardActor(board id)    one per active board
//! └── ThreadActor(thread id)  one per active thread
//! ```
//!
//! Lookups of already-active entities do not go through the region's
//! mailbox: [`Entities`] reads a shared map, and only a miss asks the region
//! (which is the map's single writer). On one node every shard is local;
//! routing to other nodes' regions comes with the cluster.

use crate::board::{BoardActor, BoardArgs, BoardMsg};
use crate::error::ActorError;
use crate::lease::Leases;
use crate::remote::{Answer, Completion, Request};
use crate::renderer::Renderer;
use crate::router::{Route, Router};
use crate::thread::{ThreadActor, ThreadArgs, ThreadMsg};
use crate::views::{CachedView, CatalogView, ThreadView, ViewCache, ViewRenderer};
use futures::future::BoxFuture;
use ractor::rpc::CallResult;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wani_store::blob::BlobStore;
use wani_store::{BoardId, Repo, ThreadId};
use wani_supervision::{EntityKey, NodeName, RestartDecision, RestartPolicy};

/// Settings of entity actors.
#[derive(Clone, Debug)]
pub struct EntityConfig {
    /// An entity with no message for this long stops itself.
    pub idle_timeout: Duration,
    /// How long a caller waits for an entity's answer.
    pub call_timeout: Duration,
}

impl Default for EntityConfig {
    fn default() -> Self {
        EntityConfig {
            idle_timeout: Duration::from_secs(600),
            call_timeout: Duration::from_secs(15),
        }
    }
}

/// What every entity actor needs, shared.
#[derive(Clone)]
pub struct Shared {
    pub repo: Arc<dyn Repo>,
    pub blobs: Arc<dyn BlobStore>,
    pub renderer: Renderer,
    pub views: Arc<dyn ViewRenderer>,
    pub config: EntityConfig,
    /// Keys poster ids ([`wani_store::poster_hex`]); loaded once at start.
    pub poster_secret: Arc<[u8]>,
    /// The node's live-update hub: entities publish committed writes to it.
    pub live: Option<crate::live::LiveHub>,
}

#[derive(Default)]
struct Maps {
    threads: Table<ThreadId, ThreadMsg>,
    boards: Table<BoardId, BoardMsg>,
    /// The view caches of the active entities, for reads without a mailbox hop.
    thread_views: RwLock<HashMap<ThreadId, ViewCache<ThreadView>>>,
    board_views: RwLock<HashMap<BoardId, ViewCache<CatalogView>>>,
    /// Set once when the node joins a cluster: entities owned by other
    /// nodes are reached through it.
    router: std::sync::OnceLock<Arc<Router>>,
    /// Set with the router: the shard leases entity writes are fenced with.
    leases: std::sync::OnceLock<Arc<Leases>>,
    /// Entities activated since start (metrics).
    activations: std::sync::atomic::AtomicU64,
}

/// The region's mailbox.
pub enum RegionMsg {
    /// Answers with the running actor of a thread, activating it if needed.
    ActivateThread {
        id: ThreadId,
        reply: RpcReplyPort<Result<ActorRef<ThreadMsg>, ActorError>>,
    },
    /// Answers with the running actor of a board, activating it if needed.
    ActivateBoard {
        id: BoardId,
        reply: RpcReplyPort<Result<ActorRef<BoardMsg>, ActorError>>,
    },
    /// Stops every active entity and answers once all have stopped.
    PassivateAll { reply: RpcReplyPort<()> },
    /// Stops the active entities `moved` selects (their shard now belongs
    /// to another node) and answers once they have stopped.
    PassivateMoved {
        moved: Box<dyn Fn(EntityKey) -> bool + Send>,
        reply: RpcReplyPort<usize>,
    },
}
impl ractor::Message for RegionMsg {}

/// Arguments of [`Region`].
pub struct RegionArgs {
    pub shared: Shared,
    maps: Arc<Maps>,
}
impl ractor::Message for RegionArgs {}

/// The region's state.
pub struct RegionState {
    shared: Shared,
    maps: Arc<Maps>,
    entities: Entities,
    /// Which entity each child actor is, to clean the maps when it exits.
    children: HashMap<ActorId, EntityKey>,
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

fn startup_error(e: SpawnErr, what: String) -> ActorError {
    match e {
        SpawnErr::StartupFailed(inner) => match inner.downcast_ref::<ActorError>() {
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

    /// The running actor of an entity, spawned (state loaded in its
    /// `pre_start`) unless the table has a live one. A new activation gets
    /// the lease fence of its shard (in a cluster) and a view cache that
    /// readers on this node share.
    #[allow(clippy::too_many_arguments)]
    async fn activate<A: Actor, K: Eq + Hash + Copy, V: Eq + Hash + Copy>(
        &mut self,
        myself: &ActorRef<RegionMsg>,
        table: fn(&Maps) -> &Table<K, A::Msg>,
        views: fn(&Maps) -> &RwLock<HashMap<K, ViewCache<V>>>,
        id: K,
        key: EntityKey,
        actor: A,
        args: impl FnOnce(Option<wani_store::Fence>, ViewCache<V>) -> A::Arguments,
    ) -> Result<ActorRef<A::Msg>, ActorError> {
        let maps = self.maps.clone();
        if let Some(r) = get_live(table(&maps), &id) {
            return Ok(r);
        }
        self.refuse_unless_owner(key)?;
        self.check_refused(key)?;
        let fence = self.fence(key).await?;
        let cache = ViewCache::default();
        let (actor, _) =
            Actor::spawn_linked(None, actor, args(fence, cache.clone()), myself.get_cell())
                .await
                .map_err(|e| startup_error(e, key.to_string()))?;
        self.children.insert(actor.get_id(), key);
        if let Ok(mut m) = table(&maps).write() {
            m.insert(id, actor.clone());
        }
        if let Ok(mut m) = views(&maps).write() {
            m.insert(id, cache);
        }
        maps.activations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(actor)
    }

    async fn activate_thread(
        &mut self,
        myself: &ActorRef<RegionMsg>,
        id: ThreadId,
    ) -> Result<ActorRef<ThreadMsg>, ActorError> {
        let (shared, entities) = (self.shared.clone(), self.entities.clone());
        let args = move |fence, views| ThreadArgs {
            id,
            shared,
            entities,
            fence,
            views,
        };
        self.activate(
            myself,
            |m| &m.threads,
            |m| &m.thread_views,
            id,
            EntityKey::Thread(id.0),
            ThreadActor,
            args,
        )
        .await
    }

    async fn activate_board(
        &mut self,
        myself: &ActorRef<RegionMsg>,
        id: BoardId,
    ) -> Result<ActorRef<BoardMsg>, ActorError> {
        let (shared, entities) = (self.shared.clone(), self.entities.clone());
        let args = move |fence, views| BoardArgs {
            id,
            shared,
            entities,
            fence,
            views,
        };
        self.activate(
            myself,
            |m| &m.boards,
            |m| &m.board_views,
            id,
            EntityKey::Board(id.0),
            BoardActor,
            args,
        )
        .await
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
        match self.maps.router.get() {
            Some(r) if r.is_draining() => Err(ActorError::Unavailable(format!(
                "{key}: this node is draining; ask its new owner"
            ))),
            Some(r) => match r.route(key) {
                Route::There(owner) => Err(ActorError::Unavailable(format!(
                    "{key} belongs to {owner} now; ask it"
                ))),
                Route::Here | Route::Nobody => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// The lease fence for an entity's shard, when the node is in a cluster.
    async fn fence(&self, key: EntityKey) -> Result<Option<wani_store::Fence>, ActorError> {
        match self.maps.leases.get() {
            Some(l) => Ok(Some(l.fence_for(key).await?)),
            None => Ok(None),
        }
    }

    /// Forgets a child that exited, unless a newer activation replaced it.
    fn forget(&mut self, cell: &ActorCell) -> Option<EntityKey> {
        let key = self.children.remove(&cell.get_id())?;
        match key {
            EntityKey::Thread(t) => {
                if remove_if(&self.maps.threads, &ThreadId(t), cell.get_id()) {
                    if let Ok(mut m) = self.maps.thread_views.write() {
                        m.remove(&ThreadId(t));
                    }
                }
            }
            EntityKey::Board(b) => {
                if remove_if(&self.maps.boards, &BoardId(b), cell.get_id()) {
                    if let Ok(mut m) = self.maps.board_views.write() {
                        m.remove(&BoardId(b));
                    }
                }
            }
        }
        Some(key)
    }
}

/// Where an entity is, for one call.
enum Target {
    Here,
    There(Arc<Router>, NodeName),
    Nobody,
}

/// Active entities of one kind.
type Table<K, M> = RwLock<HashMap<K, ActorRef<M>>>;

/// The entry for `k`, if its actor is still running.
fn get_live<K: Eq + Hash, M: ractor::Message>(table: &Table<K, M>, k: &K) -> Option<ActorRef<M>> {
    live(table.read().ok().and_then(|m| m.get(k).cloned()))
}

/// Removes `k` only if it is still the actor `id` (not a newer activation).
fn remove_if<K: Eq + Hash, M: ractor::Message>(table: &Table<K, M>, k: &K, id: ActorId) -> bool {
    if let Ok(mut m) = table.write() {
        if m.get(k).map(|r| r.get_id()) == Some(id) {
            m.remove(k);
            return true;
        }
    }
    false
}

fn live<M: ractor::Message>(r: Option<ActorRef<M>>) -> Option<ActorRef<M>> {
    r.filter(|r| matches!(r.get_status(), ActorStatus::Running | ActorStatus::Starting))
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
        let entities = Entities {
            region: myself,
            maps: args.maps.clone(),
            timeout: args.shared.config.call_timeout,
        };
        Ok(RegionState {
            shared: args.shared,
            maps: args.maps,
            entities,
            children: HashMap::new(),
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
            RegionMsg::ActivateThread { id, reply } => {
                let _ = reply.send(state.activate_thread(&myself, id).await);
            }
            RegionMsg::ActivateBoard { id, reply } => {
                let _ = reply.send(state.activate_board(&myself, id).await);
            }
            RegionMsg::PassivateAll { reply } => {
                let children: Vec<ActorCell> = myself.get_children();
                for c in &children {
                    c.stop(Some("node shutting down".into()));
                }
                for c in children {
                    // Bounded wait: a stuck child must not hold up shutdown forever.
                    let _ = c.wait(Some(Duration::from_secs(5))).await;
                }
                let _ = reply.send(());
            }
            RegionMsg::PassivateMoved { moved, reply } => {
                let children: Vec<ActorCell> = myself
                    .get_children()
                    .into_iter()
                    .filter(|c| state.children.get(&c.get_id()).is_some_and(|k| moved(*k)))
                    .collect();
                for c in &children {
                    c.stop(Some("its shard moved to another node".into()));
                }
                for c in &children {
                    let _ = c.wait(Some(Duration::from_secs(5))).await;
                    state.forget(c);
                }
                let _ = reply.send(children.len());
            }
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
                    let decision = state.policies.entry(key).or_default().on_crash(now_ms());
                    tracing::error!(%key, error = %err, ?decision, "entity crashed; its next message re-activates it from the store");
                    match decision {
                        RestartDecision::GiveUp { until_ms } => {
                            state.refused_until.insert(key, until_ms);
                        }
                        RestartDecision::Restart { delay_ms } if delay_ms > 0 => {
                            state.refused_until.insert(key, now_ms() + delay_ms);
                        }
                        RestartDecision::Restart { .. } => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A handle to reach entities: looks up active ones directly, asks the
/// region to activate the others. Cheap to clone.
#[derive(Clone)]
pub struct Entities {
    region: ActorRef<RegionMsg>,
    maps: Arc<Maps>,
    timeout: Duration,
}

/// How many times a call is retried when the entity stopped between lookup
/// and delivery (passivation or a crash); a retried write is safe because it
/// carries its idempotency key.
const DELIVERY_ATTEMPTS: usize = 3;

impl Entities {
    /// Starts a region and returns the handle to it.
    pub async fn spawn(
        supervisor: Option<ActorCell>,
        shared: Shared,
    ) -> Result<(Entities, ractor::concurrency::JoinHandle<()>), ActorError> {
        let maps = Arc::new(Maps::default());
        let timeout = shared.config.call_timeout;
        let args = RegionArgs {
            shared,
            maps: maps.clone(),
        };
        // Unregistered: several nodes may share one process (tests, benchmarks).
        let name = None;
        let spawned = match supervisor {
            Some(sup) => Actor::spawn_linked(name, Region, args, sup).await,
            None => Actor::spawn(name, Region, args).await,
        };
        let (region, handle) =
            spawned.map_err(|e| ActorError::Unavailable(format!("region: {e}")))?;
        Ok((
            Entities {
                region,
                maps,
                timeout,
            },
            handle,
        ))
    }

    /// The running actor of a thread (activated if needed).
    pub async fn thread(&self, id: ThreadId) -> Result<ActorRef<ThreadMsg>, ActorError> {
        if let Some(r) = get_live(&self.maps.threads, &id) {
            return Ok(r);
        }
        flatten(
            self.region
                .call(
                    |reply| RegionMsg::ActivateThread { id, reply },
                    Some(self.timeout),
                )
                .await,
        )
    }

    /// The running actor of a board (activated if needed).
    pub async fn board(&self, id: BoardId) -> Result<ActorRef<BoardMsg>, ActorError> {
        if let Some(r) = get_live(&self.maps.boards, &id) {
            return Ok(r);
        }
        flatten(
            self.region
                .call(
                    |reply| RegionMsg::ActivateBoard { id, reply },
                    Some(self.timeout),
                )
                .await,
        )
    }

    /// Asks an entity and waits for its answer, re-activating it (through
    /// `get`) if it stopped between lookup and delivery.
    async fn call<'a, M: ractor::Message, T: Send + 'static>(
        &'a self,
        what: String,
        get: impl Fn() -> BoxFuture<'a, Result<ActorRef<M>, ActorError>>,
        msg: impl Fn(RpcReplyPort<T>) -> M,
    ) -> Result<T, ActorError> {
        for _ in 0..DELIVERY_ATTEMPTS {
            match get().await?.call(&msg, Some(self.timeout)).await {
                Ok(CallResult::Success(v)) => return Ok(v),
                Ok(CallResult::Timeout) => {
                    return Err(ActorError::Unavailable(format!("{what} timed out")))
                }
                Ok(CallResult::SenderError) | Err(_) => {}
            }
        }
        Err(ActorError::Unavailable(format!(
            "{what} stopped before answering"
        )))
    }

    /// Asks a thread on this node and waits for its answer.
    pub async fn call_thread_here<T: Send + 'static>(
        &self,
        id: ThreadId,
        msg: impl Fn(RpcReplyPort<T>) -> ThreadMsg,
    ) -> Result<T, ActorError> {
        self.call(crate::names::thread(id), || Box::pin(self.thread(id)), msg)
            .await
    }

    /// Asks a board on this node and waits for its answer.
    pub async fn call_board_here<T: Send + 'static>(
        &self,
        id: BoardId,
        msg: impl Fn(RpcReplyPort<T>) -> BoardMsg,
    ) -> Result<T, ActorError> {
        self.call(crate::names::board(id), || Box::pin(self.board(id)), msg)
            .await
    }

    /// Sends to a thread without waiting; activates it if needed.
    pub async fn tell_thread(&self, id: ThreadId, msg: ThreadMsg) -> Result<(), ActorError> {
        self.thread(id).await?.cast(msg).map_err(ActorError::from)
    }

    /// Sends to a board on this node without waiting; activates it if needed.
    pub async fn tell_board_here(&self, id: BoardId, msg: BoardMsg) -> Result<(), ActorError> {
        self.board(id).await?.cast(msg).map_err(ActorError::from)
    }

    /// Joins this node's entities to a cluster: from now on an entity owned
    /// by another node is reached through `router`.
    pub fn set_router(&self, router: Arc<Router>, leases: Arc<Leases>) {
        let _ = self.maps.leases.set(leases);
        let _ = self.maps.router.set(router);
    }

    /// Where the entity `key` lives now.
    fn target(&self, key: EntityKey) -> Target {
        match self.maps.router.get() {
            None => Target::Here,
            Some(r) => match r.route(key) {
                Route::Here => Target::Here,
                Route::There(node) => Target::There(r.clone(), node),
                Route::Nobody => Target::Nobody,
            },
        }
    }

    /// Asks an entity wherever it lives. Across nodes the message is split
    /// into a request and the completion of its reply port; if the owner
    /// cannot be reached the call is routed again (the view may have moved
    /// the entity), until `failover_deadline`.
    async fn routed<'a, T: Send + 'static>(
        &'a self,
        key: EntityKey,
        to_request: impl Fn(RpcReplyPort<T>) -> Option<(Request, Completion)>,
        here: impl Fn() -> BoxFuture<'a, Result<T, ActorError>>,
    ) -> Result<T, ActorError> {
        let deadline = std::time::Instant::now() + self.failover_deadline();
        let mut backoff = Duration::from_millis(50);
        loop {
            let err = match self.target(key) {
                // A view change or a drain while the call runs here makes it
                // fail (its entity stops, re-activation is refused): route
                // it again, to the new owner. Writes carry idempotency keys.
                Target::Here => match here().await {
                    Err(e) if e.is_retryable() && !matches!(self.target(key), Target::Here) => e,
                    done => return done,
                },
                Target::Nobody => {
                    ActorError::Unavailable("no node with the entities role is up".into())
                }
                Target::There(router, node) => {
                    let (tx, rx) = ractor::concurrency::oneshot();
                    let Some((req, complete)) = to_request(RpcReplyPort::from(tx)) else {
                        return Err(ActorError::Invalid(format!(
                            "{key}: this message cannot cross nodes"
                        )));
                    };
                    match router.request(&node, &req).await {
                        Ok(Answer::Failed(e)) if !e.is_retryable() => return Err(e),
                        Ok(Answer::Failed(e)) => e,
                        Ok(answer) => {
                            complete(answer);
                            match rx.await {
                                Ok(v) => return Ok(v),
                                Err(_) => ActorError::Unavailable(format!(
                                    "{key}: {node} answered something unexpected"
                                )),
                            }
                        }
                        Err(e) => e,
                    }
                }
            };
            if std::time::Instant::now() + backoff > deadline {
                return Err(err);
            }
            tracing::debug!(%key, error = %err, "retrying on the current owner");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    fn failover_deadline(&self) -> Duration {
        self.timeout
    }

    /// A view of a thread: straight from its cache when the thread is active
    /// on this node and the view is rendered, else by asking its actor
    /// (wherever it lives), which renders and caches it.
    pub async fn thread_view(
        &self,
        id: ThreadId,
        view: ThreadView,
    ) -> Result<CachedView, ActorError> {
        if matches!(self.target(EntityKey::Thread(id.0)), Target::Here)
            && get_live(&self.maps.threads, &id).is_some()
        {
            if let Some(v) = self
                .maps
                .thread_views
                .read()
                .ok()
                .and_then(|m| m.get(&id).and_then(|c| c.get(view)))
            {
                return Ok(v);
            }
        }
        self.call_thread(id, |reply| ThreadMsg::View { view, reply })
            .await?
    }

    /// A view of a board's catalog, like [`Entities::thread_view`].
    pub async fn catalog_view(
        &self,
        id: BoardId,
        view: CatalogView,
    ) -> Result<CachedView, ActorError> {
        if matches!(self.target(EntityKey::Board(id.0)), Target::Here)
            && get_live(&self.maps.boards, &id).is_some()
        {
            if let Some(v) = self
                .maps
                .board_views
                .read()
                .ok()
                .and_then(|m| m.get(&id).and_then(|c| c.get(view)))
            {
                return Ok(v);
            }
        }
        self.call_board(id, |reply| BoardMsg::View { view, reply })
            .await?
    }

    /// Asks a thread, wherever it lives, and waits for its answer.
    pub async fn call_thread<T: Send + 'static>(
        &self,
        id: ThreadId,
        msg: impl Fn(RpcReplyPort<T>) -> ThreadMsg + Send + Sync,
    ) -> Result<T, ActorError> {
        self.routed(
            EntityKey::Thread(id.0),
            |reply| {
                msg(reply)
                    .split()
                    .map(|(op, c)| (Request::Thread(id, op), c))
            },
            || Box::pin(self.call_thread_here(id, &msg)),
        )
        .await
    }

    /// Asks a board, wherever it lives, and waits for its answer.
    pub async fn call_board<T: Send + 'static>(
        &self,
        id: BoardId,
        msg: impl Fn(RpcReplyPort<T>) -> BoardMsg + Send + Sync,
    ) -> Result<T, ActorError> {
        self.routed(
            EntityKey::Board(id.0),
            |reply| {
                msg(reply)
                    .split()
                    .map(|(op, c)| (Request::Board(id, op), c))
            },
            || Box::pin(self.call_board_here(id, &msg)),
        )
        .await
    }

    /// Sends to a board, wherever it lives, without waiting for it.
    pub async fn tell_board(&self, id: BoardId, msg: BoardMsg) -> Result<(), ActorError> {
        match self.target(EntityKey::Board(id.0)) {
            Target::Here => self.tell_board_here(id, msg).await,
            Target::There(router, node) => match msg.split() {
                Some((op, _)) => router.tell(&node, &Request::Board(id, op)),
                None => Ok(()),
            },
            Target::Nobody => Err(ActorError::Unavailable(
                "no node with the entities role is up".into(),
            )),
        }
    }

    /// Sends to a thread only if it is active (an inactive one reloads from
    /// the store anyway, so it needs no notice); on another node, it is sent
    /// there and that node decides.
    pub fn tell_thread_if_active(&self, id: ThreadId, msg: ThreadMsg) {
        if let Target::There(router, node) = self.target(EntityKey::Thread(id.0)) {
            if let Some((op, _)) = msg.split() {
                let _ = router.tell(&node, &Request::Thread(id, op));
            }
            return;
        }
        if let Some(r) = get_live(&self.maps.threads, &id) {
            let _ = r.cast(msg);
        }
    }

    /// Sends to a board if it is active; gives the message back when it
    /// could not be delivered (inactive, or stopped meanwhile).
    pub fn tell_board_if_active(&self, id: BoardId, msg: BoardMsg) -> Option<BoardMsg> {
        if let Target::There(router, node) = self.target(EntityKey::Board(id.0)) {
            if let Some((op, _)) = msg.split() {
                let _ = router.tell(&node, &Request::Board(id, op));
            }
            return None;
        }
        let Some(r) = get_live(&self.maps.boards, &id) else {
            return Some(msg);
        };
        match r.cast(msg) {
            Ok(()) => None,
            Err(ractor::MessagingErr::SendErr(m)) => Some(m),
            Err(_) => None,
        }
    }

    /// Entities activated on this node since it started.
    pub fn activations(&self) -> u64 {
        self.maps
            .activations
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cluster router, when the node is in a cluster.
    pub fn router(&self) -> Option<&Arc<Router>> {
        self.maps.router.get()
    }

    /// The shard leases, when the node is in a cluster.
    pub fn leases(&self) -> Option<&Arc<Leases>> {
        self.maps.leases.get()
    }

    /// Active entities: (boards, threads).
    pub fn active(&self) -> (usize, usize) {
        let b = self.maps.boards.read().map(|m| m.len()).unwrap_or(0);
        let t = self.maps.threads.read().map(|m| m.len()).unwrap_or(0);
        (b, t)
    }

    /// Stops the active entities `moved` selects and waits for them.
    pub async fn passivate_moved(
        &self,
        moved: impl Fn(EntityKey) -> bool + Send + 'static,
    ) -> usize {
        let moved: Box<dyn Fn(EntityKey) -> bool + Send> = Box::new(moved);
        match self
            .region
            .call(
                |reply| RegionMsg::PassivateMoved { moved, reply },
                Some(Duration::from_secs(30)),
            )
            .await
        {
            Ok(CallResult::Success(n)) => n,
            _ => 0,
        }
    }

    /// Stops every active entity (graceful shutdown) and waits for them.
    pub async fn passivate_all(&self) {
        let _ = self
            .region
            .call(
                |reply| RegionMsg::PassivateAll { reply },
                Some(Duration::from_secs(30)),
            )
            .await;
    }

    /// Stops the region itself.
    pub fn stop(&self) {
        self.region.stop(None);
    }
}

fn flatten<T, E>(r: Result<CallResult<Result<T, ActorError>>, E>) -> Result<T, ActorError>
where
    E: std::fmt::Display,
{
    match r {
        Ok(CallResult::Success(v)) => v,
        Ok(CallResult::Timeout) => Err(ActorError::Unavailable("the region timed out".into())),
        Ok(CallResult::SenderError) => Err(ActorError::Unavailable(
            "the region dropped the request".into(),
        )),
        Err(e) => Err(ActorError::Unavailable(format!("region unreachable: {e}"))),
    }
}
