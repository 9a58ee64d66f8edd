//! One post's `<article>`: the markup a thread page shows for it, and the
//! same markup live updates insert, so a post looks identical whether it
//! arrived by reload or by event.
//!
//! ```text
//! <article class="post reply" id="N" data-thread="T">
//!   <header> subject? · poster badge · <time> · No. N · sage? </header>
//!   <figure> media info, thumbnail linking to the original </figure>
//!   <div class="post-body"> body_html, as rendered </div>
//!   <footer> Replies: >>M >>K </footer>
//! </article>
//! ```

use std::fmt::{self, Write};

use wani_store::{Board, Media, Post, Thread, ThreadId};

use super::html::{escape, fit, human_size, poster_hue, render, time};

/// The largest side of an opening post's thumbnail on the page, in CSS pixels.
pub(crate) const OP_THUMB: i64 = 250;
/// The largest side of a reply's thumbnail.
pub(crate) const REPLY_THUMB: i64 = 200;

/// One post as an `<article>` whose id is the post id, for the thread page
/// and live updates. `is_op` marks the opening post (subject, tags, larger
/// thumbnail). `body_html` is inserted as is: the renderer made it safe.
pub fn post(board: &Board, thread: &Thread, p: &Post, is_op: bool) -> String {
    render(|out| write_post(out, board, thread, p, is_op, &|_| true))
}

/// Writes one post. `local` says whether a post is on the same page, so a
/// "Replies:" link to it can stay an anchor; others go through
/// `/posts/{id}`, which redirects to wherever that post lives.
pub(crate) fn write_post(
    out: &mut String,
    board: &Board,
    thread: &Thread,
    p: &Post,
    is_op: bool,
    local: &dyn Fn(wani_store::PostId) -> bool,
) -> fmt::Result {
    let kind = if is_op { "op" } else { "reply" };
    // `has-media` switches the post to two columns (thumbnail | body), so its
    // width fits both instead of squeezing the text beside a float.
    let media = if p.media.is_some() { " has-media" } else { "" };
    writeln!(
        out,
        "<article class=\"post {kind}{media}\" id=\"{}\" data-thread=\"{}\" data-board=\"{}\">",
        p.id, thread.id, board.id
    )?;

    out.push_str("<header class=\"post-header\">");
    let subject = p
        .subject
        .as_deref()
        .or(if is_op {
            thread.subject.as_deref()
        } else {
            None
        })
        .filter(|s| !s.is_empty());
    if let Some(subject) = subject {
        write!(out, "<span class=\"subject\">{}</span> ", escape(subject))?;
    }
    if let Some(shown) = p.slip_name.as_deref() {
        // The tripcode has an element of its own, which no typed name can
        // produce (see `abuse::tripcode::split`).
        let (name, trip) = crate::abuse::tripcode::split(shown);
        write!(out, "<span class=\"name\">{}</span> ", escape(name))?;
        if let Some(trip) = trip {
            write!(
                out,
                "<span class=\"tripcode\" title=\"Tripcode\">{}</span> ",
                escape(trip)
            )?;
        }
    }
    if let Some(cap) = p.capcode.as_deref() {
        // The badge is what tells a real moderator from a name that looks like one.
        write!(
            out,
            "<span class=\"capcode\" title=\"Posted with a {0} slip\">## {0}</span> ",
            escape(cap)
        )?;
    }
    write!(
        out,
        "<span class=\"poster-id\" style=\"--poster-hue:{}\" title=\"Poster ID\">{}</span> ",
        poster_hue(&p.poster),
        escape(&p.poster)
    )?;
    time(out, p.datetime)?;
    write!(
        out,
        " <a class=\"post-no\" href=\"/threads/{t}#{n}\" title=\"Quote this post\" \
         data-post=\"{n}\">No. {n}</a>",
        t = thread.id,
        n = p.id
    )?;
    if p.sage {
        out.push_str(" <span class=\"sage\">sage</span>");
    }
    write!(
        out,
        " <a class=\"report-link\" href=\"/report/{}\" rel=\"nofollow\">Report</a>",
        p.id
    )?;
    if is_op && !thread.tags.is_empty() {
        out.push_str(" <span class=\"tags\">");
        for tag in &thread.tags {
            write!(out, "<span class=\"tag\">{}</span>", escape(tag))?;
        }
        out.push_str("</span>");
    }
    out.push_str("</header>\n");

    if let Some(m) = &p.media {
        let max = if is_op { OP_THUMB } else { REPLY_THUMB };
        media_figure(out, m, p.spoiler, max)?;
    } else if p.file_deleted {
        out.push_str("<div class=\"file-deleted\">File deleted.</div>\n");
    }

    writeln!(out, "<div class=\"post-body\">{}</div>", p.body_html)?;

    if !p.replies.is_empty() {
        replies(out, thread.id, &p.replies, local)?;
    }
    out.push_str("</article>\n");
    Ok(())
}

fn replies(
    out: &mut String,
    thread: ThreadId,
    ids: &[wani_store::PostId],
    local: &dyn Fn(wani_store::PostId) -> bool,
) -> fmt::Result {
    out.push_str("<footer class=\"post-replies\">Replies:");
    for id in ids {
        if local(*id) {
            write!(
                out,
                " <a class=\"post-reply\" href=\"/threads/{thread}#{id}\">&gt;&gt;{id}</a>"
            )?;
        } else {
            // Quoted from another thread: the store records who quoted, not
            // where; `/posts/{id}` finds it.
            write!(
                out,
                " <a class=\"post-reply\" href=\"/posts/{id}\">&gt;&gt;{id}</a>"
            )?;
        }
    }
    out.push_str("</footer>\n");
    Ok(())
}

/// The media block of a post: a caption (name, type, dimensions, size) and
/// the thumbnail linking to the original. Spoilered media gets the
/// `spoilered` class, which the stylesheet blurs until hover or focus.
pub(crate) fn media_figure(out: &mut String, m: &Media, spoiler: bool, max: i64) -> fmt::Result {
    out.push_str("<figure class=\"post-media\">");
    write!(
        out,
        "<figcaption class=\"media-info\"><a href=\"{url}\" target=\"_blank\" \
         rel=\"noopener\">{id}.{ext}</a> <span class=\"muted\">({ext}, {w}×{h}{dur}, {size}{anim})</span>\
         </figcaption>",
        id = m.id,
        url = escape(&crate::json::media_url(m)),
        ext = escape(&m.ext),
        w = m.width,
        h = m.height,
        size = human_size(m.size_bytes),
        dur = if is_video(m) && m.duration_ms > 0 {
            let s = m.duration_ms / 1000;
            format!(", {}:{:02}", s / 60, s % 60)
        } else {
            String::new()
        },
        anim = if m.is_animated && !is_video(m) {
            ", animated"
        } else {
            ""
        },
    )?;
    thumb_link(out, m, spoiler, max)?;
    out.push_str("</figure>\n");
    Ok(())
}

/// `<a><img></a>`: the thumbnail at most `max` px on its longest side,
/// linking to the original.
pub(crate) fn thumb_link(out: &mut String, m: &Media, spoiler: bool, max: i64) -> fmt::Result {
    let (w, h) = fit(m.thumb_width, m.thumb_height, max);
    let mut class = String::from("thumb-link");
    if spoiler {
        class.push_str(" spoilered");
    }
    if is_video(m) {
        class.push_str(" is-video");
    }
    write!(
        out,
        "<a class=\"{class}\" href=\"{url}\" target=\"_blank\" rel=\"noopener\"{label}>\
         <img class=\"thumb\" src=\"{thumb}\" width=\"{w}\" height=\"{h}\" \
         loading=\"lazy\" alt=\"{alt}\"></a>",
        url = escape(&crate::json::media_url(m)),
        thumb = escape(&crate::json::thumb_url(m)),
        label = if spoiler {
            " title=\"Spoiler: hover or focus to reveal\""
        } else {
            ""
        },
        alt = if spoiler { "Spoiler image" } else { "" },
    )
}

fn is_video(m: &Media) -> bool {
    m.mimetype.starts_with("video/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::fixtures::*;

    #[test]
    fn post_anchor_header_and_number_link() {
        let (b, t) = (board(), thread_full(false));
        let html = post(&b, &t.thread, &t.posts[1], false);
        assert!(html.starts_with("<article class=\"post reply\" id=\"102\""));
        assert!(html.contains("href=\"/threads/7#102\""));
        assert!(html.contains(">No. 102</a>"));
        assert!(
            html.contains("<time datetime=\"2024-05-01T12:01:00Z\">2024-05-01 12:01 UTC</time>")
        );
        assert!(html.contains("class=\"poster-id\" style=\"--poster-hue:"));
    }

    #[test]
    fn body_html_is_inserted_as_is() {
        let (b, t) = (board(), thread_full(false));
        let html = post(&b, &t.thread, &t.posts[1], false);
        assert!(html.contains(&t.posts[1].body_html));
        assert!(html.contains("<span class=\"greentext\">&gt;be me</span>"));
    }

    #[test]
    fn replies_line_links_every_quoting_post() {
        let (b, t) = (board(), thread_full(false));
        let op = post(&b, &t.thread, &t.posts[0], true);
        assert!(op.contains(
            "Replies: <a class=\"post-reply\" href=\"/threads/7#102\">&gt;&gt;102</a> \
             <a class=\"post-reply\" href=\"/threads/7#103\">&gt;&gt;103</a>"
        ));
        let last = post(&b, &t.thread, &t.posts[2], false);
        assert!(!last.contains("Replies:"));
    }

    #[test]
    fn media_has_size_lazy_loading_and_info() {
        let (b, t) = (board(), thread_full(false));
        let op = post(&b, &t.thread, &t.posts[0], true);
        // The 500×375 thumbnail is shown at 250×187.
        assert!(op.contains(
            "<img class=\"thumb\" src=\"/upload/thumb/11\" width=\"250\" height=\"187\" loading=\"lazy\""
        ));
        assert!(op.contains("href=\"/upload/11\""));
        assert!(op.contains("(jpg, 1600×1200, 240 KB)"));
        let spoilered = post(&b, &t.thread, &t.posts[2], false);
        assert!(spoilered.contains("class=\"thumb-link spoilered\""));
    }

    #[test]
    fn user_fields_are_escaped() {
        let (b, mut t) = (board(), thread_full(false));
        t.thread.tags = vec![EVIL.into()];
        t.posts[0].subject = Some(EVIL.into());
        t.posts[0].poster = EVIL.into();
        if let Some(m) = t.posts[0].media.as_mut() {
            m.ext = EVIL.into();
        }
        let html = post(&b, &t.thread, &t.posts[0], true);
        assert_no_evil(&html);
        assert!(html.contains(EVIL_ESCAPED));
    }

    #[test]
    fn sage_is_marked() {
        let (b, mut t) = (board(), thread_full(false));
        t.posts[1].sage = true;
        assert!(
            post(&b, &t.thread, &t.posts[1], false).contains("<span class=\"sage\">sage</span>")
        );
    }
}
