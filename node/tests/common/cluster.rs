//! Helpers of the multi-process cluster tests: each node's `cluster.toml`,
//! and its view as `GET /api/v1/cluster` shows it.

use super::eventually;
use std::path::Path;
use std::time::Duration;

/// One node of a test cluster: its name and its two ports.
#[derive(Clone)]
pub struct Peer {
    pub name: &'static str,
    pub http: u16,
    pub cluster: u16,
}

/// Peers with these names, each on two free ports.
pub fn peers(names: &[&'static str]) -> Vec<Peer> {
    names
        .iter()
        .map(|n| Peer {
            name: n,
            http: super::process::free_port(),
            cluster: super::process::free_port(),
        })
        .collect()
}

/// The PostgreSQL server for the cluster tests, or `None` (with a note)
/// when `WANI_TEST_POSTGRES_URL` is not set: a cluster refuses SQLite.
pub fn postgres_or_skip() -> Option<String> {
    let admin = wani_store::testing::postgres_admin_url();
    if admin.is_none() {
        println!(
            "PostgreSQL tests skipped: set {}",
            wani_store::testing::POSTGRES_ENV
        );
    }
    admin
}

/// The ids of a thread's posts in the order `url` serves them.
pub async fn post_ids(url: &str, thread: i64) -> Option<Vec<i64>> {
    let v: serde_json::Value = reqwest::get(format!("{url}/api/v1/thread/{thread}"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        v.as_array()?
            .iter()
            .filter_map(|p| p["id"].as_i64())
            .collect(),
    )
}

/// Writes `dir/cluster.toml` for `me`, with every other peer of `all` as a
/// seed. `[cluster]` is the last section, so a caller may append to it.
pub fn write_config(dir: &Path, me: &Peer, all: &[Peer], db: &str, cookie: &str) {
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
pub async fn view(url: &str) -> Option<Vec<(String, String)>> {
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

/// `[("a", "up"), …]` as [`view`] returns it.
pub fn states(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Waits (20 s at most) until `url`'s view is `want`.
pub async fn until_view(url: &str, want: Vec<(String, String)>, what: &str) {
    eventually(what, Duration::from_secs(20), || {
        let want = want.clone();
        async move { (view(url).await? == want).then_some(()) }
    })
    .await
}
