//! `wani bench-live`: live updates under thousands of subscribers, on real
//! `wani serve` processes.
//!
//! - **Latency**: replies are posted to one thread one after another, and
//!   each event's arrival at each of its subscribers is timed from the
//!   moment its reply was sent (so the commit is included); p50/p99 over
//!   every (post, subscriber) pair. Two shapes of crowd: N connections
//!   spread over 1,000 threads (each post reaches its thread's N/1,000
//!   watchers while N are connected: a busy site), and all N watching the
//!   one thread (each post goes to every connection: the worst case). For
//!   N = 1,000 and 10,000 on one node, and with `--postgres` across nodes:
//!   the thread's owner takes the posts and the subscribers are connected
//!   to the two other nodes. With `--floor`, the all-on-one-thread crowd is
//!   also timed against a bare fan-out server (`bench_floor`): the least
//!   any server costs for that shape under this load generator.
//! - **Memory**: the server's RSS growth with 10,000 idle subscribers,
//!   divided by 10,000 (connection, hyper's buffers, subscriber actor and
//!   queue all included).
//! - **Posting throughput** into 16 threads with no subscriber and with
//!   10,000 attached (spread over 1,000 threads, the 16 written ones among
//!   them, so each post reaches its ~10 watchers), measured twice each,
//!   interleaved, and reported as a ratio.
//!
//! Subscribers are raw TCP connections in this process (one task each,
//! a 4 KiB read buffer), sharing the machine's cores with the server.

use crate::bench::{load, machine, rss_of, RequestTemplate};
use crate::bench_cluster::{cluster, ms, new_thread, owner, reply, spawn, Proc};
use anyhow::{bail, Context};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Options of `wani bench-live`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchLiveArgs {
    /// The larger subscriber count (the smaller one is a tenth of it).
    #[arg(long, default_value_t = 10_000)]
    pub subscribers: usize,
    /// Posts timed at each subscriber count.
    #[arg(long, default_value_t = 30)]
    pub posts: usize,
    /// Seconds each throughput measurement runs.
    #[arg(long, default_value_t = 4)]
    pub seconds: u64,
    /// Throughput measurements of each kind (interleaved).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Also measure across nodes: a PostgreSQL server to create a database on.
    #[arg(long, env = "WANI_TEST_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only the worst fan-out: every subscriber on the one posted thread,
    /// on one node (and across nodes with `--postgres`); no spread
    /// latency, memory or throughput.
    #[arg(long)]
    pub fan_out_only: bool,
    /// Also time the one-thread crowd against a bare fan-out server (no
    /// wani: one blocking write per subscriber, see `bench_floor`) under the
    /// same load generator: this machine's floor for that shape.
    #[arg(long)]
    pub floor: bool,
    /// The bare server's writer threads (default: one per core).
    #[arg(long, requires = "floor")]
    pub floor_writers: Option<usize>,
}

/// A crowd of subscribers and what they received.
pub(crate) struct Crowd {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<Vec<(i64, Instant)>>>,
    ready: Arc<AtomicUsize>,
    pub(crate) received: Arc<AtomicUsize>,
}

impl Crowd {
    /// Connects `n` subscribers, subscriber `i` to `paths[i % len]` on
    /// `addrs[i % len]`, and waits until every one is registered.
    pub(crate) async fn connect(
        addrs: &[String],
        paths: &[String],
        n: usize,
        pace: Option<Duration>,
    ) -> anyhow::Result<Crowd> {
        let (stop, stopped) = watch::channel(false);
        let ready = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            // Connections open a few hundred at a time: a burst of ten
            // thousand SYNs overflows the listen backlog.
            while i - ready.load(Ordering::Relaxed).min(i) > 256 {
                tokio::task::yield_now().await;
            }
            let addr = addrs[i % addrs.len()].clone();
            let path = paths[i % paths.len()].clone();
            let (ready, received, stopped) = (ready.clone(), received.clone(), stopped.clone());
            tasks.push(tokio::spawn(async move {
                subscriber(addr, path, ready, received, stopped, pace)
                    .await
                    .unwrap_or_default()
            }));
        }
        let crowd = Crowd {
            stop,
            tasks,
            ready,
            received,
        };
        crowd
            .until("every subscriber to connect", |c| {
                c.ready.load(Ordering::Relaxed) >= n
            })
            .await?;
        Ok(crowd)
    }

    pub(crate) async fn until(
        &self,
        what: &str,
        done: impl Fn(&Crowd) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done(self) {
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what} ({} connected, {} events)",
                    self.ready.load(Ordering::Relaxed),
                    self.received.load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Disconnects everyone; every event received, with its arrival time.
    pub(crate) async fn close(self) -> Vec<(i64, Instant)> {
        let _ = self.stop.send(true);
        let mut all = Vec::new();
        for t in self.tasks {
            if let Ok(v) = t.await {
                all.extend(v);
            }
        }
        all
    }
}

/// One subscriber: opens the stream, counts itself ready on `new-client`,
/// then notes the post id and arrival time of every `new-post`.
async fn subscriber(
    addr: String,
    path: String,
    ready: Arc<AtomicUsize>,
    received: Arc<AtomicUsize>,
    mut stopped: watch::Receiver<bool>,
    pace: Option<Duration>,
) -> std::io::Result<Vec<(i64, Instant)>> {
    let mut stream = loop {
        match TcpStream::connect(&addr).await {
            Ok(s) => break s,
            // The listen backlog was full: try again.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())
        .await?;
    let mut got = Vec::new();
    // The stop is awaited once for the whole stream, not beside every
    // read: ten thousand readers re-registering with one channel at each
    // event contend on its lock, and that was the load generator's cost,
    // not the server's.
    tokio::select! {
        r = read_events(&mut stream, &ready, &received, pace, &mut got) => r?,
        _ = stopped.changed() => {}
    }
    Ok(got)
}

/// Reads one stream until it ends, noting the post id and arrival time of
/// every `new-post` in `got`.
async fn read_events(
    stream: &mut TcpStream,
    ready: &AtomicUsize,
    received: &AtomicUsize,
    pace: Option<Duration>,
    got: &mut Vec<(i64, Instant)>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 4096];
    let mut carry: Vec<u8> = Vec::new();
    let mut registered = false;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let at = Instant::now();
        carry.extend_from_slice(&buf[..n]);
        if !registered && find(&carry, b"new-client").is_some() {
            registered = true;
            ready.fetch_add(1, Ordering::Relaxed);
        }
        // Every event is one chunk of the response, so a complete one ends
        // in a blank line; keep what follows the last one for the next read.
        let Some(end) = rfind(&carry, b"\n\n") else {
            continue;
        };
        let mut rest = &carry[..end];
        while let Some(i) = find(rest, b"\"post\":") {
            rest = &rest[i + 7..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if let Some(post) = std::str::from_utf8(&rest[..digits])
                .ok()
                .and_then(|d| d.parse().ok())
            {
                got.push((post, at));
                received.fetch_add(1, Ordering::Relaxed);
            }
        }
        carry.drain(..end + 2);
        if let Some(pace) = pace {
            // A reader at its own pace: what arrives meanwhile waits in the
            // kernel and is taken in one read.
            tokio::time::sleep(pace).await;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Post-to-event latency in µs: p50 and p99 over every (post, subscriber).
struct Latency {
    p50_us: u64,
    p99_us: u64,
    events: usize,
}

/// Posts `posts` replies to `thread` through `post_via`, one after the
/// other, each once all `n` subscribers have its event.
async fn time_posts(
    crowd: Crowd,
    post_via: &str,
    thread: i64,
    n: usize,
    posts: usize,
    tag: &str,
) -> anyhow::Result<Latency> {
    let mut sent: HashMap<i64, Instant> = HashMap::new();
    for k in 0..posts {
        let t0 = Instant::now();
        let (status, body) = crate::bench::http_post(
            post_via,
            &format!("/api/v1/thread/{thread}/new"),
            "multipart/form-data; boundary=live",
            &[("Idempotency-Key", &format!("{tag}-{k}"))],
            &crate::bench::multipart("live", &[("body", "timed")], None),
        )
        .await?;
        if status != 201 {
            bail!("a timed reply answered {status}");
        }
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        sent.insert(v["id"].as_i64().context("post id")?, t0);
        crowd
            .until("every subscriber to get the post", |c| {
                c.received.load(Ordering::Relaxed) >= (k + 1) * n
            })
            .await?;
    }
    let got = crowd.close().await;
    let mut lat: Vec<u64> = got
        .iter()
        .filter_map(|(post, at)| Some(at.duration_since(*sent.get(post)?).as_micros() as u64))
        .collect();
    if lat.len() != n * posts {
        bail!("expected {} events, counted {}", n * posts, lat.len());
    }
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    Ok(Latency {
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        events: lat.len(),
    })
}

/// The bare fan-out server, in its own process; killed on drop.
struct Floor {
    child: std::process::Child,
    http: String,
}

impl Floor {
    async fn start(writers: Option<usize>) -> anyhow::Result<Floor> {
        let http = format!("127.0.0.1:{}", crate::bench_cluster::port());
        // This build's binary, even when WANI_BENCH_SERVER names another:
        // the floor is the same whichever wani is measured.
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(["bench-live-floor", "--listen", &http]);
        if let Some(w) = writers {
            cmd.args(["--writers", &w.to_string()]);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting the bare fan-out server")?;
        let floor = Floor { child, http };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&floor.http).await.is_err() {
            if Instant::now() > deadline {
                bail!("the bare fan-out server did not listen on {}", floor.http);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(floor)
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts one node on SQLite in `dir`.
fn single(dir: &Path) -> anyhow::Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let cfg = format!(
        "[node]\nname = \"solo\"\nlisten = \"127.0.0.1:{http}\"\n[database]\nurl = \"sqlite://{db}\"\n\
         [blobs]\nbackend = \"fs\"\ndir = \"{blobs}\"\n[abuse]\nsame_content_secs = 0\n\
         [entities]\nidle_timeout_secs = 3600\n\
         [[bootstrap.boards]]\nname = \"b\"\ntitle = \"Bench\"\nmax_threads = 2000\nbump_limit = 1000000\n\
         captcha_threads = false\nthread_interval_secs = 0\nreply_interval_secs = 0\n",
        http = crate::bench_cluster::port(),
        db = dir.join("wani.db").display(),
        blobs = dir.join("blobs").display(),
    );
    std::fs::write(dir.join("cluster.toml"), cfg)?;
    spawn(dir)
}

/// Raises this process's open-file limit to its hard limit (the servers it
/// starts inherit it): ten thousand subscribers are ten thousand sockets.
pub(crate) fn raise_fd_limit(need: u64) -> anyhow::Result<()> {
    let limit = crate::http::conn::raise_fd_limit();
    if limit < need {
        bail!("the open-file limit is {limit}: {need} subscribers need more (raise `ulimit -Hn`)");
    }
    Ok(())
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn live_path(thread: i64) -> String {
    format!("/api/v1/live?thread={thread}")
}

fn reply_template(thread: i64) -> RequestTemplate {
    RequestTemplate {
        method: "POST",
        path: format!("/api/v1/thread/{thread}/new"),
        content_type: Some("multipart/form-data; boundary=lv".into()),
        body: Some(
            "--lv\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nreply {i}\r\n--lv--\r\n"
                .into(),
        ),
        expect: 201,
    }
}

/// Runs the live-update benchmark.
pub async fn run(args: BenchLiveArgs) -> anyhow::Result<()> {
    let big = args.subscribers.max(10);
    let small = big / 10;
    raise_fd_limit(big as u64 + 1000)?;
    let root = std::env::temp_dir().join(format!("wani-bench-live-{}", std::process::id()));
    let result = measure(&args, big, small, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    let report = result?;
    print!("{report}");
    if let Some(path) = &args.out {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn measure(
    args: &BenchLiveArgs,
    big: usize,
    small: usize,
    root: &Path,
) -> anyhow::Result<String> {
    let build = if cfg!(debug_assertions) {
        "debug build (not representative)"
    } else {
        "release build"
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}. One `wani serve` on SQLite (and, with --postgres, three on PostgreSQL); \
         subscribers are raw connections from the benchmark process on the same cores; {build}.\n",
        machine()
    );

    eprintln!("one node: starting");
    let node = single(&root.join("solo"))?;
    let pid = node.child.id();
    let http = node.http.clone();
    let hot = new_thread(&http).await?;
    let mut spread_threads = vec![hot];
    let spread = if args.fan_out_only { 16 } else { 1000 };
    for _ in 1..spread {
        spread_threads.push(new_thread(&http).await?);
    }
    let written: Vec<i64> = spread_threads[..16].to_vec();
    // Warm every thread actor (the subscribers' posts and pages would anyway).
    for (i, t) in written.iter().enumerate() {
        reply(&http, *t, &format!("warm-{i}")).await?;
    }

    let _ = writeln!(
        out,
        "| where | subscribers connected | watching the posted thread | events timed | p50 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|"
    );
    let spread_paths: Vec<String> = spread_threads.iter().map(|t| live_path(*t)).collect();
    let mut memory = String::new();
    let rss_before = rss_of(&pid.to_string());
    let (spread_counts, one_counts) = if args.fan_out_only {
        (vec![], vec![big])
    } else {
        (vec![big, small], vec![small, big])
    };
    for n in spread_counts {
        eprintln!("one node: latency with {n} subscribers over 1,000 threads");
        let watchers = n.div_ceil(spread_paths.len());
        let crowd = Crowd::connect(std::slice::from_ref(&http), &spread_paths, n, None).await?;
        if n == big {
            // Idle: let the server settle, then read its memory.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rss_after = rss_of(&pid.to_string());
            let per = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
            let _ = writeln!(
                memory,
                "Memory: server RSS {:.1} MiB before, {:.1} MiB with {n} idle subscribers: **{per:.1} KiB per subscriber** (floor: under 24 KiB).\n",
                rss_before as f64 / 1024.0,
                rss_after as f64 / 1024.0
            );
        }
        let l = time_posts(
            crowd,
            &http,
            hot,
            watchers,
            args.posts,
            &format!("spread-{n}"),
        )
        .await?;
        let _ = writeln!(
            out,
            "| one node | {n} | {watchers} | {} | {} | {} |",
            l.events,
            ms(l.p50_us),
            ms(l.p99_us)
        );
    }
    for n in one_counts.iter().copied() {
        eprintln!("one node: latency with {n} subscribers on one thread");
        let crowd = Crowd::connect(std::slice::from_ref(&http), &[live_path(hot)], n, None).await?;
        let l = time_posts(crowd, &http, hot, n, args.posts, &format!("one-{n}")).await?;
        let _ = writeln!(
            out,
            "| one node | {n} | {n} | {} | {} | {} |",
            l.events,
            ms(l.p50_us),
            ms(l.p99_us)
        );
    }

    if args.floor {
        for n in one_counts.iter().copied() {
            eprintln!("bare fan-out server: latency with {n} subscribers");
            let floor = Floor::start(args.floor_writers).await?;
            let crowd =
                Crowd::connect(std::slice::from_ref(&floor.http), &[live_path(1)], n, None).await?;
            let l = time_posts(crowd, &floor.http, 1, n, args.posts, "floor").await?;
            let _ = writeln!(
                out,
                "| bare writer, no wani (this machine's floor) | {n} | {n} | {} | {} | {} |",
                l.events,
                ms(l.p50_us),
                ms(l.p99_us)
            );
        }
    }

    let mut cross = String::new();
    if let Some(pg) = &args.postgres {
        eprintln!("three nodes: starting");
        let (procs, dbname) = cluster(pg, 3, &root.join("cluster")).await?;
        let urls: Vec<String> = procs.iter().map(|p| p.http.clone()).collect();
        let thread = new_thread(&urls[0]).await?;
        let o = owner(thread, 3);
        let others: Vec<String> = (0..3)
            .filter(|&i| i != o)
            .map(|i| urls[i].clone())
            .collect();
        reply(&urls[o], thread, "warm").await?;
        for n in one_counts.iter().copied() {
            eprintln!("three nodes: latency with {n} subscribers");
            let crowd = Crowd::connect(&others, &[live_path(thread)], n, None).await?;
            let l = time_posts(crowd, &urls[o], thread, n, args.posts, &format!("x-{n}")).await?;
            let _ = writeln!(
                cross,
                "| across nodes (posted on the owner, watched on the two others) | {n} | {n} | {} | {} | {} |",
                l.events,
                ms(l.p50_us),
                ms(l.p99_us)
            );
        }
        drop(procs);
        let _ = wani_store::testing::drop_postgres_database(pg, &dbname).await;
    }
    out.push_str(&cross);
    out.push('\n');
    out.push_str(&memory);
    if args.fan_out_only {
        return Ok(out);
    }

    eprintln!("one node: posting throughput");
    let d = Duration::from_secs(args.seconds);
    let addr: std::net::SocketAddr = http.parse()?;
    let templates: Vec<RequestTemplate> = written.iter().map(|t| reply_template(*t)).collect();
    let paths: Vec<String> = spread_threads.iter().map(|t| live_path(*t)).collect();
    let (mut none, mut with) = (Vec::new(), Vec::new());
    let mut delivered = 0;
    // Alternating which goes first cancels the drift of a shared machine.
    for round in 0..args.rounds * 2 {
        if round % 4 == 0 || round % 4 == 3 {
            let r = load(addr, &templates, 32, d).await;
            if r.errors > 0 {
                bail!("{} failed replies without subscribers", r.errors);
            }
            none.push(r.rps());
        } else {
            // Readers take what arrived every 50 ms, as a browser tab does
            // between frames; the server still writes every event at once.
            let pace = Some(Duration::from_millis(50));
            let crowd = Crowd::connect(std::slice::from_ref(&http), &paths, big, pace).await?;
            let r = load(addr, &templates, 32, d).await;
            if r.errors > 0 {
                bail!("{} failed replies with subscribers", r.errors);
            }
            with.push(r.rps());
            delivered += crowd.close().await.len();
        }
    }
    let (a, b) = (
        none.iter().sum::<f64>() / none.len() as f64,
        with.iter().sum::<f64>() / with.len() as f64,
    );
    let _ = writeln!(
        out,
        "Posting throughput (16 threads, 32 connections, {} s runs, interleaved): {} replies/s with no subscriber; \
         {} with {big} attached over 1,000 threads ({delivered} events delivered): **{:.0}%** (floor: 80%).",
        args.seconds,
        list(&none),
        list(&with),
        100.0 * b / a
    );
    drop(node);
    Ok(out)
}
