//! Grader for the local rate limiters and the middleware, on a manual clock: the refill maths
//! is checked to the nanosecond. The Redis limiter has its own file, `tests/test_redis.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use rand::RngExt;
use tower::ServiceExt;

labkit::lab_mod!(lab);
use lab::{Decision, ManualClock, Quota, RateLimitLayer, SlidingWindow, TokenBucket, WindowQuota};

const NS: Duration = Duration::from_nanos(1);

fn random_quota() -> Quota {
    let mut rng = rand::rng();
    Quota {
        capacity: rng.random_range(1..40),
        // Milliseconds plus odd nanoseconds: exact maths must not depend on round numbers.
        refill_every: Duration::from_millis(rng.random_range(1..2000))
            + Duration::from_nanos(rng.random_range(0..1_000_000)),
    }
}

fn bucket(quota: Quota) -> (TokenBucket, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (TokenBucket::with_clock(quota, clock.clone()), clock)
}

fn window(quota: WindowQuota) -> (SlidingWindow, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (SlidingWindow::with_clock(quota, clock.clone()), clock)
}

fn exhaust(limiter: &TokenBucket, key: &str) -> Decision {
    loop {
        let d = limiter.try_acquire(key);
        if !d.allowed {
            return d;
        }
    }
}

// Requirement 1: the token bucket allows a burst of `capacity`, then refuses.
#[test]
fn bucket_allows_a_burst_of_capacity_then_refuses() {
    let quota = random_quota();
    let (limiter, _clock) = bucket(quota);
    for i in 0..quota.capacity {
        let d = limiter.try_acquire("client");
        assert!(
            d.allowed,
            "requirement 1: request {} of a burst of {} was refused; wanted allowed",
            i + 1,
            quota.capacity
        );
        assert_eq!(
            d.limit, quota.capacity,
            "requirement 1: limit {}; wanted the capacity {}",
            d.limit, quota.capacity
        );
        assert_eq!(
            d.remaining,
            quota.capacity - 1 - i,
            "requirement 1: remaining {} after request {}; wanted {}",
            d.remaining,
            i + 1,
            quota.capacity - 1 - i
        );
        assert_eq!(
            d.retry_after,
            Duration::ZERO,
            "requirement 1: retry_after {:?} on an allowed request; wanted zero",
            d.retry_after
        );
    }
    let d = limiter.try_acquire("client");
    assert!(
        !d.allowed,
        "requirement 1: request {} was allowed; wanted refused after a burst of {}",
        quota.capacity + 1,
        quota.capacity
    );
    assert_eq!(
        d.remaining, 0,
        "requirement 1: remaining {} on a refused request; wanted 0",
        d.remaining
    );
    assert_eq!(
        d.retry_after, quota.refill_every,
        "requirement 1: retry_after {:?} right after the burst; wanted one full interval {:?}",
        d.retry_after, quota.refill_every
    );
}

// Requirement 2: lazy refill, one token per interval, exact to the nanosecond, keeping the
// part of an interval that did not make a token yet.
#[test]
fn bucket_refills_one_token_per_interval_exactly() {
    // Room for two tokens: with a capacity of 1, the 1.5 intervals below fill the bucket; a
    // full bucket stops counting time, so the half interval would rightly be gone.
    let mut quota = random_quota();
    quota.capacity = quota.capacity.max(2);
    let per = quota.refill_every;
    let (limiter, clock) = bucket(quota);
    exhaust(&limiter, "k");
    clock.advance(per - NS);
    let d = limiter.try_acquire("k");
    assert!(
        !d.allowed,
        "requirement 2: allowed 1 ns before the interval ends; wanted refused"
    );
    assert_eq!(
        d.retry_after, NS,
        "requirement 2: retry_after {:?} 1 ns before the interval ends; wanted 1 ns",
        d.retry_after
    );
    clock.advance(NS);
    assert!(
        limiter.try_acquire("k").allowed,
        "requirement 2: refused after exactly one interval; wanted one token"
    );
    assert!(
        !limiter.try_acquire("k").allowed,
        "requirement 2: a second request allowed after one interval; wanted only one token"
    );

    // One and a half intervals: one token, and the half interval counts toward the next.
    let x = per * 3 / 2;
    clock.advance(x);
    assert!(
        limiter.try_acquire("k").allowed,
        "requirement 2: refused after 1.5 intervals; wanted one token"
    );
    let d = limiter.try_acquire("k");
    assert!(
        !d.allowed,
        "requirement 2: a second request allowed after 1.5 intervals; wanted refused"
    );
    assert_eq!(
        d.retry_after,
        per * 2 - x,
        "requirement 2: retry_after {:?} after 1.5 intervals; wanted {:?}: the half interval \
         already waited must not be lost",
        d.retry_after,
        per * 2 - x
    );
    clock.advance(d.retry_after);
    assert!(
        limiter.try_acquire("k").allowed,
        "requirement 2: refused at exactly retry_after; wanted allowed"
    );
}

#[test]
fn idle_bucket_refills_only_up_to_capacity() {
    let quota = random_quota();
    let (limiter, clock) = bucket(quota);
    exhaust(&limiter, "k");
    clock.advance(quota.refill_every * (quota.capacity as u32 * 10 + 7));
    let allowed = (0..quota.capacity * 3)
        .filter(|_| limiter.try_acquire("k").allowed)
        .count() as u64;
    assert_eq!(
        allowed, quota.capacity,
        "requirement 2: {allowed} requests allowed after a long idle time; wanted the capacity \
         {}, no more",
        quota.capacity
    );
}

#[test]
fn bucket_retry_after_and_remaining_are_exact() {
    let mut rng = rand::rng();
    for _ in 0..20 {
        let quota = random_quota();
        let per = quota.refill_every;
        let (limiter, clock) = bucket(quota);
        for _ in 0..200 {
            clock.advance(Duration::from_nanos(
                rng.random_range(0..per.as_nanos() as u64 * 2),
            ));
            let d = limiter.try_acquire("k");
            if d.allowed {
                if rng.random_bool(0.2) {
                    // `remaining` more requests pass at this instant, and not one more.
                    for i in 0..d.remaining {
                        assert!(
                            limiter.try_acquire("k").allowed,
                            "requirement 1: request {i} after remaining = {} was refused; wanted \
                             allowed",
                            d.remaining
                        );
                    }
                    assert!(
                        !limiter.try_acquire("k").allowed,
                        "requirement 1: request {} after remaining = {} was allowed; wanted \
                         refused",
                        d.remaining + 1,
                        d.remaining
                    );
                }
                continue;
            }
            assert!(
                d.retry_after > Duration::ZERO && d.retry_after <= per,
                "requirement 2: retry_after {:?} on a refused request; wanted in (0, {per:?}]",
                d.retry_after
            );
            // Refused requests take nothing: at retry_after - 1 ns still refused, then allowed.
            clock.advance(d.retry_after - NS);
            let again = limiter.try_acquire("k");
            assert!(
                !again.allowed,
                "requirement 2: allowed 1 ns before retry_after ({:?}); wanted refused (a refused \
                 request takes nothing)",
                d.retry_after
            );
            assert_eq!(
                again.retry_after, NS,
                "requirement 2: retry_after {:?} 1 ns before it ends; wanted 1 ns",
                again.retry_after
            );
            clock.advance(NS);
            assert!(
                limiter.try_acquire("k").allowed,
                "requirement 2: refused at exactly retry_after ({:?}); wanted allowed",
                d.retry_after
            );
        }
    }
}

#[test]
fn bucket_reset_after_is_the_time_to_a_full_bucket() {
    let quota = Quota {
        capacity: rand::rng().random_range(2..40),
        ..random_quota()
    };
    let (limiter, clock) = bucket(quota);
    let mut last = None;
    for _ in 0..quota.capacity {
        last = Some(limiter.try_acquire("k"));
    }
    let last = last.unwrap();
    assert_eq!(
        last.reset_after,
        quota.refill_every * quota.capacity as u32,
        "requirement 1: reset_after {:?} on an empty bucket; wanted capacity x interval = {:?}",
        last.reset_after,
        quota.refill_every * quota.capacity as u32
    );
    clock.advance(last.reset_after - NS);
    let d = limiter.try_acquire("k");
    assert!(
        d.allowed,
        "requirement 1: refused 1 ns before reset_after; wanted allowed"
    );
    assert_eq!(
        d.remaining,
        quota.capacity - 2,
        "requirement 1: remaining {} 1 ns short of full (after taking one); wanted {}",
        d.remaining,
        quota.capacity - 2
    );
}

#[test]
fn bucket_keys_are_independent() {
    let quota = random_quota();
    let (limiter, _clock) = bucket(quota);
    exhaust(&limiter, "alice");
    let d = limiter.try_acquire("bob");
    assert!(
        d.allowed,
        "requirement 2: bob was refused after alice emptied her bucket; wanted his own bucket"
    );
    assert_eq!(
        d.remaining,
        quota.capacity - 1,
        "requirement 2: bob's remaining {}; wanted a full bucket minus one = {}",
        d.remaining,
        quota.capacity - 1
    );
    assert!(
        !limiter.try_acquire("alice").allowed,
        "requirement 2: alice was allowed after bob's request; wanted still refused"
    );
}

// Requirement 3: the sliding-window counter weights the previous window by its overlap.
fn random_window() -> WindowQuota {
    let mut rng = rand::rng();
    WindowQuota {
        limit: rng.random_range(1..50),
        window: Duration::from_millis(rng.random_range(10..5000))
            + Duration::from_nanos(rng.random_range(0..1_000_000)),
    }
}

#[test]
fn window_allows_limit_requests_per_window() {
    let quota = random_window();
    let (limiter, _clock) = window(quota);
    for i in 0..quota.limit {
        let d = limiter.try_acquire("k");
        assert!(
            d.allowed,
            "requirement 3: request {} of {} in one window was refused; wanted allowed",
            i + 1,
            quota.limit
        );
        assert_eq!(
            (d.limit, d.remaining),
            (quota.limit, quota.limit - 1 - i),
            "requirement 3: (limit, remaining) = ({}, {}); wanted ({}, {})",
            d.limit,
            d.remaining,
            quota.limit,
            quota.limit - 1 - i
        );
    }
    let d = limiter.try_acquire("k");
    assert!(
        !d.allowed,
        "requirement 3: request {} in one window was allowed; wanted refused",
        quota.limit + 1
    );
    assert!(
        d.retry_after > Duration::ZERO,
        "requirement 3: retry_after {:?} on a refused request; wanted more than zero",
        d.retry_after
    );
}

#[test]
fn window_weights_the_previous_window() {
    for _ in 0..50 {
        let quota = random_window();
        let (limiter, clock) = window(quota);
        let w = quota.window.as_nanos() as u64;
        let mut rng = rand::rng();
        // Fill window 0 at its start, then jump to e nanoseconds into window 1.
        for i in 0..quota.limit {
            assert!(
                limiter.try_acquire("k").allowed,
                "requirement 3: request {} of {} in window 0 was refused; wanted allowed",
                i + 1,
                quota.limit
            );
        }
        let e = rng.random_range(0..w);
        clock.advance(Duration::from_nanos(w + e));
        // estimate = limit * (W - e) / W + current < limit  <=>  current < limit * e / W
        let expected = (quota.limit as u128 * e as u128).div_ceil(w as u128) as u64;
        let allowed = (0..quota.limit + 1)
            .filter(|_| limiter.try_acquire("k").allowed)
            .count() as u64;
        assert_eq!(
            allowed,
            expected,
            "requirement 3: {allowed} requests allowed {e} ns of {w} into the window after a full \
             one ({} of {}); wanted {expected}: the previous window still weighs {:.3} of its count",
            quota.limit,
            quota.limit,
            1.0 - e as f64 / w as f64
        );
    }
}

#[test]
fn window_forgets_everything_after_two_windows() {
    let quota = random_window();
    let (limiter, clock) = window(quota);
    for _ in 0..quota.limit + 3 {
        limiter.try_acquire("k");
    }
    clock.advance(quota.window * 2);
    let allowed = (0..quota.limit * 2)
        .filter(|_| limiter.try_acquire("k").allowed)
        .count();
    assert_eq!(
        allowed as u64, quota.limit,
        "requirement 3: {allowed} requests allowed two windows later; wanted the limit {}",
        quota.limit
    );
}

#[test]
fn window_retry_after_is_exact() {
    let mut rng = rand::rng();
    for _ in 0..20 {
        let quota = random_window();
        let w = quota.window.as_nanos() as u64;
        let (limiter, clock) = window(quota);
        for _ in 0..300 {
            clock.advance(Duration::from_nanos(
                rng.random_range(0..w / quota.limit.max(1) * 2 + 1),
            ));
            let d = limiter.try_acquire("k");
            if d.allowed {
                continue;
            }
            assert!(
                d.retry_after > Duration::ZERO && d.retry_after <= quota.window * 2,
                "requirement 3: retry_after {:?} on a refused request; wanted in (0, 2 x {:?}]",
                d.retry_after,
                quota.window
            );
            clock.advance(d.retry_after - NS);
            assert!(
                !limiter.try_acquire("k").allowed,
                "requirement 3: allowed 1 ns before retry_after ({:?}); wanted refused",
                d.retry_after
            );
            clock.advance(NS);
            assert!(
                limiter.try_acquire("k").allowed,
                "requirement 3: refused at exactly retry_after ({:?}); wanted allowed",
                d.retry_after
            );
        }
    }
}

// Requirement 4: thread-safe: many threads together never exceed the budget.
#[test]
fn bucket_never_exceeds_its_budget_across_threads() {
    let mut rng = rand::rng();
    let quota = Quota {
        capacity: rng.random_range(100..1000),
        refill_every: Duration::from_millis(10),
    };
    let (limiter, clock) = bucket(quota);
    let limiter = Arc::new(limiter);
    let allowed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // One thread moves the clock while eight threads take tokens.
    let ticker = {
        let (clock, stop) = (clock.clone(), stop.clone());
        thread::spawn(move || {
            let mut advanced = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                clock.advance(Duration::from_millis(1));
                advanced += Duration::from_millis(1);
                thread::yield_now();
            }
            advanced
        })
    };
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (limiter, allowed) = (limiter.clone(), allowed.clone());
            thread::spawn(move || {
                for _ in 0..3000 {
                    if limiter.try_acquire("shared").allowed {
                        allowed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    stop.store(true, Ordering::SeqCst);
    let advanced = ticker.join().expect("ticker");
    let allowed = allowed.load(Ordering::SeqCst);
    let budget = quota.capacity + (advanced.as_millis() / 10) as u64;
    assert!(
        allowed <= budget,
        "requirement 4: 8 threads got {allowed} requests allowed; wanted at most the budget of \
         {} + {} refills = {budget}",
        quota.capacity,
        advanced.as_millis() / 10
    );
    assert!(
        allowed >= quota.capacity,
        "requirement 4: 8 threads got {allowed} requests allowed; wanted at least the burst of {}",
        quota.capacity
    );
}

/// A clock that moves one tick every time it is read: any two reads differ, so a decision made
/// with a time read before the lock can only be older than the one the lock holder stored.
struct TickingClock {
    reads: AtomicU64,
}

impl lab::Clock for TickingClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.reads.fetch_add(1, Ordering::SeqCst) + 1)
    }
}

#[test]
fn bucket_time_never_runs_backwards_across_threads() {
    let capacity = rand::rng().random_range(1..5);
    let per = Duration::from_micros(rand::rng().random_range(1..4));
    let clock = Arc::new(TickingClock {
        reads: AtomicU64::new(0),
    });
    let limiter = Arc::new(TokenBucket::with_clock(
        Quota {
            capacity,
            refill_every: per,
        },
        clock,
    ));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            thread::spawn(move || {
                for _ in 0..5000 {
                    let d = limiter.try_acquire("shared");
                    assert!(
                        d.allowed || (d.retry_after > Duration::ZERO && d.retry_after <= per),
                        "requirement 4: a refused request got retry_after {:?}; wanted in (0, \
                         {per:?}]",
                        d.retry_after
                    );
                }
            })
        })
        .collect();
    let panicked = workers
        .into_iter()
        .map(|w| w.join())
        .filter(Result::is_err)
        .count();
    assert!(
        panicked == 0,
        "requirement 4: {panicked} of 8 threads panicked in try_acquire on a clock that moves at \
         every read; wanted none: read the clock under the lock, or a thread that waited for it \
         decides with a time older than the bucket's"
    );
}

#[test]
fn limiters_grant_exactly_the_budget_to_racing_threads() {
    let mut rng = rand::rng();
    let capacity = rng.random_range(100..1000);
    let (bucket, _c1) = bucket(Quota {
        capacity,
        refill_every: Duration::from_secs(3600),
    });
    let (window, _c2) = window(WindowQuota {
        limit: capacity,
        window: Duration::from_secs(3600),
    });
    let bucket = Arc::new(bucket);
    let window = Arc::new(window);
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (bucket, window, counts) = (bucket.clone(), window.clone(), counts.clone());
            thread::spawn(move || {
                for _ in 0..capacity / 2 {
                    if bucket.try_acquire("shared").allowed {
                        counts[0].fetch_add(1, Ordering::SeqCst);
                    }
                    if window.try_acquire("shared").allowed {
                        counts[1].fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let (bucket_got, window_got) = (
        counts[0].load(Ordering::SeqCst),
        counts[1].load(Ordering::SeqCst),
    );
    assert_eq!(
        bucket_got, capacity,
        "requirement 4: 8 racing threads got {bucket_got} tokens from a bucket of {capacity}; \
         wanted exactly {capacity}"
    );
    assert_eq!(
        window_got, capacity,
        "requirement 4: 8 racing threads got {window_got} requests from a window of {capacity}; \
         wanted exactly {capacity}"
    );
}

// Requirement 5: the middleware answers 429 with Retry-After, and RateLimit-* headers always.
fn app<L: lab::Limiter>(limiter: L, hits: Arc<AtomicU64>) -> Router {
    Router::new()
        .route(
            "/",
            get(move || async move {
                hits.fetch_add(1, Ordering::SeqCst);
                "hello"
            }),
        )
        .layer(RateLimitLayer::new(limiter))
}

async fn get_as(app: &Router, client: Option<&str>) -> axum::http::Response<Body> {
    let mut request = Request::builder().uri("/");
    if let Some(id) = client {
        request = request.header("x-client-id", id);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .expect("the router never fails")
}

fn header(response: &axum::http::Response<Body>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| {
            panic!(
                "requirement 5: header {name} missing; got {:?}",
                response.headers()
            )
        })
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn middleware_answers_429_with_retry_after() {
    let capacity = rand::rng().random_range(1..6);
    let quota = Quota {
        capacity,
        refill_every: Duration::from_millis(2500),
    };
    let (limiter, clock) = bucket(quota);
    let hits = Arc::new(AtomicU64::new(0));
    let app = app(limiter, hits.clone());
    for i in 0..capacity {
        let response = get_as(&app, Some("alice")).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "requirement 5: request {} of {capacity} got {}; wanted 200",
            i + 1,
            response.status()
        );
        let limit = header(&response, "ratelimit-limit");
        assert_eq!(
            limit,
            capacity.to_string(),
            "requirement 5: RateLimit-Limit {limit}; wanted {capacity}"
        );
        let remaining = header(&response, "ratelimit-remaining");
        assert_eq!(
            remaining,
            (capacity - 1 - i).to_string(),
            "requirement 5: RateLimit-Remaining {remaining} after request {}; wanted {}",
            i + 1,
            capacity - 1 - i
        );
        // The bucket is full again (i + 1) x 2.5 s later, rounded up to whole seconds.
        let reset = (2500 * (i + 1)).div_ceil(1000);
        let got = header(&response, "ratelimit-reset");
        assert_eq!(
            got,
            reset.to_string(),
            "requirement 5: RateLimit-Reset {got} after request {}; wanted {reset} ({} x 2.5 s, \
             rounded up)",
            i + 1,
            i + 1
        );
    }
    let hit = hits.load(Ordering::SeqCst);
    assert_eq!(
        hit, capacity,
        "requirement 5: the handler ran {hit} times; wanted {capacity}"
    );
    let refused = get_as(&app, Some("alice")).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "requirement 5: request {} got {}; wanted 429",
        capacity + 1,
        refused.status()
    );
    let retry = header(&refused, "retry-after");
    assert_eq!(
        retry, "3",
        "requirement 5: Retry-After {retry}; wanted 3 (2.5 s, rounded up)"
    );
    let remaining = header(&refused, "ratelimit-remaining");
    assert_eq!(
        remaining, "0",
        "requirement 5: RateLimit-Remaining {remaining} on a 429; wanted 0"
    );
    let limit = header(&refused, "ratelimit-limit");
    assert_eq!(
        limit,
        capacity.to_string(),
        "requirement 5: RateLimit-Limit {limit} on a 429; wanted {capacity}"
    );
    let hit = hits.load(Ordering::SeqCst);
    assert_eq!(
        hit, capacity,
        "requirement 5: the handler ran {hit} times; wanted {capacity}: a refused request never \
         reaches it"
    );
    clock.advance(Duration::from_millis(2500));
    let status = get_as(&app, Some("alice")).await.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "requirement 5: {status} one interval after the 429; wanted 200 (refilled)"
    );
}

#[tokio::test]
async fn middleware_limits_each_client_separately() {
    let (limiter, _clock) = bucket(Quota {
        capacity: 2,
        refill_every: Duration::from_secs(60),
    });
    let app = app(limiter, Arc::new(AtomicU64::new(0)));
    for i in 0..2 {
        let status = get_as(&app, Some("alice")).await.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "requirement 5: alice's request {} of 2 got {status}; wanted 200",
            i + 1
        );
    }
    let status = get_as(&app, Some("alice")).await.status();
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "requirement 5: alice's third request got {status}; wanted 429"
    );
    let bob = get_as(&app, Some("bob")).await;
    assert_eq!(
        bob.status(),
        StatusCode::OK,
        "requirement 5: bob got {} after alice was refused; wanted 200 (x-client-id keys)",
        bob.status()
    );
    let remaining = header(&bob, "ratelimit-remaining");
    assert_eq!(
        remaining, "1",
        "requirement 5: bob's RateLimit-Remaining {remaining}; wanted 1"
    );
    let status = get_as(&app, None).await.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "requirement 5: a request without x-client-id got {status}; wanted 200 (its own key)"
    );
}

#[tokio::test]
async fn middleware_works_with_the_sliding_window() {
    let limit = rand::rng().random_range(1..10);
    let (limiter, clock) = window(WindowQuota {
        limit,
        window: Duration::from_secs(10),
    });
    let hits = Arc::new(AtomicU64::new(0));
    let app = app(limiter, hits.clone());
    for i in 0..limit {
        let status = get_as(&app, Some("carol")).await.status();
        assert_eq!(
            status,
            StatusCode::OK,
            "requirement 5: request {} of {limit} got {status}; wanted 200",
            i + 1
        );
    }
    let refused = get_as(&app, Some("carol")).await;
    assert_eq!(
        refused.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "requirement 5: request {} in a window of {limit} got {}; wanted 429",
        limit + 1,
        refused.status()
    );
    let retry: u64 = header(&refused, "retry-after")
        .parse()
        .expect("requirement 5: Retry-After in whole seconds");
    assert!(
        (1..=20).contains(&retry),
        "requirement 5: Retry-After {retry} with a 10 s window; wanted 1 to 20 s"
    );
    let hit = hits.load(Ordering::SeqCst);
    assert_eq!(
        hit, limit,
        "requirement 5: the handler ran {hit} times; wanted {limit}"
    );
    clock.advance(Duration::from_secs(retry));
    let status = get_as(&app, Some("carol")).await.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "requirement 5: {status} after waiting Retry-After ({retry} s); wanted 200"
    );
}
