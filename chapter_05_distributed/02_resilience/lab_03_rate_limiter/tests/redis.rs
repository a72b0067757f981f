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
        .expect("connect within 5 s")
        .expect("connect to Redis")
}

async fn check(limiter: &RedisTokenBucket, key: &str) -> lab::Decision {
    tokio::time::timeout(STEP, limiter.check(key))
        .await
        .expect("a decision within 5 s")
        .expect("Redis answers")
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
        assert!(d.allowed, "request {} of {capacity}", i + 1);
        assert_eq!((d.limit, d.remaining), (capacity, capacity - 1 - i));
    }
    let d = check(&limiter, "alice").await;
    assert!(!d.allowed, "request {} must be refused", capacity + 1);
    assert!(
        d.retry_after <= Duration::from_secs(3600) && d.retry_after > Duration::from_secs(3500),
        "retry_after {:?}: about one interval of 1 h",
        d.retry_after
    );
    assert!(
        check(&limiter, "bob").await.allowed,
        "bob has his own bucket"
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
    assert!(check(&limiter, "k").await.allowed);
    assert!(check(&limiter, "k").await.allowed);
    let refused = check(&limiter, "k").await;
    assert!(!refused.allowed);
    assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= quota.refill_every);
    tokio::time::sleep(refused.retry_after + Duration::from_millis(50)).await;
    let d = check(&limiter, "k").await;
    assert!(
        d.allowed,
        "allowed again after retry_after ({:?})",
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
        "the bucket of client `dave` is the key <prefix>dave"
    );
    let ttl: i64 = p.redis().pttl(&keys[0]).expect("PTTL");
    assert!(
        ttl > 0,
        "an idle bucket must expire (PTTL {ttl}): set an expiry in the script"
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
        "8 racing tasks on two instances: exactly the capacity passes"
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
            StatusCode::TOO_MANY_REQUESTS => assert!(retry.is_some(), "429 without Retry-After"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        ok[0] + ok[1],
        capacity,
        "two instances, one budget of {capacity}"
    );
    assert!(ok[0] > 0 && ok[1] > 0, "both instances served: {ok:?}");

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
    assert_eq!(passed, capacity, "a concurrent burst over two instances");
}
