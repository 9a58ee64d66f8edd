//! What a crash of a supervised child does: a pure rule, tested without
//! tokio.
//!
//! [`Policy::Restart`]: start it again (its state reloaded from the store,
//! or rebuilt), at once the first time and with a growing backoff after
//! (up to a second); more crashes than the node's [`Budget`] allows within
//! its window is a crash loop, which escalates to the node: it goes
//! unready, says why, and tries the child again once the window has
//! passed. [`Policy::Escalate`] escalates on the first crash: for a child
//! the node cannot serve without.

use crate::restart::{RestartDecision, RestartPolicy};

/// What a crash of a child does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Restart it; a crash loop escalates.
    #[default]
    Restart,
    /// The node goes unready at once; the child is tried again after the
    /// budget's window.
    Escalate,
}

impl Policy {
    /// The policy's name for the status page.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Restart => "restart",
            Policy::Escalate => "escalate",
        }
    }
}

/// How many crashes a child may have within a window before it is a
/// crash loop; the same for every child of a node (`[supervision]` in the
/// configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    pub max_restarts: usize,
    pub window_ms: u64,
}

impl Default for Budget {
    /// Five crashes in ten seconds: a one-off bad message restarts
    /// silently, a child that panics on every start is noticed in seconds.
    fn default() -> Self {
        Budget {
            max_restarts: 5,
            window_ms: 10_000,
        }
    }
}

/// What to do after one crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after `delay_ms`.
    Restart { delay_ms: u64 },
    /// The node is unready for `reason`; try the child again in `retry_in_ms`.
    Escalate { reason: String, retry_in_ms: u64 },
}

/// One child's crash history.
#[derive(Debug, Default)]
pub struct Restart {
    budget: Option<RestartPolicy>,
}

impl Restart {
    /// Records a crash at `now_ms` under `policy` and `budget`, and decides.
    pub fn on_crash(&mut self, policy: Policy, budget: Budget, now_ms: u64) -> Decision {
        match policy {
            Policy::Escalate => Decision::Escalate {
                reason: "it crashed, and the node cannot serve without it".into(),
                retry_in_ms: budget.window_ms,
            },
            Policy::Restart => {
                let history = self.budget.get_or_insert_with(|| {
                    RestartPolicy::new(budget.max_restarts, budget.window_ms, 50, 1_000)
                });
                match history.on_crash(now_ms) {
                    RestartDecision::Restart { delay_ms } => Decision::Restart { delay_ms },
                    RestartDecision::GiveUp { until_ms } => Decision::Escalate {
                        reason: format!(
                            "it crashed {} times within {} s",
                            history.recent_crashes(),
                            budget.window_ms.div_ceil(1000)
                        ),
                        retry_in_ms: until_ms.saturating_sub(now_ms).max(1),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_back_off_then_a_crash_loop_escalates() {
        let b = Budget {
            max_restarts: 3,
            window_ms: 10_000,
        };
        let p = Policy::Restart;
        let mut r = Restart::default();
        assert_eq!(r.on_crash(p, b, 0), Decision::Restart { delay_ms: 0 });
        assert_eq!(r.on_crash(p, b, 100), Decision::Restart { delay_ms: 100 });
        assert_eq!(r.on_crash(p, b, 200), Decision::Restart { delay_ms: 200 });
        let Decision::Escalate {
            reason,
            retry_in_ms,
        } = r.on_crash(p, b, 300)
        else {
            panic!("a fourth crash in the window is a loop");
        };
        assert_eq!(reason, "it crashed 4 times within 10 s");
        assert_eq!(retry_in_ms, 9_700, "tried again when the window has passed");
        // Long after, a crash is a one-off again.
        assert_eq!(r.on_crash(p, b, 60_000), Decision::Restart { delay_ms: 0 });
    }

    #[test]
    fn escalate_means_at_once() {
        let b = Budget {
            max_restarts: 5,
            window_ms: 5_000,
        };
        let mut r = Restart::default();
        assert!(matches!(
            r.on_crash(Policy::Escalate, b, 0),
            Decision::Escalate {
                retry_in_ms: 5_000,
                ..
            }
        ));
    }
}
