//! The HTTP layer: HTML pages and the JSON API over the node's actors.
//!
//! Stateless: every handler turns a request into messages to entities (or a
//! store read for things no entity owns, like the board list), so any node
//! can serve any request. `app(state)` builds the router without a socket, so
//! handlers are tested with `oneshot`; `serve` runs it with graceful shutdown.

mod api;
pub mod auth;
pub(crate) mod cache;
mod captcha;
pub(crate) mod chan;
mod client;
pub mod conn;
pub mod csrf;
#[cfg(debug_assertions)]
mod debug;
pub mod error;
mod files;
pub mod guard;
mod live;
mod moderation;
mod ops;
mod site;
mod slip;
pub(crate) mod upload;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use tokio::net::TcpListener;

pub use crate::state::{AppState, Inner};
pub use error::ApiError;

/// The request parsers that face the internet, for the fuzz targets
/// (`fuzz/`); not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::live::fuzz_parse as live;
    pub use super::upload::fuzz_read as multipart;
}

/// The router with every route.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The router with every route plus `extra`, which goes through the same
/// layers (the benchmark's ceiling route uses this to pay what real routes pay).
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    let body_limit = state.config.media.max_upload_bytes as usize + 1024 * 1024;
    let api = Router::new()
        .route("/boards", get(api::boards))
        .route("/boards/", get(api::boards))
        .route("/board/{id}/catalog", get(api::catalog))
        .route("/firehose", get(api::firehose))
        .route("/cluster", get(api::cluster))
        .route("/status", get(api::status))
        .route("/thread/{id}", get(api::thread))
        .route("/post/{id}", get(api::post))
        .route(
            "/live",
            get(live::events)
                .post(live::subscribe)
                .layer(DefaultBodyLimit::max(live::MAX_SUBSCRIBE_BYTES)),
        )
        .route("/thread/new", post(api::new_thread))
        .route("/thread/{id}/new", post(api::new_reply))
        .route("/thread/post/{id}", axum::routing::delete(api::delete_post))
        .route(
            "/admin/drain",
            get(ops::drain_status).post(ops::drain_start),
        )
        .route("/admin/reload", post(ops::reload))
        .fallback(api::not_found);
    // Fault hooks for chaos-tests/; absent from release builds.
    #[cfg(debug_assertions)]
    let api = api.merge(debug::routes());
    Router::new()
        .nest("/api/v1", api)
        .route("/", get(site::front))
        .route("/boards", get(site::board_list))
        .route("/boards/", get(site::board_list))
        .route("/boards/{id}", get(site::catalog))
        .route("/boards/{id}/archive", get(site::archive))
        .route("/boards/{id}/new", post(site::new_thread))
        .route("/boards/rules/{id}", get(site::board_rules))
        .route("/threads/{id}", get(site::thread))
        .route("/threads/{id}/gallery", get(site::gallery))
        .route("/posts/{id}", get(site::find_post))
        .route("/threads/{id}/new", post(site::new_reply))
        .route("/rules", get(site::rules))
        .route("/faq", get(site::faq))
        .route("/themes", get(site::themes).post(site::set_theme))
        .route("/upload/{id}", get(files::original))
        .route("/upload/thumb/{id}", get(files::thumbnail))
        .route("/static/style.css", get(files::style))
        .route("/static/wani.js", get(files::script))
        .route("/static/themes/{name}", get(files::theme))
        .route("/slip", get(slip::page))
        .route("/slip/login", post(slip::login))
        .route("/slip/register", post(slip::register))
        .route("/slip/logout", post(slip::logout))
        .route("/captcha", get(captcha::new_json))
        .route("/captcha/new.png", get(captcha::new_image))
        .route("/captcha/pow", get(captcha::pow))
        .route("/captcha/{id}", get(captcha::image))
        .route(
            "/report/{post}",
            get(moderation::report_form).post(moderation::report),
        )
        .merge(moderation::routes())
        .merge(extra)
        // The 4chan/vichan read API and the URLs its clients build. Static
        // segments win over `{board}`, so /threads/…, /upload/… and the
        // other routes above keep their meaning.
        .route("/boards.json", get(chan::boards))
        .route("/{board}/", get(chan::board_index))
        .route("/{board}/{file}", get(chan::board_file))
        .route("/{board}/thread/{file}", get(chan::thread_file))
        .route("/{board}/thread/{no}/{slug}", get(chan::thread_slug))
        .route("/{board}/res/{file}", get(chan::thread_file))
        .route("/{board}/src/{file}", get(chan::original))
        .route("/{board}/thumb/{file}", get(chan::thumbnail))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(site::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(csrf::guard))
        .layer(axum::middleware::from_fn_with_state(
            axum::http::HeaderValue::from_str(&content_security_policy(
                &state.config.blobs.public_url,
            ))
            .unwrap_or(axum::http::HeaderValue::from_static(
                CONTENT_SECURITY_POLICY,
            )),
            security_headers,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web_role,
        ))
        // Outermost, so refusals by the layers inside are counted too.
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .with_state(state)
}

/// What every answer's content may do in a browser. Scripts only from our
/// own files (no inline script, no `eval`), so markup that slipped through
/// could not run; no framing (clickjacking); nothing fetched from other
/// sites. Inline `style` attributes stay allowed: the poster-id badge sets
/// its hue with one, and a style attribute runs no code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; \
    media-src 'self' blob:; connect-src 'self'; font-src 'self'; worker-src 'self' blob:; \
    manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// [`CONTENT_SECURITY_POLICY`], letting images and videos come from the
/// origin of `[blobs] public_url` (the CDN media are linked on) as well.
pub fn content_security_policy(public_url: &str) -> String {
    let origin = public_url
        .split_once("://")
        .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or("")))
        .filter(|_| !public_url.is_empty());
    match origin {
        None => CONTENT_SECURITY_POLICY.to_string(),
        Some(o) => CONTENT_SECURITY_POLICY
            .replace("img-src 'self'", &format!("img-src 'self' {o}"))
            .replace("media-src 'self'", &format!("media-src 'self' {o}")),
    }
}

/// Adds the policy and its companions to every response that has none.
async fn security_headers(
    axum::extract::State(csp): axum::extract::State<axum::http::HeaderValue>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    res
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops taking
/// connections and waits for the requests in flight.
///
/// Every connection lives under the `[http]` limits (head and idle timeouts,
/// a cap per peer address; see [`conn`]). Fresh connections that open a live
/// stream are served by [`live::serve_connection`]; every other connection
/// goes to axum through hyper.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(state.clone());
    conn::serve(listener, state, router, shutdown).await
}

/// Paths every node serves whatever its roles: health, metrics, the view.
fn is_operations_path(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/cluster" | "/api/v1/status"
    ) || path.starts_with("/api/v1/admin/")
}

/// A node without the `web` role serves only the operations paths; the
/// site and the API are for the nodes that carry it.
async fn web_role(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !state.config.node.has(wani_supervision::Role::Web) && !is_operations_path(req.uri().path())
    {
        return axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            "this node does not carry the web role; send requests to one that does",
        ));
    }
    next.run(req).await
}
