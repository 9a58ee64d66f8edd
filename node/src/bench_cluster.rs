//! `wani bench-cluster`: failover time, scale-out and the cross-node hop,
//! measured on real `wani serve` processes sharing one PostgreSQL.
//!
//! For 1, 2 and 3 nodes on this machine it measures reply throughput and
//! cached GET throughput, with the load spread over every node's HTTP port.
//! The nodes share the machine's cores with each other and with the load
//! generator, so the numbers show the cost per node and of the hop, not
//! linear scaling. With 3 nodes it also measures the latency of one GET
//! served by the thread's owner against one served by another node (the
//! hop), and the failover time: from `kill -9` (or SIGSTOP) of a thread's
//! owner to the first reply to that thread acknowledged by a survivor, with
//! the default failure-detector settings. Every acknowledged post is checked
//! to be stored.
//!
//! The mass failover: the victim owns `--warm` threads (1,000 by default),
//! each active on it (a reply went through it); it is killed (or stopped),
//! and clients post one reply to every one of those threads through the
//! survivors, each retrying until it is acknowledged. Reported: when the
//! worst thread took its reply again (from the fault), with the median and
//! the 99th percentile; every probe acknowledged is checked to be stored
//! exactly once.

use crate::bench::{http_get, http_post, load, machine, multipart, LoadResult, RequestTemplate};
use anyhow::{bail, Context};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `wani bench-cluster`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchClusterArgs {
    /// PostgreSQL server to create the benchmark's databases on
    /// (`scripts/postgres.sh start DIR PORT` prints one).
    #[arg(long, env = "WANI_TEST_POSTGRES_URL")]
    pub postgres: String,
    /// Seconds each throughput measurement runs.
    #[arg(long, default_value_t = 4)]
    pub seconds: u64,
    /// Concurrent connections, spread over the nodes.
    #[arg(long, default_value_t = 48)]
    pub connections: usize,
    /// Failover measurements of each kind.
    #[arg(long, default_value_t = 3)]
    pub failovers: usize,
    /// Threads the victim of the mass failover owns, warm (0: skip it).
    #[arg(long, default_value_t = 1000)]
    pub warm: usize,
    /// Only the mass failover.
    #[arg(long)]
    pub mass_only: bool,
    /// Only the large cluster: this many nodes (and one that joins): start,
    /// membership traffic, failover, join (see `bench_many`).
    #[arg(long, value_name = "NODES")]
    pub many: Option<usize>,
    /// Hold each node of the large cluster to this many cores (cgroups,
    /// root), as the scale model does.
    #[arg(long, value_name = "CORES")]
    pub many_cpu: Option<f64>,
    /// Threads the victim owns, warm, in the large cluster's failover.
    #[arg(long, default_value_t = 50)]
    pub many_warm: usize,
    /// Only the scale model: 1 to 4 nodes, each held to `--node-cpu` cores
    /// by a cgroup (root, cgroup v1), PostgreSQL on this machine to
    /// `--postgres-cpu`, the load generator to `--load-cpu` (see
    /// `bench_scale`); with `--out`, its chart goes beside it as `.svg`.
    #[arg(long)]
    pub scale_model: bool,
    /// CPU quota of each node in the scale model, in cores.
    #[arg(long, default_value_t = 0.2)]
    pub node_cpu: f64,
    /// CPU quota of PostgreSQL in the scale model, in cores.
    #[arg(long, default_value_t = 0.4)]
    pub postgres_cpu: f64,
    /// CPU quota of the load generator (this process) in the scale model.
    #[arg(long, default_value_t = 0.8)]
    pub load_cpu: f64,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) http: String,
    dir: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGCONT) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn port() -> u16 {
    loop {
        let p = 10_000 + rand::random::<u16>() % 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// The `wani` binary, resolved once: `/proc/self/exe` names a deleted file
/// if the binary is rebuilt while the benchmark runs.
pub(crate) fn exe() -> anyhow::Result<PathBuf> {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(e) = EXE.get() {
        return Ok(e.clone());
    }
    // WANI_BENCH_SERVER runs another build's `wani serve` under this
    // build's load generator: a before/after pair in one run.
    let e = match std::env::var_os("WANI_BENCH_SERVER") {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe().context("finding the wani binary")?,
    };
    Ok(EXE.get_or_init(|| e).clone())
}

pub(crate) fn spawn(dir: &Path) -> anyhow::Result<Proc> {
    // WANI_BENCH_LOG keeps each node's log in its directory (`wani.log`),
    // at that level, to see where a measurement went.
    let log = std::env::var("WANI_BENCH_LOG").ok();
    let stderr = match &log {
        Some(_) => Stdio::from(std::fs::File::create(dir.join("wani.log"))?),
        None => Stdio::null(),
    };
    let mut child = Command::new(exe()?)
        .current_dir(dir)
        .env("RUST_LOG", log.as_deref().unwrap_or("error"))
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("starting wani serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let http = line
        .trim()
        .strip_prefix("wani is serving http://")
        .map(|u| u.trim_end_matches('/').to_string())
        .with_context(|| format!("unexpected first line {line:?}"))?;
    Ok(Proc {
        child,
        http,
        dir: dir.to_path_buf(),
    })
}

/// The name of node `i`: a, b, c, … (twenty-six at most).
pub(crate) fn name(i: usize) -> String {
    char::from(b'a' + i as u8).to_string()
}

/// One benchmark node's config: node `i` of a cluster whose nodes listen on
/// `ports` (HTTP, cluster), every other one a seed.
pub(crate) fn node_config(i: usize, ports: &[(u16, u16)], db: &str, db_connections: u32) -> String {
    let seeds: Vec<String> = (0..ports.len())
        .filter(|j| *j != i)
        .map(|j| format!("\"127.0.0.1:{}\"", ports[j].1))
        .collect();
    format!(
        "[node]\nname = \"{name}\"\nlisten = \"127.0.0.1:{http}\"\n[database]\nurl = \"{db}\"\nmax_connections = {db_connections}\n\
         [blobs]\nbackend = \"db\"\n[cluster]\nenabled = true\nlisten = \"127.0.0.1:{cl}\"\nseeds = [{seeds}]\n\
         cookie = \"benchmark cookie\"\n[abuse]\nsame_content_secs = 0\n[entities]\nidle_timeout_secs = 3600\n\
         [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Bench\"\nmax_threads = 100000\nbump_limit = 1000000\n\
         captcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n",
        name = name(i),
        http = ports[i].0,
        cl = ports[i].1,
        seeds = seeds.join(", "),
    )
}

/// Starts node `i` (see [`node_config`]) in its own directory under `root`.
pub(crate) fn start_node(
    root: &Path,
    i: usize,
    ports: &[(u16, u16)],
    db: &str,
    db_connections: u32,
) -> anyhow::Result<Proc> {
    let dir = root.join(format!("{}-{}", name(i), ports.len()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("cluster.toml"),
        node_config(i, ports, db, db_connections),
    )?;
    spawn(&dir)
}

/// Starts `n` nodes on a fresh database; waits until each sees all up.
pub(crate) async fn cluster(
    postgres: &str,
    n: usize,
    root: &Path,
) -> anyhow::Result<(Vec<Proc>, String)> {
    let (db, dbname) = wani_store::testing::create_postgres_database(postgres).await?;
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (port(), port())).collect();
    let mut procs = Vec::new();
    for i in 0..n {
        procs.push(start_node(root, i, &ports, &db, 16)?);
    }
    for p in &procs {
        converge(&p.http, n).await?;
    }
    Ok((procs, dbname))
}

/// Waits until `http` sees `n` nodes up and its view has settled.
pub(crate) async fn converge(http: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, body)) = http_get(http, "/api/v1/cluster").await {
            let v: serde_json::Value = serde_json::from_slice(&body)?;
            let up = v["members"]
                .as_array()
                .map(|m| m.iter().filter(|x| x["state"] == "up").count())
                .unwrap_or(0);
            if up == n && wani_node_settled(http).await {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{http} did not see {n} nodes up within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a node routes entities yet (a fresh view is not acted on).
async fn wani_node_settled(http: &str) -> bool {
    matches!(
        http_get(http, "/api/v1/board/b/catalog").await,
        Ok((200, _))
    )
}

pub(crate) async fn new_thread(http: &str) -> anyhow::Result<i64> {
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .write_to(&mut png, image::ImageFormat::Png)?;
    let body = multipart(
        "benchb",
        &[("board", "b"), ("body", "bench")],
        Some(png.get_ref()),
    );
    let (status, out) = http_post(
        http,
        "/api/v1/thread/new",
        "multipart/form-data; boundary=benchb",
        &[],
        &body,
    )
    .await?;
    if status != 201 {
        bail!(
            "creating a thread answered {status}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out)?;
    v["id"].as_i64().context("no thread id")
}

pub(crate) async fn reply(http: &str, thread: i64, key: &str) -> std::io::Result<u16> {
    let body = multipart("benchr", &[("body", "failover probe")], None);
    http_post(
        http,
        &format!("/api/v1/thread/{thread}/new"),
        "multipart/form-data; boundary=benchr",
        &[("Idempotency-Key", key)],
        &body,
    )
    .await
    .map(|(s, _)| s)
}

pub(crate) fn owner(thread: i64, n: usize) -> usize {
    let nodes: Vec<wani_supervision::NodeName> = (0..n)
        .map(|i| wani_supervision::NodeName(name(i)))
        .collect();
    let shard = wani_supervision::shard_of(
        &wani_supervision::EntityKey::new("thread", thread),
        wani_supervision::DEFAULT_SHARDS,
    );
    wani_supervision::owner_of(shard, &nodes)
        .and_then(|o| nodes.iter().position(|x| x == o))
        .unwrap_or(0)
}

/// Runs a load against every node at once and adds the results up: node
/// `i`'s connections take turns over `templates(i)`.
pub(crate) async fn spread(
    procs: &[Proc],
    templates: impl Fn(usize) -> Vec<RequestTemplate>,
    connections: usize,
    d: Duration,
) -> LoadResult {
    let per = (connections / procs.len()).max(1);
    let runs = procs.iter().enumerate().map(|(i, p)| {
        let addr: std::net::SocketAddr = p.http.parse().expect("a socket address");
        let t = templates(i);
        async move { load(addr, &t, per, d).await }
    });
    let results = futures::future::join_all(runs).await;
    let mut total = LoadResult::default();
    for r in &results {
        total.ok += r.ok;
        total.errors += r.errors;
        total.seconds = total.seconds.max(r.seconds);
        total.p50_us = total.p50_us.max(r.p50_us);
        total.p99_us = total.p99_us.max(r.p99_us);
    }
    total
}

pub(crate) fn reply_template(thread: i64) -> RequestTemplate {
    let boundary = "wanibench";
    RequestTemplate {
        method: "POST",
        path: format!("/api/v1/thread/{thread}/new"),
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        body: Some(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nreply {{i}}\r\n--{boundary}--\r\n")),
        expect: 201,
    }
}

pub(crate) async fn count_posts(http: &str, thread: i64) -> anyhow::Result<usize> {
    let (_, body) = http_get(http, &format!("/api/v1/thread/{thread}")).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v.as_array().map(Vec::len).unwrap_or(0))
}

/// The posts of all of `threads`, read through `http`.
pub(crate) async fn count_all(http: &str, threads: &[i64]) -> anyhow::Result<usize> {
    let mut n = 0;
    for t in threads {
        n += count_posts(http, *t).await?;
    }
    Ok(n)
}

/// Time from hurting the owner to the first acknowledged reply through a survivor.
async fn failover(procs: &mut [Proc], signal: i32, round: usize) -> anyhow::Result<Duration> {
    let thread = new_thread(&procs[0].http).await?;
    let o = owner(thread, procs.len());
    // The owner activates the thread and takes its lease.
    reply(&procs[o].http, thread, &format!("warm-{round}-{signal}")).await?;
    let survivor = procs[(o + 1) % procs.len()].http.clone();
    unsafe { libc::kill(procs[o].child.id() as i32, signal) };
    let hurt = Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        if let Ok(201) = reply(&survivor, thread, &format!("probe-{round}-{signal}-{i}")).await {
            break;
        }
        if hurt.elapsed() > Duration::from_secs(30) {
            bail!("no reply acknowledged within 30 s of the fault");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = hurt.elapsed();
    // Heal: resume, or restart the killed process; wait for a full view.
    if signal == libc::SIGSTOP {
        unsafe { libc::kill(procs[o].child.id() as i32, libc::SIGCONT) };
    } else {
        let _ = procs[o].child.wait();
        let dir = procs[o].dir.clone();
        procs[o] = spawn(&dir)?;
    }
    let n = procs.len();
    for p in procs.iter() {
        converge(&p.http, n).await?;
    }
    Ok(took)
}

/// What the mass failover measured: for each probed thread, the time from
/// the fault to its first acknowledged reply.
pub(crate) struct Mass {
    pub(crate) times: Vec<Duration>,
    pub(crate) stored_once: usize,
    /// When the first survivor's view declared the victim down.
    detected: Option<Duration>,
    /// When the last one did.
    pub(crate) detected_everywhere: Option<Duration>,
}

impl Mass {
    pub(crate) fn row(&self, name: &str) -> String {
        let mut t = self.times.clone();
        t.sort();
        let at = |q: f64| t[((t.len() as f64 - 1.0) * q).round() as usize].as_secs_f64();
        let within = t.iter().filter(|d| **d <= Duration::from_secs(3)).count();
        format!(
            "| {name} | {} | {} | {:.2} | {:.2} | {:.2} | {within} of {} | {} |",
            t.len(),
            [self.detected, self.detected_everywhere]
                .map(|d| d.map_or("?".into(), |d| format!("{:.2}", d.as_secs_f64())))
                .join(" / "),
            at(0.5),
            at(0.99),
            at(1.0),
            t.len(),
            if self.stored_once == t.len() {
                format!("yes ({})", self.stored_once)
            } else {
                format!("NO: {} of {}", self.stored_once, t.len())
            }
        )
    }
}

/// Posts `body` to `thread` through `http` with an idempotency key.
pub(crate) async fn reply_with(
    http: &str,
    thread: i64,
    key: &str,
    body: &str,
) -> std::io::Result<u16> {
    let form = multipart("benchm", &[("body", body)], None);
    http_post(
        http,
        &format!("/api/v1/thread/{thread}/new"),
        "multipart/form-data; boundary=benchm",
        &[("Idempotency-Key", key)],
        &form,
    )
    .await
    .map(|(s, _)| s)
}

/// Runs `jobs` with at most `width` at once.
pub(crate) async fn bounded<T, F: std::future::Future<Output = T>>(
    width: usize,
    jobs: impl IntoIterator<Item = F>,
) -> Vec<T> {
    use futures::StreamExt;
    futures::stream::iter(jobs)
        .buffer_unordered(width)
        .collect()
        .await
}

/// Creates threads until node `victim` owns `warm` of them; their ids.
pub(crate) async fn owned_threads(
    procs: &[Proc],
    victim: usize,
    warm: usize,
) -> anyhow::Result<Vec<i64>> {
    let n = procs.len();
    let mut owned = Vec::new();
    while owned.len() < warm {
        let made = bounded(
            16,
            (0..64).map(|i| {
                let http = procs[i % n].http.clone();
                async move { new_thread(&http).await }
            }),
        )
        .await;
        for t in made {
            let t = t?;
            if owner(t, n) == victim && owned.len() < warm {
                owned.push(t);
            }
        }
    }
    Ok(owned)
}

/// How long after `since` the node at `http` showed `victim` down in its
/// view (`None` if not within 30 s).
pub(crate) async fn declared_down(
    http: String,
    victim: String,
    since: Instant,
) -> Option<Duration> {
    while since.elapsed() < Duration::from_secs(30) {
        if let Ok((200, body)) = http_get(&http, "/api/v1/cluster").await {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let down = v["members"].as_array().is_some_and(|m| {
                m.iter()
                    .any(|x| x["name"] == victim.as_str() && x["state"] == "down")
            });
            if down {
                return Some(since.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// One mass failover: warms `threads` on `victim`, hurts it with `signal`,
/// and posts one reply to each thread through the survivors.
pub(crate) async fn mass_failover(
    procs: &mut [Proc],
    victim: usize,
    threads: &[i64],
    signal: i32,
    round: usize,
) -> anyhow::Result<Mass> {
    let n = procs.len();
    let warm_http = procs[victim].http.clone();
    for r in bounded(
        32,
        threads.iter().map(|t| {
            let http = warm_http.clone();
            async move { reply_with(&http, *t, &format!("warm-{round}-{t}"), "warm").await }
        }),
    )
    .await
    {
        let status = r?;
        if status != 201 {
            bail!("a warm-up reply through the victim was refused ({status})");
        }
    }
    let survivors: Vec<String> = (0..n)
        .filter(|i| *i != victim)
        .map(|i| procs[i].http.clone())
        .collect();
    unsafe { libc::kill(procs[victim].child.id() as i32, signal) };
    let hurt = Instant::now();
    // When each survivor's view declares the victim down.
    let watchers: Vec<_> = survivors
        .iter()
        .map(|http| tokio::spawn(declared_down(http.clone(), name(victim), hurt)))
        .collect();
    let body = format!("mass probe {round}");
    // Every thread has its poster at once, as on a busy site.
    let probes = bounded(
        threads.len(),
        threads.iter().enumerate().map(|(i, t)| {
            let http = survivors[i % survivors.len()].clone();
            let (t, body) = (*t, body.clone());
            async move {
                let key = format!("mass-{round}-{t}");
                loop {
                    if let Ok(201 | 200) = reply_with(&http, t, &key, &body).await {
                        return Ok(hurt.elapsed());
                    }
                    if hurt.elapsed() > Duration::from_secs(60) {
                        bail!("thread {t} took no reply within 60 s of the fault");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }),
    )
    .await;
    let times = probes.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let mut seen = Vec::new();
    for w in watchers {
        seen.push(w.await.ok().flatten());
    }
    let detected = seen.iter().flatten().min().copied();
    let detected_everywhere = seen
        .iter()
        .copied()
        .collect::<Option<Vec<Duration>>>()
        .and_then(|all| all.into_iter().max());
    let checks = bounded(
        32,
        threads.iter().map(|t| {
            let (http, body) = (survivors[0].clone(), body.clone());
            async move {
                let (_, page) = http_get(&http, &format!("/api/v1/thread/{t}")).await?;
                let v: serde_json::Value = serde_json::from_slice(&page)?;
                let once = v
                    .as_array()
                    .map(|posts| posts.iter().filter(|p| p["body"] == body.as_str()).count() == 1)
                    .unwrap_or(false);
                anyhow::Ok(once)
            }
        }),
    )
    .await;
    let stored_once = checks.into_iter().filter(|c| matches!(c, Ok(true))).count();
    if signal == libc::SIGSTOP {
        unsafe { libc::kill(procs[victim].child.id() as i32, libc::SIGCONT) };
    } else {
        let _ = procs[victim].child.wait();
        let dir = procs[victim].dir.clone();
        procs[victim] = spawn(&dir)?;
    }
    for p in procs.iter() {
        converge(&p.http, n).await?;
    }
    Ok(Mass {
        times,
        stored_once,
        detected,
        detected_everywhere,
    })
}

/// The mass failover on a fresh three-node cluster, after `kill -9` and
/// after SIGSTOP; its table.
async fn mass(args: &BenchClusterArgs, root: &Path) -> anyhow::Result<String> {
    // A connection per probed thread, in this process and in the nodes.
    crate::bench_live::raise_fd_limit(2 * args.warm as u64 + 256)?;
    let (mut procs, dbname) = cluster(&args.postgres, 3, root).await?;
    let victim = 0;
    eprintln!(
        "mass failover: creating threads until {} owns {}",
        name(victim),
        args.warm
    );
    let threads = owned_threads(&procs, victim, args.warm).await?;
    // A real site with this many threads has had its statistics gathered
    // by autovacuum; a database filled in seconds has not.
    let db = wani_store::Store::connect(wani_store::StoreOptions::new(
        wani_store::testing::database_url(&args.postgres, &dbname),
    ))
    .await?;
    db.analyze().await?;
    db.close().await;
    let mut rows = String::new();
    for (round, (name, sig)) in [("kill -9", libc::SIGKILL), ("SIGSTOP", libc::SIGSTOP)]
        .into_iter()
        .enumerate()
    {
        eprintln!("mass failover: {name}");
        let m = mass_failover(&mut procs, victim, &threads, sig, round).await?;
        let _ = writeln!(rows, "{}", m.row(name));
    }
    drop(procs);
    let _ = wani_store::testing::drop_postgres_database(&args.postgres, &dbname).await;
    Ok(mass_table(
        &format!("mass failover: the victim owned {} warm threads", args.warm),
        &rows,
    ))
}

/// A table of [`Mass::row`]s.
pub(crate) fn mass_table(title: &str, rows: &str) -> String {
    format!(
        "| {title} | threads | declared down s (first / every survivor) | p50 s | p99 s | worst s | within 3 s | every probe stored once |\n|---|---:|---:|---:|---:|---:|---:|---|\n{rows}"
    )
}

pub(crate) fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// Runs the cluster benchmark.
pub async fn run(args: BenchClusterArgs) -> anyhow::Result<()> {
    exe()?;
    let root = std::env::temp_dir().join(format!("wani-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let d = Duration::from_secs(args.seconds);
    let mut out = String::new();
    let build = if cfg!(debug_assertions) {
        "debug build (not representative)"
    } else {
        "release build"
    };
    if args.scale_model {
        let _ = writeln!(out, "{build}.");
        let (md, svg) = crate::bench_scale::run(&args, &root).await?;
        out.push_str(&md);
        if let Some(path) = &args.out {
            let chart = path.with_extension("svg");
            std::fs::write(&chart, svg).with_context(|| format!("writing {}", chart.display()))?;
        }
        return finish(&args, &root, &out);
    }
    if let Some(n) = args.many {
        let _ = writeln!(out, "{build}.");
        out.push_str(&crate::bench_many::run(&args, n, &root).await?);
        return finish(&args, &root, &out);
    }
    let _ = writeln!(out, "Machine: {}. {} connections spread over the nodes, {} s per measurement, {build}; every node and the load generator share the machine.\n", machine(), args.connections, args.seconds);
    if !args.mass_only {
        let _ = writeln!(
            out,
            "| nodes | replies/s (16 threads) | reply p99 ms | cached GET/s (21-post thread) | GET p99 ms | acknowledged = stored |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---|");
    }
    let mut failover_rows = String::new();
    let mut hop_row = String::new();
    let sizes = if args.mass_only { 0..=0 } else { 1..=3 };
    for n in sizes.filter(|n| *n > 0) {
        eprintln!("{n} node(s): starting");
        let (mut procs, dbname) = cluster(&args.postgres, n, &root).await?;
        let threads: Vec<i64> = {
            let mut t = Vec::new();
            for _ in 0..16 {
                t.push(new_thread(&procs[0].http).await?);
            }
            t
        };
        let before = count_all(&procs[0].http, &threads).await?;
        eprintln!("{n} node(s): replies");
        let writes = spread(
            &procs,
            |i| vec![reply_template(threads[i % threads.len()])],
            args.connections,
            d,
        )
        .await;
        // Sixteen threads over the nodes: one template per connection.
        let stored = count_all(&procs[0].http, &threads).await? - before;
        eprintln!("{n} node(s): cached reads");
        // A thread of its own for reads (the write phase grew the others to
        // thousands of posts): an opening post and 20 replies.
        let read_thread = new_thread(&procs[0].http).await?;
        for i in 0..20 {
            reply(
                &procs[i % procs.len()].http,
                read_thread,
                &format!("read-{n}-{i}"),
            )
            .await?;
        }
        let reads = spread(
            &procs,
            |_| {
                vec![RequestTemplate::get(format!(
                    "/api/v1/thread/{read_thread}"
                ))]
            },
            args.connections,
            d,
        )
        .await;
        let _ = writeln!(
            out,
            "| {n} | {:.0} | {} | {:.0} | {} | {} |",
            writes.rps(),
            ms(writes.p99_us),
            reads.rps(),
            ms(reads.p99_us),
            if writes.ok as usize == stored {
                format!("yes ({stored})")
            } else {
                format!("NO: {} vs {stored}", writes.ok)
            }
        );
        if n == 3 {
            eprintln!("3 nodes: the hop");
            let t = read_thread;
            let o = owner(t, 3);
            let local: std::net::SocketAddr = procs[o].http.parse()?;
            let remote: std::net::SocketAddr = procs[(o + 1) % 3].http.parse()?;
            let path = format!("/api/v1/thread/{t}");
            let near = load(
                local,
                &[RequestTemplate::get(path.clone())],
                1,
                Duration::from_secs(2),
            )
            .await;
            let far = load(
                remote,
                &[RequestTemplate::get(path)],
                1,
                Duration::from_secs(2),
            )
            .await;
            let _ = write!(
                hop_row,
                "| served by the owner | {} | {} |\n| served by another node (one hop) | {} | {} |\n",
                ms(near.p50_us),
                ms(near.p99_us),
                ms(far.p50_us),
                ms(far.p99_us)
            );
            for (name, sig) in [("kill -9", libc::SIGKILL), ("SIGSTOP", libc::SIGSTOP)] {
                let mut times = Vec::new();
                for round in 0..args.failovers {
                    eprintln!("3 nodes: failover after {name}, round {}", round + 1);
                    times.push(failover(&mut procs, sig, round).await?);
                }
                let list: Vec<String> = times
                    .iter()
                    .map(|t| format!("{:.2}", t.as_secs_f64()))
                    .collect();
                let worst = times.iter().max().copied().unwrap_or_default();
                let _ = writeln!(
                    failover_rows,
                    "| {name} | {} | {:.2} | {} |",
                    list.join(" / "),
                    worst.as_secs_f64(),
                    if worst < Duration::from_secs(3) {
                        "under 3 s: met"
                    } else {
                        "under 3 s: NOT met"
                    }
                );
            }
        }
        drop(procs);
        let _ = wani_store::testing::drop_postgres_database(&args.postgres, &dbname).await;
    }
    if !args.mass_only {
        let _ = writeln!(
            out,
            "\n| cached GET of a thread (1 connection) | p50 ms | p99 ms |\n|---|---:|---:|\n{hop_row}"
        );
        let _ = writeln!(out, "| failover (default detector: 200 ms heartbeats, down after 8) | seconds to the first acknowledged reply | worst | floor |\n|---|---|---:|---|\n{failover_rows}");
    }
    if args.warm > 0 {
        let table = mass(&args, &root).await?;
        let _ = writeln!(out, "{table}");
    }
    finish(&args, &root, &out)
}

/// Prints the report, writes it to `--out`, and removes the nodes' files
/// (kept with WANI_BENCH_LOG).
fn finish(args: &BenchClusterArgs, root: &Path, out: &str) -> anyhow::Result<()> {
    println!("{out}");
    if let Some(path) = &args.out {
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    if std::env::var("WANI_BENCH_LOG").is_err() {
        let _ = std::fs::remove_dir_all(root);
    }
    Ok(())
}
