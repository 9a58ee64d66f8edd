//! The built-in captcha and the optional proof of work: issuing, checking,
//! and the short pass a solver earns.
//!
//! - [`token`]: stateless, authenticated captcha ids and challenges (the
//!   answer travels encrypted inside the id), so nothing pending can be
//!   flushed by someone else's volume and any node can check any id;
//! - [`draw`]: the picture (stroke-drawn, rotated, overlapping glyphs in
//!   varied inks under clutter and a random warp);
//! - [`Captchas`]: the pure bookkeeping, time injected as `now` in ms:
//!   the ids already spent (single use, kept until they expire), how many
//!   captchas each address may fetch (a token bucket: past it, 429 with
//!   Retry-After), and passes.
//!
//! A pass: whoever solves a captcha may make [`Limits::pass_posts`] more
//! posts on the same board from the same address (per /64 in IPv6) within
//! the cooldown, without another. It used to be every post on every board
//! for ten minutes, so one solved captcha bought a script ten minutes of
//! free posting; now one solve is worth a handful of posts on one board.
//!
//! Per node: the spent set, the buckets and the passes live in this node's
//! memory. An id spent here could be spent once more on another node of a
//! cluster, so in the worst case a solved captcha is worth one post per
//! node; flood control is per node too.
//!
//! Not a defence against a determined, trained OCR; it makes a generic
//! script fail, and the proof of work prices volume where it is turned on.

pub mod draw;
pub mod token;

use std::collections::HashMap;

use rand::{Rng, SeedableRng};

use token::Keys;

pub use draw::draw;

/// Characters a code is made of: nothing that reads as another when
/// rotated or sheared (no 0/O/D-with-Q, 1/I/L, 2/Z, 5/S, 6/G/9, 8/B, U/V).
pub const ALPHABET: &[u8] = b"ACDEFHJKMNPRTWXY3479";
/// Characters per code.
pub const CODE_LEN: usize = 6;
/// The most leading zero bits a board may ask for (about 4·10⁹ hashes).
pub const MAX_POW_BITS: u8 = 32;

/// Why an answer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptchaError {
    /// No captcha id or no answer was sent.
    Missing,
    /// Never issued here, or already used once.
    Unknown,
    Expired,
    Wrong,
    /// The board asks for a proof of work and none came with the post.
    WorkMissing,
    /// The challenge was not issued here, was for another board or a lower
    /// cost, or the nonce does not do the work.
    WorkInvalid,
    /// The challenge expired or was already used.
    WorkSpent,
}

impl CaptchaError {
    /// What to tell the user.
    pub fn message(self) -> &'static str {
        match self {
            CaptchaError::Missing => "this board asks for a captcha: type the code from the image",
            CaptchaError::Unknown => {
                "this captcha was already used or never existed: load a new one and try again"
            }
            CaptchaError::Expired => "this captcha has expired: load a new one and try again",
            CaptchaError::Wrong => "the captcha answer is wrong: load a new one and try again",
            CaptchaError::WorkMissing => {
                "this board asks your browser for a proof of work: allow JavaScript on this site, \
                 or fetch /captcha/pow?board=NAME and send pow_challenge and pow_nonce"
            }
            CaptchaError::WorkInvalid => {
                "the proof of work is not valid for this board: fetch a new challenge and try again"
            }
            CaptchaError::WorkSpent => {
                "the proof of work was already used or has expired: fetch a new challenge and try again"
            }
        }
    }
}

/// The settings of [`Captchas`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long an id or challenge may be answered.
    pub ttl_ms: i64,
    /// How long a pass lasts (0: no passes).
    pub cooldown_ms: i64,
    /// Posts a pass allows after the one that solved the captcha.
    pub pass_posts: u32,
    /// Captchas one address may fetch at once, then `per_minute`.
    pub burst: u32,
    pub per_minute: u32,
}

/// One address's token bucket: `tokens` as of `at` (ms).
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: i64,
}

/// Spent ids, buckets and passes; see the module doc.
#[derive(Debug)]
pub struct Captchas {
    keys: Keys,
    limits: Limits,
    /// Tags of spent ids and challenges, with their expiry: past it the id
    /// is refused as expired anyway, so the entry can go. Its size is bounded
    /// by what was issued within one ttl, which the buckets bound per address.
    spent: HashMap<[u8; 16], i64>,
    buckets: HashMap<String, Bucket>,
    /// (address key, board) → (until, posts left).
    passes: HashMap<(String, i64), (i64, u32)>,
    /// When `sweep` last ran.
    swept: i64,
}

impl Captchas {
    /// The bookkeeping of a site whose secret is `secret`.
    pub fn new(secret: &[u8], limits: Limits) -> Captchas {
        Captchas {
            keys: Keys::derive(secret),
            limits,
            spent: HashMap::new(),
            buckets: HashMap::new(),
            passes: HashMap::new(),
            swept: 0,
        }
    }

    /// Takes one captcha from `client`'s bucket; `Err(seconds)` to wait
    /// when it is empty.
    pub fn charge(&mut self, client: &str, now: i64) -> Result<(), u64> {
        self.sweep(now);
        let (burst, rate) = (
            self.limits.burst.max(1) as f64,
            self.limits.per_minute as f64 / 60_000.0,
        );
        let b = self.buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + (now - b.at).max(0) as f64 * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        if rate <= 0.0 {
            return Err(self.limits.ttl_ms.max(1000) as u64 / 1000);
        }
        Err((((1.0 - b.tokens) / rate) / 1000.0).ceil().max(1.0) as u64)
    }

    /// Issues a captcha: its id (which carries the sealed answer) and code.
    pub fn issue(&self, now: i64) -> (String, String) {
        let mut rng = rand::rng();
        let code: String = (0..CODE_LEN)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        let id = token::seal_picture(&self.keys, now + self.limits.ttl_ms, rng.random(), &code);
        (id, code)
    }

    /// The code of a captcha that may still be answered (to draw it).
    pub fn code(&self, id: &str, now: i64) -> Option<String> {
        let p = token::open_picture(&self.keys, id)?;
        (p.expires_ms > now && !self.spent.contains_key(&p.tag)).then_some(p.code)
    }

    /// The generator the picture of captcha `id` is drawn from
    /// ([`draw::draw_with`]): the same picture every time it is asked for.
    pub fn picture_rng(&self, id: &str) -> rand::rngs::StdRng {
        rand::rngs::StdRng::from_seed(self.keys.drawing_seed(id))
    }

    /// Checks an answer. The id is spent whatever the outcome, so an answer
    /// cannot be guessed twice. On success `client` gets a pass on `board`.
    pub fn solve(
        &mut self,
        id: &str,
        answer: &str,
        client: &str,
        board: i64,
        now: i64,
    ) -> Result<(), CaptchaError> {
        if id.is_empty() || answer.trim().is_empty() {
            return Err(CaptchaError::Missing);
        }
        let p = token::open_picture(&self.keys, id).ok_or(CaptchaError::Unknown)?;
        if p.expires_ms <= now {
            return Err(CaptchaError::Expired);
        }
        if self.spent.insert(p.tag, p.expires_ms).is_some() {
            return Err(CaptchaError::Unknown);
        }
        let answer: String = answer
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        if answer != p.code {
            return Err(CaptchaError::Wrong);
        }
        if self.limits.cooldown_ms > 0 && self.limits.pass_posts > 0 {
            self.passes.insert(
                (client.to_string(), board),
                (now + self.limits.cooldown_ms, self.limits.pass_posts),
            );
        }
        Ok(())
    }

    /// Uses one post of `client`'s pass on `board`, if it has one left.
    pub fn use_pass(&mut self, client: &str, board: i64, now: i64) -> bool {
        let key = (client.to_string(), board);
        let Some((until, left)) = self.passes.get_mut(&key) else {
            return false;
        };
        if *until <= now || *left == 0 {
            self.passes.remove(&key);
            return false;
        }
        *left -= 1;
        true
    }

    /// A proof-of-work challenge of `bits` for `board`.
    pub fn challenge(&self, board: &str, bits: u8, now: i64) -> String {
        token::seal_challenge(
            &self.keys,
            now + self.limits.ttl_ms,
            rand::rng().random(),
            bits,
            board,
        )
    }

    /// Checks a proof of work for a post on `board`, which asks for
    /// `bits`; the challenge is spent if it is valid.
    pub fn check_work(
        &mut self,
        challenge: &str,
        nonce: &str,
        board: &str,
        bits: u8,
        now: i64,
    ) -> Result<(), CaptchaError> {
        if challenge.is_empty() || nonce.is_empty() {
            return Err(CaptchaError::WorkMissing);
        }
        let c = token::open_challenge(&self.keys, challenge).ok_or(CaptchaError::WorkInvalid)?;
        if c.board != token::board_key(board) || c.bits < bits || nonce.len() > 32 {
            return Err(CaptchaError::WorkInvalid);
        }
        if c.expires_ms <= now || self.spent.contains_key(&c.tag) {
            return Err(CaptchaError::WorkSpent);
        }
        if token::work_bits(challenge, nonce) < u32::from(c.bits) {
            return Err(CaptchaError::WorkInvalid);
        }
        self.spent.insert(c.tag, c.expires_ms);
        Ok(())
    }

    /// Drops spent ids that have expired, full buckets and ended passes;
    /// at most once a second, so the cost is spread over calls.
    pub fn sweep(&mut self, now: i64) {
        if now - self.swept < 1000 {
            return;
        }
        self.swept = now;
        self.spent.retain(|_, exp| *exp > now);
        let (burst, rate) = (
            self.limits.burst.max(1) as f64,
            self.limits.per_minute as f64 / 60_000.0,
        );
        // A bucket that has refilled says nothing a fresh one would not.
        self.buckets
            .retain(|_, b| b.tokens + (now - b.at).max(0) as f64 * rate < burst);
        self.passes
            .retain(|_, (until, left)| *until > now && *left > 0);
    }

    /// Spent ids remembered now (for tests and metrics).
    pub fn spent_len(&self) -> usize {
        self.spent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            ttl_ms: 600_000,
            cooldown_ms: 60_000,
            pass_posts: 2,
            burst: 3,
            per_minute: 6,
        }
    }

    #[test]
    fn an_answer_counts_once_and_earns_a_bounded_pass_on_one_board() {
        let mut c = Captchas::new(b"secret", limits());
        let (id, code) = c.issue(0);
        assert_eq!(code.len(), CODE_LEN);
        assert_eq!(c.code(&id, 1), Some(code.clone()));
        assert!(!c.use_pass("c", 1, 1));
        assert_eq!(c.solve(&id, &code.to_lowercase(), "c", 1, 1), Ok(()));
        assert_eq!(
            c.solve(&id, &code, "c", 1, 2),
            Err(CaptchaError::Unknown),
            "reused"
        );
        assert_eq!(c.code(&id, 2), None, "a spent id is not drawn again");
        assert!(!c.use_pass("c", 2, 3), "another board");
        assert!(!c.use_pass("other", 1, 3), "another address");
        assert!(c.use_pass("c", 1, 3));
        assert!(c.use_pass("c", 1, 4));
        assert!(!c.use_pass("c", 1, 5), "two posts, then a captcha again");
        let (id, code) = c.issue(10);
        c.solve(&id, &code, "c", 1, 10).unwrap();
        assert!(!c.use_pass("c", 1, 60_010), "the pass ended");
    }

    #[test]
    fn wrong_expired_forged_and_missing_answers() {
        let mut c = Captchas::new(
            b"secret",
            Limits {
                ttl_ms: 1_000,
                ..limits()
            },
        );
        let (id, code) = c.issue(0);
        assert_eq!(c.solve(&id, "nope", "c", 1, 1), Err(CaptchaError::Wrong));
        assert_eq!(
            c.solve(&id, &code, "c", 1, 1),
            Err(CaptchaError::Unknown),
            "one guess"
        );
        let (id, code) = c.issue(0);
        assert_eq!(c.code(&id, 1_000), None);
        assert_eq!(
            c.solve(&id, &code, "c", 1, 1_000),
            Err(CaptchaError::Expired)
        );
        assert_eq!(c.solve("", "x", "c", 1, 0), Err(CaptchaError::Missing));
        assert_eq!(c.solve("x", " ", "c", 1, 0), Err(CaptchaError::Missing));
        let other = Captchas::new(b"another site", limits());
        let (id, code) = other.issue(0);
        assert_eq!(
            c.solve(&id, &code, "c", 1, 1),
            Err(CaptchaError::Unknown),
            "not ours"
        );
    }

    #[test]
    fn spent_ids_are_forgotten_only_after_they_expire() {
        let mut c = Captchas::new(
            b"s",
            Limits {
                ttl_ms: 10_000,
                ..limits()
            },
        );
        let (id, code) = c.issue(0);
        c.solve(&id, &code, "c", 1, 1).unwrap();
        c.sweep(9_999);
        assert_eq!(c.spent_len(), 1);
        assert_eq!(
            c.solve(&id, &code, "c", 1, 9_999),
            Err(CaptchaError::Unknown)
        );
        c.sweep(20_000);
        assert_eq!(c.spent_len(), 0);
        assert_eq!(
            c.solve(&id, &code, "c", 1, 20_000),
            Err(CaptchaError::Expired)
        );
    }

    #[test]
    fn each_address_fetches_a_burst_then_a_steady_rate() {
        let mut c = Captchas::new(b"s", limits());
        for _ in 0..3 {
            c.charge("a", 0).unwrap();
        }
        assert_eq!(c.charge("a", 0), Err(10), "6 a minute: one every 10 s");
        c.charge("b", 0)
            .expect("another address has its own bucket");
        assert_eq!(c.charge("a", 5_000), Err(5));
        c.charge("a", 10_000).unwrap();
        assert!(c.charge("a", 10_001).is_err());
    }

    #[test]
    fn work_is_checked_bound_to_board_and_cost_and_spent_once() {
        let mut c = Captchas::new(b"s", limits());
        let ch = c.challenge("b", 8, 0);
        let nonce = (0u64..)
            .map(|n| n.to_string())
            .find(|n| token::work_bits(&ch, n) >= 8)
            .unwrap();
        let bad = (0u64..)
            .map(|n| n.to_string())
            .find(|n| token::work_bits(&ch, n) < 8)
            .unwrap();
        assert_eq!(
            c.check_work("", "", "b", 8, 1),
            Err(CaptchaError::WorkMissing)
        );
        assert_eq!(
            c.check_work(&ch, &bad, "b", 8, 1),
            Err(CaptchaError::WorkInvalid)
        );
        assert_eq!(
            c.check_work(&ch, &nonce, "g", 8, 1),
            Err(CaptchaError::WorkInvalid),
            "board"
        );
        assert_eq!(
            c.check_work(&ch, &nonce, "b", 9, 1),
            Err(CaptchaError::WorkInvalid),
            "cost"
        );
        assert_eq!(
            c.check_work(&ch, &nonce, "b", 8, 600_000),
            Err(CaptchaError::WorkSpent)
        );
        assert_eq!(c.check_work(&ch, &nonce, "b", 8, 1), Ok(()));
        assert_eq!(
            c.check_work(&ch, &nonce, "b", 8, 2),
            Err(CaptchaError::WorkSpent)
        );
    }

    #[test]
    fn the_picture_is_a_png_the_same_for_one_id() {
        let c = Captchas::new(b"s", limits());
        let (id, code) = c.issue(0);
        let png = draw::draw_with(&code, &mut c.picture_rng(&id));
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (draw::WIDTH, draw::HEIGHT));
        let again = draw::draw_with(&code, &mut c.picture_rng(&id));
        assert_eq!(png, again, "fetched again, drawn the same");
        assert!(
            ALPHABET.iter().all(|b| draw::strokes(*b).is_some()),
            "every glyph drawn"
        );
    }
}
