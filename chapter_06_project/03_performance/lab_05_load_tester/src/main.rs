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
//! The items below are a suggested shape (the benchmark calls `parse_args` and `load_test`).
//! Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

pub const USAGE: &str = "usage: ch6_load_tester [-c CONNECTIONS] [-d DURATION | -n REQUESTS] \
[--rate REQ_PER_SEC] [--timeout DURATION] [--json] http://HOST:PORT/PATH";

/// When to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    Duration(Duration),
    Requests(u64),
}

/// The command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub connections: usize,
    pub stop: Stop,
    /// Open-loop mode: requests per second over all connections.
    pub rate: Option<f64>,
    pub timeout: Duration,
    pub json: bool,
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

/// Parses `-c`, `-d` (`10s`, `500ms`, `2m`), `-n`, `--rate`, `--timeout`, `--json` and the URL.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Config, String> {
    todo!("parse the command line; only http:// URLs")
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
    todo!("parse_args (exit 2 with USAGE on error), load_test, print JSON or text")
}
