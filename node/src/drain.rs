//! Draining a clustered node for a rolling restart: it leaves the cluster
//! gracefully, hands its entities over, lets its requests finish, and only
//! then is it stopped.
//!
//! A drain ([`start`]) is one call to [`Cluster::leave`]: the node shows
//! itself as `leaving` and owns no shard from then on, so its own router
//! sends every entity call elsewhere and its region refuses to activate
//! anything (a call still arriving gets a retryable error and is routed
//! again); every peer gets a `Leaving` frame (now and on each heartbeat), so
//! it stops routing to this node and takes its shards at once, without
//! waiting for a failure detector; the router's view-change follower
//! passivates every entity here and releases every shard lease. The node
//! keeps serving HTTP throughout: a request arriving during the drain is
//! served by routing its entity calls to the new owners.
//!
//! [`status`] says when it is over: no active entity, no lease held, no
//! request in flight (operations endpoints aside), and none started for a
//! quiet period (default [`DEFAULT_QUIET`]): `/readyz` answers 503 from the
//! start of the drain, and the quiet period is the time a load balancer
//! gets to notice it and stop sending here. Without it a drain could report
//! done between two requests, and the next one would meet a closed socket.
//! `wani drain` ([`run_cli`])
//! starts a drain through `POST /api/v1/admin/drain` and polls
//! `GET /api/v1/admin/drain` until then; the operator then stops the
//! process (SIGTERM) and nothing it had is lost. SIGTERM on a clustered node
//! that was not drained drains it first ([`before_shutdown`]).
//!
//! Not handled: undoing a drain. Peers keep a leaving incarnation out of
//! the cluster, so a drained process comes back only by restarting (as a
//! new incarnation). A single-box node has nobody to hand over to: it is
//! stopped with SIGTERM, which finishes its requests.

use crate::state::AppState;
use anyhow::{bail, Context};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wani_supervision::cluster::Cluster;

/// Where a drain stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DrainStatus {
    /// The drain has started.
    pub draining: bool,
    /// It is over: the node can be stopped without failing anything.
    pub drained: bool,
    /// Board and thread actors still running here.
    pub active_entities: usize,
    /// Shard leases still held.
    pub leases_held: usize,
    /// Requests being served (operations endpoints excluded).
    pub requests_in_flight: i64,
    /// Milliseconds since the last request started (operations endpoints
    /// excluded); `None` if none ever did.
    pub quiet_ms: Option<u64>,
}

/// How long no request may have started before a drain is over, unless
/// the caller asks for another period.
pub const DEFAULT_QUIET: Duration = Duration::from_secs(1);

/// Why a drain cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    #[error("this node is not in a cluster: there is nobody to hand its work to; stop it with SIGTERM, which finishes its requests")]
    NotClustered,
}

fn cluster(state: &AppState) -> Result<&Cluster, DrainError> {
    state.cluster.as_deref().ok_or(DrainError::NotClustered)
}

/// Starts draining (idempotent) and answers where it stands.
pub fn start(state: &AppState) -> Result<DrainStatus, DrainError> {
    cluster(state)?.leave();
    Ok(status(state, DEFAULT_QUIET))
}

/// Where the drain stands now; it is over once, among the rest, no request
/// started for `quiet`.
pub fn status(state: &AppState, quiet: Duration) -> DrainStatus {
    let draining = state.cluster.as_ref().is_some_and(|c| c.is_draining());
    let active = state.entities.active_total();
    let leases_held = state.entities.leases().map(|l| l.held()).unwrap_or(0);
    let requests_in_flight = state.metrics.in_flight();
    let idle = state.metrics.idle_for();
    let quiet_enough = idle.is_none_or(|d| d >= quiet);
    DrainStatus {
        draining,
        drained: draining
            && active == 0
            && leases_held == 0
            && requests_in_flight <= 0
            && quiet_enough,
        active_entities: active,
        leases_held,
        requests_in_flight,
        quiet_ms: idle.map(|d| d.as_millis() as u64),
    }
}

/// How long SIGTERM waits for the hand-over before stopping anyway (the
/// leases then run out on their own and peers take the shards over).
const SHUTDOWN_DRAIN_DEADLINE: Duration = Duration::from_secs(15);

/// On SIGTERM: a clustered node leaves, hands its entities over and waits
/// for the quiet period (a load balancer told at the same time as the
/// signal needs that long to stop sending) before the HTTP server stops,
/// which then waits for the requests in flight. A node already drained
/// returns at once.
pub async fn before_shutdown(state: &AppState) {
    let Ok(c) = cluster(state) else { return };
    c.leave();
    let deadline = Instant::now() + SHUTDOWN_DRAIN_DEADLINE;
    loop {
        let s = status(state, DEFAULT_QUIET);
        if s.drained {
            tracing::info!("handed every entity over; stopping");
            return;
        }
        if Instant::now() > deadline {
            tracing::warn!(
                entities = s.active_entities,
                leases = s.leases_held,
                "stopping before the hand-over finished; peers take the rest over when the leases run out"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The header that carries the cluster cookie to the admin API from
/// another host (see `http/ops.rs`).
pub const COOKIE_HEADER: &str = "x-wani-cluster-cookie";

/// `wani drain`: asks the node at `addr` to drain, then waits (at most
/// `timeout`) until it has, including `quiet` without a new request.
/// `cookie` is sent when the address is not on loopback (the node accepts
/// admin calls from loopback without it).
pub async fn run_cli(
    addr: &str,
    cookie: Option<&str>,
    timeout: Duration,
    quiet: Duration,
) -> anyhow::Result<()> {
    let loopback = is_loopback(addr).await;
    let cookie = if loopback { None } else { cookie };
    if !loopback && cookie.is_none() {
        bail!("{addr} is not a loopback address: the cluster cookie is needed (set cluster.cookie or cluster.cookie_file in the config)");
    }
    let (code, body) = request(addr, "POST", "/api/v1/admin/drain", cookie)
        .await
        .with_context(|| format!("asking the node at {addr} to drain (is it running?)"))?;
    if code != 202 && code != 200 {
        bail!(
            "the node at {addr} refused to drain ({code}): {}",
            String::from_utf8_lossy(&body)
        );
    }
    println!("draining {addr}…");
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        let path = format!("/api/v1/admin/drain?quiet_ms={}", quiet.as_millis());
        let (code, body) = request(addr, "GET", &path, cookie)
            .await
            .with_context(|| format!("polling the drain of {addr}"))?;
        if code == 200 {
            let s: serde_json::Value =
                serde_json::from_slice(&body).context("reading the node's drain status")?;
            if s["drained"].as_bool() == Some(true) {
                println!("{addr} is drained: it can be stopped (SIGTERM) now");
                return Ok(());
            }
            last = Some(s);
        }
        if Instant::now() > deadline {
            bail!(
                "{addr} did not finish draining within {timeout:?} (if requests keep \
                 arriving, take it out of the load balancer: its /readyz answers 503); \
                 last status: {}",
                last.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn is_loopback(addr: &str) -> bool {
    match tokio::net::lookup_host(addr).await {
        Ok(mut addrs) => addrs.all(|a| a.ip().is_loopback()),
        Err(_) => false,
    }
}

/// One HTTP/1.1 request with `Connection: close`: status and body.
pub(crate) async fn request(
    addr: &str,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(c) = cookie {
        head.push_str(&format!("{COOKIE_HEADER}: {c}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response");
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let status = std::str::from_utf8(&buf[..end])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, buf[end + 4..].to_vec()))
}
