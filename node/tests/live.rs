//! Live updates (`/api/v1/live`, Server-Sent Events) against a real node:
//! subscribe, post, receive the exact events; reconnect with
//! `Last-Event-ID`; a slow client is dropped without delaying posts.
//! SQLite only: the hub does not touch the store.

mod common;

use common::sse::{Live, WAIT};
use common::{eventually, form, json, png, Db, TestNode};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Creates a thread on board `b`: (thread, board, op post).
async fn new_thread(node: &TestNode) -> (i64, i64, i64) {
    let res = node
        .client()
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("subject", "live"), ("body", "opening")],
            Some(("a.png", png(32, 32, false))),
        ))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (
        v["id"].as_i64().unwrap(),
        v["board"].as_i64().unwrap(),
        v["post"]["id"].as_i64().unwrap(),
    )
}

async fn reply(c: &reqwest::Client, node: &TestNode, thread: i64, body: &str) -> i64 {
    let res = c
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(&[("body", body)], None))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

async fn subscribe(node: &TestNode, body: Value) -> (StatusCode, Value) {
    json(
        node.client()
            .post(node.at("/api/v1/live"))
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await
}

async fn clients(node: &TestNode) -> usize {
    node.state.live.clients().await.expect("hub answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_post_and_quote() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let c = node.client();
    let (t1, _, op1) = new_thread(&node).await;
    let (t2, _, op2) = new_thread(&node).await;
    let (mut live, client) = Live::open_on(&node, "", None).await;

    let (status, v) = subscribe(
        &node,
        json!({"client-id": client, "subscribe": {"thread": [t1]}}),
    )
    .await;
    assert_eq!((status, v), (StatusCode::OK, json!({"success": true})));
    let (status, v) = subscribe(
        &node,
        json!({"client-id": "client_0000000000", "subscribe": {"thread": [t1]}}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"].is_string(), "{v}");

    let p = reply(&c, &node, t1, "hello").await;
    let first = live
        .expect("new-post", json!({"thread": t1, "post": p}))
        .await;

    // A post in another thread quoting a post of the subscribed one.
    let q = reply(&c, &node, t2, &format!(">>{op1} look")).await;
    let second = live
        .expect(
            "new-reply",
            json!({"thread": t2, "post": q, "reply_to": op1}),
        )
        .await;
    assert!(second > first, "ids grow");

    // A quote inside the subscribed thread: new-post, then new-reply.
    let r = reply(&c, &node, t1, &format!(">>{p} agreed")).await;
    live.expect("new-post", json!({"thread": t1, "post": r}))
        .await;
    live.expect("new-reply", json!({"thread": t1, "post": r, "reply_to": p}))
        .await;

    // Unsubscribe from t1, subscribe to t2: only t2's posts come.
    let (status, _) = subscribe(
        &node,
        json!({"client-id": client, "subscribe": {"thread": [t2]}, "unsubscribe": {"thread": [t1]}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    reply(&c, &node, t1, &format!("quiet >>{op2}")).await;
    let s = reply(&c, &node, t2, "loud").await;
    let e = live.next().await.unwrap();
    // t1's post quoted t2's op: that is a new-reply for t2's subscribers.
    assert_eq!(e.event, "new-reply", "{e:?}");
    assert_eq!(e.json()["reply_to"], json!(op2));
    live.expect("new-post", json!({"thread": t2, "post": s}))
        .await;

    // Closing the connection ends the subscriber within a second.
    assert_eq!(clients(&node).await, 1);
    drop(live);
    eventually("the subscriber is gone", Duration::from_secs(1), || async {
        (clients(&node).await == 0).then_some(())
    })
    .await;
    let (status, _) = subscribe(
        &node,
        json!({"client-id": client, "subscribe": {"thread": [t1]}}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_subscriptions_and_new_threads() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let c = node.client();
    let (t1, board, _) = new_thread(&node).await;
    let (mut live, _) = Live::open_on(&node, &format!("?thread={t1}&board={board}"), None).await;
    let (t2, _, op2) = new_thread(&node).await;
    live.expect("new-post", json!({"thread": t2, "post": op2}))
        .await;
    live.expect("new-thread", json!({"thread": t2, "board": board}))
        .await;
    let p = reply(&c, &node, t1, "via the query string").await;
    // Subscribed to the thread and its board: the event comes once.
    live.expect("new-post", json!({"thread": t1, "post": p}))
        .await;
    let q = reply(&c, &node, t2, "board subscribers see replies too").await;
    live.expect("new-post", json!({"thread": t2, "post": q}))
        .await;

    let res = c
        .get(node.at("/api/v1/live?thread=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    drop(live);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_last_event_id_replays_or_resyncs() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let c = node.client();
    let (t, _, _) = new_thread(&node).await;
    let (other, _, _) = new_thread(&node).await;
    let query = format!("?thread={t}");
    let (mut live, _) = Live::open_on(&node, &query, None).await;
    let p1 = reply(&c, &node, t, "one").await;
    let seen = live
        .expect("new-post", json!({"thread": t, "post": p1}))
        .await;
    drop(live);

    let p2 = reply(&c, &node, t, "two").await;
    reply(&c, &node, other, "not subscribed").await;
    let p3 = reply(&c, &node, t, "three").await;

    let (mut live, _) = Live::open_on(&node, &query, Some(seen)).await;
    let a = live
        .expect("new-post", json!({"thread": t, "post": p2}))
        .await;
    let b = live
        .expect("new-post", json!({"thread": t, "post": p3}))
        .await;
    assert!(seen < a && a < b);
    // And then live events, with nothing replayed twice.
    let p4 = reply(&c, &node, t, "four").await;
    let d = live
        .expect("new-post", json!({"thread": t, "post": p4}))
        .await;
    assert!(d > b);
    drop(live);

    // Up to date: nothing to replay.
    let (mut live, _) = Live::open_on(&node, &query, Some(d)).await;
    let p5 = reply(&c, &node, t, "five").await;
    live.expect("new-post", json!({"thread": t, "post": p5}))
        .await;
    drop(live);

    // Out of the replay window (or from before a restart): resync.
    let (mut live, _) = Live::open_on(&node, &query, Some(1)).await;
    let e = live.next().await.unwrap();
    assert_eq!(e.event, "resync", "{e:?}");
    drop(live);
    // A recent id, but numbered by another node's hub (the client moved to
    // this node): resync, not somebody else's events.
    let (mut live, _) = Live::open_on(&node, &query, Some(b ^ (1 << 50))).await;
    let e = live.next().await.unwrap();
    assert_eq!(e.event, "resync", "{e:?}");
    drop(live);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_dropped_without_delaying_posts() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let (t, _, op) = new_thread(&node).await;
    // Each reply quotes these, so that it makes many events: the kernel's
    // socket buffers (megabytes on loopback) must not absorb them all.
    let c = node.client();
    let mut quotes = format!(">>{op}");
    for i in 0..40 {
        let p = reply(&c, &node, t, &format!("seed {i}")).await;
        quotes.push_str(&format!(" >>{p}"));
    }

    // A client that reads the response head and nothing more, on a socket
    // with a tiny receive buffer so the server's buffers fill quickly.
    let addr: std::net::SocketAddr = node.url.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut slow = socket.connect(addr).await.unwrap();
    slow.write_all(
        format!(
            "GET /api/v1/live?thread={t} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"new-client") {
        slow.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    eventually("the slow client is connected", WAIT, || async {
        (clients(&node).await == 1).then_some(())
    })
    .await;

    // 2,000 replies (each quoting 41 posts: 42 events each), four posters
    // at a time; every one is acknowledged.
    let posted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (c, url, posted) = (
            node.client(),
            node.at(&format!("/api/v1/thread/{t}/new")),
            posted.clone(),
        );
        let quotes = quotes.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                let res = c
                    .post(&url)
                    .multipart(form(&[("body", &format!("{quotes} reply {w}-{i}"))], None))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(res.status(), StatusCode::CREATED);
                posted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(posted.load(std::sync::atomic::Ordering::Relaxed), 2000);

    // The hub dropped the slow client...
    eventually("the slow client is dropped", WAIT, || async {
        (clients(&node).await == 0).then_some(())
    })
    .await;
    // ...which, reading at last, finds a resync and the end of the stream.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, slow.read_to_end(&mut rest))
        .await
        .expect("the stream ends")
        .unwrap();
    let text = String::from_utf8_lossy(&rest);
    let posts = text.matches("event: new-post").count();
    println!(
        "the slow client got {} bytes, {posts} new-post events",
        rest.len()
    );
    assert!(posts < 2000, "dropped before getting everything ({posts})");
    assert!(
        text.contains("event: resync"),
        "{}",
        &text[text.len().saturating_sub(500)..]
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_post_is_announced_to_its_subscribers() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let c = node.client();
    let (thread, _, _) = new_thread(&node).await;
    let victim = reply(&c, &node, thread, "soon gone").await;
    let (mut live, _) = Live::open_on(&node, &format!("?thread={thread}"), None).await;
    let hash = wani_node::http::auth::hash_password("a long enough password".into())
        .await
        .expect("hash");
    node.state
        .store
        .create_slip("janitor", &hash, false, true)
        .await
        .expect("slip");
    let res = c
        .delete(node.at(&format!("/api/v1/thread/post/{victim}")))
        .basic_auth("janitor", Some("a long enough password"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    live.expect("delete-post", json!({"thread": thread, "post": victim}))
        .await;
}

/// EventSource usually opens a fresh connection, served straight off the
/// socket; a browser may also reuse a keep-alive connection that carried
/// other requests, which axum serves. Both streams behave the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_a_reused_connection_works_the_same() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let (t, _, _) = new_thread(&node).await;
    let url = node.at(&format!("/api/v1/live?thread={t}"));

    let fresh = reqwest::Client::new();
    let (mut direct, _) = Live::open_with(&fresh, &url, None).await;
    assert_eq!(
        direct.res.headers()["connection"],
        "close",
        "served off the socket"
    );

    // One socket, so the stream surely rides the connection /healthz used
    // (a client's pool may or may not have it back in time).
    let addr = node.url.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    read_until(&mut conn, &mut seen, whole_answer).await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    conn.write_all(
        format!(
            "GET /api/v1/live?thread={t} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut pooled = String::new();
    read_until(&mut conn, &mut pooled, |s| s.contains("new-client")).await;
    let head = pooled[..pooled.find("\r\n\r\n").unwrap()].to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        !head.contains("connection: close"),
        "served by axum on the reused connection: {head}"
    );

    // Both count for operators, though one never passed through hyper.
    let metrics = reqwest::get(node.at("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("\nwani_live_subscribers 2\n"), "{metrics}");

    let p = reply(&node.client(), &node, t, "to both").await;
    direct
        .expect("new-post", json!({"thread": t, "post": p}))
        .await;
    let want = format!("\"post\":{p}");
    read_until(&mut conn, &mut pooled, |s| {
        s.contains("event: new-post") && s.contains(&want)
    })
    .await;
    drop(conn);
    drop(direct);
    eventually("both subscribers are gone", WAIT, || async {
        (clients(&node).await == 0).then_some(())
    })
    .await;
    node.stop().await;
}

/// A broken or refused request on a fresh connection gets a JSON error, as
/// through axum.
/// Reads from `conn` into `seen` until `done` holds (within `WAIT`).
async fn read_until(
    conn: &mut tokio::net::TcpStream,
    seen: &mut String,
    done: impl Fn(&str) -> bool,
) {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(WAIT, async {
        while !done(seen) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not within {WAIT:?}: {seen}"));
}

/// Whether `s` holds a whole answer: its head and Content-Length bytes.
fn whole_answer(s: &str) -> bool {
    let Some(head_end) = s.find("\r\n\r\n") else {
        return false;
    };
    let len: usize = s[..head_end]
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    s.len() >= head_end + 4 + len
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_requests_get_clear_errors() {
    let node = TestNode::start(Db::Sqlite, |_| {}).await.unwrap();
    let res = reqwest::get(node.at("/api/v1/live?thread=twelve"))
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("numeric ids"), "{v}");

    let addr = node.url.trim_start_matches("http://").to_string();
    let mut raw = tokio::net::TcpStream::connect(&addr).await.unwrap();
    raw.write_all(b"GET /api/v1/live?thread=1 HTTP/1.1\r\nHost x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("malformed HTTP request"), "{answer}");
    assert_eq!(clients(&node).await, 0);
    node.stop().await;
}
