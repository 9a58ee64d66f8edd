//! The nemesis's faults, one module each. A fault is injected on a list of
//! target nodes and healed later; each says how it did it (the report
//! shows it), or fails with why it could not (the fault is then recorded
//! as not injected rather than aborting the run).
//!
//! | kind | inject | heal |
//! |---|---|---|
//! | kill | `kill -9` | start the process again |
//! | pause | SIGSTOP | SIGCONT |
//! | isolate, split | blackhole routes (netns) or blocked proxy links | remove them |
//! | latency | tc netem (netns) or delayed proxy links | remove the delay |
//! | drop | ss -K (netns) or reset proxy links, every second while held | stop |
//! | pg-restart | stop PostgreSQL | start it |
//! | panic | the debug route makes a thread actor panic | (its supervisor) |
//! | disk-fill | fill the blob filesystem | free it |

pub mod disk;
pub mod kill;
pub mod panic;
pub mod partition;
pub mod pause;
pub mod pg;
pub mod slow;

use crate::client::Client;
use crate::cluster::{Cluster, Postgres};
use crate::scenario::{FaultKind, FaultSpec};

/// What faults act on.
pub struct World {
    pub cluster: Cluster,
    pub pg: Postgres,
    pub client: Client,
    /// The blob directory on its own small filesystem, for `disk-fill`.
    pub blob_fs: Option<disk::BlobFs>,
    /// Why there is no blob filesystem, if one was asked for.
    pub blob_fs_error: Option<String>,
}

/// Injects `spec` on `targets`; the detail for the report.
pub async fn inject(
    w: &mut World,
    spec: &FaultSpec,
    targets: &[usize],
    thread: i64,
) -> anyhow::Result<String> {
    match spec.kind {
        FaultKind::Kill => kill::inject(w, targets),
        FaultKind::Pause => pause::inject(w, targets),
        FaultKind::Isolate | FaultKind::Split => partition::inject(w, spec.kind, targets),
        FaultKind::Latency => slow::latency(w, targets, spec.latency_ms),
        FaultKind::Drop => slow::drop_links(w, targets),
        FaultKind::PgRestart => pg::inject(w),
        FaultKind::Panic => {
            let target = targets.first().copied().unwrap_or(0);
            panic::inject(w, &spec.actor, thread, target).await
        }
        FaultKind::DiskFill => disk::inject(w),
    }
}

/// Undoes what [`inject`] did.
pub async fn heal(w: &mut World, kind: FaultKind, targets: &[usize]) -> anyhow::Result<()> {
    match kind {
        FaultKind::Kill => kill::heal(w, targets),
        FaultKind::Pause => pause::heal(w, targets),
        FaultKind::Isolate | FaultKind::Split | FaultKind::Latency | FaultKind::Drop => {
            partition::heal(w)
        }
        FaultKind::PgRestart => pg::heal(w),
        FaultKind::Panic => Ok(()),
        FaultKind::DiskFill => disk::heal(w),
    }
}

/// Nodes the clients can still expect a write through while the fault
/// holds (the recovery probes use them).
pub fn survivors(w: &World, kind: FaultKind, targets: &[usize]) -> Vec<usize> {
    let all: Vec<usize> = (0..w.cluster.nodes.len()).collect();
    let rest: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !targets.contains(i))
        .collect();
    match kind {
        FaultKind::Kill | FaultKind::Pause | FaultKind::Isolate => rest,
        // The side with more nodes keeps the cluster going.
        FaultKind::Split => {
            if targets.len() * 2 > all.len() {
                targets.to_vec()
            } else {
                rest
            }
        }
        _ => all,
    }
}
