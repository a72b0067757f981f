//! Grader for Connection Pool: the pool with real PostgreSQL connections. The server is the
//! witness: `pg_backend_pid()` names the server process behind a connection, and
//! `pg_stat_activity` lists the connections of each application.

labkit::lab_mod!(lab);
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::eventually;
use lab::{PgManager, Pool, PoolConfig};
use labkit::wait::within;
use rand::RngExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

/// Connection options with an application name of our own, to find our connections in
/// `pg_stat_activity` while other tests run.
fn options() -> (PgConnectOptions, String) {
    let url = labkit::services::require_postgres();
    let name = format!("ch4_pool_test_{:08x}", rand::rng().random::<u32>());
    let options: PgConnectOptions = url.parse().expect("DATABASE_URL");
    (options.application_name(&name), name)
}

async fn admin() -> PgConnection {
    let url = labkit::services::require_postgres();
    PgConnection::connect(&url).await.expect("admin connection")
}

async fn backends_named(admin: &mut PgConnection, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1")
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("pg_stat_activity")
}

async fn backend_pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("query")
}

fn config(max_size: usize) -> PoolConfig {
    PoolConfig {
        max_size,
        wait_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_connections_are_reused() {
    within(async {
        let (options, name) = options();
        let mut admin = admin().await;
        let max = rand::rng().random_range(2..6);
        let pool = Pool::new(PgManager::new(options), config(max)).expect("Pool::new");
        let mut pids = HashSet::new();
        for _ in 0..10 {
            let mut conn = pool.get().await.expect("get");
            pids.insert(backend_pid(&mut conn).await);
        }
        assert!(
            pids.len() == 1,
            "requirement 10: 10 sequential queries ran on {} server processes {pids:?}; wanted 1",
            pids.len()
        );

        // Many tasks at once, each holding its connection across a short sleep on the server,
        // while the test counts the pool's server processes from the server's side.
        let tasks: Vec<_> = (0..4 * max)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut pids = Vec::new();
                    for _ in 0..4 {
                        let mut conn = pool.get().await.expect("get");
                        pids.push(backend_pid(&mut conn).await);
                        conn.execute("SELECT pg_sleep(0.005)").await.expect("query");
                    }
                    pids
                })
            })
            .collect();
        let mut peak = 0;
        while !tasks.iter().all(|task| task.is_finished()) {
            peak = peak.max(backends_named(&mut admin, &name).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for task in tasks {
            pids.extend(task.await.expect("task panicked"));
        }
        assert!(
            pids.len() <= max && peak <= max as i64,
            "requirement 10: {} queries from {} tasks ran on {} server processes, and pg_stat_activity counted up to {peak} at once; wanted at most max_size {max}",
            16 * max,
            4 * max,
            pids.len()
        );
        pool.close().await;
    })
    .await
}

#[tokio::test]
async fn pg_stat_activity_sees_exactly_the_open_connections() {
    within(async {
        let (options, name) = options();
        let mut admin = admin().await;
        let config = PoolConfig {
            idle_timeout: Duration::from_millis(300),
            ..config(8)
        };
        let pool = Pool::new(PgManager::new(options), config).expect("Pool::new");
        let n = rand::rng().random_range(2..5);
        let mut held = Vec::new();
        for _ in 0..n {
            let mut conn = pool.get().await.expect("get");
            conn.execute("SELECT 1").await.expect("query");
            held.push(conn);
        }
        let backends = backends_named(&mut admin, &name).await;
        assert!(
            backends == n as i64,
            "requirement 10: {n} held connections show as {backends} server processes in pg_stat_activity; wanted {n}"
        );
        drop(held);
        // The idle timeout closes them, and the server sees them go.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while backends_named(&mut admin, &name).await != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "requirement 8: the idle connections still have server processes 10 s after the idle timeout"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let open = pool.state().open;
        assert!(
            open == 0,
            "requirement 8: state().open is {open} once the server saw every connection go; wanted 0"
        );
    })
    .await
}

#[tokio::test]
async fn replaces_a_connection_the_server_killed() {
    within(async {
        let (options, _) = options();
        let mut admin = admin().await;
        let pool = Pool::new(PgManager::new(options), config(2)).expect("Pool::new");
        let first = {
            let mut conn = pool.get().await.expect("get");
            backend_pid(&mut conn).await
        };
        // The server ends that process (as a restart or an idle-session timeout would) while
        // the connection sits idle in the pool.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(first)
            .fetch_one(&mut admin)
            .await
            .expect("pg_terminate_backend");
        assert!(killed, "pg_terminate_backend({first}) did not end the backend");

        let mut conn = pool.get().await.expect("get after the kill");
        let second = backend_pid(&mut conn).await;
        assert!(
            first != second,
            "requirement 10: get lent the connection whose server process {first} was killed; wanted a new one"
        );
        drop(conn);
        eventually("requirement 10: the dead connection is gone from state().open", || {
            pool.state().open == 1
        })
        .await;
    })
    .await
}
