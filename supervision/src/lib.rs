//! wani-supervision: the machinery that decides where entities live and how
//! their failures are handled.
//!
//! - [`placement`]: entity key → shard → owning node, by rendezvous hashing.
//!   Every node computes the same owner from the same view, and a view change
//!   moves only the shards whose owner left or whose new owner arrived.
//! - [`cluster`]: the runtime: ractor_cluster's node server and the
//!   membership actor exchanging heartbeats with every peer.
//! - [`membership`]: who is up, suspect, down or leaving, decided from
//!   heartbeats by a state machine (a paused process is noticed, not only a
//!   closed socket); placement, quorum and liveness are its methods, so the
//!   running node asks the very rules its golden scripts test
//!   (`src/membership/testscripts/`).
//! - [`lease`]: who may take a shard's lease from its holder, decided from
//!   that view (golden scripts in `src/lease/testscripts/`).
//! - [`wire`]: the versioned bincode envelope that crosses nodes; decoding
//!   a broken frame yields an error, never a panic.
//! - [`tls`]: optional mutual TLS between nodes, from PEM files.
//! - [`restart`]: when a crashed entity may be started again (a budget of
//!   restarts in a window, with backoff), as a plain struct tested without tokio.
//!
//! On a single node every shard is local and placement is the identity; the
//! cluster issue adds membership, failure detection, leases and fencing on
//! top of these rules. Nothing here does I/O.

pub mod cluster;
pub mod host;
pub mod lease;
pub mod membership;
pub mod placement;
pub mod restart;
pub mod tls;
pub mod transport;
pub mod tree;
pub mod wire;

#[cfg(test)]
mod script;

pub use membership::{DetectorConfig, Input, Member, MemberState, Membership, Role, ViewChange};
pub use placement::{owner_of, shard_of, EntityKey, NodeName, ShardId, ShardMap, DEFAULT_SHARDS};
pub use restart::{RestartDecision, RestartPolicy};
