//! `/api/v1/live`: Server-Sent Events from the node's live hub (issue 4,
//! first slice: one node).
//!
//! `GET` opens a stream: first `new-client` with the client id, then (after a
//! reconnect with `Last-Event-ID`) what was missed or `resync`, then live
//! `new-post`, `new-thread`, `new-reply` events, and `heartbeat` after 30 s
//! of silence. Subscriptions come in the query string (`?thread=12&board=3`,
//! repeated or comma-separated) and through `POST` with the client id.
//! Dropping the connection drops the stream, which stops its subscriber.

use super::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use wani_actors::live::{Connection, Frame, Topics};

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

fn event(frame: &Frame) -> Event {
    Event::default()
        .event(frame.event)
        .id(frame.id.to_string())
        .data(&frame.data)
}

fn resync() -> Event {
    Event::default().event("resync").data("{}")
}

/// The events of one connection; dropping it stops the subscriber.
fn event_stream(c: Connection) -> impl Stream<Item = Result<Event, Infallible>> {
    let Connection {
        client_id,
        backlog,
        resync_now,
        events,
        resync: overflow,
        guard,
    } = c;
    let mut first = vec![Event::default().event("new-client").data(client_id)];
    if resync_now {
        first.push(resync());
    }
    first.extend(backlog.iter().map(|f| event(f)));
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
            frame = rx.recv() => {
                let frame: Arc<Frame> = frame?;
                Some((event(&frame), Some((rx, overflow, guard))))
            }
        }
    });
    stream::iter(first).chain(live).map(Ok)
}

/// `GET /api/v1/live`.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let topics = parse_topics(query.as_deref())?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let connection = state.live.connect(topics, last).await?;
    let sse = Sse::new(event_stream(connection)).keep_alive(
        KeepAlive::new()
            .interval(HEARTBEAT)
            .event(Event::default().event("heartbeat").data("{}")),
    );
    let mut res = sse.into_response();
    let h = res.headers_mut();
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
