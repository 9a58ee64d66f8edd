//! One node: opening storage, starting the actor tree, serving HTTP, and
//! shutting all of it down in order.
//!
//! ```text
//! Node
//! ├── Region             board and thread actors (wani-actors)
//! ├── RendererPool       markup → HTML
//! ├── ThumbnailerPool    uploads → checked media + thumbnails
//! └── Http               axum, stateless (http/)
//! ```
//!
//! Shutdown order: in a cluster, drain first (leave, hand every entity and
//! shard lease over while still serving; see `drain.rs`); then stop
//! accepting connections and finish the requests in
//! flight (axum's graceful shutdown), then passivate every entity (their
//! writes are already committed: an entity acknowledges only after the
//! store commits), then stop the pools, then close the database.

use crate::config::Config;
use crate::http::{self, AppState, Inner};
use crate::render::SiteRenderer;
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wani_actors::handover::{Handover, RECONCILE_EVERY};
use wani_actors::lease::Leases;
use wani_actors::region::{Region, RegionArgs};
use wani_actors::{BoardMsg, ThreadMsg};
use wani_actors::{Entities, EntityConfig, Renderer, Shared, Thumbnailer};
use wani_media::video::VideoTools;
use wani_store::blob::{BlobStore, DbBlobStore, FsBlobStore};
use wani_store::{Repo, Store, StoreOptions};
use wani_supervision::cluster::Cluster;
use wani_supervision::transport::{Transport, TransportActor};
use wani_supervision::{NodeName, Role};

/// A started node (actors running, HTTP not yet serving).
pub struct Node {
    pub state: AppState,
    renderer: Renderer,
    transport_actor: Option<ractor::ActorRef<wani_supervision::wire::Wire>>,
}

/// Opens the database named in the config and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(StoreOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
    })
    .await
    .with_context(|| format!("opening the database {}", config.database.url))?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// Creates the boards of `[[bootstrap.boards]]` that do not exist yet.
pub async fn bootstrap_boards(store: &Store, config: &Config) -> anyhow::Result<()> {
    for b in &config.bootstrap.boards {
        if store.board_by_name(&b.name).await?.is_none() {
            let mut settings = b.clone();
            if settings.title.is_empty() {
                settings.title = settings.name.clone();
            }
            store
                .create_board(settings)
                .await
                .with_context(|| format!("creating the bootstrap board {:?}", b.name))?;
            tracing::info!(board = %b.name, "created board from the bootstrap config");
        }
    }
    Ok(())
}

impl Node {
    /// Opens storage and starts the actors.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let store = open_store(&config).await?;
        bootstrap_boards(&store, &config).await?;
        let blobs: Arc<dyn BlobStore> = match config.blobs.backend.as_str() {
            "db" => Arc::new(DbBlobStore::new(store.clone())),
            _ => Arc::new(FsBlobStore::new(&config.blobs.dir)),
        };
        // The cluster first: the actors reach other nodes through it.
        let cluster = if config.cluster.enabled {
            let runtime = config.cluster.runtime(&config.node)?;
            let listen = runtime.listen;
            let c = Cluster::start(runtime)
                .await
                .context("starting the cluster membership")?;
            tracing::info!(%listen, seeds = ?config.cluster.seeds, "cluster membership started");
            Some(Arc::new(c))
        } else {
            None
        };
        let (transport, transport_actor) = match &cluster {
            Some(c) => {
                let t = Transport::new(
                    c.clone(),
                    Duration::from_secs(config.cluster.call_timeout_secs),
                );
                let (actor, _) = ractor::Actor::spawn(None, TransportActor, t.clone())
                    .await
                    .context("starting the cluster transport")?;
                (t, Some(actor))
            }
            None => (Transport::single(NodeName(config.node.name.clone())), None),
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let has_role = |r: Role| config.node.has(r);
        // A node without a pool's role sends that work to a node with it,
        // through the transport; a single box has them all.
        let renderer = if has_role(Role::Render) {
            Renderer::spawn(None, cores, 10_000, transport.clone())
                .await?
                .0
        } else {
            Renderer::without_pool(transport.clone())
        };
        let thumb_workers = if config.media.thumb_workers == 0 {
            cores
        } else {
            config.media.thumb_workers
        };
        let video = VideoTools::detect(
            Duration::from_secs(config.media.video_timeout_secs.max(1)),
            config.media.video_memory_mib.max(64) * 1024 * 1024,
        )
        .await;
        if video.is_none() {
            tracing::warn!(
                "ffmpeg/ffprobe not found on the PATH: video uploads (WebM, MP4) will be refused; \
                 install ffmpeg to accept them"
            );
        }
        let thumbnailer = if has_role(Role::Thumbnail) {
            Thumbnailer::spawn(
                None,
                blobs.clone(),
                video,
                thumb_workers,
                config.media.thumb_queue,
                transport.clone(),
            )
            .await?
            .0
        } else {
            Thumbnailer::without_pool(transport.clone())
        };
        let boards = store.boards().await?;
        let site = Arc::new(SiteRenderer::new(config.site.name.clone(), boards));
        let poster_secret: Arc<[u8]> = store.poster_secret().await?.into();
        let now = crate::http::auth::now_ms();
        let abuse = crate::abuse::Abuse::new(
            &config.site.trusted_proxies,
            config.abuse.same_content_secs,
            config.abuse.captcha_ttl_secs,
            config.abuse.captcha_cooldown_secs,
            store.active_bans(now).await.context("loading the bans")?,
        )
        .map_err(|e| anyhow::anyhow!("site.trusted_proxies: {e}"))?;
        let live = wani_actors::live::LiveHub::spawn(transport.clone()).await?;
        // Shard leases fence every entity write in a cluster.
        let leases = cluster.as_ref().map(|c| {
            let (holder, judge) = (c.clone(), c.clone());
            Leases::new(
                Arc::new(store.clone()),
                move || holder.lease_holder().to_string(),
                move |h: &str| judge.lease_decision(h),
                config.cluster.shards,
                Duration::from_millis(config.cluster.lease_ttl_ms),
            )
        });
        let call_timeout = EntityConfig::default().call_timeout;
        let entities = Entities::new(
            transport.clone(),
            leases.clone(),
            config.cluster.shards,
            call_timeout,
        );
        entities.set_shared(Shared {
            repo: Arc::new(store.clone()),
            blobs: blobs.clone(),
            renderer: renderer.clone(),
            views: site.clone(),
            config: EntityConfig {
                idle_timeout: Duration::from_secs(config.entities.idle_timeout_secs),
                call_timeout,
            },
            poster_secret: poster_secret.clone(),
            live: Some(live.clone()),
            catalog: wani_actors::board::catalog_sink(entities.clone()),
        });
        ractor::Actor::spawn(
            None,
            Region,
            RegionArgs {
                entities: entities.clone(),
            },
        )
        .await
        .context("starting the region")?;
        entities.serve::<ThreadMsg>();
        entities.serve::<BoardMsg>();
        let rules_html = wani_actors::markup::render(&config.site.rules, &|_| None);
        let handover = leases.map(|leases| {
            let h = Handover::new(entities.clone(), leases, live.clone(), transport.clone());
            spawn_handover(h.clone(), cluster.clone());
            h
        });
        let metrics = crate::metrics::Metrics::new();
        if let Some(c) = &cluster {
            metrics.follow(c);
        }
        let state = AppState {
            inner: Arc::new(Inner {
                config,
                store,
                blobs,
                entities,
                thumbnailer,
                renderer: site,
                rules_html,
                abuse,
                site_secret: poster_secret,
                cluster,
                metrics,
                live,
                handover,
            }),
        };
        if state.cluster.is_some() {
            // Bans are checked from memory on the posting path; in a cluster a
            // ban made on another node reaches this one within a second.
            let weak = Arc::downgrade(&state.inner);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let Some(inner) = weak.upgrade() else { break };
                    if let Err(e) = inner
                        .abuse
                        .reload_bans(&inner.store, crate::http::auth::now_ms())
                        .await
                    {
                        tracing::warn!(error = %e, "could not reload the ban list");
                    }
                }
            });
        }
        Ok(Node {
            state,
            renderer,
            transport_actor,
        })
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then stops the
    /// node. A clustered node first drains (hands its entities over while
    /// still serving), so a plain SIGTERM fails no request.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state.clone();
        let shutdown = async move {
            shutdown.await;
            crate::drain::before_shutdown(&state).await;
            // Live streams never end by themselves: end them, or the
            // graceful shutdown would wait for them forever.
            state.live.close_all().await;
        };
        let served = http::serve(listener, self.state.clone(), shutdown).await;
        self.stop().await;
        served.context("serving HTTP")
    }

    /// Stops the actors and closes the database.
    pub async fn stop(self) {
        if let Some(c) = &self.state.cluster {
            c.stop();
        }
        if let Some(t) = &self.transport_actor {
            t.stop(None);
        }
        self.state.entities.passivate_all().await;
        self.state.entities.stop();
        self.state.live.stop();
        self.state.thumbnailer.stop();
        self.renderer.stop();
        self.state.store.close().await;
        tracing::info!("stopped");
    }
}

/// Runs the hand-over work: on every view change and once a second, and
/// the lease renewal every third of the lease time.
fn spawn_handover(h: Arc<Handover>, cluster: Option<Arc<Cluster>>) {
    let Some(cluster) = cluster else { return };
    let mut changes = cluster.subscribe();
    let follow = h.clone();
    tokio::spawn(async move {
        let mut reconcile = tokio::time::interval(RECONCILE_EVERY);
        loop {
            let change = tokio::select! {
                c = changes.recv() => match c {
                    Ok(c) => Some(c),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = reconcile.tick() => None,
            };
            follow.reconcile(change.as_ref()).await;
        }
    });
    tokio::spawn(async move {
        loop {
            h.renew().await;
            tokio::time::sleep(h.renew_every()).await;
        }
    });
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
