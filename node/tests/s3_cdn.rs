//! `[blobs] public_url`: media linked on a CDN in front of the bucket. Its
//! own test binary: where media are linked is one setting per process.

mod common;

use common::s3::{S3rver, KEY};
use common::{form, jpeg, json, Db, TestNode};
use reqwest::StatusCode;
use wani_store::MediaId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdn_url_is_what_pages_and_the_api_link() {
    let Some(s3) = S3rver::start() else { return };
    let Some(node) = TestNode::start(Db::Sqlite, |c| {
        s3.configure(&mut c.blobs, KEY);
        c.blobs.public_url = "https://cdn.example.org/media".into();
        c.blobs.prefix = "board-files/".into();
        for b in &mut c.bootstrap.boards {
            b.captcha_threads = false;
        }
    })
    .await
    else {
        return;
    };
    let res = node
        .client()
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("body", "on a CDN")],
            Some(("f.jpg", jpeg(320, 200))),
        ))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = MediaId(v["post"]["media"].as_i64().unwrap());
    let m = node.state.store.media(id).await.unwrap().unwrap();
    let want = format!("https://cdn.example.org/media/board-files/{}", m.blob);
    assert_eq!(v["post"]["media_url"], want.as_str());
    let page = node
        .client()
        .get(node.at(&format!("/threads/{}", v["id"])))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("img-src 'self' https://cdn.example.org"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(&want), "the page links the CDN");
    assert!(html.contains(&format!(
        "https://cdn.example.org/media/board-files/{}",
        m.thumb_blob
    )));
    // The node's own URLs (old links, the 4chan API's file routes) send
    // the client to the CDN.
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, to) in [
        (format!("/upload/{}", m.id), &want),
        (
            format!("/upload/thumb/{}", m.id),
            &format!("https://cdn.example.org/media/board-files/{}", m.thumb_blob),
        ),
    ] {
        let res = no_follow.get(node.at(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(res.headers()["location"], to.as_str(), "{path}");
    }
    node.stop().await;
}
