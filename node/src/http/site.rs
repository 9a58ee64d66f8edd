//! The HTML pages. Thread and catalog pages come from entity caches; the
//! rest are rendered per request from small reads. Forms work without
//! JavaScript: a successful post answers `303 See Other` to the new post.

use super::api::{create_reply, create_thread, latest_per_board, FIREHOSE_LEN};
use super::auth::{cookie, Viewer};
use super::cache::{respond, respond_fresh};
use super::client::{ClientAddr, ThemeChoice};
use super::guard::Poster;
use super::upload;
use super::ApiError;
use crate::pages::{self, PageCtx, Theme};
use crate::render::theme_index;
use crate::state::AppState;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::collections::HashMap;
use wani_actors::{CatalogView, ThreadView};
use wani_store::{Board, ThreadId};

const HTML: &str = "text/html; charset=utf-8";

fn ctx<'a>(state: &'a AppState, theme: Theme, boards: &'a [Board]) -> PageCtx<'a> {
    PageCtx {
        theme,
        site_name: &state.config.site.name,
        boards,
    }
}

fn thread_id(raw: &str) -> Result<ThreadId, ApiError> {
    raw.parse::<i64>()
        .map(ThreadId)
        .map_err(|_| ApiError::not_found(format!("there is no thread {raw:?}")).html())
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("there is no page here").html()
}

/// `/`: the greeting and the latest bumped threads across boards.
pub async fn front(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await.map_err(ApiError::html)?;
    let mut latest = latest_per_board(&state, &boards, FIREHOSE_LEN).await;
    latest.truncate(FIREHOSE_LEN);
    let html = pages::front(
        &ctx(&state, theme, &boards),
        &state.config.site.greeting,
        &latest,
    );
    Ok(respond_fresh(&headers, HTML, html))
}

/// `/boards/`.
pub async fn board_list(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await.map_err(ApiError::html)?;
    let latest = latest_per_board(&state, &boards, 1).await;
    let with_thumbs: Vec<_> = boards
        .iter()
        .map(|b| {
            let thumb = latest
                .iter()
                .find(|(lb, _)| lb.id == b.id)
                .and_then(|(_, t)| t.op.media.clone());
            (b.clone(), thumb)
        })
        .collect();
    Ok(respond_fresh(
        &headers,
        HTML,
        pages::board_list(&ctx(&state, theme, &boards), &with_thumbs),
    ))
}

/// `/boards/{id}`: the catalog, with the new-thread form.
pub async fn catalog(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let board = state.board_id(&id).await.map_err(ApiError::html)?;
    let view = CatalogView::Page {
        theme: theme_index(theme),
    };
    let v = wani_actors::board::view(&state.entities, board, view)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    Ok(respond(&headers, v))
}

/// `/boards/{id}/archive[?page=N]`: [`pages::ARCHIVE_PAGE`] threads a page,
/// most recently bumped first; each page is rendered at most every few
/// seconds per node ([`AppState::archive_pages`]).
pub async fn archive(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ThemeChoice(theme): ThemeChoice,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let board = state.resolve_board(&id).await.map_err(ApiError::html)?;
    let page: u32 = match q.get("page") {
        None => 1,
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .ok_or_else(|| ApiError::bad_request("page must be a number from 1").html())?,
    };
    let key = (board.id, page, theme);
    if let Some(view) = state.archive_pages.get(&key) {
        return Ok(respond(&headers, view));
    }
    let boards = state.boards().await.map_err(ApiError::html)?;
    let size = pages::ARCHIVE_PAGE as i64;
    let (threads, total) = state
        .store
        .archived_threads(board.id, size, (page as i64 - 1) * size)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    let last = ((total + size - 1) / size).max(1) as u32;
    if page > last {
        return Err(ApiError::not_found(format!(
            "the archive of /{}/ has {last} page(s)",
            board.name
        ))
        .html());
    }
    let html = pages::archive(&ctx(&state, theme, &boards), &board, &threads, page, last);
    let view = wani_actors::CachedView::new(wani_actors::Rendered {
        content_type: HTML,
        body: html.into(),
    });
    state.archive_pages.put(key, view.clone());
    Ok(respond(&headers, view))
}

/// `/boards/rules/{id}`.
pub async fn board_rules(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let board = state.resolve_board(&id).await.map_err(ApiError::html)?;
    let boards = state.boards().await.map_err(ApiError::html)?;
    let rules_html = wani_actors::markup::render(&board.rules, &|_| None);
    Ok(respond_fresh(
        &headers,
        HTML,
        pages::board_rules(&ctx(&state, theme, &boards), &board, &rules_html),
    ))
}

async fn thread_view(
    state: &AppState,
    id: &str,
    view: ThreadView,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = thread_id(id)?;
    let v = wani_actors::thread::view(&state.entities, id, view)
        .await
        .map_err(|e| ApiError::from(e).html())?;
    Ok(respond(headers, v))
}

/// `/threads/{id}`.
pub async fn thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    thread_view(
        &state,
        &id,
        ThreadView::Page {
            theme: theme_index(theme),
        },
        &headers,
    )
    .await
}

/// `/threads/{id}/gallery`.
pub async fn gallery(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    thread_view(
        &state,
        &id,
        ThreadView::Gallery {
            theme: theme_index(theme),
        },
        &headers,
    )
    .await
}

/// `POST /boards/{id}/new`: the new-thread form.
pub async fn new_thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(ip): ClientAddr,
    viewer: Viewer,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let board = state.resolve_board(&id).await.map_err(ApiError::html)?;
    let s = upload::read(form, state.config.media.max_upload_bytes)
        .await
        .map_err(ApiError::html)?;
    let poster = form_poster(ip, viewer, &headers);
    let (thread, _) = create_thread(&state, &board, &s, &poster, None)
        .await
        .map_err(ApiError::html)?
        .into_inner();
    Ok(Redirect::to(&format!("/threads/{}", thread.id)).into_response())
}

/// `POST /threads/{id}/new`: the reply form.
pub async fn new_reply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(ip): ClientAddr,
    viewer: Viewer,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let id = thread_id(&id)?;
    let s = upload::read(form, state.config.media.max_upload_bytes)
        .await
        .map_err(ApiError::html)?;
    let poster = form_poster(ip, viewer, &headers);
    let post = create_reply(&state, id, &s, &poster, None)
        .await
        .map_err(ApiError::html)?
        .into_inner();
    Ok(Redirect::to(&format!("/threads/{}#{}", id, post.id)).into_response())
}

/// Who posts through an HTML form: the logged-in slip, if any, and the
/// captcha whose image the form showed (its id is in a cookie, since the
/// cached page cannot carry it).
fn form_poster(ip: String, viewer: Viewer, headers: &HeaderMap) -> Poster {
    Poster {
        ip,
        slip: viewer.0.map(|s| s.slip),
        captcha_id: cookie(headers, super::captcha::COOKIE).map(str::to_string),
    }
}

/// `/rules`: the site rules.
pub async fn rules(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await.map_err(ApiError::html)?;
    Ok(respond_fresh(
        &headers,
        HTML,
        pages::rules(&ctx(&state, theme, &boards), &state.rules_html),
    ))
}

/// `/faq`.
pub async fn faq(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await.map_err(ApiError::html)?;
    Ok(respond_fresh(
        &headers,
        HTML,
        pages::faq(&ctx(&state, theme, &boards)),
    ))
}

/// `/themes`: the theme picker.
pub async fn themes(
    State(state): State<AppState>,
    ThemeChoice(theme): ThemeChoice,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await.map_err(ApiError::html)?;
    Ok(respond_fresh(
        &headers,
        HTML,
        pages::themes(&ctx(&state, theme, &boards)),
    ))
}

#[derive(Deserialize)]
pub struct ThemeForm {
    theme: String,
}

/// `POST /themes`: remembers the theme in a cookie for a year.
pub async fn set_theme(
    form: Result<Form<ThemeForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, ApiError> {
    let Form(f) = form.map_err(|e| {
        ApiError::bad_request(format!(
            "the theme form could not be read: {}",
            e.body_text()
        ))
        .html()
    })?;
    let theme = Theme::from_name(&f.theme).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("there is no theme {:?}", f.theme),
        )
        .html()
    })?;
    let cookie = format!(
        "theme={}; Path=/; Max-Age=31536000; SameSite=Lax",
        theme.name()
    );
    let mut res = Redirect::to("/themes").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// `/posts/{id}`: a post wherever it lives (`303` to its thread's anchor).
/// "Replies:" lines link here for posts quoted from another thread.
pub async fn find_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = id
        .parse::<i64>()
        .map(wani_store::PostId)
        .map_err(|_| ApiError::not_found(format!("there is no post {id:?}")).html())?;
    let post = state
        .store
        .post(id)
        .await
        .map_err(|e| ApiError::from(e).html())?
        .ok_or_else(|| ApiError::not_found(format!("post {id} does not exist")).html())?;
    Ok(Redirect::to(&format!("/threads/{}#{}", post.thread, post.id)).into_response())
}
