//! Live messages between nodes: numbered per receiver, so a lost one is
//! noticed.
//!
//! The owner of an entity sends each committed write once to every other
//! node with the `live` role. ractor_cluster drops a session's messages in
//! flight when the session breaks, so a receiver could miss one silently
//! and its subscribers would never learn of that post. So each sender
//! numbers its messages per receiver ([`Outbox`]), and says every second
//! how many it sent; a receiver ([`Inbox`]) that finds a number missing,
//! or a sender that restarted (a new `stream`), knows it missed something.
//! What was missed is unknown, so its subscribers are told to resync.
//!
//! Numbers go to every peer with the role this node has ever known, down
//! ones too: a peer may only be cut off for a while, and must find what it
//! missed counted when it is back. Pure state, tested without tokio.

use std::collections::HashMap;
use wani_supervision::NodeName;

/// The sending side: a number per receiver.
#[derive(Debug)]
pub struct Outbox {
    /// Names this sender's life: a receiver seeing another stream from the
    /// same node knows the node restarted, and what it had in flight is lost.
    pub stream: u64,
    sent: HashMap<NodeName, u64>,
}

impl Outbox {
    pub fn new(stream: u64) -> Outbox {
        Outbox {
            stream,
            sent: HashMap::new(),
        }
    }

    /// Numbers one message for each of `peers` (with an event, the next
    /// number; without, the count so far, for the periodic sync), and for
    /// every peer seen before that is not among them now. An event goes
    /// only to the peers `wants` takes (given each one's count so far);
    /// the others are not counted it, so they expect no such message.
    pub fn number(
        &mut self,
        peers: impl IntoIterator<Item = NodeName>,
        event: bool,
        mut wants: impl FnMut(&NodeName, u64) -> bool,
    ) -> Vec<(NodeName, u64)> {
        for p in peers {
            self.sent.entry(p).or_insert(0);
        }
        self.sent
            .iter_mut()
            .filter_map(|(node, seq)| {
                if event {
                    if !wants(node, *seq) {
                        return None;
                    }
                    *seq += 1;
                }
                Some((node.clone(), *seq))
            })
            .collect()
    }
}

/// The receiving side: the last number seen from each sender.
#[derive(Debug, Default)]
pub struct Inbox {
    seen: HashMap<String, (u64, u64)>,
}

impl Inbox {
    /// The stream last heard from `from`, and the last number in it.
    pub fn heard(&self, from: &str) -> Option<(u64, u64)> {
        self.seen.get(from).copied()
    }

    /// Takes a message numbered `seq` in `stream` from `from` (`event`:
    /// it carries a write; else it is a sync of the count). True when one
    /// went missing since the last, or `from` restarted.
    pub fn gap(&mut self, from: &str, stream: u64, seq: u64, event: bool) -> bool {
        let last = self.seen.insert(from.to_string(), (stream, seq));
        match last {
            // First contact: this node's clients came after whatever was before.
            None => false,
            Some((s, _)) if s != stream => true,
            Some((_, last)) if event => seq != last + 1,
            Some((_, last)) => seq > last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_live_message_is_a_gap() {
        let mut seen = Inbox::default();
        // First contact, whatever its number: nothing to compare with.
        assert!(!seen.gap("a", 7, 5, true));
        assert!(!seen.gap("a", 7, 6, true));
        // The sender says it sent 6: all there.
        assert!(!seen.gap("a", 7, 6, false));
        // 7 never arrived.
        assert!(seen.gap("a", 7, 8, true));
        assert!(!seen.gap("a", 7, 9, true));
        // The last one (10) was lost: the sync says so.
        assert!(seen.gap("a", 7, 10, false));
        assert!(!seen.gap("a", 7, 10, false));
        // Another node counts on its own.
        assert!(!seen.gap("b", 3, 1, true));
        // The sender restarted: what it had in flight may be lost.
        assert!(seen.gap("a", 8, 1, true));
    }

    #[test]
    fn peers_once_known_keep_being_counted() {
        let n = |s: &str| NodeName(s.to_string());
        let mut out = Outbox::new(1);
        let mut got = out.number([n("b"), n("c")], true, |_, _| true);
        got.sort();
        assert_eq!(got, vec![(n("b"), 1), (n("c"), 1)]);
        // c is out of the view now (down, or forgotten by a rejoin): its
        // count still grows, so it sees the gap when it is back.
        let mut got = out.number([n("b")], true, |_, _| true);
        got.sort();
        assert_eq!(got, vec![(n("b"), 2), (n("c"), 2)]);
        let mut sync = out.number([n("b")], false, |_, _| true);
        sync.sort();
        assert_eq!(sync, vec![(n("b"), 2), (n("c"), 2)]);
        // An event c does not want is neither sent nor counted to it.
        let got = out.number([n("b")], true, |node, _| *node == n("b"));
        assert_eq!(got, vec![(n("b"), 3)]);
        let mut sync = out.number([n("b")], false, |_, _| true);
        sync.sort();
        assert_eq!(sync, vec![(n("b"), 3), (n("c"), 2)]);
    }
}
