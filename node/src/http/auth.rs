//! Who is asking, beyond their address: slips (accounts), sessions, and
//! HTTP Basic auth on the JSON API.
//!
//! - Passwords are hashed with argon2id (default parameters, random salt);
//!   hashing runs on the blocking pool, it takes tens of milliseconds.
//! - A session is a random 256-bit token in the `wani_session` cookie
//!   (`HttpOnly; SameSite=Lax; Path=/`, `Secure` when `site.secure_cookies`).
//!   The store keeps only its SHA-256, so a database dump opens no session.
//!   Logging in always creates a new token and deletes the one presented
//!   (no session fixation).
//! - Each session has its own CSRF token (random, stored with it) that
//!   every form rendered for that session carries; see `csrf`.
//! - The API takes `Authorization: Basic` with a slip's name and password,
//!   as Maniwani does; a wrong one is 401 `{"error": "Authentication failed"}`.
//!
//! Not here: what a role may do (`abuse::roles`).

use super::ApiError;
use crate::state::AppState;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use base64::Engine;
use sha2::{Digest, Sha256};
use wani_store::{Session, Slip};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "wani_session";
/// Shortest password accepted at registration.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Hashes a password with argon2id.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(ApiError::internal)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Whether `password` matches a stored hash: argon2 (wani's own), or one of
/// Werkzeug's that a slip imported from Maniwani still has (see
/// [`verify_werkzeug`]). False for a malformed hash.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        if !hash.starts_with('$') {
            return verify_werkzeug(&password, &hash);
        }
        PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Whether a hash is one wani makes today; any other is replaced at the
/// next successful login.
pub fn is_current_hash(hash: &str) -> bool {
    hash.starts_with("$argon2id$")
}

/// Most PBKDF2 rounds an imported hash may ask for: Werkzeug's defaults
/// went from 50,000 to 600,000; a hash asking far more would make one
/// login a denial of service.
const MAX_PBKDF2_ROUNDS: u32 = 2_000_000;

/// Checks `password` against a Werkzeug hash as `generate_password_hash`
/// writes it (Maniwani's slips): `pbkdf2:<sha256|sha512>[:rounds]$salt$hex`,
/// or the older salted HMAC `<sha256|sha512>$salt$hex`. The comparison
/// takes the same time wherever the digests differ.
pub fn verify_werkzeug(password: &str, hash: &str) -> bool {
    use hmac::{Hmac, Mac};
    use sha2::{Sha256, Sha512};
    let mut parts = hash.splitn(3, '$');
    let (Some(method), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(expected) = hex::decode(expected) else {
        return false;
    };
    let (pw, salt) = (password.as_bytes(), salt.as_bytes());
    let got = if let Some(args) = method.strip_prefix("pbkdf2:") {
        let mut a = args.split(':');
        let digest = a.next().unwrap_or_default();
        // Werkzeug 0.x–2.x wrote the rounds; 150,000 was its default when
        // a hash named none.
        let rounds = match a.next().map(str::parse::<u32>) {
            None => 150_000,
            Some(Ok(n)) if (1..=MAX_PBKDF2_ROUNDS).contains(&n) => n,
            Some(_) => return false,
        };
        // Werkzeug derives one digest's length; a shorter stored value is
        // a damaged hash, not a shorter key to check.
        type Derive =
            fn(&[u8], &[u8], u32, &mut [u8]) -> Result<(), pbkdf2::hmac::digest::InvalidLength>;
        let (len, derive): (usize, Derive) = match digest {
            "sha256" => (32, pbkdf2::pbkdf2::<Hmac<Sha256>>),
            "sha512" => (64, pbkdf2::pbkdf2::<Hmac<Sha512>>),
            _ => return false,
        };
        let mut out = vec![0u8; len];
        if derive(pw, salt, rounds, &mut out).is_err() {
            return false;
        }
        out
    } else {
        fn mac<M: Mac + hmac::digest::KeyInit>(salt: &[u8], pw: &[u8]) -> Vec<u8> {
            let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(salt) else {
                return Vec::new();
            };
            m.update(pw);
            m.finalize().into_bytes().to_vec()
        }
        match method {
            "sha256" => mac::<Hmac<Sha256>>(salt, pw),
            "sha512" => mac::<Hmac<Sha512>>(salt, pw),
            _ => return false,
        }
    };
    got.len() == expected.len()
        && got
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A fresh random token (64 hex characters).
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// What the store keeps of a session token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, and Secure when asked.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("wani_invalid=; Path=/; Max-Age=0"))
}

/// Milliseconds since the Unix epoch (the clock of sessions, bans, captchas).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The logged-in session of the request, if any. One store read when the
/// cookie is present; none otherwise.
pub struct Viewer(pub Option<Session>);

impl Viewer {
    /// The viewer's slip.
    pub fn slip(&self) -> Option<&Slip> {
        self.0.as_ref().map(|s| &s.slip)
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(Viewer(None));
        };
        let session = state
            .store
            .session(&token_hash(token), now_ms())
            .await
            .map_err(|e| ApiError::from(e).html())?;
        Ok(Viewer(session))
    }
}

/// A logged-in moderator (admin, mod or volunteer of some board); anyone
/// else is refused with 403 before the handler runs.
pub struct Staff(pub Session);

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Viewer::from_request_parts(parts, state).await?.0 {
            Some(s) if crate::abuse::roles::is_staff(&s.slip) => Ok(Staff(s)),
            Some(_) => Err(ApiError::forbidden("this page is for moderators only").html()),
            None => Err(ApiError::forbidden(
                "this page is for moderators only: log in with your slip at /slip",
            )
            .html()),
        }
    }
}

/// The 401 Maniwani's API answers for missing or wrong credentials.
pub fn auth_failed() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "Authentication failed")
}

/// The slip named by `Authorization: Basic`, if the header is present.
/// A present but wrong header is an error (401), not anonymity; guessing
/// is throttled like the login form ([`check_password`]).
pub async fn basic_auth(
    state: &AppState,
    headers: &HeaderMap,
    ip: &str,
) -> Result<Option<Slip>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let (name, password) = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(n, p)| (n.to_string(), p.to_string()))
        })
        .ok_or_else(auth_failed)?;
    match check_password(state, &name, password, ip).await? {
        Some(slip) => Ok(Some(slip)),
        None => Err(auth_failed()),
    }
}

/// Checks a name and password the way every login does (the form and
/// Basic auth): refused with 429 and `Retry-After` while the account or the
/// address is backing off after wrong passwords, and as slow for a name
/// that does not exist as for a wrong password (a hash is verified either
/// way), so timing does not tell which names exist. `None`: wrong.
pub async fn check_password(
    state: &AppState,
    name: &str,
    password: String,
    ip: &str,
) -> Result<Option<Slip>, ApiError> {
    state
        .abuse
        .login_allowed(name, ip, now_ms())
        .map_err(|secs| {
            ApiError::too_many(
                secs,
                format!("too many wrong passwords: wait {secs} seconds and try again"),
            )
        })?;
    let (slip, hash) = match state.store.slip_by_name(name.trim()).await? {
        Some((slip, hash)) => (Some(slip), hash),
        None => (None, stand_in_hash().await?),
    };
    let current = is_current_hash(&hash);
    let ok = verify_password(password.clone(), hash).await && slip.is_some();
    state.abuse.login_outcome(name, ip, ok, now_ms());
    if let (true, false, Some(s)) = (ok, current, &slip) {
        // An imported hash (Werkzeug's PBKDF2) is replaced by argon2 now
        // that the password is known; a failure leaves the old one working.
        match hash_password(password).await {
            Ok(h) => {
                if let Err(e) = state.store.set_pass_hash(s.id, &h).await {
                    tracing::warn!(slip = %s.name, error = %e, "could not re-hash an imported password");
                }
            }
            Err(e) => {
                tracing::warn!(slip = %s.name, error = %e.message, "could not re-hash an imported password")
            }
        }
    }
    Ok(slip.filter(|_| ok))
}

/// The hash an unknown name's password is verified against: made once per
/// process from a random password, with the same parameters as real ones.
async fn stand_in_hash() -> Result<String, ApiError> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_try_init(|| hash_password(new_token()))
        .await
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let h = hash_password("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse".into(), h.clone()).await);
        assert!(!verify_password("wrong horse".into(), h).await);
        assert!(!verify_password("x".into(), "not a hash".into()).await);
    }

    #[tokio::test]
    async fn werkzeug_hashes_from_maniwani_are_accepted_then_replaced() {
        // Made with Python's hashlib/hmac, and the last with Werkzeug 2.2's
        // generate_password_hash (pbkdf2:sha256, 260,000 rounds).
        let hashes = [
            "pbkdf2:sha256:1000$NaCl$cba50afb9ece1b6c899d921b4b7139139f7d2258b02086c1764c441575c66253",
            "pbkdf2:sha512:2000$pepper$a6ddb3d9655447304929575c7f69089897cccf0293af7099d47f8bf3df1508c860615df7c11a1085255d90913cc5bd372c0dbbe2f3352b8115a2bfec1b2e1e67",
            "sha256$salty$babeb4108e2877babcfce0408bfd9c6f7e22be04f6e9024cd1f248cef08e2d83",
            "pbkdf2:sha256:260000$J1BBukdeNMGRyqOE$aa804b70191f747f64b53c87363f8160cc56475b684642fb5df85e65f0315642",
        ];
        for h in hashes {
            assert!(
                verify_password("correct horse".into(), h.into()).await,
                "{h}"
            );
            assert!(
                !verify_password("correct horsf".into(), h.into()).await,
                "{h}"
            );
            assert!(!is_current_hash(h));
        }
        // Tampered, truncated, absurd or unknown: refused, never a panic.
        for bad in [
            "pbkdf2:sha256:1000$NaCl$cba50afb9ece1b6c899d921b4b7139139f7d2258b02086c1764c441575c66254",
            "pbkdf2:sha256:1000$NaCl$cba5",
            "pbkdf2:sha256:999999999$NaCl$cba50afb",
            "pbkdf2:md5:1000$NaCl$cba50afb",
            "plain$$correct horse",
            "pbkdf2:sha256:1000$NaCl$zz",
            "",
        ] {
            assert!(!verify_password("correct horse".into(), bad.into()).await, "{bad}");
        }
        assert!(is_current_hash(&hash_password("x".into()).await.unwrap()));
    }

    #[test]
    fn tokens_cookies_and_hashes() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
        assert_ne!(token_hash(&t), t);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=x; wani_session=abc"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "nope"), None);
        let c = set_cookie(SESSION_COOKIE, "v", 60, true);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        assert!(c.contains("Path=/"));
        assert!(!set_cookie("a", "b", 1, false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
