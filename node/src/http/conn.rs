//! The HTTP listener's connections: accepting them, and the limits each one
//! lives under.
//!
//! A connection is a file descriptor, and a node has a fixed number of them.
//! So that a few peers cannot take them all by connecting and then saying
//! nothing (or one byte now and then), every connection is bounded:
//!
//! - **Head timeout** (`[http] head_timeout_secs`): a whole request head must
//!   arrive within it, counted from the connection's accept, or from the first
//!   byte of the next request on a kept-alive connection. Trickling bytes does
//!   not reset it.
//! - **Idle timeout** (`[http] idle_timeout_secs`): how long a kept-alive
//!   connection may wait for its next request.
//! - **Per-address cap** (`[http] max_connections_per_addr`): a peer address
//!   (an IPv6 peer's /64) holding that many open connections has new ones
//!   answered 429 and closed at once. Live streams count.
//!
//! While a request is being served (its body read, its response written,
//! however long a streamed response lasts) neither timeout runs: a live
//! stream, or a download, is not idle. Live streams opened on a fresh
//! connection are handed to [`super::live::serve_connection`] with their own
//! 10 s head limit, and then run without a timeout.
//!
//! The timeouts live in the connection's I/O ([`Watched`]): hyper only reads
//! a socket when it waits for a head or a body, which is exactly when a
//! deadline matters, and hyper's own `header_read_timeout` would also cut an
//! idle kept-alive connection at the head timeout. What a connection is
//! waiting for is a pure state ([`Phase`]), moved by the I/O (bytes arrived)
//! and by the service (a request began, its response was dropped).
//!
//! Running out of descriptors is logged, at most once a minute with a count,
//! and the accept loop backs off instead of spinning on the error. The soft
//! descriptor limit is raised to the hard one when serving starts.
//!
//! Not handled here: a client that reads its response very slowly, or sends
//! a request body very slowly, holds its connection for as long as it keeps
//! going; total connection counts across addresses (the descriptor limit is
//! that bound); per-client limits behind a reverse proxy (the proxy's job).

use super::live;
use crate::abuse::addr::Cidr;
use crate::config::Config;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The limits of the listener, from `[http]`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub timeouts: Timeouts,
    /// Open connections per peer address; 0: no cap.
    pub max_per_addr: u32,
    /// Peers the cap does not apply to: `[http] cap_exempt` and `[site] trusted_proxies`.
    pub exempt: Vec<Cidr>,
}

/// The two deadlines of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub head: Duration,
    pub idle: Duration,
}

impl Limits {
    /// The limits a config sets (checked at load, so the ranges parse).
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            timeouts: Timeouts {
                head: Duration::from_secs(config.http.head_timeout_secs),
                idle: Duration::from_secs(config.http.idle_timeout_secs),
            },
            max_per_addr: config.http.max_connections_per_addr,
            exempt: config
                .http
                .cap_exempt
                .iter()
                .chain(&config.site.trusted_proxies)
                .filter_map(|c| Cidr::parse(c).ok())
                .collect(),
        }
    }
}

/// Why a connection's deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expired {
    /// A request head began (or the connection opened) and did not finish in time.
    Head,
    /// A kept-alive connection waited too long for its next request.
    Idle,
}

impl Expired {
    fn message(self) -> &'static str {
        match self {
            Expired::Head => "the request head did not arrive within http.head_timeout_secs",
            Expired::Idle => "the connection was idle for http.idle_timeout_secs",
        }
    }
}

/// What a connection is waiting for, and since when. Pure: the clock is
/// passed in, so the rule is tested without sockets.
#[derive(Clone, Debug)]
pub struct Phase {
    /// Requests whose response has not been dropped yet (more than one when
    /// a client pipelines).
    in_flight: u32,
    /// When the connection last became idle (no request in flight).
    idle_since: Instant,
    /// When the head being waited for began: the accept for a fresh
    /// connection, its first byte on a kept-alive one; `None` while idle
    /// with nothing received.
    head_since: Option<Instant>,
}

impl Phase {
    /// A fresh connection owes its first head from the moment it is accepted.
    pub fn accepted(now: Instant) -> Phase {
        Phase {
            in_flight: 0,
            idle_since: now,
            head_since: Some(now),
        }
    }

    /// Bytes came in: between requests, they start the next head's clock.
    pub fn bytes_read(&mut self, now: Instant) {
        if self.in_flight == 0 && self.head_since.is_none() {
            self.head_since = Some(now);
        }
    }

    /// A whole head arrived: the request is being served.
    pub fn request_began(&mut self) {
        self.in_flight += 1;
        self.head_since = None;
    }

    /// A response was sent (or abandoned).
    pub fn request_ended(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.idle_since = now;
        }
    }

    /// When the connection is to be closed if no head has come, and why;
    /// `None` while a request is served.
    pub fn deadline(&self, t: Timeouts) -> Option<(Instant, Expired)> {
        if self.in_flight > 0 {
            return None;
        }
        Some(match self.head_since {
            Some(since) => (since + t.head, Expired::Head),
            None => (self.idle_since + t.idle, Expired::Idle),
        })
    }
}

/// A warning logged at most once per `every`, with how many times it
/// happened since it was last logged. Pure: the clock is passed in.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    pub fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            count: 0,
        }
    }

    /// Counts one occurrence; `Some(n)` when it is time to log, `n` being
    /// the occurrences since the last log (this one included).
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|l| now < l + self.every) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// Open connections per peer address.
#[derive(Debug, Default)]
pub struct AddrTable {
    open: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted connection's place in the [`AddrTable`]; freed on drop.
#[derive(Debug)]
pub struct Slot {
    table: Arc<AddrTable>,
    key: IpAddr,
}

impl AddrTable {
    /// A slot for a connection from `ip`, or `None` when its address holds
    /// `max` already. The key is the address itself for IPv4 and its /64
    /// for IPv6 (one host usually holds a whole /64).
    pub fn admit(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<Slot> {
        let key = Self::key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            key,
        })
    }

    /// Open connections from the address (or /64) `ip` belongs to.
    pub fn open(&self, ip: IpAddr) -> u32 {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&Self::key(ip)).copied().unwrap_or(0)
    }

    fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            v4 => v4,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A connection's socket, closing itself (a read fails with `TimedOut`)
/// when its [`Phase`] deadline passes while hyper waits for bytes.
pub struct Watched {
    io: TcpStream,
    phase: Arc<Mutex<Phase>>,
    timeouts: Timeouts,
    /// Made on the first wait, then reset: most requests never wait.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Watched {
    fn new(io: TcpStream, phase: Arc<Mutex<Phase>>, timeouts: Timeouts) -> Watched {
        Watched {
            io,
            phase,
            timeouts,
            timer: None,
        }
    }
}

fn lock(phase: &Mutex<Phase>) -> std::sync::MutexGuard<'_, Phase> {
    // The phase is plain data: a panic while it was held left nothing half-done.
    phase.lock().unwrap_or_else(|p| p.into_inner())
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    lock(&this.phase).bytes_read(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((at, why)) = lock(&this.phase).deadline(this.timeouts) else {
                    return Poll::Pending;
                };
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if timer.deadline() != at {
                    timer.as_mut().reset(at);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why.message())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// A request in flight on a connection; ends it in the [`Phase`] on drop,
/// which is when hyper has sent (or given up on) the whole response.
struct InFlight(Arc<Mutex<Phase>>);

impl InFlight {
    fn begin(phase: &Arc<Mutex<Phase>>) -> InFlight {
        lock(phase).request_began();
        InFlight(phase.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock(&self.0).request_ended(Instant::now());
    }
}

/// What every connection task shares.
struct Shared {
    state: AppState,
    router: Router,
    limits: Limits,
}

/// The shortest and longest pause of the accept loop after it failed.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How often each kind of connection warning may be logged.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Sent to a peer over its cap before the connection is closed.
const TOO_MANY: &[u8] = b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
    content-length: 65\r\nconnection: close\r\n\r\n\
    {\"error\": \"too many open connections from your address; retry later\"}";

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets every connection finish the request it is serving
/// (hyper's graceful shutdown: idle ones close at once) and returns once
/// they have. Live streams are not waited for: the caller ends them.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let fd_limit = raise_fd_limit();
    deepen_backlog(&listener);
    let limits = Limits::from_config(&state.config);
    tracing::info!(
        fd_limit,
        head_timeout = ?limits.timeouts.head,
        idle_timeout = ?limits.timeouts.idle,
        max_connections_per_addr = limits.max_per_addr,
        "serving HTTP"
    );
    let shared = Arc::new(Shared {
        state,
        router,
        limits,
    });
    let table = Arc::new(AddrTable::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` gives `None` once all are gone.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut failing = Throttle::new(WARN_EVERY);
    let mut near_limit = Throttle::new(WARN_EVERY);
    let mut capped = Throttle::new(WARN_EVERY);
    let mut backoff = BACKOFF_MIN;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(c) => {
                backoff = BACKOFF_MIN;
                c
            }
            // The peer gave up before its connection was taken: nothing to wait for.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) =>
            {
                continue
            }
            Err(e) => {
                // Out of descriptors, mostly (EMFILE, ENFILE): the pending
                // connection stays queued and accept would fail again at once.
                if let Some(n) = failing.hit(Instant::now()) {
                    tracing::warn!(
                        error = %e,
                        times = n,
                        fd_limit,
                        "accepting connections fails (out of file descriptors?); backing off"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let now = Instant::now();
        // The kernel hands out the lowest free descriptor, so a high one
        // means nearly all of them are taken.
        let fd = stream.as_raw_fd() as u64;
        if fd_limit > 0 && fd >= fd_limit / 10 * 9 {
            if let Some(n) = near_limit.hit(now) {
                tracing::warn!(
                    fd,
                    fd_limit,
                    times = n,
                    "nearly out of file descriptors: raise the limit (ulimit -n), or lower http.max_connections_per_addr"
                );
            }
        }
        let ip = peer.ip().to_canonical();
        let limits = &shared.limits;
        let slot = if limits.max_per_addr == 0 || limits.exempt.iter().any(|c| c.contains(ip)) {
            None
        } else {
            match table.admit(ip, limits.max_per_addr) {
                Some(s) => Some(s),
                None => {
                    if let Some(n) = capped.hit(now) {
                        tracing::warn!(
                            peer = %ip,
                            refused = n,
                            max = limits.max_per_addr,
                            "refused connections over http.max_connections_per_addr (behind a reverse proxy, list it in http.cap_exempt)"
                        );
                    }
                    // Best effort and never waited for: the point is to
                    // free the descriptor now. Written on the plain socket:
                    // tokio's `try_write` would wait for a readiness event
                    // this fresh socket has not had yet.
                    if let Ok(s) = stream.into_std() {
                        let _ = (&s).write(TOO_MANY);
                    }
                    continue;
                }
            }
        };
        tokio::spawn(connection(
            stream,
            peer,
            now,
            slot,
            shared.clone(),
            stop_rx.clone(),
            done_tx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = done_rx.recv().await;
    Ok(())
}

/// Serves one connection: a live stream directly, anything else through
/// hyper with the [`Phase`] timeouts. `slot` is held to the end.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    accepted: Instant,
    slot: Option<Slot>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let _slot = slot;
    let timeouts = shared.limits.timeouts;
    let first = tokio::select! {
        first = tokio::time::timeout(timeouts.head, live::is_live_request(&stream)) => first,
        // Stopping, and the client has sent nothing yet: close now, as
        // hyper closes an idle kept-alive connection, rather than hold the
        // shutdown up for the head timeout.
        _ = stop.wait_for(|s| *s) => return,
    };
    match first {
        // Silent for the whole head timeout: no head can arrive in time.
        Err(_) => return,
        Ok(true) => {
            // Not waited for at shutdown: the node ends live streams itself.
            drop(done);
            live::serve_connection(shared.state.clone(), stream).await;
            return;
        }
        Ok(false) => {}
    }
    let phase = Arc::new(Mutex::new(Phase::accepted(accepted)));
    let router = shared.router.clone();
    let service_phase = phase.clone();
    let service = tower::service_fn(move |mut req: hyper::Request<Incoming>| {
        let router = router.clone();
        let in_flight = InFlight::begin(&service_phase);
        req.extensions_mut().insert(ConnectInfo(peer));
        async move {
            let res = router.oneshot(req.map(Body::new)).await?;
            // The response body owns the request's place in the phase:
            // a streamed response keeps the connection busy until it ends.
            Ok::<_, Infallible>(res.map(|body| {
                Body::new(body.map_frame(move |frame| {
                    let _ = &in_flight;
                    frame
                }))
            }))
        }
    });
    let io = TokioIo::new(Watched::new(stream, phase, timeouts));
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Ours is in `Watched`; hyper's would need a timer and cut idle
    // kept-alive connections at the head timeout.
    builder.header_read_timeout(None);
    let conn = builder.serve_connection(io, TowerToHyperService::new(service));
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    drop(done);
}

/// The accept queue asked for (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

/// Lengthens the listener's accept queue. Tokio (as std) listens with a
/// queue of 128: a burst of connections, a flood, fills it while the accept
/// loop is busy, and every client's SYN beyond it is dropped and retried
/// only after a second. Listening again on a listening socket changes its
/// queue (Linux), whoever bound it.
fn deepen_backlog(listener: &TcpListener) {
    // SAFETY: the descriptor is the listener's, open for the whole call.
    if unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) } != 0 {
        tracing::warn!(
            error = %io::Error::last_os_error(),
            "cannot lengthen the accept queue; bursts of connections may wait a second"
        );
    }
}

/// Raises this process's soft open-file limit to its hard limit and returns
/// the soft limit now in force (0 if it cannot be read). Every connection
/// and live stream is a descriptor; child processes inherit the limit.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // Refused when the hard limit is "unlimited" beyond what the
            // kernel allows (fs.nr_open): the current limit stays.
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        head: Duration::from_secs(2),
        idle: Duration::from_secs(10),
    };

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn a_fresh_connection_owes_its_head_from_the_accept() {
        let t0 = Instant::now();
        let mut p = Phase::accepted(t0);
        assert_eq!(p.deadline(T), Some((at(t0, 2000), Expired::Head)));
        // Trickled bytes do not move the deadline.
        p.bytes_read(at(t0, 1000));
        p.bytes_read(at(t0, 1900));
        assert_eq!(p.deadline(T), Some((at(t0, 2000), Expired::Head)));
    }

    #[test]
    fn a_request_in_flight_has_no_deadline_then_the_idle_clock_starts() {
        let t0 = Instant::now();
        let mut p = Phase::accepted(t0);
        p.request_began();
        assert_eq!(p.deadline(T), None);
        // A streamed body being read, or a pipelined head, starts nothing.
        p.bytes_read(at(t0, 500));
        assert_eq!(p.deadline(T), None);
        p.request_ended(at(t0, 60_000));
        assert_eq!(p.deadline(T), Some((at(t0, 70_000), Expired::Idle)));
        // The next request's first byte starts its head clock.
        p.bytes_read(at(t0, 65_000));
        assert_eq!(p.deadline(T), Some((at(t0, 67_000), Expired::Head)));
        p.request_began();
        assert_eq!(p.deadline(T), None);
    }

    #[test]
    fn pipelined_requests_keep_the_connection_busy_until_the_last_ends() {
        let t0 = Instant::now();
        let mut p = Phase::accepted(t0);
        p.request_began();
        p.request_began();
        p.request_ended(at(t0, 100));
        assert_eq!(p.deadline(T), None);
        p.request_ended(at(t0, 200));
        assert_eq!(p.deadline(T), Some((at(t0, 10_200), Expired::Idle)));
    }

    #[test]
    fn a_throttled_warning_counts_what_it_did_not_log() {
        let t0 = Instant::now();
        let mut w = Throttle::new(Duration::from_secs(60));
        assert_eq!(w.hit(t0), Some(1));
        for i in 1..745 {
            assert_eq!(w.hit(at(t0, i)), None);
        }
        assert_eq!(w.hit(at(t0, 60_000)), Some(745));
        assert_eq!(w.hit(at(t0, 60_001)), None);
    }

    #[test]
    fn the_cap_counts_open_connections_per_address_and_ipv6_per_64() {
        let table = Arc::new(AddrTable::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| table.admit(a, 3).unwrap()).collect();
        assert!(table.admit(a, 3).is_none());
        assert!(table.admit("192.0.2.2".parse().unwrap(), 3).is_some());
        drop(held);
        assert_eq!(table.open(a), 0);
        assert!(table.admit(a, 3).is_some());

        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        let _one = table.admit(v6("2001:db8::1"), 2).unwrap();
        let _two = table.admit(v6("2001:db8::ffff:2"), 2).unwrap();
        assert!(table.admit(v6("2001:db8::3"), 2).is_none());
        assert!(table.admit(v6("2001:db8:0:1::1"), 2).is_some());
        // An IPv4 peer on a dual-stack socket is the same IPv4 address.
        let _mapped = table.admit(v6("::ffff:192.0.2.9"), 1).unwrap();
        assert!(table.admit("192.0.2.9".parse().unwrap(), 1).is_none());
    }
}
