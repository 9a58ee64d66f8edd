//! Moderation queries: deleting posts and threads (batched writes run by the
//! group-commit writer), thread flags, moving threads, spoilers, bans, the
//! moderation log, reports, and a board's anti-abuse settings.
//!
//! Deletes are hard deletes inside one savepoint: the post, its reply links,
//! its report and its media row go together, and the blobs no media row
//! references any more are returned for the caller to remove (content
//! addressing means another post may share the bytes). Ids are never reused
//! (AUTOINCREMENT / identity), so a `>>N` to a deleted post stays dead.
//!
//! Single-row changes (flags, move, spoiler, bans, log, reports) are one
//! autocommit statement each on the read pool, like `admin`.
//!
//! Not here: who may do what (the node checks roles), which entity applies
//! the change (the thread actor calls these through `Repo`).

use sqlx::{AnyConnection, AnyPool, Row};

use super::{db_err, read, Store};
use crate::accounts::{Ban, ModLogEntry, Report};
use crate::error::StoreError;
use crate::model::*;

/// Writes a board's anti-abuse settings (captcha flags, flood intervals);
/// called by `create_board` and `update_board` right after their own row write.
pub(super) async fn write_abuse_settings(
    pool: &AnyPool,
    id: BoardId,
    s: &BoardSettings,
) -> Result<(), StoreError> {
    if s.thread_interval_secs < 0 || s.reply_interval_secs < 0 {
        return Err(StoreError::Invalid(
            "thread_interval_secs and reply_interval_secs must not be negative".into(),
        ));
    }
    sqlx::query(
        "UPDATE board SET captcha_threads = $1, captcha_replies = $2, \
         thread_interval_secs = $3, reply_interval_secs = $4 WHERE id = $5",
    )
    .bind(s.captcha_threads)
    .bind(s.captcha_replies)
    .bind(s.thread_interval_secs)
    .bind(s.reply_interval_secs)
    .bind(id.0)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The keys among `keys` that no media row references any more.
async fn orphaned(
    conn: &mut AnyConnection,
    mut keys: Vec<String>,
) -> Result<Vec<String>, StoreError> {
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let used: Option<i64> =
            sqlx::query_scalar("SELECT id FROM media WHERE blob = $1 OR thumb_blob = $1 LIMIT 1")
                .bind(&key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?;
        if used.is_none() {
            out.push(key);
        }
    }
    Ok(out)
}

/// Deletes media rows (already unlinked from their posts) and returns their
/// blob keys.
async fn delete_media(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<String>, StoreError> {
    let mut keys = Vec::with_capacity(ids.len() * 2);
    for id in ids {
        let row = sqlx::query("DELETE FROM media WHERE id = $1 RETURNING blob, thumb_blob")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        if let Some(row) = row {
            keys.push(row.try_get::<String, _>("blob").map_err(db_err)?);
            keys.push(row.try_get::<String, _>("thumb_blob").map_err(db_err)?);
        }
    }
    Ok(keys)
}

/// Applies a moderation change on the writer's connection (inside its
/// savepoint, after the fence check).
pub(super) async fn apply(
    conn: &mut AnyConnection,
    change: &Change,
) -> Result<Deleted, StoreError> {
    // The UPDATEs answer the row they changed: none means no such row.
    let updated = |found: Option<i64>, what: String| {
        found
            .map(|_| Deleted::default())
            .ok_or(StoreError::NotFound(what))
    };
    match change {
        Change::DeletePost(id) => delete_post(conn, *id).await,
        Change::DeleteFile(id) => delete_file(conn, *id).await,
        Change::DeleteThread(id) => delete_thread(conn, *id).await,
        Change::Flags {
            thread,
            sticky,
            locked,
        } => updated(
            sqlx::query_scalar(
                "UPDATE thread SET sticky = $1, locked = $2 WHERE id = $3 RETURNING id",
            )
            .bind(*sticky)
            .bind(*locked)
            .bind(thread.0)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?,
            format!("thread {thread}"),
        ),
        // The foreign key refuses a board that does not exist (NotFound).
        Change::Move { thread, board } => updated(
            sqlx::query_scalar("UPDATE thread SET board = $1 WHERE id = $2 RETURNING id")
                .bind(board.0)
                .bind(thread.0)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?,
            format!("thread {thread}"),
        ),
        Change::Spoiler { post, spoiler } => updated(
            sqlx::query_scalar("UPDATE post SET spoiler = $1 WHERE id = $2 RETURNING id")
                .bind(*spoiler)
                .bind(post.0)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?,
            format!("post {post}"),
        ),
        Change::BodyHtml { post, html } => updated(
            sqlx::query_scalar("UPDATE post SET body_html = $1 WHERE id = $2 RETURNING id")
                .bind(html)
                .bind(post.0)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_err)?,
            format!("post {post}"),
        ),
    }
}

/// Appends a moderation log entry on `conn`.
pub(super) async fn insert_log(
    conn: &mut AnyConnection,
    e: &ModLogEntry,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO modlog (at, slip, slip_name, action, board, target, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.at)
    .bind(e.slip)
    .bind(&e.slip_name)
    .bind(&e.action)
    .bind(e.board.map(|b| b.0))
    .bind(&e.target)
    .bind(&e.reason)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Deletes a post's file, keeping the post. Runs in the writer's savepoint.
async fn delete_file(conn: &mut AnyConnection, id: PostId) -> Result<Deleted, StoreError> {
    let media: Option<Option<i64>> = sqlx::query_scalar("SELECT media FROM post WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let Some(media) = media else {
        return Err(StoreError::NotFound(format!("post {id}")));
    };
    let Some(media) = media else {
        return Err(StoreError::Invalid(format!("post {id} has no file")));
    };
    sqlx::query("UPDATE post SET media = NULL, spoiler = $1, file_deleted = $2 WHERE id = $3")
        .bind(false)
        .bind(true)
        .bind(id.0)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    let keys = delete_media(conn, &[media]).await?;
    Ok(Deleted {
        orphaned_blobs: orphaned(conn, keys).await?,
    })
}

/// Deletes one reply (not an opening post). Runs in the writer's savepoint.
pub(super) async fn delete_post(
    conn: &mut AnyConnection,
    id: PostId,
) -> Result<Deleted, StoreError> {
    let row = sqlx::query("SELECT thread, media FROM post WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    let Some(row) = row else {
        return Err(StoreError::NotFound(format!("post {id}")));
    };
    let thread: i64 = row.try_get("thread").map_err(db_err)?;
    let media: Option<i64> = row.try_get("media").map_err(db_err)?;
    let op: i64 = sqlx::query_scalar("SELECT MIN(id) FROM post WHERE thread = $1")
        .bind(thread)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if op == id.0 {
        return Err(StoreError::Conflict(format!(
            "post {id} opens thread {thread}: delete the thread instead"
        )));
    }
    for sql in [
        "DELETE FROM reply WHERE reply_from = $1 OR reply_to = $1",
        "DELETE FROM report WHERE post = $1",
        "DELETE FROM post WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.0)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    let keys = delete_media(conn, &media.into_iter().collect::<Vec<_>>()).await?;
    Ok(Deleted {
        orphaned_blobs: orphaned(conn, keys).await?,
    })
}

/// Deletes a thread with every post. Runs in the writer's savepoint.
pub(super) async fn delete_thread(
    conn: &mut AnyConnection,
    id: ThreadId,
) -> Result<Deleted, StoreError> {
    if read::thread_row(conn, id).await?.is_none() {
        return Err(StoreError::NotFound(format!("thread {id}")));
    }
    let media: Vec<i64> =
        sqlx::query_scalar("SELECT media FROM post WHERE thread = $1 AND media IS NOT NULL")
            .bind(id.0)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
    // Children before parents: foreign keys are checked per statement.
    for sql in [
        "DELETE FROM reply WHERE reply_from IN (SELECT id FROM post WHERE thread = $1) \
         OR reply_to IN (SELECT id FROM post WHERE thread = $1)",
        "DELETE FROM report WHERE thread = $1",
        "DELETE FROM post WHERE thread = $1",
        "DELETE FROM poster WHERE thread = $1",
        "DELETE FROM thread_tag WHERE thread = $1",
        "DELETE FROM thread WHERE id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.0)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    let keys = delete_media(conn, &media).await?;
    Ok(Deleted {
        orphaned_blobs: orphaned(conn, keys).await?,
    })
}

fn ban_from_row(row: &sqlx::any::AnyRow) -> Result<Ban, sqlx::Error> {
    Ok(Ban {
        id: row.try_get("id")?,
        cidr: row.try_get("cidr")?,
        board: row.try_get::<Option<i64>, _>("board")?.map(BoardId),
        reason: row.try_get("reason")?,
        created: row.try_get("created")?,
        expires: row.try_get("expires")?,
        slip: row.try_get("slip")?,
        post: row.try_get::<Option<i64>, _>("post")?.map(PostId),
    })
}

fn report_from_row(row: &sqlx::any::AnyRow) -> Result<Report, sqlx::Error> {
    Ok(Report {
        id: row.try_get("id")?,
        post: PostId(row.try_get("post")?),
        thread: ThreadId(row.try_get("thread")?),
        board: BoardId(row.try_get("board")?),
        reason: row.try_get("reason")?,
        count: row.try_get("count")?,
        first_at: row.try_get("first_at")?,
        last_at: row.try_get("last_at")?,
    })
}

impl Store {
    /// The address a post was written from and its thread, for banning from a post.
    pub async fn post_origin(
        &self,
        post: PostId,
    ) -> Result<Option<(String, ThreadId)>, StoreError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT ip, thread FROM post WHERE id = $1")
                .bind(post.0)
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
        Ok(row.map(|(ip, t)| (ip, ThreadId(t))))
    }

    /// Records a ban; `id` is assigned.
    pub async fn create_ban(&self, ban: Ban) -> Result<Ban, StoreError> {
        if ban.reason.trim().is_empty() || ban.cidr.is_empty() {
            return Err(StoreError::Invalid(
                "a ban needs an address and a reason".into(),
            ));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ban (cidr, board, reason, created, expires, slip, post) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&ban.cidr)
        .bind(ban.board.map(|b| b.0))
        .bind(&ban.reason)
        .bind(ban.created)
        .bind(ban.expires)
        .bind(ban.slip)
        .bind(ban.post.map(|p| p.0))
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        Ok(Ban { id, ..ban })
    }

    /// Lifts a ban; `false` if there was none with this id.
    pub async fn delete_ban(&self, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM ban WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() > 0)
    }

    /// Bans not expired at `now`, newest first.
    pub async fn active_bans(&self, now: i64) -> Result<Vec<Ban>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, cidr, board, reason, created, expires, slip, post FROM ban \
             WHERE expires IS NULL OR expires > $1 ORDER BY id DESC",
        )
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(ban_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_err)
    }

    /// Appends an entry to the moderation log (for actions that are not a
    /// thread's: bans, reports, boards; a thread's changes log themselves
    /// through [`Repo::moderate`](crate::Repo::moderate)).
    pub async fn log_mod_action(&self, e: &ModLogEntry) -> Result<(), StoreError> {
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        insert_log(&mut conn, e).await
    }

    /// The latest `limit` entries of the moderation log, newest first.
    pub async fn mod_log(&self, limit: i64) -> Result<Vec<ModLogEntry>, StoreError> {
        self.mod_log_of(limit, None).await
    }

    /// The newest `limit` entries about `boards` only (a volunteer's view:
    /// entries of other boards, and site-wide ones, carry addresses of
    /// posters on boards they do not hold); `None` is every entry.
    pub async fn mod_log_of(
        &self,
        limit: i64,
        boards: Option<&[BoardId]>,
    ) -> Result<Vec<ModLogEntry>, StoreError> {
        let filter = match boards {
            None => String::new(),
            Some([]) => "WHERE 1 = 0 ".to_string(),
            // Board ids are integers we hold, not text from a request.
            Some(list) => format!(
                "WHERE board IN ({}) ",
                list.iter()
                    .map(|b| b.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let sql = format!(
            "SELECT id, at, slip, slip_name, action, board, target, reason FROM modlog \
             {filter}ORDER BY id DESC LIMIT $1"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(ModLogEntry {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    slip: row.try_get("slip")?,
                    slip_name: row.try_get("slip_name")?,
                    action: row.try_get("action")?,
                    board: row.try_get::<Option<i64>, _>("board")?.map(BoardId),
                    target: row.try_get("target")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db_err)
    }

    /// Reports a post. A second report of the same post folds into the
    /// first (its count grows, the first reason stays). `NotFound` for a
    /// post that does not exist.
    pub async fn report_post(
        &self,
        post: PostId,
        reason: &str,
        now: i64,
    ) -> Result<Report, StoreError> {
        let row = sqlx::query(
            "INSERT INTO report (post, thread, board, reason, count, first_at, last_at) \
             SELECT p.id, p.thread, t.board, $2, 1, $3, $3 FROM post p \
             JOIN thread t ON t.id = p.thread WHERE p.id = $1 \
             ON CONFLICT (post) DO UPDATE SET count = report.count + 1, last_at = excluded.last_at \
             RETURNING id, post, thread, board, reason, count, first_at, last_at",
        )
        .bind(post.0)
        .bind(reason)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        match row {
            Some(row) => report_from_row(&row).map_err(db_err),
            None => Err(StoreError::NotFound(format!("post {post}"))),
        }
    }

    /// Open reports, most recent first; of one board (where the thread is
    /// now, so a moved thread's reports follow it) or of every board.
    pub async fn reports(&self, board: Option<BoardId>) -> Result<Vec<Report>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id AS id, r.post AS post, r.thread AS thread, t.board AS board, \
             r.reason AS reason, r.count AS count, r.first_at AS first_at, r.last_at AS last_at \
             FROM report r JOIN thread t ON t.id = r.thread \
             WHERE $1 < 0 OR t.board = $1 ORDER BY r.last_at DESC, r.id DESC",
        )
        .bind(board.map(|b| b.0).unwrap_or(-1))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(report_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_err)
    }

    /// One open report.
    pub async fn report(&self, id: i64) -> Result<Option<Report>, StoreError> {
        let row = sqlx::query(
            "SELECT r.id AS id, r.post AS post, r.thread AS thread, t.board AS board, \
             r.reason AS reason, r.count AS count, r.first_at AS first_at, r.last_at AS last_at \
             FROM report r JOIN thread t ON t.id = r.thread WHERE r.id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        row.as_ref()
            .map(report_from_row)
            .transpose()
            .map_err(db_err)
    }

    /// Closes a report without acting on the post; `false` if it was not open.
    pub async fn dismiss_report(&self, id: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM report WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(r.rows_affected() > 0)
    }
}
