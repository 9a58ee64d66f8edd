//! `/captcha`: the built-in captcha's pictures and proof-of-work challenges.
//!
//! - `GET /captcha` (for scripts): issues a captcha, answers
//!   `{"captcha_id": "…", "image": "/captcha/…"}`; the post then carries
//!   `captcha_id` and `captcha` (the code) fields.
//! - `GET /captcha/new.png` (for the HTML forms): issues a captcha, answers
//!   its picture and remembers its id in the `wani_captcha` cookie, so a
//!   form on a cached, shared page needs no per-viewer markup.
//! - `GET /captcha/{id}`: the picture of a captcha that may still be
//!   answered; the same picture each time.
//! - `GET /captcha/pow?board=NAME`: `{"challenge", "bits", "board"}`; when
//!   `bits` is above 0, a post on that board carries `pow_challenge` and
//!   `pow_nonce` such that SHA-256(challenge ‖ nonce) starts with `bits`
//!   zero bits (the page's script does it).
//!
//! The three captcha routes count against the address's allowance
//! (`[captcha] burst`, `per_minute`): past it they answer 429 with
//! Retry-After. Challenges are free to hand out (sealed, nothing stored);
//! their price is the work. Nothing here is cached (`no-store`).
//! Bookkeeping is in [`crate::abuse::captcha`].

use super::auth::{now_ms, set_cookie};
use super::client::ClientAddr;
use super::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The cookie holding the id of the captcha last drawn for this browser.
pub const COOKIE: &str = "wani_captcha";

fn png(state: &AppState, id: &str, code: &str) -> Result<Response, ApiError> {
    let body = state
        .abuse
        .captcha_picture(id, code)
        .ok_or_else(|| ApiError::internal("the captcha state is poisoned"))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// Takes one captcha from the client's allowance, or says when to come back.
fn charge(state: &AppState, ip: &str, now: i64) -> Result<(), ApiError> {
    state.abuse.charge_captcha(ip, now).map_err(|secs| {
        ApiError::too_many(
            secs,
            format!("too many captchas from this address: wait {secs} seconds and load a new one"),
        )
    })
}

fn issue(state: &AppState, ip: &str) -> Result<(String, String), ApiError> {
    let now = now_ms();
    charge(state, ip, now)?;
    state
        .abuse
        .new_captcha(now)
        .ok_or_else(|| ApiError::internal("the captcha state is poisoned"))
}

/// `GET /captcha`.
pub async fn new_json(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
) -> Result<Response, ApiError> {
    let (id, _) = issue(&state, &ip)?;
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
pub async fn new_image(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
) -> Result<Response, ApiError> {
    let (id, code) = issue(&state, &ip)?;
    let mut res = png(&state, &id, &code)?;
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
    ClientAddr(ip): ClientAddr,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let id = id.trim_end_matches(".png");
    let code = state.abuse.captcha_code(id, now).ok_or_else(|| {
        ApiError::not_found("this captcha has expired or was used; load a new one")
    })?;
    charge(&state, &ip, now)?;
    png(&state, id, &code)
}

/// The query of `GET /captcha/pow`.
#[derive(serde::Deserialize)]
pub struct PowQuery {
    board: String,
}

/// `GET /captcha/pow?board=NAME`.
pub async fn pow(
    State(state): State<AppState>,
    Query(q): Query<PowQuery>,
) -> Result<Response, ApiError> {
    let bits = state.config.captcha.pow_for(&q.board);
    let challenge = if bits > 0 {
        state
            .abuse
            .pow_challenge(&q.board, bits, now_ms())
            .ok_or_else(|| ApiError::internal("the captcha state is poisoned"))?
    } else {
        String::new()
    };
    let mut res = Json(serde_json::json!({
        "board": q.board,
        "bits": bits,
        "challenge": challenge,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
