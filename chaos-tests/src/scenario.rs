//! Scenarios: what a run boots, how hard clients push, and which faults the
//! nemesis injects when. One TOML file per scenario under `scenarios/`.
//!
//! The seed decides everything random in a run (which thread a poster
//! writes to, which node it asks, which node a `random` target is), so a
//! failing run is replayed with the same file and `--seed`. Timing is not
//! replayable (real processes on a shared machine); the choices are.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One scenario file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used for the report's file names.
    pub name: String,
    /// What the scenario is for, one sentence (shown in the report).
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice; `--seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `wani` processes in the cluster (names a, b, c, …).
    #[serde(default = "default_nodes")]
    pub nodes: usize,
    /// Seconds the workload runs; faults are scheduled inside this window.
    pub duration_secs: f64,
    /// Clients and their pace.
    #[serde(default)]
    pub workload: Workload,
    /// Faults, in order of `at_secs`.
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// Bounds the checkers hold the run to.
    #[serde(default)]
    pub checks: Checks,
    /// Extra environment of every `wani` process (the test-only bug switch).
    #[serde(default)]
    pub node_env: BTreeMap<String, String>,
    /// Extra lines appended to each node's `[cluster]` section.
    #[serde(default)]
    pub cluster_settings: String,
    /// Size in MiB of a tmpfs mounted for the blob directory (files on
    /// disk instead of in the database); needed by `disk-fill`.
    #[serde(default)]
    pub blob_fs_mib: Option<u64>,
    /// Whether the run is expected to fail its checkers (the injected-bug
    /// scenario): the suite then passes only if some checker fails.
    #[serde(default)]
    pub expect_violations: bool,
}

fn default_seed() -> u64 {
    1
}
fn default_nodes() -> usize {
    3
}

/// The client workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    /// Threads created before the faults start; posters reply to them.
    pub threads: usize,
    /// Concurrent posters (each one request at a time).
    pub posters: usize,
    /// Share of a poster's operations that create a new thread.
    pub new_thread_ratio: f64,
    /// Concurrent readers of whole threads.
    pub readers: usize,
    /// Live subscribers (`GET /api/v1/live?thread=N`), one thread each.
    pub subscribers: usize,
    /// Deadline of every client request, in milliseconds.
    pub op_timeout_ms: u64,
    /// Attempts per post (retries reuse the idempotency key).
    pub attempts: usize,
    /// Pause between a poster's operations, in milliseconds.
    pub think_ms: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            threads: 4,
            posters: 4,
            new_thread_ratio: 0.03,
            readers: 1,
            subscribers: 2,
            op_timeout_ms: 10_000,
            attempts: 3,
            think_ms: 20,
        }
    }
}

/// The kinds of fault the nemesis knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// `kill -9` a node; heal restarts it.
    Kill,
    /// SIGSTOP a node; heal sends SIGCONT.
    Pause,
    /// Cut one node off from all others; heal reconnects.
    Isolate,
    /// Split the cluster in two: the target and one more node on one side.
    Split,
    /// Delay every byte between the target and its peers.
    Latency,
    /// Drop the target's connections to its peers (they reconnect).
    Drop,
    /// Stop PostgreSQL; heal starts it again.
    PgRestart,
    /// Make an actor panic (debug builds of wani only): the workload
    /// thread's (default), its board's, or a child of the target node's
    /// supervision tree (`actor`).
    Panic,
    /// Fill the blob directory's filesystem; heal frees it.
    DiskFill,
}

impl FaultKind {
    /// The name used in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Isolate => "isolate",
            FaultKind::Split => "split",
            FaultKind::Latency => "latency",
            FaultKind::Drop => "drop",
            FaultKind::PgRestart => "pg-restart",
            FaultKind::Panic => "panic",
            FaultKind::DiskFill => "disk-fill",
        }
    }

    /// Whether the fault stops the target process answering HTTP at all
    /// (then its clients' deadlines expire, which is no product bug).
    pub fn silences_target(self) -> bool {
        matches!(self, FaultKind::Pause)
    }
}

/// One scheduled fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub kind: FaultKind,
    /// Seconds after the workload starts.
    pub at_secs: f64,
    /// Seconds until the nemesis heals it (ignored by `panic`, which heals itself).
    #[serde(default = "default_hold")]
    pub hold_secs: f64,
    /// `owner` (of a workload thread, picked by the seed), `random`, or a node name.
    #[serde(default = "default_target")]
    pub target: String,
    /// Added delay per direction for `latency`, in milliseconds.
    #[serde(default = "default_latency")]
    pub latency_ms: u64,
    /// For `panic`: `thread`, `board`, or a child of the target node's
    /// supervision tree (`region`, `live-hub`, `transport`, …).
    #[serde(default = "default_actor")]
    pub actor: String,
}

fn default_hold() -> f64 {
    5.0
}
fn default_target() -> String {
    "owner".into()
}
fn default_latency() -> u64 {
    300
}
fn default_actor() -> String {
    "thread".into()
}

/// What the checkers hold the run to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Checks {
    /// Recovery (fault to first acknowledged write to every thread) bound, seconds.
    pub recovery_secs: f64,
    /// The view must agree on every node within this many seconds of healing.
    pub converge_secs: f64,
    /// `enforce`: a live subscriber that missed a post without `resync`
    /// fails the run; `report`: it is shown, not failed.
    pub live: String,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            recovery_secs: 5.0,
            converge_secs: 15.0,
            live: "enforce".into(),
        }
    }
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the scenario {}", path.display()))?;
        let s: Scenario = toml::from_str(&text)
            .with_context(|| format!("parsing the scenario {}", path.display()))?;
        s.validate()
            .with_context(|| format!("checking the scenario {}", path.display()))?;
        Ok(s)
    }

    /// Refuses scenarios that cannot run as written.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.nodes == 0 || self.nodes > 26 {
            bail!("nodes must be 1..=26, not {}", self.nodes);
        }
        if self.workload.threads == 0 {
            bail!("the workload needs at least one thread");
        }
        for f in &self.faults {
            if f.at_secs < 0.0 || f.at_secs > self.duration_secs {
                bail!(
                    "the {} fault at {} s is outside the {} s run",
                    f.kind.name(),
                    f.at_secs,
                    self.duration_secs
                );
            }
            if matches!(
                f.kind,
                FaultKind::Isolate | FaultKind::Split | FaultKind::Latency | FaultKind::Drop
            ) && self.nodes < 2
            {
                bail!("a {} fault needs two nodes or more", f.kind.name());
            }
            if f.kind == FaultKind::Split && self.nodes < 3 {
                bail!("a split needs three nodes or more");
            }
        }
        if self.faults.iter().any(|f| f.kind == FaultKind::DiskFill) && self.blob_fs_mib.is_none() {
            bail!("a disk-fill fault needs blob_fs_mib");
        }
        if !matches!(self.checks.live.as_str(), "enforce" | "report") {
            bail!(
                "checks.live is \"enforce\" or \"report\", not {:?}",
                self.checks.live
            );
        }
        Ok(())
    }

    /// Node names: a, b, c, …
    pub fn node_names(&self) -> Vec<String> {
        (0..self.nodes)
            .map(|i| ((b'a' + i as u8) as char).to_string())
            .collect()
    }

    /// The fault schedule, repeated to fill `duration` (soak mode): the
    /// scenario's own faults form one period, from 0 to its duration.
    pub fn stretched(&self, duration_secs: f64) -> Scenario {
        let mut s = self.clone();
        if duration_secs <= self.duration_secs || self.faults.is_empty() {
            s.duration_secs = duration_secs.max(self.duration_secs);
            return s;
        }
        let period = self.duration_secs;
        let mut faults = Vec::new();
        let mut offset = 0.0;
        while offset + period <= duration_secs {
            for f in &self.faults {
                let mut f = f.clone();
                f.at_secs += offset;
                faults.push(f);
            }
            offset += period;
        }
        s.faults = faults;
        s.duration_secs = duration_secs;
        s
    }
}

/// `1h`, `30m`, `90s` or a plain number of seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<f64> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("{text:?} is not a duration like 90s, 30m or 1h"))?;
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => bail!("{text:?}: the unit is s, m or h"),
    };
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1h").unwrap(), 3600.0);
        assert_eq!(parse_duration("30m").unwrap(), 1800.0);
        assert_eq!(parse_duration("45").unwrap(), 45.0);
        assert!(parse_duration("1d").is_err());
    }

    #[test]
    fn every_shipped_scenario_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                Scenario::load(&p).unwrap();
                n += 1;
            }
        }
        assert!(n >= 5, "the suite's scenarios are there");
    }

    #[test]
    fn soak_repeats_the_schedule() {
        let s: Scenario = toml::from_str(
            "name='x'\nduration_secs=10\n[[faults]]\nkind='kill'\nat_secs=2\nhold_secs=2\n",
        )
        .unwrap();
        let long = s.stretched(35.0);
        let at: Vec<f64> = long.faults.iter().map(|f| f.at_secs).collect();
        assert_eq!(at, vec![2.0, 12.0, 22.0]);
        assert_eq!(long.duration_secs, 35.0);
    }
}
