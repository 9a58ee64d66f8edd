//! Partitions: `isolate` cuts the target off from every peer; `split` puts
//! the targets on one side and everyone else on the other. Clients still
//! reach every node, and every node still reaches PostgreSQL: only the
//! links between nodes are cut, so the lease fencing is what keeps two
//! sides from both committing to one thread.

use super::World;
use crate::scenario::FaultKind;

pub fn inject(w: &mut World, kind: FaultKind, targets: &[usize]) -> anyhow::Result<String> {
    // Isolating one node is splitting it from the rest.
    let side = match kind {
        FaultKind::Isolate => &targets[..1],
        _ => targets,
    };
    match &w.cluster.netns {
        Some(ns) => ns.split(side)?,
        None => w.cluster.links.split(side),
    }
    let names: Vec<&str> = side
        .iter()
        .map(|&t| w.cluster.nodes[t].name.as_str())
        .collect();
    Ok(format!("{} | the rest", names.join(" ")))
}

pub fn heal(w: &mut World) -> anyhow::Result<()> {
    match &w.cluster.netns {
        Some(ns) => ns.heal(),
        None => {
            w.cluster.links.heal();
            Ok(())
        }
    }
}
