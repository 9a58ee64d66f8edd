//! The HTML side: every page renders, and the forms work without JavaScript.

mod common;

use common::{form, png, Db, TestNode};
use reqwest::StatusCode;

async fn page(node: &TestNode, c: &reqwest::Client, path: &str) -> String {
    let res = c.get(node.at(path)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{path}"
    );
    res.text().await.unwrap()
}

async fn forms_post_threads_and_replies(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let catalog = page(&node, &c, "/boards/b").await;
    assert!(
        catalog.contains("action=\"/boards/1/new\"")
            || catalog.contains("action=\"/boards/b/new\""),
        "new-thread form"
    );
    assert!(catalog.contains("enctype=\"multipart/form-data\""));

    let res = c
        .post(node.at("/boards/b/new"))
        .multipart(form(
            &[("subject", "From the form"), ("body", "**hi** <b>x</b>")],
            Some(("a.png", png(40, 40, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/threads/"), "{location}");

    let thread = page(&node, &c, &location).await;
    assert!(thread.contains("From the form"));
    assert!(
        thread.contains("<strong>hi</strong>") && thread.contains("&lt;b&gt;x&lt;/b&gt;"),
        "markup rendered, raw HTML escaped"
    );
    assert!(
        thread.contains(&format!("action=\"{location}/new\"")),
        "reply form"
    );
    assert!(thread.contains("/upload/thumb/"), "thumbnail shown");

    let res = c
        .post(node.at(&format!("{location}/new")))
        .multipart(form(&[("body", ">implying")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to_post = res.headers()["location"].to_str().unwrap().to_string();
    assert!(to_post.starts_with(&format!("{location}#")), "{to_post}");
    let thread = page(&node, &c, &location).await;
    assert!(
        thread.contains("greentext"),
        "the reply shows up, greentext and all"
    );

    // A refused form shows an HTML error page with the reason.
    let res = c
        .post(node.at("/boards/b/new"))
        .multipart(form(&[("body", "no file")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("A file is required to post a thread!"));

    for path in [
        "/",
        "/boards/",
        "/boards/b",
        "/boards/1",
        "/boards/rules/b",
        "/rules",
        "/faq",
        "/themes",
        "/boards/b/archive",
        &format!("{location}/gallery"),
    ] {
        let html = page(&node, &c, path).await;
        assert!(
            html.starts_with("<!doctype html>") || html.starts_with("<!DOCTYPE html>"),
            "{path}"
        );
        assert!(
            html.contains("name=\"viewport\""),
            "{path} is readable on a phone"
        );
    }
    let front = page(&node, &c, "/").await;
    assert!(
        front.contains("From the form"),
        "the front page lists the latest threads"
    );
    assert_eq!(
        c.get(node.at("/no/such/page"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(node.at("/threads/424242"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    node.stop().await;
}

async fn themes_are_remembered(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let res = c
        .post(node.at("/themes"))
        .form(&[("theme", "wildride")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("theme=wildride"), "{cookie}");
    let html = c
        .get(node.at("/boards/b"))
        .header("cookie", "theme=wildride")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("/static/themes/wildride.css"));
    let html = c
        .get(node.at("/boards/b"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("/static/themes/stock.css"));
    let css = c
        .get(node.at("/static/themes/wildride.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    let res = c
        .post(node.at("/themes"))
        .form(&[("theme", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for asset in ["/static/style.css", "/static/wani.js"] {
        assert_eq!(
            c.get(node.at(asset)).send().await.unwrap().status(),
            StatusCode::OK,
            "{asset}"
        );
    }
    node.stop().await;
}

both_backends!(
    forms_post_threads_and_replies,
    themes_are_remembered,
    catalog_excerpts_are_plain_text_with_spoilers_hidden,
    the_archive_is_paginated
);

async fn the_archive_is_paginated(db: Db) {
    let Some(node) = TestNode::start(db, |c| c.bootstrap.boards[0].max_threads = 1).await else {
        return;
    };
    let c = node.client();
    let image = png(8, 8, false);
    for i in 0..102 {
        let res = c
            .post(node.at("/api/v1/thread/new"))
            .multipart(form(
                &[
                    ("board", "b"),
                    ("subject", &format!("thread {i}")),
                    ("body", "x"),
                ],
                Some(("a.png", image.clone())),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let rows = |html: &str| html.matches("<tr><td><a href=\"/threads/").count();
    let first = page(&node, &c, "/boards/b/archive").await;
    assert_eq!(rows(&first), 100, "a page holds 100 threads");
    assert!(first.contains("thread 100"), "most recently bumped first");
    assert!(first.contains("Page 1 of 2"));
    assert!(first.contains("archive?page=2\" rel=\"next\""));
    let second = page(&node, &c, "/boards/b/archive?page=2").await;
    assert_eq!(rows(&second), 1);
    assert!(second.contains("thread 0<"));
    for (path, status) in [
        ("/boards/b/archive?page=3", StatusCode::NOT_FOUND),
        ("/boards/b/archive?page=0", StatusCode::BAD_REQUEST),
        ("/boards/b/archive?page=x", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            c.get(node.at(path)).send().await.unwrap().status(),
            status,
            "{path}"
        );
    }
    // Served with an ETag, so a reload costs a 304.
    let res = c.get(node.at("/boards/b/archive")).send().await.unwrap();
    let etag = res.headers()["etag"].clone();
    let res = c
        .get(node.at("/boards/b/archive"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    node.stop().await;
}

async fn catalog_excerpts_are_plain_text_with_spoilers_hidden(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[
                ("board", "b"),
                ("body", "The **ending**: ||the butler did it|| & ~~more~~"),
            ],
            Some(("a.png", png(40, 40, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let catalog = page(&node, &c, "/boards/b").await;
    let start = catalog.find("class=\"excerpt\"").expect("an excerpt");
    let excerpt = &catalog[start..start + catalog[start..].find("</p>").unwrap()];
    assert!(!excerpt.contains("butler"), "the spoiler shows: {excerpt}");
    assert!(
        !excerpt.contains("**") && !excerpt.contains("||"),
        "raw markup: {excerpt}"
    );
    assert!(
        excerpt.contains("The ending: [spoiler] &amp; more"),
        "{excerpt}"
    );
    node.stop().await;
}
