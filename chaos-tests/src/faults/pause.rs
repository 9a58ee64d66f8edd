//! SIGSTOP a node (a long GC pause, a frozen VM); heal sends SIGCONT. The
//! paused process keeps its sockets, so peers must notice it by missing
//! heartbeats, not by a closed connection.

use super::World;

pub fn inject(w: &mut World, targets: &[usize]) -> anyhow::Result<String> {
    for &t in targets {
        w.cluster.nodes[t].signal(libc::SIGSTOP);
    }
    Ok("SIGSTOP".into())
}

pub fn heal(w: &mut World, targets: &[usize]) -> anyhow::Result<()> {
    for &t in targets {
        w.cluster.nodes[t].signal(libc::SIGCONT);
    }
    Ok(())
}
