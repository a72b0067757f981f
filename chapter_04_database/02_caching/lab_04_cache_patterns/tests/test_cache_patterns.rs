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
    db: TestDb,
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
        db,
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
        let (key, wanted_key) = (
            f.service.cache_key(product.id),
            f.prefix.key(&format!("product:{}", product.id)),
        );
        assert!(
            key == wanted_key,
            "requirement 1: cache_key is {key:?}; wanted {wanted_key:?}"
        );
        let before = f.repo.queries();
        let got = f.service.get(product.id).await.expect("get");
        assert!(
            got.as_ref() == Some(&product),
            "requirement 1: get gave {got:?}; wanted {product:?}"
        );
        let queries = f.repo.queries() - before;
        assert!(
            queries == 1,
            "requirement 1: a miss made {queries} queries; wanted 1"
        );

        let json = f
            .cached(product.id)
            .expect("requirement 1: the miss must fill the cache");
        let cached: Result<Product, _> = serde_json::from_str(&json);
        assert!(
            matches!(&cached, Ok(p) if *p == product),
            "requirement 1: the cache holds {json:?}; wanted {product:?} as JSON"
        );

        let reads = rand::rng().random_range(3..10);
        for _ in 0..reads {
            let got = f.service.get(product.id).await.expect("get");
            assert!(
                got.as_ref() == Some(&product),
                "requirement 1: a hit gave {got:?}; wanted {product:?}"
            );
        }
        let queries = f.repo.queries() - before;
        assert!(
            queries == 1,
            "requirement 1: a miss and {reads} hits made {queries} queries; wanted 1 (hits never reach the database)"
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
        let got = f.service.get(product.id).await.expect("get");
        assert!(
            got.as_ref() == Some(&planted),
            "requirement 1: with {planted:?} in Redis, get gave {got:?}; wanted what Redis holds"
        );
        let queries = f.repo.queries() - before;
        assert!(
            queries == 0,
            "requirement 1: a hit made {queries} queries; wanted 0"
        );
    })
    .await
}

// Requirement 2: every entry has a TTL, with jitter.
#[tokio::test]
async fn entries_expire_with_a_jittered_ttl() {
    within(async {
        let f = fixture().await;
        let mut seconds = std::collections::HashSet::new();
        let mut beyond_ttl = 0;
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
                "requirement 2: a filled entry has PTTL {pttl} ms; wanted between ttl and ttl + jitter ({TTL:?} + {JITTER:?}) (-1 is no TTL at all)"
            );
            seconds.insert(pttl / 1000);
            beyond_ttl += usize::from(pttl > TTL.as_millis() as i64);
        }
        // A TTL of exactly `ttl` is at most `ttl` when read back; the jitter makes most entries
        // live longer than that (by 0 to 10 s, uniformly).
        assert!(
            seconds.len() >= 3 && beyond_ttl >= 10,
            "requirement 2: 30 entries filled together got TTLs in {} distinct seconds, {beyond_ttl} above ttl; wanted them spread over ttl..=ttl + jitter (at least 3 seconds, 10 above ttl)",
            seconds.len()
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
        assert!(
            f.cached(product.id).is_some(),
            "requirement 1: a read of product {} did not fill the cache",
            product.id
        );

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
        assert!(
            updated.as_ref() == Some(&expected),
            "requirement 3: update returned {updated:?}; wanted {expected:?}"
        );
        let cached = f.cached(product.id);
        assert!(
            cached.is_none(),
            "requirement 3: after the update the cache holds {cached:?}; wanted the key deleted"
        );

        let before = f.repo.queries();
        let got = f.service.get(product.id).await.expect("get");
        let queries = f.repo.queries() - before;
        assert!(
            got.as_ref() == Some(&expected) && queries == 1,
            "requirement 3: the read after an update gave {got:?} with {queries} queries; wanted {expected:?}, reloaded with one query"
        );
        let missing = f
            .service
            .update(product.id + 1000, "x", 1)
            .await
            .expect("update");
        assert!(
            missing.is_none(),
            "requirement 3: update of a missing product returned {missing:?}; wanted None"
        );
    })
    .await
}

#[tokio::test]
async fn delete_invalidates_the_cached_entry() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        let got = f.service.get(product.id).await.expect("get");
        assert!(
            got.as_ref() == Some(&product),
            "requirement 1: get gave {got:?}; wanted {product:?}"
        );
        assert!(
            f.service.delete(product.id).await.expect("delete"),
            "requirement 3: delete of an existing product returned false"
        );
        let got = f.service.get(product.id).await.expect("get");
        assert!(
            got.is_none(),
            "requirement 3: get after delete gave {got:?}; wanted None (the delete deletes the key)"
        );
        assert!(
            !f.service.delete(product.id).await.expect("delete"),
            "requirement 3: a second delete returned true; wanted false"
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
        for _ in 0..2 {
            let got = f.service.get(missing).await.expect("get");
            assert!(
                got.is_none(),
                "requirement 4: get of missing id {missing} gave {got:?}; wanted None"
            );
        }
        let queries = f.repo.queries() - before;
        assert!(
            queries == 1,
            "requirement 4: two reads of a missing id made {queries} queries; wanted 1 (the second is answered by the cache)"
        );
        let cached = f.cached(missing);
        assert!(
            cached.as_deref() == Some("null"),
            "requirement 4: the cache holds {cached:?} for a missing id; wanted JSON null"
        );
        let pttl = f.pttl(missing);
        assert!(
            (1..=2000).contains(&pttl),
            "requirement 4: the negative entry has PTTL {pttl}; wanted 1..=2000 (negative_ttl, not the 60 s of a product)"
        );

        let key = f.service.cache_key(missing);
        eventually("requirement 4: the negative entry expired", || async {
            !f.prefix.redis().exists::<_, bool>(&key).unwrap_or(true)
        })
        .await;
        let got = f.service.get(missing).await.expect("get");
        let queries = f.repo.queries() - before;
        assert!(
            got.is_none() && queries == 2,
            "requirement 4: after expiry get gave {got:?} with {queries} queries in all; wanted None and 2 (the database is asked again)"
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
        let got = f.service.get(next).await.expect("get");
        assert!(
            got.is_none(),
            "requirement 4: get of id {next}, not created yet, gave {got:?}; wanted None"
        );
        let (name, price) = random_product_fields();
        let created = f.service.create(&name, price).await.expect("create");
        assert!(
            created.id == next,
            "the next product got id {}; wanted {next}",
            created.id
        );
        let got = f.service.get(next).await.expect("get");
        assert!(
            got.as_ref() == Some(&created),
            "requirement 4: get right after create gave {got:?}; wanted {created:?} (create deletes the negative entry)"
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
            assert!(
                got.as_ref() == Some(&product),
                "requirement 5: a concurrent read gave {got:?}; wanted {product:?}"
            );
        }
        let queries = f.repo.queries() - before;
        assert!(
            queries == 1,
            "requirement 5: 100 concurrent misses of one key made {queries} queries; wanted 1 (one load, shared)"
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
            let got = reader.await.expect("reader panicked").expect("get");
            assert!(
                got.is_none(),
                "requirement 5: a concurrent read of missing id {missing} gave {got:?}; wanted None"
            );
        }
        let queries = f.repo.queries() - before;
        assert!(
            queries == 1,
            "requirement 5: 100 concurrent misses of a missing id made {queries} queries; wanted 1"
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
        let got = f.service.get(product.id).await.expect("get");
        let queries = f.repo.queries() - before;
        assert!(
            got.as_ref() == Some(&product) && queries == 1,
            "requirement 6: with a corrupt entry, get gave {got:?} with {queries} queries; wanted {product:?} from the database (a corrupt entry is a miss)"
        );
        let json = f.cached(product.id);
        let refilled = json.as_deref().map(serde_json::from_str::<Product>);
        assert!(
            matches!(&refilled, Some(Ok(p)) if *p == product),
            "requirement 6: after the reload the cache holds {json:?}; wanted the product as JSON"
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
            let got = f.service.get(product.id).await.expect("get");
            assert!(
                got.as_ref() == Some(&product),
                "requirement 6: with Redis down, get gave {got:?}; wanted {product:?}"
            );
        }
        let queries = f.repo.queries() - before;
        assert!(
            queries == 3,
            "requirement 6: with Redis down, 3 reads made {queries} queries; wanted 3"
        );
        let updated = f
            .service
            .update(product.id, "still offline", 200)
            .await
            .expect("update");
        let price = updated.map(|p| p.price_cents);
        assert!(
            price == Some(200),
            "requirement 6: with Redis down, update gave price {price:?}; wanted Some(200)"
        );
        let got = f.service.get(product.id + 1000).await.expect("get");
        assert!(
            got.is_none(),
            "requirement 6: with Redis down, a missing id gave {got:?}; wanted None"
        );
        assert!(
            f.service.delete(product.id).await.expect("delete"),
            "requirement 6: with Redis down, delete returned false"
        );
        assert!(
            f.service.cache_errors() > 0,
            "requirement 6: cache_errors() is 0 after calls with Redis down; wanted each failure counted"
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
                .expect("requirement 6: a read with a silent Redis did not return within 8 s; wanted at most about redis_timeout per Redis call (set the connection and response timeouts)")
                .expect("get");
            assert!(
                got.as_ref() == Some(&product),
                "requirement 6: with a silent Redis, get gave {got:?}; wanted {product:?}"
            );
        }
        let queries = f.repo.queries() - before;
        assert!(
            queries == 2,
            "requirement 6: with a silent Redis, 2 reads made {queries} queries; wanted 2"
        );
        assert!(
            f.service.cache_errors() > 0,
            "requirement 6: cache_errors() is 0 after Redis timeouts; wanted them counted"
        );
        drop(silent);
    })
    .await
}

/// How many backends of the test database wait on a lock right now.
async fn lock_waiters(f: &Fixture) -> i64 {
    let mut admin = f.db.pool.acquire().await.expect("a connection");
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&mut *admin)
    .await
    .expect("pg_stat_activity")
}

/// Requirement 3: the order of "write the database, delete the key" matters. The test holds
/// the product's row lock, so the update waits inside PostgreSQL; a read meanwhile refills the
/// cache with the row as committed (the old one). Deleting the key after the write removes that
/// entry; deleting it before leaves the old row cached until the TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_during_an_update_cannot_leave_the_old_row_cached() {
    within(async {
        let f = fixture().await;
        let product = f.create().await;
        let mut lock = f.db.pool.begin().await.expect("BEGIN");
        sqlx::query("SELECT id FROM products WHERE id = $1 FOR UPDATE")
            .bind(product.id)
            .execute(&mut *lock)
            .await
            .expect("SELECT ... FOR UPDATE");
        let (name, price) = random_product_fields();
        let update = tokio::spawn({
            let (service, name) = (f.service.clone(), name.clone());
            async move { service.update(product.id, &name, price).await }
        });
        eventually("requirement 3: the update waits for the row lock", || async {
            lock_waiters(&f).await > 0
        })
        .await;
        // A read while the update waits: answered from the cache or from the committed row.
        let during = f.service.get(product.id).await.expect("get during the update");
        assert!(
            during.as_ref() == Some(&product),
            "requirement 1: a read while the update waits gave {during:?}; wanted the committed {product:?}"
        );
        lock.commit().await.expect("COMMIT");
        update
            .await
            .expect("update panicked")
            .expect("update");
        let after = f.service.get(product.id).await.expect("get after the update");
        let expected = Product {
            id: product.id,
            name,
            price_cents: price,
        };
        assert!(
            after.as_ref() == Some(&expected),
            "requirement 3: after the update returned, get gave {after:?}; wanted {expected:?} (write PostgreSQL first, then delete the key: a read between a delete and the write refills the old row)"
        );
    })
    .await
}
