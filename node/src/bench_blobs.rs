//! `wani bench-blobs`: image posts and thumbnail serving with media on the
//! local disk (`fs`) and in an S3 bucket (`s3`), measured in the same run,
//! alternating (fs, s3, s3-uncached, twice) so that a shared machine's noise falls on
//! both, and `s3` again without the node's memory cache of small files
//! (`s3-uncached`, `[blobs] cache_mib = 0`). `scripts/bench-s3` runs it
//! against an s3rver on loopback.
//!
//! Each round starts a fresh node (SQLite) with the backend under test,
//! posts distinct PNGs as new threads through the HTTP API (every one
//! sniffed, stripped, hashed, stored and thumbnailed: nothing deduplicated),
//! then reads their thumbnails through `/upload/thumb/{id}` for a while.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::bench::{http_post, load, multipart, LoadResult, RequestTemplate};
use crate::config::Config;
use crate::node::Node;

#[derive(clap::Args, Debug)]
pub struct BenchBlobsArgs {
    /// The S3 service, e.g. http://127.0.0.1:4568.
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, default_value = "wani")]
    pub bucket: String,
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    pub secret_access_key: String,
    /// Image posts per round.
    #[arg(long, default_value_t = 200)]
    pub posts: usize,
    /// Concurrent connections, for posts and for reads.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Seconds thumbnails are read per round.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
}

/// One round's figures.
struct Round {
    backend: &'static str,
    posts_per_sec: f64,
    post_p99_ms: f64,
    reads: LoadResult,
}

pub async fn run(args: BenchBlobsArgs) -> anyhow::Result<()> {
    let order = ["fs", "s3", "s3-uncached", "fs", "s3", "s3-uncached"];
    // Distinct images, made before anything is timed.
    let images: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..args.posts * order.len())
            .map(|i| picture(i as u32))
            .collect::<anyhow::Result<_>>()?,
    );
    let mut rounds = Vec::new();
    for (n, backend) in order.into_iter().enumerate() {
        // Each round posts its own images: the bucket must not already
        // hold what a later round uploads.
        let offset = n * args.posts;
        eprintln!("round {}: {backend}", n + 1);
        rounds.push(round(&args, backend, images.clone(), offset).await?);
    }
    println!("| round | media on | image posts/s | post p99 | thumbnail reads/s | read p99 |");
    println!("|---|---|---|---|---|---|");
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "| {} | {} | {:.0} | {:.0} ms | {:.0} | {:.1} ms |",
            i + 1,
            r.backend,
            r.posts_per_sec,
            r.post_p99_ms,
            r.reads.ok as f64 / r.reads.seconds,
            r.reads.p99_us as f64 / 1000.0
        );
    }
    let mean = |b: &str, f: &dyn Fn(&Round) -> f64| {
        let v: Vec<f64> = rounds.iter().filter(|r| r.backend == b).map(f).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let posts = |r: &Round| r.posts_per_sec;
    let reads = |r: &Round| r.reads.ok as f64 / r.reads.seconds;
    println!(
        "\ns3 / fs: image posts {:.2}×, thumbnail reads {:.2}× (uncached: {:.2}×) ({} posts a round, {} connections, {} s of reads; {})",
        mean("s3", &posts) / mean("fs", &posts),
        mean("s3", &reads) / mean("fs", &reads),
        mean("s3-uncached", &reads) / mean("fs", &reads),
        args.posts,
        args.connections,
        args.seconds,
        crate::bench::machine()
    );
    Ok(())
}

async fn round(
    args: &BenchBlobsArgs,
    backend: &'static str,
    images: Arc<Vec<Vec<u8>>>,
    offset: usize,
) -> anyhow::Result<Round> {
    let dir = crate::bench::tempfile_dir()?;
    let mut config = Config::parse("")?;
    config.database.url = format!("sqlite://{}/wani.db", dir.display());
    config.blobs.dir = dir.join("blobs");
    if backend.starts_with("s3") {
        config.blobs.backend = "s3".into();
        if backend == "s3-uncached" {
            config.blobs.cache_mib = 0;
        }
        config.blobs.bucket = args.bucket.clone();
        config.blobs.region = args.region.clone();
        config.blobs.endpoint = args.endpoint.clone();
        config.blobs.path_style = true;
        config.blobs.access_key_id = args.access_key_id.clone();
        config.blobs.secret_access_key = args.secret_access_key.clone();
    }
    config.abuse.same_content_secs = 0;
    config.bootstrap.boards = vec![wani_store::BoardSettings {
        name: "bench".into(),
        title: "Bench".into(),
        max_threads: 1_000_000,
        captcha_threads: false,
        thread_interval_secs: 0,
        reply_interval_secs: 0,
        ..Default::default()
    }];
    let node = Node::start(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.serve(listener, async move {
        let _ = stopped.await;
    }));

    // Posts: `connections` workers take the next image until all are in.
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections.max(1) {
        let (next, images, posts) = (next.clone(), images.clone(), args.posts);
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= posts {
                    return anyhow::Ok(done);
                }
                let boundary = "wanibenchblobs";
                let body = multipart(
                    boundary,
                    &[("board", "bench"), ("body", &format!("picture {i}"))],
                    Some(&images[offset + i]),
                );
                let t = Instant::now();
                let (status, answer) = http_post(
                    &addr.to_string(),
                    "/api/v1/thread/new",
                    &format!("multipart/form-data; boundary={boundary}"),
                    &[],
                    &body,
                )
                .await?;
                anyhow::ensure!(
                    status == 201,
                    "an image post was refused ({status}): {}",
                    String::from_utf8_lossy(&answer)
                );
                let v: serde_json::Value = serde_json::from_slice(&answer)?;
                let media = v["post"]["media"]
                    .as_i64()
                    .context("no media in the answer")?;
                done.push((t.elapsed(), media));
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut media = Vec::new();
    for w in workers {
        for (lat, m) in w.await?? {
            latencies.push(lat);
            media.push(m);
        }
    }
    let posts_per_sec = args.posts as f64 / start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let post_p99_ms = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);

    let templates: Vec<RequestTemplate> = media
        .iter()
        .map(|m| RequestTemplate::get(format!("/upload/thumb/{m}")))
        .collect();
    let reads = load(
        addr,
        &templates,
        args.connections.max(1),
        Duration::from_secs(args.seconds.max(1)),
    )
    .await;
    let _ = stop.send(());
    serving.await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Round {
        backend,
        posts_per_sec,
        post_p99_ms,
        reads,
    })
}

/// A 640×480 PNG no other index gives.
fn picture(i: u32) -> anyhow::Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([
            (x.wrapping_mul(i + 3) % 256) as u8,
            (y.wrapping_add(i) % 256) as u8,
            ((x ^ y ^ i) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("encoding a picture")?;
    Ok(out.into_inner())
}
