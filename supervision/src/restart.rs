//! Restart policy: whether a crashed entity may be started again, and when.
//!
//! An entity that panics is restarted with its state reloaded from the store
//! (the store is the truth; an actor's memory is a cache). A bug that panics
//! on every start must not spin: the policy allows `max_restarts` within
//! `window_ms`, spacing restarts by an exponential backoff, and after that
//! refuses until the window has passed. The caller passes the clock in, so
//! the rule is tested without time passing.

/// The verdict for one crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start it again once `delay_ms` has passed.
    Restart { delay_ms: u64 },
    /// Too many crashes in the window: leave it stopped until `until_ms`.
    GiveUp { until_ms: u64 },
}

/// A restart budget for one entity.
#[derive(Clone, Debug)]
pub struct RestartPolicy {
    /// Restarts allowed within `window_ms`.
    pub max_restarts: usize,
    pub window_ms: u64,
    /// First backoff; doubles with each crash still inside the window.
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Times of recent crashes, oldest first, pruned to the window.
    crashes: Vec<u64>,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy::new(5, 10_000, 0, 1_000)
    }
}

impl RestartPolicy {
    pub fn new(max_restarts: usize, window_ms: u64, base_delay_ms: u64, max_delay_ms: u64) -> Self {
        RestartPolicy {
            max_restarts,
            window_ms,
            base_delay_ms,
            max_delay_ms,
            crashes: Vec::new(),
        }
    }

    /// Records a crash at `now_ms` and decides what to do.
    pub fn on_crash(&mut self, now_ms: u64) -> RestartDecision {
        let window = self.window_ms;
        self.crashes.retain(|&t| now_ms.saturating_sub(t) < window);
        self.crashes.push(now_ms);
        let n = self.crashes.len();
        if n > self.max_restarts {
            let oldest = self.crashes[0];
            return RestartDecision::GiveUp {
                until_ms: oldest + window,
            };
        }
        // The first crash in a window restarts at once (the common case is a
        // one-off bad message); repeated crashes back off.
        let delay = if n <= 1 {
            0
        } else {
            self.base_delay_ms
                .saturating_mul(1 << (n - 1).min(20))
                .min(self.max_delay_ms)
        };
        RestartDecision::Restart { delay_ms: delay }
    }

    /// Crashes counted in the current window.
    pub fn recent_crashes(&self) -> usize {
        self.crashes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_crash_restarts_at_once_then_backs_off() {
        let mut p = RestartPolicy::new(3, 1_000, 10, 1_000);
        assert_eq!(p.on_crash(0), RestartDecision::Restart { delay_ms: 0 });
        assert_eq!(p.on_crash(1), RestartDecision::Restart { delay_ms: 20 });
        assert_eq!(p.on_crash(2), RestartDecision::Restart { delay_ms: 40 });
        assert_eq!(p.on_crash(3), RestartDecision::GiveUp { until_ms: 1_000 });
    }

    #[test]
    fn the_window_forgets_old_crashes() {
        let mut p = RestartPolicy::new(2, 1_000, 10, 1_000);
        p.on_crash(0);
        p.on_crash(10);
        assert_eq!(p.on_crash(2_000), RestartDecision::Restart { delay_ms: 0 });
        assert_eq!(p.recent_crashes(), 1);
    }

    #[test]
    fn backoff_is_capped() {
        let mut p = RestartPolicy::new(100, 1_000_000, 100, 500);
        let mut last = RestartDecision::Restart { delay_ms: 0 };
        for t in 0..10 {
            last = p.on_crash(t);
        }
        assert_eq!(last, RestartDecision::Restart { delay_ms: 500 });
    }
}
