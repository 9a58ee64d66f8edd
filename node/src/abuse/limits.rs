//! Limits on what a script would repeat: how many reports and registrations
//! one address makes in a window, and how fast passwords may be guessed.
//!
//! Plain structs driven by the caller's clock (milliseconds), tested without
//! waiting. Memory is bounded: entries whose window has passed are dropped
//! when the map grows, and past [`MAX_KEYS`] a new key is refused rather than
//! evicting a live one (a flood of addresses cannot free an account it is
//! guessing). Per node, like flood control.

use std::collections::{HashMap, VecDeque};

/// Most keys one limiter tracks.
pub const MAX_KEYS: usize = 200_000;

/// At most `max` events per key within `window_ms`.
#[derive(Debug)]
pub struct Window {
    max: usize,
    window_ms: i64,
    hits: HashMap<String, VecDeque<i64>>,
}

impl Window {
    pub fn new(max: usize, window_ms: i64) -> Window {
        Window {
            max,
            window_ms,
            hits: HashMap::new(),
        }
    }

    /// Counts one event of `key`, or answers the seconds until it may
    /// happen again. `max == 0` turns the limit off.
    pub fn hit(&mut self, key: &str, now: i64) -> Result<(), u64> {
        if self.max == 0 {
            return Ok(());
        }
        let cutoff = now - self.window_ms;
        if self.hits.len() >= MAX_KEYS && !self.hits.contains_key(key) {
            self.hits
                .retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
            if self.hits.len() >= MAX_KEYS {
                return Err(secs_until(now + self.window_ms, now));
            }
        }
        let q = self.hits.entry(key.to_string()).or_default();
        while q.front().is_some_and(|t| *t <= cutoff) {
            q.pop_front();
        }
        if q.len() >= self.max {
            let oldest = *q.front().expect("max > 0");
            return Err(secs_until(oldest + self.window_ms, now));
        }
        q.push_back(now);
        Ok(())
    }
}

fn secs_until(at: i64, now: i64) -> u64 {
    ((at - now).max(1) as u64).div_ceil(1000)
}

/// Failures of one account or address, and until when it must wait.
#[derive(Clone, Copy, Debug, Default)]
struct Failures {
    count: u32,
    last: i64,
    until: i64,
}

/// Password guessing: after `free` failures, each further failure doubles
/// the wait before the next attempt (1 s, 2 s, 4 s, …) up to `cap_ms`.
/// Failures are forgotten an hour after the last one.
#[derive(Debug)]
pub struct Backoff {
    free: u32,
    cap_ms: i64,
    keys: HashMap<String, Failures>,
}

const FORGET_MS: i64 = 3_600_000;

impl Backoff {
    pub fn new(free: u32, cap_ms: i64) -> Backoff {
        Backoff {
            free,
            cap_ms,
            keys: HashMap::new(),
        }
    }

    /// Whether `key` may try now; `Err` holds the seconds to wait.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        match self.keys.get(key) {
            Some(f) if f.until > now => Err(secs_until(f.until, now)),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt of `key`.
    pub fn failed(&mut self, key: &str, now: i64) {
        if self.keys.len() >= MAX_KEYS && !self.keys.contains_key(key) {
            self.keys
                .retain(|_, f| f.until > now || now - f.last < FORGET_MS);
            if self.keys.len() >= MAX_KEYS {
                return;
            }
        }
        let f = self.keys.entry(key.to_string()).or_default();
        if now - f.last >= FORGET_MS {
            *f = Failures::default();
        }
        f.count += 1;
        f.last = now;
        if f.count > self.free {
            let doublings = (f.count - self.free - 1).min(30);
            let wait = 1000i64.saturating_mul(1 << doublings).min(self.cap_ms);
            f.until = now + wait;
        }
    }

    /// Forgets `key`'s failures (a successful login of that account).
    pub fn succeeded(&mut self, key: &str) {
        self.keys.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_counts_per_key_and_slides() {
        let mut w = Window::new(3, 60_000);
        for t in 0..3 {
            assert!(w.hit("a", t * 1000).is_ok());
        }
        assert_eq!(w.hit("a", 10_000), Err(50));
        assert!(w.hit("b", 10_000).is_ok(), "another address");
        assert!(w.hit("a", 60_001).is_ok(), "the first hit left the window");
        assert!(Window::new(0, 1).hit("a", 0).is_ok(), "0 turns it off");
    }

    #[test]
    fn failures_back_off_doubling_to_the_cap_and_a_success_forgets() {
        let mut b = Backoff::new(3, 8_000);
        for t in 0..3 {
            assert!(b.check("u", t).is_ok());
            b.failed("u", t);
        }
        assert!(b.check("u", 3).is_ok(), "three free failures");
        b.failed("u", 10);
        assert_eq!(b.check("u", 10), Err(1));
        b.failed("u", 1_010);
        assert_eq!(b.check("u", 1_010), Err(2));
        b.failed("u", 3_010);
        b.failed("u", 7_010);
        assert_eq!(b.check("u", 7_010), Err(8), "capped");
        b.failed("u", 15_010);
        assert_eq!(b.check("u", 15_010), Err(8));
        b.succeeded("u");
        assert!(b.check("u", 15_011).is_ok());
        // An hour without failures starts over.
        let mut b = Backoff::new(1, 60_000);
        b.failed("v", 0);
        b.failed("v", 1);
        assert!(b.check("v", 2).is_err());
        b.failed("v", FORGET_MS + 10);
        assert!(b.check("v", FORGET_MS + 11).is_ok());
    }
}
