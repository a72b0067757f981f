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
    assert_eq!(result, Ok(k), "attempt {k} succeeds");
    assert_eq!(starts.len() as u32, k + 1, "no attempt after the success");
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
        "the last attempt's error"
    );
    assert_eq!(starts.len() as u32, max);
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
        }))
    );
    assert_eq!(
        *calls.lock().unwrap(),
        fatal_at + 1,
        "no attempt after a fatal error"
    );
}

// Requirement 6: exponential backoff with full jitter: the n-th wait is uniform in
// [0, min(max_delay, base_delay * 2^n)].
#[test]
fn backoff_caps_double_up_to_max_delay() {
    let base = Duration::from_millis(rand::rng().random_range(1..100));
    let max = base * rand::rng().random_range(3..200);
    let p = RetryPolicy {
        base_delay: base,
        max_delay: max,
        ..policy()
    };
    for n in 0..200u32 {
        let expected = if n < 32 {
            (base * 2u32.pow(n.min(31))).min(max)
        } else {
            max
        };
        assert_eq!(
            lab::backoff_cap(&p, n),
            expected,
            "cap of wait {n} (base {base:?}, max {max:?})"
        );
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
        assert_eq!(starts.len(), 6);
        for n in 0..5 {
            let wait = starts[n + 1] - starts[n];
            let cap = lab::backoff_cap(&p, n as u32);
            assert!(wait <= cap, "wait {n} was {wait:?}, above its cap {cap:?}");
            ratios[n].push(wait.as_secs_f64() / cap.as_secs_f64());
        }
    }
    let all: Vec<f64> = ratios.iter().flatten().copied().collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    assert!(
        (0.4..0.6).contains(&mean),
        "full jitter waits a uniform fraction of the cap, 0.5 on average; measured {mean:.3} \
         (1.0 is no jitter, 0.75 is 'equal jitter')"
    );
    for (n, r) in ratios.iter().enumerate() {
        let top = r.iter().copied().fold(0.0, f64::max);
        let low = r.iter().copied().fold(1.0, f64::min);
        assert!(
            top > 0.9 && low < 0.1,
            "wait {n} must range over [0, cap]: saw {low:.3}..{top:.3} of the cap"
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
        })
    );
    let took = start.elapsed();
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(2),
        "cut off at the deadline ({deadline:?}), not after {took:?}"
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
            "{p:?} with {slowness} ms attempts took {took:?}: past the deadline"
        );
        if let Err(RetryError::DeadlineExceeded { attempts, .. }) = result {
            stopped_by_deadline += 1;
            assert!(attempts >= 1);
        } else {
            assert!(
                matches!(result, Err(RetryError::Exhausted { attempts, .. }) if attempts == p.max_attempts),
                "{p:?}: {result:?}"
            );
        }
    }
    assert!(
        stopped_by_deadline > 30,
        "the deadline should have stopped many of these runs"
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
        assert!(took <= p.deadline, "took {took:?} with a deadline of 1 s");
        match result {
            Err(RetryError::DeadlineExceeded {
                attempts,
                last: Some(last),
            }) => {
                assert_eq!(attempts as usize, starts.len());
                assert_eq!(
                    last.attempt,
                    attempts - 1,
                    "the last error is the last attempt's"
                );
                if took < p.deadline {
                    early += 1;
                }
            }
            other => panic!("expected DeadlineExceeded with the last error, got {other:?}"),
        }
    }
    assert!(
        early > 40,
        "a wait that would end past the deadline is not started ({early}/50 early)"
    );
}
