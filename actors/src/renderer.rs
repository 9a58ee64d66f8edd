//! RendererPool: markup → HTML on a pool of workers, cached by content hash.
//!
//! A ractor factory: jobs go to whichever worker is free (queuer routing),
//! so one long body never holds up the others. The output of a render is a
//! pure function of the body and of where each quoted post lives, so the
//! cache key is a hash of both; the cache is shared by the workers and
//! bounded (oldest entries leave first).
//!
//! A node without the `render` role has no pool: its renders go to a node
//! that has one, as a [`RenderMsg`] over the transport (the message is the
//! same either way; only where it is delivered differs).
//!
//! Not handled here: resolving `>>N` (the caller passes the answers in, so a
//! worker never touches the store) and invalidation (a key never goes stale).

use crate::error::ActorError;
use crate::markup;
use ractor::factory::{
    queues, routing, worker_builder, Factory, FactoryArguments, FactoryMessage, Job, Worker,
    WorkerId,
};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wani_store::{PostId, ThreadId};
use wani_supervision::transport::Fault;
use wani_supervision::transport::{delivered, Remote, Reply, Transport};
use wani_supervision::Role;

/// Where each quoted post lives (`None`: no such post), as the caller found it.
pub type QuoteLinks = Vec<(PostId, Option<ThreadId>)>;

/// A render job.
#[derive(Serialize, Deserialize)]
pub enum RenderMsg {
    /// Renders `body`, answering with safe HTML.
    Render {
        body: String,
        links: QuoteLinks,
        reply: Reply<String>,
    },
}
impl ractor::Message for RenderMsg {}
impl Remote for RenderMsg {
    const KIND: &'static str = "render";
}

type Cache = Arc<Mutex<RenderCache>>;

/// A bounded map from content hash to HTML; first in, first out.
#[derive(Default)]
pub struct RenderCache {
    map: HashMap<[u8; 32], Arc<str>>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl RenderCache {
    fn get(&self, k: &[u8; 32]) -> Option<Arc<str>> {
        self.map.get(k).cloned()
    }
    fn insert(&mut self, k: [u8; 32], v: Arc<str>) {
        if self.map.insert(k, v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// One worker of the pool.
pub struct RenderWorker;

impl Worker for RenderWorker {
    type Key = ();
    type Message = RenderMsg;
    type Arguments = CacheArg;
    type State = Cache;

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), RenderMsg>>,
        args: CacheArg,
    ) -> Result<Cache, ActorProcessingErr> {
        Ok(args.0)
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), RenderMsg>>,
        Job { msg, key, .. }: Job<(), RenderMsg>,
        cache: &mut Cache,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RenderMsg::Render { body, links, reply } => {
                let k = markup::cache_key(&body, &links);
                let hit = cache.lock().ok().and_then(|c| c.get(&k));
                let html = match hit {
                    Some(h) => h,
                    None => {
                        let found: HashMap<PostId, Option<ThreadId>> = links.into_iter().collect();
                        let html: Arc<str> =
                            markup::render(&body, &|id| found.get(&id).copied().flatten()).into();
                        if let Ok(mut c) = cache.lock() {
                            c.insert(k, html.clone());
                        }
                        html
                    }
                };
                // The caller may have timed out and gone; nothing to do then.
                reply.send(html.to_string());
            }
        }
        Ok(key)
    }
}

/// The shared cache handed to each worker at start.
pub struct CacheArg(Cache);
impl ractor::Message for CacheArg {}

/// A handle to the renderer pool.
#[derive(Clone)]
pub struct Renderer {
    /// This node's pool; `None` on a node without the `render` role, which
    /// sends its renders to a node that has it.
    factory: Option<ActorRef<FactoryMessage<(), RenderMsg>>>,
    timeout: Duration,
    transport: Transport,
    /// Whose turn it is among the render nodes.
    turn: Arc<AtomicU64>,
}

impl Renderer {
    /// Starts the pool with `workers` workers and a cache of
    /// `cache_entries`, and takes render jobs from other nodes.
    pub async fn spawn(
        supervisor: Option<ractor::ActorCell>,
        workers: usize,
        cache_entries: usize,
        transport: Transport,
    ) -> Result<(Renderer, ractor::concurrency::JoinHandle<()>), ActorError> {
        let cache: Cache = Arc::new(Mutex::new(RenderCache {
            capacity: cache_entries,
            ..Default::default()
        }));
        let args = FactoryArguments::builder()
            .worker_builder(Box::new(worker_builder(move |_wid| {
                (RenderWorker, CacheArg(cache.clone()))
            })))
            .queue(queues::DefaultQueue::default())
            .router(routing::QueuerRouting::default())
            .num_initial_workers(workers.max(1))
            .build();
        let factory = Factory::<(), RenderMsg, CacheArg, RenderWorker, _, _>::default();
        // Unregistered: several nodes may share one process (tests, benchmarks).
        let name = None;
        let spawned = match supervisor {
            Some(sup) => Actor::spawn_linked(name, factory, args, sup).await,
            None => Actor::spawn(name, factory, args).await,
        };
        let (factory, handle) =
            spawned.map_err(|e| ActorError::Unavailable(format!("renderer: {e}")))?;
        let pool = factory.clone();
        transport.serve::<RenderMsg>(move |_, msg| {
            delivered(
                pool.cast(FactoryMessage::Dispatch(Job::new((), msg)))
                    .map_err(|e| Fault::Unavailable(format!("renderer: {e}"))),
            )
        });
        Ok((
            Renderer {
                factory: Some(factory),
                timeout: Duration::from_secs(10),
                transport,
                turn: Arc::default(),
            },
            handle,
        ))
    }

    /// A renderer with no pool here: every render goes to a node with the
    /// `render` role, through `transport`.
    pub fn without_pool(transport: Transport) -> Renderer {
        Renderer {
            factory: None,
            timeout: Duration::from_secs(10),
            transport,
            turn: Arc::default(),
        }
    }

    /// Renders a body given where its quoted posts live: on this node's
    /// pool, or on a node with the `render` role.
    pub async fn render(&self, body: String, links: QuoteLinks) -> Result<String, ActorError> {
        let msg = |reply| RenderMsg::Render { body, links, reply };
        if let Some(factory) = &self.factory {
            let (reply, wait) = Reply::local();
            factory
                .cast(FactoryMessage::Dispatch(Job::new((), msg(reply))))
                .map_err(|e| ActorError::Unavailable(format!("renderer: {e}")))?;
            return wait.wait(self.timeout).await.map_err(|e| {
                ActorError::Unavailable(format!("the renderer did not answer: {e:?}"))
            });
        }
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let node = self
            .transport
            .cluster()
            .and_then(|c| c.pick(Role::Render, turn))
            .ok_or_else(|| ActorError::Unavailable("no node with the render role is up".into()))?;
        Ok(self.transport.ask(&node, 0, msg).await?)
    }

    /// Stops the pool.
    pub fn stop(&self) {
        if let Some(f) = &self.factory {
            f.stop(None);
        }
    }
}
