//! Transport: one generic forwarder that carries any remotable message to
//! the node that should run it, and its answer back.
//!
//! An actor whose messages may cross nodes declares one serialisable enum
//! beside it and names it for the wire ([`Remote::KIND`]); replies are
//! typed [`Reply`] ports inside the variants, as they would be locally.
//! Nothing else is written per message: a caller on another node sends the
//! variant with [`Transport::ask`] (or [`Transport::tell`] for one-way
//! messages), and the owner hands it to the actor through the delivery
//! function the actor's kind registered with [`Transport::serve`].
//!
//! ```text
//! caller node                                        owner node
//! ask(node, key, |reply| Msg::Get { id, reply })
//!   encode Msg (its Reply crosses as a marker)
//!   Frame::Send { req, kind, key, body }  ───────▶   TransportActor
//!                                                      decode Msg, binding its
//!                                                      Reply to (caller, req)
//!                                                      deliver(key, msg)  → actor
//!                                                    actor: reply.send(value)
//!   Frame::Answer { req, Ok(bytes) } ◀───────────     encode value (in parts
//!   decode T                                          if over one frame)
//! ```
//!
//! Adding a remotable command to an actor is adding a variant and its
//! match arm in the actor's file:
//!
//! ```ignore
//! pub enum ThreadMsg {
//!     // ...
//!     /// Answers with how many posts the thread has.
//!     CountPosts { reply: Reply<usize> },
//! }
//! // in the actor's handle():
//! ThreadMsg::CountPosts { reply } => reply.send(state.posts.len()),
//! // any caller, on any node:
//! entities.ask::<ThreadActor, _>(id, |reply| ThreadMsg::CountPosts { reply }).await?
//! ```
//!
//! What a failure looks like: a [`Fault`], typed by what the caller can do
//! about it (`Unavailable` is worth sending again, perhaps to a new owner;
//! the others are not). A caller waits at most the transport's timeout; a
//! node declared down fails its outstanding requests at once
//! ([`Transport::abandon`]). Answers larger than one cluster frame travel
//! as [`Frame::AnswerPart`]s, joined here. Media bytes never travel: a
//! message carries blob keys.
//!
//! Each node runs one [`TransportActor`], remotable (its messages are
//! [`Wire`] frames), in the process group `wani:transport`; so every peer
//! holds one proxy of it, not one per actor. Deliveries run in arrival
//! order up to their first await (so one-way messages from one sender keep
//! their order), and on their own task past it (so a slow activation never
//! holds up the next message).

mod reply;

pub use reply::{NoReply, Reply, ReplyWait};

use crate::cluster::Cluster;
use crate::placement::NodeName;
use crate::tree::{ChildSpec, CrashFn, Policy, Slot};
pub use crate::wire::Fault;
use crate::wire::{Envelope, Frame, Wire, PART};
use futures::future::BoxFuture;
use futures::FutureExt;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use reply::{bind_inbound, AnswerSink, ReplySlot};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;

/// The process group of the transport actors.
pub const TRANSPORT_GROUP: &str = "wani:transport";

/// The largest answer accepted, joined from its parts: a thread's view at
/// its bump limit is a few MiB.
pub const MAX_ANSWER: usize = 64 << 20;

/// A message enum that can cross nodes.
pub trait Remote: Serialize + DeserializeOwned + Send + 'static {
    /// Which service on the receiving node takes it (`"thread"`,
    /// `"render"`, …): one name per actor kind.
    const KIND: &'static str;
}

/// Encodes a message or an answer for the wire.
pub fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, Fault> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| Fault::Invalid(format!("this cannot cross nodes: {e}")))
}

/// Decodes a message or an answer; a broken payload is a fault, never a panic.
///
/// bincode reserves a string's or byte array's length, as the payload
/// claims it, before reading its bytes, up to the configured limit. Every
/// claimed byte must be in the payload, so the limit is the smallest of
/// 64 KiB, a frame and [`MAX_ANSWER`] that holds the whole payload: a few
/// hostile bytes claiming a 60 MiB string no longer reserve 60 MiB.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Fault> {
    const SMALL: usize = 64 << 10;
    if bytes.len() <= SMALL {
        decode_within::<T, SMALL>(bytes)
    } else if bytes.len() <= crate::wire::MAX_FRAME {
        decode_within::<T, { crate::wire::MAX_FRAME }>(bytes)
    } else {
        decode_within::<T, MAX_ANSWER>(bytes)
    }
}

fn decode_within<T: DeserializeOwned, const LIMIT: usize>(bytes: &[u8]) -> Result<T, Fault> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    match bincode::serde::decode_from_slice(bytes, config) {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok((_, used)) => Err(Fault::Invalid(format!(
            "a cluster message has {} trailing bytes",
            bytes.len() - used
        ))),
        Err(e) => Err(Fault::Invalid(format!(
            "a cluster message is malformed: {e}"
        ))),
    }
}

/// What a service does with a message that arrived: its synchronous part
/// runs as the function is called, the returned future (if it ever waits)
/// on a task of its own.
pub type Delivery = BoxFuture<'static, Result<(), Fault>>;

/// A delivery that is already done.
pub fn delivered(result: Result<(), Fault>) -> Delivery {
    Box::pin(std::future::ready(result))
}

/// One kind's receiving end: decodes the body (binding its reply port)
/// and delivers it.
type Service = Box<dyn Fn(i64, &[u8], Option<Arc<ReplySlot>>) -> Delivery + Send + Sync>;

/// A request waiting for its answer.
struct Pending {
    node: NodeName,
    tx: oneshot::Sender<Result<Vec<u8>, Fault>>,
    /// The parts of a large answer so far.
    parts: Vec<Vec<u8>>,
}

struct Inner {
    cluster: Option<Arc<Cluster>>,
    /// The running transport actor.
    actor: Slot<Wire>,
    /// Debug builds: the transport actor panics on its next message.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    crash: AtomicBool,
    me: NodeName,
    timeout: Duration,
    next_req: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    services: RwLock<HashMap<&'static str, Service>>,
}

/// This node's end of the transport. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl Transport {
    /// A transport for a node outside any cluster: it has no peer, so
    /// every send to another node is refused as unavailable.
    pub fn single(me: NodeName) -> Transport {
        Transport::build(None, me, Duration::from_secs(15))
    }

    /// A transport over `cluster`'s sessions; `timeout` bounds every wait
    /// for an answer. Its actor runs under the node's tree
    /// ([`Transport::child`]).
    pub fn new(cluster: Arc<Cluster>, timeout: Duration) -> Transport {
        let me = cluster.me();
        Transport::build(Some(cluster), me, timeout)
    }

    fn build(cluster: Option<Arc<Cluster>>, me: NodeName, timeout: Duration) -> Transport {
        Transport {
            inner: Arc::new(Inner {
                cluster,
                actor: Slot::default(),
                crash: AtomicBool::new(false),
                me,
                timeout,
                next_req: AtomicU64::new(1),
                pending: Mutex::new(HashMap::new()),
                services: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The transport actor, for the node's tree: restarting it keeps every
    /// request waiting (their state is here, not in the actor).
    pub fn child(&self) -> ChildSpec {
        let me = self.clone();
        let crash = self.clone();
        ChildSpec {
            name: "transport",
            policy: Policy::Restart,
            restart_means: "requests in flight are kept; callers of lost ones retry",
            start: Box::new(move |sup| {
                let me = me.clone();
                Box::pin(async move {
                    let (actor, _) = Actor::spawn_linked(None, TransportActor, me.clone(), sup)
                        .await
                        .map_err(|e| format!("transport: {e}"))?;
                    me.inner.actor.set(actor.clone());
                    Ok(actor.get_cell())
                })
            }),
            // Only debug builds check the flag; release builds have no hook.
            crash: cfg!(debug_assertions).then(|| -> CrashFn {
                Box::new(move || {
                    crash.inner.crash.store(true, Ordering::SeqCst);
                    crash
                        .inner
                        .actor
                        .cast(Wire(Err(crate::wire::WireError::Empty)))
                        .is_ok()
                })
            }),
        }
    }

    /// This node's name.
    pub fn me(&self) -> &NodeName {
        &self.inner.me
    }

    /// The cluster this transport reaches, if the node is in one.
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.inner.cluster.as_ref()
    }

    /// Takes messages of kind `M` from other nodes: `deliver(key, msg)`
    /// hands each to its actor (the actor answers through the `Reply` in
    /// the message; a delivery that fails is answered with its fault).
    /// A later call for the same kind replaces the earlier one.
    pub fn serve<M: Remote>(&self, deliver: impl Fn(i64, M) -> Delivery + Send + Sync + 'static) {
        let service: Service = Box::new(move |key, body, slot| {
            let asked = slot.is_some();
            let (msg, bound) = bind_inbound(slot, || decode::<M>(body));
            match msg {
                Err(e) => delivered(Err(e)),
                Ok(_) if asked && !bound => delivered(Err(Fault::Invalid(format!(
                    "a {} message that takes no answer was sent as a request",
                    M::KIND
                )))),
                Ok(m) => deliver(key, m),
            }
        });
        if let Ok(mut s) = self.inner.services.write() {
            s.insert(M::KIND, service);
        }
    }

    /// Sends `make(reply)` to the `M` actor `key` on `node` and waits (at
    /// most the transport's timeout) for its answer.
    pub async fn ask<M: Remote, T: DeserializeOwned + Send + 'static>(
        &self,
        node: &NodeName,
        key: i64,
        make: impl FnOnce(Reply<T>) -> M,
    ) -> Result<T, Fault> {
        let body = encode(&make(Reply::detached()))?;
        let answer = self.request(node, M::KIND, key, body).await?;
        decode(&answer)
    }

    /// Sends `msg` to the `M` actor `key` on `node` without waiting.
    pub fn tell<M: Remote>(&self, node: &NodeName, key: i64, msg: &M) -> Result<(), Fault> {
        let body = encode(msg)?;
        self.send(
            node,
            Frame::Send {
                req: 0,
                from: self.inner.me.0.clone(),
                kind: M::KIND.to_string(),
                key,
                body,
            },
        )
    }

    /// Fails every request waiting on `node` (declared down), so callers
    /// route again at once instead of waiting out their timeout.
    pub fn abandon(&self, node: &NodeName) {
        if let Ok(mut p) = self.inner.pending.lock() {
            p.retain(|_, w| w.node != *node);
        }
    }

    async fn request(
        &self,
        node: &NodeName,
        kind: &'static str,
        key: i64,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Fault> {
        let req = self.inner.next_req.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.inner.pending.lock() {
            p.insert(
                req,
                Pending {
                    node: node.clone(),
                    tx,
                    parts: Vec::new(),
                },
            );
        }
        let sent = self.send(
            node,
            Frame::Send {
                req,
                from: self.inner.me.0.clone(),
                kind: kind.to_string(),
                key,
                body,
            },
        );
        let result = match sent {
            Err(e) => Err(e),
            Ok(()) => match tokio::time::timeout(self.inner.timeout, rx).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => Err(Fault::Unavailable(format!(
                    "{node} dropped the request (declared down)"
                ))),
                Err(_) => Err(Fault::Unavailable(format!("{node} did not answer in time"))),
            },
        };
        if let Ok(mut p) = self.inner.pending.lock() {
            p.remove(&req);
        }
        result
    }

    /// The transport actor of `node`, if a session to it is up.
    fn peer(&self, node: &NodeName) -> Option<ActorRef<Wire>> {
        let id = self.inner.cluster.as_ref()?.node_id(&node.0)?;
        ractor::pg::get_members(&TRANSPORT_GROUP.to_string())
            .into_iter()
            .find(|c: &ActorCell| !c.get_id().is_local() && c.get_id().node() == id)
            .map(ActorRef::from)
    }

    fn send(&self, node: &NodeName, frame: Frame) -> Result<(), Fault> {
        let peer = self
            .peer(node)
            .ok_or_else(|| Fault::Unavailable(format!("no session to {node}")))?;
        peer.cast(Wire(Ok(Envelope::V1(frame))))
            .map_err(|e| Fault::Unavailable(format!("could not send to {node}: {e}")))
    }

    /// Sends an answer to `to`: one frame, or parts when it is larger.
    fn answer(&self, to: &NodeName, req: u64, result: Result<Vec<u8>, Fault>) {
        let sent = match result {
            Ok(bytes) if bytes.len() > PART => {
                let parts = bytes.len().div_ceil(PART) as u32;
                bytes
                    .chunks(PART)
                    .enumerate()
                    .try_for_each(|(part, chunk)| {
                        self.send(
                            to,
                            Frame::AnswerPart {
                                req,
                                part: part as u32,
                                parts,
                                payload: chunk.to_vec(),
                            },
                        )
                    })
            }
            result => self.send(to, Frame::Answer { req, result }),
        };
        if let Err(e) = sent {
            tracing::warn!(%to, error = %e, "could not answer a cluster request");
        }
    }

    /// A message from `from` for this node's `kind` service.
    fn receive(&self, req: u64, from: String, kind: &str, key: i64, body: &[u8]) {
        let slot = (req != 0).then(|| {
            ReplySlot::new(PeerAnswer {
                transport: Arc::downgrade(&self.inner),
                to: NodeName(from.clone()),
                req,
            })
        });
        let delivery = match self.inner.services.read() {
            Ok(services) => match services.get(kind) {
                Some(service) => service(key, body, slot.clone()),
                None => delivered(Err(Fault::Unavailable(format!(
                    "{} serves no {kind} actors",
                    self.inner.me
                )))),
            },
            Err(_) => delivered(Err(Fault::Unavailable("transport poisoned".into()))),
        };
        run_delivery(delivery, slot, from, kind.to_string());
    }

    /// Takes an answer (or a part of one) for a request of this node.
    /// Parts arrive in order over one session; anything else (a part for a
    /// request no longer waiting, out of order, too many) drops the
    /// request, whose caller then times out and routes again.
    fn complete(
        &self,
        req: u64,
        part: Option<(u32, u32, Vec<u8>)>,
        result: Result<Vec<u8>, Fault>,
    ) {
        let Ok(mut pending) = self.inner.pending.lock() else {
            return;
        };
        let done = match part {
            None => Some(result),
            Some((part, parts, payload)) => {
                let Some(p) = pending.get_mut(&req) else {
                    return;
                };
                if part as usize != p.parts.len() || parts as usize > MAX_ANSWER / PART + 1 {
                    pending.remove(&req);
                    return;
                }
                p.parts.push(payload);
                (p.parts.len() == parts as usize).then(|| Ok(std::mem::take(&mut p.parts).concat()))
            }
        };
        if let Some(result) = done {
            if let Some(p) = pending.remove(&req) {
                let _ = p.tx.send(result);
            }
        }
    }
}

/// Runs a delivery: its first poll here, in arrival order; the rest (if it
/// waits, e.g. activating an entity) on its own task.
fn run_delivery(mut delivery: Delivery, slot: Option<Arc<ReplySlot>>, from: String, kind: String) {
    let fail = move |slot: Option<Arc<ReplySlot>>, e: Fault| {
        match &e {
            // A message that does not decode is a bug or an attack, not weather.
            Fault::Invalid(_) => {
                tracing::warn!(%from, %kind, error = %e, "refused a cluster message")
            }
            _ => tracing::debug!(%from, %kind, error = %e, "a cluster message was not delivered"),
        }
        if let Some(s) = slot {
            s.answer(Err(e));
        }
    };
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    match delivery.poll_unpin(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => fail(slot, e),
        Poll::Pending => {
            tokio::spawn(async move {
                if let Err(e) = delivery.await {
                    fail(slot, e);
                }
            });
        }
    }
}

/// Frames an answer back to the node that asked.
struct PeerAnswer {
    transport: Weak<Inner>,
    to: NodeName,
    req: u64,
}

impl AnswerSink for PeerAnswer {
    fn answer(&self, result: Result<Vec<u8>, Fault>) {
        if let Some(inner) = self.transport.upgrade() {
            Transport { inner }.answer(&self.to, self.req, result);
        }
    }
}

/// The remotable actor of a node's transport: takes frames from peers.
pub struct TransportActor;

impl Actor for TransportActor {
    type Msg = Wire;
    type State = Transport;
    type Arguments = Transport;

    async fn pre_start(
        &self,
        myself: ActorRef<Wire>,
        transport: Transport,
    ) -> Result<Transport, ActorProcessingErr> {
        ractor::pg::join(TRANSPORT_GROUP.to_string(), vec![myself.get_cell()]);
        Ok(transport)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Wire>,
        msg: Wire,
        transport: &mut Transport,
    ) -> Result<(), ActorProcessingErr> {
        #[cfg(debug_assertions)]
        if transport.inner.crash.swap(false, Ordering::SeqCst) {
            panic!("crash requested for the transport (test hook)");
        }
        match msg.0 {
            Ok(Envelope::V1(Frame::Send {
                req,
                from,
                kind,
                key,
                body,
            })) => transport.receive(req, from, &kind, key, &body),
            Ok(Envelope::V1(Frame::Answer { req, result })) => {
                transport.complete(req, None, result)
            }
            Ok(Envelope::V1(Frame::AnswerPart {
                req,
                part,
                parts,
                payload,
            })) => transport.complete(req, Some((part, parts, payload)), Ok(Vec::new())),
            Ok(Envelope::V1(_)) => {}
            Err(e) => tracing::warn!(error = %e, "dropped a broken cluster frame"),
        }
        Ok(())
    }
}
