//! Accounts, moderation and anti-abuse end to end: a real node on a socket,
//! real database (SQLite and PostgreSQL), requests over HTTP.

mod common;

use common::{eventually, form, json, png, Db, TestNode};
use reqwest::header::{COOKIE, ORIGIN, RETRY_AFTER, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

both_backends!(
    mod_actions_apply_everywhere_and_are_logged,
    bans_block_posting_with_their_reason_and_let_users_read,
    flood_control_answers_429_and_recovers,
    captcha_refuses_missing_wrong_and_reused_answers,
    non_mods_get_403_on_every_mod_route,
    cross_site_and_tokenless_posts_are_refused,
    reports_fold_and_mods_dismiss_them,
    sessions_rotate_and_slips_sign_posts,
);

const PASSWORD: &str = "correct horse battery";

/// Creates a slip straight in the store (as `wani slip create` does).
async fn slip(node: &TestNode, name: &str, admin: bool, moderator: bool) {
    let hash = wani_node::http::auth::hash_password(PASSWORD.into())
        .await
        .expect("hash");
    node.state
        .store
        .create_slip(name, &hash, admin, moderator)
        .await
        .expect("create slip");
}

/// A logged-in browser: its session cookie and the session's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    Some(&s[i..i + s[i..].find(end)?])
}

async fn login(node: &TestNode, name: &str) -> Session {
    let c = node.client();
    let res = c
        .post(node.at("/slip/login"))
        .form(&[("name", name), ("password", PASSWORD)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "login of {name}");
    let set = res
        .headers()
        .get(SET_COOKIE)
        .expect("session cookie")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = c
        .get(node.at("/slip"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = between(&page, "name=\"csrf\" value=\"", "\"")
        .expect("csrf token on /slip")
        .to_string();
    Session { cookie, csrf }
}

/// POSTs a mod form as `s` (with its CSRF token unless `csrf` is None).
async fn mod_post(
    node: &TestNode,
    s: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut f: Vec<(&str, &str)> = vec![("csrf", &s.csrf)];
    f.extend_from_slice(fields);
    node.client()
        .post(node.at(path))
        .header(COOKIE, &s.cookie)
        .form(&f)
        .send()
        .await
        .expect("mod post")
}

async fn new_thread(node: &TestNode, c: &reqwest::Client, board: &str, body: &str) -> (i64, i64) {
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", board), ("subject", "s"), ("body", body)],
            Some(("a.png", png(32, 32, false))),
        ))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (v["id"].as_i64().unwrap(), v["post"]["id"].as_i64().unwrap())
}

async fn reply(
    node: &TestNode,
    c: &reqwest::Client,
    thread: i64,
    body: &str,
    file: bool,
) -> (StatusCode, Value) {
    let res = c
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(
            &[("body", body)],
            file.then(|| ("r.png", png(40, 20, true))),
        ))
        .send()
        .await
        .expect("send");
    json(res).await
}

async fn get_text(node: &TestNode, path: &str) -> (StatusCode, String) {
    let res = node.client().get(node.at(path)).send().await.expect("get");
    (res.status(), res.text().await.unwrap())
}

async fn catalog(node: &TestNode, board: &str) -> Vec<Value> {
    let (_, v) = json(
        node.client()
            .get(node.at(&format!("/api/v1/board/{board}/catalog")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    v.as_array().unwrap().clone()
}

async fn mod_actions_apply_everywhere_and_are_logged(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    slip(&node, "root", true, false).await;
    let admin = login(&node, "root").await;
    let c = node.client();
    let (thread, op) = new_thread(&node, &c, "b", "first").await;
    let (_, r1) = reply(&node, &c, thread, "with a file", true).await;
    let victim = r1["id"].as_i64().unwrap();
    let (_, r2) = reply(&node, &c, thread, &format!(">>{victim} quoted"), false).await;
    let quoting = r2["id"].as_i64().unwrap();
    let blobs_before = node.blob_files();

    // Warm every cache first, so the test proves they are invalidated.
    let (_, page) = get_text(&node, &format!("/threads/{thread}")).await;
    assert!(page.contains(&format!("id=\"{victim}\"")));
    assert_eq!(catalog(&node, "b").await[0]["num_replies"], 2);

    let res = mod_post(
        &node,
        &admin,
        &format!("/mod/post/{victim}/delete"),
        &[("reason", "off topic")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (_, page) = get_text(&node, &format!("/threads/{thread}")).await;
    assert!(
        !page.contains(&format!("id=\"{victim}\"")),
        "gone from the thread page"
    );
    let (_, posts) = json(
        c.get(node.at(&format!("/api/v1/thread/{thread}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ids: Vec<i64> = posts
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![op, quoting], "gone from the thread JSON");
    assert_eq!(
        catalog(&node, "b").await[0]["num_replies"],
        1,
        "catalog counts"
    );
    let (status, _) = get_text(&node, &format!("/api/v1/post/{victim}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let quoting_html = posts[1]["body_html"].as_str().unwrap();
    assert!(
        !quoting_html.contains("post-reply"),
        "the quote is dead now: {quoting_html}"
    );
    assert!(
        node.blob_files() < blobs_before,
        "the unreferenced media was deleted"
    );

    // Quoted from another thread a moment before it is deleted, a post is
    // dead to the next reply that quotes it (the node remembers where
    // recently quoted posts live, and forgets a deleted one).
    let (_, r3) = reply(&node, &c, thread, "quoted from afar", false).await;
    let far = r3["id"].as_i64().unwrap();
    let (other, _) = new_thread(&node, &c, "b", "second").await;
    let (_, before) = reply(&node, &c, other, &format!(">>{far} alive"), false).await;
    assert!(
        before["body_html"].as_str().unwrap().contains("post-reply"),
        "a live quote: {before}"
    );
    let res = mod_post(
        &node,
        &admin,
        &format!("/mod/post/{far}/delete"),
        &[("reason", "gone")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, after) = reply(&node, &c, other, &format!(">>{far} dead"), false).await;
    assert!(
        !after["body_html"].as_str().unwrap().contains("post-reply"),
        "a dead quote: {after}"
    );

    // Deleting a file keeps the post, marked, and frees the blob.
    // (A file of its own: a shared one stays while other posts hold it.)
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("subject", "s"), ("body", "a file to lose")],
            Some(("lose.png", png(33, 31, false))),
        ))
        .send()
        .await
        .unwrap();
    let (_, v) = json(res).await;
    let (filed, filed_op) = (v["id"].as_i64().unwrap(), v["post"]["id"].as_i64().unwrap());
    let blobs_before = node.blob_files();
    let res = mod_post(
        &node,
        &admin,
        &format!("/mod/post/{filed_op}/file/delete"),
        &[],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, page) = get_text(&node, &format!("/threads/{filed}")).await;
    assert!(page.contains("File deleted."), "the page says so");
    let (_, v) = json(
        c.get(node.at(&format!("/api/v1/post/{filed_op}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(v["media"].is_null(), "{v}");
    assert!(
        node.blob_files() < blobs_before,
        "the file's blobs are gone"
    );
    let res = mod_post(
        &node,
        &admin,
        &format!("/mod/post/{filed_op}/file/delete"),
        &[],
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no file left to delete"
    );

    // Sticky, lock, move: through the thread actor, seen by readers at once.
    let (older, _) = new_thread(&node, &c, "b", "older").await;
    let (newer, _) = new_thread(&node, &c, "b", "newer").await;
    assert_eq!(catalog(&node, "b").await[0]["id"], newer);
    let res = mod_post(
        &node,
        &admin,
        &format!("/mod/thread/{older}/sticky"),
        &[("on", "true")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        catalog(&node, "b").await[0]["id"],
        older,
        "stickies sort first"
    );
    mod_post(
        &node,
        &admin,
        &format!("/mod/thread/{older}/lock"),
        &[("on", "true")],
    )
    .await;
    let (status, v) = reply(&node, &c, older, "let me in", false).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert!(v["error"].as_str().unwrap().contains("locked"));
    let res = c
        .post(node.at(&format!("/api/v1/thread/{older}/new")))
        .basic_auth("root", Some(PASSWORD))
        .multipart(form(&[("body", "mods may")], None))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["capcode"], "Admin");
    assert_eq!(v["slip"], "root");

    // Boards are created from the web UI; threads move between them.
    let res = mod_post(
        &node,
        &admin,
        "/mod/boards",
        &[("name", "g"), ("title", "Tech"), ("max_threads", "10")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = mod_post(
        &node,
        &admin,
        &format!("/mod/thread/{newer}/move"),
        &[("board", "g")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(catalog(&node, "b").await.iter().all(|t| t["id"] != newer));
    assert_eq!(catalog(&node, "g").await[0]["id"], newer);

    // The JSON API: Basic auth, Maniwani's 401.
    let res = c
        .delete(node.at(&format!("/api/v1/thread/post/{quoting}")))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("Authentication failed"))
    );
    let res = c
        .delete(node.at(&format!("/api/v1/thread/post/{quoting}")))
        .basic_auth("root", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    slip(&node, "nobody", false, false).await;
    let res = c
        .delete(node.at(&format!("/api/v1/thread/post/{quoting}")))
        .basic_auth("nobody", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = c
        .delete(node.at(&format!("/api/v1/thread/post/{op}")))
        .basic_auth("root", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(
        (status, v["deleted"].as_str()),
        (StatusCode::OK, Some("thread"))
    );
    let (status, _) = get_text(&node, &format!("/api/v1/thread/{thread}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the opening post takes its thread along"
    );
    assert!(catalog(&node, "b").await.iter().all(|t| t["id"] != thread));

    let log = node
        .client()
        .get(node.at("/mod/log"))
        .header(COOKIE, &admin.cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for action in [
        "delete_post",
        "sticky",
        "lock",
        "create_board",
        "move_thread",
        "delete_thread",
    ] {
        assert!(log.contains(action), "{action} is in the mod log");
    }
    assert!(
        log.contains("off topic") && log.contains("root"),
        "who and why are logged"
    );
    node.stop().await;
}

async fn bans_block_posting_with_their_reason_and_let_users_read(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.site.trusted_proxies = vec!["127.0.0.4/32".into()];
    })
    .await
    else {
        return;
    };
    slip(&node, "mod", false, true).await;
    let moderator = login(&node, "mod").await;
    let troll = node.client_from("127.0.0.2");
    let (thread, op) = new_thread(&node, &node.client(), "b", "hello").await;
    let (_, p) = reply(&node, &troll, thread, "spam spam", false).await;
    let post = p["id"].as_i64().unwrap();

    let res = mod_post(
        &node,
        &moderator,
        &format!("/mod/post/{post}/ban"),
        &[
            ("reason", "spamming links"),
            ("hours", "24"),
            ("scope", "global"),
            ("delete", "on"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let (status, v) = reply(&node, &troll, thread, "more spam", false).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("spamming links") && msg.contains("expires"),
        "{msg}"
    );
    let (status, _) = get_text(&node, &format!("/threads/{thread}")).await;
    assert_eq!(status, StatusCode::OK, "banned users can still read");
    let res = troll
        .get(node.at(&format!("/api/v1/thread/{thread}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, posts) = json(res).await;
    assert!(
        posts.as_array().unwrap().iter().all(|p| p["id"] != post),
        "ban and delete in one action"
    );

    // A spoofed X-Forwarded-For from an untrusted peer changes nothing...
    let res = troll
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .header("x-forwarded-for", "10.9.9.9")
        .multipart(form(&[("body", "not me")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // ...while a trusted proxy's header names the client.
    let proxy = node.client_from("127.0.0.4");
    let via = |xff: &'static str| {
        proxy
            .post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .header("x-forwarded-for", xff)
            .multipart(form(&[("body", xff)], None))
            .send()
    };
    assert_eq!(
        via("127.0.0.2").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(via("10.1.1.1").await.unwrap().status(), StatusCode::CREATED);
    let (status, _) = reply(
        &node,
        &node.client_from("127.0.0.3"),
        thread,
        "innocent",
        false,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "others still post");

    // Unban: the ban list is updated at once.
    let bans = node.state.abuse.bans();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].cidr, "127.0.0.2/32");
    let res = mod_post(
        &node,
        &moderator,
        &format!("/mod/bans/{}/delete", bans[0].id),
        &[],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, v) = reply(&node, &troll, thread, "sorry", false).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let _ = op;
    node.stop().await;
}

async fn flood_control_answers_429_and_recovers(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.abuse.same_content_secs = 30;
        c.bootstrap.boards[0].reply_interval_secs = 1;
    })
    .await
    else {
        return;
    };
    let c = node.client_from("127.0.0.5");
    let (thread, _) = new_thread(&node, &node.client(), "b", "op").await;
    let (status, _) = reply(&node, &c, thread, "one", false).await;
    assert_eq!(status, StatusCode::CREATED);
    let res = c
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(&[("body", "two")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1).contains(&retry), "Retry-After {retry}");
    let (_, v) = json(res).await;
    assert!(v["error"].as_str().unwrap().contains("too fast"), "{v}");
    eventually("the interval to pass", Duration::from_secs(5), || async {
        (reply(&node, &c, thread, "two", false).await.0 == StatusCode::CREATED).then_some(())
    })
    .await;
    // The same text from another address is refused too.
    let (status, v) = reply(&node, &node.client_from("127.0.0.6"), thread, "Two", false).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(v["error"].as_str().unwrap().contains("text"));
    node.stop().await;
}

async fn captcha_refuses_missing_wrong_and_reused_answers(db: Db) {
    let Some(node) = TestNode::start(db, |c| {
        c.abuse.captcha_cooldown_secs = 0;
        c.bootstrap.boards[0].captcha_threads = true;
    })
    .await
    else {
        return;
    };
    let c = node.client();
    let post = |fields: Vec<(&'static str, String)>| {
        let mut f = reqwest::multipart::Form::new()
            .text("board", "b")
            .text("body", format!("captcha {}", rand_suffix()));
        for (k, v) in fields {
            f = f.text(k, v);
        }
        f = f.part(
            "media",
            reqwest::multipart::Part::bytes(png(8, 8, false)).file_name("x.png"),
        );
        c.post(node.at("/api/v1/thread/new")).multipart(f).send()
    };
    let (status, v) = json(post(vec![]).await.unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("captcha"));

    let new_captcha = || async {
        let (_, v) = json(c.get(node.at("/captcha")).send().await.unwrap()).await;
        let id = v["captcha_id"].as_str().unwrap().to_string();
        let img = c
            .get(node.at(v["image"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(img.headers()["content-type"], "image/png");
        assert!(img.bytes().await.unwrap().starts_with(b"\x89PNG"));
        let code = node
            .state
            .abuse
            .captcha_code(&id, wani_node::http::auth::now_ms())
            .expect("pending captcha");
        (id, code)
    };
    let (id, _) = new_captcha().await;
    let (status, v) = json(
        post(vec![
            ("captcha_id", id.clone()),
            ("captcha", "WRONG1".into()),
        ])
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(v["error"].as_str().unwrap().contains("wrong"));

    let (id, code) = new_captcha().await;
    let (status, v) = json(
        post(vec![("captcha_id", id.clone()), ("captcha", code.clone())])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = json(
        post(vec![("captcha_id", id), ("captcha", code)])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a reused answer: {v}");
    assert!(v["error"].as_str().unwrap().contains("already used"));

    // The HTML form: the image sets a cookie with the captcha's id.
    let (_, page) = get_text(&node, "/boards/b").await;
    assert!(page.contains("src=\"/captcha/new.png\""));
    let img = c.get(node.at("/captcha/new.png")).send().await.unwrap();
    let cookie = img.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let id = cookie.trim_start_matches("wani_captcha=").to_string();
    let code = node
        .state
        .abuse
        .captcha_code(&id, wani_node::http::auth::now_ms())
        .unwrap();
    let res = c
        .post(node.at("/boards/b/new"))
        .header(COOKIE, &cookie)
        .multipart(form(
            &[("body", "from the form"), ("captcha", &code)],
            Some(("f.png", png(9, 9, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    node.stop().await;
}

fn rand_suffix() -> u64 {
    rand::random()
}

async fn non_mods_get_403_on_every_mod_route(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    slip(&node, "plain", false, false).await;
    let user = login(&node, "plain").await;
    let (thread, op) = new_thread(&node, &node.client(), "b", "x").await;
    let gets = [
        "/mod".to_string(),
        "/mod/log".into(),
        "/mod/reports".into(),
        "/mod/bans".into(),
        "/mod/boards".into(),
        format!("/mod/thread/{thread}"),
    ];
    let posts = [
        format!("/mod/post/{op}/delete"),
        format!("/mod/post/{op}/spoiler"),
        format!("/mod/post/{op}/file/delete"),
        format!("/mod/post/{op}/ban"),
        format!("/mod/thread/{thread}/delete"),
        format!("/mod/thread/{thread}/sticky"),
        format!("/mod/thread/{thread}/lock"),
        format!("/mod/thread/{thread}/move"),
        "/mod/reports/1/dismiss".into(),
        "/mod/bans".into(),
        "/mod/bans/1/delete".into(),
        "/mod/boards".into(),
        "/mod/boards/1".into(),
    ];
    for cookie in [None, Some(user.cookie.as_str())] {
        for path in &gets {
            let mut req = node.client().get(node.at(path));
            if let Some(c) = cookie {
                req = req.header(COOKIE, c);
            }
            assert_eq!(
                req.send().await.unwrap().status(),
                StatusCode::FORBIDDEN,
                "GET {path}"
            );
        }
        for path in &posts {
            let mut req = node.client().post(node.at(path)).form(&[
                ("csrf", user.csrf.as_str()),
                ("reason", "x"),
                ("board", "1"),
            ]);
            if let Some(c) = cookie {
                req = req.header(COOKIE, c);
            }
            assert_eq!(
                req.send().await.unwrap().status(),
                StatusCode::FORBIDDEN,
                "POST {path}"
            );
        }
    }
    let (status, _) = get_text(&node, &format!("/api/v1/thread/{thread}")).await;
    assert_eq!(status, StatusCode::OK, "nothing was deleted");
    node.stop().await;
}

async fn cross_site_and_tokenless_posts_are_refused(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    slip(&node, "mod", false, true).await;
    let moderator = login(&node, "mod").await;
    let c = node.client();
    let (thread, op) = new_thread(&node, &c, "b", "x").await;
    let (_, r) = reply(&node, &c, thread, "target", false).await;
    let target = r["id"].as_i64().unwrap();

    let res = c
        .post(node.at(&format!("/threads/{thread}/new")))
        .header(ORIGIN, "https://evil.example")
        .multipart(form(&[("body", "forged")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a cross-site form post"
    );
    let res = c
        .post(node.at(&format!("/mod/post/{target}/delete")))
        .header(ORIGIN, "https://evil.example")
        .header(COOKIE, &moderator.cookie)
        .form(&[("csrf", moderator.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a cross-site mod action"
    );
    for token in [None, Some("forged")] {
        let mut f = vec![("reason", "x")];
        if let Some(t) = token {
            f.push(("csrf", t));
        }
        let res = c
            .post(node.at(&format!("/mod/post/{target}/delete")))
            .header(COOKIE, &moderator.cookie)
            .form(&f)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "mod action with token {token:?}"
        );
    }
    let (_, posts) = json(
        c.get(node.at(&format!("/api/v1/thread/{thread}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        posts.as_array().unwrap().len(),
        2,
        "nothing was posted or deleted"
    );

    // The same forms from the site itself go through.
    let res = c
        .post(node.at(&format!("/threads/{thread}/new")))
        .header(ORIGIN, node.url.as_str())
        .multipart(form(&[("body", "same origin")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = c
        .post(node.at(&format!("/mod/post/{target}/delete")))
        .header(ORIGIN, node.url.as_str())
        .header(COOKIE, &moderator.cookie)
        .form(&[("csrf", moderator.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let _ = op;
    node.stop().await;
}

async fn reports_fold_and_mods_dismiss_them(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    slip(&node, "mod", false, true).await;
    let moderator = login(&node, "mod").await;
    let (thread, _) = new_thread(&node, &node.client(), "b", "x").await;
    let (_, r) = reply(&node, &node.client(), thread, "rude", false).await;
    let post = r["id"].as_i64().unwrap();
    for ip in ["127.0.0.7", "127.0.0.8"] {
        let res = node
            .client_from(ip)
            .post(node.at(&format!("/report/{post}")))
            .form(&[("reason", "rude words")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let queue = |q: &'static str| {
        node.client()
            .get(node.at(&format!("/mod/reports{q}")))
            .header(COOKIE, &moderator.cookie)
            .send()
    };
    let page = queue("?board=1").await.unwrap().text().await.unwrap();
    assert!(
        page.contains("reported 2 times"),
        "duplicates fold together"
    );
    assert!(page.contains("rude words"));
    let reports = node.state.store.reports(None).await.unwrap();
    assert_eq!(reports.len(), 1);
    let res = mod_post(
        &node,
        &moderator,
        &format!("/mod/reports/{}/dismiss", reports[0].id),
        &[],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = queue("").await.unwrap().text().await.unwrap();
    assert!(page.contains("No open reports"));
    let log = node.state.store.mod_log(10).await.unwrap();
    assert_eq!(log[0].action, "dismiss_report");
    assert_eq!(log[0].slip_name, "mod");
    node.stop().await;
}

async fn sessions_rotate_and_slips_sign_posts(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    slip(&node, "kana", false, true).await;
    let first = login(&node, "kana").await;
    // Logging in again with the old cookie rotates it: the old one is void.
    let res = node
        .client()
        .post(node.at("/slip/login"))
        .header(COOKIE, &first.cookie)
        .form(&[("name", "kana"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let second = res.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(second, first.cookie);
    let status = |cookie: String| {
        let c = node.client();
        let url = node.at("/mod");
        async move {
            c.get(url)
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(first.cookie.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(status(second.clone()).await, StatusCode::OK);
    let res = node
        .client()
        .post(node.at("/slip/login"))
        .form(&[("name", "kana"), ("password", "nope nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // Registration makes a plain slip; names are unique.
    let register = |name: &'static str| {
        node.client()
            .post(node.at("/slip/register"))
            .form(&[("name", name), ("password", PASSWORD)])
            .send()
    };
    assert_eq!(
        register("newbie").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        register("newbie").await.unwrap().status(),
        StatusCode::CONFLICT
    );

    // A post from a logged-in slip shows its name and badge; a tripcode is stable.
    let (thread, _) = new_thread(&node, &node.client(), "b", "x").await;
    let res = node
        .client()
        .post(node.at(&format!("/threads/{thread}/new")))
        .header(COOKIE, &second)
        .multipart(form(&[("body", "signed")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let trip = |body: &'static str| {
        node.client()
            .post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .multipart(form(&[("body", body), ("name", "anon#s3cret")], None))
            .send()
    };
    let (_, a) = json(trip("one").await.unwrap()).await;
    let (_, b) = json(trip("two").await.unwrap()).await;
    let name = a["slip"].as_str().unwrap();
    assert!(
        name.starts_with("anon !") && !name.contains("s3cret"),
        "{name}"
    );
    assert_eq!(a["slip"], b["slip"], "a tripcode is stable");
    assert!(a["capcode"].is_null());
    let (_, posts) = json(
        node.client()
            .get(node.at(&format!("/api/v1/thread/{thread}")))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(posts[1]["slip"], "kana");
    assert_eq!(posts[1]["capcode"], "Mod");
    let (_, page) = get_text(&node, &format!("/threads/{thread}")).await;
    assert!(page.contains("<span class=\"name\">kana</span>") && page.contains("## Mod"));

    // Logout needs the token and ends the session.
    let session = Session {
        cookie: second.clone(),
        csrf: login_csrf(&node, &second).await,
    };
    let res = mod_post(&node, &session, "/slip/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(second).await, StatusCode::FORBIDDEN);
    node.stop().await;
}

async fn login_csrf(node: &TestNode, cookie: &str) -> String {
    let page = node
        .client()
        .get(node.at("/slip"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    between(&page, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_string()
}
