//! The command line: `wani serve`, `wani migrate`, `wani board …`, `wani bench`.

use crate::config::Config;
use crate::node::{bootstrap_boards, open_store, shutdown_signal, Node};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use wani_store::{BoardSettings, Repo};

/// wani: an imageboard built as a cluster of supervised actors.
///
/// With no database yet, `wani serve` creates one (SQLite under ./data by
/// default) and the boards listed under [[bootstrap.boards]] in the config.
#[derive(Parser, Debug)]
#[command(name = "wani", version, about, long_about)]
pub struct Cli {
    /// The configuration file (TOML). Every key has a default.
    #[arg(
        long,
        short,
        global = true,
        default_value = "cluster.toml",
        env = "WANI_CONFIG"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start this node: migrate the database, create bootstrap boards, start
    /// the actors and serve HTTP on node.listen until SIGINT or SIGTERM.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Create, list or edit boards.
    #[command(subcommand)]
    Board(BoardCommand),
    /// Move stored files to another blob backend (`wani blobs migrate --to s3`).
    #[command(subcommand)]
    Blobs(crate::blobs::BlobsCommand),
    /// Import another imageboard's site (`wani import maniwani --help`).
    #[command(subcommand)]
    Import(crate::import::ImportCommand),
    /// Create slips (accounts), e.g. the first admin.
    #[command(subcommand)]
    Slip(SlipCommand),
    /// Run the load benchmark on an in-process node with a fresh database and
    /// print a Markdown report (see docs/BENCHMARKS.md).
    Bench(crate::bench::BenchArgs),
    /// Measure failover time, scale-out and the cross-node hop on real
    /// processes sharing one PostgreSQL (see docs/BENCHMARKS.md).
    BenchCluster(crate::bench_cluster::BenchClusterArgs),
    /// Measure live updates: post-to-event latency with 1,000 and 10,000
    /// subscribers (one node, and across nodes with --postgres), memory per
    /// idle subscriber, posting throughput with subscribers attached.
    BenchLive(crate::bench_live::BenchLiveArgs),
    /// The bare fan-out server `wani bench-live --floor` measures against.
    #[command(hide = true)]
    BenchLiveFloor(crate::bench_floor::FloorArgs),
    /// Show the cluster as a running node sees it.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Drain a running clustered node before a restart: it leaves the
    /// cluster, hands its threads and boards to the other nodes and finishes
    /// its requests. Waits until it has, then exits 0; stop the node
    /// (SIGTERM) afterwards.
    Drain {
        /// HTTP address of the node, e.g. 127.0.0.1:8080 (node.listen of
        /// the config by default). Off loopback, the cluster cookie of the
        /// config is sent.
        #[arg(long)]
        addr: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
        /// The drain is over once no request has started for this long:
        /// the time the load balancer needs to notice /readyz failing.
        #[arg(long, default_value_t = 1000)]
        quiet_ms: u64,
    },
    /// Ask a running node whether it is alive (`/healthz`), or with
    /// --ready whether it can serve (`/readyz`); exit 0 if so, 1 if not.
    /// The container image's HEALTHCHECK runs it.
    Health {
        /// HTTP address of the node (node.listen of the config by default;
        /// a wildcard host such as 0.0.0.0 is asked on loopback).
        #[arg(long)]
        addr: Option<String>,
        /// Ask /readyz instead of /healthz.
        #[arg(long)]
        ready: bool,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        timeout_secs: u64,
    },
    /// Image posts and thumbnail serving with media on disk and in an S3
    /// bucket, in one run (scripts/bench-s3; see docs/BENCHMARKS.md).
    BenchBlobs(crate::bench_blobs::BenchBlobsArgs),
    /// Thumbnail throughput and peak memory on one image (scripts/bench-media
    /// runs it beside Pillow; see docs/BENCHMARKS.md).
    BenchMedia(crate::bench_media::BenchMediaArgs),
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Ask a running node (node.listen of the config, or --addr) for its
    /// view: every node, its state, roles and last heartbeat.
    Status {
        /// HTTP address of the node to ask, e.g. 127.0.0.1:8080.
        #[arg(long)]
        addr: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum BoardCommand {
    /// Create a board.
    Create {
        /// Short name, shown as /name/: a–z, 0–9, _ and -, at most 32 characters.
        name: String,
        #[command(flatten)]
        settings: BoardFlags,
    },
    /// List the boards.
    List,
    /// Change a board's settings (unnamed settings keep their value). A
    /// running node picks the change up when the board's actor next loads.
    Edit {
        /// The board's name.
        name: String,
        #[command(flatten)]
        settings: BoardFlags,
    },
}

#[derive(Subcommand, Debug)]
pub enum SlipCommand {
    /// Create a slip: `wani slip create NAME --admin` for the first admin.
    /// Without --password the password is read from the first line of stdin.
    Create {
        /// 1 to 20 characters.
        name: String,
        /// Give the slip every power, including board admin.
        #[arg(long, conflicts_with = "moderator")]
        admin: bool,
        /// Let the slip moderate every board.
        #[arg(long = "mod", id = "moderator")]
        moderator: bool,
        /// The password (at least 8 characters); prompted for when absent.
        #[arg(long)]
        password: Option<String>,
        /// Make the slip a volunteer: a moderator of these boards only
        /// (names, comma separated).
        #[arg(long, value_delimiter = ',', conflicts_with_all = ["admin", "moderator"])]
        boards: Vec<String>,
    },
}

/// Board settings on the command line.
#[derive(Args, Debug, Default)]
pub struct BoardFlags {
    /// Title shown in the board's header.
    #[arg(long)]
    pub title: Option<String>,
    /// The board's rules, in wani markup.
    #[arg(long)]
    pub rules: Option<String>,
    /// Live threads kept; beyond this the least recently bumped is archived.
    #[arg(long)]
    pub max_threads: Option<i64>,
    /// Replies after which a thread stops bumping.
    #[arg(long)]
    pub bump_limit: Option<i64>,
    /// Accepted types, comma separated (image/jpeg,image/png,image/gif,image/webp).
    #[arg(long)]
    pub mimetypes: Option<String>,
    /// Largest upload, in bytes.
    #[arg(long)]
    pub max_file_bytes: Option<i64>,
    /// Largest image or video in pixels (width × height); 0 leaves the node's limit.
    #[arg(long)]
    pub max_pixels: Option<i64>,
    /// Longest video in seconds; 0 for no limit.
    #[arg(long)]
    pub max_duration_secs: Option<i64>,
    /// Most frames in an animated GIF, WebP or PNG; 0 for no limit.
    #[arg(long)]
    pub max_frames: Option<i64>,
    /// Refuse files already posted on this board (true or false).
    #[arg(long)]
    pub no_reposts: Option<bool>,
    /// Ask a captcha for new threads (true or false; default true).
    #[arg(long)]
    pub captcha_threads: Option<bool>,
    /// Ask a captcha for replies (true or false; default false).
    #[arg(long)]
    pub captcha_replies: Option<bool>,
    /// Flood control: seconds one address waits between new threads (0: off).
    #[arg(long)]
    pub thread_interval_secs: Option<i64>,
    /// Flood control: seconds one address waits between posts (0: off).
    #[arg(long)]
    pub reply_interval_secs: Option<i64>,
}

impl BoardFlags {
    fn apply(&self, s: &mut BoardSettings) {
        if let Some(v) = &self.title {
            s.title = v.clone();
        }
        if let Some(v) = &self.rules {
            s.rules = v.clone();
        }
        if let Some(v) = self.max_threads {
            s.max_threads = v;
        }
        if let Some(v) = self.bump_limit {
            s.bump_limit = v;
        }
        if let Some(v) = &self.mimetypes {
            s.mimetypes = v
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
        }
        if let Some(v) = self.max_file_bytes {
            s.max_file_bytes = v;
        }
        if let Some(v) = self.max_pixels {
            s.max_pixels = v;
        }
        if let Some(v) = self.captcha_threads {
            s.captcha_threads = v;
        }
        if let Some(v) = self.captcha_replies {
            s.captcha_replies = v;
        }
        if let Some(v) = self.thread_interval_secs {
            s.thread_interval_secs = v;
        }
        if let Some(v) = self.reply_interval_secs {
            s.reply_interval_secs = v;
        }
        if let Some(v) = self.max_duration_secs {
            s.max_duration_secs = v;
        }
        if let Some(v) = self.max_frames {
            s.max_frames = v;
        }
        if let Some(v) = self.no_reposts {
            s.no_reposts = v;
        }
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`). Colours only on a
/// terminal: a container's or a service manager's log keeps plain text.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: &PathBuf) -> anyhow::Result<Config> {
    if path.exists() {
        Config::load(path)
    } else if path == &PathBuf::from("cluster.toml") {
        tracing::warn!("no cluster.toml here; using the built-in single-box defaults");
        Config::from_env()
    } else {
        bail!("the config file {} does not exist", path.display())
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let store = open_store(&config).await?;
            store.close().await;
            println!("the database at {} is up to date", config.database.url);
            Ok(())
        }
        Command::Board(cmd) => board(config, cmd).await,
        Command::Slip(cmd) => slip(config, cmd).await,
        Command::Import(cmd) => crate::import::run(config, cmd).await,
        Command::Blobs(cmd) => crate::blobs::run(config, cmd).await,
        Command::Bench(args) => crate::bench::run(args).await,
        Command::BenchCluster(args) => crate::bench_cluster::run(args).await,
        Command::BenchLive(args) => crate::bench_live::run(args).await,
        Command::BenchLiveFloor(args) => {
            tokio::task::spawn_blocking(move || crate::bench_floor::serve(args)).await?
        }
        Command::Cluster(ClusterCommand::Status { addr }) => cluster_status(&config, addr).await,
        Command::Drain {
            addr,
            timeout_secs,
            quiet_ms,
        } => {
            let addr = addr.unwrap_or_else(|| config.node.listen.clone());
            let cookie = config.cluster.runtime(&config.node).ok().map(|r| r.cookie);
            crate::drain::run_cli(
                &addr,
                cookie.as_deref(),
                std::time::Duration::from_secs(timeout_secs.max(1)),
                std::time::Duration::from_millis(quiet_ms),
            )
            .await
        }
        Command::BenchMedia(args) => crate::bench_media::run(args),
        Command::BenchBlobs(args) => crate::bench_blobs::run(args).await,
        Command::Health {
            addr,
            ready,
            timeout_secs,
        } => health(&config, addr, ready, timeout_secs).await,
    }
}

async fn health(
    config: &Config,
    addr: Option<String>,
    ready: bool,
    timeout_secs: u64,
) -> anyhow::Result<()> {
    let addr = match addr {
        Some(a) => a,
        None => config.local_node()?,
    };
    let path = if ready { "/readyz" } else { "/healthz" };
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(timeout_secs.max(1)),
        crate::bench::http_get(&addr, path),
    )
    .await
    .map_err(|_| {
        anyhow::anyhow!("the node at {addr} did not answer {path} within {timeout_secs} s")
    })?
    .with_context(|| format!("asking the node at {addr} for {path} (is it running?)"))?;
    let (status, body) = answer;
    let body = String::from_utf8_lossy(&body);
    if status != 200 {
        bail!("{path} at {addr}: {status} {}", body.trim());
    }
    println!("{path} at {addr}: {}", body.trim());
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = config.listen_addr()?;
    let node = Node::start(config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    println!("wani is serving http://{local}/");
    node.serve(listener, shutdown_signal()).await
}

async fn board(config: Config, cmd: BoardCommand) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    bootstrap_boards(&store, &config).await?;
    let result = async {
        match cmd {
            BoardCommand::Create { name, settings } => {
                let mut s = BoardSettings {
                    name: name.clone(),
                    title: name,
                    ..BoardSettings::default()
                };
                settings.apply(&mut s);
                let b = store.create_board(s).await?;
                println!("created board /{}/ (id {})", b.name, b.id);
            }
            BoardCommand::List => {
                println!(
                    "{:>4}  {:<16} {:<24} {:>11} {:>10}  types",
                    "id", "name", "title", "max_threads", "bump_limit"
                );
                for b in store.boards().await? {
                    println!(
                        "{:>4}  {:<16} {:<24} {:>11} {:>10}  {}",
                        b.id,
                        format!("/{}/", b.name),
                        b.title,
                        b.max_threads,
                        b.bump_limit,
                        b.mimetypes.join(",")
                    );
                }
            }
            BoardCommand::Edit { name, settings } => {
                let b = store
                    .board_by_name(&name)
                    .await?
                    .with_context(|| format!("there is no board {name:?}"))?;
                let mut s = b.settings();
                settings.apply(&mut s);
                let b = store.update_board(b.id, s).await?;
                println!("updated board /{}/", b.name);
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

async fn slip(config: Config, cmd: SlipCommand) -> anyhow::Result<()> {
    let SlipCommand::Create {
        name,
        admin,
        moderator,
        password,
        boards,
    } = cmd;
    let password = match password {
        Some(p) => p,
        None => {
            eprint!("password for {name}: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if password.chars().count() < crate::http::auth::MIN_PASSWORD_CHARS {
        bail!(
            "the password needs at least {} characters",
            crate::http::auth::MIN_PASSWORD_CHARS
        );
    }
    let hash = crate::http::auth::hash_password(password)
        .await
        .map_err(|e| anyhow::anyhow!("hashing the password: {}", e.message))?;
    let store = open_store(&config).await?;
    let result = async {
        // Boards first, so a wrong name creates nothing.
        let mut ids = Vec::new();
        for b in &boards {
            let board = store
                .board_by_name(b.trim())
                .await?
                .with_context(|| format!("there is no board {b:?}"))?;
            ids.push(board.id);
        }
        let slip = store.create_slip(&name, &hash, admin, moderator).await?;
        if !ids.is_empty() {
            store.set_slip_roles(slip.id, false, false, &ids).await?;
            println!("{} moderates /{}/", slip.name, boards.join("/, /"));
        }
        anyhow::Ok(slip)
    }
    .await;
    store.close().await;
    let slip = result?;
    let role = if admin {
        "admin"
    } else if moderator {
        "mod"
    } else if !boards.is_empty() {
        "volunteer"
    } else {
        "user"
    };
    println!("created slip {:?} ({role}, id {})", slip.name, slip.id);
    Ok(())
}

async fn cluster_status(config: &Config, addr: Option<String>) -> anyhow::Result<()> {
    let addr = addr.unwrap_or_else(|| config.node.listen.clone());
    let (status, body) = crate::bench::http_get(&addr, "/api/v1/cluster")
        .await
        .with_context(|| format!("asking the node at {addr} (is it running?)"))?;
    if status != 200 {
        bail!("the node at {addr} answered {status}");
    }
    let view: serde_json::Value =
        serde_json::from_slice(&body).context("reading the node's answer")?;
    println!(
        "view of {} (version {})",
        view["me"].as_str().unwrap_or("?"),
        view["version"]
    );
    println!(
        "{:<20} {:<8} {:>6} {:>14} {:>16}  roles",
        "node", "state", "shards", "incarnation", "last heartbeat"
    );
    for m in view["members"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let beat = match m["last_heartbeat_ms_ago"].as_u64() {
            Some(ms) => format!("{ms} ms ago"),
            None => "(this node)".to_string(),
        };
        let roles: Vec<&str> = m["roles"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        println!(
            "{:<20} {:<8} {:>6} {:>14} {:>16}  {}",
            m["name"].as_str().unwrap_or("?"),
            m["state"].as_str().unwrap_or("?"),
            m["shards"],
            m["incarnation"],
            beat,
            roles.join(",")
        );
    }
    Ok(())
}
