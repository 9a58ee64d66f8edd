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

/// Whether `password` matches an argon2 hash (false for a malformed hash).
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
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
    let ok = verify_password(password, hash).await && slip.is_some();
    state.abuse.login_outcome(name, ip, ok, now_ms());
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
