//! Writing what an import brings from another imageboard
//! (`wani import maniwani`): boards, slips and whole threads whose post and
//! thread ids are kept, so `>>N` links and old URLs keep working.
//!
//! - Every thread of a batch is written in one transaction with its posts,
//!   posters, media rows, tags and reply links: an interrupted run leaves
//!   each thread whole or absent, never half.
//! - An imported post's idempotency key is `<source>:<id>`, which is how a
//!   later run recognises it (and skips it) and tells it from a post of
//!   wani's own that holds the same id (a clash, refused before writing).
//! - Boards, slips and tags do not keep their ids; `import_map` remembers
//!   what each became.
//! - Before the first thread is written, the id sequences are moved above
//!   the highest imported ids ([`Store::reserve_ids`]), so a node posting
//!   while the import runs never takes an id the import is about to use,
//!   and wani's own ids continue above the imported ones.

use std::collections::HashMap;

use sqlx::{AnyConnection, AssertSqlSafe, Row as _};

use super::dberr::db_err;
use super::write::{insert_media, link_quotes, tag_thread, upsert_poster};
use super::{Backend, Store};
use crate::error::StoreError;
use crate::model::{Author, Board, BoardId, BoardSettings, NewMedia, PostId, ThreadId};

/// A thread to import, with the posts of it not imported yet (oldest
/// first). The thread row is written only if absent, so a later run can add
/// posts made since to a thread it imported before.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportThread {
    pub id: ThreadId,
    pub board: BoardId,
    pub subject: Option<String>,
    /// Tag names, with the styles the source gave them.
    pub tags: Vec<ImportTag>,
    /// Milliseconds since the Unix epoch.
    pub created: i64,
    pub last_updated: i64,
    pub views: i64,
    pub posts: Vec<ImportPost>,
}

/// A tag as the source styled it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportTag {
    pub name: String,
    pub bg_style: Option<String>,
    pub text_style: Option<String>,
}

/// One imported post, its id kept.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportPost {
    pub id: PostId,
    pub body: String,
    pub body_html: String,
    pub subject: Option<String>,
    pub datetime: i64,
    /// The 4-hex-digit poster id the source showed.
    pub poster: String,
    pub ip: String,
    pub media: Option<NewMedia>,
    pub spoiler: bool,
    /// Posts this one quotes (those that exist are linked).
    pub quotes: Vec<PostId>,
    pub author: Author,
}

/// The idempotency key an imported post is stored under.
pub fn import_key(source: &str, id: PostId) -> String {
    format!("{source}:{}", id.0)
}

/// Tables whose ids an import may set, and whose sequences it moves.
const ID_TABLES: [&str; 4] = ["board", "thread", "post", "media"];

impl Store {
    /// What an import made of each source row of `kind` (`board`, `slip`,
    /// `tag`): source id → wani id.
    pub async fn import_map(
        &self,
        source: &str,
        kind: &str,
    ) -> Result<HashMap<i64, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_id, wani_id FROM import_map WHERE source = $1 AND kind = $2",
        )
        .bind(source)
        .bind(kind)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db_err)
    }

    /// Creates an imported board, with `keep_id` as its id when no board
    /// has it, and records it in `import_map`. `Conflict` if the name is
    /// taken.
    pub async fn import_board(
        &self,
        source: &str,
        source_id: i64,
        keep_id: i64,
        settings: BoardSettings,
    ) -> Result<Board, StoreError> {
        let free: Option<i64> = sqlx::query_scalar("SELECT id FROM board WHERE id = $1")
            .bind(keep_id)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        let board = if free.is_none() && self.board_by_name(&settings.name).await?.is_none() {
            // The row first under the kept id, then every setting the way
            // an edit writes them.
            // The sequence first, so a board created meanwhile by a
            // running node cannot be handed the same id.
            self.reserve_ids("board", keep_id).await?;
            sqlx::query("INSERT INTO board (id, name) VALUES ($1, $2)")
                .bind(keep_id)
                .bind(&settings.name)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
            self.update_board(BoardId(keep_id), settings).await?
        } else {
            self.create_board(settings).await?
        };
        self.record_import(source, "board", source_id, board.id.0)
            .await?;
        Ok(board)
    }

    /// Creates an imported slip with the source's password hash (the login
    /// re-hashes it on first use) and records it. `Conflict` if the name is
    /// taken.
    pub async fn import_slip(
        &self,
        source: &str,
        source_id: i64,
        name: &str,
        pass_hash: &str,
        is_admin: bool,
        is_mod: bool,
    ) -> Result<i64, StoreError> {
        let slip = self.create_slip(name, pass_hash, is_admin, is_mod).await?;
        self.record_import(source, "slip", source_id, slip.id)
            .await?;
        Ok(slip.id)
    }

    async fn record_import(
        &self,
        source: &str,
        kind: &str,
        source_id: i64,
        wani_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO import_map (source, kind, source_id, wani_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(source)
        .bind(kind)
        .bind(source_id)
        .bind(wani_id)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The posts with ids in `lo..=hi` and their idempotency keys.
    pub async fn post_keys_between(
        &self,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(PostId, String)>, StoreError> {
        let rows: Vec<(i64, String)> = self
            .pairs_between(
                "SELECT id, idempotency_key FROM post WHERE id BETWEEN $1 AND $2",
                lo,
                hi,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, key)| (PostId(id), key))
            .collect())
    }

    /// The threads with ids in `lo..=hi` and their boards.
    pub async fn thread_boards_between(
        &self,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(ThreadId, BoardId)>, StoreError> {
        let rows: Vec<(i64, i64)> = self
            .pairs_between(
                "SELECT id, board FROM thread WHERE id BETWEEN $1 AND $2",
                lo,
                hi,
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, b)| (ThreadId(id), BoardId(b)))
            .collect())
    }

    async fn pairs_between<T>(
        &self,
        sql: &'static str,
        lo: i64,
        hi: i64,
    ) -> Result<Vec<(i64, T)>, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + Send + Unpin,
    {
        sqlx::query_as(sql)
            .bind(lo)
            .bind(hi)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)
    }

    /// Moves `table`'s id sequence to at least `above`, so the next id it
    /// hands out is higher. `table` is one of board, thread, post, media.
    pub async fn reserve_ids(&self, table: &str, above: i64) -> Result<(), StoreError> {
        if !ID_TABLES.contains(&table) {
            return Err(StoreError::Invalid(format!("no id sequence for {table:?}")));
        }
        // `table` is one of ID_TABLES, checked above.
        let statements = match self.backend() {
            // AUTOINCREMENT keeps the highest id ever used in sqlite_sequence;
            // the row is there once the table has had one insert.
            Backend::Sqlite => vec![
                format!(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT '{table}', $1 \
                     WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = '{table}')"
                ),
                format!("UPDATE sqlite_sequence SET seq = MAX(seq, $1) WHERE name = '{table}'"),
            ],
            Backend::Postgres => vec![format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 GREATEST($1, (SELECT last_value FROM {table}_id_seq)))"
            )],
        };
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        for sql in statements {
            sqlx::query(AssertSqlSafe(sql))
                .bind(above)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    /// Writes imported threads and their posts, all in one transaction.
    /// Posts keep their ids; quotes link the posts that exist by then.
    pub async fn import_threads(
        &self,
        source: &str,
        threads: &[ImportThread],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        for t in threads {
            import_thread(&mut tx, source, t).await?;
        }
        tx.commit().await.map_err(db_err)
    }
}

async fn import_thread(
    conn: &mut AnyConnection,
    source: &str,
    t: &ImportThread,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO thread (id, board, subject, created, last_updated, archived, views) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(t.id.0)
    .bind(t.board.0)
    .bind(t.subject.as_deref())
    .bind(t.created)
    .bind(t.last_updated)
    .bind(false)
    .bind(t.views)
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query("UPDATE thread SET last_updated = $1 WHERE id = $2 AND last_updated < $1")
        .bind(t.last_updated)
        .bind(t.id.0)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    for tag in &t.tags {
        tag_thread(
            conn,
            t.id,
            &tag.name,
            tag.bg_style.as_deref(),
            tag.text_style.as_deref(),
        )
        .await?;
    }
    for p in &t.posts {
        let (poster, _) = upsert_poster(conn, t.id, &p.poster, &p.ip).await?;
        let media = match &p.media {
            Some(m) => Some(insert_media(conn, m).await?.id.0),
            None => None,
        };
        sqlx::query(
            "INSERT INTO post (id, thread, body, body_html, subject, datetime, poster, media, \
             spoiler, sage, ip, idempotency_key, slip, name, capcode) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(p.id.0)
        .bind(t.id.0)
        .bind(&p.body)
        .bind(&p.body_html)
        .bind(p.subject.as_deref())
        .bind(p.datetime)
        .bind(poster)
        .bind(media)
        .bind(p.spoiler)
        .bind(false)
        .bind(&p.ip)
        .bind(import_key(source, p.id))
        .bind(p.author.slip)
        .bind(p.author.name.as_deref())
        .bind(p.author.capcode.as_deref())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        link_quotes(conn, p.id.0, &p.quotes).await?;
    }
    Ok(())
}
