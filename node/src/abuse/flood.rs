//! Flood control: how soon one client may post again, and how soon the
//! same text may be posted again by anyone.
//!
//! A plain struct driven by the caller's clock (`now` in milliseconds), so
//! the rules are tested without waiting. Clients are counted by
//! [`super::addr::client_key`] (per address, per /64 for IPv6). Memory is
//! bounded by [`FloodControl::forget_before`], which drops entries older
//! than the longest interval.
//!
//! Per node: in a cluster a client spread over several nodes gets each
//! node's allowance (the cluster issue moves this to a shared counter).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// What kind of post is being made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostKind {
    Thread,
    Reply,
}

/// The intervals that apply to one post, in seconds (0 turns a rule off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Intervals {
    /// Between two posts (threads or replies) of one client.
    pub post_secs: i64,
    /// Between two new threads of one client.
    pub thread_secs: i64,
    /// Between two posts of the same text, from anyone.
    pub same_content_secs: i64,
}

/// When each client last posted, and when each text was last posted.
#[derive(Debug, Default)]
pub struct FloodControl {
    last_post: HashMap<String, i64>,
    last_thread: HashMap<String, i64>,
    last_content: HashMap<u64, i64>,
}

fn content_hash(body: &str) -> u64 {
    let mut h = DefaultHasher::new();
    // Case and spacing changes should not get around the rule.
    body.split_whitespace()
        .map(str::to_lowercase)
        .for_each(|w| w.hash(&mut h));
    h.finish()
}

/// Seconds left until `last + interval`, rounded up; `None` if passed.
fn wait(last: Option<&i64>, interval_secs: i64, now: i64) -> Option<u64> {
    let last = *last?;
    let until = last.saturating_add(interval_secs.saturating_mul(1000));
    (interval_secs > 0 && now < until).then(|| ((until - now + 999) / 1000) as u64)
}

impl FloodControl {
    /// Checks a post and, if it may go through, records it. `Err` holds the
    /// seconds to wait (for `Retry-After`) and what the wait is for.
    /// Empty bodies (an image-only reply) are not compared by content.
    pub fn check(
        &mut self,
        client: &str,
        kind: PostKind,
        body: &str,
        limits: Intervals,
        now: i64,
    ) -> Result<(), (u64, &'static str)> {
        if let Some(w) = wait(self.last_post.get(client), limits.post_secs, now) {
            return Err((w, "you are posting too fast"));
        }
        if kind == PostKind::Thread {
            if let Some(w) = wait(self.last_thread.get(client), limits.thread_secs, now) {
                return Err((w, "you are creating threads too fast"));
            }
        }
        let content = (!body.trim().is_empty()).then(|| content_hash(body));
        if let Some(c) = content {
            if let Some(w) = wait(self.last_content.get(&c), limits.same_content_secs, now) {
                return Err((w, "this text was posted moments ago"));
            }
        }
        self.last_post.insert(client.to_string(), now);
        if kind == PostKind::Thread {
            self.last_thread.insert(client.to_string(), now);
        }
        if let Some(c) = content {
            self.last_content.insert(c, now);
        }
        Ok(())
    }

    /// Forgets entries older than `cutoff`, so memory stays bounded.
    pub fn forget_before(&mut self, cutoff: i64) {
        self.last_post.retain(|_, t| *t >= cutoff);
        self.last_thread.retain(|_, t| *t >= cutoff);
        self.last_content.retain(|_, t| *t >= cutoff);
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.last_post.len() + self.last_thread.len() + self.last_content.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Intervals = Intervals {
        post_secs: 10,
        thread_secs: 60,
        same_content_secs: 30,
    };

    #[test]
    fn one_client_waits_between_posts() {
        let mut f = FloodControl::default();
        assert!(f.check("a", PostKind::Reply, "one", L, 0).is_ok());
        let (w, why) = f.check("a", PostKind::Reply, "two", L, 4_000).unwrap_err();
        assert_eq!(w, 6);
        assert!(why.contains("too fast"));
        assert!(
            f.check("b", PostKind::Reply, "three", L, 4_000).is_ok(),
            "others may post"
        );
        assert!(
            f.check("a", PostKind::Reply, "two", L, 10_000).is_ok(),
            "recovers"
        );
    }

    #[test]
    fn threads_have_their_own_interval() {
        let mut f = FloodControl::default();
        assert!(f.check("a", PostKind::Thread, "op", L, 0).is_ok());
        assert!(f.check("a", PostKind::Reply, "r", L, 11_000).is_ok());
        let (w, _) = f
            .check("a", PostKind::Thread, "op2", L, 22_000)
            .unwrap_err();
        assert_eq!(w, 38);
        assert!(f.check("a", PostKind::Thread, "op2", L, 60_000).is_ok());
    }

    #[test]
    fn the_same_text_from_anyone_waits() {
        let mut f = FloodControl::default();
        assert!(f.check("a", PostKind::Reply, "Buy  NOW", L, 0).is_ok());
        let (w, why) = f
            .check("b", PostKind::Reply, "buy now", L, 1_000)
            .unwrap_err();
        assert_eq!(w, 29);
        assert!(why.contains("text"));
        assert!(
            f.check("b", PostKind::Reply, "", L, 1_000).is_ok(),
            "image-only posts"
        );
        assert!(f.check("c", PostKind::Reply, "buy now", L, 30_000).is_ok());
    }

    #[test]
    fn zero_turns_a_rule_off_and_old_entries_are_forgotten() {
        let off = Intervals {
            post_secs: 0,
            thread_secs: 0,
            same_content_secs: 0,
        };
        let mut f = FloodControl::default();
        for _ in 0..3 {
            assert!(f.check("a", PostKind::Thread, "same", off, 5).is_ok());
        }
        f.forget_before(6);
        assert!(f.is_empty());
    }
}
