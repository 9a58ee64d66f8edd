//! The thread page (every post, then the reply form, or an "archived"
//! notice instead) and the thread's gallery of images.

use std::fmt::{self, Write};

use wani_store::{Board, ThreadFull};

use super::html::{escape, human_size};
use super::layout::{board_header, page, Shell};
use super::post::{thumb_link, write_post};
use super::PageCtx;

/// The largest side of a gallery thumbnail.
const GALLERY_THUMB: i64 = 250;

/// `/threads/{id}`: the opening post, the replies, and a reply form posting
/// to `/threads/{id}/new` unless the thread is archived.
pub fn thread(ctx: &PageCtx, board: &Board, t: &ThreadFull) -> String {
    let title = thread_title(board, t);
    page(
        ctx,
        Shell {
            title: &title,
            class: "page-thread",
            board: Some(board.id),
        },
        |out| {
            board_header(out, board)?;
            thread_nav(out, t, false)?;
            if t.thread.archived {
                archived_notice(out)?;
            }
            // `data-live`: wani.js follows the thread's live events and
            // appends new posts; an archived thread gets none.
            if t.thread.archived {
                writeln!(out, "<div class=\"thread\" id=\"thread-{}\">", t.thread.id)?;
            } else {
                writeln!(
                    out,
                    "<div class=\"thread\" id=\"thread-{0}\" data-live=\"thread={0}\">",
                    t.thread.id
                )?;
            }
            let here: std::collections::HashSet<wani_store::PostId> =
                t.posts.iter().map(|p| p.id).collect();
            for (i, p) in t.posts.iter().enumerate() {
                write_post(out, board, &t.thread, p, i == 0, &|id| here.contains(&id))?;
            }
            out.push_str("</div>\n");
            if t.thread.archived {
                archived_notice(out)?;
            } else {
                if t.thread.locked {
                    out.push_str(
                        "<p class=\"notice locked\">This thread is locked: only moderators may reply.</p>\n",
                    );
                }
                reply_form(out, board, t)?;
            }
            thread_nav(out, t, true)?;
            Ok(())
        },
    )
}

/// `/threads/{id}/gallery`: every image of the thread, each linking to its
/// original, with a link to the post it came from.
pub fn gallery(ctx: &PageCtx, board: &Board, t: &ThreadFull) -> String {
    let title = format!("Gallery · {}", thread_title(board, t));
    page(
        ctx,
        Shell {
            title: &title,
            class: "page-gallery",
            board: Some(board.id),
        },
        |out| {
            board_header(out, board)?;
            writeln!(
                out,
                "<h2>Gallery of <a href=\"/threads/{}\">{}</a></h2>",
                t.thread.id,
                escape(&subject_or_number(t))
            )?;
            let with_media: Vec<_> = t
                .posts
                .iter()
                .filter_map(|p| p.media.as_ref().map(|m| (p, m)))
                .collect();
            if with_media.is_empty() {
                out.push_str("<p class=\"empty\">No images in this thread.</p>\n");
                return Ok(());
            }
            out.push_str("<div class=\"gallery\">\n");
            for (p, m) in with_media {
                out.push_str("<figure class=\"gallery-item\">");
                thumb_link(out, m, p.spoiler, GALLERY_THUMB)?;
                writeln!(
                    out,
                    "<figcaption><a href=\"/threads/{t}#{n}\">No. {n}</a> \
                     <span class=\"muted\">{}, {}×{}, {}</span></figcaption></figure>",
                    escape(&m.ext),
                    m.width,
                    m.height,
                    human_size(m.size_bytes),
                    t = t.thread.id,
                    n = p.id
                )?;
            }
            out.push_str("</div>\n");
            Ok(())
        },
    )
}

fn subject_or_number(t: &ThreadFull) -> String {
    match t.thread.subject.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => s.to_string(),
        None => format!("Thread {}", t.thread.id),
    }
}

fn thread_title(board: &Board, t: &ThreadFull) -> String {
    format!("{} · /{}/", subject_or_number(t), board.name)
}

/// Links around the thread; the bottom copy is the `#bottom` anchor, which
/// exists whether or not the thread still takes replies.
fn thread_nav(out: &mut String, t: &ThreadFull, bottom: bool) -> fmt::Result {
    let images = t.posts.iter().filter(|p| p.media.is_some()).count();
    let replies = t.posts.len().saturating_sub(1);
    writeln!(
        out,
        "<nav class=\"thread-nav\"{} aria-label=\"Thread\"><a href=\"/boards/{b}\">Catalog</a> \
         <a href=\"/threads/{id}/gallery\">Gallery</a> <a href=\"#top\">Top</a> \
         <a href=\"#bottom\">Bottom</a> <span class=\"muted thread-counts\">{replies} repl{} · {images} image{}</span>{flags} \
         <a class=\"mod-link\" href=\"/mod/thread/{id}\" rel=\"nofollow\">Mod</a></nav>",
        if bottom { " id=\"bottom\"" } else { "" },
        if replies == 1 { "y" } else { "ies" },
        if images == 1 { "" } else { "s" },
        b = t.thread.board,
        id = t.thread.id,
        flags = match (t.thread.sticky, t.thread.locked) {
            (true, true) => " <span class=\"flag\">Sticky</span> <span class=\"flag\">Locked</span>",
            (true, false) => " <span class=\"flag\">Sticky</span>",
            (false, true) => " <span class=\"flag\">Locked</span>",
            (false, false) => "",
        },
    )
}

fn archived_notice(out: &mut String) -> fmt::Result {
    out.push_str(
        "<p class=\"notice archived\">This thread is archived: it can be read, \
         but no longer replied to.</p>\n",
    );
    Ok(())
}

/// The reply form: multipart, works without JavaScript; wani.js only adds
/// click-to-quote into its textarea.
fn reply_form(out: &mut String, board: &Board, t: &ThreadFull) -> fmt::Result {
    write!(
        out,
        "<form class=\"post-form reply-form\" id=\"reply\" method=\"post\" data-board=\"{name}\" \
         action=\"/threads/{id}/new\" enctype=\"multipart/form-data\">\n\
         <h2>Reply</h2>\n\
         <label>Name <input type=\"text\" name=\"name\" maxlength=\"40\" placeholder=\"Anonymous (name#secret for a tripcode)\" autocomplete=\"off\"></label>\n\
         {captcha}<label>Comment <textarea name=\"body\" rows=\"6\" maxlength=\"4096\"></textarea></label>\n\
         <label>File <input type=\"file\" name=\"media\" accept=\"{accept}\"> \
         <small class=\"muted\">optional, up to {max}</small></label>\n\
         <div class=\"form-row\"><label class=\"check\"><input type=\"checkbox\" name=\"spoiler\" value=\"on\"> Spoiler image</label>\n\
         <label class=\"check\"><input type=\"checkbox\" name=\"sage\" value=\"on\"> Sage (don't bump)</label>\n\
         <button type=\"submit\">Post reply</button></div>\n\
         <p class=\"form-help muted\">Click a post's <b>No.</b> to quote it. Markup: \
         <code>&gt;greentext</code>, <code>&gt;&gt;123</code>, <code>||spoiler||</code>, Markdown. \
         See the <a href=\"/faq\">FAQ</a>.</p>\n\
         </form>\n",
        id = t.thread.id,
        name = escape(&board.name),
        captcha = if board.captcha_replies { super::CAPTCHA_FIELD } else { "" },
        accept = escape(&board.mimetypes.join(",")),
        max = human_size(board.max_file_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::fixtures::*;

    #[test]
    fn thread_page_has_every_post_and_the_reply_form() {
        let b = board();
        let boards = [b.clone()];
        let t = thread_full(false);
        let html = thread(&ctx(&boards), &b, &t);
        for p in &t.posts {
            assert!(
                html.contains(&format!("id=\"{}\"", p.id)),
                "anchor of {}",
                p.id
            );
            assert!(html.contains(&p.body_html));
        }
        assert_eq!(html.matches("<article class=\"post op").count(), 1);
        assert_eq!(html.matches("<article class=\"post reply").count(), 2);
        assert!(html.contains("action=\"/threads/7/new\" enctype=\"multipart/form-data\""));
        assert!(html.contains("name=\"sage\""));
        assert!(html.contains("name=\"spoiler\""));
        assert!(html.contains("<textarea name=\"body\" rows=\"6\" maxlength=\"4096\">"));
        assert!(!html.contains("name=\"media\" required"));
        assert!(!html.contains("archived:"));
        assert!(html.contains("2 replies · 2 images"));
        assert!(html.contains("<title>Rust on two cores · /tech/ · wani</title>"));
    }

    #[test]
    fn archived_thread_has_no_form() {
        let b = board();
        let t = thread_full(true);
        let html = thread(&ctx(&[]), &b, &t);
        assert!(!html.contains("/threads/7/new"));
        assert!(!html.contains("<form"));
        assert!(!html.contains("<textarea"));
        assert!(html.contains("This thread is archived"));
        assert!(html.contains("id=\"101\""));
    }

    #[test]
    fn thread_page_escapes_subject_and_tags() {
        let mut b = board();
        b.name = EVIL.into();
        let mut t = thread_full(false);
        t.thread.subject = Some(EVIL.into());
        t.thread.tags = vec![EVIL.into()];
        t.posts[0].subject = Some(EVIL.into());
        for html in [thread(&ctx(&[]), &b, &t), gallery(&ctx(&[]), &b, &t)] {
            assert_no_evil(&html);
            assert!(html.contains(EVIL_ESCAPED));
        }
    }

    #[test]
    fn gallery_shows_every_image() {
        let b = board();
        let t = thread_full(false);
        let html = gallery(&ctx(&[]), &b, &t);
        assert!(html.contains("src=\"/upload/thumb/11\""));
        assert!(html.contains("src=\"/upload/thumb/12\""));
        assert!(html.contains("href=\"/upload/11\""));
        assert!(html.contains("<a href=\"/threads/7#103\">No. 103</a>"));
        assert_eq!(html.matches("class=\"gallery-item\"").count(), 2);
        let mut bare = t.clone();
        bare.posts.iter_mut().for_each(|p| p.media = None);
        assert!(gallery(&ctx(&[]), &b, &bare).contains("No images in this thread."));
    }
}
