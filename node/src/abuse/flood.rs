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

use unicode_normalization::UnicodeNormalization;

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

/// When something was last posted, and under which idempotency key: a
/// retry of that very post (same key) is never refused by its own mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    at: i64,
    key: u64,
}

/// When each client last posted, and when each text was last posted.
#[derive(Debug, Default)]
pub struct FloodControl {
    last_post: HashMap<String, Mark>,
    last_thread: HashMap<String, Mark>,
    last_content: HashMap<u64, Mark>,
}

/// What [`FloodControl::check`] recorded for one post, so that a post which
/// was then not stored can give its marks back ([`FloodControl::release`]):
/// a refused or failed post never counts towards the limits.
#[derive(Debug)]
#[must_use = "release the admission if the post is not stored"]
pub struct Admission {
    client: String,
    content: Option<u64>,
    mark: Mark,
    /// The marks this post replaced: (post, thread, content); `None` inside
    /// means there was none. Empty for a retry, which records nothing.
    replaced: Option<[Option<Mark>; 3]>,
    thread: bool,
}

/// The text as the repeated-text rule compares it: compatibility forms
/// folded (NFKC: full-width letters, ligatures), case folded, and every
/// character that is not a letter or a digit dropped, spaces included, so a
/// trailing dot, a zero-width space, punctuation or spaces between the
/// letters do not make a new text. A text of nothing but such characters is
/// compared as it was typed (trimmed), so "!!!" still repeats.
pub fn normalised(body: &str) -> String {
    let folded: String = body
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect();
    if folded.is_empty() {
        body.trim().to_string()
    } else {
        folded
    }
}

fn hash_of(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Seconds left until `last + interval`, rounded up; `None` if passed, or
/// if the mark was made by this same post (`key`).
fn wait(last: Option<&Mark>, interval_secs: i64, now: i64, key: u64) -> Option<u64> {
    let last = *last?;
    if last.key == key {
        return None;
    }
    let until = last.at.saturating_add(interval_secs.saturating_mul(1000));
    (interval_secs > 0 && now < until).then(|| ((until - now + 999) / 1000) as u64)
}

impl FloodControl {
    /// Checks a post and, if it may go through, records it. `key` is the
    /// post's idempotency key (scoped to its sender): a retry of a post
    /// already admitted passes and records nothing. `Err` holds the seconds
    /// to wait (for `Retry-After`) and what the wait is for. Empty bodies
    /// (an image-only reply) are not compared by content.
    pub fn check(
        &mut self,
        client: &str,
        kind: PostKind,
        body: &str,
        key: &str,
        limits: Intervals,
        now: i64,
    ) -> Result<Admission, (u64, &'static str)> {
        let key = hash_of(key);
        let content = (!body.trim().is_empty()).then(|| hash_of(&normalised(body)));
        let retry = self.last_post.get(client).is_some_and(|m| m.key == key);
        if let Some(w) = wait(self.last_post.get(client), limits.post_secs, now, key) {
            return Err((w, "you are posting too fast"));
        }
        if kind == PostKind::Thread {
            if let Some(w) = wait(self.last_thread.get(client), limits.thread_secs, now, key) {
                return Err((w, "you are creating threads too fast"));
            }
        }
        if let Some(c) = content {
            if let Some(w) = wait(
                self.last_content.get(&c),
                limits.same_content_secs,
                now,
                key,
            ) {
                return Err((w, "this text was posted moments ago"));
            }
        }
        let mark = Mark { at: now, key };
        let mut admission = Admission {
            client: client.to_string(),
            content,
            mark,
            replaced: None,
            thread: kind == PostKind::Thread,
        };
        if retry {
            return Ok(admission);
        }
        let post = self.last_post.insert(client.to_string(), mark);
        let thread = if admission.thread {
            self.last_thread.insert(client.to_string(), mark)
        } else {
            None
        };
        let text = content.and_then(|c| self.last_content.insert(c, mark));
        admission.replaced = Some([post, thread, text]);
        Ok(admission)
    }

    /// Gives back the marks of a post that was not stored (refused by its
    /// entity, or failed), unless a later post has replaced them since.
    pub fn release(&mut self, admission: Admission) {
        let Some([post, thread, text]) = admission.replaced else {
            return;
        };
        fn restore<K: Hash + Eq>(map: &mut HashMap<K, Mark>, k: K, mine: Mark, old: Option<Mark>) {
            if map.get(&k) == Some(&mine) {
                match old {
                    Some(m) => map.insert(k, m),
                    None => map.remove(&k),
                };
            }
        }
        let mine = admission.mark;
        restore(&mut self.last_post, admission.client.clone(), mine, post);
        if admission.thread {
            restore(&mut self.last_thread, admission.client, mine, thread);
        }
        if let Some(c) = admission.content {
            restore(&mut self.last_content, c, mine, text);
        }
    }

    /// Forgets entries older than `cutoff`, so memory stays bounded.
    pub fn forget_before(&mut self, cutoff: i64) {
        self.last_post.retain(|_, m| m.at >= cutoff);
        self.last_thread.retain(|_, m| m.at >= cutoff);
        self.last_content.retain(|_, m| m.at >= cutoff);
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
        assert!(f.check("a", PostKind::Reply, "one", "k1", L, 0).is_ok());
        let (w, why) = f
            .check("a", PostKind::Reply, "two", "k2", L, 4_000)
            .unwrap_err();
        assert_eq!(w, 6);
        assert!(why.contains("too fast"));
        assert!(
            f.check("b", PostKind::Reply, "three", "k3", L, 4_000)
                .is_ok(),
            "others may post"
        );
        assert!(
            f.check("a", PostKind::Reply, "two", "k2", L, 10_000)
                .is_ok(),
            "recovers"
        );
    }

    #[test]
    fn threads_have_their_own_interval() {
        let mut f = FloodControl::default();
        assert!(f.check("a", PostKind::Thread, "op", "k1", L, 0).is_ok());
        assert!(f.check("a", PostKind::Reply, "r", "k2", L, 11_000).is_ok());
        let (w, _) = f
            .check("a", PostKind::Thread, "op2", "k3", L, 22_000)
            .unwrap_err();
        assert_eq!(w, 38);
        assert!(f
            .check("a", PostKind::Thread, "op2", "k3", L, 60_000)
            .is_ok());
    }

    #[test]
    fn the_same_text_from_anyone_waits() {
        let mut f = FloodControl::default();
        assert!(f
            .check("a", PostKind::Reply, "Buy  NOW", "k1", L, 0)
            .is_ok());
        let (w, why) = f
            .check("b", PostKind::Reply, "buy now", "k2", L, 1_000)
            .unwrap_err();
        assert_eq!(w, 29);
        assert!(why.contains("text"));
        assert!(
            f.check("b", PostKind::Reply, "", "k3", L, 1_000).is_ok(),
            "image-only posts"
        );
        assert!(f
            .check("c", PostKind::Reply, "buy now", "k4", L, 30_000)
            .is_ok());
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
            assert!(f.check("a", PostKind::Thread, "same", "k", off, 5).is_ok());
        }
        f.forget_before(6);
        assert!(f.is_empty());
    }
    #[test]
    fn dots_zero_width_spaces_and_full_width_letters_make_no_new_text() {
        let mut f = FloodControl::default();
        assert!(f
            .check("a", PostKind::Reply, "buy cheap pills", "k1", L, 0)
            .is_ok());
        for (i, variant) in [
            "buy cheap pills.",
            "buy cheap pills\u{200B}",
            "b.u.y cheap pills!!!",
            "ＢＵＹ cheap\u{00A0}pills",
            "buy\u{2060} cheap \u{FEFF}pills ...",
        ]
        .iter()
        .enumerate()
        {
            let client = format!("c{i}");
            let (_, why) = f
                .check(
                    &client,
                    PostKind::Reply,
                    variant,
                    &format!("v{i}"),
                    L,
                    1_000,
                )
                .expect_err(variant);
            assert!(why.contains("text"), "{variant:?}: {why}");
        }
        assert!(f
            .check("z", PostKind::Reply, "buy cheap pill", "k9", L, 1_000)
            .is_ok());
        assert_eq!(normalised("!!!"), "!!!", "punctuation alone still compares");
    }

    #[test]
    fn a_retry_with_the_same_key_passes_and_a_refused_post_gives_its_marks_back() {
        let mut f = FloodControl::default();
        let first = f.check("a", PostKind::Reply, "hello", "k1", L, 0).unwrap();
        drop(first);
        let retry = f.check("a", PostKind::Reply, "hello", "k1", L, 500);
        assert!(retry.is_ok(), "the same post again is not flooding");
        let (_, why) = f
            .check("a", PostKind::Reply, "other", "k2", L, 600)
            .unwrap_err();
        assert!(why.contains("too fast"));

        let mut f = FloodControl::default();
        let refused = f.check("a", PostKind::Thread, "spam", "k1", L, 0).unwrap();
        f.release(refused);
        assert!(f.is_empty(), "nothing of a refused post is left");
        assert!(f.check("a", PostKind::Thread, "spam", "k2", L, 100).is_ok());

        // A release never undoes a later post's marks.
        let mut f = FloodControl::default();
        let one = f.check("a", PostKind::Reply, "x", "k1", L, 0).unwrap();
        let two = f.check("b", PostKind::Reply, "y", "k2", L, 10).unwrap();
        f.release(one);
        drop(two);
        assert!(f.check("b", PostKind::Reply, "z", "k3", L, 20).is_err());
        assert!(f.check("c", PostKind::Reply, "y", "k4", L, 20).is_err());
    }
}
