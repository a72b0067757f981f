//! Isolation for the cache graders: a fresh PostgreSQL database per test (dropped at the end)
//! and a Redis key prefix per test (its keys deleted at the end), so tests run in parallel.

#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

/// No test may take longer: a call that never returns fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(25);

/// Test databases are named `ch4t_<unix seconds>_<random>`; ones older than this were left
/// behind by a killed run and are dropped by the next run.
const STALE_AFTER_SECS: u64 = 600;

/// Runs a test body under [`DEADLINE`].
pub async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(DEADLINE, body)
        .await
        .expect("the test took longer than 25 s: a call that never returned?")
}

/// Polls `ok` every 20 ms for up to 5 s.
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut ok: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok().await {
        assert!(
            Instant::now() < deadline,
            "still not true after 5 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database of its own for one test.
pub struct TestDb {
    pub name: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates an empty database (no tables: the test runs the lab's migrations) and a pool
    /// of `max_connections` to it.
    pub async fn new(max_connections: u32) -> TestDb {
        let url = labkit::services::require_postgres();
        let admin: PgConnectOptions = url.parse().expect("DATABASE_URL is not a valid URL");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let name = format!("ch4t_{now}_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        drop_stale_databases(&mut conn, now).await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(admin.clone().database(&name))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {name}: {e}"));
        TestDb { name, pool, admin }
    }
}

impl Drop for TestDb {
    /// Drops the database, also when the test panicked. `Drop` cannot await, so the work runs
    /// on a thread with a runtime of its own; `WITH (FORCE)` ends the pool's connections.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut conn = PgConnection::connect_with(&admin).await.ok()?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::raw_sql(AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// Drops test databases a killed run left behind (best effort: another run may race us).
async fn drop_stale_databases(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ch4t\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| now.saturating_sub(t) > STALE_AFTER_SECS) {
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await;
        }
    }
}

/// A prefix of this test's own, e.g. `ch4test:3f9a...:`.
pub struct Prefix {
    pub url: String,
    pub prefix: String,
}

impl Prefix {
    pub fn new() -> Prefix {
        let url = labkit::services::require_redis();
        let prefix = format!("ch4test:{:016x}:", rand::random::<u64>());
        Prefix { url, prefix }
    }

    /// A connection of the test's own, to check what the lab wrote.
    pub fn redis(&self) -> redis::Connection {
        let client = redis::Client::open(self.url.as_str()).expect("REDIS_URL");
        let conn = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to Redis");
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        conn
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Keys under the prefix, counted by the test itself.
    pub fn count_keys(&self) -> usize {
        let mut conn = self.redis();
        let iter: redis::Iter<'_, String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(format!("{}*", self.prefix))
            .arg("COUNT")
            .arg(1000)
            .clone()
            .iter(&mut conn)
            .expect("SCAN");
        let mut keys: Vec<String> = iter.map(|key| key.expect("key")).collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }
}

impl Drop for Prefix {
    /// Deletes every key under the prefix with a blocking connection (`Drop` cannot await).
    fn drop(&mut self) {
        let mut conn = self.redis();
        let keys: Vec<String> = {
            let iter: redis::Iter<'_, String> = match redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter(&mut conn)
            {
                Ok(iter) => iter,
                Err(_) => return,
            };
            iter.filter_map(Result::ok).collect()
        };
        for chunk in keys.chunks(500) {
            let _: redis::RedisResult<usize> = redis::cmd("UNLINK").arg(chunk).query(&mut conn);
        }
    }
}
