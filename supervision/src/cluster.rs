//! The cluster runtime of one node: ractor_cluster's node server plus the
//! membership actor that turns heartbeats into a [`Membership`] view.
//!
//! ```text
//! Cluster
//! ├── NodeServer        ractor_cluster: listener, authenticated sessions (cookie)
//! └── MembershipActor   remotable (its messages are `Wire` frames); joins the
//!                       process group "wani:membership", so every peer holds a
//!                       proxy of it after the session handshake
//! ```
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
//! Readers (HTTP, placement) take [`ViewSnapshot`]s from a shared lock and
//! subscribe to [`ViewChange`]s; they never wait on the actor's mailbox.
//!
//! Each heartbeat is answered with a `HeartbeatAck` echoing its send time,
//! so every member's round trip is measured on the sender's own clock
//! (`rtt_ms` in the view). [`Cluster::leave`] starts a drain: this node
//! shows itself as `leaving`, owns no shard, and tells every peer with a
//! `Leaving` frame on each tick until it stops.
//!
//! Not handled here: routing entity messages to the owner's region,
//! leases and fencing. They build on this view.

use crate::lease::{self, LeaseHolder};
use crate::membership::{DetectorConfig, Input, MemberState, Membership, Role, ViewChange};
use crate::placement::NodeName;
use crate::tls::{ClusterTls, TlsError, TlsFiles};
use crate::wire::{Envelope, Frame, Heartbeat, Wire};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::node::{NodeConnectionMode, NodeServerMessage};
use ractor_cluster::{IncomingEncryptionMode, NodeServer};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// The process group every membership actor joins.
pub const MEMBERSHIP_GROUP: &str = "wani:membership";

/// Longest wait between two connection attempts to one seed.
const MAX_DIAL_BACKOFF_MS: u64 = 5_000;

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

/// One member in a [`ViewSnapshot`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberView {
    pub name: String,
    pub state: MemberState,
    pub roles: Vec<Role>,
    pub incarnation: u64,
    /// Milliseconds since its last heartbeat arrived (`None` for this node).
    pub last_heartbeat_ms_ago: Option<u64>,
    /// Whether this is the node that answered.
    pub this_node: bool,
    /// Round trip of the last heartbeat this node sent the member and got
    /// an answer to (`None` for this node, or before the first answer).
    pub rtt_ms: Option<u64>,
}

/// The view as readers see it (`GET /api/v1/cluster`), made from the
/// [`Membership`] that decides.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewSnapshot {
    pub me: String,
    pub incarnation: u64,
    pub version: u64,
    pub members: Vec<MemberView>,
}

impl ViewSnapshot {
    /// The view of a node that is not in a cluster: itself, up.
    pub fn single(name: &str, roles: &BTreeSet<Role>) -> ViewSnapshot {
        ViewSnapshot {
            me: name.to_string(),
            incarnation: 0,
            version: 0,
            members: vec![MemberView {
                name: name.to_string(),
                state: MemberState::Up,
                roles: roles.iter().copied().collect(),
                incarnation: 0,
                last_heartbeat_ms_ago: None,
                this_node: true,
                rtt_ms: None,
            }],
        }
    }

    /// The snapshot of `m` at `now_ms`.
    pub fn of(m: &Membership, now_ms: u64) -> ViewSnapshot {
        let mut members: Vec<MemberView> = m
            .peers()
            .map(|p| MemberView {
                name: p.name.0.clone(),
                state: p.state,
                roles: p.roles.iter().copied().collect(),
                incarnation: p.incarnation,
                last_heartbeat_ms_ago: Some(now_ms.saturating_sub(p.last_heartbeat_ms)),
                this_node: false,
                rtt_ms: p.rtt_ms,
            })
            .collect();
        members.push(MemberView {
            name: m.me().0.clone(),
            state: m.my_state(),
            roles: m.roles().iter().copied().collect(),
            incarnation: m.incarnation(),
            last_heartbeat_ms_ago: None,
            this_node: true,
            rtt_ms: None,
        });
        members.sort_by(|a, b| a.name.cmp(&b.name));
        ViewSnapshot {
            me: m.me().0.clone(),
            incarnation: m.incarnation(),
            version: m.version(),
            members,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn cookie_digest(cookie: &str) -> [u8; 16] {
    let d = Sha256::digest(cookie.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("could not start the cluster listener on {0}: {1}")]
    Listen(SocketAddr, String),
    #[error("could not start the membership actor: {0}")]
    Membership(String),
    #[error("cluster TLS: {0}")]
    Tls(#[from] TlsError),
}

/// Arguments of [`MembershipActor`].
pub struct MembershipArgs {
    directory: Arc<RwLock<HashMap<String, u64>>>,
    config: ClusterConfig,
    node_server: ActorRef<NodeServerMessage>,
    membership: Shared,
    changes: broadcast::Sender<ViewChange>,
    tls: Option<ClusterTls>,
}
impl ractor::Message for MembershipArgs {}

/// Per-seed dialing state.
struct Dial {
    next_ms: u64,
    backoff_ms: u64,
}

/// The membership actor's state.
pub struct MembershipState {
    /// Peer name → ractor node id of its current session, for addressing.
    directory: Arc<RwLock<HashMap<String, u64>>>,
    config: ClusterConfig,
    /// The view, shared with [`Cluster`]'s readers; this actor is its only
    /// writer but for [`Cluster::leave`].
    membership: Shared,
    node_server: ActorRef<NodeServerMessage>,
    changes: broadcast::Sender<ViewChange>,
    cookie_digest: [u8; 16],
    dials: HashMap<String, Dial>,
    my_connection: String,
    /// Seeds are dialed over TLS with this when set.
    tls: Option<ClusterTls>,
}

/// Sends and receives heartbeats; owns the view.
pub struct MembershipActor;

impl MembershipState {
    fn heartbeat(&self, you_are: Option<(MemberState, u64)>) -> Wire {
        let m = self.membership.read();
        Wire(Ok(Envelope::V1(Frame::Heartbeat(Heartbeat {
            from: m.me().0.clone(),
            incarnation: m.incarnation(),
            roles: m.roles().iter().map(|r| r.name().to_string()).collect(),
            you_are: you_are.map(|(s, _)| s.name()).unwrap_or("").to_string(),
            you_are_incarnation: you_are.map(|(_, i)| i).unwrap_or(0),
            sent_ms: now_ms(),
            cookie_digest: self.cookie_digest,
        }))))
    }

    /// Applies one input to the view and tells subscribers what changed.
    fn step(&mut self, input: Input) {
        let changes = self.membership.write().step(input);
        publish(&self.membership, &self.changes, changes);
    }

    async fn tick(&mut self) {
        let now = now_ms();
        self.step(Input::Tick { now_ms: now });

        // Who is connected, by configured name and by address.
        let sessions =
            match ractor::call_t!(self.node_server, NodeServerMessage::GetSessions, 1_000) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the node server did not answer");
                    HashMap::new()
                }
            };
        let mut names = HashMap::new();
        let mut connected = BTreeSet::new();
        for s in sessions.values() {
            if let Some(peer) = &s.peer_name {
                let name = peer.name.split('@').next().unwrap_or("").to_string();
                names.insert(s.node_id, name);
                connected.insert(peer.connection_string.clone());
            }
        }

        if let Ok(mut d) = self.directory.write() {
            *d = names.iter().map(|(id, name)| (name.clone(), *id)).collect();
        }

        for cell in ractor::pg::get_members(&MEMBERSHIP_GROUP.to_string()) {
            let id = cell.get_id();
            if id.is_local() {
                continue;
            }
            let you_are = names.get(&id.node()).and_then(|n| self.verdict_on(n));
            let peer: ActorRef<Wire> = cell.into();
            let _ = peer.cast(self.heartbeat(you_are));
            // Every tick, so a peer that missed the first notice (or
            // connects later) learns it too.
            if self.membership.read().is_leaving() {
                let _ = peer.cast(self.leaving());
            }
        }

        for seed in self.config.seeds.clone() {
            if seed == self.my_connection {
                continue;
            }
            let interval = self.config.detector.heartbeat_interval_ms;
            let dial = self.dials.entry(seed.clone()).or_insert(Dial {
                next_ms: 0,
                backoff_ms: interval,
            });
            if connected.contains(&seed) {
                dial.backoff_ms = interval;
                dial.next_ms = 0;
                continue;
            }
            if now < dial.next_ms {
                continue;
            }
            dial.next_ms = now + dial.backoff_ms;
            dial.backoff_ms = (dial.backoff_ms * 2).min(MAX_DIAL_BACKOFF_MS);
            let server = self.node_server.clone();
            let tls = self.tls.as_ref().map(|t| t.connector());
            tokio::spawn(async move {
                let res = match tls {
                    None => ractor_cluster::client_connect(&server, seed.as_str()).await,
                    Some(connector) => {
                        let Some(name) = crate::tls::seed_server_name(&seed) else {
                            tracing::warn!(%seed, "seed host is not a valid TLS server name");
                            return;
                        };
                        ractor_cluster::client_connect_enc(&server, seed.as_str(), connector, name)
                            .await
                    }
                };
                if let Err(e) = res {
                    tracing::debug!(%seed, error = %e, "seed not reachable yet");
                }
            });
        }
    }

    fn leaving(&self) -> Wire {
        let m = self.membership.read();
        Wire(Ok(Envelope::V1(Frame::Leaving {
            from: m.me().0.clone(),
            incarnation: m.incarnation(),
        })))
    }

    /// How this node sees the peer `name`: its state and incarnation.
    fn verdict_on(&self, name: &str) -> Option<(MemberState, u64)> {
        self.membership
            .read()
            .member(&NodeName(name.to_string()))
            .map(|m| (m.state, m.incarnation))
    }

    /// The membership actor of `name`'s current session, if connected.
    fn peer(&self, name: &str) -> Option<ActorRef<Wire>> {
        let id = self.directory.read().ok()?.get(name).copied()?;
        ractor::pg::get_members(&MEMBERSHIP_GROUP.to_string())
            .into_iter()
            .find(|c| !c.get_id().is_local() && c.get_id().node() == id)
            .map(ActorRef::from)
    }

    fn receive(&mut self, frame: Frame) {
        match frame {
            Frame::Heartbeat(beat) | Frame::HeartbeatAck { beat, .. }
                if beat.cookie_digest != self.cookie_digest =>
            {
                tracing::warn!(from = %beat.from, "heartbeat with another cluster cookie refused");
            }
            Frame::Heartbeat(beat) => {
                // Answer with our own heartbeat echoing its send time: the
                // sender measures the round trip on its own clock, so clock
                // skew between nodes does not enter the figure. An ack is
                // never answered, so there is no ping-pong.
                let echo_sent_ms = beat.sent_ms;
                let from = beat.from.clone();
                self.heard(beat, None);
                if let Some(peer) = self.peer(&from) {
                    let you_are = self.verdict_on(&from);
                    if let Wire(Ok(Envelope::V1(Frame::Heartbeat(mine)))) = self.heartbeat(you_are)
                    {
                        let _ = peer.cast(Wire(Ok(Envelope::V1(Frame::HeartbeatAck {
                            beat: mine,
                            echo_sent_ms,
                        }))));
                    }
                }
            }
            Frame::HeartbeatAck { beat, echo_sent_ms } => {
                let rtt = now_ms().saturating_sub(echo_sent_ms);
                self.heard(beat, Some(rtt));
            }
            Frame::Leaving { from, incarnation } => self.step(Input::Leaving {
                from: NodeName(from),
                incarnation,
                now_ms: now_ms(),
            }),
            // Actor traffic goes to the transport, not here.
            Frame::Tick | Frame::Send { .. } | Frame::Answer { .. } | Frame::AnswerPart { .. } => {}
        }
    }

    /// Feeds a peer's heartbeat (or ack, with the measured round trip) to
    /// the state machine.
    fn heard(&mut self, beat: Heartbeat, rtt_ms: Option<u64>) {
        let roles = beat
            .roles
            .iter()
            .filter_map(|r| Role::from_name(r))
            .collect();
        self.step(Input::Heartbeat {
            from: NodeName(beat.from),
            incarnation: beat.incarnation,
            roles,
            you_are: MemberState::from_name(&beat.you_are).map(|s| (s, beat.you_are_incarnation)),
            now_ms: now_ms(),
            rtt_ms,
        });
    }
}

impl Actor for MembershipActor {
    type Msg = Wire;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Wire>,
        args: MembershipArgs,
    ) -> Result<MembershipState, ActorProcessingErr> {
        ractor::pg::join(MEMBERSHIP_GROUP.to_string(), vec![myself.get_cell()]);
        let c = &args.config;
        let my_connection = format!("{}:{}", c.advertise_host, c.listen.port());
        Ok(MembershipState {
            directory: args.directory,
            cookie_digest: cookie_digest(&c.cookie),
            config: args.config,
            membership: args.membership,
            node_server: args.node_server,
            changes: args.changes,
            dials: HashMap::new(),
            my_connection,
            tls: args.tls,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Wire>,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        let every = Duration::from_millis(state.config.detector.heartbeat_interval_ms.max(10));
        myself.send_interval(every, || Wire(Ok(Envelope::V1(Frame::Tick))));
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Wire>,
        msg: Wire,
        state: &mut MembershipState,
    ) -> Result<(), ActorProcessingErr> {
        match msg.0 {
            Ok(Envelope::V1(Frame::Tick)) => state.tick().await,
            Ok(Envelope::V1(frame)) => state.receive(frame),
            Err(e) => tracing::warn!(error = %e, "dropped a broken cluster frame"),
        }
        Ok(())
    }
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

/// Tells subscribers what changed; a peer that declared this node down
/// makes it rejoin as a new incarnation.
fn publish(membership: &Shared, changes: &broadcast::Sender<ViewChange>, list: Vec<ViewChange>) {
    for c in list {
        match &c {
            ViewChange::SelfDowned => {
                tracing::warn!("a peer declared this node down; rejoining as a new incarnation");
                membership.write().rejoin(now_ms());
            }
            other => tracing::info!(change = ?other, "cluster view changed"),
        }
        let _ = changes.send(c);
    }
}

/// A running cluster membership for this node.
pub struct Cluster {
    name: String,
    /// How many seeds the config names: with this node, the smallest the
    /// cluster can be, even before it has heard from any of them.
    seeds: usize,
    directory: Arc<RwLock<HashMap<String, u64>>>,
    /// The view that decides: placement, liveness, quorum and leases all
    /// ask this [`Membership`], the state machine the golden scripts test.
    view: Shared,
    changes: broadcast::Sender<ViewChange>,
    node_server: ActorRef<NodeServerMessage>,
    membership: ActorRef<Wire>,
}

impl Cluster {
    /// Starts the node server and the membership actor.
    pub async fn start(config: ClusterConfig) -> Result<Cluster, ClusterError> {
        // Once per process, before this node builds a rustls config.
        crate::tls::install_crypto_provider();
        let tls = config.tls.as_ref().map(ClusterTls::load).transpose()?;
        let server = NodeServer::new(
            config.listen.port(),
            config.cookie.clone(),
            config.name.clone(),
            config.advertise_host.clone(),
            tls.as_ref()
                .map(|t| IncomingEncryptionMode::Tls(t.acceptor())),
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(config.listen.ip());
        let (node_server, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| ClusterError::Listen(config.listen, e.to_string()))?;
        let view = Shared(Arc::new(RwLock::new(Membership::new(
            NodeName(config.name.clone()),
            now_ms(),
            config.roles.clone(),
            config.detector,
        ))));
        let (changes, _) = broadcast::channel(256);
        let directory = Arc::new(RwLock::new(HashMap::new()));
        let name = config.name.clone();
        let seeds = config.seeds.len();
        let args = MembershipArgs {
            directory: directory.clone(),
            config,
            node_server: node_server.clone(),
            membership: view.clone(),
            changes: changes.clone(),
            tls,
        };
        let (membership, _) = Actor::spawn(None, MembershipActor, args)
            .await
            .map_err(|e| ClusterError::Membership(e.to_string()))?;
        Ok(Cluster {
            name,
            seeds,
            directory,
            view,
            changes,
            node_server,
            membership,
        })
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

    /// View changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ViewChange> {
        self.changes.subscribe()
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
        publish(&self.view, &self.changes, changes);
        // Tell the peers now rather than at the next tick.
        let _ = self.membership.cast(Wire(Ok(Envelope::V1(Frame::Tick))));
    }

    /// Whether [`Cluster::leave`] was called.
    pub fn is_draining(&self) -> bool {
        self.view.read().is_leaving()
    }

    /// Stops membership and closes every session.
    pub fn stop(&self) {
        self.membership.stop(None);
        self.node_server.stop(None);
    }
}
