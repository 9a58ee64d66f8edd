//! Router: reaching entities owned by other nodes.
//!
//! Each node runs one remotable region router actor (its messages are
//! `Wire` frames) in the process group `wani:region`, so every peer holds a
//! proxy of it. An entity's owner is computed from the membership view:
//! `shard = hash(key) mod N`, owner = rendezvous hash of the shard over the
//! nodes that are up (or suspect) with the `entities` role. Every node
//! computes the same owner from the same view.
//!
//! A call to a remote entity is a `Call { req, from, payload }` frame to the
//! owner's router, which runs it on its own [`Entities`] and answers
//! `Reply { req, payload }` to the router of `from`. The caller waits with a
//! timeout; [`Entities`] then routes again, so a call to a node that just
//! died lands on the new owner once the view has moved its shard. Writes
//! carry idempotency keys, so such a retry stores a post once.
//!
//! Not handled here: what an owner does when it receives a call for a shard
//! it no longer owns (it serves it; fencing in the store refuses a write
//! from a stale owner).

use crate::error::ActorError;
use crate::lease::Leases;
use crate::live::LiveHub;
use crate::region::Entities;
use crate::remote::{self, Answer, Request};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use wani_supervision::cluster::Cluster;
use wani_supervision::wire::{Envelope, Frame, Wire};
use wani_supervision::{owner_of, shard_of, EntityKey, NodeName, Role, ViewChange};

/// The process group of the region routers.
pub const REGION_GROUP: &str = "wani:region";

/// How often entities and leases of shards this node no longer owns are
/// looked for, besides on every view change.
const RECONCILE_EVERY: Duration = Duration::from_secs(1);

/// Where an entity lives, as this node sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Here,
    There(NodeName),
    /// No node with the `entities` role is up, or this node has only just
    /// joined and does not know yet who is.
    Nobody,
}

/// Routes entity calls across the cluster.
pub struct Router {
    cluster: Arc<Cluster>,
    shards: u32,
    timeout: Duration,
    next_req: AtomicU64,
    /// Requests awaiting an answer, with the node asked.
    pending: Mutex<HashMap<u64, (NodeName, oneshot::Sender<Vec<u8>>)>>,
    /// Answers arriving in parts: the parts so far, by request.
    parts: Mutex<HashMap<u64, Vec<Vec<u8>>>>,
    actor: Mutex<Option<ActorRef<Wire>>>,
    /// Entities stopped here because their shard moved away (metrics).
    handed_over: AtomicU64,
    /// Shard leases released because their shard moved away (metrics).
    leases_released: AtomicU64,
}

impl Router {
    /// Starts this node's region router actor and returns the router.
    pub async fn start(
        cluster: Arc<Cluster>,
        entities: Entities,
        leases: Arc<Leases>,
        live: LiveHub,
        shards: u32,
        timeout: Duration,
    ) -> Result<Arc<Router>, ActorError> {
        let router = Arc::new(Router {
            cluster,
            shards,
            timeout,
            next_req: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            parts: Mutex::new(HashMap::new()),
            actor: Mutex::new(None),
            handed_over: AtomicU64::new(0),
            leases_released: AtomicU64::new(0),
        });
        let (actor, _) = Actor::spawn(
            None,
            RouterActor,
            RouterArgs {
                router: router.clone(),
                entities: entities.clone(),
            },
        )
        .await
        .map_err(|e| ActorError::Unavailable(format!("region router: {e}")))?;
        if let Ok(mut a) = router.actor.lock() {
            *a = Some(actor);
        }
        router.follow_view(entities, leases, live);
        Ok(router)
    }

    /// When the view changes, entities whose shard now belongs to another
    /// node stop here and their shard leases are released, so this node never
    /// serves a stale copy if the shard comes back to it later, and the new
    /// owner takes the lease at once; it loads the entities from the store.
    fn follow_view(self: &Arc<Self>, entities: Entities, leases: Arc<Leases>, live: LiveHub) {
        let mut changes = self.cluster.subscribe();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
            loop {
                let change = tokio::select! {
                    c = changes.recv() => match c {
                        Ok(c) => Some(c),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                    // A periodic pass catches what a view change alone
                    // misses: an activation that raced the change (routed
                    // here before it, leased after the release) would keep
                    // a shard this node does not own, and its new owner
                    // could never take the lease.
                    _ = reconcile.tick() => None,
                };
                let Some(router) = weak.upgrade() else { break };
                // Before the view settles every route is `Nobody`: that is
                // not a reason to stop what peers asked this node to run.
                if change.is_none() && !router.cluster.is_settled() {
                    continue;
                }
                if let Some(ViewChange::Downed(node)) = &change {
                    // A paused node keeps its socket open: without this, calls
                    // to it would wait for their timeout before re-routing.
                    router.abandon(node);
                    let (r, node) = (router.clone(), node.clone());
                    live.resync_where(move |key| r.was_owner(&node, key));
                }
                let r = router.clone();
                let moved = entities
                    .passivate_moved(move |key| r.route(key) != Route::Here)
                    .await;
                if moved > 0 {
                    tracing::info!(entities = moved, "handed entities over after a view change");
                }
                let released = leases
                    .release_unless(|shard| router.owns_shard(shard))
                    .await;
                router
                    .handed_over
                    .fetch_add(moved as u64, Ordering::Relaxed);
                router
                    .leases_released
                    .fetch_add(released as u64, Ordering::Relaxed);
            }
        });
    }

    /// Whether this node owns `shard` in the current view.
    pub fn owns_shard(&self, shard: i64) -> bool {
        let owners = self.cluster.owners_for(Role::Entities);
        owner_of(wani_supervision::ShardId(shard as u32), &owners) == Some(&self.cluster.me())
    }

    /// The shard count.
    pub fn shards(&self) -> u32 {
        self.shards
    }

    /// Whether this node is draining: it owns nothing and activates nothing.
    pub fn is_draining(&self) -> bool {
        self.cluster.is_draining()
    }

    /// Entities stopped here since start because their shard moved away.
    pub fn handed_over(&self) -> u64 {
        self.handed_over.load(Ordering::Relaxed)
    }

    /// Shard leases released since start because their shard moved away.
    pub fn leases_released(&self) -> u64 {
        self.leases_released.load(Ordering::Relaxed)
    }

    /// The owner of `key` in the current view.
    pub fn route(&self, key: EntityKey) -> Route {
        if !self.cluster.is_settled() {
            return Route::Nobody;
        }
        let owners = self.cluster.owners_for(Role::Entities);
        match owner_of(shard_of(&key, self.shards), &owners) {
            None => Route::Nobody,
            Some(n) if *n == self.cluster.me() => Route::Here,
            Some(n) => Route::There(n.clone()),
        }
    }

    /// The router actor of `node`, if a session to it is up.
    fn peer(&self, node: &NodeName) -> Option<ActorRef<Wire>> {
        let id = self.cluster.node_id(&node.0)?;
        ractor::pg::get_members(&REGION_GROUP.to_string())
            .into_iter()
            .find(|c: &ActorCell| !c.get_id().is_local() && c.get_id().node() == id)
            .map(ActorRef::from)
    }

    fn send(&self, node: &NodeName, frame: Frame) -> Result<(), ActorError> {
        let peer = self
            .peer(node)
            .ok_or_else(|| ActorError::Unavailable(format!("no session to {node}")))?;
        peer.cast(Wire(Ok(Envelope::V1(frame))))
            .map_err(|e| ActorError::Unavailable(format!("could not send to {node}: {e}")))
    }

    /// Sends a one-way request (no answer is awaited).
    pub fn tell(&self, node: &NodeName, req: &Request) -> Result<(), ActorError> {
        let payload = remote::encode(req)?;
        self.send(
            node,
            Frame::Call {
                req: 0,
                from: self.cluster.me().0,
                payload,
            },
        )
    }

    /// Whether `node` (just declared down) owned the entity `key`: it would
    /// win the rendezvous again if it were back among the owners.
    fn was_owner(&self, node: &NodeName, key: EntityKey) -> bool {
        let mut before = self.cluster.owners_for(Role::Entities);
        if !before.contains(node) {
            before.push(node.clone());
        }
        owner_of(shard_of(&key, self.shards), &before) == Some(node)
    }

    /// Sends a request to `node` and waits (at most the timeout) for its answer.
    pub async fn request(&self, node: &NodeName, req: &Request) -> Result<Answer, ActorError> {
        let payload = remote::encode(req)?;
        let id = self.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.pending.lock() {
            p.insert(id, (node.clone(), tx));
        }
        let sent = self.send(
            node,
            Frame::Call {
                req: id,
                from: self.cluster.me().0,
                payload,
            },
        );
        let result = match sent {
            Err(e) => Err(e),
            Ok(()) => match tokio::time::timeout(self.timeout, rx).await {
                Ok(Ok(bytes)) => remote::decode::<Answer>(&bytes),
                Ok(Err(_)) => Err(ActorError::Unavailable(format!(
                    "{node} dropped the request"
                ))),
                Err(_) => Err(ActorError::Unavailable(format!(
                    "{node} did not answer in time"
                ))),
            },
        };
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&id);
        }
        if let Ok(mut p) = self.parts.lock() {
            p.remove(&id);
        }
        result
    }

    /// Sends an answer to `to`: one `Reply`, or in parts when it is larger
    /// than a frame.
    fn answer(&self, to: &NodeName, req: u64, payload: Vec<u8>) -> Result<(), ActorError> {
        if payload.len() <= wani_supervision::wire::PART {
            return self.send(to, Frame::Reply { req, payload });
        }
        let parts = payload.len().div_ceil(wani_supervision::wire::PART) as u32;
        for (part, chunk) in payload.chunks(wani_supervision::wire::PART).enumerate() {
            self.send(
                to,
                Frame::ReplyPart {
                    req,
                    part: part as u32,
                    parts,
                    payload: chunk.to_vec(),
                },
            )?;
        }
        Ok(())
    }

    /// Takes one part of an answer; the last one completes the request.
    /// Parts arrive in order over one session; anything else (a part for a
    /// request no longer waiting, one out of order, too many) is dropped,
    /// and the caller times out and retries.
    fn complete_part(&self, req: u64, part: u32, parts: u32, payload: Vec<u8>) {
        let waiting = self
            .pending
            .lock()
            .map(|p| p.contains_key(&req))
            .unwrap_or(false);
        if !waiting || parts as usize > remote::MAX_ANSWER / wani_supervision::wire::PART + 1 {
            return;
        }
        let Ok(mut all) = self.parts.lock() else {
            return;
        };
        let got = all.entry(req).or_default();
        if part as usize != got.len() {
            all.remove(&req);
            return;
        }
        got.push(payload);
        if got.len() == parts as usize {
            let joined = all.remove(&req).unwrap_or_default().concat();
            drop(all);
            self.complete(req, joined);
        }
    }

    fn complete(&self, req: u64, payload: Vec<u8>) {
        let tx = self.pending.lock().ok().and_then(|mut p| p.remove(&req));
        if let Some((_, tx)) = tx {
            let _ = tx.send(payload);
        }
    }

    /// Fails every request waiting on `node` (declared down), so callers
    /// route again at once.
    fn abandon(&self, node: &NodeName) {
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|_, (n, _)| n != node);
        }
    }

    /// Stops the router actor.
    pub fn stop(&self) {
        if let Some(a) = self.actor.lock().ok().and_then(|a| a.clone()) {
            a.stop(None);
        }
    }
}

/// Arguments of [`RouterActor`].
pub struct RouterArgs {
    router: Arc<Router>,
    entities: Entities,
}
impl ractor::Message for RouterArgs {}

/// The remotable actor behind a [`Router`].
pub struct RouterActor;

impl Actor for RouterActor {
    type Msg = Wire;
    type State = RouterArgs;
    type Arguments = RouterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Wire>,
        args: RouterArgs,
    ) -> Result<RouterArgs, ActorProcessingErr> {
        ractor::pg::join(REGION_GROUP.to_string(), vec![myself.get_cell()]);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Wire>,
        msg: Wire,
        state: &mut RouterArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg.0 {
            Ok(Envelope::V1(Frame::Call { req, from, payload })) => {
                let request = remote::decode::<Request>(&payload);
                let router = state.router.clone();
                let entities = state.entities.clone();
                // Each call runs on its own task: a slow entity must not hold
                // up calls to the others.
                tokio::spawn(async move {
                    let answer = match request {
                        Ok(request) => remote::serve(&entities, request).await,
                        Err(e) => Answer::Failed(e),
                    };
                    if req == 0 {
                        return;
                    }
                    match remote::encode(&answer) {
                        Ok(payload) => {
                            if let Err(e) = router.answer(&NodeName(from.clone()), req, payload) {
                                tracing::warn!(%from, error = %e, "could not answer a cluster call");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "could not encode an answer"),
                    }
                });
            }
            Ok(Envelope::V1(Frame::Reply { req, payload })) => state.router.complete(req, payload),
            Ok(Envelope::V1(Frame::ReplyPart {
                req,
                part,
                parts,
                payload,
            })) => state.router.complete_part(req, part, parts, payload),
            Ok(Envelope::V1(_)) => {}
            Err(e) => tracing::warn!(error = %e, "dropped a broken cluster frame"),
        }
        Ok(())
    }
}
