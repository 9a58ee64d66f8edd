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
//! encoding and one write per client; what queued up while a client's task
//! waited goes out in one write. Heartbeats come from the hub's clock, so a
//! connection holds no timer.
//!
//! A connection whose first request is `GET /api/v1/live` (what EventSource
//! usually opens) is served directly on its socket ([`serve_connection`]),
//! with no HTTP machinery left attached while it idles; the same request on
//! a connection that already served others goes through axum ([`events`]). Only nodes with the `live` role
//! serve the stream (others answer 421); in a cluster any of them sees every
//! thread's events, whichever node owns the thread.

use super::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Json;
use futures::stream::{self, Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use wani_actors::live::{
    sse_event, Connection, Frame, Subscribed, SubscriberGuard, Topics, MAX_TOPICS,
};

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
            if list.len() >= MAX_TOPICS {
                return Err(too_many_topics());
            }
            list.push(v.parse().map_err(|_| {
                ApiError::bad_request(format!("{key} must be a list of numeric ids, not {v:?}"))
            })?);
        }
    }
    Ok(topics)
}

/// Largest `POST /api/v1/live` body: [`MAX_TOPICS`] ids fit with room to spare.
pub const MAX_SUBSCRIBE_BYTES: usize = 64 * 1024;

fn too_many_topics() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("a live client follows at most {MAX_TOPICS} threads and boards"),
    )
}

const RESYNC: &[u8] = b"event: resync\ndata: {}\n\n";
const HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                    cache-control: no-store\r\nx-accel-buffering: no\r\n";

/// Checks the node's role and the subscriptions, registers the client with
/// the hub: the stream's first bytes (`new-client`, then `resync` or what
/// was missed since `Last-Event-ID`) and the connection to follow.
async fn open(
    state: &AppState,
    query: Option<&str>,
    last_event_id: Option<&str>,
) -> Result<(Bytes, Connection), ApiError> {
    if !state.config.node.has(wani_supervision::Role::Live) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "this node does not carry the live role; open live updates on one that does",
        ));
    }
    let topics = parse_topics(query)?;
    let last = last_event_id.and_then(|v| v.trim().parse::<u64>().ok());
    let mut c = state.live.connect(topics, last).await?;
    let mut first = sse_event("new-client", None, &c.client_id).into_bytes();
    if c.resync_now {
        first.extend_from_slice(RESYNC);
    }
    for f in std::mem::take(&mut c.backlog) {
        first.extend_from_slice(&f.sse);
    }
    Ok((Bytes::from(first), c))
}

/// What comes next on a connection.
enum Next {
    /// Events to write (one or more, coalesced).
    Write(Bytes),
    /// Dropped for falling behind: write `resync` and end.
    Resync,
    /// The node ended the stream, or the client went away.
    End,
}

/// A stream that wrote within this long waits until it has passed before
/// taking more events: a client watching a busy thread gets the replies
/// that arrive meanwhile in one write, instead of one write (and one wake
/// of its task) each. A stream that was quiet writes at once, so the first
/// event after a pause is not delayed; in a burst none waits longer than
/// this. Writes are most of what a watched thread's replies cost the node:
/// with 10,000 clients watching 1,000 threads, each reply is ten of them.
const PACE: Duration = Duration::from_millis(5);

/// One connection's events, as its stream takes them from the hub.
struct Events {
    rx: mpsc::Receiver<Arc<Frame>>,
    overflow: oneshot::Receiver<()>,
    /// Taken from `rx` and not yet written: waiting out the pace.
    pending: Vec<Arc<Frame>>,
    last_write: Option<Instant>,
}

impl Events {
    fn new(c: Connection) -> (Events, SubscriberGuard) {
        let events = Events {
            rx: c.events,
            overflow: c.resync,
            pending: Vec::new(),
            last_write: None,
        };
        (events, c.guard)
    }

    /// Waits for the next events: everything queued is taken at once, so a
    /// burst costs one write; a stream that wrote within [`PACE`] waits it
    /// out once an event has come (a quiet one arms no timer). Heartbeats
    /// come from the hub like events. Cancel-safe: an event taken before
    /// the pause waits in `pending`.
    async fn next(&mut self) -> Next {
        if self.pending.is_empty() {
            tokio::select! {
                biased;
                r = &mut self.overflow => return overflowed(r),
                frame = self.rx.recv() => match frame {
                    None => return Next::End,
                    Some(f) => self.pending.push(f),
                }
            }
        }
        if let Some(due) = self.last_write.map(|at| at + PACE) {
            if due > Instant::now() {
                tokio::select! {
                    biased;
                    r = &mut self.overflow => return overflowed(r),
                    _ = tokio::time::sleep_until(due) => {}
                }
            }
        }
        while let Ok(f) = self.rx.try_recv() {
            self.pending.push(f);
        }
        let bytes = match self.pending.as_slice() {
            [one] => one.sse.clone(),
            many => {
                let mut out = Vec::with_capacity(many.iter().map(|f| f.sse.len()).sum());
                for f in many {
                    out.extend_from_slice(&f.sse);
                }
                Bytes::from(out)
            }
        };
        self.pending.clear();
        Next::Write(bytes)
    }

    /// Notes that what [`Events::next`] gave was written.
    fn wrote(&mut self) {
        self.last_write = Some(Instant::now());
    }
}

fn overflowed(r: Result<(), oneshot::error::RecvError>) -> Next {
    if r.is_ok() {
        Next::Resync
    } else {
        Next::End
    }
}

/// The events of one connection through axum; dropping it stops the subscriber.
fn event_stream(first: Bytes, c: Connection) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let live = stream::unfold(Some(Events::new(c)), |st| async move {
        let (mut events, guard) = st?;
        match events.next().await {
            Next::Write(b) => {
                events.wrote();
                Some((b, Some((events, guard))))
            }
            Next::Resync => Some((Bytes::from_static(RESYNC), None)),
            Next::End => None,
        }
    });
    stream::once(async move { first }).chain(live).map(Ok)
}

/// `GET /api/v1/live` on a connection that already carried other requests
/// (a browser reuses its keep-alive connections): served by axum.
pub async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let (first, connection) = open(&state, query.as_deref(), last).await?;
    let mut res = Response::new(Body::from_stream(event_stream(first, connection)));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

/// The request line a fresh connection opens a stream with.
const LIVE_GET: &[u8] = b"GET /api/v1/live";

/// Whether a fresh connection starts with `GET /api/v1/live` (then `?` or a
/// space), looking at its first bytes without taking them.
pub async fn is_live_request(stream: &TcpStream) -> bool {
    let mut buf = [0u8; LIVE_GET.len() + 1];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let n = match tokio::time::timeout_at(deadline, stream.peek(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            // Closed, failed or silent: axum answers (or times out) as usual.
            _ => return false,
        };
        let k = n.min(LIVE_GET.len());
        if buf[..k] != LIVE_GET[..k] {
            return false;
        }
        if n > LIVE_GET.len() {
            return matches!(buf[LIVE_GET.len()], b'?' | b' ');
        }
        // The request line arrived split: look again shortly.
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Serves a stream on a fresh connection directly, without hyper: the
/// response has no chunked framing (`Connection: close` ends it), events go
/// out as the hub encoded them, and an idle subscriber costs its socket, a
/// small task and its subscriber actor — no HTTP buffers.
pub async fn serve_connection(state: AppState, mut stream: TcpStream) {
    let head = match read_head(&mut stream).await {
        Ok(h) => h,
        Err(e) => {
            let _ = write_error(&mut stream, e).await;
            return;
        }
    };
    let (query, last) = match parse_head(&head) {
        Ok(x) => x,
        Err(e) => {
            let _ = write_error(&mut stream, e).await;
            return;
        }
    };
    drop(head);
    let (first, c) = match open(&state, query.as_deref(), last.as_deref()).await {
        Ok(x) => x,
        Err(e) => {
            let _ = write_error(&mut stream, e).await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let mut out = Vec::with_capacity(HEAD.len() + 24 + first.len());
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out.extend_from_slice(&first);
    if stream.write_all(&out).await.is_err() {
        return;
    }
    drop(out);
    let (mut events, guard) = Events::new(c);
    loop {
        let step = tokio::select! {
            n = events.next() => n,
            // The client sends nothing after its request: readable means
            // it closed the connection (or broke the protocol).
            _ = stream.readable() => {
                let mut scratch = [0u8; 64];
                match stream.try_read(&mut scratch) {
                    Ok(0) => Next::End,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(_) => Next::End,
                }
            }
        };
        match step {
            Next::Write(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    break;
                }
                events.wrote();
            }
            Next::Resync => {
                let _ = stream.write_all(RESYNC).await;
                break;
            }
            Next::End => break,
        }
    }
    drop(guard);
    let _ = stream.shutdown().await;
}

/// Reads the request head (at most 8 KiB, within 10 s).
async fn read_head(stream: &mut TcpStream) -> Result<Vec<u8>, ApiError> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
        if head.len() > 8192 {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "the request head is larger than 8 KiB",
            ));
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(ApiError::bad_request("the request ended early")),
            Ok(Ok(n)) => head.extend_from_slice(&chunk[..n]),
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request head took too long",
                ))
            }
        }
    }
}

/// The query string and `Last-Event-ID` of a request head.
fn parse_head(head: &[u8]) -> Result<(Option<String>, Option<String>), ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(ApiError::bad_request("malformed HTTP request")),
    }
    let path = req.path.unwrap_or("");
    let query = path.split_once('?').map(|(_, q)| q.to_string());
    let last = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("last-event-id"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::to_string);
    Ok((query, last))
}

/// Answers an error as the API does (`{"error": ...}`), then closes.
async fn write_error(stream: &mut TcpStream, e: ApiError) -> std::io::Result<()> {
    let body = serde_json::json!({ "error": e.message }).to_string();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        e.status.as_u16(),
        e.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    if let Some(s) = e.retry_after {
        head.push_str(&format!("retry-after: {s}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    stream.write_all(head.as_bytes()).await?;
    stream.shutdown().await
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

fn parse_subscribe(body: &[u8]) -> Result<SubscribeBody, ApiError> {
    if body.len() > MAX_SUBSCRIBE_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a subscription body is at most {MAX_SUBSCRIBE_BYTES} bytes"),
        ));
    }
    let body: SubscribeBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"client-id\": \"client_…\", \"subscribe\": {{\"thread\": [ids], \"board\": [ids]}}}}: {e}"
        ))
    })?;
    if body.subscribe.len() > MAX_TOPICS || body.unsubscribe.len() > MAX_TOPICS {
        return Err(too_many_topics());
    }
    Ok(body)
}

/// This endpoint's parsers on one input, for the fuzz targets (`fuzz/`).
/// The first byte picks which: even, a `POST` body; odd, the head of a
/// `GET` served off hyper, then the subscriptions in its query string and
/// its `Last-Event-ID`. `Ok` carries how many topics were read.
#[doc(hidden)]
pub fn fuzz_parse(input: &[u8]) -> Result<usize, ApiError> {
    let Some((&which, rest)) = input.split_first() else {
        return Ok(0);
    };
    if which % 2 == 0 {
        let body = parse_subscribe(rest)?;
        let topics = [&body.subscribe, &body.unsubscribe];
        Ok(topics.iter().map(|t| t.thread.len() + t.board.len()).sum())
    } else {
        let (query, _last_event_id) = parse_head(rest)?;
        let topics = parse_topics(query.as_deref())?;
        Ok(topics.thread.len() + topics.board.len())
    }
}

/// `POST /api/v1/live`: `{"client-id", "subscribe", "unsubscribe"}`.
pub async fn subscribe(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let body = parse_subscribe(&body)?;
    match state
        .live
        .subscribe(body.client_id.clone(), body.subscribe, body.unsubscribe)
        .await?
    {
        Subscribed::Changed => {}
        Subscribed::TooMany => return Err(too_many_topics()),
        Subscribed::UnknownClient => {
            return Err(ApiError::not_found(format!(
                "there is no live client {:?} on this node (its connection closed?)",
                body.client_id
            )))
        }
    }
    Ok(Json(serde_json::json!({"success": true})))
}
