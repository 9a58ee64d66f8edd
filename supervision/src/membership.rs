//! Membership: who is in the cluster, in which state, with which roles —
//! decided by a synchronous state machine driven by heartbeats and ticks.
//!
//! ractor_cluster connects nodes but notices only closed sockets: a paused
//! process (SIGSTOP) keeps its sockets open forever. So liveness here is
//! decided by heartbeats alone. Every node heartbeats every peer each
//! `heartbeat_interval_ms`; a peer silent for `suspect_after` intervals is
//! `Suspect` (still owns its shards: a short hiccup must not move data), and
//! after `down_after` intervals it is `Down` and its shards move.
//!
//! Identity is the configured node name, never ractor's per-connection id.
//! Each process start has a fresh `incarnation` (its start time): a node that
//! was declared down comes back only with a higher incarnation, so a paused
//! process that resumes cannot slip back in as if nothing happened. It learns
//! it was declared down from a peer's heartbeat (`you_are: Down`) and must
//! then drop its shards (its leases are fenced anyway) and rejoin as a new
//! incarnation.
//!
//! The view has a version that grows with every change, so callers can tell
//! whether placement must be recomputed. Nothing here does I/O or reads a
//! clock: the driver passes `now_ms` in, and tests step it by hand.

use crate::placement::NodeName;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A role a node can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Web,
    Entities,
    Render,
    Thumbnail,
    Live,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Web,
        Role::Entities,
        Role::Render,
        Role::Thumbnail,
        Role::Live,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Entities => "entities",
            Role::Render => "render",
            Role::Thumbnail => "thumbnail",
            Role::Live => "live",
        }
    }

    pub fn from_name(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A member's state in this node's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Heartbeating on time.
    Up,
    /// Missed a few heartbeats; keeps its shards for now.
    Suspect,
    /// Declared dead: its shards belong to others until it rejoins with a
    /// new incarnation.
    Down,
    /// Announced it is leaving (drain); owns nothing.
    Leaving,
}

impl MemberState {
    pub const ALL: [MemberState; 4] = [
        MemberState::Up,
        MemberState::Suspect,
        MemberState::Down,
        MemberState::Leaving,
    ];

    /// The state's name on the wire and in the cluster view.
    pub fn name(self) -> &'static str {
        match self {
            MemberState::Up => "up",
            MemberState::Suspect => "suspect",
            MemberState::Down => "down",
            MemberState::Leaving => "leaving",
        }
    }

    pub fn from_name(s: &str) -> Option<MemberState> {
        MemberState::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Owns shards: up, or only suspected so far.
    pub fn owns(self) -> bool {
        matches!(self, MemberState::Up | MemberState::Suspect)
    }

    /// The process is alive: it owns shards, or is draining and releases
    /// them itself.
    pub fn is_alive(self) -> bool {
        self != MemberState::Down
    }
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One member as this node sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: NodeName,
    pub roles: BTreeSet<Role>,
    pub state: MemberState,
    /// The member's process generation (its start time, ms).
    pub incarnation: u64,
    /// When its last heartbeat arrived (this node's clock, ms).
    pub last_heartbeat_ms: u64,
    /// Round trip of the last heartbeat this node sent it and got answered.
    pub rtt_ms: Option<u64>,
}

/// Timing of the failure detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetectorConfig {
    pub heartbeat_interval_ms: u64,
    /// Missed intervals before `Suspect`.
    pub suspect_after: u32,
    /// Missed intervals before `Down`.
    pub down_after: u32,
}

impl Default for DetectorConfig {
    /// 200 ms heartbeats, suspect after 3 misses (0.6 s), down after 8
    /// (1.6 s): well inside a 3 s failover budget, while tolerating a GC-free
    /// process's ordinary scheduling hiccups on a loaded 2-core machine.
    fn default() -> Self {
        DetectorConfig {
            heartbeat_interval_ms: 200,
            suspect_after: 3,
            down_after: 8,
        }
    }
}

/// What drives the state machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A heartbeat (or its answer) from `from`. `you_are` is how the sender
    /// sees this node (and which incarnation of it), if it knows it.
    Heartbeat {
        from: NodeName,
        incarnation: u64,
        roles: BTreeSet<Role>,
        you_are: Option<(MemberState, u64)>,
        now_ms: u64,
        rtt_ms: Option<u64>,
    },
    /// `from` announced it is leaving (drain).
    Leaving {
        from: NodeName,
        incarnation: u64,
        now_ms: u64,
    },
    /// Time passed; re-evaluate every member.
    Tick { now_ms: u64 },
    /// This node starts leaving (drain): from now on it owns nothing.
    /// There is no way back for this incarnation.
    Leave,
}

/// A change of the view, past tense.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewChange {
    /// A member appeared, or came back as a new incarnation.
    Joined(NodeName),
    /// A member went silent for `suspect_after` intervals.
    Suspected(NodeName),
    /// A suspected member heartbeated again in time.
    Recovered(NodeName),
    /// A member was declared down: its shards move.
    Downed(NodeName),
    /// A member announced it is leaving.
    Left(NodeName),
    /// A peer declared *this* node down: drop every shard, rejoin with a new
    /// incarnation.
    SelfDowned,
}

/// This node's view of the cluster.
#[derive(Clone, Debug)]
pub struct Membership {
    me: NodeName,
    incarnation: u64,
    roles: BTreeSet<Role>,
    config: DetectorConfig,
    members: BTreeMap<NodeName, Member>,
    version: u64,
    /// When the last tick ran, to notice that this process itself was frozen.
    last_tick_ms: Option<u64>,
    /// Set by [`Input::Leave`]; never cleared for this incarnation.
    leaving: bool,
}

impl Membership {
    /// A view holding only this node.
    pub fn new(
        me: NodeName,
        incarnation: u64,
        roles: BTreeSet<Role>,
        config: DetectorConfig,
    ) -> Membership {
        Membership {
            me,
            incarnation,
            roles,
            config,
            members: BTreeMap::new(),
            version: 0,
            last_tick_ms: None,
            leaving: false,
        }
    }

    /// This node's name.
    pub fn me(&self) -> &NodeName {
        &self.me
    }

    /// This node's roles.
    pub fn roles(&self) -> &BTreeSet<Role> {
        &self.roles
    }

    /// This node's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Grows with every change of the view.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The peers (not this node), by name.
    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// How this node sees `name` (itself: up, or leaving while it drains).
    pub fn state_of(&self, name: &NodeName) -> Option<MemberState> {
        if *name == self.me {
            return Some(self.my_state());
        }
        self.members.get(name).map(|m| m.state)
    }

    /// This node's own state: up, or leaving once it started draining.
    pub fn my_state(&self) -> MemberState {
        if self.leaving {
            MemberState::Leaving
        } else {
            MemberState::Up
        }
    }

    /// Whether this node started leaving.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// A peer as this node sees it.
    pub fn member(&self, name: &NodeName) -> Option<&Member> {
        self.members.get(name)
    }

    /// Nodes that own shards for `role`: this node (if it has the role and
    /// is not leaving) and every peer that is `Up` or `Suspect` with the
    /// role. Sorted by name.
    pub fn owners_for(&self, role: Role) -> Vec<NodeName> {
        let mut out: Vec<NodeName> = self
            .members
            .values()
            .filter(|m| m.state.owns() && m.roles.contains(&role))
            .map(|m| m.name.clone())
            .collect();
        if self.roles.contains(&role) && !self.leaving {
            out.push(self.me.clone());
        }
        out.sort();
        out
    }

    /// Nodes carrying `role` whatever their state, this node included.
    pub fn with_role(&self, role: Role) -> impl Iterator<Item = &NodeName> {
        let me = self.roles.contains(&role).then_some(&self.me);
        self.members
            .values()
            .filter(move |m| m.roles.contains(&role))
            .map(|m| &m.name)
            .chain(me)
    }

    /// Whether this node has listened long enough since it (re)joined to
    /// act on its view: a node that just started has heard from no peer
    /// yet and would believe it owns every shard. It waits as long as it
    /// takes to declare a silent peer down. The incarnation is the time
    /// this node (re)joined, in ms.
    pub fn is_settled(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.incarnation) >= self.settle_ms()
    }

    /// How long a fresh view takes to settle.
    pub fn settle_ms(&self) -> u64 {
        self.config.heartbeat_interval_ms * self.config.down_after as u64
    }

    /// Whether this node sees a majority of the cluster alive (itself
    /// included): more than half of the nodes it knows of (at least
    /// `at_least`, the size the configuration implies before any peer was
    /// heard from), or exactly half when that half holds the smallest name
    /// (so one of two halves, and only one, goes on). A node it never
    /// heard from counts against it.
    pub fn has_quorum(&self, at_least: usize) -> bool {
        let known = self.members.len() + 1;
        let size = known.max(at_least);
        let alive = 1 + self.members.values().filter(|m| m.state.is_alive()).count();
        if 2 * alive != size {
            return 2 * alive > size;
        }
        if known != size {
            return false;
        }
        let smallest = self.members.keys().next().filter(|n| **n < self.me);
        match smallest {
            None => true,
            Some(n) => self.members[n].state.is_alive(),
        }
    }

    /// Whether the process `name` in incarnation `incarnation` is alive in
    /// this view: this node itself, or a peer of exactly that incarnation
    /// that is not down.
    pub fn is_alive(&self, name: &NodeName, incarnation: u64) -> bool {
        if *name == self.me {
            return incarnation == self.incarnation;
        }
        self.members
            .get(name)
            .is_some_and(|m| m.incarnation == incarnation && m.state.is_alive())
    }

    /// Starts over as a new incarnation after being declared down, and
    /// forgets every peer: while this node was paused or cut off it marked
    /// them down too, and since `Down` is final for an incarnation it would
    /// otherwise never take them back. Their next heartbeats re-add them.
    pub fn rejoin(&mut self, incarnation: u64) {
        self.incarnation = incarnation.max(self.incarnation + 1);
        self.members.clear();
        self.version += 1;
    }

    /// Applies one input; returns what changed.
    pub fn step(&mut self, input: Input) -> Vec<ViewChange> {
        let changes = match input {
            Input::Heartbeat {
                from,
                incarnation,
                roles,
                you_are,
                now_ms,
                rtt_ms,
            } => self.heartbeat(from, incarnation, roles, you_are, now_ms, rtt_ms),
            Input::Leaving {
                from,
                incarnation,
                now_ms,
            } => self.leaving(from, incarnation, now_ms),
            Input::Tick { now_ms } => self.tick(now_ms),
            Input::Leave if self.leaving => Vec::new(),
            Input::Leave => {
                self.leaving = true;
                vec![ViewChange::Left(self.me.clone())]
            }
        };
        if !changes.is_empty() {
            self.version += 1;
        }
        changes
    }

    fn heartbeat(
        &mut self,
        from: NodeName,
        incarnation: u64,
        roles: BTreeSet<Role>,
        you_are: Option<(MemberState, u64)>,
        now_ms: u64,
        rtt_ms: Option<u64>,
    ) -> Vec<ViewChange> {
        let mut changes = Vec::new();
        if from == self.me {
            return changes;
        }
        // Only a verdict on this incarnation counts: one about a previous
        // life (sent before the sender saw us rejoin) is stale.
        if you_are == Some((MemberState::Down, self.incarnation)) {
            changes.push(ViewChange::SelfDowned);
        }
        match self.members.get_mut(&from) {
            None => {
                self.members.insert(
                    from.clone(),
                    Member {
                        name: from.clone(),
                        roles,
                        state: MemberState::Up,
                        incarnation,
                        last_heartbeat_ms: now_ms,
                        rtt_ms,
                    },
                );
                changes.push(ViewChange::Joined(from));
            }
            Some(m) if incarnation < m.incarnation => {
                // A heartbeat from a previous life of that node, delayed: ignore.
            }
            Some(m) if incarnation > m.incarnation => {
                // A restarted process: whatever the old one owned is gone.
                let was_live = matches!(m.state, MemberState::Up | MemberState::Suspect);
                *m = Member {
                    name: from.clone(),
                    roles,
                    state: MemberState::Up,
                    incarnation,
                    last_heartbeat_ms: now_ms,
                    rtt_ms,
                };
                if was_live {
                    changes.push(ViewChange::Downed(from.clone()));
                }
                changes.push(ViewChange::Joined(from));
            }
            Some(m) => match m.state {
                // Down and Leaving are final for an incarnation: a paused
                // process that resumes must rejoin as a new one.
                MemberState::Down | MemberState::Leaving => {}
                MemberState::Suspect => {
                    m.state = MemberState::Up;
                    m.last_heartbeat_ms = now_ms;
                    m.rtt_ms = rtt_ms.or(m.rtt_ms);
                    m.roles = roles;
                    changes.push(ViewChange::Recovered(from));
                }
                MemberState::Up => {
                    m.last_heartbeat_ms = now_ms;
                    m.rtt_ms = rtt_ms.or(m.rtt_ms);
                    if m.roles != roles {
                        m.roles = roles;
                        changes.push(ViewChange::Joined(from));
                    }
                }
            },
        }
        changes
    }

    fn leaving(&mut self, from: NodeName, incarnation: u64, now_ms: u64) -> Vec<ViewChange> {
        match self.members.get_mut(&from) {
            Some(m) if m.incarnation == incarnation && m.state != MemberState::Leaving => {
                m.state = MemberState::Leaving;
                m.last_heartbeat_ms = now_ms;
                vec![ViewChange::Left(from)]
            }
            _ => Vec::new(),
        }
    }

    fn tick(&mut self, now_ms: u64) -> Vec<ViewChange> {
        let interval = self.config.heartbeat_interval_ms.max(1);
        let mut changes = Vec::new();
        // Ticks come every interval. A gap as long as the down threshold means
        // *this* process was frozen (SIGSTOP, a stalled VM), not that every
        // peer died at once: give the peers a fresh grace period instead of
        // declaring them all down. If it was declared down meanwhile, the
        // peers' next heartbeats say so and it rejoins.
        let frozen = self.last_tick_ms.is_some_and(|last| {
            now_ms.saturating_sub(last) >= interval * self.config.down_after as u64
        });
        self.last_tick_ms = Some(now_ms);
        if frozen {
            for m in self.members.values_mut() {
                m.last_heartbeat_ms = m.last_heartbeat_ms.max(now_ms);
            }
            return changes;
        }
        for m in self.members.values_mut() {
            let missed = now_ms.saturating_sub(m.last_heartbeat_ms) / interval;
            match m.state {
                MemberState::Up | MemberState::Suspect
                    if missed >= self.config.down_after as u64 =>
                {
                    m.state = MemberState::Down;
                    changes.push(ViewChange::Downed(m.name.clone()));
                }
                MemberState::Up if missed >= self.config.suspect_after as u64 => {
                    m.state = MemberState::Suspect;
                    changes.push(ViewChange::Suspected(m.name.clone()));
                }
                _ => {}
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    /// Every script under `src/membership/testscripts/`: the detector,
    /// incarnations, roles and leaving, as stories told to one node's view
    /// (see `crate::script`).
    #[test]
    fn golden_scripts() {
        crate::script::run_dir("src/membership/testscripts");
    }
}
