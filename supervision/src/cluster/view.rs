//! The cluster view as readers see it: `GET /api/v1/cluster` and
//! `wani cluster status`. Made from the [`Membership`] that decides; nothing
//! decides from it.

use crate::membership::{MemberState, Membership, Role};
use serde::Serialize;
use std::collections::BTreeSet;

/// One member in a [`ViewSnapshot`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberView {
    pub name: String,
    pub state: MemberState,
    pub roles: Vec<Role>,
    pub incarnation: u64,
    /// Milliseconds since its last heartbeat arrived (`None` for this node).
    pub last_heartbeat_ms_ago: Option<u64>,
    /// Whether this is the node that answered.
    pub this_node: bool,
    /// Round trip of the last heartbeat this node sent the member and got
    /// an answer to (`None` for this node, or before the first answer).
    pub rtt_ms: Option<u64>,
}

/// The view as readers see it (`GET /api/v1/cluster`), made from the
/// [`Membership`] that decides.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewSnapshot {
    pub me: String,
    pub incarnation: u64,
    pub version: u64,
    pub members: Vec<MemberView>,
}

impl ViewSnapshot {
    /// The view of a node that is not in a cluster: itself, up.
    pub fn single(name: &str, roles: &BTreeSet<Role>) -> ViewSnapshot {
        ViewSnapshot {
            me: name.to_string(),
            incarnation: 0,
            version: 0,
            members: vec![MemberView {
                name: name.to_string(),
                state: MemberState::Up,
                roles: roles.iter().copied().collect(),
                incarnation: 0,
                last_heartbeat_ms_ago: None,
                this_node: true,
                rtt_ms: None,
            }],
        }
    }

    /// The snapshot of `m` at `now_ms`.
    pub fn of(m: &Membership, now_ms: u64) -> ViewSnapshot {
        let mut members: Vec<MemberView> = m
            .peers()
            .map(|p| MemberView {
                name: p.name.0.clone(),
                state: p.state,
                roles: p.roles.iter().copied().collect(),
                incarnation: p.incarnation,
                last_heartbeat_ms_ago: Some(now_ms.saturating_sub(p.last_heartbeat_ms)),
                this_node: false,
                rtt_ms: p.rtt_ms,
            })
            .collect();
        members.push(MemberView {
            name: m.me().0.clone(),
            state: m.my_state(),
            roles: m.roles().iter().copied().collect(),
            incarnation: m.incarnation(),
            last_heartbeat_ms_ago: None,
            this_node: true,
            rtt_ms: None,
        });
        members.sort_by(|a, b| a.name.cmp(&b.name));
        ViewSnapshot {
            me: m.me().0.clone(),
            incarnation: m.incarnation(),
            version: m.version(),
            members,
        }
    }
}
