//! Make a thread actor panic through the debug-only route
//! `POST /api/v1/debug/panic/thread/{id}`: only the node hosting the thread
//! answers 200 (the others 404), so every node is asked. Its supervisor
//! must restart it and the thread keep taking posts. Release builds of
//! wani have no such route: the fault is then reported as not injected.

use super::World;
use anyhow::bail;

pub async fn inject(w: &mut World, thread: i64) -> anyhow::Result<String> {
    let path = format!("/api/v1/debug/panic/thread/{thread}");
    let mut answers = Vec::new();
    for i in 0..w.cluster.nodes.len() {
        let status = w.client.post_empty(i, &path).await;
        if status == Some(200) {
            return Ok(format!(
                "thread {thread}'s actor panicked on node {}",
                w.cluster.nodes[i].name
            ));
        }
        answers.push(status);
    }
    bail!("no node hosts thread {thread} or the route is missing (a release build?): answers {answers:?}")
}
