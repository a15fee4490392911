//! `GET /metrics` in the Prometheus text format (version 0.0.4): what this process served (HTTP
//! requests by route, method and status, with latency histograms; checkouts, heartbeats,
//! releases, borrowings, activations, validations and removals by outcome), its database pool,
//! and from the database the seats in use and their count, and the refusals, per pool and
//! feature (the same on every replica). Served on the main address only to a caller with its own
//! bearer token (`LICENTIA_METRICS_TOKEN`), or without one on a separate address
//! (`LICENTIA_METRICS_LISTEN`), or not at all.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use licensing::Licentia;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The upper bounds (seconds) of the request latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations at most each bound (not cumulative; added up when written).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

#[derive(Default)]
struct Registry {
    requests: BTreeMap<(String, &'static str, u16), u64>,
    latency: BTreeMap<(String, &'static str), Histogram>,
    operations: BTreeMap<(&'static str, &'static str), u64>,
}

/// What this process counted since it started.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            registry: Arc::default(),
            started: Instant::now(),
        }
    }
}

/// The licensing operations counted apart, by the route that serves them.
fn operation(method: &Method, route: &str) -> Option<&'static str> {
    if method != Method::POST {
        return None;
    }
    Some(match route {
        "/api/v1/seats" => "checkout",
        "/api/v1/seats/{id}/heartbeat" => "heartbeat",
        "/api/v1/seats/{id}/release" => "release",
        "/api/v1/seats/{id}/borrow" => "borrow",
        "/api/v1/activations" => "activation",
        "/api/v1/activations/validate" => "validation",
        "/api/v1/activations/remove" => "removal",
        _ => return None,
    })
}

/// An operation's outcome by its status: done, refused (the caller's request was not granted:
/// 4xx, e.g. every seat taken) or failed (5xx).
fn outcome(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "error"
    } else if status.is_client_error() {
        "refused"
    } else {
        "ok"
    }
}

impl Metrics {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic while counting leaves counts that are still counts.
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one answered request.
    pub fn record(&self, method: &Method, route: &str, status: StatusCode, secs: f64) {
        let m = method_label(method);
        let mut r = self.registry();
        *r.requests
            .entry((route.to_owned(), m, status.as_u16()))
            .or_default() += 1;
        r.latency
            .entry((route.to_owned(), m))
            .or_default()
            .observe(secs);
        if let Some(op) = operation(method, route) {
            *r.operations.entry((op, outcome(status))).or_default() += 1;
        }
    }

    /// The whole text a scrape receives.
    pub async fn render(&self, services: &Licentia, db_max: u32) -> licensing::Result<String> {
        let seats = services.seat_figures().await?;
        let mut out = String::new();
        family(
            &mut out,
            "licentia_seats_in_use",
            "gauge",
            "Seats (or tokens) of a feature in use now, per pool.",
        );
        for s in &seats {
            sample(
                &mut out,
                "licentia_seats_in_use",
                &seat_labels(s),
                s.in_use as f64,
            );
        }
        family(
            &mut out,
            "licentia_seats_count",
            "gauge",
            "Seats (or tokens) of a feature its keys in force hold today, per pool.",
        );
        for s in &seats {
            sample(
                &mut out,
                "licentia_seats_count",
                &seat_labels(s),
                s.count as f64,
            );
        }
        family(
            &mut out,
            "licentia_refusals_total",
            "counter",
            "Checkouts of a feature refused for want of a seat or a fitting key, per pool, as \
             the database keeps them (every replica says the same).",
        );
        for s in &seats {
            sample(
                &mut out,
                "licentia_refusals_total",
                &seat_labels(s),
                s.refusals as f64,
            );
        }
        let pool = services.db().pool();
        let size = f64::from(pool.size());
        let idle = pool.num_idle() as f64;
        family(
            &mut out,
            "licentia_db_connections",
            "gauge",
            "This process's database connections, by state.",
        );
        sample(
            &mut out,
            "licentia_db_connections",
            &[("state", "in_use")],
            (size - idle).max(0.0),
        );
        sample(
            &mut out,
            "licentia_db_connections",
            &[("state", "idle")],
            idle,
        );
        family(
            &mut out,
            "licentia_db_connections_max",
            "gauge",
            "The most database connections this process opens.",
        );
        sample(
            &mut out,
            "licentia_db_connections_max",
            &[],
            f64::from(db_max),
        );
        let r = self.registry();
        family(
            &mut out,
            "licentia_operations_total",
            "counter",
            "Licensing operations this process answered, by outcome (ok; refused: a 4xx such as \
             every seat taken; error: a 5xx).",
        );
        for ((op, result), n) in &r.operations {
            sample(
                &mut out,
                "licentia_operations_total",
                &[("operation", op), ("outcome", result)],
                *n as f64,
            );
        }
        family(
            &mut out,
            "licentia_http_requests_total",
            "counter",
            "HTTP requests this process answered, by route, method and status.",
        );
        for ((route, method, status), n) in &r.requests {
            sample(
                &mut out,
                "licentia_http_requests_total",
                &[
                    ("route", route),
                    ("method", method),
                    ("status", &status.to_string()),
                ],
                *n as f64,
            );
        }
        family(
            &mut out,
            "licentia_http_request_duration_seconds",
            "histogram",
            "How long this process took to answer, by route and method.",
        );
        for ((route, method), h) in &r.latency {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                cumulative += n;
                sample(
                    &mut out,
                    "licentia_http_request_duration_seconds_bucket",
                    &[
                        ("route", route),
                        ("method", method),
                        ("le", &bound.to_string()),
                    ],
                    cumulative as f64,
                );
            }
            let labels = [("route", route.as_str()), ("method", *method)];
            sample(
                &mut out,
                "licentia_http_request_duration_seconds_bucket",
                &[labels[0], labels[1], ("le", "+Inf")],
                h.count as f64,
            );
            sample(
                &mut out,
                "licentia_http_request_duration_seconds_sum",
                &labels,
                h.sum,
            );
            sample(
                &mut out,
                "licentia_http_request_duration_seconds_count",
                &labels,
                h.count as f64,
            );
        }
        family(
            &mut out,
            "licentia_uptime_seconds",
            "gauge",
            "Seconds since this process began counting.",
        );
        sample(
            &mut out,
            "licentia_uptime_seconds",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
        Ok(out)
    }
}

/// A pool is named by its id only: its owner's name could be a serial, which checks out seats.
fn seat_labels(s: &licensing::floating::SeatFigures) -> [(&'static str, &str); 3] {
    [
        ("pool_id", &s.pool_id_text),
        ("editor", &s.editor),
        ("feature", &s.feature),
    ]
}

/// A method as a label: the usual ones by name, anything else as `other` (any word is a method
/// to HTTP, and a label value per word would grow without end).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// A sample value: integers without a fraction, `+Inf`, `-Inf` and `NaN` as the format spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A label value as the format writes it: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Counts every request the router answers (the innermost layer but one: the route is known).
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_owned(), |m| m.as_str().to_owned());
    let start = Instant::now();
    let res = next.run(req).await;
    metrics.record(&method, &route, res.status(), start.elapsed().as_secs_f64());
    res
}

/// How `/metrics` is reached on the main address.
#[derive(Clone)]
pub struct Access {
    /// The token a scraper sends (`Authorization: Bearer …`); none: not on this address.
    pub token: Option<Arc<str>>,
}

/// Whether `headers` carry `token` as a bearer token (compared in constant time).
fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
    else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The scrape itself: `text/plain; version=0.0.4`.
pub async fn scrape(metrics: &Metrics, services: &Licentia, db_max: u32) -> Response {
    match metrics.render(services, db_max).await {
        Ok(text) => {
            let mut res = text.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            res
        }
        Err(e) => {
            tracing::warn!(error = %e, "the metrics could not be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "The database did not answer.\n",
            )
                .into_response()
        }
    }
}

/// `/metrics` on the main address: 404 unless a token is configured, 401 without it.
pub async fn scrape_with_token(
    State(state): State<crate::AppState>,
    headers: HeaderMap,
) -> Response {
    let Some(token) = state.metrics_access.token.as_deref() else {
        return (
            StatusCode::NOT_FOUND,
            "Metrics are not served here: set LICENTIA_METRICS_TOKEN, or LICENTIA_METRICS_LISTEN \
             for an address of their own.\n",
        )
            .into_response();
    };
    if !bearer_is(&headers, token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Send the metrics token: Authorization: Bearer ….\n",
        )
            .into_response();
    }
    scrape(&state.metrics, &state.services, state.db_max).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_values_are_written_as_the_format_says() {
        let mut out = String::new();
        sample(
            &mut out,
            "m",
            &[("pool", "a \"b\"\\c\nd"), ("le", "0.5")],
            3.0,
        );
        assert_eq!(out, "m{pool=\"a \\\"b\\\"\\\\c\\nd\",le=\"0.5\"} 3\n");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }

    #[test]
    fn requests_are_counted_with_their_operation_and_bucket() {
        let m = Metrics::default();
        m.record(&Method::POST, "/api/v1/seats", StatusCode::CREATED, 0.003);
        m.record(&Method::POST, "/api/v1/seats", StatusCode::FORBIDDEN, 0.2);
        m.record(&Method::GET, "/api/v1/seats", StatusCode::OK, 9.0);
        let r = m.registry();
        assert_eq!(r.operations.get(&("checkout", "ok")), Some(&1));
        assert_eq!(r.operations.get(&("checkout", "refused")), Some(&1));
        let h = r
            .latency
            .get(&("/api/v1/seats".to_owned(), "POST"))
            .expect("histogram");
        assert_eq!((h.count, h.counts[2], h.counts[7]), (2, 1, 1));
        let slow = r
            .latency
            .get(&("/api/v1/seats".to_owned(), "GET"))
            .expect("histogram");
        assert_eq!(
            (slow.count, slow.counts.iter().sum::<u64>()),
            (1, 0),
            "past every bound: +Inf only"
        );
    }

    #[test]
    fn made_up_methods_add_no_label_values() {
        let m = Metrics::default();
        for i in 0..100 {
            let method = Method::from_bytes(format!("FOO{i}").as_bytes()).expect("a method");
            m.record(&method, "other", StatusCode::METHOD_NOT_ALLOWED, 0.001);
        }
        let r = m.registry();
        assert_eq!(r.requests.len(), 1);
        assert_eq!(
            r.requests.get(&("other".to_owned(), "other", 405)),
            Some(&100)
        );
        assert_eq!(r.latency.len(), 1);
    }

    #[test]
    fn only_the_token_opens_the_main_address_s_metrics() {
        let mut h = HeaderMap::new();
        assert!(!bearer_is(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert!(!bearer_is(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(bearer_is(&h, "s3cret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert!(!bearer_is(&h, "s3cret"));
    }
}
