//! Make an actor panic through wani's debug-only routes (release builds
//! have none: the fault is then reported as not injected).
//!
//! - `actor = "thread"` (the default) or `"board"`: the workload thread's
//!   actor, or its board's, through `POST /api/v1/debug/panic/{thread,board}/{id}`.
//!   Only the node hosting it answers 200 (the others 404), so every node
//!   is asked. Its region must restart it and it keep taking posts.
//! - any other name is a child of the target node's supervision tree
//!   (`region`, `live-hub`, `transport`, `cluster/membership`, `renderer`,
//!   `thumbnailer`, `handover`, `lease-renewal`, `ban-reload`), through
//!   `POST /api/v1/debug/panic/actor/{name}`; the node's supervisor must
//!   restart it and the node keep serving.

use super::World;
use anyhow::{bail, Context};

pub async fn inject(
    w: &mut World,
    actor: &str,
    thread: i64,
    target: usize,
) -> anyhow::Result<String> {
    let entity = match actor {
        "thread" => Some(format!("thread/{thread}")),
        "board" => Some(format!("board/{}", board_id(w).await?)),
        _ => None,
    };
    let Some(entity) = entity else {
        let path = format!("/api/v1/debug/panic/actor/{actor}");
        let node = &w.cluster.nodes[target].name;
        return match w.client.post_empty(target, &path).await {
            Some(200) => Ok(format!("{actor} panicked on node {node} and was restarted")),
            other => bail!("{actor} on node {node} did not panic: answer {other:?}"),
        };
    };
    let path = format!("/api/v1/debug/panic/{entity}");
    let mut answers = Vec::new();
    for i in 0..w.cluster.nodes.len() {
        let status = w.client.post_empty(i, &path).await;
        if status == Some(200) {
            return Ok(format!(
                "{entity}'s actor panicked on node {}",
                w.cluster.nodes[i].name
            ));
        }
        answers.push(status);
    }
    bail!("no node hosts {entity} or the route is missing (a release build?): answers {answers:?}")
}

/// The id of the workload's board, `b`.
async fn board_id(w: &World) -> anyhow::Result<i64> {
    let boards: serde_json::Value = w
        .client
        .raw()
        .get(format!("{}/api/v1/boards/", w.client.urls[0]))
        .send()
        .await
        .context("listing the boards")?
        .json()
        .await
        .context("reading the board list")?;
    boards
        .as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == "b"))
        .and_then(|b| b["id"].as_i64())
        .context("board b is not listed")
}
