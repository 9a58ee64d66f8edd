//! wani markup: a post body (CommonMark plus imageboard rules) to safe HTML.
//!
//! # Rules
//! - CommonMark, parsed by comrak, with strikethrough (`~~x~~`) and spoilers
//!   (`||x||`); every other extension is off.
//! - A line whose text starts with `>` (but not `>>`) is greentext:
//!   `<span class="greentext">&gt;text</span>`. There are no blockquotes.
//! - `>>123` anywhere in text links to post 123 in whichever thread holds it
//!   (`<a class="post-reply" href="/threads/T#123">`), or is marked dead
//!   (`<span class="dead-quote text-danger">`). Not in code, and not in the
//!   text of a link (HTML forbids a link in a link). `\>` is a literal `>`.
//! - A single newline is `<br>`; a blank line separates paragraphs.
//! - Raw HTML is text. Links survive only for http, https, mailto and
//!   relative URLs and carry `rel="nofollow noopener"`; an image is written
//!   as a link to it, never as `<img>`.
//!
//! The output only ever holds the tags p br strong em del a span code pre ul
//! ol li h1–h6 hr, is balanced for any input, and takes time roughly linear
//! in the body.
//!
//! Where this differs from Maniwani, on purpose:
//! - `||` pairs left to right and follows the flanking rules of `**`, so
//!   `||a|| b ||c||` is two spoilers (Maniwani's greedy regex made one) and
//!   `a || b` or `|| a ||` is text;
//! - greentext is a `<span>` (Maniwani: a blockquote), and `> text` with a
//!   space is greentext too;
//! - dead quotes also carry the class `dead-quote`.
//!
//! Corners: a greentext span closes at the end of its line or of the inline
//! element it opened in (`*a\n>b* c` greens only `>b`); the `<url>` form of
//! a link destination is not supported (its `<` is text); nesting deeper
//! than 48 levels is written as plain text.
//!
//! # Shape
//! Three passes, each in its own file:
//! 1. `prepare.rs` swaps the poster's `<` and `>` for placeholder characters,
//!    so comrak can neither see raw HTML nor build blockquotes;
//! 2. comrak parses that into an AST (its HTML formatter is never used);
//! 3. `html.rs` walks the AST and writes allow-listed HTML, applying the
//!    wani rules to text nodes; `url.rs` decides which links survive.
//!
//! Owning the writer (rather than sanitizing comrak's HTML afterwards) is
//! what makes safety structural: there is no code path that copies markup
//! from the input to the output.
//!
//! # Not here
//! Finding where quoted posts live (the caller passes `thread_of`, so this
//! module stays pure and testable), caching (the renderer pool; see
//! [`cache_key`]), and the post-length limit (checked before a post is
//! accepted). Bare URLs are not turned into links.

mod futaba;
mod html;
mod prepare;
mod url;

pub use futaba::futaba_com;

use comrak::{parse_document, Arena, Options};
use sha2::{Digest, Sha256};
use wani_store::{PostId, ThreadId};

/// Version of the rendering rules; part of [`cache_key`], so a change in how
/// bodies render never serves HTML cached under the old rules.
pub const RENDER_VERSION: u32 = 1;

/// A rendered body and the posts it quotes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Safe HTML.
    pub html: String,
    /// Post ids rendered as quotes, as [`quoted_ids`] returns them.
    pub quoted: Vec<PostId>,
}

/// Post ids quoted with `>>N` in the body, in first-appearance order,
/// deduplicated; not those inside code spans or blocks, nor in a link's text,
/// nor numbers too large to be an id.
///
/// Exactly the quotes [`render`] turns into links or dead quotes: both come
/// from the same walk.
pub fn quoted_ids(body: &str) -> Vec<PostId> {
    render_full(body, &|_| None).quoted
}

/// Renders a post body to safe HTML. `thread_of(N)` says which thread holds
/// post N (`None`: no such post); it is called once per distinct quoted id.
pub fn render(body: &str, thread_of: &dyn Fn(PostId) -> Option<ThreadId>) -> String {
    render_full(body, thread_of).html
}

/// [`render`] and [`quoted_ids`] in one pass.
pub fn render_full(body: &str, thread_of: &dyn Fn(PostId) -> Option<ThreadId>) -> Rendered {
    let prepared = prepare::prepare(body);
    let arena = Arena::new();
    let root = parse_document(&arena, &prepared, &options());
    let out = html::Writer::new(prepared.len() * 2 + 16, thread_of).document(root);
    Rendered {
        html: out.html,
        quoted: out.quoted,
    }
}

/// A content hash naming the HTML [`render`] gives for `body` when its
/// quotes resolve as in `resolved` (each quoted id with its thread, or
/// `None` for a missing post). The order of `resolved` does not matter.
/// Includes [`RENDER_VERSION`].
pub fn cache_key(body: &str, resolved: &[(PostId, Option<ThreadId>)]) -> [u8; 32] {
    let mut links = resolved.to_vec();
    links.sort_unstable();
    links.dedup();
    let mut h = Sha256::new();
    h.update(b"wani-markup\0");
    h.update(RENDER_VERSION.to_le_bytes());
    h.update((body.len() as u64).to_le_bytes());
    h.update(body.as_bytes());
    for (post, thread) in links {
        h.update(post.0.to_le_bytes());
        // A tag byte keeps "missing" apart from every real thread id.
        match thread {
            Some(t) => {
                h.update([1]);
                h.update(t.0.to_le_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().into()
}

/// comrak's options: CommonMark plus the two extensions wani uses.
fn options() -> Options<'static> {
    let mut options = Options::default();
    options.extension.strikethrough = true;
    options.extension.spoiler = true;
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(body: &str) -> Vec<i64> {
        quoted_ids(body).into_iter().map(|p| p.0).collect()
    }

    #[test]
    fn quotes_in_first_appearance_order_without_duplicates() {
        assert_eq!(ids(">>3 and >>1, again >>3\n>>2"), [3, 1, 2]);
    }

    #[test]
    fn quotes_anywhere_in_text() {
        assert_eq!(ids("see>>5, *>>6*, ||>>7||, # >>8"), [5, 6, 7, 8]);
        assert_eq!(ids("# >>8\n\n- >>9\n>greentext >>10"), [8, 9, 10]);
    }

    #[test]
    fn no_quotes_in_code() {
        assert_eq!(ids("`>>1` >>2\n\n```\n>>3\n```\n\n    >>4"), [2]);
    }

    #[test]
    fn no_quotes_in_link_text_or_escaped() {
        assert_eq!(ids("[>>1](http://x.example) \\>>2 &gt;&gt;3 >>4"), [4]);
    }

    #[test]
    fn not_quotes() {
        assert_eq!(ids(">> 1 >>x >1 >>"), Vec::<i64>::new());
        // Too large for an id: rendered dead, never returned.
        assert_eq!(
            ids(">>99999999999999999999 >>9223372036854775807"),
            [i64::MAX]
        );
    }

    #[test]
    fn triple_angle_quotes_the_last_two() {
        assert_eq!(ids(">>>12"), [12]);
        assert_eq!(ids(">>>>0012"), [12]);
    }

    #[test]
    fn ids_match_what_render_links() {
        let body = ">>1 `>>2` [>>3](/x) >>4";
        let html = render(body, &|id| Some(ThreadId(id.0)));
        assert_eq!(ids(body), [1, 4]);
        assert_eq!(html.matches("class=\"post-reply\"").count(), 2);
    }

    #[test]
    fn thread_of_runs_once_per_id() {
        let calls = std::cell::Cell::new(0);
        let thread_of = |_| {
            calls.set(calls.get() + 1);
            None
        };
        render(">>1 >>1 >>2 >>1", &thread_of);
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn cache_key_depends_on_body_and_resolution_only() {
        let a = [(PostId(1), Some(ThreadId(1))), (PostId(2), None)];
        let b = [(PostId(2), None), (PostId(1), Some(ThreadId(1)))];
        assert_eq!(cache_key("x", &a), cache_key("x", &b));
        assert_ne!(cache_key("x", &a), cache_key("y", &a));
        assert_ne!(
            cache_key("x", &a),
            cache_key("x", &[(PostId(1), Some(ThreadId(2))), (PostId(2), None)])
        );
        assert_ne!(
            cache_key("x", &[(PostId(1), None)]),
            cache_key("x", &[(PostId(1), Some(ThreadId(0)))])
        );
    }
}
