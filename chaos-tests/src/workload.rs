//! The clients: posters, readers and live subscribers, all against every
//! node, all recorded.
//!
//! A poster picks (with the run's seed) a node and either a workload thread
//! to reply to or, now and then, a new thread; it retries a post that got
//! no acknowledgement with the same idempotency key, on another node, a few
//! times, as a careful client would. Readers read whole threads. A live
//! subscriber holds `GET /api/v1/live?thread=N` open, notes the thread's
//! last post when its stream starts (the baseline), collects `new-post`
//! ids, and on a broken stream reconnects (to any node) with
//! `Last-Event-ID`; a `resync` makes it re-read the thread, which moves the
//! baseline, as a real client would.

use crate::client::Client;
use crate::history::{Outcome, Subscriber};
use crate::rng::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared by every client task of a run.
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    /// The threads posters reply to and subscribers follow.
    pub threads: Arc<Vec<i64>>,
    /// Threads created during the run (checked like the others).
    pub created: Arc<Mutex<Vec<i64>>>,
    /// Set when posters and readers must stop.
    pub stop: Arc<AtomicBool>,
    pub think: Duration,
    pub attempts: usize,
    pub new_thread_ratio: f64,
}

/// One poster until `stop`.
pub async fn poster(ctx: Ctx, me: usize, seed: u64) {
    let mut rng = Rng::new(seed ^ (me as u64).wrapping_mul(0x9e37_79b9));
    let name = format!("poster-{me}");
    let n = ctx.client.urls.len();
    let mut i = 0u64;
    while !ctx.stop.load(Ordering::Relaxed) {
        i += 1;
        let key = format!("p{me}-{i}");
        let new_thread = rng.chance(ctx.new_thread_ratio);
        let thread = ctx.threads[rng.below(ctx.threads.len())];
        let mut node = rng.below(n);
        for _ in 0..ctx.attempts.max(1) {
            let op = if new_thread {
                ctx.client.create_thread(&name, node, &key).await
            } else {
                ctx.client.reply(&name, node, thread, &key).await
            };
            match op.outcome {
                Outcome::Ok => {
                    if let (true, Some(t)) = (new_thread, op.thread) {
                        ctx.created.lock().expect("created lock").push(t);
                    }
                    break;
                }
                // A refusal the request itself caused is not retried.
                Outcome::Failed
                    if op
                        .status
                        .is_some_and(|s| (400..500).contains(&s) && s != 409 && s != 429) =>
                {
                    break
                }
                _ => node = (node + 1 + rng.below(n.max(2) - 1)) % n,
            }
        }
        tokio::time::sleep(ctx.think).await;
    }
}

/// One reader until `stop`.
pub async fn reader(ctx: Ctx, me: usize, seed: u64) {
    let mut rng = Rng::new(seed ^ 0x5eed ^ me as u64);
    let name = format!("reader-{me}");
    let n = ctx.client.urls.len();
    while !ctx.stop.load(Ordering::Relaxed) {
        let thread = ctx.threads[rng.below(ctx.threads.len())];
        ctx.client.read(&name, rng.below(n), thread, true).await;
        tokio::time::sleep(ctx.think * 2).await;
    }
}

/// One live subscriber of `thread` until `stop` is set; its record is
/// shared so the run can watch it catch up.
pub async fn subscriber(
    client: Client,
    thread: i64,
    seed: u64,
    record: Arc<Mutex<Subscriber>>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = Rng::new(seed ^ 0x11fe ^ thread as u64);
    let n = client.urls.len();
    // No overall deadline on a stream; connecting has one.
    let http = reqwest::Client::builder()
        .connect_timeout(client.timeout)
        .build()
        .expect("a reqwest client with plain settings");
    let mut last_event: Option<String> = None;
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        let node = rng.below(n);
        record.lock().expect("subscriber lock").nodes.push(node);
        if !first {
            record.lock().expect("subscriber lock").reconnects += 1;
        }
        first = false;
        let mut req = http.get(format!("{}/api/v1/live?thread={thread}", client.urls[node]));
        if let Some(id) = &last_event {
            req = req.header("Last-Event-ID", id.clone());
        }
        let res = tokio::select! {
            r = tokio::time::timeout(client.timeout, req.send()) => r,
            _ = until(&stop) => return,
        };
        let mut res = match res {
            Ok(Ok(r)) if r.status().is_success() => r,
            _ => {
                // A node down or paused: try another after a breath.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut buf = String::new();
        loop {
            let chunk = tokio::select! {
                c = res.chunk() => c,
                _ = until(&stop) => return,
            };
            let Ok(Some(chunk)) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                let ev = parse_event(&block);
                if let Some(id) = &ev.id {
                    last_event = Some(id.clone());
                }
                match ev.event.as_str() {
                    "new-client" => {
                        let baseline_missing =
                            record.lock().expect("subscriber lock").baseline.is_none();
                        record.lock().expect("subscriber lock").connected = true;
                        if baseline_missing {
                            let b = last_post(&client, thread, node).await;
                            record.lock().expect("subscriber lock").baseline = b;
                        }
                    }
                    "new-post" => {
                        let v: serde_json::Value =
                            serde_json::from_str(&ev.data).unwrap_or_default();
                        if v["thread"].as_i64() == Some(thread) {
                            if let Some(p) = v["post"].as_i64() {
                                record.lock().expect("subscriber lock").received.push(p);
                            }
                        }
                    }
                    "resync" => {
                        // The client re-reads the thread: what it missed is
                        // in the read, so the baseline moves past it.
                        record.lock().expect("subscriber lock").resyncs += 1;
                        let mut b = None;
                        for k in 0..n * 3 {
                            b = last_post(&client, thread, (node + k) % n).await;
                            if b.is_some() || stop.load(Ordering::Relaxed) {
                                break;
                            }
                        }
                        if b.is_some() {
                            record.lock().expect("subscriber lock").baseline = b;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn until(flag: &AtomicBool) {
    while !flag.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The thread's last post id as `node` serves it.
async fn last_post(client: &Client, thread: i64, node: usize) -> Option<i64> {
    let (_, posts) = client.read("subscriber", node, thread, false).await;
    posts.and_then(|p| p.iter().map(|x| x.0).max())
}

/// One Server-Sent Event.
#[derive(Debug, Default, PartialEq)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Parses one event block (the lines up to a blank line).
pub fn parse_event(block: &str) -> Event {
    let mut e = Event {
        event: "message".into(),
        ..Default::default()
    };
    let mut data = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => e.event = value.to_string(),
            "id" => e.id = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    e.data = data.join("\n");
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse() {
        let e = parse_event("event: new-post\nid: 17\ndata: {\"thread\":1,\"post\":5}\n\n");
        assert_eq!(e.event, "new-post");
        assert_eq!(e.id.as_deref(), Some("17"));
        assert_eq!(e.data, "{\"thread\":1,\"post\":5}");
        assert_eq!(parse_event(": keep-alive\n\n").event, "message");
    }
}
