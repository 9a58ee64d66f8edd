//! The 4chan/vichan read API: every endpoint against 4chan's field list
//! (types, presence, absence) for threads with and without files, archived,
//! stickied, closed, spoilered and with a deleted file; conditional GETs;
//! the page and file URLs clients build.

#[macro_use]
mod common;

use base64::Engine;
use common::{form, json, png, Db, TestNode};
use md5::Digest;
use reqwest::{header, StatusCode};
use serde_json::Value;
use wani_actors::ThreadMsg;
use wani_store::{PostId, ThreadId};

both_backends!(every_endpoint_has_4chans_fields, conditional_gets_and_urls);

fn setup(config: &mut wani_node::Config) {
    let b = config.bootstrap.boards[0].clone();
    // A second board keeping one live thread: the older one is archived.
    config.bootstrap.boards.push(wani_store::BoardSettings {
        name: "arc".into(),
        title: "Archive & co".into(),
        max_threads: 1,
        ..b
    });
}

async fn post(
    node: &TestNode,
    path: &str,
    fields: &[(&str, &str)],
    file: Option<Vec<u8>>,
) -> Value {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let res = node
        .client_from(&format!("127.0.1.{}", n.max(1)))
        .post(node.at(path))
        .multipart(form(fields, file.map(|f| ("f.png", f))))
        .send()
        .await
        .expect("send");
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn get(node: &TestNode, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let res = node.client().get(node.at(path)).send().await.expect("get");
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.bytes().await.expect("body").to_vec())
}

async fn get_json(node: &TestNode, path: &str) -> Value {
    let (status, headers, body) = get(node, path).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{path}");
    assert!(
        headers.contains_key(header::LAST_MODIFIED),
        "{path} has no Last-Modified"
    );
    assert!(headers.contains_key(header::ETAG), "{path} has no ETag");
    let v: Value = serde_json::from_slice(&body).expect("JSON");
    assert_no_null(&v, path);
    v
}

/// 4chan leaves fields out; it never writes null.
fn assert_no_null(v: &Value, at: &str) {
    match v {
        Value::Null => panic!("null in {at}"),
        Value::Array(a) => a.iter().for_each(|x| assert_no_null(x, at)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| assert_no_null(x, &format!("{at}.{k}"))),
        _ => {}
    }
}

const FILE_FIELDS: [&str; 9] = [
    "tim", "filename", "ext", "fsize", "md5", "w", "h", "tn_w", "tn_h",
];
const OP_FIELDS: [&str; 5] = [
    "replies",
    "images",
    "semantic_url",
    "last_modified",
    "sticky",
];

/// Checks one post object; `op` says whether it opens its thread.
fn check_post(p: &Value, op: bool) {
    let o = p.as_object().expect("post object");
    for (k, int) in [
        ("no", true),
        ("resto", true),
        ("time", true),
        ("now", false),
        ("name", false),
    ] {
        let v = o.get(k).unwrap_or_else(|| panic!("{k} missing in {p}"));
        assert!(if int { v.is_i64() } else { v.is_string() }, "{k} in {p}");
    }
    assert_eq!(o["resto"] == 0, op, "resto of {p}");
    let now = o["now"].as_str().unwrap();
    assert_eq!(now.len(), 21, "now {now:?}");
    assert_eq!(&now[8..9], "(", "now {now:?}");
    let files = FILE_FIELDS.iter().filter(|k| o.contains_key(**k)).count();
    assert!(
        files == 0 || files == FILE_FIELDS.len(),
        "file fields all or none: {p}"
    );
    if files > 0 {
        for k in ["tim", "fsize", "w", "h", "tn_w", "tn_h"] {
            assert!(o[k].is_i64(), "{k} in {p}");
        }
        assert!(o["ext"].as_str().unwrap().starts_with('.'), "{p}");
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(o["md5"].as_str().unwrap())
                .unwrap()
                .len(),
            16
        );
        assert!(!o.contains_key("filedeleted"), "{p}");
    }
    if let Some(s) = o.get("spoiler") {
        assert_eq!(s, 1);
        assert!(files > 0, "spoiler without a file: {p}");
    }
    for k in [
        "replies",
        "images",
        "semantic_url",
        "last_modified",
        "bumplimit",
        "sticky",
        "closed",
        "archived",
    ] {
        if !op {
            assert!(!o.contains_key(k), "{k} on a reply: {p}");
        }
    }
    if op {
        for k in &OP_FIELDS[..4] {
            assert!(o.contains_key(*k), "{k} missing on an OP: {p}");
        }
    } else {
        assert!(!o.contains_key("sub"), "sub on a reply: {p}");
    }
    for k in [
        "sticky",
        "closed",
        "archived",
        "filedeleted",
        "spoiler",
        "bumplimit",
    ] {
        if let Some(v) = o.get(k) {
            assert_eq!(v, 1, "{k} is 1 when present: {p}");
        }
    }
}

async fn every_endpoint_has_4chans_fields(db: Db) {
    let Some(node) = TestNode::start(db, setup).await else {
        return;
    };
    // A thread with a file and a text reply, a spoilered image reply, a
    // reply quoting with every markup feature, and one whose file is deleted.
    let t = post(
        &node,
        "/api/v1/thread/new",
        &[
            ("board", "b"),
            ("subject", "Cats & <dogs>"),
            ("body", "first"),
        ],
        Some(png(40, 30, false)),
    )
    .await;
    let thread = t["id"].as_i64().unwrap();
    let op = t["post"]["id"].as_i64().unwrap();
    let reply = format!("/api/v1/thread/{thread}/new");
    post(&node, &reply, &[("body", "just text")], None).await;
    let spoiled = post(
        &node,
        &reply,
        &[("body", "look"), ("spoiler", "on")],
        Some(png(20, 20, false)),
    )
    .await;
    let body = format!(">>{op} yes\n>green\n**bold** ||hidden||\n\nnext para >>999999");
    let quoting = post(&node, &reply, &[("body", &body)], None).await;
    let doomed = post(
        &node,
        &reply,
        &[("body", "file goes")],
        Some(png(24, 24, false)),
    )
    .await;
    let doomed = doomed["id"].as_i64().unwrap();
    node.state
        .entities
        .ask(ThreadId(thread), |reply| ThreadMsg::DeleteFile {
            id: PostId(doomed),
            by: None,
            reply,
        })
        .await
        .expect("ask")
        .expect("file deleted");
    // A second thread, stickied and closed (threads need a file, as on Maniwani).
    let t2 = post(
        &node,
        "/api/v1/thread/new",
        &[("board", "b"), ("subject", "rules"), ("body", "read them")],
        Some(png(16, 16, false)),
    )
    .await;
    let thread2 = t2["id"].as_i64().unwrap();
    let op2 = t2["post"]["id"].as_i64().unwrap();
    // (A reply quoting a reply of the first thread, before it is closed.)
    let spoiled_no = spoiled["id"].as_i64().unwrap();
    post(
        &node,
        &format!("/api/v1/thread/{thread2}/new"),
        &[("body", &format!(">>{spoiled_no}"))],
        None,
    )
    .await;
    node.state
        .entities
        .ask(ThreadId(thread2), |reply| ThreadMsg::SetFlags {
            sticky: Some(true),
            locked: Some(true),
            by: None,
            reply,
        })
        .await
        .expect("ask")
        .expect("flags");
    // Two threads on the one-thread board: the first is archived.
    let old = post(
        &node,
        "/api/v1/thread/new",
        &[("board", "arc"), ("body", "old one")],
        Some(png(8, 8, false)),
    )
    .await;
    let old = old["post"]["id"].as_i64().unwrap();
    post(
        &node,
        "/api/v1/thread/new",
        &[("board", "arc"), ("body", "new one")],
        Some(png(9, 9, false)),
    )
    .await;

    // boards.json
    let boards = get_json(&node, "/boards.json").await;
    let list = boards["boards"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for b in list {
        for k in ["board", "title", "meta_description"] {
            assert!(b[k].is_string(), "{k} in {b}");
        }
        for k in [
            "ws_board",
            "per_page",
            "pages",
            "max_filesize",
            "max_webm_filesize",
            "max_comment_chars",
            "bump_limit",
            "image_limit",
        ] {
            assert!(b[k].is_i64(), "{k} in {b}");
        }
        for k in ["threads", "replies", "images"] {
            assert!(b["cooldowns"][k].is_i64(), "cooldowns.{k} in {b}");
        }
    }
    assert_eq!(list[1]["board"], "arc");
    assert_eq!(list[1]["title"], "Archive & co");

    // The thread, in both layouts: the same bytes.
    // A thread's number is its opening post's, as on 4chan.
    let posts = get_json(&node, &format!("/b/thread/{op}.json")).await;
    let vichan = get_json(&node, &format!("/b/res/{op}.json")).await;
    assert_eq!(posts, vichan);
    let posts = posts["posts"].as_array().unwrap().clone();
    assert_eq!(posts.len(), 5);
    for (i, p) in posts.iter().enumerate() {
        check_post(p, i == 0);
    }
    let head = &posts[0];
    assert_eq!(head["no"], op);
    assert_eq!(head["sub"], "Cats &amp; &lt;dogs&gt;");
    assert_eq!(head["replies"], 4);
    assert_eq!(
        head["images"], 1,
        "the spoilered one; the deleted file no longer counts"
    );
    assert_eq!(head["semantic_url"], "cats-dogs");
    assert_eq!(head["name"], "Anonymous");
    assert!(
        head.get("sticky").is_none()
            && head.get("closed").is_none()
            && head.get("archived").is_none()
    );
    assert_eq!(head["w"], 40);
    assert_eq!(head["h"], 30);
    assert_eq!(head["ext"], ".png");
    assert_eq!(
        head["filename"], "f",
        "the name it was uploaded under, without extension"
    );
    assert_eq!(posts[1]["resto"], op);
    assert!(posts[1].get("tim").is_none(), "no file, no file fields");
    assert_eq!(posts[2]["no"], spoiled["id"]);
    assert_eq!(posts[2]["spoiler"], 1);
    let com = posts[3]["com"].as_str().unwrap();
    assert!(
        com.contains(&format!(
            "<a href=\"#p{op}\" class=\"quotelink\">&gt;&gt;{op}</a>"
        )),
        "{com}"
    );
    assert!(
        com.contains("<span class=\"quote\">&gt;green</span>"),
        "{com}"
    );
    assert!(com.contains("<s>hidden</s>"), "{com}");
    assert!(
        com.contains("<span class=\"deadlink\">&gt;&gt;999999</span>"),
        "{com}"
    );
    assert!(com.contains("<br><br>next para"), "{com}");
    assert_eq!(posts[3]["no"], quoting["id"]);
    assert_eq!(posts[4]["filedeleted"], 1);
    assert!(posts[4].get("tim").is_none());

    // Files: the original where clients build its URL, byte for byte the
    // one /upload serves, with the MD5 the JSON gave; thumbnails under
    // both names.
    let tim = head["tim"].as_i64().unwrap();
    let (status, _, src) = get(&node, &format!("/b/src/{tim}.png")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, upload) = get(&node, &format!("/upload/{tim}")).await;
    assert_eq!(src, upload);
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&src));
    assert_eq!(head["md5"], md5.as_str());
    for thumb in [
        format!("/b/thumb/{tim}s.jpg"),
        format!("/b/thumb/{tim}.png"),
    ] {
        let (status, headers, body) = get(&node, &thumb).await;
        assert_eq!(status, StatusCode::OK, "{thumb}");
        assert!(headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("image/"));
        assert!(!body.is_empty());
    }

    // A quote into another thread links to that thread by its opening
    // post, as 4chan's do: learnt by the thread's actor as the post is
    // written, and read back from the store when a thread is loaded.
    let across = format!("<a href=\"/b/thread/{op}#p{spoiled_no}\" class=\"quotelink\">");
    let sticky = get_json(&node, &format!("/b/thread/{op2}.json")).await;
    let com = sticky["posts"][1]["com"].as_str().unwrap();
    assert!(com.contains(&across), "{com}");
    let stored = wani_store::Repo::thread(&node.state.store, ThreadId(thread2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.quoted_ops, [(ThreadId(thread), PostId(op))]);

    // The sticky, closed thread.
    let s = &sticky["posts"][0];
    check_post(s, true);
    assert_eq!(s["sticky"], 1);
    assert_eq!(s["closed"], 1);

    // threads.json: pages from 1, the sticky first.
    let threads = get_json(&node, "/b/threads.json").await;
    assert_eq!(threads[0]["page"], 1);
    let nos: Vec<i64> = threads[0]["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["no"].as_i64().unwrap())
        .collect();
    assert_eq!(nos, [op2, op]);
    for t in threads[0]["threads"].as_array().unwrap() {
        assert!(t["last_modified"].is_i64() && t["replies"].is_i64(), "{t}");
    }

    // catalog.json: every thread, the last replies under each OP.
    let catalog = get_json(&node, "/b/catalog.json").await;
    let entries = catalog[0]["threads"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let cat = &entries[1];
    check_post(cat, true);
    assert_eq!(cat["no"], op);
    assert_eq!(cat["omitted_posts"], 0);
    let last = cat["last_replies"].as_array().unwrap();
    assert_eq!(last.len(), 4);
    last.iter().for_each(|p| check_post(p, false));
    assert_eq!(entries[0]["last_replies"].as_array().unwrap().len(), 1);
    let lone = get_json(&node, "/arc/catalog.json").await;
    assert!(
        lone[0]["threads"][0].get("last_replies").is_none(),
        "no replies, no last_replies"
    );

    // Index pages: 1.json, and 0.json for vichan's count; none past the last.
    let page = get_json(&node, "/b/1.json").await;
    assert_eq!(page, get_json(&node, "/b/0.json").await);
    let on_page = page["threads"].as_array().unwrap();
    assert_eq!(on_page.len(), 2);
    let shown = on_page[1]["posts"].as_array().unwrap();
    assert_eq!(shown.len(), 5);
    check_post(&shown[0], true);
    assert_eq!(shown[0]["omitted_posts"], 0);
    assert_eq!(shown[0]["omitted_images"], 0);
    assert_eq!(get(&node, "/b/2.json").await.0, StatusCode::NOT_FOUND);

    // The archive: the old thread listed and marked archived.
    let archive = get_json(&node, "/arc/archive.json").await;
    assert_eq!(archive, serde_json::json!([old]));
    let archived = get_json(&node, &format!("/arc/thread/{old}.json")).await;
    assert_eq!(archived["posts"][0]["archived"], 1);
    assert!(archived["posts"][0]["archived_on"].is_i64());
    check_post(&archived["posts"][0], true);
    assert_eq!(
        get_json(&node, "/b/archive.json").await,
        serde_json::json!([])
    );

    node.stop().await;
}

async fn conditional_gets_and_urls(db: Db) {
    let Some(node) = TestNode::start(db, setup).await else {
        return;
    };
    // A thread first, so thread ids and post ids differ from here on.
    let first = post(
        &node,
        "/api/v1/thread/new",
        &[("board", "arc"), ("body", "y")],
        Some(png(7, 7, false)),
    )
    .await;
    post(
        &node,
        &format!("/api/v1/thread/{}/new", first["id"]),
        &[("body", "z")],
        None,
    )
    .await;
    let t = post(
        &node,
        "/api/v1/thread/new",
        &[("board", "b"), ("subject", "hello world"), ("body", "x")],
        Some(png(8, 8, false)),
    )
    .await;
    let thread = t["id"].as_i64().unwrap();
    let op = t["post"]["id"].as_i64().unwrap();
    assert_ne!(thread, op);
    let path = format!("/b/thread/{op}.json");
    let (_, headers, _) = get(&node, &path).await;
    let modified = headers[header::LAST_MODIFIED].to_str().unwrap().to_string();
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let ask = |h: header::HeaderName, v: String| {
        let c = node.client();
        let url = node.at(&path);
        async move { c.get(url).header(h, v).send().await.unwrap().status() }
    };
    assert_eq!(
        ask(header::IF_MODIFIED_SINCE, modified.clone()).await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        ask(header::IF_NONE_MATCH, etag.clone()).await,
        StatusCode::NOT_MODIFIED
    );
    assert_eq!(
        ask(
            header::IF_MODIFIED_SINCE,
            "Thu, 01 Jan 1970 00:00:00 GMT".into()
        )
        .await,
        StatusCode::OK
    );

    // A reply changes both APIs' answers at once, whatever the clock says:
    // the date the client holds no longer proves it has the thread.
    let (_, _, before_v1) = get(&node, &format!("/api/v1/thread/{thread}")).await;
    let replies_in = |v: &Value| -> i64 {
        v[0]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["no"] == op)
            .map(|t| t["replies"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(replies_in(&get_json(&node, "/b/catalog.json").await), 0);
    let page = get_json(&node, "/b/1.json").await;
    post(
        &node,
        &format!("/api/v1/thread/{thread}/new"),
        &[("body", "new")],
        None,
    )
    .await;
    assert_eq!(
        ask(header::IF_MODIFIED_SINCE, modified.clone()).await,
        StatusCode::OK
    );
    assert_eq!(ask(header::IF_NONE_MATCH, etag).await, StatusCode::OK);
    let now = get_json(&node, &path).await;
    assert_eq!(now["posts"].as_array().unwrap().len(), 2);
    let (_, _, after_v1) = get(&node, &format!("/api/v1/thread/{thread}")).await;
    assert_ne!(before_v1, after_v1);
    // The catalog and index pages, kept per board, show it at once too.
    assert_eq!(replies_in(&get_json(&node, "/b/catalog.json").await), 1);
    assert_ne!(get_json(&node, "/b/1.json").await, page);

    // Every JSON answer is dated, catalog and board list included.
    for p in [
        "/boards.json",
        "/b/catalog.json",
        "/b/threads.json",
        "/b/1.json",
        "/b/archive.json",
    ] {
        get_json(&node, p).await;
    }

    // Page URLs from a browser's address bar lead to the pages.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (from, to) in [
        (format!("/b/thread/{op}"), format!("/threads/{thread}")),
        (
            format!("/b/thread/{op}/hello-world"),
            format!("/threads/{thread}"),
        ),
        (format!("/b/res/{op}.html"), format!("/threads/{thread}")),
        ("/b/".to_string(), "/boards/1".to_string()),
        ("/b/index.html".to_string(), "/boards/1".to_string()),
    ] {
        let res = no_redirects.get(node.at(&from)).send().await.unwrap();
        assert!(res.status().is_redirection(), "{from}: {}", res.status());
        assert_eq!(res.headers()[header::LOCATION], to.as_str(), "{from}");
        let page = reqwest::get(node.at(&from)).await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{from} followed");
    }

    // A file name is text for clients to show: escaped like 4chan's.
    let res = node
        .client()
        .post(node.at(&format!("/api/v1/thread/{thread}/new")))
        .multipart(form(
            &[("body", "named")],
            Some(("<img src=x onerror=alert(1)> & co.png", png(6, 6, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let now = get_json(&node, &path).await;
    let last = now["posts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["filename"],
        "&lt;img src=x onerror=alert(1)&gt; &amp; co"
    );

    // Clear errors for what is not there.
    for p in [
        "/nope/catalog.json".to_string(),
        "/b/thread/999999.json".to_string(),
        "/b/thread/abc.json".into(),
        "/b/src/999999.png".into(),
        "/b/thumb/xs.jpg".into(),
        "/b/whatever".into(),
    ] {
        assert_eq!(get(&node, &p).await.0, StatusCode::NOT_FOUND, "{p}");
    }
    // A page a browser asked for fails as a page; JSON fails as JSON.
    for (p, html) in [
        ("/nope/", true),
        ("/b/thread/999999", true),
        ("/b/whatever", true),
        ("/b/thread/999999.json", false),
    ] {
        let (status, headers, _) = get(&node, p).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
        let ct = headers[header::CONTENT_TYPE].to_str().unwrap();
        assert_eq!(ct.starts_with("text/html"), html, "{p}: {ct}");
    }
    // wani's own routes keep their meaning beside /{board}/….
    assert_eq!(get(&node, "/boards/1").await.0, StatusCode::OK);
    assert_eq!(
        get(&node, &format!("/threads/{thread}")).await.0,
        StatusCode::OK
    );
    node.stop().await;
}
