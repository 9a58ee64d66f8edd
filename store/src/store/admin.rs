//! Rare writes that bypass the group-commit writer: boards, the poster
//! secret, shard leases.
//!
//! Each is ONE autocommit statement on the read pool, so on SQLite it simply
//! waits (busy timeout) for the writer's current batch, and never holds a
//! read snapshot while asking for the write lock (which SQLite would refuse
//! outright instead of waiting).

use rand::RngCore;
use sqlx::AnyConnection;

use super::{db_err, read, Store};
use crate::error::StoreError;
use crate::model::*;

/// Names whose `/{name}/…` URLs are the site's own pages and files, so a
/// board so named could not be reached at the 4chan-style `/{board}/…` URLs.
pub const RESERVED_BOARD_NAMES: &[&str] = &[
    "api", "boards", "captcha", "debug", "mod", "posts", "report", "slip", "static", "threads",
    "upload",
];

/// Longest board name, in characters (Maniwani's `String(32)`).
const MAX_BOARD_NAME: usize = 32;

const POSTER_SECRET_KEY: &str = "poster_secret";
const POSTER_SECRET_BYTES: usize = 32;

/// Rejects settings the schema or the URLs cannot carry.
/// Whether `name` can name a board: 1 to 32 characters of `[a-z0-9_-]`, not
/// one of the site's own URL prefixes.
pub fn check_board_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.chars().count() > MAX_BOARD_NAME {
        return Err(StoreError::Invalid(format!(
            "board name must be 1 to {MAX_BOARD_NAME} characters, got {}",
            name.chars().count()
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(StoreError::Invalid(format!(
            "board name {name:?} may only contain a-z, 0-9, _ and -"
        )));
    }
    if RESERVED_BOARD_NAMES.contains(&name) {
        return Err(StoreError::Invalid(format!(
            "board name {name:?} is taken by the site's own URLs (/{name}/…); pick another"
        )));
    }
    Ok(())
}

fn validate(settings: &BoardSettings) -> Result<(), StoreError> {
    check_board_name(&settings.name)?;
    // Stored comma-separated, so a comma would split one type into two.
    if let Some(bad) = settings
        .mimetypes
        .iter()
        .find(|m| m.is_empty() || m.contains(','))
    {
        return Err(StoreError::Invalid(format!("bad MIME type {bad:?}")));
    }
    if settings.max_threads < 1 {
        return Err(StoreError::Invalid("max_threads must be at least 1".into()));
    }
    if settings.bump_limit < 0
        || settings.max_file_bytes < 0
        || settings.max_pixels < 0
        || settings.max_duration_secs < 0
        || settings.max_frames < 0
    {
        return Err(StoreError::Invalid(
            "bump_limit, max_file_bytes, max_pixels, max_duration_secs and max_frames \
             must not be negative"
                .into(),
        ));
    }
    Ok(())
}

impl Store {
    /// Creates a board. `Invalid` for a bad name (empty, over 32 characters,
    /// outside `[a-z0-9_-]`) or settings; `Conflict` if the name is taken.
    pub async fn create_board(&self, settings: BoardSettings) -> Result<Board, StoreError> {
        validate(&settings)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO board (name, title, rules, max_threads, bump_limit, mimetypes, \
             max_file_bytes, max_pixels, max_duration_secs, max_frames, no_reposts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(&settings.name)
        .bind(&settings.title)
        .bind(&settings.rules)
        .bind(settings.max_threads)
        .bind(settings.bump_limit)
        .bind(settings.mimetypes.join(","))
        .bind(settings.max_file_bytes)
        .bind(settings.max_pixels)
        .bind(settings.max_duration_secs)
        .bind(settings.max_frames)
        .bind(settings.no_reposts)
        .fetch_one(self.pool())
        .await
        .map_err(|e| named_conflict(e, &settings.name))?;
        super::moderation::write_abuse_settings(self.pool(), BoardId(id), &settings).await?;
        Ok(Board::new(BoardId(id), settings))
    }

    /// Replaces a board's settings (renaming it if the name changed).
    /// `NotFound` for a missing board, otherwise as [`Store::create_board`].
    pub async fn update_board(
        &self,
        id: BoardId,
        settings: BoardSettings,
    ) -> Result<Board, StoreError> {
        validate(&settings)?;
        let found: Option<i64> = sqlx::query_scalar(
            "UPDATE board SET name = $1, title = $2, rules = $3, max_threads = $4, \
             bump_limit = $5, mimetypes = $6, max_file_bytes = $7, max_pixels = $8, \
             max_duration_secs = $9, max_frames = $10, no_reposts = $11 WHERE id = $12 \
             RETURNING id",
        )
        .bind(&settings.name)
        .bind(&settings.title)
        .bind(&settings.rules)
        .bind(settings.max_threads)
        .bind(settings.bump_limit)
        .bind(settings.mimetypes.join(","))
        .bind(settings.max_file_bytes)
        .bind(settings.max_pixels)
        .bind(settings.max_duration_secs)
        .bind(settings.max_frames)
        .bind(settings.no_reposts)
        .bind(id.0)
        .fetch_optional(self.pool())
        .await
        .map_err(|e| named_conflict(e, &settings.name))?;
        match found {
            Some(_) => {
                super::moderation::write_abuse_settings(self.pool(), id, &settings).await?;
                Ok(Board::new(id, settings))
            }
            None => Err(StoreError::NotFound(format!("board {id}"))),
        }
    }

    /// A board by its short name.
    pub async fn board_by_name(&self, name: &str) -> Result<Option<Board>, StoreError> {
        let mut conn = self.pool().acquire().await.map_err(db_err)?;
        read::board_by_name(&mut conn, name).await
    }

    /// Up to `limit` media rows after `after` stored before MD5s were kept,
    /// as (id, blob key of the original), lowest id first.
    pub async fn media_without_md5(
        &self,
        after: MediaId,
        limit: i64,
    ) -> Result<Vec<(MediaId, String)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, blob FROM media WHERE md5 IS NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.0)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows.into_iter().map(|(id, b)| (MediaId(id), b)).collect())
    }

    /// Records the MD5 of every media row whose original is blob `key` (a
    /// deduplicated file has one row per upload).
    pub async fn set_media_md5(&self, key: &str, md5: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE media SET md5 = $1 WHERE blob = $2 AND md5 IS NULL")
            .bind(md5)
            .bind(key)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Takes, renews or keeps the lease on `shard` for `node` until
    /// `now + ttl_ms`. Returns the fence its writes must carry, or `None`
    /// while another node holds an unexpired lease. The epoch grows whenever
    /// the lease changes hands, so writes fenced with an older one are
    /// refused; renewing keeps it.
    ///
    /// Only a change of hands touches the (holder, epoch) row, which the
    /// old holder's writes share-lock until they commit: it waits for them.
    /// Keeping a lease touches its expiry only (see `0005_lease_expiry.sql`).
    pub async fn acquire_lease(
        &self,
        shard: i64,
        node: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError> {
        let until = now.saturating_add(ttl_ms);
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let current: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT l.node, l.epoch, e.expires_at FROM shard_lease l \
             LEFT JOIN shard_lease_expiry e ON e.shard = l.shard WHERE l.shard = $1",
        )
        .bind(shard)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let epoch = match current {
            // Never leased: the first taker wins the insert.
            None => sqlx::query_scalar(
                "INSERT INTO shard_lease (shard, node, epoch) VALUES ($1, $2, 1) \
                     ON CONFLICT (shard) DO NOTHING RETURNING epoch",
            )
            .bind(shard)
            .bind(node)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?,
            Some((holder, epoch, _)) if holder == node => Some(epoch),
            // Expired: change hands, unless another node did first (the
            // `WHERE` is evaluated again once the row is ours to update).
            Some((holder, _, expires)) if expires.unwrap_or(0) <= now => sqlx::query_scalar(
                "UPDATE shard_lease SET node = $1, epoch = epoch + 1 \
                     WHERE shard = $2 AND node = $3 RETURNING epoch",
            )
            .bind(node)
            .bind(shard)
            .bind(&holder)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?,
            Some(_) => None,
        };
        if epoch.is_some() {
            set_expiry(&mut tx, shard, until).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(epoch.map(|epoch| Fence { shard, epoch }))
    }

    /// Extends every lease `node` holds to `now + ttl_ms`, in one statement,
    /// and returns them. A lease another node has taken over is not among
    /// them: its writes would be fenced, so the caller stops using it. Only
    /// the expiries are written: the writes in flight, which share-lock the
    /// (holder, epoch) rows, neither wait for a renewal nor hold it up.
    pub async fn renew_leases(
        &self,
        node: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Vec<Fence>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "UPDATE shard_lease_expiry SET expires_at = $1 FROM shard_lease \
             WHERE shard_lease.shard = shard_lease_expiry.shard \
             AND shard_lease.node = $2 AND shard_lease_expiry.expires_at > $3 \
             RETURNING shard_lease_expiry.shard, shard_lease.epoch",
        )
        .bind(now.saturating_add(ttl_ms))
        .bind(node)
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(shard, epoch)| Fence { shard, epoch })
            .collect())
    }

    /// Gives up `node`'s lease on `shard` so another node may take it at
    /// once. The row (and its epoch) stays: deleting it would restart epochs
    /// at 1 and let a stale owner's fence match again.
    pub async fn release_lease(&self, shard: i64, node: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE shard_lease_expiry SET expires_at = 0 WHERE shard = $1 \
             AND EXISTS (SELECT 1 FROM shard_lease l WHERE l.shard = $1 AND l.node = $2)",
        )
        .bind(shard)
        .bind(node)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Takes `shard`'s lease from `from` (known dead) for `to`, moving the
    /// epoch on so `from`'s writes are fenced; `None` if `from` no longer
    /// holds it. Waits for `from`'s writes in flight (they share-lock the
    /// row), so none of them can commit after this.
    pub async fn take_over_lease(
        &self,
        shard: i64,
        from: &str,
        to: &str,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<Fence>, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "UPDATE shard_lease SET node = $1, epoch = epoch + 1 \
             WHERE shard = $2 AND node = $3 RETURNING epoch",
        )
        .bind(to)
        .bind(shard)
        .bind(from)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if epoch.is_some() {
            set_expiry(&mut tx, shard, now.saturating_add(ttl_ms)).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(epoch.map(|epoch| Fence { shard, epoch }))
    }
}

/// A unique violation on a board write means the name is taken.
fn named_conflict(e: sqlx::Error, name: &str) -> StoreError {
    match db_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!("board {name:?} already exists")),
        other => other,
    }
}

/// The poster-id secret: created once (32 random bytes), then read back.
/// Works on a pool connection or inside the writer's transaction. Two first
/// callers may race; `DO NOTHING` keeps the first value and both read that.
pub(super) async fn poster_secret(conn: &mut AnyConnection) -> Result<Vec<u8>, StoreError> {
    let existing: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM setting WHERE key = $1")
        .bind(POSTER_SECRET_KEY)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    if let Some(secret) = existing {
        return Ok(secret);
    }
    let mut fresh = vec![0u8; POSTER_SECRET_BYTES];
    rand::rng().fill_bytes(&mut fresh);
    sqlx::query("INSERT INTO setting (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
        .bind(POSTER_SECRET_KEY)
        .bind(fresh)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    sqlx::query_scalar("SELECT value FROM setting WHERE key = $1")
        .bind(POSTER_SECRET_KEY)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)
}

/// Sets a lease's expiry (creating its row the first time).
async fn set_expiry(
    conn: &mut sqlx::AnyConnection,
    shard: i64,
    until: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO shard_lease_expiry (shard, expires_at) VALUES ($1, $2) \
         ON CONFLICT (shard) DO UPDATE SET expires_at = excluded.expires_at",
    )
    .bind(shard)
    .bind(until)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}
