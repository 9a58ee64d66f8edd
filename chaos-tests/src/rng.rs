//! A small seeded generator (SplitMix64): the same seed gives the same
//! choices on every machine and every version of every dependency, which a
//! replayable scenario needs and a general-purpose RNG crate does not promise.

/// SplitMix64.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let a: Vec<usize> = {
            let mut r = super::Rng::new(42);
            (0..8).map(|_| r.below(3)).collect()
        };
        let mut r = super::Rng::new(42);
        let b: Vec<usize> = (0..8).map(|_| r.below(3)).collect();
        assert_eq!(a, b);
        assert!(a.iter().any(|x| *x != a[0]), "not constant");
    }
}
