//! Operations: `/metrics`, `/readyz`, `wani drain`, and a rolling restart of
//! a three-node cluster under load that fails no request and loses no post.
//!
//! The metrics test runs an in-process node on both backends; the cluster
//! tests start real `wani serve` processes against one PostgreSQL database
//! and are skipped (with a note) when `WANI_TEST_POSTGRES_URL` is not set.

mod common;

use common::cluster::{peers, postgres_or_skip, Peer};
use common::process::{free_port, wani, Server};
use common::{eventually, form, png, Db, TestNode};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The value of the sample `name{labels}` (labels as written, in order).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn scrape(url: &str) -> String {
    let res = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    res.text().await.unwrap()
}

async fn metrics_count_traffic(db: Db) {
    let Some(node) = TestNode::start(db, |_| {}).await else {
        return;
    };
    let c = node.client();
    let res = c
        .post(node.at("/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("body", "op")],
            Some(("a.png", png(32, 32, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let thread = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    for i in 0..5 {
        let res = c
            .post(node.at(&format!("/api/v1/thread/{thread}/new")))
            .multipart(form(&[("body", &format!("reply {i}"))], None))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    for _ in 0..3 {
        let res = c
            .get(node.at(&format!("/threads/{thread}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let missing = c.get(node.at("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let text = scrape(&node.url).await;
    let replies = r#"{method="POST",route="/api/v1/thread/{id}/new""#;
    assert_eq!(
        sample(
            &text,
            &format!(r#"wani_http_requests_total{replies},status="2xx"}}"#)
        ),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("wani_http_request_duration_seconds_count{replies}}}")
        ),
        Some(5.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"wani_http_request_duration_seconds_bucket{replies},le="+Inf"}}"#)
        ),
        Some(5.0)
    );
    let sum = sample(
        &text,
        &format!("wani_http_request_duration_seconds_sum{replies}}}"),
    )
    .unwrap();
    assert!(sum > 0.0 && sum < 50.0, "latency sum {sum}");
    assert_eq!(
        sample(
            &text,
            r#"wani_http_requests_total{method="GET",route="/threads/{id}",status="2xx"}"#
        ),
        Some(3.0),
        "one series per route template, not per thread"
    );
    assert_eq!(
        sample(
            &text,
            r#"wani_http_requests_total{method="GET",route="unmatched",status="4xx"}"#
        ),
        Some(1.0)
    );
    // The board and the thread were activated once each, and are active.
    assert!(sample(&text, "wani_entity_activations_total").unwrap() >= 2.0);
    assert!(sample(&text, r#"wani_entities_active{kind="thread"}"#).unwrap() >= 1.0);
    assert!(sample(&text, r#"wani_entities_active{kind="board"}"#).unwrap() >= 1.0);
    assert_eq!(
        sample(&text, r#"wani_actor_queue_depth{pool="thumbnailer"}"#),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, "wani_http_requests_in_flight"),
        Some(0.0),
        "the scrape itself is not traffic"
    );
    assert!(
        !text.contains("wani_cluster_"),
        "a single box has no cluster metrics"
    );

    // Ready; and a single box cannot be drained, only stopped.
    assert_eq!(
        c.get(node.at("/healthz")).send().await.unwrap().status(),
        200
    );
    let ready = c.get(node.at("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let res = c.post(node.at("/api/v1/admin/drain")).send().await.unwrap();
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("not in a cluster"));
    // Through a proxy, loopback proves nothing.
    let res = c
        .post(node.at("/api/v1/admin/drain"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    node.stop().await;
}

both_backends!(metrics_count_traffic);

const COOKIE: &str = "the operations cookie";

fn write_config(dir: &Path, me: &Peer, all: &[Peer], db: &str, extra: &str) {
    let seeds: Vec<String> = all
        .iter()
        .filter(|p| p.name != me.name)
        .map(|p| format!("\"127.0.0.1:{}\"", p.cluster))
        .collect();
    let cfg = format!(
        "[node]\nname = \"{name}\"\nlisten = \"127.0.0.1:{http}\"\n\
         [database]\nurl = \"{db}\"\n\
         [blobs]\nbackend = \"db\"\n\
         [abuse]\nsame_content_secs = 0\n\
         [cluster]\nenabled = true\nlisten = \"127.0.0.1:{cl}\"\nseeds = [{seeds}]\ncookie = \"{COOKIE}\"\n{extra}\n\
         [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Random\"\ncaptcha_threads = false\n\
         thread_interval_secs = 0\nreply_interval_secs = 0\n",
        name = me.name,
        http = me.http,
        cl = me.cluster,
        seeds = seeds.join(", "),
    );
    std::fs::write(dir.join("cluster.toml"), cfg).unwrap();
}

async fn readyz(url: &str) -> Option<(u16, serde_json::Value)> {
    let res = reqwest::get(format!("{url}/readyz")).await.ok()?;
    let code = res.status().as_u16();
    Some((code, res.json().await.ok()?))
}

/// Runs `wani drain` against the node at `url` (from `dir`'s config) and
/// returns whether it exited 0.
async fn wani_drain(dir: &Path, url: &str) -> bool {
    let addr = url.trim_start_matches("http://").to_string();
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = wani(&dir)
            .args(["drain", "--addr", &addr, "--timeout-secs", "30"])
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!("wani drain: {}", String::from_utf8_lossy(&out.stderr));
        }
        out.status.success()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_waits_for_the_view_to_settle_and_turns_off_while_draining() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (db, dbname) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let me = Peer {
        name: "solo",
        http: free_port(),
        cluster: free_port(),
    };
    let dir = tempfile::tempdir().unwrap();
    // A long detector (4 s to settle), so the not-yet-settled window is
    // certainly seen.
    write_config(
        dir.path(),
        &me,
        &[],
        &db,
        "heartbeat_ms = 100\nsuspect_after = 3\ndown_after = 40",
    );
    let mut server = Server::start(dir.path());
    let url = server.1.clone();
    let (code, body) = readyz(&url).await.unwrap();
    assert_eq!(code, 503, "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("settled"),
        "{body}"
    );
    eventually("the view settles", Duration::from_secs(15), || async {
        (readyz(&url).await?.0 == 200).then_some(())
    })
    .await;

    // The admin API refuses a proxied caller without the cookie, or with a
    // wrong one.
    let c = reqwest::Client::new();
    let drain_url = format!("{url}/api/v1/admin/drain");
    for cookie in [None, Some("not the cookie")] {
        let mut req = c.post(&drain_url).header("x-forwarded-for", "203.0.113.7");
        if let Some(k) = cookie {
            req = req.header("x-wani-cluster-cookie", k);
        }
        assert_eq!(req.send().await.unwrap().status(), 403);
    }
    assert_eq!(readyz(&url).await.unwrap().0, 200, "nothing was drained");

    // The right cookie is enough from anywhere.
    let res = c
        .post(&drain_url)
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-wani-cluster-cookie", COOKIE)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let (code, body) = readyz(&url).await.unwrap();
    assert_eq!(code, 503);
    assert_eq!(body["reason"], "the node is draining");
    assert!(wani_drain(dir.path(), &url).await, "wani drain exits 0");
    let text = scrape(&url).await;
    assert_eq!(sample(&text, "wani_cluster_draining"), Some(1.0));
    assert_eq!(
        sample(&text, r#"wani_cluster_members{state="leaving"}"#),
        Some(1.0)
    );
    let status = tokio::task::block_in_place(|| server.terminate());
    assert!(status.success(), "a drained node stops cleanly");
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

/// What the test's load balancer knows: which nodes answer `/readyz` with
/// 200, and which the operator took out by hand.
struct Rotation {
    ready: Vec<bool>,
    out: Vec<bool>,
    next: usize,
}

impl Rotation {
    fn pick(&mut self) -> Option<usize> {
        let n = self.ready.len();
        for _ in 0..n {
            self.next = (self.next + 1) % n;
            if self.ready[self.next] && !self.out[self.next] {
                return Some(self.next);
            }
        }
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_nothing_and_loses_nothing() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (db, dbname) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let peers: Vec<Peer> = peers(&["a", "b", "c"]);
    let dirs: Vec<tempfile::TempDir> = peers.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    for (p, d) in peers.iter().zip(&dirs) {
        write_config(
            d.path(),
            p,
            &peers,
            &db,
            "heartbeat_ms = 100\nsuspect_after = 3\ndown_after = 8",
        );
    }
    let mut servers: Vec<Server> = dirs.iter().map(|d| Server::start(d.path())).collect();
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    for u in &urls {
        eventually("every node is ready", Duration::from_secs(20), || async {
            (readyz(u).await?.0 == 200).then_some(())
        })
        .await;
    }

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut threads = Vec::new();
    for i in 0..4 {
        let res = client
            .post(format!("{}/api/v1/thread/new", urls[i % 3]))
            .multipart(form(
                &[("board", "b"), ("body", &format!("op {i}"))],
                Some(("a.png", png(16 + i as u32, 16, false))),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        threads.push(
            res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap(),
        );
    }

    let rotation = Arc::new(Mutex::new(Rotation {
        ready: vec![true; 3],
        out: vec![false; 3],
        next: 0,
    }));
    let stop = Arc::new(AtomicBool::new(false));

    // The load balancer: polls every node's /readyz.
    let lb = {
        let (rotation, stop, urls) = (rotation.clone(), stop.clone(), urls.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                for (i, u) in urls.iter().enumerate() {
                    let ok = matches!(readyz(u).await, Some((200, _)));
                    rotation.lock().unwrap().ready[i] = ok;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    // Two clients posting replies back to back, each with its own
    // idempotency key (the post's body, too): key → post id when acknowledged.
    let acked: Arc<Mutex<HashMap<String, (i64, i64)>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..2)
        .map(|c| {
            let (rotation, stop, urls, threads, acked, failed, client) = (
                rotation.clone(),
                stop.clone(),
                urls.clone(),
                threads.clone(),
                acked.clone(),
                failed.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let Some(node) = rotation.lock().unwrap().pick() else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    let thread = threads[n % threads.len()];
                    let key = format!("client{c}-{n}");
                    n += 1;
                    let res = client
                        .post(format!("{}/api/v1/thread/{thread}/new", urls[node]))
                        .header("Idempotency-Key", &key)
                        .multipart(form(&[("body", &key)], None))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status() == 201 => {
                            let id = r.json::<serde_json::Value>().await.unwrap()["id"]
                                .as_i64()
                                .unwrap();
                            acked.lock().unwrap().insert(key, (thread, id));
                        }
                        Ok(r) => {
                            let status = r.status();
                            let text = r.text().await.unwrap_or_default();
                            failed
                                .lock()
                                .unwrap()
                                .push(format!("{key} via node {node}: {status} {text}"));
                        }
                        Err(e) => failed
                            .lock()
                            .unwrap()
                            .push(format!("{key} via node {node}: {e}")),
                    }
                }
            })
        })
        .collect();

    // Waits until the clients have `at_least` acknowledged posts; stops at
    // the first failure, naming it.
    let posted = |at_least: usize| {
        let (acked, failed) = (acked.clone(), failed.clone());
        async move {
            eventually("the clients post", Duration::from_secs(60), || async {
                (acked.lock().unwrap().len() >= at_least || !failed.lock().unwrap().is_empty())
                    .then_some(())
            })
            .await;
            let failed = failed.lock().unwrap().clone();
            assert!(failed.is_empty(), "failed requests: {failed:#?}");
        }
    };
    posted(20).await;

    for i in 0..3 {
        if i == 1 {
            // A plain SIGTERM drains too. The load balancer is told first,
            // as an orchestrator does before it signals a pod.
            rotation.lock().unwrap().out[i] = true;
        } else {
            // `wani drain` while the node is still in rotation: it keeps
            // serving (routing to the new owners) until the load balancer
            // sees /readyz fail and its requests finish.
            assert!(
                wani_drain(dirs[i].path(), &urls[i]).await,
                "node {i} drains"
            );
            assert_eq!(readyz(&urls[i]).await.unwrap().0, 503);
        }
        let status = tokio::task::block_in_place(|| servers[i].terminate());
        assert!(status.success(), "node {i} exits cleanly: {status:?}");
        let before = acked.lock().unwrap().len();
        // The other two carry the load meanwhile.
        posted(before + 10).await;
        servers[i] = tokio::task::block_in_place(|| Server::start(dirs[i].path()));
        assert_eq!(servers[i].1, urls[i]);
        rotation.lock().unwrap().out[i] = false;
        eventually(
            "the restarted node is ready",
            Duration::from_secs(20),
            || async { rotation.lock().unwrap().ready[i].then_some(()) },
        )
        .await;
        let before = acked.lock().unwrap().len();
        posted(before + 10).await;
    }

    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    lb.await.unwrap();
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "failed requests: {failed:#?}");

    // Every acknowledged post is there exactly once, on every node.
    let acked = acked.lock().unwrap().clone();
    println!(
        "{} replies acknowledged across the rolling restart",
        acked.len()
    );
    for u in &urls {
        for &t in &threads {
            let posts: Vec<serde_json::Value> = reqwest::get(format!("{u}/api/v1/thread/{t}"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut seen: HashMap<String, Vec<i64>> = HashMap::new();
            for p in &posts {
                seen.entry(p["body"].as_str().unwrap_or("").to_string())
                    .or_default()
                    .push(p["id"].as_i64().unwrap());
            }
            for (key, (thread, id)) in acked.iter().filter(|(_, (th, _))| *th == t) {
                assert_eq!(
                    seen.get(key),
                    Some(&vec![*id]),
                    "{key} in thread {thread} through {u}"
                );
            }
            assert_eq!(
                posts.len(),
                1 + acked.values().filter(|(th, _)| *th == t).count(),
                "no post that was not acknowledged"
            );
        }
    }

    // The survivors counted the comings and goings.
    let text = scrape(&urls[0]).await;
    assert!(
        sample(&text, r#"wani_cluster_view_changes_total{kind="left"}"#).unwrap() >= 2.0,
        "a saw b and c leave"
    );
    assert_eq!(
        sample(&text, r#"wani_cluster_members{state="up"}"#),
        Some(3.0)
    );
    for peer in ["b", "c"] {
        let rtt = sample(
            &text,
            &format!(r#"wani_cluster_heartbeat_rtt_seconds{{peer="{peer}"}}"#),
        );
        assert!(
            rtt.is_some_and(|r| (0.0..1.0).contains(&r)),
            "rtt to {peer}: {rtt:?}"
        );
    }
    let mut released = 0.0;
    for u in &urls {
        released += sample(&scrape(u).await, "wani_shard_leases_released_total").unwrap_or(0.0);
    }
    assert!(released > 0.0, "shards moved back to restarted nodes");

    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}
