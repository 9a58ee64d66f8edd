//! Degraded links: `latency` delays every chunk between the target and its
//! peers (heartbeats included, so a delay near the failure detector's bound
//! makes the view flap); `drop` resets the target's open connections to its
//! peers, again every second while it holds (the nemesis repeats it), so
//! the nodes must reconnect.

use super::World;

pub fn latency(w: &mut World, targets: &[usize], ms: u64) -> anyhow::Result<String> {
    for &t in targets {
        match &w.cluster.netns {
            Some(ns) => ns.latency(t, ms)?,
            None => w.cluster.links.around(t, |m| m.latency_ms = ms),
        }
    }
    Ok(format!("+{ms} ms each way"))
}

pub fn drop_links(w: &mut World, targets: &[usize]) -> anyhow::Result<String> {
    let mut killed = 0;
    for &t in targets {
        match &w.cluster.netns {
            Some(ns) => killed += ns.drop_connections(t)?,
            None => w.cluster.links.around(t, |m| m.generation += 1),
        }
    }
    Ok(match &w.cluster.netns {
        Some(_) => format!("{killed} sockets killed, again every second while held"),
        None => "connections reset, again every second while held".into(),
    })
}
