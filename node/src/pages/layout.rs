//! The shell every page shares: doctype, head (charset, viewport, title,
//! stylesheets, script), the nav bar and the footer.

use std::fmt::{self, Write};

use wani_store::BoardId;

use super::html::{escape, render};
use super::PageCtx;

/// What a page tells the shell about itself.
pub(crate) struct Shell<'a> {
    /// The page's own title; the site name is appended. Empty: site name only.
    pub title: &'a str,
    /// A class on `<body>` (`page-thread`, `page-catalog`...) for page-specific CSS.
    pub class: &'static str,
    /// The board this page belongs to, marked current in the nav bar.
    pub board: Option<BoardId>,
}

/// A whole document: the shell around what `main` writes inside `<main>`.
pub(crate) fn page(
    ctx: &PageCtx,
    shell: Shell,
    main: impl FnOnce(&mut String) -> fmt::Result,
) -> String {
    render(|out| {
        out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        if shell.title.is_empty() {
            writeln!(out, "<title>{}</title>", escape(ctx.site_name))?;
        } else {
            writeln!(
                out,
                "<title>{} · {}</title>",
                escape(shell.title),
                escape(ctx.site_name)
            )?;
        }
        out.push_str("<link rel=\"stylesheet\" href=\"/static/style.css\">\n");
        writeln!(
            out,
            "<link rel=\"stylesheet\" href=\"/static/themes/{}.css\">",
            ctx.theme.name()
        )?;
        out.push_str("<script src=\"/static/wani.js\" defer></script>\n</head>\n");
        writeln!(out, "<body class=\"{}\">", shell.class)?;
        nav(out, ctx, shell.board)?;
        out.push_str("<main id=\"top\">\n");
        main(out)?;
        out.push_str("</main>\n");
        footer(out, ctx)?;
        out.push_str("</body>\n</html>\n");
        Ok(())
    })
}

fn nav(out: &mut String, ctx: &PageCtx, current: Option<BoardId>) -> fmt::Result {
    out.push_str("<header class=\"site-header\">\n<nav class=\"site-nav\" aria-label=\"Site\">\n");
    writeln!(
        out,
        "<a class=\"site-name\" href=\"/\">{}</a>",
        escape(ctx.site_name)
    )?;
    out.push_str("<ul class=\"nav-boards\">\n");
    for b in ctx.boards {
        let aria = if current == Some(b.id) {
            " aria-current=\"page\""
        } else {
            ""
        };
        writeln!(
            out,
            "<li><a href=\"/boards/{}\" title=\"{}\"{aria}>/{}/</a></li>",
            b.id,
            escape(&b.title),
            escape(&b.name)
        )?;
    }
    out.push_str("</ul>\n<ul class=\"nav-site\">\n");
    out.push_str("<li><a href=\"/boards/\">Boards</a></li>\n");
    out.push_str("<li><a href=\"/rules\">Rules</a></li>\n");
    out.push_str("<li><a href=\"/faq\">FAQ</a></li>\n");
    out.push_str("<li><a href=\"/themes\">Themes</a></li>\n");
    out.push_str("</ul>\n</nav>\n</header>\n");
    Ok(())
}

fn footer(out: &mut String, ctx: &PageCtx) -> fmt::Result {
    writeln!(
        out,
        "<footer class=\"site-footer\">\n<p><a href=\"/\">{}</a> · \
         <a href=\"/rules\">Rules</a> · <a href=\"/faq\">FAQ</a> · \
         <a href=\"/themes\">Themes</a> · <a href=\"#top\">Top</a></p>\n\
         <p class=\"muted\">Powered by wani. Times are UTC.</p>\n</footer>",
        escape(ctx.site_name)
    )
}

/// Writes the heading block of a board's pages: `/name/ — title` and links
/// to the board's catalog, archive and rules.
pub(crate) fn board_header(out: &mut String, board: &wani_store::Board) -> fmt::Result {
    writeln!(
        out,
        "<header class=\"board-header\">\n<h1><a href=\"/boards/{id}\">/{}/ — {}</a></h1>\n\
         <nav class=\"board-links\" aria-label=\"Board\"><a href=\"/boards/{id}\">Catalog</a> \
         <a href=\"/boards/{id}/archive\">Archive</a> \
         <a href=\"/boards/rules/{id}\">Rules</a></nav>\n</header>",
        escape(&board.name),
        escape(&board.title),
        id = board.id
    )
}
