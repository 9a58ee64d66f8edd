//! RendererPool: markup → HTML on a pool of workers, cached by content hash.
//!
//! A ractor factory: jobs go to whichever worker is free (queuer routing),
//! so one long body never holds up the others. The output of a render is a
//! pure function of the body and of where each quoted post lives, so the
//! cache key is a hash of both; the cache is shared by the workers and
//! bounded (oldest entries leave first).
//!
//! Not handled here: resolving `>>N` (the caller passes the answers in, so a
//! worker never touches the store) and invalidation (a key never goes stale).

use crate::error::ActorError;
use crate::markup;
use ractor::factory::{
    queues, routing, worker_builder, Factory, FactoryArguments, FactoryMessage, Job, Worker,
    WorkerId,
};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wani_store::{PostId, ThreadId};

/// Where each quoted post lives (`None`: no such post), as the caller found it.
pub type QuoteLinks = Vec<(PostId, Option<ThreadId>)>;

/// A render job.
pub enum RenderMsg {
    /// Renders `body`, answering with safe HTML.
    Render {
        body: String,
        links: QuoteLinks,
        reply: RpcReplyPort<String>,
    },
}
impl ractor::Message for RenderMsg {}

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
                let _ = reply.send(html.to_string());
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
    router: Arc<std::sync::OnceLock<Arc<crate::router::Router>>>,
}

impl Renderer {
    /// Starts the pool with `workers` workers and a cache of `cache_entries`.
    pub async fn spawn(
        supervisor: Option<ractor::ActorCell>,
        workers: usize,
        cache_entries: usize,
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
        Ok((
            Renderer {
                factory: Some(factory),
                timeout: Duration::from_secs(10),
                router: Arc::default(),
            },
            handle,
        ))
    }

    /// Renders a body given where its quoted posts live.
    pub async fn render(&self, body: String, links: QuoteLinks) -> Result<String, ActorError> {
        match (&self.factory, self.router.get()) {
            (Some(_), _) => self.render_here(body, links).await,
            (None, Some(router)) => router.render(body, links).await,
            (None, None) => Err(ActorError::Unavailable(
                "this node has no render role and no cluster to ask".into(),
            )),
        }
    }

    /// A renderer with no pool here: every render goes to a node with the
    /// `render` role (see [`Renderer::set_router`]).
    pub fn without_pool() -> Renderer {
        Renderer {
            factory: None,
            timeout: Duration::from_secs(10),
            router: Arc::default(),
        }
    }

    /// Lets a renderer without a pool reach the cluster's render nodes.
    pub fn set_router(&self, router: Arc<crate::router::Router>) {
        let _ = self.router.set(router);
    }

    /// Renders on this node's pool.
    pub async fn render_here(&self, body: String, links: QuoteLinks) -> Result<String, ActorError> {
        let Some(factory) = &self.factory else {
            return Err(ActorError::Unavailable(
                "this node has no render role".into(),
            ));
        };
        let res = factory
            .call_job(
                (),
                |reply| RenderMsg::Render { body, links, reply },
                Some(self.timeout),
            )
            .await
            .map_err(|e| ActorError::Unavailable(format!("renderer: {e}")))?;
        match res {
            ractor::rpc::CallResult::Success(html) => Ok(html),
            ractor::rpc::CallResult::Timeout => {
                Err(ActorError::Unavailable("the renderer timed out".into()))
            }
            ractor::rpc::CallResult::SenderError => Err(ActorError::Unavailable(
                "the renderer dropped the job".into(),
            )),
        }
    }

    /// Stops the pool.
    pub fn stop(&self) {
        if let Some(f) = &self.factory {
            f.stop(None);
        }
    }
}
