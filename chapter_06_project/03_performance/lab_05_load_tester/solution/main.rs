//! A load tester in the spirit of wrk and oha: `ch6_load_tester [options] http://host:port/path`.
//!
//! Two ways to generate load:
//! - **closed loop** (default, like wrk): each of `-c` connections sends a request, waits for the
//!   response, sends the next. Latency is measured from send to response. When the server
//!   stalls, the tester stops sending too: it *coordinates* with the server and under-reports
//!   exactly the slow moments (coordinated omission).
//! - **open loop** (`--rate R`, like wrk2 and oha's `-q`): request `i` is *due* at
//!   `start + i / R`, whatever the server does. Latency is measured from that intended time, so
//!   a request that could not even be sent because the server was stuck is charged for the wait,
//!   as a real user arriving at that moment would be.
//!
//! Latencies go into an HDR histogram (fixed memory, 3 significant digits at any magnitude),
//! one per connection, merged at the end: no lock on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::error::{ContextKind, ContextValue};
use clap::{CommandFactory, Parser};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

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

/// The command line.
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

// ---------------------------------------------------------------------------------------------
// Results

/// Why a request failed (a response with any status is not a failure: see `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// The TCP connection could not be made (refused, unreachable).
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection broke mid-request (reset, closed early, malformed response).
    Io,
}

/// What one connection saw; merged into the final report.
pub struct Tally {
    pub latency_us: Histogram<u64>,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            // 1 µs to 10 min, 3 significant digits: about 200 KiB whatever the traffic.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us.add(&other.latency_us).expect("same bounds");
        for (code, n) in other.status {
            *self.status.entry(code).or_default() += n;
        }
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

/// Latency percentiles in milliseconds.
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
    /// Requests attempted: responses plus errors.
    pub requests: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    pub status: BTreeMap<u16, u64>,
    pub errors: BTreeMap<ErrorKind, u64>,
    pub elapsed_s: f64,
    /// Responses (any status) per second of wall time.
    pub rps: f64,
    pub latency_ms: Percentiles,
    /// `(upper bound in ms, count)` rows of the text histogram.
    #[serde(skip)]
    pub histogram: Vec<(f64, u64)>,
}

impl Report {
    fn new(tally: &Tally, elapsed: Duration) -> Report {
        let h = &tally.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let responses: u64 = tally.status.values().sum();
        let errors: u64 = tally.errors.values().sum();
        Report {
            requests: responses + errors,
            ok: tally
                .status
                .iter()
                .filter(|(code, _)| (200..300).contains(*code))
                .map(|(_, n)| n)
                .sum(),
            status: tally.status.clone(),
            errors: tally.errors.clone(),
            elapsed_s: elapsed.as_secs_f64(),
            rps: responses as f64 / elapsed.as_secs_f64().max(1e-9),
            latency_ms: Percentiles {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                p99_9: ms(h.value_at_quantile(0.999)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            },
            histogram: text_buckets(h),
        }
    }

    /// The human-readable report.
    pub fn to_text(&self, config: &Config) -> String {
        let mut out = String::new();
        let mode = match config.rate {
            Some(rate) => format!("constant rate {rate} req/s (latency from intended send time)"),
            None => "closed loop".to_string(),
        };
        let _ = writeln!(out, "{} connections, {mode}", config.connections);
        let _ = writeln!(
            out,
            "{} requests in {:.2}s, {:.1} req/s, {} ok",
            self.requests, self.elapsed_s, self.rps, self.ok
        );
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "latency: p50 {:.3}ms  p90 {:.3}ms  p99 {:.3}ms  p99.9 {:.3}ms  max {:.3}ms  mean {:.3}ms",
            l.p50, l.p90, l.p99, l.p99_9, l.max, l.mean
        );
        let status: Vec<String> = self
            .status
            .iter()
            .map(|(c, n)| format!("{c}: {n}"))
            .collect();
        let _ = writeln!(out, "status: {}", status.join(", "));
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, n)| format!("{}: {n}", format!("{k:?}").to_lowercase()))
            .collect();
        let _ = writeln!(
            out,
            "errors: {}",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            }
        );
        let widest = self
            .histogram
            .iter()
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0)
            .max(1);
        let _ = writeln!(out, "latency distribution (ms):");
        for (upper, n) in &self.histogram {
            let bar = "#".repeat((n * 40).div_ceil(widest) as usize);
            let _ = writeln!(out, "  <= {upper:>10.3} | {bar:<40} {n}");
        }
        out
    }
}

/// Ten rows, log-spaced between the smallest and largest latency: latency distributions have
/// long tails, and linear buckets would put everything but the tail in the first row.
fn text_buckets(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = (h.min().max(1) as f64, h.max().max(1) as f64);
    let ratio = (hi / lo).max(1.0001).powf(1.0 / 10.0);
    let mut rows = Vec::new();
    let mut below = 0;
    for i in 1..=10 {
        let upper = if i == 10 {
            h.max()
        } else {
            (lo * ratio.powi(i)) as u64
        };
        let upto = h.count_between(0, upper);
        rows.push((upper as f64 / 1000.0, upto - below));
        below = upto;
    }
    rows
}

// ---------------------------------------------------------------------------------------------
// Load generation

/// Shared by the connections: who sends which request, and when to stop.
struct Plan {
    start: Instant,
    stop: Stop,
    rate: Option<f64>,
    next: AtomicU64,
}

impl Plan {
    /// Claims the next request: its index and the instant it is due. `None` when done.
    /// With `-n` the shared counter makes the total exact however connections race.
    fn claim(&self) -> Option<Instant> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let due = match self.rate {
            Some(rate) => self.start + Duration::from_secs_f64(i as f64 / rate),
            None => Instant::now(),
        };
        match self.stop {
            Stop::Requests(n) if i >= n => None,
            Stop::Duration(d) if due >= self.start + d => None,
            _ => Some(due),
        }
    }
}

type Sender = SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, ErrorKind> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    // Small requests, latency matters: do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::Io)?;
    // hyper splits a connection in two: `sender` issues requests, `connection` drives the
    // socket. It must be polled, so it gets a task of its own.
    tokio::spawn(connection);
    Ok(sender)
}

/// One request on a kept-alive connection; the body is read to the end so the connection is
/// reusable. Returns the status.
async fn exchange(sender: &mut Sender, config: &Config) -> Result<u16, ErrorKind> {
    sender.ready().await.map_err(|_| ErrorKind::Io)?;
    let request = Request::get(config.target.path.as_str())
        .header(hyper::header::HOST, config.target.host.as_str())
        .body(Empty::new())
        .expect("a valid request");
    let response = sender
        .send_request(request)
        .await
        .map_err(|_| ErrorKind::Io)?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|_| ErrorKind::Io)?;
    Ok(status)
}

/// One connection's loop: claim a request, wait until it is due, send it, record it.
async fn connection_loop(config: Arc<Config>, plan: Arc<Plan>) -> Tally {
    let mut tally = Tally::new();
    let mut sender: Option<Sender> = None;
    while let Some(due) = plan.claim() {
        // Only sleep when the request is really due later: tokio's timer has millisecond
        // granularity, so even a sleep until "now" costs up to a millisecond per request.
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        // Closed loop: the clock starts now. Open loop: it started when the request was due.
        let started = if plan.rate.is_some() {
            due
        } else {
            Instant::now()
        };
        let attempt = async {
            let conn = match sender.take() {
                Some(conn) => conn,
                None => connect(config.target.addr).await?,
            };
            let mut conn = conn;
            let status = exchange(&mut conn, &config).await?;
            Ok::<_, ErrorKind>((conn, status))
        };
        match tokio::time::timeout(config.timeout, attempt).await {
            Ok(Ok((conn, status))) => {
                let us = started.elapsed().as_micros().max(1) as u64;
                tally.latency_us.saturating_record(us);
                *tally.status.entry(status).or_default() += 1;
                sender = Some(conn);
            }
            // On any failure the connection is dropped (its state is unknown) and the next
            // request opens a new one.
            Ok(Err(kind)) => *tally.errors.entry(kind).or_default() += 1,
            Err(_) => *tally.errors.entry(ErrorKind::Timeout).or_default() += 1,
        }
    }
    tally
}

/// Runs the whole test on a runtime of its own and returns the report.
pub fn load_test(config: &Config) -> Report {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let config = Arc::new(config.clone());
        let plan = Arc::new(Plan {
            start: Instant::now(),
            stop: config.stop(),
            rate: config.rate,
            next: AtomicU64::new(0),
        });
        let workers: Vec<_> = (0..config.connections)
            .map(|_| tokio::spawn(connection_loop(config.clone(), plan.clone())))
            .collect();
        let mut total = Tally::new();
        for worker in workers {
            total.merge(worker.await.expect("a connection task panicked"));
        }
        Report::new(&total, plan.start.elapsed())
    })
}

fn main() -> ExitCode {
    let config = Config::from_args();
    let report = load_test(&config);
    if config.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("the report serializes")
        );
    } else {
        print!("{}", report.to_text(&config));
    }
    ExitCode::SUCCESS
}
