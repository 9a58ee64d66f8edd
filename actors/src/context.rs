//! What every entity actor needs, shared by all of them on a node.

use crate::catalog::CatalogSink;
use crate::live::LiveHub;
use crate::renderer::Renderer;
use crate::views::ViewRenderer;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wani_store::blob::BlobStore;
use wani_store::{Board, BoardId, PostId, Repo, StoreError, ThreadId};

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
    /// Where recently quoted posts live.
    pub post_homes: PostHomes,
}

/// Board rows for thread activations, kept for a second: when a failover
/// re-activates a thousand threads of one board at once, the board is read
/// once, not a thousand times. A thread keeps the settings it was activated
/// with anyway (a board edit reaches the board's actor, and threads on
/// their next activation), so a second more changes nothing a user sees.
#[derive(Clone, Default)]
pub struct BoardCache {
    boards: Recent<BoardId, Board>,
}

impl BoardCache {
    /// The board `id`, from the cache or the store (`None`: no such board).
    pub async fn get(&self, repo: &dyn Repo, id: BoardId) -> Result<Option<Board>, StoreError> {
        if let Some(b) = self.boards.get(&id) {
            return Ok(Some(b));
        }
        let board = repo.board(id).await?;
        if let Some(b) = &board {
            self.boards.put(id, b.clone());
        }
        Ok(board)
    }

    /// Drops board `id`: its settings changed here.
    pub fn forget(&self, id: BoardId) {
        self.boards.forget(&id);
    }
}

/// The thread of each post a reply quoted lately, kept for a second: in a
/// busy thread whose replies all quote one post of another thread, that
/// post is looked up in the store once a second instead of once a reply.
/// A post never changes thread; one deleted meanwhile is still linked (to
/// its thread, where it is gone) by replies checked within that second, as
/// by a reply checked while the deletion commits.
#[derive(Clone, Default)]
pub struct PostHomes {
    homes: Recent<PostId, ThreadId>,
}

impl PostHomes {
    /// The thread of `post`, if looked up within the last second.
    pub fn get(&self, post: PostId) -> Option<ThreadId> {
        self.homes.get(&post)
    }

    /// Forgets `post`: it was deleted here.
    pub fn forget(&self, post: PostId) {
        self.homes.forget(&post);
    }

    /// Remembers where each of `found` lives.
    pub fn remember(&self, found: &HashMap<PostId, ThreadId>) {
        for (post, thread) in found {
            self.homes.put(*post, *thread);
        }
    }
}

/// How long a cached entry is used.
const RECENT_TTL: Duration = Duration::from_secs(1);

/// Entries beyond this make the next insert drop the expired ones (and,
/// if all are fresh, everything): the cache cannot grow without bound when
/// a script quotes a million posts in a second.
const RECENT_MAX: usize = 65_536;

/// Values read from the store lately, each used for [`RECENT_TTL`].
#[derive(Clone)]
struct Recent<K, V> {
    map: Arc<RwLock<HashMap<K, (V, Instant)>>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Recent {
            map: Arc::default(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Recent<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        let map = self.map.read().ok()?;
        let (value, at) = map.get(key)?;
        (at.elapsed() < RECENT_TTL).then(|| value.clone())
    }

    fn put(&self, key: K, value: V) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= RECENT_MAX {
                map.retain(|_, (_, at)| at.elapsed() < RECENT_TTL);
                if map.len() >= RECENT_MAX {
                    map.clear();
                }
            }
            map.insert(key, (value, Instant::now()));
        }
    }

    fn forget(&self, key: &K) {
        if let Ok(mut map) = self.map.write() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_entries_expire_and_stay_bounded() {
        let recent: Recent<u32, u32> = Recent::default();
        recent.put(1, 10);
        assert_eq!(recent.get(&1), Some(10));
        recent.forget(&1);
        assert_eq!(recent.get(&1), None);
        for k in 0..(RECENT_MAX as u32 + 10) {
            recent.put(k, k);
        }
        assert!(recent.map.read().unwrap().len() <= RECENT_MAX);
        assert_eq!(
            recent.get(&(RECENT_MAX as u32 + 9)),
            Some(RECENT_MAX as u32 + 9)
        );
        recent
            .map
            .write()
            .unwrap()
            .get_mut(&(RECENT_MAX as u32 + 9))
            .unwrap()
            .1 -= RECENT_TTL;
        assert_eq!(recent.get(&(RECENT_MAX as u32 + 9)), None, "expired");
    }
}
