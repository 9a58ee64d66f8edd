//! `kill -9` a node; heal starts the same process again on the same config.

use super::World;

pub fn inject(w: &mut World, targets: &[usize]) -> anyhow::Result<String> {
    for &t in targets {
        w.cluster.nodes[t].kill();
    }
    Ok("SIGKILL".into())
}

pub fn heal(w: &mut World, targets: &[usize]) -> anyhow::Result<()> {
    for &t in targets {
        // Start blocks until the node prints its URL (after migrations).
        tokio::task::block_in_place(|| w.cluster.nodes[t].start())?;
    }
    Ok(())
}
