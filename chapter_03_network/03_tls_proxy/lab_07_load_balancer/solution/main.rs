//! Load balancer: `load_balancer --addr HOST:PORT --upstream A --upstream B ...
//!  [--strategy round-robin|least-connections] [--health-interval 2s] [--health-path /health]
//!  [--max-requests-per-minute N]`
//!
//! A reverse proxy (lab 3.6) with several upstreams and the question "which one?":
//!
//! - **Strategy**: round-robin takes the healthy upstreams in turn; least-connections takes
//!   the one with the fewest requests in flight, which adapts when one upstream is slow. Ties
//!   are broken in turn, so sequential traffic still spreads evenly.
//! - **Passive health**: an upstream that refuses the connection is marked down on the spot
//!   and the request goes to the next candidate. Retrying is safe *only* because nothing was
//!   sent yet: once the request (and its body) left, a failure is a 502, never a replay.
//! - **Active health**: every `--health-interval` a task asks each upstream for
//!   `--health-path`; a 2xx marks it up (a recovered upstream rejoins), anything else down.
//! - **Rate limit**: at most N requests per client IP in any 60-second window, else 429.
//!
//! Each forwarded request gets its own upstream connection: the in-flight count is then
//! simply "connections open", and a retry never races with a pooled connection. A production
//! balancer keeps a pool per upstream (lab 3.6's client does).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::client::conn::http1 as client_http1;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// How long connecting to an upstream may take before we call it down.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one health check may take, whatever the interval: a loaded upstream that answers
/// in 300 ms is slow, not dead.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The window of the rate limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The command line.
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

/// Parses `250ms`, `2s`, `1.5s` or a plain number of seconds.
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

/// One upstream and what we know about it.
#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    healthy: AtomicBool,
    in_flight: AtomicUsize,
}

impl Backend {
    /// Records a health verdict; logs only the changes, which is what an operator wants.
    fn set_healthy(&self, healthy: bool, why: &str) {
        if self.healthy.swap(healthy, Ordering::SeqCst) != healthy {
            let state = if healthy { "up" } else { "down" };
            eprintln!("load_balancer: upstream {} is {state} ({why})", self.addr);
        }
    }
}

/// Counts a request in flight on a backend until dropped.
pub struct InFlight(Arc<Backend>);

impl InFlight {
    fn new(backend: Arc<Backend>) -> InFlight {
        backend.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(backend)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The upstreams and the strategy that orders them.
pub struct Pool {
    backends: Vec<Arc<Backend>>,
    strategy: Strategy,
    turn: AtomicUsize,
}

impl Pool {
    pub fn new(addrs: &[SocketAddr], strategy: Strategy) -> Pool {
        let backends = addrs
            .iter()
            .map(|&addr| {
                Arc::new(Backend {
                    addr,
                    // Up until proven otherwise: the first requests need not wait for a check.
                    healthy: AtomicBool::new(true),
                    in_flight: AtomicUsize::new(0),
                })
            })
            .collect();
        Pool {
            backends,
            strategy,
            turn: AtomicUsize::new(0),
        }
    }

    /// The backends to try for one request, best first.
    pub fn candidates(&self) -> Vec<Arc<Backend>> {
        let mut healthy: Vec<Arc<Backend>> = self
            .backends
            .iter()
            .filter(|b| b.healthy.load(Ordering::SeqCst))
            .cloned()
            .collect();
        if healthy.is_empty() {
            // Every mark says down, but marks can be stale: trying costs a refused connect
            // each, and a 502 is only honest once all of them really failed.
            healthy = self.backends.clone();
        }
        // Rotating over the healthy list (not over all backends) keeps the spread even
        // while one is out: skipping a dead one must not double its neighbour's share.
        let start = self.turn.fetch_add(1, Ordering::Relaxed) % healthy.len();
        healthy.rotate_left(start);
        if self.strategy == Strategy::LeastConnections {
            // A stable sort keeps the rotation among equals: ties are broken in turn.
            healthy.sort_by_key(|b| b.in_flight.load(Ordering::SeqCst));
        }
        healthy
    }
}

/// At most `limit` requests per client IP in any [`RATE_WINDOW`]: a sliding log of the
/// times of the last requests. Exact and simple; it costs `limit` timestamps per busy
/// client (a token bucket costs two numbers, see chapter 5).
pub struct RateLimiter {
    limit: usize,
    hits: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(limit: u32) -> RateLimiter {
        RateLimiter {
            limit: limit as usize,
            hits: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when `ip` may make a request now, else how long until it may.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        // A std Mutex is right here: the critical section is short and never awaits.
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        if hits.len() > 10_000 {
            // Forget clients that have been quiet for a whole window, so memory stays bounded.
            hits.retain(|_, times| times.back().is_some_and(|t| now - *t < RATE_WINDOW));
        }
        let times = hits.entry(ip).or_default();
        while times.front().is_some_and(|t| now - *t >= RATE_WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            let oldest = *times.front().expect("limit > 0 when the log is full");
            return Err(RATE_WINDOW - (now - oldest));
        }
        times.push_back(now);
        Ok(())
    }
}

pub type LbBody = BoxBody<Bytes, hyper::Error>;

/// Everything a request handler needs.
pub struct Balancer {
    pub pool: Arc<Pool>,
    pub limiter: Option<RateLimiter>,
}

impl Balancer {
    pub async fn handle(&self, mut req: Request<Incoming>, client: SocketAddr) -> Response<LbBody> {
        if let Some(limiter) = &self.limiter
            && let Err(wait) = limiter.check(client.ip())
        {
            let mut response = small_response(StatusCode::TOO_MANY_REQUESTS, "slow down");
            let seconds = wait.as_secs() + 1;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
        strip_hop_by_hop(req.headers_mut());
        append_forwarded_for(req.headers_mut(), client.ip());

        for backend in self.pool.candidates() {
            let in_flight = InFlight::new(backend.clone());
            let stream =
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(backend.addr)).await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        backend.set_healthy(false, &e.to_string());
                        continue; // nothing was sent: safe to try the next one
                    }
                    Err(_) => {
                        backend.set_healthy(false, "connect timed out");
                        continue;
                    }
                };
            // From here on the request is committed to this backend.
            return match send(stream, req).await {
                Ok(response) => {
                    let (mut parts, body) = response.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    // The guard rides along with the body: the request stops counting as in
                    // flight when the last byte has gone to the client (or the client left).
                    let body = body.map_frame(move |frame| {
                        let _counted = &in_flight;
                        frame
                    });
                    Response::from_parts(parts, body.boxed())
                }
                Err(e) => {
                    eprintln!("load_balancer: upstream {}: {e}", backend.addr);
                    small_response(StatusCode::BAD_GATEWAY, "the upstream failed")
                }
            };
        }
        small_response(StatusCode::BAD_GATEWAY, "no upstream is reachable")
    }
}

/// Sends one request on a fresh connection and returns the response (body still streaming).
async fn send<B>(stream: TcpStream, req: Request<B>) -> hyper::Result<Response<Incoming>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = client_http1::handshake(TokioIo::new(stream)).await?;
    // The connection is driven by its own task; it ends when the response is complete or when
    // `sender` and the response future are dropped (the client went away).
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender.send_request(req).await
}

/// Asks every backend for `path`, every `interval`, forever.
pub async fn health_checks(pool: Arc<Pool>, path: String, interval: Duration) {
    // The first round comes one interval after start: until then, passive health decides.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let checks = pool.backends.iter().map(|backend| {
            let (backend, path) = (backend.clone(), path.clone());
            // All backends in parallel: one slow upstream does not delay the others' verdict.
            tokio::spawn(async move {
                match tokio::time::timeout(HEALTH_TIMEOUT, check_once(backend.addr, &path)).await {
                    Ok(Ok(status)) if status.is_success() => {
                        backend.set_healthy(true, "health check passed")
                    }
                    Ok(Ok(status)) => {
                        backend.set_healthy(false, &format!("health check: {status}"))
                    }
                    Ok(Err(e)) => backend.set_healthy(false, &format!("health check: {e}")),
                    Err(_) => backend.set_healthy(false, "health check timed out"),
                }
            })
        });
        for check in checks.collect::<Vec<_>>() {
            let _ = check.await;
        }
    }
}

async fn check_once(
    addr: SocketAddr,
    path: &str,
) -> Result<StatusCode, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    let req = Request::get(path)
        .header(header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())?;
    let response = send(stream, req).await?;
    let status = response.status();
    // Read the (small) body to the end so the upstream sees a complete exchange.
    response.into_body().collect().await?;
    Ok(status)
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn append_forwarded_for(headers: &mut HeaderMap, ip: IpAddr) {
    let mut items: Vec<String> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_string))
        .collect();
    items.push(ip.to_string());
    if let Ok(value) = HeaderValue::from_str(&items.join(", ")) {
        headers.insert("x-forwarded-for", value);
    }
}

fn small_response(status: StatusCode, message: &str) -> Response<LbBody> {
    let body = Full::new(Bytes::from(format!("{status}: {message}\n")))
        .map_err(|never| match never {})
        .boxed();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .expect("static parts are valid")
}

/// Accepts clients forever, one task per connection.
pub async fn serve(listener: TcpListener, balancer: Arc<Balancer>) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("load_balancer: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let balancer = balancer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let balancer = balancer.clone();
                async move { Ok::<_, Infallible>(balancer.handle(req, client).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("load_balancer: {client}: {e}");
            }
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match TcpListener::bind(args.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("load_balancer: cannot listen on {}: {e}", args.addr);
            return ExitCode::from(1);
        }
    };
    let pool = Arc::new(Pool::new(&args.upstreams, args.strategy));
    // The health task shares the pool with the request handlers: both sides only touch
    // atomics, so no lock is needed.
    tokio::spawn(health_checks(
        pool.clone(),
        args.health_path.clone(),
        args.health_interval,
    ));
    let balancer = Arc::new(Balancer {
        pool,
        limiter: args.max_requests_per_minute.map(RateLimiter::new),
    });
    match listener.local_addr() {
        Ok(local) => println!("listening on {local}"),
        Err(e) => {
            eprintln!("load_balancer: {e}");
            return ExitCode::from(1);
        }
    }
    serve(listener, balancer).await;
    ExitCode::SUCCESS
}
