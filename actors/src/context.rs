//! What every entity actor needs, shared by all of them on a node.

use crate::catalog::CatalogSink;
use crate::live::LiveHub;
use crate::renderer::Renderer;
use crate::views::ViewRenderer;
use std::sync::Arc;
use std::time::Duration;
use wani_store::blob::BlobStore;
use wani_store::Repo;

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
}
