//! `wani bench`: the load benchmark behind docs/BENCHMARKS.md.
//!
//! Starts a real node in this process on a fresh SQLite database (a temp
//! dir), seeds it, and drives it over real loopback sockets with a small
//! keep-alive HTTP/1.1 load generator (64 connections by default). Every
//! number is reported next to a baseline measured in the same run:
//!
//! - cached reads (thread JSON and page of a 300-post thread, catalog of a
//!   150-thread board) against a *ceiling* route of the same process that
//!   answers fixed in-memory bytes of the same size, so the ratio says what
//!   the actor round trip and caching cost over the bare HTTP stack;
//! - reply creation (multipart over HTTP, committed before the answer) into
//!   one thread and into 16 threads at once, checked against the database
//!   afterwards (acknowledged = stored);
//! - memory: RSS idle, and with 10,000 thread actors active.
//!
//! The load generator shares the machine with the server, as it would with
//! `wrk`; on a 2-core machine both halves compete, which is why only ratios
//! within one run are meaningful.

use crate::config::Config;
use crate::http;
use crate::node::Node;
use crate::state::AppState;
use anyhow::Context;
use axum::extract::Path;
use axum::routing::get;
use bytes::Bytes;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wani_actors::{BoardMsg, PostDraft, ThreadMsg};
use wani_store::{Board, BoardSettings, ThreadId};

/// Options of `wani bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Threads activated for the memory measurement.
    #[arg(long, default_value_t = 10_000)]
    pub activate: usize,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Measure reply creation only (no reads, no memory).
    #[arg(long)]
    pub replies_only: bool,
    /// Run on a fresh database made on this PostgreSQL server (an admin
    /// URL, e.g. postgres://postgres@127.0.0.1:25432/postgres) instead of
    /// a fresh SQLite file.
    #[arg(long)]
    pub postgres: Option<String>,
}

/// What one load run measured.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub bytes_per_response: usize,
}

impl LoadResult {
    /// Adds a later run of the same load: counts and time add up; the
    /// percentiles kept are the worst of the runs.
    pub fn absorb(&mut self, other: &LoadResult) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self.p50_us = self.p50_us.max(other.p50_us);
        self.p99_us = self.p99_us.max(other.p99_us);
        self.bytes_per_response = self.bytes_per_response.max(other.bytes_per_response);
    }

    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.seconds
    }
}

/// One request a connection sends over and over (`{i}` in the body is
/// replaced by a per-request counter).
#[derive(Clone)]
pub struct RequestTemplate {
    pub method: &'static str,
    pub path: String,
    pub content_type: Option<String>,
    pub body: Option<String>,
    pub expect: u16,
}

impl RequestTemplate {
    pub fn get(path: impl Into<String>) -> RequestTemplate {
        RequestTemplate {
            method: "GET",
            path: path.into(),
            content_type: None,
            body: None,
            expect: 200,
        }
    }

    fn bytes(&self, i: u64) -> Vec<u8> {
        let mut req = format!("{} {} HTTP/1.1\r\nHost: bench\r\n", self.method, self.path);
        match (&self.content_type, &self.body) {
            (Some(ct), Some(body)) => {
                let body = body.replace("{i}", &i.to_string());
                let _ = write!(
                    req,
                    "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
            _ => req.push_str("\r\n"),
        }
        req.into_bytes()
    }
}

/// A multipart reply with a text body.
fn reply_template(thread: ThreadId) -> RequestTemplate {
    let boundary = "wanibenchboundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nbench reply {{i}} with **markup** and >>1\r\n--{boundary}--\r\n"
    );
    RequestTemplate {
        method: "POST",
        path: format!("/api/v1/thread/{thread}/new"),
        content_type: Some(format!("multipart/form-data; boundary={boundary}")),
        body: Some(body),
        expect: 201,
    }
}

/// Reads one HTTP/1.1 response (Content-Length bodies only; ours all are).
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, usize)> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head =
        std::str::from_utf8(&buf[..header_end]).map_err(|_| std::io::ErrorKind::InvalidData)?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let len = content_length(head);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, len))
}

/// The `Content-Length` an HTTP head gives (0 without one).
pub(crate) fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// A plain `GET` over HTTP/1.1 (for `wani cluster status`): status and body.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(RequestTemplate::get(path).bytes(0).as_slice())
        .await?;
    let mut buf = Vec::new();
    let (status, len) = read_response(&mut stream, &mut buf).await?;
    let start = buf.len() - len;
    Ok((status, buf[start..].to_vec()))
}

/// A `POST` of raw bytes over HTTP/1.1: status and body.
pub async fn http_post(
    addr: &str,
    path: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut buf = Vec::new();
    let (status, len) = read_response(&mut stream, &mut buf).await?;
    let start = buf.len() - len;
    Ok((status, buf[start..].to_vec()))
}

/// A multipart body with text fields and an optional PNG named `media`.
pub fn multipart(boundary: &str, fields: &[(&str, &str)], png: Option<&[u8]>) -> Vec<u8> {
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    if let Some(png) = png {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
        );
        b.extend_from_slice(png);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

/// Drives `connections` keep-alive connections, each sending the template
/// of its index (`templates[conn % len]`) back to back for `duration`.
pub async fn load(
    addr: std::net::SocketAddr,
    templates: &[RequestTemplate],
    connections: usize,
    duration: Duration,
) -> LoadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..connections {
        let t = templates[c % templates.len()].clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut errors, mut size) = (0u64, 0u64, 0usize);
            let mut stream = match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(_) => return (lat, ok, 1, size),
            };
            let _ = stream.set_nodelay(true);
            let mut buf = Vec::with_capacity(64 * 1024);
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let req = t.bytes(i);
                let sent = Instant::now();
                if stream.write_all(&req).await.is_err() {
                    errors += 1;
                    break;
                }
                match read_response(&mut stream, &mut buf).await {
                    Ok((status, len)) if status == t.expect => {
                        ok += 1;
                        size = len;
                        lat.push(sent.elapsed().as_micros() as u64);
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
            }
            (lat, ok, errors, size)
        }));
    }
    let mut all = Vec::new();
    let mut r = LoadResult::default();
    for t in tasks {
        if let Ok((lat, ok, errors, size)) = t.await {
            all.extend(lat);
            r.ok += ok;
            r.errors += errors;
            r.bytes_per_response = r.bytes_per_response.max(size);
        }
    }
    r.seconds = start.elapsed().as_secs_f64();
    r.requests = r.ok + r.errors;
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    r.p50_us = pct(0.50);
    r.p99_us = pct(0.99);
    r
}

pub use wani_supervision::host::machine;

/// Resident memory of this process, in KiB (Linux).
pub fn rss_kib() -> u64 {
    rss_of("self")
}

/// Resident memory of process `pid` (or `self`), in KiB (Linux).
pub fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn seed_media(state: &AppState, board: &Board) -> anyhow::Result<wani_store::NewMedia> {
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])
    })
    .write_to(&mut png, image::ImageFormat::Png)
    .context("encoding the seed image")?;
    http::upload::store_media(
        &state.media_pipe(),
        board,
        Bytes::from(png.into_inner()),
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message))
}

fn draft(body: String, media: Option<wani_store::NewMedia>, n: usize) -> PostDraft {
    PostDraft {
        body,
        ip: format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
        media,
        spoiler: false,
        sage: false,
        idempotency_key: format!("seed-{n}-{}", rand::random::<u64>()),
        author: Default::default(),
        privileged: false,
    }
}

async fn new_thread(
    state: &AppState,
    board: &Board,
    media: &wani_store::NewMedia,
    n: usize,
) -> anyhow::Result<ThreadId> {
    let d = draft(
        format!("thread {n}\n>greentext\n**bold**"),
        Some(media.clone()),
        n,
    );
    let (t, _) = state
        .entities
        .ask(board.id, |reply| BoardMsg::CreateThread {
            subject: Some(format!("Thread {n}")),
            tags: vec!["bench".into()],
            draft: Box::new(d.clone()),
            reply,
        })
        .await??
        .into_inner();
    Ok(t.id)
}

/// Runs the benchmark and prints (and optionally writes) the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let mut config = Config::parse("")?;
    config.database.url = format!("sqlite://{}/wani.db", dir.display());
    let mut pg_database = None;
    if let Some(admin) = &args.postgres {
        let (url, name) = wani_store::testing::create_postgres_database(admin).await?;
        config.database.url = url;
        pg_database = Some((admin.clone(), name));
    }
    let backend = if pg_database.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    config.blobs.dir = dir.join("blobs");
    config.entities.idle_timeout_secs = 3600;
    // The load comes from a few addresses and repeats itself: flood control
    // and captcha would measure the refusals, not the board.
    config.abuse.same_content_secs = 0;
    let open = BoardSettings {
        captcha_threads: false,
        thread_interval_secs: 0,
        reply_interval_secs: 0,
        ..Default::default()
    };
    config.bootstrap.boards = vec![
        BoardSettings {
            name: "bench".into(),
            title: "Bench".into(),
            max_threads: 1000,
            bump_limit: 100_000,
            ..open.clone()
        },
        BoardSettings {
            name: "many".into(),
            title: "Many".into(),
            max_threads: 1_000_000,
            ..open
        },
    ];
    let node = Node::start(config).await?;
    let state = node.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let fixed: Arc<std::sync::RwLock<HashMap<String, Bytes>>> = Arc::default();
    let fixed2 = fixed.clone();
    let ceiling = axum::Router::new().route(
        "/__bench/fixed/{name}",
        get(move |Path(name): Path<String>| {
            let fixed = fixed2.clone();
            async move {
                let body = fixed
                    .read()
                    .ok()
                    .and_then(|m| m.get(&name).cloned())
                    .unwrap_or_default();
                (
                    [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
                    body,
                )
            }
        }),
    );
    let router = http::app_with(state.clone(), ceiling);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle_rss = rss_kib();

    eprintln!("seeding: a 300-post thread and a 150-thread board");
    let board = state
        .resolve_board("bench")
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let media = seed_media(&state, &board).await?;
    let big = new_thread(&state, &board, &media, 0).await?;
    for i in 1..300 {
        let d = draft(
            format!(
                "reply {i}: >>{}\n>greentext line\n||spoiler|| and `code`",
                i
            ),
            if i % 10 == 0 {
                Some(media.clone())
            } else {
                None
            },
            i,
        );
        state
            .entities
            .ask(big, |reply| ThreadMsg::CreatePost {
                draft: Box::new(d.clone()),
                reply,
            })
            .await??;
    }
    for n in 1..150 {
        new_thread(&state, &board, &media, n).await?;
    }
    let d = Duration::from_secs(args.seconds);
    let c = args.connections;
    let mut rows = Vec::new();
    // The 4chan API numbers a thread by its opening post.
    let big_no = state
        .entities
        .ask(big, |reply| ThreadMsg::Summary { reply })
        .await?
        .op
        .id;
    let reads = [
        ("thread JSON, 300 posts", format!("/api/v1/thread/{big}")),
        (
            "4chan thread JSON, 300 posts",
            format!("/{}/thread/{big_no}.json", board.name),
        ),
        ("thread page (HTML), 300 posts", format!("/threads/{big}")),
        (
            "catalog JSON, 150 threads",
            format!("/api/v1/board/{}/catalog", board.id),
        ),
        (
            "4chan catalog JSON, 150 threads",
            format!("/{}/catalog.json", board.name),
        ),
    ];
    let reads = if args.replies_only {
        &reads[..0]
    } else {
        &reads[..]
    };
    for (i, (name, path)) in reads.iter().enumerate() {
        let warm = load(
            addr,
            &[RequestTemplate::get(path.clone())],
            1,
            Duration::from_millis(200),
        )
        .await;
        // The ceiling answers the same number of bytes from memory.
        let body = Bytes::from(vec![b'x'; warm.bytes_per_response]);
        if let Ok(mut m) = fixed.write() {
            m.insert(i.to_string(), body);
        }
        eprintln!("measuring {name}");
        // Interleaved short rounds, so a change in the machine's load hits the
        // route and its ceiling alike.
        let rounds = 5u32;
        let (mut real, mut ceiling) = (LoadResult::default(), LoadResult::default());
        for _ in 0..rounds {
            let r = load(addr, &[RequestTemplate::get(path.clone())], c, d / rounds).await;
            let f = load(
                addr,
                &[RequestTemplate::get(format!("/__bench/fixed/{i}"))],
                c,
                d / rounds,
            )
            .await;
            real.absorb(&r);
            ceiling.absorb(&f);
        }
        rows.push((name.to_string(), real, ceiling));
    }

    eprintln!("measuring reply creation");
    let before = state.store.count_posts().await?;
    let one = load(addr, &[reply_template(big)], c, d).await;
    let mut threads16 = Vec::new();
    for n in 0..16 {
        threads16.push(reply_template(
            new_thread(&state, &board, &media, 1000 + n).await?,
        ));
    }
    let mid = state.store.count_posts().await?;
    let sixteen = load(addr, &threads16, c, d).await;
    let after = state.store.count_posts().await?;
    let stored_one = (mid - before - 16) as u64;
    let stored_sixteen = (after - mid) as u64;

    let activate = if args.replies_only { 0 } else { args.activate };
    eprintln!("activating {activate} threads");
    let many = state
        .resolve_board("many")
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let mut ids = Vec::with_capacity(activate);
    for n in 0..activate {
        ids.push(new_thread(&state, &many, &media, 10_000 + n).await?);
    }
    state.entities.passivate_all().await;
    let rss_before_activation = rss_kib();
    for id in &ids {
        state
            .entities
            .ask(*id, |reply| ThreadMsg::Summary { reply })
            .await?;
    }
    let active_threads = state.entities.active_of(wani_actors::names::THREAD);
    let rss_activated = rss_kib();

    let _ = stop_tx.send(());
    let _ = server.await;
    node.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Some((admin, name)) = &pg_database {
        let _ = wani_store::testing::drop_postgres_database(admin, name).await;
    }

    let mut out = String::new();
    let build = if cfg!(debug_assertions) {
        "debug build (numbers are not representative)"
    } else {
        "release build"
    };
    let _ = writeln!(
        out,
        "Machine: {}. {} connections, {} s per measurement, {build}.\n",
        machine(),
        c,
        args.seconds
    );
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "| cached GET | bytes | req/s | p50 ms | p99 ms | ceiling req/s | ratio | floor 70% |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    }
    for (name, real, ceil) in &rows {
        let ratio = real.rps() / ceil.rps().max(1e-9);
        let _ = writeln!(
            out,
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0}% | {} |",
            real.bytes_per_response,
            real.rps(),
            real.p50_us as f64 / 1000.0,
            real.p99_us as f64 / 1000.0,
            ceil.rps(),
            ratio * 100.0,
            if ratio >= 0.7 { "met" } else { "NOT met" }
        );
    }
    let _ = writeln!(out, "\n| reply creation ({backend}) | acknowledged/s | p50 ms | p99 ms | acknowledged | stored | errors | floor |");
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for (name, r, stored, floor) in [
        ("one thread", &one, stored_one, None),
        ("16 threads", &sixteen, stored_sixteen, Some(2000.0)),
    ] {
        let _ = writeln!(
            out,
            "| {name} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} |",
            r.rps(),
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.ok,
            stored,
            r.errors,
            match floor {
                Some(f) if r.rps() >= f => "≥ 2,000/s: met".to_string(),
                Some(_) => "≥ 2,000/s: NOT met".to_string(),
                None => "—".to_string(),
            }
        );
    }
    if !args.replies_only {
        memory(
            &mut out,
            idle_rss,
            rss_before_activation,
            active_threads,
            rss_activated,
        );
    }
    finish(
        &out,
        &args,
        [(&one, stored_one), (&sixteen, stored_sixteen)],
    )
}

/// The memory table: idle, passivated, and per active thread.
fn memory(
    out: &mut String,
    idle_rss: u64,
    rss_before_activation: u64,
    active_threads: usize,
    rss_activated: u64,
) {
    let _ = writeln!(out, "\n| memory | RSS |\n|---|---:|");
    let _ = writeln!(
        out,
        "| idle, just started | {:.1} MiB |",
        idle_rss as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "| all seeded data passivated | {:.1} MiB |",
        rss_before_activation as f64 / 1024.0
    );
    let _ = writeln!(
        out,
        "| {} thread actors active | {:.1} MiB ({:.1} KiB per thread) |",
        active_threads,
        rss_activated as f64 / 1024.0,
        (rss_activated.saturating_sub(rss_before_activation)) as f64 / active_threads.max(1) as f64
    );
}

/// Prints the report, writes it where asked, and fails if a reply run's
/// acknowledged and stored posts differ.
fn finish(out: &str, args: &BenchArgs, replies: [(&LoadResult, u64); 2]) -> anyhow::Result<()> {
    println!("{out}");
    for (r, stored) in replies {
        if r.ok != stored {
            anyhow::bail!("acknowledged and stored posts differ: {} vs {stored}", r.ok);
        }
    }
    if let Some(path) = &args.out {
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

pub fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "wani-bench-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
