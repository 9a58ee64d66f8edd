//! wani-actors: the imageboard as actors, and its rules.
//!
//! ```text
//! Region                      (region.rs) activates and supervises entities
//! ├── BoardActor(board)       (board.rs)  thread list in bump order, pruning, catalog
//! └── ThreadActor(thread)     (thread.rs) posts, bump, replies, cached views
//! RendererPool                (renderer.rs)    factory: markup → HTML, cached by content hash
//! ThumbnailerPool             (thumbnailer.rs) factory: blob key → checked media + thumbnail
//! ```
//!
//! The node spawns these under its supervisor (see `wani-node`). This crate
//! knows neither SQL nor HTTP: it reaches storage through
//! [`wani_store::Repo`] and [`wani_store::blob::BlobStore`], and leaves the
//! shape of pages and JSON to a [`views::ViewRenderer`] the node supplies.
//! The rules (post limits, bumping, pruning) are plain functions in
//! [`rules`]; the markup in [`markup`]; upload checks and thumbnails are
//! the `wani-media` crate's, which the thumbnailer pool runs.

pub mod board;
pub mod error;
pub mod lease;
pub mod live;
pub mod markup;
pub mod names;
pub mod region;
pub mod remote;
pub mod renderer;
pub mod router;
pub mod rules;
pub mod thread;
pub mod thumbnailer;
pub mod views;

pub use board::{BoardActor, BoardMsg};
pub use error::ActorError;
pub use region::{Entities, EntityConfig, Shared};
pub use renderer::Renderer;
pub use thread::{PostDraft, ThreadActor, ThreadMsg};
pub use thumbnailer::{ThumbError, Thumbnailer};
pub use views::{CachedView, CatalogView, Rendered, ThreadView, ViewRenderer};
