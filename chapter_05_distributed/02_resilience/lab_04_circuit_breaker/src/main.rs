//! ## Goal
//! Wrap an HTTP client in the two defences every service needs around its dependencies. A
//! **retry policy**: exponential backoff with full jitter, a cap on attempts, an overall deadline
//! that nothing may overrun, and retries only for errors that may go away (a 503, a timeout, a
//! refused connection; never a 404). A **circuit breaker**: a state machine (closed, open,
//! half-open) that watches the failure rate of recent calls, stops calling a dependency that is
//! failing, and after a pause lets a few probes through to see whether it is back, recording every
//! transition. Then you put them together as `retry(breaker(timeout(GET)))` and point the client at
//! a real, flaky HTTP server.
//!
//! ## Requirements
//! 1. Closed, the breaker counts the outcomes of the last `window` calls and opens as soon as it
//!    holds at least `min_calls` of them and `failures / outcomes >= failure_rate`. Errors that are
//!    not transient (`Transient::is_transient` is false) count as successes and are returned as
//!    they are (`CallError::Inner`).
//! 2. Open, it refuses every call with `CallError::Open` without making it, and counts the refusal.
//! 3. The first call at least `open_for` after the breaker opened turns it half-open and is let
//!    through as a probe; at most `half_open_probes` probes run, others are refused. When that many
//!    probes succeed the breaker closes with a fresh window; one failed probe opens it again for
//!    another `open_for`. A probe whose future is dropped before it finishes (a caller's timeout)
//!    gives its slot back, and a call admitted before a transition that finishes after it does not
//!    count in the new state.
//! 4. `metrics()` returns the counts of successes, failures and refusals, and every transition in
//!    order with its time (`tokio::time::Instant`).
//! 5. `retry(policy, attempt)` calls `attempt(0)`, `attempt(1)`, ... and returns the first success,
//!    `Fatal(e)` at once for an error that is not transient, or `Exhausted { attempts, last }` after
//!    `max_attempts`.
//! 6. Between attempts it waits a random duration in `[0, backoff_cap(n)]` (full jitter), where
//!    `backoff_cap(n) = min(max_delay, base_delay * 2^n)` (without overflow for any `n`).
//! 7. Everything ends within `deadline` of the first attempt: an attempt still running is cut off
//!    at the deadline (`DeadlineExceeded`), and a wait that would end past it is not started
//!    (`DeadlineExceeded` at once, with the last error).
//! 8. `ResilientClient::get(url)` returns the body of a 2xx answer, retries 5xx, 429, timeouts and
//!    transport errors, and returns a 404 (or any other status) at once without retrying.
//! 9. The client's breaker sees each attempt: once it opens, no request reaches the upstream
//!    (`HttpError::BreakerOpen`, not retried); once `open_for` has passed, successful probes
//!    close it again.
//! 10. Each attempt is limited to the attempt timeout, inside the breaker (a timeout is a
//!     transient failure the breaker counts), and the whole call to the policy's deadline, even
//!     against an upstream that takes 10 s to answer.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 5.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: Closed, the breaker counts the outcomes of the last `window` calls and
//!   opens as soon as it holds at least `min_calls` of them and `failures / outcomes >=
//!   failure_rate`
//! - [ ] Requirement 2: Open, it refuses every call with `CallError::Open` without making it, and
//!   counts the refusal
//! - [ ] Requirement 3: The first call at least `open_for` after the breaker opened turns it
//!   half-open and is let through as a probe; at most `half_open_probes` probes run, others are
//!   refused
//! - [ ] Requirement 4: `metrics()` returns the counts of successes, failures and refusals, and
//!   every transition in order with its time (`tokio::time::Instant`)
//! - [ ] Requirement 5: `retry(policy, attempt)` calls `attempt(0)`, `attempt(1)`,
//! - [ ] Requirement 6: Between attempts it waits a random duration in `[0, backoff_cap(n)]` (full
//!   jitter), where `backoff_cap(n) = min(max_delay, base_delay * 2^n)` (without overflow for any
//!   `n`)
//! - [ ] Requirement 7: Everything ends within `deadline` of the first attempt: an attempt still
//!   running is cut off at the deadline (`DeadlineExceeded`), and a wait that would end past it is
//!   not started (`DeadlineExceeded` at once, with the last error)
//! - [ ] Requirement 8: `ResilientClient::get(url)` returns the body of a 2xx answer, retries 5xx,
//!   429, timeouts and transport errors, and returns a 404 (or any other status) at once without
//!   retrying
//! - [ ] Requirement 9: The client's breaker sees each attempt: once it opens, no request reaches
//!   the upstream (`HttpError::BreakerOpen`, not retried); once `open_for` has passed, successful
//!   probes close it again
//! - [ ] Requirement 10: Each attempt is limited to the attempt timeout, inside the breaker (a
//!   timeout is a transient failure the breaker counts), and the whole call to the policy's
//!   deadline, even against an upstream that takes 10 s to answer
//!
//! ## Notes
//!
//! A circuit breaker and retries with backoff, wrapped around an HTTP client.
//!
//! `circuit_breaker <url> [calls]` calls `url` a number of times through the resilient client
//! and prints each outcome and the breaker's state transitions (try a port nobody listens on).
//!
//! Read README.md for the requirements; `cargo lab test 5.4` grades this file (the state
//! machine and the retries on tokio's paused clock, the client against a real local server).
//! Use `tokio::time::Instant` and `tokio::time::sleep`, never `std::time::Instant`: the
//! grader moves tokio's clock, not the system's. Remove the `allow` once your code uses every
//! argument and field.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Empty;
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
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

pub struct CircuitBreaker {
    // TODO: the config, and behind a std Mutex: the state, the window of recent outcomes,
    // when it opened, the probes started and succeeded, the metrics.
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> CircuitBreaker {
        todo!("a closed breaker with an empty window")
    }

    /// The current state. An open breaker whose `open_for` has passed still says `Open`: it
    /// turns half-open when the next call arrives.
    pub fn state(&self) -> State {
        todo!("the current state")
    }

    /// Counts and transitions so far.
    pub fn metrics(&self) -> Metrics {
        todo!("a copy of the metrics")
    }

    /// Makes the call if the breaker allows it, and counts its outcome: `Err(CallError::Open)`
    /// without running `call` when open (or half-open with every probe taken). An error that
    /// is not transient counts as a success: the upstream answered, the request was wrong.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, CallError<E>>
    where
        F: Future<Output = Result<T, E>>,
        E: Transient,
    {
        todo!("admit (maybe turning Open into HalfOpen), run the call unlocked, record")
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

/// The longest wait after the `retry`-th failure (0 for the first): `min(max, base * 2^retry)`,
/// without overflow for any `retry`.
pub fn backoff_cap(policy: &RetryPolicy, retry: u32) -> Duration {
    todo!("base * 2^retry, capped at max_delay")
}

/// Calls `attempt(0)`, `attempt(1)`, ... until one succeeds, fails with an error that is not
/// transient, the attempts run out, or the deadline comes. Between attempts, waits a random
/// duration in `[0, backoff_cap(n)]` (full jitter). Never runs past the deadline: an attempt
/// still running at the deadline is cut off, and a wait that would end past it is not started.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, attempt: F) -> Result<T, RetryError<E>>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Transient,
{
    todo!("a loop of attempts under tokio::time::timeout_at(deadline), with jittered sleeps")
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
        todo!("which of these may succeed if tried again?")
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

    /// GETs `url` and returns the body of a 2xx answer: retry( breaker( timeout( GET ) ) ).
    /// Each attempt is limited to `attempt_timeout` (a timeout is a transient failure), and
    /// an open breaker's refusal is `HttpError::BreakerOpen`, which is not retried.
    pub async fn get(&self, url: &str) -> Result<String, RetryError<HttpError>> {
        todo!("parse the URL, then retry(&self.policy, |_| breaker.call(timeout(GET)))")
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
