//! Who is asking: the client address and the page theme.

use crate::pages::Theme;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};
use std::convert::Infallible;
use std::net::SocketAddr;

/// The client's address, from the socket. (Trusting `X-Forwarded-For` from
/// configured proxies comes with anti-abuse; until then it is ignored.)
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_else(|| "unknown".to_string());
        Ok(ClientAddr(ip))
    }
}

/// The theme chosen with the `theme` cookie.
pub struct ThemeChoice(pub Theme);

impl<S: Send + Sync> FromRequestParts<S> for ThemeChoice {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(ThemeChoice(theme_from_cookies(
            parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )))
    }
}

fn theme_from_cookies<'a>(headers: impl Iterator<Item = &'a str>) -> Theme {
    headers
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == "theme")
        .and_then(|(_, v)| Theme::from_name(v))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn theme_cookie() {
        assert_eq!(
            theme_from_cookies(["a=b; theme=wildride"].into_iter()),
            Theme::Wildride
        );
        assert_eq!(
            theme_from_cookies(["theme=<script>"].into_iter()),
            Theme::default()
        );
        assert_eq!(theme_from_cookies(std::iter::empty()), Theme::default());
    }
}
