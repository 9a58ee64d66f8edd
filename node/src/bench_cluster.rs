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
    let e = std::env::current_exe().context("finding the wani binary")?;
    Ok(EXE.get_or_init(|| e).clone())
}

pub(crate) fn spawn(dir: &Path) -> anyhow::Result<Proc> {
    let mut child = Command::new(exe()?)
        .current_dir(dir)
        .env("RUST_LOG", "error")
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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

pub(crate) const NAMES: [&str; 3] = ["a", "b", "c"];

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
        let dir = root.join(format!("{}-{}", NAMES[i], n));
        std::fs::create_dir_all(&dir)?;
        let seeds: Vec<String> = (0..n)
            .filter(|j| *j != i)
            .map(|j| format!("\"127.0.0.1:{}\"", ports[j].1))
            .collect();
        let cfg = format!(
            "[node]\nname = \"{name}\"\nlisten = \"127.0.0.1:{http}\"\n[database]\nurl = \"{db}\"\nmax_connections = 16\n\
             [blobs]\nbackend = \"db\"\n[cluster]\nenabled = true\nlisten = \"127.0.0.1:{cl}\"\nseeds = [{seeds}]\n\
             cookie = \"benchmark cookie\"\n[abuse]\nsame_content_secs = 0\n[entities]\nidle_timeout_secs = 3600\n\
             [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Bench\"\nmax_threads = 1000\nbump_limit = 1000000\n\
             captcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n",
            name = NAMES[i],
            http = ports[i].0,
            cl = ports[i].1,
            seeds = seeds.join(", "),
        );
        std::fs::write(dir.join("cluster.toml"), cfg)?;
        procs.push(spawn(&dir)?);
    }
    for p in &procs {
        converge(&p.http, n).await?;
    }
    Ok((procs, dbname))
}

/// Waits until `http` sees `n` nodes up and its view has settled.
async fn converge(http: &str, n: usize) -> anyhow::Result<()> {
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
    let nodes: Vec<wani_supervision::NodeName> = NAMES[..n]
        .iter()
        .map(|s| wani_supervision::NodeName(s.to_string()))
        .collect();
    let shard = wani_supervision::shard_of(
        &wani_supervision::EntityKey::new("thread", thread),
        wani_supervision::DEFAULT_SHARDS,
    );
    wani_supervision::owner_of(shard, &nodes)
        .and_then(|o| nodes.iter().position(|x| x == o))
        .unwrap_or(0)
}

/// Runs the same load against every node at once and adds the results up.
async fn spread(
    procs: &[Proc],
    template: impl Fn(usize) -> RequestTemplate,
    connections: usize,
    d: Duration,
) -> LoadResult {
    let per = (connections / procs.len()).max(1);
    let runs = procs.iter().enumerate().map(|(i, p)| {
        let addr: std::net::SocketAddr = p.http.parse().expect("a socket address");
        let t = template(i);
        async move { load(addr, &[t], per, d).await }
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

fn reply_template(thread: i64) -> RequestTemplate {
    let boundary = "wanibench";
    RequestTemplate {
        method: "POST",
        path: format!("/api/v1/thread/{thread}/new"),
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        body: Some(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nreply {{i}}\r\n--{boundary}--\r\n")),
        expect: 201,
    }
}

async fn count_posts(http: &str, thread: i64) -> anyhow::Result<usize> {
    let (_, body) = http_get(http, &format!("/api/v1/thread/{thread}")).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v.as_array().map(Vec::len).unwrap_or(0))
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
    let _ = writeln!(out, "Machine: {}. {} connections spread over the nodes, {} s per measurement, {build}; every node and the load generator share the machine.\n", machine(), args.connections, args.seconds);
    let _ = writeln!(
        out,
        "| nodes | replies/s (16 threads) | reply p99 ms | cached GET/s (21-post thread) | GET p99 ms | acknowledged = stored |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---|");
    let mut failover_rows = String::new();
    let mut hop_row = String::new();
    for n in 1..=3 {
        eprintln!("{n} node(s): starting");
        let (mut procs, dbname) = cluster(&args.postgres, n, &root).await?;
        let threads: Vec<i64> = {
            let mut t = Vec::new();
            for _ in 0..16 {
                t.push(new_thread(&procs[0].http).await?);
            }
            t
        };
        let before: usize = {
            let mut c = 0;
            for t in &threads {
                c += count_posts(&procs[0].http, *t).await?;
            }
            c
        };
        eprintln!("{n} node(s): replies");
        let writes = spread(
            &procs,
            |i| reply_template(threads[i % threads.len()]),
            args.connections,
            d,
        )
        .await;
        // Sixteen threads over the nodes: one template per connection.
        let mut stored = 0;
        for t in &threads {
            stored += count_posts(&procs[0].http, *t).await?;
        }
        let stored = stored - before;
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
            |_| RequestTemplate::get(format!("/api/v1/thread/{read_thread}")),
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
    let _ = writeln!(
        out,
        "\n| cached GET of a thread (1 connection) | p50 ms | p99 ms |\n|---|---:|---:|\n{hop_row}"
    );
    let _ = writeln!(out, "| failover (default detector: 200 ms heartbeats, down after 8) | seconds to the first acknowledged reply | worst | floor |\n|---|---|---:|---|\n{failover_rows}");
    println!("{out}");
    if let Some(path) = args.out {
        std::fs::write(&path, &out).with_context(|| format!("writing {}", path.display()))?;
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
