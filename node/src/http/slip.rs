//! `/slip`: register, log in, log out (Maniwani's page, with POST forms).
//!
//! A successful login or registration creates a new session (a fresh
//! token; the session the browser presented, if any, is deleted: logging in
//! rotates the session) and answers `303` to `/slip` with the cookie set.
//! Logout carries the session's CSRF token. The page is rendered per
//! request and never cached.

use super::auth::{
    check_password, cookie, hash_password, new_token, now_ms, set_cookie, token_hash, Viewer,
    MIN_PASSWORD_CHARS, SESSION_COOKIE,
};
use super::client::{ClientAddr, ThemeChoice};
use super::{csrf, ApiError};
use crate::abuse::Limited;
use crate::pages::{self, PageCtx};
use crate::state::AppState;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;

/// A page rendered for one viewer: never stored by caches.
pub(crate) fn private_html(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// Reads a urlencoded form, or answers 400 with what was wrong.
pub(crate) fn read_form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, ApiError> {
    form.map(|Form(f)| f).map_err(|e| {
        ApiError::bad_request(format!("the form could not be read: {}", e.body_text())).html()
    })
}

/// `GET /slip`.
pub async fn page(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    viewer: Viewer,
) -> Result<Response, ApiError> {
    let boards = state.boards().await.map_err(ApiError::html)?;
    let ctx = PageCtx {
        theme,
        site_name: &state.config.site.name,
        boards: &boards,
    };
    Ok(private_html(pages::slip_page(&ctx, viewer.0.as_ref())))
}

/// Name and password, as both forms send them.
#[derive(Deserialize)]
pub struct Credentials {
    name: String,
    password: String,
}

/// Starts a session for `slip`: a new token, the presented one deleted.
async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    slip: i64,
) -> Result<Response, ApiError> {
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        state.store.delete_session(&token_hash(old)).await?;
    }
    let token = new_token();
    let now = now_ms();
    let days = state.config.abuse.session_days;
    state
        .store
        .create_session(
            &token_hash(&token),
            slip,
            &new_token(),
            now,
            now.saturating_add(days.saturating_mul(86_400_000)),
        )
        .await?;
    let mut res = Redirect::to("/slip").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &token,
            days.saturating_mul(86_400),
            state.config.site.secure_cookies,
        ),
    );
    Ok(res)
}

/// `POST /slip/login`: throttled per account and per address
/// ([`super::auth::check_password`]).
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
) -> Result<Response, ApiError> {
    let c = read_form(form)?;
    let slip = check_password(&state, &c.name, c.password, &ip)
        .await
        .map_err(ApiError::html)?
        .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "wrong name or password").html())?;
    start_session(&state, &headers, slip.id)
        .await
        .map_err(ApiError::html)
}

/// `POST /slip/register`: a new slip without roles, logged in at once.
/// One address registers at most `abuse.registrations_per_hour` slips.
pub async fn register(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<Credentials>, FormRejection>,
) -> Result<Response, ApiError> {
    let c = read_form(form)?;
    if c.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a password needs at least {MIN_PASSWORD_CHARS} characters"),
        )
        .html());
    }
    state
        .abuse
        .limit(Limited::Registration, &ip, now_ms())
        .map_err(|secs| {
            ApiError::too_many(
                secs,
                format!("too many slips registered from your address: wait {secs} seconds"),
            )
            .html()
        })?;
    let hash = hash_password(c.password).await.map_err(ApiError::html)?;
    let slip = state
        .store
        .create_slip(c.name.trim(), &hash, false, false)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    start_session(&state, &headers, slip.id)
        .await
        .map_err(ApiError::html)
}

/// `POST /slip/logout`: ends the session (needs its CSRF token).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    viewer: Viewer,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, ApiError> {
    let f = read_form(form)?;
    if let Some(session) = &viewer.0 {
        csrf::check_token(session, f.get(csrf::FIELD).map(String::as_str))?;
        if let Some(token) = cookie(&headers, SESSION_COOKIE) {
            state
                .store
                .delete_session(&token_hash(token))
                .await
                .map_err(|e| ApiError::from(e).html())?;
        }
    }
    let mut res = Redirect::to("/slip").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, state.config.site.secure_cookies),
    );
    Ok(res)
}
