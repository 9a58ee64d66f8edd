//! The report of a run: `report.md` for people, `report.json` for tools
//! (the whole history included, so a checker can be re-run on it), and
//! `plot.svg`: acknowledged writes and errors per second, with the fault
//! windows shaded. The SVG is written by hand: a plotting crate would cost
//! more to build than these sixty lines.

use crate::checker::{Tally, Verdict};
use crate::history::{History, OpKind, Outcome};
use crate::scenario::Scenario;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The result of a run, as the JSON report holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub scenario: Scenario,
    pub seed: u64,
    /// How links between nodes were faulted, and why that way.
    pub network: String,
    pub machine: String,
    pub wani: String,
    pub verdicts: Vec<Verdict>,
    pub tally: Tally,
    pub passed: bool,
    /// Seconds the whole run took, boot to teardown.
    pub wall_secs: f64,
    pub history: History,
    /// Where the report files are.
    pub dir: PathBuf,
}

/// Writes `report.md`, `report.json` and `plot.svg` into `dir`.
pub fn write(r: &RunReport, dir: &Path) -> anyhow::Result<()> {
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(r)?)?;
    std::fs::write(dir.join("plot.svg"), plot(&r.history))?;
    std::fs::write(dir.join("report.md"), markdown(r))?;
    Ok(())
}

/// The Markdown report.
pub fn markdown(r: &RunReport) -> String {
    let h = &r.history;
    let mut s = String::new();
    let verdict = match (r.passed, r.scenario.expect_violations) {
        (true, false) => "PASSED",
        (false, false) => "FAILED",
        (false, true) => "FAILED, as expected (a bug was injected on purpose)",
        (true, true) => {
            "PASSED, but violations were expected: the checkers missed the injected bug"
        }
    };
    let _ = writeln!(s, "# {} (seed {}): {verdict}\n", r.scenario.name, r.seed);
    if !r.scenario.description.is_empty() {
        let _ = writeln!(s, "{}\n", r.scenario.description);
    }
    let _ = writeln!(
        s,
        "- replay: `wani-chaos run chaos-tests/scenarios/{}.toml --seed {}`",
        r.scenario.name, r.seed
    );
    let _ = writeln!(
        s,
        "- nodes: {} ({}), wani: `{}`",
        h.nodes.len(),
        h.nodes.join(", "),
        r.wani
    );
    let _ = writeln!(s, "- network faults: {}", r.network);
    let _ = writeln!(s, "- machine: {}", r.machine);
    let _ = writeln!(
        s,
        "- workload: {:.0} s, {} posters, {} readers, {} live subscribers, {} ms deadline per request; the run took {:.0} s in all",
        h.duration_ms / 1000.0,
        r.scenario.workload.posters,
        r.scenario.workload.readers,
        r.scenario.workload.subscribers,
        h.op_timeout_ms,
        r.wall_secs
    );
    if !r.scenario.node_env.is_empty() {
        let _ = writeln!(s, "- node environment: {:?}", r.scenario.node_env);
    }

    let _ = writeln!(
        s,
        "\n## Checkers\n\n| checker | verdict | checked |\n|---|---|---|"
    );
    for v in &r.verdicts {
        let mark = match (v.ok, v.advisory) {
            (true, _) => "ok".to_string(),
            (false, true) => format!("{} violations (reported, not enforced)", v.violation_count),
            (false, false) => format!("**{} violations**", v.violation_count),
        };
        let _ = writeln!(s, "| {} — {} | {mark} | {} |", v.name, v.promise, v.summary);
    }
    for v in r.verdicts.iter().filter(|v| !v.ok) {
        let _ = writeln!(s, "\n### {}\n", v.name);
        for x in &v.violations {
            let _ = writeln!(s, "- {x}");
        }
        if v.violation_count > v.violations.len() {
            let _ = writeln!(
                s,
                "- … and {} more (all in report.json)",
                v.violation_count - v.violations.len()
            );
        }
    }

    let t = &r.tally;
    let _ = writeln!(
        s,
        "\n## Operations\n\nPosts: {} attempted, {} acknowledged, **{} lost**, **{} duplicated**.\n",
        t.attempted, t.acknowledged, t.lost, t.duplicated
    );
    let _ = writeln!(s, "| requests | total | ok | failed (error answer) | unknown (no answer) | deadline expired |\n|---|---:|---:|---:|---:|---:|");
    for kind in [OpKind::CreateThread, OpKind::Reply, OpKind::Read] {
        let ops: Vec<_> = h.ops.iter().filter(|o| o.kind == kind).collect();
        let count = |o: Outcome| ops.iter().filter(|x| x.outcome == o).count();
        let _ = writeln!(
            s,
            "| {kind:?} | {} | {} | {} | {} | {} |",
            ops.len(),
            count(Outcome::Ok),
            count(Outcome::Failed),
            count(Outcome::Unknown),
            ops.iter().filter(|x| x.timed_out).count()
        );
    }
    let subs = &h.subscribers;
    let _ = writeln!(
        s,
        "\nLive: {} subscribers, {} events received, {} resyncs, {} reconnects.",
        subs.len(),
        subs.iter().map(|x| x.received.len()).sum::<usize>(),
        subs.iter().map(|x| x.resyncs).sum::<usize>(),
        subs.iter().map(|x| x.reconnects).sum::<usize>()
    );

    let _ = writeln!(s, "\n## Faults\n\nRecovery: from the fault (from the heal for pg-restart) to the first write acknowledged to every workload thread, through the nodes still standing. View: from the heal until every node shows the same view with every node up.\n");
    let _ = writeln!(s, "| # | fault | targets | at s | healed s | recovery ms | view converged ms | client writes to the other nodes while it held: ok / failed | how |\n|---:|---|---|---:|---:|---:|---:|---:|---|");
    for (i, f) in h.faults.iter().enumerate() {
        let during = h.writes_between(&f.survivors, f.start_ms, f.heal_ms.unwrap_or(f.start_ms));
        let _ = writeln!(
            s,
            "| {i} | {} | {} | {:.1} | {} | {} | {} | {} / {} | {} |",
            f.kind.name(),
            if f.targets.is_empty() {
                "PostgreSQL / all".into()
            } else {
                f.targets.join(" ")
            },
            f.start_ms / 1000.0,
            f.heal_ms
                .map(|x| format!("{:.1}", x / 1000.0))
                .unwrap_or("—".into()),
            f.recovery_ms
                .map(|x| format!("{x:.0}"))
                .unwrap_or("—".into()),
            f.converge_ms
                .map(|x| format!("{x:.0}"))
                .unwrap_or("—".into()),
            during.0,
            during.1,
            f.detail.replace('|', "/")
        );
    }
    let _ = writeln!(
        s,
        "\nFinal view convergence after the last heal: {}.",
        h.converged_ms
            .map(|x| format!("{x:.0} ms"))
            .unwrap_or("never".into())
    );
    let _ = writeln!(
        s,
        "\n## Throughput\n\n![writes and errors per second, faults shaded](plot.svg)\n"
    );
    let _ = writeln!(s, "Files: `report.json` (the whole history), `plot.svg`, and each node's directory with its `cluster.toml` and `wani.log`.");
    s
}

/// Acknowledged writes and errors per second over the run, faults shaded.
pub fn plot(h: &History) -> String {
    let (w, ht, left, bottom, top) = (900.0, 320.0, 50.0, 40.0, 20.0);
    let bin = 500.0;
    let end = h.duration_ms.max(1000.0);
    let bins = (end / bin).ceil() as usize + 1;
    let mut ok = vec![0.0; bins];
    let mut err = vec![0.0; bins];
    for op in h.ops.iter().filter(|o| o.kind != OpKind::Read) {
        let b = ((op.end_ms / bin) as usize).min(bins - 1);
        if op.outcome == Outcome::Ok {
            ok[b] += 1000.0 / bin;
        } else {
            err[b] += 1000.0 / bin;
        }
    }
    let ymax = ok.iter().chain(err.iter()).fold(1.0f64, |a, b| a.max(*b)) * 1.1;
    let plot_w = w - left - 20.0;
    let plot_h = ht - bottom - top;
    let x = |ms: f64| left + (ms / end).min(1.0) * plot_w;
    let y = |v: f64| top + plot_h - v / ymax * plot_h;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{ht}" fill="white"/>"#);
    for f in &h.faults {
        let x0 = x(f.start_ms);
        let x1 = x(f.heal_ms.unwrap_or(f.start_ms + 300.0)).max(x0 + 2.0);
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{top}" width="{:.1}" height="{plot_h}" fill="#f4b400" fill-opacity="0.25"/>"##,
            x1 - x0
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" fill="#8a6d00">{} {}</text>"##,
            x0 + 2.0,
            top + 12.0,
            f.kind.name(),
            f.targets.join(" ")
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    let _ = writeln!(
        s,
        r#"<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="black"/>"#,
        top + plot_h
    );
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{v:.0}</text>"#,
            left - 4.0,
            y(v) + 4.0
        );
    }
    let step = ((end / 1000.0 / 10.0).ceil() as usize).max(1);
    for sec in (0..=(end / 1000.0) as usize).step_by(step) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{sec}</text>"#,
            x(sec as f64 * 1000.0),
            top + plot_h + 14.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds</text>"#,
        left + plot_w / 2.0,
        ht - 6.0
    );
    for (series, color, label, ly) in [
        (&ok, "#0b8043", "acknowledged writes/s", 0.0),
        (&err, "#d93025", "failed or unanswered writes/s", 14.0),
    ] {
        let pts: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i as f64 * bin), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" fill="{color}" text-anchor="end">{label}</text>"#,
            left + plot_w,
            top + 12.0 + ly
        );
    }
    s.push_str("</svg>\n");
    s
}
