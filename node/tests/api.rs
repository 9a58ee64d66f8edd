//! The JSON API end to end: a real node on a socket, real database, real files.

mod common;

use common::{eventually, form, jpeg, json, png, Db, TestNode};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// Creates a thread on board `b` and returns (thread id, op post id).
async fn new_thread(node: &TestNode, c: &reqwest::Client, subject: &str, body: &str) -> (i64, i64) {
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("subject", subject), ("body", body)],
            Some(("a.png", png(64, 48, false))),
        ))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (
        v["id"].as_i64().expect("thread id"),
        v["post"]["id"].as_i64().expect("post id"),
    )
}

async fn reply(
    node: &TestNode,
    c: &reqwest::Client,
    thread: i64,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let res = c
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(fields, None))
        .send()
        .await
        .expect("send");
    json(res).await
}

async fn thread_json(node: &TestNode, thread: i64) -> Vec<Value> {
    let (status, v) = json(
        node.client()
            .get(node.at(&format!("/api/v1/thread/{thread}")))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v.as_array().expect("array").clone()
}

/// Board b's catalog entries, most recently bumped first.
async fn catalog(node: &TestNode) -> Vec<Value> {
    let (_, v) = json(
        node.client()
            .get(node.at("/api/v1/board/b/catalog"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    v.as_array().expect("array").clone()
}

async fn catalog_ids(node: &TestNode) -> Vec<i64> {
    catalog(node)
        .await
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect()
}

async fn thread_with_image_round_trips(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[
                ("board", "b"),
                ("subject", "First"),
                ("body", "hello"),
                ("tags", "Rust, cats"),
            ],
            Some(("photo.jpg.exe", jpeg(1200, 600))),
        ))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let thread = v["id"].as_i64().unwrap();
    assert_eq!(v["thread_url"], format!("/threads/{thread}"));
    assert_eq!(v["post"]["subject"], "First");
    assert_eq!(
        v["post"]["mimetype"], "image/jpeg",
        "type comes from the bytes, not the file name"
    );
    let poster = v["post"]["poster"].as_str().unwrap();
    assert!(
        poster.len() == 4 && poster.chars().all(|c| c.is_ascii_hexdigit()),
        "{poster}"
    );

    let posts = thread_json(&node, thread).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0]["tags"],
        serde_json::json!(["cats", "rust"]),
        "tags lower-cased, sorted"
    );
    assert_eq!(posts[0]["body"], "hello");

    let media_url = posts[0]["media_url"].as_str().unwrap();
    let res = c.get(node.at(media_url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let thumb = c
        .get(node.at(posts[0]["thumb_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let t = image::load_from_memory(&thumb).expect("thumbnail decodes");
    assert_eq!(
        (t.width(), t.height()),
        (500, 250),
        "longest side 500, aspect kept"
    );

    assert_eq!(catalog_ids(&node).await, vec![thread]);
    node.stop().await;
}

async fn a_thread_needs_a_file_and_rules_hold(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(&[("board", "b"), ("body", "no file")], None))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"], "A file is required to post a thread!");

    let long_subject = "s".repeat(65);
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("subject", &long_subject)],
            Some(("a.png", png(10, 10, false))),
        ))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().contains("subject"), "{v}");

    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "nope")],
            Some(("a.png", png(10, 10, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    let (status, v) = reply(&node, &c, thread, &[("body", &"x".repeat(4097))]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"].as_str().unwrap().contains("4096"), "{v}");
    let (status, _) = reply(&node, &c, thread, &[("body", "   ")]).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an empty reply without a file is refused"
    );
    let (status, _) = reply(&node, &c, 999_999, &[("body", "hi")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let res = c.get(node.at("/api/v1/thread/abc")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        thread_json(&node, thread).await.len(),
        1,
        "nothing refused was stored"
    );
    node.stop().await;
}

async fn bad_uploads_are_refused_and_leave_nothing(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.bootstrap.boards[0].max_file_bytes = 200_000;
        c.media.max_pixels = 1_000_000;
    })
    .await
    else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    let before_files = node.blob_files();
    let good = png(300, 200, false);
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let bomb = common::png_claiming(20_000, 20_000);
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        (
            "html",
            b"<html><script>alert(1)</script></html>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "bmp",
            b"BM\x00\x00\x00\x00".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        ("truncated", truncated, StatusCode::UNPROCESSABLE_ENTITY),
        ("bomb", bomb, StatusCode::PAYLOAD_TOO_LARGE),
        (
            "oversized",
            jpeg(2000, 2000)
                .into_iter()
                .chain(std::iter::repeat_n(0, 300_000))
                .collect(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        ("empty", Vec::new(), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (what, bytes, want) in cases {
        let res = c
            .post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .multipart(form(&[("body", "file")], Some(("x.png", bytes))))
            .send()
            .await
            .unwrap();
        let (status, v) = json(res).await;
        // An empty file with a file name is a missing file for a reply with a body: accepted without media.
        if what == "empty" && status == StatusCode::CREATED {
            assert!(v["media"].is_null());
            continue;
        }
        assert_eq!(status, want, "{what}: {v}");
        assert!(
            !v["error"].as_str().unwrap().is_empty(),
            "{what}: clear message"
        );
        assert_eq!(
            node.blob_files(),
            before_files,
            "{what}: nothing half-stored"
        );
    }
    let posts = thread_json(&node, thread).await;
    assert!(
        posts.iter().skip(1).all(|p| p["media"].is_null()),
        "no refused file is attached to a post"
    );
    node.stop().await;
}

async fn markup_quotes_and_replies(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let (t1, op1) = new_thread(&node, &c, "one", "first thread").await;
    let (t2, op2) = new_thread(&node, &c, "two", "second thread").await;
    let body = format!(">be me\n>>{op1} cross-thread\n>>{op2} same thread\n>>999999 dead\n||secret|| **bold** <script>alert(1)</script>");
    let (status, v) = reply(&node, &c, t2, &[("body", &body)]).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let reply_id = v["id"].as_i64().unwrap();
    assert_eq!(v["post_url"], format!("/threads/{t2}#{reply_id}"));

    let (_, p) = json(
        c.get(node.at(&format!("/api/v1/post/{reply_id}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let html = p["body"].as_str().unwrap();
    assert!(
        html.contains("greentext") && html.contains("&gt;be me"),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/threads/{t1}#{op1}\"")),
        "cross-thread quote links to its thread: {html}"
    );
    assert!(
        html.contains(&format!("href=\"/threads/{t2}#{op2}\"")),
        "{html}"
    );
    assert!(html.contains("dead-quote"), "{html}");
    assert!(
        html.contains("<span class=\"spoiler\">secret</span>"),
        "{html}"
    );
    assert!(html.contains("<strong>bold</strong>"), "{html}");
    assert!(!html.contains("<script"), "raw HTML is escaped: {html}");
    assert!(
        html.contains("<br"),
        "single newlines are line breaks: {html}"
    );

    // Each quoted post lists who quoted it, in its own thread too.
    let posts2 = thread_json(&node, t2).await;
    assert_eq!(posts2[0]["replies"], serde_json::json!([reply_id]));
    let posts1 = eventually(
        "cross-thread reply recorded",
        Duration::from_secs(5),
        || async {
            let p = thread_json(&node, t1).await;
            (p[0]["replies"] == serde_json::json!([reply_id])).then_some(p)
        },
    )
    .await;
    assert_eq!(posts1.len(), 1);
    // On t1's page the quoting post lives elsewhere: its link finds it.
    let page = c
        .get(node.at(&format!("/threads/{t1}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("href=\"/posts/{reply_id}\"")),
        "cross-thread reply link"
    );
    let res = c
        .get(node.at(&format!("/posts/{reply_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        format!("/threads/{t2}#{reply_id}")
    );
    assert_eq!(
        c.get(node.at("/posts/999999"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    node.stop().await;
}

async fn bump_rules(db: Db) {
    let Some(node) = TestNode::start(db, |c| c.bootstrap.boards[0].bump_limit = 4).await else {
        return;
    };
    let alice = node.client_from("127.0.0.2");
    let bob = node.client_from("127.0.0.3");
    let carol = node.client_from("127.0.0.4");
    let (t1, _) = new_thread(&node, &alice, "one", "op").await;
    let (t2, _) = new_thread(&node, &alice, "two", "op").await;
    assert_eq!(catalog_ids(&node).await, vec![t2, t1]);

    // The OP replying to their own thread is the same poster: no bump.
    let (s, _) = reply(&node, &alice, t1, &[("body", "self")]).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        catalog_ids(&node).await,
        vec![t2, t1],
        "self-reply does not bump"
    );

    let (_, v) = reply(&node, &bob, t1, &[("body", "sage"), ("sage", "on")]).await;
    assert_eq!(v["sage"], true);
    assert_eq!(catalog_ids(&node).await, vec![t2, t1], "sage does not bump");

    // Bob again right after his own sage: a self-bump, so no bump either.
    reply(&node, &bob, t1, &[("body", "again")]).await;
    assert_eq!(
        catalog_ids(&node).await,
        vec![t2, t1],
        "self-bump after sage"
    );
    reply(&node, &carol, t1, &[("body", "hi"), ("sage", "")]).await;
    reply(&node, &alice, t2, &[("body", "x")]).await; // self, no bump
    let ids = eventually("carol's reply bumps t1", Duration::from_secs(5), || async {
        let ids = catalog_ids(&node).await;
        (ids == vec![t1, t2]).then_some(ids)
    })
    .await;
    assert_eq!(ids, vec![t1, t2]);

    // t1 now has 4 replies, the bump limit: further replies do not bump.
    reply(&node, &bob, t2, &[("body", "bump t2")]).await;
    eventually("t2 bumped", Duration::from_secs(5), || async {
        (catalog_ids(&node).await == vec![t2, t1]).then_some(())
    })
    .await;
    reply(&node, &alice, t1, &[("body", "past the limit")]).await;
    assert_eq!(catalog_ids(&node).await, vec![t2, t1], "bump limit reached");

    // Poster ids: stable per thread and address, different across addresses.
    let posts = thread_json(&node, t1).await;
    assert_eq!(
        posts[0]["poster"], posts[1]["poster"],
        "same address, same id in a thread"
    );
    assert_ne!(
        posts[0]["poster"], posts[2]["poster"],
        "another address, another id"
    );
    let text = serde_json::to_string(&posts).unwrap();
    assert!(!text.contains("127.0.0"), "addresses are never served");
    node.stop().await;
}

async fn retried_posts_are_stored_once(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    let send = || {
        c.post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .header("Idempotency-Key", "retry-me-1")
            .multipart(form(&[("body", "once")], None))
            .send()
    };
    let (s1, a) = json(send().await.unwrap()).await;
    let (s2, b) = json(send().await.unwrap()).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["id"], b["id"]);
    // Concurrent duplicates too.
    let dupes = futures::future::join_all((0..8).map(|_| {
        c.post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .header("Idempotency-Key", "retry-me-2")
            .multipart(form(&[("body", "twice?")], None))
            .send()
    }))
    .await;
    let mut ids = std::collections::HashSet::new();
    for r in dupes {
        let (s, v) = json(r.unwrap()).await;
        assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{s} {v}");
        ids.insert(v["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(
        thread_json(&node, thread).await.len(),
        3,
        "op + two distinct posts"
    );
    node.stop().await;
}

async fn gets_carry_etags_and_change_nothing(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    for path in [
        format!("/api/v1/thread/{thread}"),
        "/api/v1/board/b/catalog".into(),
        "/api/v1/boards/".into(),
        "/api/v1/firehose".into(),
        format!("/threads/{thread}"),
        "/".into(),
    ] {
        let res = c.get(node.at(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let etag = res
            .headers()
            .get("etag")
            .unwrap_or_else(|| panic!("{path} has an ETag"))
            .clone();
        let body = res.bytes().await.unwrap();
        let res = c
            .get(node.at(&path))
            .header("If-None-Match", etag.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED, "{path}");
        let again = c.get(node.at(&path)).send().await.unwrap();
        assert_eq!(
            again.headers()["etag"],
            etag,
            "{path}: a GET changed nothing (no view counts written)"
        );
        assert_eq!(again.bytes().await.unwrap(), body);
    }
    let before = c
        .get(node.at(&format!("/api/v1/thread/{thread}")))
        .send()
        .await
        .unwrap()
        .headers()["etag"]
        .clone();
    reply(&node, &c, thread, &[("body", "new")]).await;
    let res = c
        .get(node.at(&format!("/api/v1/thread/{thread}")))
        .header("If-None-Match", before.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a write changes the ETag");
    assert_ne!(res.headers()["etag"], before);
    node.stop().await;
}

async fn full_boards_archive_the_least_recently_bumped(db: Db) {
    let Some(node) = TestNode::start(db, |c| c.bootstrap.boards[0].max_threads = 2).await else {
        return;
    };
    let c = node.client();
    let other = node.client_from("127.0.0.9");
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("body", "will be archived")],
            Some(("u.png", png(33, 33, true))),
        ))
        .send()
        .await
        .unwrap();
    let (_, v) = json(res).await;
    let (t1, media1) = (
        v["id"].as_i64().unwrap(),
        v["post"]["media_url"].as_str().unwrap().to_string(),
    );
    let (t2, _) = new_thread(&node, &c, "two", "op").await;
    reply(&node, &other, t2, &[("body", "bump")]).await;
    let (t3, _) = new_thread(&node, &c, "three", "op").await;
    assert_eq!(catalog_ids(&node).await, vec![t3, t2]);
    // Archived, not lost: still readable, refuses replies, its media collected.
    let posts = thread_json(&node, t1).await;
    assert_eq!(posts[0]["body"], "will be archived");
    assert!(
        posts[0]["media"].is_null(),
        "media of archived threads is collected"
    );
    let (s, v) = reply(&node, &c, t1, &[("body", "late")]).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        c.get(node.at(&media1)).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let page = c
        .get(node.at("/boards/b/archive"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/threads/{t1}")),
        "the archive lists it"
    );
    node.stop().await;
}

async fn a_crashed_thread_actor_recovers_from_the_store(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    reply(&node, &c, thread, &[("body", "before the crash")]).await;
    let tid = wani_store::ThreadId(thread);
    let actor = node
        .state
        .entities
        .actor::<wani_actors::ThreadMsg>(tid)
        .await
        .unwrap();
    actor.cast(wani_actors::ThreadMsg::Crash).unwrap();
    actor.wait(Some(Duration::from_secs(5))).await.unwrap();
    let posts = thread_json(&node, thread).await;
    assert_eq!(posts.len(), 2, "state reloaded from the store");
    let (s, _) = reply(&node, &c, thread, &[("body", "after the crash")]).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(
        node.state
            .entities
            .actor::<wani_actors::ThreadMsg>(tid)
            .await
            .unwrap()
            .get_id(),
        actor.get_id(),
        "a new activation"
    );
    node.stop().await;
}

async fn idle_entities_passivate_and_come_back(db: Db) {
    let Some(node) = TestNode::start(db, |c| c.entities.idle_timeout_secs = 1).await else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    thread_json(&node, thread).await;
    eventually("entities passivated", Duration::from_secs(10), || async {
        (node.state.entities.active_total() == 0).then_some(())
    })
    .await;
    assert_eq!(thread_json(&node, thread).await.len(), 1);
    assert_eq!(catalog_ids(&node).await, vec![thread]);
    node.stop().await;
}

async fn many_concurrent_replies_keep_one_order(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    let results = futures::future::join_all((0..50).map(|i| {
        let c = c.clone();
        let url = node.at(&format!("/api/v1/thread/{thread}/new"));
        async move {
            let res = c
                .post(url)
                .multipart(form(&[("body", &format!("reply {i}"))], None))
                .send()
                .await
                .unwrap();
            json(res).await
        }
    }))
    .await;
    assert!(results.iter().all(|(s, _)| *s == StatusCode::CREATED));
    let posts = thread_json(&node, thread).await;
    assert_eq!(posts.len(), 51);
    let ids: Vec<i64> = posts.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "posts in id order");
    node.stop().await;
}

/// A burst of replies into one thread is decided as if the replies came one
/// at a time, though its actor queues them all before the first commits:
/// each acknowledged reply is readable at once, and the thread is bumped by
/// exactly the replies the bump rule lets bump in the stored order (the
/// same poster twice in a row, sage, and the bump limit reached mid-burst).
async fn a_burst_of_replies_bumps_as_if_one_at_a_time(db: Db) {
    const LIMIT: usize = 40;
    let Some(node) = TestNode::start(db, |c| c.bootstrap.boards[0].bump_limit = LIMIT as i64).await
    else {
        return;
    };
    let op = node.client_from("127.0.0.2");
    let (thread, _) = new_thread(&node, &op, "hot", "op").await;
    let posters: Vec<reqwest::Client> = (3..6)
        .map(|i| node.client_from(&format!("127.0.0.{i}")))
        .collect();
    let n = 2 * LIMIT;
    let acked = futures::future::join_all((0..n).map(|i| {
        // Runs of the same poster and some sage, so the rule's every
        // branch is taken inside one burst.
        let c = posters[(i / 2 + i / 7) % posters.len()].clone();
        let sage = if i % 5 == 0 { "on" } else { "" };
        let node = &node;
        async move {
            let (status, v) = reply(
                node,
                &c,
                thread,
                &[("body", &format!("burst {i}")), ("sage", sage)],
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            let id = v["id"].as_i64().expect("id");
            let posts = thread_json(node, thread).await;
            assert!(
                posts.iter().any(|p| p["id"] == id),
                "reply {id} acknowledged but not readable"
            );
            id
        }
    }))
    .await;
    let posts = thread_json(&node, thread).await;
    assert_eq!(posts.len(), n + 1);
    let mut stored: Vec<i64> = posts[1..]
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    let mut sorted = acked.clone();
    sorted.sort();
    assert_eq!(
        stored, sorted,
        "every acknowledged reply stored once, in id order"
    );
    stored.dedup();
    assert_eq!(stored.len(), n);

    let mut bumped_at = posts[0]["datetime"].as_i64().unwrap();
    let mut bumps = 0;
    for (i, p) in posts.iter().enumerate().skip(1) {
        let replies_before = i - 1;
        if p["sage"] != true && replies_before < LIMIT && p["poster"] != posts[i - 1]["poster"] {
            bumped_at = bumped_at.max(p["datetime"].as_i64().unwrap());
            bumps += 1;
        }
    }
    assert!(
        bumps > 0 && bumps < LIMIT,
        "the burst mixes bumps and non-bumps"
    );
    let entry = eventually(
        "the catalog shows the burst",
        Duration::from_secs(5),
        || async {
            catalog(&node)
                .await
                .into_iter()
                .find(|t| t["id"] == thread && t["num_replies"] == n)
        },
    )
    .await;
    assert_eq!(
        entry["last_updated"].as_i64(),
        Some(bumped_at),
        "bumped by exactly the replies the rule lets bump"
    );
    node.stop().await;
}

async fn malformed_requests_get_clear_json_errors(db: Db) {
    let Some(node) = TestNode::start(db, |c| c.media.max_upload_bytes = 300_000).await else {
        return;
    };
    let c = node.client();
    let (thread, _) = new_thread(&node, &c, "t", "op").await;
    let url = node.at(&format!("/api/v1/thread/{thread}/new"));

    let res = c
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"body\":\"hi\"}")
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("multipart"), "{v}");

    let res = c
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");

    // Its own client: the server answers 413 and closes the connection while
    // the body is still being sent, and a pooled connection would carry that
    // broken pipe into the next request.
    let res = node
        .client()
        .post(&url)
        .multipart(form(
            &[("body", "big")],
            Some(("big.png", vec![0u8; 2_000_000])),
        ))
        .send()
        .await;
    // The server may close the connection while the client is still sending.
    if let Ok(res) = res {
        let (status, v) = json(res).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
        assert!(v["error"].as_str().unwrap().contains("larger than"), "{v}");
    }
    let res = c.get(node.at("/api/v1/nothing/here")).send().await.unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(v["error"].is_string());
    assert_eq!(
        thread_json(&node, thread).await.len(),
        1,
        "nothing was stored"
    );
    assert_eq!(
        node.blob_files(),
        2,
        "only the opening post's image and thumbnail"
    );
    node.stop().await;
}

both_backends!(
    malformed_requests_get_clear_json_errors,
    thread_with_image_round_trips,
    a_thread_needs_a_file_and_rules_hold,
    bad_uploads_are_refused_and_leave_nothing,
    markup_quotes_and_replies,
    bump_rules,
    retried_posts_are_stored_once,
    gets_carry_etags_and_change_nothing,
    full_boards_archive_the_least_recently_bumped,
    a_crashed_thread_actor_recovers_from_the_store,
    idle_entities_passivate_and_come_back,
    many_concurrent_replies_keep_one_order,
    a_burst_of_replies_bumps_as_if_one_at_a_time,
);
