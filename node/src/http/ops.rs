//! Operations endpoints: `GET /metrics` (Prometheus), `GET /healthz`,
//! `GET /readyz`, and the drain admin API.
//!
//! - `/healthz` answers 200 while the process runs: restart it if not.
//! - `/readyz` answers 200 only when the node can serve: the database
//!   answers a `SELECT 1`, and in a cluster the node's view has settled
//!   (it has listened long enough to know its peers) and it is not
//!   draining. Otherwise 503 with `{"ready": false, "reason": …}`: take it
//!   out of the load balancer.
//! - `POST /api/v1/admin/drain` starts a drain (see `drain.rs`) and answers
//!   202 with its status; `GET /api/v1/admin/drain` polls it.
//!
//! Who may drain: the admin API is bound to the node's HTTP address like
//! everything else, so it is guarded here. A request is accepted when it
//! comes from a loopback address *and* carries no forwarding header (a
//! reverse proxy on the same host would otherwise make every visitor look
//! local), or when it carries the cluster cookie in `X-Wani-Cluster-Cookie`
//! (compared by digest, in constant time). The cookie is already the
//! cluster's shared secret, so operators manage no new one; it crosses the
//! network in the clear unless the HTTP listener is behind TLS, which is
//! why `wani drain` sends it only to non-loopback addresses.
//!
//! Not handled: metrics authentication (scrape over a private network, or
//! block `/metrics` at the proxy).

use super::ApiError;
use crate::drain::{self, COOKIE_HEADER};
use crate::metrics::Exposition;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::time::Duration;
use wani_actors::BoardMsg;

/// How long `/readyz` waits for the database before calling it unreachable.
const DB_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the node can serve, 503 with the reason if not.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let reason = match tokio::time::timeout(DB_PROBE_TIMEOUT, state.store.ping()).await {
        Err(_) => Some("the database did not answer in time".to_string()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness probe: the database is unreachable");
            Some("the database is unreachable".to_string())
        }
        Ok(Ok(())) => match &state.cluster {
            _ if state.tree.health().unready_reason().is_some() => state
                .tree
                .health()
                .unready_reason()
                .map(|r| format!("an actor keeps crashing: {r}")),
            Some(c) if c.is_draining() => Some("the node is draining".to_string()),
            Some(c) if !c.is_settled() => Some(
                "the cluster view has not settled yet (the node just started or rejoined)"
                    .to_string(),
            ),
            _ => None,
        },
    };
    let (code, body) = match reason {
        None => (StatusCode::OK, serde_json::json!({ "ready": true })),
        Some(r) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "ready": false, "reason": r }),
        ),
    };
    let mut res = (code, Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = Exposition::default();
    state.metrics.write(&mut out);

    let (boards, threads) = (
        state.entities.active_of(wani_actors::names::BOARD),
        state.entities.active_of(wani_actors::names::THREAD),
    );
    out.family(
        "wani_entities_active",
        "gauge",
        "Board and thread actors running on this node.",
    );
    out.sample("wani_entities_active", &[("kind", "board")], boards as f64);
    out.sample(
        "wani_entities_active",
        &[("kind", "thread")],
        threads as f64,
    );
    out.family(
        "wani_actor_restarts_total",
        "counter",
        "Restarts of this node's actors after a crash, by actor (the tree's children; \
         thread and board activations; pool workers).",
    );
    for (actor, n) in state.restarts() {
        out.sample("wani_actor_restarts_total", &[("actor", &actor)], n as f64);
    }
    out.single(
        "wani_entity_activations_total",
        "counter",
        "Board and thread actors activated on this node (state loaded from the store).",
        state.entities.activations() as f64,
    );
    // ractor has no per-actor queue length; the worker pools' queues are
    // what can be measured.
    out.family(
        "wani_actor_queue_depth",
        "gauge",
        "Jobs waiting for a worker, by pool.",
    );
    out.sample(
        "wani_actor_queue_depth",
        &[("pool", "thumbnailer")],
        state.thumbnailer.queue_depth().await as f64,
    );
    // Live streams are served off hyper (most of them), so the request
    // metrics do not see them: the hub counts its clients.
    if let Ok(n) = state.live.clients().await {
        out.single(
            "wani_live_subscribers",
            "gauge",
            "Live-update (Server-Sent Events) clients connected to this node.",
            n as f64,
        );
    }
    if let Ok(r) = state.live.relays().await {
        out.family(
            "wani_live_relayed_total",
            "counter",
            "Live-update writes relayed to other nodes (one per node sent to) and received from them.",
        );
        for (direction, n) in [("sent", r.sent), ("received", r.received)] {
            out.sample(
                "wani_live_relayed_total",
                &[("direction", direction)],
                n as f64,
            );
        }
    }

    if let Some(c) = &state.cluster {
        state.metrics.write_view_changes(&mut out);
        let view = c.view();
        out.family(
            "wani_cluster_members",
            "gauge",
            "Cluster members by state, as this node sees them (itself included).",
        );
        for st in wani_supervision::MemberState::ALL {
            let n = view.members.iter().filter(|m| m.state == st).count();
            out.sample("wani_cluster_members", &[("state", st.name())], n as f64);
        }
        out.family(
            "wani_cluster_heartbeat_rtt_seconds",
            "gauge",
            "Round trip of the last answered heartbeat, by peer.",
        );
        for m in view.members.iter().filter(|m| !m.this_node) {
            if let Some(ms) = m.rtt_ms {
                out.sample(
                    "wani_cluster_heartbeat_rtt_seconds",
                    &[("peer", &m.name)],
                    ms as f64 / 1000.0,
                );
            }
        }
        for (name, help, pick) in [
            (
                "wani_cluster_frames_total",
                "Frames exchanged with peers, by class (membership: heartbeats; actors: messages and answers) and direction.",
                0,
            ),
            (
                "wani_cluster_frame_bytes_total",
                "Encoded bytes of those frames (without the session's own framing).",
                1,
            ),
        ] {
            out.family(name, "counter", help);
            for class in wani_supervision::wire::Class::ALL {
                for dir in wani_supervision::wire::Direction::ALL {
                    let counts = wani_supervision::wire::TRAFFIC.get(class, dir);
                    let v = if pick == 0 { counts.0 } else { counts.1 };
                    out.sample(
                        name,
                        &[("class", class.name()), ("direction", dir.name())],
                        v as f64,
                    );
                }
            }
        }
        out.single(
            "wani_cluster_view_version",
            "gauge",
            "Version of this node's cluster view (grows with every change).",
            view.version as f64,
        );
        out.single(
            "wani_cluster_draining",
            "gauge",
            "1 while this node drains.",
            if c.is_draining() { 1.0 } else { 0.0 },
        );
        if let Some(r) = &state.handover {
            out.single(
                "wani_shard_entities_handed_over_total",
                "counter",
                "Entities stopped here because their shard moved to another node.",
                r.handed_over() as f64,
            );
            out.single(
                "wani_shard_leases_released_total",
                "counter",
                "Shard leases released because the shard moved to another node.",
                r.leases_released() as f64,
            );
        }
        if let Some(l) = state.entities.leases() {
            out.single(
                "wani_shard_leases_held",
                "gauge",
                "Shard leases this node holds.",
                l.held() as f64,
            );
        }
    }

    let mut res = out.finish().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

/// `POST /api/v1/admin/drain`: starts a drain; 202 with its status.
pub async fn drain_start(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    admin_allowed(&state, &req)?;
    let status =
        drain::start(&state).map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    tracing::info!("drain requested through the admin API");
    Ok((StatusCode::ACCEPTED, Json(status)).into_response())
}

/// `GET /api/v1/admin/drain[?quiet_ms=N]`: where the drain stands; it is
/// over once, among the rest, no request started for `quiet_ms` (default
/// [`drain::DEFAULT_QUIET`]).
pub async fn drain_status(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    admin_allowed(&state, &req)?;
    let quiet = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("quiet_ms=")))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(drain::DEFAULT_QUIET);
    let mut res = Json(drain::status(&state, quiet)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `POST /api/v1/admin/reload?boards=1,2&threads=3,4`: the boards and
/// threads were written to the database behind the actors' backs (`wani
/// import`): each board's actor, wherever it lives, reloads its settings
/// and catalog; each thread's actor reloads its posts. 200 with the counts,
/// once every reload is done.
pub async fn reload(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    admin_allowed(&state, &req)?;
    let query = req.uri().query().unwrap_or("").to_string();
    let ids = |name: &str| -> Result<Vec<i64>, ApiError> {
        query
            .split('&')
            .filter_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("{name}: {v:?} is not an id")))
            })
            .collect()
    };
    let (boards, threads) = (ids("boards")?, ids("threads")?);
    for &b in &boards {
        let id = wani_store::BoardId(b);
        state
            .entities
            .ask(id, |reply| BoardMsg::Reload { reply })
            .await
            .and_then(|r| r)?;
        state.board_cache.forget(id);
    }
    for &t in &threads {
        let id = wani_store::ThreadId(t);
        state.entities.tell(id, wani_actors::ThreadMsg::Reload);
        // Answered after the reload (one mailbox, in order): the caller's
        // next read sees what was written.
        state
            .entities
            .ask(id, |reply| wani_actors::ThreadMsg::Head { reply })
            .await?;
    }
    state.boards().await?;
    Ok(Json(serde_json::json!({"boards": boards.len(), "threads": threads.len()})).into_response())
}

/// Whether the admin API may be used by this request (see the module doc).
fn admin_allowed(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| crate::abuse::addr::canonical(c.0.ip()));
    if peer.is_some_and(|ip| ip.is_loopback()) && !forwarded(req.headers()) {
        return Ok(());
    }
    if let Some(given) = req.headers().get(COOKIE_HEADER) {
        let cookie = state
            .config
            .cluster
            .runtime(&state.config.node)
            .ok()
            .filter(|_| state.config.cluster.enabled)
            .map(|r| r.cookie);
        if let Some(cookie) = cookie {
            if digests_match(given.as_bytes(), cookie.as_bytes()) {
                return Ok(());
            }
        }
    }
    Err(ApiError::forbidden(
        "the admin API answers only loopback callers, or callers sending the cluster cookie in X-Wani-Cluster-Cookie",
    ))
}

/// Whether a proxy forwarded the request (then its loopback source says
/// nothing about the client).
fn forwarded(headers: &HeaderMap) -> bool {
    ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| headers.contains_key(*h))
}

/// Compares two secrets without leaking where they differ: by digest, and
/// without an early exit.
fn digests_match(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_content() {
        assert!(digests_match(b"the right cookie", b"the right cookie"));
        assert!(!digests_match(b"the right cookie", b"the wrong cookie"));
        assert!(!digests_match(b"", b"x"));
    }

    #[test]
    fn a_proxied_request_is_not_local() {
        let mut h = HeaderMap::new();
        assert!(!forwarded(&h));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        assert!(forwarded(&h));
    }
}
