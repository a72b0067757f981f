//! ## Goal
//! Put Redis in front of PostgreSQL the way production services do, and prove each property with
//! a count of database queries. `ProductRepo` (given) is the source of truth and counts its
//! queries; you build `ProductService`: cache-aside reads with a jittered TTL, invalidation on
//! every write, negative caching of "not found", single-flight loading so that a stampede of 100
//! concurrent misses costs one query, and a degraded mode in which a dead or silent Redis makes
//! the service slower, never broken.
//!
//! ## Requirements
//! 1. A read looks in Redis first. A miss reads PostgreSQL once and fills `<prefix>product:<id>`
//!    with the product as JSON (`serde_json` of `Product`); later reads are answered from Redis
//!    without a query, and return what Redis holds.
//! 2. A filled entry lives `ttl` plus a random jitter in `0..=ttl_jitter`, so entries filled
//!    together do not expire together.
//! 3. `update` and `delete` write PostgreSQL first, then delete the key; the next read reloads.
//! 4. A missing product is cached as JSON `null` for `negative_ttl` (a second read makes no
//!    query; after expiry the database is asked again). `create` deletes the new product's key,
//!    so an earlier "not found" for that id cannot hide it.
//! 5. Concurrent misses of one key share one load: 100 simultaneous reads of a cold key, present
//!    or missing, make exactly one query.
//! 6. Redis never breaks a call: an entry that is not valid JSON is a miss and gets overwritten; a
//!    Redis that refuses connections or never answers costs at most about `redis_timeout` per
//!    call, the answer comes from PostgreSQL, a warning is logged (`tracing::warn!`) and
//!    `cache_errors()` counts it. `ProductService::new` does not connect, so the service starts
//!    while Redis is down.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 4.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: A read looks in Redis first
//! - [ ] Requirement 2: A filled entry lives `ttl` plus a random jitter in `0..=ttl_jitter`, so
//!   entries filled together do not expire together
//! - [ ] Requirement 3: `update` and `delete` write PostgreSQL first, then delete the key; the next
//!   read reloads
//! - [ ] Requirement 4: A missing product is cached as JSON `null` for `negative_ttl` (a second
//!   read makes no query; after expiry the database is asked again)
//! - [ ] Requirement 5: Concurrent misses of one key share one load: 100 simultaneous reads of a
//!   cold key, present or missing, make exactly one query
//! - [ ] Requirement 6: Redis never breaks a call: an entry that is not valid JSON is a miss and
//!   gets overwritten; a Redis that refuses connections or never answers costs at most about
//!   `redis_timeout` per call, the answer comes from PostgreSQL, a warning is logged
//!   (`tracing::warn!`) and `cache_errors()` counts it
//!
//! ## Notes
//!
//! Cache Patterns: cache-aside with Redis in front of PostgreSQL.
//!
//! `ProductRepo` below is given and complete: the source of truth, one counted query per call
//! (the grader reads `queries()` to see your cache work). Build `ProductService`, the same
//! operations through a Redis cache:
//!
//! - reads: Redis first; on a miss PostgreSQL, then fill Redis with `ttl` plus random jitter;
//! - writes: PostgreSQL first, then delete the key;
//! - "not found" cached too, as JSON `null`, for `negative_ttl`;
//! - single flight: concurrent misses of one key share one database query;
//! - Redis down or silent: every call still answers from PostgreSQL (log it, count it).
//!
//! Read README.md for the requirements; `cargo lab test 4.4` grades this file.
//!
//! Remove the `allow` below once every argument and field is used.
#![allow(unused_variables, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, FromRow};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// A product, in PostgreSQL as a row and in Redis as JSON.
#[derive(Debug, Clone, PartialEq, Eq, FromRow, Serialize, Deserialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
}

/// The repository: one query per call, each one counted so the grader can see the cache work.
#[derive(Clone)]
pub struct ProductRepo {
    pool: PgPool,
    queries: Arc<AtomicU64>,
}

impl ProductRepo {
    pub fn new(pool: PgPool) -> Self {
        ProductRepo {
            pool,
            queries: Arc::new(AtomicU64::new(0)),
        }
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATOR.run(&self.pool).await
    }

    /// Queries run so far through this repository (and its clones).
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }

    fn count(&self) {
        self.queries.fetch_add(1, Ordering::SeqCst);
    }

    pub async fn create(&self, name: &str, price_cents: i64) -> Result<Product, sqlx::Error> {
        self.count();
        sqlx::query_as::<_, Product>(
            "INSERT INTO products (name, price_cents) VALUES ($1, $2)
             RETURNING id, name, price_cents",
        )
        .bind(name)
        .bind(price_cents)
        .fetch_one(&self.pool)
        .await
    }

    pub async fn get(&self, id: i64) -> Result<Option<Product>, sqlx::Error> {
        self.count();
        sqlx::query_as::<_, Product>("SELECT id, name, price_cents FROM products WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    pub async fn update(
        &self,
        id: i64,
        name: &str,
        price_cents: i64,
    ) -> Result<Option<Product>, sqlx::Error> {
        self.count();
        sqlx::query_as::<_, Product>(
            "UPDATE products SET name = $2, price_cents = $3 WHERE id = $1
             RETURNING id, name, price_cents",
        )
        .bind(id)
        .bind(name)
        .bind(price_cents)
        .fetch_optional(&self.pool)
        .await
    }

    pub async fn delete(&self, id: i64) -> Result<bool, sqlx::Error> {
        self.count();
        let result = sqlx::query("DELETE FROM products WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() > 0)
    }
}

/// Where the cache is and how long entries live.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    pub redis_url: String,
    /// Put in front of every key: `<prefix>product:<id>`.
    pub prefix: String,
    /// Lifetime of a cached product...
    pub ttl: Duration,
    /// ...plus a random extra between zero and this.
    pub ttl_jitter: Duration,
    /// Lifetime of a cached "not found".
    pub negative_ttl: Duration,
    /// Longest wait for Redis (connect or command) before falling back to PostgreSQL.
    pub redis_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("invalid cache configuration: {0}")]
    Config(#[from] redis::RedisError),
}

/// Products through the cache.
pub struct ProductService {
    repo: ProductRepo,
    config: CacheConfig,
    // Placeholder: add what you need (a redis::Client, the connection once opened, an error
    // counter, the loads in progress per key...).
}

impl ProductService {
    /// Builds the service WITHOUT touching Redis (a cache that is down must not stop the
    /// service from starting); only a malformed `redis_url` is an error
    /// (`redis::Client::open` checks it without connecting).
    pub fn new(repo: ProductRepo, config: CacheConfig) -> Result<Self, ServiceError> {
        todo!("open the redis::Client (no connection yet) and keep what the service needs")
    }

    /// `<prefix>product:<id>`.
    pub fn cache_key(&self, id: i64) -> String {
        todo!("the product's key")
    }

    /// Redis failures so far (each one answered from PostgreSQL instead).
    pub fn cache_errors(&self) -> u64 {
        todo!("read the error counter")
    }

    /// Cache-aside read. A hit (a product, or a cached `null`) makes no query. A miss reads
    /// PostgreSQL once, however many callers miss the same key at the same time, and fills
    /// the cache: the product as JSON for `ttl` + random(0..=`ttl_jitter`), or `null` for
    /// `negative_ttl`. An entry that is not valid JSON is a miss. When Redis fails or takes
    /// longer than `redis_timeout`, answer from PostgreSQL, log a warning, count the error.
    pub async fn get(&self, id: i64) -> Result<Option<Product>, ServiceError> {
        todo!("Redis GET; on a miss, one load per key (single flight), then fill")
    }

    /// Creates the product, then deletes its key (a cached "not found" for the new id must
    /// not hide it).
    pub async fn create(&self, name: &str, price_cents: i64) -> Result<Product, ServiceError> {
        todo!("repo.create, then DEL the key")
    }

    /// Updates PostgreSQL, then deletes the key.
    pub async fn update(
        &self,
        id: i64,
        name: &str,
        price_cents: i64,
    ) -> Result<Option<Product>, ServiceError> {
        todo!("repo.update, then DEL the key")
    }

    /// Deletes from PostgreSQL, then deletes the key.
    pub async fn delete(&self, id: i64) -> Result<bool, ServiceError> {
        todo!("repo.delete, then DEL the key")
    }
}

/// The demo keeps its table in a database of its own (see lab 4.1).
const DEMO_DATABASE: &str = "ch4_cache_patterns_demo";

async fn demo_repo() -> Result<ProductRepo, Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/course".to_string());
    let admin: PgConnectOptions = url.parse()?;
    let mut conn = PgConnection::connect_with(&admin).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DEMO_DATABASE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {DEMO_DATABASE}"
        )))
        .execute(&mut conn)
        .await?;
    }
    conn.close().await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(admin.database(DEMO_DATABASE))
        .await?;
    let repo = ProductRepo::new(pool);
    repo.migrate().await?;
    Ok(repo)
}

/// The demo takes no options; `--help` says what it does.
#[derive(Parser)]
#[command(
    name = "ch4_cache_patterns",
    about = "Cache-aside reads, an update, and 100 concurrent reads of a missing id, with Redis \
             at REDIS_URL and PostgreSQL at DATABASE_URL; RUST_LOG=debug shows more"
)]
struct Args {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    Args::parse(); // `--help` exits 0, any argument exits 2
    // Warnings (the degraded mode) go to stderr; RUST_LOG=debug shows more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let repo = demo_repo().await?;
    let config = CacheConfig {
        redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        prefix: "ch4demo:cache:".into(),
        ttl: Duration::from_secs(60),
        ttl_jitter: Duration::from_secs(10),
        negative_ttl: Duration::from_secs(10),
        redis_timeout: Duration::from_millis(250),
    };
    let service = Arc::new(ProductService::new(repo.clone(), config)?);

    let product = service.create("teapot", 1999).await?;
    for round in 1..=3 {
        let start = std::time::Instant::now();
        let got = service.get(product.id).await?;
        let (elapsed, queries) = (start.elapsed(), repo.queries());
        println!("get #{round}: {got:?} in {elapsed:?} (database queries so far: {queries})");
    }
    service.update(product.id, "teapot", 2499).await?;
    println!("after update: {:?}", service.get(product.id).await?);

    let before = repo.queries();
    let readers: Vec<_> = (0..100)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.get(-1).await })
        })
        .collect();
    for reader in readers {
        reader.await??;
    }
    println!(
        "100 concurrent reads of a missing id: {} query",
        repo.queries() - before
    );

    service.delete(product.id).await?;
    println!("cache errors: {}", service.cache_errors());
    Ok(())
}
