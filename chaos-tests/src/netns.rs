//! Linux network namespaces: one namespace and one address per node, all on
//! one bridge, so faults act on real packets between real addresses.
//!
//! ```text
//!  host: bridge wcb<N> 10.77.N.1 ── forwarder 10.77.N.1:port → PostgreSQL on 127.0.0.1
//!   ├── veth ── netns wc<N>-0: node a on 10.77.N.10 (HTTP :8080, cluster :7000)
//!   ├── veth ── netns wc<N>-1: node b on 10.77.N.11
//!   └── veth ── netns wc<N>-2: node c on 10.77.N.12
//! ```
//!
//! A partition is a pair of blackhole routes per cut pair (packets vanish,
//! as on a real network: no reset, so only heartbeats can tell), latency
//! is `tc netem` on the node's veth for packets to its peers only, and a
//! drop kills the open sockets between them with `ss -K`. Clients (the
//! harness, on the host) and PostgreSQL stay reachable from every node.
//! PostgreSQL listens on loopback only and trusts loopback, so nodes reach
//! it through a forwarder on the bridge address (the same TCP forwarder the
//! proxy mode uses), whose connections come from 127.0.0.1.
//!
//! Needs root and `ip`; `available()` says whether this machine allows it,
//! and the run falls back to the proxy mode (and says so) when it does not.

use anyhow::{bail, Context};
use std::process::Command;
use std::sync::Mutex;

/// The namespaces and bridge of one run; removed on drop.
pub struct Netns {
    pub bridge: String,
    /// The host's address on the bridge.
    pub host_ip: String,
    /// Per node: namespace name, veth inside it, address.
    pub nodes: Vec<(String, String, String)>,
    /// Blackhole routes in place: (in namespace of, to address of).
    cut: Mutex<Vec<(usize, usize)>>,
    /// Nodes with a netem qdisc.
    slowed: Mutex<Vec<usize>>,
}

/// Runs `ip`/`tc`/`ss` and fails with its stderr.
fn sh(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

impl Netns {
    /// Whether namespaces can be made here (root, `ip netns` works).
    pub fn available() -> bool {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root || sh("tc", &["-V"]).is_err() || sh("ss", &["-V"]).is_err() {
            return false;
        }
        // Listing is not enough: a container may list but refuse to create.
        let probe = format!("wcp{}", std::process::id());
        let ok = sh("ip", &["netns", "add", &probe]).is_ok()
            && sh(
                "ip",
                &["link", "add", &format!("{probe}b"), "type", "bridge"],
            )
            .is_ok();
        let _ = sh("ip", &["link", "del", &format!("{probe}b")]);
        let _ = sh("ip", &["netns", "del", &probe]);
        ok
    }

    /// Whether this kernel has `tc netem` (the latency fault needs it); tried
    /// on the loopback device of a throwaway namespace.
    pub fn netem_available() -> bool {
        let ns = format!("wcq{}", std::process::id());
        if sh("ip", &["netns", "add", &ns]).is_err() {
            return false;
        }
        let ok = sh(
            "ip",
            &[
                "netns", "exec", &ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay",
                "1ms",
            ],
        )
        .is_ok();
        let _ = sh("ip", &["netns", "del", &ns]);
        ok
    }

    /// Creates the bridge and `n` namespaces.
    pub fn create(n: usize) -> anyhow::Result<Netns> {
        // A subnet no other run on this machine uses now.
        let first = 20 + (std::process::id() % 200) as u16;
        let mut octet = None;
        for k in 0..200u16 {
            let o = 20 + (first - 20 + k) % 200;
            if sh("ip", &["link", "show", &format!("wcb{o}")]).is_err() {
                octet = Some(o);
                break;
            }
        }
        let o = octet.context("no free subnet for the chaos bridge")?;
        let bridge = format!("wcb{o}");
        let host_ip = format!("10.77.{o}.1");
        let mut me = Netns {
            bridge: bridge.clone(),
            host_ip: host_ip.clone(),
            nodes: Vec::new(),
            cut: Mutex::default(),
            slowed: Mutex::default(),
        };
        sh("ip", &["link", "add", &bridge, "type", "bridge"])?;
        sh(
            "ip",
            &["addr", "add", &format!("{host_ip}/24"), "dev", &bridge],
        )?;
        sh("ip", &["link", "set", &bridge, "up"])?;
        for i in 0..n {
            let ns = format!("wc{o}-{i}");
            let (outside, inside) = (format!("wc{o}h{i}"), format!("wc{o}n{i}"));
            let ip = format!("10.77.{o}.{}", 10 + i);
            // Recorded before it exists, so a failure half-way still cleans up.
            me.nodes.push((ns.clone(), inside.clone(), ip.clone()));
            sh("ip", &["netns", "add", &ns])?;
            sh(
                "ip",
                &[
                    "link", "add", &outside, "type", "veth", "peer", "name", &inside,
                ],
            )?;
            sh("ip", &["link", "set", &outside, "master", &bridge, "up"])?;
            sh("ip", &["link", "set", &inside, "netns", &ns])?;
            sh(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{ip}/24"),
                    "dev",
                    &inside,
                ],
            )?;
            sh("ip", &["-n", &ns, "link", "set", &inside, "up"])?;
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(me)
    }

    /// The node's address.
    pub fn ip(&self, i: usize) -> &str {
        &self.nodes[i].2
    }

    /// The namespace's name.
    pub fn ns(&self, i: usize) -> &str {
        &self.nodes[i].0
    }

    /// Cuts every pair with one node on each side of `side`.
    pub fn split(&self, side: &[usize]) -> anyhow::Result<()> {
        let n = self.nodes.len();
        for a in 0..n {
            for b in 0..n {
                if a != b && side.contains(&a) != side.contains(&b) {
                    sh(
                        "ip",
                        &["-n", self.ns(a), "route", "add", "blackhole", self.ip(b)],
                    )?;
                    self.cut.lock().expect("netns lock").push((a, b));
                }
            }
        }
        Ok(())
    }

    /// Delays packets between `t` and its peers by `ms`, each way.
    pub fn latency(&self, t: usize, ms: u64) -> anyhow::Result<()> {
        let n = self.nodes.len();
        for a in 0..n {
            let peers: Vec<usize> = if a == t {
                (0..n).filter(|b| *b != t).collect()
            } else {
                vec![t]
            };
            if peers.is_empty() {
                continue;
            }
            let (ns, dev) = (self.ns(a), self.nodes[a].1.as_str());
            let tc = |args: &[&str]| {
                let mut v = vec!["netns", "exec", ns, "tc"];
                v.extend_from_slice(args);
                sh("ip", &v)
            };
            tc(&["qdisc", "add", "dev", dev, "root", "handle", "1:", "prio"])?;
            self.slowed.lock().expect("netns lock").push(a);
            let delay = format!("{ms}ms");
            tc(&[
                "qdisc", "add", "dev", dev, "parent", "1:3", "handle", "30:", "netem", "delay",
                &delay,
            ])?;
            for b in peers {
                let dst = format!("{}/32", self.ip(b));
                tc(&[
                    "filter", "add", "dev", dev, "protocol", "ip", "parent", "1:0", "prio", "1",
                    "u32", "match", "ip", "dst", &dst, "flowid", "1:3",
                ])?;
            }
        }
        Ok(())
    }

    /// Kills the open TCP sockets between `t` and its peers; how many.
    pub fn drop_connections(&self, t: usize) -> anyhow::Result<usize> {
        let mut killed = 0;
        for b in (0..self.nodes.len()).filter(|b| *b != t) {
            for (x, y) in [(t, b), (b, t)] {
                let out = sh(
                    "ip",
                    &[
                        "netns",
                        "exec",
                        self.ns(x),
                        "ss",
                        "-K",
                        "-t",
                        "dst",
                        self.ip(y),
                    ],
                )?;
                killed += out.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
            }
        }
        Ok(killed)
    }

    /// Removes every cut and delay.
    pub fn heal(&self) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        for (a, b) in self.cut.lock().expect("netns lock").drain(..) {
            if let Err(e) = sh(
                "ip",
                &["-n", self.ns(a), "route", "del", "blackhole", self.ip(b)],
            ) {
                errors.push(e.to_string());
            }
        }
        for a in self.slowed.lock().expect("netns lock").drain(..) {
            let dev = self.nodes[a].1.clone();
            if let Err(e) = sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    self.ns(a),
                    "tc",
                    "qdisc",
                    "del",
                    "dev",
                    &dev,
                    "root",
                ],
            ) {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            bail!("healing the network: {}", errors.join("; "));
        }
        Ok(())
    }

    /// How the report names this mode.
    pub fn describe(&self) -> String {
        format!(
            "netns: one network namespace and address per node on bridge {} ({}/24); \
             partitions by blackhole routes, latency by tc netem on peer addresses, \
             drops by ss -K; PostgreSQL through a forwarder on {}",
            self.bridge,
            self.host_ip.trim_end_matches(".1").to_string() + ".0",
            self.host_ip
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for (ns, _, _) in &self.nodes {
            let _ = sh("ip", &["netns", "del", ns]);
        }
        let _ = sh("ip", &["link", "del", &self.bridge]);
    }
}
