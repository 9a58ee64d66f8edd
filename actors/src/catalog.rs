//! What a thread tells its board's catalog after a write.
//!
//! Threads report upward; the board listens. The message is defined here,
//! below both, and reaches the board through a [`CatalogSink`] the node
//! wires to the board kind, so a thread never names the board actor (and
//! the board actor, which creates and archives threads, may name them).

use std::sync::Arc;
use wani_store::{BoardId, ThreadId, ThreadSummary};

/// A change of one thread, as its board's catalog needs it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum CatalogChange {
    /// The thread changed (a reply, a bump, a flag): its new summary.
    Changed(Box<ThreadSummary>),
    /// The thread was moved onto this board.
    Added(Box<ThreadSummary>),
    /// The thread left this board: deleted, or moved away.
    Removed(ThreadId),
}

/// Delivers a [`CatalogChange`] to board `BoardId`, wherever it lives, in
/// the order the thread sent them; never waits.
pub type CatalogSink = Arc<dyn Fn(BoardId, CatalogChange) + Send + Sync>;
