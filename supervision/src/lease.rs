//! Shard leases, the rule: who may take a shard's lease from its holder.
//!
//! Before a node activates an entity of shard S it takes S's lease in the
//! database (shard, holder, epoch, expiry); every write of the entity checks
//! the epoch in its own transaction, so two activations of one shard can
//! never both commit. A free or expired lease is simply acquired. A lease
//! held by another process is the case decided here, by [`decide`], from
//! this node's membership view alone:
//!
//! - the holder is dead (declared down, unknown to the view, or a previous
//!   incarnation of a node that restarted): **take it over** at once, which
//!   bumps the epoch and fences the old holder even if the view was wrong;
//! - the holder is alive (up, suspect, or leaving and about to release it):
//!   **wait** for it to release the lease or for it to expire;
//! - this node cannot see a majority of the cluster: **refuse** at once.
//!   A node cut off by a partition sees everyone else down; were it to take
//!   their leases it would fence the side that can still serve.
//!
//! A view that has not settled (the node just started or rejoined and has
//! not heard from its peers yet) never takes over: it would see every
//! holder as unknown.
//!
//! The holder is named `name#incarnation` in the database ([`LeaseHolder`]),
//! so a restarted process never shares a fence with its previous life.
//! Decisions are tested by the golden scripts in `src/lease/testscripts/`:
//! a view is built, then a lease holder is judged.

use crate::membership::Membership;
use crate::placement::NodeName;
use std::fmt;
use std::str::FromStr;

/// Who holds a lease: a node's name and the incarnation of its process.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeaseHolder {
    pub node: NodeName,
    pub incarnation: u64,
}

impl fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.node, self.incarnation)
    }
}

/// A holder column that is not `name#incarnation`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("lease holder {0:?} is not name#incarnation")]
pub struct BadHolder(pub String);

impl FromStr for LeaseHolder {
    type Err = BadHolder;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, inc) = s.rsplit_once('#').ok_or_else(|| BadHolder(s.into()))?;
        let incarnation = inc.parse().map_err(|_| BadHolder(s.into()))?;
        if name.is_empty() {
            return Err(BadHolder(s.into()));
        }
        Ok(LeaseHolder {
            node: NodeName(name.into()),
            incarnation,
        })
    }
}

/// What to do about a lease another process holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Its holder is dead: take the lease over now (the epoch moves on).
    TakeOver,
    /// Its holder is alive: wait until it releases or the lease expires.
    Wait,
    /// This node is cut off from the majority: answer at once that the
    /// request should go to another node.
    Refuse,
}

/// Whether a node whose view is `view` (settled at `now_ms`, in a cluster
/// that its configuration says has at least `cluster_size` nodes) may take
/// over a lease whose holder column reads `holder`.
pub fn decide(view: &Membership, now_ms: u64, cluster_size: usize, holder: &str) -> Decision {
    let quorum = view.has_quorum(cluster_size);
    if quorum && view.is_settled(now_ms) && is_dead(view, holder) {
        return Decision::TakeOver;
    }
    if !quorum {
        return Decision::Refuse;
    }
    Decision::Wait
}

/// Whether the holder named by `holder` is dead in `view`. A holder column
/// that names no process (garbage, or a format of a future version) is no
/// process this view could wait for.
fn is_dead(view: &Membership, holder: &str) -> bool {
    match holder.parse::<LeaseHolder>() {
        Ok(h) => !view.is_alive(&h.node, h.incarnation),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::MemberState;

    #[test]
    fn holders_round_trip_and_garbage_is_refused() {
        let h: LeaseHolder = "a@127.0.0.1:7001#1700000000123".parse().unwrap();
        assert_eq!(h.node, NodeName("a@127.0.0.1:7001".into()));
        assert_eq!(h.incarnation, 1_700_000_000_123);
        assert_eq!(h.to_string(), "a@127.0.0.1:7001#1700000000123");
        for bad in ["", "a", "a#", "#5", "a#x", "a#-1"] {
            assert!(bad.parse::<LeaseHolder>().is_err(), "{bad:?}");
        }
    }

    /// Every script under `src/lease/testscripts/` (see `crate::script`).
    #[test]
    fn golden_scripts() {
        crate::script::run_dir("src/lease/testscripts");
    }

    #[test]
    fn states_are_typed_on_both_sides_of_the_wire() {
        for s in MemberState::ALL {
            assert_eq!(MemberState::from_name(s.name()), Some(s));
        }
        assert_eq!(MemberState::from_name("UP"), None);
    }
}
