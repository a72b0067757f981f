//! Grader for the resilient HTTP client against a real, flaky upstream: an axum server on
//! 127.0.0.1:0 inside the test, whose behaviour the test switches and whose hits it counts.
//!
//! These tests run on the real clock (real sockets and a paused clock do not mix: the paused
//! clock would jump over the time a socket takes). They assert counts, never durations,
//! except one generous bound that a 10 s upstream could never meet.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{BreakerConfig, HttpError, ResilientClient, RetryError, RetryPolicy, State};

#[derive(Default)]
struct Upstream {
    hits: AtomicU64,
    /// `/flaky` answers 503 this many times, then 200.
    failures_left: AtomicU64,
    /// `/switch` answers 503 while this is false.
    healthy: AtomicBool,
}

async fn start_upstream() -> (SocketAddr, Arc<Upstream>) {
    let upstream = Arc::new(Upstream::default());
    let app = Router::new()
        .route(
            "/flaky",
            get(|AxumState(u): AxumState<Arc<Upstream>>| async move {
                u.hits.fetch_add(1, Ordering::SeqCst);
                let failing = u
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    (StatusCode::SERVICE_UNAVAILABLE, "busy")
                } else {
                    (StatusCode::OK, "ok")
                }
            }),
        )
        .route(
            "/switch",
            get(|AxumState(u): AxumState<Arc<Upstream>>| async move {
                u.hits.fetch_add(1, Ordering::SeqCst);
                if u.healthy.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "down")
                }
            }),
        )
        .route(
            "/missing",
            get(|AxumState(u): AxumState<Arc<Upstream>>| async move {
                u.hits.fetch_add(1, Ordering::SeqCst);
                (StatusCode::NOT_FOUND, "no such thing")
            }),
        )
        .route(
            "/slow",
            get(|AxumState(u): AxumState<Arc<Upstream>>| async move {
                u.hits.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(10)).await;
                "finally"
            }),
        )
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, upstream)
}

fn lenient_breaker() -> BreakerConfig {
    BreakerConfig {
        window: 100,
        min_calls: 100,
        failure_rate: 1.0,
        open_for: Duration::from_secs(60),
        half_open_probes: 1,
    }
}

fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(10),
    }
}

/// Every call of a test is bounded, so a client that hangs fails instead of stalling.
async fn fetch(client: &ResilientClient, url: String) -> Result<String, RetryError<HttpError>> {
    tokio::time::timeout(Duration::from_secs(20), client.get(&url))
        .await
        .expect("requirement 10: ResilientClient::get took more than 20 s; wanted it to respect its deadline")
}

// Requirement 8: the client retries transient failures (503) and not client errors (404).
#[tokio::test]
async fn client_retries_a_flaky_upstream_until_it_answers() {
    let (addr, upstream) = start_upstream().await;
    let k = rand::rng().random_range(1..4);
    upstream.failures_left.store(k, Ordering::SeqCst);
    let client = ResilientClient::new(lenient_breaker(), quick_retries(5), Duration::from_secs(5));
    let body = fetch(&client, format!("http://{addr}/flaky")).await;
    assert_eq!(
        body,
        Ok("ok".to_string()),
        "requirement 8: an upstream failing {k} times then answering gave {body:?}; wanted the body"
    );
    let hits = upstream.hits.load(Ordering::SeqCst);
    assert_eq!(
        hits,
        k + 1,
        "requirement 8: the upstream saw {hits} requests; wanted {} ({k} failures, then one success)",
        k + 1
    );
}

#[tokio::test]
async fn client_does_not_retry_client_errors() {
    let (addr, upstream) = start_upstream().await;
    let breaker = BreakerConfig {
        window: 5,
        min_calls: 5,
        failure_rate: 0.5,
        ..lenient_breaker()
    };
    let client = ResilientClient::new(breaker, quick_retries(5), Duration::from_secs(5));
    for i in 1..=10 {
        let result = fetch(&client, format!("http://{addr}/missing")).await;
        assert_eq!(
            result,
            Err(RetryError::Fatal(HttpError::Status(StatusCode::NOT_FOUND))),
            "requirement 8: a 404 gave {result:?}; wanted Fatal(Status(404)) at once"
        );
        let hits = upstream.hits.load(Ordering::SeqCst);
        assert_eq!(
            hits, i,
            "requirement 8: {i} calls to a 404 made {hits} requests; wanted {i}: a 404 is not \
             retried"
        );
    }
    let state = client.breaker().state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 8: ten 404s left the breaker {state:?}; wanted Closed"
    );
}

#[tokio::test]
async fn client_gives_up_after_max_attempts_on_a_failing_upstream() {
    let (addr, upstream) = start_upstream().await;
    let max = rand::rng().random_range(2..6);
    let client = ResilientClient::new(
        lenient_breaker(),
        quick_retries(max),
        Duration::from_secs(5),
    );
    let result = fetch(&client, format!("http://{addr}/switch")).await;
    assert_eq!(
        result,
        Err(RetryError::Exhausted {
            attempts: max,
            last: HttpError::Status(StatusCode::SERVICE_UNAVAILABLE)
        }),
        "requirement 8: an upstream answering 503 gave {result:?}; wanted Exhausted after {max} \
         attempts with the last 503"
    );
    let hits = upstream.hits.load(Ordering::SeqCst);
    assert_eq!(
        hits, max as u64,
        "requirement 8: the upstream saw {hits} requests; wanted max_attempts = {max}"
    );
}

// Requirement 9: once open, the breaker keeps every request away from the upstream.
#[tokio::test]
async fn open_breaker_keeps_requests_away_from_the_upstream() {
    let (addr, upstream) = start_upstream().await;
    let breaker = BreakerConfig {
        window: 4,
        min_calls: 4,
        failure_rate: 0.5,
        open_for: Duration::from_secs(60),
        half_open_probes: 1,
    };
    let client = ResilientClient::new(breaker, quick_retries(1), Duration::from_secs(5));
    let url = format!("http://{addr}/switch");
    for _ in 0..4 {
        let _ = fetch(&client, url.clone()).await;
    }
    let state = client.breaker().state();
    assert_eq!(
        state,
        State::Open,
        "requirement 9: 4 failures out of 4 left the breaker {state:?}; wanted Open"
    );
    let hits = upstream.hits.load(Ordering::SeqCst);
    assert_eq!(
        hits, 4,
        "requirement 9: 4 calls with 1 attempt each made {hits} requests; wanted 4"
    );
    let n = rand::rng().random_range(5..30);
    for _ in 0..n {
        let result = fetch(&client, url.clone()).await;
        assert_eq!(
            result,
            Err(RetryError::Fatal(HttpError::BreakerOpen)),
            "requirement 9: a call through an open breaker gave {result:?}; wanted \
             Fatal(BreakerOpen), refused at once and not retried"
        );
    }
    let hits = upstream.hits.load(Ordering::SeqCst) - 4;
    assert_eq!(
        hits, 0,
        "requirement 9: {hits} requests reached the upstream while the breaker was open; wanted 0"
    );
    let rejected = client.breaker().metrics().rejected;
    assert_eq!(
        rejected, n,
        "requirement 9: the breaker counted {rejected} refusals; wanted {n}"
    );
}

#[tokio::test]
async fn breaker_recovers_through_half_open() {
    let (addr, upstream) = start_upstream().await;
    let breaker = BreakerConfig {
        window: 4,
        min_calls: 2,
        failure_rate: 0.5,
        open_for: Duration::from_millis(200),
        half_open_probes: 2,
    };
    let client = ResilientClient::new(breaker, quick_retries(1), Duration::from_secs(5));
    let url = format!("http://{addr}/switch");
    let _ = fetch(&client, url.clone()).await;
    let _ = fetch(&client, url.clone()).await;
    let state = client.breaker().state();
    assert_eq!(
        state,
        State::Open,
        "requirement 9: 2 failures of 2 (min_calls 2) left the breaker {state:?}; wanted Open"
    );
    upstream.healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await; // longer than open_for
    let first = fetch(&client, url.clone()).await;
    assert_eq!(
        first,
        Ok("ok".to_string()),
        "requirement 9: the first probe after open_for gave {first:?}; wanted the body"
    );
    let state = client.breaker().state();
    assert_eq!(
        state,
        State::HalfOpen,
        "requirement 9: one of two probes succeeded and the breaker is {state:?}; wanted HalfOpen"
    );
    let second = fetch(&client, url.clone()).await;
    assert_eq!(
        second,
        Ok("ok".to_string()),
        "requirement 9: the second probe gave {second:?}; wanted the body"
    );
    let state = client.breaker().state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 9: two successful probes of two left the breaker {state:?}; wanted Closed"
    );
    let transitions: Vec<_> = client
        .breaker()
        .metrics()
        .transitions
        .iter()
        .map(|t| (t.from, t.to))
        .collect();
    assert_eq!(
        transitions,
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ],
        "requirement 4: transitions {transitions:?}; wanted Closed -> Open -> HalfOpen -> Closed"
    );
}

// Requirement 10: a slow upstream costs at most the deadline: attempts time out and retry.
#[tokio::test]
async fn slow_upstream_is_cut_off_by_timeouts_and_the_deadline() {
    let (addr, upstream) = start_upstream().await;
    let policy = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        deadline: Duration::from_millis(600),
    };
    let client = ResilientClient::new(lenient_breaker(), policy, Duration::from_millis(150));
    let start = Instant::now();
    let result = fetch(&client, format!("http://{addr}/slow")).await;
    let took = start.elapsed();
    match result {
        Err(RetryError::DeadlineExceeded { .. }) => {}
        Err(RetryError::Exhausted {
            last: HttpError::Timeout,
            ..
        }) => {}
        other => panic!(
            "requirement 10: a 10 s upstream with a 600 ms deadline gave {other:?}; wanted \
             DeadlineExceeded or Exhausted with a Timeout"
        ),
    }
    assert!(
        took < Duration::from_secs(5),
        "requirement 10: the call took {took:?}; wanted it cut off near the 600 ms deadline"
    );
    assert!(
        upstream.hits.load(Ordering::SeqCst) >= 2,
        "requirement 10: the slow upstream saw {} requests; wanted at least 2: each 150 ms \
         timeout is a transient failure, retried",
        upstream.hits.load(Ordering::SeqCst)
    );
}

// Requirement 10 with requirement 9: the attempt timeout sits inside the breaker, so a slow
// upstream is a failing one. A timeout wrapped around the breaker drops the call's future and
// the breaker never hears of it.
#[tokio::test]
async fn timeouts_count_as_breaker_failures() {
    let (addr, upstream) = start_upstream().await;
    let attempts = rand::rng().random_range(2..5);
    let breaker = BreakerConfig {
        window: attempts as usize,
        min_calls: attempts as usize,
        failure_rate: 1.0,
        open_for: Duration::from_secs(60),
        half_open_probes: 1,
    };
    let client = ResilientClient::new(breaker, quick_retries(attempts), Duration::from_millis(100));
    let result = fetch(&client, format!("http://{addr}/slow")).await;
    assert!(
        matches!(
            result,
            Err(RetryError::Exhausted {
                last: HttpError::Timeout,
                ..
            })
        ),
        "requirement 10: {attempts} attempts at a 10 s upstream with a 100 ms attempt timeout \
         gave {result:?}; wanted Exhausted with a Timeout"
    );
    let hits = upstream.hits.load(Ordering::SeqCst);
    let metrics = client.breaker().metrics();
    assert!(
        metrics.failures == attempts as u64,
        "requirement 9: {hits} requests timed out but the breaker counted {} failures; wanted \
         {attempts} (put the timeout inside the breaker's call)",
        metrics.failures
    );
    let state = client.breaker().state();
    assert!(
        state == State::Open,
        "requirement 9: {attempts} timeouts out of {attempts} calls left the breaker {state:?}; \
         wanted Open"
    );
}
