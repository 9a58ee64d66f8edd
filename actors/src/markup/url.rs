//! Which link targets a post may carry, and how they are written into `href`.
//!
//! An allow-list, not a block-list: a URL survives only if it has no scheme
//! (relative, `#fragment`, `//host/…`) or its scheme is `http`, `https` or
//! `mailto`. Everything else (`javascript:`, `data:`, `vbscript:`, `file:`,
//! and any scheme we have not thought of) is refused, and the writer then
//! shows the link text without a link.
//!
//! The scheme is read the way a browser would, or more strictly: comrak has
//! already decoded entities and backslash escapes in the destination, and
//! before looking for the scheme we drop every ASCII control character and
//! space, which browsers strip or ignore (`java\tscript:`, ` javascript:`).
//! A candidate scheme containing anything else (`java\u{200b}script:`) is
//! simply not on the list.

/// Schemes a post may link to.
const ALLOWED_SCHEMES: [&str; 3] = ["http", "https", "mailto"];

/// The `href` value for `url` (already unmapped from placeholders), escaped
/// for a double-quoted attribute; `None` if the URL may not be linked.
pub(crate) fn safe_href(url: &str) -> Option<String> {
    if !scheme_allowed(url) {
        return None;
    }
    Some(encode_href(url.trim_matches(|c: char| {
        c.is_ascii_whitespace() || c.is_ascii_control()
    })))
}

fn scheme_allowed(url: &str) -> bool {
    let probe = url.chars().filter(|c| !(c.is_ascii_control() || *c == ' '));
    let mut scheme = String::new();
    for c in probe {
        match c {
            ':' => return ALLOWED_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()),
            // Before any `:`, these end the part that could be a scheme: the
            // URL is relative.
            '/' | '?' | '#' => return true,
            c => scheme.push(c),
        }
    }
    true
}

/// Percent-encodes what must not appear raw in a URL (controls, space,
/// quotes, angle brackets, non-ASCII) and HTML-escapes `&`. An existing
/// `%XX` is kept, as CommonMark renderers do.
fn encode_href(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut buf = [0u8; 4];
    for c in url.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            c if c.is_ascii_alphanumeric() || "-_.~!*'();:@=+$,/?#[]%".contains(c) => out.push(c),
            c => {
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_schemes_and_relative_urls_pass() {
        for url in [
            "http://example.com",
            "HTTPS://example.com/a?b=c#d",
            "mailto:a@b.example",
            "/threads/3#12",
            "#12",
            "relative/path",
            "//example.com/x",
            "",
            "/a:b",
        ] {
            assert!(safe_href(url).is_some(), "{url:?} should be allowed");
        }
    }

    #[test]
    fn dangerous_schemes_are_refused() {
        for url in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java\nscript:alert(1)",
            "\u{1}javascript:alert(1)",
            "java\u{200b}script:alert(1)",
            "data:text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "file:///etc/passwd",
            "unknown:thing",
        ] {
            assert!(safe_href(url).is_none(), "{url:?} should be refused");
        }
    }

    #[test]
    fn href_is_encoded_for_an_attribute() {
        assert_eq!(
            safe_href("http://x.example/a b\"c<d>&e=ö").as_deref(),
            Some("http://x.example/a%20b%22c%3Cd%3E&amp;e=%C3%B6")
        );
    }
}
