//! The golden-script runner for membership and lease decisions (tests only).
//!
//! One script is a story told to one node's [`Membership`]: heartbeats and
//! ticks at given times, peers leaving, this node leaving; after each step
//! the script shows what changed, and `owners` and `decide` show the
//! decisions placement and leases take from that view. The expected output
//! sits in the script under each command; regenerate it with
//! `UPDATE_GOLDENFILES=1 cargo test -p wani-supervision` and review the diff.
//!
//! The detector of every script heartbeats every 100 ms, suspects a peer
//! after 3 missed intervals and downs it after 8; a view settles 800 ms
//! after its incarnation.

use crate::lease::decide;
use crate::membership::{DetectorConfig, Input, MemberState, Membership, Role};
use crate::placement::NodeName;
use std::collections::BTreeSet;
use std::error::Error;
use std::fmt::Write as _;

/// The commands of the scripts.
#[derive(goldenscript::Command)]
enum Command {
    /// Starts a view: this node's name, its incarnation (its start time,
    /// ms), the cluster size its configuration implies (seeds and itself),
    /// and its roles (every role by default).
    View {
        me: String,
        #[arg(key)]
        incarnation: u64,
        #[arg(key, optional)]
        size: Option<usize>,
        #[arg(key, optional)]
        roles: Option<String>,
    },
    /// A heartbeat from a peer at a time; `you_are` is how the peer sees
    /// this node (`down` makes it rejoin), `roles` the peer's roles.
    Heartbeat {
        from: String,
        #[arg(key)]
        incarnation: u64,
        #[arg(key)]
        at: u64,
        #[arg(key, optional)]
        you_are: Option<String>,
        #[arg(key, optional)]
        roles: Option<String>,
    },
    /// Time passes: the detector re-evaluates every member.
    Tick(u64),
    /// A peer announces it is leaving.
    Leaving {
        from: String,
        #[arg(key)]
        incarnation: u64,
        #[arg(key)]
        at: u64,
    },
    /// This node starts leaving.
    Leave,
    /// This node rejoins as a new incarnation (after `SelfDowned`).
    Rejoin(u64),
    /// The nodes that own shards for a role.
    Owners(String),
    /// Judges a lease whose holder column reads `holder`, at time `at`.
    Decide {
        holder: String,
        #[arg(key)]
        at: u64,
    },
}

#[derive(Default)]
struct Runner {
    view: Option<Membership>,
    size: usize,
}

fn roles(list: &Option<String>) -> Result<BTreeSet<Role>, Box<dyn Error>> {
    match list {
        None => Ok(Role::ALL.into_iter().collect()),
        Some(l) => l
            .split(',')
            .filter(|r| !r.is_empty())
            .map(|r| Role::from_name(r).ok_or_else(|| format!("unknown role {r}").into()))
            .collect(),
    }
}

impl Runner {
    fn view(&mut self) -> Result<&mut Membership, Box<dyn Error>> {
        self.view.as_mut().ok_or_else(|| "no view yet".into())
    }

    /// The view in one line: this node, then each peer with its incarnation.
    fn states(&self) -> String {
        let Some(v) = &self.view else {
            return String::new();
        };
        let mut out = format!("{}#{}={}", v.me(), v.incarnation(), v.my_state());
        for m in v.peers() {
            let _ = write!(out, " {}#{}={}", m.name, m.incarnation, m.state);
        }
        out
    }

    fn step(&mut self, input: Input) -> Result<String, Box<dyn Error>> {
        let changes = self.view()?.step(input);
        Ok(format!("{changes:?} [{}]\n", self.states()))
    }
}

impl goldenscript::Runner for Runner {
    type Command = Command;

    fn run(
        &mut self,
        command: &Command,
        _context: &goldenscript::Context,
    ) -> Result<String, Box<dyn Error>> {
        match command {
            Command::View {
                me,
                incarnation,
                size,
                roles: r,
            } => {
                let config = DetectorConfig {
                    heartbeat_interval_ms: 100,
                    suspect_after: 3,
                    down_after: 8,
                };
                self.view = Some(Membership::new(
                    NodeName(me.clone()),
                    *incarnation,
                    roles(r)?,
                    config,
                ));
                self.size = size.unwrap_or(1);
                Ok(format!("[{}]\n", self.states()))
            }
            Command::Heartbeat {
                from,
                incarnation,
                at,
                you_are,
                roles: r,
            } => {
                let you_are = match you_are {
                    None => None,
                    Some(s) => {
                        let state = MemberState::from_name(s)
                            .ok_or_else(|| format!("unknown state {s}"))?;
                        Some((state, self.view()?.incarnation()))
                    }
                };
                self.step(Input::Heartbeat {
                    from: NodeName(from.clone()),
                    incarnation: *incarnation,
                    roles: roles(r)?,
                    you_are,
                    now_ms: *at,
                    rtt_ms: None,
                })
            }
            Command::Tick(at) => self.step(Input::Tick { now_ms: *at }),
            Command::Leaving {
                from,
                incarnation,
                at,
            } => self.step(Input::Leaving {
                from: NodeName(from.clone()),
                incarnation: *incarnation,
                now_ms: *at,
            }),
            Command::Leave => self.step(Input::Leave),
            Command::Rejoin(incarnation) => {
                self.view()?.rejoin(*incarnation);
                Ok(format!("[{}]\n", self.states()))
            }
            Command::Owners(role) => {
                let role = Role::from_name(role).ok_or_else(|| format!("unknown role {role}"))?;
                let owners = self.view()?.owners_for(role);
                let names: Vec<&str> = owners.iter().map(|n| n.0.as_str()).collect();
                if names.is_empty() {
                    return Ok("(nobody)\n".into());
                }
                Ok(format!("{}\n", names.join(" ")))
            }
            Command::Decide { holder, at } => {
                let size = self.size;
                let view = self.view()?;
                let d = decide(view, *at, size, holder);
                Ok(format!(
                    "{d:?} (settled={} quorum={})\n",
                    view.is_settled(*at),
                    view.has_quorum(size),
                ))
            }
        }
    }
}

/// Runs every script in `dir` (relative to the crate), in name order.
pub fn run_dir(dir: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no scripts in {}", dir.display());
    for path in paths {
        goldenscript::run(&mut Runner::default(), &path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
