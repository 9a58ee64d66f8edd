//! Live updates: the node's hub, its subscribers, and the relay of writes
//! between nodes.
//!
//! - `hub.rs`: [`LiveHub`] (one per node) and [`LiveSubscriber`] (one per
//!   connected client); fan-out, replay ring, heartbeats.
//! - `relay.rs`: the numbering of live messages between nodes, so a lost
//!   one is noticed (pure state).

mod hub;
mod relay;

pub use hub::*;
