//! The captcha and the proof of work over HTTP, on a real node: what a
//! flood of requests can and cannot do to other people's captchas, what
//! one solved captcha is worth, and a board asking for work done by the
//! page's own script. SQLite only: no captcha state is in the database.

mod common;

use common::{png, Db, TestNode};
use futures::StreamExt;
use reqwest::header::RETRY_AFTER;
use reqwest::StatusCode;
use serde_json::Value;
use std::process::Command;
use wani_node::http::auth::now_ms;

async fn json(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let body = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}")),
    )
}

/// Posts a new thread on `board` with extra form `fields`.
async fn new_thread(
    node: &TestNode,
    c: &reqwest::Client,
    board: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut f = reqwest::multipart::Form::new()
        .text("board", board.to_string())
        .text("body", format!("hello {}", rand::random::<u64>()));
    for (k, v) in fields {
        f = f.text(k.to_string(), v.to_string());
    }
    f = f.part(
        "media",
        reqwest::multipart::Part::bytes(png(8, 8, false)).file_name("x.png"),
    );
    json(
        c.post(node.at("/api/v1/thread/new"))
            .multipart(f)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A fresh captcha for `c`: its id and (read from the node) its answer.
async fn captcha(node: &TestNode, c: &reqwest::Client) -> (String, String) {
    let (status, v) = json(c.get(node.at("/captcha")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let id = v["captcha_id"].as_str().unwrap().to_string();
    let code = node.state.abuse.captcha_code(&id, now_ms()).unwrap();
    (id, code)
}

fn second_board(c: &mut wani_node::Config) {
    c.bootstrap.boards[0].captcha_threads = true;
    let mut g = c.bootstrap.boards[0].clone();
    g.name = "g".into();
    g.title = "Other".into();
    c.bootstrap.boards.push(g);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_captchas_is_refused_and_evicts_nobody() {
    let node = TestNode::start(Db::Sqlite, |c| {
        second_board(c);
        // Every post needs its own captcha, so reuse shows.
        c.captcha.pass_posts = 0;
    })
    .await
    .unwrap();
    let user = node.client();
    let (id, code) = captcha(&node, &user).await;

    // One address asks 20,500 times (once enough to flush the old store).
    let flood = node.client_from("127.0.0.2");
    let statuses: Vec<(StatusCode, Option<u64>)> = futures::stream::iter(0..20_500)
        .map(|_| {
            let (flood, url) = (flood.clone(), node.at("/captcha"));
            async move {
                let res = flood.get(url).send().await.unwrap();
                let retry = res
                    .headers()
                    .get(RETRY_AFTER)
                    .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
                (res.status(), retry)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let issued = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    let refused = statuses
        .iter()
        .filter(|(s, r)| *s == StatusCode::TOO_MANY_REQUESTS && r.is_some_and(|r| r >= 1))
        .count();
    println!(
        "one address asking 20,500 captchas: {issued} issued, {refused} refused with Retry-After"
    );
    let cfg = &node.state.config.captcha;
    assert!(
        issued >= cfg.burst as usize && issued <= cfg.burst as usize + 5,
        "the burst and little more: {issued}"
    );
    assert_eq!(
        issued + refused,
        20_500,
        "every other request is a 429 with Retry-After"
    );
    // The pictures count too, and so does the form's captcha.
    let res = flood.get(node.at("/captcha/new.png")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Many addresses, each up to its own bound.
    for i in 0..50 {
        let c = node.client_from(&format!("127.0.2.{}", i + 1));
        for _ in 0..cfg.burst {
            assert_eq!(
                c.get(node.at("/captcha")).send().await.unwrap().status(),
                StatusCode::OK
            );
        }
    }
    // The user's captcha is as good as before.
    let (status, v) = new_thread(
        &node,
        &user,
        "b",
        &[("captcha_id", &id), ("captcha", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = new_thread(
        &node,
        &user,
        "b",
        &[("captcha_id", &id), ("captcha", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "still single use: {v}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_solved_captcha_is_worth_a_few_posts_on_its_board_only() {
    let node = TestNode::start(Db::Sqlite, |c| {
        second_board(c);
        c.captcha.pass_posts = 2;
    })
    .await
    .unwrap();
    let c = node.client();
    let (id, code) = captcha(&node, &c).await;
    let (status, v) = new_thread(&node, &c, "b", &[("captcha_id", &id), ("captcha", &code)]).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    for _ in 0..2 {
        let (status, v) = new_thread(&node, &c, "b", &[]).await;
        assert_eq!(status, StatusCode::CREATED, "within the pass: {v}");
    }
    let (status, v) = new_thread(&node, &c, "b", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the pass is used up: {v}");
    assert!(v["error"].as_str().unwrap().contains("captcha"), "{v}");
    let (status, v) = new_thread(&node, &c, "g", &[]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no pass on another board: {v}"
    );
    let (status, v) = new_thread(&node, &node.client_from("127.0.0.9"), "b", &[]).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "no pass for another address: {v}"
    );
    node.stop().await;
}

/// Solves a challenge with the functions of `static/wani.js` run by
/// Node.js, so the test checks the script the browser runs; `None`
/// without Node.js.
fn solve_with_wani_js(challenge: &str, bits: u8) -> Option<String> {
    let script = wani_node::pages::WANI_JS;
    let begin = script.find("// ---- proof of work (pow:begin)")?;
    let end = script.find("// ---- (pow:end) ----")?;
    let program = format!(
        "{}\nsolveWork({challenge:?}, {bits}, function (n) {{ console.log(n); }});\n",
        &script[begin..end]
    );
    let out = Command::new("node").arg("-e").arg(program).output().ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pow_board_takes_posts_with_fresh_work_from_the_page_script() {
    let node = TestNode::start(Db::Sqlite, |c| {
        second_board(c);
        c.bootstrap.boards[0].captcha_threads = false;
        c.captcha.pow_bits.insert("b".into(), 14);
    })
    .await
    .unwrap();
    let c = node.client();
    let (_, page) = json_or_text(&c, &node, "/boards/b").await;
    assert!(
        page.contains("data-board=\"b\""),
        "the form names its board"
    );

    let (status, v) = new_thread(&node, &c, "b", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("proof of work"),
        "{v}"
    );

    let (_, none) = json(c.get(node.at("/captcha/pow?board=g")).send().await.unwrap()).await;
    assert_eq!(none["bits"], 0, "{none}");
    let challenge = || async {
        let (status, v) = json(c.get(node.at("/captcha/pow?board=b")).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["bits"], 14);
        v["challenge"].as_str().unwrap().to_string()
    };
    let ch = challenge().await;
    let nonce = match solve_with_wani_js(&ch, 14) {
        Some(n) => n,
        None => {
            println!(
                "Node.js not found: the page script's SHA-256 is not exercised (install nodejs)"
            );
            (0u64..)
                .map(|n| n.to_string())
                .find(|n| wani_node::abuse::captcha::token::work_bits(&ch, n) >= 14)
                .unwrap()
        }
    };
    assert!(wani_node::abuse::captcha::token::work_bits(&ch, &nonce) >= 14);
    let work = [
        ("pow_challenge", ch.as_str()),
        ("pow_nonce", nonce.as_str()),
    ];
    let (status, v) = new_thread(&node, &c, "b", &work).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = new_thread(&node, &c, "b", &work).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "work is spent once: {v}");
    assert!(v["error"].as_str().unwrap().contains("already used"), "{v}");

    let ch = challenge().await;
    let lazy = (0u64..)
        .map(|n| n.to_string())
        .find(|n| wani_node::abuse::captcha::token::work_bits(&ch, n) < 14)
        .unwrap();
    let (status, v) = new_thread(
        &node,
        &c,
        "b",
        &[("pow_challenge", &ch), ("pow_nonce", &lazy)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not enough work: {v}");
    assert!(v["error"].as_str().unwrap().contains("not valid"), "{v}");
    node.stop().await;
}

async fn json_or_text(c: &reqwest::Client, node: &TestNode, path: &str) -> (StatusCode, String) {
    let res = c.get(node.at(path)).send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}
