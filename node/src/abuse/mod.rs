//! Anti-abuse: the rules (pure, tested without tokio) and the node's live
//! state built from them.
//!
//! - [`addr`]: address ranges, the client behind trusted proxies, per-/64 keys;
//! - [`bans`]: the in-memory ban list the posting path checks (no query);
//! - [`flood`]: minimum intervals per client and for repeated text;
//! - [`captcha`]: the built-in captcha, its bookkeeping and its picture;
//! - [`roles`]: who may moderate what, and post badges;
//! - [`tripcode`]: `name#secret` → `name !hash`.
//!
//! [`Abuse`] holds one node's state of these behind locks held for
//! microseconds (never across an await). Everything here is per node; the
//! seams for the cluster are named in each module.

pub mod addr;
pub mod bans;
pub mod captcha;
pub mod flood;
pub mod roles;
pub mod tripcode;

use std::net::IpAddr;
use std::sync::{Mutex, RwLock};

use wani_store::{Ban, BoardId, Store, StoreError};

use addr::Cidr;
use bans::BanList;
use captcha::{CaptchaError, Captchas};
use flood::{FloodControl, Intervals, PostKind};

/// One node's anti-abuse state.
pub struct Abuse {
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Seconds before the same text may be posted again (0: off).
    pub same_content_secs: i64,
    bans: RwLock<BanList>,
    flood: Mutex<FloodControl>,
    captchas: Mutex<Captchas>,
}

impl Abuse {
    /// The state for a node: `trusted` proxies (already validated by the
    /// config), the captcha's limits and the site secret its ids are sealed
    /// with (the same on every node), and the bans active now.
    pub fn new(
        trusted: &[String],
        same_content_secs: i64,
        captcha: captcha::Limits,
        site_secret: &[u8],
        bans: Vec<Ban>,
    ) -> Result<Abuse, String> {
        let trusted_proxies = trusted
            .iter()
            .map(|t| Cidr::parse(t))
            .collect::<Result<_, _>>()?;
        Ok(Abuse {
            trusted_proxies,
            same_content_secs,
            bans: RwLock::new(BanList::new(bans)),
            flood: Mutex::new(FloodControl::default()),
            captchas: Mutex::new(Captchas::new(site_secret, captcha)),
        })
    }

    /// Rebuilds the ban list from the store: after a ban or unban here, and
    /// every second on a clustered node, so other nodes' bans apply too.
    pub async fn reload_bans(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let list = BanList::new(store.active_bans(now).await?);
        if let Ok(mut b) = self.bans.write() {
            *b = list;
        }
        Ok(())
    }

    /// The ban stopping `ip` from posting on `board`, if any. No query.
    pub fn ban_for(&self, ip: &str, board: BoardId, now: i64) -> Option<Ban> {
        let ip: IpAddr = ip.parse().ok()?;
        self.bans.read().ok()?.find(ip, board, now).cloned()
    }

    /// Every active ban, newest first.
    pub fn bans(&self) -> Vec<Ban> {
        self.bans
            .read()
            .map(|b| b.all().cloned().collect())
            .unwrap_or_default()
    }

    /// Flood control for one post; `Err((seconds, why))` when too soon.
    pub fn flood_check(
        &self,
        ip: &str,
        kind: PostKind,
        body: &str,
        limits: Intervals,
        now: i64,
    ) -> Result<(), (u64, &'static str)> {
        let Ok(mut f) = self.flood.lock() else {
            return Ok(());
        };
        // Entries older than a day can no longer refuse anything.
        if f.len() > 100_000 {
            f.forget_before(now - 86_400_000);
        }
        f.check(&addr::client_key(ip), kind, body, limits, now)
    }

    /// Takes one captcha from `ip`'s allowance; `Err(seconds)` to wait.
    pub fn charge_captcha(&self, ip: &str, now: i64) -> Result<(), u64> {
        let Ok(mut c) = self.captchas.lock() else {
            return Err(1);
        };
        c.charge(&addr::client_key(ip), now)
    }

    /// Issues a captcha; answers its id and code.
    pub fn new_captcha(&self, now: i64) -> Option<(String, String)> {
        Some(self.captchas.lock().ok()?.issue(now))
    }

    /// The code of a captcha that may still be answered, to draw it.
    pub fn captcha_code(&self, id: &str, now: i64) -> Option<String> {
        self.captchas.lock().ok()?.code(id, now)
    }

    /// The picture of captcha `id` (drawn outside the lock).
    pub fn captcha_picture(&self, id: &str, code: &str) -> Option<Vec<u8>> {
        let c = self.captchas.lock().ok()?;
        let seeded = c.picture_rng(id);
        drop(c);
        let mut rng = seeded;
        Some(captcha::draw::draw_with(code, &mut rng))
    }

    /// Passes when `ip` has a pass on `board` left or `answer` solves
    /// captcha `id`.
    pub fn check_captcha(
        &self,
        ip: &str,
        board: i64,
        id: &str,
        answer: &str,
        now: i64,
    ) -> Result<(), CaptchaError> {
        let client = addr::client_key(ip);
        let Ok(mut c) = self.captchas.lock() else {
            return Err(CaptchaError::Unknown);
        };
        if c.use_pass(&client, board, now) {
            return Ok(());
        }
        c.solve(id, answer, &client, board, now)
    }

    /// A proof-of-work challenge of `bits` for `board`.
    pub fn pow_challenge(&self, board: &str, bits: u8, now: i64) -> Option<String> {
        Some(self.captchas.lock().ok()?.challenge(board, bits, now))
    }

    /// Checks (and spends) a proof of work for a post on `board`.
    pub fn check_pow(
        &self,
        challenge: &str,
        nonce: &str,
        board: &str,
        bits: u8,
        now: i64,
    ) -> Result<(), CaptchaError> {
        let Ok(mut c) = self.captchas.lock() else {
            return Err(CaptchaError::WorkInvalid);
        };
        c.check_work(challenge, nonce, board, bits, now)
    }
}
