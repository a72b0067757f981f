//! ## Goal
//! Give lab 6.2's service a `/metrics` endpoint in the Prometheus text format with the
//! `prometheus` crate: a request counter labelled by route *template* and status, a latency
//! histogram with sensible buckets, an in-flight gauge, and gauges of the database pool. Labels
//! stay bounded, so the number of time series does not grow with the number of notes.
//!
//! ## Requirements
//! 1. `http_requests_total{method,route,status}` (counter) counts every API request; `route` is
//!    the route template (`/notes/{id}`), `unmatched` for unknown paths; `/metrics` itself is not
//!    counted.
//! 2. `http_request_duration_seconds{method,route}` (histogram) has at least 8 buckets, the first
//!    at most 5 ms, the last finite one at least 1 s; `_count` equals the requests served, and each
//!    request is observed in seconds, from the moment it reaches the service to its response.
//! 3. `http_requests_in_flight` (gauge) is the number of requests being served, back to 0 when
//!    clients hang up mid-request;
//!    `db_pool_connections{state="idle"|"in_use"}` and `db_pool_max_connections` (gauges) describe
//!    the pool at scrape time.
//! 4. `/metrics` answers `text/plain` with `# HELP` and `# TYPE` for each of the five metrics.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 6.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `http_requests_total{method,route,status}` (counter) counts every API
//!   request; `route` is the route template (`/notes/{id}`), `unmatched` for unknown paths;
//!   `/metrics` itself is not counted
//! - [ ] Requirement 2: `http_request_duration_seconds{method,route}` (histogram) has at least 8
//!   buckets, the first at most 5 ms, the last finite one at least 1 s; `_count` equals the
//!   requests served, and each request is observed in seconds, from the moment it reaches the
//!   service to its response
//! - [ ] Requirement 3: `http_requests_in_flight` (gauge) is the number of requests being served,
//!   back to 0 when clients hang up mid-request; `db_pool_connections{state="idle"|"in_use"}` and
//!   `db_pool_max_connections` (gauges) describe the pool at scrape time
//! - [ ] Requirement 4: `/metrics` answers `text/plain` with `# HELP` and `# TYPE` for each of the
//!   five metrics
//!
//! ## Notes
//!
//! Notes API with Prometheus metrics: lab 2's service, measurable from `/metrics`.
//!
//! Read README.md for the requirements; `cargo lab test 6.4` grades this file by scraping
//! `/metrics` after a known sequence of requests. The server takes `--addr`, `--database-url`
//! and `--max-connections`, like lab 2.
//!
//! Start by copying your lab 2 solution here; the items below are what is new. Remove the
//! `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::process::ExitCode;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use sqlx::postgres::PgPool;

/// Latency buckets, in seconds: choose them (README.md says what the grader expects).
pub const LATENCY_BUCKETS: [f64; 0] = [];

/// The service's metrics, in a registry of their own:
/// `http_requests_total{method,route,status}`, `http_request_duration_seconds{method,route}`,
/// `http_requests_in_flight`, `db_pool_connections{state="idle"|"in_use"}`,
/// `db_pool_max_connections`.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    in_flight: IntGauge,
    pool_connections: IntGaugeVec,
}

impl Metrics {
    pub fn new(max_connections: u32) -> Metrics {
        todo!("create and register the five metrics")
    }
}

/// Middleware around the API routes (not `/metrics`): in-flight gauge, counter, histogram.
/// The `route` label is the route template (`axum::extract::MatchedPath`), `unmatched` for
/// unknown paths.
async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    todo!("inc in-flight, run, dec, count and observe with bounded labels")
}

/// `GET /metrics`: refresh the pool gauges from `pool.size()` / `pool.num_idle()`, then
/// encode the registry with `prometheus::TextEncoder`.
async fn scrape(State((metrics, pool)): State<(Arc<Metrics>, PgPool)>) -> Response {
    todo!("pool gauges, TextEncoder, Content-Type")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!(
        "lab 2's main and its clap `Config` (`Config::parse()`: `--help`, exit code 2 on a bad \
         argument), with the metrics layer and the /metrics route"
    )
}
