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

/// A member's state in this node's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    /// How this node sees `name`.
    pub fn state_of(&self, name: &NodeName) -> Option<MemberState> {
        if *name == self.me {
            return Some(MemberState::Up);
        }
        self.members.get(name).map(|m| m.state)
    }

    /// A peer as this node sees it.
    pub fn member(&self, name: &NodeName) -> Option<&Member> {
        self.members.get(name)
    }

    /// Nodes that own shards for `role`: this node (if it has the role) and
    /// every peer that is `Up` or `Suspect` with the role. Sorted by name.
    pub fn owners_for(&self, role: Role) -> Vec<NodeName> {
        let mut out: Vec<NodeName> = self
            .members
            .values()
            .filter(|m| {
                matches!(m.state, MemberState::Up | MemberState::Suspect) && m.roles.contains(&role)
            })
            .map(|m| m.name.clone())
            .collect();
        if self.roles.contains(&role) {
            out.push(self.me.clone());
        }
        out.sort();
        out
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
    use super::*;

    fn n(s: &str) -> NodeName {
        NodeName(s.to_string())
    }

    fn all() -> BTreeSet<Role> {
        Role::ALL.into_iter().collect()
    }

    fn hb(from: &str, inc: u64, now: u64) -> Input {
        Input::Heartbeat {
            from: n(from),
            incarnation: inc,
            roles: all(),
            you_are: Some((MemberState::Up, 1)),
            now_ms: now,
            rtt_ms: Some(1),
        }
    }

    fn view() -> Membership {
        Membership::new(
            n("a"),
            1,
            all(),
            DetectorConfig {
                heartbeat_interval_ms: 100,
                suspect_after: 3,
                down_after: 8,
            },
        )
    }

    #[test]
    fn a_silent_peer_is_suspected_then_downed_and_loses_its_shards() {
        let mut m = view();
        assert_eq!(m.step(hb("b", 7, 0)), vec![ViewChange::Joined(n("b"))]);
        assert_eq!(m.owners_for(Role::Entities), vec![n("a"), n("b")]);
        assert_eq!(m.step(Input::Tick { now_ms: 299 }), vec![]);
        assert_eq!(
            m.step(Input::Tick { now_ms: 300 }),
            vec![ViewChange::Suspected(n("b"))]
        );
        assert_eq!(
            m.owners_for(Role::Entities),
            vec![n("a"), n("b")],
            "a suspect keeps its shards"
        );
        assert_eq!(
            m.step(Input::Tick { now_ms: 800 }),
            vec![ViewChange::Downed(n("b"))]
        );
        assert_eq!(m.owners_for(Role::Entities), vec![n("a")]);
    }

    #[test]
    fn a_node_that_was_frozen_itself_does_not_down_everyone() {
        let mut m = view();
        m.step(hb("b", 7, 0));
        m.step(Input::Tick { now_ms: 100 });
        // Ten seconds without a tick: this process was paused.
        assert_eq!(m.step(Input::Tick { now_ms: 10_100 }), vec![]);
        assert_eq!(m.state_of(&n("b")), Some(MemberState::Up));
        // If b really is gone, it is noticed after the normal threshold.
        m.step(Input::Tick { now_ms: 10_200 });
        assert_eq!(
            m.step(Input::Tick { now_ms: 10_900 }),
            vec![ViewChange::Downed(n("b"))]
        );
    }

    #[test]
    fn a_suspect_that_heartbeats_recovers() {
        let mut m = view();
        m.step(hb("b", 7, 0));
        m.step(Input::Tick { now_ms: 400 });
        assert_eq!(m.step(hb("b", 7, 450)), vec![ViewChange::Recovered(n("b"))]);
        assert_eq!(m.step(Input::Tick { now_ms: 600 }), vec![]);
    }

    #[test]
    fn a_paused_node_that_resumes_stays_down_until_it_rejoins() {
        let mut m = view();
        m.step(hb("b", 7, 0));
        m.step(Input::Tick { now_ms: 1_000 });
        assert_eq!(m.state_of(&n("b")), Some(MemberState::Down));
        // SIGCONT: the same incarnation heartbeats again, and is not let back in.
        assert_eq!(m.step(hb("b", 7, 1_050)), vec![]);
        assert_eq!(m.state_of(&n("b")), Some(MemberState::Down));
        // It learns it was downed and rejoins as a new incarnation.
        assert_eq!(m.step(hb("b", 8, 1_100)), vec![ViewChange::Joined(n("b"))]);
        assert_eq!(m.state_of(&n("b")), Some(MemberState::Up));
    }

    #[test]
    fn this_node_learns_it_was_declared_down() {
        let mut m = view();
        let changes = m.step(Input::Heartbeat {
            from: n("b"),
            incarnation: 7,
            roles: all(),
            you_are: Some((MemberState::Down, 1)),
            now_ms: 0,
            rtt_ms: None,
        });
        assert!(changes.contains(&ViewChange::SelfDowned));
        let stale = Input::Heartbeat {
            from: n("b"),
            incarnation: 7,
            roles: all(),
            you_are: Some((MemberState::Down, 0)),
            now_ms: 0,
            rtt_ms: None,
        };
        assert!(
            !view().step(stale).contains(&ViewChange::SelfDowned),
            "a verdict on an older incarnation is stale"
        );
        let before = m.incarnation();
        m.rejoin(before);
        assert!(m.incarnation() > before);
        assert_eq!(
            m.peers().count(),
            0,
            "peers are re-learnt from their heartbeats"
        );
        assert_eq!(m.step(hb("b", 7, 10)), vec![ViewChange::Joined(n("b"))]);
    }

    #[test]
    fn a_restart_replaces_the_old_incarnation_and_old_heartbeats_are_ignored() {
        let mut m = view();
        m.step(hb("b", 7, 0));
        assert_eq!(
            m.step(hb("b", 9, 50)),
            vec![ViewChange::Downed(n("b")), ViewChange::Joined(n("b"))]
        );
        assert_eq!(
            m.step(hb("b", 7, 60)),
            vec![],
            "a late heartbeat of the old process"
        );
        assert_eq!(m.peers().next().map(|p| p.incarnation), Some(9));
    }

    #[test]
    fn roles_decide_ownership_and_leaving_nodes_own_nothing() {
        let mut m = Membership::new(
            n("a"),
            1,
            [Role::Web].into_iter().collect(),
            DetectorConfig::default(),
        );
        m.step(Input::Heartbeat {
            from: n("t"),
            incarnation: 1,
            roles: [Role::Thumbnail].into_iter().collect(),
            you_are: None,
            now_ms: 0,
            rtt_ms: None,
        });
        m.step(hb("e", 1, 0));
        assert_eq!(m.owners_for(Role::Thumbnail), vec![n("e"), n("t")]);
        assert_eq!(
            m.owners_for(Role::Entities),
            vec![n("e")],
            "a has no entities role"
        );
        assert_eq!(m.owners_for(Role::Web), vec![n("a"), n("e")]);
        let v = m.version();
        assert_eq!(
            m.step(Input::Leaving {
                from: n("e"),
                incarnation: 1,
                now_ms: 5
            }),
            vec![ViewChange::Left(n("e"))]
        );
        assert!(m.version() > v);
        assert_eq!(m.owners_for(Role::Entities), Vec::<NodeName>::new());
    }
}
