//! The escaping helper every page uses, and small formatters for what pages
//! show: UTC times, file sizes, post excerpts, poster badge colours.
//!
//! [`escape`] is the only way a value from a user or an operator enters a
//! page. It escapes for both text and double- or single-quoted attribute
//! values, so one helper serves everywhere; it does not make a value safe
//! inside `<script>`, `<style>` or an unquoted attribute, and pages never put
//! one there.

use std::fmt::{self, Write};

/// `s` made safe for HTML text and quoted attribute values: `& < > " '`
/// become character references. Displays lazily, so
/// `write!(out, "<b>{}</b>", escape(subject))` allocates nothing.
pub fn escape(s: &str) -> Escape<'_> {
    Escape(s)
}

/// The value [`escape`] returns; writes the escaped text when displayed.
#[derive(Clone, Copy, Debug)]
pub struct Escape<'a>(&'a str);

impl fmt::Display for Escape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

/// Runs `f` on a fresh buffer and returns what it wrote.
pub(crate) fn render(f: impl FnOnce(&mut String) -> fmt::Result) -> String {
    let mut out = String::with_capacity(16 * 1024);
    // `fmt::Write for String` never fails; the `Result` only lets page code
    // use `?` inside helpers that take any writer.
    let _ = f(&mut out);
    out
}

/// A civil date and time in UTC, from milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// Converts epoch milliseconds (negative before 1970) to a civil time.
    pub fn from_millis(ms: i64) -> UtcTime {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's days_from_civil inverse, valid for every i64 day
        // count we can meet.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: sod / 3600,
            minute: sod / 60 % 60,
            second: sod % 60,
        }
    }

    /// `2024-05-01T12:34:56Z`, for `<time datetime>`.
    pub fn iso8601(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2024-05-01 12:34 UTC`, the text a reader sees without JavaScript.
    pub fn readable(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }
}

/// Writes `<time datetime="…">…</time>` for epoch milliseconds `ms`.
pub(crate) fn time(out: &mut String, ms: i64) -> fmt::Result {
    let t = UtcTime::from_millis(ms);
    write!(
        out,
        r#"<time datetime="{}">{}</time>"#,
        t.iso8601(),
        t.readable()
    )
}

/// A byte count as a reader wants it: `512 B`, `34 KB`, `1.2 MB`.
pub fn human_size(bytes: i64) -> String {
    const KB: i64 = 1024;
    const MB: i64 = 1024 * 1024;
    if bytes < KB {
        format!("{bytes} B")
    } else if bytes < MB {
        format!("{} KB", (bytes + KB / 2) / KB)
    } else {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    }
}

/// The first `max` characters of `body` with runs of whitespace folded to
/// one space, and `…` when something was cut. Not escaped: pass it through
/// [`escape`].
pub fn excerpt(body: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in body.split_whitespace() {
        if count > 0 {
            if count >= max {
                out.push('…');
                return out;
            }
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max {
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// What a reader sees of a rendered post body, as plain text: tags dropped,
/// block ends and line breaks turned into spaces, entities decoded, and
/// each spoiler replaced by `[spoiler]` so an excerpt never reveals it.
/// `html` is the markup renderer's own output (well formed); pass the
/// result through [`excerpt`] and [`escape`].
pub fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    // Open spans inside the current spoiler (0: not in a spoiler).
    let mut spoiler_depth = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').map_or(after.len(), |i| i + 1);
            let tag = &after[..end.saturating_sub(1)];
            rest = &after[end..];
            let name = tag
                .trim_start_matches('/')
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("");
            let closing = tag.starts_with('/');
            if spoiler_depth > 0 {
                if name == "span" {
                    spoiler_depth = if closing {
                        spoiler_depth - 1
                    } else {
                        spoiler_depth + 1
                    };
                }
                continue;
            }
            if name == "span" && !closing && tag.contains("class=\"spoiler\"") {
                spoiler_depth = 1;
                out.push_str(" [spoiler] ");
            } else if matches!(
                name,
                "br" | "p"
                    | "li"
                    | "blockquote"
                    | "pre"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "hr"
                    | "tr"
                    | "td"
            ) {
                out.push(' ');
            }
            continue;
        }
        let text_end = rest.find('<').unwrap_or(rest.len());
        if spoiler_depth == 0 {
            decode_entities(&rest[..text_end], &mut out);
        }
        rest = &rest[text_end..];
    }
    out
}

fn decode_entities(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" | "#39" => Some('\''),
            "nbsp" => Some(' '),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

/// The hue (0–359) of a poster id's badge, spread evenly over the 4 hex
/// digits; 0 for an id that is not hex (the badge still shows the text).
pub fn poster_hue(poster: &str) -> u32 {
    u32::from_str_radix(poster, 16)
        .map(|v| (v & 0xffff) * 360 / 0x1_0000)
        .unwrap_or(0)
}

/// `(w, h)` scaled down to fit a `max`×`max` box, keeping the aspect ratio;
/// never scaled up. Sizes below 1 become 1 so a broken record still lays out.
pub fn fit(w: i64, h: i64, max: i64) -> (i64, i64) {
    let (w, h) = (w.max(1), h.max(1));
    if w <= max && h <= max {
        (w, h)
    } else if w >= h {
        (max, (h * max / w).max(1))
    } else {
        ((w * max / h).max(1), max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>alert("x" + 'y')</script> & co"#).to_string(),
            "&lt;script&gt;alert(&quot;x&quot; + &#39;y&#39;)&lt;/script&gt; &amp; co"
        );
        assert_eq!(escape("plain ünïcode").to_string(), "plain ünïcode");
        assert_eq!(escape("").to_string(), "");
        assert_eq!(escape("&amp;").to_string(), "&amp;amp;");
    }

    #[test]
    fn utc_times_are_civil() {
        assert_eq!(UtcTime::from_millis(0).iso8601(), "1970-01-01T00:00:00Z");
        // 2024-02-29 23:59:59.999 UTC, a leap day.
        let t = UtcTime::from_millis(1_709_251_199_999);
        assert_eq!(t.iso8601(), "2024-02-29T23:59:59Z");
        assert_eq!(t.readable(), "2024-02-29 23:59 UTC");
        assert_eq!(UtcTime::from_millis(-1).iso8601(), "1969-12-31T23:59:59Z");
        assert_eq!(
            UtcTime::from_millis(951_782_400_000).iso8601(),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1 KB");
        assert_eq!(human_size(240 * 1024 + 100), "240 KB");
        assert_eq!(human_size(1024 * 1024 * 3 / 2), "1.5 MB");
    }

    #[test]
    fn excerpts_fold_whitespace_and_cut_on_characters() {
        assert_eq!(excerpt("  a\n\nb\tc  ", 150), "a b c");
        assert_eq!(excerpt("ééééé", 3), "ééé…");
        assert_eq!(excerpt("abc def", 3), "abc…");
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt(&"x".repeat(400), 150).chars().count(), 151);
    }

    #[test]
    fn poster_hues_spread_over_the_wheel() {
        assert_eq!(poster_hue("0000"), 0);
        assert_eq!(poster_hue("8000"), 180);
        assert_eq!(poster_hue("ffff"), 359);
        assert_eq!(poster_hue("<b>"), 0);
    }

    #[test]
    fn fit_keeps_aspect_and_never_enlarges() {
        assert_eq!(fit(500, 250, 200), (200, 100));
        assert_eq!(fit(250, 500, 200), (100, 200));
        assert_eq!(fit(120, 80, 200), (120, 80));
        assert_eq!(fit(0, 0, 200), (1, 1));
    }

    #[test]
    fn plain_text_hides_spoilers_and_decodes_entities() {
        let html = "<p>Ending: <span class=\"spoiler\">the <em>butler</em> <span>did</span> it</span> &amp; more&#39;s <a href=\"/x\">link</a></p>\n<blockquote><p>&gt;quote</p></blockquote>";
        let t = plain_text(html);
        assert!(!t.contains("butler") && !t.contains("did"), "{t}");
        assert!(t.contains("[spoiler]"));
        assert_eq!(excerpt(&t, 100), "Ending: [spoiler] & more's link >quote");
    }
}
