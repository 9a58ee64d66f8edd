//! The smaller pages: board and site rules, the FAQ (how to post and the
//! markup cheat-sheet), the theme picker, the error page and the "posted"
//! fallback page.

use std::fmt::Write;

use wani_store::Board;

use super::html::escape;
use super::layout::{board_header, page, Shell};
use super::{PageCtx, Theme};

/// `/boards/rules/{id}`: a board's rules, already rendered to safe HTML.
pub fn board_rules(ctx: &PageCtx, board: &Board, rules_html: &str) -> String {
    let title = format!("Rules of /{}/", board.name);
    page(
        ctx,
        Shell {
            title: &title,
            class: "page-rules",
            board: Some(board.id),
        },
        |out| {
            board_header(out, board)?;
            out.push_str("<section class=\"prose\">\n<h2>Board rules</h2>\n");
            if rules_html.trim().is_empty() {
                out.push_str("<p class=\"empty\">This board has no rules of its own; the <a href=\"/rules\">site rules</a> apply.</p>\n");
            } else {
                writeln!(out, "<div class=\"rules\">{rules_html}</div>")?;
                out.push_str(
                    "<p class=\"muted\">The <a href=\"/rules\">site rules</a> apply too.</p>\n",
                );
            }
            out.push_str("</section>\n");
            Ok(())
        },
    )
}

/// `/rules`: the site rules, already rendered to safe HTML.
pub fn rules(ctx: &PageCtx, rules_html: &str) -> String {
    page(
        ctx,
        Shell {
            title: "Rules",
            class: "page-rules",
            board: None,
        },
        |out| {
            out.push_str("<section class=\"prose\">\n<h1>Rules</h1>\n");
            if rules_html.trim().is_empty() {
                out.push_str("<p class=\"empty\">No site rules have been set.</p>\n");
            } else {
                writeln!(out, "<div class=\"rules\">{rules_html}</div>")?;
            }
            out.push_str("<p class=\"muted\">Each board may add its own rules; see the board's Rules link.</p>\n</section>\n");
            Ok(())
        },
    )
}

/// `/faq`: how to post, the markup cheat-sheet, poster ids, sage and the
/// bump limit.
pub fn faq(ctx: &PageCtx) -> String {
    page(
        ctx,
        Shell {
            title: "FAQ",
            class: "page-faq",
            board: None,
        },
        |out| {
            out.push_str(FAQ_HTML);
            Ok(())
        },
    )
}

/// The FAQ's fixed content. The markup examples show both what to type and
/// the markup classes the stylesheet gives the result.
const FAQ_HTML: &str = r#"<section class="prose">
<h1>Frequently asked questions</h1>

<h2 id="posting">How do I post?</h2>
<p>Pick a board, then <b>Start a new thread</b> at the top of its catalog. A new thread needs an
image; a subject (up to 64 characters) and comma-separated tags are optional. To reply, open the
thread and use the form at the bottom; an image is optional there. Posts are anonymous and hold up
to 4096 characters. Check <b>Spoiler image</b> to blur your image until someone hovers or taps it.</p>
<p>Click a post's <b>No.</b> to quote it in your reply. Hover over a <code>&gt;&gt;123</code> link to
preview the post it points to.</p>

<h2 id="markup">What markup can I use?</h2>
<div class="table-wrap"><table class="cheatsheet">
<thead><tr><th>You type</th><th>You get</th></tr></thead>
<tbody>
<tr><td><code>&gt;be me</code> at the start of a line</td><td><span class="greentext">&gt;be me</span></td></tr>
<tr><td><code>&gt;&gt;123</code></td><td>a link to post 123, in any thread: <a class="post-reply" href="/faq#markup">&gt;&gt;123</a>; a post that does not exist is shown <span class="dead-quote">&gt;&gt;123</span></td></tr>
<tr><td><code>||secret||</code></td><td><span class="spoiler">secret</span> (hover, focus or tap to reveal)</td></tr>
<tr><td><code>**bold**</code>, <code>*italic*</code></td><td><strong>bold</strong>, <em>italic</em></td></tr>
<tr><td><code>`code`</code>, or lines indented by four spaces</td><td><code>code</code></td></tr>
<tr><td><code>[text](https://example.org)</code></td><td>a link</td></tr>
<tr><td><code>- item</code> or <code>1. item</code></td><td>a list</td></tr>
<tr><td>one line break</td><td>a line break (no need for two spaces)</td></tr>
</tbody>
</table></div>
<p>Anything else is <a href="https://commonmark.org/help/">Markdown</a>. HTML you type is shown as text.</p>

<h2 id="poster-ids">What is the coloured tag next to each post?</h2>
<p>A poster ID: four hexadecimal digits that stay the same for one poster within one thread, and
differ between threads. It lets you tell who is talking without names. Its colour comes from the
digits, so the same ID always has the same colour.</p>

<h2 id="bumping">How are threads ordered?</h2>
<p>A catalog lists threads by their last bump, newest first. A reply bumps its thread, unless:</p>
<ul>
<li>the same poster wrote the previous post in that thread (no bumping your own thread alone);</li>
<li>the reply is marked <b>sage</b>: check <i>Sage</i> in the reply form to post without bumping;</li>
<li>the thread has reached its board's <b>bump limit</b> (a few hundred replies): it still takes
replies, but sinks as other threads are bumped.</li>
</ul>

<h2 id="archive">Where did a thread go?</h2>
<p>Each board keeps a fixed number of threads. A new thread on a full board moves the least recently
bumped one to the board's <b>archive</b>, where it can still be read but not replied to.</p>

<h2 id="themes">Can I change how it looks?</h2>
<p>Yes: pick a theme on the <a href="/themes">Themes</a> page. Your choice is kept in a cookie.</p>
</section>
"#;

/// `/themes`: a form posting the chosen theme (field `theme`) to
/// `POST /themes`; the server answers by setting the cookie.
pub fn themes(ctx: &PageCtx) -> String {
    page(
        ctx,
        Shell {
            title: "Themes",
            class: "page-themes",
            board: None,
        },
        |out| {
            out.push_str(
                "<h1>Themes</h1>\n<form class=\"theme-form\" method=\"post\" action=\"/themes\">\n\
                 <fieldset><legend>Pick a theme</legend>\n<div class=\"theme-grid\">\n",
            );
            for t in Theme::ALL {
                writeln!(
                    out,
                    "<label class=\"theme-choice\"><input type=\"radio\" name=\"theme\" value=\"{name}\"{checked}>\
                     <b>{name}</b><span class=\"swatch swatch-{name}\" aria-hidden=\"true\"><i></i><i></i><i></i></span>\
                     <small class=\"muted\">{desc}{current}</small></label>",
                    name = t.name(),
                    checked = if t == ctx.theme { " checked" } else { "" },
                    desc = t.description(),
                    current = if t == ctx.theme { " (current)" } else { "" },
                )?;
            }
            out.push_str(
                "</div>\n</fieldset>\n<button type=\"submit\">Use this theme</button>\n</form>\n",
            );
            Ok(())
        },
    )
}

/// A friendly error page: the status, its usual meaning and `message`.
pub fn error(ctx: &PageCtx, status: u16, message: &str) -> String {
    let reason = reason(status);
    let title = format!("{status} {reason}");
    page(
        ctx,
        Shell {
            title: &title,
            class: "page-error",
            board: None,
        },
        |out| {
            writeln!(
                out,
                "<section class=\"error-box\">\n<p class=\"error-status\">{status}</p>\n\
                 <h1>{reason}</h1>\n<p class=\"error-message\">{}</p>\n\
                 <p><a href=\"/\">Front page</a> <a href=\"/boards/\">Boards</a></p>\n</section>",
                escape(message)
            )
        },
    )
}

/// The usual meaning of the statuses wani answers with.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Not signed in",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Too large",
        415 => "Unsupported file type",
        422 => "Cannot post that",
        429 => "Slow down",
        500..=599 => "Something went wrong",
        _ => "Error",
    }
}

/// The fallback after a successful post, for clients that do not follow
/// the usual 303 redirect: a link to continue to `thread_url`.
pub fn posted(ctx: &PageCtx, thread_url: &str) -> String {
    page(
        ctx,
        Shell {
            title: "Posted",
            class: "page-posted",
            board: None,
        },
        |out| {
            writeln!(
                out,
                "<section class=\"error-box posted\">\n<h1>Posted!</h1>\n\
                 <p><a class=\"button\" href=\"{}\">Continue to the thread</a></p>\n</section>",
                escape(thread_url)
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::fixtures::*;

    #[test]
    fn error_page_escapes_the_message() {
        let html = error(&ctx(&[]), 404, EVIL);
        assert_no_evil(&html);
        assert!(html.contains(EVIL_ESCAPED));
        assert!(html.contains("<title>404 Not found · wani</title>"));
        assert!(error(&ctx(&[]), 503, "x").contains("Something went wrong"));
    }

    #[test]
    fn rules_are_inserted_as_rendered() {
        let mut b = board();
        b.title = EVIL.into();
        let html = board_rules(&ctx(&[]), &b, "<p><strong>No spam.</strong></p>");
        assert!(html.contains("<div class=\"rules\"><p><strong>No spam.</strong></p></div>"));
        assert_no_evil(&html);
        let site = rules(&ctx(&[]), "<ol><li>Be kind.</li></ol>");
        assert!(site.contains("<ol><li>Be kind.</li></ol>"));
        assert!(rules(&ctx(&[]), " ").contains("No site rules"));
    }

    #[test]
    fn theme_form_posts_the_theme_field() {
        let mut c = ctx(&[]);
        c.theme = Theme::Harajuku;
        let html = themes(&c);
        assert!(html.contains("<form class=\"theme-form\" method=\"post\" action=\"/themes\">"));
        for t in Theme::ALL {
            assert!(html.contains(&format!("name=\"theme\" value=\"{}\"", t.name())));
        }
        assert!(html.contains("value=\"harajuku\" checked"));
        assert_eq!(html.matches(" checked").count(), 1);
    }

    #[test]
    fn faq_covers_the_markup_and_rules_of_posting() {
        let html = faq(&ctx(&[]));
        for needle in [
            "greentext",
            "&gt;&gt;123",
            "||secret||",
            "Markdown",
            "poster ID",
            "sage",
            "bump limit",
        ] {
            assert!(html.contains(needle), "FAQ mentions {needle}");
        }
    }

    #[test]
    fn posted_links_to_the_thread_escaped() {
        let html = posted(&ctx(&[]), "/threads/7#120");
        assert!(html.contains("href=\"/threads/7#120\""));
        assert_no_evil(&posted(&ctx(&[]), EVIL));
    }

    #[test]
    fn every_page_has_the_shell() {
        let b = board();
        let boards = [b.clone()];
        let c = PageCtx {
            theme: Theme::Wildride,
            site_name: EVIL,
            boards: &boards,
        };
        let t = thread_full(false);
        for html in [
            crate::pages::front(&c, "hi", &[]),
            crate::pages::board_list(&c, &[]),
            crate::pages::catalog(&c, &b, &[]),
            crate::pages::thread(&c, &b, &t),
            crate::pages::gallery(&c, &b, &t),
            crate::pages::archive(&c, &b, &[], 1, 1),
            board_rules(&c, &b, ""),
            rules(&c, ""),
            faq(&c),
            themes(&c),
            error(&c, 500, "oops"),
            posted(&c, "/threads/7"),
        ] {
            assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
            assert!(html.contains("<meta charset=\"utf-8\">"));
            assert!(html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            ));
            assert!(html.contains("<link rel=\"stylesheet\" href=\"/static/style.css\">"));
            assert!(html.contains("href=\"/static/themes/wildride.css\""));
            assert!(html.contains("<script src=\"/static/wani.js\" defer></script>"));
            assert!(html.contains("<a href=\"/boards/3\" title=\"Technology\""));
            assert!(html.contains(">/tech/</a></li>"));
            for link in ["/rules", "/faq", "/themes", "/boards/"] {
                assert!(
                    html.contains(&format!("<a href=\"{link}\">")),
                    "nav links {link}"
                );
            }
            assert!(html.contains("<footer class=\"site-footer\">"));
            assert!(html.ends_with("</html>\n"));
            assert_no_evil(&html);
            assert!(html.contains(&format!(
                "<a class=\"site-name\" href=\"/\">{EVIL_ESCAPED}</a>"
            )));
        }
    }
}
