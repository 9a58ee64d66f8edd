//! The batched writes: a new thread, a reply, archiving a thread, a
//! moderation change.
//!
//! Each runs on the writer's connection inside its own savepoint (see
//! `writer`), so it may fail with its own error without disturbing the rest
//! of the batch. Order inside a write matters:
//! 1. the idempotency key first — a retried write returns what was stored,
//!    even if the thread has been archived since or the fence has moved on;
//! 2. the fence, then the thread row (which also locks it on PostgreSQL, so
//!    an archive from another node cannot slip in between check and insert);
//! 3. the rows themselves. The key's UNIQUE constraint is the last line of
//!    defence when two nodes race on PostgreSQL: the loser sees a conflict and
//!    the writer replays it (see `replay_after_conflict`).

use sqlx::{AnyConnection, Row};

use super::{db_err, read, Backend};
use crate::error::StoreError;
use crate::model::*;

/// One write request for the group-commit writer.
pub(super) enum Write {
    Thread(NewThread),
    Post(NewPost),
    Archive(ThreadId, Option<Fence>),
    Moderate(Moderation),
}

/// What a [`Write`] produced; the variant matches the request's.
pub(super) enum Written {
    Thread(Committed<(Thread, Post)>),
    Post(Committed<Post>),
    Archived(Archived),
    Deleted(Deleted),
    /// A barrier's answer: the writes queued before it are done.
    Settled,
}

impl Write {
    /// The id of the entity that makes this write (its thread, or for a new
    /// thread its board): what picks its writer.
    pub(super) fn entity(&self) -> i64 {
        match self {
            Write::Thread(new) => new.board.0,
            Write::Post(new) => new.thread.0,
            Write::Archive(id, _) => id.0,
            Write::Moderate(m) => match &m.change {
                Change::DeleteThread(t)
                | Change::Flags { thread: t, .. }
                | Change::Move { thread: t, .. } => t.0,
                // A post's thread is not in the change: any writer will do,
                // the thread's actor waits for each of its writes anyway.
                Change::DeletePost(p)
                | Change::DeleteFile(p)
                | Change::Spoiler { post: p, .. }
                | Change::BodyHtml { post: p, .. } => p.0,
            },
        }
    }

    /// Runs the write on `conn` (inside the caller's savepoint).
    pub(super) async fn apply(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<Written, StoreError> {
        match self {
            Write::Thread(new) => create_thread(conn, backend, new).await.map(Written::Thread),
            Write::Post(new) => create_post(conn, backend, new).await.map(Written::Post),
            Write::Archive(id, fence) => {
                check_fence(conn, backend, *fence).await?;
                archive_thread(conn, *id).await.map(Written::Archived)
            }
            Write::Moderate(m) => {
                check_fence(conn, backend, m.fence).await?;
                let deleted = super::moderation::apply(conn, &m.change).await?;
                if let Some(entry) = &m.log {
                    super::moderation::insert_log(conn, entry).await?;
                }
                Ok(Written::Deleted(deleted))
            }
        }
    }

    /// After a unique violation rolled this write back, whether the post was
    /// written meanwhile under the same key (by another node, on PostgreSQL):
    /// then it is a replay, not a conflict.
    pub(super) async fn replay_after_conflict(
        &self,
        conn: &mut AnyConnection,
    ) -> Result<Option<Written>, StoreError> {
        match self {
            Write::Thread(new) => Ok(replay_thread(conn, &new.op.idempotency_key)
                .await?
                .map(|t| Written::Thread(Committed::Replayed(t)))),
            Write::Post(new) => Ok(read::post_by_key(conn, &new.idempotency_key)
                .await?
                .map(|p| Written::Post(Committed::Replayed(p)))),
            Write::Archive(..) | Write::Moderate(_) => Ok(None),
        }
    }
}

/// The thread and opening post stored under an idempotency key.
pub(super) async fn replay_thread(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<(Thread, Post)>, StoreError> {
    let Some(post) = read::post_by_key(conn, key).await? else {
        return Ok(None);
    };
    let Some(thread) = read::thread_row(conn, post.thread).await? else {
        return Err(StoreError::NotFound(format!("thread {}", post.thread)));
    };
    Ok(Some((thread, post)))
}

/// Refuses the write unless the shard lease still carries the fence's epoch.
/// On PostgreSQL the row is share-locked until commit, so a takeover (which
/// updates the row) waits for this transaction instead of racing it.
/// Answers the lease the write holds, for [`record_commit`].
pub(super) async fn check_fence(
    conn: &mut AnyConnection,
    backend: Backend,
    fence: Option<Fence>,
) -> Result<Option<Held>, StoreError> {
    let Some(fence) = fence else { return Ok(None) };
    let sql = match backend {
        Backend::Sqlite => "SELECT epoch, node FROM shard_lease WHERE shard = $1",
        Backend::Postgres => "SELECT epoch, node FROM shard_lease WHERE shard = $1 FOR SHARE",
    };
    let row: Option<(i64, String)> = sqlx::query_as(sql)
        .bind(fence.shard)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    match row {
        Some((epoch, node)) if epoch == fence.epoch => Ok(Some(Held { fence, node })),
        _ => Err(StoreError::Fenced {
            shard: fence.shard,
            epoch: fence.epoch,
        }),
    }
}

/// The shard lease a fenced write committed under.
pub(super) struct Held {
    pub(super) fence: Fence,
    pub(super) node: String,
}

/// Records who committed `post` (see `migrations/*/0004_commits.sql`), in
/// the same transaction as the post.
async fn record_commit(
    conn: &mut AnyConnection,
    post: i64,
    held: &Option<Held>,
) -> Result<(), StoreError> {
    let Some(h) = held else { return Ok(()) };
    sqlx::query("INSERT INTO post_commit (post, shard, epoch, node) VALUES ($1, $2, $3, $4)")
        .bind(post)
        .bind(h.fence.shard)
        .bind(h.fence.epoch)
        .bind(&h.node)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Finds or creates the poster for (thread, ip); returns its id and the
/// stored hex (the first post of that address in the thread fixed it).
pub(super) async fn upsert_poster(
    conn: &mut AnyConnection,
    thread: ThreadId,
    hex: &str,
    ip: &str,
) -> Result<(i64, String), StoreError> {
    // `DO UPDATE` to itself rather than `DO NOTHING`: only then does RETURNING
    // yield the existing row, saving a second query.
    let row = sqlx::query(
        "INSERT INTO poster (thread, hex_string, ip) VALUES ($1, $2, $3) \
         ON CONFLICT (thread, ip) DO UPDATE SET hex_string = poster.hex_string \
         RETURNING id, hex_string",
    )
    .bind(thread.0)
    .bind(hex)
    .bind(ip)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let id: i64 = row.try_get("id").map_err(db_err)?;
    let hex: String = row.try_get("hex_string").map_err(db_err)?;
    Ok((id, hex))
}

pub(super) async fn insert_media(
    conn: &mut AnyConnection,
    m: &NewMedia,
) -> Result<Media, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO media (blob, thumb_blob, mimetype, ext, is_animated, width, height, \
         thumb_width, thumb_height, size_bytes, thumb_mimetype, duration_ms, frames, md5, \
         file_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
    )
    .bind(&m.blob)
    .bind(&m.thumb_blob)
    .bind(&m.mimetype)
    .bind(&m.ext)
    .bind(m.is_animated)
    .bind(m.width)
    .bind(m.height)
    .bind(m.thumb_width)
    .bind(m.thumb_height)
    .bind(m.size_bytes)
    .bind(&m.thumb_mimetype)
    .bind(m.duration_ms)
    .bind(m.frames)
    .bind(&m.md5)
    .bind(&m.file_name)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(Media {
        id: MediaId(id),
        blob: m.blob.clone(),
        thumb_blob: m.thumb_blob.clone(),
        mimetype: m.mimetype.clone(),
        ext: m.ext.clone(),
        is_animated: m.is_animated,
        width: m.width,
        height: m.height,
        thumb_width: m.thumb_width,
        thumb_height: m.thumb_height,
        size_bytes: m.size_bytes,
        thumb_mimetype: m.thumb_mimetype.clone(),
        duration_ms: m.duration_ms,
        frames: m.frames,
        md5: m.md5.clone(),
        file_name: m.file_name.clone(),
    })
}

/// Inserts the post row, its media and its reply links; the thread row must
/// already be checked.
async fn insert_post(
    conn: &mut AnyConnection,
    thread: ThreadId,
    subject: Option<&str>,
    new: &NewPost,
) -> Result<Post, StoreError> {
    let hex = poster_of(conn, thread, new).await?;
    let (poster, hex) = upsert_poster(conn, thread, &hex, &new.ip).await?;
    let media = match &new.media {
        Some(m) => Some(insert_media(conn, m).await?),
        None => None,
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO post (thread, body, body_html, subject, datetime, poster, media, \
         spoiler, sage, ip, idempotency_key, slip, name, capcode) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
    )
    .bind(thread.0)
    .bind(&new.body)
    .bind(&new.body_html)
    .bind(subject)
    .bind(new.now)
    .bind(poster)
    .bind(media.as_ref().map(|m| m.id.0))
    .bind(new.spoiler)
    .bind(new.sage)
    .bind(&new.ip)
    .bind(&new.idempotency_key)
    .bind(new.author.slip)
    .bind(new.author.name.as_deref())
    .bind(new.author.capcode.as_deref())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    link_quotes(conn, id, &new.quotes).await?;
    Ok(stored_post(id, thread, subject, new, hex, media))
}

/// Records post `id`'s quotes of the posts that exist.
pub(super) async fn link_quotes(
    conn: &mut AnyConnection,
    id: i64,
    quotes: &[PostId],
) -> Result<(), StoreError> {
    for to in quoted(quotes, id) {
        // A quote of a post that does not exist is kept in the markup (it
        // renders as dead) but links nothing. `WHERE` before `ON CONFLICT`
        // is what lets SQLite parse an upsert on INSERT … SELECT.
        sqlx::query(
            "INSERT INTO reply (reply_from, reply_to) SELECT $1, id FROM post WHERE id = $2 \
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(to)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// The posts a post stored as `id` links to: each once, never itself.
pub(super) fn quoted(quotes: &[PostId], id: i64) -> Vec<i64> {
    let mut quoted: Vec<i64> = quotes.iter().map(|q| q.0).filter(|&q| q != id).collect();
    quoted.sort_unstable();
    quoted.dedup();
    quoted
}

/// The post as stored from `new`, with the row's id, poster hex and media.
pub(super) fn stored_post(
    id: i64,
    thread: ThreadId,
    subject: Option<&str>,
    new: &NewPost,
    hex: String,
    media: Option<Media>,
) -> Post {
    Post {
        id: PostId(id),
        thread,
        body: new.body.clone(),
        body_html: new.body_html.clone(),
        subject: subject.map(str::to_string),
        datetime: new.now,
        poster: hex,
        media,
        spoiler: new.spoiler,
        file_deleted: false,
        sage: new.sage,
        replies: Vec::new(),
        slip_name: new.author.name.clone(),
        capcode: new.author.capcode.clone(),
    }
}

/// Tag names as stored: trimmed, without empties or repeats, sorted (the
/// order a later read returns them in).
fn normalize_tags(tags: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = tags
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The poster id to store for `new` in `thread`: the caller's, or, when it
/// leaves it empty, derived with [`poster_hex`] from the poster secret. An
/// opening post needs that: its thread id, which keys the id, exists only
/// inside this transaction.
pub(super) async fn poster_of(
    conn: &mut AnyConnection,
    thread: ThreadId,
    new: &NewPost,
) -> Result<String, StoreError> {
    if !new.poster.is_empty() {
        return Ok(new.poster.clone());
    }
    let secret = super::admin::poster_secret(conn).await?;
    Ok(poster_hex(&secret, thread, &new.ip))
}

async fn create_thread(
    conn: &mut AnyConnection,
    backend: Backend,
    new: &NewThread,
) -> Result<Committed<(Thread, Post)>, StoreError> {
    if let Some(stored) = replay_thread(conn, &new.op.idempotency_key).await? {
        return Ok(Committed::Replayed(stored));
    }
    let held = check_fence(conn, backend, new.op.fence).await?;
    let board: Option<i64> = sqlx::query_scalar("SELECT id FROM board WHERE id = $1")
        .bind(new.board.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if board.is_none() {
        return Err(StoreError::NotFound(format!("board {}", new.board)));
    }
    let now = new.op.now;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO thread (board, subject, created, last_updated, archived, views) \
         VALUES ($1, $2, $3, $3, $4, 0) RETURNING id",
    )
    .bind(new.board.0)
    .bind(new.subject.as_deref())
    .bind(now)
    .bind(false)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let thread_id = ThreadId(id);
    let tags = normalize_tags(&new.tags);
    for tag in &tags {
        tag_thread(conn, thread_id, tag, None, None).await?;
    }
    let post = insert_post(conn, thread_id, new.subject.as_deref(), &new.op).await?;
    record_commit(conn, post.id.0, &held).await?;
    let thread = Thread {
        id: thread_id,
        board: new.board,
        subject: new.subject.clone(),
        tags,
        created: now,
        last_updated: now,
        archived: false,
        views: 0,
        sticky: false,
        locked: false,
    };
    Ok(Committed::Created((thread, post)))
}

/// Tags thread `thread` with `name`, creating the tag (with its styles)
/// if it is new; a tag that exists keeps its styles.
pub(super) async fn tag_thread(
    conn: &mut AnyConnection,
    thread: ThreadId,
    name: &str,
    bg_style: Option<&str>,
    text_style: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tag (name, bg_style, text_style) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(bg_style)
    .bind(text_style)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO thread_tag (thread, tag) SELECT $1, id FROM tag WHERE name = $2 \
         ON CONFLICT DO NOTHING",
    )
    .bind(thread.0)
    .bind(name)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// A retry (the idempotency key stored already) is not looked up first: the
/// post's insert hits the key's unique index, the savepoint rolls the bump
/// back, and the writer answers with the stored post (`recover`). Retries
/// are rare; a lookup before every reply is one more statement per post.
async fn create_post(
    conn: &mut AnyConnection,
    backend: Backend,
    new: &NewPost,
) -> Result<Committed<Post>, StoreError> {
    let held = check_fence(conn, backend, new.fence).await?;
    bump_thread(conn, new.thread, new.bump, new.now).await?;
    let post = insert_post(conn, new.thread, None, new).await?;
    record_commit(conn, post.id.0, &held).await?;
    Ok(Committed::Created(post))
}

/// Checks that `thread` exists and takes replies, and bumps it to `now`
/// if `bump`. One statement, which (on PostgreSQL) also locks the row
/// until commit. A bump never moves `last_updated` backwards, so a node
/// with a slow clock cannot sink a thread. If the thread turns out
/// archived, the caller's rollback undoes the bump.
async fn bump_thread(
    conn: &mut AnyConnection,
    thread: ThreadId,
    bump: bool,
    now: i64,
) -> Result<(), StoreError> {
    let archived = sqlx::query(
        "UPDATE thread SET last_updated = CASE WHEN $1 AND $2 > last_updated \
         THEN $2 ELSE last_updated END WHERE id = $3 RETURNING archived",
    )
    .bind(bump)
    .bind(now)
    .bind(thread.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some(row) = archived else {
        return Err(StoreError::NotFound(format!("thread {thread}")));
    };
    if read::flag(&row, "archived").map_err(db_err)? {
        return Err(StoreError::Conflict(format!("thread {thread} is archived")));
    }
    Ok(())
}

async fn archive_thread(conn: &mut AnyConnection, id: ThreadId) -> Result<Archived, StoreError> {
    let found: Option<i64> =
        sqlx::query_scalar("UPDATE thread SET archived = $1 WHERE id = $2 RETURNING id")
            .bind(true)
            .bind(id.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    if found.is_none() {
        return Err(StoreError::NotFound(format!("thread {id}")));
    }
    let rows = sqlx::query(
        "SELECT m.id AS id, m.blob AS blob, m.thumb_blob AS thumb_blob \
         FROM post p JOIN media m ON m.id = p.media WHERE p.thread = $1",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    if rows.is_empty() {
        return Ok(Archived::default());
    }
    let mut media_ids = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len() * 2);
    for row in &rows {
        media_ids.push(row.try_get::<i64, _>("id").map_err(db_err)?);
        keys.push(row.try_get::<String, _>("blob").map_err(db_err)?);
        keys.push(row.try_get::<String, _>("thumb_blob").map_err(db_err)?);
    }
    sqlx::query("UPDATE post SET media = NULL WHERE thread = $1 AND media IS NOT NULL")
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    for media in media_ids {
        sqlx::query("DELETE FROM media WHERE id = $1")
            .bind(media)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    keys.sort();
    keys.dedup();
    let mut orphaned = Vec::new();
    for key in keys {
        // The same bytes may back media in other threads (content addressing
        // deduplicates uploads); those blobs stay.
        let used: Option<i64> =
            sqlx::query_scalar("SELECT id FROM media WHERE blob = $1 OR thumb_blob = $1 LIMIT 1")
                .bind(&key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
        if used.is_none() {
            orphaned.push(key);
        }
    }
    Ok(Archived {
        orphaned_blobs: orphaned,
    })
}
