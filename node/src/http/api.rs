//! `/api/v1`: Maniwani's JSON routes.
//!
//! Reads come from entity caches (thread, catalog) with ETags; writes are
//! multipart like Maniwani's and answer with what was stored: `201` and the
//! new thread or post, or `200` and the same when a retried request carried
//! an idempotency key already used.

use super::cache::{respond, respond_fresh};
use super::client::ClientAddr;
use super::guard::{self, Poster};
use super::upload::{self, Submission};
use super::ApiError;
use crate::abuse::flood::{Admission, PostKind};
use crate::json;
use crate::state::AppState;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use wani_actors::{BoardMsg, CatalogView, ThreadMsg, ThreadView};
use wani_store::{Board, Committed, Post, PostId, Thread, ThreadId, ThreadSummary};

fn parse_id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .map_err(|_| ApiError::bad_request(format!("{raw:?} is not a {what} id")))
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API route")
}

/// `GET /boards/`: every board, each with the thumbnail of its latest thread.
pub async fn boards(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await?;
    let latest = latest_per_board(&state, &boards, 1).await;
    let list: Vec<_> = boards
        .iter()
        .map(|b| {
            let thumb = latest
                .iter()
                .find(|(lb, _)| lb.id == b.id)
                .and_then(|(_, t)| t.op.media.as_ref());
            json::board(b, thumb)
        })
        .collect();
    Ok(respond_fresh(
        &headers,
        "application/json",
        serde_json::to_vec(&list).map_err(ApiError::internal)?,
    ))
}

/// The `limit` most recently bumped threads of each board, as (board, thread).
pub(crate) async fn latest_per_board(
    state: &AppState,
    boards: &[Board],
    limit: usize,
) -> Vec<(Board, ThreadSummary)> {
    let mut out = Vec::new();
    for b in boards {
        match state
            .entities
            .ask(b.id, |reply| BoardMsg::Latest { limit, reply })
            .await
        {
            Ok((board, threads)) => out.extend(threads.into_iter().map(|t| (board.clone(), t))),
            Err(e) => tracing::warn!(board = %b.id, error = %e, "board left out of the listing"),
        }
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.1.thread.last_updated));
    out
}

/// `GET /board/{id}/catalog`.
pub async fn catalog(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let board = state.board_id(&id).await?;
    let view = wani_actors::board::view(&state.entities, board, CatalogView::Json).await?;
    Ok(respond(&headers, view))
}

/// `GET /firehose`: the latest bumped threads across boards.
pub async fn firehose(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await?;
    let mut latest = latest_per_board(&state, &boards, FIREHOSE_LEN).await;
    latest.truncate(FIREHOSE_LEN);
    let list: Vec<_> = latest
        .iter()
        .map(|(b, t)| json::catalog_entry(t, Some(b)))
        .collect();
    Ok(respond_fresh(
        &headers,
        "application/json",
        serde_json::to_vec(&list).map_err(ApiError::internal)?,
    ))
}

/// Threads on the firehose and the front page.
pub const FIREHOSE_LEN: usize = 20;

/// `GET /thread/{id}`: the posts, opening post first.
pub async fn thread(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = ThreadId(parse_id(&id, "thread")?);
    let view = wani_actors::thread::view(&state.entities, id, ThreadView::Json).await?;
    Ok(respond(&headers, view))
}

/// `GET /post/{id}`: one post, with `body` rendered to HTML (as Maniwani does).
pub async fn post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = PostId(parse_id(&id, "post")?);
    let post = state
        .store
        .post(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("post {id} does not exist")))?;
    let thread = state
        .entities
        .ask(post.thread, |reply| ThreadMsg::Summary { reply })
        .await?;
    let is_op = thread.op.id == post.id;
    let mut j = json::post(&post, &thread.thread, is_op);
    j.body = &post.body_html;
    Ok(respond_fresh(
        &headers,
        "application/json",
        serde_json::to_vec(&j).map_err(ApiError::internal)?,
    ))
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `POST /thread/new`: fields board, subject, body, tags, media, spoiler.
pub async fn new_thread(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let s = upload::read(form, state.config.media.max_upload_bytes).await?;
    let board_key = s
        .text("board")
        .ok_or_else(|| ApiError::bad_request("the field \"board\" is missing"))?;
    let board = state.resolve_board(board_key.trim()).await?;
    let poster = api_poster(&state, &headers, ip).await?;
    let committed = create_thread(&state, &board, &s, &poster, idempotency_key(&headers)).await?;
    let status = if committed.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let (thread, op) = committed.into_inner();
    Ok((status, Json(thread_created(&thread, &op))).into_response())
}

fn thread_created(thread: &Thread, op: &Post) -> serde_json::Value {
    serde_json::json!({
        "id": thread.id,
        "board": thread.board,
        "thread_url": json::thread_url(thread),
        "post": json::post(op, thread, true),
    })
}

/// Who posts through the API: the slip of `Authorization: Basic` (a wrong
/// one is 401), or anonymous.
async fn api_poster(state: &AppState, headers: &HeaderMap, ip: String) -> Result<Poster, ApiError> {
    Ok(Poster {
        slip: super::auth::basic_auth(state, headers, &ip).await?,
        ..Poster::anonymous(ip)
    })
}

/// Shared by the API and the HTML form.
pub(crate) async fn create_thread(
    state: &AppState,
    board: &Board,
    s: &Submission,
    poster: &Poster,
    key: Option<String>,
) -> Result<Committed<(Thread, Post)>, ApiError> {
    // Rules that need no file are checked first, so a refused post stores nothing.
    wani_actors::rules::check_thread_content(s.file.is_some())?;
    let subject = wani_actors::rules::parse_subject(s.text("subject"))?;
    let tags = wani_actors::rules::parse_tags(s.text("tags").unwrap_or(""))?;
    wani_actors::rules::PostBody::parse(s.text("body").unwrap_or(""))?;
    let key = poster.idempotency_key(s, key);
    let mut draft = upload::draft(s, poster.ip.clone(), None, key.clone());
    let admission = match guard::check(
        state,
        board,
        poster,
        PostKind::Thread,
        s,
        &draft.idempotency_key,
    ) {
        Ok(a) => a,
        Err(refused) => {
            // A retry refused before its entity answers with what was
            // stored under its key (flood control, captcha, a ban made since).
            let stored = match &key {
                Some(k) => state.store.thread_by_key(k).await?,
                None => None,
            };
            return stored.map(Committed::Replayed).ok_or(refused);
        }
    };
    let stored = async {
        let media = match &s.file {
            Some(f) => Some(
                upload::store_media(&state.media_pipe(), board, f.clone(), s.file_name.clone())
                    .await?,
            ),
            None => None,
        };
        draft.media = media.clone();
        draft.author = poster.author(s, &state.site_secret);
        draft.privileged = poster.moderates(board);
        let res = state
            .entities
            .ask(board.id, |reply| BoardMsg::CreateThread {
                subject: subject.clone(),
                tags: tags.clone(),
                draft: Box::new(draft.clone()),
                reply,
            })
            .await
            .and_then(|r| r);
        if res.is_err() {
            upload::discard_media(state, &media).await;
        }
        Ok::<_, ApiError>(res?)
    }
    .await;
    settle(state, admission, stored)
}

/// A post that was not created now (refused, failed, or a replay of one
/// stored before) gives its flood-control marks back: it never counts
/// towards the limits.
fn settle<T>(
    state: &AppState,
    admission: Option<Admission>,
    stored: Result<Committed<T>, ApiError>,
) -> Result<Committed<T>, ApiError> {
    if !matches!(stored, Ok(Committed::Created(_))) {
        state.abuse.flood_release(admission);
    }
    stored
}

/// `POST /thread/{id}/new`: fields body, media, spoiler, sage.
pub async fn new_reply(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let id = ThreadId(parse_id(&id, "thread")?);
    let s = upload::read(form, state.config.media.max_upload_bytes).await?;
    let poster = api_poster(&state, &headers, ip).await?;
    #[cfg(debug_assertions)]
    if chaos_bug("ack-before-commit") {
        return Ok(ack_before_commit(
            state,
            id,
            s,
            poster,
            idempotency_key(&headers),
        ));
    }
    let committed = create_reply(&state, id, &s, &poster, idempotency_key(&headers)).await?;
    let status = if committed.is_created() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let post = committed.into_inner();
    let mut body = serde_json::to_value(json::reply(&post)).map_err(ApiError::internal)?;
    body["post_url"] = json::post_url(&post).into();
    Ok((status, Json(body)).into_response())
}

/// Whether the test-only bug `name` is switched on (`WANI_CHAOS_BUG`). The
/// chaos harness runs a node with a bug on purpose to prove its checkers
/// catch it; release builds never read the variable.
#[cfg(debug_assertions)]
fn chaos_bug(name: &str) -> bool {
    std::env::var("WANI_CHAOS_BUG").is_ok_and(|v| v == name)
}

/// The bug `ack-before-commit`: the reply is acknowledged at once and
/// committed afterwards, and a commit that fails is dropped without a word.
/// Debug builds only; see `chaos-tests/scenarios/bug-ack-before-commit.toml`.
#[cfg(debug_assertions)]
fn ack_before_commit(
    state: AppState,
    thread: ThreadId,
    s: Submission,
    poster: Poster,
    key: Option<String>,
) -> Response {
    let body = s.text("body").unwrap_or("").to_string();
    tokio::spawn(async move {
        let _ = create_reply(&state, thread, &s, &poster, key).await;
    });
    let ack = serde_json::json!({"body": body, "thread": thread.0});
    (StatusCode::CREATED, Json(ack)).into_response()
}

/// Shared by the API and the HTML form.
pub(crate) async fn create_reply(
    state: &AppState,
    thread: ThreadId,
    s: &Submission,
    poster: &Poster,
    key: Option<String>,
) -> Result<Committed<Post>, ApiError> {
    let body = wani_actors::rules::PostBody::parse(s.text("body").unwrap_or(""))?;
    wani_actors::rules::check_reply_content(&body, s.file.is_some())?;
    let key = poster.idempotency_key(s, key);
    let mut draft = upload::draft(s, poster.ip.clone(), None, key.clone());
    let admitted = async {
        let head = state
            .entities
            .ask(thread, |reply| ThreadMsg::Head { reply })
            .await?;
        let board = state.resolve_board(&head.board.to_string()).await?;
        if head.locked && !poster.moderates(&board) {
            // Refused before the captcha is spent or the upload stored.
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "this thread is locked: only moderators may reply",
            ));
        }
        let admission = guard::check(
            state,
            &board,
            poster,
            PostKind::Reply,
            s,
            &draft.idempotency_key,
        )?;
        Ok((board, admission))
    }
    .await;
    let (board, admission) = match admitted {
        Ok(a) => a,
        Err(refused) => {
            let stored = match &key {
                Some(k) => state.store.post_by_key(k).await?,
                None => None,
            };
            return match stored {
                Some(p) if p.thread == thread => Ok(Committed::Replayed(p)),
                _ => Err(refused),
            };
        }
    };
    let stored = async {
        let media = match &s.file {
            Some(f) => Some(
                upload::store_media(&state.media_pipe(), &board, f.clone(), s.file_name.clone())
                    .await?,
            ),
            None => None,
        };
        draft.media = media.clone();
        draft.author = poster.author(s, &state.site_secret);
        draft.privileged = poster.moderates(&board);
        let res = state
            .entities
            .ask(thread, |reply| ThreadMsg::CreatePost {
                draft: Box::new(draft.clone()),
                reply,
            })
            .await
            .and_then(|r| r);
        if res.is_err() {
            upload::discard_media(state, &media).await;
        }
        Ok::<_, ApiError>(res?)
    }
    .await;
    settle(state, admission, stored)
}

/// `GET /status`: what this node is doing now. `thumbnail_queue` is the
/// number of uploads waiting for a thumbnailer worker (the bound is
/// `media.thumb_queue`); `video` says whether ffmpeg was found. Never
/// cached. (A Prometheus `/metrics` comes with the cluster work.)
pub async fn status(State(state): State<AppState>) -> Response {
    let health = state.tree.health();
    let restarts: serde_json::Map<String, serde_json::Value> = state
        .restarts()
        .into_iter()
        .map(|(actor, n)| (actor, n.into()))
        .collect();
    let body = serde_json::json!({
        "ready": health.unready_reason().is_none(),
        "unready_reason": health.unready_reason(),
        "tree": health.children(),
        "restarts": restarts,
        "thumbnail_queue": state.thumbnailer.queue_depth().await,
        "thumbnail_queue_limit": state.config.media.thumb_queue,
        "video": state.thumbnailer.video_available(),
    });
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

/// `DELETE /thread/post/{id}`: deletes a post (the opening post deletes its
/// thread) for a mod of its board, authenticated with HTTP Basic auth as in
/// Maniwani: 401 `{"error": "Authentication failed"}` without valid
/// credentials, 403 for a slip that does not moderate the board.
pub async fn delete_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = PostId(parse_id(&id, "post")?);
    let slip = super::auth::basic_auth(&state, &headers, &ip)
        .await?
        .ok_or_else(super::auth::auth_failed)?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let (removed, _) = super::moderation::delete_post_as(&state, &slip, id, reason)
        .await
        .map_err(|mut e| {
            e.format = super::error::Format::Json;
            e
        })?;
    Ok(Json(serde_json::json!({
        "success": true,
        "deleted": match removed {
            wani_actors::thread::Removed::Post => "post",
            wani_actors::thread::Removed::Thread => "thread",
        },
    }))
    .into_response())
}

/// `GET /cluster`: this node's view of the cluster (just itself on a single box).
pub async fn cluster(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (view, shards, owners) = match &state.cluster {
        Some(c) => (
            c.view(),
            state.config.cluster.shards,
            c.owners_for(wani_supervision::Role::Entities),
        ),
        None => (
            wani_supervision::cluster::ViewSnapshot::single(
                &state.config.node.name,
                &state.config.node.role_set(),
            ),
            0,
            Vec::new(),
        ),
    };
    // Shards owned by each member, as placement computes them from this view.
    let map = wani_supervision::ShardMap::compute(shards, &owners);
    let mut body = serde_json::to_value(&view).map_err(ApiError::internal)?;
    if let Some(members) = body["members"].as_array_mut() {
        for m in members {
            let name = wani_supervision::NodeName(m["name"].as_str().unwrap_or("").to_string());
            m["shards"] = map.owned_by(&name).count().into();
        }
    }
    body["shards"] = shards.into();
    Ok(respond_fresh(
        &headers,
        "application/json",
        serde_json::to_vec(&body).map_err(ApiError::internal)?,
    ))
}
