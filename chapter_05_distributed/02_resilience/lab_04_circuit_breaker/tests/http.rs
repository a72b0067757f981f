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
        .expect("ResilientClient::get must respect its deadline")
}

// Requirement 8: the client retries transient failures (503) and not client errors (404).
#[tokio::test]
async fn client_retries_a_flaky_upstream_until_it_answers() {
    let (addr, upstream) = start_upstream().await;
    let k = rand::rng().random_range(1..4);
    upstream.failures_left.store(k, Ordering::SeqCst);
    let client = ResilientClient::new(lenient_breaker(), quick_retries(5), Duration::from_secs(5));
    let body = fetch(&client, format!("http://{addr}/flaky")).await;
    assert_eq!(body, Ok("ok".to_string()));
    assert_eq!(
        upstream.hits.load(Ordering::SeqCst),
        k + 1,
        "{k} failures, then one success"
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
            Err(RetryError::Fatal(HttpError::Status(StatusCode::NOT_FOUND)))
        );
        assert_eq!(
            upstream.hits.load(Ordering::SeqCst),
            i,
            "a 404 is not retried"
        );
    }
    assert_eq!(
        client.breaker().state(),
        State::Closed,
        "404s do not open the breaker"
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
        })
    );
    assert_eq!(upstream.hits.load(Ordering::SeqCst), max as u64);
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
    assert_eq!(client.breaker().state(), State::Open, "4 failures out of 4");
    assert_eq!(upstream.hits.load(Ordering::SeqCst), 4);
    let n = rand::rng().random_range(5..30);
    for _ in 0..n {
        let result = fetch(&client, url.clone()).await;
        assert_eq!(
            result,
            Err(RetryError::Fatal(HttpError::BreakerOpen)),
            "an open breaker refuses at once, and that is not retried"
        );
    }
    assert_eq!(
        upstream.hits.load(Ordering::SeqCst),
        4,
        "no request reached the upstream while open"
    );
    assert_eq!(client.breaker().metrics().rejected, n);
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
    assert_eq!(client.breaker().state(), State::Open);
    upstream.healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await; // longer than open_for
    assert_eq!(
        fetch(&client, url.clone()).await,
        Ok("ok".to_string()),
        "first probe"
    );
    assert_eq!(
        client.breaker().state(),
        State::HalfOpen,
        "one of two probes succeeded"
    );
    assert_eq!(
        fetch(&client, url.clone()).await,
        Ok("ok".to_string()),
        "second probe"
    );
    assert_eq!(client.breaker().state(), State::Closed);
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
        ]
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
        other => panic!("a 10 s upstream with a 600 ms deadline: got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(5),
        "took {took:?}: the deadline was 600 ms"
    );
    assert!(
        upstream.hits.load(Ordering::SeqCst) >= 2,
        "each 150 ms timeout is a transient failure: the client must retry"
    );
}
