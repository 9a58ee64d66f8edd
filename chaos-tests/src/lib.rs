//! wani-chaos: the fault-injection harness for wani clusters.
//!
//! Not built yet: it needs the cluster (membership, placement, failover)
//! to exist first. It will boot real multi-node clusters as processes,
//! inject faults (kill, pause, partition, latency, database restarts),
//! record every client operation, and check afterwards that no
//! acknowledged post was lost or duplicated. See `chaos-tests/README.md`
//! once it lands.
