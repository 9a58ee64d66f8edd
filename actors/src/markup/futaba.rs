//! A rendered body in the HTML dialect of 4chan's API (`com`), which
//! imageboard clients parse: `<br>` for line and paragraph breaks,
//! `<span class="quote">` for greentext, `<a href="#p123"
//! class="quotelink">` for quotes, `<span class="deadlink">` for dead ones,
//! `<s>` for spoilers and `<pre class="prettyprint">` for code.
//!
//! It rewrites the HTML [`super::render`] wrote, not the markup: the quotes
//! there are already resolved to their threads as they were when the post
//! was written. That HTML escapes every `<` of the poster's text, so each
//! `<` here opens a tag of the writer's small set, and the rewrite only
//! renames tags; text is copied as written, still escaped.

use std::fmt::Write;

/// `html` as 4chan's `com`, for a post in (wani) thread `thread` on board
/// `board`. A quote into another thread links as 4chan's do, to
/// `/{board}/thread/{op}#p{id}` with `op_of(thread)` the opening post of the
/// quoted post's thread; where that is unknown, to the quoted post's own
/// number, which the node also answers with the thread holding it.
pub fn futaba_com(
    html: &str,
    thread: i64,
    board: &str,
    op_of: &dyn Fn(i64) -> Option<i64>,
) -> String {
    let mut out = String::with_capacity(html.len() + 16);
    // What each open `<span>` became, to close it the same way.
    let mut spans: Vec<&'static str> = Vec::new();
    let mut in_pre = false;
    // Breaks owed to a closed paragraph or block, written only if more follows.
    let mut owed = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        let (text, tag) = match rest.find('<') {
            Some(0) => {
                let end = rest.find('>').map_or(rest.len(), |e| e + 1);
                let (tag, after) = rest.split_at(end);
                rest = after;
                ("", tag)
            }
            Some(i) => {
                let (text, after) = rest.split_at(i);
                rest = after;
                (text, "")
            }
            None => (std::mem::take(&mut rest), ""),
        };
        if !text.is_empty() {
            if in_pre {
                out.push_str(&text.replace('\n', "<br>"));
            } else {
                let text = text.trim_matches('\n');
                if !text.is_empty() {
                    pay(&mut out, &mut owed);
                    out.push_str(&text.replace('\n', ""));
                }
            }
            continue;
        }
        match tag {
            "<p>" => {}
            "</p>" => owed = 2,
            "<br>" => {
                pay(&mut out, &mut owed);
                out.push_str("<br>");
            }
            "</span>" => out.push_str(spans.pop().unwrap_or("</span>")),
            "</code></pre>" | "</code>" if in_pre => {}
            "</pre>" => {
                in_pre = false;
                out.push_str("</pre>");
                owed = 1;
            }
            t if t.starts_with("<pre") => {
                pay(&mut out, &mut owed);
                in_pre = true;
                out.push_str("<pre class=\"prettyprint\">");
            }
            t if t.starts_with("<code") && in_pre => {}
            t if t.starts_with("<span") => {
                pay(&mut out, &mut owed);
                let (open, close) = if t.contains("greentext") {
                    ("<span class=\"quote\">", "</span>")
                } else if t.contains("spoiler") {
                    ("<s>", "</s>")
                } else if t.contains("dead-quote") {
                    ("<span class=\"deadlink\">", "</span>")
                } else {
                    (t, "</span>")
                };
                out.push_str(open);
                spans.push(close);
            }
            t if t.starts_with("<a class=\"post-reply\"") => {
                pay(&mut out, &mut owed);
                let target = attr(t, "href")
                    .and_then(|h| h.strip_prefix("/threads/"))
                    .and_then(|h| h.split_once('#'))
                    .and_then(|(t, p)| Some((t.parse::<i64>().ok()?, p.parse::<i64>().ok()?)));
                match target {
                    Some((t, p)) if t == thread => {
                        let _ = write!(out, "<a href=\"#p{p}\" class=\"quotelink\">");
                    }
                    Some((t, p)) => {
                        let op = op_of(t).unwrap_or(p);
                        let _ = write!(
                            out,
                            "<a href=\"/{board}/thread/{op}#p{p}\" class=\"quotelink\">"
                        );
                    }
                    None => out.push_str(t),
                }
            }
            t if is_block_end(t) => {
                out.push_str(t);
                owed = 1;
            }
            t => {
                pay(&mut out, &mut owed);
                out.push_str(t);
            }
        }
    }
    out
}

fn pay(out: &mut String, owed: &mut usize) {
    if !out.is_empty() {
        for _ in 0..*owed {
            out.push_str("<br>");
        }
    }
    *owed = 0;
}

/// Block ends after which 4chan's layout needs a line break to keep the
/// next text on its own line (lists and rules break by themselves).
fn is_block_end(tag: &str) -> bool {
    matches!(
        tag,
        "</h1>" | "</h2>" | "</h3>" | "</h4>" | "</h5>" | "</h6>"
    )
}

/// The value of `name="…"` in a tag the writer made.
fn attr<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let len = tag[start..].find('"')?;
    Some(&tag[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::super::render;
    use super::*;
    use wani_store::{PostId, ThreadId};

    fn com(body: &str) -> String {
        let thread_of = |p: PostId| match p.0 {
            1..=9 => Some(ThreadId(1)),
            10..=99 => Some(ThreadId(10)),
            _ => None,
        };
        let op_of = |t: i64| (t == 10).then_some(10);
        futaba_com(&render(body, &thread_of), 1, "g", &op_of)
    }

    #[test]
    fn lines_and_paragraphs_are_breaks() {
        assert_eq!(com("a\nb"), "a<br>b");
        assert_eq!(com("a\n\nb"), "a<br><br>b");
        assert_eq!(com("one"), "one");
    }

    #[test]
    fn greentext_is_a_quote_span() {
        assert_eq!(
            com(">be me\nno"),
            "<span class=\"quote\">&gt;be me</span><br>no"
        );
    }

    #[test]
    fn quotes_link_as_4chan_does() {
        assert_eq!(
            com(">>2 yes"),
            "<a href=\"#p2\" class=\"quotelink\">&gt;&gt;2</a> yes"
        );
        assert_eq!(
            com(">>12"),
            "<a href=\"/g/thread/10#p12\" class=\"quotelink\">&gt;&gt;12</a>"
        );
        assert_eq!(com(">>500"), "<span class=\"deadlink\">&gt;&gt;500</span>");
    }

    #[test]
    fn spoilers_are_s_and_close_in_order() {
        assert_eq!(
            com("||a **b** >>2||"),
            "<s>a <strong>b</strong> <a href=\"#p2\" class=\"quotelink\">&gt;&gt;2</a></s>"
        );
    }

    #[test]
    fn code_keeps_its_lines() {
        assert_eq!(
            com("x\n\n```\nfn a() {}\n<b>\n```\ny"),
            "x<br><br><pre class=\"prettyprint\">fn a() {}<br>&lt;b&gt;<br></pre><br>y"
        );
    }

    #[test]
    fn hostile_text_stays_text() {
        let c = com("<script>alert(1)</script> \"quoted\" &amp;");
        assert!(!c.contains("<script"), "{c}");
        assert!(c.contains("&lt;script&gt;"), "{c}");
    }
}
