//! Partitions: `isolate` cuts the target off from every peer; `split` puts
//! the targets on one side and everyone else on the other. Clients still
//! reach every node, and every node still reaches PostgreSQL: only the
//! links between nodes are cut, so the lease fencing is what keeps two
//! sides from both committing to one thread.

use super::World;
use crate::scenario::FaultKind;

pub fn inject(w: &mut World, kind: FaultKind, targets: &[usize]) -> anyhow::Result<String> {
    match kind {
        FaultKind::Isolate => {
            for &t in targets {
                w.cluster.links.around(t, |m| m.blocked = true);
            }
        }
        _ => w.cluster.links.split(targets),
    }
    let names: Vec<&str> = targets
        .iter()
        .map(|&t| w.cluster.nodes[t].name.as_str())
        .collect();
    Ok(format!(
        "{} | rest, links cut by the {} network",
        names.join(" "),
        w.cluster.network
    ))
}
