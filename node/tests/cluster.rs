//! Cluster membership with real processes: three `wani serve` on loopback
//! sharing one PostgreSQL database, watched through `GET /api/v1/cluster`.
//!
//! Skipped (with a note) when `WANI_TEST_POSTGRES_URL` is not set: a cluster
//! refuses SQLite.

mod common;

use common::eventually;
use common::process::{free_port, wani, Server};
use std::path::Path;
use std::time::Duration;

struct Peer {
    name: &'static str,
    http: u16,
    cluster: u16,
}

fn write_config(dir: &Path, me: &Peer, all: &[Peer], db: &str, cookie: &str) {
    let seeds: Vec<String> = all
        .iter()
        .filter(|p| p.name != me.name)
        .map(|p| format!("\"127.0.0.1:{}\"", p.cluster))
        .collect();
    let cfg = format!(
        "[node]\nname = \"{name}\"\nlisten = \"127.0.0.1:{http}\"\n\
         [database]\nurl = \"{db}\"\n\
         [blobs]\nbackend = \"db\"\n\
         [cluster]\nenabled = true\nlisten = \"127.0.0.1:{cl}\"\nseeds = [{seeds}]\ncookie = \"{cookie}\"\n\
         heartbeat_ms = 100\nsuspect_after = 3\ndown_after = 8\n",
        name = me.name,
        http = me.http,
        cl = me.cluster,
        seeds = seeds.join(", "),
    );
    std::fs::write(dir.join("cluster.toml"), cfg).unwrap();
}

/// `(name, state)` of every member in `url`'s view, sorted by name.
async fn view(url: &str) -> Option<Vec<(String, String)>> {
    let v: serde_json::Value = reqwest::get(format!("{url}/api/v1/cluster"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        v["members"]
            .as_array()?
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or("").to_string(),
                    m["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
    )
}

fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn until_view(url: &str, want: Vec<(String, String)>, what: &str) {
    eventually(what, Duration::from_secs(20), || {
        let want = want.clone();
        async move { (view(url).await? == want).then_some(()) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_agree_notice_a_paused_one_and_take_it_back() {
    let Some(admin) = wani_store::testing::postgres_admin_url() else {
        println!(
            "PostgreSQL tests skipped: set {}",
            wani_store::testing::POSTGRES_ENV
        );
        return;
    };
    let (db, dbname) = wani_store::testing::create_postgres_database(&admin)
        .await
        .unwrap();
    let peers: Vec<Peer> = ["a", "b", "c"]
        .iter()
        .map(|n| Peer {
            name: n,
            http: free_port(),
            cluster: free_port(),
        })
        .collect();
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
