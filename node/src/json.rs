//! The JSON shapes of `/api/v1`, field for field Maniwani's, plus a few
//! additions (`body_html`, `thread`, `sage`, `board_name`) that clients can
//! ignore.

use serde::Serialize;
use wani_store::{Board, Media, Post, PostId, Thread, ThreadSummary};

/// A post as `GET /api/v1/thread/{id}` and `GET /api/v1/post/{id}` return it.
#[derive(Serialize)]
pub struct PostJson<'a> {
    pub id: PostId,
    pub thread: i64,
    /// The markup as written (`/post/{id}` returns the rendered HTML here, as Maniwani does).
    pub body: &'a str,
    pub body_html: &'a str,
    pub subject: Option<&'a str>,
    pub datetime: i64,
    pub poster: &'a str,
    pub media: Option<i64>,
    pub media_ext: Option<&'a str>,
    pub mimetype: Option<&'a str>,
    pub is_animated: bool,
    /// Width, height and (videos) duration of the media, when there is one.
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub duration_ms: Option<i64>,
    pub thumb_url: Option<String>,
    pub media_url: Option<String>,
    pub spoiler: bool,
    pub sage: bool,
    /// The name shown: the slip's name, or `name !tripcode`; null when anonymous.
    pub slip: Option<&'a str>,
    /// The role badge ("Admin", "Mod", "Volunteer") of a post made with a slip.
    pub capcode: Option<&'a str>,
    pub replies: &'a [PostId],
    pub tags: &'a [String],
}

/// Where clients fetch media from: `[blobs] public_url` with the object
/// prefix (a CDN in front of the bucket), or `None` for this node's
/// `/upload/…`. One value per process, set when a node starts; every page
/// and API answer links media through [`media_url`] and [`thumb_url`].
static PUBLIC_URL: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// Sets where media are linked (see [`PUBLIC_URL`]); an empty `base` links
/// them on the node.
pub fn set_public_url(base: &str, prefix: &str) {
    let url = (!base.is_empty()).then(|| format!("{}/{prefix}", base.trim_end_matches('/')));
    *PUBLIC_URL.write().unwrap_or_else(|e| e.into_inner()) = url;
}

/// Where a blob is linked when media are on a CDN (`None`: on the node).
pub fn public(key: &str) -> Option<String> {
    PUBLIC_URL
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|base| format!("{base}{key}"))
}

/// The original file's URL.
pub fn media_url(m: &Media) -> String {
    public(&m.blob).unwrap_or_else(|| format!("/upload/{}", m.id))
}

/// The thumbnail's URL.
pub fn thumb_url(m: &Media) -> String {
    public(&m.thumb_blob).unwrap_or_else(|| format!("/upload/thumb/{}", m.id))
}

pub fn thread_url(thread: &Thread) -> String {
    format!("/threads/{}", thread.id)
}

pub fn post_url(post: &Post) -> String {
    format!("/threads/{}#{}", post.thread, post.id)
}

/// A post with its thread's tags (only the opening post carries them).
pub fn post<'a>(p: &'a Post, thread: &'a Thread, is_op: bool) -> PostJson<'a> {
    with_tags(p, if is_op { &thread.tags } else { &[] })
}

/// A post that does not open its thread (it carries no tags).
pub fn reply(p: &Post) -> PostJson<'_> {
    with_tags(p, &[])
}

fn with_tags<'a>(p: &'a Post, tags: &'a [String]) -> PostJson<'a> {
    let m = p.media.as_ref();
    PostJson {
        id: p.id,
        thread: p.thread.0,
        body: &p.body,
        body_html: &p.body_html,
        subject: p.subject.as_deref(),
        datetime: p.datetime,
        poster: &p.poster,
        media: m.map(|m| m.id.0),
        media_ext: m.map(|m| m.ext.as_str()),
        mimetype: m.map(|m| m.mimetype.as_str()),
        is_animated: m.map(|m| m.is_animated).unwrap_or(false),
        width: m.map(|m| m.width),
        height: m.map(|m| m.height),
        duration_ms: m.map(|m| m.duration_ms).filter(|d| *d > 0),
        thumb_url: m.map(thumb_url),
        media_url: m.map(media_url),
        spoiler: p.spoiler,
        sage: p.sage,
        slip: p.slip_name.as_deref(),
        capcode: p.capcode.as_deref(),
        replies: &p.replies,
        tags,
    }
}

/// A catalog entry (`/board/{id}/catalog`; `/firehose` adds `board`).
#[derive(Serialize)]
pub struct CatalogJson<'a> {
    pub id: i64,
    pub subject: Option<&'a str>,
    pub body: &'a str,
    pub last_updated: i64,
    pub media: Option<i64>,
    pub thread_url: String,
    pub thumb_url: Option<String>,
    pub spoiler: bool,
    pub tags: &'a [String],
    pub views: i64,
    pub num_replies: i64,
    pub num_media: i64,
    pub admin_post: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_name: Option<&'a str>,
}

pub fn catalog_entry<'a>(t: &'a ThreadSummary, board: Option<&'a Board>) -> CatalogJson<'a> {
    let m = t.op.media.as_ref();
    CatalogJson {
        id: t.thread.id.0,
        subject: t.thread.subject.as_deref(),
        body: &t.op.body,
        last_updated: t.thread.last_updated,
        media: m.map(|m| m.id.0),
        thread_url: thread_url(&t.thread),
        thumb_url: m.map(thumb_url),
        spoiler: t.op.spoiler,
        tags: &t.thread.tags,
        views: t.thread.views,
        num_replies: t.num_replies,
        num_media: t.num_media,
        admin_post: t.op.capcode.as_deref() == Some("Admin"),
        board: board.map(|b| b.id.0),
        board_name: board.map(|b| b.name.as_str()),
    }
}

/// A board in `/boards/`.
#[derive(Serialize)]
pub struct BoardJson<'a> {
    pub id: i64,
    pub name: &'a str,
    pub title: &'a str,
    /// A thumbnail URL for the board (its latest thread's), as Maniwani's `media`.
    pub media: Option<String>,
    pub max_threads: i64,
    pub bump_limit: i64,
    pub mimetypes: &'a [String],
    pub max_file_bytes: i64,
}

pub fn board<'a>(b: &'a Board, thumb: Option<&Media>) -> BoardJson<'a> {
    BoardJson {
        id: b.id.0,
        name: &b.name,
        title: &b.title,
        media: thumb.map(thumb_url),
        max_threads: b.max_threads,
        bump_limit: b.bump_limit,
        mimetypes: &b.mimetypes,
        max_file_bytes: b.max_file_bytes,
    }
}
