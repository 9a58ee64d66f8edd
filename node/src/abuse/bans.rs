//! The ban list a node checks every post against, in memory.
//!
//! Loaded from the store at start and rebuilt from it whenever a mod bans
//! or unbans, so the posting path never queries the database for bans. In
//! a cluster the node where a ban was made tells every other web node at
//! once ([`BanMsg::Changed`] over the transport), and each reloads
//! ([`super::Abuse::reload_bans`]); a periodic reload is the safety net for
//! a message lost with a dropped session.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use wani_supervision::transport::Remote;

use wani_store::{Ban, BoardId};

use super::addr::Cidr;

/// What nodes tell each other about bans.
#[derive(Serialize, Deserialize)]
pub enum BanMsg {
    /// Bans were made or lifted: read the list again.
    Changed,
}

impl Remote for BanMsg {
    const KIND: &'static str = "bans";
}

/// Active bans with their parsed ranges.
#[derive(Debug, Default)]
pub struct BanList {
    bans: Vec<(Cidr, Ban)>,
}

impl BanList {
    /// The list from stored bans; a stored range that no longer parses is
    /// skipped with a warning rather than blocking everyone or no one.
    pub fn new(bans: Vec<Ban>) -> BanList {
        let bans = bans
            .into_iter()
            .filter_map(|b| match Cidr::parse(&b.cidr) {
                Ok(c) => Some((c, b)),
                Err(e) => {
                    tracing::warn!(ban = b.id, error = %e, "ignoring a ban with a bad range");
                    None
                }
            })
            .collect();
        BanList { bans }
    }

    /// The ban that stops `ip` from posting on `board` at `now`, if any:
    /// a global ban or one of that board, not expired.
    pub fn find(&self, ip: IpAddr, board: BoardId, now: i64) -> Option<&Ban> {
        self.bans
            .iter()
            .filter(|(c, b)| {
                c.contains(ip)
                    && b.board.is_none_or(|x| x == board)
                    && b.expires.is_none_or(|e| e > now)
            })
            .map(|(_, b)| b)
            // A permanent ban says more than a temporary one.
            .max_by_key(|b| b.expires.unwrap_or(i64::MAX))
    }

    /// Every ban held, newest first.
    pub fn all(&self) -> impl Iterator<Item = &Ban> {
        self.bans.iter().map(|(_, b)| b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(id: i64, cidr: &str, board: Option<i64>, expires: Option<i64>) -> Ban {
        Ban {
            id,
            cidr: cidr.into(),
            board: board.map(BoardId),
            reason: format!("reason {id}"),
            created: 0,
            expires,
            slip: None,
            post: None,
        }
    }

    #[test]
    fn bans_match_range_board_and_time() {
        let list = BanList::new(vec![
            ban(1, "203.0.113.0/24", None, Some(1_000)),
            ban(2, "2001:db8::/64", Some(2), None),
            ban(3, "not a range", None, None),
        ]);
        let v4: IpAddr = "203.0.113.77".parse().unwrap();
        assert_eq!(list.find(v4, BoardId(9), 999).map(|b| b.id), Some(1));
        assert!(list.find(v4, BoardId(9), 1_000).is_none(), "expired");
        let v6: IpAddr = "2001:db8::abcd".parse().unwrap();
        assert_eq!(list.find(v6, BoardId(2), 5).map(|b| b.id), Some(2));
        assert!(list.find(v6, BoardId(3), 5).is_none(), "other board");
        assert!(list
            .find("198.51.100.1".parse().unwrap(), BoardId(2), 5)
            .is_none());
        assert_eq!(list.all().count(), 2, "the bad range is skipped");
    }

    #[test]
    fn the_longest_ban_is_shown() {
        let list = BanList::new(vec![
            ban(1, "10.0.0.1", None, Some(50)),
            ban(2, "10.0.0.0/8", None, None),
        ]);
        assert_eq!(
            list.find("10.0.0.1".parse().unwrap(), BoardId(1), 0)
                .map(|b| b.id),
            Some(2)
        );
    }
}
