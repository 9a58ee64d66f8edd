//! Who is asking: the client address and the page theme.

use crate::pages::Theme;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};
use std::convert::Infallible;
use std::net::SocketAddr;

/// The client's address: the socket's peer, or the client named by
/// `X-Forwarded-For` when the peer is one of `site.trusted_proxies`
/// (see [`crate::abuse::addr::client_ip`]); from anyone else the header is
/// ignored, so it cannot be used to dodge bans or flood control.
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let Some(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
        else {
            return Ok(ClientAddr("unknown".to_string()));
        };
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = crate::abuse::addr::client_ip(peer, forwarded, &state.abuse.trusted_proxies);
        Ok(ClientAddr(ip.to_string()))
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
