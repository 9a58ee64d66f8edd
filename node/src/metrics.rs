//! Prometheus metrics: a small registry of atomics and the text exposition
//! format (version 0.0.4), written by hand.
//!
//! Why by hand: the format is a few lines of text, and what we count is a
//! handful of counters, gauges and one histogram. A metrics crate would bring
//! a global registry (awkward when several nodes share a process, as in
//! tests and the benchmark) and more dependencies than the code it replaces.
//!
//! What lives here: the HTTP counters (fed by [`track`], an axum middleware
//! keyed by the route *template* from `MatchedPath`, so `/threads/{id}` is
//! one series, not one per thread), the count of cluster view changes by
//! kind (fed by [`Metrics::follow`]), and [`Exposition`], the writer the
//! `/metrics` handler (`http/ops.rs`) uses to add what other parts of the
//! node already count (entity activations, shard hand-overs, heartbeat round
//! trips, members by state).
//!
//! Not handled: per-actor mailbox depth. ractor 0.16 does not expose the
//! length of an actor's queue, so what is measurable is exported instead:
//! the thumbnailer factory's queue and the number of active entity actors.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wani_supervision::cluster::Cluster;
use wani_supervision::ViewChange;

/// Upper bounds of the latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 7] = [0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// Kinds of view change, in the order of [`Metrics::view_changes`].
const VIEW_CHANGE_KINDS: [&str; 6] = [
    "joined",
    "suspected",
    "recovered",
    "downed",
    "left",
    "self_downed",
];

/// The label of requests that matched no route (404s of arbitrary paths
/// would otherwise make one series each).
const UNMATCHED: &str = "unmatched";

/// Counters of one (method, route template).
#[derive(Default)]
struct RouteStats {
    /// Responses by status class: 1xx … 5xx.
    by_class: [AtomicU64; 5],
    /// Latency histogram, one (non-cumulative) count per bucket plus +Inf.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// The node's metrics registry. Cheap to share (`Arc`).
#[derive(Default)]
pub struct Metrics {
    routes: RwLock<HashMap<(String, String), Arc<RouteStats>>>,
    /// Requests being served now, operations endpoints excluded (a drain
    /// waits for this to reach zero; its own polling must not count).
    in_flight: AtomicI64,
    /// When the last such request started (ms since the Unix epoch): a
    /// drain waits until the load balancer has stopped sending.
    last_started_ms: AtomicU64,
    view_changes: [AtomicU64; VIEW_CHANGE_KINDS.len()],
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts `cluster`'s view changes from now on, until it shuts down.
    pub fn follow(self: &Arc<Self>, cluster: &Cluster) {
        let weak = Arc::downgrade(self);
        cluster.on_change(move |change| {
            let Some(m) = weak.upgrade() else { return };
            let i = match change {
                ViewChange::Joined(_) => 0,
                ViewChange::Suspected(_) => 1,
                ViewChange::Recovered(_) => 2,
                ViewChange::Downed(_) => 3,
                ViewChange::Left(_) => 4,
                ViewChange::SelfDowned => 5,
            };
            m.view_changes[i].fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Requests in flight now (operations endpoints excluded).
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// How long since the last request (operations endpoints excluded)
    /// started; `None` if none ever did.
    pub fn idle_for(&self) -> Option<Duration> {
        match self.last_started_ms.load(Ordering::Relaxed) {
            0 => None,
            t => Some(Duration::from_millis(now_ms().saturating_sub(t))),
        }
    }

    fn stats(&self, method: &str, route: &str) -> Arc<RouteStats> {
        let key = (method.to_string(), route.to_string());
        if let Some(s) = self.routes.read().ok().and_then(|m| m.get(&key).cloned()) {
            return s;
        }
        match self.routes.write() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            // A poisoned map only loses this sample.
            Err(_) => Arc::default(),
        }
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let s = self.stats(method, route);
        let class = (status / 100).clamp(1, 5) as usize - 1;
        s.by_class[class].fetch_add(1, Ordering::Relaxed);
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        s.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        s.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Writes the HTTP and view-change families.
    pub fn write(&self, out: &mut Exposition) {
        let mut routes: Vec<((String, String), Arc<RouteStats>)> = self
            .routes
            .read()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        routes.sort_by(|a, b| a.0.cmp(&b.0));

        out.family(
            "wani_http_requests_total",
            "counter",
            "HTTP responses by method, route template and status class.",
        );
        for ((method, route), s) in &routes {
            for (i, n) in s.by_class.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let class = format!("{}xx", i + 1);
                    out.sample(
                        "wani_http_requests_total",
                        &[("method", method), ("route", route), ("status", &class)],
                        n as f64,
                    );
                }
            }
        }

        out.family(
            "wani_http_request_duration_seconds",
            "histogram",
            "Time from request to response head, by method and route template.",
        );
        for ((method, route), s) in &routes {
            let labels = [("method", method.as_str()), ("route", route.as_str())];
            let mut cumulative = 0u64;
            for (i, b) in s.buckets.iter().enumerate() {
                cumulative += b.load(Ordering::Relaxed);
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "+Inf".to_string());
                out.sample(
                    "wani_http_request_duration_seconds_bucket",
                    &[labels[0], labels[1], ("le", &le)],
                    cumulative as f64,
                );
            }
            out.sample(
                "wani_http_request_duration_seconds_sum",
                &labels,
                s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            );
            out.sample(
                "wani_http_request_duration_seconds_count",
                &labels,
                cumulative as f64,
            );
        }

        out.family(
            "wani_http_requests_in_flight",
            "gauge",
            "Requests being served now (operations endpoints excluded).",
        );
        out.sample("wani_http_requests_in_flight", &[], self.in_flight() as f64);
    }

    /// Writes the view-change counters (cluster nodes only).
    pub fn write_view_changes(&self, out: &mut Exposition) {
        out.family(
            "wani_cluster_view_changes_total",
            "counter",
            "Changes of this node's cluster view, by kind.",
        );
        for (kind, n) in VIEW_CHANGE_KINDS.iter().zip(&self.view_changes) {
            out.sample(
                "wani_cluster_view_changes_total",
                &[("kind", kind)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether a route is an operations endpoint: probes, scrapes and the
/// admin API are not traffic a drain waits for.
fn is_ops(route: &str) -> bool {
    matches!(route, "/metrics" | "/healthz" | "/readyz") || route.starts_with("/api/v1/admin/")
}

/// Decrements the in-flight gauge when the request ends, even if the
/// client went away and the handler's future was dropped.
struct InFlight<'a>(&'a AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Middleware: counts every request by method, route template and status
/// class, and times it.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| UNMATCHED.to_string());
    let method = req.method().as_str().to_string();
    let _guard = (!is_ops(&route)).then(|| {
        metrics.in_flight.fetch_add(1, Ordering::Relaxed);
        metrics.last_started_ms.store(now_ms(), Ordering::Relaxed);
        InFlight(&metrics.in_flight)
    });
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.observe(
        &method,
        &route,
        res.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    res
}

/// A text exposition (format 0.0.4) being written.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a metric family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// One sample line.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", number(value));
    }

    /// One family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// The text.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A label value with `\`, `"` and newlines escaped, as the format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_well_formed() {
        let m = Metrics::default();
        m.observe("GET", "/threads/{id}", 200, 0.002);
        m.observe("GET", "/threads/{id}", 200, 0.2);
        m.observe("GET", "/threads/{id}", 404, 9.0);
        let mut out = Exposition::default();
        m.write(&mut out);
        let text = out.finish();
        assert!(text.contains(
            "wani_http_requests_total{method=\"GET\",route=\"/threads/{id}\",status=\"2xx\"} 2"
        ));
        assert!(text.contains("status=\"4xx\"} 1"));
        assert!(text.contains("le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("le=\"0.5\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 3"));
        assert!(text.contains(
            "wani_http_request_duration_seconds_count{method=\"GET\",route=\"/threads/{id}\"} 3"
        ));
        assert!(text.contains("# TYPE wani_http_request_duration_seconds histogram"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.25), "0.25");
    }
}
