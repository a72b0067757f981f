//! Grader for Cache Patterns: the service against a real PostgreSQL (a fresh database per test)
//! and a real Redis (a key prefix per test). `ProductRepo::queries()` counts the database
//! queries, so each property of the cache is an exact count.

labkit::lab_mod!(lab);

use std::sync::Arc;
use std::time::Duration;

use lab::{CacheConfig, Product, ProductRepo, ProductService};
use labkit::keyspace::Prefix;
use labkit::pg::TestDb;
use labkit::wait::{eventually, within};
use rand::RngExt;
use redis::Commands;

const TTL: Duration = Duration::from_secs(60);
const JITTER: Duration = Duration::from_secs(10);

/// A database, a prefix, a repository, and a service over both.
struct Fixture {
    _db: TestDb,
    prefix: Prefix,
    repo: ProductRepo,
    service: Arc<ProductService>,
}

fn config(prefix: &Prefix) -> CacheConfig {
    CacheConfig {
        redis_url: prefix.url.clone(),
        prefix: prefix.prefix.clone(),
        ttl: TTL,
        ttl_jitter: JITTER,
        negative_ttl: Duration::from_secs(30),
        redis_timeout: Duration::from_secs(2),
    }
}

async fn fixture_with(config: impl FnOnce(&Prefix) -> CacheConfig) -> Fixture {
    let db = TestDb::new(16).await;
    let prefix = Prefix::new("ch4test");
    let repo = ProductRepo::new(db.pool.clone());
    repo.migrate().await.expect("migrate");
    let service = ProductService::new(repo.clone(), config(&prefix)).expect("ProductService::new");
    Fixture {
        _db: db,
        prefix,
        repo,
        service: Arc::new(service),
    }
}

async fn fixture() -> Fixture {
    fixture_with(config).await
}

fn random_product_fields() -> (String, i64) {
    let mut rng = rand::rng();
    (
        format!("product-{}", rng.random_range(0..1_000_000)),
        rng.random_range(0..100_000),
    )
}

impl Fixture {
    async fn create(&self) -> Product {
        let (name, price) = random_product_fields();
        self.repo.create(&name, price).await.expect("repo.create")
    }

    fn cached(&self, id: i64) -> Option<String> {
        self.prefix
            .redis()
            .get(self.service.cache_key(id))
            .expect("GET")
    }

    fn pttl(&self, id: i64) -> i64 {
        self.prefix
            .redis()
            .pttl(self.service.cache_key(id))
            .expect("PTTL")
    }
}

// Requirement 1: a miss reads PostgreSQL once and fills Redis; hits never reach PostgreSQL.
#[tokio::test]
async fn a_miss_loads_the_database_and_fills_the_cache() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        assert_eq!(
            f.service.cache_key(product.id),
            f.prefix.key(&format!("product:{}", product.id))
        );
        let before = f.repo.queries();
        assert_eq!(
            f.service.get(product.id).await.expect("get"),
            Some(product.clone())
        );
        assert_eq!(f.repo.queries() - before, 1, "a miss costs one query");

        let json = f.cached(product.id).expect("the miss must fill the cache");
        let cached: Product = serde_json::from_str(&json).expect("the entry is a Product as JSON");
        assert_eq!(cached, product);

        for _ in 0..rand::rng().random_range(3..10) {
            assert_eq!(
                f.service.get(product.id).await.expect("get"),
                Some(product.clone())
            );
        }
        assert_eq!(
            f.repo.queries() - before,
            1,
            "hits never reach the database"
        );
    })
    .await
}

#[tokio::test]
async fn reads_are_answered_from_the_cache() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        // Whatever the cache holds is what a read returns (here, a value only Redis knows).
        let planted = Product {
            name: "only-in-redis".into(),
            ..product.clone()
        };
        let json = serde_json::to_string(&planted).unwrap();
        let _: () = f
            .prefix
            .redis()
            .set_ex(f.service.cache_key(product.id), json, 60)
            .unwrap();
        let before = f.repo.queries();
        assert_eq!(f.service.get(product.id).await.expect("get"), Some(planted));
        assert_eq!(f.repo.queries(), before, "a hit makes no query");
    })
    .await
}

// Requirement 2: every entry has a TTL, with jitter.
#[tokio::test]
async fn entries_expire_with_a_jittered_ttl() {
    within(async {
        let f = fixture().await;
        let mut seconds = std::collections::HashSet::new();
        for _ in 0..30 {
            let product = f.create().await;
            f.service.get(product.id).await.expect("get");
            let pttl = f.pttl(product.id);
            let (low, high) = (
                TTL.as_millis() as i64 - 5_000,
                (TTL + JITTER).as_millis() as i64,
            );
            assert!(
                (low..=high).contains(&pttl),
                "PTTL {pttl} ms must be between ttl and ttl + jitter ({TTL:?} + {JITTER:?})"
            );
            seconds.insert(pttl / 1000);
        }
        assert!(
            seconds.len() >= 3,
            "30 entries filled together must not expire together: TTLs in seconds {seconds:?}"
        );
    })
    .await
}

// Requirement 3: writes invalidate.
#[tokio::test]
async fn update_invalidates_the_cached_entry() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        f.service.get(product.id).await.expect("get");
        assert!(f.cached(product.id).is_some(), "filled");

        let (name, price) = random_product_fields();
        let updated = f
            .service
            .update(product.id, &name, price)
            .await
            .expect("update");
        let expected = Product {
            id: product.id,
            name,
            price_cents: price,
        };
        assert_eq!(updated, Some(expected.clone()));
        assert_eq!(f.cached(product.id), None, "the update deletes the key");

        let before = f.repo.queries();
        assert_eq!(
            f.service.get(product.id).await.expect("get"),
            Some(expected)
        );
        assert_eq!(f.repo.queries() - before, 1, "the next read reloads once");
        let missing = f
            .service
            .update(product.id + 1000, "x", 1)
            .await
            .expect("update");
        assert_eq!(missing, None, "update of a missing product");
    })
    .await
}

#[tokio::test]
async fn delete_invalidates_the_cached_entry() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        assert_eq!(
            f.service.get(product.id).await.expect("get"),
            Some(product.clone())
        );
        assert!(
            f.service.delete(product.id).await.expect("delete"),
            "deleted"
        );
        assert_eq!(
            f.service.get(product.id).await.expect("get"),
            None,
            "gone after delete"
        );
        assert!(
            !f.service.delete(product.id).await.expect("delete"),
            "nothing to delete"
        );
    })
    .await
}

// Requirement 4: "not found" is cached, briefly.
#[tokio::test]
async fn not_found_is_cached_briefly() {
    within(async {
        let f = fixture_with(|p| CacheConfig {
            negative_ttl: Duration::from_millis(2000),
            ..config(p)
        })
        .await;
        let product = f.create().await;
        let missing = product.id + rand::rng().random_range(1..1000);
        let before = f.repo.queries();
        assert_eq!(f.service.get(missing).await.expect("get"), None);
        assert_eq!(f.service.get(missing).await.expect("get"), None);
        assert_eq!(
            f.repo.queries() - before,
            1,
            "the second miss is answered by the cache"
        );
        assert_eq!(
            f.cached(missing).as_deref(),
            Some("null"),
            "a negative entry is JSON null"
        );
        let pttl = f.pttl(missing);
        assert!(
            (1..=2000).contains(&pttl),
            "the negative TTL (2 s, not the 60 s of a product) applies: PTTL {pttl}"
        );

        let key = f.service.cache_key(missing);
        eventually("the negative entry expired", || async {
            !f.prefix.redis().exists::<_, bool>(&key).unwrap_or(true)
        })
        .await;
        assert_eq!(f.service.get(missing).await.expect("get"), None);
        assert_eq!(
            f.repo.queries() - before,
            2,
            "after expiry the database is asked again"
        );
    })
    .await
}

#[tokio::test]
async fn create_clears_a_negative_entry() {
    within(async {
        let f = fixture().await;
        let first = f.create().await;
        // Identity ids come one after the other: the next product gets first.id + 1.
        let next = first.id + 1;
        assert_eq!(
            f.service.get(next).await.expect("get"),
            None,
            "not created yet"
        );
        let (name, price) = random_product_fields();
        let created = f.service.create(&name, price).await.expect("create");
        assert_eq!(created.id, next);
        assert_eq!(
            f.service.get(next).await.expect("get"),
            Some(created),
            "visible at once"
        );
    })
    .await
}

// Requirement 5: single flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_cause_one_database_query() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        let before = f.repo.queries();
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let readers: Vec<_> = (0..100)
            .map(|_| {
                let (service, barrier) = (f.service.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    service.get(product.id).await
                })
            })
            .collect();
        for reader in readers {
            let got = reader.await.expect("reader panicked").expect("get");
            assert_eq!(got.as_ref(), Some(&product));
        }
        assert_eq!(
            f.repo.queries() - before,
            1,
            "100 concurrent misses, one query"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_of_a_missing_id_cause_one_query() {
    within(async {
        let f = fixture().await;
        let missing = f.create().await.id + 1000;
        let before = f.repo.queries();
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let readers: Vec<_> = (0..100)
            .map(|_| {
                let (service, barrier) = (f.service.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    service.get(missing).await
                })
            })
            .collect();
        for reader in readers {
            assert_eq!(reader.await.expect("reader panicked").expect("get"), None);
        }
        assert_eq!(
            f.repo.queries() - before,
            1,
            "100 concurrent misses, one query"
        );
    })
    .await
}

// Requirement 6: a bad or absent cache never breaks reads.
#[tokio::test]
async fn a_corrupt_cache_entry_is_replaced_from_the_database() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        let _: () = f
            .prefix
            .redis()
            .set_ex(f.service.cache_key(product.id), "{not json", 60)
            .unwrap();
        let before = f.repo.queries();
        assert_eq!(
            f.service.get(product.id).await.expect("get"),
            Some(product.clone())
        );
        assert_eq!(f.repo.queries() - before, 1, "a corrupt entry is a miss");
        let json = f.cached(product.id).expect("refilled");
        assert_eq!(
            serde_json::from_str::<Product>(&json).expect("valid now"),
            product
        );
    })
    .await
}

#[tokio::test]
async fn redis_down_still_answers_from_postgres() {
    within(async {
        let closed = labkit::net::closed_port();
        let f = fixture_with(|p| CacheConfig {
            redis_url: format!("redis://{closed}"),
            redis_timeout: Duration::from_millis(500),
            ..config(p)
        })
        .await;
        let product = f
            .service
            .create("offline", 100)
            .await
            .expect("create without Redis");
        let before = f.repo.queries();
        for _ in 0..3 {
            assert_eq!(
                f.service.get(product.id).await.expect("get"),
                Some(product.clone())
            );
        }
        assert_eq!(
            f.repo.queries() - before,
            3,
            "no cache: every read is a query"
        );
        let updated = f
            .service
            .update(product.id, "still offline", 200)
            .await
            .expect("update");
        assert_eq!(updated.map(|p| p.price_cents), Some(200));
        assert_eq!(f.service.get(product.id + 1000).await.expect("get"), None);
        assert!(f.service.delete(product.id).await.expect("delete"));
        assert!(
            f.service.cache_errors() > 0,
            "failed cache calls are counted"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_does_not_hang_reads() {
    within(async {
        // Accepts connections (the kernel completes the handshake) and never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().unwrap();
        let f = fixture_with(|p| CacheConfig {
            redis_url: format!("redis://{addr}"),
            redis_timeout: Duration::from_millis(200),
            ..config(p)
        })
        .await;
        let product = f.create().await;
        let before = f.repo.queries();
        for _ in 0..2 {
            let got = tokio::time::timeout(Duration::from_secs(8), f.service.get(product.id))
                .await
                .expect("a silent Redis must cost at most redis_timeout per call, not hang")
                .expect("get");
            assert_eq!(got, Some(product.clone()));
        }
        assert_eq!(f.repo.queries() - before, 2);
        assert!(f.service.cache_errors() > 0, "the timeouts are counted");
        drop(silent);
    })
    .await
}
