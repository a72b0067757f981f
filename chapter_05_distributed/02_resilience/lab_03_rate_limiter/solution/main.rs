//! Rate limiters: a token bucket and a sliding-window counter, an axum (tower) middleware that
//! answers 429, and a token bucket in Redis shared by several server instances.
//!
//! `rate_limiter [--addr HOST:PORT] [--capacity N] [--refill-ms N] [--redis URL]` serves
//! `GET /` behind the limiter, keyed by the `x-client-id` header (else the peer address).
//!
//! - **Lazy refill.** No timer tops the buckets up: each request computes how many tokens the
//!   time since the last refill is worth. A million idle clients cost memory, never CPU.
//! - **Integer time.** Time is counted in nanoseconds and tokens in whole units, and the part
//!   of an interval that did not yet make a token is carried over, never rounded away: the
//!   maths is exact, so tests can check it to the nanosecond with a [`ManualClock`].
//! - **One decision, one critical section.** Read, refill, take and write back happen under
//!   one lock (one Lua script in Redis): two requests can never both take the last token.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
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

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    /// The time up to which refills have been counted.
    counted_to: Duration,
}

impl Bucket {
    /// Adds the tokens earned since `counted_to`, keeping the unspent part of an interval.
    fn refill(&mut self, now: Duration, quota: Quota) {
        let per = quota.refill_every.as_nanos();
        let earned = now.saturating_sub(self.counted_to).as_nanos() / per;
        if earned > 0 {
            self.tokens = (self.tokens as u128 + earned).min(quota.capacity as u128) as u64;
            self.counted_to += Duration::from_nanos((earned * per) as u64);
        }
        if self.tokens == quota.capacity {
            // A full bucket earns nothing: its clock restarts when it is next spent.
            self.counted_to = now;
        }
    }
}

/// A token bucket per key, all behind one mutex.
pub struct TokenBucket {
    quota: Quota,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl TokenBucket {
    /// A limiter on the system clock. Panics on a zero capacity or interval.
    pub fn new(quota: Quota) -> TokenBucket {
        TokenBucket::with_clock(quota, Arc::new(SystemClock::default()))
    }

    pub fn with_clock(quota: Quota, clock: Arc<dyn Clock>) -> TokenBucket {
        assert!(quota.capacity > 0, "a bucket needs a capacity");
        assert!(
            !quota.refill_every.is_zero(),
            "a bucket needs a refill interval"
        );
        TokenBucket {
            quota,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket if it has one. A refused request takes nothing.
    pub fn try_acquire(&self, key: &str) -> Decision {
        let quota = self.quota;
        let mut buckets = self.buckets.lock().unwrap();
        // Read the clock under the lock: a time read before it could be older than the one
        // the previous holder stored, and time would run backwards for this bucket.
        let now = self.clock.now();
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: quota.capacity,
            counted_to: now,
        });
        bucket.refill(now, quota);
        let allowed = bucket.tokens > 0;
        if allowed {
            bucket.tokens -= 1;
        }
        let per = quota.refill_every;
        let into_interval = now - bucket.counted_to; // < per when the bucket is not full
        let missing = (quota.capacity - bucket.tokens) as u32;
        Decision {
            allowed,
            limit: quota.capacity,
            remaining: bucket.tokens,
            retry_after: if allowed {
                Duration::ZERO
            } else {
                per - into_interval
            },
            reset_after: (per * missing).saturating_sub(into_interval),
        }
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

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Number of the fixed window these counts belong to (`now / window`).
    index: u128,
    current: u64,
    previous: u64,
}

/// The sliding-window counter: two fixed windows per key, the previous one weighted by how
/// much of it still overlaps the sliding window. Two counters instead of a log of timestamps.
pub struct SlidingWindow {
    quota: WindowQuota,
    clock: Arc<dyn Clock>,
    counts: Mutex<HashMap<String, Counts>>,
}

impl SlidingWindow {
    /// A limiter on the system clock. Panics on a zero limit or window.
    pub fn new(quota: WindowQuota) -> SlidingWindow {
        SlidingWindow::with_clock(quota, Arc::new(SystemClock::default()))
    }

    pub fn with_clock(quota: WindowQuota, clock: Arc<dyn Clock>) -> SlidingWindow {
        assert!(quota.limit > 0, "a window needs a limit");
        assert!(!quota.window.is_zero(), "a window needs a length");
        SlidingWindow {
            quota,
            clock,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request for `key` if the sliding estimate allows it:
    /// `previous * (W - e) / W + current < limit`, with `e` the time into the current fixed
    /// window of length `W`, computed exactly in integers (both sides times `W`).
    pub fn try_acquire(&self, key: &str) -> Decision {
        let mut all = self.counts.lock().unwrap();
        let now = self.clock.now().as_nanos(); // under the lock, as in the token bucket
        let w = self.quota.window.as_nanos();
        let limit = self.quota.limit as u128;
        let index = now / w;
        let e = now % w;
        let counts = all.entry(key.to_string()).or_default();
        if index == counts.index + 1 {
            *counts = Counts {
                index,
                current: 0,
                previous: counts.current,
            };
        } else if index != counts.index {
            *counts = Counts {
                index,
                ..Counts::default()
            };
        }
        let (p, c) = (counts.previous as u128, counts.current as u128);
        let weighted = p * (w - e);
        let allowed = weighted + c * w < limit * w;
        if allowed {
            counts.current += 1;
        }
        let c = counts.current as u128;
        // Requests allowed at this instant: the largest n with weighted + (c + n - 1) * w < L * w.
        let room = (limit * w).saturating_sub(weighted).div_ceil(w);
        let reset = match (c, p) {
            (0, 0) => 0,
            (0, _) => w - e,
            _ => 2 * w - e,
        };
        Decision {
            allowed,
            limit: self.quota.limit,
            remaining: room.saturating_sub(c) as u64,
            retry_after: if allowed {
                Duration::ZERO
            } else {
                nanos(wait_until_allowed(p, c, e, w, limit))
            },
            reset_after: nanos(reset),
        }
    }
}

/// The exact wait until `p * (W - e') + c * W < L * W` holds again, in this window or the next.
fn wait_until_allowed(p: u128, c: u128, e: u128, w: u128, limit: u128) -> u128 {
    if c < limit {
        // Still in this window, as the previous window's weight shrinks: the smallest e' with
        // p * (W - e') <= (L - c) * W - 1.
        let e_min = w - ((limit - c) * w - 1) / p;
        if e_min < w {
            return e_min - e;
        }
        return w - e; // at the next window's start the estimate is c < L
    }
    // Next window: `c` becomes the previous count and its weight has to shrink below L.
    (w - e) + (w - (limit * w - 1) / c)
}

fn nanos(n: u128) -> Duration {
    Duration::from_nanos(n as u64)
}

impl Limiter for SlidingWindow {
    async fn check(&self, key: &str) -> Result<Decision, LimitError> {
        Ok(self.try_acquire(key))
    }
}

// ---------------------------------------------------------------------------------------------
// The middleware: a tower Layer wrapping any axum service.
// ---------------------------------------------------------------------------------------------

/// Who a request counts against: the `x-client-id` header, else the peer's IP address (when
/// the server runs with `into_make_service_with_connect_info`), else `"anonymous"`.
pub fn client_key(request: &Request<Body>) -> String {
    if let Some(id) = request
        .headers()
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
    {
        return id.to_string();
    }
    match request.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => peer.ip().to_string(),
        None => "anonymous".to_string(),
    }
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
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let key = client_key(&request);
        let limiter = self.limiter.clone();
        // `poll_ready` prepared `self.inner`, so that is the one to call; leave a fresh clone
        // in its place for the next request (tower's usual clone-and-swap).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(async move {
            match limiter.check(&key).await {
                Ok(decision) if !decision.allowed => Ok(too_many_requests(&decision)),
                Ok(decision) => {
                    let mut response = inner.call(request).await?;
                    set_rate_headers(response.headers_mut(), &decision);
                    Ok(response)
                }
                Err(e) => {
                    // Fail open: a broken limiter must not take the whole service down.
                    eprintln!("rate_limiter: limiter unavailable, letting the request in: {e}");
                    inner.call(request).await
                }
            }
        })
    }
}

/// Whole seconds, rounded up: HTTP headers carry seconds, and rounding down would invite the
/// client back too early.
fn seconds_up(d: Duration) -> u64 {
    d.as_nanos().div_ceil(1_000_000_000) as u64
}

fn set_rate_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(seconds_up(decision.reset_after)),
    );
}

fn too_many_requests(decision: &Decision) -> Response {
    let mut response = (StatusCode::TOO_MANY_REQUESTS, "too many requests\n").into_response();
    let headers = response.headers_mut();
    set_rate_headers(headers, decision);
    headers.insert(
        "retry-after",
        HeaderValue::from(seconds_up(decision.retry_after).max(1)),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// The distributed token bucket: the same algorithm, run inside Redis.
// ---------------------------------------------------------------------------------------------

/// The token bucket as one Lua script. Redis runs a script atomically (no other command runs
/// in between), so the read-refill-take-write sequence cannot race between server instances.
/// The clock is Redis's own `TIME`: the instances' clocks may disagree, Redis has one clock.
/// Numbers are microseconds; `%d` keeps them exact (Lua would print 1.7e+15).
pub const TOKEN_BUCKET_LUA: &str = r"
local capacity = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'counted_to')
local tokens = tonumber(state[1])
local counted_to = tonumber(state[2])
if tokens == nil or counted_to == nil or counted_to > now then
  tokens = capacity
  counted_to = now
end
local earned = math.floor((now - counted_to) / per)
if earned > 0 then
  tokens = math.min(capacity, tokens + earned)
  counted_to = counted_to + earned * per
end
if tokens >= capacity then
  counted_to = now
end
local allowed = 0
local retry = 0
if tokens > 0 then
  tokens = tokens - 1
  allowed = 1
else
  retry = per - (now - counted_to)
end
local reset = math.max(0, (capacity - tokens) * per - (now - counted_to))
redis.call('HSET', KEYS[1], 'tokens', string.format('%d', tokens),
  'counted_to', string.format('%d', counted_to))
redis.call('PEXPIRE', KEYS[1], math.floor(reset / 1000) + 1000)
return {allowed, tokens, retry, reset}
";

/// A token bucket per key in Redis, shared by every instance that uses the same prefix.
pub struct RedisTokenBucket {
    quota: Quota,
    prefix: String,
    script: redis::Script,
    connection: redis::aio::ConnectionManager,
}

impl RedisTokenBucket {
    /// Connects to `url`. The bucket of client `k` is the Redis key `<prefix><k>`, a hash that
    /// expires once the bucket would be full again (idle clients cost nothing).
    pub async fn connect(
        url: &str,
        prefix: &str,
        quota: Quota,
    ) -> Result<RedisTokenBucket, LimitError> {
        assert!(quota.capacity > 0, "a bucket needs a capacity");
        assert!(
            quota.refill_every >= Duration::from_micros(1),
            "Redis counts in microseconds"
        );
        let client = redis::Client::open(url)?;
        // A ConnectionManager is a multiplexed connection that reconnects by itself; clones
        // share it, so each request costs a clone, not a new TCP connection.
        let connection = client.get_connection_manager().await?;
        Ok(RedisTokenBucket {
            quota,
            prefix: prefix.to_string(),
            script: redis::Script::new(TOKEN_BUCKET_LUA),
            connection,
        })
    }
}

impl Limiter for RedisTokenBucket {
    async fn check(&self, key: &str) -> Result<Decision, LimitError> {
        let mut connection = self.connection.clone();
        // EVALSHA, falling back to EVAL (which loads the script) the first time.
        let (allowed, remaining, retry_us, reset_us): (i64, u64, u64, u64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(self.quota.capacity)
            .arg(self.quota.refill_every.as_micros() as u64)
            .invoke_async(&mut connection)
            .await?;
        Ok(Decision {
            allowed: allowed == 1,
            limit: self.quota.capacity,
            remaining,
            retry_after: Duration::from_micros(retry_us),
            reset_after: Duration::from_micros(reset_us),
        })
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
