//! A fresh PostgreSQL database per test, dropped at the end, so tests run in parallel and
//! never see each other's rows.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

/// No test may take longer: a lock wait that never ends fails instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(25);

/// Test databases are named `ch6t_<unix seconds>_<random>`; ones older than this were left
/// behind by a killed run and are dropped by the next run.
const STALE_AFTER_SECS: u64 = 600;

/// Runs a test body under [`DEADLINE`].
pub async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(DEADLINE, body)
        .await
        .expect("the test took longer than 25 s: a lock or a connection that never came back?")
}

/// A database of its own for one test; `url` is what the server under test gets.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Creates an empty database (the server under test runs its migrations) and a small pool
    /// to it for the test's own queries.
    pub async fn new() -> TestDb {
        let admin_url = labkit::services::require_postgres();
        let admin: PgConnectOptions = admin_url.parse().expect("DATABASE_URL is not a valid URL");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let name = format!("ch6t_{now}_{:016x}", rand::random::<u64>());
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
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(admin.clone().database(&name))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {name}: {e}"));
        // Same server and credentials, other database: replace the path of the admin URL.
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

    /// Drops the database now (the server under test loses it), forcing its connections out.
    pub async fn drop_now(&self) {
        let mut conn = PgConnection::connect_with(&self.admin).await.unwrap();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
        let _ = conn.close().await;
    }
}

impl Drop for TestDb {
    /// Drops the database, also when the test panicked. `Drop` cannot await, so the work runs
    /// on a thread with a runtime of its own; `WITH (FORCE)` ends remaining connections.
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
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'ch6t\\_%'")
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
