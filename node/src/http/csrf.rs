//! Cross-site request forgery: no other site can make a browser change
//! anything here on its user's behalf.
//!
//! Two layers, because thread and catalog pages (which hold the posting
//! forms) are rendered once and shared by every viewer, so they cannot
//! carry a per-viewer token:
//!
//! 1. [`guard`], on every request that is not GET/HEAD/OPTIONS: a request
//!    whose `Origin` (or, without one, `Referer`) names another site than
//!    the `Host` it was sent to is refused with 403. Browsers send `Origin`
//!    on every cross-site POST, so a forged form post always carries the
//!    foreign origin. A request with neither header is not from a browser
//!    page (a script, curl) and cannot carry a victim's cookies
//!    cross-site, so it is let through: the anonymous posting forms and the
//!    API keep working for scripts. `SameSite=Lax` on the session cookie
//!    is the backstop: a cross-site POST does not even carry the session.
//! 2. [`check_token`], in every handler acting for a logged-in slip (mod
//!    actions, logout, board admin): the form must carry the session's own
//!    CSRF token. Those pages are rendered per request, never cached, so
//!    the token is put in the form itself and works without JavaScript.
//!
//! Not handled: the JSON API's Basic auth needs no token (a browser never
//! attaches Basic credentials to a cross-site request it was not given).

use super::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use wani_store::Session;

/// The name of the hidden form field that carries the session's token.
pub const FIELD: &str = "csrf";

/// The `host[:port]` part of an absolute URL (`https://host:port/path`).
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Whether a state-changing request may come from where it says it comes
/// from (see the module doc).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    match (source, host) {
        (None, _) => true,
        // An opaque origin (sandboxed frame, some redirects) is never ours.
        (Some("null"), _) => false,
        (Some(src), Some(host)) => authority(src).is_some_and(|a| a.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// Refuses cross-site state-changing requests (layer on the whole router).
pub async fn guard(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || same_origin(req.headers()) {
        return next.run(req).await;
    }
    let err = ApiError::forbidden(
        "this request came from another site; submit the form from this site's own page",
    );
    if req.uri().path().starts_with("/api/") {
        err.into_response()
    } else {
        err.html().into_response()
    }
}

/// Checks the token a form of a logged-in slip carries.
pub fn check_token(session: &Session, provided: Option<&str>) -> Result<(), ApiError> {
    match provided {
        Some(t) if !session.csrf.is_empty() && t == session.csrf => Ok(()),
        _ => Err(ApiError::forbidden(
            "this form has expired or did not come from this site: reload the page and try again",
        )
        .html()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins() {
        let host = (header::HOST, "wani.example:8080");
        assert!(
            same_origin(&headers(std::slice::from_ref(&host))),
            "no Origin: not a browser page"
        );
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://wani.example:8080")
        ])));
        assert!(!same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            host.clone(),
            (header::ORIGIN, "null")
        ])));
        assert!(same_origin(&headers(&[
            host.clone(),
            (header::REFERER, "http://wani.example:8080/threads/1")
        ])));
        assert!(!same_origin(&headers(&[
            host,
            (header::REFERER, "http://wani.example.evil.example/x")
        ])));
    }

    #[test]
    fn tokens() {
        let s = Session {
            slip: wani_store::Slip {
                id: 1,
                name: "m".into(),
                is_admin: false,
                is_mod: true,
                boards: vec![],
            },
            csrf: "tok".into(),
            expires: 0,
        };
        assert!(check_token(&s, Some("tok")).is_ok());
        assert!(check_token(&s, Some("other")).is_err());
        assert!(check_token(&s, None).is_err());
    }
}
