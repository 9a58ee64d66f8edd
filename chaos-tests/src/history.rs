//! The history of a run: every client operation with its outcome, what each
//! live subscriber received, the faults with their windows, and what every
//! node served once the cluster healed. Checkers read only this, so they are
//! tested on hand-made histories without booting anything (`checker.rs`).
//!
//! Times are milliseconds since the workload started.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    /// `POST /api/v1/thread/new`.
    CreateThread,
    /// `POST /api/v1/thread/{id}/new`.
    Reply,
    /// `GET /api/v1/thread/{id}`.
    Read,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// A 2xx answer: for a write, acknowledged.
    Ok,
    /// An error answer (4xx/5xx): the node said it did not do it, or could
    /// not say; a write may still have committed (it is indeterminate), but
    /// it was not acknowledged.
    Failed,
    /// No answer: connection refused or reset, or the deadline passed.
    Unknown,
}

/// One client operation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    /// Which client: `poster-3`, `reader-0`, `probe`.
    pub client: String,
    pub kind: OpKind,
    /// Index of the node asked.
    pub node: usize,
    /// The thread written to or read (for a new thread: the one created).
    pub thread: Option<i64>,
    /// Idempotency key of a write; every attempt of one post shares it.
    pub key: Option<String>,
    pub start_ms: f64,
    pub end_ms: f64,
    pub outcome: Outcome,
    /// HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The post id an acknowledgement carried.
    pub post: Option<i64>,
    /// The error message of a failed answer, or why there was no answer.
    pub error: Option<String>,
    /// Whether the deadline expired (a hang, unless the node was paused).
    pub timed_out: bool,
    /// For a read: what it served, summed up (a soak reads threads of
    /// thousands of posts thousands of times; the whole lists would not fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served: Option<Served>,
}

/// The post ids a read served, in order, as a length, the last id and a
/// hash: enough to tell whether they are a prefix of another list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    pub len: usize,
    pub last: Option<i64>,
    pub hash: u64,
}

impl Served {
    /// Sums up `ids`.
    pub fn of(ids: &[i64]) -> Served {
        // FNV-1a over the ids' bytes: stable across runs and machines.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for id in ids {
            for b in id.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
        Served {
            len: ids.len(),
            last: ids.last().copied(),
            hash: h,
        }
    }

    /// Whether the read served exactly the first `len` ids of `all`.
    pub fn is_prefix_of(&self, all: &[i64]) -> bool {
        all.len() >= self.len && Served::of(&all[..self.len]) == *self
    }
}

/// What one live subscriber saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Subscriber {
    pub thread: i64,
    /// Nodes it was connected to, in order (it reconnects on a broken stream).
    pub nodes: Vec<usize>,
    /// The thread's last post id when the subscription (or a resync) began:
    /// only posts after the last baseline are expected.
    pub baseline: Option<i64>,
    /// Post ids of `new-post` events for its thread, after the last baseline.
    pub received: Vec<i64>,
    /// `resync` events received.
    pub resyncs: usize,
    /// Reconnections after a broken stream.
    pub reconnects: usize,
    /// Whether it ever got a stream (`new-client`).
    pub connected: bool,
}

/// One injected fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    pub kind: crate::scenario::FaultKind,
    /// Node names hurt (empty for PostgreSQL).
    pub targets: Vec<String>,
    /// Node indices hurt.
    pub target_nodes: Vec<usize>,
    pub start_ms: f64,
    /// When it was healed; `None` if it could not be injected.
    pub heal_ms: Option<f64>,
    /// Fault to first acknowledged write to every workload thread.
    pub recovery_ms: Option<f64>,
    /// Heal to every node showing the same view with every node up.
    pub converge_ms: Option<f64>,
    /// How it was done (`netns`, `proxy`, the thread that panicked, …) or why not.
    pub detail: String,
    /// Whether it was really injected.
    pub injected: bool,
    /// Nodes expected to keep taking writes while it held (the probes' nodes).
    #[serde(default)]
    pub survivors: Vec<usize>,
}

/// One thread as one node served it after healing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRead {
    pub node: usize,
    /// `(post id, body)` in the order served; `None` if the read failed.
    pub posts: Option<Vec<(i64, String)>>,
    pub error: Option<String>,
}

/// A post row as the database holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbPost {
    pub id: i64,
    pub thread: i64,
    pub key: String,
    /// Who committed it: `(node, shard, epoch)` from the commit record, when
    /// the write was fenced (clustered) and the schema records it.
    pub commit: Option<(String, i64, i64)>,
}

/// Everything the checkers look at.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    pub nodes: Vec<String>,
    pub ops: Vec<Op>,
    pub subscribers: Vec<Subscriber>,
    pub faults: Vec<FaultRecord>,
    /// Thread id → what each node served after healing.
    pub final_reads: BTreeMap<i64, Vec<NodeRead>>,
    /// Every post in the database after healing.
    pub db_posts: Vec<DbPost>,
    /// Milliseconds from the last heal until every node showed the same
    /// view with every node up; `None` if that never happened.
    pub converged_ms: Option<f64>,
    /// The workload's deadline per request.
    pub op_timeout_ms: u64,
    /// Milliseconds the workload ran.
    pub duration_ms: f64,
}

/// A history being recorded by many tasks at once.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Recorder {
    /// Starts the clock at zero.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            ops: Arc::default(),
        }
    }

    /// Milliseconds since the start.
    pub fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    /// The instant of `ms` after the start.
    pub fn instant(&self, ms: f64) -> Instant {
        self.start + std::time::Duration::from_secs_f64(ms / 1000.0)
    }

    /// Adds a finished operation.
    pub fn record(&self, op: Op) {
        self.ops.lock().expect("history lock poisoned").push(op);
    }

    /// The operations so far, by start time.
    pub fn ops(&self) -> Vec<Op> {
        let mut v = self.ops.lock().expect("history lock poisoned").clone();
        v.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        v
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl History {
    /// Writes to `nodes` that started in `[from, to]` ms: (acknowledged, not).
    pub fn writes_between(&self, nodes: &[usize], from: f64, to: f64) -> (usize, usize) {
        let mut ok = 0;
        let mut bad = 0;
        for op in self.ops.iter().filter(|o| {
            o.kind != OpKind::Read
                && o.client != "probe"
                && nodes.contains(&o.node)
                && o.start_ms >= from
                && o.start_ms <= to
        }) {
            if op.outcome == Outcome::Ok {
                ok += 1;
            } else {
                bad += 1;
            }
        }
        (ok, bad)
    }
}
