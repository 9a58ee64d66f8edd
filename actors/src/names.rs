//! Names of entity kinds and entities, from one place.
//!
//! No actor of a node is registered in ractor's global registry: several
//! nodes may share one process (tests, benchmarks), and during passivation
//! an old activation may still be stopping while the next one starts. The
//! region's map, not the registry, says which actor is current. A kind's
//! name is what its messages carry on the wire and what its entities'
//! shards are hashed from (`thread:42`), so it never changes.

use wani_store::{BoardId, ThreadId};
use wani_supervision::EntityKey;

/// The kind of thread actors.
pub const THREAD: &str = "thread";
/// The kind of board actors.
pub const BOARD: &str = "board";

/// The key of thread `id` (displayed `thread:42`).
pub fn thread(id: ThreadId) -> EntityKey {
    EntityKey::new(THREAD, id.0)
}

/// The key of board `id` (displayed `board:3`).
pub fn board(id: BoardId) -> EntityKey {
    EntityKey::new(BOARD, id.0)
}
