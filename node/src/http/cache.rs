//! Conditional GET: every GET carries a strong ETag and a `Last-Modified`
//! date; a matching `If-None-Match`, or (without one) an `If-Modified-Since`
//! no older than the content, is answered 304 with no body.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use wani_actors::{CachedView, Rendered};

/// Answers a cached view, or 304 when the client already has it.
pub fn respond(req: &HeaderMap, view: CachedView) -> Response {
    let etag = HeaderValue::from_str(&view.etag).ok();
    let modified = HeaderValue::from_str(&httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(view.last_modified.max(0) as u64),
    ))
    .ok();
    // If-None-Match decides when present (RFC 9110 13.2.2); the date only without it.
    let unmodified = match (req.get(header::IF_NONE_MATCH), &etag) {
        (Some(inm), Some(tag)) => matches(inm, tag),
        (Some(_), None) => false,
        (None, _) => req
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .is_some_and(|since| view.unmodified_since(since.as_secs() as i64)),
    };
    if unmodified {
        let mut res = StatusCode::NOT_MODIFIED.into_response();
        let h = res.headers_mut();
        if let Some(tag) = etag {
            h.insert(header::ETAG, tag);
        }
        if let Some(m) = modified {
            h.insert(header::LAST_MODIFIED, m);
        }
        return res;
    }
    let mut res = (StatusCode::OK, view.body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(view.content_type),
    );
    // Revalidate every time: the content changes with every post, the ETag makes that cheap.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(tag) = etag {
        h.insert(header::ETAG, tag);
    }
    if let Some(m) = modified {
        h.insert(header::LAST_MODIFIED, m);
    }
    res
}

/// Renders-and-answers for content not cached by an actor.
pub fn respond_fresh(
    req: &HeaderMap,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    let mut view = CachedView::new(Rendered {
        content_type,
        body: body.into(),
    });
    // Dated now, with no record of when it last changed: only a date
    // after now is proof the client has it (the ETag still is).
    view.same_second = true;
    respond(req, view)
}

/// Pages rendered per request from the database (the archive), kept for a
/// few seconds so a crawler or a script reloading them costs one render per
/// interval, not one per request. Bounded: past `max` entries it starts
/// over.
pub struct PageCache<K> {
    ttl: std::time::Duration,
    max: usize,
    pages: std::sync::Mutex<std::collections::HashMap<K, (std::time::Instant, CachedView)>>,
}

impl<K: std::hash::Hash + Eq> PageCache<K> {
    pub fn new(ttl: std::time::Duration, max: usize) -> PageCache<K> {
        PageCache {
            ttl,
            max,
            pages: Default::default(),
        }
    }

    /// The page under `key` if rendered less than the TTL ago.
    pub fn get(&self, key: &K) -> Option<CachedView> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub fn put(&self, key: K, view: CachedView) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= self.max {
            pages.clear();
        }
        pages.insert(key, (std::time::Instant::now(), view));
    }
}

/// `If-None-Match` may list several tags, or `*`; weak tags match too.
fn matches(inm: &HeaderValue, tag: &HeaderValue) -> bool {
    let Ok(inm) = inm.to_str() else { return false };
    let Ok(tag) = tag.to_str() else { return false };
    inm.split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists() {
        let tag = HeaderValue::from_static("\"abc\"");
        assert!(matches(&HeaderValue::from_static("\"x\", \"abc\""), &tag));
        assert!(matches(&HeaderValue::from_static("W/\"abc\""), &tag));
        assert!(matches(&HeaderValue::from_static("*"), &tag));
        assert!(!matches(&HeaderValue::from_static("\"abcd\""), &tag));
    }
}
