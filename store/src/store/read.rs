//! Queries that load records, and the mapping from rows to records.
//!
//! Every loader takes a connection (a pool connection, a read snapshot, or
//! the writer's transaction) so the writer can reuse them for idempotent
//! replays. A thread or a catalog costs a constant number of queries: posts
//! come with their media and poster in one join, and reply links for the
//! whole thread in one more query, grouped in memory.

use std::collections::HashMap;

use sqlx::any::{AnyRow, AnyTypeInfoKind};
use sqlx::{AnyConnection, AssertSqlSafe, Row, ValueRef};

use super::db_err;
use crate::error::StoreError;
use crate::model::*;

/// The columns and joins every post query shares, as a literal so `concat!`
/// can build `'static` SQL from it.
macro_rules! post_select {
    () => {
        "SELECT p.id AS id, p.thread AS thread, p.body AS body, p.body_html AS body_html, \
         p.subject AS subject, p.datetime AS datetime, pr.hex_string AS poster, \
         p.spoiler AS spoiler, p.file_deleted AS file_deleted, p.sage AS sage, p.name AS slip_name, p.capcode AS capcode, \
         m.id AS m_id, m.blob AS m_blob, m.thumb_blob AS m_thumb_blob, \
         m.mimetype AS m_mimetype, m.ext AS m_ext, m.is_animated AS m_is_animated, \
         m.width AS m_width, m.height AS m_height, m.thumb_width AS m_thumb_width, \
         m.thumb_height AS m_thumb_height, m.size_bytes AS m_size_bytes, \
         m.thumb_mimetype AS m_thumb_mimetype, m.duration_ms AS m_duration_ms, \
         m.frames AS m_frames, m.md5 AS m_md5, m.file_name AS m_file_name \
         FROM post p JOIN poster pr ON pr.id = p.poster LEFT JOIN media m ON m.id = p.media "
    };
}

macro_rules! thread_columns {
    () => {
        "t.id AS id, t.board AS board, t.subject AS subject, t.created AS created, \
         t.last_updated AS last_updated, t.archived AS archived, t.views AS views, \
         t.sticky AS sticky, t.locked AS locked"
    };
}

/// The opening posts of a board's threads (archived or not, per `$2`).
macro_rules! board_ops {
    () => {
        "SELECT MIN(p2.id) FROM post p2 JOIN thread t2 ON t2.id = p2.thread \
         WHERE t2.board = $1 AND t2.archived = $2 GROUP BY p2.thread"
    };
}

macro_rules! board_select {
    () => {
        "SELECT id, name, title, rules, max_threads, bump_limit, mimetypes, max_file_bytes, \
         captcha_threads, captcha_replies, thread_interval_secs, reply_interval_secs, \
         max_pixels, max_duration_secs, max_frames, no_reposts FROM board "
    };
}

/// Reads a boolean stored as BOOLEAN (PostgreSQL) or INTEGER 0/1 (SQLite).
/// Looks at the value's type first rather than trying one decode and
/// falling back: a failed decode allocates an error, per flag, per row.
pub(super) fn flag(row: &AnyRow, col: &str) -> Result<bool, sqlx::Error> {
    if row.try_get_raw(col)?.type_info().kind() == AnyTypeInfoKind::Bool {
        row.try_get(col)
    } else {
        row.try_get::<i64, _>(col).map(|v| v != 0)
    }
}

fn post_from_row(row: &AnyRow) -> Result<Post, sqlx::Error> {
    let media = match row.try_get::<Option<i64>, _>("m_id")? {
        None => None,
        Some(id) => Some(Media {
            id: MediaId(id),
            blob: row.try_get("m_blob")?,
            thumb_blob: row.try_get("m_thumb_blob")?,
            mimetype: row.try_get("m_mimetype")?,
            ext: row.try_get("m_ext")?,
            is_animated: flag(row, "m_is_animated")?,
            width: row.try_get("m_width")?,
            height: row.try_get("m_height")?,
            thumb_width: row.try_get("m_thumb_width")?,
            thumb_height: row.try_get("m_thumb_height")?,
            size_bytes: row.try_get("m_size_bytes")?,
            thumb_mimetype: row.try_get("m_thumb_mimetype")?,
            duration_ms: row.try_get("m_duration_ms")?,
            frames: row.try_get("m_frames")?,
            md5: row.try_get("m_md5")?,
            file_name: row.try_get("m_file_name")?,
        }),
    };
    Ok(Post {
        id: PostId(row.try_get("id")?),
        thread: ThreadId(row.try_get("thread")?),
        body: row.try_get("body")?,
        body_html: row.try_get("body_html")?,
        subject: row.try_get("subject")?,
        datetime: row.try_get("datetime")?,
        poster: row.try_get("poster")?,
        media,
        spoiler: flag(row, "spoiler")?,
        file_deleted: flag(row, "file_deleted")?,
        sage: flag(row, "sage")?,
        replies: Vec::new(),
        slip_name: row.try_get("slip_name")?,
        capcode: row.try_get("capcode")?,
    })
}

fn thread_from_row(row: &AnyRow) -> Result<Thread, sqlx::Error> {
    Ok(Thread {
        id: ThreadId(row.try_get("id")?),
        board: BoardId(row.try_get("board")?),
        subject: row.try_get("subject")?,
        tags: Vec::new(),
        created: row.try_get("created")?,
        last_updated: row.try_get("last_updated")?,
        archived: flag(row, "archived")?,
        views: row.try_get("views")?,
        sticky: flag(row, "sticky")?,
        locked: flag(row, "locked")?,
    })
}

fn board_from_row(row: &AnyRow) -> Result<Board, sqlx::Error> {
    let mimetypes: String = row.try_get("mimetypes")?;
    Ok(Board {
        id: BoardId(row.try_get("id")?),
        name: row.try_get("name")?,
        title: row.try_get("title")?,
        rules: row.try_get("rules")?,
        max_threads: row.try_get("max_threads")?,
        bump_limit: row.try_get("bump_limit")?,
        mimetypes: mimetypes
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
        max_file_bytes: row.try_get("max_file_bytes")?,
        captcha_threads: flag(row, "captcha_threads")?,
        captcha_replies: flag(row, "captcha_replies")?,
        thread_interval_secs: row.try_get("thread_interval_secs")?,
        reply_interval_secs: row.try_get("reply_interval_secs")?,
        max_pixels: row.try_get("max_pixels")?,
        max_duration_secs: row.try_get("max_duration_secs")?,
        max_frames: row.try_get("max_frames")?,
        no_reposts: flag(row, "no_reposts")?,
    })
}

/// Groups `(reply_to, reply_from)` rows, already ordered by `reply_from`,
/// into each quoted post's list of quoting posts.
fn replies_by_target(rows: &[AnyRow]) -> Result<HashMap<i64, Vec<PostId>>, sqlx::Error> {
    let mut map: HashMap<i64, Vec<PostId>> = HashMap::new();
    for row in rows {
        let to: i64 = row.try_get("reply_to")?;
        let from: i64 = row.try_get("reply_from")?;
        map.entry(to).or_default().push(PostId(from));
    }
    Ok(map)
}

/// Every board, by id.
pub(super) async fn boards(conn: &mut AnyConnection) -> Result<Vec<Board>, StoreError> {
    let rows = sqlx::query(concat!(board_select!(), "ORDER BY id"))
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(board_from_row)
        .collect::<Result<_, _>>()
        .map_err(db_err)
}

/// One board by id.
pub(super) async fn board_by_id(
    conn: &mut AnyConnection,
    id: BoardId,
) -> Result<Option<Board>, StoreError> {
    let row = sqlx::query(concat!(board_select!(), "WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(board_from_row).transpose().map_err(db_err)
}

/// One board by its short name.
pub(super) async fn board_by_name(
    conn: &mut AnyConnection,
    name: &str,
) -> Result<Option<Board>, StoreError> {
    let row = sqlx::query(concat!(board_select!(), "WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(board_from_row).transpose().map_err(db_err)
}

/// The tag names of one thread, alphabetically.
async fn tags_of(conn: &mut AnyConnection, thread: ThreadId) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(
        "SELECT g.name AS name FROM thread_tag tt JOIN tag g ON g.id = tt.tag \
         WHERE tt.thread = $1 ORDER BY g.name",
    )
    .bind(thread.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| r.try_get("name"))
        .collect::<Result<_, _>>()
        .map_err(db_err)
}

/// A thread's own row and tags.
pub(super) async fn thread_row(
    conn: &mut AnyConnection,
    id: ThreadId,
) -> Result<Option<Thread>, StoreError> {
    let sql = concat!(
        "SELECT ",
        thread_columns!(),
        " FROM thread t WHERE t.id = $1"
    );
    let row = sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let Some(row) = row else { return Ok(None) };
    let mut thread = thread_from_row(&row).map_err(db_err)?;
    thread.tags = tags_of(conn, id).await?;
    Ok(Some(thread))
}

/// The posts quoting `id`, oldest first.
async fn replies_to(conn: &mut AnyConnection, id: PostId) -> Result<Vec<PostId>, StoreError> {
    let rows = sqlx::query("SELECT reply_from FROM reply WHERE reply_to = $1 ORDER BY reply_from")
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>("reply_from").map(PostId))
        .collect::<Result<_, _>>()
        .map_err(db_err)
}

/// The tag names of a board's live (or archived) threads, by thread id,
/// alphabetically.
async fn tags_of_board(
    conn: &mut AnyConnection,
    board: BoardId,
    archived: bool,
) -> Result<HashMap<i64, Vec<String>>, StoreError> {
    let rows = sqlx::query(
        "SELECT tt.thread AS thread, g.name AS name FROM thread_tag tt \
         JOIN tag g ON g.id = tt.tag JOIN thread t ON t.id = tt.thread \
         WHERE t.board = $1 AND t.archived = $2 ORDER BY g.name",
    )
    .bind(board.0)
    .bind(archived)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for row in &rows {
        let thread: i64 = row.try_get("thread").map_err(db_err)?;
        tags.entry(thread)
            .or_default()
            .push(row.try_get("name").map_err(db_err)?);
    }
    Ok(tags)
}

/// One post, with media and replies.
pub(super) async fn post_by_id(
    conn: &mut AnyConnection,
    id: PostId,
) -> Result<Option<Post>, StoreError> {
    let row = sqlx::query(concat!(post_select!(), "WHERE p.id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    with_replies(conn, row).await
}

/// The post written under an idempotency key, with media and replies.
pub(super) async fn post_by_key(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<Post>, StoreError> {
    let row = sqlx::query(concat!(post_select!(), "WHERE p.idempotency_key = $1"))
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    with_replies(conn, row).await
}

/// The post of a `post_select!` row, with the posts that quote it.
async fn with_replies(
    conn: &mut AnyConnection,
    row: Option<sqlx::any::AnyRow>,
) -> Result<Option<Post>, StoreError> {
    let Some(row) = row else { return Ok(None) };
    let mut post = post_from_row(&row).map_err(db_err)?;
    post.replies = replies_to(conn, post.id).await?;
    Ok(Some(post))
}

/// A thread with every post, opening post first: four queries whatever the
/// thread's length.
pub(super) async fn thread_full(
    conn: &mut AnyConnection,
    id: ThreadId,
) -> Result<Option<ThreadFull>, StoreError> {
    let Some(thread) = thread_row(conn, id).await? else {
        return Ok(None);
    };
    let rows = sqlx::query(concat!(post_select!(), "WHERE p.thread = $1 ORDER BY p.id"))
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut posts: Vec<Post> = rows
        .iter()
        .map(post_from_row)
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    // Replies may come from any thread (`>>N` works across threads); what
    // selects them is that the quoted post is in this one.
    let reply_rows = sqlx::query(
        "SELECT r.reply_to AS reply_to, r.reply_from AS reply_from \
         FROM reply r JOIN post p ON p.id = r.reply_to \
         WHERE p.thread = $1 ORDER BY r.reply_from",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut replies = replies_by_target(&reply_rows).map_err(db_err)?;
    for post in &mut posts {
        post.replies = replies.remove(&post.id.0).unwrap_or_default();
    }
    let quoted_ops = sqlx::query_as::<_, (i64, i64)>(
        "SELECT q.thread, (SELECT MIN(o.id) FROM post o WHERE o.thread = q.thread) \
         FROM reply r JOIN post p ON p.id = r.reply_from JOIN post q ON q.id = r.reply_to \
         WHERE p.thread = $1 AND q.thread <> $1 GROUP BY q.thread",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|(t, op)| (ThreadId(t), PostId(op)))
    .collect();
    Ok(Some(ThreadFull {
        thread,
        posts,
        quoted_ops,
    }))
}

/// The live threads of a board with their opening posts and counts, most
/// recently bumped first: four queries whatever the board's size.
pub(super) async fn board_threads(
    conn: &mut AnyConnection,
    board: BoardId,
) -> Result<Vec<ThreadSummary>, StoreError> {
    let sql = concat!(
        "SELECT ",
        thread_columns!(),
        ", COUNT(p.id) AS num_posts, COUNT(p.media) AS num_media, MIN(p.id) AS op_id \
         FROM thread t JOIN post p ON p.thread = t.id \
         WHERE t.board = $1 AND t.archived = $2 \
         GROUP BY t.id ORDER BY t.sticky DESC, t.last_updated DESC, t.id DESC"
    );
    let rows = sqlx::query(sql)
        .bind(board.0)
        .bind(false)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut heads = Vec::with_capacity(rows.len());
    for row in &rows {
        let thread = thread_from_row(row).map_err(db_err)?;
        let num_posts: i64 = row.try_get("num_posts").map_err(db_err)?;
        let num_media: i64 = row.try_get("num_media").map_err(db_err)?;
        let op: i64 = row.try_get("op_id").map_err(db_err)?;
        heads.push((thread, num_posts, num_media, op));
    }

    let op_rows = sqlx::query(concat!(
        post_select!(),
        "WHERE p.id IN (",
        board_ops!(),
        ")"
    ))
    .bind(board.0)
    .bind(false)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut ops: HashMap<i64, Post> = HashMap::with_capacity(op_rows.len());
    for row in &op_rows {
        let post = post_from_row(row).map_err(db_err)?;
        ops.insert(post.id.0, post);
    }
    let reply_rows = sqlx::query(concat!(
        "SELECT r.reply_to AS reply_to, r.reply_from AS reply_from FROM reply r \
         WHERE r.reply_to IN (",
        board_ops!(),
        ") ORDER BY r.reply_from"
    ))
    .bind(board.0)
    .bind(false)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut replies = replies_by_target(&reply_rows).map_err(db_err)?;
    let mut tags = tags_of_board(conn, board, false).await?;

    let mut out = Vec::with_capacity(heads.len());
    for (mut thread, num_posts, num_media, op_id) in heads {
        // Both queries read one snapshot, so the opening post is there.
        let Some(mut op) = ops.remove(&op_id) else {
            return Err(StoreError::Unavailable(format!(
                "thread {} lost its opening post {op_id} between two queries",
                thread.id
            )));
        };
        op.replies = replies.remove(&op_id).unwrap_or_default();
        thread.tags = tags.remove(&thread.id.0).unwrap_or_default();
        out.push(ThreadSummary {
            thread,
            op,
            num_replies: num_posts - 1,
            num_media,
        });
    }
    Ok(out)
}

/// The archived threads of a board, most recently bumped first.
pub(super) async fn archived_threads(
    conn: &mut AnyConnection,
    board: BoardId,
    limit: i64,
    skip: i64,
) -> Result<Vec<Thread>, StoreError> {
    let sql = concat!(
        "SELECT ",
        thread_columns!(),
        " FROM thread t WHERE t.board = $1 AND t.archived = $2 \
         ORDER BY t.last_updated DESC, t.id DESC LIMIT $3 OFFSET $4"
    );
    let rows = sqlx::query(sql)
        .bind(board.0)
        .bind(true)
        .bind(limit)
        .bind(skip)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut threads: Vec<Thread> = rows
        .iter()
        .map(thread_from_row)
        .collect::<Result<_, _>>()
        .map_err(db_err)?;
    let mut tags = tags_of_board(conn, board, true).await?;
    for thread in &mut threads {
        thread.tags = tags.remove(&thread.id.0).unwrap_or_default();
    }
    Ok(threads)
}

/// How many threads a board has archived.
pub(super) async fn count_archived(
    conn: &mut AnyConnection,
    board: BoardId,
) -> Result<i64, StoreError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM thread WHERE board = $1 AND archived = $2")
            .bind(board.0)
            .bind(true)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
    Ok(n)
}

/// One media row.
pub(super) async fn media(
    conn: &mut AnyConnection,
    id: MediaId,
) -> Result<Option<Media>, StoreError> {
    let row = sqlx::query(
        "SELECT id, blob, thumb_blob, mimetype, ext, is_animated, width, height, \
         thumb_width, thumb_height, size_bytes, thumb_mimetype, duration_ms, frames, md5, file_name \
         FROM media WHERE id = $1",
    )
    .bind(id.0)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some(row) = row else { return Ok(None) };
    let media = (|| {
        Ok::<_, sqlx::Error>(Media {
            id: MediaId(row.try_get("id")?),
            blob: row.try_get("blob")?,
            thumb_blob: row.try_get("thumb_blob")?,
            mimetype: row.try_get("mimetype")?,
            ext: row.try_get("ext")?,
            is_animated: flag(&row, "is_animated")?,
            width: row.try_get("width")?,
            height: row.try_get("height")?,
            thumb_width: row.try_get("thumb_width")?,
            thumb_height: row.try_get("thumb_height")?,
            size_bytes: row.try_get("size_bytes")?,
            thumb_mimetype: row.try_get("thumb_mimetype")?,
            duration_ms: row.try_get("duration_ms")?,
            frames: row.try_get("frames")?,
            md5: row.try_get("md5")?,
            file_name: row.try_get("file_name")?,
        })
    })()
    .map_err(db_err)?;
    Ok(Some(media))
}

/// How many posts exist.
pub(super) async fn count_posts(conn: &mut AnyConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM post")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
}

/// The opening post of each of these threads; missing threads are absent.
pub(super) async fn thread_ops(
    conn: &mut AnyConnection,
    threads: &[ThreadId],
) -> Result<HashMap<ThreadId, PostId>, StoreError> {
    let ids: Vec<i64> = threads.iter().map(|t| t.0).collect();
    let sql = "SELECT thread, MIN(id) FROM post WHERE thread IN ({}) GROUP BY thread";
    Ok(pairs_for(conn, sql, &ids)
        .await?
        .into_iter()
        .map(|(t, op)| (ThreadId(t), PostId(op)))
        .collect())
}

/// Posts per query when resolving quotes; far below both backends' limits
/// on bound parameters.
const IDS_PER_QUERY: usize = 500;

/// Which thread holds each of these posts; missing posts are absent.
pub(super) async fn threads_of_posts(
    conn: &mut AnyConnection,
    ids: &[PostId],
) -> Result<HashMap<PostId, ThreadId>, StoreError> {
    let ids: Vec<i64> = ids.iter().map(|p| p.0).collect();
    let sql = "SELECT id, thread FROM post WHERE id IN ({})";
    Ok(pairs_for(conn, sql, &ids)
        .await?
        .into_iter()
        .map(|(id, thread)| (PostId(id), ThreadId(thread)))
        .collect())
}

/// The rows, each two integers, of `sql` with `ids` in place of its `{}`
/// (a list of bound parameters), [`IDS_PER_QUERY`] ids a query.
async fn pairs_for(
    conn: &mut AnyConnection,
    sql: &str,
    ids: &[i64],
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = sql.replace("{}", &placeholders.join(", "));
        let mut query = sqlx::query_as::<_, (i64, i64)>(AssertSqlSafe(sql));
        for id in chunk {
            query = query.bind(*id);
        }
        out.extend(query.fetch_all(&mut *conn).await.map_err(db_err)?);
    }
    Ok(out)
}
