//! Stop PostgreSQL (fast shutdown: every node's connections are cut), then
//! start it again on the same port. While it is down every write must fail
//! with a clear error within its deadline, and nothing acknowledged may be
//! missing once it is back.

use super::World;
use anyhow::bail;

pub fn inject(w: &mut World) -> anyhow::Result<String> {
    if !w.pg.owned() {
        bail!("PostgreSQL was given with --postgres: the harness does not stop a server it does not own");
    }
    w.pg.stop()?;
    Ok("pg_ctl stop -m fast".into())
}

pub fn heal(w: &mut World) -> anyhow::Result<()> {
    w.pg.restart()
}
