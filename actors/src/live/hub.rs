//! Live updates: the node's [`LiveHub`] and one [`LiveSubscriber`] per
//! connected client.
//!
//! ```text
//! LiveHub                     one per node; fans events out, replay ring
//! └── LiveSubscriber(client)  one per SSE connection; ends with it
//! ```
//!
//! Thread and board actors publish with one cast after a committed write
//! ([`LiveHub::publish`]). In a cluster the owner's hub also sends the write,
//! once, to every other node with the `live` role whose clients follow its
//! thread or board ([`LiveMsg::Relayed`] over the transport; each hub
//! announces what its clients follow, see `interest.rs`), whose hub fans it
//! out to its own clients. Those
//! messages are numbered per receiving node (`relay.rs`), and each sender
//! says every second how many it sent: a receiver that finds one missing
//! (a session dropped with it in flight) tells its subscribers to resync. Each hub turns writes into numbered events, keeps
//! the last [`REPLAY`] of them for `Last-Event-ID`, and hands each to the
//! clients subscribed to its thread or board with `try_send` on a bounded
//! channel. Neither the hub nor the writers ever wait on a client: a full
//! buffer gets the client a `resync` (on a side channel, so it always fits)
//! and the connection is ended.
//!
//! Event ids carry the hub's random tag in their top bits: a client that
//! reconnects to another node, or to a restarted one, presents an id from
//! another numbering and is told to `resync` rather than replayed the wrong
//! events. When an entity's owner is declared down, the writes it committed
//! but had not yet fanned out are lost with it: its subscribers get `resync`
//! ([`LiveHub::resync_where`]) and refetch; so do all of a node's
//! subscribers when live messages from another node went missing.
//!
//! A subscriber stops when its connection's stream is dropped
//! ([`Connection`] holds a guard) or on overflow; the hub, its supervisor,
//! then forgets the client and its subscriptions.

use super::interest::{Announce, Change, Peers, Seen, Topic, Wanted, FULL_EVERY};
use super::relay::{Inbox, Outbox};
use crate::error::ActorError;
use bytes::Bytes;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use wani_store::{BoardId, PostId, ThreadId};
use wani_supervision::transport::{delivered, Fault, Remote, Transport};
#[cfg(debug_assertions)]
use wani_supervision::tree::CrashFn;
use wani_supervision::tree::{ChildSpec, Policy, Slot};
use wani_supervision::{EntityKey, NodeName, Role};

/// How many events the hub keeps for clients reconnecting with `Last-Event-ID`.
pub const REPLAY: usize = 1024;
/// How many events may wait for one client before it is dropped.
pub const BUFFER: usize = 256;
/// A client that got nothing for this many ticks gets a `heartbeat`.
const SILENT_TICKS: u64 = 30;
/// The hub's clock: a client hears something at least every
/// `SILENT_TICKS` ticks, i.e. after 30 to 31 s of silence, and every tick
/// the other live nodes are told how many messages this one sent them.
/// One timer for the whole hub, none per connection.
pub const TICK: Duration = Duration::from_secs(1);
/// Event ids are `tag << TAG_SHIFT | sequence`: 15 bits of tag keep them
/// below 2^63 for clients that parse them as signed numbers.
const TAG_SHIFT: u32 = 48;
const TAG_MASK: u64 = 0x7fff;

/// A committed write, as thread and board actors report it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Published {
    /// A post was added to `thread`; `quotes` are the posts it quotes that
    /// exist, with their threads. `new_thread` when it opens the thread.
    Post {
        thread: ThreadId,
        board: BoardId,
        post: PostId,
        quotes: Vec<(PostId, ThreadId)>,
        new_thread: bool,
    },
    /// A moderator deleted `post` (the whole thread when it was the opening
    /// post): pages showing it drop it.
    Deleted {
        thread: ThreadId,
        board: BoardId,
        post: PostId,
    },
}

/// One numbered event, shared by every client it goes to.
#[derive(Debug)]
pub struct Frame {
    pub id: u64,
    /// `new-post`, `new-thread`, `new-reply`, `delete-post` or `resync`.
    pub event: &'static str,
    /// JSON.
    pub data: String,
    /// The event as it goes on the wire (`event:`, `id:`, `data:`), encoded
    /// once for every client.
    pub sse: Bytes,
    /// Who receives it: the subscribers of any of these threads or boards.
    threads: Vec<ThreadId>,
    boards: Vec<BoardId>,
}

impl Frame {
    fn new(
        id: u64,
        event: &'static str,
        data: String,
        threads: Vec<ThreadId>,
        boards: Vec<BoardId>,
    ) -> Frame {
        let sse = Bytes::from(sse_event(event, Some(id), &data));
        Frame {
            id,
            event,
            data,
            sse,
            threads,
            boards,
        }
    }
}

/// One Server-Sent Event; `data` is JSON or a client id (one line).
pub fn sse_event(event: &str, id: Option<u64>, data: &str) -> String {
    match id {
        Some(id) => format!("event: {event}\nid: {id}\ndata: {data}\n\n"),
        None => format!("event: {event}\ndata: {data}\n\n"),
    }
}

/// Threads and boards, to subscribe to or unsubscribe from.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Topics {
    #[serde(default)]
    pub thread: Vec<i64>,
    #[serde(default)]
    pub board: Vec<i64>,
}

/// Most threads and boards one client may follow at once: a page follows a
/// board or a few threads; a client asking for millions is an attack on the
/// hub's memory, refused whole.
pub const MAX_TOPICS: usize = 1000;

impl Topics {
    /// Threads and boards named (repeats counted).
    pub fn len(&self) -> usize {
        self.thread.len() + self.board.len()
    }

    /// Whether nothing is named.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a change of subscriptions did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subscribed {
    /// Done.
    Changed,
    /// No such client on this node (its connection closed?).
    UnknownClient,
    /// The client would follow more than [`MAX_TOPICS`]; nothing changed.
    TooMany,
}

/// What a new connection gets from the hub.
pub struct Connection {
    /// `client_` and 10 hex digits.
    pub client_id: String,
    /// Events missed since `Last-Event-ID`, to send first.
    pub backlog: Vec<Arc<Frame>>,
    /// The reconnect asked for events the ring no longer holds: send `resync` first.
    pub resync_now: bool,
    /// Live events.
    pub events: mpsc::Receiver<Arc<Frame>>,
    /// Fires when the client is dropped for falling behind.
    pub resync: oneshot::Receiver<()>,
    /// Stops the subscriber when dropped (the connection closed).
    pub guard: SubscriberGuard,
}

/// Stops its subscriber when dropped.
pub struct SubscriberGuard(ActorRef<SubscriberMsg>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.stop(Some("connection closed".into()));
    }
}

/// The hub's mailbox. Only [`LiveMsg::Relayed`] crosses nodes; the other
/// variants hold local handles and are never encoded. They come last:
/// serde numbers the variants it skips differently when encoding and
/// decoding, so a skipped variant before a remotable one would shift it.
#[derive(Serialize, Deserialize)]
pub enum LiveMsg {
    /// A write committed on node `from`, numbered `seq` in that node's
    /// `stream` of messages to this one; with no event, `from`'s periodic
    /// "this is how many I sent you" (see `relay.rs`).
    Relayed {
        from: String,
        stream: u64,
        seq: u64,
        event: Option<Published>,
    },
    /// What node `from`'s clients follow, or how that changed.
    Interest { from: String, announce: Announce },
    /// Node `from`'s answer to this node's announcement.
    Seen { from: String, seen: Seen },
    /// A write committed on this node: fan it out here and relay it to the
    /// other live nodes.
    #[serde(skip)]
    Publish(Published),
    /// A new connection, with its query-string subscriptions and the
    /// `Last-Event-ID` it sent, if any.
    #[serde(skip)]
    Connect {
        topics: Topics,
        last_event_id: Option<u64>,
        reply: RpcReplyPort<Result<Connection, ActorError>>,
    },
    /// Changes a client's subscriptions.
    #[serde(skip)]
    Subscribe {
        client_id: String,
        subscribe: Topics,
        unsubscribe: Topics,
        reply: RpcReplyPort<Subscribed>,
    },
    /// Answers with the number of connected clients.
    #[serde(skip)]
    Clients { reply: RpcReplyPort<usize> },
    /// Answers with the writes relayed to other nodes and from them.
    #[serde(skip)]
    Relays { reply: RpcReplyPort<Relays> },
    /// The hub's clock.
    #[serde(skip)]
    Tick,
    /// The subscribers of the entities for which the predicate is true are
    /// told to resync (their owner died, or events for them were lost).
    #[serde(skip)]
    Resync(Box<dyn Fn(EntityKey) -> bool + Send>),
    /// Ends every connection (shutdown: SSE streams never end by themselves).
    #[serde(skip)]
    CloseAll { reply: RpcReplyPort<()> },
    /// Panics inside the hub, to exercise supervision. Debug builds only.
    #[cfg(debug_assertions)]
    #[serde(skip)]
    Crash,
}
impl ractor::Message for LiveMsg {}

/// Writes relayed between this node's hub and the others, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relays {
    /// Writes sent to another node (one per node it went to).
    pub sent: u64,
    /// Writes received from other nodes.
    pub received: u64,
}
impl Remote for LiveMsg {
    const KIND: &'static str = "live";
}

/// A handle on the node's hub. Cheap to clone; follows the hub across
/// restarts.
#[derive(Clone)]
pub struct LiveHub {
    actor: Slot<LiveMsg>,
    transport: Transport,
    tick: Duration,
}

/// Arguments of [`LiveHubActor`].
pub struct HubArgs {
    /// The clock's period.
    pub tick: Duration,
    /// Relays writes to the other live nodes, and takes theirs.
    pub transport: Transport,
}

impl LiveHub {
    /// The hub of a node, taking live messages from other nodes; it runs
    /// once the tree starts [`LiveHub::child`].
    pub fn new(transport: Transport) -> LiveHub {
        LiveHub::ticking(TICK, transport)
    }

    /// A hub whose clock ticks every `tick`.
    pub fn ticking(tick: Duration, transport: Transport) -> LiveHub {
        let hub = LiveHub {
            actor: Slot::default(),
            transport: transport.clone(),
            tick,
        };
        let to = hub.actor.clone();
        // Relayed messages are cast in the order they arrive from each
        // sender, which keeps its events in order (and an answer to an
        // announcement after the writes sent before it).
        transport.serve::<LiveMsg>(move |_, msg| {
            delivered(match msg {
                LiveMsg::Relayed { .. } | LiveMsg::Interest { .. } | LiveMsg::Seen { .. } => to
                    .cast(msg)
                    .map_err(|e| Fault::Unavailable(format!("live hub: {e}"))),
                _ => Err(Fault::Invalid(
                    "only relayed writes and interest cross nodes".into(),
                )),
            })
        });
        hub
    }

    /// Starts a hub outside any tree (tests and benchmarks).
    pub async fn spawn_ticking(
        tick: Duration,
        transport: Transport,
    ) -> Result<LiveHub, ractor::SpawnErr> {
        let hub = LiveHub::ticking(tick, transport);
        let (actor, _) = Actor::spawn(None, LiveHubActor, hub.args()).await?;
        hub.actor.set(actor);
        Ok(hub)
    }

    fn args(&self) -> HubArgs {
        HubArgs {
            tick: self.tick,
            transport: self.transport.clone(),
        }
    }

    /// The hub, for the node's tree. A restart ends every stream (clients
    /// reconnect; their `Last-Event-ID` is from the old hub's numbering, so
    /// they are told to resync) and other nodes see a new relay stream.
    pub fn child(&self) -> ChildSpec {
        let hub = self.clone();
        #[cfg(debug_assertions)]
        let crash: Option<CrashFn> = {
            let slot = self.actor.clone();
            Some(Box::new(move || slot.cast(LiveMsg::Crash).is_ok()))
        };
        #[cfg(not(debug_assertions))]
        let crash = None;
        ChildSpec {
            name: "live-hub",
            policy: Policy::Restart,
            restart_means: "streams end; clients reconnect and resync",
            start: Box::new(move |sup| {
                let hub = hub.clone();
                Box::pin(async move {
                    let (actor, _) = Actor::spawn_linked(None, LiveHubActor, hub.args(), sup)
                        .await
                        .map_err(|e| format!("{e}"))?;
                    hub.actor.set(actor.clone());
                    Ok(actor.get_cell())
                })
            }),
            crash,
        }
    }

    /// Reports a write committed on this node; never waits. The hub fans
    /// it out to this node's clients and, in a cluster, sends it once to
    /// every other node with the `live` role.
    pub fn publish(&self, p: Published) {
        let _ = self.actor.cast(LiveMsg::Publish(p));
    }

    /// Tells the subscribers of every thread or board for which `which` is
    /// true to resync: their owner died, maybe between committing a write
    /// and fanning it out, or events for them were lost on the way here.
    pub fn resync_where(&self, which: impl Fn(EntityKey) -> bool + Send + 'static) {
        let _ = self.actor.cast(LiveMsg::Resync(Box::new(which)));
    }

    /// Registers a connection.
    pub async fn connect(
        &self,
        topics: Topics,
        last_event_id: Option<u64>,
    ) -> Result<Connection, ActorError> {
        self.call(|reply| LiveMsg::Connect {
            topics,
            last_event_id,
            reply,
        })
        .await?
    }

    /// Changes a client's subscriptions.
    pub async fn subscribe(
        &self,
        client_id: String,
        subscribe: Topics,
        unsubscribe: Topics,
    ) -> Result<Subscribed, ActorError> {
        self.call(|reply| LiveMsg::Subscribe {
            client_id,
            subscribe,
            unsubscribe,
            reply,
        })
        .await
    }

    /// The number of connected clients.
    pub async fn clients(&self) -> Result<usize, ActorError> {
        self.call(|reply| LiveMsg::Clients { reply }).await
    }

    /// The writes relayed to and from other nodes so far.
    pub async fn relays(&self) -> Result<Relays, ActorError> {
        self.call(|reply| LiveMsg::Relays { reply }).await
    }

    /// Ends every connection.
    pub async fn close_all(&self) {
        let _ = self.call(|reply| LiveMsg::CloseAll { reply }).await;
    }

    /// Stops the hub and its subscribers (a hub outside a tree).
    pub fn stop(&self) {
        if let Some(a) = self.actor.get() {
            a.stop(Some("node stopping".into()));
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> LiveMsg,
    ) -> Result<T, ActorError> {
        let actor = self
            .actor
            .get()
            .ok_or_else(|| ActorError::Unavailable("the live hub is restarting".into()))?;
        match actor
            .call(msg, Some(Duration::from_secs(5)))
            .await
            .map_err(|e| ActorError::Unavailable(format!("live hub: {e}")))?
        {
            ractor::rpc::CallResult::Success(v) => Ok(v),
            _ => Err(ActorError::Unavailable(
                "the live hub did not answer".into(),
            )),
        }
    }
}

struct Client {
    tx: mpsc::Sender<Arc<Frame>>,
    /// The tick of the last event handed to it.
    heard: u64,
    actor: ActorRef<SubscriberMsg>,
    threads: HashSet<ThreadId>,
    boards: HashSet<BoardId>,
}

/// The hub's state.
pub struct HubState {
    transport: Transport,
    /// Numbers of the live messages sent to each other node.
    outbox: Outbox,
    /// The last number heard from each other node.
    inbox: Inbox,
    /// This hub's tag, in the top bits of every id it numbers.
    tag: u64,
    next_id: u64,
    ring: VecDeque<Arc<Frame>>,
    clients: HashMap<u64, Client>,
    by_actor: HashMap<ActorId, u64>,
    threads: HashMap<ThreadId, HashSet<u64>>,
    boards: HashMap<BoardId, HashSet<u64>>,
    random: std::collections::hash_map::RandomState,
    counter: u64,
    tick: u64,
    heartbeat: Arc<Frame>,
    /// What this node's clients follow, as announced to the other nodes.
    wanted: Wanted,
    /// What the other nodes' clients follow, as they announced it.
    peers: Peers,
    /// The peers told the whole set since they (or this hub) started.
    told: HashSet<NodeName>,
    relays: Relays,
}

/// The topics of a write: its thread and board, and the threads it quotes.
fn topics_of(p: &Published) -> Vec<Topic> {
    match p {
        Published::Post {
            thread,
            board,
            quotes,
            ..
        } => {
            let mut t = vec![Topic::Thread(*thread), Topic::Board(*board)];
            t.extend(quotes.iter().map(|(_, q)| Topic::Thread(*q)));
            t
        }
        Published::Deleted { thread, board, .. } => {
            vec![Topic::Thread(*thread), Topic::Board(*board)]
        }
    }
}

/// The entity a topic names.
fn topic_key(t: Topic) -> EntityKey {
    match t {
        Topic::Thread(id) => crate::names::thread(id),
        Topic::Board(id) => crate::names::board(id),
    }
}

/// A hub-side view of a client's topics.
fn topics_in(topics: &Topics) -> impl Iterator<Item = Topic> + '_ {
    topics
        .thread
        .iter()
        .map(|t| Topic::Thread(ThreadId(*t)))
        .chain(topics.board.iter().map(|b| Topic::Board(BoardId(*b))))
}

/// The hub actor.
pub struct LiveHubActor;

fn client_name(key: u64) -> String {
    format!("client_{key:010x}")
}

fn client_key(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("client_")?;
    (hex.len() == 10)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

impl HubState {
    fn new_key(&mut self) -> u64 {
        loop {
            self.counter += 1;
            let mut h = self.random.build_hasher();
            h.write_u64(self.counter);
            let key = h.finish() & 0xff_ffff_ffff;
            if !self.clients.contains_key(&key) {
                return key;
            }
        }
    }

    fn add(&mut self, key: u64, topics: &Topics) {
        let Some(c) = self.clients.get_mut(&key) else {
            return;
        };
        for &t in &topics.thread {
            c.threads.insert(ThreadId(t));
            self.threads.entry(ThreadId(t)).or_default().insert(key);
        }
        for &b in &topics.board {
            c.boards.insert(BoardId(b));
            self.boards.entry(BoardId(b)).or_default().insert(key);
        }
        let peers = self.live_peers();
        if let Some(change) = self
            .wanted
            .follow(topics_in(topics), &peers, self.tick, self.next_id)
        {
            self.announce(&change, &peers);
        }
    }

    /// The other nodes with the live role, in the current view.
    fn live_peers(&self) -> Vec<NodeName> {
        let Some(cluster) = self.transport.cluster() else {
            return Vec::new();
        };
        let me = self.transport.me().clone();
        cluster
            .with_role(Role::Live)
            .into_iter()
            .filter(|n| *n != me)
            .collect()
    }

    /// Sends a change of what this node's clients follow to `peers`.
    fn announce(&mut self, change: &Change, peers: &[NodeName]) {
        if self.wanted.too_many() {
            return self.announce_whole(peers);
        }
        for peer in peers {
            let (add, remove) = (&change.add, &change.remove);
            self.tell_interest(peer, change.epoch, false, false, add, remove);
        }
    }

    /// Sends this node's whole set to `peers` (or, past the limit, that it
    /// wants everything).
    fn announce_whole(&mut self, peers: &[NodeName]) {
        let (epoch, topics) = self.wanted.whole();
        let all = topics.is_none();
        let topics = topics.unwrap_or_default();
        for peer in peers {
            self.tell_interest(peer, epoch, true, all, &topics, &[]);
            self.told.insert(peer.clone());
        }
    }

    fn tell_interest(
        &self,
        peer: &NodeName,
        epoch: u64,
        full: bool,
        all: bool,
        add: &[Topic],
        remove: &[Topic],
    ) {
        let (heard_stream, heard) = self.inbox.heard(&peer.0).unwrap_or((0, 0));
        let msg = LiveMsg::Interest {
            from: self.transport.me().0.clone(),
            announce: Announce {
                stream: self.outbox.stream,
                epoch,
                full,
                all,
                add: add.to_vec(),
                remove: remove.to_vec(),
                heard_stream,
                heard,
            },
        };
        if let Err(e) = self.transport.tell(peer, 0, &msg) {
            tracing::debug!(node = %peer, error = %e, "an interest announcement did not reach a node");
        }
    }

    /// Another node's announcement: remember it and answer.
    fn interest(&mut self, from: String, announce: Announce) {
        let node = NodeName(from);
        let seen = self.peers.announced(&node, &announce, self.outbox.stream);
        let msg = LiveMsg::Seen {
            from: self.transport.me().0.clone(),
            seen,
        };
        if let Err(e) = self.transport.tell(&node, 0, &msg) {
            tracing::debug!(%node, error = %e, "an interest answer did not reach a node");
        }
    }

    /// Tells the clients of `topics` to resync.
    fn resync_topics(&mut self, topics: Vec<Topic>) {
        if topics.is_empty() {
            return;
        }
        let keys: HashSet<EntityKey> = topics.into_iter().map(topic_key).collect();
        self.resync_where(&|k| keys.contains(&k));
    }

    /// The interest side of the clock: withdrawals, unanswered
    /// announcements, the whole set to peers not told yet and, now and
    /// then, to all.
    fn interest_tick(&mut self) {
        if self.transport.cluster().is_none() {
            return;
        }
        let peers = self.live_peers();
        let (change, resync) = self.wanted.tick(self.tick, &peers, self.next_id);
        if let Some(change) = change {
            self.announce(&change, &peers);
        }
        self.resync_topics(resync);
        let everyone = self.tick.is_multiple_of(FULL_EVERY);
        let due: Vec<NodeName> = peers
            .into_iter()
            .filter(|p| everyone || !self.told.contains(p))
            .collect();
        if !due.is_empty() {
            self.announce_whole(&due);
        }
    }

    /// How many threads and boards client `key` would follow after a change.
    fn following_after(&self, key: u64, add: &Topics, remove: &Topics) -> usize {
        let Some(c) = self.clients.get(&key) else {
            return 0;
        };
        // Counted without building sets of a hostile list: past the limit
        // the answer is "too many" whatever the repeats.
        if add.len() > MAX_TOPICS {
            return add.len();
        }
        let mut threads = c.threads.clone();
        let mut boards = c.boards.clone();
        threads.extend(add.thread.iter().map(|t| ThreadId(*t)));
        boards.extend(add.board.iter().map(|b| BoardId(*b)));
        for t in &remove.thread {
            threads.remove(&ThreadId(*t));
        }
        for b in &remove.board {
            boards.remove(&BoardId(*b));
        }
        threads.len() + boards.len()
    }

    fn remove_topics(&mut self, key: u64, topics: &Topics) {
        let Some(c) = self.clients.get_mut(&key) else {
            return;
        };
        for &t in &topics.thread {
            c.threads.remove(&ThreadId(t));
        }
        for &b in &topics.board {
            c.boards.remove(&BoardId(b));
        }
        for t in topics_in(topics) {
            self.unfollow(key, t);
        }
    }

    /// Takes client `key` off `topic`'s list; the last one off makes the
    /// topic idle here (withdrawn from the other nodes after a while).
    fn unfollow(&mut self, key: u64, topic: Topic) {
        let last = match topic {
            Topic::Thread(t) => unindex(&mut self.threads, t, key),
            Topic::Board(b) => unindex(&mut self.boards, b, key),
        };
        if last {
            self.wanted.unfollowed(topic, self.tick);
        }
    }

    /// Forgets a client; its sender is dropped, which ends its stream.
    fn forget(&mut self, key: u64) -> Option<Client> {
        let c = self.clients.remove(&key)?;
        self.by_actor.remove(&c.actor.get_id());
        let topics = c.threads.iter().map(|t| Topic::Thread(*t));
        for t in topics.chain(c.boards.iter().map(|b| Topic::Board(*b))) {
            self.unfollow(key, t);
        }
        Some(c)
    }

    fn frame(
        &mut self,
        event: &'static str,
        data: serde_json::Value,
        threads: Vec<ThreadId>,
        boards: Vec<BoardId>,
    ) {
        let frame = Arc::new(Frame::new(
            self.next_id,
            event,
            data.to_string(),
            threads,
            boards,
        ));
        self.next_id += 1;
        if self.ring.len() == REPLAY {
            self.ring.pop_front();
        }
        self.ring.push_back(frame.clone());
        let mut to: Vec<u64> = Vec::new();
        for t in &frame.threads {
            if let Some(s) = self.threads.get(t) {
                to.extend(s.iter().copied());
            }
        }
        for b in &frame.boards {
            if let Some(s) = self.boards.get(b) {
                to.extend(s.iter().copied());
            }
        }
        if frame.threads.len() + frame.boards.len() > 1 {
            to.sort_unstable();
            to.dedup();
        }
        self.send_to(to, &frame);
    }

    /// Hands `frame` to each of `to`, dropping those that cannot take it.
    fn send_to(&mut self, to: Vec<u64>, frame: &Arc<Frame>) {
        let tick = self.tick;
        for key in to {
            let Some(c) = self.clients.get_mut(&key) else {
                continue;
            };
            c.heard = tick;
            match c.tx.try_send(frame.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Too slow: resync and drop, without waiting for it.
                    if let Some(c) = self.forget(key) {
                        let _ = c.actor.cast(SubscriberMsg::Overflow);
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    if let Some(c) = self.forget(key) {
                        c.actor.stop(Some("connection closed".into()));
                    }
                }
            }
        }
    }

    fn publish(&mut self, p: Published) {
        match p {
            Published::Post {
                thread,
                board,
                post,
                quotes,
                new_thread,
            } => {
                self.frame(
                    "new-post",
                    serde_json::json!({"thread": thread.0, "post": post.0}),
                    vec![thread],
                    vec![board],
                );
                if new_thread {
                    self.frame(
                        "new-thread",
                        serde_json::json!({"thread": thread.0, "board": board.0}),
                        vec![thread],
                        vec![board],
                    );
                }
                for (quoted, in_thread) in quotes {
                    self.frame(
                        "new-reply",
                        serde_json::json!({"thread": thread.0, "post": post.0, "reply_to": quoted.0}),
                        vec![in_thread],
                        vec![],
                    );
                }
            }
            Published::Deleted {
                thread,
                board,
                post,
            } => {
                self.frame(
                    "delete-post",
                    serde_json::json!({"thread": thread.0, "post": post.0}),
                    vec![thread],
                    vec![board],
                );
            }
        }
    }

    /// Sends `heartbeat` to the clients that heard nothing for a while.
    fn beat(&mut self) {
        self.tick += 1;
        let Some(due) = self.tick.checked_sub(SILENT_TICKS) else {
            return;
        };
        let quiet: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| c.heard <= due)
            .map(|(k, _)| *k)
            .collect();
        let frame = self.heartbeat.clone();
        self.send_to(quiet, &frame);
    }

    /// Sends a write committed here (or, with none, the count so far) to
    /// every other node with the `live` role, numbered for each. A node
    /// that cannot be reached is skipped: it is down, or cut off for a
    /// while, and the next number it sees tells it that it missed one.
    fn relay(&mut self, event: Option<&Published>) {
        if self.transport.cluster().is_none() {
            return;
        }
        let me = self.transport.me().clone();
        let peers = self.live_peers();
        let topics = event.map(topics_of).unwrap_or_default();
        let wants = &mut self.peers;
        let numbered = self.outbox.number(peers, event.is_some(), |node, sent| {
            wants.wants(node, &topics, sent)
        });
        if event.is_some() {
            self.relays.sent += numbered.len() as u64;
        }
        for (node, seq) in numbered {
            let msg = LiveMsg::Relayed {
                from: me.0.clone(),
                stream: self.outbox.stream,
                seq,
                event: event.cloned(),
            };
            if let Err(e) = self.transport.tell(&node, 0, &msg) {
                tracing::debug!(%node, error = %e, "a live message did not reach a node");
            }
        }
    }

    /// A message relayed by another node.
    fn relayed(&mut self, from: String, stream: u64, seq: u64, event: Option<Published>) {
        let restarted = self.inbox.heard(&from).is_some_and(|(s, _)| s != stream);
        if restarted {
            // A new hub there knows nothing of what this node follows.
            self.told.remove(&NodeName(from.clone()));
        }
        if event.is_some() {
            self.relays.received += 1;
        }
        if self.inbox.gap(&from, stream, seq, event.is_some()) {
            // What was lost is unknown, and whose entities they were too:
            // the sender may have owned them in a view this node did not
            // share (it was cut off). Every subscriber here resyncs; gaps
            // are rare.
            tracing::info!(%from, "live messages were lost: every subscriber here resyncs");
            self.resync_where(&|_| true);
        }
        if let Some(p) = event {
            self.publish(p);
        }
    }

    /// Sends `resync` to the subscribers of every thread and board for which
    /// `which` is true.
    fn resync_where(&mut self, which: &dyn Fn(EntityKey) -> bool) {
        let mut to: Vec<u64> = Vec::new();
        for (t, keys) in &self.threads {
            if which(crate::names::thread(*t)) {
                to.extend(keys.iter().copied());
            }
        }
        for (b, keys) in &self.boards {
            if which(crate::names::board(*b)) {
                to.extend(keys.iter().copied());
            }
        }
        if to.is_empty() {
            return;
        }
        to.sort_unstable();
        to.dedup();
        tracing::info!(clients = to.len(), "live subscribers told to resync");
        // Not kept for replay: it concerns only the clients connected now.
        let frame = Arc::new(Frame::new(
            self.next_id - 1,
            "resync",
            "{}".into(),
            Vec::new(),
            Vec::new(),
        ));
        self.send_to(to, &frame);
    }

    /// The events after `last` for a client subscribed to `topics`, or
    /// `None` when the ring no longer reaches back that far or `last` was
    /// numbered by another hub.
    fn replay(&self, last: u64, topics: &Topics) -> Option<Vec<Arc<Frame>>> {
        if last >> TAG_SHIFT != self.tag {
            return None;
        }
        let newest = self.next_id - 1;
        if last >= newest {
            return (last == newest).then(Vec::new);
        }
        let oldest = self.ring.front()?.id;
        if last + 1 < oldest {
            return None;
        }
        // In a cluster the ring holds another node's writes of a topic only
        // while this node follows it (and every peer knows it).
        if self.transport.cluster().is_some()
            && topics_in(topics).any(|t| self.wanted.complete_since(t).is_none_or(|c| c > last + 1))
        {
            return None;
        }
        let wants = |f: &Frame| {
            f.threads.iter().any(|t| topics.thread.contains(&t.0))
                || f.boards.iter().any(|b| topics.board.contains(&b.0))
        };
        Some(
            self.ring
                .iter()
                .filter(|f| f.id > last && wants(f))
                .cloned()
                .collect(),
        )
    }
}

/// Removes `key` from `k`'s clients; true when that was the last one.
fn unindex<K: std::hash::Hash + Eq>(index: &mut HashMap<K, HashSet<u64>>, k: K, key: u64) -> bool {
    if let Some(s) = index.get_mut(&k) {
        s.remove(&key);
        if s.is_empty() {
            index.remove(&k);
            return true;
        }
    }
    false
}

impl Actor for LiveHubActor {
    type Msg = LiveMsg;
    type State = HubState;
    type Arguments = HubArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<LiveMsg>,
        args: HubArgs,
    ) -> Result<HubState, ActorProcessingErr> {
        // Ends with the hub: it stops once the hub's mailbox is closed.
        myself.send_interval(args.tick, || LiveMsg::Tick);
        // A random tag per hub (per node, and new on every restart), so an
        // id from another numbering is recognised and gets `resync`; the
        // relay stream is named the same way, so other nodes notice a
        // restart too.
        let random = std::collections::hash_map::RandomState::new();
        let tag = (random.build_hasher().finish() & TAG_MASK).max(1);
        let stream = random.build_hasher().finish() ^ tag;
        Ok(HubState {
            transport: args.transport,
            outbox: Outbox::new(stream),
            inbox: Inbox::default(),
            tag,
            next_id: (tag << TAG_SHIFT) + 1,
            ring: VecDeque::with_capacity(REPLAY),
            clients: HashMap::new(),
            by_actor: HashMap::new(),
            threads: HashMap::new(),
            boards: HashMap::new(),
            random,
            counter: 0,
            tick: 0,
            heartbeat: Arc::new(Frame {
                id: 0,
                event: "heartbeat",
                data: "{}".into(),
                sse: Bytes::from_static(b"event: heartbeat\ndata: {}\n\n"),
                threads: Vec::new(),
                boards: Vec::new(),
            }),
            wanted: Wanted::default(),
            peers: Peers::default(),
            told: HashSet::new(),
            relays: Relays::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<LiveMsg>,
        msg: LiveMsg,
        state: &mut HubState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            LiveMsg::Publish(p) => {
                state.relay(Some(&p));
                state.publish(p);
            }
            LiveMsg::Relayed {
                from,
                stream,
                seq,
                event,
            } => state.relayed(from, stream, seq, event),
            LiveMsg::Interest { from, announce } => state.interest(from, announce),
            LiveMsg::Seen { from, seen } => {
                let resync = state.wanted.seen(&NodeName(from), &seen, state.next_id);
                state.resync_topics(resync);
            }
            LiveMsg::Connect {
                topics,
                last_event_id,
                reply,
            } => {
                let (backlog, resync_now) = match last_event_id {
                    None => (Vec::new(), false),
                    Some(last) => match state.replay(last, &topics) {
                        Some(b) => (b, false),
                        None => (Vec::new(), true),
                    },
                };
                let key = state.new_key();
                let (tx, events) = mpsc::channel(BUFFER);
                let (resync_tx, resync) = oneshot::channel();
                let spawned = Actor::spawn_linked(
                    None,
                    LiveSubscriber,
                    SubscriberArgs { resync: resync_tx },
                    myself.get_cell(),
                )
                .await;
                let actor = match spawned {
                    Ok((a, _)) => a,
                    Err(e) => {
                        let _ = reply.send(Err(ActorError::Unavailable(format!(
                            "could not start a live subscriber: {e}"
                        ))));
                        return Ok(());
                    }
                };
                state.by_actor.insert(actor.get_id(), key);
                state.clients.insert(
                    key,
                    Client {
                        tx,
                        heard: state.tick,
                        actor: actor.clone(),
                        threads: HashSet::new(),
                        boards: HashSet::new(),
                    },
                );
                state.add(key, &topics);
                let connection = Connection {
                    client_id: client_name(key),
                    backlog,
                    resync_now,
                    events,
                    resync,
                    guard: SubscriberGuard(actor),
                };
                if let Err(refused) = reply.send(Ok(connection)) {
                    // The caller gave up: the connection (and its guard) is
                    // dropped here, which stops the subscriber.
                    drop(refused);
                }
            }
            LiveMsg::Subscribe {
                client_id,
                subscribe,
                unsubscribe,
                reply,
            } => {
                let outcome = match client_key(&client_id).filter(|k| state.clients.contains_key(k))
                {
                    None => Subscribed::UnknownClient,
                    Some(k) if state.following_after(k, &subscribe, &unsubscribe) > MAX_TOPICS => {
                        Subscribed::TooMany
                    }
                    Some(k) => {
                        state.add(k, &subscribe);
                        state.remove_topics(k, &unsubscribe);
                        Subscribed::Changed
                    }
                };
                let _ = reply.send(outcome);
            }
            LiveMsg::Clients { reply } => {
                let _ = reply.send(state.clients.len());
            }
            LiveMsg::Relays { reply } => {
                let _ = reply.send(state.relays);
            }
            LiveMsg::Resync(which) => state.resync_where(&*which),
            LiveMsg::Tick => {
                state.beat();
                state.relay(None);
                state.interest_tick();
            }
            #[cfg(debug_assertions)]
            LiveMsg::Crash => panic!("crash requested for the live hub (test hook)"),
            LiveMsg::CloseAll { reply } => {
                let keys: Vec<u64> = state.clients.keys().copied().collect();
                for k in keys {
                    if let Some(c) = state.forget(k) {
                        c.actor.stop(Some("node stopping".into()));
                    }
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<LiveMsg>,
        evt: SupervisionEvent,
        state: &mut HubState,
    ) -> Result<(), ActorProcessingErr> {
        // A subscriber's exit (closed connection, overflow, even a panic)
        // ends that client only; the hub carries on.
        let gone = match &evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => Some(cell.get_id()),
            SupervisionEvent::ActorFailed(cell, e) => {
                tracing::warn!(error = %e, "a live subscriber failed");
                Some(cell.get_id())
            }
            _ => None,
        };
        if let Some(id) = gone {
            if let Some(key) = state.by_actor.get(&id).copied() {
                state.forget(key);
            }
        }
        Ok(())
    }
}

/// A subscriber's mailbox.
pub enum SubscriberMsg {
    /// The client fell behind: tell it to resync, and end.
    Overflow,
}
impl ractor::Message for SubscriberMsg {}

/// Arguments of [`LiveSubscriber`].
pub struct SubscriberArgs {
    resync: oneshot::Sender<()>,
}

/// A subscriber's state.
pub struct SubscriberState {
    resync: Option<oneshot::Sender<()>>,
}

/// One connected client. Its events go from the hub straight into the
/// connection's bounded channel; the actor is the client's lifetime (the
/// hub forgets the client when it exits) and sends `resync` on overflow.
pub struct LiveSubscriber;

impl Actor for LiveSubscriber {
    type Msg = SubscriberMsg;
    type State = SubscriberState;
    type Arguments = SubscriberArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<SubscriberMsg>,
        args: SubscriberArgs,
    ) -> Result<SubscriberState, ActorProcessingErr> {
        Ok(SubscriberState {
            resync: Some(args.resync),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SubscriberMsg>,
        msg: SubscriberMsg,
        state: &mut SubscriberState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SubscriberMsg::Overflow => {
                if let Some(tx) = state.resync.take() {
                    let _ = tx.send(());
                }
                myself.stop(Some("client too slow".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wani_supervision::NodeName;

    fn post(thread: i64) -> Published {
        Published::Post {
            thread: ThreadId(thread),
            board: BoardId(1),
            post: PostId(thread * 100),
            quotes: Vec::new(),
            new_thread: false,
        }
    }

    #[test]
    fn relayed_writes_cross_nodes_intact() {
        use wani_supervision::transport::{decode, encode};
        let msg = LiveMsg::Relayed {
            from: "a@h:1".into(),
            stream: 9,
            seq: 4,
            event: Some(post(3)),
        };
        let back: LiveMsg = decode(&encode(&msg).unwrap()).unwrap();
        let LiveMsg::Relayed {
            from, stream, seq, ..
        } = back
        else {
            panic!("decoded another variant");
        };
        assert_eq!((from.as_str(), stream, seq), ("a@h:1", 9, 4));
        assert!(
            encode(&LiveMsg::Tick).is_err(),
            "local-only messages never cross"
        );
    }

    /// A quiet client hears a heartbeat after `SILENT_TICKS` ticks of
    /// silence, and not while events keep coming.
    #[tokio::test]
    async fn silence_gets_a_heartbeat_and_events_postpone_it() {
        let transport = Transport::single(NodeName("test".into()));
        let hub = LiveHub::spawn_ticking(Duration::from_millis(10), transport)
            .await
            .unwrap();
        let topics = |t: i64| Topics {
            thread: vec![t],
            board: vec![],
        };
        let mut quiet = hub.connect(topics(1), None).await.unwrap();
        let mut busy = hub.connect(topics(2), None).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // Keep `busy` hearing events until `quiet` has had its heartbeat.
        let beat = loop {
            hub.publish(post(2));
            let got = tokio::time::timeout(Duration::from_millis(5), quiet.events.recv()).await;
            if let Ok(Some(f)) = got {
                break f;
            }
            assert!(tokio::time::Instant::now() < deadline, "no heartbeat");
        };
        assert_eq!(beat.event, "heartbeat");
        assert_eq!(&beat.sse[..], b"event: heartbeat\ndata: {}\n\n");
        while let Ok(f) = busy.events.try_recv() {
            assert_eq!(
                f.event, "new-post",
                "a client hearing events gets no heartbeat"
            );
        }
        hub.stop();
    }
}
