//! Interest: which threads and boards each live node's clients follow, so
//! a write is relayed only to the nodes that have someone to tell.
//!
//! Each hub announces what its clients follow to every other live node
//! ([`Wanted`]): a topic as soon as its first client here follows it, its
//! withdrawal only after [`LINGER`] ticks without one (a page reload does
//! not withdraw and add it again), and the whole set to a peer not told
//! yet (new, or restarted) and every [`FULL_EVERY`] ticks. Announcements
//! are numbered; a receiver ([`Peers`]) that finds one missing forgets what
//! it knew of that node and relays everything to it until the next whole
//! set. A node that never announced anything gets everything, as before.
//!
//! Lossless. A client on node B follows a topic at time s; its owner A
//! learns of it when B's announcement arrives, and a write A skipped for B
//! in between would be lost. So A keeps, per peer, the topics it skipped
//! and how many messages it had sent that peer when it skipped each; B's
//! announcement says how many of A's messages it had heard when it was
//! sent. A write A skipped before sending the message B had heard last was
//! skipped before s; one skipped later may not have been. A answers every
//! announcement ([`Seen`]) with the topics it adds that it skipped since
//! that point, and B tells those topics' clients to resync. Nothing is
//! sent when nothing was skipped in the window, which is the usual case.
//!
//! B's replay ring (`Last-Event-ID`) holds a topic's relayed writes only
//! from when every peer answered its announcement on ([`Wanted::complete_since`]):
//! a client reconnecting with an older id for a topic followed later, or
//! withdrawn meanwhile, resyncs instead of being replayed a partial list.
//!
//! Pure state, tested without tokio.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use wani_store::{BoardId, ThreadId};
use wani_supervision::NodeName;

/// Ticks a topic stays announced after its last client here left.
pub const LINGER: u64 = 10;
/// Ticks between two announcements of the whole set to every peer, which
/// repairs a receiver that lost one.
pub const FULL_EVERY: u64 = 30;
/// Ticks to wait for a peer's answer before resyncing the new topics'
/// clients anyway (the peer is down, or the answer was lost).
pub const ANSWER_TICKS: u64 = 5;
/// Beyond this many followed topics a node announces that it wants every
/// write instead of the list: clients following thousands of made-up
/// threads on one node must not fill every other node's memory.
pub const MAX_ANNOUNCED: usize = 50_000;

/// A thread or a board, as followed by clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Topic {
    Thread(ThreadId),
    Board(BoardId),
}

/// What a node's clients follow now, or how it changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// The announcing hub's relay stream (new on every restart).
    pub stream: u64,
    /// The number of this announcement; a whole set repeats the last one.
    pub epoch: u64,
    /// `add` is everything followed (`remove` is empty).
    pub full: bool,
    /// Send it every write (it follows more than [`MAX_ANNOUNCED`]).
    pub all: bool,
    pub add: Vec<Topic>,
    pub remove: Vec<Topic>,
    /// The receiver's relay stream and how many of its messages the
    /// announcer had heard when it announced.
    pub heard_stream: u64,
    pub heard: u64,
}

/// The answer to an announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub epoch: u64,
    /// Topics it adds for which a write was skipped since the point the
    /// announcer had heard: their clients resync.
    pub missed: Vec<Topic>,
}

/// A change to announce to every peer (numbered `epoch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub epoch: u64,
    pub add: Vec<Topic>,
    pub remove: Vec<Topic>,
}

struct Waiting {
    epoch: u64,
    peers: HashSet<NodeName>,
    topics: Vec<Topic>,
    since: u64,
}

/// This node's side: what it announced, and the answers it waits for.
#[derive(Default)]
pub struct Wanted {
    epoch: u64,
    following: HashSet<Topic>,
    /// Followed topics without a client here, since which tick.
    idle: HashMap<Topic, u64>,
    waiting: Vec<Waiting>,
    /// Per topic, the first event id from which the ring holds every write.
    complete: HashMap<Topic, u64>,
}

impl Wanted {
    /// Clients here follow `topics` now; the new ones are announced to
    /// `peers` (the change is returned), and complete once all answered.
    /// With no peer they are complete from `next_id` at once.
    pub fn follow(
        &mut self,
        topics: impl IntoIterator<Item = Topic>,
        peers: &[NodeName],
        tick: u64,
        next_id: u64,
    ) -> Option<Change> {
        let mut add = Vec::new();
        for t in topics {
            self.idle.remove(&t);
            if self.following.insert(t) {
                add.push(t);
            }
        }
        if add.is_empty() {
            return None;
        }
        self.epoch += 1;
        if peers.is_empty() {
            for t in &add {
                self.complete.insert(*t, next_id);
            }
        } else {
            self.waiting.push(Waiting {
                epoch: self.epoch,
                peers: peers.iter().cloned().collect(),
                topics: add.clone(),
                since: tick,
            });
        }
        Some(Change {
            epoch: self.epoch,
            add,
            remove: Vec::new(),
        })
    }

    /// The last client here following `topic` left.
    pub fn unfollowed(&mut self, topic: Topic, tick: u64) {
        if self.following.contains(&topic) {
            self.idle.insert(topic, tick);
        }
    }

    /// The clock: withdraws topics idle for [`LINGER`] ticks (the change to
    /// announce), and gives up waiting for answers older than
    /// [`ANSWER_TICKS`] or from nodes no longer among `peers`. Returns the
    /// change and the topics whose clients must resync.
    pub fn tick(
        &mut self,
        tick: u64,
        peers: &[NodeName],
        next_id: u64,
    ) -> (Option<Change>, Vec<Topic>) {
        let gone: Vec<Topic> = self
            .idle
            .iter()
            .filter(|(_, since)| tick.saturating_sub(**since) >= LINGER)
            .map(|(t, _)| *t)
            .collect();
        for t in &gone {
            self.idle.remove(t);
            self.following.remove(t);
            self.complete.remove(t);
        }
        let change = (!gone.is_empty()).then(|| {
            self.epoch += 1;
            Change {
                epoch: self.epoch,
                add: Vec::new(),
                remove: gone,
            }
        });
        let mut resync = Vec::new();
        for w in &mut self.waiting {
            w.peers.retain(|p| peers.contains(p));
            if tick.saturating_sub(w.since) >= ANSWER_TICKS && !w.peers.is_empty() {
                // Unanswered: what it skipped meanwhile is unknown.
                resync.extend(w.topics.iter().copied());
                w.peers.clear();
            }
        }
        self.finish(next_id);
        resync.retain(|t| self.following.contains(t));
        (change, resync)
    }

    /// `from` answered; returns the topics whose clients must resync.
    pub fn seen(&mut self, from: &NodeName, seen: &Seen, next_id: u64) -> Vec<Topic> {
        for w in &mut self.waiting {
            if w.epoch <= seen.epoch {
                w.peers.remove(from);
            }
        }
        self.finish(next_id);
        seen.missed
            .iter()
            .copied()
            .filter(|t| self.following.contains(t))
            .collect()
    }

    fn finish(&mut self, next_id: u64) {
        let (done, waiting): (Vec<Waiting>, Vec<Waiting>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.peers.is_empty());
        self.waiting = waiting;
        for w in done {
            for t in w.topics {
                if self.following.contains(&t) {
                    self.complete.entry(t).or_insert(next_id);
                }
            }
        }
    }

    /// The whole set, for a peer not told yet or the periodic repair;
    /// `None` past [`MAX_ANNOUNCED`] (announce `all` instead).
    pub fn whole(&self) -> (u64, Option<Vec<Topic>>) {
        let topics = (!self.too_many()).then(|| self.following.iter().copied().collect());
        (self.epoch, topics)
    }

    /// Follows too many topics to list them: announce `all` instead.
    pub fn too_many(&self) -> bool {
        self.following.len() > MAX_ANNOUNCED
    }

    /// The first event id from which the ring holds every write for
    /// `topic`; `None` while answers are awaited or when not followed.
    pub fn complete_since(&self, topic: Topic) -> Option<u64> {
        self.complete.get(&topic).copied()
    }
}

struct PeerWants {
    stream: u64,
    epoch: u64,
    /// `None`: unknown, so everything goes to it.
    topics: Option<HashSet<Topic>>,
    /// Topics skipped for it, with how many messages it had been sent then.
    skipped: HashMap<Topic, u64>,
}

impl PeerWants {
    /// A hub starts following nothing; its first change is numbered 1.
    fn new(stream: u64) -> PeerWants {
        PeerWants {
            stream,
            epoch: 0,
            topics: Some(HashSet::new()),
            skipped: HashMap::new(),
        }
    }
}

/// The other nodes' side, as this node knows it.
#[derive(Default)]
pub struct Peers {
    known: HashMap<NodeName, PeerWants>,
}

impl Peers {
    /// Whether `peer` follows any of `topics` (or is not known to follow
    /// nothing). If not, the skip is remembered, at `sent`, the number of
    /// messages sent to it so far.
    pub fn wants(&mut self, peer: &NodeName, topics: &[Topic], sent: u64) -> bool {
        let Some(p) = self.known.get_mut(peer) else {
            return true;
        };
        let Some(followed) = &p.topics else {
            return true;
        };
        if topics.iter().any(|t| followed.contains(t)) {
            return true;
        }
        for t in topics {
            p.skipped.insert(*t, sent);
        }
        false
    }

    /// Takes `from`'s announcement; `my_stream` is this node's relay stream.
    pub fn announced(&mut self, from: &NodeName, a: &Announce, my_stream: u64) -> Seen {
        let p = self
            .known
            .entry(from.clone())
            .or_insert_with(|| PeerWants::new(a.stream));
        if p.stream != a.stream {
            *p = PeerWants::new(a.stream);
        }
        let added: Vec<Topic> = if a.all {
            // Everything from now on; what was skipped may concern it.
            p.topics = None;
            p.skipped.keys().copied().collect()
        } else if a.full {
            let new: HashSet<Topic> = a.add.iter().copied().collect();
            let added = match &p.topics {
                Some(old) => new.difference(old).copied().collect(),
                None => new.iter().copied().collect(),
            };
            p.topics = Some(new);
            added
        } else {
            match &mut p.topics {
                Some(t) if a.epoch == p.epoch + 1 => {
                    for r in &a.remove {
                        t.remove(r);
                    }
                    a.add.iter().copied().filter(|x| t.insert(*x)).collect()
                }
                // One went missing: what it follows is unknown until its
                // next whole set, and it gets everything meanwhile.
                _ => {
                    p.topics = None;
                    a.add.clone()
                }
            }
        };
        p.epoch = a.epoch;
        // Skipped before the last message it had heard: before it announced.
        let heard = if a.heard_stream == my_stream {
            a.heard
        } else {
            0
        };
        p.skipped.retain(|_, at| *at >= heard);
        let missed = added
            .into_iter()
            .filter(|t| p.skipped.contains_key(t))
            .collect();
        Seen {
            epoch: a.epoch,
            missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> NodeName {
        NodeName(s.to_string())
    }
    fn th(i: i64) -> Topic {
        Topic::Thread(ThreadId(i))
    }
    fn announce(c: &Change, heard: u64) -> Announce {
        Announce {
            stream: 7,
            epoch: c.epoch,
            full: false,
            all: false,
            add: c.add.clone(),
            remove: c.remove.clone(),
            heard_stream: 1,
            heard,
        }
    }

    #[test]
    fn writes_go_only_where_someone_follows_them() {
        let (mut b, mut a) = (Wanted::default(), Peers::default());
        // Never announced: everything goes to b.
        assert!(a.wants(&n("b"), &[th(1)], 0));
        let c = b.follow([th(1)], &[n("a")], 0, 100).unwrap();
        assert_eq!(a.announced(&n("b"), &announce(&c, 0), 1).missed, vec![]);
        assert!(a.wants(&n("b"), &[th(1), Topic::Board(BoardId(3))], 0));
        assert!(!a.wants(&n("b"), &[th(2)], 0));
        // Following again what is followed announces nothing.
        assert_eq!(b.follow([th(1)], &[n("a")], 0, 100), None);
    }

    #[test]
    fn a_write_skipped_while_the_announcement_travelled_is_reported() {
        let (mut b, mut a) = (Wanted::default(), Peers::default());
        let c = b.follow([th(1)], &[n("a")], 0, 100).unwrap();
        a.announced(&n("b"), &announce(&c, 0), 1);
        // a sent b four messages (thread 1's writes); b heard all four.
        // Then a skips a write of thread 2 for b, and one of thread 3.
        assert!(!a.wants(&n("b"), &[th(2)], 4));
        assert!(!a.wants(&n("b"), &[th(3)], 4));
        // b's client follows thread 2, having heard 4: the skip at 4 may
        // have come after it, so a reports it; thread 3 is not added.
        let c = b.follow([th(2)], &[n("a")], 1, 100).unwrap();
        let seen = a.announced(&n("b"), &announce(&c, 4), 1);
        assert_eq!(seen.missed, vec![th(2)]);
        assert_eq!(b.seen(&n("a"), &seen, 120), vec![th(2)]);
        assert_eq!(b.complete_since(th(2)), Some(120));
    }

    #[test]
    fn a_skip_before_the_last_message_heard_is_not_reported() {
        let (mut b, mut a) = (Wanted::default(), Peers::default());
        let c = b.follow([th(1)], &[n("a")], 0, 100).unwrap();
        a.announced(&n("b"), &announce(&c, 0), 1);
        assert!(!a.wants(&n("b"), &[th(2)], 4));
        // a sent b a fifth message after that skip, and b heard it before
        // its client followed thread 2: the skip came before the follow.
        let c = b.follow([th(2)], &[n("a")], 1, 100).unwrap();
        let seen = a.announced(&n("b"), &announce(&c, 5), 1);
        assert_eq!(seen.missed, vec![]);
        // From another stream of a's (a restarted), the count means nothing.
        assert!(!a.wants(&n("b"), &[th(4)], 5));
        let c = b.follow([th(4)], &[n("a")], 1, 100).unwrap();
        let mut other = announce(&c, 9);
        other.heard_stream = 99;
        assert_eq!(a.announced(&n("b"), &other, 1).missed, vec![th(4)]);
    }

    #[test]
    fn a_lost_announcement_makes_the_peer_get_everything_until_a_whole_set() {
        let (mut b, mut a) = (Wanted::default(), Peers::default());
        let c1 = b.follow([th(1)], &[n("a")], 0, 100).unwrap();
        a.announced(&n("b"), &announce(&c1, 0), 1);
        let _lost = b.follow([th(2)], &[n("a")], 0, 100).unwrap();
        let c3 = b.follow([th(3)], &[n("a")], 0, 100).unwrap();
        a.announced(&n("b"), &announce(&c3, 0), 1);
        assert!(a.wants(&n("b"), &[th(9)], 0), "unknown now: everything");
        let (epoch, all) = b.whole();
        let all = all.unwrap();
        let whole = Announce {
            stream: 7,
            epoch,
            full: true,
            all: false,
            add: all,
            remove: vec![],
            heard_stream: 1,
            heard: 0,
        };
        a.announced(&n("b"), &whole, 1);
        assert!(a.wants(&n("b"), &[th(2)], 0));
        assert!(!a.wants(&n("b"), &[th(9)], 0));
        // A restarted b (another stream) starts afresh: its first change
        // applies to nothing followed...
        let mut restarted = whole.clone();
        restarted.stream = 8;
        restarted.full = false;
        restarted.epoch = 1;
        restarted.add = vec![th(5)];
        a.announced(&n("b"), &restarted, 1);
        assert!(a.wants(&n("b"), &[th(5)], 0));
        assert!(!a.wants(&n("b"), &[th(2)], 0));
        // ...and if its first changes were lost, it is unknown.
        restarted.stream = 9;
        restarted.epoch = 3;
        a.announced(&n("b"), &restarted, 1);
        assert!(a.wants(&n("b"), &[th(9)], 0));
    }

    #[test]
    fn a_node_following_too_much_is_sent_everything() {
        let (mut b, mut a) = (Wanted::default(), Peers::default());
        let c = b.follow([th(1)], &[n("a")], 0, 100).unwrap();
        a.announced(&n("b"), &announce(&c, 0), 1);
        assert!(!a.wants(&n("b"), &[th(7)], 3));
        b.follow((0..=MAX_ANNOUNCED as i64).map(th), &[n("a")], 0, 100);
        assert!(b.too_many());
        let (epoch, listed) = b.whole();
        assert_eq!(listed, None);
        let all = Announce {
            stream: 7,
            epoch,
            full: true,
            all: true,
            add: vec![],
            remove: vec![],
            heard_stream: 1,
            heard: 3,
        };
        let seen = a.announced(&n("b"), &all, 1);
        assert_eq!(seen.missed, vec![th(7)], "the skip may concern it");
        assert!(a.wants(&n("b"), &[th(123_456_789)], 3));
    }

    #[test]
    fn topics_linger_then_withdraw_and_unanswered_ones_resync() {
        let mut b = Wanted::default();
        b.follow([th(1)], &[n("a"), n("c")], 0, 100).unwrap();
        assert_eq!(b.complete_since(th(1)), None, "answers awaited");
        b.seen(
            &n("a"),
            &Seen {
                epoch: 1,
                missed: vec![],
            },
            110,
        );
        assert_eq!(b.complete_since(th(1)), None, "c has not answered");
        // c never answers: after ANSWER_TICKS its clients resync.
        let (change, resync) = b.tick(ANSWER_TICKS, &[n("a"), n("c")], 130);
        assert_eq!((change, resync), (None, vec![th(1)]));
        assert_eq!(b.complete_since(th(1)), Some(130));
        // A node that left the view is not waited for.
        b.follow([th(2)], &[n("a"), n("c")], 6, 140).unwrap();
        b.seen(
            &n("a"),
            &Seen {
                epoch: 2,
                missed: vec![],
            },
            150,
        );
        assert_eq!(b.tick(7, &[n("a")], 160), (None, vec![]));
        assert_eq!(b.complete_since(th(2)), Some(160));
        // The last client leaves; back before LINGER, nothing changes.
        b.unfollowed(th(1), 8);
        assert_eq!(b.follow([th(1)], &[n("a")], 9, 170), None);
        b.unfollowed(th(1), 9);
        assert_eq!(b.tick(9 + LINGER - 1, &[n("a")], 180).0, None);
        let (change, _) = b.tick(9 + LINGER, &[n("a")], 180);
        assert_eq!(
            change,
            Some(Change {
                epoch: 3,
                add: vec![],
                remove: vec![th(1)]
            })
        );
        assert_eq!(b.complete_since(th(1)), None);
    }
}
