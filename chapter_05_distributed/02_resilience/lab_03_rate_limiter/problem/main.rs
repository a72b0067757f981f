//! ## Goal
//! Protect a service from clients that ask too much. You will write the two algorithms most rate
//! limiters use, a **token bucket** (a burst of `capacity` requests, then one more every
//! `refill_every`) and a **sliding-window counter** (at most `limit` requests per `window`, the
//! window sliding smoothly), each keyed per client and safe to share between threads. Then an axum
//! middleware, written as a tower `Layer`, that answers `429 Too Many Requests` with `Retry-After`
//! and `RateLimit-*` headers. Last, the token bucket again, but inside Redis as one Lua script, so
//! that several instances of a service share one budget per client.
//!
//! ## Requirements
//! 1. `TokenBucket::try_acquire(key)` allows a burst of `capacity` requests, then refuses; each
//!    `Decision` carries `limit`, `remaining` (requests still allowed now), `retry_after` (zero if
//!    allowed, else exactly the wait until a request would pass: one full interval right after the
//!    burst) and `reset_after` (the wait until the bucket is full).
//! 2. Lazy, exact refill: one token per whole `refill_every` since the last counted time, up to the
//!    capacity, the remainder kept for the next token. A refused request takes nothing; at
//!    `retry_after - 1 ns` a request is still refused, at `retry_after` it passes. Each key has its
//!    own bucket.
//! 3. `SlidingWindow::try_acquire(key)` allows a request when
//!    `previous * (W - e) / W + current < limit`, where `current` and `previous` count the requests
//!    of the current and previous fixed windows (fixed windows start at multiples of `W` on the
//!    clock) and `e` is the time into the current one; `retry_after` is exact here too.
//! 4. Both limiters are thread-safe: eight threads racing on one key get exactly the budget, never
//!    more, also while the clock moves.
//! 5. `RateLimitLayer::new(limiter)` wraps an axum router. A refused request gets `429`, a
//!    `Retry-After` header (seconds, rounded up) and never reaches the handler; every answer carries
//!    `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until full, rounded
//!    up). Clients are told apart by their `x-client-id` header, else their IP address, else
//!    `anonymous`.
//! 6. `RedisTokenBucket` runs the token bucket as a Lua script in Redis (`REDIS_URL`), on Redis's
//!    clock; the bucket of client `k` is the key `<prefix><k>` and expires when it would be full.
//! 7. Instances sharing a Redis and a prefix share the budget: two limiters racing from eight
//!    tasks, or two HTTP servers answering alternately, allow exactly `capacity` requests in all.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 5.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `TokenBucket::try_acquire(key)` allows a burst of `capacity` requests, then
//!   refuses; each `Decision` carries `limit`, `remaining` (requests still allowed now),
//!   `retry_after` (zero if allowed, else exactly the wait until a request would pass: one full
//!   interval right after the burst) and `reset_after` (the wait until the bucket is full)
//! - [ ] Requirement 2: Lazy, exact refill: one token per whole `refill_every` since the last
//!   counted time, up to the capacity, the remainder kept for the next token
//! - [ ] Requirement 3: `SlidingWindow::try_acquire(key)` allows a request when `previous * (W - e)
//!   / W + current < limit`, where `current` and `previous` count the requests of the current and
//!   previous fixed windows (fixed windows start at multiples of `W` on the clock) and `e` is the
//!   time into the current one; `retry_after` is exact here too
//! - [ ] Requirement 4: Both limiters are thread-safe: eight threads racing on one key get exactly
//!   the budget, never more, also while the clock moves
//! - [ ] Requirement 5: `RateLimitLayer::new(limiter)` wraps an axum router
//! - [ ] Requirement 6: `RedisTokenBucket` runs the token bucket as a Lua script in Redis
//!   (`REDIS_URL`), on Redis's clock; the bucket of client `k` is the key `<prefix><k>` and expires
//!   when it would be full
//! - [ ] Requirement 7: Instances sharing a Redis and a prefix share the budget: two limiters
//!   racing from eight tasks, or two HTTP servers answering alternately, allow exactly `capacity`
//!   requests in all
//!
//! ## Notes
//!
//! Rate limiters: a token bucket and a sliding-window counter, an axum (tower) middleware that
//! answers 429, and a token bucket in Redis shared by several server instances.
//!
//! `rate_limiter [--addr HOST:PORT] [--capacity N] [--refill-ms N] [--redis URL]` serves
//! `GET /` behind the limiter (the demo at the bottom, ready to run once the limiter works).
//!
//! Read README.md for the requirements; `cargo lab test 5.3` grades this file. The clocks, the
//! `Decision` and error types, the `Limiter` trait and the demo are given; the `todo!()`s are
//! yours. Remove the `allow` below once every item is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use axum::routing::get;
use clap::{Parser, value_parser};
use tower::{Layer, Service};

// ---------------------------------------------------------------------------------------------
// Time.
// ---------------------------------------------------------------------------------------------

/// A monotonic clock: time elapsed since an origin of the clock's choosing.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Duration;
}

/// The real clock (`Instant`, which never goes backwards, unlike the wall clock).
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to: for exact tests.
#[derive(Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock::default())
    }

    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

// ---------------------------------------------------------------------------------------------
// Decisions.
// ---------------------------------------------------------------------------------------------

/// What a limiter decided about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The limit: the bucket's capacity, or the window's limit.
    pub limit: u64,
    /// Requests still allowed right now, after this one.
    pub remaining: u64,
    /// Zero when allowed; else the exact wait until a request would be allowed.
    pub retry_after: Duration,
    /// The wait until the limiter is back to its full limit, if no request comes.
    pub reset_after: Duration,
}

/// Why a limiter could not decide.
#[derive(Debug)]
pub enum LimitError {
    Redis(redis::RedisError),
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::Redis(e) => write!(f, "redis: {e}"),
        }
    }
}

impl std::error::Error for LimitError {}

impl From<redis::RedisError> for LimitError {
    fn from(e: redis::RedisError) -> Self {
        LimitError::Redis(e)
    }
}

/// Anything the middleware can ask. Async, so that a limiter may live in Redis.
pub trait Limiter: Send + Sync + 'static {
    fn check(&self, key: &str) -> impl Future<Output = Result<Decision, LimitError>> + Send;
}

// ---------------------------------------------------------------------------------------------
// Token bucket.
// ---------------------------------------------------------------------------------------------

/// A bucket of `capacity` tokens (the burst) that gains one token every `refill_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub capacity: u64,
    pub refill_every: Duration,
}

/// A token bucket per key, thread-safe (`&self` methods, shared through an `Arc`).
pub struct TokenBucket {
    // TODO: the quota, the clock, and per key: the tokens left and the time up to which
    // refills have been counted.
}

impl TokenBucket {
    /// A limiter on the system clock. Panics on a zero capacity or interval.
    pub fn new(quota: Quota) -> TokenBucket {
        TokenBucket::with_clock(quota, Arc::new(SystemClock::default()))
    }

    pub fn with_clock(quota: Quota, clock: Arc<dyn Clock>) -> TokenBucket {
        todo!("store the quota and the clock, and an empty map of buckets behind a Mutex")
    }

    /// Takes one token from `key`'s bucket if it has one; a refused request takes nothing.
    /// A new key starts with a full bucket. Refill lazily, here: one token per whole
    /// `refill_every` since the last counted time, up to the capacity, keeping the remainder.
    pub fn try_acquire(&self, key: &str) -> Decision {
        todo!("refill, take a token if there is one, and describe the result in a Decision")
    }
}

impl Limiter for TokenBucket {
    async fn check(&self, key: &str) -> Result<Decision, LimitError> {
        Ok(self.try_acquire(key))
    }
}

// ---------------------------------------------------------------------------------------------
// Sliding-window counter.
// ---------------------------------------------------------------------------------------------

/// At most `limit` requests per `window`, windows sliding smoothly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowQuota {
    pub limit: u64,
    pub window: Duration,
}

/// The sliding-window counter: per key, the counts of the current and the previous fixed
/// window (fixed windows start at multiples of `window` on the clock).
pub struct SlidingWindow {
    // TODO: the quota, the clock, and per key: the window's number and its two counts.
}

impl SlidingWindow {
    /// A limiter on the system clock. Panics on a zero limit or window.
    pub fn new(quota: WindowQuota) -> SlidingWindow {
        SlidingWindow::with_clock(quota, Arc::new(SystemClock::default()))
    }

    pub fn with_clock(quota: WindowQuota, clock: Arc<dyn Clock>) -> SlidingWindow {
        todo!("store the quota and the clock, and an empty map of counts behind a Mutex")
    }

    /// Counts one request for `key` if the sliding estimate allows it:
    /// `previous * (W - e) / W + current < limit`, with `e` the time into the current fixed
    /// window of length `W`. Compute it exactly, in integer nanoseconds.
    pub fn try_acquire(&self, key: &str) -> Decision {
        todo!("roll the windows, decide, count, and compute the exact retry_after")
    }
}

impl Limiter for SlidingWindow {
    async fn check(&self, key: &str) -> Result<Decision, LimitError> {
        Ok(self.try_acquire(key))
    }
}

// ---------------------------------------------------------------------------------------------
// The middleware: a tower Layer wrapping any axum service.
// ---------------------------------------------------------------------------------------------

/// Who a request counts against: the `x-client-id` header, else the peer's IP address (the
/// `ConnectInfo<SocketAddr>` extension, present when the server runs with
/// `into_make_service_with_connect_info`), else `"anonymous"`.
pub fn client_key(request: &Request<Body>) -> String {
    todo!("the header, the ConnectInfo extension, or \"anonymous\"")
}

/// `router.layer(RateLimitLayer::new(limiter))`: every request goes through `limiter` first.
pub struct RateLimitLayer<L> {
    limiter: Arc<L>,
}

impl<L> RateLimitLayer<L> {
    pub fn new(limiter: L) -> RateLimitLayer<L> {
        RateLimitLayer {
            limiter: Arc::new(limiter),
        }
    }
}

impl<L> Clone for RateLimitLayer<L> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            limiter: self.limiter.clone(),
        }
    }
}

impl<S, L> Layer<S> for RateLimitLayer<L> {
    type Service = RateLimit<S, L>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            limiter: self.limiter.clone(),
        }
    }
}

/// The service the layer wraps around the inner one.
pub struct RateLimit<S, L> {
    inner: S,
    limiter: Arc<L>,
}

impl<S: Clone, L> Clone for RateLimit<S, L> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
        }
    }
}

impl<S, L> Service<Request<Body>> for RateLimit<S, L>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    L: Limiter,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        todo!("ready when the inner service is")
    }

    /// Refused: 429 with `Retry-After` (whole seconds, rounded up) and the `RateLimit-Limit`,
    /// `RateLimit-Remaining`, `RateLimit-Reset` headers, without calling the inner service.
    /// Allowed: the inner service's response, with the three `RateLimit-*` headers added.
    fn call(&mut self, request: Request<Body>) -> Self::Future {
        todo!("key, limiter.check, then 429 or the inner service, in a boxed async block")
    }
}

// ---------------------------------------------------------------------------------------------
// The distributed token bucket: the same algorithm, run inside Redis.
// ---------------------------------------------------------------------------------------------

/// The token bucket as one Lua script, run atomically by Redis (`EVALSHA`). Suggested
/// contract: `KEYS[1]` the bucket, `ARGV[1]` the capacity, `ARGV[2]` microseconds per token;
/// the clock is `redis.call('TIME')`; returns `{allowed, remaining, retry_us, reset_us}`.
pub const TOKEN_BUCKET_LUA: &str = r"
-- TODO: read the bucket, refill it, take a token, write it back, set an expiry.
return {0, 0, 0, 0}
";

/// A token bucket per key in Redis, shared by every instance that uses the same prefix.
pub struct RedisTokenBucket {
    // TODO: the quota, the prefix, a `redis::Script` and a connection.
}

impl RedisTokenBucket {
    /// Connects to `url`. The bucket of client `k` is the Redis key `<prefix><k>`, and it
    /// expires once it would be full again (idle clients cost nothing).
    pub async fn connect(
        url: &str,
        prefix: &str,
        quota: Quota,
    ) -> Result<RedisTokenBucket, LimitError> {
        todo!("a redis::Client, a ConnectionManager, and redis::Script::new(TOKEN_BUCKET_LUA)")
    }
}

impl Limiter for RedisTokenBucket {
    async fn check(&self, key: &str) -> Result<Decision, LimitError> {
        todo!("invoke the script on `<prefix><key>` and turn its reply into a Decision")
    }
}

// ---------------------------------------------------------------------------------------------
// A demo server: `cargo run -- --capacity 3 --refill-ms 2000`, then `curl -i` it.
// ---------------------------------------------------------------------------------------------

/// What the command line asks for.
#[derive(Debug, Parser)]
#[command(
    name = "rate_limiter",
    about = "A hello-world server behind the rate limiter: `curl -i` it and watch the RateLimit \
             headers"
)]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Requests allowed in a burst (the bucket's capacity)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        value_parser = value_parser!(u64).range(1..)
    )]
    capacity: u64,
    /// Milliseconds it takes to refill one token
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        value_parser = value_parser!(u64).range(1..)
    )]
    refill_ms: u64,
    /// Keep the buckets in this Redis (shared by every server using it), not in memory
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let quota = Quota {
        capacity: args.capacity,
        refill_every: Duration::from_millis(args.refill_ms),
    };
    let hello = Router::new().route("/", get(|| async { "hello\n" }));
    let app = match args.redis {
        Some(url) => hello.layer(RateLimitLayer::new(
            RedisTokenBucket::connect(&url, "ratelimit:", quota).await?,
        )),
        None => hello.layer(RateLimitLayer::new(TokenBucket::new(quota))),
    };
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match serve(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rate_limiter: {e}");
            ExitCode::FAILURE
        }
    }
}
