//! Reading a Maniwani site: its database as Maniwani's SQLAlchemy models
//! define it (DangerOnTheRanger/maniwani, `model/`), on SQLite or
//! PostgreSQL, and its upload folder as its FolderStorage lays it out.
//!
//! The queries are written to read the same on both databases: integers
//! and booleans come back as BIGINT (sqlx's Any driver reads neither a
//! SQLite BOOLEAN nor a PostgreSQL INTEGER as i64 otherwise), times as
//! text, which both print as `YYYY-MM-DD HH:MM:SS[.ffffff]` (Maniwani
//! stores naive UTC).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row as _};

/// Everything read from the source database.
#[derive(Debug, Default)]
pub struct Site {
    pub boards: Vec<Board>,
    pub slips: Vec<Slip>,
    pub tags: HashMap<i64, Tag>,
    pub threads: Vec<Thread>,
    pub posters: HashMap<i64, Poster>,
    pub media: HashMap<i64, Media>,
    /// Every post, by thread then id.
    pub posts: Vec<Post>,
}

#[derive(Debug, Clone)]
pub struct Board {
    pub id: i64,
    pub name: String,
    pub rules: String,
    pub max_threads: Option<i64>,
    pub mimetypes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Slip {
    pub id: i64,
    pub name: String,
    pub pass_hash: String,
    pub is_admin: bool,
    pub is_mod: bool,
}

#[derive(Debug, Clone)]
pub struct Tag {
    pub name: String,
    pub bg_style: Option<String>,
    pub text_style: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Thread {
    pub id: i64,
    pub board: i64,
    pub views: i64,
    /// Milliseconds since the Unix epoch; `None` when Maniwani left it empty.
    pub last_updated: Option<i64>,
    pub tags: Vec<i64>,
}

#[derive(Debug, Clone)]
pub struct Poster {
    pub hex: String,
    pub ip: String,
    pub slip: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Media {
    pub ext: String,
    pub mimetype: String,
}

#[derive(Debug, Clone)]
pub struct Post {
    pub id: i64,
    pub thread: i64,
    pub body: String,
    pub subject: Option<String>,
    pub datetime: i64,
    pub poster: i64,
    pub media: Option<i64>,
    pub spoiler: bool,
}

/// Opens the source read-only where the database allows it.
pub async fn connect(url: &str) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let url = if url.starts_with("sqlite:") {
        // sqlite:///abs, sqlite:////abs (SQLAlchemy's spelling) or sqlite://rel.
        let rest = url.trim_start_matches("sqlite:");
        let path = rest
            .strip_prefix("//")
            .unwrap_or(rest)
            .split('?')
            .next()
            .unwrap_or_default();
        if !Path::new(path).is_file() {
            anyhow::bail!("there is no Maniwani database at {path}");
        }
        format!("sqlite://{path}?mode=ro")
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        url.to_string()
    } else {
        anyhow::bail!("--from takes a sqlite:// or postgres:// URL, got {url:?}");
    };
    AnyPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .with_context(|| format!("opening the Maniwani database {url}"))
}

/// Reads the whole site.
pub async fn read(pool: &AnyPool) -> anyhow::Result<Site> {
    let mut site = Site::default();
    let q = |sql: &'static str| sqlx::query(sql);
    let table = |name: &'static str| {
        move |e: sqlx::Error| {
            anyhow::anyhow!("reading Maniwani's {name} table (is this a Maniwani database?): {e}")
        }
    };

    for r in q(
        "SELECT CAST(id AS BIGINT), name, rules, CAST(max_threads AS BIGINT), mimetypes \
                FROM board ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .map_err(table("board"))?
    {
        let mimetypes: String = r.try_get(4)?;
        site.boards.push(Board {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            rules: r.try_get::<Option<String>, _>(2)?.unwrap_or_default(),
            max_threads: r.try_get(3)?,
            mimetypes: mimetypes
                .split([',', ';', ' '])
                .map(|m| m.trim().to_ascii_lowercase())
                .filter(|m| !m.is_empty())
                .collect(),
        });
    }
    for r in q("SELECT CAST(id AS BIGINT), name, pass_hash, \
                CAST(CASE WHEN is_admin THEN 1 ELSE 0 END AS BIGINT), \
                CAST(CASE WHEN is_mod THEN 1 ELSE 0 END AS BIGINT) FROM slip ORDER BY id")
    .fetch_all(pool)
    .await
    .map_err(table("slip"))?
    {
        site.slips.push(Slip {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            pass_hash: r.try_get(2)?,
            is_admin: r.try_get::<i64, _>(3)? != 0,
            is_mod: r.try_get::<i64, _>(4)? != 0,
        });
    }
    for r in q("SELECT CAST(id AS BIGINT), name, bg_style, text_style FROM tag")
        .fetch_all(pool)
        .await
        .map_err(table("tag"))?
    {
        site.tags.insert(
            r.try_get(0)?,
            Tag {
                name: r.try_get(1)?,
                bg_style: r.try_get(2)?,
                text_style: r.try_get(3)?,
            },
        );
    }
    let mut thread_tags: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in q("SELECT CAST(thread_id AS BIGINT), CAST(tag_id AS BIGINT) FROM tags")
        .fetch_all(pool)
        .await
        .map_err(table("tags"))?
    {
        thread_tags
            .entry(r.try_get(0)?)
            .or_default()
            .push(r.try_get(1)?);
    }
    for r in q(
        "SELECT CAST(id AS BIGINT), CAST(board AS BIGINT), CAST(views AS BIGINT), \
                CAST(last_updated AS TEXT) FROM thread ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .map_err(table("thread"))?
    {
        let id: i64 = r.try_get(0)?;
        let last: Option<String> = r.try_get(3)?;
        site.threads.push(Thread {
            id,
            board: r.try_get(1)?,
            views: r.try_get(2)?,
            last_updated: last.as_deref().and_then(parse_time),
            tags: thread_tags.remove(&id).unwrap_or_default(),
        });
    }
    for r in q(
        "SELECT CAST(id AS BIGINT), hex_string, ip_address, CAST(slip AS BIGINT) \
                FROM poster",
    )
    .fetch_all(pool)
    .await
    .map_err(table("poster"))?
    {
        site.posters.insert(
            r.try_get(0)?,
            Poster {
                hex: r.try_get(1)?,
                ip: r.try_get(2)?,
                slip: r.try_get(3)?,
            },
        );
    }
    for r in q("SELECT CAST(id AS BIGINT), ext, mimetype FROM media")
        .fetch_all(pool)
        .await
        .map_err(table("media"))?
    {
        site.media.insert(
            r.try_get(0)?,
            Media {
                ext: r.try_get(1)?,
                mimetype: r.try_get(2)?,
            },
        );
    }
    for r in q(
        "SELECT CAST(id AS BIGINT), CAST(thread AS BIGINT), body, subject, \
                CAST(datetime AS TEXT), CAST(poster AS BIGINT), CAST(media AS BIGINT), \
                CAST(CASE WHEN spoiler THEN 1 ELSE 0 END AS BIGINT) \
                FROM post ORDER BY thread, id",
    )
    .fetch_all(pool)
    .await
    .map_err(table("post"))?
    {
        let id: i64 = r.try_get(0)?;
        let when: String = r.try_get(4)?;
        site.posts.push(Post {
            id,
            thread: r.try_get(1)?,
            body: r.try_get(2)?,
            subject: r.try_get(3)?,
            datetime: parse_time(&when)
                .with_context(|| format!("post {id} has a date Maniwani never wrote: {when:?}"))?,
            poster: r.try_get(5)?,
            media: r.try_get(6)?,
            spoiler: r.try_get::<i64, _>(7)? != 0,
        });
    }
    Ok(site)
}

/// Where Maniwani's FolderStorage keeps media `id`: `<upload folder>/<id>.<ext>`
/// (an `attachments/` folder beside it is looked in too: Maniwani's bootstrap
/// made one, and a copy of its S3 bucket has that name).
/// `None` also for an extension that is not a plain word: the database is
/// not trusted to name a path outside the folder.
pub fn media_path(folder: &Path, id: i64, ext: &str) -> Option<PathBuf> {
    if ext.is_empty() || ext.len() > 8 || !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    let name = format!("{id}.{ext}");
    [folder.join(&name), folder.join("attachments").join(&name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// Milliseconds since the Unix epoch of a naive UTC `YYYY-MM-DD HH:MM:SS[.f]`
/// (a `T` between date and time is taken too).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = s.split_once([' ', 'T']).unwrap_or((s, "00:00:00"));
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let hms = hms.trim_end_matches(|c: char| !c.is_ascii_digit());
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0));
    let frac: String = frac
        .chars()
        .take_while(char::is_ascii_digit)
        .take(3)
        .collect();
    let ms = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32)
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some((days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + sec) * 1000 + ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_extension_never_leaves_the_upload_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("3.png"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("attachments")).unwrap();
        std::fs::write(dir.path().join("attachments/4.jpg"), b"x").unwrap();
        assert_eq!(
            media_path(dir.path(), 3, "png"),
            Some(dir.path().join("3.png"))
        );
        assert_eq!(
            media_path(dir.path(), 4, "jpg"),
            Some(dir.path().join("attachments/4.jpg"))
        );
        for ext in ["", "png/../../etc/passwd", "../3.png", "p g", "verylongext"] {
            assert_eq!(media_path(dir.path(), 3, ext), None, "{ext:?}");
        }
    }

    #[test]
    fn maniwani_times_read_as_utc_milliseconds() {
        assert_eq!(parse_time("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_time("2020-05-01 12:01:00.000000"),
            Some(1_588_334_460_000)
        );
        assert_eq!(
            parse_time("2020-05-01T12:01:00.25"),
            Some(1_588_334_460_250)
        );
        assert_eq!(parse_time("2000-02-29 23:59:59.999"), Some(951_868_799_999));
        assert_eq!(parse_time("2020-13-01 00:00:00"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
