//! Polyglots: files that are a valid image or video *and* a web page.
//!
//! A JPEG with `<html><script>…` in a comment, or a page appended after
//! its end marker, displays as an image, but served under the wrong type
//! (a misconfigured proxy, an old browser that sniffs) it runs as HTML on
//! this site's origin. wani serves uploads with their sniffed type and
//! `nosniff`, and strips comments and trailers from what it stores; it
//! still refuses such files outright, so no copy of one is ever kept.
//!
//! The check looks for the opening of an HTML document or script anywhere
//! in the bytes, case-insensitively, followed by a delimiter (`>`, `/` or
//! white space). Markers are at least six bytes with the delimiter, so in
//! compressed data, where every byte value is about equally likely, a false
//! match is roughly one in a million 8 MB files.
//!
//! Not handled: SVG or PDF polyglots (wani does not accept SVG, and serves
//! nothing as PDF), or markup split across bytes an attacker cannot place.

/// Openings that make a file a web page or a script.
const MARKERS: &[&[u8]] = &[b"<html", b"<script", b"<iframe", b"<!doctype", b"<?php"];

/// The first marker found in `bytes`, as written in [`MARKERS`].
pub(crate) fn html_marker(bytes: &[u8]) -> Option<&'static str> {
    let mut pos = 0;
    while let Some(off) = memchr::memchr(b'<', bytes.get(pos..)?) {
        let at = pos + off;
        for marker in MARKERS {
            let end = at + marker.len();
            let Some(candidate) = bytes.get(at..end) else {
                continue;
            };
            let delimited = bytes
                .get(end)
                .is_some_and(|&b| b == b'>' || b == b'/' || b.is_ascii_whitespace());
            if delimited && candidate.eq_ignore_ascii_case(marker) {
                return std::str::from_utf8(marker).ok();
            }
        }
        pos = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_markup_anywhere() {
        assert_eq!(html_marker(b"\xFF\xD8junk<HTML><body>"), Some("<html"));
        assert_eq!(html_marker(b"x<script src=a>"), Some("<script"));
        assert_eq!(html_marker(b"<!DOCTYPE html>"), Some("<!doctype"));
        assert_eq!(html_marker(b"<htmlx"), None);
        assert_eq!(html_marker(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>"), None);
        assert_eq!(html_marker(b"<scrip"), None);
        assert_eq!(html_marker(b""), None);
    }
}
