//! The HTML pages, CSS themes and the small progressive script of wani.
//!
//! Every page is a pure function from records (`wani_store` types) to a
//! `String`: no I/O, no templating crate, no state. Markup is written with
//! `std::fmt::Write`, and every interpolated value that came from a user or
//! an operator goes through one helper, [`escape`]. The only HTML inserted
//! as is has already been made safe elsewhere: a post's `body_html` (the
//! markup renderer escapes raw HTML) and rendered board or site rules.
//!
//! Pages work with JavaScript off: forms are plain multipart posts and
//! quote links are ordinary anchors (`/threads/{id}#{post}`; a post's element
//! id is its bare number, as Maniwani's `>>N` links expect). `static/wani.js`
//! only adds hover previews of quoted posts, local times and click-to-quote.
//!
//! Pages carry no per-viewer data (no idempotency key, no "you" markers), so
//! a rendered page may be cached and served to anyone using the same theme.
//!
//! Layout:
//! - [`html`]: the escaping helper and formatting of times, sizes, excerpts;
//! - `layout`: the shell every page shares (head, nav, footer);
//! - `post`: one post's `<article>`, shared by the thread page and live updates;
//! - `board`: front page, board list, catalog, archive, the new-thread form;
//! - `thread`: thread page with its reply form, gallery;
//! - `info`: rules, FAQ, theme picker, error and "posted" pages.
//!
//! Posting forms show a captcha image (`/captcha/new.png`, which keeps its
//! id in a cookie) when the board asks for one, and name their board in
//! `data-board` (wani.js asks `/captcha/pow` whether the board wants a proof
//! of work before sending the form), and every post links to its
//! report form and the thread to its mod view: none of it is per viewer.
//! The per-viewer pages (`/slip`, `/mod/…`) are in `moderation` and are
//! never cached, so their forms carry the session's CSRF token.
//!
//! Not handled here: routing, caching, cookies (the server reads and sets
//! them), CSRF checks, role checks.

pub mod html;

mod board;
mod info;
mod layout;
mod moderation;
mod post;
mod thread;

#[cfg(test)]
mod fixtures;

pub use board::{archive, board_list, catalog, front, ARCHIVE_PAGE};
pub use html::escape;
pub use info::{board_rules, error, faq, posted, rules, themes};
pub use moderation::{
    bans, board_admin, done, mod_home, mod_log, mod_thread, report_form, reports, slip_page,
};
pub use post::post;
pub use thread::{gallery, thread};

use wani_store::Board;

/// The base stylesheet, served at `/static/style.css`.
pub const STYLE_CSS: &str = include_str!("../../static/style.css");

/// The progressive script, served at `/static/wani.js`.
pub const WANI_JS: &str = include_str!("../../static/wani.js");

/// A colour theme: a small stylesheet of CSS custom properties loaded after
/// [`STYLE_CSS`], served at `/static/themes/{name}.css`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Theme {
    /// Light and neutral; the default.
    #[default]
    Stock,
    /// Pastel pink and purple.
    Harajuku,
    /// Dark, high contrast.
    Wildride,
}

impl Theme {
    /// Every theme, in the order the theme picker shows them.
    pub const ALL: [Theme; 3] = [Theme::Stock, Theme::Harajuku, Theme::Wildride];

    /// The theme's name as used in URLs, the cookie and the picker form.
    pub fn name(self) -> &'static str {
        match self {
            Theme::Stock => "stock",
            Theme::Harajuku => "harajuku",
            Theme::Wildride => "wildride",
        }
    }

    /// The theme named `name` (as [`Theme::name`] spells it), if any.
    pub fn from_name(name: &str) -> Option<Theme> {
        Theme::ALL.into_iter().find(|t| t.name() == name)
    }

    /// A one-line description for the theme picker.
    pub fn description(self) -> &'static str {
        match self {
            Theme::Stock => "Light and neutral.",
            Theme::Harajuku => "Pastel pink and purple.",
            Theme::Wildride => "Dark, high contrast.",
        }
    }
}

/// The theme's stylesheet, served at `/static/themes/{name}.css`.
pub fn theme_css(theme: Theme) -> &'static str {
    match theme {
        Theme::Stock => include_str!("../../static/themes/stock.css"),
        Theme::Harajuku => include_str!("../../static/themes/harajuku.css"),
        Theme::Wildride => include_str!("../../static/themes/wildride.css"),
    }
}

/// The colour posts (and so thumbnails) sit on in `theme`: the theme's
/// `--surface`. Thumbnails flatten transparency onto the stock value, which
/// is white, as Maniwani's were. A test keeps this in step with the CSS.
pub fn theme_background(theme: Theme) -> [u8; 3] {
    match theme {
        Theme::Stock => [0xff, 0xff, 0xff],
        Theme::Harajuku => [0xff, 0xf4, 0xfa],
        Theme::Wildride => [0x17, 0x17, 0x1f],
    }
}

/// The captcha of a posting form. The image is drawn per request by
/// `/captcha/new.png`, which remembers its id in a cookie, so the form
/// itself holds nothing per viewer and the page stays cacheable. wani.js
/// loads another picture when the image is clicked.
pub(crate) const CAPTCHA_FIELD: &str =
    "<label>Captcha <img class=\"captcha\" src=\"/captcha/new.png\" \
     width=\"260\" height=\"90\" alt=\"Type the characters in this picture\" \
     title=\"Hard to read? Click for another\"> \
     <input type=\"text\" name=\"captcha\" maxlength=\"12\" autocomplete=\"off\" \
     placeholder=\"the code above (not needed right after solving one)\"></label>\n";

/// What every page needs besides its own data.
#[derive(Clone, Copy, Debug)]
pub struct PageCtx<'a> {
    /// The viewer's theme (from their cookie); picks the theme stylesheet.
    pub theme: Theme,
    /// Shown in the nav bar and every title.
    pub site_name: &'a str,
    /// The boards listed in the nav bar, in this order.
    pub boards: &'a [Board],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_names_round_trip() {
        for t in Theme::ALL {
            assert_eq!(Theme::from_name(t.name()), Some(t));
        }
        assert_eq!(Theme::from_name("Stock"), None);
        assert_eq!(Theme::from_name(""), None);
        assert_eq!(Theme::default(), Theme::Stock);
    }

    /// The thumbnailer flattens onto `theme_background`, the page paints
    /// `--surface`: if they drift apart, transparent images get a visible box.
    #[test]
    fn theme_background_matches_the_stylesheet() {
        for t in Theme::ALL {
            let css = theme_css(t);
            let value = css
                .split("--surface:")
                .nth(1)
                .and_then(|rest| rest.split(';').next())
                .map(str::trim)
                .unwrap_or_else(|| panic!("{} defines --surface", t.name()));
            let [r, g, b] = theme_background(t);
            assert_eq!(
                value,
                format!("#{r:02x}{g:02x}{b:02x}"),
                "theme {}",
                t.name()
            );
        }
    }

    #[test]
    fn themes_are_small_and_distinct() {
        for t in Theme::ALL {
            assert!(theme_css(t).len() < 2048, "{} is small", t.name());
        }
        assert_ne!(theme_css(Theme::Stock), theme_css(Theme::Wildride));
        assert!(theme_css(Theme::Wildride).contains("color-scheme: dark"));
    }
}
