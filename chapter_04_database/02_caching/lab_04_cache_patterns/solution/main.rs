//! Cache Patterns: cache-aside with Redis in front of PostgreSQL.
//!
//! `ProductRepo` is the source of truth (given, one counted query per call). `ProductService`
//! puts a cache in front of it:
//!
//! - **Cache-aside reads**: look in Redis; on a miss read PostgreSQL and fill Redis with a TTL.
//!   The TTL gets random **jitter**, so entries filled together do not expire together.
//! - **Invalidation on write**: write PostgreSQL first, then delete the key (not overwrite it:
//!   a delete cannot race another writer into leaving the older value behind).
//! - **Negative caching**: "no such product" is cached too (as JSON `null`), briefly, so a
//!   flood of requests for a missing id does not all reach the database.
//! - **Single flight**: when a hot key misses, one request loads it and the others wait for
//!   that result: 100 concurrent misses, one query. Without it the database takes the whole
//!   stampede at the worst moment.
//! - **Degraded, not down**: the cache is an optimisation. When Redis fails or hangs, every
//!   call still answers from PostgreSQL (slower), logs a warning and counts the error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use rand::RngExt;
use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, AsyncConnectionConfig, RedisError};
use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, FromRow};
use tokio::sync::OnceCell;

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
    Config(#[from] RedisError),
}

/// The Redis side: a multiplexed connection opened on first use and reopened after a failure,
/// every call under `redis_timeout`. It never returns an error to the service: `None` means
/// "no answer from the cache", and the caller goes to the database.
struct Cache {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    timeout: Duration,
    errors: AtomicU64,
}

/// A cache entry as read: `Some(product)`, or `None` for a cached "not found".
type Entry = Option<Product>;

impl Cache {
    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Logs and counts a failure; forgets a connection that is no longer usable.
    async fn failed(&self, what: &str, key: &str, error: &RedisError) {
        self.errors.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(%error, key, "cache {what} failed: going on without the cache");
        if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
            *self.conn.lock().await = None;
        }
    }

    /// `Some(entry)` on a hit, `None` on a miss or when Redis cannot answer.
    async fn get(&self, key: &str) -> Option<Entry> {
        let result = async {
            let mut conn = self.connection().await?;
            conn.get::<_, Option<String>>(key).await
        }
        .await;
        match result {
            Ok(Some(json)) => match serde_json::from_str::<Entry>(&json) {
                Ok(entry) => Some(entry),
                Err(error) => {
                    // Somebody wrote garbage: a miss, and the fill will overwrite it.
                    self.errors.fetch_add(1, Ordering::SeqCst);
                    tracing::warn!(%error, key, "corrupt cache entry ignored");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                self.failed("read", key, &error).await;
                None
            }
        }
    }

    async fn put(&self, key: &str, entry: &Entry, ttl: Duration) {
        let json = serde_json::to_string(entry).expect("a Product always serializes");
        let result = async {
            let mut conn = self.connection().await?;
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("PX")
                .arg(ttl.as_millis().max(1) as u64)
                .query_async::<()>(&mut conn)
                .await
        }
        .await;
        if let Err(error) = result {
            self.failed("fill", key, &error).await;
        }
    }

    async fn delete(&self, key: &str) {
        let result = async {
            let mut conn = self.connection().await?;
            conn.del::<_, ()>(key).await
        }
        .await;
        if let Err(error) = result {
            // The stale entry stays until its TTL: that bound is why every entry has one.
            self.failed("invalidation", key, &error).await;
        }
    }
}

/// Products through the cache.
pub struct ProductService {
    repo: ProductRepo,
    config: CacheConfig,
    cache: Cache,
    /// The loads in progress, one per key: callers that miss at the same time share one.
    inflight: Mutex<HashMap<i64, Arc<OnceCell<Entry>>>>,
}

impl ProductService {
    /// Builds the service without touching Redis (a cache that is down must not stop the
    /// service from starting); only a malformed `redis_url` is an error.
    pub fn new(repo: ProductRepo, config: CacheConfig) -> Result<Self, ServiceError> {
        let cache = Cache {
            client: redis::Client::open(config.redis_url.as_str())?,
            conn: tokio::sync::Mutex::new(None),
            timeout: config.redis_timeout,
            errors: AtomicU64::new(0),
        };
        Ok(ProductService {
            repo,
            config,
            cache,
            inflight: Mutex::new(HashMap::new()),
        })
    }

    pub fn cache_key(&self, id: i64) -> String {
        format!("{}product:{id}", self.config.prefix)
    }

    /// Redis failures so far (each one answered from PostgreSQL instead).
    pub fn cache_errors(&self) -> u64 {
        self.cache.errors.load(Ordering::SeqCst)
    }

    /// Cache-aside read with single flight.
    pub async fn get(&self, id: i64) -> Result<Option<Product>, ServiceError> {
        let key = self.cache_key(id);
        if let Some(entry) = self.cache.get(&key).await {
            return Ok(entry);
        }
        // A miss. Join the load in progress for this key, or start one.
        let flight = self.inflight_lock().entry(id).or_default().clone();
        let result = flight
            .get_or_try_init(|| self.load(id, &key))
            .await
            .cloned();
        // The first caller back retires the flight, so later misses start a new one
        // instead of reading this result forever.
        let mut inflight = self.inflight_lock();
        if inflight
            .get(&id)
            .is_some_and(|current| Arc::ptr_eq(current, &flight))
        {
            inflight.remove(&id);
        }
        result
    }

    /// The one load of a flight.
    async fn load(&self, id: i64, key: &str) -> Result<Entry, ServiceError> {
        // Check again: the previous flight may have filled the key between our miss and now.
        if let Some(entry) = self.cache.get(key).await {
            return Ok(entry);
        }
        let product = self.repo.get(id).await?;
        let ttl = match product {
            Some(_) => self.ttl_with_jitter(),
            None => self.config.negative_ttl,
        };
        self.cache.put(key, &product, ttl).await;
        Ok(product)
    }

    fn ttl_with_jitter(&self) -> Duration {
        let jitter_ms = self.config.ttl_jitter.as_millis() as u64;
        self.config.ttl + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }

    fn inflight_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<OnceCell<Entry>>>> {
        self.inflight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates the product, then deletes its key: a cached "not found" for the new id (someone
    /// asked for it before it existed) must not hide it.
    pub async fn create(&self, name: &str, price_cents: i64) -> Result<Product, ServiceError> {
        let product = self.repo.create(name, price_cents).await?;
        self.cache.delete(&self.cache_key(product.id)).await;
        Ok(product)
    }

    /// Writes PostgreSQL, then invalidates. In this order: invalidating first would let a
    /// reader refill the cache with the old row before the update commits.
    pub async fn update(
        &self,
        id: i64,
        name: &str,
        price_cents: i64,
    ) -> Result<Option<Product>, ServiceError> {
        let product = self.repo.update(id, name, price_cents).await?;
        self.cache.delete(&self.cache_key(id)).await;
        Ok(product)
    }

    pub async fn delete(&self, id: i64) -> Result<bool, ServiceError> {
        let deleted = self.repo.delete(id).await?;
        self.cache.delete(&self.cache_key(id)).await;
        Ok(deleted)
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
