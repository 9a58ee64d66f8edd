//! `/captcha`: the built-in captcha's pictures.
//!
//! - `GET /captcha` (for scripts): issues a captcha, answers
//!   `{"captcha_id": "…", "image": "/captcha/…"}`; the post then carries
//!   `captcha_id` and `captcha` (the code) fields.
//! - `GET /captcha/new.png` (for the HTML forms): issues a captcha, answers
//!   its picture and remembers its id in the `wani_captcha` cookie, so a
//!   form on a cached, shared page needs no per-viewer markup.
//! - `GET /captcha/{id}`: the picture of a pending captcha.
//!
//! Pictures are never cached (`no-store`). Bookkeeping is in
//! [`crate::abuse::captcha`].

use super::auth::{now_ms, set_cookie};
use super::ApiError;
use crate::abuse::captcha::draw;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The cookie holding the id of the captcha last drawn for this browser.
pub const COOKIE: &str = "wani_captcha";

fn png(code: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        draw(code),
    )
        .into_response()
}

fn issue(state: &AppState) -> Result<(String, String), ApiError> {
    state
        .abuse
        .new_captcha(now_ms())
        .ok_or_else(|| ApiError::internal("the captcha book is poisoned"))
}

/// `GET /captcha`.
pub async fn new_json(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (id, _) = issue(&state)?;
    let mut res = Json(serde_json::json!({
        "captcha_id": id,
        "image": format!("/captcha/{id}"),
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /captcha/new.png`.
pub async fn new_image(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (id, code) = issue(&state)?;
    let mut res = png(&code);
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            COOKIE,
            &id,
            state.config.abuse.captcha_ttl_secs,
            state.config.site.secure_cookies,
        ),
    );
    Ok(res)
}

/// `GET /captcha/{id}`.
pub async fn image(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id.trim_end_matches(".png");
    let code = state.abuse.captcha_code(id, now_ms()).ok_or_else(|| {
        ApiError::not_found("this captcha has expired or was used; load a new one")
    })?;
    Ok(png(&code))
}
