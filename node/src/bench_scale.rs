//! `wani bench-cluster --scale-model`: does adding a node add capacity?
//!
//! On one machine every node, PostgreSQL and the load generator share the
//! same cores, so more nodes only split them thinner. Here each is held to
//! a fixed CPU quota by a cgroup (v1 `cpu` for the quota, `cpuacct` for what
//! it used), so a node brings its own quarter core, say, the way a machine
//! brings its cores: 1, 2, 3 and 4 nodes run the same load, cached reads and
//! replies over 64 threads through every node (so most requests take the
//! hop to the owner), and the report gives throughput, p99, and how much of
//! its quota each party used, which tells what saturates.
//!
//! Needs root and the cgroup v1 `cpu` and `cpuacct` controllers, and the
//! PostgreSQL server on this machine (its processes are moved into their
//! group, and back out when the benchmark ends).

use crate::bench::{LoadResult, RequestTemplate};
use crate::bench_cluster::{
    bounded, converge, count_all, ms, name, new_thread, port, reply, reply_template, spread,
    start_node, BenchClusterArgs, Proc,
};
use anyhow::Context;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The controllers' mounts: the quota is set in the first, usage read
/// from the second (the same directory where they are mounted together).
const MOUNTS: [(&str, &str); 2] = [
    ("/sys/fs/cgroup/cpu", "cpu"),
    ("/sys/fs/cgroup/cpuacct", "cpuacct"),
];
const PERIOD_US: u64 = 100_000;
/// Threads the load is spread over.
const THREADS: usize = 64;
/// Largest cluster of the model.
const MAX_NODES: usize = 4;

/// Where `/proc/<pid>/cgroup` text puts a process under `controller`.
fn group_path(proc_cgroup: &str, controller: &str) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then(|| path.trim_start_matches('/').to_string())
    })
}

/// The parent pid in `/proc/<pid>/stat` text (the name may hold spaces
/// and parentheses, so fields are counted from its closing one).
fn ppid_in(stat: &str) -> Option<u32> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The parent of a running process.
fn ppid(pid: u32) -> Option<u32> {
    ppid_in(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `pid` and its children.
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(child) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                if ppid(child) == Some(pid) {
                    pids.push(child);
                }
            }
        }
    }
    pids
}

/// A group of processes held to `cores` of CPU.
pub(crate) struct Group {
    name: String,
    cores: f64,
    /// Its directory under each mount, and where its processes go back to.
    dirs: [(PathBuf, PathBuf); 2],
}

impl Group {
    /// Group `name` of this run, beside this process's own groups.
    pub(crate) fn new(run: &str, name: &str, cores: f64) -> anyhow::Result<Group> {
        let own = std::fs::read_to_string("/proc/self/cgroup")?;
        let mut dirs = Vec::new();
        for (mount, controller) in MOUNTS {
            let home = group_path(&own, controller)
                .map(|p| Path::new(mount).join(p))
                .with_context(|| {
                    format!(
                        "--scale-model needs the cgroup v1 `{controller}` controller at {mount}"
                    )
                })?;
            let dir = home.join(run).join(name);
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("creating {} (--scale-model runs as root)", dir.display())
            })?;
            dirs.push((dir, home));
        }
        let dirs: [(PathBuf, PathBuf); 2] = dirs.try_into().expect("two mounts");
        let quota = (cores * PERIOD_US as f64).round() as u64;
        std::fs::write(dirs[0].0.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
        std::fs::write(dirs[0].0.join("cpu.cfs_quota_us"), quota.to_string())
            .context("setting the CPU quota")?;
        Ok(Group {
            name: name.to_string(),
            cores,
            dirs,
        })
    }

    /// Moves `pid` in (a process that has exited meanwhile is left out).
    pub(crate) fn add(&self, pid: u32) -> anyhow::Result<()> {
        for (dir, _) in &self.dirs {
            match std::fs::write(dir.join("cgroup.procs"), pid.to_string()) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                r => r.with_context(|| format!("moving {pid} into {}", dir.display()))?,
            }
        }
        Ok(())
    }

    /// Moves `pid` back where this process's groups are.
    fn release(&self, pid: u32) {
        for (_, home) in &self.dirs {
            let _ = std::fs::write(home.join("cgroup.procs"), pid.to_string());
        }
    }

    /// CPU time its processes used so far.
    fn used(&self) -> anyhow::Result<Duration> {
        let path = self.dirs[1].0.join("cpuacct.usage");
        let ns: u64 = std::fs::read_to_string(&path)?.trim().parse()?;
        Ok(Duration::from_nanos(ns))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for (dir, _) in &self.dirs {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|p| p.parse().ok()) {
                    self.release(pid);
                }
            }
            let _ = std::fs::remove_dir(dir);
            // The run's directory goes with its last group.
            if let Some(run) = dir.parent() {
                let _ = std::fs::remove_dir(run);
            }
        }
    }
}

/// One measurement: the load's result and the share of its quota each
/// group used meanwhile.
struct Measured {
    load: LoadResult,
    used: Vec<(String, f64)>,
}

impl Measured {
    /// "node 98% · postgres 40% · load 61%", nodes averaged.
    fn shares(&self) -> String {
        let mut nodes = Vec::new();
        let mut rest = Vec::new();
        for (name, share) in &self.used {
            if name.starts_with("node-") {
                nodes.push(*share);
            } else {
                rest.push(format!("{name} {:.0}%", share * 100.0));
            }
        }
        let mean = nodes.iter().sum::<f64>() / nodes.len().max(1) as f64;
        let mut all = vec![format!("nodes {:.0}%", mean * 100.0)];
        all.extend(rest);
        all.join(" · ")
    }

    /// The parties that used at least 90% of their quota.
    fn saturated(&self) -> String {
        let full: Vec<&str> = self
            .used
            .iter()
            .filter(|(_, s)| *s >= 0.9)
            .map(|(n, _)| n.as_str())
            .collect();
        if full.is_empty() {
            "none".into()
        } else {
            full.join(", ")
        }
    }
}

async fn measure(
    procs: &[Proc],
    groups: &[&Group],
    templates: impl Fn(usize) -> Vec<RequestTemplate>,
    connections: usize,
    d: Duration,
) -> anyhow::Result<Measured> {
    let before = groups
        .iter()
        .map(|g| g.used())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let begun = Instant::now();
    let load = spread(procs, templates, connections, d).await;
    let secs = begun.elapsed().as_secs_f64();
    let mut used = Vec::new();
    for (g, b) in groups.iter().zip(before) {
        let share = (g.used()? - b).as_secs_f64() / secs / g.cores;
        used.push((g.name.clone(), share));
    }
    Ok(Measured { load, used })
}

/// Node `i`'s templates: every thread, starting where its connections
/// should, so that together the nodes' connections cover all of them.
fn rotated(all: &[RequestTemplate], i: usize, per_node: usize) -> Vec<RequestTemplate> {
    (0..all.len())
        .map(|k| all[(k + i * per_node) % all.len()].clone())
        .collect()
}

/// Connections of the load, over all nodes: at least three per thread. A
/// node held to a quota serves a burst of requests per wake-up; with 64
/// connections over four nodes (16 each) it woke up for so few that four
/// nodes served no more than three (0.58–0.81 × N × one node, against 0.87
/// with 192).
fn connections(args: &BenchClusterArgs) -> usize {
    args.connections.max(3 * THREADS)
}

/// One size of the model.
struct Row {
    nodes: usize,
    reads: Measured,
    replies: Measured,
    stored: usize,
}

/// Runs the model: its Markdown and its SVG.
pub async fn run(args: &BenchClusterArgs, root: &Path) -> anyhow::Result<(String, String)> {
    let run = format!("wani-scale-{}", std::process::id());
    let me = std::process::id();
    let load = Group::new(&run, "load", args.load_cpu)?;
    let postgres = Group::new(&run, "postgres", args.postgres_cpu)?;
    let postmaster = wani_store::testing::postgres_postmaster_pid(&args.postgres)
        .await
        .context("--scale-model needs the PostgreSQL server on this machine")?;
    // Backends it forks later start in its group; dropping the group,
    // however the run ends, moves them all back out.
    for pid in with_children(postmaster) {
        postgres.add(pid)?;
    }
    let connections = connections(args);
    let d = Duration::from_secs(args.seconds);
    let mut rows = Vec::new();
    for n in 1..=MAX_NODES {
        eprintln!("{n} node(s) at {} core each: starting", args.node_cpu);
        let (db, dbname) = wani_store::testing::create_postgres_database(&args.postgres).await?;
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (port(), port())).collect();
        let mut procs = Vec::new();
        let mut groups = Vec::new();
        for i in 0..n {
            let p = start_node(root, i, &ports, &db, 16)?;
            let g = Group::new(&run, &format!("node-{}", name(i)), args.node_cpu)?;
            g.add(p.child.id())?;
            procs.push(p);
            groups.push(g);
        }
        for p in &procs {
            converge(&p.http, n).await?;
        }
        let threads = seed(&procs).await?;
        let before = count_all(&procs[0].http, &threads).await?;
        let mut all: Vec<&Group> = groups.iter().collect();
        all.extend([&postgres, &load]);
        let per_node = connections / n;
        load.add(me)?;
        eprintln!("{n} node(s): cached reads");
        let gets: Vec<RequestTemplate> = threads
            .iter()
            .map(|t| RequestTemplate::get(format!("/api/v1/thread/{t}")))
            .collect();
        let reads = measure(
            &procs,
            &all,
            |i| rotated(&gets, i, per_node),
            connections,
            d,
        )
        .await;
        eprintln!("{n} node(s): replies");
        let posts: Vec<RequestTemplate> = threads.iter().map(|t| reply_template(*t)).collect();
        let replies = measure(
            &procs,
            &all,
            |i| rotated(&posts, i, per_node),
            connections,
            d,
        )
        .await;
        load.release(me);
        let (reads, replies) = (reads?, replies?);
        let after = count_all(&procs[0].http, &threads).await?;
        rows.push(Row {
            nodes: n,
            reads,
            replies,
            stored: after - before,
        });
        drop(procs);
        drop(groups);
        let _ = wani_store::testing::drop_postgres_database(&args.postgres, &dbname).await;
    }
    Ok((markdown(args, &rows), svg(&rows)))
}

/// 64 threads of six posts each, opened through every node.
async fn seed(procs: &[Proc]) -> anyhow::Result<Vec<i64>> {
    let n = procs.len();
    let threads = bounded(
        8,
        (0..THREADS).map(|i| {
            let http = procs[i % n].http.clone();
            async move { new_thread(&http).await }
        }),
    )
    .await
    .into_iter()
    .collect::<anyhow::Result<Vec<i64>>>()?;
    for r in bounded(
        8,
        threads.iter().enumerate().flat_map(|(i, t)| {
            (0..5).map(move |k| {
                let http = procs[(i + k) % n].http.clone();
                async move { reply(&http, *t, &format!("seed-{t}-{k}")).await }
            })
        }),
    )
    .await
    {
        let status = r?;
        anyhow::ensure!(status == 201, "a seed reply was refused ({status})");
    }
    Ok(threads)
}

fn markdown(args: &BenchClusterArgs, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Machine: {}. Quotas: {} core per node, {} for PostgreSQL, {} for the load generator; {} connections over the nodes, {THREADS} threads, {} s per measurement.\n",
        crate::bench::machine(),
        args.node_cpu,
        args.postgres_cpu,
        args.load_cpu,
        connections(args),
        args.seconds
    );
    let one = rows.first().map(|r| r.reads.load.rps()).unwrap_or(0.0);
    let _ = writeln!(
        out,
        "| nodes | cached reads/s | p99 ms | ÷ (N × one node) | quota used (reads) | saturated | replies/s | p99 ms | quota used (replies) | saturated | acknowledged = stored |\n|---:|---:|---:|---:|---|---|---:|---:|---|---|---|"
    );
    for r in rows {
        let (reads, replies) = (&r.reads.load, &r.replies.load);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {:.2} | {} | {} | {:.0} | {} | {} | {} | {} |",
            r.nodes,
            reads.rps(),
            ms(reads.p99_us),
            reads.rps() / (r.nodes as f64 * one).max(1.0),
            r.reads.shares(),
            r.reads.saturated(),
            replies.rps(),
            ms(replies.p99_us),
            r.replies.shares(),
            r.replies.saturated(),
            if replies.ok as usize == r.stored {
                format!("yes ({})", r.stored)
            } else {
                format!("NO: {} vs {}", replies.ok, r.stored)
            }
        );
    }
    out
}

/// Two charts side by side: reads/s and replies/s against nodes, reads
/// with the 0.8 × N × one-node goal dashed.
fn svg(rows: &[Row]) -> String {
    let reads: Vec<f64> = rows.iter().map(|r| r.reads.load.rps()).collect();
    let replies: Vec<f64> = rows.iter().map(|r| r.replies.load.rps()).collect();
    let goal: Vec<f64> = (1..=rows.len())
        .map(|n| 0.8 * n as f64 * reads.first().copied().unwrap_or(0.0))
        .collect();
    let mut s = String::from(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="760" height="300" font-family="sans-serif" font-size="11">"#,
    );
    s.push('\n');
    chart(&mut s, 0.0, "cached reads/s", &reads, Some(&goal));
    chart(&mut s, 380.0, "replies/s", &replies, None);
    s.push_str("</svg>\n");
    s
}

/// One chart at horizontal offset `x0`: `values[k]` at `k + 1` nodes.
fn chart(s: &mut String, x0: f64, title: &str, values: &[f64], goal: Option<&[f64]>) {
    let (left, top, w, h) = (x0 + 60.0, 30.0, 280.0, 220.0);
    let highest = values
        .iter()
        .chain(goal.unwrap_or(&[]))
        .fold(1.0_f64, |m, v| m.max(*v));
    let step = tick_step(highest);
    let top_value = 4.0 * step;
    let n = values.len().max(2);
    let x = |k: usize| left + w * k as f64 / (n - 1) as f64;
    let y = |v: f64| top + h - h * v / top_value;
    let _ = writeln!(
        s,
        r##"<text x="{}" y="18" font-weight="bold">{title}</text><rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##,
        left
    );
    for k in 0..values.len() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{} node{}</text>"#,
            x(k),
            top + h + 16.0,
            k + 1,
            if k == 0 { "" } else { "s" }
        );
    }
    for tick in 0..=4 {
        let v = step * tick as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{v:.0}</text>"#,
            left - 4.0,
            y(v) + 4.0
        );
    }
    let line = |vals: &[f64]| -> String {
        vals.iter()
            .enumerate()
            .map(|(k, v)| format!("{:.1},{:.1}", x(k), y(*v)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if let Some(g) = goal {
        let _ = writeln!(
            s,
            r##"<polyline points="{}" fill="none" stroke="#888" stroke-dasharray="4 3"/><text x="{}" y="{}" fill="#888">goal: 0.8 × N × one node</text>"##,
            line(g),
            left + 6.0,
            top + 14.0
        );
    }
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#1f6fb2" stroke-width="2"/>"##,
        line(values)
    );
    for (k, v) in values.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#1f6fb2"/>"##,
            x(k),
            y(*v)
        );
    }
}

/// The step of four round axis ticks (1 to 8 times a power of ten, by
/// round factors) whose last is above `highest`, with room to spare.
fn tick_step(highest: f64) -> f64 {
    let rough = highest / 4.0;
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| 4.0 * step > highest * 1.05)
        .unwrap_or(10.0 * power)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ticks_are_round_and_cover_the_values() {
        for (highest, step) in [
            (41_492.0, 12_500.0),
            (36_872.0, 10_000.0),
            (40_000.0, 12_500.0),
            (1_215.0, 400.0),
            (1.0, 0.3),
        ] {
            let got = tick_step(highest);
            assert!((got - step).abs() < 1e-9, "{highest}: {got}");
            assert!(4.0 * got > highest);
        }
    }

    #[test]
    fn a_process_group_is_found_by_controller() {
        let text = "4:memory:/box/1\n3:cpu,cpuacct:/user.slice\n2:cpuacct:/other\n0::/\n";
        assert_eq!(group_path(text, "cpu").as_deref(), Some("user.slice"));
        assert_eq!(group_path(text, "cpuacct").as_deref(), Some("user.slice"));
        assert_eq!(group_path(text, "memory").as_deref(), Some("box/1"));
        assert_eq!(group_path(text, "cpuset"), None);
    }

    #[test]
    fn the_parent_pid_is_read_past_a_name_with_spaces() {
        assert_eq!(
            ppid_in("4242 (postgres: a (b) c) S 17 4242 4242 0"),
            Some(17)
        );
        assert_eq!(ppid_in("garbage"), None);
        assert_eq!(
            ppid(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
    }

    #[test]
    fn every_thread_gets_a_connection_when_nodes_share_them() {
        let all: Vec<RequestTemplate> = (0..THREADS)
            .map(|t| RequestTemplate::get(format!("/t/{t}")))
            .collect();
        for n in 1..=MAX_NODES {
            let per = THREADS / n;
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..n {
                // Connection c of a node takes its templates' c-th.
                for c in 0..per {
                    seen.insert(rotated(&all, i, per)[c].path.clone());
                }
            }
            assert_eq!(seen.len(), per * n, "{n} nodes");
        }
    }
}
