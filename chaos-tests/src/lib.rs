//! wani-chaos: the fault-injection harness for wani clusters.
//!
//! It boots a real cluster (PostgreSQL and N `wani serve` processes), drives
//! clients against every node, hurts the cluster on a schedule, heals it,
//! and checks afterwards that every promise held. The split follows Jepsen:
//! a *nemesis* injects faults, clients record a *history* of every
//! operation with its outcome (ok, failed, unknown), and *checkers* judge
//! the history alone, so they are tested on hand-made histories, broken on
//! purpose, without booting anything.
//!
//! ```text
//! scenario.toml ──► run ──► Cluster (postgres + nodes + link proxies)
//!                    │        ▲            ▲
//!                    │     workload     nemesis (faults/*)
//!                    │        └── Recorder ──┘
//!                    └──► History ──► checker ──► report (md, json, svg)
//! ```
//!
//! Links between nodes are faulted in Linux network namespaces (one address
//! per node, `netns.rs`) when the machine allows it (root, `ip netns`), and
//! through a TCP proxy per link (`proxy.rs`) otherwise; the report names
//! the mode. Not handled: Byzantine faults, clock skew, faults inside
//! PostgreSQL other than a restart, asymmetric partitions.
//! See `chaos-tests/README.md` to run a scenario and write one.

pub mod checker;
pub mod client;
pub mod cluster;
pub mod containers;
pub mod faults;
pub mod history;
pub mod netns;
pub mod proxy;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod suite;
pub mod workload;
