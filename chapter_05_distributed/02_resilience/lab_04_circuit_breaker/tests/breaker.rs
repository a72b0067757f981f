//! Grader for the circuit breaker's state machine, on tokio's paused clock: every transition
//! happens at an exact virtual time, and nothing here depends on the machine's speed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt;
use tokio::sync::oneshot;
use tokio::time::{Instant, advance};

labkit::lab_mod!(lab);
use lab::{BreakerConfig, CallError, CircuitBreaker, State, Transient};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    transient: bool,
}

impl Transient for Failure {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

const TRANSIENT: Failure = Failure { transient: true };
const FATAL: Failure = Failure { transient: false };

fn config() -> BreakerConfig {
    BreakerConfig {
        window: 10,
        min_calls: 5,
        failure_rate: 0.5,
        open_for: Duration::from_secs(30),
        half_open_probes: 1,
    }
}

/// One call through the breaker; `made` counts the calls that really ran.
async fn call(
    breaker: &CircuitBreaker,
    made: &AtomicU64,
    outcome: Result<(), Failure>,
) -> Result<(), CallError<Failure>> {
    breaker
        .call(async {
            made.fetch_add(1, Ordering::SeqCst);
            outcome
        })
        .await
}

async fn open_it(breaker: &CircuitBreaker, made: &AtomicU64) {
    for _ in 0..100 {
        if breaker.state() == State::Open {
            return;
        }
        let _ = call(breaker, made, Err(TRANSIENT)).await;
    }
    panic!("100 failures in a row did not open the breaker");
}

// Requirement 1: closed, the breaker opens exactly when the failure rate over the window
// reaches the threshold (once it holds min_calls outcomes).
#[tokio::test(start_paused = true)]
async fn breaker_opens_exactly_at_the_failure_rate() {
    let mut rng = rand::rng();
    for _ in 0..200 {
        let window = rng.random_range(2..16);
        let config = BreakerConfig {
            window,
            min_calls: rng.random_range(1..=window),
            // Binary fractions: `f / n >= rate` and `f >= rate * n` agree exactly.
            failure_rate: [0.25, 0.5, 0.75, 1.0][rng.random_range(0..4)],
            ..config()
        };
        let breaker = CircuitBreaker::new(config);
        let made = AtomicU64::new(0);
        let mut recent: Vec<bool> = Vec::new(); // the model: true = failure
        for step in 0..60 {
            let fail = rng.random_bool(0.4);
            let result = call(&breaker, &made, if fail { Err(TRANSIENT) } else { Ok(()) }).await;
            assert!(
                result != Err(CallError::Open),
                "a closed breaker refused call {step}"
            );
            recent.push(fail);
            if recent.len() > config.window {
                recent.remove(0);
            }
            let failures = recent.iter().filter(|f| **f).count();
            let should_open = recent.len() >= config.min_calls
                && failures as f64 / recent.len() as f64 >= config.failure_rate;
            let expected = if should_open {
                State::Open
            } else {
                State::Closed
            };
            assert_eq!(
                breaker.state(),
                expected,
                "{config:?}: after outcomes {recent:?} (failures = true) the breaker must be {expected:?}"
            );
            if should_open {
                break;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn breaker_stays_closed_below_the_failure_rate() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    // 4 failures in every 10 calls, spread so that no window of the last 5 to 10 calls
    // reaches 50%.
    for round in 0..rand::rng().random_range(3..10) {
        for i in 0..10 {
            let outcome = if [2, 4, 7, 9].contains(&i) {
                Err(TRANSIENT)
            } else {
                Ok(())
            };
            let _ = call(&breaker, &made, outcome).await;
        }
        assert_eq!(
            breaker.state(),
            State::Closed,
            "round {round}: 40% failures"
        );
    }
    assert_eq!(made.load(Ordering::SeqCst) % 10, 0, "every call was made");
}

#[tokio::test(start_paused = true)]
async fn non_transient_errors_do_not_open_the_breaker() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    for _ in 0..50 {
        let result = call(&breaker, &made, Err(FATAL)).await;
        assert_eq!(
            result,
            Err(CallError::Inner(FATAL)),
            "the error is returned as it is"
        );
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a 404 says nothing about the upstream's health"
    );
    let metrics = breaker.metrics();
    assert_eq!((metrics.successes, metrics.failures), (50, 0));
}

// Requirement 2: open, the breaker refuses every call without making it.
#[tokio::test(start_paused = true)]
async fn open_breaker_refuses_calls_without_making_them() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    let before = made.load(Ordering::SeqCst);
    let n = rand::rng().random_range(5..50);
    for _ in 0..n {
        advance(Duration::from_millis(100)).await;
        assert_eq!(call(&breaker, &made, Ok(())).await, Err(CallError::Open));
    }
    assert_eq!(
        made.load(Ordering::SeqCst),
        before,
        "no call may pass while open"
    );
    assert_eq!(breaker.metrics().rejected, n);
}

// Requirement 3: after exactly open_for, a limited number of probes go through (half-open).
#[tokio::test(start_paused = true)]
async fn breaker_half_opens_after_exactly_open_for() {
    let open_for = Duration::from_millis(rand::rng().random_range(100..60_000));
    let breaker = Arc::new(CircuitBreaker::new(BreakerConfig {
        open_for,
        ..config()
    }));
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    advance(open_for - Duration::from_millis(1)).await;
    assert_eq!(
        call(&breaker, &made, Ok(())).await,
        Err(CallError::Open),
        "1 ms before open_for: still open"
    );
    advance(Duration::from_millis(1)).await;
    let b = breaker.clone();
    let state_during_probe = breaker
        .call(async move { Ok::<_, Failure>(b.state()) })
        .await
        .expect("the probe goes through");
    assert_eq!(
        state_during_probe,
        State::HalfOpen,
        "the probe runs in the half-open state"
    );
    assert_eq!(
        breaker.state(),
        State::Closed,
        "one successful probe (of 1) closes it"
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_lets_only_the_configured_probes_through() {
    let probes = rand::rng().random_range(1..5);
    let breaker = Arc::new(CircuitBreaker::new(BreakerConfig {
        half_open_probes: probes,
        ..config()
    }));
    let made = Arc::new(AtomicU64::new(0));
    open_it(&breaker, &made).await;
    advance(config().open_for).await;

    // `probes` slow probes are in flight...
    let mut release = Vec::new();
    let mut running = Vec::new();
    for _ in 0..probes {
        let (tx, rx) = oneshot::channel::<()>();
        release.push(tx);
        let (breaker, made) = (breaker.clone(), made.clone());
        running.push(tokio::spawn(async move {
            breaker
                .call(async move {
                    made.fetch_add(1, Ordering::SeqCst);
                    let _ = rx.await;
                    Ok::<_, Failure>(())
                })
                .await
        }));
    }
    let before = made.load(Ordering::SeqCst);
    for _ in 0..1000 {
        if made.load(Ordering::SeqCst) == before + probes as u64 {
            break;
        }
        tokio::task::yield_now().await; // let every probe start
    }
    assert_eq!(
        made.load(Ordering::SeqCst),
        before + probes as u64,
        "{probes} probes must be let through"
    );
    // ...so any other call is refused, without being made.
    for _ in 0..5 {
        assert_eq!(call(&breaker, &made, Ok(())).await, Err(CallError::Open));
    }
    assert_eq!(made.load(Ordering::SeqCst), before + probes as u64);
    assert_eq!(breaker.state(), State::HalfOpen);
    for tx in release {
        let _ = tx.send(());
    }
    for probe in running {
        assert_eq!(probe.await.expect("probe task"), Ok(()));
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "{probes} successful probes close it"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_the_breaker_for_another_open_for() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    advance(config().open_for).await;
    assert_eq!(
        call(&breaker, &made, Err(TRANSIENT)).await,
        Err(CallError::Inner(TRANSIENT))
    );
    assert_eq!(
        breaker.state(),
        State::Open,
        "a failed probe opens the breaker again"
    );
    let before = made.load(Ordering::SeqCst);
    advance(config().open_for - Duration::from_millis(1)).await;
    assert_eq!(
        call(&breaker, &made, Ok(())).await,
        Err(CallError::Open),
        "a full open_for again"
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(call(&breaker, &made, Ok(())).await, Ok(()));
    assert_eq!(made.load(Ordering::SeqCst), before + 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn closing_starts_a_fresh_window() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    advance(config().open_for).await;
    assert_eq!(call(&breaker, &made, Ok(())).await, Ok(()));
    assert_eq!(breaker.state(), State::Closed);
    // The failures from before are forgotten: 4 fresh failures are fewer than min_calls (5).
    for _ in 0..4 {
        let _ = call(&breaker, &made, Err(TRANSIENT)).await;
    }
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the old window must not count after closing"
    );
    let _ = call(&breaker, &made, Err(TRANSIENT)).await;
    assert_eq!(
        breaker.state(),
        State::Open,
        "5 fresh failures out of 5 open it"
    );
}

// Requirement 4: metrics: every transition, in order, with its time; counts of outcomes.
#[tokio::test(start_paused = true)]
async fn transitions_are_recorded_in_order_with_their_time() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    let start = Instant::now();
    let mut expected = Vec::new();

    advance(Duration::from_secs(1)).await;
    open_it(&breaker, &made).await;
    expected.push((State::Closed, State::Open, Duration::from_secs(1)));
    advance(config().open_for).await;
    let _ = call(&breaker, &made, Err(TRANSIENT)).await;
    expected.push((State::Open, State::HalfOpen, Duration::from_secs(31)));
    expected.push((State::HalfOpen, State::Open, Duration::from_secs(31)));
    advance(config().open_for + Duration::from_secs(5)).await;
    let _ = call(&breaker, &made, Ok(())).await;
    expected.push((State::Open, State::HalfOpen, Duration::from_secs(66)));
    expected.push((State::HalfOpen, State::Closed, Duration::from_secs(66)));

    let metrics = breaker.metrics();
    let seen: Vec<_> = metrics
        .transitions
        .iter()
        .map(|t| (t.from, t.to, t.at - start))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(metrics.failures, 6, "5 to open it, 1 failed probe");
    assert_eq!(metrics.successes, 1);
}
