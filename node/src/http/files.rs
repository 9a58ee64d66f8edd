//! Uploaded files and the static assets.
//!
//! Blobs are content-addressed, so a media id always names the same bytes:
//! they are served with a year-long immutable cache and their hash as ETag.
//! `nosniff` stops a browser from second-guessing the type we sniffed.

use super::{ApiError, AppState};
use crate::pages;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use wani_store::MediaId;

async fn serve_blob(
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
    let etag = format!("\"{key}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(etag.as_str())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let bytes = state
        .blobs
        .get(key)
        .await?
        .ok_or_else(|| ApiError::not_found("the file is gone"))?;
    let mut res = (StatusCode::OK, bytes).into_response();
    let h = res.headers_mut();
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
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    Ok(res)
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
