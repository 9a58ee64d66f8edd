//! Node configuration files (`wani_node::Config::parse`: TOML into the
//! config, then its checks: roles, addresses, TLS files, limits).
//! Allocation limit 64 MiB.

#[global_allocator]
static ALLOC: wani_fuzz::Limited = wani_fuzz::Limited::mib(64);

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(config) = wani_node::Config::parse(text) {
            let _ = config.listen_addr();
        }
    });
}
