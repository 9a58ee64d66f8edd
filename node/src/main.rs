//! The `wani` binary: see `wani --help`.

use clap::Parser;

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
