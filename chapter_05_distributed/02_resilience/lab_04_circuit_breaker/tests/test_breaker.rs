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
    panic!(
        "requirement 1: 100 failures in a row left the breaker {:?}; wanted Open",
        breaker.state()
    );
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
                "requirement 1: a closed breaker refused call {step}; wanted it made"
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
                "requirement 1: {config:?}: after outcomes {recent:?} (failures = true) the breaker \
                 is {:?}; wanted {expected:?}",
                breaker.state()
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
        let state = breaker.state();
        assert_eq!(
            state,
            State::Closed,
            "requirement 1: round {round} with 40% failures left the breaker {state:?}; wanted \
             Closed"
        );
    }
    let made = made.load(Ordering::SeqCst);
    assert_eq!(
        made % 10,
        0,
        "requirement 1: {made} calls made; wanted every call (a multiple of 10)"
    );
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
            "requirement 1: a non-transient error came back as {result:?}; wanted it as it is"
        );
    }
    let state = breaker.state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 1: 50 non-transient errors left the breaker {state:?}; wanted Closed (a 404 \
         says nothing about the upstream's health)"
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.successes, metrics.failures),
        (50, 0),
        "requirement 4: (successes, failures) = ({}, {}) after 50 non-transient errors; wanted \
         (50, 0)",
        metrics.successes,
        metrics.failures
    );
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
        let result = call(&breaker, &made, Ok(())).await;
        assert_eq!(
            result,
            Err(CallError::Open),
            "requirement 2: an open breaker answered {result:?}; wanted Err(Open)"
        );
    }
    let passed = made.load(Ordering::SeqCst) - before;
    assert_eq!(
        passed, 0,
        "requirement 2: {passed} calls were made while open; wanted none"
    );
    let rejected = breaker.metrics().rejected;
    assert_eq!(
        rejected, n,
        "requirement 4: metrics count {rejected} refusals; wanted {n}"
    );
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
    let early = call(&breaker, &made, Ok(())).await;
    assert_eq!(
        early,
        Err(CallError::Open),
        "requirement 3: 1 ms before open_for the breaker answered {early:?}; wanted Err(Open)"
    );
    advance(Duration::from_millis(1)).await;
    let b = breaker.clone();
    let state_during_probe = breaker
        .call(async move { Ok::<_, Failure>(b.state()) })
        .await
        .expect("requirement 3: the first call after exactly open_for was refused; wanted a probe");
    assert_eq!(
        state_during_probe,
        State::HalfOpen,
        "requirement 3: the probe ran while the breaker was {state_during_probe:?}; wanted HalfOpen"
    );
    let state = breaker.state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 3: one successful probe (of 1) left the breaker {state:?}; wanted Closed"
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
    let started = made.load(Ordering::SeqCst) - before;
    assert_eq!(
        started, probes as u64,
        "requirement 3: {started} probes started; wanted {probes} let through"
    );
    // ...so any other call is refused, without being made.
    for _ in 0..5 {
        let result = call(&breaker, &made, Ok(())).await;
        assert_eq!(
            result,
            Err(CallError::Open),
            "requirement 3: with {probes} probes in flight another call got {result:?}; wanted \
             Err(Open)"
        );
    }
    let started = made.load(Ordering::SeqCst) - before;
    assert_eq!(
        started, probes as u64,
        "requirement 3: {started} calls made in half-open; wanted only the {probes} probes"
    );
    let state = breaker.state();
    assert_eq!(
        state,
        State::HalfOpen,
        "requirement 3: with probes in flight the breaker is {state:?}; wanted HalfOpen"
    );
    for tx in release {
        let _ = tx.send(());
    }
    for probe in running {
        let result = probe.await.expect("probe task");
        assert_eq!(
            result,
            Ok(()),
            "requirement 3: a released probe returned {result:?}; wanted Ok"
        );
    }
    let state = breaker.state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 3: {probes} successful probes left the breaker {state:?}; wanted Closed"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens_the_breaker_for_another_open_for() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    advance(config().open_for).await;
    let probe = call(&breaker, &made, Err(TRANSIENT)).await;
    assert_eq!(
        probe,
        Err(CallError::Inner(TRANSIENT)),
        "requirement 3: the failing probe returned {probe:?}; wanted its error"
    );
    let state = breaker.state();
    assert_eq!(
        state,
        State::Open,
        "requirement 3: a failed probe left the breaker {state:?}; wanted Open again"
    );
    let before = made.load(Ordering::SeqCst);
    advance(config().open_for - Duration::from_millis(1)).await;
    let early = call(&breaker, &made, Ok(())).await;
    assert_eq!(
        early,
        Err(CallError::Open),
        "requirement 3: 1 ms before a second open_for the breaker answered {early:?}; wanted \
         Err(Open)"
    );
    advance(Duration::from_millis(1)).await;
    let probe = call(&breaker, &made, Ok(())).await;
    assert_eq!(
        probe,
        Ok(()),
        "requirement 3: the probe after a second open_for returned {probe:?}; wanted Ok"
    );
    let made = made.load(Ordering::SeqCst) - before;
    assert_eq!(
        made, 1,
        "requirement 3: {made} calls made after the failed probe; wanted 1, the new probe"
    );
    let state = breaker.state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 3: a successful probe left the breaker {state:?}; wanted Closed"
    );
}

#[tokio::test(start_paused = true)]
async fn closing_starts_a_fresh_window() {
    let breaker = CircuitBreaker::new(config());
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    advance(config().open_for).await;
    let probe = call(&breaker, &made, Ok(())).await;
    let state = breaker.state();
    assert!(
        probe == Ok(()) && state == State::Closed,
        "requirement 3: the probe returned {probe:?} and left the breaker {state:?}; wanted Ok \
         and Closed"
    );
    // The failures from before are forgotten: 4 fresh failures are fewer than min_calls (5).
    for _ in 0..4 {
        let _ = call(&breaker, &made, Err(TRANSIENT)).await;
    }
    let state = breaker.state();
    assert_eq!(
        state,
        State::Closed,
        "requirement 3: 4 fresh failures (min_calls 5) after closing left the breaker {state:?}; \
         wanted Closed: the old window must not count"
    );
    let _ = call(&breaker, &made, Err(TRANSIENT)).await;
    let state = breaker.state();
    assert_eq!(
        state,
        State::Open,
        "requirement 1: 5 fresh failures out of 5 left the breaker {state:?}; wanted Open"
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
    assert_eq!(
        seen, expected,
        "requirement 4: transitions (from, to, time since start) {seen:?}; wanted {expected:?}"
    );
    assert_eq!(
        metrics.failures, 6,
        "requirement 4: {} failures counted; wanted 6 (5 to open it, 1 failed probe)",
        metrics.failures
    );
    assert_eq!(
        metrics.successes, 1,
        "requirement 4: {} successes counted; wanted 1 (the good probe)",
        metrics.successes
    );
}

// Requirement 3, cancellation: a probe whose future is dropped mid-flight (its caller timed
// out, its task was aborted) gives its slot back, or the breaker would stay half-open and
// refuse every call forever.
#[tokio::test(start_paused = true)]
async fn dropped_probe_gives_its_slot_back() {
    let probes = rand::rng().random_range(1..4);
    let breaker = CircuitBreaker::new(BreakerConfig {
        half_open_probes: probes,
        ..config()
    });
    let made = AtomicU64::new(0);
    open_it(&breaker, &made).await;
    advance(config().open_for).await;
    // Every probe slot is taken by a call that never finishes, cut off by a timeout.
    for _ in 0..probes {
        let hanging = breaker.call(std::future::pending::<Result<(), Failure>>());
        let cut = tokio::time::timeout(Duration::from_secs(1), hanging).await;
        assert!(
            cut.is_err(),
            "requirement 3: a hanging probe returned {cut:?} instead of being cut off"
        );
    }
    let state = breaker.state();
    assert!(
        state == State::HalfOpen,
        "requirement 3: after {probes} dropped probes the breaker is {state:?}; wanted HalfOpen"
    );
    for i in 0..probes {
        let result = call(&breaker, &made, Ok(())).await;
        assert!(
            result == Ok(()),
            "requirement 3: after {probes} probes were dropped mid-flight, probe {} got {result:?}; \
             wanted Ok: a dropped probe must give its slot back",
            i + 1
        );
    }
    let state = breaker.state();
    assert!(
        state == State::Closed,
        "requirement 3: {probes} successful probes after the dropped ones left the breaker \
         {state:?}; wanted Closed"
    );
}

// Requirement 3: a call admitted before a transition that finishes after it speaks for a past
// state: its outcome must not count in the new one.
#[tokio::test(start_paused = true)]
async fn stale_outcome_does_not_count_after_a_transition() {
    let config = BreakerConfig {
        window: 2,
        min_calls: 2,
        failure_rate: 0.5,
        ..config()
    };
    let breaker = Arc::new(CircuitBreaker::new(config));
    let made = Arc::new(AtomicU64::new(0));
    // A slow call starts while the breaker is closed...
    let (finish, finished) = oneshot::channel::<()>();
    let slow = {
        let (breaker, made) = (breaker.clone(), made.clone());
        tokio::spawn(async move {
            breaker
                .call(async move {
                    made.fetch_add(1, Ordering::SeqCst);
                    let _ = finished.await;
                    Err::<(), _>(TRANSIENT)
                })
                .await
        })
    };
    let started = yield_until(|| made.load(Ordering::SeqCst) == 1).await;
    assert!(started, "requirement 1: the slow call was never made");
    // ...then the breaker opens, half-opens and closes again with a fresh window.
    open_it(&breaker, &made).await;
    advance(config.open_for).await;
    let probe = call(&breaker, &made, Ok(())).await;
    assert!(
        probe == Ok(()) && breaker.state() == State::Closed,
        "requirement 3: the probe got {probe:?} and left the breaker {:?}; wanted Ok and Closed",
        breaker.state()
    );
    // The slow call fails now, two transitions later.
    let _ = finish.send(());
    let stale = slow.await.expect("slow call task");
    assert!(
        stale == Err(CallError::Inner(TRANSIENT)),
        "requirement 1: the slow call returned {stale:?}; wanted its own error"
    );
    // One fresh failure: 1 outcome < min_calls 2, so still closed. Had the stale failure been
    // counted, the window would hold 2 failures and the breaker would open.
    let _ = call(&breaker, &made, Err(TRANSIENT)).await;
    let state = breaker.state();
    assert!(
        state == State::Closed,
        "requirement 3: a failure that started before the breaker opened and finished after it \
         closed again was counted in the fresh window: the breaker is {state:?} after one new \
         failure (min_calls 2); wanted Closed"
    );
}

/// Yields to the runtime until `done` holds (at most 1000 times).
async fn yield_until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    done()
}
