//! Live updates: the node's hub, its subscribers, and the relay of writes
//! between nodes.
//!
//! - `hub.rs`: [`LiveHub`] (one per node) and [`LiveSubscriber`] (one per
//!   connected client); fan-out, replay ring, heartbeats.
//! - `relay.rs`: the numbering of live messages between nodes, so a lost
//!   one is noticed (pure state).
//! - `interest.rs`: which threads and boards each node's clients follow, so
//!   a write is relayed only where someone follows it (pure state).

mod hub;
mod interest;
mod relay;

pub use hub::*;
