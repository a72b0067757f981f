//! Grader for the distributed token bucket: a real Redis (`REDIS_URL`, default
//! redis://127.0.0.1:6379), shared by several limiter instances and by two real HTTP servers.
//!
//! Each test works under its own random key prefix and deletes its keys at the end, so tests
//! run in parallel and leave nothing behind.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use labkit::keyspace::Prefix;
use rand::RngExt;
use redis::Commands;

labkit::lab_mod!(lab);
use lab::{Limiter, Quota, RateLimitLayer, RedisTokenBucket};

const STEP: Duration = Duration::from_secs(5);

async fn limiter(p: &Prefix, quota: Quota) -> RedisTokenBucket {
    tokio::time::timeout(STEP, RedisTokenBucket::connect(&p.url, &p.prefix, quota))
        .await
        .expect("requirement 6: RedisTokenBucket::connect did not finish within 5 s")
        .expect("requirement 6: RedisTokenBucket::connect failed")
}

async fn check(limiter: &RedisTokenBucket, key: &str) -> lab::Decision {
    tokio::time::timeout(STEP, limiter.check(key))
        .await
        .expect("requirement 6: no decision within 5 s")
        .expect("requirement 6: the limiter's Redis call failed")
}

fn hourly(capacity: u64) -> Quota {
    Quota {
        capacity,
        refill_every: Duration::from_secs(3600),
    }
}

// Requirement 6: the Redis bucket enforces the same quota as the local one.
#[tokio::test]
async fn redis_bucket_allows_exactly_the_capacity() {
    let p = Prefix::new("ch5:ratelimit:test");
    let capacity = rand::rng().random_range(2..20);
    let limiter = limiter(&p, hourly(capacity)).await;
    for i in 0..capacity {
        let d = check(&limiter, "alice").await;
        assert!(
            d.allowed,
            "requirement 6: request {} of {capacity} was refused; wanted allowed",
            i + 1
        );
        assert_eq!(
            (d.limit, d.remaining),
            (capacity, capacity - 1 - i),
            "requirement 6: (limit, remaining) = ({}, {}); wanted ({capacity}, {})",
            d.limit,
            d.remaining,
            capacity - 1 - i
        );
    }
    let d = check(&limiter, "alice").await;
    assert!(
        !d.allowed,
        "requirement 6: request {} was allowed; wanted refused after {capacity}",
        capacity + 1
    );
    assert!(
        d.retry_after <= Duration::from_secs(3600) && d.retry_after > Duration::from_secs(3500),
        "requirement 6: retry_after {:?}; wanted about one interval of 1 h",
        d.retry_after
    );
    assert!(
        check(&limiter, "bob").await.allowed,
        "requirement 6: bob was refused after alice emptied her bucket; wanted his own bucket"
    );
}

#[tokio::test]
async fn redis_bucket_refills_over_time() {
    let p = Prefix::new("ch5:ratelimit:test");
    let quota = Quota {
        capacity: 2,
        refill_every: Duration::from_millis(300),
    };
    let limiter = limiter(&p, quota).await;
    for i in 1..=2 {
        assert!(
            check(&limiter, "k").await.allowed,
            "requirement 6: request {i} of a bucket of 2 was refused; wanted allowed"
        );
    }
    let refused = check(&limiter, "k").await;
    assert!(
        !refused.allowed,
        "requirement 6: request 3 of a bucket of 2 was allowed; wanted refused"
    );
    assert!(
        refused.retry_after > Duration::ZERO && refused.retry_after <= quota.refill_every,
        "requirement 6: retry_after {:?}; wanted in (0, {:?}]",
        refused.retry_after,
        quota.refill_every
    );
    tokio::time::sleep(refused.retry_after + Duration::from_millis(50)).await;
    let d = check(&limiter, "k").await;
    assert!(
        d.allowed,
        "requirement 6: refused after waiting retry_after ({:?}) and 50 ms; wanted allowed",
        refused.retry_after
    );
}

#[tokio::test]
async fn redis_bucket_keys_expire_when_idle() {
    let p = Prefix::new("ch5:ratelimit:test");
    let limiter = limiter(&p, hourly(3)).await;
    check(&limiter, "dave").await;
    let keys = p.keys();
    assert_eq!(
        keys,
        vec![format!("{}dave", p.prefix)],
        "requirement 6: the keys in Redis are {keys:?}; wanted only `{}dave`, the bucket of \
         client `dave`",
        p.prefix
    );
    let ttl: i64 = p.redis().pttl(&keys[0]).expect("PTTL");
    assert!(
        ttl > 0,
        "requirement 6: the bucket's PTTL is {ttl}; wanted an expiry (a positive PTTL) set in \
         the script"
    );
}

// Requirement 7: instances sharing Redis share the budget, even when they race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_instances_never_exceed_the_shared_budget() {
    let p = Prefix::new("ch5:ratelimit:test");
    let capacity = rand::rng().random_range(10..60);
    let a = std::sync::Arc::new(limiter(&p, hourly(capacity)).await);
    let b = std::sync::Arc::new(limiter(&p, hourly(capacity)).await);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.spawn(async move {
            let mut allowed = 0;
            for _ in 0..capacity {
                if check(&limiter, "shared").await.allowed {
                    allowed += 1;
                }
            }
            allowed
        });
    }
    let mut total = 0;
    while let Some(allowed) = tasks.join_next().await {
        total += allowed.expect("task");
    }
    assert_eq!(
        total, capacity,
        "requirement 7: 8 racing tasks on two instances got {total} allowed; wanted exactly the \
         capacity {capacity}"
    );
}

async fn start_instance(p: &Prefix, quota: Quota) -> SocketAddr {
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(RateLimitLayer::new(limiter(p, quota).await));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn get_status(
    client: &Client<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
    who: &str,
) -> (StatusCode, Option<String>) {
    let request = Request::builder()
        .uri(format!("http://{addr}/"))
        .header("x-client-id", who)
        .body(Empty::new())
        .expect("request");
    let response = tokio::time::timeout(STEP, client.request(request))
        .await
        .expect("an answer within 5 s")
        .expect("HTTP request");
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or("").to_string());
    (response.status(), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_instances_share_one_redis_budget() {
    let p = Prefix::new("ch5:ratelimit:test");
    let capacity = rand::rng().random_range(4..12);
    let quota = hourly(capacity);
    let servers = [
        start_instance(&p, quota).await,
        start_instance(&p, quota).await,
    ];
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    // Alternating between the two servers: together they allow `capacity`, not twice that.
    let mut ok = [0, 0];
    for i in 0..capacity * 2 {
        let (status, retry) = get_status(&client, servers[i as usize % 2], "erin").await;
        match status {
            StatusCode::OK => ok[i as usize % 2] += 1,
            StatusCode::TOO_MANY_REQUESTS => assert!(
                retry.is_some(),
                "requirement 5: a 429 without Retry-After; wanted the header"
            ),
            other => panic!("requirement 5: status {other}; wanted 200 or 429"),
        }
    }
    assert_eq!(
        ok[0] + ok[1],
        capacity,
        "requirement 7: two instances allowed {} requests ({ok:?}); wanted one budget of \
         {capacity}",
        ok[0] + ok[1]
    );
    assert!(
        ok[0] > 0 && ok[1] > 0,
        "requirement 7: the instances allowed {ok:?}; wanted both to serve some"
    );

    // A concurrent burst on both servers for another client.
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..capacity * 4 {
        let (client, addr) = (client.clone(), servers[i as usize % 2]);
        burst.spawn(async move { get_status(&client, addr, "frank").await.0 });
    }
    let mut passed = 0;
    while let Some(status) = burst.join_next().await {
        if status.expect("request task") == StatusCode::OK {
            passed += 1;
        }
    }
    assert_eq!(
        passed, capacity,
        "requirement 7: a concurrent burst over two instances got {passed} through; wanted \
         exactly {capacity}"
    );
}
