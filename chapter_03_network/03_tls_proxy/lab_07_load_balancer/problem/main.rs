//! ## Goal
//! Write `load_balancer`: a reverse proxy (lab 3.6) with several upstreams and one question per
//! request, "which one?". You will spread traffic in turn (round-robin) or towards the least busy
//! upstream (least-connections), notice a dead upstream both passively (its connection is
//! refused: retry elsewhere) and actively (a health check every few seconds), bring a recovered
//! upstream back into rotation, and protect the whole fleet from a greedy client with a per-IP
//! rate limit. The grader runs it like a small production deployment: three upstreams counting
//! requests, one killed in the middle of the traffic and restarted on the same port.
//!
//! ## Requirements
//! 1. Round-robin (the default) takes the healthy upstreams in turn: sequential requests spread
//!    evenly (each upstream within 20% of its fair share), also while one upstream is out.
//!    The balancer prints `listening on <addr>`.
//! 2. `--strategy least-connections` sends each request to the healthy upstream with the fewest
//!    requests in flight (a request is in flight until its response body has been sent); ties are
//!    broken in turn, so sequential requests spread evenly too.
//! 3. Passive health: an upstream that refuses the connection (or does not accept it within 1 s)
//!    is marked down on the spot and the request is retried on the next candidate, so the client
//!    still gets its answer. A marked-down upstream gets no traffic until a health check passes.
//! 4. Active health: every `--health-interval` (the first round one interval after start) each
//!    upstream is asked `GET --health-path`; a 2xx answer within 2 s marks it up (a recovered
//!    upstream rejoins the rotation), anything else marks it down.
//! 5. When no upstream accepts the connection the client gets `502 Bad Gateway`. When every
//!    upstream is marked down the balancer still tries them (marks can be stale), so service
//!    resumes as soon as one is back.
//! 6. `--max-requests-per-minute N`: at most N requests per client IP in any 60-second window;
//!    the next ones get `429 Too Many Requests` with a `Retry-After` header, and never reach an
//!    upstream. Each client IP has its own budget.
//! 7. A wrong command line (no `--upstream`, an unknown strategy, a bad duration, a limit of 0)
//!    exits with code 2.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.7    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: Round-robin (the default) takes the healthy upstreams in turn: sequential
//!   requests spread evenly (each upstream within 20% of its fair share), also while one upstream
//!   is out
//! - [ ] Requirement 2: `--strategy least-connections` sends each request to the healthy upstream
//!   with the fewest requests in flight (a request is in flight until its response body has been
//!   sent); ties are broken in turn, so sequential requests spread evenly too
//! - [ ] Requirement 3: Passive health: an upstream that refuses the connection (or does not accept
//!   it within 1 s) is marked down on the spot and the request is retried on the next candidate, so
//!   the client still gets its answer
//! - [ ] Requirement 4: Active health: every `--health-interval` (the first round one interval
//!   after start) each upstream is asked `GET --health-path`; a 2xx answer within 2 s marks it up
//!   (a recovered upstream rejoins the rotation), anything else marks it down
//! - [ ] Requirement 5: When no upstream accepts the connection the client gets `502 Bad Gateway`
//! - [ ] Requirement 6: `--max-requests-per-minute N`: at most N requests per client IP in any
//!   60-second window; the next ones get `429 Too Many Requests` with a `Retry-After` header, and
//!   never reach an upstream
//! - [ ] Requirement 7: A wrong command line (no `--upstream`, an unknown strategy, a bad duration,
//!   a limit of 0) exits with code 2
//!
//! ## Notes
//!
//! Load balancer: `load_balancer --addr HOST:PORT --upstream A --upstream B ...
//!  [--strategy round-robin|least-connections] [--health-interval 2s] [--health-path /health]
//!  [--max-requests-per-minute N]`
//!
//! Forward each HTTP/1.1 request to one of several upstreams, chosen in turn (round-robin) or
//! by fewest requests in flight (least-connections). An upstream that refuses a connection is
//! marked down and the request goes to another one; a health check on every upstream every
//! `--health-interval` marks them down or up again; nobody reachable gives 502; a client IP
//! over its budget gets 429. Print `listening on <addr>` on stdout once the socket listens.
//! Read README.md for the requirements; `cargo lab test 3.7` grades this file.
//!
//! The command line (`Args`, `parse_duration`) is ready; the signatures below are a
//! suggestion: the grader only runs the binary. Remove the `allow` below once every argument
//! is used.
#![allow(unused_variables)]

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

/// How long connecting to an upstream may take before we call it down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one health check may take, whatever the interval.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The window of the rate limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The command line (ready to use: `Args::parse()`).
#[derive(Debug, Parser)]
#[command(
    name = "load_balancer",
    about = "Spreads HTTP requests over several upstreams"
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// An upstream server; repeat the option for each one.
    #[arg(long = "upstream", required = true)]
    pub upstreams: Vec<SocketAddr>,
    /// How to choose an upstream.
    #[arg(long, value_enum, default_value = "round-robin")]
    pub strategy: Strategy,
    /// Time between two active health checks of each upstream: `500ms`, `2s`.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// The path asked for by health checks; a 2xx answer means healthy.
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// Requests one client IP may make in any 60-second window (no limit when absent).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_requests_per_minute: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    RoundRobin,
    LeastConnections,
}

/// Parses `250ms`, `2s`, `1.5s` or a plain number of seconds (ready to use).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(Duration::from_secs_f64(n * unit)),
        _ => Err(format!(
            "not a positive duration like 500ms or 2s: {text:?}"
        )),
    }
}

/// One upstream and what we know about it: healthy or not, requests in flight (atomics, so
/// request tasks and the health task share it without a lock).
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    // Your fields.
}

/// The upstreams and the strategy that orders them.
pub struct Pool {
    // Your fields.
}

impl Pool {
    pub fn new(addrs: &[SocketAddr], strategy: Strategy) -> Pool {
        todo!("every backend starts healthy with 0 in flight")
    }

    /// The backends to try for one request, best first: the healthy ones (all of them when
    /// none is healthy), rotated so that turns are taken evenly, and for least-connections
    /// sorted by requests in flight (ties keep the rotation).
    pub fn candidates(&self) -> Vec<Arc<Backend>> {
        todo!("filter healthy, rotate by a turn counter, sort by in-flight for least-connections")
    }
}

/// At most `limit` requests per client IP in any [`RATE_WINDOW`].
pub struct RateLimiter {
    // Your fields.
}

impl RateLimiter {
    pub fn new(limit: u32) -> RateLimiter {
        todo!("a map from IP to the times of its recent requests")
    }

    /// `Ok` when `ip` may make a request now, else how long until it may (for `Retry-After`).
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        todo!("drop the times older than the window, compare with the limit, record now")
    }
}

pub type LbBody = BoxBody<Bytes, hyper::Error>;

/// Everything a request handler needs.
pub struct Balancer {
    // Your fields: the pool (shared with the health task), the optional rate limiter.
}

impl Balancer {
    /// Rate limit (429 with `Retry-After`), then try the candidates in order: connect (at most
    /// CONNECT_TIMEOUT); a failed connect marks the backend down and moves on; once connected,
    /// send the request there (`hyper::client::conn::http1::handshake`) and stream the
    /// response back, counting the request in flight until its body is done. 502 when no
    /// backend accepts the connection or the chosen one fails.
    pub async fn handle(&self, req: Request<Incoming>, client: SocketAddr) -> Response<LbBody> {
        todo!("rate limit, pick, connect with retry, forward")
    }
}

/// Asks every backend for `path` every `interval` (the first round one interval after start):
/// a 2xx within HEALTH_TIMEOUT marks it up, anything else down.
pub async fn health_checks(pool: Arc<Pool>, path: String, interval: Duration) {
    todo!("tokio::time::interval_at, one check per backend, set the health flags")
}

/// Accepts clients forever, one task per connection, hyper's HTTP/1.1 server calling
/// `Balancer::handle`.
pub async fn serve(listener: TcpListener, balancer: Arc<Balancer>) {
    todo!("accept, spawn, http1::Builder::new().serve_connection(..)")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!("Args::parse, bind, spawn the health checks, print `listening on <addr>`, serve")
}
