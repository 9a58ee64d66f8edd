//! wani-actors: the imageboard as actors, and its rules.
//!
//! ```text
//! Region                      (region.rs)  activates entities on demand, concurrently;
//! │                                        routes calls to whichever node owns one
//! ├── BoardActor(board)       (board.rs)   thread list in bump order, pruning, catalog
//! └── ThreadActor(thread)     (thread.rs)  posts, bump, replies, moderation, cached views
//! RendererPool                (renderer.rs)    factory: markup → HTML, cached by content hash
//! ThumbnailerPool             (thumbnailer.rs) factory: blob key → checked media + thumbnail
//! LiveHub                     (live/)          fan-out to live subscribers; relay between nodes
//! └── LiveSubscriber(client)
//! Handover                    (handover.rs)    view changes and lost leases: stop, release
//! ```
//!
//! The node starts these under its supervision tree (see `wani-node`). Each
//! actor's file holds its one message enum, serialisable, with typed
//! [`Reply`](wani_supervision::transport::Reply) ports: any variant but
//! the local timers can be sent from any node, through the transport of
//! `wani-supervision`, and a new command is a variant and its match arm.
//! Entities are reached with [`Entities::ask`] and [`Entities::tell`],
//! which route by placement; a thread reports to its board through the
//! [`catalog`] sink, so the two kinds do not name each other both ways.
//!
//! This crate knows neither SQL nor HTTP: it reaches storage through
//! [`wani_store::Repo`] and [`wani_store::blob::BlobStore`], and leaves the
//! shape of pages and JSON to a [`views::ViewRenderer`] the node supplies.
//! The rules (post limits, bumping, pruning) are plain functions in
//! [`rules`]; the markup in [`markup`]; upload checks and thumbnails are
//! the `wani-media` crate's, which the thumbnailer pool runs.

pub mod board;
pub mod catalog;
pub mod context;
pub mod error;
pub mod handover;
pub mod lease;
pub mod live;
pub mod markup;
pub mod names;
pub mod pool;
pub mod region;
pub mod renderer;
pub mod rules;
pub mod thread;
pub mod thumbnailer;
pub mod views;

pub use board::{BoardActor, BoardMsg};
pub use context::{EntityConfig, Shared};
pub use error::ActorError;
pub use region::{Entities, Entity, EntityMsg};
pub use renderer::Renderer;
pub use thread::{PostDraft, ThreadActor, ThreadMsg};
pub use thumbnailer::{ThumbError, Thumbnailer};
pub use views::{CachedView, CatalogView, Rendered, ThreadView, ViewRenderer};
