//! The `wani` binary: see `wani --help`.

use clap::Parser;

/// mimalloc instead of glibc's malloc: under a stream of replies glibc
/// spent about an eighth of the node's CPU sorting its free bins, and the
/// same node acknowledges a quarter to a third more replies per second on
/// SQLite with mimalloc (PostgreSQL-bound writes gain nothing), at ~3 KiB more per active thread (docs/BENCHMARKS.md, "A hot
/// thread"). `no_thp`: without it mimalloc asks for huge pages on its
/// arenas and an idle node doubles its RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = wani_node::cli::Cli::parse();
    wani_node::cli::init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wani: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(wani_node::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wani: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
