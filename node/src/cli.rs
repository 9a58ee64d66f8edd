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
    /// Run the load benchmark on an in-process node with a fresh database and
    /// print a Markdown report (see docs/BENCHMARKS.md).
    Bench(crate::bench::BenchArgs),
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
    }
}

/// Logs to stderr; `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: &PathBuf) -> anyhow::Result<Config> {
    if path.exists() {
        Config::load(path)
    } else if path == &PathBuf::from("cluster.toml") {
        tracing::warn!("no cluster.toml here; using the built-in single-box defaults");
        Config::parse("")
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
        Command::Bench(args) => crate::bench::run(args).await,
    }
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
                let mut s = BoardSettings {
                    name: b.name.clone(),
                    title: b.title.clone(),
                    rules: b.rules.clone(),
                    max_threads: b.max_threads,
                    bump_limit: b.bump_limit,
                    mimetypes: b.mimetypes.clone(),
                    max_file_bytes: b.max_file_bytes,
                };
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
