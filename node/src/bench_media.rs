//! `wani bench-media`: thumbnail throughput and peak memory per job, the
//! numbers `scripts/bench-media` compares with Pillow.
//!
//! Two modes, both over files the script generated:
//! - throughput: `--jobs` thumbnails of one file, spread over `--workers`
//!   threads (one per core by default), each the whole of
//!   `wani_media::process` (checks, decode, resize, encode, 500 px target);
//!   prints thumbnails per second per worker.
//! - `--single`: one thumbnail in this process, then the peak resident
//!   memory it added over the process's resident memory just before
//!   (`VmHWM` − `VmRSS` from `/proc/self/status`), the same measure the
//!   Pillow side takes.
//!
//! Output is one JSON object per line, for the script to tabulate.
//! Linux only (`/proc`); elsewhere memory is reported as 0.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use wani_media::{MediaLimits, ThumbOptions};

/// Arguments of `wani bench-media`.
#[derive(clap::Args, Debug)]
pub struct BenchMediaArgs {
    /// The image to thumbnail.
    #[arg(long)]
    pub file: PathBuf,
    /// Thumbnails to make in total.
    #[arg(long, default_value_t = 20)]
    pub jobs: usize,
    /// Threads; 0 means one per core.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Make one thumbnail and report the peak memory it took.
    #[arg(long)]
    pub single: bool,
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn limits() -> MediaLimits {
    MediaLimits {
        max_bytes: 256 << 20,
        max_pixels: 100_000_000,
        max_frames: 0,
        ..MediaLimits::default()
    }
}

/// Runs the benchmark and prints its JSON line.
pub fn run(args: BenchMediaArgs) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let options = ThumbOptions::default();
    if args.single {
        let before = proc_kib("VmRSS:");
        let p = wani_media::process(&bytes, &limits(), &options)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
        let peak = proc_kib("VmHWM:");
        println!(
            "{}",
            serde_json::json!({
                "file": args.file.display().to_string(),
                "peak_kib": peak.saturating_sub(before),
                "thumb": [p.thumb_width, p.thumb_height],
            })
        );
        return Ok(());
    }
    let workers = if args.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        args.workers
    };
    // Warm-up: page in the code and the allocator's arenas.
    wani_media::process(&bytes, &limits(), &options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < args.jobs {
                    let _ = wani_media::process(&bytes, &limits(), &options);
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let rate = args.jobs as f64 / secs;
    println!(
        "{}",
        serde_json::json!({
            "file": args.file.display().to_string(),
            "jobs": args.jobs,
            "workers": workers,
            "seconds": secs,
            "per_second": rate,
            "per_second_per_worker": rate / workers as f64,
        })
    );
    Ok(())
}
