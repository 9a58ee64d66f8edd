//! The cluster runtime of one node: ractor_cluster's node server plus the
//! membership actor that turns heartbeats into a [`Membership`] view.
//!
//! ```text
//! cluster/node-server   ractor_cluster's NodeServer: listener, authenticated
//!                       sessions (cookie)
//! cluster/membership    MembershipActor (driver.rs): remotable (its messages are
//!                       `Wire` frames); joins the process group
//!                       "wani:membership", so every peer holds a proxy of it
//! ```
//!
//! Both run under the node's supervision tree ([`Cluster::children`]); the
//! view itself lives in [`Cluster`], so restarting either actor keeps it.
//!
//! Every `heartbeat_interval_ms` the membership actor (1) ticks the failure
//! detector, (2) sends a heartbeat to every peer's membership actor, telling
//! each how it sees it (`you_are`), and (3) dials every seed it has no
//! session with, backing off per seed (doubling up to 5 s) so a restarted
//! peer is found again without a storm of connection attempts. Peers are
//! identified by their configured name, taken from the session handshake and
//! from the heartbeat itself, never by ractor's per-connection node id.
//!
//! A peer with the wrong cookie fails ractor_cluster's handshake and never
//! reaches the group; a heartbeat whose cookie digest differs is dropped too,
//! so a misconfigured node can neither join nor evict anyone. With
//! [`ClusterConfig::tls`] set, sessions are mutual TLS ([`crate::tls`]) and
//! a peer without a certificate from the cluster's CA never gets that far.
//!
//! Readers (HTTP, placement, leases) ask the shared [`Membership`] under a
//! read lock, and listen to [`ViewChange`]s ([`Cluster::on_change`]); they
//! never wait on the actor's mailbox.
//!
//! Each heartbeat is answered with a `HeartbeatAck` echoing its send time,
//! so every member's round trip is measured on the sender's own clock
//! (`rtt_ms` in the view). [`Cluster::leave`] starts a drain: this node
//! shows itself as `leaving`, owns no shard, and tells every peer with a
//! `Leaving` frame on each tick until it stops.
//!
//! Not handled here: routing entity messages to the owner's region,
//! leases and fencing. They build on this view.

mod driver;
mod view;

pub use driver::{MembershipActor, MEMBERSHIP_GROUP};
pub use view::{MemberView, ViewSnapshot};

use crate::lease::{self, LeaseHolder};
use crate::membership::{DetectorConfig, Input, MemberState, Membership, Role, ViewChange};
use crate::placement::NodeName;
use crate::tls::{ClusterTls, TlsError, TlsFiles};
use crate::tree::{ChildSpec, Policy, Slot};
use crate::wire::{Envelope, Frame, Wire};
use ractor::Actor;
use ractor_cluster::node::{NodeConnectionMode, NodeServerMessage};
use ractor_cluster::{IncomingEncryptionMode, NodeServer};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// How a node takes part in the cluster.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This node's configured name (unique in the cluster).
    pub name: String,
    /// Where the node server listens for peers.
    pub listen: SocketAddr,
    /// The host peers reach this node at (the listen port is kept).
    pub advertise_host: String,
    /// `host:port` of peers to connect to.
    pub seeds: Vec<String>,
    /// Shared secret; peers with another cookie are refused.
    pub cookie: String,
    pub roles: BTreeSet<Role>,
    pub detector: DetectorConfig,
    /// Mutual TLS between nodes (cert, key, CA); plain TCP when `None`.
    pub tls: Option<TlsFiles>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("could not start the cluster listener on {0}: {1}")]
    Listen(SocketAddr, String),
    #[error("cluster TLS: {0}")]
    Tls(#[from] TlsError),
}

/// The membership view, shared by the actor that steps it and every reader.
#[derive(Clone)]
struct Shared(Arc<RwLock<Membership>>);

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Membership> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Membership> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Called with every view change.
type Listener = Box<dyn Fn(&ViewChange) + Send + Sync>;

/// This node's part in the cluster: its configuration, its view, its
/// sessions, and the two actors that keep them (started by the tree).
pub struct Cluster {
    name: String,
    /// How many seeds the config names: with this node, the smallest the
    /// cluster can be, even before it has heard from any of them.
    seeds: usize,
    config: ClusterConfig,
    /// Seeds are dialed, and peers accepted, over TLS with this when set.
    tls: Option<ClusterTls>,
    /// Peer name → ractor node id of its current session, for addressing.
    directory: Arc<RwLock<HashMap<String, u64>>>,
    /// The view that decides: placement, liveness, quorum and leases all
    /// ask this [`Membership`], the state machine the golden scripts test.
    view: Shared,
    listeners: RwLock<Vec<Listener>>,
    node_server: Slot<NodeServerMessage>,
    membership: Slot<Wire>,
    /// Debug builds: the membership actor panics on its next message.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    crash: AtomicBool,
}

impl Cluster {
    /// This node's cluster, before its actors run: add
    /// [`Cluster::children`] to the node's tree to start them.
    pub fn new(config: ClusterConfig) -> Result<Arc<Cluster>, ClusterError> {
        // Once per process, before this node builds a rustls config.
        crate::tls::install_crypto_provider();
        let tls = config.tls.as_ref().map(ClusterTls::load).transpose()?;
        let view = Shared(Arc::new(RwLock::new(Membership::new(
            NodeName(config.name.clone()),
            now_ms(),
            config.roles.clone(),
            config.detector,
        ))));
        Ok(Arc::new(Cluster {
            name: config.name.clone(),
            seeds: config.seeds.len(),
            config,
            tls,
            directory: Arc::new(RwLock::new(HashMap::new())),
            view,
            listeners: RwLock::new(Vec::new()),
            node_server: Slot::default(),
            membership: Slot::default(),
            crash: AtomicBool::new(false),
        }))
    }

    /// The node server and the membership actor, for the node's tree, in
    /// start order. Restarting the node server drops every session (peers
    /// are dialed again); restarting the membership actor keeps the view.
    pub fn children(self: &Arc<Self>) -> Vec<ChildSpec> {
        let me = self.clone();
        let server = ChildSpec {
            name: "cluster/node-server",
            policy: Policy::Restart,
            restart_means: "the listener opens again; sessions are dialed again",
            start: Box::new(move |sup| {
                let me = me.clone();
                Box::pin(async move {
                    let c = &me.config;
                    let server = NodeServer::new(
                        c.listen.port(),
                        c.cookie.clone(),
                        c.name.clone(),
                        c.advertise_host.clone(),
                        me.tls
                            .as_ref()
                            .map(|t| IncomingEncryptionMode::Tls(t.acceptor())),
                        Some(NodeConnectionMode::Isolated),
                    )
                    .with_listen_addr(c.listen.ip());
                    let (actor, _) = Actor::spawn_linked(None, server, (), sup)
                        .await
                        .map_err(|e| ClusterError::Listen(c.listen, e.to_string()).to_string())?;
                    me.node_server.set(actor.clone());
                    Ok(actor.get_cell())
                })
            }),
            crash: None,
        };
        let me = self.clone();
        let crash_me = self.clone();
        let membership = ChildSpec {
            name: "cluster/membership",
            policy: Policy::Restart,
            restart_means: "heartbeats resume; the view is kept",
            start: Box::new(move |sup| {
                let me = me.clone();
                Box::pin(async move {
                    let (actor, _) = Actor::spawn_linked(None, MembershipActor, me.clone(), sup)
                        .await
                        .map_err(|e| format!("membership: {e}"))?;
                    me.membership.set(actor.clone());
                    Ok(actor.get_cell())
                })
            }),
            // Only debug builds check the flag; release builds have no hook.
            crash: cfg!(debug_assertions).then(|| -> crate::tree::CrashFn {
                Box::new(move || {
                    crash_me
                        .crash
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    crash_me
                        .membership
                        .cast(Wire(Ok(Envelope::V1(Frame::Tick))))
                        .is_ok()
                })
            }),
        };
        vec![server, membership]
    }

    /// The current view, for display.
    pub fn view(&self) -> ViewSnapshot {
        ViewSnapshot::of(&self.view.read(), now_ms())
    }

    /// This node's name.
    pub fn me(&self) -> NodeName {
        NodeName(self.name.clone())
    }

    /// This node's lease identity: name and incarnation, so a restarted
    /// process never shares a fence with its previous life.
    pub fn lease_holder(&self) -> LeaseHolder {
        let v = self.view.read();
        LeaseHolder {
            node: v.me().clone(),
            incarnation: v.incarnation(),
        }
    }

    /// Nodes that own shards for `role` in the current view (up or
    /// suspect, carrying the role, not leaving), sorted.
    pub fn owners_for(&self, role: Role) -> Vec<NodeName> {
        self.view.read().owners_for(role)
    }

    /// Nodes carrying `role` whatever their state (this one included).
    pub fn with_role(&self, role: Role) -> Vec<NodeName> {
        self.view.read().with_role(role).cloned().collect()
    }

    /// Whether `name` owns nothing in this node's view: down, leaving or
    /// unknown.
    pub fn is_gone(&self, name: &str) -> bool {
        !self
            .view
            .read()
            .state_of(&NodeName(name.to_string()))
            .is_some_and(MemberState::owns)
    }

    /// Whether this node's view is old enough to act on (see
    /// [`Membership::is_settled`]).
    pub fn is_settled(&self) -> bool {
        self.view.read().is_settled(now_ms())
    }

    /// What to do about a shard lease whose holder column reads `holder`
    /// (see [`lease::decide`]).
    pub fn lease_decision(&self, holder: &str) -> lease::Decision {
        lease::decide(&self.view.read(), now_ms(), self.seeds + 1, holder)
    }

    /// Whether this node sees a majority of the cluster alive (see
    /// [`Membership::has_quorum`]); the cluster is at least its seeds and
    /// this node.
    pub fn has_quorum(&self) -> bool {
        self.view.read().has_quorum(self.seeds + 1)
    }

    /// A node carrying `role` for a job: this node when it owns the role,
    /// else one of the others, taking turns by `turn`.
    pub fn pick(&self, role: Role, turn: u64) -> Option<NodeName> {
        let owners = self.owners_for(role);
        let me = self.me();
        if owners.contains(&me) {
            return Some(me);
        }
        if owners.is_empty() {
            return None;
        }
        owners.get(turn as usize % owners.len()).cloned()
    }

    /// The ractor node id of `name`'s current session, if connected.
    pub fn node_id(&self, name: &str) -> Option<u64> {
        self.directory
            .read()
            .ok()
            .and_then(|d| d.get(name).copied())
    }

    /// Calls `f` with every view change from now on, in order, on the
    /// thread that made it: `f` must be quick and never wait.
    pub fn on_change(&self, f: impl Fn(&ViewChange) + Send + Sync + 'static) {
        if let Ok(mut l) = self.listeners.write() {
            l.push(Box::new(f));
        }
    }

    /// Tells listeners what changed; a peer that declared this node down
    /// makes it rejoin as a new incarnation.
    fn publish(&self, changes: Vec<ViewChange>) {
        for c in changes {
            match &c {
                ViewChange::SelfDowned => {
                    tracing::warn!(
                        "a peer declared this node down; rejoining as a new incarnation"
                    );
                    self.view.write().rejoin(now_ms());
                }
                other => tracing::info!(change = ?other, "cluster view changed"),
            }
            if let Ok(listeners) = self.listeners.read() {
                for l in listeners.iter() {
                    l(&c);
                }
            }
        }
    }

    /// Starts leaving the cluster (drain): from now on this node owns no
    /// shard in its own view (it shows as `leaving`), every peer is told at
    /// once and again on every heartbeat, and subscribers get
    /// `Left(this node)` so they hand its entities over. Idempotent; there
    /// is no way back for this process (peers keep a leaving incarnation
    /// out), it rejoins by restarting.
    pub fn leave(&self) {
        let changes = self.view.write().step(Input::Leave);
        if changes.is_empty() {
            return;
        }
        tracing::info!("leaving the cluster: handing this node's shards over");
        self.publish(changes);
        // Tell the peers now rather than at the next tick.
        let _ = self.membership.cast(Wire(Ok(Envelope::V1(Frame::Tick))));
    }

    /// Whether [`Cluster::leave`] was called.
    pub fn is_draining(&self) -> bool {
        self.view.read().is_leaving()
    }
}
