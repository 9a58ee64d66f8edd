//! Golden tests for `wani_actors::markup`, plus safety checks on hostile and
//! random bodies.
//!
//! Each `tests/markup/*.txt` is one scenario:
//!
//! ```text
//! # what the case is about (one or more `#` lines)
//! --- input
//! the post body, verbatim up to the newline before the next marker
//! --- output
//! the expected HTML, verbatim to the end of the file
//! ```
//!
//! `--- input escaped` instead of `--- input` decodes `\r`, `\t`, `\n`, `\\`
//! and `\u{XXXX}` in the body, for bytes an editor would not keep.
//!
//! The resolver: posts 1..=100 exist, post N in thread N/10 + 1 (so post 12
//! is in thread 2); every other post is missing.
//!
//! `WANI_BLESS=1 cargo test -p wani-actors --test markup` rewrites every
//! output with what the renderer gives now. Review the diff before keeping it.
//!
//! Every output, golden or not, also goes through [`check_html`]: only
//! allow-listed tags and attributes, balanced, safe link targets.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use wani_actors::markup::{quoted_ids, render, render_full};
use wani_store::{PostId, ThreadId};

fn thread_of(id: PostId) -> Option<ThreadId> {
    (1..=100).contains(&id.0).then(|| ThreadId(id.0 / 10 + 1))
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/markup")
}

/// One golden file, split into its parts.
struct Golden {
    header: String,
    input_marker: &'static str,
    /// The body as written in the file (still escaped, if so marked).
    raw_input: String,
    output: String,
}

impl Golden {
    fn parse(text: &str) -> Result<Golden, String> {
        let (input_marker, start) = ["--- input escaped\n", "--- input\n"]
            .iter()
            .find_map(|m| text.find(m).map(|i| (*m, i)))
            .ok_or("no `--- input` line")?;
        let header = &text[..start];
        if header.lines().any(|l| !l.starts_with('#')) || header.is_empty() {
            return Err("the header must be one or more `#` comment lines".into());
        }
        let rest = &text[start + input_marker.len()..];
        let end = rest.find("\n--- output\n").ok_or("no `--- output` line")?;
        Ok(Golden {
            header: header.to_string(),
            input_marker,
            raw_input: rest[..end].to_string(),
            output: rest[end + "\n--- output\n".len()..].to_string(),
        })
    }

    fn input(&self) -> Result<String, String> {
        if self.input_marker.contains("escaped") {
            unescape(&self.raw_input)
        } else {
            Ok(self.raw_input.clone())
        }
    }

    fn to_file(&self, output: &str) -> String {
        format!(
            "{}{}{}\n--- output\n{}",
            self.header, self.input_marker, self.raw_input, output
        )
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('u') => {
                let rest: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let hex = rest.strip_prefix('{').ok_or("bad \\u escape")?;
                let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                out.push(char::from_u32(code).ok_or("bad code point")?);
            }
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Ok(out)
}

#[test]
fn golden_files() {
    let bless = std::env::var("WANI_BLESS").is_ok_and(|v| v == "1");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/markup exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    assert!(
        paths.len() >= 40,
        "golden files went missing: {}",
        paths.len()
    );
    let mut failures = String::new();
    for path in &paths {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let text = std::fs::read_to_string(path).expect("golden file is UTF-8");
        let golden = match Golden::parse(&text) {
            Ok(g) => g,
            Err(e) => {
                let _ = writeln!(failures, "{name}: malformed: {e}");
                continue;
            }
        };
        let input = match golden.input() {
            Ok(i) => i,
            Err(e) => {
                let _ = writeln!(failures, "{name}: bad escape: {e}");
                continue;
            }
        };
        let html = render(&input, &thread_of);
        if let Err(e) = check_html(&html) {
            let _ = writeln!(failures, "{name}: unsafe or malformed output: {e}\n{html}");
        }
        if html == golden.output {
            continue;
        }
        if bless {
            std::fs::write(path, golden.to_file(&html)).expect("golden file is writable");
        } else {
            let _ = writeln!(
                failures,
                "{name}: output differs\n--- expected\n{}--- got\n{html}",
                golden.output
            );
        }
    }
    assert!(failures.is_empty(), "{failures}");
}

/// The hostile bodies: each as long as a post may be (4096 characters).
fn hostile_bodies() -> Vec<(&'static str, String)> {
    let fill = |unit: &str| unit.repeat(4096 / unit.len());
    vec![
        ("only >", fill(">")),
        ("only |", fill("|")),
        ("only >>", fill(">>")),
        ("|| repeated", fill("||")),
        ("||a repeated", fill("||a")),
        ("nested *[", fill("*[")),
        ("nested [*", fill("[*")),
        ("4096 backticks", fill("`")),
        ("backtick runs", fill("`` ` ")),
        ("- - - - (a rule)", fill("- ")),
        ("- - - x lists", format!("{}x", "- ".repeat(2047))),
        ("1. 1. 1. lists", fill("1. ")),
        (
            "indented lists",
            (0..60)
                .map(|i| format!("{}- x\n", " ".repeat(i * 2)))
                .collect::<String>(),
        ),
        (
            "**** then a ****",
            format!("{}a{}", "*".repeat(2047), "*".repeat(2048)),
        ),
        ("_*_* mix", fill("_*")),
        ("~~ repeated", fill("~~a")),
        ("[ brackets", fill("[")),
        ("![ images", fill("![")),
        ("[a]( unclosed", fill("[a](")),
        ("< only", fill("<")),
        ("<a unclosed tags", fill("<a ")),
        ("<http: long", format!("<http:{}", "a".repeat(4090))),
        ("backslashes", fill("\\")),
        ("\\> pairs", fill("\\>")),
        ("entities", fill("&#1")),
        (">>1 quotes", fill(">>1 ")),
        (
            ">>N distinct",
            (1..=700).map(|i| format!(">>{i} ")).collect::<String>(),
        ),
        ("greentext lines", fill(">a\n")),
        ("blank lines", fill("\n")),
        ("unbalanced mix", fill("*_`[|>~<")),
        ("javascript links", fill("[x](javascript:a) ")),
    ]
}

#[test]
fn hostile_bodies_render_safely() {
    for (name, body) in hostile_bodies() {
        assert!(
            body.chars().count() <= 4096,
            "{name} is longer than a post may be"
        );
        let out = render_full(&body, &thread_of);
        let lower = out.html.to_ascii_lowercase();
        assert!(!lower.contains("<script"), "{name}: <script in output");
        assert!(
            !lower.contains("javascript:"),
            "{name}: javascript: in output"
        );
        assert!(!lower.contains(" on"), "{name}: ` on` in output");
        if let Err(e) = check_html(&out.html) {
            panic!("{name}: {e}");
        }
        assert_eq!(
            quoted_ids(&body),
            out.quoted,
            "{name}: quoted_ids disagrees with render"
        );
    }
}

/// Random bodies built from the pieces markup is made of; a fixed seed keeps
/// failures reproducible.
#[test]
fn random_bodies_render_safely() {
    const PIECES: &[&str] = &[
        ">",
        ">>",
        ">>12",
        ">>999",
        "|",
        "||",
        "*",
        "**",
        "_",
        "~~",
        "`",
        "```",
        "[",
        "]",
        "(",
        ")",
        "![",
        "](",
        "<",
        "</",
        "script",
        "a",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\r\n",
        "- ",
        "1. ",
        "# ",
        "    ",
        "\\",
        "&",
        "&#",
        ";",
        "javascript:",
        "http://x.example",
        "\"",
        "'",
        "=",
        "onerror",
        "é",
        "日",
        "\u{FDD0}",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let len = (next() % 60) as usize;
        let body: String = (0..len)
            .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
            .collect();
        let out = render_full(&body, &thread_of);
        if let Err(e) = check_html(&out.html) {
            panic!("round {round}: {e}\nbody: {body:?}\nhtml: {}", out.html);
        }
        assert_eq!(quoted_ids(&body), out.quoted, "round {round}: {body:?}");
    }
}

/// Prints how long each hostile body takes to render (best of 5).
/// `cargo test -p wani-actors --release --test markup -- --ignored --nocapture`
#[test]
#[ignore = "prints timings; not a pass/fail check"]
fn hostile_timings() {
    for (name, body) in hostile_bodies() {
        let best = (0..5)
            .map(|_| {
                let t = Instant::now();
                let html = render(&body, &thread_of);
                (t.elapsed(), html.len())
            })
            .min()
            .unwrap_or_default();
        println!(
            "{name:>20}: {:>10.3?}  ({} bytes in, {} bytes out)",
            best.0,
            body.len(),
            best.1
        );
    }
}

/// Checks that `html` is what the renderer may produce: only allow-listed
/// tags with allow-listed, double-quoted attributes, balanced, no link in a
/// link, safe link targets, and text with no raw `<`, `>` or stray `&`.
fn check_html(html: &str) -> Result<(), String> {
    const TAGS: &[&str] = &[
        "p", "br", "strong", "em", "del", "a", "span", "code", "pre", "ul", "ol", "li", "h1", "h2",
        "h3", "h4", "h5", "h6", "hr",
    ];
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = html;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        check_text(&rest[..lt])?;
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match stack.pop() {
                Some(open) if open == name => continue,
                other => return Err(format!("</{name}> closes {other:?}")),
            }
        }
        let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        if !TAGS.contains(&name) {
            return Err(format!("tag <{name}> is not allowed"));
        }
        check_attrs(name, attrs)?;
        if name == "a" && stack.contains(&"a") {
            return Err("a link inside a link".into());
        }
        if name != "br" && name != "hr" {
            stack.push(name);
        }
    }
    match stack.is_empty() {
        true => Ok(()),
        false => Err(format!("unclosed tags: {stack:?}")),
    }
}

fn check_text(text: &str) -> Result<(), String> {
    if text.contains('>') || text.contains('"') {
        return Err(format!("unescaped text: {text:?}"));
    }
    for (i, _) in text.match_indices('&') {
        if !["&amp;", "&lt;", "&gt;", "&quot;"]
            .iter()
            .any(|e| text[i..].starts_with(e))
        {
            return Err(format!("stray & in {text:?}"));
        }
    }
    Ok(())
}

fn check_attrs(tag: &str, attrs: &str) -> Result<(), String> {
    let mut rest = attrs;
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let (name, tail) = rest
            .split_once("=\"")
            .ok_or(format!("malformed attributes {attrs:?}"))?;
        let (value, tail) = tail
            .split_once('"')
            .ok_or(format!("unterminated attribute in {attrs:?}"))?;
        rest = tail.strip_prefix(' ').unwrap_or(tail);
        if value.contains('<') || value.contains('>') {
            return Err(format!("raw bracket in attribute {value:?}"));
        }
        check_text(value)?;
        let ok = match (tag, name) {
            ("a", "href") => safe_href(value),
            ("a", "rel") => value == "nofollow noopener",
            ("a", "class") => value == "post-reply",
            ("a", "title") => true,
            ("span", "class") => {
                ["greentext", "spoiler", "dead-quote text-danger"].contains(&value)
            }
            ("code", "class") => value.starts_with("language-"),
            ("ol", "start") => value.bytes().all(|b| b.is_ascii_digit()),
            _ => false,
        };
        if !ok {
            return Err(format!(
                "attribute {name}=\"{value}\" not allowed on <{tag}>"
            ));
        }
        seen.push(name);
    }
    if tag == "a" {
        let internal = seen.contains(&"class");
        if !seen.contains(&"href") || internal == seen.contains(&"rel") {
            return Err(format!(
                "<a {attrs}> is neither a quote nor an outside link"
            ));
        }
    }
    Ok(())
}

/// The scheme test, redone independently of the renderer: what a browser
/// would take as the scheme must be http, https or mailto, or absent.
fn safe_href(value: &str) -> bool {
    let decoded = value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let probe: String = decoded
        .chars()
        .filter(|c| !c.is_ascii_control() && *c != ' ')
        .collect();
    let end = probe.find([':', '/', '?', '#']).unwrap_or(probe.len());
    if probe[end..].starts_with(':') {
        ["http", "https", "mailto"].contains(&probe[..end].to_ascii_lowercase().as_str())
    } else {
        true
    }
}
