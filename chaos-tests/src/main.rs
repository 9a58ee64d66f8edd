//! `wani-chaos`: run a scenario, the short suite, or re-check a saved run.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use wani_chaos::run::{self, Options};
use wani_chaos::scenario::{parse_duration, Scenario};
use wani_chaos::{checker, report, suite};

#[derive(Parser)]
#[command(
    name = "wani-chaos",
    about = "Fault-injection harness for wani clusters"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The wani binary (the workspace's debug build by default).
    #[arg(long)]
    wani: Option<PathBuf>,
    /// Directory for reports (target/chaos by default).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Use this PostgreSQL server (postgres://…/postgres) instead of starting
    /// a throwaway one; the pg-restart fault is then not injected.
    #[arg(long)]
    postgres: Option<String>,
    /// How links between nodes are faulted: auto (network namespaces when
    /// root and `ip netns` allow, else a TCP proxy), netns, or proxy.
    #[arg(long, env = "WANI_CHAOS_NETWORK", default_value = "auto")]
    network: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one scenario file and writes its report.
    Run {
        scenario: PathBuf,
        /// Replays with this seed instead of the file's.
        #[arg(long)]
        seed: Option<u64>,
        /// Soak: repeat the scenario's faults for this long (90s, 30m, 1h).
        #[arg(long)]
        duration: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Runs every scenario of a directory (the short suite by default).
    Suite {
        #[arg(default_value = "chaos-tests/scenarios")]
        dir: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Runs the checkers again on a saved report.json and prints the verdicts.
    Check { report: PathBuf },
    /// Tests a running compose deployment (deploy/compose.yaml): posts
    /// through the proxy while the node owning a thread is killed and
    /// started again, then checks nothing acknowledged was lost.
    Containers {
        /// The container engine's command.
        #[arg(long, default_value = "podman")]
        engine: String,
        /// The proxy's URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        proxy: String,
        /// The compose project: containers are {project}_{service}_1.
        #[arg(long, default_value = "wani")]
        project: String,
        /// The node services, which are also the nodes' names.
        #[arg(long, value_delimiter = ',', default_value = "wani1,wani2,wani3")]
        nodes: Vec<String>,
        /// Fail if posts into the dead node's thread are refused longer than this.
        #[arg(long, default_value_t = 3.0)]
        failover_secs: f64,
    },
}

fn options(c: &Common, seed: Option<u64>, duration_secs: Option<f64>) -> Options {
    Options {
        wani: c.wani.clone().unwrap_or_else(run::default_wani),
        out: c.out.clone().unwrap_or_else(run::default_out),
        postgres: c.postgres.clone(),
        seed,
        duration_secs,
        network: c.network.clone(),
    }
}

fn print_verdicts(verdicts: &[checker::Verdict]) {
    for v in verdicts {
        println!(
            "{:28} {} — {}",
            v.name,
            if v.ok { "ok" } else { "VIOLATED" },
            v.summary
        );
        for x in &v.violations {
            println!("    {x}");
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            scenario,
            seed,
            duration,
            common,
        } => {
            let s = Scenario::load(&scenario)?;
            let d = duration.as_deref().map(parse_duration).transpose()?;
            let r = run::run(&s, &options(&common, seed, d)).await?;
            println!("{}", report::markdown(&r));
            println!("report: {}", r.dir.join("report.md").display());
            if !suite::as_expected(&r) {
                std::process::exit(1);
            }
        }
        Cmd::Suite { dir, common } => {
            let reports = suite::run_all(&dir, &options(&common, None, None)).await?;
            let summary = suite::summary(&reports);
            let out = common.out.clone().unwrap_or_else(run::default_out);
            std::fs::write(out.join("suite.md"), &summary)?;
            println!("{summary}");
            println!("summary: {}", out.join("suite.md").display());
            if !reports.iter().all(suite::as_expected) {
                eprintln!("wani-chaos: the suite failed: see the reports above");
                std::process::exit(1);
            }
        }
        Cmd::Containers {
            engine,
            proxy,
            project,
            nodes,
            failover_secs,
        } => {
            let o = wani_chaos::containers::Options {
                engine,
                proxy,
                containers: nodes.iter().map(|s| format!("{project}_{s}_1")).collect(),
                names: nodes,
                postgres: format!("{project}_postgres_1"),
                db_url: "postgres://wani@{host}:5432/wani".into(),
                failover_bound: std::time::Duration::from_secs_f64(failover_secs),
            };
            let r = wani_chaos::containers::run(&o).await?;
            print_verdicts(&r.verdicts);
            println!(
                "failover through the proxy: {:.2} s (bound {failover_secs} s); rejoin: {:.2} s; {} posts acknowledged; \
                 live streams reconnected {} times, resynced {}",
                r.failover.as_secs_f64(),
                r.rejoin.as_secs_f64(),
                r.acknowledged,
                r.reconnects,
                r.resyncs
            );
            if !checker::passed(&r.verdicts) || r.failover > o.failover_bound {
                eprintln!("wani-chaos: the compose deployment failed its test");
                std::process::exit(1);
            }
        }
        Cmd::Check { report: path } => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let r: wani_chaos::report::RunReport =
                serde_json::from_str(&text).context("parsing the report")?;
            let (verdicts, tally) = checker::check_all(&r.history, &r.scenario.checks);
            print_verdicts(&verdicts);
            println!("{tally:?}");
            if !checker::passed(&verdicts) {
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
