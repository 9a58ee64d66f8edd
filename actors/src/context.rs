//! What every entity actor needs, shared by all of them on a node.

use crate::catalog::CatalogSink;
use crate::live::LiveHub;
use crate::renderer::Renderer;
use crate::views::ViewRenderer;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wani_store::blob::BlobStore;
use wani_store::{Board, BoardId, Repo, StoreError};

/// Settings of entity actors.
#[derive(Clone, Debug)]
pub struct EntityConfig {
    /// An entity with no message for this long stops itself.
    pub idle_timeout: Duration,
    /// How long a caller waits for an entity's answer.
    pub call_timeout: Duration,
}

impl Default for EntityConfig {
    fn default() -> Self {
        EntityConfig {
            idle_timeout: Duration::from_secs(600),
            call_timeout: Duration::from_secs(15),
        }
    }
}

/// What every entity actor needs, shared.
#[derive(Clone)]
pub struct Shared {
    pub repo: Arc<dyn Repo>,
    pub blobs: Arc<dyn BlobStore>,
    pub renderer: Renderer,
    pub views: Arc<dyn ViewRenderer>,
    pub config: EntityConfig,
    /// Keys poster ids ([`wani_store::poster_hex`]); loaded once at start.
    pub poster_secret: Arc<[u8]>,
    /// The node's live-update hub: entities publish committed writes to it.
    pub live: Option<LiveHub>,
    /// Where a thread reports changes to its board's catalog.
    pub catalog: CatalogSink,
    /// Board settings as thread activations read them.
    pub boards: BoardCache,
}

/// Board rows for thread activations, kept for a second: when a failover
/// re-activates a thousand threads of one board at once, the board is read
/// once, not a thousand times. A thread keeps the settings it was activated
/// with anyway (a board edit reaches the board's actor, and threads on
/// their next activation), so a second more changes nothing a user sees.
#[derive(Clone, Default)]
pub struct BoardCache {
    boards: Arc<RwLock<HashMap<BoardId, (Board, Instant)>>>,
}

/// How long a cached board row is used.
const BOARD_TTL: Duration = Duration::from_secs(1);

impl BoardCache {
    /// The board `id`, from the cache or the store (`None`: no such board).
    pub async fn get(&self, repo: &dyn Repo, id: BoardId) -> Result<Option<Board>, StoreError> {
        let cached = self
            .boards
            .read()
            .ok()
            .and_then(|m| m.get(&id).cloned())
            .filter(|(_, at)| at.elapsed() < BOARD_TTL);
        if let Some((b, _)) = cached {
            return Ok(Some(b));
        }
        let board = repo.board(id).await?;
        if let (Some(b), Ok(mut m)) = (&board, self.boards.write()) {
            m.insert(id, (b.clone(), Instant::now()));
        }
        Ok(board)
    }

    /// Drops board `id`: its settings changed here.
    pub fn forget(&self, id: BoardId) {
        if let Ok(mut m) = self.boards.write() {
            m.remove(&id);
        }
    }
}
