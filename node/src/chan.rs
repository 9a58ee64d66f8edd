//! The JSON shapes of the 4chan read API (github.com/4chan/4chan-API), which
//! vichan copies: what imageboard clients, downloaders and archivers speak.
//!
//! Field by field 4chan's, absent (never null) where 4chan leaves a field
//! out. A thread's number is its opening post's, as on 4chan (wani's own
//! thread ids are a separate sequence; they appear nowhere here). Where
//! wani's model differs:
//! - `tim` is the media id (unique, and what `/{board}/src/{tim}{ext}`
//!   serves); `filename` is the name the file was uploaded under, or the
//!   same number for files stored before names were kept;
//! - times are UTC (4chan's `now` is in New York time);
//! - `id` is the poster id wani shows on every board (4 hex digits);
//! - `capcode` is the role of a slip, lowercase (`admin`, `mod`, `volunteer`);
//! - there is no image limit: `imagelimit` is never set and `image_limit` is 0.

use crate::abuse::tripcode;
use crate::pages::html::{escape, UtcTime};
use serde::Serialize;
use wani_store::{Board, Post, PostId, Thread, ThreadFull, ThreadId};

/// Threads per index page (`/{board}/{page}.json`), as on 4chan.
pub const PER_PAGE: usize = 15;
/// Replies shown under each thread on an index page and in the catalog.
pub const PREVIEW_REPLIES: usize = 5;

/// One post.
#[derive(Serialize, Default)]
pub struct ChanPost {
    pub no: i64,
    pub resto: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sticky: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archived_on: Option<i64>,
    pub now: String,
    pub time: i64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capcode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub com: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub file: Option<ChanFile>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filedeleted: Option<u8>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub op: Option<ChanOp>,
}

/// The fields of a post's file.
#[derive(Serialize)]
pub struct ChanFile {
    pub tim: i64,
    pub filename: String,
    pub ext: String,
    pub fsize: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    pub w: i64,
    pub h: i64,
    pub tn_w: i64,
    pub tn_h: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spoiler: Option<u8>,
}

/// What only an opening post carries.
#[derive(Serialize, Default)]
pub struct ChanOp {
    pub replies: i64,
    pub images: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bumplimit: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imagelimit: Option<u8>,
    pub semantic_url: String,
    pub last_modified: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted_posts: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub omitted_images: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_replies: Option<Vec<ChanPost>>,
}

fn flag(b: bool) -> Option<u8> {
    b.then_some(1)
}

/// `12/31/24(Tue)23:59:59`, in UTC.
pub fn now_text(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let t = UtcTime::from_millis(ms);
    let day = DAYS[ms.div_euclid(86_400_000).rem_euclid(7) as usize];
    format!(
        "{:02}/{:02}/{:02}({day}){:02}:{:02}:{:02}",
        t.month,
        t.day,
        t.year.rem_euclid(100),
        t.hour,
        t.minute,
        t.second
    )
}

/// 4chan's `semantic_url`: the subject (or the start of the comment) in
/// lowercase words joined by `-`.
pub fn semantic_url(op: &Post, thread: &Thread) -> String {
    let source = thread.subject.as_deref().unwrap_or(&op.body);
    let mut slug = String::new();
    for word in source
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if slug.len() + word.len() > 60 {
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.extend(word.chars().flat_map(char::to_lowercase));
    }
    slug
}

/// One post as 4chan writes it (no thread-level fields); `op_no` is the
/// number of the thread's opening post, `quoted_ops` those of the threads
/// it may quote.
pub fn post(
    p: &Post,
    thread: &Thread,
    board: &Board,
    op_no: i64,
    quoted_ops: &[(ThreadId, PostId)],
) -> ChanPost {
    let is_op = p.id.0 == op_no;
    let (name, trip) = match p.slip_name.as_deref() {
        Some(shown) => {
            let (name, trip) = tripcode::split(shown);
            (name.to_string(), trip.map(str::to_string))
        }
        None => ("Anonymous".to_string(), None),
    };
    let op_of = |t: i64| {
        quoted_ops
            .iter()
            .find(|(q, _)| q.0 == t)
            .map(|(_, op)| op.0)
    };
    let com = wani_actors::markup::futaba_com(&p.body_html, thread.id.0, &board.name, &op_of);
    let file = p.media.as_ref().map(|m| ChanFile {
        tim: m.id.0,
        // HTML-escaped like 4chan's (clients unescape it, as they do `name`).
        filename: m
            .file_name
            .as_deref()
            .map_or_else(|| m.id.0.to_string(), |n| escape(n).to_string()),
        ext: format!(".{}", m.ext),
        fsize: m.size_bytes,
        md5: m.md5.clone(),
        w: m.width,
        h: m.height,
        tn_w: m.thumb_width,
        tn_h: m.thumb_height,
        spoiler: flag(p.spoiler),
    });
    ChanPost {
        no: p.id.0,
        resto: if is_op { 0 } else { op_no },
        now: now_text(p.datetime),
        time: p.datetime.div_euclid(1000),
        name: escape(&name).to_string(),
        trip,
        id: Some(p.poster.clone()),
        capcode: p.capcode.as_deref().map(str::to_lowercase),
        sub: if is_op {
            thread.subject.as_deref().map(|s| escape(s).to_string())
        } else {
            None
        },
        com: (!com.is_empty()).then_some(com),
        file,
        filedeleted: flag(p.file_deleted),
        ..ChanPost::default()
    }
}

/// The opening post with the thread's flags and counts.
fn op(t: &ThreadFull, board: &Board) -> ChanPost {
    let thread = &t.thread;
    let Some(first) = t.posts.first() else {
        return ChanPost::default();
    };
    let replies = t.posts.len() as i64 - 1;
    let images = t.posts[1..].iter().filter(|p| p.media.is_some()).count() as i64;
    ChanPost {
        sticky: flag(thread.sticky),
        closed: flag(thread.locked),
        archived: flag(thread.archived),
        archived_on: thread
            .archived
            .then_some(thread.last_updated.div_euclid(1000)),
        op: Some(ChanOp {
            replies,
            images,
            bumplimit: flag(board.bump_limit > 0 && replies >= board.bump_limit),
            imagelimit: None,
            semantic_url: semantic_url(first, thread),
            last_modified: last_modified(t),
            ..ChanOp::default()
        }),
        ..post(first, thread, board, first.id.0, &t.quoted_ops)
    }
}

/// When anything visible in the thread last changed, in Unix seconds.
fn last_modified(t: &ThreadFull) -> i64 {
    t.posts
        .iter()
        .map(|p| p.datetime)
        .chain([t.thread.last_updated])
        .max()
        .unwrap_or(0)
        .div_euclid(1000)
}

#[derive(Serialize)]
pub struct Posts {
    pub posts: Vec<ChanPost>,
}

/// The number of the thread's opening post.
fn op_no(t: &ThreadFull) -> i64 {
    t.posts.first().map_or(0, |p| p.id.0)
}

/// `/{board}/thread/{no}.json` and `/{board}/res/{no}.json`.
pub fn thread(t: &ThreadFull, board: &Board) -> Posts {
    let mut posts = Vec::with_capacity(t.posts.len());
    posts.push(op(t, board));
    posts.extend(
        t.posts
            .iter()
            .skip(1)
            .map(|p| post(p, &t.thread, board, op_no(t), &t.quoted_ops)),
    );
    Posts { posts }
}

/// The last few replies, and how many replies and images are left out.
fn preview(t: &ThreadFull, board: &Board) -> (ChanPost, Vec<ChanPost>) {
    let mut head = op(t, board);
    let replies = t.posts.get(1..).unwrap_or_default();
    let shown = replies.len().min(PREVIEW_REPLIES);
    let (omitted, last) = replies.split_at(replies.len() - shown);
    if let Some(o) = head.op.as_mut() {
        o.omitted_posts = Some(omitted.len() as i64);
        o.omitted_images = Some(omitted.iter().filter(|p| p.media.is_some()).count() as i64);
    }
    let last = last
        .iter()
        .map(|p| post(p, &t.thread, board, op_no(t), &t.quoted_ops))
        .collect();
    (head, last)
}

/// A thread on an index page: `{"posts":[op, last replies…]}`.
pub fn index_entry(t: &ThreadFull, board: &Board) -> Posts {
    let (head, last) = preview(t, board);
    let mut posts = vec![head];
    posts.extend(last);
    Posts { posts }
}

/// A thread in `catalog.json`: the opening post with `last_replies`.
pub fn catalog_entry(t: &ThreadFull, board: &Board) -> ChanPost {
    let (mut head, last) = preview(t, board);
    if let Some(o) = head.op.as_mut() {
        if !last.is_empty() {
            o.last_replies = Some(last);
        }
    }
    head
}

/// A thread in `threads.json`.
#[derive(Serialize)]
pub struct ThreadStub {
    pub no: i64,
    pub last_modified: i64,
    pub replies: i64,
}

/// `threads.json`: thread numbers by page, pages counted from 1.
#[derive(Serialize)]
pub struct ThreadsPage {
    pub page: usize,
    pub threads: Vec<ThreadStub>,
}

pub fn threads(list: &[wani_store::ThreadSummary]) -> Vec<ThreadsPage> {
    list.chunks(PER_PAGE)
        .enumerate()
        .map(|(i, chunk)| ThreadsPage {
            page: i + 1,
            threads: chunk
                .iter()
                .map(|t| ThreadStub {
                    no: t.op.id.0,
                    last_modified: t.thread.last_updated.div_euclid(1000),
                    replies: t.num_replies,
                })
                .collect(),
        })
        .collect()
}

/// A board in `boards.json`.
#[derive(Serialize)]
pub struct ChanBoard<'a> {
    pub board: &'a str,
    pub title: &'a str,
    pub ws_board: u8,
    pub per_page: usize,
    pub pages: usize,
    pub max_filesize: i64,
    pub max_webm_filesize: i64,
    pub max_comment_chars: usize,
    pub max_webm_duration: i64,
    pub bump_limit: i64,
    pub image_limit: i64,
    pub cooldowns: Cooldowns,
    pub meta_description: String,
    pub is_archived: u8,
}

#[derive(Serialize)]
pub struct Cooldowns {
    pub threads: i64,
    pub replies: i64,
    pub images: i64,
}

pub fn board(b: &Board) -> ChanBoard<'_> {
    ChanBoard {
        board: &b.name,
        title: &b.title,
        ws_board: 1,
        per_page: PER_PAGE,
        pages: (b.max_threads.max(1) as usize).div_ceil(PER_PAGE),
        max_filesize: b.max_file_bytes,
        max_webm_filesize: b.max_file_bytes,
        max_comment_chars: wani_actors::rules::MAX_BODY_CHARS,
        max_webm_duration: b.max_duration_secs,
        bump_limit: b.bump_limit,
        image_limit: 0,
        cooldowns: Cooldowns {
            threads: b.thread_interval_secs,
            replies: b.reply_interval_secs,
            images: b.reply_interval_secs,
        },
        meta_description: format!("/{}/ - {}", b.name, escape(&b.title)),
        is_archived: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_4chans_format_in_utc() {
        // 2024-12-31 23:59:59 UTC was a Tuesday.
        assert_eq!(now_text(1_735_689_599_000), "12/31/24(Tue)23:59:59");
        assert_eq!(now_text(0), "01/01/70(Thu)00:00:00");
    }
}
