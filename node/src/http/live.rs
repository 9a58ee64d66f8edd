//! `/api/v1/live`: Server-Sent Events from the node's live hub.
//!
//! `GET` opens a stream: first `new-client` with the client id, then (after a
//! reconnect with `Last-Event-ID`) what was missed or `resync`, then live
//! `new-post`, `new-thread`, `new-reply` events, and `heartbeat` after 30 s
//! of silence. Subscriptions come in the query string (`?thread=12&board=3`,
//! repeated or comma-separated) and through `POST` with the client id.
//! Dropping the connection drops the stream, which stops its subscriber.
//!
//! Each event is encoded once by the hub ([`Frame::sse`]) and the same bytes
//! are written to every client, so a post watched by thousands costs one
//! encoding and one write per client. Only nodes with the `live` role
//! serve the stream (others answer 421); in a cluster any of them sees every
//! thread's events, whichever node owns the thread.

use super::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use wani_actors::live::{sse_event, Connection, Frame, Topics};

/// Silence after which a `heartbeat` event is sent.
const HEARTBEAT: Duration = Duration::from_secs(30);

fn parse_topics(query: Option<&str>) -> Result<Topics, ApiError> {
    let mut topics = Topics::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let list = match key {
            "thread" | "thread[]" => &mut topics.thread,
            "board" | "board[]" => &mut topics.board,
            _ => continue,
        };
        for v in value
            .split([',', '+'])
            .flat_map(|v| v.split("%2C"))
            .filter(|v| !v.is_empty())
        {
            list.push(v.parse().map_err(|_| {
                ApiError::bad_request(format!("{key} must be a list of numeric ids, not {v:?}"))
            })?);
        }
    }
    Ok(topics)
}

fn resync() -> Bytes {
    Bytes::from_static(b"event: resync\ndata: {}\n\n")
}

fn heartbeat() -> Bytes {
    Bytes::from_static(b"event: heartbeat\ndata: {}\n\n")
}

/// The events of one connection; dropping it stops the subscriber.
fn event_stream(c: Connection) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let Connection {
        client_id,
        backlog,
        resync_now,
        events,
        resync: overflow,
        guard,
    } = c;
    let mut first = sse_event("new-client", None, &client_id);
    if resync_now {
        first.push_str("event: resync\ndata: {}\n\n");
    }
    for f in &backlog {
        first.push_str(std::str::from_utf8(&f.sse).unwrap_or_default());
    }
    let first = Bytes::from(first);
    let live = stream::unfold(Some((events, overflow, guard)), |st| async move {
        let (mut rx, mut overflow, guard) = st?;
        tokio::select! {
            biased;
            r = &mut overflow => {
                // Dropped for falling behind (resync), or ended by the
                // node: either way this connection is over.
                drop(guard);
                r.ok().map(|_| (resync(), None))
            }
            frame = tokio::time::timeout(HEARTBEAT, rx.recv()) => match frame {
                Err(_) => Some((heartbeat(), Some((rx, overflow, guard)))),
                Ok(frame) => {
                    let frame: Arc<Frame> = frame?;
                    Some((frame.sse.clone(), Some((rx, overflow, guard))))
                }
            }
        }
    });
    stream::once(async move { first }).chain(live).map(Ok)
}

/// `GET /api/v1/live`.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    if !state.config.node.roles.iter().any(|r| r == "live") {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "this node does not carry the live role; open live updates on one that does",
        ));
    }
    let topics = parse_topics(query.as_deref())?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let connection = state.live.connect(topics, last).await?;
    let mut res = Response::new(Body::from_stream(event_stream(connection)));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

#[derive(serde::Deserialize)]
struct SubscribeBody {
    #[serde(rename = "client-id")]
    client_id: String,
    #[serde(default)]
    subscribe: Topics,
    #[serde(default)]
    unsubscribe: Topics,
}

/// `POST /api/v1/live`: `{"client-id", "subscribe", "unsubscribe"}`.
pub async fn subscribe(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body: SubscribeBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"client-id\": \"client_…\", \"subscribe\": {{\"thread\": [ids], \"board\": [ids]}}}}: {e}"
        ))
    })?;
    let known = state
        .live
        .subscribe(body.client_id.clone(), body.subscribe, body.unsubscribe)
        .await?;
    if !known {
        return Err(ApiError::not_found(format!(
            "there is no live client {:?} on this node (its connection closed?)",
            body.client_id
        )));
    }
    Ok(Json(serde_json::json!({"success": true})))
}
