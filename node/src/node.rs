//! One node: opening storage, starting the actor tree, serving HTTP, and
//! shutting all of it down in order.
//!
//! Every long-lived actor and periodic job of the node is a child of one
//! supervision tree (`wani_supervision::tree`), started in this order and
//! stopped in the reverse:
//!
//! ```text
//! node (Tree)
//! ├── cluster/node-server   (cluster only)
//! ├── cluster/membership    (cluster only)
//! ├── transport             (cluster only)
//! ├── renderer              (render role)
//! ├── thumbnailer           (thumbnail role)
//! ├── live-hub
//! ├── region                entities under it
//! ├── handover              (cluster only)
//! ├── lease-renewal         (cluster only)
//! └── ban-reload            (cluster only)
//! Http                      axum, stateless (http/); not an actor: it runs
//!                           on the main task, and its end is the node's
//! ```
//!
//! Shutdown order: in a cluster, drain first (leave, hand every entity and
//! shard lease over while still serving; see `drain.rs`); then stop
//! accepting connections and finish the requests in flight (axum's
//! graceful shutdown), then passivate every entity (their writes are
//! already committed: an entity acknowledges only after the store commits),
//! then stop the tree, then close the database.

use crate::abuse::bans::BanMsg;
use crate::config::Config;
use crate::http;
use crate::render::SiteRenderer;
use crate::state::{AppState, Inner};
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wani_actors::handover::Handover;
use wani_actors::lease::Leases;
use wani_actors::live::LiveHub;
use wani_actors::{BoardMsg, ThreadMsg};
use wani_actors::{Entities, EntityConfig, Renderer, Shared, Thumbnailer};
use wani_media::video::VideoTools;
use wani_store::blob::{BlobStore, DbBlobStore, FsBlobStore};
use wani_store::s3::{CachedBlobStore, S3BlobStore};
use wani_store::{Repo, Store, StoreOptions};
use wani_supervision::cluster::Cluster;
use wani_supervision::transport::Transport;
use wani_supervision::tree::{job, ChildSpec, Tree, Work};
use wani_supervision::{NodeName, Role};

/// A started node (actors running, HTTP not yet serving).
pub struct Node {
    pub state: AppState,
}

/// Opens the database named in the config and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(StoreOptions {
        url: config.database.url.clone(),
        max_connections: config.database.max_connections,
        writers: config.database.writers,
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

/// The blob store `[blobs]` names. An S3 bucket is read once first, so
/// wrong credentials or a missing bucket stop the start with the reason.
pub async fn open_blobs(config: &Config, store: &Store) -> anyhow::Result<Arc<dyn BlobStore>> {
    Ok(match config.blobs.backend.as_str() {
        "db" => Arc::new(DbBlobStore::new(store.clone())),
        "s3" => {
            let s3 = S3BlobStore::new(&config.blobs.s3())?;
            s3.check().await.with_context(|| {
                format!(
                    "blobs: the S3 bucket {:?} at {}",
                    config.blobs.bucket,
                    if config.blobs.endpoint.is_empty() {
                        "AWS"
                    } else {
                        &config.blobs.endpoint
                    }
                )
            })?;
            match config.blobs.cache_mib {
                0 => Arc::new(s3),
                mib => Arc::new(CachedBlobStore::new(
                    Arc::new(s3),
                    1024 * 1024,
                    mib * 1024 * 1024,
                )),
            }
        }
        _ => Arc::new(FsBlobStore::new(&config.blobs.dir)),
    })
}

/// The thumbnailer pool `[media]` asks for (its workers run here when
/// `local`), taking videos if ffmpeg is on the PATH. Its supervisor child,
/// if any, is the caller's to start.
pub async fn start_thumbnailer(
    config: &Config,
    transport: Transport,
    local: bool,
    blobs: Arc<dyn BlobStore>,
) -> Thumbnailer {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
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
    Thumbnailer::new(
        transport,
        local,
        blobs,
        video,
        thumb_workers,
        config.media.thumb_queue,
    )
}

impl Node {
    /// Opens storage and starts the actors, each under the node's tree.
    pub async fn start(config: Config) -> anyhow::Result<Node> {
        let store = open_store(&config).await?;
        bootstrap_boards(&store, &config).await?;
        let blobs = open_blobs(&config, &store).await?;
        crate::json::set_public_url(&config.blobs.public_url, &config.blobs.prefix);
        backfill_md5(&store, &*blobs).await?;
        let tree = Tree::start(config.supervision.budget())
            .await
            .map_err(anyhow::Error::msg)?;
        // The cluster first: the other actors reach other nodes through it.
        let cluster = match config.cluster.enabled {
            true => Some(Cluster::new(config.cluster.runtime(&config.node)?)?),
            false => None,
        };
        let transport = match &cluster {
            Some(c) => Transport::new(
                c.clone(),
                Duration::from_secs(config.cluster.call_timeout_secs),
            ),
            None => Transport::single(NodeName(config.node.name.clone())),
        };
        if let Some(c) = &cluster {
            for child in c.children() {
                add(&tree, child).await?;
            }
            add(&tree, transport.child()).await?;
            tracing::info!(listen = %config.cluster.listen, seeds = ?config.cluster.seeds, "cluster membership started");
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let has_role = |r: Role| config.node.has(r);
        // A node without a pool's role sends that work to a node with it,
        // through the transport; a single box has them all.
        let renderer = Renderer::new(transport.clone(), has_role(Role::Render), cores, 10_000);
        if let Some(child) = renderer.child() {
            add(&tree, child).await?;
        }
        let thumbnailer = start_thumbnailer(
            &config,
            transport.clone(),
            has_role(Role::Thumbnail),
            blobs.clone(),
        )
        .await;
        if let Some(child) = thumbnailer.child() {
            add(&tree, child).await?;
        }
        let boards = store.boards().await?;
        let site = Arc::new(SiteRenderer::new(config.site.name.clone(), boards));
        let poster_secret: Arc<[u8]> = store.poster_secret().await?.into();
        let now = crate::http::auth::now_ms();
        let abuse = crate::abuse::Abuse::new(
            &config.site.trusted_proxies,
            config.abuse.same_content_secs,
            config.captcha.limits(&config.abuse),
            &poster_secret,
            store.active_bans(now).await.context("loading the bans")?,
        )
        .map_err(|e| anyhow::anyhow!("site.trusted_proxies: {e}"))?
        .with_limits(&config.abuse);
        let live = LiveHub::new(transport.clone());
        add(&tree, live.child()).await?;
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
        let boards = wani_actors::context::BoardCache::default();
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
            boards: boards.clone(),
            post_homes: Default::default(),
        });
        add(&tree, entities.child()).await?;
        entities.serve::<ThreadMsg>();
        entities.serve::<BoardMsg>();
        let rules_html = wani_actors::markup::render(&config.site.rules, &|_| None);
        let handover = leases
            .map(|leases| Handover::new(entities.clone(), leases, live.clone(), transport.clone()));
        if let Some(h) = &handover {
            for child in h.children() {
                add(&tree, child).await?;
            }
        }
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
                pages_renderer: renderer,
                rules_html,
                abuse,
                site_secret: poster_secret,
                cluster,
                metrics,
                live,
                handover,
                tree: tree.clone(),
                transport: transport.clone(),
                board_cache: boards,
                archive_pages: crate::http::cache::PageCache::new(
                    std::time::Duration::from_secs(5),
                    1024,
                ),
                chan_archives: crate::http::cache::PageCache::new(
                    std::time::Duration::from_secs(5),
                    1024,
                ),
                chan_threads: Default::default(),
                chan_lists: crate::http::cache::PageCache::new(
                    crate::http::chan::LISTING_TTL,
                    4096,
                ),
            }),
        };
        if state.cluster.is_some() {
            // Bans are checked from memory on the posting path; a ban made
            // on another node is broadcast to this one at once...
            let weak = Arc::downgrade(&state.inner);
            transport.serve::<BanMsg>(move |_, BanMsg::Changed| {
                let weak = weak.clone();
                Box::pin(async move {
                    if let Some(inner) = weak.upgrade() {
                        let now = crate::http::auth::now_ms();
                        if let Err(e) = inner.abuse.reload_bans(&inner.store, now).await {
                            tracing::warn!(error = %e, "could not reload the ban list");
                        }
                    }
                    Ok(())
                })
            });
            // ...and this reload is the safety net for a broadcast lost.
            let weak = Arc::downgrade(&state.inner);
            let work: Work = Arc::new(move || {
                let weak = weak.clone();
                Box::pin(async move {
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = inner
                        .abuse
                        .reload_bans(&inner.store, crate::http::auth::now_ms())
                        .await
                    {
                        tracing::warn!(error = %e, "could not reload the ban list");
                    }
                })
            });
            let (reload, _) = job(
                "ban-reload",
                "the ban list is read again on the next run",
                Duration::from_secs(state.config.abuse.ban_reload_secs),
                work,
            );
            add(&tree, reload).await?;
        }
        Ok(Node { state })
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

    /// Stops the actors, last started first, and closes the database.
    pub async fn stop(self) {
        // Entities first, each given the time to finish what it is doing
        // (their writes are committed before they acknowledge).
        self.state.entities.passivate_all().await;
        self.state.tree.shutdown().await;
        self.state.store.close().await;
        tracing::info!("stopped");
    }
}

/// Adds a child to the tree, naming it in the error.
async fn add(tree: &Tree, child: ChildSpec) -> anyhow::Result<()> {
    tree.add(child).await.map_err(anyhow::Error::msg)
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

/// Fills in the MD5 of files stored before wani kept one (the 4chan API
/// publishes it). Runs before the node serves, so no view is rendered
/// without it; a file whose original is gone keeps none and is reported.
/// Once done it costs one query that finds nothing.
async fn backfill_md5(store: &Store, blobs: &dyn BlobStore) -> anyhow::Result<()> {
    let (mut after, mut filled, mut missing) = (wani_store::MediaId(0), 0u64, 0u64);
    loop {
        let batch = store.media_without_md5(after, 256).await?;
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        for (id, key) in batch {
            match blobs.get(&key).await? {
                Some(bytes) => {
                    let md5 =
                        tokio::task::spawn_blocking(move || wani_media::md5_base64(&bytes)).await?;
                    store.set_media_md5(&key, &md5).await?;
                    filled += 1;
                }
                None => {
                    tracing::warn!(media = id.0, blob = %key, "the original of this file is missing: no MD5");
                    missing += 1;
                }
            }
        }
    }
    if filled + missing > 0 {
        tracing::info!(filled, missing, "MD5 of stored files filled in");
    }
    Ok(())
}
