//! Replies in bulk: a run of replies queued one after another (a hot
//! thread's burst, or many threads' replies in one batch) is written with a
//! handful of statements for the whole run instead of three or four per
//! reply. Every statement costs a round trip to the database (on SQLite, a
//! hand-off to its connection's thread and back), which is what a reply's
//! write time was made of.
//!
//! The outcome is the one [`create_post`](super::write) gives for each
//! reply in turn: the same fence checks, the same thread bump (`last_updated`
//! only moves forward, so applying the latest bump once equals applying
//! each), the same posters (one per thread and address, the first post's
//! hex), ids in queue order (one multi-row insert, rows in order), the same
//! reply links and commit records. Any failure (an archived thread, a
//! retried idempotency key, a fence that moved) fails the whole run: the
//! writer then runs the batch again one write at a time, where that reply
//! fails alone.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use super::write::{check_fence, insert_media, poster_of, quoted, stored_post, Held};
use super::{db_err, read, Backend};
use crate::error::StoreError;
use crate::model::*;

/// Rows per statement, largest first: a run is written in chunks of these
/// sizes, so each table sees at most four statement shapes (prepared once
/// per connection) however long the run.
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// Writes `posts` (replies to existing threads, in queue order) as if by
/// `create_post` one after another, all or nothing.
pub(super) async fn create_posts(
    conn: &mut AnyConnection,
    backend: Backend,
    posts: &[&NewPost],
) -> Result<Vec<Committed<Post>>, StoreError> {
    let held = check_fences(conn, backend, posts).await?;
    bump_threads(conn, posts).await?;
    let posters = upsert_posters(conn, posts).await?;
    let mut media = Vec::with_capacity(posts.len());
    for new in posts {
        media.push(match &new.media {
            Some(m) => Some(insert_media(conn, m).await?),
            None => None,
        });
    }
    let ids = insert_posts(conn, posts, &posters, &media).await?;
    insert_replies(conn, posts, &ids).await?;
    record_commits(conn, posts, &ids, &held).await?;
    Ok(posts
        .iter()
        .zip(ids)
        .zip(media)
        .map(|((new, id), media)| {
            let hex = &posters[&(new.thread, new.ip.as_str())].1;
            Committed::Created(stored_post(id, new.thread, None, new, hex.clone(), media))
        })
        .collect())
}

/// Checks each distinct fence once; answers the lease each one holds.
async fn check_fences(
    conn: &mut AnyConnection,
    backend: Backend,
    posts: &[&NewPost],
) -> Result<Vec<Held>, StoreError> {
    let mut held: Vec<Held> = Vec::new();
    for fence in posts.iter().filter_map(|p| p.fence) {
        if !held.iter().any(|h| h.fence == fence) {
            held.extend(check_fence(conn, backend, Some(fence)).await?);
        }
    }
    Ok(held)
}

/// Bumps each thread once, to the latest time among its bumping replies
/// (or not at all: time 0, which no thread's is below), and checks that
/// each exists and takes replies: one statement for all of them.
async fn bump_threads(conn: &mut AnyConnection, posts: &[&NewPost]) -> Result<(), StoreError> {
    let mut threads: Vec<(ThreadId, i64)> = Vec::new();
    for new in posts {
        let bump = if new.bump { new.now } else { 0 };
        match threads.iter_mut().find(|(t, _)| *t == new.thread) {
            Some((_, latest)) => *latest = (*latest).max(bump),
            None => threads.push((new.thread, bump)),
        }
    }
    for chunk in chunks(&threads) {
        let sql = format!(
            "UPDATE thread SET last_updated = CASE WHEN v.column2 > thread.last_updated \
             THEN v.column2 ELSE thread.last_updated END \
             FROM (VALUES {}) AS v WHERE thread.id = v.column1 \
             RETURNING thread.id AS id, thread.archived AS archived",
            placeholders(chunk.len(), 2)
        );
        let mut query = statement(sql);
        for (thread, bump) in chunk {
            query = query.bind(thread.0).bind(*bump);
        }
        let rows = query.fetch_all(&mut *conn).await.map_err(db_err)?;
        for row in &rows {
            if read::flag(row, "archived").map_err(db_err)? {
                let id: i64 = row.try_get("id").map_err(db_err)?;
                return Err(StoreError::Conflict(format!("thread {id} is archived")));
            }
        }
        if rows.len() != chunk.len() {
            return Err(StoreError::NotFound("a replied-to thread".into()));
        }
    }
    Ok(())
}

/// Each distinct (thread, address) with its poster row's id and hex, made
/// with the hex of its first reply here if it had none.
type Posters<'a> = HashMap<(ThreadId, &'a str), (i64, String)>;

async fn upsert_posters<'a>(
    conn: &mut AnyConnection,
    posts: &[&'a NewPost],
) -> Result<Posters<'a>, StoreError> {
    // Distinct rows only: PostgreSQL refuses an upsert that would touch one
    // row twice in a statement.
    let mut wanted: Vec<(ThreadId, &'a str, String)> = Vec::new();
    for new in posts {
        if !wanted
            .iter()
            .any(|(t, ip, _)| *t == new.thread && *ip == new.ip)
        {
            let hex = poster_of(conn, new.thread, new).await?;
            wanted.push((new.thread, new.ip.as_str(), hex));
        }
    }
    let mut posters = Posters::with_capacity(wanted.len());
    for chunk in chunks(&wanted) {
        let sql = format!(
            "INSERT INTO poster (thread, hex_string, ip) VALUES {} \
             ON CONFLICT (thread, ip) DO UPDATE SET hex_string = poster.hex_string \
             RETURNING id, thread, ip, hex_string",
            placeholders(chunk.len(), 3)
        );
        let mut query = statement(sql);
        for (thread, ip, hex) in chunk {
            query = query.bind(thread.0).bind(hex.as_str()).bind(*ip);
        }
        for row in query.fetch_all(&mut *conn).await.map_err(db_err)? {
            let thread = ThreadId(row.try_get("thread").map_err(db_err)?);
            let ip: String = row.try_get("ip").map_err(db_err)?;
            let id: i64 = row.try_get("id").map_err(db_err)?;
            let hex: String = row.try_get("hex_string").map_err(db_err)?;
            let (_, ip, _) = chunk
                .iter()
                .find(|(t, i, _)| *t == thread && *i == ip)
                .ok_or_else(|| bug("a poster row nobody asked for"))?;
            posters.insert((thread, *ip), (id, hex));
        }
    }
    if posters.len() != wanted.len() {
        return Err(bug("a poster row missing"));
    }
    Ok(posters)
}

/// Inserts the post rows; answers their ids in the order of `posts`.
async fn insert_posts(
    conn: &mut AnyConnection,
    posts: &[&NewPost],
    posters: &Posters<'_>,
    media: &[Option<Media>],
) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<(&NewPost, &Option<Media>)> = posts.iter().copied().zip(media).collect();
    let mut ids = Vec::with_capacity(posts.len());
    for chunk in chunks(&rows) {
        let sql = format!(
            "INSERT INTO post (thread, body, body_html, subject, datetime, poster, media, \
             spoiler, sage, ip, idempotency_key, slip, name, capcode) VALUES {} \
             RETURNING id, idempotency_key",
            placeholders(chunk.len(), 14)
        );
        let mut query = statement(sql);
        for (new, media) in chunk {
            query = query
                .bind(new.thread.0)
                .bind(new.body.as_str())
                .bind(new.body_html.as_str())
                .bind(None::<String>)
                .bind(new.now)
                .bind(posters[&(new.thread, new.ip.as_str())].0)
                .bind(media.as_ref().map(|m| m.id.0))
                .bind(new.spoiler)
                .bind(new.sage)
                .bind(new.ip.as_str())
                .bind(new.idempotency_key.as_str())
                .bind(new.author.slip)
                .bind(new.author.name.as_deref())
                .bind(new.author.capcode.as_deref());
        }
        // Matched by key: neither database promises RETURNING's row order.
        let mut by_key = HashMap::with_capacity(chunk.len());
        for row in query.fetch_all(&mut *conn).await.map_err(db_err)? {
            let key: String = row.try_get("idempotency_key").map_err(db_err)?;
            by_key.insert(key, row.try_get::<i64, _>("id").map_err(db_err)?);
        }
        for (new, _) in chunk {
            ids.push(
                by_key
                    .remove(new.idempotency_key.as_str())
                    .ok_or_else(|| bug("a post row missing"))?,
            );
        }
    }
    Ok(ids)
}

/// Records the reply links: a quote of a post that does not exist links
/// nothing (it renders as dead), as in `insert_post`.
async fn insert_replies(
    conn: &mut AnyConnection,
    posts: &[&NewPost],
    ids: &[i64],
) -> Result<(), StoreError> {
    let links: Vec<(i64, i64)> = posts
        .iter()
        .zip(ids)
        .flat_map(|(new, &id)| quoted(&new.quotes, id).into_iter().map(move |to| (id, to)))
        .collect();
    for chunk in chunks(&links) {
        // `WHERE true` lets SQLite tell the upsert's ON from the join's.
        let sql = format!(
            "INSERT INTO reply (reply_from, reply_to) \
             SELECT v.column1, p.id FROM (VALUES {}) AS v JOIN post p ON p.id = v.column2 \
             WHERE true ON CONFLICT DO NOTHING",
            placeholders(chunk.len(), 2)
        );
        let mut query = statement(sql);
        for (from, to) in chunk {
            query = query.bind(*from).bind(*to);
        }
        query.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// Records who committed each fenced reply (see `record_commit`).
async fn record_commits(
    conn: &mut AnyConnection,
    posts: &[&NewPost],
    ids: &[i64],
    held: &[Held],
) -> Result<(), StoreError> {
    let mut rows: Vec<(i64, &Held)> = Vec::new();
    for (new, &id) in posts.iter().zip(ids) {
        if let Some(fence) = new.fence {
            let h = held
                .iter()
                .find(|h| h.fence == fence)
                .ok_or_else(|| bug("a fence not checked"))?;
            rows.push((id, h));
        }
    }
    for chunk in chunks(&rows) {
        let sql = format!(
            "INSERT INTO post_commit (post, shard, epoch, node) VALUES {}",
            placeholders(chunk.len(), 4)
        );
        let mut query = statement(sql);
        for (post, h) in chunk {
            query = query
                .bind(*post)
                .bind(h.fence.shard)
                .bind(h.fence.epoch)
                .bind(h.node.as_str());
        }
        query.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

/// A statement whose text is fixed but for its number of rows: only
/// [`placeholders`] is spliced in, never a value.
fn statement(sql: String) -> Query<'static, Any, AnyArguments> {
    sqlx::query(AssertSqlSafe(sql))
}

/// `items` cut into runs of the sizes in [`CHUNKS`], largest first.
fn chunks<T>(mut items: &[T]) -> Vec<&[T]> {
    let mut out = Vec::new();
    for size in CHUNKS {
        while items.len() >= size {
            let (chunk, rest) = items.split_at(size);
            out.push(chunk);
            items = rest;
        }
    }
    out
}

/// `($1, $2), ($3, $4)` for two rows of two columns.
fn placeholders(rows: usize, columns: usize) -> String {
    let mut sql = String::with_capacity(rows * columns * 5);
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..columns {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * columns + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

fn bug(what: &str) -> StoreError {
    StoreError::Unavailable(format!("bulk reply write: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_item_in_order_with_few_shapes() {
        for n in 0..200usize {
            let items: Vec<usize> = (0..n).collect();
            let cut = chunks(&items);
            let joined: Vec<usize> = cut.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, items);
            assert!(cut.iter().all(|c| CHUNKS.contains(&c.len())));
        }
        assert_eq!(chunks(&[0; 85]).len(), 4); // 64 + 16 + 4 + 1
    }

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(1, 3), "($1, $2, $3)");
    }
}
