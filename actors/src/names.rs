//! Names of entities in logs and errors, from one place.
//!
//! No actor of a node is registered in ractor's global registry: several
//! nodes may share one process (tests, benchmarks), and during passivation
//! an old activation may still be stopping while the next one starts. The
//! region's map, not the registry, says which actor is current.

use wani_store::{BoardId, ThreadId};

/// `"thread:42"`.
pub fn thread(id: ThreadId) -> String {
    format!("thread:{id}")
}
/// `"board:3"`.
pub fn board(id: BoardId) -> String {
    format!("board:{id}")
}
