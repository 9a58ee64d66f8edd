//! A Server-Sent Events client for the live-update tests.

use super::TestNode;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(10);

/// One parsed SSE event.
#[derive(Debug)]
pub struct Ev {
    pub event: String,
    pub id: Option<u64>,
    pub data: String,
}

impl Ev {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }
}

/// Parses complete events out of `buf` (leaving a partial one), skipping comments.
pub fn parse(buf: &mut String) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let (mut event, mut id, mut data) = (String::from("message"), None, Vec::new());
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = value.to_string(),
                "id" => id = Some(value.parse().expect("numeric id")),
                "data" => data.push(value.to_string()),
                _ => {}
            }
        }
        if !data.is_empty() || event != "message" {
            out.push(Ev {
                event,
                id,
                data: data.join("\n"),
            });
        }
    }
    out
}

/// A client's open SSE connection.
pub struct Live {
    pub res: reqwest::Response,
    buf: String,
    ready: std::collections::VecDeque<Ev>,
}

impl Live {
    /// Opens `/api/v1/live{query}` on a test node.
    pub async fn open_on(
        node: &TestNode,
        query: &str,
        last_event_id: Option<u64>,
    ) -> (Live, String) {
        Live::open(&node.at(&format!("/api/v1/live{query}")), last_event_id).await
    }

    /// Opens a stream at `url` and reads its `new-client` event: (stream, client id).
    pub async fn open(url: &str, last_event_id: Option<u64>) -> (Live, String) {
        Live::open_with(&reqwest::Client::new(), url, last_event_id).await
    }

    /// The same through `client` (which may reuse a connection).
    pub async fn open_with(
        client: &reqwest::Client,
        url: &str,
        last_event_id: Option<u64>,
    ) -> (Live, String) {
        let mut req = client.get(url);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let res = req.send().await.expect("connect");
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(h["content-type"], "text/event-stream");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-accel-buffering"], "no");
        let mut live = Live {
            res,
            buf: String::new(),
            ready: Default::default(),
        };
        let first = live.next().await.expect("new-client");
        assert_eq!(first.event, "new-client");
        let id = first.data.clone();
        assert!(
            id.len() == 17
                && id.starts_with("client_")
                && id[7..].chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        (live, id)
    }

    /// The next event; `None` once the stream ended. Panics after [`WAIT`].
    pub async fn next(&mut self) -> Option<Ev> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .expect("timed out waiting for an event")
                .expect("stream")?;
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("utf-8"));
            self.ready.extend(parse(&mut self.buf));
        }
    }

    pub async fn expect(&mut self, event: &str, data: Value) -> u64 {
        let e = self.next().await.expect("an event");
        assert_eq!(e.event, event, "{e:?}");
        assert_eq!(e.json(), data, "{e:?}");
        e.id.expect("events carry an id")
    }

    /// The next event that is not a `heartbeat` or `new-thread` and not for
    /// another thread, for tests that watch one thread.
    pub async fn next_for(&mut self, thread: i64) -> Ev {
        loop {
            let e = self.next().await.expect("the stream ended");
            match e.event.as_str() {
                "heartbeat" | "new-thread" => continue,
                "resync" => return e,
                _ if e.json()["thread"] == thread => return e,
                _ => continue,
            }
        }
    }
}
