//! The short suite: every scenario under `chaos-tests/scenarios/`, one after
//! the other, and a summary per fault kind (the numbers `docs/BENCHMARKS.md`
//! quotes). A scenario that expects violations (the injected bug) passes
//! only if a checker caught them.

use crate::report::RunReport;
use crate::run::{self, Options};
use crate::scenario::FaultKind;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Whether a run did what its scenario expects.
pub fn as_expected(r: &RunReport) -> bool {
    r.passed != r.scenario.expect_violations
}

/// Runs every scenario in `dir`; the reports, in order.
pub async fn run_all(dir: &Path, opts: &Options) -> anyhow::Result<Vec<RunReport>> {
    let mut out = Vec::new();
    for (path, s) in run::scenarios_in(dir)? {
        eprintln!("== {} ({})", s.name, path.display());
        let r = run::run(&s, opts).await?;
        eprintln!(
            "== {}: {} ({:.0} s) — {}",
            s.name,
            if as_expected(&r) {
                "as expected"
            } else {
                "NOT AS EXPECTED"
            },
            r.wall_secs,
            r.dir.join("report.md").display()
        );
        out.push(r);
    }
    Ok(out)
}

/// The suite's summary: one row per run, and one per fault kind.
pub fn summary(reports: &[RunReport]) -> String {
    let mut s = String::new();
    if let Some(r) = reports.first() {
        let _ = writeln!(s, "Machine: {}. wani: `{}`.\n", r.machine, r.wani);
    }
    let _ = writeln!(s, "| scenario | seed | network | result | posts attempted | acknowledged | lost | duplicated | failed requests | unanswered | wall s |\n|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in reports {
        let t = &r.tally;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
            r.scenario.name,
            r.seed,
            r.network.split(':').next().unwrap_or(""),
            match (r.passed, r.scenario.expect_violations) {
                (true, false) => "passed".to_string(),
                (false, true) => format!(
                    "caught the injected bug ({})",
                    r.verdicts
                        .iter()
                        .filter(|v| !v.ok && !v.advisory)
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (false, false) => "**failed**".into(),
                (true, true) => "**missed the injected bug**".into(),
            },
            t.attempted,
            t.acknowledged,
            t.lost,
            t.duplicated,
            t.failed,
            t.unknown,
            r.wall_secs
        );
    }
    // Per fault kind, over the runs without an injected bug.
    type Row = (Option<f64>, Option<f64>, bool, (usize, usize));
    let mut kinds: BTreeMap<FaultKind, Vec<Row>> = BTreeMap::new();
    for r in reports.iter().filter(|r| !r.scenario.expect_violations) {
        for f in &r.history.faults {
            let during =
                r.history
                    .writes_between(&f.survivors, f.start_ms, f.heal_ms.unwrap_or(f.start_ms));
            kinds.entry(f.kind).or_default().push((
                f.recovery_ms,
                f.converge_ms,
                f.injected,
                during,
            ));
        }
    }
    let _ = writeln!(s, "\n| fault | injected | recovery ms (worst) | view converged ms (worst) | writes to the other nodes while held: ok / failed |\n|---|---:|---:|---:|---:|");
    for (k, v) in kinds {
        let worst = |f: &dyn Fn(&Row) -> Option<f64>| {
            v.iter()
                .filter(|x| x.2)
                .map(f)
                .try_fold(0.0f64, |a, b| Some(a.max(b?)))
                .map(|x| format!("{x:.0}"))
                .unwrap_or("—".into())
        };
        let _ = writeln!(
            s,
            "| {} | {}/{} | {} | {} | {} / {} |",
            k.name(),
            v.iter().filter(|x| x.2).count(),
            v.len(),
            worst(&|x| x.0),
            worst(&|x| x.1),
            v.iter().map(|x| x.3 .0).sum::<usize>(),
            v.iter().map(|x| x.3 .1).sum::<usize>()
        );
    }
    s
}
