//! Pages about boards: the front page (greeting and latest bumped threads),
//! the board list, a board's catalog with its new-thread form, and its
//! archive. Catalog and front page share the thread tile.

use std::fmt::{self, Write};

use wani_store::{Board, Media, Thread, ThreadSummary};

use super::html::{escape, excerpt, fit, human_size, plain_text, time};
use super::layout::{board_header, page, Shell};
use super::PageCtx;

/// The largest side of a thumbnail in a catalog tile or a board card.
const TILE_THUMB: i64 = 150;
/// Characters of the opening post a tile shows.
const EXCERPT_CHARS: usize = 150;

/// `/`: the greeting, then the latest bumped threads across boards, each
/// tile labelled with its board.
pub fn front(ctx: &PageCtx, greeting: &str, latest: &[(Board, ThreadSummary)]) -> String {
    page(
        ctx,
        Shell {
            title: "",
            class: "page-front",
            board: None,
        },
        |out| {
            writeln!(
                out,
                "<section class=\"hero\">\n<h1>{}</h1>\n<p>{}</p>\n</section>",
                escape(ctx.site_name),
                escape(greeting)
            )?;
            out.push_str("<section class=\"latest\">\n<h2>Latest threads</h2>\n");
            if latest.is_empty() {
                out.push_str(
                    "<p class=\"empty\">No threads yet. Pick a <a href=\"/boards/\">board</a> \
                     and start one.</p>\n",
                );
            } else {
                out.push_str("<div class=\"catalog\">\n");
                for (board, s) in latest {
                    tile(out, Some(board), s)?;
                }
                out.push_str("</div>\n");
            }
            out.push_str("</section>\n");
            Ok(())
        },
    )
}

/// `/boards/`: every board as a card, with a thumbnail when it has one.
pub fn board_list(ctx: &PageCtx, boards: &[(Board, Option<Media>)]) -> String {
    page(
        ctx,
        Shell {
            title: "Boards",
            class: "page-boards",
            board: None,
        },
        |out| {
            out.push_str("<h1>Boards</h1>\n");
            if boards.is_empty() {
                out.push_str("<p class=\"empty\">No boards yet.</p>\n");
                return Ok(());
            }
            out.push_str("<div class=\"board-grid\">\n");
            for (b, media) in boards {
                out.push_str("<article class=\"board-card\">");
                write!(out, "<a class=\"board-thumb\" href=\"/boards/{}\">", b.id)?;
                match media {
                    Some(m) => {
                        let (w, h) = fit(m.thumb_width, m.thumb_height, TILE_THUMB);
                        write!(
                            out,
                            "<img src=\"{}\" width=\"{w}\" height=\"{h}\" \
                             loading=\"lazy\" alt=\"\">",
                            escape(&crate::json::thumb_url(m))
                        )?;
                    }
                    None => write!(
                        out,
                        "<span class=\"placeholder\" aria-hidden=\"true\">/{}/</span>",
                        escape(&b.name)
                    )?,
                }
                writeln!(
                    out,
                    "</a><h2><a href=\"/boards/{id}\">/{}/ — {}</a></h2>\
                     <p class=\"muted\"><a href=\"/boards/{id}\">Catalog</a> · \
                     <a href=\"/boards/{id}/archive\">Archive</a> · \
                     <a href=\"/boards/rules/{id}\">Rules</a></p></article>",
                    escape(&b.name),
                    escape(&b.title),
                    id = b.id
                )?;
            }
            out.push_str("</div>\n");
            Ok(())
        },
    )
}

/// `/boards/{id}`: the new-thread form, then the board's threads as tiles
/// in the order given (most recently bumped first, as the store returns them).
pub fn catalog(ctx: &PageCtx, board: &Board, threads: &[ThreadSummary]) -> String {
    let title = format!("/{}/ — {}", board.name, board.title);
    page(
        ctx,
        Shell {
            title: &title,
            class: "page-catalog",
            board: Some(board.id),
        },
        |out| {
            board_header(out, board)?;
            new_thread_form(out, board)?;
            // `data-live`: wani.js refreshes this section as threads are
            // created and bumped.
            writeln!(
                out,
                "<section class=\"catalog-live\" id=\"catalog-{}\" data-live=\"board={}\">",
                board.id, board.id
            )?;
            writeln!(
                out,
                "<p class=\"catalog-count muted\">{} thread{}</p>",
                threads.len(),
                if threads.len() == 1 { "" } else { "s" }
            )?;
            if threads.is_empty() {
                out.push_str("<p class=\"empty\">No threads yet. Start one above.</p>\n");
            } else {
                out.push_str("<div class=\"catalog\">\n");
                for s in threads {
                    tile(out, None, s)?;
                }
                out.push_str("</div>\n");
            }
            out.push_str("</section>\n");
            Ok(())
        },
    )
}

/// `/boards/{id}/archive`: threads pruned from the catalog, still readable.
/// Threads on one page of a board's archive.
pub const ARCHIVE_PAGE: usize = 100;

/// One page (1-based `page` of `last`) of a board's archive.
pub fn archive(ctx: &PageCtx, board: &Board, threads: &[Thread], number: u32, last: u32) -> String {
    let title = format!("Archive of /{}/", board.name);
    page(
        ctx,
        Shell {
            title: &title,
            class: "page-archive",
            board: Some(board.id),
        },
        |out| {
            board_header(out, board)?;
            out.push_str("<h2>Archive</h2>\n");
            if threads.is_empty() {
                out.push_str("<p class=\"empty\">Nothing archived yet.</p>\n");
                return Ok(());
            }
            out.push_str(
                "<div class=\"table-wrap\"><table class=\"archive\">\n<thead><tr><th>No.</th>\
                 <th>Subject</th><th class=\"optional\">Tags</th><th class=\"optional\">Created</th><th>Last bump</th></tr></thead>\n<tbody>\n",
            );
            for t in threads {
                write!(
                    out,
                    "<tr><td><a href=\"/threads/{id}\">{id}</a></td><td><a href=\"/threads/{id}\">{}</a></td><td class=\"optional\">",
                    escape(t.subject.as_deref().filter(|s| !s.is_empty()).unwrap_or("(no subject)")),
                    id = t.id
                )?;
                tags(out, &t.tags)?;
                out.push_str("</td><td class=\"optional\">");
                time(out, t.created)?;
                out.push_str("</td><td>");
                time(out, t.last_updated)?;
                out.push_str("</td></tr>\n");
            }
            out.push_str("</tbody>\n</table></div>\n");
            pager(out, board, number, last)
        },
    )
}

/// Links to the archive's other pages: first, previous, this one, next, last.
fn pager(out: &mut String, board: &Board, page: u32, last: u32) -> fmt::Result {
    if last <= 1 {
        return Ok(());
    }
    let href = |p: u32| format!("/boards/{}/archive?page={p}", board.id);
    out.push_str("<nav class=\"pager\" aria-label=\"Archive pages\">");
    if page > 1 {
        write!(out, "<a href=\"{}\" rel=\"first\">First</a> ", href(1))?;
        write!(
            out,
            "<a href=\"{}\" rel=\"prev\">Previous</a> ",
            href(page - 1)
        )?;
    }
    write!(out, "<span class=\"current\">Page {page} of {last}</span>")?;
    if page < last {
        write!(out, " <a href=\"{}\" rel=\"next\">Next</a>", href(page + 1))?;
        write!(out, " <a href=\"{}\" rel=\"last\">Last</a>", href(last))?;
    }
    out.push_str("</nav>\n");
    Ok(())
}

/// One thread in a catalog grid: thumbnail, counts, subject, excerpt, tags;
/// everything links to the thread. `board` labels the tile on the front page.
fn tile(out: &mut String, board: Option<&Board>, s: &ThreadSummary) -> fmt::Result {
    let id = s.thread.id;
    writeln!(out, "<article class=\"tile\" data-thread=\"{id}\">")?;
    match &s.op.media {
        Some(m) => {
            let (w, h) = fit(m.thumb_width, m.thumb_height, TILE_THUMB);
            writeln!(
                out,
                "<a class=\"tile-thumb{}\" href=\"/threads/{id}\"><img src=\"{}\" \
                 width=\"{w}\" height=\"{h}\" loading=\"lazy\" alt=\"\"></a>",
                if s.op.spoiler { " spoilered" } else { "" },
                escape(&crate::json::thumb_url(m))
            )?;
        }
        None => writeln!(
            out,
            "<a class=\"tile-thumb\" href=\"/threads/{id}\"><span class=\"placeholder\">No image</span></a>"
        )?,
    }
    out.push_str("<div class=\"tile-body\">\n");
    if let Some(b) = board {
        write!(
            out,
            "<a class=\"tile-board\" href=\"/boards/{}\">/{}/</a> ",
            b.id,
            escape(&b.name)
        )?;
    }
    writeln!(
        out,
        "<span class=\"tile-counts\" title=\"Replies / Images\">R: <b>{}</b> / I: <b>{}</b></span>",
        s.num_replies, s.num_media
    )?;
    let subject = s
        .thread
        .subject
        .as_deref()
        .or(s.op.subject.as_deref())
        .filter(|s| !s.is_empty());
    match subject {
        Some(subject) => writeln!(
            out,
            "<a class=\"tile-subject\" href=\"/threads/{id}\"><b>{}</b></a>",
            escape(subject)
        )?,
        None => writeln!(
            out,
            "<a class=\"tile-subject\" href=\"/threads/{id}\">Thread {id}</a>"
        )?,
    }
    // From the rendered body, so markup never shows and spoilers stay hidden.
    let text = excerpt(&plain_text(&s.op.body_html), EXCERPT_CHARS);
    if !text.is_empty() {
        writeln!(out, "<p class=\"excerpt\">{}</p>", escape(&text))?;
    }
    if !s.thread.tags.is_empty() {
        out.push_str("<p class=\"tags\">");
        tags(out, &s.thread.tags)?;
        out.push_str("</p>\n");
    }
    out.push_str("</div>\n</article>\n");
    Ok(())
}

fn tags(out: &mut String, tags: &[String]) -> fmt::Result {
    for tag in tags {
        write!(out, "<span class=\"tag\">{}</span>", escape(tag))?;
    }
    Ok(())
}

/// The new-thread form: a plain multipart POST that works without
/// JavaScript. Folded in a `<details>` so the catalog comes first on phones.
fn new_thread_form(out: &mut String, board: &Board) -> fmt::Result {
    write!(
        out,
        "<details class=\"form-toggle\">\n<summary>Start a new thread</summary>\n\
         <form class=\"post-form new-thread\" data-board=\"{name}\" method=\"post\" action=\"/boards/{id}/new\" \
         enctype=\"multipart/form-data\">\n\
         <label>Name <input type=\"text\" name=\"name\" maxlength=\"40\" placeholder=\"Anonymous (name#secret for a tripcode)\" autocomplete=\"off\"></label>\n\
         <label>Subject <input type=\"text\" name=\"subject\" maxlength=\"64\" autocomplete=\"off\"></label>\n\
         {captcha}\
         <label>Comment <textarea name=\"body\" rows=\"6\" maxlength=\"4096\"></textarea></label>\n\
         <label>Tags <input type=\"text\" name=\"tags\" placeholder=\"comma, separated\" autocomplete=\"off\"></label>\n\
         <label>File <input type=\"file\" name=\"media\" required accept=\"{accept}\"> \
         <small class=\"muted\">required, up to {max}</small></label>\n\
         <div class=\"form-row\"><label class=\"check\"><input type=\"checkbox\" name=\"spoiler\" value=\"on\"> Spoiler image</label>\n\
         <button type=\"submit\">Create thread</button></div>\n\
         <p class=\"form-help muted\">Markup: <code>&gt;greentext</code>, <code>&gt;&gt;123</code>, \
         <code>||spoiler||</code>, Markdown. See the <a href=\"/faq\">FAQ</a>.</p>\n\
         </form>\n</details>\n",
        id = board.id,
        name = escape(&board.name),
        captcha = if board.captcha_threads { super::CAPTCHA_FIELD } else { "" },
        accept = escape(&board.mimetypes.join(",")),
        max = human_size(board.max_file_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::fixtures::*;
    use crate::pages::Theme;

    #[test]
    fn catalog_lists_threads_in_order_with_counts() {
        let b = board();
        let boards = [b.clone()];
        let threads = [
            summary(30, "third bumped first", 12, 4),
            summary(10, "first", 0, 1),
            summary(20, "second", 5, 2),
        ];
        let html = catalog(&ctx(&boards), &b, &threads);
        let pos = |needle: &str| {
            html.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing"))
        };
        assert!(pos("href=\"/threads/30\"") < pos("href=\"/threads/10\""));
        assert!(pos("href=\"/threads/10\"") < pos("href=\"/threads/20\""));
        assert!(html.contains("R: <b>12</b> / I: <b>4</b>"));
        assert!(html.contains("R: <b>0</b> / I: <b>1</b>"));
        assert!(html.contains("<b>third bumped first</b>"));
        assert!(html.contains("<p class=\"excerpt\">How long do your builds take?</p>"));
        assert!(html.contains("3 threads"));
    }

    #[test]
    fn catalog_has_the_new_thread_form() {
        let b = board();
        let html = catalog(&ctx(&[]), &b, &[]);
        assert!(html.contains("action=\"/boards/3/new\" enctype=\"multipart/form-data\""));
        assert!(html.contains("name=\"subject\" maxlength=\"64\""));
        assert!(html.contains("name=\"body\" rows=\"6\" maxlength=\"4096\""));
        assert!(html.contains("name=\"tags\""));
        assert!(html.contains("name=\"media\" required accept=\"image/jpeg,image/png\""));
        assert!(html.contains("name=\"spoiler\""));
        assert!(!html.contains("idempotency"));
        assert!(html.contains("No threads yet"));
    }

    #[test]
    fn excerpts_are_plain_escaped_and_truncated() {
        let b = board();
        let mut s = summary(1, "s", 0, 1);
        s.op.body_html = format!("<p>&lt;b&gt;hi&lt;/b&gt; <em>{}</em></p>", "y".repeat(300));
        let html = catalog(&ctx(&[]), &b, &[s]);
        assert!(html.contains("<p class=\"excerpt\">&lt;b&gt;hi&lt;/b&gt; yyy"));
        assert!(html.contains("y…</p>"));
        assert!(!html.contains(&"y".repeat(200)));
    }

    #[test]
    fn board_and_thread_fields_are_escaped_everywhere() {
        let mut b = board();
        b.name = EVIL.into();
        b.title = EVIL.into();
        b.mimetypes = vec![EVIL.into()];
        let boards = [b.clone()];
        let mut s = summary(1, EVIL, 0, 1);
        s.thread.tags = vec![EVIL.into()];
        s.op.body = EVIL.into();
        if let Some(m) = s.op.media.as_mut() {
            m.ext = EVIL.into();
        }
        let mut archived = s.thread.clone();
        archived.archived = true;
        for html in [
            catalog(&ctx(&boards), &b, std::slice::from_ref(&s)),
            front(&ctx(&boards), EVIL, &[(b.clone(), s.clone())]),
            board_list(&ctx(&boards), &[(b.clone(), s.op.media.clone())]),
            archive(&ctx(&boards), &b, &[archived], 1, 1),
        ] {
            assert_no_evil(&html);
            assert!(html.contains(EVIL_ESCAPED));
        }
    }

    #[test]
    fn front_labels_tiles_with_their_board() {
        let b = board();
        let boards = [b.clone()];
        let html = front(
            &ctx(&boards),
            "Welcome!",
            &[(b.clone(), summary(5, "hello", 1, 1))],
        );
        assert!(html.contains("<p>Welcome!</p>"));
        assert!(html.contains("<a class=\"tile-board\" href=\"/boards/3\">/tech/</a>"));
        assert!(html.contains("href=\"/threads/5\""));
        assert!(html.contains("<title>wani</title>"));
    }

    #[test]
    fn theme_stylesheet_follows_the_context() {
        let b = board();
        let boards = [b.clone()];
        for theme in Theme::ALL {
            let mut c = ctx(&boards);
            c.theme = theme;
            let html = board_list(&c, &[(b.clone(), None)]);
            assert!(html.contains(&format!(
                "<link rel=\"stylesheet\" href=\"/static/themes/{}.css\">",
                theme.name()
            )));
            assert_eq!(html.matches("/static/themes/").count(), 1);
        }
    }

    #[test]
    fn board_list_links_each_board_with_its_thumbnail() {
        let b = board();
        let html = board_list(&ctx(&[]), &[(b.clone(), Some(media(4, "png"))), (b, None)]);
        assert!(html.contains("src=\"/upload/thumb/4\" width=\"150\" height=\"112\""));
        assert!(html.contains("<a href=\"/boards/3\">/tech/ — Technology</a>"));
        assert!(html.contains("<span class=\"placeholder\" aria-hidden=\"true\">/tech/</span>"));
    }

    #[test]
    fn archive_links_threads() {
        let b = board();
        let html = archive(&ctx(&[]), &b, &[thread_row(7, true)], 1, 1);
        assert!(html.contains("<a href=\"/threads/7\">Rust on two cores</a>"));
        assert!(html.contains("<span class=\"tag\">rust</span>"));
        assert!(!html.contains("class=\"pager\""), "one page needs no pager");
        assert!(archive(&ctx(&[]), &b, &[], 1, 1).contains("Nothing archived yet"));
        let middle = archive(&ctx(&[]), &b, &[thread_row(7, true)], 2, 3);
        assert!(middle.contains("href=\"/boards/3/archive?page=1\" rel=\"prev\""));
        assert!(middle.contains("href=\"/boards/3/archive?page=3\" rel=\"next\""));
        assert!(middle.contains("Page 2 of 3"));
    }
}
