//! Anti-abuse: the rules (pure, tested without tokio) and the node's live
//! state built from them.
//!
//! - [`addr`]: address ranges, the client behind trusted proxies, per-/64 keys;
//! - [`bans`]: the in-memory ban list the posting path checks (no query);
//! - [`flood`]: minimum intervals per client and for repeated text;
//! - [`limits`]: reports and registrations per address, password guessing;
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
pub mod limits;
pub mod roles;
pub mod tripcode;

use std::net::IpAddr;
use std::sync::{Mutex, RwLock};

use wani_store::{Ban, BoardId, Store, StoreError};

use addr::Cidr;
use bans::BanList;
use captcha::{CaptchaError, Captchas};
use flood::{Admission, FloodControl, Intervals, PostKind};
use limits::{Backoff, Window};

/// One node's anti-abuse state.
pub struct Abuse {
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Seconds before the same text may be posted again (0: off).
    pub same_content_secs: i64,
    bans: RwLock<BanList>,
    flood: Mutex<FloodControl>,
    captchas: Mutex<Captchas>,
    reports: Mutex<Window>,
    registrations: Mutex<Window>,
    /// Wrong passwords per account name and per address.
    logins: Mutex<(Backoff, Backoff)>,
}

/// Which of the limits of [`Abuse::limit`].
#[derive(Clone, Copy, Debug)]
pub enum Limited {
    Report,
    Registration,
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
            reports: Mutex::new(Window::new(0, HOUR_MS)),
            registrations: Mutex::new(Window::new(0, HOUR_MS)),
            logins: Mutex::new((Backoff::new(u32::MAX, 0), Backoff::new(u32::MAX, 0))),
        })
    }

    /// The per-address and per-account limits of the config.
    pub fn with_limits(mut self, c: &crate::config::AbuseConfig) -> Abuse {
        self.reports = Mutex::new(Window::new(c.reports_per_hour, HOUR_MS));
        self.registrations = Mutex::new(Window::new(c.registrations_per_hour, HOUR_MS));
        let cap = c.login_backoff_max_secs.saturating_mul(1000);
        self.logins = Mutex::new((
            Backoff::new(c.login_free_failures, cap),
            Backoff::new(c.login_free_failures, cap),
        ));
        self
    }

    /// Counts one report or registration of `ip`; `Err` holds the seconds
    /// until it may make another.
    pub fn limit(&self, what: Limited, ip: &str, now: i64) -> Result<(), u64> {
        let window = match what {
            Limited::Report => &self.reports,
            Limited::Registration => &self.registrations,
        };
        lock(window).hit(&addr::client_key(ip), now)
    }

    /// Whether a login for account `name` from `ip` may be tried now;
    /// `Err` holds the seconds to wait.
    pub fn login_allowed(&self, name: &str, ip: &str, now: i64) -> Result<(), u64> {
        let l = lock(&self.logins);
        let a = l.0.check(&account_key(name), now);
        let b = l.1.check(&addr::client_key(ip), now);
        match (a, b) {
            (Err(x), Err(y)) => Err(x.max(y)),
            (Err(x), _) | (_, Err(x)) => Err(x),
            _ => Ok(()),
        }
    }

    /// Records the outcome of a login attempt. A success forgets the
    /// account's failures, not the address's: owning one account must not
    /// reset the guessing of others.
    pub fn login_outcome(&self, name: &str, ip: &str, ok: bool, now: i64) {
        let mut l = lock(&self.logins);
        if ok {
            l.0.succeeded(&account_key(name));
        } else {
            l.0.failed(&account_key(name), now);
            l.1.failed(&addr::client_key(ip), now);
        }
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

    /// Flood control for one post carrying idempotency `key`;
    /// `Err((seconds, why))` when too soon.
    pub fn flood_check(
        &self,
        ip: &str,
        kind: PostKind,
        body: &str,
        key: &str,
        limits: Intervals,
        now: i64,
    ) -> Result<Admission, (u64, &'static str)> {
        let mut f = self.flood.lock().unwrap_or_else(|e| e.into_inner());
        // Entries older than a day can no longer refuse anything.
        if f.len() > 100_000 {
            f.forget_before(now - 86_400_000);
        }
        f.check(&addr::client_key(ip), kind, body, key, limits, now)
    }

    /// Gives back what a post that was then not stored recorded.
    pub fn flood_release(&self, admission: Option<Admission>) {
        if let Some(a) = admission {
            self.flood
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .release(a);
        }
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

const HOUR_MS: i64 = 3_600_000;

/// Account names are compared as the store compares them at login.
fn account_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A poisoned lock still holds usable counters: a panic elsewhere must not
/// switch a limit off.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
