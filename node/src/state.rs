//! What every handler and operation of a node shares: [`AppState`].

use crate::config::Config;
use crate::http::error::ApiError;
use crate::render::SiteRenderer;
use std::sync::Arc;
use wani_actors::{Entities, Thumbnailer};
use wani_store::blob::BlobStore;
use wani_store::{Board, BoardId, Store};

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

/// The parts of [`AppState`].
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub blobs: Arc<dyn BlobStore>,
    pub entities: Entities,
    pub thumbnailer: Thumbnailer,
    pub renderer: Arc<SiteRenderer>,
    /// The site rules rendered once at start.
    pub rules_html: String,
    /// Bans, flood control, captchas (this node's memory).
    pub abuse: crate::abuse::Abuse,
    /// Keys tripcodes (the poster-id secret: stable, never served).
    pub site_secret: Arc<[u8]>,
    /// Cluster membership, when `[cluster] enabled`.
    pub cluster: Option<Arc<wani_supervision::cluster::Cluster>>,
    /// What `/metrics` exposes beyond what the actors count themselves.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The node's live-update hub (`/api/v1/live`).
    pub live: wani_actors::live::LiveHub,
    /// Hand-over work and its counters, in a cluster.
    pub handover: Option<Arc<wani_actors::handover::Handover>>,
    /// The markup renderer pool (its worker restarts are shown).
    pub pages_renderer: wani_actors::Renderer,
    /// The node's supervision tree: readiness and restart counts.
    pub tree: wani_supervision::tree::Tree,
    /// Board settings, cached a second (shared with the thread actors).
    pub board_cache: wani_actors::context::BoardCache,
    /// Messages to other nodes that no actor of this crate sends (bans).
    pub transport: wani_supervision::transport::Transport,
    /// Archive pages (board, page, theme), rendered at most every few seconds.
    pub archive_pages:
        crate::http::cache::PageCache<(wani_store::BoardId, u32, crate::pages::Theme)>,
    /// Each board's `archive.json`, rendered at most every few seconds.
    pub chan_archives: crate::http::cache::PageCache<wani_store::BoardId>,
    /// 4chan index pages and catalogs: (board, page or 0, board view ETag).
    pub chan_lists: crate::http::cache::PageCache<(wani_store::BoardId, i64, std::sync::Arc<str>)>,
    /// Thread numbers of the 4chan API (opening post ids) to thread ids.
    pub chan_threads: crate::http::chan::ThreadNumbers,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl AppState {
    /// Bans were made or lifted here: this node reads the list again, and
    /// every other web node is told to at once.
    pub async fn bans_changed(&self) -> Result<(), wani_store::StoreError> {
        self.abuse
            .reload_bans(&self.store, crate::http::auth::now_ms())
            .await?;
        if let Some(c) = &self.cluster {
            let me = c.me();
            for node in c.with_role(wani_supervision::Role::Web) {
                if node != me {
                    if let Err(e) =
                        self.transport
                            .tell(&node, 0, &crate::abuse::bans::BanMsg::Changed)
                    {
                        // The periodic reload there is the safety net.
                        tracing::debug!(%node, error = %e, "could not tell a node bans changed");
                    }
                }
            }
        }
        Ok(())
    }

    /// Restarts after crashes since the node started, by actor: each child
    /// of the tree, each entity kind (a crashed entity re-activates on its
    /// next message) and each pool's workers.
    pub fn restarts(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .tree
            .health()
            .children()
            .into_iter()
            .map(|c| (c.name.to_string(), c.restarts))
            .collect();
        let crashes = self.entities.crashes();
        for kind in [wani_actors::names::THREAD, wani_actors::names::BOARD] {
            let n = crashes
                .iter()
                .find(|(k, _)| *k == kind)
                .map_or(0, |(_, n)| *n);
            out.push((kind.to_string(), n));
        }
        out.push((
            "renderer-worker".into(),
            self.pages_renderer.worker_crashes(),
        ));
        out.push((
            "thumbnailer-worker".into(),
            self.thumbnailer.worker_crashes(),
        ));
        out
    }

    /// Every board, also refreshing the navigation cached pages show.
    pub async fn boards(&self) -> Result<Vec<Board>, ApiError> {
        let boards = wani_store::Repo::boards(&self.store).await?;
        self.renderer.set_boards(boards.clone());
        Ok(boards)
    }

    /// A board's id from its numeric id or its name. Ids need no lookup; names
    /// are found in the cached board list first (the store is asked only for a
    /// board created since the list was last read).
    pub async fn board_id(&self, key: &str) -> Result<BoardId, ApiError> {
        if let Ok(id) = key.parse::<i64>() {
            return Ok(BoardId(id));
        }
        if let Some(id) = self.renderer.board_named(key) {
            return Ok(id);
        }
        match self.store.board_by_name(key).await? {
            Some(b) => Ok(b.id),
            None => Err(ApiError::not_found(format!("there is no board {key:?}"))),
        }
    }

    /// A board's current settings, from its actor.
    ///
    /// Read from the store through the node's board cache (a second old at
    /// most; an edit through this node clears it at once), not from the
    /// board's actor: posting a reply never waits on the board's entity,
    /// which may be re-activating a large catalog on another node.
    pub async fn resolve_board(&self, key: &str) -> Result<Board, ApiError> {
        let id = self.board_id(key).await?;
        self.board_cache
            .get(&self.store, id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("board {id} does not exist")))
    }
}
