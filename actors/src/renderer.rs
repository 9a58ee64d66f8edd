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
use crate::pool::{PanicCounter, Pool};
use ractor::factory::{FactoryMessage, Job, Worker, WorkerId};
use ractor::{ActorProcessingErr, ActorRef};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wani_store::{PostId, ThreadId};
use wani_supervision::transport::{Remote, Reply, Transport};
use wani_supervision::tree::ChildSpec;
use wani_supervision::Role;

/// Where each quoted post lives (`None`: no such post), as the caller found it.
pub type QuoteLinks = Vec<(PostId, Option<ThreadId>)>;

/// A render job. The test hook is local-only and comes last (serde
/// numbers skipped variants differently on each side).
#[derive(Serialize, Deserialize)]
pub enum RenderMsg {
    /// Renders `body`, answering with safe HTML.
    Render {
        body: String,
        links: QuoteLinks,
        reply: Reply<String>,
    },
    /// Panics in the worker, to exercise supervision. Debug builds only.
    #[cfg(debug_assertions)]
    #[serde(skip)]
    Crash,
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
    type State = CacheArg;

    async fn pre_start(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), RenderMsg>>,
        args: CacheArg,
    ) -> Result<CacheArg, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        _factory: &ActorRef<FactoryMessage<(), RenderMsg>>,
        Job { msg, key, .. }: Job<(), RenderMsg>,
        state: &mut CacheArg,
    ) -> Result<(), ActorProcessingErr> {
        let _counted = PanicCounter(state.1.clone());
        let cache = &state.0;
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
            #[cfg(debug_assertions)]
            RenderMsg::Crash => panic!("crash requested for a render worker (test hook)"),
        }
        Ok(key)
    }
}

/// What each worker is handed at start: the cache the workers share, and
/// the pool's panic count.
pub struct CacheArg(Cache, Arc<AtomicU64>);
impl ractor::Message for CacheArg {}

/// A handle to the renderer pool. Cheap to clone.
#[derive(Clone)]
pub struct Renderer {
    pool: Pool<RenderMsg>,
    workers: usize,
    cache_entries: usize,
}

impl Renderer {
    /// The renderer of a node; with `here` (the `render` role) it runs a
    /// pool of `workers` workers sharing a cache of `cache_entries` (start
    /// it with [`Renderer::child`]), else it sends renders to a node that
    /// has the role.
    pub fn new(transport: Transport, here: bool, workers: usize, cache_entries: usize) -> Renderer {
        Renderer {
            pool: Pool::new(transport, Role::Render, here, Duration::from_secs(10)),
            workers,
            cache_entries,
        }
    }

    /// The pool, for the node's tree (none without the role). A restart
    /// starts with an empty cache.
    pub fn child(&self) -> Option<ChildSpec> {
        let capacity = self.cache_entries;
        #[cfg(debug_assertions)]
        let crash: Option<fn() -> RenderMsg> = Some(|| RenderMsg::Crash);
        #[cfg(not(debug_assertions))]
        let crash = None;
        let cache: Cache = Arc::new(Mutex::new(RenderCache {
            capacity,
            ..Default::default()
        }));
        self.pool.child(
            "renderer",
            self.workers,
            None,
            move |crashes| (RenderWorker, CacheArg(cache.clone(), crashes)),
            crash,
        )
    }

    /// Renders a body given where its quoted posts live: on this node's
    /// pool, or on a node with the `render` role.
    pub async fn render(&self, body: String, links: QuoteLinks) -> Result<String, ActorError> {
        Ok(self
            .pool
            .ask(|reply| RenderMsg::Render { body, links, reply })
            .await?)
    }

    /// Render workers that panicked (and were replaced) since start.
    pub fn worker_crashes(&self) -> u64 {
        self.pool.worker_crashes()
    }
}
