//! Checkers: pure functions from a recorded [`History`] to verdicts.
//!
//! Each one states a promise wani makes and lists the operations that broke
//! it. They never look at the running cluster, so each is tested below on
//! a hand-made history that keeps the promise and on one that breaks it: a
//! checker that cannot fail proves nothing.
//!
//! What they do not check: that a write which *failed* is absent (a failed
//! or timed-out write is indeterminate: it may have committed before the
//! answer was lost, and a retry with its key finds it), and anything about
//! boards other than the workload's.

use crate::client::key_in;
use crate::history::{History, OpKind, Outcome};
use crate::scenario::{Checks, FaultKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One checker's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub name: String,
    /// The promise, in one sentence.
    pub promise: String,
    pub ok: bool,
    /// Shown and counted, but does not fail the run (`checks.live = "report"`).
    pub advisory: bool,
    /// What was checked, in numbers.
    pub summary: String,
    /// The first violations (at most [`MAX_SHOWN`]).
    pub violations: Vec<String>,
    pub violation_count: usize,
}

/// Violations listed per checker; the count covers all.
pub const MAX_SHOWN: usize = 20;

impl Verdict {
    fn new(name: &str, promise: &str, summary: String, violations: Vec<String>) -> Verdict {
        Verdict {
            name: name.into(),
            promise: promise.into(),
            ok: violations.is_empty(),
            advisory: false,
            summary,
            violation_count: violations.len(),
            violations: violations.into_iter().take(MAX_SHOWN).collect(),
        }
    }
}

/// Write counts over a history.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    /// Distinct posts attempted (one idempotency key each).
    pub attempted: usize,
    /// Distinct posts acknowledged.
    pub acknowledged: usize,
    /// Acknowledged posts not stored after healing.
    pub lost: usize,
    /// Posts served more than once.
    pub duplicated: usize,
    /// Requests (attempts) that failed with an error answer.
    pub failed: usize,
    /// Requests without an answer.
    pub unknown: usize,
}

/// Runs every checker.
pub fn check_all(h: &History, checks: &Checks) -> (Vec<Verdict>, Tally) {
    let (present, tally) = acknowledged_present_once(h);
    let mut live = live_subscribers(h);
    live.advisory = checks.live == "report";
    let v = vec![
        present,
        same_order_everywhere(h),
        unique_ids(h),
        fencing(h),
        live,
        convergence(h, checks.converge_secs),
        clear_errors(h),
        recovery(h, checks.recovery_secs),
    ];
    (v, tally)
}

/// Whether the run passed: every non-advisory verdict is ok.
pub fn passed(verdicts: &[Verdict]) -> bool {
    verdicts.iter().all(|v| v.ok || v.advisory)
}

/// How many times each key appears in the threads as served by the first
/// node that served each thread.
fn served_keys(h: &History) -> HashMap<String, usize> {
    let mut count = HashMap::new();
    for reads in h.final_reads.values() {
        if let Some(posts) = reads.iter().find_map(|r| r.posts.as_ref()) {
            for (_, body) in posts {
                if let Some(k) = key_in(body) {
                    *count.entry(k.to_string()).or_insert(0) += 1;
                }
            }
        }
    }
    count
}

/// Every acknowledged post is stored exactly once, and served exactly once.
pub fn acknowledged_present_once(h: &History) -> (Verdict, Tally) {
    let mut tally = Tally::default();
    let mut attempted = BTreeSet::new();
    let mut acked: BTreeMap<String, (Option<i64>, f64)> = BTreeMap::new();
    for op in &h.ops {
        if op.kind == OpKind::Read {
            continue;
        }
        let Some(k) = &op.key else { continue };
        attempted.insert(k.clone());
        match op.outcome {
            Outcome::Ok => {
                acked.entry(k.clone()).or_insert((op.thread, op.end_ms));
            }
            Outcome::Failed => tally.failed += 1,
            Outcome::Unknown => tally.unknown += 1,
        }
    }
    let mut in_db: HashMap<&str, usize> = HashMap::new();
    for p in &h.db_posts {
        *in_db.entry(p.key.as_str()).or_insert(0) += 1;
    }
    let served = served_keys(h);
    let mut v = Vec::new();
    for (k, (thread, at)) in &acked {
        let db = in_db.get(k.as_str()).copied().unwrap_or(0);
        let web = served.get(k).copied().unwrap_or(0);
        if db == 0 || web == 0 {
            tally.lost += 1;
            v.push(format!(
                "post {k:?} (thread {}) acknowledged at {:.0} ms is missing: {db} in the database, served {web} times",
                thread.map(|t| t.to_string()).unwrap_or("?".into()),
                at
            ));
        } else if db > 1 || web > 1 {
            tally.duplicated += 1;
            v.push(format!(
                "post {k:?}: {db} in the database, served {web} times"
            ));
        }
    }
    // Duplicates of posts never acknowledged count too.
    for (k, n) in &served {
        if *n > 1 && !acked.contains_key(k) {
            tally.duplicated += 1;
            v.push(format!("unacknowledged post {k:?} is served {n} times"));
        }
    }
    tally.attempted = attempted.len();
    tally.acknowledged = acked.len();
    let summary = format!(
        "{} posts attempted, {} acknowledged, {} lost, {} duplicated",
        tally.attempted, tally.acknowledged, tally.lost, tally.duplicated
    );
    (
        Verdict::new(
            "acknowledged-present-once",
            "every acknowledged post is present exactly once after healing",
            summary,
            v,
        ),
        tally,
    )
}

/// Every node serves each thread's posts in the same order.
pub fn same_order_everywhere(h: &History) -> Verdict {
    let mut v = Vec::new();
    for (thread, reads) in &h.final_reads {
        let mut first: Option<(usize, Vec<i64>)> = None;
        for r in reads {
            let Some(posts) = &r.posts else {
                v.push(format!(
                    "thread {thread}: node {} did not serve it after healing: {}",
                    name(h, r.node),
                    r.error.clone().unwrap_or_default()
                ));
                continue;
            };
            let ids: Vec<i64> = posts.iter().map(|p| p.0).collect();
            match &first {
                None => first = Some((r.node, ids)),
                Some((n, want)) if *want != ids => v.push(format!(
                    "thread {thread}: node {} serves {:?}, node {} serves {:?}",
                    name(h, *n),
                    tail(want),
                    name(h, r.node),
                    tail(&ids)
                )),
                _ => {}
            }
        }
    }
    // Reads during the run: a thread only grows at its end, so each one
    // must be a prefix of what every node serves at the end.
    let mut during = 0;
    for op in &h.ops {
        let (Some(t), Some(served)) = (op.thread, &op.served) else {
            continue;
        };
        let Some(fin) = h
            .final_reads
            .get(&t)
            .and_then(|r| r.iter().find_map(|r| r.posts.as_ref()))
        else {
            continue;
        };
        during += 1;
        let fin: Vec<i64> = fin.iter().map(|p| p.0).collect();
        if !served.is_prefix_of(&fin) {
            v.push(format!(
                "thread {t}: {} read {} posts ending with {:?} on node {} at {:.0} ms, not a prefix of the final {}",
                op.client,
                served.len,
                served.last,
                name(h, op.node),
                op.start_ms,
                tail(&fin)
            ));
        }
    }
    Verdict::new(
        "same-order-everywhere",
        "posts in a thread are in one order that every node serves identically",
        format!(
            "{} threads read from {} nodes at the end; {during} reads during the run are prefixes of it",
            h.final_reads.len(),
            h.nodes.len()
        ),
        v,
    )
}

fn tail(ids: &[i64]) -> String {
    if ids.len() <= 8 {
        format!("{ids:?}")
    } else {
        format!("[…{:?}] ({} posts)", &ids[ids.len() - 8..], ids.len())
    }
}

fn name(h: &History, i: usize) -> String {
    h.nodes.get(i).cloned().unwrap_or_else(|| i.to_string())
}

/// No two posts share an id.
pub fn unique_ids(h: &History) -> Verdict {
    let mut v = Vec::new();
    let mut by_id: HashMap<i64, String> = HashMap::new();
    let mut check = |id: i64, key: String, whence: &str, v: &mut Vec<String>| {
        if let Some(other) = by_id.get(&id) {
            if *other != key {
                v.push(format!(
                    "post id {id} is both {other:?} and {key:?} ({whence})"
                ));
            }
        } else {
            by_id.insert(id, key);
        }
    };
    for op in &h.ops {
        if let (Outcome::Ok, Some(id), Some(k)) = (op.outcome, op.post, &op.key) {
            check(id, k.clone(), "acknowledgements", &mut v);
        }
    }
    for reads in h.final_reads.values() {
        if let Some(posts) = reads.iter().find_map(|r| r.posts.as_ref()) {
            for (id, body) in posts {
                let k = key_in(body).unwrap_or(body).to_string();
                check(*id, k, "served threads", &mut v);
            }
        }
    }
    let mut seen = BTreeSet::new();
    for p in &h.db_posts {
        if !seen.insert(p.id) {
            v.push(format!("post id {} is stored twice", p.id));
        }
    }
    Verdict::new(
        "unique-ids",
        "no two posts share an id",
        format!("{} post ids seen", by_id.len()),
        v,
    )
}

/// Nothing was committed by a fenced-off owner: under each shard, one node
/// per lease epoch, and epochs never go back in commit (id) order.
pub fn fencing(h: &History) -> Verdict {
    let promise = "nothing was committed by a fenced-off owner";
    let with: Vec<_> = h
        .db_posts
        .iter()
        .filter_map(|p| p.commit.as_ref().map(|c| (p.id, c)))
        .collect();
    if with.is_empty() {
        let mut v = Verdict::new(
            "fencing",
            promise,
            "no commit records (single node, or a schema without them): not checked".into(),
            Vec::new(),
        );
        v.advisory = true;
        return v;
    }
    let mut v = Vec::new();
    let mut holder: HashMap<(i64, i64), &str> = HashMap::new();
    let mut last: HashMap<i64, (i64, i64)> = HashMap::new();
    let mut sorted = with.clone();
    sorted.sort_by_key(|(id, _)| *id);
    for (id, (node, shard, epoch)) in sorted {
        match holder.get(&(*shard, *epoch)) {
            Some(n) if *n != node.as_str() => v.push(format!(
                "shard {shard} epoch {epoch}: committed by both {n} and {node} (post {id})"
            )),
            _ => {
                holder.insert((*shard, *epoch), node.as_str());
            }
        }
        if let Some((prev_id, prev_epoch)) = last.get(shard) {
            if epoch < prev_epoch {
                v.push(format!(
                    "shard {shard}: post {id} by {node} at epoch {epoch} committed after post {prev_id} at epoch {prev_epoch}"
                ));
            }
        }
        last.insert(*shard, (id, *epoch));
    }
    Verdict::new(
        "fencing",
        promise,
        format!(
            "{} commits over {} (shard, epoch) leases",
            with.len(),
            holder.len()
        ),
        v,
    )
}

/// Every live subscriber received every post of its thread after it
/// subscribed, or was told `resync`.
pub fn live_subscribers(h: &History) -> Verdict {
    let mut v = Vec::new();
    let mut checked = 0;
    for (i, s) in h.subscribers.iter().enumerate() {
        if !s.connected {
            v.push(format!(
                "subscriber {i} (thread {}) never got a stream",
                s.thread
            ));
            continue;
        }
        let Some(baseline) = s.baseline else {
            v.push(format!(
                "subscriber {i} (thread {}) could not read its thread to start from",
                s.thread
            ));
            continue;
        };
        let Some(posts) = h
            .final_reads
            .get(&s.thread)
            .and_then(|r| r.iter().find_map(|r| r.posts.as_ref()))
        else {
            continue;
        };
        checked += 1;
        let got: BTreeSet<i64> = s.received.iter().copied().collect();
        let missing: Vec<i64> = posts
            .iter()
            .map(|p| p.0)
            .filter(|id| *id > baseline && !got.contains(id))
            .collect();
        if !missing.is_empty() {
            v.push(format!(
                "subscriber {i} on node(s) {:?} (thread {}, {} reconnects, {} resyncs) missed {} posts without resync, e.g. {:?}",
                s.nodes.iter().map(|n| name(h, *n)).collect::<Vec<_>>(),
                s.thread,
                s.reconnects,
                s.resyncs,
                missing.len(),
                &missing[..missing.len().min(5)]
            ));
        }
    }
    Verdict::new(
        "live-complete-or-resync",
        "every live subscriber received every post of its thread or was told resync",
        format!(
            "{} subscribers, {checked} checked against their thread",
            h.subscribers.len()
        ),
        v,
    )
}

/// The view agrees on every node, all up, within the bound after healing.
pub fn convergence(h: &History, bound_secs: f64) -> Verdict {
    let mut v = Vec::new();
    let bound = bound_secs * 1000.0;
    for f in h.faults.iter().filter(|f| f.injected) {
        if let Some(c) = f.converge_ms {
            if c > bound {
                v.push(format!(
                    "after healing {} at {:.0} ms the view took {:.0} ms to converge (bound {:.0} ms)",
                    f.kind.name(),
                    f.start_ms,
                    c,
                    bound
                ));
            }
        } else if f.heal_ms.is_some() {
            v.push(format!(
                "after healing {} at {:.0} ms the view never converged",
                f.kind.name(),
                f.start_ms
            ));
        }
    }
    match h.converged_ms {
        Some(c) if c > bound => v.push(format!(
            "at the end the view took {c:.0} ms to converge (bound {bound:.0} ms)"
        )),
        None if h.nodes.len() > 1 => v.push("at the end the view never converged".into()),
        _ => {}
    }
    Verdict::new(
        "view-converges",
        "the cluster view converges on all nodes within a bound after healing",
        format!(
            "final convergence {}; bound {bound_secs} s",
            h.converged_ms
                .map(|c| format!("{c:.0} ms"))
                .unwrap_or("—".into())
        ),
        v,
    )
}

/// Every failed request got a clear error within its deadline. A request to
/// a node that was paused (SIGSTOP) while it waited cannot be answered and
/// is excused.
pub fn clear_errors(h: &History) -> Verdict {
    let mut v = Vec::new();
    let mut excused = 0;
    for op in &h.ops {
        if op.outcome == Outcome::Failed
            && op
                .error
                .as_deref()
                .is_none_or(|e| e.is_empty() || e.starts_with("no error message"))
        {
            v.push(format!(
                "{} {:?} on node {} at {:.0} ms: status {:?} without an error message ({})",
                op.client,
                op.kind,
                name(h, op.node),
                op.start_ms,
                op.status,
                op.error.clone().unwrap_or_default()
            ));
        }
        let late = op.timed_out || op.end_ms - op.start_ms > h.op_timeout_ms as f64 + 1000.0;
        if late {
            let silenced = h.faults.iter().any(|f| {
                f.kind.silences_target()
                    && f.target_nodes.contains(&op.node)
                    && f.start_ms <= op.end_ms
                    && f.heal_ms.unwrap_or(f64::INFINITY) >= op.start_ms
            });
            if silenced {
                excused += 1;
            } else {
                v.push(format!(
                    "{} {:?} on node {} at {:.0} ms hung: no answer within {} ms",
                    op.client,
                    op.kind,
                    name(h, op.node),
                    op.start_ms,
                    h.op_timeout_ms
                ));
            }
        }
    }
    Verdict::new(
        "clear-errors-no-hangs",
        "every failed request got a clear error, not a hang",
        format!(
            "{} requests; {excused} deadlines expired on a paused node (excused)",
            h.ops.len()
        ),
        v,
    )
}

/// Kill, pause and panic recover within the bound: the first write acknowledged
/// to every workload thread after the fault.
pub fn recovery(h: &History, bound_secs: f64) -> Verdict {
    let mut v = Vec::new();
    let bound = bound_secs * 1000.0;
    let mut measured = 0;
    for f in h.faults.iter().filter(|f| f.injected) {
        let floor = matches!(
            f.kind,
            FaultKind::Kill | FaultKind::Pause | FaultKind::Panic
        );
        match f.recovery_ms {
            Some(r) => {
                measured += 1;
                if floor && r > bound {
                    v.push(format!(
                        "{} of {:?} at {:.0} ms: recovered after {:.0} ms (bound {:.0} ms)",
                        f.kind.name(),
                        f.targets,
                        f.start_ms,
                        r,
                        bound
                    ));
                }
            }
            None => v.push(format!(
                "{} of {:?} at {:.0} ms: some thread took no write afterwards",
                f.kind.name(),
                f.targets,
                f.start_ms
            )),
        }
    }
    Verdict::new(
        "recovery",
        "after a kill, a pause or an actor panic every thread takes writes again within the bound",
        format!("{measured} faults measured; bound {bound_secs} s for kill, pause and panic"),
        v,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{DbPost, FaultRecord, NodeRead, Op, Subscriber};

    fn write(key: &str, thread: i64, post: i64, outcome: Outcome) -> Op {
        Op {
            client: "poster-0".into(),
            kind: OpKind::Reply,
            node: 0,
            thread: Some(thread),
            key: Some(key.into()),
            start_ms: 10.0,
            end_ms: 20.0,
            outcome,
            status: Some(if outcome == Outcome::Ok { 201 } else { 503 }),
            post: (outcome == Outcome::Ok).then_some(post),
            error: (outcome != Outcome::Ok).then(|| "unavailable".into()),
            timed_out: false,
            served: None,
        }
    }

    fn served(posts: &[(i64, &str)]) -> Option<Vec<(i64, String)>> {
        Some(
            posts
                .iter()
                .map(|(i, k)| (*i, format!("chaos {k}")))
                .collect(),
        )
    }

    /// Two nodes, thread 1 with posts 1 (op), 2 (k1), 3 (k2), all acknowledged.
    fn healthy() -> History {
        let posts = [(1, "op"), (2, "k1"), (3, "k2")];
        History {
            nodes: vec!["a".into(), "b".into()],
            ops: vec![
                write("k1", 1, 2, Outcome::Ok),
                write("k2", 1, 3, Outcome::Ok),
                write("k3", 1, 0, Outcome::Failed),
            ],
            subscribers: vec![Subscriber {
                thread: 1,
                nodes: vec![1],
                baseline: Some(1),
                received: vec![2, 3],
                connected: true,
                ..Default::default()
            }],
            faults: vec![FaultRecord {
                kind: FaultKind::Kill,
                targets: vec!["a".into()],
                target_nodes: vec![0],
                start_ms: 5.0,
                heal_ms: Some(50.0),
                recovery_ms: Some(2500.0),
                converge_ms: Some(800.0),
                detail: String::new(),
                injected: true,
                survivors: vec![1],
            }],
            final_reads: [(
                1,
                vec![
                    NodeRead {
                        node: 0,
                        posts: served(&posts),
                        error: None,
                    },
                    NodeRead {
                        node: 1,
                        posts: served(&posts),
                        error: None,
                    },
                ],
            )]
            .into(),
            db_posts: posts
                .iter()
                .map(|(id, k)| DbPost {
                    id: *id,
                    thread: 1,
                    key: k.to_string(),
                    commit: Some(("a".into(), 7, 1)),
                })
                .collect(),
            converged_ms: Some(900.0),
            op_timeout_ms: 10_000,
            duration_ms: 100.0,
        }
    }

    fn verdict<'a>(vs: &'a [Verdict], name: &str) -> &'a Verdict {
        vs.iter().find(|v| v.name == name).unwrap()
    }

    #[test]
    fn a_healthy_history_passes_every_checker() {
        let (vs, tally) = check_all(&healthy(), &Checks::default());
        for v in &vs {
            assert!(v.ok, "{}: {:?}", v.name, v.violations);
        }
        assert_eq!((tally.attempted, tally.acknowledged, tally.lost), (3, 2, 0));
    }

    #[test]
    fn a_lost_acknowledged_post_fails() {
        let mut h = healthy();
        h.db_posts.retain(|p| p.key != "k2");
        for r in h.final_reads.get_mut(&1).unwrap() {
            r.posts.as_mut().unwrap().retain(|p| p.1 != "chaos k2");
        }
        h.subscribers[0].received = vec![2];
        let (vs, tally) = check_all(&h, &Checks::default());
        assert!(!verdict(&vs, "acknowledged-present-once").ok);
        assert_eq!(tally.lost, 1);
        assert!(!passed(&vs));
    }

    #[test]
    fn a_post_stored_but_not_served_counts_as_lost() {
        let mut h = healthy();
        for r in h.final_reads.get_mut(&1).unwrap() {
            r.posts.as_mut().unwrap().retain(|p| p.1 != "chaos k1");
        }
        let (v, tally) = acknowledged_present_once(&h);
        assert!(!v.ok);
        assert_eq!(tally.lost, 1);
    }

    #[test]
    fn a_duplicate_fails() {
        let mut h = healthy();
        for r in h.final_reads.get_mut(&1).unwrap() {
            r.posts.as_mut().unwrap().push((4, "chaos k1".into()));
        }
        let (v, tally) = acknowledged_present_once(&h);
        assert!(!v.ok);
        assert_eq!(tally.duplicated, 1);
    }

    #[test]
    fn nodes_disagreeing_on_order_fail() {
        let mut h = healthy();
        h.final_reads.get_mut(&1).unwrap()[1].posts = served(&[(1, "op"), (3, "k2"), (2, "k1")]);
        assert!(!same_order_everywhere(&h).ok);
    }

    #[test]
    fn a_read_during_the_run_in_another_order_fails() {
        let mut h = healthy();
        let mut read = write("", 1, 0, Outcome::Ok);
        read.kind = OpKind::Read;
        read.key = None;
        read.post = None;
        read.served = Some(crate::history::Served::of(&[1, 2]));
        h.ops.push(read.clone());
        assert!(same_order_everywhere(&h).ok, "a prefix is fine");
        read.served = Some(crate::history::Served::of(&[1, 3]));
        h.ops.push(read);
        assert!(
            !same_order_everywhere(&h).ok,
            "a reordering or a vanished post is not"
        );
    }

    #[test]
    fn a_node_not_serving_after_healing_fails() {
        let mut h = healthy();
        let r = &mut h.final_reads.get_mut(&1).unwrap()[1];
        r.posts = None;
        r.error = Some("503".into());
        assert!(!same_order_everywhere(&h).ok);
    }

    #[test]
    fn two_posts_with_one_id_fail() {
        let mut h = healthy();
        h.ops[1].post = Some(2);
        assert!(!unique_ids(&h).ok);
        let mut h = healthy();
        h.db_posts[2].id = 2;
        assert!(!unique_ids(&h).ok);
    }

    #[test]
    fn a_commit_by_a_fenced_off_owner_fails() {
        let mut h = healthy();
        // b took the shard over at epoch 2; a then committed at epoch 1.
        h.db_posts[1].commit = Some(("b".into(), 7, 2));
        h.db_posts[2].commit = Some(("a".into(), 7, 1));
        let v = fencing(&h);
        assert!(!v.ok, "{v:?}");
        let mut h = healthy();
        h.db_posts[2].commit = Some(("b".into(), 7, 1));
        assert!(!fencing(&h).ok, "two nodes under one epoch");
    }

    #[test]
    fn a_subscriber_missing_a_post_fails_unless_it_resynced() {
        let mut h = healthy();
        h.subscribers[0].received = vec![3];
        assert!(!live_subscribers(&h).ok);
        // After a resync the subscriber re-read the thread: a new baseline.
        h.subscribers[0].resyncs = 1;
        h.subscribers[0].baseline = Some(2);
        assert!(live_subscribers(&h).ok);
        let mut h = healthy();
        h.subscribers[0].connected = false;
        assert!(!live_subscribers(&h).ok);
    }

    #[test]
    fn slow_or_missing_convergence_fails() {
        let mut h = healthy();
        h.converged_ms = None;
        assert!(!convergence(&h, 15.0).ok);
        let mut h = healthy();
        h.faults[0].converge_ms = Some(20_000.0);
        assert!(!convergence(&h, 15.0).ok);
    }

    #[test]
    fn a_hang_fails_unless_the_node_was_paused() {
        let mut h = healthy();
        h.ops[2].outcome = Outcome::Unknown;
        h.ops[2].timed_out = true;
        assert!(!clear_errors(&h).ok);
        h.faults[0].kind = FaultKind::Pause;
        assert!(clear_errors(&h).ok, "node a was paused while it waited");
        let mut h = healthy();
        h.ops[2].error = Some("no error message: \"oops\"".into());
        assert!(!clear_errors(&h).ok);
    }

    #[test]
    fn slow_recovery_from_a_kill_fails() {
        let mut h = healthy();
        h.faults[0].recovery_ms = Some(7000.0);
        assert!(!recovery(&h, 5.0).ok);
        h.faults[0].kind = FaultKind::Latency;
        assert!(recovery(&h, 5.0).ok, "no floor for latency");
        h.faults[0].recovery_ms = None;
        assert!(!recovery(&h, 5.0).ok);
    }
}
