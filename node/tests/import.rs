//! `wani import maniwani` as an operator runs it, against Maniwani sites
//! whose tables Maniwani's own SQLAlchemy models created
//! (tests/maniwani/make_site.py), then read back through a real node.

mod common;

use common::cluster::postgres_or_skip;
use common::process::{free_port, wani, Server};
use common::{eventually, files_under, form};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Debian's python3, which has python3-flask-sqlalchemy (scripts/test
/// installs it); `None` (and a note) where it is missing.
fn python() -> Option<&'static str> {
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import flask_sqlalchemy, PIL, psycopg2"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!(
            "Maniwani import tests skipped: install python3-flask-sqlalchemy, python3-pil \
             and python3-psycopg2 (scripts/test does)"
        );
    }
    ok.then_some("/usr/bin/python3")
}

fn make_site(python: &str, db: &str, media: &Path, extra: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/maniwani/make_site.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--db", db, "--media"])
        .arg(media)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make_site.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds a post to `thread` of a Maniwani site, through its models; its id.
fn make_reply(python: &str, db: &str, media: &Path, thread: i64, body: &str) -> i64 {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/maniwani/make_site.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--db", db, "--media"])
        .arg(media)
        .args(["--add-reply", &thread.to_string(), "--body", body])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out).0.trim().parse().unwrap()
}

fn write_config(dir: &Path, db: &str, port: u16) {
    let cfg = format!(
        "[node]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"{db}\"\n[blobs]\ndir = \"{}\"\n\
         [abuse]\nsame_content_secs = 0\n\
         [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Random\"\ncaptcha_threads = false\n\
         thread_interval_secs = 0\nreply_interval_secs = 0\n",
        dir.join("blobs").display()
    );
    std::fs::write(dir.join("cluster.toml"), cfg).unwrap();
}

fn import(dir: &Path, from: &str, media: &Path, extra: &[&str]) -> Output {
    wani(dir)
        .args(["import", "maniwani", "--from", from, "--media"])
        .arg(media)
        .args(extra)
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The `imported skipped failed` counts of one stage of the report.
fn counts(report: &str, stage: &str) -> (u64, u64, u64) {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stage))
        .unwrap_or_else(|| panic!("no {stage} line in the report:\n{report}"));
    let n: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect();
    (n[0], n[1], n[2])
}

async fn get_json(url: &str) -> Value {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{url}");
    res.json().await.unwrap()
}

async fn feature_site_imports_whole(src_db: &str, wani_db: &str) {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("uploads");
    let expected_file = dir.path().join("expected.json");
    make_site(
        py,
        src_db,
        &media,
        &["--expected", expected_file.to_str().unwrap()],
    );
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected_file).unwrap()).unwrap();
    let from = src_db.replace("postgresql://", "postgres://");
    write_config(dir.path(), wani_db, free_port());

    // Into a running wani, which made /b/ when it started; Maniwani has one
    // too. The import refuses before writing anything, and says what to do.
    let server = Server::start(dir.path());
    let url = server.1.clone();
    let node = url.trim_start_matches("http://").to_string();
    let out = import(dir.path(), &from, &media, &[]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("wani already has a board /b/") && err.contains("--rename b=<new name>"),
        "{err}"
    );

    let out = import(
        dir.path(),
        &from,
        &media,
        &["--rename", "b=random", "--dry-run"],
    );
    let (dry, err) = text(&out);
    assert!(out.status.success(), "{dry}\n{err}");
    assert!(dry.contains("dry run: nothing written"), "{dry}");
    let threads = expected["threads"].as_array().unwrap();
    let posts: usize = threads
        .iter()
        .map(|t| t["posts"].as_array().unwrap().len())
        .sum();
    assert_eq!(counts(&dry, "threads").0, threads.len() as u64);
    assert_eq!(counts(&dry, "posts").0, posts as u64);

    let out = import(
        dir.path(),
        &from,
        &media,
        &["--rename", "b=random", "--node", &node],
    );
    let (report, err) = text(&out);
    assert!(out.status.success(), "{report}\n{err}");
    assert_eq!(counts(&report, "boards"), (2, 0, 0), "{report}");
    assert_eq!(counts(&report, "slips"), (2, 0, 0), "{report}");
    assert_eq!(counts(&report, "threads"), (threads.len() as u64, 0, 0));
    assert_eq!(counts(&report, "posts"), (posts as u64, 0, 0));
    // The lost file and the text file are reported by post, and their
    // posts imported without them.
    let bad: Vec<i64> = ["missing_media", "broken_media"]
        .iter()
        .flat_map(|k| expected[k].as_array().unwrap().iter())
        .map(|v| v.as_i64().unwrap())
        .collect();
    for id in &bad {
        assert!(
            report.contains(&format!("post {id}: media")),
            "post {id} not reported:\n{report}"
        );
    }
    assert!(report.contains("is missing from"), "{report}");
    let with_media = threads
        .iter()
        .flat_map(|t| t["posts"].as_array().unwrap())
        .filter(|p| !p["media"].is_null())
        .count() as u64;
    assert_eq!(
        counts(&report, "media"),
        (with_media - bad.len() as u64, 0, bad.len() as u64)
    );
    assert!(
        err.contains("threads  [########################]"),
        "no finished progress bar for threads: {err}"
    );
    assert!(err.contains("reloaded the imported boards"), "{err}");

    // Run again: nothing twice.
    let out = import(dir.path(), &from, &media, &["--rename", "b=random"]);
    let (again, err) = text(&out);
    assert!(out.status.success(), "{again}\n{err}");
    assert_eq!(counts(&again, "boards"), (0, 2, 0), "{again}");
    assert_eq!(counts(&again, "slips"), (0, 2, 0), "{again}");
    assert_eq!(counts(&again, "threads"), (0, threads.len() as u64, 0));
    assert_eq!(counts(&again, "posts"), (0, posts as u64, 0));

    // Every thread, through the node that ran all along.
    let mut max_post = 0;
    let mut blobs_of_png = Vec::new();
    for t in threads {
        let id = t["id"].as_i64().unwrap();
        let got = get_json(&format!("{url}/api/v1/thread/{id}")).await;
        let got = got
            .as_array()
            .or_else(|| got["posts"].as_array())
            .unwrap_or_else(|| panic!("thread {id}: {got}"))
            .clone();
        let want = t["posts"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "thread {id}");
        let page = reqwest::get(format!("{url}/threads/{id}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for (g, w) in got.iter().zip(want) {
            let pid = w["id"].as_i64().unwrap();
            max_post = max_post.max(pid);
            assert_eq!(g["id"], w["id"]);
            assert_eq!(g["body"], w["body"], "post {pid}");
            assert_eq!(g["spoiler"], w["spoiler"], "post {pid}");
            if !w["subject"].is_null() {
                assert_eq!(g["subject"], w["subject"], "post {pid}");
            }
            assert_eq!(g["slip"], w["slip"], "post {pid}");
            assert!(
                page.contains(&format!("id=\"{pid}\"")),
                "thread page {id} lacks post {pid}"
            );
            let lost = bad.contains(&pid);
            match (&w["media"], lost) {
                (Value::Null, _) | (_, true) => assert!(g["media"].is_null(), "post {pid}: {g}"),
                (m, false) => {
                    let ext = m["ext"].as_str().unwrap();
                    let want_ext = if ext == "jpeg" { "jpg" } else { ext };
                    assert_eq!(g["media_ext"].as_str(), Some(want_ext), "post {pid}: {g}");
                    let thumb = g["thumb_url"].as_str().unwrap();
                    assert!(page.contains(thumb), "thread page {id} lacks {thumb}");
                    let file = reqwest::get(format!("{url}{}", g["media_url"].as_str().unwrap()))
                        .await
                        .unwrap();
                    assert_eq!(file.status(), StatusCode::OK);
                    if ext == "png" {
                        blobs_of_png.push(g["media_url"].as_str().unwrap().to_string());
                    }
                }
            }
        }
        // The same tags (wani lists them by name).
        let names = |v: &Value| {
            let mut n: Vec<String> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            n.sort();
            n
        };
        assert_eq!(names(&got[0]["tags"]), names(&t["tags"]), "thread {id}");
    }
    // The same PNG twice is stored once: every other file (PNG, JPEG, GIF,
    // and a WebM where ffmpeg made one) once, each with its thumbnail.
    assert_eq!(blobs_of_png.len(), 2);
    let distinct = with_media - bad.len() as u64 - 1;
    assert_eq!(files_under(&dir.path().join("blobs")) as u64, distinct * 2);

    // The markup, as wani renders it, with every link pointing where
    // Maniwani's did and nothing live from the raw HTML.
    let first = threads[0]["id"].as_i64().unwrap();
    let page = reqwest::get(format!("{url}/threads/{first}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let op = threads[0]["posts"][0]["id"].as_i64().unwrap();
    let other_thread = threads[1]["id"].as_i64().unwrap();
    let other = threads[1]["posts"][0]["id"].as_i64().unwrap();
    for needle in [
        "<strong>bold</strong>".to_string(),
        "<em>italics</em>".to_string(),
        "<code>inline code</code>".to_string(),
        "<span class=\"greentext\">".to_string(),
        "<span class=\"spoiler\">with a spoiler</span>".to_string(),
        format!("href=\"/threads/{first}#{op}\""),
        format!("href=\"/threads/{other_thread}#{other}\""),
        "<span class=\"dead-quote text-danger\">&gt;&gt;999999</span>".to_string(),
        "&lt;script&gt;".to_string(),
    ] {
        assert!(page.contains(&needle), "thread page lacks {needle}");
    }
    assert!(!page.contains("<script>alert"));
    // Who quoted whom: the opening post lists the reply that quoted it.
    let op_json = get_json(&format!("{url}/api/v1/post/{op}")).await;
    assert!(
        !op_json["replies"].as_array().unwrap().is_empty(),
        "{op_json}"
    );

    // Boards under their names, with Maniwani's rules.
    let boards = get_json(&format!("{url}/api/v1/boards/")).await;
    let names: Vec<&str> = boards
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert!(names.contains(&"random") && names.contains(&"tech") && names.contains(&"b"));

    // Maniwani kept running after the import and got a post in a thread the
    // node has loaded: a second run brings it, and the node shows it.
    let second = threads[1]["id"].as_i64().unwrap();
    let before = get_json(&format!("{url}/api/v1/thread/{second}")).await;
    let late = make_reply(py, src_db, &media, second, "late >>1");
    let out = import(
        dir.path(),
        &from,
        &media,
        &["--rename", "b=random", "--node", &node],
    );
    let (again, err) = text(&out);
    assert!(out.status.success(), "{again}\n{err}");
    assert_eq!(counts(&again, "posts"), (1, posts as u64, 0), "{again}");
    let after = get_json(&format!("{url}/api/v1/thread/{second}")).await;
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let mut want = ids(&before);
    want.push(late);
    assert_eq!(ids(&after), want);

    // A slip logs in with its Maniwani password; its post shows its name and
    // badge; the new post and thread ids continue above the imported ones.
    let c = reqwest::Client::new();
    let res = c
        .post(format!("{url}/api/v1/thread/{first}/new"))
        .basic_auth("admin", Some("correct horse battery"))
        .multipart(form(&[("body", "back, on wani")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let new: Value = res.json().await.unwrap();
    assert!(new["id"].as_i64().unwrap() > max_post, "{new}");
    assert_eq!(new["slip"], "admin");
    assert_eq!(new["capcode"], "Admin");
    let res = c
        .post(format!("{url}/api/v1/thread/{first}/new"))
        .basic_auth("admin", Some("wrong horse battery"))
        .multipart(form(&[("body", "not me")], None))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = c
        .post(format!("{url}/api/v1/thread/new"))
        .multipart(form(
            // wani's own board: an imported one asks new threads for a
            // captcha, as every new wani board does.
            &[("board", "b"), ("subject", "new"), ("body", "a new thread")],
            Some(("new.png", common::png(40, 30, false))),
        ))
        .send()
        .await
        .unwrap();
    let (status, new) = common::json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{new}");
    let max_thread = threads
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(
        new["thread"]
            .as_i64()
            .unwrap_or(new["id"].as_i64().unwrap())
            > max_thread
    );

    // Once wani has posts of its own, a Maniwani post made since would
    // take an id wani gave out: the import refuses, before writing, and
    // says why.
    let added = make_reply(py, src_db, &media, second, "too late");
    let out = import(
        dir.path(),
        &from,
        &media,
        &["--rename", "b=random", "--node", &node],
    );
    let (_, err) = text(&out);
    assert!(!out.status.success());
    let why = format!(
        "wani has posts of its own with ids Maniwani's posts keep (1 of them, e.g. {added})"
    );
    assert!(err.contains(&why), "{err}");
    drop(server);

    // The first login replaced the Werkzeug hash with argon2; the
    // moderator, who has not logged in, still has Werkzeug's.
    let store = wani_store::Store::connect(wani_store::StoreOptions::new(wani_db))
        .await
        .unwrap();
    let (_, admin) = store.slip_by_name("admin").await.unwrap().unwrap();
    assert!(admin.starts_with("$argon2id$"), "{admin}");
    let (janny, hash) = store.slip_by_name("janny").await.unwrap().unwrap();
    assert!(hash.starts_with("pbkdf2:sha256:50000$"), "{hash}");
    assert!(janny.is_mod && !janny.is_admin);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maniwani_site_on_sqlite_imports_whole_into_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("sqlite:///{}/maniwani.db", dir.path().display());
    let dst = format!("sqlite://{}/wani.db", dir.path().display());
    feature_site_imports_whole(&src, &dst).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maniwani_site_on_postgres_imports_whole_into_postgres() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (src, _) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let (dst, _) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    feature_site_imports_whole(&src.replace("postgres://", "postgresql://"), &dst).await;
}

/// An import killed half-way continues where it stopped: every post once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_half_way_finishes_on_the_next_run() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("uploads");
    let src = format!("sqlite:///{}/maniwani.db", dir.path().display());
    let (threads, replies) = (1500, 3);
    make_site(
        py,
        &src,
        &media,
        &[
            "--bulk",
            "--threads",
            &threads.to_string(),
            "--replies",
            &replies.to_string(),
            "--images",
            "0",
        ],
    );
    let db = format!("sqlite://{}/wani.db", dir.path().display());
    write_config(dir.path(), &db, free_port());
    let from = src.replace("sqlite:///", "sqlite://");
    let mut child = wani(dir.path())
        .args(["import", "maniwani", "--from", &from, "--media"])
        .arg(&media)
        .args(["--rename", "b=old", "--batch", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let store = wani_store::Store::connect(wani_store::StoreOptions::new(&db))
        .await
        .unwrap();
    let total = threads * (replies + 1);
    let count = |store: wani_store::Store| async move {
        store
            .post_keys_between(1, i64::MAX)
            .await
            .map(|k| k.len())
            .unwrap_or(0)
    };
    let at_kill = eventually("some threads imported", Duration::from_secs(60), || {
        let store = store.clone();
        async move { Some(count(store).await).filter(|&n| n > 0) }
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let at_kill = at_kill.max(count(store.clone()).await);
    assert!(
        at_kill < total,
        "the import finished before it could be interrupted"
    );

    let out = import(dir.path(), &from, &media, &["--rename", "b=old"]);
    let (report, err) = text(&out);
    assert!(out.status.success(), "{report}\n{err}");
    let (imported, skipped, failed) = counts(&report, "posts");
    assert_eq!(failed, 0, "{report}");
    assert_eq!(imported + skipped, total as u64, "{report}");
    assert!(skipped > 0, "{report}");
    let keys = store.post_keys_between(1, i64::MAX).await.unwrap();
    assert_eq!(keys.len(), total);
    assert!(keys
        .iter()
        .all(|(id, key)| *key == wani_store::import_key("maniwani", *id)));
    store.close().await;
}

/// Into a running three-node cluster on PostgreSQL (media in the database):
/// every node serves every imported thread, wherever its actor lives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maniwani_site_imports_into_a_running_cluster() {
    use common::cluster::{peers, states, until_view, write_config, Peer};
    let Some(py) = python() else { return };
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (db, _) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let src_dir = tempfile::tempdir().unwrap();
    let media = src_dir.path().join("uploads");
    let src = format!("sqlite:///{}/maniwani.db", src_dir.path().display());
    let expected_file = src_dir.path().join("expected.json");
    make_site(
        py,
        &src,
        &media,
        &["--expected", expected_file.to_str().unwrap()],
    );
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&expected_file).unwrap()).unwrap();

    let peers: Vec<Peer> = peers(&["a", "b", "c"]);
    let dirs: Vec<tempfile::TempDir> = peers.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for (p, d) in peers.iter().zip(&dirs) {
        write_config(d.path(), p, &peers, &db, "the right cookie");
        servers.push(Server::start(d.path()));
    }
    let all_up = states(&[("a", "up"), ("b", "up"), ("c", "up")]);
    for s in &servers {
        until_view(&s.1, all_up.clone(), "every node sees three nodes up").await;
    }
    let node = servers[1].1.trim_start_matches("http://").to_string();
    let out = import(dirs[0].path(), &src, &media, &["--node", &node]);
    let (report, err) = text(&out);
    assert!(out.status.success(), "{report}\n{err}");
    assert!(err.contains("reloaded the imported boards"), "{err}");
    for t in expected["threads"].as_array().unwrap() {
        let id = t["id"].as_i64().unwrap();
        let want: Vec<i64> = t["posts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        for s in &servers {
            let got = common::cluster::post_ids(&s.1, id).await;
            assert_eq!(
                got.as_deref(),
                Some(&want[..]),
                "thread {id} through {}",
                s.1
            );
        }
    }
}
