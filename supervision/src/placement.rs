//! Placement: which shard an entity belongs to and which node owns a shard.
//!
//! `shard = H(key) mod N` with a fixed `N` (the shard count never changes at
//! run time, so shards, not entities, are what moves). The owner of a shard
//! is the node with the highest `H(shard, node)` among the live nodes that
//! carry the role ("rendezvous" or highest-random-weight hashing): it needs no
//! coordination, every node agrees given the same view, and removing a node
//! moves only the shards it owned.
//!
//! The hash is SHA-256 truncated to 64 bits: stable across processes,
//! versions and platforms, unlike `std`'s randomly keyed `DefaultHasher`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Number of shards when the configuration does not say otherwise.
pub const DEFAULT_SHARDS: u32 = 64;

/// A shard number in `0..shards`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId(pub u32);

/// A node's stable identity, `name@host:port`, from its configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeName(pub String);

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of a virtual entity: its kind (`"thread"`, `"board"`: the name
/// its messages carry on the wire) and its id within the kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityKey {
    pub kind: &'static str,
    pub id: i64,
}

impl EntityKey {
    pub const fn new(kind: &'static str, id: i64) -> EntityKey {
        EntityKey { kind, id }
    }
}

/// `kind:id`: also what the shard hash is taken over.
impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

fn hash64(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_le_bytes(first)
}

/// The shard of an entity, for a cluster of `shards` shards (`shards > 0`).
pub fn shard_of(key: &EntityKey, shards: u32) -> ShardId {
    let shards = shards.max(1);
    ShardId((hash64(&[key.to_string().as_bytes()]) % shards as u64) as u32)
}

/// The owner of `shard` among `candidates` (live nodes carrying the role),
/// or `None` when there is none. Ties (equal hashes) go to the smaller name,
/// so the result never depends on the candidates' order.
pub fn owner_of<'a>(
    shard: ShardId,
    candidates: impl IntoIterator<Item = &'a NodeName>,
) -> Option<&'a NodeName> {
    candidates
        .into_iter()
        .map(|n| (hash64(&[&shard.0.to_le_bytes(), n.0.as_bytes()]), n))
        .max_by(|(ha, na), (hb, nb)| ha.cmp(hb).then_with(|| nb.cmp(na)))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> Vec<NodeName> {
        names.iter().map(|n| NodeName(n.to_string())).collect()
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        for id in 0..1000 {
            let s = shard_of(&EntityKey::new("thread", id), 64);
            assert!(s.0 < 64);
            assert_eq!(s, shard_of(&EntityKey::new("thread", id), 64));
        }
        assert_ne!(
            (0..64)
                .map(|i| shard_of(&EntityKey::new("thread", i), 64))
                .collect::<Vec<_>>(),
            (0..64)
                .map(|i| shard_of(&EntityKey::new("board", i), 64))
                .collect::<Vec<_>>(),
            "boards and threads with the same id should not share a placement"
        );
    }

    #[test]
    fn every_node_agrees_whatever_the_order() {
        let a = nodes(&["a@h:1", "b@h:2", "c@h:3"]);
        let mut b = a.clone();
        b.reverse();
        for s in 0..64 {
            assert_eq!(owner_of(ShardId(s), &a), owner_of(ShardId(s), &b));
        }
    }

    #[test]
    fn removing_a_node_moves_only_its_shards_and_spreads_them() {
        let all = nodes(&["a@h:1", "b@h:2", "c@h:3"]);
        let survivors = nodes(&["a@h:1", "c@h:3"]);
        let mut owned_by_b = 0;
        for s in 0..256 {
            let before = owner_of(ShardId(s), &all).cloned();
            let after = owner_of(ShardId(s), &survivors).cloned();
            if before.as_ref().map(|n| n.0.as_str()) == Some("b@h:2") {
                owned_by_b += 1;
            } else {
                assert_eq!(before, after, "shard {s} moved although its owner stayed");
            }
        }
        // Rendezvous hashing spreads load: each of three nodes owns roughly a third.
        assert!(
            (50..120).contains(&owned_by_b),
            "b owned {owned_by_b} of 256"
        );
    }

    #[test]
    fn no_candidates_no_owner() {
        assert_eq!(owner_of(ShardId(1), &Vec::<NodeName>::new()), None);
    }
}

/// Which node owns each shard, computed from a list of owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardMap {
    owners: Vec<Option<NodeName>>,
}

impl ShardMap {
    /// The owner of every shard in `0..shards` among `candidates`.
    pub fn compute(shards: u32, candidates: &[NodeName]) -> ShardMap {
        ShardMap {
            owners: (0..shards)
                .map(|s| owner_of(ShardId(s), candidates).cloned())
                .collect(),
        }
    }

    /// The owner of one shard.
    pub fn owner(&self, shard: ShardId) -> Option<&NodeName> {
        self.owners.get(shard.0 as usize).and_then(Option::as_ref)
    }

    /// Shards owned by `node`.
    pub fn owned_by<'a>(&'a self, node: &'a NodeName) -> impl Iterator<Item = ShardId> + 'a {
        self.owners
            .iter()
            .enumerate()
            .filter(move |(_, o)| o.as_ref() == Some(node))
            .map(|(i, _)| ShardId(i as u32))
    }

    /// Shards whose owner differs between `self` (before) and `after`.
    pub fn moved(&self, after: &ShardMap) -> Vec<ShardId> {
        (0..self.owners.len().max(after.owners.len()))
            .filter(|&i| self.owners.get(i) != after.owners.get(i))
            .map(|i| ShardId(i as u32))
            .collect()
    }
}

#[cfg(test)]
mod map_tests {
    use super::*;

    #[test]
    fn a_view_change_moves_only_the_lost_nodes_shards() {
        let three: Vec<NodeName> = ["a", "b", "c"]
            .iter()
            .map(|s| NodeName(s.to_string()))
            .collect();
        let two: Vec<NodeName> = three.iter().filter(|n| n.0 != "c").cloned().collect();
        let before = ShardMap::compute(64, &three);
        let after = ShardMap::compute(64, &two);
        let c = NodeName("c".into());
        let owned_by_c: Vec<ShardId> = before.owned_by(&c).collect();
        assert_eq!(before.moved(&after), owned_by_c);
        assert_eq!(after.owned_by(&c).count(), 0);
        assert!(ShardMap::compute(8, &[]).owner(ShardId(0)).is_none());
    }
}
