//! The `wani` binary as a user runs it: real processes, signals, restarts.

mod common;

use common::process::{free_port, wani, Server};
use common::{form, png};
use reqwest::StatusCode;
use std::path::Path;
use std::time::Duration;

fn write_config(dir: &Path, port: u16) {
    let cfg = format!(
        "[node]\nlisten = \"127.0.0.1:{port}\"\n[abuse]\nsame_content_secs = 0\n[[bootstrap.boards]]\nname = \"b\"\ntitle = \"Random\"\ncaptcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n"
    );
    std::fs::write(dir.join("cluster.toml"), cfg).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_nothing_acknowledged_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), free_port());
    let mut server = Server::start(dir.path());
    let c = reqwest::Client::new();
    let res = c
        .post(format!("{}/api/v1/thread/new", server.1))
        .multipart(form(
            &[("board", "b"), ("subject", "survives"), ("body", "op")],
            Some(("a.png", png(50, 50, false))),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let thread = res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();

    // Replies in flight while the node is told to stop: each is either
    // acknowledged (and then stored) or refused, never acknowledged and lost.
    let url = format!("{}/api/v1/thread/{thread}/new", server.1);
    let inflight: Vec<_> = (0..40)
        .map(|i| {
            let c = c.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let res = c
                    .post(url)
                    .multipart(form(&[("body", &format!("reply {i}"))], None))
                    .send()
                    .await
                    .ok()?;
                (res.status() == StatusCode::CREATED)
                    .then_some(async move { res.json::<serde_json::Value>().await.ok() })?
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = server.terminate();
        (s, server)
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "wani exits 0 on SIGTERM, got {:?}",
        status.0
    );
    let mut acked = Vec::new();
    for h in inflight {
        if let Some(v) = h.await.unwrap() {
            acked.push(v["id"].as_i64().unwrap());
        }
    }

    let server = Server::start(dir.path());
    let posts: Vec<serde_json::Value> = c
        .get(format!("{}/api/v1/thread/{thread}", server.1))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<i64> = posts.iter().map(|p| p["id"].as_i64().unwrap()).collect();
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged post {id} was lost (stored: {stored:?})"
        );
    }
    assert_eq!(posts[0]["subject"], "survives");
    let thumb = c
        .get(format!(
            "{}{}",
            server.1,
            posts[0]["thumb_url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), StatusCode::OK, "media survives the restart");
    println!(
        "{} of 40 in-flight replies acknowledged, all stored",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_set_keys_and_health_answers_for_the_node() {
    // As in a container: the file says one thing, the environment another.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), free_port());
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let env = [
        ("WANI_NODE__LISTEN", listen.as_str()),
        ("WANI_SITE__NAME", "set from the environment"),
    ];
    let mut server = Server::start_with(dir.path(), &env);
    assert!(server.1.ends_with(&format!(":{port}")), "{}", server.1);
    let home = reqwest::get(format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("set from the environment"), "{home}");

    // `wani health` asks the node the config names (a wildcard on loopback).
    for extra in [&[][..], &["--ready"][..]] {
        let out = wani(dir.path())
            .envs(env)
            .arg("health")
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "health {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
    let out = wani(dir.path()).envs(env).arg("health").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "health of a stopped node fails");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is it running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A variable naming no key stops the node with the variable named.
    let out = wani(dir.path())
        .env("WANI_NODE__LISTN", "0.0.0.0:1")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WANI_NODE__LISTN") && err.contains("unknown field"),
        "{err}"
    );
}

#[test]
fn board_commands_and_clear_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), free_port());
    let out = wani(dir.path())
        .args([
            "board",
            "create",
            "g",
            "--title",
            "Technology",
            "--max-threads",
            "10",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wani(dir.path())
        .args(["board", "edit", "g", "--bump-limit", "42"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wani(dir.path()).args(["board", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        list.contains("/g/") && list.contains("Technology") && list.contains("42"),
        "{list}"
    );
    assert!(list.contains("/b/"), "bootstrap boards exist too: {list}");

    let out = wani(dir.path())
        .args(["board", "create", "Bad Name!"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a-z"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wani(dir.path())
        .args(["board", "create", "g"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "duplicate names are refused");

    std::fs::write(
        dir.path().join("bad.toml"),
        "[node]\nlisten = \"everywhere\"\n",
    )
    .unwrap();
    let out = wani(dir.path())
        .args(["--config", "bad.toml", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("node.listen"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Board volunteers moderate the boards named, and only existing ones.
    let out = wani(dir.path())
        .args([
            "slip",
            "create",
            "vol",
            "--boards",
            "b,g",
            "--password",
            "long enough pass",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("volunteer"));
    let out = wani(dir.path())
        .args([
            "slip",
            "create",
            "vol2",
            "--boards",
            "nope",
            "--password",
            "long enough pass",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no board"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wani(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success());
    let out = wani(dir.path()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for verb in ["serve", "migrate", "board", "bench"] {
        assert!(help.contains(verb), "--help explains {verb}: {help}");
    }
}
