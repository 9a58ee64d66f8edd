//! The pass before comrak: hides `<` and `>` from the CommonMark parser.
//!
//! wani gives `>` its own meaning (greentext, `>>N` quotes), and never wants
//! raw HTML. Both problems disappear if comrak never sees a bare `<` or `>`:
//! each is swapped for a Unicode noncharacter ([`GT`], [`LT`]) that
//! CommonMark treats as an ordinary letter. So `>text` is paragraph text (no
//! blockquote), `>>12` is not a nested blockquote, and `<script>` is plain
//! text (no HTML block or inline HTML can start). The HTML writer turns the
//! placeholders back into `&gt;` / `&lt;` (or into `>` / `<` inside code and
//! URLs, where the text is literal).
//!
//! Two kinds of `<`/`>` stay as they are, because CommonMark gives them a
//! meaning wani keeps:
//! - a backslash-escaped `\>` or `\<` (an odd run of backslashes before it):
//!   comrak turns it into a literal character, which is how a poster writes
//!   a `>` that is neither greentext nor a quote;
//! - the brackets of an autolink, `<https://example.com>` or `<a@b.example>`.
//!
//! Also here: CRLF and lone CR become LF (so golden outputs do not depend on
//! the poster's OS), and any placeholder character already in the input
//! becomes U+FFFD so a poster cannot forge one.
//!
//! Every step is a single forward scan; the autolink probe from a `<` stops
//! at the next `<`, so probes never overlap and the pass stays linear.

/// Stands for a `>` the poster typed (U+FDD0, a noncharacter: reserved by
/// Unicode for exactly this kind of internal use).
pub(crate) const GT: char = '\u{FDD0}';
/// Stands for a `<` the poster typed (U+FDD1).
pub(crate) const LT: char = '\u{FDD1}';

/// Rewrites `body` for comrak as described in the module doc.
pub(crate) fn prepare(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len() + body.len() / 4);
    // Length of the run of backslashes just before the current character.
    let mut backslashes = 0usize;
    // Byte offset of the `>` closing an autolink we already decided to keep.
    let mut keep_gt_at: Option<usize> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let escaped = backslashes % 2 == 1;
        match c {
            '\r' => {
                // CRLF is one line break; a lone CR is one too.
                if chars.peek().map(|&(_, n)| n) != Some('\n') {
                    out.push('\n');
                }
            }
            GT | LT => out.push('\u{FFFD}'),
            '>' if escaped || keep_gt_at == Some(i) => out.push('>'),
            '>' => out.push(GT),
            '<' if escaped => out.push('<'),
            '<' => match autolink_end(bytes, i) {
                Some(end) => {
                    keep_gt_at = Some(end);
                    out.push('<');
                }
                None => out.push(LT),
            },
            _ => out.push(c),
        }
        backslashes = if c == '\\' { backslashes + 1 } else { 0 };
    }
    out
}

/// If an autolink starts at the `<` at `start`, the offset of its `>`.
///
/// Mirrors CommonMark's autolink syntax closely enough: a URI autolink is a
/// scheme of 2–32 characters, `:`, then no spaces, controls or angle
/// brackets; an email autolink is `local@domain`. Being slightly looser than
/// comrak costs nothing: a kept `<` that comrak does not take as an autolink
/// is shown as text, and it can never start raw HTML (a tag name cannot be
/// followed by `:` or `@`, and the writer escapes HTML nodes anyway).
fn autolink_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut end = start + 1;
    loop {
        match bytes.get(end) {
            None => return None,
            Some(b'>') => break,
            Some(&b) if b == b'<' || b <= b' ' || b == 0x7f => return None,
            Some(_) => end += 1,
        }
    }
    let inner = bytes.get(start + 1..end)?;
    (is_uri(inner) || is_email(inner)).then_some(end)
}

fn is_uri(s: &[u8]) -> bool {
    let Some(colon) = s.iter().position(|&b| b == b':') else {
        return false;
    };
    let scheme = &s[..colon];
    (2..=32).contains(&scheme.len())
        && scheme[0].is_ascii_alphabetic()
        && scheme
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'.' || b == b'-')
}

fn is_email(s: &[u8]) -> bool {
    let Some(at) = s.iter().position(|&b| b == b'@') else {
        return false;
    };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    let local_ok = |b: u8| b.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&b);
    !local.is_empty()
        && local[0].is_ascii_alphanumeric()
        && local.iter().all(|&b| local_ok(b))
        && !domain.is_empty()
        && domain[0].is_ascii_alphanumeric()
        && domain
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Undoes [`prepare`] for literal text (code, URLs): placeholders become the
/// characters the poster typed.
pub(crate) fn unmap(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            GT => '>',
            LT => '<',
            c => c,
        })
        .collect()
}

/// Appends `s` to `out` with HTML's special characters escaped, placeholders
/// included. Safe both in text and inside a double-quoted attribute.
pub(crate) fn push_escaped(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(pos) = rest.find(['&', '<', '>', '"', GT, LT]) {
        out.push_str(&rest[..pos]);
        let mut it = rest[pos..].chars();
        let Some(c) = it.next() else { break };
        out.push_str(match c {
            '&' => "&amp;",
            '<' | LT => "&lt;",
            '>' | GT => "&gt;",
            _ => "&quot;",
        });
        rest = it.as_str();
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(s: &str) -> String {
        prepare(s).replace(GT, "{gt}").replace(LT, "{lt}")
    }

    #[test]
    fn angle_brackets_become_placeholders() {
        assert_eq!(shown(">a <b> >>1"), "{gt}a {lt}b{gt} {gt}{gt}1");
    }

    #[test]
    fn escaped_brackets_stay() {
        assert_eq!(shown(r"\>a \<b"), r"\>a \<b");
        // An even run of backslashes escapes itself, not the bracket.
        assert_eq!(shown(r"\\>a"), r"\\{gt}a");
    }

    #[test]
    fn autolinks_stay() {
        assert_eq!(
            shown("<https://x.example/a> <me@x.example>"),
            "<https://x.example/a> <me@x.example>"
        );
        assert_eq!(
            shown("<a href=x> <b:c d>"),
            "{lt}a href=x{gt} {lt}b:c d{gt}"
        );
        assert_eq!(shown("<x:y>"), "{lt}x:y{gt}");
    }

    #[test]
    fn line_endings_and_forged_placeholders() {
        assert_eq!(prepare("a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(prepare("\u{FDD0}\u{FDD1}"), "\u{FFFD}\u{FFFD}");
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        push_escaped(&mut s, "a&<>\"'\u{FDD0}\u{FDD1}é");
        assert_eq!(s, "a&amp;&lt;&gt;&quot;'&gt;&lt;é");
    }
}
