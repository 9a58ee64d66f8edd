//! `[blobs] backend = "s3"` against a real S3-protocol server process
//! (s3rver, common/s3.rs): uploads, ranged reads, deduplication, deletion
//! of files nothing uses, a bucket restarted under load, wrong credentials,
//! `wani blobs migrate --to s3`, and three nodes sharing one bucket.

mod common;

use common::s3::{S3rver, KEY};
use common::{form, jpeg, jpeg_with_gps, json, png, Db, TestNode};
use reqwest::StatusCode;
use serde_json::Value;
use wani_store::blob::blob_key;
use wani_store::MediaId;

fn no_captcha_small_board(config: &mut wani_node::Config) {
    for b in &mut config.bootstrap.boards {
        b.captcha_threads = false;
        b.max_threads = 2;
    }
}

async fn new_thread(node: &TestNode, from: &str, file: Vec<u8>) -> (StatusCode, Value) {
    let res = node
        .client_from(from)
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[
                ("board", "b"),
                ("subject", "s3"),
                ("body", "a file in a bucket"),
            ],
            Some(("f.jpg", file)),
        ))
        .send()
        .await
        .unwrap();
    json(res).await
}

async fn media_of(node: &TestNode, v: &Value) -> wani_store::Media {
    let id = MediaId(v["post"]["media"].as_i64().unwrap());
    node.state.store.media(id).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_go_to_the_bucket_are_served_by_range_and_leave_with_their_posts() {
    let Some(s3) = S3rver::start() else { return };
    let Some(node) = TestNode::start(Db::Sqlite, |c| {
        s3.configure(&mut c.blobs, KEY);
        no_captcha_small_board(c);
    })
    .await
    else {
        return;
    };
    let file = jpeg_with_gps(640, 480);
    let (status, first) = new_thread(&node, "127.0.0.1", file.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let m = media_of(&node, &first).await;
    assert!(node.state.blobs.exists(&m.blob).await.unwrap());
    assert!(node.state.blobs.exists(&m.thumb_blob).await.unwrap());
    // What the bucket holds, read past the node: stripped of its GPS.
    let mut blobs = node.state.config.blobs.clone();
    blobs.cache_mib = 0;
    let bucket = wani_store::s3::S3BlobStore::new(&blobs.s3()).unwrap();
    let stored = wani_store::blob::BlobStore::get(&bucket, &m.blob)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.windows(9).any(|w| w == b"SecretCam"));
    assert!(stored.len() < file.len());
    // Served by the node, streamed from the bucket, as from a disk.
    let c = node.client();
    let url = node.at(first["post"]["media_url"].as_str().unwrap());
    let whole = c.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "image/jpeg");
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(blob_key(&whole), m.blob);
    let part = c
        .get(&url)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-199/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(100..200));
    let past = c
        .get(&url)
        .header("range", format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let thumb = c
        .get(node.at(first["post"]["thumb_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK);
    assert_eq!(
        blob_key(&thumb.bytes().await.unwrap()),
        m.thumb_blob,
        "the thumbnail as stored"
    );

    // The same file again is the same object.
    let (status, second) = new_thread(&node, "127.0.0.2", file).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(media_of(&node, &second).await.blob, m.blob);
    // A third thread archives the first (two threads a board): the file is
    // still used by the second, so it stays.
    let (status, third) = new_thread(&node, "127.0.0.3", png(200, 100, false)).await;
    assert_eq!(status, StatusCode::CREATED, "{third}");
    assert!(node.state.blobs.exists(&m.blob).await.unwrap());
    // A fourth archives the second: nothing uses the file now.
    let (status, _) = new_thread(&node, "127.0.0.4", png(100, 200, false)).await;
    assert_eq!(status, StatusCode::CREATED);
    common::eventually(
        "the unused file to leave the bucket",
        std::time::Duration::from_secs(20),
        || async {
            let gone = !node.state.blobs.exists(&m.blob).await.unwrap()
                && !node.state.blobs.exists(&m.thumb_blob).await.unwrap();
            gone.then_some(())
        },
    )
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_stop_the_start_with_the_reason() {
    let Some(s3) = S3rver::start() else { return };
    let mut config = wani_node::Config::parse("").unwrap();
    let dir = tempfile::tempdir().unwrap();
    config.database.url = format!("sqlite://{}/wani.db", dir.path().display());
    s3.configure(&mut config.blobs, "NOT-OUR-KEY");
    config.blobs.retry_secs = 2;
    let e = match wani_node::Node::start(config).await {
        Ok(_) => panic!("a node started with a wrong S3 key"),
        Err(e) => format!("{e:#}"),
    };
    assert!(e.contains("blobs: the S3 bucket \"wani\""), "{e}");
    assert!(e.contains("InvalidAccessKeyId"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_restarted_under_load_loses_nothing_acknowledged() {
    let Some(mut s3) = S3rver::start() else {
        return;
    };
    let Some(node) = TestNode::start(Db::Sqlite, |c| {
        s3.configure(&mut c.blobs, KEY);
        for b in &mut c.bootstrap.boards {
            b.captcha_threads = false;
        }
    })
    .await
    else {
        return;
    };
    let posting = {
        let node_url = node.url.clone();
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut answers = Vec::new();
            for i in 0..24u32 {
                let res = c
                    .post(format!("{node_url}/api/v1/thread/new"))
                    .multipart(form(
                        &[("board", "b"), ("body", &format!("file {i}"))],
                        Some(("f.png", png(64 + i, 48, false))),
                    ))
                    .send()
                    .await
                    .unwrap();
                answers.push(json(res).await);
            }
            answers
        })
    };
    // The bucket goes away and comes back while the posts go in.
    common::eventually(
        "the first files in the bucket",
        std::time::Duration::from_secs(30),
        || async { (node.state.store.count_posts().await.unwrap() >= 3).then_some(()) },
    )
    .await;
    s3.restart();
    let answers = posting.await.unwrap();
    let mut stored = 0;
    for (status, v) in &answers {
        if *status == StatusCode::CREATED {
            stored += 1;
            let url = node.at(v["post"]["media_url"].as_str().unwrap());
            let res = node.client().get(url).send().await.unwrap();
            assert_eq!(
                res.status(),
                StatusCode::OK,
                "an acknowledged file is gone: {v}"
            );
        } else {
            assert!(status.is_server_error(), "{status}: {v}");
            assert!(!v["error"].as_str().unwrap_or("").is_empty(), "{v}");
        }
    }
    assert!(
        stored >= 20,
        "retries should carry most posts over the restart: {stored}/24"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_disk_move_to_the_bucket_verified_and_a_second_run_copies_nothing() {
    let Some(s3) = S3rver::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/wani.db", dir.path().display());
    let blobs = dir.path().join("blobs");
    let Some(node) = TestNode::start(Db::Sqlite, |c| {
        c.database.url = db.clone();
        c.blobs.dir = blobs.clone();
        for b in &mut c.bootstrap.boards {
            b.captcha_threads = false;
        }
    })
    .await
    else {
        return;
    };
    let mut urls = Vec::new();
    for i in 0..5u32 {
        let (status, v) = new_thread(&node, &format!("127.0.0.{}", i + 1), jpeg(100 + i, 80)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        urls.push(v["post"]["media_url"].as_str().unwrap().to_string());
    }
    let config = node.state.config.clone();
    node.stop().await;

    // The s3 settings beside backend = "fs": the files move, the source stays.
    let mut config = config;
    s3.configure(&mut config.blobs, KEY);
    config.blobs.backend = "fs".into();
    let moved = wani_node::blobs::migrate_to_s3(&config, 4).await.unwrap();
    assert_eq!((moved.copied, moved.already), (10, 0), "{moved:?}");
    assert!(moved.failed.is_empty(), "{moved:?}");
    let again = wani_node::blobs::migrate_to_s3(&config, 4).await.unwrap();
    assert_eq!((again.copied, again.already), (0, 10), "{again:?}");

    // Switched over, a node serves every file from the bucket.
    std::fs::remove_dir_all(&blobs).unwrap();
    config.blobs.backend = "s3".into();
    let node = wani_node::Node::start(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve(listener, async move {
        let _ = stopped.await;
    }));
    for u in &urls {
        let res = reqwest::get(format!("{base}{u}")).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{u}");
    }
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

/// Three nodes on one PostgreSQL and one bucket: a file posted through one
/// is served by the others, from the bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_one_bucket() {
    use common::cluster::{peers, postgres_or_skip, states, until_view, write_config, Peer};
    use common::process::Server;
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let Some(s3) = S3rver::start() else { return };
    let (db, _) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let peers: Vec<Peer> = peers(&["a", "b", "c"]);
    let dirs: Vec<tempfile::TempDir> = peers.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    let env = s3.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut servers = Vec::new();
    for (p, d) in peers.iter().zip(&dirs) {
        write_config(d.path(), p, &peers, &db, "the right cookie");
        let mut cfg = std::fs::read_to_string(d.path().join("cluster.toml")).unwrap();
        cfg.push_str(
            "[abuse]\nsame_content_secs = 0\n[[bootstrap.boards]]\nname = \"b\"\n\
             captcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n",
        );
        std::fs::write(d.path().join("cluster.toml"), cfg).unwrap();
        servers.push(Server::start_with(d.path(), &env));
    }
    let all_up = states(&[("a", "up"), ("b", "up"), ("c", "up")]);
    for s in &servers {
        until_view(&s.1, all_up.clone(), "every node sees three nodes up").await;
    }
    let c = reqwest::Client::new();
    let file = jpeg(300, 200);
    let res = c
        .post(format!("{}/api/v1/thread/new", servers[0].1))
        .multipart(form(
            &[
                ("board", "b"),
                ("subject", "shared"),
                ("body", "one bucket"),
            ],
            Some(("f.jpg", file)),
        ))
        .send()
        .await
        .unwrap();
    let (status, v) = json(res).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let media = v["post"]["media_url"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    for s in &servers {
        let res = c.get(format!("{}{media}", s.1)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{} serves {media}", s.1);
        seen.push(blob_key(&res.bytes().await.unwrap()));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    // Nothing of it on any node's disk: the bucket has it.
    for d in &dirs {
        assert_eq!(common::files_under(&d.path().join("data/blobs")), 0);
    }
}

/// A file above `multipart_mib` goes up in parts and comes back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_goes_up_in_parts() {
    use wani_store::blob::BlobStore as _;
    let Some(s3) = S3rver::start() else { return };
    let mut blobs = wani_node::Config::parse("").unwrap().blobs;
    s3.configure(&mut blobs, KEY);
    blobs.multipart_mib = 5;
    let store = wani_store::s3::S3BlobStore::new(&blobs.s3()).unwrap();
    store.check().await.unwrap();
    // 12 MiB that compress to nothing useful: three parts of 5, 5 and 2.
    let mut bytes = vec![0u8; 12 * 1024 * 1024];
    let mut x = 0x9e37_79b9_u32;
    for b in bytes.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let bytes = bytes::Bytes::from(bytes);
    let key = store.put_typed(bytes.clone(), "video/webm").await.unwrap();
    assert_eq!(key, blob_key(&bytes));
    assert_eq!(store.size(&key).await.unwrap(), Some(bytes.len() as u64));
    assert_eq!(store.get(&key).await.unwrap().unwrap(), bytes);
    let mid = 5 * 1024 * 1024 - 10;
    assert_eq!(
        store.get_range(&key, mid..mid + 20).await.unwrap().unwrap(),
        bytes.slice(mid as usize..mid as usize + 20),
        "a range across the first part boundary"
    );
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());
    store.delete(&key).await.unwrap();
}
