//! Uploaded files and the static assets.
//!
//! Blobs are content-addressed, so a media id always names the same bytes:
//! they are served with a year-long immutable cache and their hash as ETag.
//! `nosniff` stops a browser from second-guessing the type we sniffed, and
//! a `sandbox` CSP keeps an upload opened on its own from running anything.
//! A single `Range: bytes=…` is answered with 206 (what browsers send to
//! seek in a video); several ranges get the whole file, which HTTP allows.
//! With `[blobs] public_url` set, each file route redirects (308) to the
//! file on the CDN instead.

use super::ApiError;
use crate::pages;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use wani_store::MediaId;

pub(crate) async fn serve_blob(
    state: &AppState,
    id: &str,
    thumb: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = id
        .parse::<i64>()
        .map(MediaId)
        .map_err(|_| ApiError::not_found("no such file"))?;
    let media = state
        .store
        .media(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let (key, mimetype) = if thumb {
        (&media.thumb_blob, &media.thumb_mimetype)
    } else {
        (&media.blob, &media.mimetype)
    };
    // With media on a CDN, the node's own URLs (old links, the 4chan API's
    // file routes, which clients build themselves) send the client there.
    if let Some(url) = crate::json::public(key) {
        let mut res = axum::response::Redirect::permanent(&url).into_response();
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        return Ok(res);
    }
    let etag = format!("\"{key}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let gone = || ApiError::not_found("the file is gone");
    // A range is fetched alone (from S3, one ranged GET instead of the
    // whole video). An original's length is in its row; a thumbnail's is
    // asked of the store, which only a client seeking in one makes it do.
    if let Some(asked) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        let total = match thumb {
            false => media.size_bytes.max(0) as u64,
            true => state.blobs.size(key).await?.ok_or_else(gone)?,
        };
        match parse_range(asked, total) {
            Range::Unsatisfiable => return Ok(unsatisfiable(total)),
            Range::Bytes(start, end) => {
                let part = state
                    .blobs
                    .get_range(key, start..end + 1)
                    .await?
                    .ok_or_else(gone)?;
                return Ok(file_headers(partial(part, start, total), mimetype, &etag));
            }
            Range::Whole => {}
        }
    }
    let bytes = state.blobs.get(key).await?.ok_or_else(gone)?;
    Ok(file_headers(
        (StatusCode::OK, bytes).into_response(),
        mimetype,
        &etag,
    ))
}

/// The headers every file answer carries: ranges accepted, a sandbox, its
/// type (never sniffed), a year of caching and its hash as ETag.
fn file_headers(mut res: Response, mimetype: &str, etag: &str) -> Response {
    let h = res.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    if let Ok(v) = HeaderValue::from_str(mimetype) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// 416 for a file of `total` bytes.
fn unsatisfiable(total: u64) -> Response {
    let mut res = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    res
}

/// 206 with `part`, which starts at `start` of a file of `total` bytes.
fn partial(part: bytes::Bytes, start: u64, total: u64) -> Response {
    let end = start + (part.len() as u64).saturating_sub(1);
    let mut res = (StatusCode::PARTIAL_CONTENT, part).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
        res.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    res
}

/// What a `Range` header asks of a file of some length.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// Bytes `start..=end`, within the file.
    Bytes(u64, u64),
    /// Nothing the file has (416).
    Unsatisfiable,
    /// Not a single byte range we serve partially: the whole file (200).
    Whole,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against a file of `total`
/// bytes.
fn parse_range(value: &str, total: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Range::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return Range::Whole,
        // The last n bytes.
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return Range::Unsatisfiable,
            Ok(n) => (total.saturating_sub(n), total.saturating_sub(1)),
            Err(_) => return Range::Whole,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return Range::Whole;
            };
            let end = if b.is_empty() {
                total.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(end) if end >= start => end.min(total.saturating_sub(1)),
                    _ => return Range::Whole,
                }
            };
            (start, end)
        }
    };
    if total == 0 || parsed.0 >= total {
        return Range::Unsatisfiable;
    }
    Range::Bytes(parsed.0, parsed.1)
}

/// `/upload/{id}`: the original file.
pub async fn original(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_blob(&state, &id, false, &headers).await
}

/// `/upload/thumb/{id}`: its thumbnail.
pub async fn thumbnail(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve_blob(&state, &id, true, &headers).await
}

fn asset(headers: &HeaderMap, content_type: &'static str, body: &'static str) -> Response {
    super::cache::respond_fresh(headers, content_type, body)
}

pub async fn style(headers: HeaderMap) -> Response {
    asset(&headers, "text/css; charset=utf-8", pages::STYLE_CSS)
}

pub async fn script(headers: HeaderMap) -> Response {
    asset(&headers, "text/javascript; charset=utf-8", pages::WANI_JS)
}

/// `/static/themes/{name}.css`.
pub async fn theme(Path(name): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let theme = name
        .strip_suffix(".css")
        .and_then(pages::Theme::from_name)
        .ok_or_else(|| ApiError::not_found(format!("there is no theme {name:?}")))?;
    Ok(asset(
        &headers,
        "text/css; charset=utf-8",
        pages::theme_css(theme),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Range::Bytes(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Range::Bytes(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Range::Whole);
        assert_eq!(parse_range("bytes=9-3", 100), Range::Whole);
        assert_eq!(parse_range("items=0-1", 100), Range::Whole);
    }
}
