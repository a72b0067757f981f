//! A PostgreSQL database of its own for each test, dropped at the end (also when the test
//! panics), so the tests of a lab run in parallel and never see each other's rows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

/// Test databases are named `labtest_<unix seconds>_<random>`.
const PREFIX: &str = "labtest";

/// Databases older than this were left behind by a killed run; the next run drops them.
const STALE_AFTER_SECS: u64 = 600;

/// A fresh, empty database. `url` is what a server under test gets; `pool` is the test's own.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates an empty database (the lab runs its own migrations) and a pool of
    /// `max_connections` to it. Fails with the fix when PostgreSQL is not running.
    pub async fn new(max_connections: u32) -> TestDb {
        let admin_url = crate::services::require_postgres();
        let admin: PgConnectOptions = admin_url.parse().expect("DATABASE_URL is not a valid URL");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("the clock is after 1970")
            .as_secs();
        let name = format!("{PREFIX}_{now}_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
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
        // Same server and credentials, another database: replace the path of the admin URL.
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base)
            .filter(|base| !base.ends_with('/'))
            .unwrap_or(&admin_url);
        let url = format!("{base}/{name}");
        TestDb {
            name,
            url,
            pool,
            admin,
        }
    }

    /// Locks row `id` of `table` in a transaction of the grader's (`SELECT .. FOR UPDATE`):
    /// every statement of the server touching that row waits, in flight and holding its
    /// connection, until the returned transaction ends (dropped or rolled back).
    pub async fn lock_row(
        &self,
        table: &str,
        id: i64,
    ) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut lock = self.pool.begin().await.expect("BEGIN");
        sqlx::query(AssertSqlSafe(format!(
            "SELECT id FROM {table} WHERE id = $1 FOR UPDATE"
        )))
        .bind(id)
        .execute(&mut *lock)
        .await
        .unwrap_or_else(|e| panic!("SELECT .. FROM {table} FOR UPDATE: {e}"));
        lock
    }

    /// Drops the database now, forcing its connections out: the server under test loses it.
    pub async fn drop_now(&self) {
        let mut conn = PgConnection::connect_with(&self.admin)
            .await
            .expect("connect to drop the test database");
        drop_database(&mut conn, &self.name)
            .await
            .expect("DROP DATABASE");
        let _ = conn.close().await;
    }
}

/// Connections to database `name` that wait on a lock, counted by PostgreSQL itself
/// (`pg_stat_activity`). When only the server under test touches a row the grader locked
/// ([`TestDb::lock_row`]), these are the server's statements in flight.
pub async fn lock_waiters(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .expect("counting lock waiters in pg_stat_activity")
}

impl Drop for TestDb {
    /// `Drop` cannot await, so the work runs on a thread with a runtime of its own;
    /// `WITH (FORCE)` ends the connections still open to the database.
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut conn = PgConnection::connect_with(&admin).await.ok()?;
                drop_database(&mut conn, &name).await.ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> sqlx::Result<()> {
    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(drop)
}

/// Drops test databases a killed run left behind (best effort: another run may race us).
async fn drop_stale_databases(conn: &mut PgConnection, now: u64) {
    let pattern = format!("{PREFIX}\\_%");
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let created = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok());
        if created.is_some_and(|t| now.saturating_sub(t) > STALE_AFTER_SECS) {
            let _ = drop_database(conn, &name).await;
        }
    }
}
