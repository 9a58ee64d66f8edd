//! One run of one scenario: boot, load, hurt, heal, read back, check.
//!
//! ```text
//! PostgreSQL ── fresh database
//! nodes a, b, c ── links through the proxy ── all up, all routing
//! workload threads created
//! posters, readers, live subscribers ─────────────────────────── stop
//!        nemesis:   inject ── hold ── heal ── view converges
//!                   └ recovery probes: a write to every thread, through
//!                     the nodes still standing, until each is acknowledged
//! every node reads every thread; database rows; subscribers catch up
//! checkers → report (Markdown, JSON, SVG)
//! ```

use crate::checker;
use crate::client::Client;
use crate::cluster::{eventually, psql, Cluster, ClusterSpec, Postgres};
use crate::faults::{self, World};
use crate::history::{DbPost, FaultRecord, History, NodeRead, Outcome, Recorder, Subscriber};
use crate::report::RunReport;
use crate::rng::Rng;
use crate::scenario::{FaultKind, FaultSpec, Scenario};
use crate::workload::{self, Ctx};
use anyhow::Context;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `wani` binary.
    pub wani: PathBuf,
    /// Reports go to `out/<scenario>-seed<seed>/`.
    pub out: PathBuf,
    /// Use this PostgreSQL server instead of starting one.
    pub postgres: Option<String>,
    pub seed: Option<u64>,
    /// Soak: stretch the scenario to this many seconds.
    pub duration_secs: Option<f64>,
    /// `auto` (namespaces where the machine allows, else the proxy),
    /// `netns` or `proxy`.
    pub network: String,
}

/// Runs a scenario and writes its report.
pub async fn run(scenario: &Scenario, opts: &Options) -> anyhow::Result<RunReport> {
    let began = Instant::now();
    let seed = opts.seed.unwrap_or(scenario.seed);
    let scenario = match opts.duration_secs {
        Some(d) => scenario.stretched(d),
        None => scenario.clone(),
    };
    let mut rng = Rng::new(seed);
    let dir = opts.out.join(format!("{}-seed{seed}", scenario.name));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let wani = std::fs::canonicalize(&opts.wani).with_context(|| {
        format!(
            "no wani binary at {} (cargo build -p wani-node --bin wani)",
            opts.wani.display()
        )
    })?;

    // PostgreSQL's data directory must be reachable by the postgres user
    // when we run as root: under the system temporary directory.
    let pg_dir = std::env::temp_dir().join(format!(
        "wani-chaos-pg-{}-{}",
        std::process::id(),
        scenario.name
    ));
    let pg = match &opts.postgres {
        Some(url) => Postgres::external(url),
        None => Postgres::start(&pg_dir).context("starting PostgreSQL")?,
    };
    let db_name = format!(
        "chaos_{}_{}",
        scenario
            .name
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id()
    );
    pg.drop_database(&db_name);
    let db_url = pg.create_database(&db_name)?;

    // Without the right to mount, the run goes on with blobs in the
    // database and the disk-fill fault says why it was not injected.
    let (blob_fs, blob_fs_error) = match scenario.blob_fs_mib {
        Some(mib) => match faults::disk::BlobFs::mount(&dir.join("blobs"), mib) {
            Ok(fs) => (Some(fs), None),
            Err(e) => (None, Some(format!("{e:#}"))),
        },
        None => (None, None),
    };
    let blobs = match &blob_fs {
        Some(fs) => format!("[blobs]\nbackend = \"fs\"\ndir = \"{}\"", fs.dir.display()),
        None => "[blobs]\nbackend = \"db\"".into(),
    };
    let wants_latency = scenario.faults.iter().any(|f| f.kind == FaultKind::Latency);
    let (netns, why_not) = match opts.network.as_str() {
        "proxy" => (false, "chosen with --network proxy"),
        "netns" => (true, ""),
        _ if opts.postgres.is_some() => (
            false,
            "namespaces need the harness's own PostgreSQL (not --postgres)",
        ),
        _ if !crate::netns::Netns::available() => (
            false,
            "no network namespaces here (they need root and ip netns)",
        ),
        _ if wants_latency && !crate::netns::Netns::netem_available() => (
            false,
            "this kernel has no tc netem, and the scenario adds latency",
        ),
        _ => (true, ""),
    };
    let cluster = Cluster::start(ClusterSpec {
        names: scenario.node_names(),
        root: &dir,
        wani: &wani,
        db_url: &db_url,
        env: scenario.node_env.clone().into_iter().collect(),
        cluster_settings: &scenario.cluster_settings,
        blobs,
        netns,
    })
    .await?;
    let recorder = Recorder::new();
    let client = Client::new(
        cluster.urls(),
        Duration::from_millis(scenario.workload.op_timeout_ms),
        recorder.clone(),
    );
    let mut world = World {
        cluster,
        pg,
        client: client.clone(),
        blob_fs,
        blob_fs_error,
    };
    let n = world.cluster.nodes.len();
    for i in 0..n {
        until_ready(&client, i, n).await?;
    }

    let mut threads = Vec::new();
    for i in 0..scenario.workload.threads {
        let key = format!("setup-{i}");
        let t = eventually(
            "creating a workload thread",
            Duration::from_secs(30),
            || {
                let (client, key) = (client.clone(), key.clone());
                async move { client.create_thread("setup", i % n, &key).await.thread }
            },
        )
        .await?;
        threads.push(t);
    }
    let threads = Arc::new(threads);

    // The workload.
    let stop = Arc::new(AtomicBool::new(false));
    let ctx = Ctx {
        client: client.clone(),
        threads: threads.clone(),
        created: Arc::default(),
        stop: stop.clone(),
        think: Duration::from_millis(scenario.workload.think_ms),
        attempts: scenario.workload.attempts,
        new_thread_ratio: scenario.workload.new_thread_ratio,
    };
    let mut tasks = Vec::new();
    for p in 0..scenario.workload.posters {
        tasks.push(tokio::spawn(workload::poster(ctx.clone(), p, seed)));
    }
    for r in 0..scenario.workload.readers {
        tasks.push(tokio::spawn(workload::reader(ctx.clone(), r, seed)));
    }
    let sub_stop = Arc::new(AtomicBool::new(false));
    let subs = start_subscribers(
        &client,
        &threads,
        scenario.workload.subscribers,
        seed,
        &sub_stop,
    );

    // The nemesis.
    let mut faults_done = Vec::new();
    let mut schedule = scenario.faults.clone();
    schedule.sort_by(|a, b| a.at_secs.total_cmp(&b.at_secs));
    let mut last_heal = 0.0;
    for (k, spec) in schedule.iter().enumerate() {
        let at = recorder.instant(spec.at_secs * 1000.0);
        tokio::time::sleep_until(at.into()).await;
        let rec = nemesis_step(&mut world, spec, k, &threads, &mut rng, &client, &recorder).await;
        if let Some(h) = rec.heal_ms {
            last_heal = h;
        }
        eprintln!(
            "  {} {:?} at {:.1} s: {} (recovery {}, view {})",
            spec.kind.name(),
            rec.targets,
            rec.start_ms / 1000.0,
            rec.detail,
            rec.recovery_ms
                .map(|r| format!("{r:.0} ms"))
                .unwrap_or("—".into()),
            rec.converge_ms
                .map(|r| format!("{r:.0} ms"))
                .unwrap_or("—".into()),
        );
        faults_done.push(rec);
    }
    tokio::time::sleep_until(recorder.instant(scenario.duration_secs * 1000.0).into()).await;
    stop.store(true, Ordering::Relaxed);
    let duration_ms = recorder.now_ms();
    for t in tasks {
        let _ = t.await;
    }

    // After healing: the view, then what every node serves.
    // Measured from the later of the last heal and now: a view that
    // converged after each heal and stayed so answers at once.
    let check_from = recorder.now_ms().max(last_heal);
    let converged_ms = converge(&client, n, Duration::from_secs(30))
        .await
        .map(|at| (at - check_from).max(0.0));
    let final_reads = final_reads(&client, n, &threads, &ctx).await;
    let subscribers = finish_subscribers(subs, &final_reads, &sub_stop).await;
    let db_posts = db_posts(&db_url).context("reading the posts back from PostgreSQL")?;

    let history = History {
        nodes: world.cluster.nodes.iter().map(|x| x.name.clone()).collect(),
        ops: recorder.ops(),
        subscribers,
        faults: faults_done,
        final_reads,
        db_posts,
        converged_ms,
        op_timeout_ms: scenario.workload.op_timeout_ms,
        duration_ms,
    };
    let (verdicts, tally) = checker::check_all(&history, &scenario.checks);
    let passed = checker::passed(&verdicts);
    let report = RunReport {
        network: if netns {
            world.cluster.network.clone()
        } else {
            format!("proxy: a fault-injecting TCP proxy on every link between nodes ({why_not})")
        },
        machine: machine(),
        wani: format!(
            "{}{}",
            wani.display(),
            if wani.components().any(|c| c.as_os_str() == "debug") {
                " (debug build)"
            } else {
                ""
            }
        ),
        scenario: scenario.clone(),
        seed,
        verdicts,
        tally,
        passed,
        wall_secs: began.elapsed().as_secs_f64(),
        history,
        dir: dir.clone(),
    };
    crate::report::write(&report, &dir)?;

    // Teardown: nodes first (they hold connections), then the database.
    drop(world.cluster);
    drop(world.blob_fs);
    if passed || scenario.expect_violations {
        world.pg.drop_database(&db_name);
    }
    drop(world.pg);
    if opts.postgres.is_none() {
        let _ = std::fs::remove_dir_all(&pg_dir);
    }
    Ok(report)
}

/// Waits until `node` sees all `n` nodes up and routes entity requests.
async fn until_ready(client: &Client, node: usize, n: usize) -> anyhow::Result<()> {
    eventually(
        &format!("node {node} seeing {n} nodes up"),
        Duration::from_secs(60),
        || async move {
            let view = client.view(node).await?;
            let up = view.iter().filter(|(_, s)| s == "up").count();
            (up == n && client.routes(node).await).then_some(())
        },
    )
    .await
}

/// Polls every node's view until all agree with every node up; the time
/// (ms since the start) it happened, or `None` within `within`.
pub async fn converge(client: &Client, n: usize, within: Duration) -> Option<f64> {
    let deadline = Instant::now() + within;
    loop {
        let mut views = Vec::new();
        for i in 0..n {
            views.push(client.view(i).await);
        }
        let all_up = views.iter().all(|v| {
            v.as_ref()
                .is_some_and(|v| v.len() == n && v.iter().all(|(_, s)| s == "up"))
        });
        if all_up && views.windows(2).all(|w| w[0] == w[1]) {
            return Some(client.recorder.now_ms());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Injects one fault, probes recovery, holds, heals, waits for the view.
async fn nemesis_step(
    w: &mut World,
    spec: &FaultSpec,
    k: usize,
    threads: &Arc<Vec<i64>>,
    rng: &mut Rng,
    client: &Client,
    recorder: &Recorder,
) -> FaultRecord {
    let n = w.cluster.nodes.len();
    let all: Vec<usize> = (0..n).collect();
    let thread = threads[rng.below(threads.len())];
    let first = match spec.target.as_str() {
        "owner" => w.cluster.owner(thread, &all).unwrap_or(0),
        "random" => rng.below(n),
        name => w
            .cluster
            .nodes
            .iter()
            .position(|x| x.name == name)
            .unwrap_or(0),
    };
    let targets: Vec<usize> = match spec.kind {
        FaultKind::PgRestart | FaultKind::DiskFill => Vec::new(),
        FaultKind::Split => vec![first, (first + 1) % n],
        _ => vec![first],
    };
    let start_ms = recorder.now_ms();
    let injected = faults::inject(w, spec, &targets, thread).await;
    let (injected, detail) = match injected {
        Ok(d) => (true, d),
        Err(e) => (false, format!("not injected: {e:#}")),
    };
    let survivors = faults::survivors(w, spec.kind, &targets);
    // Faults that stop every write until healed are measured from the heal.
    let from_heal = matches!(spec.kind, FaultKind::PgRestart);
    let probes = (injected && !from_heal).then(|| spawn_probes(client, threads, &survivors, k));
    let hold_until = Instant::now() + Duration::from_secs_f64(spec.hold_secs);
    if spec.kind != FaultKind::Panic {
        while Instant::now() < hold_until {
            let step = hold_until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            tokio::time::sleep(step).await;
            if spec.kind == FaultKind::Drop && injected && Instant::now() < hold_until {
                let _ = faults::slow::drop_links(w, &targets);
            }
        }
    }
    let mut heal_ms = None;
    let mut detail = detail;
    if injected {
        match faults::heal(w, spec.kind, &targets).await {
            Ok(()) => heal_ms = Some(recorder.now_ms()),
            Err(e) => detail.push_str(&format!("; healing failed: {e:#}")),
        }
    }
    let probes = match probes {
        Some(p) => Some((p, start_ms)),
        None if injected => Some((
            spawn_probes(client, threads, &all, k),
            heal_ms.unwrap_or(start_ms),
        )),
        None => None,
    };
    let converge_ms = match heal_ms {
        Some(h) => converge(client, n, Duration::from_secs(30))
            .await
            .map(|at| at - h),
        None => None,
    };
    let mut recovery_ms = None;
    if let Some((tasks, since)) = probes {
        let mut worst: Option<f64> = Some(0.0);
        for t in tasks {
            match t.await.ok().flatten() {
                Some(at) => worst = worst.map(|w| w.max(at - since)),
                None => worst = None,
            }
        }
        recovery_ms = worst.map(|w| w.max(0.0));
    }
    FaultRecord {
        kind: spec.kind,
        targets: targets
            .iter()
            .map(|&t| w.cluster.nodes[t].name.clone())
            .collect(),
        target_nodes: targets,
        start_ms,
        heal_ms,
        recovery_ms,
        converge_ms,
        detail,
        injected,
        survivors,
    }
}

/// One probe per thread: replies through `via` (round robin) until one is
/// acknowledged; each task yields when (ms since the start), or `None`
/// after 60 s.
fn spawn_probes(
    client: &Client,
    threads: &Arc<Vec<i64>>,
    via: &[usize],
    fault: usize,
) -> Vec<tokio::task::JoinHandle<Option<f64>>> {
    threads
        .iter()
        .map(|&t| {
            let client = client.clone();
            let via = if via.is_empty() {
                vec![0]
            } else {
                via.to_vec()
            };
            tokio::spawn(async move {
                let give_up = Instant::now() + Duration::from_secs(60);
                let mut i = 0;
                while Instant::now() < give_up {
                    let node = via[i % via.len()];
                    let key = format!("probe-f{fault}-t{t}-{i}");
                    i += 1;
                    let op = client.reply("probe", node, t, &key).await;
                    if op.outcome == Outcome::Ok {
                        return Some(op.end_ms);
                    }
                    // A breath, so a probe refused at once does not spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                None
            })
        })
        .collect()
}

/// Live subscribers whose records fill in as they run.
pub type Subscribers = Vec<(Arc<Mutex<Subscriber>>, tokio::task::JoinHandle<()>)>;

/// Starts `count` live subscribers through `client`, over `threads` in turn.
pub fn start_subscribers(
    client: &Client,
    threads: &[i64],
    count: usize,
    seed: u64,
    stop: &Arc<AtomicBool>,
) -> Subscribers {
    (0..count)
        .map(|s| {
            let thread = threads[s % threads.len()];
            let rec = Arc::new(Mutex::new(Subscriber {
                thread,
                ..Default::default()
            }));
            let task = tokio::spawn(workload::subscriber(
                client.clone(),
                thread,
                seed.wrapping_add(s as u64),
                rec.clone(),
                stop.clone(),
            ));
            (rec, task)
        })
        .collect()
}

/// Gives live subscribers until their thread is complete (as the final
/// reads show it), or 10 s, then stops them and returns their records.
pub async fn finish_subscribers(
    subs: Subscribers,
    final_reads: &std::collections::BTreeMap<i64, Vec<NodeRead>>,
    stop: &AtomicBool,
) -> Vec<Subscriber> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let complete = subs.iter().all(|(rec, _)| {
            let s = rec.lock().expect("subscriber lock");
            let Some(b) = s.baseline else { return false };
            final_reads
                .get(&s.thread)
                .and_then(|r| r.iter().find_map(|r| r.posts.as_ref()))
                .is_none_or(|posts| posts.iter().all(|p| p.0 <= b || s.received.contains(&p.0)))
        });
        if complete {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut subscribers = Vec::new();
    for (rec, task) in subs {
        let _ = task.await;
        subscribers.push(rec.lock().expect("subscriber lock").clone());
    }
    subscribers
}

/// Every thread of the run (those given and those the workload created)
/// as each of the `n` nodes of `client` serves it at the end.
pub async fn final_reads(
    client: &Client,
    n: usize,
    threads: &[i64],
    ctx: &workload::Ctx,
) -> std::collections::BTreeMap<i64, Vec<NodeRead>> {
    let mut all: Vec<i64> = threads.to_vec();
    all.extend(ctx.created.lock().expect("created lock").iter().copied());
    all.sort();
    all.dedup();
    let mut reads = std::collections::BTreeMap::new();
    for t in all {
        let mut by_node = Vec::new();
        for node in 0..n {
            by_node.push(final_read(client, node, t).await);
        }
        reads.insert(t, by_node);
    }
    reads
}

/// A thread as `node` serves it once the cluster healed: retried for 20 s,
/// since a view settling or an owner re-activating may refuse a moment.
pub async fn final_read(client: &Client, node: usize, thread: i64) -> NodeRead {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (op, posts) = client.read("checker", node, thread, false).await;
        if posts.is_some() || Instant::now() > deadline {
            return NodeRead {
                node,
                posts,
                error: op.error,
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every post row, with its commit record when the schema keeps one.
pub fn db_posts(db_url: &str) -> anyhow::Result<Vec<DbPost>> {
    let has_commits = psql(db_url, "SELECT to_regclass('post_commit') IS NOT NULL")?
        .first()
        .and_then(|r| r.first())
        .is_some_and(|v| v == "t");
    let sql = if has_commits {
        "SELECT p.id, p.thread, p.idempotency_key, c.node, c.shard, c.epoch \
         FROM post p LEFT JOIN post_commit c ON c.post = p.id ORDER BY p.id"
    } else {
        "SELECT id, thread, idempotency_key, NULL, NULL, NULL FROM post ORDER BY id"
    };
    Ok(psql(db_url, sql)?
        .into_iter()
        .filter_map(|r| {
            let commit = match (
                r.get(3),
                r.get(4).and_then(|s| s.parse().ok()),
                r.get(5).and_then(|s| s.parse().ok()),
            ) {
                (Some(node), Some(shard), Some(epoch)) if !node.is_empty() => {
                    Some((node.clone(), shard, epoch))
                }
                _ => None,
            };
            Some(DbPost {
                id: r.first()?.parse().ok()?,
                thread: r.get(1)?.parse().ok()?,
                // Stored as "<sender> <key>" (keys are scoped to their
                // sender); the workload knows the key it sent.
                key: r
                    .get(2)
                    .map(|k| k.split_once(' ').map_or(k.as_str(), |(_, key)| key))?
                    .to_string(),
                commit,
            })
        })
        .collect())
}

pub use wani_supervision::host::machine;

/// The default `wani` binary: the debug build of this workspace.
pub fn default_wani() -> PathBuf {
    crate::cluster::repo_root().join("target/debug/wani")
}

/// Where reports go by default.
pub fn default_out() -> PathBuf {
    crate::cluster::repo_root().join("target/chaos")
}

/// Loads every scenario of a directory, sorted by file name.
pub fn scenarios_in(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Scenario)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "toml") {
            let s = Scenario::load(&p)?;
            out.push((p, s));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
