//! Running Rigshift itself: liveness and readiness, and Prometheus metrics (requests by
//! route and status with their latencies, database pool connections, the webhook backlog,
//! idempotency keys running, and how long ago each background job last finished a round).

use axum::{
    body::Body,
    extract::{MatchedPath, State},
    http::{header, HeaderMap, Request, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The background jobs every process runs, and how often each starts a round.
pub const JOBS: [(&str, Duration); 10] = [
    ("webhooks", Duration::from_secs(1)),
    ("occupancy", Duration::from_secs(1)),
    ("mail", Duration::from_secs(2)),
    ("hold_release", Duration::from_secs(5)),
    ("standing_orders", Duration::from_secs(5)),
    ("incidents", Duration::from_secs(5)),
    ("reliability", Duration::from_secs(60)),
    ("forward_credits", Duration::from_secs(60)),
    ("ledger_recognition", Duration::from_secs(60)),
    ("purge_expired", Duration::from_secs(600)),
];

#[derive(Default)]
struct Latencies {
    count: u64,
    sum_secs: f64,
    /// Observations at or under each bound of [`BUCKETS`] (cumulative, as Prometheus wants).
    buckets: [u64; BUCKETS.len()],
}

/// This process's state for operators: whether it is draining, and its metrics.
pub struct Operations {
    draining: AtomicBool,
    started: Instant,
    requests: Mutex<BTreeMap<(String, String, u16), Latencies>>,
    job_rounds: Mutex<BTreeMap<&'static str, Instant>>,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    metrics_token: Option<String>,
}

impl Operations {
    pub fn new(metrics_token: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            metrics_token,
            ..Self::default()
        })
    }

    /// From now on `/readyz` answers 503, so load balancers stop sending new requests
    /// while the ones in flight finish.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// A background job finished a round.
    pub fn job_round(&self, job: &'static str) {
        self.job_rounds
            .lock()
            .expect("metrics lock")
            .insert(job, Instant::now());
    }

    fn observe(&self, route: String, method: String, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut requests = self.requests.lock().expect("metrics lock");
        let l = requests.entry((route, method, status)).or_default();
        l.count += 1;
        l.sum_secs += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                l.buckets[i] += 1;
            }
        }
    }
}

impl Default for Operations {
    fn default() -> Self {
        Self {
            draining: AtomicBool::new(false),
            started: Instant::now(),
            requests: Mutex::default(),
            job_rounds: Mutex::default(),
            metrics_token: None,
        }
    }
}

/// Counts each request under the route that matched it (its pattern, such as
/// `/api/v1/reservations/{id}`, so the label's values stay few), or `unmatched`.
pub async fn record(
    State(ops): State<Arc<Operations>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let res = next.run(req).await;
    ops.observe(route, method, res.status().as_u16(), started.elapsed());
    res
}

/// Liveness: the process answers. Says nothing about the database, so an orchestrator
/// does not restart every server when PostgreSQL is away.
pub async fn livez() -> Response {
    Json(serde_json::json!({ "status": "alive" })).into_response()
}

/// Readiness: 200 while this process should get traffic (the database answers and it is
/// not shutting down), 503 otherwise.
pub async fn readyz(State(ops): State<Arc<Operations>>, State(db): State<PgPool>) -> Response {
    if ops.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "draining" })),
        )
            .into_response();
    }
    if app::services::health::database_answers(&db).await {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "database unavailable" })),
        )
            .into_response()
    }
}

/// The Prometheus text exposition of this process's metrics.
pub async fn metrics(
    State(ops): State<Arc<Operations>>,
    State(db): State<PgPool>,
    headers: HeaderMap,
) -> Response {
    if let Some(token) = &ops.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = presented
            .is_some_and(|p| app::services::token::digests_equal(p.as_bytes(), token.as_bytes()));
        if !ok {
            return (
                StatusCode::UNAUTHORIZED,
                "metrics need the configured token\n",
            )
                .into_response();
        }
    }
    let backlog = app::services::health::backlog(&db).await;
    let text = render(&ops, &db, backlog.ok());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn render(
    ops: &Operations,
    pool: &PgPool,
    backlog: Option<app::services::health::Backlog>,
) -> String {
    let mut out = String::new();
    head(
        &mut out,
        "rigshift_http_requests_total",
        "counter",
        "Requests answered, by route pattern, method and status.",
    );
    head(
        &mut out,
        "rigshift_http_request_duration_seconds",
        "histogram",
        "Time to answer, by route pattern, method and status.",
    );
    {
        let requests = ops.requests.lock().expect("metrics lock");
        for ((route, method, status), l) in requests.iter() {
            let labels = format!(
                "route=\"{}\",method=\"{method}\",status=\"{status}\"",
                label(route)
            );
            let _ = writeln!(out, "rigshift_http_requests_total{{{labels}}} {}", l.count);
            for (bound, n) in BUCKETS.iter().zip(l.buckets) {
                let _ = writeln!(
                    out,
                    "rigshift_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "rigshift_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                l.count
            );
            let _ = writeln!(
                out,
                "rigshift_http_request_duration_seconds_sum{{{labels}}} {}",
                l.sum_secs
            );
            let _ = writeln!(
                out,
                "rigshift_http_request_duration_seconds_count{{{labels}}} {}",
                l.count
            );
        }
    }
    let gauge = |out: &mut String, name: &str, text: &str, value: String| {
        head(out, name, "gauge", text);
        let _ = writeln!(out, "{name} {value}");
    };
    let idle = pool.num_idle() as u64;
    gauge(
        &mut out,
        "rigshift_db_pool_connections",
        "Open database connections in this process's pool.",
        pool.size().to_string(),
    );
    gauge(
        &mut out,
        "rigshift_db_pool_idle_connections",
        "Idle database connections in this process's pool.",
        idle.to_string(),
    );
    gauge(
        &mut out,
        "rigshift_db_pool_max_connections",
        "The pool's limit.",
        pool.options().get_max_connections().to_string(),
    );
    gauge(
        &mut out,
        "rigshift_up",
        "1 when the database answered this scrape's queries.",
        u8::from(backlog.is_some()).to_string(),
    );
    if let Some(b) = backlog {
        gauge(
            &mut out,
            "rigshift_webhook_deliveries_pending",
            "Webhook deliveries not yet delivered nor given up (all processes).",
            b.webhooks_pending.to_string(),
        );
        gauge(
            &mut out,
            "rigshift_webhook_deliveries_due",
            "Pending webhook deliveries whose time has come (all processes).",
            b.webhooks_due.to_string(),
        );
        gauge(
            &mut out,
            "rigshift_idempotency_keys_running",
            "API requests with an Idempotency-Key still running (all processes).",
            b.idempotency_running.to_string(),
        );
    }
    let rounds = ops.job_rounds.lock().expect("metrics lock").clone();
    head(&mut out, "rigshift_job_seconds_since_round", "gauge", "Seconds since each background job last finished a round in this process (since start when none has).");
    for (job, _) in JOBS {
        let since = rounds.get(job).copied().unwrap_or(ops.started).elapsed();
        let _ = writeln!(
            out,
            "rigshift_job_seconds_since_round{{job=\"{job}\"}} {:.3}",
            since.as_secs_f64()
        );
    }
    head(
        &mut out,
        "rigshift_job_interval_seconds",
        "gauge",
        "How often each background job starts a round.",
    );
    for (job, every) in JOBS {
        let _ = writeln!(
            out,
            "rigshift_job_interval_seconds{{job=\"{job}\"}} {}",
            every.as_secs()
        );
    }
    gauge(
        &mut out,
        "rigshift_draining",
        "1 once this process is shutting down.",
        u8::from(ops.is_draining()).to_string(),
    );
    out
}

fn head(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_cumulative_buckets() {
        let ops = Operations::default();
        ops.observe("/x".into(), "GET".into(), 200, Duration::from_millis(30));
        ops.observe("/x".into(), "GET".into(), 200, Duration::from_millis(300));
        let requests = ops.requests.lock().unwrap();
        let l = &requests[&("/x".to_string(), "GET".to_string(), 200)];
        assert_eq!(l.count, 2);
        assert_eq!(l.buckets[2], 0, "0.025 s");
        assert_eq!(l.buckets[3], 1, "0.05 s");
        assert_eq!(l.buckets[6], 2, "0.5 s");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
