//! Anti-abuse as an attacker and an unlucky user meet it: retries that are
//! always safe, a repeated-text rule that punctuation does not get around,
//! addresses keyed as the clients they are. A real node on a socket, SQLite
//! and PostgreSQL.

mod common;

use common::{eventually, form, json, png, Db, TestNode};
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

both_backends!(
    a_retry_gets_the_original_outcome_never_a_flood_penalty,
    a_refused_post_does_not_count_towards_flood_limits,
    keys_are_scoped_to_their_sender,
    punctuation_and_invisible_characters_make_no_new_text,
    on_a_dual_stack_listener_each_ipv4_client_is_itself,
);

async fn new_thread(node: &TestNode, c: &reqwest::Client, body: &str) -> i64 {
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("body", body)],
            Some(("a.png", png(16, 16, false))),
        ))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["id"].as_i64().unwrap()
}

/// A reply with an optional `Idempotency-Key`.
async fn reply(
    node: &TestNode,
    c: &reqwest::Client,
    thread: i64,
    body: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = c
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(&[("body", body)], None));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    json(req.send().await.expect("send")).await
}

async fn post_count(node: &TestNode, thread: i64) -> usize {
    let res = node
        .client()
        .get(node.at(&format!("/api/v1/thread/{thread}")))
        .send()
        .await
        .unwrap();
    let (_, v) = json(res).await;
    v.as_array().expect("posts").len()
}

async fn a_retry_gets_the_original_outcome_never_a_flood_penalty(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.abuse.same_content_secs = 60;
        c.bootstrap.boards[0].reply_interval_secs = 1;
    })
    .await
    else {
        return;
    };
    let c = node.client_from("127.0.0.21");
    let thread = new_thread(&node, &node.client(), "op").await;

    let (s, first) = reply(&node, &c, thread, "hello there", Some("k-1")).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // The answer was lost; the client sends the same request again at once.
    let (s, again) = reply(&node, &c, thread, "hello there", Some("k-1")).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a retry is the stored post, not flooding: {again}"
    );
    assert_eq!(again["id"], first["id"]);
    // Flood control still holds for a new post.
    let (s, v) = reply(&node, &c, thread, "something else", Some("k-2")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");

    // Once a later post has moved the client's mark, a retry of the first
    // one still answers with it (found under its key), not with a 429.
    let second = eventually("the interval to pass", Duration::from_secs(5), || async {
        let (s, v) = reply(&node, &c, thread, "something else", Some("k-2")).await;
        (s == StatusCode::CREATED).then_some(v)
    })
    .await;
    let (s, v) = reply(&node, &c, thread, "hello there", Some("k-1")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], first["id"]);
    let (s, v) = reply(&node, &c, thread, "something else", Some("k-2")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], second["id"]);
    assert_eq!(
        post_count(&node, thread).await,
        3,
        "op and two replies, once each"
    );

    // A thread retried after its answer was lost is the same thread.
    let thread_req = || {
        c.post(node.at("/api/v1/thread/new"))
            .header("Idempotency-Key", "t-1")
            .multipart(form(
                &[("board", "b"), ("body", "a thread of mine")],
                Some(("a.png", png(16, 16, false))),
            ))
    };
    let t1 = eventually("the interval to pass", Duration::from_secs(5), || async {
        let (s, v) = json(thread_req().send().await.unwrap()).await;
        (s == StatusCode::CREATED).then_some(v)
    })
    .await;
    let (s, t2) = json(thread_req().send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{t2}");
    assert_eq!(t1["id"], t2["id"]);
    node.stop().await;
}

async fn a_refused_post_does_not_count_towards_flood_limits(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.abuse.same_content_secs = 60;
        c.bootstrap.boards[0].reply_interval_secs = 60;
        c.bootstrap.boards[0].max_threads = 1;
    })
    .await
    else {
        return;
    };
    let c = node.client_from("127.0.0.22");
    let old = new_thread(&node, &node.client(), "old").await;
    let _new = new_thread(&node, &node.client_from("127.0.0.23"), "new").await;
    // `old` is archived now: a reply to it is refused by its thread.
    let (s, v) = reply(&node, &c, old, "my reply", Some("r-1")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // Its retry gets the same answer, not "posting too fast".
    let (s, v) = reply(&node, &c, old, "my reply", Some("r-1")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    // And neither the client nor the text is held back by what was refused.
    let (s, v) = reply(&node, &c, _new, "my reply", Some("r-2")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    node.stop().await;
}

async fn keys_are_scoped_to_their_sender(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.bootstrap.boards[0].reply_interval_secs = 60;
    })
    .await
    else {
        return;
    };
    let alice = node.client_from("127.0.0.24");
    let mallory = node.client_from("127.0.0.25");
    let thread = new_thread(&node, &node.client(), "op").await;
    let (s, mine) = reply(&node, &alice, thread, "alice's words", Some("shared")).await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    // Someone else sending the same key gets their own post, not hers.
    let (s, theirs) = reply(&node, &mallory, thread, "mallory's words", Some("shared")).await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["id"], mine["id"]);
    assert_eq!(theirs["body"], "mallory's words");
    // And her retry still returns her post.
    let (s, again) = reply(&node, &alice, thread, "alice's words", Some("shared")).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["id"], mine["id"]);
    node.stop().await;
}

async fn punctuation_and_invisible_characters_make_no_new_text(db: Db) {
    let Some(node) = TestNode::start(db, |c| c.abuse.same_content_secs = 60).await else {
        return;
    };
    let thread = new_thread(&node, &node.client(), "op").await;
    let (s, v) = reply(
        &node,
        &node.client_from("127.0.0.30"),
        thread,
        "Buy cheap pills",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for (i, variant) in [
        "Buy cheap pills.",
        "Buy cheap pills\u{200B}",
        "Buy\u{200D} cheap pills",
        "b.u.y cheap pills!!",
        "ＢＵＹ cheap pills",
        "buy\u{00A0}cheap\u{2060}pills ...",
    ]
    .into_iter()
    .enumerate()
    {
        let c = node.client_from(&format!("127.0.0.{}", 31 + i));
        let res = c
            .post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .multipart(form(&[("body", variant)], None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{variant:?}");
        assert!(res.headers().contains_key(RETRY_AFTER));
        let (_, v) = json(res).await;
        assert!(v["error"].as_str().unwrap().contains("text"), "{v}");
    }
    assert_eq!(post_count(&node, thread).await, 2);
    node.stop().await;
}

async fn on_a_dual_stack_listener_each_ipv4_client_is_itself(db: Db) {
    let Some(node) = TestNode::start_on("[::]:0", db, |c| {
        c.bootstrap.boards[0].reply_interval_secs = 60;
    })
    .await
    else {
        return;
    };
    let thread = new_thread(&node, &node.client_from("127.0.0.40"), "op").await;
    let (s, a) = reply(
        &node,
        &node.client_from("127.0.0.41"),
        thread,
        "first",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    // Another IPv4 client is not the first one's flood bucket.
    let (s, b) = reply(
        &node,
        &node.client_from("127.0.0.42"),
        thread,
        "second",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Stored (and so shown to moderators and banned) as the IPv4 address.
    let (ip, _) = node
        .state
        .store
        .post_origin(wani_store::PostId(a["id"].as_i64().unwrap()))
        .await
        .unwrap()
        .expect("the post");
    assert_eq!(ip, "127.0.0.41");
    node.stop().await;
}
