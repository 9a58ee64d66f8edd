//! wani-store: everything wani keeps, behind one API for SQLite and PostgreSQL.
//!
//! - [`Store`] owns the database pool. One set of SQL text serves both
//!   backends through sqlx's `Any` driver (both accept `$1` placeholders and
//!   `RETURNING`); only the migrations differ, one directory per backend.
//! - [`Repo`] is the trait the actors use. They never see SQL: `wani-actors`
//!   depends on this trait and the records in [`model`], nothing else.
//! - [`blob`] is the content-addressed blob store (filesystem or database)
//!   for originals and thumbnails. Media bytes never enter the `post` table
//!   or an actor message; records carry the blob key.
//!
//! Writes go through a single writer task that folds concurrent writes into
//! one transaction ("group commit"): each write is still atomic (its own
//! savepoint) and acknowledged only after the transaction commits, but the
//! commit cost is shared. This is what lets one SQLite file take thousands
//! of posts a second.
//!
//! Not handled here: caching (the actors cache), rendering, validation of
//! user input beyond what the schema enforces (the HTTP layer does it).

pub mod accounts;
pub mod blob;
mod error;
pub mod model;
pub mod s3;
pub mod testing;

pub use accounts::{Ban, ModLogEntry, Report, Session, Slip};
pub use error::StoreError;
pub use model::*;

use async_trait::async_trait;
use std::collections::HashMap;

/// A write queued in the store, answering once its transaction committed.
pub type Landing<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + Sync>>;

/// The storage operations the actors need. Implemented by [`Store`]; the
/// actors hold an `Arc<dyn Repo>`.
#[async_trait]
pub trait Repo: Send + Sync + 'static {
    /// Every board, by id.
    async fn boards(&self) -> Result<Vec<Board>, StoreError>;
    /// One board.
    async fn board(&self, id: BoardId) -> Result<Option<Board>, StoreError>;
    /// The live (non-archived) threads of a board, most recently bumped first.
    async fn board_threads(&self, board: BoardId) -> Result<Vec<ThreadSummary>, StoreError>;
    /// A thread with every post, opening post first; archived threads too.
    async fn thread(&self, id: ThreadId) -> Result<Option<ThreadFull>, StoreError>;
    /// Waits until every write this store queued for `entity` (a thread's
    /// id, or a board's for its new threads) has committed or failed. An
    /// actor that died mid-write leaves its write queued; the activation
    /// that replaces it settles first, so what it loads includes that write
    /// and the posts it then writes come after it.
    async fn settle(&self, entity: i64) -> Result<(), StoreError>;
    /// Which thread holds each of these posts; missing posts are absent.
    async fn threads_of_posts(
        &self,
        ids: &[PostId],
    ) -> Result<HashMap<PostId, ThreadId>, StoreError>;
    /// The opening post of each of these threads; missing threads are absent.
    async fn thread_ops(
        &self,
        threads: &[ThreadId],
    ) -> Result<HashMap<ThreadId, PostId>, StoreError>;
    /// Creates a thread and its opening post in one transaction.
    async fn create_thread(&self, new: NewThread) -> Result<Committed<(Thread, Post)>, StoreError>;
    /// Adds a reply to `new.thread` (and its reply links, and the bump) in one
    /// transaction. Fails with `NotFound` for a missing thread and `Conflict`
    /// for an archived one or a lost fence.
    async fn create_post(&self, new: NewPost) -> Result<Committed<Post>, StoreError> {
        self.queue_post(new).await?.await
    }
    /// Queues the reply [`create_post`](Repo::create_post) writes and returns
    /// once it is queued; what it returns answers after the commit. Replies
    /// one caller queues to the same thread commit in the order queued, so a
    /// thread's actor can queue every reply waiting for it without waiting
    /// for each commit (they share one transaction, each in its own
    /// savepoint: one failing fails alone).
    async fn queue_post(&self, new: NewPost) -> Result<Landing<Committed<Post>>, StoreError>;
    /// Moves a thread to the archive: it stays readable, leaves the catalog,
    /// and its media rows are removed. Returns blobs nothing references now.
    /// With a fence, refused if the writing entity's shard lease moved on.
    async fn archive_thread(
        &self,
        id: ThreadId,
        fence: Option<Fence>,
    ) -> Result<Archived, StoreError>;
    /// The secret that keys poster ids; created once, stable across restarts.
    async fn poster_secret(&self) -> Result<Vec<u8>, StoreError>;
    /// Applies a moderation change, its fence check and its log entry in
    /// one transaction. Deletions return the blobs nothing references any
    /// more (the caller deletes them); other changes return none.
    async fn moderate(&self, m: Moderation) -> Result<Deleted, StoreError>;
    /// Takes or renews the lease on `shard` for `holder` until `now + ttl_ms`
    /// (see [`Store::acquire_lease`]); `None` while another holder's lease runs.
    async fn acquire_lease(
        &self,
        shard: i64,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError>;
    /// Extends every lease `holder` still has; returns them (a lease taken
    /// over by another holder is missing).
    async fn renew_leases(
        &self,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Vec<Fence>, StoreError>;
    /// Takes `shard`'s lease from `from` (a holder the caller knows is dead)
    /// for `to`, bumping the epoch so `from`'s writes are fenced; `None` if
    /// `from` no longer holds it.
    async fn take_over_lease(
        &self,
        shard: i64,
        from: &str,
        to: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError>;
    /// Who holds `shard`'s lease now, if anyone has ever held it.
    async fn lease_holder(&self, shard: i64) -> Result<Option<String>, StoreError>;
    /// Gives up `holder`'s lease on `shard` at once.
    async fn release_lease(&self, shard: i64, holder: &str) -> Result<(), StoreError>;
}

mod store;
pub use store::admin::check_board_name;
pub use store::import::{import_key, ImportPost, ImportTag, ImportThread};
pub use store::{Backend, Store, StoreOptions};
