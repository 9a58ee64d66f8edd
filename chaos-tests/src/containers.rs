//! The compose deployment (deploy/compose.yaml) under a node's death: a
//! workload posts through the proxy only, as users do, while the node
//! owning a thread is killed (`podman kill`) and later started again; the
//! checkers of the chaos suite then judge the history.
//!
//! The nodes and PostgreSQL are reached on their container addresses (the
//! engine's bridge network is routable from the host), found by inspecting
//! the containers; nothing here knows how they were started.

use crate::checker::{
    acknowledged_present_once, live_subscribers, same_order_everywhere, unique_ids, Verdict,
};
use crate::client::Client;
use crate::cluster::eventually;
use crate::history::{History, Outcome, Recorder};
use crate::run::{
    converge, db_posts, final_read, final_reads, finish_subscribers, start_subscribers,
};
use crate::workload::{poster, Ctx};
use anyhow::{bail, Context};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to test.
pub struct Options {
    /// The container engine's command (podman or docker).
    pub engine: String,
    /// The proxy's URL, as users reach it.
    pub proxy: String,
    /// The node containers, and the nodes' names (`node.name`) in the same order.
    pub containers: Vec<String>,
    pub names: Vec<String>,
    /// The PostgreSQL container and its database URL with `{host}` for its address.
    pub postgres: String,
    pub db_url: String,
    /// Longest acceptable time from the kill to the first acknowledged post
    /// into the dead node's thread through the proxy.
    pub failover_bound: Duration,
}

/// What happened.
pub struct Report {
    pub verdicts: Vec<Verdict>,
    pub failover: Duration,
    pub rejoin: Duration,
    pub acknowledged: usize,
    /// Live subscribers' reconnections and resyncs (streams through the
    /// dead node break).
    pub reconnects: usize,
    pub resyncs: usize,
}

fn engine(o: &Options, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(&o.engine)
        .args(args)
        .output()
        .with_context(|| format!("running {} {}", o.engine, args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "{} {}: {}",
            o.engine,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A running container's address on its network.
fn address(o: &Options, container: &str) -> anyhow::Result<String> {
    let ip = engine(
        o,
        &[
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
            container,
        ],
    )?;
    ip.split_whitespace()
        .next()
        .map(str::to_string)
        .with_context(|| format!("{container} has no address (is it running?)"))
}

fn node_urls(o: &Options) -> anyhow::Result<Vec<String>> {
    o.containers
        .iter()
        .map(|c| Ok(format!("http://{}:8080", address(o, c)?)))
        .collect()
}

pub async fn run(o: &Options) -> anyhow::Result<Report> {
    let recorder = Recorder::new();
    let timeout = Duration::from_secs(5);
    let proxy = Client::new(vec![o.proxy.clone()], timeout, recorder.clone());
    let n = o.containers.len();
    let nodes = Client::new(node_urls(o)?, timeout, recorder.clone());
    if converge(&nodes, n, Duration::from_secs(90)).await.is_none() {
        bail!("the {n} nodes did not all see each other up within 90 s");
    }
    eventually("the proxy serving", Duration::from_secs(30), || async {
        proxy.routes(0).await.then_some(())
    })
    .await?;

    // Threads made through the proxy are readable through every node.
    let mut threads = Vec::new();
    for i in 0..6 {
        let op = proxy.create_thread("setup", 0, &format!("setup-{i}")).await;
        let t = op
            .thread
            .with_context(|| format!("creating a thread through the proxy: {:?}", op.error))?;
        threads.push(t);
    }
    for &t in &threads {
        for node in 0..n {
            let r = final_read(&nodes, node, t).await;
            if r.posts.map_or(0, |p| p.len()) != 1 {
                bail!(
                    "thread {t} made through the proxy is not served by {}",
                    o.names[node]
                );
            }
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx {
        client: proxy.clone(),
        threads: Arc::new(threads.clone()),
        created: Arc::default(),
        stop: stop.clone(),
        think: Duration::from_millis(20),
        attempts: 20,
        new_thread_ratio: 0.02,
    };
    // Live subscribers through the proxy, the dead node's thread among
    // theirs: each must get every post or be told to resync.
    let sub_stop = Arc::new(AtomicBool::new(false));
    let subs = start_subscribers(&proxy, &threads, 6, 7, &sub_stop);
    let posters: Vec<_> = (0..4)
        .map(|i| tokio::spawn(poster(ctx.clone(), i, 7)))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // The victim: the node owning the first thread.
    let victim = {
        use wani_supervision::{owner_of, shard_of, EntityKey, NodeName, DEFAULT_SHARDS};
        let names: Vec<NodeName> = o.names.iter().map(|s| NodeName(s.clone())).collect();
        let owner = owner_of(
            shard_of(&EntityKey::new("thread", threads[0]), DEFAULT_SHARDS),
            &names,
        )
        .context("no owner")?;
        o.names
            .iter()
            .position(|s| *s == owner.0)
            .context("owner not a node")?
    };
    eprintln!(
        "== killing {} (owns thread {})",
        o.containers[victim], threads[0]
    );
    let killed = Instant::now();
    engine(o, &["kill", &o.containers[victim]])?;
    // A post into its thread every 50 ms, each on its own: one request held
    // up (by the dead node, or a connection the proxy is still trying)
    // must not hide that the ones after it are accepted.
    let (acked, mut first_ack) = tokio::sync::mpsc::unbounded_channel();
    let probing = tokio::spawn({
        let proxy = proxy.clone();
        let thread = threads[0];
        async move {
            for i in 0.. {
                let (proxy, acked) = (proxy.clone(), acked.clone());
                tokio::spawn(async move {
                    let op = proxy.reply("probe", 0, thread, &format!("probe-{i}")).await;
                    if op.outcome == Outcome::Ok {
                        let _ = acked.send(Instant::now());
                    }
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(60), first_ack.recv()).await;
    probing.abort();
    let failover = match first {
        Ok(Some(at)) => at - killed,
        _ => bail!(
            "no post into thread {} was accepted through the proxy within 60 s of the kill",
            threads[0]
        ),
    };
    eprintln!(
        "== a post into its thread was accepted through the proxy {:.2} s after the kill",
        failover.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Started again, it rejoins under its own name (its address may change).
    let started = Instant::now();
    let running = engine(
        o,
        &["inspect", "-f", "{{.State.Running}}", &o.containers[victim]],
    )?;
    if running != "true" {
        engine(o, &["start", &o.containers[victim]])?;
    }
    let nodes = Client::new(node_urls(o)?, timeout, recorder.clone());
    if converge(&nodes, n, Duration::from_secs(60)).await.is_none() {
        bail!(
            "{} did not rejoin within 60 s of its start",
            o.containers[victim]
        );
    }
    let rejoin = started.elapsed();
    eprintln!(
        "== {} rejoined {:.2} s after its start",
        o.containers[victim],
        rejoin.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for p in posters {
        let _ = p.await;
    }

    let final_reads = final_reads(&nodes, n, &threads, &ctx).await;
    let subscribers = finish_subscribers(subs, &final_reads, &sub_stop).await;
    let db_url = o.db_url.replace("{host}", &address(o, &o.postgres)?);
    let history = History {
        nodes: o.names.clone(),
        ops: recorder.ops(),
        subscribers,
        final_reads,
        db_posts: db_posts(&db_url)?,
        op_timeout_ms: timeout.as_millis() as u64,
        duration_ms: recorder.now_ms(),
        ..History::default()
    };
    let (present, tally) = acknowledged_present_once(&history);
    let reconnects = history.subscribers.iter().map(|s| s.reconnects).sum();
    let resyncs = history.subscribers.iter().map(|s| s.resyncs).sum();
    Ok(Report {
        verdicts: vec![
            present,
            unique_ids(&history),
            same_order_everywhere(&history),
            live_subscribers(&history),
        ],
        failover,
        rejoin,
        acknowledged: tally.acknowledged,
        reconnects,
        resyncs,
    })
}
