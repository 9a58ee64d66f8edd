//! wani-node: the `wani` binary's library — configuration, the CLI's
//! commands, the HTTP layer (HTML pages and the JSON API), and the wiring of
//! one node's actor tree (see [`node`]).
//!
//! Split as a library so integration tests and the benchmark start real
//! nodes in-process on port 0, and so handlers are tested with `oneshot`.

pub mod abuse;
pub mod bench;
pub mod bench_blobs;
pub mod bench_cluster;
pub mod bench_floor;
pub mod bench_live;
pub mod bench_many;
pub mod bench_media;
pub mod bench_scale;
pub mod blobs;
pub mod chan;
pub mod cli;
pub mod config;
pub mod drain;
pub mod http;
pub mod import;
pub mod json;
pub mod metrics;
pub mod node;
pub mod pages;
pub mod progress;
pub mod render;
pub mod state;

pub use config::Config;
pub use node::Node;
