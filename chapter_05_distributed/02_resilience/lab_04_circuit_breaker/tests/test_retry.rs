//! Grader for retries with exponential backoff, full jitter and a deadline, on tokio's paused
//! clock: the waits between attempts are measured exactly, in virtual time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::time::{Instant, sleep};

labkit::lab_mod!(lab);
use lab::{RetryError, RetryPolicy, Transient};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    transient: bool,
    attempt: u32,
}

impl Transient for Failure {
    fn is_transient(&self) -> bool {
        self.transient
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(2),
        deadline: Duration::from_secs(3600),
    }
}

/// Runs `retry` with an attempt that fails transiently until attempt `succeed_at` (if any),
/// and returns the result and the virtual time each attempt started at.
async fn run(
    policy: RetryPolicy,
    succeed_at: Option<u32>,
) -> (Result<u32, RetryError<Failure>>, Vec<Duration>) {
    let start = Instant::now();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let s = starts.clone();
    let result = lab::retry(&policy, move |n| {
        s.lock().unwrap().push(start.elapsed());
        async move {
            if Some(n) == succeed_at {
                Ok(n)
            } else {
                Err(Failure {
                    transient: true,
                    attempt: n,
                })
            }
        }
    })
    .await;
    let starts = starts.lock().unwrap().clone();
    (result, starts)
}

// Requirement 5: retries stop at the first success, after max_attempts, or at a fatal error.
#[tokio::test(start_paused = true)]
async fn retry_returns_the_first_success() {
    let k = rand::rng().random_range(0..5);
    let (result, starts) = run(policy(), Some(k)).await;
    assert_eq!(
        result,
        Ok(k),
        "requirement 5: retry returned {result:?}; wanted Ok({k}), attempt {k}'s success"
    );
    assert_eq!(
        starts.len() as u32,
        k + 1,
        "requirement 5: {} attempts made; wanted {}, none after the success",
        starts.len(),
        k + 1
    );
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_attempts() {
    let max = rand::rng().random_range(1..8);
    let (result, starts) = run(
        RetryPolicy {
            max_attempts: max,
            ..policy()
        },
        None,
    )
    .await;
    assert_eq!(
        result,
        Err(RetryError::Exhausted {
            attempts: max,
            last: Failure {
                transient: true,
                attempt: max - 1
            }
        }),
        "requirement 5: retry returned {result:?}; wanted Exhausted after {max} attempts with \
         the last attempt's error"
    );
    assert_eq!(
        starts.len() as u32,
        max,
        "requirement 5: {} attempts made; wanted max_attempts = {max}",
        starts.len()
    );
}

#[tokio::test(start_paused = true)]
async fn retry_never_retries_a_fatal_error() {
    let fatal_at = rand::rng().random_range(0..4);
    let calls = Arc::new(Mutex::new(0));
    let c = calls.clone();
    let result: Result<(), _> = lab::retry(&policy(), move |n| {
        *c.lock().unwrap() += 1;
        async move {
            Err(Failure {
                transient: n != fatal_at,
                attempt: n,
            })
        }
    })
    .await;
    assert_eq!(
        result,
        Err(RetryError::Fatal(Failure {
            transient: false,
            attempt: fatal_at
        })),
        "requirement 5: retry returned {result:?}; wanted Fatal with attempt {fatal_at}'s error"
    );
    let calls = *calls.lock().unwrap();
    assert_eq!(
        calls,
        fatal_at + 1,
        "requirement 5: {calls} attempts made; wanted {}, none after the fatal error",
        fatal_at + 1
    );
}

// Requirement 6: exponential backoff with full jitter: the n-th wait is uniform in
// [0, min(max_delay, base_delay * 2^n)].
#[test]
fn backoff_caps_double_up_to_max_delay() {
    let mut rng = rand::rng();
    // Milliseconds with a nearby cap, and nanoseconds with a cap centuries away: there the
    // doubling goes on well past 2^32 before it reaches the cap.
    let cases = [
        (
            Duration::from_millis(rng.random_range(1..100)),
            rng.random_range(3..200u64),
        ),
        (
            Duration::from_nanos(rng.random_range(1..1000)),
            rng.random_range(1u64 << 40..1 << 50),
        ),
    ];
    for (base, times) in cases {
        let max = Duration::from_nanos(base.as_nanos() as u64 * times);
        let p = RetryPolicy {
            base_delay: base,
            max_delay: max,
            ..policy()
        };
        for n in (0..200u32).chain([1000, u32::MAX]) {
            // min(max, base * 2^n), computed exactly in u128.
            let exact = 1u128
                .checked_shl(n)
                .map_or(u128::MAX, |f| base.as_nanos().saturating_mul(f));
            let expected = if exact >= max.as_nanos() {
                max
            } else {
                Duration::from_nanos(exact as u64)
            };
            let got = lab::backoff_cap(&p, n);
            assert!(
                got == expected,
                "requirement 6: backoff_cap(n = {n}) with base {base:?} and max {max:?} is                  {got:?}; wanted min(max, base * 2^n) = {expected:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn waits_are_fully_jittered_within_the_cap() {
    let p = RetryPolicy {
        max_attempts: 6,
        // Caps of 100 ms and more: tokio's timers tick in whole milliseconds.
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1200),
        deadline: Duration::from_secs(3600),
    };
    let runs = 300;
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); 5];
    for _ in 0..runs {
        let (_, starts) = run(p, None).await;
        assert_eq!(
            starts.len(),
            6,
            "requirement 5: {} attempts made; wanted max_attempts = 6",
            starts.len()
        );
        for n in 0..5 {
            let wait = starts[n + 1] - starts[n];
            let cap = lab::backoff_cap(&p, n as u32);
            assert!(
                wait <= cap,
                "requirement 6: wait {n} was {wait:?}; wanted at most its cap {cap:?}"
            );
            ratios[n].push(wait.as_secs_f64() / cap.as_secs_f64());
        }
    }
    let all: Vec<f64> = ratios.iter().flatten().copied().collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    assert!(
        (0.4..0.6).contains(&mean),
        "requirement 6: the waits averaged {mean:.3} of their cap; wanted 0.4 to 0.6: full \
         jitter waits a uniform fraction of the cap (1.0 is no jitter, 0.75 is 'equal jitter')"
    );
    for (n, r) in ratios.iter().enumerate() {
        let top = r.iter().copied().fold(0.0, f64::max);
        let low = r.iter().copied().fold(1.0, f64::min);
        assert!(
            top > 0.9 && low < 0.1,
            "requirement 6: wait {n} ranged over {low:.3}..{top:.3} of its cap in {runs} runs; \
             wanted below 0.1 and above 0.9: uniform over [0, cap]"
        );
    }
}

// Requirement 7: the deadline bounds everything: attempts and waits.
#[tokio::test(start_paused = true)]
async fn retry_stops_a_hanging_call_at_the_deadline() {
    let deadline = Duration::from_millis(rand::rng().random_range(10..10_000));
    let start = Instant::now();
    let result: Result<(), RetryError<Failure>> = lab::retry(
        &RetryPolicy {
            deadline,
            ..policy()
        },
        |_| std::future::pending(),
    )
    .await;
    assert_eq!(
        result,
        Err(RetryError::DeadlineExceeded {
            attempts: 1,
            last: None
        }),
        "requirement 7: a hanging attempt gave {result:?}; wanted DeadlineExceeded after 1 \
         attempt, no error"
    );
    let took = start.elapsed();
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(2),
        "requirement 7: the hanging attempt was cut off after {took:?}; wanted at the deadline \
         {deadline:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_never_exceeds_the_deadline() {
    let mut rng = rand::rng();
    let mut stopped_by_deadline = 0;
    for _ in 0..300 {
        let p = RetryPolicy {
            max_attempts: rng.random_range(1..20),
            base_delay: Duration::from_millis(rng.random_range(1..200)),
            max_delay: Duration::from_millis(rng.random_range(200..2000)),
            deadline: Duration::from_millis(rng.random_range(50..3000)),
        };
        let slowness = rng.random_range(0..300u64);
        let start = Instant::now();
        let result: Result<(), RetryError<Failure>> = lab::retry(&p, move |n| async move {
            sleep(Duration::from_millis(slowness)).await;
            Err(Failure {
                transient: true,
                attempt: n,
            })
        })
        .await;
        let took = start.elapsed();
        assert!(
            took <= p.deadline,
            "requirement 7: {p:?} with {slowness} ms attempts took {took:?}; wanted at most the \
             deadline"
        );
        if let Err(RetryError::DeadlineExceeded { attempts, .. }) = result {
            stopped_by_deadline += 1;
            assert!(
                attempts >= 1,
                "requirement 7: DeadlineExceeded after {attempts} attempts; wanted at least 1"
            );
        } else {
            assert!(
                matches!(result, Err(RetryError::Exhausted { attempts, .. }) if attempts == p.max_attempts),
                "requirement 5: {p:?} gave {result:?}; wanted DeadlineExceeded or Exhausted after \
                 {} attempts",
                p.max_attempts
            );
        }
    }
    assert!(
        stopped_by_deadline > 30,
        "requirement 7: the deadline stopped {stopped_by_deadline} of 300 runs; wanted more \
         than 30"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_does_not_sleep_past_the_deadline() {
    // Waits of up to 10 s with a 1 s deadline: the retry must give up instead of sleeping
    // beyond the deadline, and say how many attempts it made and the last error.
    let p = RetryPolicy {
        max_attempts: 50,
        base_delay: Duration::from_secs(10),
        max_delay: Duration::from_secs(10),
        deadline: Duration::from_secs(1),
    };
    let mut early = 0;
    for _ in 0..50 {
        let start = Instant::now();
        let (result, starts) = run(p, None).await;
        let took = start.elapsed();
        assert!(
            took <= p.deadline,
            "requirement 7: retry took {took:?}; wanted at most the 1 s deadline: a wait that \
             would end past it is not started"
        );
        match result {
            Err(RetryError::DeadlineExceeded {
                attempts,
                last: Some(last),
            }) => {
                assert_eq!(
                    attempts as usize,
                    starts.len(),
                    "requirement 7: DeadlineExceeded says {attempts} attempts; wanted the {} made",
                    starts.len()
                );
                assert_eq!(
                    last.attempt,
                    attempts - 1,
                    "requirement 7: the last error is attempt {}'s; wanted attempt {}'s",
                    last.attempt,
                    attempts - 1
                );
                if took < p.deadline {
                    early += 1;
                }
            }
            other => panic!(
                "requirement 7: retry gave {other:?}; wanted DeadlineExceeded with the last error"
            ),
        }
    }
    assert!(
        early > 40,
        "requirement 7: {early} of 50 runs gave up before the deadline; wanted more than 40: a \
         wait that would end past it is not started"
    );
}
