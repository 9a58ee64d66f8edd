//! The per-viewer pages of accounts and moderation: `/slip` (log in,
//! register, log out), the mod home, the mod view of a thread with its
//! action buttons, the moderation log, the report queue, bans, board admin,
//! and the report form.
//!
//! Unlike thread and catalog pages these are rendered on every request and
//! never cached, so they may carry the session's CSRF token in each form
//! (`<input type="hidden" name="csrf">`). Every form is a plain POST that
//! works without JavaScript; no GET changes anything.

use std::fmt::{self, Write};

use wani_store::{Ban, Board, ModLogEntry, Report, Session, Slip, ThreadFull};

use super::html::{escape, UtcTime};
use super::layout::{page, Shell};
use super::post::write_post;
use super::PageCtx;

fn shell(title: &str) -> Shell<'_> {
    Shell {
        title,
        class: "page-mod",
        board: None,
    }
}

fn when(ms: i64) -> String {
    UtcTime::from_millis(ms).readable()
}

fn csrf(out: &mut String, token: &str) -> fmt::Result {
    write!(
        out,
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(token)
    )
}

fn board_name(boards: &[Board], id: Option<wani_store::BoardId>) -> String {
    match id {
        None => "every board".into(),
        Some(id) => boards
            .iter()
            .find(|b| b.id == id)
            .map(|b| format!("/{}/", b.name))
            .unwrap_or_else(|| format!("board {id}")),
    }
}

fn mod_nav(out: &mut String, slip: &Slip) -> fmt::Result {
    out.push_str(
        "<nav class=\"mod-nav\"><a href=\"/mod\">Mod home</a> <a href=\"/mod/reports\">Reports</a> \
         <a href=\"/mod/bans\">Bans</a> <a href=\"/mod/log\">Mod log</a>",
    );
    if slip.is_admin {
        out.push_str(" <a href=\"/mod/boards\">Boards</a>");
    }
    out.push_str(" <a href=\"/slip\">Slip</a></nav>\n");
    Ok(())
}

/// `/slip`: the forms to log in and register, or, logged in, who you are
/// and the logout button.
pub fn slip_page(ctx: &PageCtx, session: Option<&Session>) -> String {
    page(ctx, shell("Slip"), |out| {
        out.push_str("<h1>Slip</h1>\n");
        match session {
            Some(s) => {
                let role = crate::abuse::roles::capcode(&s.slip).unwrap_or("user");
                writeln!(
                    out,
                    "<p class=\"notice\">Logged in as <b>{}</b> ({role}). Your posts show this name.</p>",
                    escape(&s.slip.name)
                )?;
                if crate::abuse::roles::is_staff(&s.slip) {
                    mod_nav(out, &s.slip)?;
                }
                out.push_str("<form method=\"post\" action=\"/slip/logout\">");
                csrf(out, &s.csrf)?;
                out.push_str("<button type=\"submit\">Log out</button></form>\n");
            }
            None => {
                for (action, title, button) in [
                    ("/slip/login", "Log in", "Log in"),
                    ("/slip/register", "Register", "Create slip"),
                ] {
                    writeln!(
                        out,
                        "<form class=\"post-form\" method=\"post\" action=\"{action}\">\n<h2>{title}</h2>\n\
                         <label>Name <input type=\"text\" name=\"name\" maxlength=\"20\" required autocomplete=\"username\"></label>\n\
                         <label>Password <input type=\"password\" name=\"password\" required></label>\n\
                         <button type=\"submit\">{button}</button>\n</form>"
                    )?;
                }
            }
        }
        Ok(())
    })
}

/// `/mod`: where a moderator starts.
pub fn mod_home(ctx: &PageCtx, slip: &Slip, open_reports: usize) -> String {
    page(ctx, shell("Moderation"), |out| {
        out.push_str("<h1>Moderation</h1>\n");
        mod_nav(out, slip)?;
        writeln!(
            out,
            "<p>{open_reports} open report{}. To act on a thread, open \
             <code>/mod/thread/ID</code> (the <b>Mod</b> link on every thread page).</p>",
            if open_reports == 1 { "" } else { "s" }
        )
    })
}

/// A one-line form posting to `action` with the CSRF token and `fields`.
fn button(out: &mut String, token: &str, action: &str, label: &str, fields: &str) -> fmt::Result {
    write!(
        out,
        "<form class=\"mod-action\" method=\"post\" action=\"{action}\">"
    )?;
    csrf(out, token)?;
    write!(
        out,
        "{fields}<input type=\"text\" name=\"reason\" placeholder=\"reason\" maxlength=\"200\"> \
         <button type=\"submit\">{label}</button></form>"
    )
}

/// `/mod/thread/{id}`: the thread with a row of actions under each post and
/// the thread's own actions on top.
pub fn mod_thread(ctx: &PageCtx, board: &Board, t: &ThreadFull, token: &str) -> String {
    let title = format!("Mod · thread {}", t.thread.id);
    page(ctx, shell(&title), |out| {
        writeln!(
            out,
            "<h1>Thread {id} on /{}/ <small><a href=\"/threads/{id}\">public view</a></small></h1>",
            escape(&board.name),
            id = t.thread.id
        )?;
        let id = t.thread.id;
        out.push_str("<div class=\"mod-thread-actions\">\n");
        let sticky = if t.thread.sticky {
            "Unsticky"
        } else {
            "Sticky"
        };
        let lock = if t.thread.locked { "Unlock" } else { "Lock" };
        button(
            out,
            token,
            &format!("/mod/thread/{id}/sticky"),
            sticky,
            &format!(
                "<input type=\"hidden\" name=\"on\" value=\"{}\">",
                !t.thread.sticky
            ),
        )?;
        button(
            out,
            token,
            &format!("/mod/thread/{id}/lock"),
            lock,
            &format!(
                "<input type=\"hidden\" name=\"on\" value=\"{}\">",
                !t.thread.locked
            ),
        )?;
        let mut options = String::new();
        for b in ctx.boards.iter().filter(|b| b.id != board.id) {
            write!(
                options,
                "<option value=\"{}\">/{}/</option>",
                b.id,
                escape(&b.name)
            )?;
        }
        button(
            out,
            token,
            &format!("/mod/thread/{id}/move"),
            "Move",
            &format!("<select name=\"board\">{options}</select> "),
        )?;
        button(
            out,
            token,
            &format!("/mod/thread/{id}/delete"),
            "Delete thread",
            "",
        )?;
        out.push_str("</div>\n");
        let here: std::collections::HashSet<wani_store::PostId> =
            t.posts.iter().map(|p| p.id).collect();
        for (i, p) in t.posts.iter().enumerate() {
            write_post(out, board, &t.thread, p, i == 0, &|id| here.contains(&id))?;
            out.push_str("<div class=\"mod-post-actions\">");
            button(
                out,
                token,
                &format!("/mod/post/{}/delete", p.id),
                "Delete post",
                "",
            )?;
            if p.media.is_some() {
                let (label, on) = if p.spoiler {
                    ("Unspoiler", false)
                } else {
                    ("Spoiler", true)
                };
                button(
                    out,
                    token,
                    &format!("/mod/post/{}/spoiler", p.id),
                    label,
                    &format!("<input type=\"hidden\" name=\"on\" value=\"{on}\">"),
                )?;
                button(
                    out,
                    token,
                    &format!("/mod/post/{}/file/delete", p.id),
                    "Delete file",
                    "",
                )?;
            }
            button(
                out,
                token,
                &format!("/mod/post/{}/ban", p.id),
                "Ban poster",
                "<select name=\"hours\"><option value=\"24\">1 day</option>\
                 <option value=\"168\">1 week</option><option value=\"0\">forever</option></select> \
                 <select name=\"scope\"><option value=\"board\">this board</option>\
                 <option value=\"global\">all boards</option></select> \
                 <label><input type=\"checkbox\" name=\"delete\" value=\"on\"> and delete</label> ",
            )?;
            out.push_str("</div>\n");
        }
        Ok(())
    })
}

/// `/mod/log`: the latest moderation actions.
pub fn mod_log(ctx: &PageCtx, slip: &Slip, entries: &[ModLogEntry]) -> String {
    page(ctx, shell("Mod log"), |out| {
        out.push_str("<h1>Moderation log</h1>\n");
        mod_nav(out, slip)?;
        out.push_str(
            "<div class=\"table-wrap\"><table class=\"mod-log\"><thead><tr><th>When</th><th>Who</th>\
             <th>Action</th><th>Board</th><th>Target</th><th>Reason</th></tr></thead><tbody>\n",
        );
        for e in entries {
            writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                when(e.at),
                escape(&e.slip_name),
                escape(&e.action),
                escape(&board_name(ctx.boards, e.board)),
                escape(&e.target),
                escape(&e.reason)
            )?;
        }
        out.push_str("</tbody></table></div>\n");
        Ok(())
    })
}

/// `/mod/reports`: the open reports of the boards the viewer moderates.
pub fn reports(
    ctx: &PageCtx,
    slip: &Slip,
    token: &str,
    selected: Option<wani_store::BoardId>,
    reports: &[Report],
) -> String {
    page(ctx, shell("Reports"), |out| {
        out.push_str("<h1>Reports</h1>\n");
        mod_nav(out, slip)?;
        out.push_str("<p class=\"board-filter\"><a href=\"/mod/reports\">All</a>");
        for b in ctx.boards {
            write!(
                out,
                " <a href=\"/mod/reports?board={}\"{}>/{}/</a>",
                b.id,
                if selected == Some(b.id) {
                    " aria-current=\"page\""
                } else {
                    ""
                },
                escape(&b.name)
            )?;
        }
        out.push_str("</p>\n");
        if reports.is_empty() {
            out.push_str("<p class=\"empty\">No open reports.</p>\n");
        }
        for r in reports {
            writeln!(
                out,
                "<article class=\"report\"><p><a href=\"/mod/thread/{t}#{p}\">Post {p}</a> in thread {t} \
                 on {b} · reported {n} time{s}, last {last}</p><p class=\"reason\">{reason}</p>",
                t = r.thread,
                p = r.post,
                b = escape(&board_name(ctx.boards, Some(r.board))),
                n = r.count,
                s = if r.count == 1 { "" } else { "s" },
                last = when(r.last_at),
                reason = escape(&r.reason),
            )?;
            write!(
                out,
                "<a href=\"/mod/thread/{}#{}\">Act on it</a> ",
                r.thread, r.post
            )?;
            button(
                out,
                token,
                &format!("/mod/reports/{}/dismiss", r.id),
                "Dismiss",
                "",
            )?;
            out.push_str("</article>\n");
        }
        Ok(())
    })
}

/// `/mod/bans`: active bans, each with an unban button, and the form for
/// a new ban by address or range.
pub fn bans(ctx: &PageCtx, slip: &Slip, token: &str, bans: &[Ban]) -> String {
    page(ctx, shell("Bans"), |out| {
        out.push_str("<h1>Bans</h1>\n");
        mod_nav(out, slip)?;
        out.push_str(
            "<form class=\"post-form\" method=\"post\" action=\"/mod/bans\">\n<h2>New ban</h2>\n",
        );
        csrf(out, token)?;
        out.push_str(
            "<label>Address or range <input type=\"text\" name=\"cidr\" required \
             placeholder=\"203.0.113.7, 203.0.113.0/24, 2001:db8::/64\"></label>\n\
             <label>Reason <input type=\"text\" name=\"reason\" required maxlength=\"200\"></label>\n\
             <label>Hours (0: forever) <input type=\"number\" name=\"hours\" value=\"24\" min=\"0\"></label>\n\
             <label>Board <select name=\"board\"><option value=\"\">every board</option>",
        );
        for b in ctx.boards {
            write!(
                out,
                "<option value=\"{}\">/{}/</option>",
                b.id,
                escape(&b.name)
            )?;
        }
        out.push_str("</select></label>\n<button type=\"submit\">Ban</button>\n</form>\n");
        out.push_str(
            "<div class=\"table-wrap\"><table class=\"bans\"><thead><tr><th>Range</th><th>Board</th>\
             <th>Reason</th><th>Expires</th><th></th></tr></thead><tbody>\n",
        );
        for b in bans {
            write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>",
                escape(&b.cidr),
                escape(&board_name(ctx.boards, b.board)),
                escape(&b.reason),
                b.expires.map(when).unwrap_or_else(|| "never".into())
            )?;
            write!(
                out,
                "<form method=\"post\" action=\"/mod/bans/{}/delete\">",
                b.id
            )?;
            csrf(out, token)?;
            out.push_str("<button type=\"submit\">Unban</button></form></td></tr>\n");
        }
        out.push_str("</tbody></table></div>\n");
        Ok(())
    })
}

fn board_fields(out: &mut String, b: &wani_store::BoardSettings) -> fmt::Result {
    let check = |on: bool| if on { " checked" } else { "" };
    write!(
        out,
        "<label>Name <input type=\"text\" name=\"name\" value=\"{}\" required maxlength=\"32\"></label>\n\
         <label>Title <input type=\"text\" name=\"title\" value=\"{}\"></label>\n\
         <label>Rules <textarea name=\"rules\" rows=\"3\">{}</textarea></label>\n\
         <label>Max threads <input type=\"number\" name=\"max_threads\" value=\"{}\" min=\"1\"></label>\n\
         <label>Bump limit <input type=\"number\" name=\"bump_limit\" value=\"{}\" min=\"0\"></label>\n\
         <label>Media types <input type=\"text\" name=\"mimetypes\" value=\"{}\"></label>\n\
         <label>Max file bytes <input type=\"number\" name=\"max_file_bytes\" value=\"{}\" min=\"0\"></label>\n\
         <label>Seconds between threads <input type=\"number\" name=\"thread_interval_secs\" value=\"{}\" min=\"0\"></label>\n\
         <label>Seconds between posts <input type=\"number\" name=\"reply_interval_secs\" value=\"{}\" min=\"0\"></label>\n\
         <label class=\"check\"><input type=\"checkbox\" name=\"captcha_threads\" value=\"on\"{}> Captcha for new threads</label>\n\
         <label class=\"check\"><input type=\"checkbox\" name=\"captcha_replies\" value=\"on\"{}> Captcha for replies</label>\n",
        escape(&b.name),
        escape(&b.title),
        escape(&b.rules),
        b.max_threads,
        b.bump_limit,
        escape(&b.mimetypes.join(",")),
        b.max_file_bytes,
        b.thread_interval_secs,
        b.reply_interval_secs,
        check(b.captcha_threads),
        check(b.captcha_replies),
    )
}

/// `/mod/boards` (admins): an edit form per board and one to create a board.
pub fn board_admin(ctx: &PageCtx, slip: &Slip, token: &str) -> String {
    page(ctx, shell("Boards"), |out| {
        out.push_str("<h1>Boards</h1>\n");
        mod_nav(out, slip)?;
        for b in ctx.boards {
            writeln!(
                out,
                "<details class=\"form-toggle\"><summary>/{}/ — {}</summary>\
                 <form class=\"post-form\" method=\"post\" action=\"/mod/boards/{}\">",
                escape(&b.name),
                escape(&b.title),
                b.id
            )?;
            csrf(out, token)?;
            board_fields(out, &b.settings())?;
            out.push_str("<button type=\"submit\">Save</button></form></details>\n");
        }
        out.push_str("<form class=\"post-form\" method=\"post\" action=\"/mod/boards\">\n<h2>New board</h2>\n");
        csrf(out, token)?;
        board_fields(out, &wani_store::BoardSettings::default())?;
        out.push_str("<button type=\"submit\">Create board</button></form>\n");
        Ok(())
    })
}

/// `/report/{post}`: why is this post a problem?
pub fn report_form(ctx: &PageCtx, post: wani_store::PostId) -> String {
    page(ctx, shell("Report"), |out| {
        writeln!(
            out,
            "<form class=\"post-form\" method=\"post\" action=\"/report/{post}\">\n\
             <h1>Report post {post}</h1>\n\
             <label>Reason <input type=\"text\" name=\"reason\" required maxlength=\"200\"></label>\n\
             <button type=\"submit\">Report</button>\n</form>"
        )
    })
}

/// A short page saying something was done, with a link onwards.
pub fn done(ctx: &PageCtx, message: &str, next: &str) -> String {
    page(ctx, shell("Done"), |out| {
        writeln!(
            out,
            "<p class=\"notice\">{}</p>\n<p><a href=\"{}\">Continue</a></p>",
            escape(message),
            escape(next)
        )
    })
}
