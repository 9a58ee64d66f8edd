//! [`Store`]: the database behind [`Repo`], on SQLite or PostgreSQL.
//!
//! One set of SQL text serves both backends through sqlx's `Any` driver;
//! where the dialects differ (how to begin a transaction, `FOR SHARE`), the
//! text is chosen by [`Backend`] at the call site. The schema lives in
//! `migrations/{sqlite,postgres}` and is applied by [`Store::migrate`].
//!
//! Shape:
//! - `read`: queries that load records (a constant number per call, never
//!   one per post) and the row-to-record mapping.
//! - `write`: the three batched writes (thread, post, archive), each run
//!   inside a savepoint of the writer's transaction.
//! - `writer`: the group-commit task that owns every batched write.
//! - `admin`: boards, the poster secret and shard leases — rare single-row
//!   writes that go straight to the pool as one autocommit statement each.
//! - `accounts`: slips and sessions (autocommit statements).
//! - `moderation`: deleting posts and threads (batched writes of the
//!   writer), thread flags, moves, spoilers, bans, the mod log, reports.
//! - `dberr`: sqlx errors mapped to [`StoreError`].
//!
//! Booleans: SQLite stores them as INTEGER 0/1 and PostgreSQL as BOOLEAN;
//! queries bind Rust `bool` (both drivers accept it) and `read::flag` reads
//! either form.
//!
//! Not handled here: caching, input validation beyond the schema, board
//! and slip names, who may delete what (the node checks roles).

mod accounts;
pub(crate) mod admin;
mod bulk;
mod dberr;
pub mod import;
mod moderation;
mod read;
mod write;
mod writer;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::error::StoreError;
use crate::model::*;
use crate::{Landing, Repo};

pub(crate) use dberr::db_err;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite statement waits for another connection's write lock
/// before failing with `Unavailable`. A group commit holds it for a few
/// milliseconds, so this is only reached when something is badly stuck.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

/// Which database a [`Store`] talks to, chosen from the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One file, one node: `sqlite://path/to/wani.db`.
    Sqlite,
    /// Shared by every node: `postgres://user@host:port/db`.
    Postgres,
}

impl Backend {
    /// The backend a database URL names, or `Invalid` for any other scheme.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Invalid(format!(
                "database URL must start with sqlite:// or postgres://, got {:?}",
                url.split(':').next().unwrap_or_default()
            )))
        }
    }

    /// The statement that opens the group-commit transaction. SQLite takes
    /// the write lock up front (`IMMEDIATE`) so the batch never fails halfway
    /// on a lock upgrade; readers in WAL mode are not blocked by it.
    fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// The statement that opens a multi-query read: one snapshot, so a thread
    /// and its reply links are read as of the same moment.
    fn begin_read(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

/// How to reach the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// `sqlite://path` (the file and its directory are created if missing)
    /// or `postgres://user@host:port/db`.
    pub url: String,
    /// Connections in the read pool. Each group-commit writer has one more
    /// of its own, so writes never queue behind reads for a connection.
    pub max_connections: u32,
    /// Group-commit writers: 1 on SQLite (it has one write lock whatever we
    /// do); on PostgreSQL several commit side by side (0: the default, 4).
    pub writers: usize,
}

impl StoreOptions {
    /// Options for `url` with a pool size that suits a small node.
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            max_connections: 8,
            writers: 0,
        }
    }
}

/// The database: a read pool plus the group-commit writers. Cheap to
/// clone; every clone shares the same pools and writers.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    pool: AnyPool,
    /// A write goes to the writer its entity's id picks, so one thread's (or
    /// board's) writes always commit on one connection, in order, and two
    /// batches never lock one thread row against each other.
    writers: Vec<writer::Writer>,
}

/// Writers on PostgreSQL when the options leave it open.
const PG_WRITERS: usize = 4;

impl Store {
    /// Connects to the database named by `opts.url`. Does not migrate: call
    /// [`Store::migrate`] once before use.
    pub async fn connect(opts: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&opts.url)?;
        if backend == Backend::Sqlite {
            create_sqlite_file(&opts.url)?;
        }
        let connect: AnyConnectOptions = opts
            .url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("database URL: {e}")))?;
        let pool = pool_options(backend, opts.max_connections.max(1))
            .connect_with(connect.clone())
            .await
            .map_err(db_err)?;
        let count = match (backend, opts.writers) {
            (Backend::Sqlite, _) => 1,
            (Backend::Postgres, 0) => PG_WRITERS,
            (Backend::Postgres, n) => n,
        };
        let mut writers = Vec::with_capacity(count);
        for _ in 0..count {
            // A pool of one is the writer's own connection: reconnected by
            // the pool if it breaks, never shared with readers.
            let writer_pool = pool_options(backend, 1)
                .connect_with(connect.clone())
                .await
                .map_err(db_err)?;
            writers.push(writer::Writer::spawn(backend, writer_pool));
        }
        Ok(Store {
            inner: Arc::new(Inner {
                backend,
                pool,
                writers,
            }),
        })
    }

    /// Applies the embedded migrations for this backend; safe to call on every
    /// start (applied ones are skipped, concurrent callers on PostgreSQL take
    /// an advisory lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.inner.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.inner.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Refreshes the query planner's statistics (`ANALYZE`): after a bulk
    /// load (an import, a benchmark's seeding) the planner otherwise plans
    /// for the empty tables it last saw, until autovacuum catches up.
    pub async fn analyze(&self) -> Result<(), StoreError> {
        sqlx::query("ANALYZE")
            .execute(&self.inner.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Runs the cheapest query there is (`SELECT 1`) on the read pool: the
    /// database answers, and a connection could be had.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Finishes the writes already queued, then closes every connection.
    /// Later calls on any clone fail with `Unavailable`.
    pub async fn close(&self) {
        for w in &self.inner.writers {
            w.close().await;
        }
        self.inner.pool.close().await;
    }

    /// The writer of an entity's writes.
    fn writer(&self, entity: i64) -> &writer::Writer {
        let writers = &self.inner.writers;
        &writers[(entity.unsigned_abs() % writers.len() as u64) as usize]
    }

    /// Queues a write on its entity's writer and waits for its commit.
    async fn submit(&self, write: write::Write) -> Result<write::Written, StoreError> {
        self.enqueue(write).await?.await
    }

    /// Queues a write on its entity's writer; the answer comes after the commit.
    async fn enqueue(&self, write: write::Write) -> Result<writer::Answer, StoreError> {
        self.writer(write.entity()).enqueue(write).await
    }

    /// The read pool, for the database blob store and the admin queries.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// A read-only transaction over one snapshot, for reads of several queries.
    async fn read_tx(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.inner
            .pool
            .begin_with(self.inner.backend.begin_read())
            .await
            .map_err(db_err)
    }

    /// One post with its media and the posts quoting it.
    pub async fn post(&self, id: PostId) -> Result<Option<Post>, StoreError> {
        let mut tx = self.read_tx().await?;
        let post = read::post_by_id(&mut tx, id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(post)
    }

    /// The post stored under an idempotency key, if any: what a retried
    /// post refused before reaching its entity still answers with.
    pub async fn post_by_key(&self, key: &str) -> Result<Option<Post>, StoreError> {
        let mut tx = self.read_tx().await?;
        let post = read::post_by_key(&mut tx, key).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(post)
    }

    /// The thread and opening post stored under an idempotency key, if any.
    pub async fn thread_by_key(&self, key: &str) -> Result<Option<(Thread, Post)>, StoreError> {
        let mut tx = self.read_tx().await?;
        let found = write::replay_thread(&mut tx, key).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(found)
    }

    /// One media row.
    pub async fn media(&self, id: MediaId) -> Result<Option<Media>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        read::media(&mut conn, id).await
    }

    /// The opening post ids of up to `limit` archived threads of a board,
    /// most recently bumped first (4chan's thread numbers).
    pub async fn archived_op_ids(
        &self,
        board: BoardId,
        limit: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        sqlx::query_scalar(
            "SELECT MIN(p.id) FROM post p JOIN thread t ON t.id = p.thread \
             WHERE t.board = $1 AND t.archived = $2 \
             GROUP BY t.id, t.last_updated ORDER BY t.last_updated DESC, t.id DESC LIMIT $3",
        )
        .bind(board.0)
        .bind(true)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)
    }

    /// Up to `limit` archived threads of a board after the first `skip`,
    /// most recently bumped first, and how many the board has archived.
    pub async fn archived_threads(
        &self,
        board: BoardId,
        limit: i64,
        skip: i64,
    ) -> Result<(Vec<Thread>, i64), StoreError> {
        let mut tx = self.read_tx().await?;
        let threads = read::archived_threads(&mut tx, board, limit, skip).await?;
        let total = read::count_archived(&mut tx, board).await?;
        tx.commit().await.map_err(db_err)?;
        Ok((threads, total))
    }

    /// How many posts exist, across every board (archived threads included).
    pub async fn count_posts(&self) -> Result<i64, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        read::count_posts(&mut conn).await
    }

    /// Whether any media row references this blob (as original or
    /// thumbnail). An upload whose post was refused is deleted only when this
    /// is false, since identical content shares one blob.
    pub async fn blob_in_use(&self, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        // COUNT is a BIGINT on both backends, so it decodes as i64 through `Any`.
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM media WHERE blob = $1 OR thumb_blob = $1")
                .bind(key)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
        Ok(n > 0)
    }

    /// Every blob a media row names, once each, with the content type it
    /// is served with (originals, then thumbnails): what a move to another
    /// blob store must copy.
    pub async fn media_blobs(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT blob, MIN(mimetype) FROM media GROUP BY blob \
             UNION ALL SELECT thumb_blob, MIN(thumb_mimetype) FROM media GROUP BY thumb_blob",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let mut seen = std::collections::HashSet::new();
        Ok(rows
            .into_iter()
            .filter(|(k, _)| seen.insert(k.clone()))
            .collect())
    }

    /// The most recent media row whose original is the blob `key`: a
    /// duplicate upload reuses its thumbnail and what was learned about the
    /// file instead of decoding it again.
    pub async fn media_by_blob(&self, key: &str) -> Result<Option<Media>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM media WHERE blob = $1")
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        match id {
            Some(id) => read::media(&mut conn, MediaId(id)).await,
            None => Ok(None),
        }
    }

    /// The first live post on `board` whose file is the blob `key`, with its
    /// thread, for the "no reposts" rule. Archived threads have given up
    /// their media, so only files still shown on the board count.
    pub async fn post_with_blob(
        &self,
        board: BoardId,
        key: &str,
    ) -> Result<Option<(PostId, ThreadId)>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT p.id, p.thread FROM post p JOIN media m ON m.id = p.media \
             JOIN thread t ON t.id = p.thread \
             WHERE m.blob = $1 AND t.board = $2 ORDER BY p.id LIMIT 1",
        )
        .bind(key)
        .bind(board.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
        Ok(row.map(|(p, t)| (PostId(p), ThreadId(t))))
    }
}

#[async_trait]
impl Repo for Store {
    async fn acquire_lease(
        &self,
        shard: i64,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError> {
        Store::acquire_lease(self, shard, holder, now, ttl_ms).await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Vec<Fence>, StoreError> {
        Store::renew_leases(self, holder, now, ttl_ms).await
    }

    async fn take_over_lease(
        &self,
        shard: i64,
        from: &str,
        to: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError> {
        Store::take_over_lease(self, shard, from, to, now, ttl_ms).await
    }

    async fn lease_holder(&self, shard: i64) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT node FROM shard_lease WHERE shard = $1")
            .bind(shard)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(db_err)
    }

    async fn release_lease(&self, shard: i64, holder: &str) -> Result<(), StoreError> {
        Store::release_lease(self, shard, holder).await
    }

    async fn boards(&self) -> Result<Vec<Board>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        read::boards(&mut conn).await
    }

    async fn board(&self, id: BoardId) -> Result<Option<Board>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        read::board_by_id(&mut conn, id).await
    }

    async fn board_threads(&self, board: BoardId) -> Result<Vec<ThreadSummary>, StoreError> {
        let mut tx = self.read_tx().await?;
        let threads = read::board_threads(&mut tx, board).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(threads)
    }

    async fn settle(&self, entity: i64) -> Result<(), StoreError> {
        self.writer(entity).settle().await
    }

    async fn thread(&self, id: ThreadId) -> Result<Option<ThreadFull>, StoreError> {
        let mut tx = self.read_tx().await?;
        let thread = read::thread_full(&mut tx, id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(thread)
    }

    async fn threads_of_posts(
        &self,
        ids: &[PostId],
    ) -> Result<HashMap<PostId, ThreadId>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        read::threads_of_posts(&mut conn, ids).await
    }

    async fn thread_ops(
        &self,
        threads: &[ThreadId],
    ) -> Result<HashMap<ThreadId, PostId>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        read::thread_ops(&mut conn, threads).await
    }

    async fn create_thread(&self, new: NewThread) -> Result<Committed<(Thread, Post)>, StoreError> {
        match self.submit(write::Write::Thread(new)).await? {
            write::Written::Thread(c) => Ok(c),
            _ => Err(writer::wrong_answer()),
        }
    }

    async fn queue_post(&self, new: NewPost) -> Result<Landing<Committed<Post>>, StoreError> {
        let answer = self.enqueue(write::Write::Post(new)).await?;
        Ok(Box::pin(async move {
            match answer.await? {
                write::Written::Post(c) => Ok(c),
                _ => Err(writer::wrong_answer()),
            }
        }))
    }

    async fn archive_thread(
        &self,
        id: ThreadId,
        fence: Option<Fence>,
    ) -> Result<Archived, StoreError> {
        match self.submit(write::Write::Archive(id, fence)).await? {
            write::Written::Archived(a) => Ok(a),
            _ => Err(writer::wrong_answer()),
        }
    }

    async fn poster_secret(&self) -> Result<Vec<u8>, StoreError> {
        let mut conn = self.inner.pool.acquire().await.map_err(db_err)?;
        admin::poster_secret(&mut conn).await
    }

    async fn moderate(&self, m: Moderation) -> Result<Deleted, StoreError> {
        match self.submit(write::Write::Moderate(m)).await? {
            write::Written::Deleted(d) => Ok(d),
            _ => Err(writer::wrong_answer()),
        }
    }
}

/// How long PostgreSQL lets a transaction of ours sit idle before it ends
/// it (and its locks): shorter than the failure detector's 1.6 s, so a
/// frozen owner never holds up the node taking its leases over.
const PG_IDLE_IN_TRANSACTION_MS: u64 = 1500;

/// Pool settings per backend. Per-connection settings (SQLite's pragmas,
/// PostgreSQL's idle timeout) are set on every new connection.
fn pool_options(backend: Backend, max_connections: u32) -> AnyPoolOptions {
    let options = AnyPoolOptions::new().max_connections(max_connections);
    match backend {
        // Half the pool kept open: a failover re-activates hundreds of
        // entities at once, and opening connections then (a round trip,
        // authentication, the session settings) would add to it.
        Backend::Postgres => {
            options
                .min_connections(max_connections / 2)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // A write holds its shard lease row share-locked until it
                        // commits (see `check_fence`). If this process freezes in the
                        // middle (SIGSTOP, a VM pause), the server must end the
                        // transaction, or the lease takeover on another node waits
                        // for the lock until we wake up: failover would last as long
                        // as the pause. A healthy write is never idle that long.
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "SET idle_in_transaction_session_timeout = {PG_IDLE_IN_TRANSACTION_MS}"
                        )))
                        .await?;
                        Ok(())
                    })
                })
        }
        Backend::Sqlite => options.after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; NORMAL syncs at
                // checkpoints rather than every commit, which WAL keeps safe
                // against corruption (a power cut may lose the last commits).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"
                )))
                .await?;
                Ok(())
            })
        }),
    }
}

/// Creates the SQLite file and its directory if missing, so a fresh install
/// needs no setup step. `sqlite::memory:` and friends are left alone.
fn create_sqlite_file(url: &str) -> Result<(), StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || rest.contains("mode=memory") {
        return Ok(());
    }
    let path = Path::new(path);
    let unavailable = |e: std::io::Error| {
        StoreError::Unavailable(format!("creating SQLite file {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(unavailable)?;
    Ok(())
}
