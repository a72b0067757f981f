//! ## Goal
//! Write the tool you will measure the capstone with: a load tester in the spirit of `wrk` and
//! `oha`. It keeps `-c` connections alive, runs for `-d` or exactly `-n` requests, and can send at
//! a constant rate (`--rate`) measuring latency from the *intended* send time, which is the cure
//! for coordinated omission (see `../theory.md`). Latencies go into an HDR histogram; the report
//! gives p50, p90, p99, p99.9, max, req/s, statuses, errors by kind, and a text histogram.
//!
//! ## Requirements
//! 1. `-n N` sends exactly N requests over at most `-c` kept-alive connections, which send
//!    concurrently: with `-c N`, N requests are in flight at once.
//! 2. Percentiles come from one HDR histogram of every request of every connection and match the
//!    latency the server injected.
//! 3. `--rate R` sends request `i` at `start + i/R` and measures its latency from that instant: a
//!    server stall is charged to every request that was due during it. The pace is never faster
//!    than R.
//! 4. Statuses are counted by code (a 503 is a response, not an error); failures are counted by
//!    kind: `connect` (refused), `timeout` (no response within `--timeout`), `io`. A refused
//!    connection is reported, never hangs.
//! 5. `-d` runs for the given time; the text report shows the percentiles, req/s, statuses and a
//!    text histogram; bad arguments print the usage and exit 2.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 6.5    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `-n N` sends exactly N requests over at most `-c` kept-alive connections,
//!   which send concurrently: with `-c N`, N requests are in flight at once
//! - [ ] Requirement 2: Percentiles come from one HDR histogram of every request of every
//!   connection and match the latency the server injected
//! - [ ] Requirement 3: `--rate R` sends request `i` at `start + i/R` and measures its latency from
//!   that instant: a server stall is charged to every request that was due during it
//! - [ ] Requirement 4: Statuses are counted by code (a 503 is a response, not an error); failures
//!   are counted by kind: `connect` (refused), `timeout` (no response within `--timeout`), `io`
//! - [ ] Requirement 5: `-d` runs for the given time; the text report shows the percentiles, req/s,
//!   statuses and a text histogram; bad arguments print the usage and exit 2
//!
//! ## Notes
//!
//! A load tester in the spirit of wrk and oha: `ch6_load_tester [options] http://host:port/path`.
//!
//! Read README.md for the options and the report; `cargo lab test 6.5` grades this file
//! against a server inside the test whose delays are known.
//!
//! The items below are a suggested shape (the benchmark calls `Config::try_parse_from` and
//! `load_test`). The command line is written for you. Remove the `allow` below once everything
//! is used.
#![allow(unused_variables, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
use hyper::Uri;
use serde::Serialize;

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this long (requests in flight at the deadline are still counted).
    Duration(Duration),
    /// After exactly this many requests (successful or not).
    Requests(u64),
}

/// Where the requests go: the URL, resolved once, up front (DNS is not what we measure).
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// What to put in the `Host` header and in the request line.
    pub host: String,
    pub path: String,
}

/// The command line, ready to use: `Config::from_args()` in main.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "ch6_load_tester",
    about = "Load an HTTP server over kept-alive connections, like wrk and oha, and report the \
             latency percentiles from an HDR histogram",
    override_usage = "ch6_load_tester [-c N] [-d DURATION | -n N] [--rate R] [--timeout DURATION] \
                      [--json] URL"
)]
pub struct Config {
    /// Connections kept alive, each with one request in flight at a time
    #[arg(
        short = 'c',
        long,
        value_name = "N",
        default_value_t = 10,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub connections: usize,
    /// Run for this long: 10s, 500ms, 2m [default: 10s]
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Send exactly this many requests, then stop
    #[arg(
        short = 'n',
        long,
        value_name = "N",
        conflicts_with = "duration",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub requests: Option<u64>,
    /// Open loop: this many requests per second over all connections, each one's latency
    /// measured from the moment it was due
    #[arg(
        long,
        value_name = "REQ_PER_SEC",
        allow_negative_numbers = true,
        value_parser = parse_rate
    )]
    pub rate: Option<f64>,
    /// A request without a complete response after this long is a `timeout` error
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as one line of JSON
    #[arg(long)]
    pub json: bool,
    /// The server: http://HOST:PORT/PATH
    #[arg(value_name = "URL", value_parser = parse_target)]
    pub target: Target,
}

impl Config {
    /// `Config::parse()`, with the usage in every error message: clap prints it after an unknown
    /// option but not after a bad value, and requirement 5 wants it. `--help` exits 0, a bad
    /// argument 2.
    pub fn from_args() -> Config {
        Config::try_parse().unwrap_or_else(|mut e| {
            if e.use_stderr() && e.get(ContextKind::Usage).is_none() {
                let usage = Config::command().render_usage();
                e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
            }
            e.exit()
        })
    }

    /// `-n`, else `-d`, else 10 seconds.
    pub fn stop(&self) -> Stop {
        match (self.requests, self.duration) {
            (Some(n), _) => Stop::Requests(n),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        }
    }
}

/// Parses `10s`, `500ms`, `2m`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let bad = || format!("{text:?} is not a duration (try 10s, 500ms or 2m)");
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| *v > 0.0 && v.is_finite())
        .ok_or_else(bad)?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse()
        .ok()
        .filter(|r: &f64| *r > 0.0 && r.is_finite())
        .ok_or_else(|| format!("{text:?} is not a positive number"))
}

/// An `http://` URL, its host resolved.
pub fn parse_target(url: &str) -> Result<Target, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// URLs are supported".into());
    }
    let host = uri.host().ok_or("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(80);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or(format!("{host} has no address"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok(Target {
        addr,
        host: format!("{host}:{port}"),
        path,
    })
}

/// Why a request failed; serialized in lowercase (`connect`, `timeout`, `io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Connect,
    Timeout,
    Io,
}

/// Latency percentiles in milliseconds (from an `hdrhistogram::Histogram`).
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub mean: f64,
}

/// The summary `--json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    pub requests: u64,
    pub ok: u64,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub elapsed_s: f64,
    pub rps: f64,
    pub latency_ms: Percentiles,
}

/// Runs the whole test (`-c` kept-alive connections, closed loop or `--rate`) on a tokio
/// runtime of its own and returns the report.
pub fn load_test(config: &Config) -> Report {
    todo!("connections, a shared request counter, HDR histograms merged at the end")
}

fn main() -> ExitCode {
    todo!(
        "Config::from_args() (exit 2 with the usage on a bad argument), load_test, print JSON \
         or text"
    )
}
