//! The HTML writer: walks comrak's AST and emits only allow-listed HTML.
//!
//! We never call comrak's own HTML formatter. Each node kind we accept has
//! one arm below that writes a fixed tag from the allow-list (p br strong em
//! del a span code pre ul ol li h1–h6 hr) with fixed, double-quoted
//! attributes; every piece of poster text goes through
//! [`push_escaped`]. So the output cannot contain a tag or attribute we did
//! not write, and every tag opened in a function is closed by that same
//! function: the output is balanced for any input.
//!
//! The wani rules that comrak does not know are applied here, on text nodes:
//! - a line whose text starts with one [`GT`] (not two) is greentext;
//! - `>>N` in text, outside code and outside link text, is a quote.
//!
//! Depth: comrak caps list nesting, but emphasis can nest about as deep as
//! the body is long. Past [`MAX_DEPTH`] levels a subtree is written as
//! escaped plain text (gathered without recursion), so rendering never
//! needs more than a small, fixed amount of stack.

use super::prepare::{push_escaped, unmap, GT};
use super::url::safe_href;
use comrak::nodes::{AstNode, ListType, NodeValue};
use std::collections::HashMap;
use wani_store::{PostId, ThreadId};

/// How deep the writer follows the tree before flattening to text. Real
/// posts stay far below (a list in a list in a list is 6 levels).
pub(crate) const MAX_DEPTH: usize = 48;

/// What a walk produced: the HTML, and the quotes it rendered.
pub(crate) struct Output {
    pub(crate) html: String,
    pub(crate) quoted: Vec<PostId>,
}

/// Walks one parsed document.
pub(crate) struct Writer<'r> {
    out: String,
    /// Quoted ids in first-appearance order; `resolved` doubles as the "seen"
    /// set and as a cache, so `thread_of` runs once per distinct id.
    quoted: Vec<PostId>,
    resolved: HashMap<PostId, Option<ThreadId>>,
    thread_of: &'r dyn Fn(PostId) -> Option<ThreadId>,
}

/// Where an inline node sits.
#[derive(Clone, Copy)]
struct Ctx {
    depth: usize,
    /// Inside an `<a>`: quotes stay text, since HTML forbids nested links.
    in_link: bool,
}

impl Ctx {
    fn deeper(self) -> Ctx {
        Ctx {
            depth: self.depth + 1,
            ..self
        }
    }
}

impl<'r> Writer<'r> {
    pub(crate) fn new(capacity: usize, thread_of: &'r dyn Fn(PostId) -> Option<ThreadId>) -> Self {
        Writer {
            out: String::with_capacity(capacity),
            quoted: Vec::new(),
            resolved: HashMap::new(),
            thread_of,
        }
    }

    /// Writes the document rooted at `root`.
    pub(crate) fn document<'a>(mut self, root: &'a AstNode<'a>) -> Output {
        for child in root.children() {
            self.block(child, 1, false);
        }
        Output {
            html: self.out,
            quoted: self.quoted,
        }
    }

    /// One block node. `tight`: the node is a child of an item of a tight
    /// list, whose paragraphs are written without `<p>` (as CommonMark does).
    ///
    /// Nodes are only ever borrowed shared (nothing mutates the tree while
    /// it is written), so holding a node's data across the recursion is fine.
    fn block<'a>(&mut self, node: &'a AstNode<'a>, depth: usize, tight: bool) {
        if depth > MAX_DEPTH {
            if tight {
                // Keep the words of sibling blocks apart.
                if !self.out.ends_with('>') {
                    self.out.push(' ');
                }
                self.flatten(node);
            } else {
                self.out.push_str("<p>");
                self.flatten(node);
                self.out.push_str("</p>\n");
            }
            return;
        }
        let ctx = Ctx {
            depth,
            in_link: false,
        };
        let data = node.data();
        match &data.value {
            NodeValue::Paragraph if tight => self.inlines(node, ctx, true),
            NodeValue::Paragraph => {
                self.out.push_str("<p>");
                self.inlines(node, ctx, true);
                self.out.push_str("</p>\n");
            }
            NodeValue::Heading(h) => {
                let level = h.level.clamp(1, 6);
                self.out.push_str(&format!("<h{level}>"));
                self.inlines(node, ctx, true);
                self.out.push_str(&format!("</h{level}>\n"));
            }
            NodeValue::ThematicBreak => self.out.push_str("<hr>\n"),
            NodeValue::CodeBlock(c) => {
                self.out.push_str("<pre><code");
                if let Some(lang) = language(&c.info) {
                    self.out.push_str(&format!(" class=\"language-{lang}\""));
                }
                self.out.push('>');
                // Placeholders in code become `&gt;`/`&lt;`: the characters typed.
                push_escaped(&mut self.out, &c.literal);
                self.out.push_str("</code></pre>\n");
            }
            NodeValue::List(l) => {
                let ordered = l.list_type == ListType::Ordered;
                match (ordered, l.start) {
                    (false, _) => self.out.push_str("<ul>\n"),
                    (true, 1) => self.out.push_str("<ol>\n"),
                    (true, n) => self.out.push_str(&format!("<ol start=\"{n}\">\n")),
                }
                for item in node.children() {
                    self.block(item, depth + 1, l.tight);
                }
                self.out
                    .push_str(if ordered { "</ol>\n" } else { "</ul>\n" });
            }
            NodeValue::Item(_) => {
                self.out.push_str("<li>");
                for child in node.children() {
                    self.block(child, depth + 1, tight);
                }
                self.out.push_str("</li>\n");
            }
            // Raw HTML cannot reach comrak (see `prepare`); should a block of
            // it appear anyway, it is shown as the text it is.
            NodeValue::HtmlBlock(h) => {
                self.out.push_str("<p>");
                let mut lines = h.literal.trim_end_matches('\n').split('\n').peekable();
                while let Some(line) = lines.next() {
                    push_escaped(&mut self.out, line);
                    if lines.peek().is_some() {
                        self.out.push_str("<br>");
                    }
                }
                self.out.push_str("</p>\n");
            }
            // Blockquotes cannot be parsed (no bare `>` reaches comrak), and
            // the extensions that make other blocks are off. Anything else
            // is written as its contents, without a tag of its own.
            other if other.contains_inlines() => {
                self.out.push_str("<p>");
                self.inlines(node, ctx, true);
                self.out.push_str("</p>\n");
            }
            _ => {
                for child in node.children() {
                    self.block(child, depth + 1, false);
                }
            }
        }
    }

    /// The inline children of `parent`. `starts_line`: the first child
    /// begins a line (true for a paragraph or heading), so it may open
    /// greentext.
    ///
    /// Adjacent text nodes are merged first: comrak splits text at
    /// characters that might have been markup (`!`, `[`, entities), and a
    /// quote or a greentext marker must not depend on where it split.
    fn inlines<'a>(&mut self, parent: &'a AstNode<'a>, ctx: Ctx, starts_line: bool) {
        let mut at_line_start = starts_line;
        let mut green = false;
        let mut text = String::new();
        for child in parent.children() {
            let data = child.data();
            if let NodeValue::Text(t) = &data.value {
                text.push_str(t);
                continue;
            }
            self.flush(&mut text, ctx, &mut at_line_start, &mut green);
            match &data.value {
                NodeValue::SoftBreak | NodeValue::LineBreak => {
                    // Greentext ends with its line; a single newline is a
                    // line break in wani, whatever CommonMark says.
                    if green {
                        self.out.push_str("</span>");
                        green = false;
                    }
                    self.out.push_str("<br>");
                    at_line_start = true;
                }
                _ => {
                    self.inline(child, ctx.deeper());
                    at_line_start = false;
                }
            }
        }
        self.flush(&mut text, ctx, &mut at_line_start, &mut green);
        if green {
            self.out.push_str("</span>");
        }
    }

    /// Writes merged text, opening greentext if it begins a line with `>`.
    fn flush(&mut self, text: &mut String, ctx: Ctx, at_line_start: &mut bool, green: &mut bool) {
        if text.is_empty() {
            return;
        }
        if *at_line_start && is_greentext(text) {
            self.out.push_str("<span class=\"greentext\">");
            *green = true;
        }
        *at_line_start = false;
        self.text(text, ctx);
        text.clear();
    }

    /// One inline node other than text and breaks.
    fn inline<'a>(&mut self, node: &'a AstNode<'a>, ctx: Ctx) {
        if ctx.depth > MAX_DEPTH {
            self.flatten(node);
            return;
        }
        let data = node.data();
        let wrap = |open: &str, close: &str, w: &mut Self| {
            w.out.push_str(open);
            w.inlines(node, ctx, false);
            w.out.push_str(close);
        };
        match &data.value {
            NodeValue::Emph => wrap("<em>", "</em>", self),
            NodeValue::Strong => wrap("<strong>", "</strong>", self),
            NodeValue::Strikethrough => wrap("<del>", "</del>", self),
            NodeValue::SpoileredText => wrap("<span class=\"spoiler\">", "</span>", self),
            // Delimiters comrak matched but gave no meaning (the odd `|` of
            // `|||x|||`): they are text around the children.
            NodeValue::EscapedTag(delim) => {
                push_escaped(&mut self.out, delim);
                self.inlines(node, ctx, false);
                push_escaped(&mut self.out, delim);
            }
            NodeValue::Code(c) => {
                self.out.push_str("<code>");
                push_escaped(&mut self.out, &c.literal);
                self.out.push_str("</code>");
            }
            // Inline HTML cannot be parsed (see `prepare`); shown as text if
            // it ever is.
            NodeValue::HtmlInline(h) => push_escaped(&mut self.out, h),
            NodeValue::Link(l) => self.link(node, &l.url, &l.title, false, ctx),
            NodeValue::Image(l) => self.link(node, &l.url, &l.title, true, ctx),
            // `Escaped` (a backslash escape) holds its character as a text
            // child. The extensions that make other inline nodes are off;
            // should one appear, its contents are written without a tag.
            _ => self.inlines(node, ctx, false),
        }
    }

    /// A link, or an image written as a link to it: never an <img>, so no
    /// hotlinking and no tracking pixels. `url` and `title` still hold
    /// placeholders.
    fn link<'a>(&mut self, node: &'a AstNode<'a>, url: &str, title: &str, image: bool, ctx: Ctx) {
        let href = if ctx.in_link {
            None
        } else {
            safe_href(&unmap(url))
        };
        let Some(href) = href else {
            // Not linkable here: keep the words, drop the link.
            self.inlines(node, ctx, false);
            return;
        };
        self.out.push_str("<a href=\"");
        self.out.push_str(&href);
        self.out.push('"');
        if !title.is_empty() {
            self.out.push_str(" title=\"");
            push_escaped(&mut self.out, title);
            self.out.push('"');
        }
        self.out.push_str(" rel=\"nofollow noopener\">");
        if image && node.first_child().is_none() {
            // No alt text: the URL is the link's text.
            push_escaped(&mut self.out, url);
        } else {
            self.inlines(
                node,
                Ctx {
                    in_link: true,
                    ..ctx
                },
                false,
            );
        }
        self.out.push_str("</a>");
    }

    /// Poster text: escaped, with `>>N` turned into quotes unless in a link.
    fn text(&mut self, text: &str, ctx: Ctx) {
        if ctx.in_link {
            push_escaped(&mut self.out, text);
            return;
        }
        const MARK: &str = "\u{FDD0}\u{FDD0}";
        let mut rest = text;
        // Each round consumes at least one placeholder, and `find` starts
        // where the last round stopped: linear in the text.
        while let Some(pos) = rest.find(MARK) {
            let after = &rest[pos + MARK.len()..];
            let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                // `>>>1`: the first `>` is text; look again from the second.
                let skip = pos + GT.len_utf8();
                push_escaped(&mut self.out, &rest[..skip]);
                rest = &rest[skip..];
                continue;
            }
            push_escaped(&mut self.out, &rest[..pos]);
            self.quote(&after[..digits]);
            rest = &after[digits..];
        }
        push_escaped(&mut self.out, rest);
    }

    /// `>>digits`: a link to the post, or a dead quote.
    fn quote(&mut self, digits: &str) {
        // Too many digits for an id: no post can have it, so it is dead.
        let target = digits.parse::<i64>().ok().map(|n| {
            let id = PostId(n);
            let thread_of = self.thread_of;
            let thread = *self.resolved.entry(id).or_insert_with(|| {
                self.quoted.push(id);
                thread_of(id)
            });
            (id, thread)
        });
        match target {
            Some((id, Some(thread))) => self.out.push_str(&format!(
                "<a class=\"post-reply\" href=\"/threads/{}#{}\">&gt;&gt;{digits}</a>",
                thread.0, id.0
            )),
            _ => self.out.push_str(&format!(
                "<span class=\"dead-quote text-danger\">&gt;&gt;{digits}</span>"
            )),
        }
    }

    /// Writes the text under `node` with no markup at all, without
    /// recursion (for subtrees past [`MAX_DEPTH`]).
    fn flatten<'a>(&mut self, node: &'a AstNode<'a>) {
        // A space between blocks, so `- a` `- b` do not read as "ab".
        let mut wrote_text = false;
        for n in node.descendants() {
            let data = n.data();
            let text = match &data.value {
                NodeValue::Text(t) => t.as_ref(),
                NodeValue::Code(c) => &c.literal,
                NodeValue::CodeBlock(c) => &c.literal,
                NodeValue::SoftBreak | NodeValue::LineBreak => " ",
                v if v.block() && wrote_text => {
                    self.out.push(' ');
                    wrote_text = false;
                    continue;
                }
                _ => continue,
            };
            push_escaped(&mut self.out, text);
            wrote_text = true;
        }
    }
}

/// A line of text is greentext when it starts with exactly one `>`.
fn is_greentext(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next() == Some(GT) && chars.next() != Some(GT)
}

/// The first word of a code fence's info string, if it is a plausible
/// language name; anything else is dropped rather than escaped into a class.
fn language(info: &str) -> Option<&str> {
    let word = info.split_whitespace().next()?;
    let ok = word.len() <= 32
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+#.-".contains(c));
    ok.then_some(word)
}
