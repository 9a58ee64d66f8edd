//! The supervision tree, seen from outside: every kind of actor a node runs
//! panics (through the debug-only hooks), and the node keeps serving reads,
//! writes, uploads and live updates, with nothing acknowledged lost; each
//! restart is counted in `/api/v1/status` and `/metrics`. A crash loop
//! makes the node unready with the reason, and it recovers once the actor
//! has run a whole window without crashing.
//!
//! The cluster-only actors (transport, membership, hand-over jobs) are
//! panicked under load by the chaos scenario `chaos-tests/scenarios/panic.toml`.

mod common;

use common::sse::Live;
use common::{eventually, form, json, png, Db, TestNode};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

both_backends!(
    every_actor_panics_and_the_node_keeps_serving,
    a_retry_of_a_write_an_earlier_activation_committed_shows_up
);

/// An activation that dies mid-write may commit a post and never answer
/// (its region restarted); a new activation may have loaded the thread just
/// before that commit. The client's retry is a replay of the stored post:
/// the thread must then show it, not only acknowledge it.
async fn a_retry_of_a_write_an_earlier_activation_committed_shows_up(db: Db) {
    use wani_store::Repo;
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let thread = open_thread(&node).await["id"].as_i64().unwrap();
    let before = posts(&node, thread).await;
    // What the dead activation committed, under the key the client sent
    // (scoped to the client's address, as the node stores keys).
    let committed = node
        .state
        .store
        .create_post(wani_store::NewPost {
            thread: wani_store::ThreadId(thread),
            body: "lost answer".into(),
            body_html: "<p>lost answer</p>".into(),
            poster: "abcd".into(),
            ip: "127.0.0.1".into(),
            media: None,
            spoiler: false,
            sage: false,
            quotes: Vec::new(),
            idempotency_key: "127.0.0.1/32 lost-1".into(),
            bump: true,
            now: 1,
            fence: None,
            author: Default::default(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        posts(&node, thread).await,
        before,
        "the live activation missed it"
    );
    let res = node
        .client()
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .header("Idempotency-Key", "lost-1")
        .multipart(form(&[("body", "lost answer")], None))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], committed.id.0);
    let after = posts(&node, thread).await;
    assert!(
        after.contains(&committed.id.0),
        "acknowledged but not shown: {after:?}"
    );
    node.stop().await;
}

/// Opens a thread with an image; the API's answer.
async fn open_thread(node: &TestNode) -> Value {
    let res = node
        .client()
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("body", "opening")],
            Some(("a.png", png(64, 48, false))),
        ))
        .send()
        .await
        .unwrap();
    let (s, v) = json(res).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

/// Posts a reply with an image (renderer and thumbnailer both work for it).
async fn reply(node: &TestNode, thread: i64, body: &str) -> i64 {
    let res = node
        .client()
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(&[("body", body)], Some(("r.png", png(40, 30, false)))))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

async fn posts(node: &TestNode, thread: i64) -> Vec<i64> {
    let (status, v) = json(
        node.client()
            .get(node.at(&format!("/api/v1/thread/{thread}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v.as_array()
        .expect("the thread's posts")
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

async fn status(node: &TestNode) -> Value {
    json(
        node.client()
            .get(node.at("/api/v1/status"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .1
}

async fn panic(node: &TestNode, path: &str) -> Value {
    let (status, v) = json(
        node.client()
            .post(node.at(&format!("/api/v1/debug/panic/{path}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v
}

async fn every_actor_panics_and_the_node_keeps_serving(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let v = open_thread(&node).await;
    let (thread, board) = (v["id"].as_i64().unwrap(), v["board"].as_i64().unwrap());
    let mut acknowledged = vec![v["post"]["id"].as_i64().unwrap()];

    // The tree as the node runs it: every child up, nothing restarted yet.
    let st = status(&node).await;
    let names: Vec<&str> = st["tree"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["renderer", "thumbnailer", "live-hub", "region"]);
    assert!(st["tree"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "running" && c["restarts"] == 0 && c["policy"] == "restart"));
    assert_eq!(st["ready"], true);

    let hooks = [
        ("thread", format!("thread/{thread}")),
        ("board", format!("board/{board}")),
        ("region", "actor/region".into()),
        ("live-hub", "actor/live-hub".into()),
        ("renderer-worker", "actor/renderer".into()),
        ("thumbnailer-worker", "actor/thumbnailer".into()),
    ];
    for (counted, path) in hooks {
        panic(&node, &path).await;
        // Writes (rendered, thumbnailed), reads and live updates all work
        // right after the crash.
        let (mut live, _) = Live::open_on(&node, &format!("?thread={thread}"), None).await;
        let p = reply(&node, thread, &format!("after the {counted} crashed")).await;
        acknowledged.push(p);
        live.expect("new-post", json!({"thread": thread, "post": p}))
            .await;
        assert_eq!(posts(&node, thread).await, acknowledged, "after {counted}");
        let st = status(&node).await;
        assert_eq!(st["restarts"][counted], 1, "{counted}: {st}");
        assert_eq!(st["ready"], true, "a single crash is no crash loop: {st}");
    }

    let metrics = node
        .client()
        .get(node.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for actor in ["region", "live-hub", "thread", "board", "renderer-worker"] {
        let line = format!("wani_actor_restarts_total{{actor=\"{actor}\"}} 1\n");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(metrics.contains("wani_actor_restarts_total{actor=\"renderer\"} 0\n"));
    node.stop().await;
}

/// An actor that keeps crashing turns the node unready, with the actor and
/// the reason; once it has run a whole window without crashing the node is
/// ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_makes_the_node_unready_until_it_stops() {
    let node = TestNode::start(Db::Sqlite, |c| {
        c.supervision.max_restarts = 3;
        c.supervision.window_secs = 2;
    })
    .await
    .unwrap();
    let ready = |node: &TestNode| {
        let c = node.client();
        let url = node.at("/readyz");
        async move { json(c.get(url).send().await.unwrap()).await }
    };
    assert_eq!(ready(&node).await.0, StatusCode::OK);

    panic(&node, "actor/live-hub?times=4").await;
    let (code, v) = ready(&node).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("live-hub") && reason.contains("crashed 4 times within 2 s"),
        "{reason}"
    );
    let st = status(&node).await;
    assert_eq!(st["ready"], false);
    let hub = st["tree"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "live-hub")
        .unwrap()
        .clone();
    assert_eq!(hub["state"], "stopped", "{hub}");
    assert!(hub["last_crash"].as_str().unwrap().contains("test hook"));

    // Tried again after the window, then ready once it has run a window.
    eventually(
        "the node is ready again",
        Duration::from_secs(20),
        || async { (ready(&node).await.0 == StatusCode::OK).then_some(()) },
    )
    .await;
    let (mut live, _) = Live::open_on(&node, "?board=1", None).await;
    let res = node
        .client()
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("body", "back")],
            Some(("a.png", png(8, 8, false))),
        ))
        .send()
        .await
        .unwrap();
    let (s, v) = json(res).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (t, p) = (v["id"].as_i64().unwrap(), v["post"]["id"].as_i64().unwrap());
    live.expect("new-post", json!({"thread": t, "post": p}))
        .await;
    node.stop().await;
}
