//! The 4chan/vichan read API and the URLs its clients build, beside wani's
//! own (see docs/CLIENTS.md for the table).
//!
//! Threads come from their actors' view caches like `/api/v1/thread/{id}`
//! (a write drops both); index pages and the catalog are put together from
//! each thread's cached preview, in the board's order.

use super::cache::{respond, respond_fresh};
use super::files::serve_blob;
use super::ApiError;
use crate::chan;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use bytes::{BufMut, Bytes, BytesMut};
use wani_actors::{BoardMsg, CachedView, CatalogView, Rendered, ThreadView};
use wani_store::{BoardId, ThreadId, ThreadSummary};

const JSON: &str = "application/json";

/// `GET /boards.json`.
pub async fn boards(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let boards = state.boards().await?;
    let list: Vec<_> = boards.iter().map(chan::board).collect();
    let body =
        serde_json::to_vec(&serde_json::json!({ "boards": list })).map_err(ApiError::internal)?;
    Ok(respond_fresh(&headers, JSON, body))
}

/// `GET /{board}/`: the board's page.
pub async fn board_index(
    State(state): State<AppState>,
    Path(board): Path<String>,
) -> Result<Response, ApiError> {
    let id = board_of(&state, &board).await.map_err(ApiError::html)?;
    Ok(Redirect::permanent(&format!("/boards/{id}")).into_response())
}

/// `GET /{board}/{file}`: `catalog.json`, `threads.json`, `archive.json`,
/// `{page}.json`, or an index or catalog page a browser has in its address bar.
pub async fn board_file(
    State(state): State<AppState>,
    Path((board, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let json = file.ends_with(".json");
    board_file_inner(&state, &board, &file, &headers)
        .await
        .map_err(|e| if json { e } else { e.html() })
}

async fn board_file_inner(
    state: &AppState,
    board: &str,
    file: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let id = board_of(state, board).await?;
    match file {
        "catalog.json" => listing(state, id, 0, headers).await,
        "threads.json" => {
            let view =
                wani_actors::board::view(&state.entities, id, CatalogView::ChanThreads).await?;
            Ok(respond(headers, view))
        }
        "archive.json" => archive(state, id, headers).await,
        "index.html" | "catalog" | "catalog.html" | "archive" => {
            Ok(Redirect::permanent(&format!("/boards/{id}")).into_response())
        }
        f => match f.rsplit_once('.') {
            // Pages count from 1 as on 4chan; 0.json is the first page
            // too (vichan counts from 0).
            Some((n, "json")) => listing(state, id, number(n, "page")?.max(1), headers).await,
            Some((n, "html")) if n.parse::<u32>().is_ok() => {
                Ok(Redirect::permanent(&format!("/boards/{id}")).into_response())
            }
            // 4chan's file host layout (i.4cdn.org/{board}/{tim}{ext} and
            // {tim}s.jpg), for clients pointed here as their file host.
            Some((_, ext)) => match media_name(f) {
                Some((tim, thumb)) if !thumb || ext == "jpg" => {
                    serve_blob(state, &tim.to_string(), thumb, headers).await
                }
                _ => Err(ApiError::not_found(format!("/{board}/ has no {f:?}"))),
            },
            _ => Err(ApiError::not_found(format!("/{board}/ has no {f:?}"))),
        },
    }
}

/// `GET /{board}/thread/{no}` (4chan) and `GET /{board}/res/{no}` (vichan):
/// `{no}.json` is the thread in the API; `{no}`, `{no}.html` and
/// `{no}/{slug}` are its page.
pub async fn thread_file(
    State(state): State<AppState>,
    Path((board, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match file.rsplit_once('.') {
        Some((no, "json")) => {
            board_of(&state, &board).await?;
            let id = thread_of(&state, number(no, "thread")?).await?;
            let view = wani_actors::thread::view(&state.entities, id, ThreadView::Chan).await?;
            Ok(respond(&headers, view))
        }
        Some((no, "html")) => thread_page(&state, &board, no).await,
        _ => thread_page(&state, &board, &file).await,
    }
}

/// `GET /{board}/thread/{no}/{slug}`: 4chan's thread URL with its semantic part.
pub async fn thread_slug(
    State(state): State<AppState>,
    Path((board, no, _slug)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    thread_page(&state, &board, &no).await
}

/// The thread page of thread number `no`; errors as HTML pages.
async fn thread_page(state: &AppState, board: &str, no: &str) -> Result<Response, ApiError> {
    let found = async {
        board_of(state, board).await?;
        thread_of(state, number(no, "thread")?).await
    };
    let thread = found.await.map_err(ApiError::html)?;
    Ok(Redirect::permanent(&format!("/threads/{thread}")).into_response())
}

/// The thread holding post `no`: a thread's number is its opening post's
/// (4chan's), wani's thread ids are their own sequence. A post never moves
/// to another thread, so what is found once is kept (up to a bound).
async fn thread_of(state: &AppState, no: i64) -> Result<ThreadId, ApiError> {
    if let Some(t) = state.chan_threads.get(no) {
        return Ok(t);
    }
    let post = state
        .store
        .post(wani_store::PostId(no))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("there is no thread {no}")))?;
    state.chan_threads.put(no, post.thread);
    Ok(post.thread)
}

/// Post numbers and the threads holding them, as [`thread_of`] found them.
#[derive(Default)]
pub struct ThreadNumbers {
    map: std::sync::RwLock<std::collections::HashMap<i64, ThreadId>>,
}

impl ThreadNumbers {
    /// Beyond this many entries the map starts over (a crawler walking
    /// every number must not grow it without end).
    const MAX: usize = 200_000;

    fn get(&self, no: i64) -> Option<ThreadId> {
        self.map.read().ok()?.get(&no).copied()
    }

    fn put(&self, no: i64, thread: ThreadId) {
        if let Ok(mut m) = self.map.write() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(no, thread);
        }
    }
}

/// `GET /{board}/src/{tim}{ext}`: an original, as clients build its URL.
pub async fn original(
    State(state): State<AppState>,
    Path((board, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    board_of(&state, &board).await?;
    match media_name(&file) {
        Some((tim, false)) => serve_blob(&state, &tim.to_string(), false, &headers).await,
        _ => Err(ApiError::not_found(format!(
            "{file:?} is not a file number"
        ))),
    }
}

/// `GET /{board}/thumb/{tim}.{ext}` (vichan) and `/{board}/thumb/{tim}s.jpg`
/// (4chan's name): the thumbnail, whatever extension is asked for.
pub async fn thumbnail(
    State(state): State<AppState>,
    Path((board, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    board_of(&state, &board).await?;
    let (tim, _) = media_name(&file)
        .ok_or_else(|| ApiError::not_found(format!("{file:?} is not a file number")))?;
    serve_blob(&state, &tim.to_string(), true, &headers).await
}

/// A file name as clients build them, `{tim}.{ext}` or `{tim}s.{ext}`
/// (4chan names thumbnails `{tim}s.jpg`): the media id, and whether the
/// name had the `s`.
fn media_name(file: &str) -> Option<(i64, bool)> {
    let stem = file.split_once('.').map_or(file, |(t, _)| t);
    let (digits, s) = match stem.strip_suffix('s') {
        Some(d) => (d, true),
        None => (stem, false),
    };
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(|n| (n, s))
}

fn number(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::not_found(format!("{raw:?} is not a {what} number")))
}

/// A board by its name (`/g/`), as 4chan's URLs name it.
async fn board_of(state: &AppState, name: &str) -> Result<BoardId, ApiError> {
    if name.parse::<i64>().is_ok() {
        return Err(ApiError::not_found(format!("there is no board {name:?}")));
    }
    state.board_id(name).await
}

/// The board's live threads in its order (stickies, then last bumped first).
async fn threads_of(state: &AppState, board: BoardId) -> Result<Vec<ThreadSummary>, ApiError> {
    let (_, threads) = state
        .entities
        .ask(board, |reply| BoardMsg::Latest {
            limit: usize::MAX,
            reply,
        })
        .await?;
    Ok(threads)
}

/// Each thread's cached `view`, in order. A thread gone since the list was
/// read (deleted, archived) is left out.
async fn thread_views(
    state: &AppState,
    threads: &[ThreadSummary],
    view: ThreadView,
) -> Result<Vec<CachedView>, ApiError> {
    let asks = threads
        .iter()
        .map(|t| wani_actors::thread::view(&state.entities, t.thread.id, view));
    let mut out = Vec::with_capacity(threads.len());
    for got in futures::future::join_all(asks).await {
        match got {
            Ok(v) => out.push(v),
            Err(wani_actors::ActorError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// JSON put together from cached parts, dated by the newest part (the
/// board's own view counts too: a thread leaving changes the list).
fn assembled(body: Bytes, parts: &[CachedView], board: &CachedView) -> CachedView {
    let newest = parts
        .iter()
        .chain([board])
        .map(|p| p.last_modified)
        .max()
        .unwrap_or(board.last_modified);
    let mut view = CachedView::changed_at(
        Rendered {
            content_type: JSON,
            body,
        },
        newest,
    );
    view.same_second = parts
        .iter()
        .chain([board])
        .any(|p| p.last_modified == newest && p.same_second);
    view
}

/// `[` a, b, … `]`, from parts already serialised.
fn join(out: &mut BytesMut, parts: &[CachedView]) {
    out.put_u8(b'[');
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&p.body);
    }
    out.put_u8(b']');
}

/// Index pages and the catalog, put together from each thread's cached
/// part and kept per board for [`LISTING_TTL`]: a new thread, reply or bump
/// changes the board's own view and so the key at once; a change the board
/// is not told of (a reply's spoiler, a quote that died) shows within the TTL.
/// The threads' own JSON is always exact.
pub(crate) const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// An index page (from 1) or, as 0, the catalog.
async fn listing(
    state: &AppState,
    board: BoardId,
    page: i64,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let list = wani_actors::board::view(&state.entities, board, CatalogView::ChanThreads).await?;
    let key = (board, page, list.etag.clone());
    if let Some(view) = state.chan_lists.get(&key) {
        return Ok(respond(headers, view));
    }
    let threads = threads_of(state, board).await?;
    let view = if page == 0 {
        catalog(state, &threads, &list).await?
    } else {
        index_page(state, &threads, page, &list).await?
    };
    state.chan_lists.put(key, view.clone());
    Ok(respond(headers, view))
}

/// `/{board}/{page}.json`: up to [`chan::PER_PAGE`] threads with their last replies.
async fn index_page(
    state: &AppState,
    threads: &[ThreadSummary],
    n: i64,
    list: &CachedView,
) -> Result<CachedView, ApiError> {
    let Some(chunk) = threads.chunks(chan::PER_PAGE).nth((n - 1) as usize) else {
        if n == 1 {
            return Ok(assembled(
                Bytes::from_static(br#"{"threads":[]}"#),
                &[],
                list,
            ));
        }
        return Err(ApiError::not_found(format!("the board has no page {n}")));
    };
    let parts = thread_views(state, chunk, ThreadView::ChanIndex).await?;
    let mut body = BytesMut::from(&br#"{"threads":"#[..]);
    join(&mut body, &parts);
    body.put_u8(b'}');
    Ok(assembled(body.freeze(), &parts, list))
}

/// `/{board}/catalog.json`: every live thread by page, with its last replies.
async fn catalog(
    state: &AppState,
    threads: &[ThreadSummary],
    list: &CachedView,
) -> Result<CachedView, ApiError> {
    let parts = thread_views(state, threads, ThreadView::ChanCatalog).await?;
    let mut body = BytesMut::new();
    body.put_u8(b'[');
    for (i, chunk) in parts.chunks(chan::PER_PAGE).enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(format!(r#"{{"page":{},"threads":"#, i + 1).as_bytes());
        join(&mut body, chunk);
        body.put_u8(b'}');
    }
    body.put_u8(b']');
    Ok(assembled(body.freeze(), &parts, list))
}

/// Most archived threads `archive.json` lists, newest first (4chan keeps
/// about 3,000).
const ARCHIVE_LIMIT: i64 = 10_000;

/// `/{board}/archive.json`: numbers of archived threads, oldest first as on
/// 4chan; rendered at most every few seconds per node.
async fn archive(
    state: &AppState,
    board: BoardId,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(view) = state.chan_archives.get(&board) {
        return Ok(respond(headers, view));
    }
    let mut ids = state.store.archived_op_ids(board, ARCHIVE_LIMIT).await?;
    ids.reverse();
    let body = serde_json::to_vec(&ids).map_err(ApiError::internal)?;
    let mut view = CachedView::new(Rendered {
        content_type: JSON,
        body: body.into(),
    });
    // Archiving moves no date a client could compare: only the ETag
    // proves the list unchanged.
    view.same_second = true;
    state.chan_archives.put(board, view.clone());
    Ok(respond(headers, view))
}
