//! Anti-abuse as an attacker and an unlucky user meet it: retries that are
//! always safe, a repeated-text rule that punctuation does not get around,
//! addresses keyed as the clients they are. A real node on a socket, SQLite
//! and PostgreSQL.

mod common;

use common::{eventually, form, json, png, Db, TestNode};
use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

both_backends!(
    a_retry_gets_the_original_outcome_never_a_flood_penalty,
    a_refused_post_does_not_count_towards_flood_limits,
    keys_are_scoped_to_their_sender,
    punctuation_and_invisible_characters_make_no_new_text,
    on_a_dual_stack_listener_each_ipv4_client_is_itself,
    a_typed_name_cannot_pass_for_a_tripcode,
    password_guessing_is_throttled_per_account_and_per_address,
    registrations_and_reports_are_bounded_per_address,
    live_subscriptions_are_bounded,
    volunteers_see_only_their_boards_bans_and_log,
    pages_and_json_carry_a_strict_policy,
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

async fn thread_html(node: &TestNode, thread: i64) -> String {
    let res = node
        .client()
        .get(node.at(&format!("/threads/{thread}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

async fn a_typed_name_cannot_pass_for_a_tripcode(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let thread = new_thread(&node, &node.client(), "op").await;
    let named = |name: &'static str, ip: &'static str| {
        let c = node.client_from(ip);
        let url = node.at(&format!("/api/v1/thread/{thread}/new"));
        async move {
            let res = c
                .post(url)
                .multipart(form(&[("body", "hello"), ("name", name)], None))
                .send()
                .await
                .unwrap();
            let (s, v) = json(res).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_i64().unwrap()
        }
    };
    let real = named("Bob#mysecret", "127.0.0.50").await;
    let html = thread_html(&node, thread).await;
    let trip = {
        let start = html
            .find("class=\"tripcode\"")
            .expect("the tripcode element");
        let rest = &html[start..];
        let text = &rest[rest.find('>').unwrap() + 1..];
        text[..text.find('<').unwrap()].to_string()
    };
    assert!(trip.starts_with('!') && trip.len() == 11, "{trip:?}");
    // Typing the same text as a name shows no tripcode, and not the same bytes.
    let forged_name: &'static str = Box::leak(format!("Bob {trip}").into_boxed_str());
    let forged = named(forged_name, "127.0.0.51").await;
    let html = thread_html(&node, thread).await;
    assert_eq!(
        html.matches("class=\"tripcode\"").count(),
        1,
        "only the real one"
    );
    let post_html = |id: i64| {
        let start = html.find(&format!("id=\"{id}\"")).expect("the post");
        let end = html[start..]
            .find("<blockquote")
            .map(|e| start + e)
            .unwrap_or(html.len());
        html[start..end].to_string()
    };
    assert!(post_html(real).contains(&trip));
    assert!(!post_html(forged).contains(&trip), "{}", post_html(forged));
    node.stop().await;
}

async fn create_slip(node: &TestNode, name: &str, password: &str) {
    let hash = wani_node::http::auth::hash_password(password.into())
        .await
        .expect("hash");
    node.state
        .store
        .create_slip(name, &hash, false, false)
        .await
        .expect("create slip");
}

async fn login(node: &TestNode, ip: &str, name: &str, password: &str) -> reqwest::Response {
    node.client_from(ip)
        .post(node.at("/slip/login"))
        .form(&[("name", name), ("password", password)])
        .send()
        .await
        .expect("login")
}

async fn password_guessing_is_throttled_per_account_and_per_address(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.abuse.login_free_failures = 3;
        c.abuse.login_backoff_max_secs = 60;
    })
    .await
    else {
        return;
    };
    create_slip(&node, "kana", "the right password").await;
    for _ in 0..3 {
        let res = login(&node, "127.0.0.60", "kana", "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The fourth wrong password is taken, then the account waits.
    assert_eq!(
        login(&node, "127.0.0.60", "kana", "guess").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = login(&node, "127.0.0.61", "kana", "guess again").await;
    assert_eq!(
        res.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "another address, same account"
    );
    assert!(res.headers().contains_key(RETRY_AFTER));
    // Basic auth is the same door.
    let res = node
        .client_from("127.0.0.62")
        .delete(node.at("/api/v1/thread/post/1"))
        .header(AUTHORIZATION, "Basic a2FuYTpndWVzcw==") // kana:guess
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The right password works again once the wait is over.
    eventually("the backoff to pass", Duration::from_secs(5), || async {
        let res = login(&node, "127.0.0.63", "kana", "the right password").await;
        (res.status() == StatusCode::SEE_OTHER).then_some(())
    })
    .await;

    // One address guessing many names is held back too.
    for i in 0..4 {
        let res = login(&node, "127.0.0.64", &format!("nobody{i}"), "x").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = login(&node, "127.0.0.64", "nobody9", "x").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);

    // An unknown name costs what a wrong password costs: the answer does
    // not tell which names exist. Compared as the sum of a few attempts each,
    // interleaved; an unknown name answered without hashing is 50x faster.
    let (mut known, mut unknown) = (Duration::ZERO, Duration::ZERO);
    for i in 0..3 {
        let t = std::time::Instant::now();
        login(&node, &format!("127.0.1.{i}"), "kana", "wrong").await;
        known += t.elapsed();
        let t = std::time::Instant::now();
        login(
            &node,
            &format!("127.0.2.{i}"),
            &format!("ghost{i}"),
            "wrong",
        )
        .await;
        unknown += t.elapsed();
    }
    assert!(
        unknown * 4 > known,
        "an unknown name took {unknown:?}, a known one {known:?}"
    );
    node.stop().await;
}

async fn registrations_and_reports_are_bounded_per_address(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.abuse.registrations_per_hour = 2;
        c.abuse.reports_per_hour = 3;
    })
    .await
    else {
        return;
    };
    let register = |ip: &'static str, name: String| {
        let c = node.client_from(ip);
        let url = node.at("/slip/register");
        async move {
            c.post(url)
                .form(&[
                    ("name", name.as_str()),
                    ("password", "long enough password"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    for i in 0..2 {
        let res = register("127.0.0.70", format!("user{i}")).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
    }
    let res = register("127.0.0.70", "user2".into()).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key(RETRY_AFTER));
    assert!(res.text().await.unwrap().contains("wait"));
    let res = register("127.0.0.71", "user3".into()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "another address");
    let res = register("127.0.0.72", "Bob !3493f5f6c0".into()).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a name that passes for a tripcode"
    );

    let thread = new_thread(&node, &node.client(), "op").await;
    let (_, v) = reply(&node, &node.client(), thread, "reported", None).await;
    let post = v["id"].as_i64().unwrap();
    let report = |ip: &'static str| {
        let c = node.client_from(ip);
        let url = node.at(&format!("/report/{post}"));
        async move {
            c.post(url)
                .form(&[("reason", "spam")])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(report("127.0.0.73").await, StatusCode::OK);
    }
    assert_eq!(report("127.0.0.73").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        report("127.0.0.74").await,
        StatusCode::OK,
        "another address"
    );
    node.stop().await;
}

async fn live_subscriptions_are_bounded(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let (mut live, client_id) = common::sse::Live::open(&node.at("/api/v1/live"), None).await;
    let subscribe = |threads: Vec<i64>| {
        let c = node.client();
        let url = node.at("/api/v1/live");
        let body = serde_json::json!({"client-id": client_id, "subscribe": {"thread": threads}});
        async move { c.post(url).json(&body).send().await.unwrap() }
    };
    let res = subscribe((1..=500).collect()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = subscribe((501..=1000).collect()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = subscribe(vec![1001]).await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "past the limit"
    );
    let res = subscribe((1..=2000).collect()).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A body of millions of ids is refused before it is read, let alone
    // parsed: the answer comes while most of the 16 MB was never sent.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = node.url.trim_start_matches("http://").to_string();
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /api/v1/live HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
             content-length: 16000000\r\n\r\n{{\"client-id\":\"{client_id}\",\"subscribe\":{{\"thread\":["
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let _ = tcp.write_all("1,".repeat(35_000).as_bytes()).await;
        let mut answer = vec![0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut answer))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    }
    // The query string is bounded alike.
    let many: Vec<String> = (1..=1500).map(|i| i.to_string()).collect();
    let res = node
        .client()
        .get(node.at(&format!("/api/v1/live?thread={}", many.join(","))))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The stream subscribed within the limit still works.
    let thread = new_thread(&node, &node.client(), "watched").await;
    assert!(thread <= 1000);
    reply(&node, &node.client(), thread, "seen live", None).await;
    let e = tokio::time::timeout(Duration::from_secs(10), live.next_for(thread))
        .await
        .expect("the event within 10 s");
    assert_eq!(e.json()["thread"], thread, "{}", e.event);
    node.stop().await;
}

async fn volunteers_see_only_their_boards_bans_and_log(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.bootstrap.boards.push(wani_store::BoardSettings {
            name: "g".into(),
            title: "Other".into(),
            ..Default::default()
        });
    })
    .await
    else {
        return;
    };
    let store = &node.state.store;
    let boards = node.state.boards().await.unwrap();
    let id_of = |name: &str| boards.iter().find(|b| b.name == name).unwrap().id;
    let (b, g) = (id_of("b"), id_of("g"));
    create_slip(&node, "vol", "volunteer password").await;
    let (slip, _) = store.slip_by_name("vol").await.unwrap().unwrap();
    store
        .set_slip_roles(slip.id, false, false, &[b])
        .await
        .unwrap();
    for (cidr, board) in [
        ("192.0.2.5/32", Some(b)),
        ("203.0.113.77/32", Some(g)),
        ("198.51.100.9/32", None),
    ] {
        store
            .create_ban(wani_store::Ban {
                id: 0,
                cidr: cidr.into(),
                board,
                reason: "spam".into(),
                created: 0,
                expires: None,
                slip: None,
                post: None,
            })
            .await
            .unwrap();
        store
            .log_mod_action(&wani_store::ModLogEntry {
                id: 0,
                at: 0,
                slip: None,
                slip_name: "admin".into(),
                action: "ban".into(),
                board,
                target: format!("poster ({cidr})"),
                reason: "spam".into(),
            })
            .await
            .unwrap();
    }
    node.state.bans_changed().await.unwrap();

    let c = node.client_from("127.0.0.80");
    let res = c
        .post(node.at("/slip/login"))
        .form(&[("name", "vol"), ("password", "volunteer password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    for page in ["/mod/bans", "/mod/log"] {
        let res = c
            .get(node.at(page))
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{page}");
        let html = res.text().await.unwrap();
        assert!(html.contains("192.0.2.5"), "{page}: their own board's");
        assert!(!html.contains("203.0.113.77"), "{page}: another board's");
        assert!(!html.contains("198.51.100.9"), "{page}: a site-wide one");
    }
    node.stop().await;
}

async fn pages_and_json_carry_a_strict_policy(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let thread = new_thread(&node, &node.client(), "op").await;
    for path in [
        "/".to_string(),
        format!("/threads/{thread}"),
        "/api/v1/boards".to_string(),
        format!("/api/v1/thread/{thread}"),
        "/no/such/page".to_string(),
    ] {
        let res = node.client().get(node.at(&path)).send().await.unwrap();
        let h = res.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no Content-Security-Policy"))
            .to_str()
            .unwrap();
        for part in [
            "script-src 'self'",
            "frame-ancestors 'none'",
            "default-src 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-eval") && !csp.contains("script-src 'self' 'unsafe-inline'"));
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
    }
    node.stop().await;
}
