//! Sample records for the page tests: one board, one thread of three posts,
//! and a hostile string to plant in every user-controlled field.

use wani_store::{
    Board, BoardId, Media, MediaId, Post, PostId, Thread, ThreadFull, ThreadId, ThreadSummary,
};

use super::{PageCtx, Theme};

/// A value that breaks out of text and of quoted attributes unless escaped.
pub const EVIL: &str = "\"><script>alert('x')</script>";
/// [`EVIL`] as `escape` writes it.
pub const EVIL_ESCAPED: &str = "&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;";

/// Fails if any unescaped part of [`EVIL`] reached the page.
pub fn assert_no_evil(html: &str) {
    assert!(
        !html.contains("<script>alert"),
        "unescaped script in:\n{html}"
    );
    assert!(!html.contains("'x'"), "unescaped quote in:\n{html}");
}

/// 2024-05-01T12:00:00Z.
pub const NOON: i64 = 1_714_564_800_000;

pub fn board() -> Board {
    Board {
        id: BoardId(3),
        name: "tech".into(),
        title: "Technology".into(),
        rules: "Be nice.".into(),
        max_threads: 50,
        bump_limit: 300,
        mimetypes: vec!["image/jpeg".into(), "image/png".into()],
        max_file_bytes: 8 * 1024 * 1024,
        captcha_threads: true,
        captcha_replies: false,
        thread_interval_secs: 60,
        reply_interval_secs: 10,
        max_pixels: 40_000_000,
        max_duration_secs: 300,
        max_frames: 1000,
        no_reposts: false,
    }
}

pub fn ctx<'a>(boards: &'a [Board]) -> PageCtx<'a> {
    PageCtx {
        theme: Theme::Stock,
        site_name: "wani",
        boards,
    }
}

pub fn media(id: i64, ext: &str) -> Media {
    Media {
        id: MediaId(id),
        blob: "ab".repeat(32),
        thumb_blob: "cd".repeat(32),
        mimetype: format!("image/{}", if ext == "jpg" { "jpeg" } else { ext }),
        ext: ext.into(),
        is_animated: false,
        width: 1600,
        height: 1200,
        thumb_width: 500,
        thumb_height: 375,
        size_bytes: 240 * 1024,
        thumb_mimetype: "image/jpeg".into(),
        duration_ms: 0,
        frames: 1,
        md5: None,
        file_name: None,
    }
}

pub fn thread_row(id: i64, archived: bool) -> Thread {
    Thread {
        id: ThreadId(id),
        board: BoardId(3),
        subject: Some("Rust on two cores".into()),
        tags: vec!["rust".into(), "build".into()],
        created: NOON,
        last_updated: NOON + 120_000,
        archived,
        views: 0,
        sticky: false,
        locked: false,
    }
}

fn post(id: i64, body_html: &str, minute: i64) -> Post {
    Post {
        id: PostId(id),
        thread: ThreadId(7),
        body: body_html.into(),
        body_html: body_html.into(),
        subject: None,
        datetime: NOON + minute * 60_000,
        poster: "a1b2".into(),
        media: None,
        spoiler: false,
        sage: false,
        replies: vec![],
        slip_name: None,
        capcode: None,
        file_deleted: false,
    }
}

pub fn thread_full(archived: bool) -> ThreadFull {
    let mut op = post(101, "<p>How long do your builds take?</p>", 0);
    op.subject = Some("Rust on two cores".into());
    op.body = "How long do your builds take?".into();
    op.media = Some(media(11, "jpg"));
    op.replies = vec![PostId(102), PostId(103)];
    let mut second = post(
        102,
        "<p><a class=\"post-reply\" href=\"/threads/7#101\">&gt;&gt;101</a><br>\
         <span class=\"greentext\">&gt;be me</span></p>",
        1,
    );
    second.poster = "ffe0".into();
    let mut third = post(
        103,
        "<p>see <span class=\"dead-quote\">&gt;&gt;9</span> ||x||</p>",
        2,
    );
    third.media = Some(media(12, "png"));
    third.spoiler = true;
    ThreadFull {
        thread: thread_row(7, archived),
        posts: vec![op, second, third],
        quoted_ops: vec![],
    }
}

/// A catalog entry for thread `id` with the given counts.
pub fn summary(id: i64, subject: &str, replies: i64, images: i64) -> ThreadSummary {
    let full = thread_full(false);
    let mut t = full.thread;
    t.id = ThreadId(id);
    t.subject = Some(subject.into());
    let mut op = full.posts[0].clone();
    op.id = PostId(id * 100);
    op.thread = ThreadId(id);
    op.subject = Some(subject.into());
    ThreadSummary {
        thread: t,
        op,
        num_replies: replies,
        num_media: images,
    }
}
