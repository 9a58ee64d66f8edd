//! `wani bench-cluster --many N`: a large cluster of real `wani serve`
//! processes on one machine (twenty by default), sharing one PostgreSQL.
//!
//! - **One view at start**: from starting the first process to every node
//!   seeing all N up with a settled view, for 5, 10 and N nodes.
//! - **Membership traffic** at rest (no requests), for the same sizes: the
//!   heartbeat frames and bytes each node sends and receives per second,
//!   read from every node's `wani_cluster_frames_total` and
//!   `wani_cluster_frame_bytes_total` over 10 s. Every node heartbeats every
//!   peer and answers each heartbeat, so a node's traffic grows linearly
//!   with N (the cluster's as N²); the table shows by how much.
//! - **Failover** with N nodes: the victim owns `--many-warm` warm threads;
//!   `kill -9`, then SIGSTOP, while clients post one reply to each through
//!   the survivors ([`mass_failover`]): when the first and the last survivor
//!   declared it down, and when each thread took its reply again.
//! - **Join** of node N+1: shards moved (rendezvous hashing moves the
//!   shards the newcomer wins, ≈ 1/(N+1) of them), the time until every node
//!   sees it up, the entities the old owners stopped, and the time until
//!   every thread of the moved shards took a reply through the newcomer.
//! - Resident memory per node at rest.

use crate::bench::{http_get, machine, rss_of};
use crate::bench_cluster::{
    bounded, converge, mass_failover, mass_table, name, new_thread, owned_threads, owner, port,
    reply, reply_with, start_node, BenchClusterArgs, Proc,
};
use crate::bench_live::{live_path, Crowd};
use crate::bench_scale::Group;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use wani_supervision::{owner_of, NodeName, DEFAULT_SHARDS};

/// Connections each node keeps to PostgreSQL: N nodes share one server.
const DB_CONNECTIONS: u32 = 4;

/// A running cluster of the benchmark.
struct Many {
    procs: Vec<Proc>,
    /// With `--many-cpu`, each node's CPU group (after `procs`: a group
    /// is removed once its process is gone).
    groups: Vec<Group>,
    quota: Option<f64>,
    ports: Vec<(u16, u16)>,
    db: String,
    dbname: String,
}

/// Starts `n` nodes; returns them and the time until all agreed on one view.
async fn start(
    postgres: &str,
    n: usize,
    root: &Path,
    quota: Option<f64>,
) -> anyhow::Result<(Many, Duration)> {
    let (db, dbname) = wani_store::testing::create_postgres_database(postgres).await?;
    let mut m = Many {
        procs: Vec::new(),
        groups: Vec::new(),
        quota,
        ports: (0..n).map(|_| (port(), port())).collect(),
        db,
        dbname,
    };
    let begun = Instant::now();
    for i in 0..n {
        m.launch(root, i)?;
    }
    for p in &m.procs {
        converge(&p.http, n).await?;
    }
    Ok((m, begun.elapsed()))
}

impl Many {
    /// Starts node `i` (its ports already in `ports`), in its CPU group.
    fn launch(&mut self, root: &Path, i: usize) -> anyhow::Result<()> {
        let p = start_node(root, i, &self.ports, &self.db, DB_CONNECTIONS)?;
        if let Some(cores) = self.quota {
            let run = format!("wani-many-{}", std::process::id());
            let g = Group::new(&run, &format!("{}-{}", name(i), self.ports.len()), cores)?;
            g.add(p.child.id())?;
            self.groups.push(g);
        }
        self.procs.push(p);
        Ok(())
    }

    /// Puts a restarted node `i` back in its CPU group.
    fn regroup(&self, i: usize) -> anyhow::Result<()> {
        match self.groups.get(i) {
            Some(g) => g.add(self.procs[i].child.id()),
            None => Ok(()),
        }
    }
}

/// A node's `/metrics`.
async fn metrics_text(http: &str) -> anyhow::Result<String> {
    let (status, body) = http_get(http, "/metrics").await?;
    anyhow::ensure!(status == 200, "{http}/metrics answered {status}");
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A counter or gauge from a node's `/metrics` (see [`sum_samples`]).
async fn metric(http: &str, name: &str, labels: &[&str]) -> anyhow::Result<f64> {
    Ok(sum_samples(&metrics_text(http).await?, name, labels))
}

/// The sum of the samples of metric `name` in Prometheus' text format
/// whose labels include every one of `labels` (0 when there is none).
fn sum_samples(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Membership frames and bytes a node sent and received so far.
async fn membership_traffic(http: &str) -> anyhow::Result<[f64; 4]> {
    let text = metrics_text(http).await?;
    let class = "class=\"membership\"";
    let (sent, received) = ("direction=\"sent\"", "direction=\"received\"");
    Ok([
        sum_samples(&text, "wani_cluster_frames_total", &[class, sent]),
        sum_samples(&text, "wani_cluster_frame_bytes_total", &[class, sent]),
        sum_samples(&text, "wani_cluster_frames_total", &[class, received]),
        sum_samples(&text, "wani_cluster_frame_bytes_total", &[class, received]),
    ])
}

/// Live writes relayed between nodes when each thread is watched on one
/// node: `threads` threads, each followed by one subscriber on a node that
/// does not own it, `posts` replies into each through the first node. Each
/// write should go to one node (the watcher's), not to every other one.
/// Returns the report's row.
async fn live_interest(procs: &[Proc], threads: usize, posts: usize) -> anyhow::Result<String> {
    let n = procs.len();
    let mut made = Vec::new();
    for i in 0..threads {
        made.push(new_thread(&procs[i % n].http).await?);
    }
    let addrs: Vec<String> = made
        .iter()
        .map(|t| procs[(owner(*t, n) + 1) % n].http.clone())
        .collect();
    let paths: Vec<String> = made.iter().map(|t| live_path(*t)).collect();
    let crowd = Crowd::connect(&addrs, &paths, threads, None).await?;
    let sent = || sum_metric(procs, "wani_live_relayed_total", &["direction=\"sent\""]);
    let before = sent().await?;
    for k in 0..posts {
        for t in &made {
            let status = reply(&procs[0].http, *t, &format!("interest-{t}-{k}")).await?;
            anyhow::ensure!(status == 201, "a reply was refused ({status})");
        }
    }
    let total = threads * posts;
    crowd
        .until("every watcher to receive every post", |c| {
            c.received.load(std::sync::atomic::Ordering::Relaxed) >= total
        })
        .await?;
    let relayed = sent().await? - before;
    let received = crowd.close().await.len();
    Ok(format!(
        "| {n} | {threads}, each watched on one node | {total} | {relayed:.0} | {:.2} | {} | {received} of {total} |",
        relayed / total as f64,
        n - 1
    ))
}

/// Mean per-node membership traffic per second at rest, over `over`.
async fn traffic(procs: &[Proc], over: Duration) -> anyhow::Result<[f64; 4]> {
    let mut before = Vec::new();
    for p in procs {
        before.push(membership_traffic(&p.http).await?);
    }
    let t = Instant::now();
    tokio::time::sleep(over).await;
    let mut sum = [0.0; 4];
    for (p, b) in procs.iter().zip(&before) {
        let a = membership_traffic(&p.http).await?;
        for k in 0..4 {
            sum[k] += a[k] - b[k];
        }
    }
    let secs = t.elapsed().as_secs_f64();
    Ok(sum.map(|v| v / procs.len() as f64 / secs))
}

/// Mean resident memory of the nodes, in MiB.
fn mean_rss_mib(procs: &[Proc]) -> f64 {
    let kib: u64 = procs
        .iter()
        .map(|p| rss_of(&p.child.id().to_string()))
        .sum();
    kib as f64 / 1024.0 / procs.len() as f64
}

/// How many of the cluster's shards change owner when `n` nodes become
/// `n + 1`.
fn shards_moved(n: usize) -> usize {
    let names = |k: usize| -> Vec<NodeName> { (0..k).map(|i| NodeName(name(i))).collect() };
    let (before, after) = (names(n), names(n + 1));
    (0..DEFAULT_SHARDS)
        .filter(|s| {
            let shard = wani_supervision::ShardId(*s);
            owner_of(shard, &before) != owner_of(shard, &after)
        })
        .count()
}

/// Sum of a counter over every node.
async fn sum_metric(procs: &[Proc], name: &str, labels: &[&str]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for p in procs {
        total += metric(&p.http, name, labels).await?;
    }
    Ok(total)
}

/// Node `n` joins the `n` running ones: its table rows.
async fn join(m: &mut Many, root: &Path, threads: &[i64]) -> anyhow::Result<String> {
    let n = m.procs.len();
    let handed_over = "wani_shard_entities_handed_over_total";
    let before = sum_metric(&m.procs, handed_over, &[]).await?;
    m.ports.push((port(), port()));
    let begun = Instant::now();
    m.launch(root, n)?;
    for p in &m.procs {
        converge(&p.http, n + 1).await?;
    }
    let agreed = begun.elapsed();
    // Hand-over runs on each old owner as its view changes; give it a
    // moment to finish before counting.
    let mut stopped = sum_metric(&m.procs, handed_over, &[]).await? - before;
    let settle = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = sum_metric(&m.procs, handed_over, &[]).await? - before;
        if now == stopped || Instant::now() > settle {
            break;
        }
        stopped = now;
    }
    let moved: Vec<i64> = threads
        .iter()
        .copied()
        .filter(|t| owner(*t, n + 1) == n)
        .collect();
    let http = m.procs[n].http.clone();
    let begun = Instant::now();
    let times = bounded(
        moved.len().max(1),
        moved.iter().map(|t| {
            let http = http.clone();
            async move {
                let key = format!("join-{t}");
                loop {
                    if let Ok(201 | 200) = reply_with(&http, *t, &key, "after the join").await {
                        return Ok(begun.elapsed());
                    }
                    if begun.elapsed() > Duration::from_secs(60) {
                        anyhow::bail!("thread {t} took no reply through the newcomer within 60 s");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }),
    )
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<Duration>>>()?;
    let worst = times.iter().max().copied().unwrap_or_default();
    Ok(format!(
        "| node {} joins the {n} | {} of {DEFAULT_SHARDS} (1/{} would be {:.1}) | {:.2} | {stopped:.0} | {} threads, worst {:.2} s |\n",
        name(n),
        shards_moved(n),
        n + 1,
        DEFAULT_SHARDS as f64 / (n + 1) as f64,
        agreed.as_secs_f64(),
        moved.len(),
        worst.as_secs_f64(),
    ))
}

/// Every thread `procs` activated: replies to each through its owner.
async fn warm_all(procs: &[Proc], threads: &[i64]) -> anyhow::Result<()> {
    let n = procs.len();
    for r in bounded(
        32,
        threads.iter().map(|t| {
            let http = procs[owner(*t, n)].http.clone();
            async move { reply_with(&http, *t, &format!("warm-all-{t}"), "warm").await }
        }),
    )
    .await
    {
        let status = r?;
        anyhow::ensure!(status == 201, "a warm-up reply was refused ({status})");
    }
    Ok(())
}

/// Runs the large-cluster measurements; their Markdown.
pub async fn run(args: &BenchClusterArgs, n: usize, root: &Path) -> anyhow::Result<String> {
    anyhow::ensure!(
        (3..=25).contains(&n),
        "--many takes 3 to 25 nodes (one more joins)"
    );
    crate::bench_live::raise_fd_limit(4096)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}. {n} nodes and PostgreSQL share it; {DB_CONNECTIONS} database connections per node; {}.\n",
        machine(),
        match args.many_cpu {
            Some(c) => format!("each node held to {c} core by a cgroup"),
            None => "no CPU quotas".into(),
        }
    );
    let _ = writeln!(
        out,
        "| nodes | start to one view s | membership frames/s sent per node | bytes/s sent per node | frames/s received per node | bytes/s received per node | RSS per node MiB |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    let mut sizes: Vec<usize> = [5, 10, n].into_iter().filter(|s| *s <= n).collect();
    sizes.dedup();
    let mut big = None;
    let mut live = None;
    for size in sizes {
        eprintln!("{size} nodes: starting");
        let (many, agreed) = start(&args.postgres, size, root, args.many_cpu).await?;
        // Let start-up chatter (dials, first views) pass.
        tokio::time::sleep(Duration::from_secs(2)).await;
        eprintln!("{size} nodes: membership traffic at rest");
        let t = traffic(&many.procs, Duration::from_secs(10)).await?;
        let _ = writeln!(
            out,
            "| {size} | {:.2} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} |",
            agreed.as_secs_f64(),
            t[0],
            t[1],
            t[2],
            t[3],
            mean_rss_mib(&many.procs)
        );
        if size == 10 {
            eprintln!("{size} nodes: live writes between nodes, each thread watched on one");
            live = Some(live_interest(&many.procs, 10, 20).await?);
        }
        if size == n {
            big = Some(many);
        } else {
            let dbname = many.dbname.clone();
            drop(many);
            let _ = wani_store::testing::drop_postgres_database(&args.postgres, &dbname).await;
        }
    }
    if let Some(row) = live {
        let _ = writeln!(
            out,
            "\n| nodes | threads | posts | live writes relayed | per post | to every other live node it would be | posts received by the watchers |\n|---:|---|---:|---:|---:|---:|---|\n{row}"
        );
    }
    let mut m = big.context("no cluster of the full size")?;
    let victim = 1;
    let warm = args.many_warm;
    eprintln!(
        "{n} nodes: creating threads until {} owns {warm}",
        name(victim)
    );
    let owned = owned_threads(&m.procs, victim, warm).await?;
    let mut rows = String::new();
    for (round, (what, sig)) in [("kill -9", libc::SIGKILL), ("SIGSTOP", libc::SIGSTOP)]
        .into_iter()
        .enumerate()
    {
        eprintln!("{n} nodes: failover after {what}");
        let mass = mass_failover(&mut m.procs, victim, &owned, sig, round).await?;
        m.regroup(victim)?;
        let _ = writeln!(rows, "{}", mass.row(what));
    }
    let _ = writeln!(
        out,
        "\n{}",
        mass_table(
            &format!("{n} nodes: failover, the victim owned {warm} warm threads"),
            &rows
        )
    );
    // Every thread made so far, warm on its owner, so the join moves
    // active entities.
    let all = all_threads(&m.procs[0].http).await?;
    eprintln!("{n} nodes: warming {} threads", all.len());
    warm_all(&m.procs, &all).await?;
    eprintln!("{n} nodes: a node joins");
    let row = join(&mut m, root, &all).await?;
    let _ = writeln!(
        out,
        "| join | shards moved | every node sees it up, s | entities the old owners stopped | moved threads replied to through the newcomer |\n|---|---:|---:|---:|---|\n{row}"
    );
    let dbname = m.dbname.clone();
    drop(m);
    let _ = wani_store::testing::drop_postgres_database(&args.postgres, &dbname).await;
    Ok(out)
}

/// Every thread of board `b`, from its catalog.
async fn all_threads(http: &str) -> anyhow::Result<Vec<i64>> {
    let (status, body) = http_get(http, "/api/v1/board/b/catalog").await?;
    anyhow::ensure!(status == 200, "the catalog answered {status}");
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let ids = v
        .as_array()
        .map(|ts| ts.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newcomer_takes_about_its_share_of_shards() {
        for n in [3, 10, 20] {
            let moved = shards_moved(n);
            let share = DEFAULT_SHARDS as usize / (n + 1);
            assert!(moved > 0 && moved <= 3 * share + 2, "{n}: {moved}");
        }
    }

    #[test]
    fn samples_are_summed_by_name_and_labels() {
        let text = "# TYPE wani_cluster_frames_total counter\n\
            wani_cluster_frames_total{class=\"membership\",direction=\"sent\"} 42\n\
            wani_cluster_frames_total{class=\"membership\",direction=\"received\"} 40\n\
            wani_cluster_frames_total{class=\"actors\",direction=\"sent\"} 7\n\
            wani_cluster_frames_total_other 1000\n\
            wani_shard_entities_handed_over_total 3\n";
        let frames = "wani_cluster_frames_total";
        assert_eq!(
            sum_samples(
                text,
                frames,
                &["class=\"membership\"", "direction=\"sent\""]
            ),
            42.0
        );
        assert_eq!(sum_samples(text, frames, &["class=\"membership\""]), 82.0);
        assert_eq!(sum_samples(text, frames, &[]), 89.0);
        assert_eq!(
            sum_samples(text, "wani_shard_entities_handed_over_total", &[]),
            3.0
        );
        assert_eq!(sum_samples(text, "wani_absent", &[]), 0.0);
    }
}
