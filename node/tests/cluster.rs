//! Cluster membership with real processes: three `wani serve` on loopback
//! sharing one PostgreSQL database, watched through `GET /api/v1/cluster`.
//!
//! Skipped (with a note) when `WANI_TEST_POSTGRES_URL` is not set: a cluster
//! refuses SQLite.

mod common;

use common::cluster::{
    peers, post_ids, postgres_or_skip, states, until_view, view, write_config, Peer,
};
use common::process::{free_port, wani, Server};
use common::sse::Live;
use common::{eventually, form, png};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_agree_notice_a_paused_one_and_take_it_back() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (db, dbname) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let peers: Vec<Peer> = peers(&["a", "b", "c"]);
    let dirs: Vec<tempfile::TempDir> = peers.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    // The first start migrates the schema; the others find it ready.
    for (p, d) in peers.iter().zip(&dirs) {
        write_config(d.path(), p, &peers, &db, "the right cookie");
    }
    let mut servers: Vec<Server> = Vec::new();
    for d in &dirs {
        servers.push(Server::start(d.path()));
    }
    let all_up = states(&[("a", "up"), ("b", "up"), ("c", "up")]);
    for s in &servers {
        until_view(&s.1, all_up.clone(), "every node sees three nodes up").await;
    }

    // A node with the wrong cookie is refused and changes nothing.
    let intruder = Peer {
        name: "d",
        http: free_port(),
        cluster: free_port(),
    };
    let idir = tempfile::tempdir().unwrap();
    let mut with_intruder = peers
        .iter()
        .map(|p| Peer {
            name: p.name,
            http: p.http,
            cluster: p.cluster,
        })
        .collect::<Vec<_>>();
    with_intruder.push(Peer {
        name: intruder.name,
        http: intruder.http,
        cluster: intruder.cluster,
    });
    write_config(
        idir.path(),
        &intruder,
        &with_intruder,
        &db,
        "a wrong cookie",
    );
    let bad = Server::start(idir.path());
    until_view(&bad.1, states(&[("d", "up")]), "the intruder sees nobody").await;
    for s in &servers {
        assert_eq!(
            view(&s.1).await.unwrap(),
            all_up,
            "the intruder never joins"
        );
    }
    drop(bad);

    // A paused process keeps its sockets open: only missing heartbeats tell.
    servers[2].signal(libc::SIGSTOP);
    let c_down = states(&[("a", "up"), ("b", "up"), ("c", "down")]);
    until_view(&servers[0].1, c_down.clone(), "a sees the paused c down").await;
    until_view(&servers[1].1, c_down, "b sees the paused c down").await;

    // Resumed, it learns it was declared down, rejoins as a new incarnation,
    // and everyone agrees again.
    servers[2].signal(libc::SIGCONT);
    for s in &servers {
        until_view(&s.1, all_up.clone(), "the resumed node is taken back").await;
    }

    // kill -9 and restart: the survivors notice, then reconnect to the new process.
    servers[1].signal(libc::SIGKILL);
    let _ = servers[1].0.wait();
    let b_down = states(&[("a", "up"), ("b", "down"), ("c", "up")]);
    until_view(&servers[0].1, b_down, "a sees the killed b down").await;
    servers[1] = Server::start(dirs[1].path());
    for s in &servers {
        until_view(&s.1, all_up.clone(), "the restarted node rejoins").await;
    }

    let out = wani(dirs[0].path())
        .args(["cluster", "status"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in ["a", "b", "c"] {
        assert!(
            table.lines().any(|l| l.starts_with(n) && l.contains("up")),
            "{table}"
        );
    }

    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

/// Starts three nodes on one fresh database and waits until they agree.
async fn three_nodes(admin: &str) -> (Vec<Server>, Vec<tempfile::TempDir>, String) {
    three_nodes_with_roles(admin, [None, None, None]).await
}

/// The same, with some nodes' `roles` set (`None`: every role).
async fn three_nodes_with_roles(
    admin: &str,
    roles: [Option<&str>; 3],
) -> (Vec<Server>, Vec<tempfile::TempDir>, String) {
    let (db, dbname) = wani_store::testing::create_postgres_database(admin)
        .await
        .unwrap();
    let peers: Vec<Peer> = peers(&["a", "b", "c"]);
    let dirs: Vec<tempfile::TempDir> = peers.iter().map(|_| tempfile::tempdir().unwrap()).collect();
    for (p, d) in peers.iter().zip(&dirs) {
        write_config(d.path(), p, &peers, &db, "the right cookie");
        // Bootstrap boards come from the first node; the others find them.
        let mut cfg = std::fs::read_to_string(d.path().join("cluster.toml")).unwrap();
        if let Some(r) = roles[dirs.iter().position(|x| x.path() == d.path()).unwrap()] {
            cfg = cfg.replacen("[node]\n", &format!("[node]\nroles = [{r}]\n"), 1);
        }
        // The ban list's periodic reload is slowed to an hour: a ban made on
        // one node must reach the others as a cluster message.
        cfg.push_str("[abuse]\nsame_content_secs = 0\nban_reload_secs = 3600\n[[bootstrap.boards]]\nname = \"b\"\ntitle = \"Random\"\ncaptcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n");
        std::fs::write(d.path().join("cluster.toml"), cfg).unwrap();
    }
    let mut servers = Vec::new();
    for d in &dirs {
        servers.push(Server::start(d.path()));
    }
    let all_up = states(&[("a", "up"), ("b", "up"), ("c", "up")]);
    for s in &servers {
        until_view(&s.1, all_up.clone(), "every node sees three nodes up").await;
    }
    (servers, dirs, dbname)
}

/// Creates a thread on board b through `url`; its id.
async fn new_thread(url: &str, subject: &str) -> i64 {
    let res = reqwest::Client::new()
        .post(format!("{url}/api/v1/thread/new"))
        .multipart(form(
            &[("board", "b"), ("subject", subject), ("body", "op")],
            Some(("a.png", png(64, 64, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn post_reply(url: &str, thread: i64, body: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}/api/v1/thread/{thread}/new"))
        .header("Idempotency-Key", key)
        .multipart(form(&[("body", body)], None))
        .send()
        .await
        .unwrap()
}

/// Which of a, b, c owns a thread when all three are up.
fn owner_of_thread(thread: i64) -> usize {
    let nodes: Vec<wani_supervision::NodeName> = ["a", "b", "c"]
        .iter()
        .map(|n| wani_supervision::NodeName(n.to_string()))
        .collect();
    let shard = wani_supervision::shard_of(
        &wani_supervision::EntityKey::new("thread", thread),
        wani_supervision::DEFAULT_SHARDS,
    );
    let owner = wani_supervision::owner_of(shard, &nodes).unwrap();
    nodes.iter().position(|n| n == owner).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_any_thread_and_a_killed_owner_loses_nothing() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (mut servers, _dirs, dbname) = three_nodes(&admin).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();

    let thread = new_thread(&urls[0], "clustered").await;

    // Replies through all three nodes, in turn and then all at once.
    let mut acked = Vec::new();
    for i in 0..6 {
        let res = post_reply(
            &urls[i % 3],
            thread,
            &format!("in turn {i}"),
            &format!("turn-{i}"),
        )
        .await;
        assert_eq!(res.status(), 201, "reply {i} through node {}", i % 3);
        acked.push(
            res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let burst =
        futures::future::join_all(
            (0..12).map(|i| {
                let url = urls[i % 3].clone();
                async move {
                    post_reply(&url, thread, &format!("burst {i}"), &format!("burst-{i}")).await
                }
            }),
        )
        .await;
    for r in burst {
        assert_eq!(r.status(), 201);
        acked.push(
            r.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let order = post_ids(&urls[0], thread).await.unwrap();
    assert_eq!(order.len(), 19);
    for u in &urls[1..] {
        assert_eq!(
            post_ids(u, thread).await.unwrap(),
            order,
            "every node serves the same thread in one order"
        );
    }
    for id in &acked {
        assert!(order.contains(id));
    }

    // kill -9 the owner; a survivor takes the thread over from the store.
    let owner = owner_of_thread(thread);
    let survivor = (owner + 1) % 3;
    servers[owner].signal(libc::SIGKILL);
    let _ = servers[owner].0.wait();
    let killed_at = std::time::Instant::now();
    let res = post_reply(
        &urls[survivor],
        thread,
        "after the owner died",
        "after-kill",
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    println!(
        "first post after kill -9 of the owner: {:?}",
        killed_at.elapsed()
    );
    let after = post_ids(&urls[survivor], thread).await.unwrap();
    assert_eq!(after.len(), 20);
    assert_eq!(&after[..19], &order[..], "nothing acknowledged was lost");

    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_owner_loses_its_threads_and_commits_nothing_stale_when_resumed() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (servers, _dirs, dbname) = three_nodes(&admin).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let thread = new_thread(&urls[0], "paused").await;
    let owner = owner_of_thread(thread);
    let survivor = (owner + 1) % 3;
    // The owner activates the thread (and takes its shard's lease).
    assert_eq!(
        post_reply(&urls[owner], thread, "before the pause", "before")
            .await
            .status(),
        201
    );

    servers[owner].signal(libc::SIGSTOP);
    let paused_at = std::time::Instant::now();
    // A request reaches the paused owner and waits in its socket.
    let stale_url = urls[owner].clone();
    let stale = tokio::spawn(async move {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
            .post(format!("{stale_url}/api/v1/thread/{thread}/new"))
            .header("Idempotency-Key", "sent-to-the-paused-owner")
            .multipart(form(&[("body", "stale?")], None))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    // The survivors take the thread over.
    let res = post_reply(
        &urls[survivor],
        thread,
        "while the owner is paused",
        "during",
    )
    .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    println!(
        "first post after SIGSTOP of the owner: {:?}",
        paused_at.elapsed()
    );

    servers[owner].signal(libc::SIGCONT);
    let stale_status = stale.await.unwrap();
    // Whatever the resumed node answered, every node now serves the same
    // thread, with each post once, and the posts it holds are exactly the
    // acknowledged ones (plus the stale request if it was acknowledged).
    let all_up = states(&[("a", "up"), ("b", "up"), ("c", "up")]);
    for u in &urls {
        until_view(u, all_up.clone(), "the resumed node is taken back").await;
    }
    let want = if stale_status.as_ref().ok() == Some(&201) {
        4
    } else {
        3
    };
    let order = eventually(
        "every node serves the same posts",
        Duration::from_secs(20),
        || {
            let urls = urls.clone();
            async move {
                let first = post_ids(&urls[0], thread).await?;
                for u in &urls[1..] {
                    if post_ids(u, thread).await? != first {
                        return None;
                    }
                }
                Some(first)
            }
        },
    )
    .await;
    assert_eq!(
        order.len(),
        want,
        "stale request answered {stale_status:?}; posts {order:?}"
    );
    let mut dedup = order.clone();
    dedup.dedup();
    assert_eq!(dedup, order, "no post twice");
    // The resumed node can write again, through whoever owns the thread now.
    assert_eq!(
        post_reply(&urls[owner], thread, "after the resume", "after")
            .await
            .status(),
        201
    );

    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_split_the_work_and_missing_ones_are_refused_clearly() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let web = Some("\"web\", \"entities\", \"render\"");
    let (mut servers, _dirs, dbname) =
        three_nodes_with_roles(&admin, [web, web, Some("\"thumbnail\"")]).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    // An upload through a web node is thumbnailed on the thumbnail-only node.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/thread/new", urls[0]))
        .multipart(form(
            &[("board", "b"), ("body", "op")],
            Some(("a.png", png(900, 300, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let v: serde_json::Value = res.json().await.unwrap();
    let thread = v["id"].as_i64().unwrap();
    let thumb = reqwest::get(format!(
        "{}{}",
        urls[1],
        v["post"]["thumb_url"].as_str().unwrap()
    ))
    .await
    .unwrap();
    assert_eq!(thumb.status(), 200);
    let img = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (500, 167));
    // The thumbnail node serves no pages, and says so.
    let res = reqwest::get(format!("{}/api/v1/thread/{thread}", urls[2]))
        .await
        .unwrap();
    assert_eq!(res.status(), 421);
    // Nor do nodes without the live role serve live updates.
    let res = reqwest::get(format!("{}/api/v1/live?thread={thread}", urls[0]))
        .await
        .unwrap();
    assert_eq!(res.status(), 421);
    let v: serde_json::Value = res.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("live role"), "{v}");
    // Both web nodes own entities; replies through either land in one thread.
    assert_eq!(
        post_reply(&urls[1], thread, "text only", "t1")
            .await
            .status(),
        201
    );
    // Without a thumbnail node, uploads are refused clearly and text still works.
    servers[2].signal(libc::SIGKILL);
    let _ = servers[2].0.wait();
    until_view(
        &urls[0],
        states(&[("a", "up"), ("b", "up"), ("c", "down")]),
        "c is down",
    )
    .await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/thread/{thread}/new", urls[0]))
        .multipart(form(
            &[("body", "with a file")],
            Some(("b.png", png(20, 20, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        post_reply(&urls[0], thread, "still fine", "t2")
            .await
            .status(),
        201
    );
    assert_eq!(post_ids(&urls[1], thread).await.unwrap().len(), 3);
    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

/// Waits until a subscriber on `url` learns of `post`: its `new-post`, or
/// a `resync` (a peer looked down for a moment on a loaded machine) after
/// which refetching the thread from its node shows the post.
/// Earlier posts' events may still arrive (the opening post's, published on
/// another node, can reach a subscriber that connected just after it).
async fn sees(live: &mut Live, url: &str, thread: i64, post: i64) {
    loop {
        let e = live.next_for(thread).await;
        match e.event.as_str() {
            "new-post" if e.json()["post"].as_i64() < Some(post) => continue,
            "new-post" => {
                assert_eq!(
                    e.json(),
                    serde_json::json!({"thread": thread, "post": post})
                );
                return;
            }
            "resync" => {
                let ids = post_ids(url, thread).await.unwrap();
                assert!(ids.contains(&post), "{post} missing after a resync");
                return;
            }
            _ => panic!("expected new-post {post}: {e:?}"),
        }
    }
}

/// Live updates cross nodes: subscribers connected to the two nodes that do
/// not own a thread see its posts, whichever node they were made through;
/// when the owner is killed they are told to resync, and then see the posts
/// the new owner commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_subscribers_on_any_node_follow_a_thread_through_its_owners_death() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (mut servers, _dirs, dbname) = three_nodes(&admin).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let thread = new_thread(&urls[0], "watched").await;
    let owner = owner_of_thread(thread);
    let watchers: Vec<usize> = (0..3).filter(|&i| i != owner).collect();
    let mut subs = Vec::new();
    for &w in &watchers {
        let (live, _) = Live::open(&format!("{}/api/v1/live?thread={thread}", urls[w]), None).await;
        subs.push(live);
    }

    // Through every node in turn: each watcher sees each post, in order.
    for (i, url) in urls.iter().enumerate() {
        let res = post_reply(url, thread, &format!("through {i}"), &format!("live-{i}")).await;
        assert_eq!(res.status(), 201);
        let post = res.json::<serde_json::Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        for (live, &w) in subs.iter_mut().zip(&watchers) {
            sees(live, &urls[w], thread, post).await;
        }
    }

    // The owner dies. Its subscribers' nodes notice and tell them to resync
    // (a write it committed but had not fanned out would be lost with it);
    // then the thread re-activates on a survivor and its posts arrive.
    servers[owner].signal(libc::SIGKILL);
    let _ = servers[owner].0.wait();
    for live in &mut subs {
        let e = live.next_for(thread).await;
        assert_eq!(e.event, "resync", "{e:?}");
    }
    for (n, &w) in watchers.iter().enumerate() {
        let res = post_reply(
            &urls[w],
            thread,
            &format!("after {n}"),
            &format!("after-{n}"),
        )
        .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let post = res.json::<serde_json::Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();
        for (live, &w) in subs.iter_mut().zip(&watchers) {
            sees(live, &urls[w], thread, post).await;
        }
    }

    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

/// Live-update writes this node relayed to other nodes (`sent`, one per
/// node) or received from them (`received`), from its /metrics.
async fn relayed(url: &str, direction: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("wani_live_relayed_total{{direction=\"{direction}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("wani_live_relayed_total") as u64
}

/// A thread's writes go only to the nodes whose clients follow it: a node
/// with no follower of the thread is sent none of its posts, the node with
/// one is sent each once. The first client to follow it on the idle node
/// sees the very next post (or a resync that shows it), though the owner
/// learns of the follower only when that node's announcement lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_writes_go_only_to_nodes_whose_clients_follow_them() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (servers, _dirs, dbname) = three_nodes(&admin).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let thread = new_thread(&urls[0], "followed").await;
    let owner = owner_of_thread(thread);
    let others: Vec<usize> = (0..3).filter(|&i| i != owner).collect();
    let (watching, idle) = (others[0], others[1]);
    let (mut live, _) = Live::open(
        &format!("{}/api/v1/live?thread={thread}", urls[watching]),
        None,
    )
    .await;
    let mut n = 0;
    // Posts through the owner and waits until the watching node received
    // the write: by then the owner has decided where it went. Answers how
    // many nodes it was sent to.
    let mut post = || {
        n += 1;
        let (k, urls) = (n, urls.clone());
        async move {
            let (sent, got) = (
                relayed(&urls[owner], "sent").await,
                relayed(&urls[watching], "received").await,
            );
            let res = post_reply(
                &urls[owner],
                thread,
                &format!("post {k}"),
                &format!("follow-{k}"),
            )
            .await;
            assert_eq!(res.status(), 201);
            let id = res.json::<serde_json::Value>().await.unwrap()["id"]
                .as_i64()
                .unwrap();
            eventually(
                "the watching node receives the post",
                Duration::from_secs(10),
                || async { (relayed(&urls[watching], "received").await > got).then_some(()) },
            )
            .await;
            (id, relayed(&urls[owner], "sent").await - sent)
        }
    };
    // Until the idle node's announcement reaches the owner, the owner does
    // not know it follows nothing, and sends it everything.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (p, to) = post().await;
        sees(&mut live, &urls[watching], thread, p).await;
        if to == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the idle node is still sent the thread's writes"
        );
    }
    let idle_before = relayed(&urls[idle], "received").await;
    for _ in 0..5 {
        let (p, to) = post().await;
        assert_eq!(to, 1, "sent to the watching node only");
        sees(&mut live, &urls[watching], thread, p).await;
    }

    // A first follower on the idle node, and a post at once: not lost; and
    // from then on the idle node is sent the thread's writes too.
    let (mut late, _) =
        Live::open(&format!("{}/api/v1/live?thread={thread}", urls[idle]), None).await;
    let (p, _) = post().await;
    sees(&mut late, &urls[idle], thread, p).await;
    let (p, to) = post().await;
    assert_eq!(to, 2, "sent to both following nodes");
    sees(&mut late, &urls[idle], thread, p).await;
    assert!(relayed(&urls[idle], "received").await > idle_before);
    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

/// A thread whose view is larger than one cluster frame (1 MiB) is still
/// served by the nodes that do not own it: the owner answers in parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thread_larger_than_a_cluster_frame_is_served_by_every_node() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (servers, _dirs, dbname) = three_nodes(&admin).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let thread = new_thread(&urls[0], "long").await;
    let owner = owner_of_thread(thread);
    // Each body escapes to 16 KiB of HTML: 80 replies make a view of
    // about 1.6 MiB in JSON and as much as a page.
    let body = "<".repeat(4000);
    let body = body.as_str();
    let url = urls[owner].as_str();
    let replies = futures::future::join_all((0..80).map(|i| async move {
        post_reply(url, thread, body, &format!("long-{i}"))
            .await
            .status()
    }))
    .await;
    assert!(replies.iter().all(|s| *s == 201), "{replies:?}");
    let at_owner = reqwest::get(format!("{url}/api/v1/thread/{thread}"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(at_owner.len() > 1 << 20, "{} bytes", at_owner.len());
    // The 4chan API's view of it too, dated where it was rendered.
    let op: serde_json::Value = serde_json::from_slice(&at_owner).unwrap();
    let chan = format!("/b/thread/{}.json", op[0]["id"]);
    let owner_chan = reqwest::get(format!("{url}{chan}")).await.unwrap();
    let modified = owner_chan.headers()["last-modified"].clone();
    let owner_chan = owner_chan.bytes().await.unwrap();
    for other in (0..3).filter(|&i| i != owner) {
        let res = reqwest::get(format!("{}{chan}", urls[other]))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "node {other}: {chan}");
        assert_eq!(res.headers()["last-modified"], modified, "node {other}");
        assert_eq!(
            res.bytes().await.unwrap(),
            owner_chan,
            "node {other}: {chan}"
        );
        let again = reqwest::Client::new()
            .get(format!("{}{chan}", urls[other]))
            .header("if-modified-since", modified.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "node {other}: If-Modified-Since");
    }
    for other in (0..3).filter(|&i| i != owner) {
        let res = reqwest::get(format!("{}/api/v1/thread/{thread}", urls[other]))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "node {other}");
        assert_eq!(
            res.bytes().await.unwrap(),
            at_owner,
            "node {other} serves the owner's view"
        );
        let page = reqwest::get(format!("{}/threads/{thread}", urls[other]))
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "node {other}'s page");
        assert!(page.text().await.unwrap().len() > 1 << 20);
    }
    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}

/// A ban made through one node is enforced by every other node at once: it
/// travels as a cluster message (the periodic reload that backs it up is
/// an hour away here), and the moderator's deletion that came with it is
/// logged by the thread's owner in the same transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_made_on_one_node_holds_on_every_node_at_once() {
    let Some(admin) = postgres_or_skip() else {
        return;
    };
    let (servers, dirs, dbname) = three_nodes(&admin).await;
    let urls: Vec<String> = servers.iter().map(|s| s.1.clone()).collect();
    let status = wani(dirs[0].path())
        .args([
            "slip",
            "create",
            "kana",
            "--mod",
            "--password",
            "correct horse battery",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let thread = new_thread(&urls[0], "bans").await;
    let troll = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let spam = |url: String, body: &'static str| {
        let troll = troll.clone();
        async move {
            troll
                .post(format!("{url}/api/v1/thread/{thread}/new"))
                .multipart(form(&[("body", body)], None))
                .send()
                .await
                .unwrap()
        }
    };
    let res = spam(urls[1].clone(), "spam").await;
    assert_eq!(res.status(), 201);
    let post = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    // The moderator logs in on node a and bans the poster, deleting the post.
    let moderator = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = moderator
        .post(format!("{}/slip/login", urls[0]))
        .form(&[("name", "kana"), ("password", "correct horse battery")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = moderator
        .get(format!("{}/slip", urls[0]))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf token")
        .to_string();
    let res = moderator
        .post(format!("{}/mod/post/{post}/ban", urls[0]))
        .header("cookie", &cookie)
        .header("origin", &urls[0])
        .form(&[
            ("csrf", csrf.as_str()),
            ("reason", "spamming"),
            ("hours", "1"),
            ("scope", "global"),
            ("delete", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());

    // Every node refuses the banned poster, well before any reload.
    for url in &urls {
        eventually(
            "the ban holds on this node",
            Duration::from_secs(10),
            || {
                let url = url.clone();
                async move { (spam(url, "more spam").await.status() == 403).then_some(()) }
            },
        )
        .await;
    }
    // The post is gone everywhere, and the deletion is in the log.
    for url in &urls {
        let ids = post_ids(url, thread).await.unwrap();
        assert!(!ids.contains(&post), "{url}: {ids:?}");
    }
    let log = moderator
        .get(format!("{}/mod/log", urls[2]))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains(&format!("post {post} in thread {thread}")),
        "{log}"
    );
    assert!(log.contains("delete_post") && log.contains("spamming"));

    drop(servers);
    let _ = wani_store::testing::drop_postgres_database(&admin, &dbname).await;
}
