//! Post bodies through the markup renderer (`wani_actors::markup`), as a
//! post is accepted: `PostBody::parse` (length, line endings), then
//! `render_full` with some quoted posts existing and some not.
//!
//! Besides panics, hangs and allocations over 64 MiB, the output is held to
//! what the module promises: only allow-listed tags, attributes and link
//! schemes, balanced, for any input.

use wani_actors::markup::render_full;
use wani_actors::rules::PostBody;
use wani_store::{PostId, ThreadId};

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let raw = String::from_utf8_lossy(data);
        let Ok(body) = PostBody::parse(&raw) else {
            return;
        };
        // Posts whose id is a multiple of 3 do not exist (dead quotes).
        let thread_of = |id: PostId| (id.0 % 3 != 0).then_some(ThreadId(id.0 / 7 + 1));
        let out = render_full(body.as_str(), &thread_of);
        if let Err(why) = check_html(&out.html) {
            panic!("unsafe or unbalanced markup output ({why}):\n{}", out.html);
        }
    });
}

const CONTAINERS: &[&str] = &[
    "p", "strong", "em", "del", "a", "span", "code", "pre", "ul", "ol", "li", "h1", "h2", "h3",
    "h4", "h5", "h6",
];
const VOID: &[&str] = &["br", "hr"];
const ATTRIBUTES: &[&str] = &["class", "href", "rel", "start", "title"];

/// Checks that `html` holds only the promised tags and attributes, with
/// safe link schemes, every element closed in order.
fn check_html(html: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        let tail = &rest[at + 1..];
        let end = tail.find('>').ok_or("a '<' never closed")?;
        let tag = &tail[..end];
        if tag.contains('<') {
            return Err(format!("'<' inside a tag: {tag:?}"));
        }
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(top) if top == name => {}
                top => return Err(format!("</{name}> closes {top:?}")),
            }
        } else {
            let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            check_attributes(attrs)?;
            if CONTAINERS.contains(&name) {
                open.push(name);
            } else if !VOID.contains(&name) {
                return Err(format!("tag <{name}> is not allowed"));
            }
        }
        rest = &tail[end + 1..];
    }
    if !open.is_empty() {
        return Err(format!("left open: {open:?}"));
    }
    Ok(())
}

fn check_attributes(mut attrs: &str) -> Result<(), String> {
    while !attrs.is_empty() {
        let (name, after) = attrs.split_once("=\"").ok_or(format!("attribute {attrs:?}"))?;
        let name = name.trim_start();
        if !ATTRIBUTES.contains(&name) {
            return Err(format!("attribute {name:?} is not allowed"));
        }
        let (value, after) = after.split_once('"').ok_or("an attribute never closed")?;
        if value.contains(['<', '>']) {
            return Err(format!("unescaped markup in {name}={value:?}"));
        }
        if name == "href" {
            check_href(value)?;
        }
        attrs = after;
    }
    Ok(())
}

/// An absolute link must be http, https or mailto. A scheme is what a
/// browser's URL parser takes for one: an ASCII letter, then letters,
/// digits, `+`, `-` or `.`, up to a ':' (anything else, such as a `%00`,
/// makes the URL relative).
fn check_href(href: &str) -> Result<(), String> {
    if let Some((scheme, _)) = href.split_once(':') {
        let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        let scheme = scheme.to_ascii_lowercase();
        if is_scheme && !matches!(scheme.as_str(), "http" | "https" | "mailto") {
            return Err(format!("link with scheme {scheme:?}: {href:?}"));
        }
    }
    if href.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("link with white space or control characters: {href:?}"));
    }
    Ok(())
}
