//! The node's supervision tree.

mod slot;

pub use slot::Slot;
