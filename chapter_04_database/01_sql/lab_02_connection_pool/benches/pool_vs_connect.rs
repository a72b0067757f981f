//! 1,000 short queries (`SELECT 1`) from 32 concurrent tasks, three ways:
//! this lab's pool, sqlx's `PgPool` (both 10 connections), and a new connection per query.
//!
//! Run with `cargo bench -p ch4_connection_pool --features solution`.

labkit::lab_mod!(lab);

use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::{PgManager, Pool, PoolConfig};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::{Connection, Executor};
use tokio::sync::Semaphore;

const QUERIES: usize = 1_000;
const CONCURRENCY: usize = 32;
const POOL_SIZE: usize = 10;
const RUNS: usize = 5;

/// Runs `QUERIES` calls of `query` with at most `CONCURRENCY` in flight; returns the wall time.
async fn timed<F, Fut>(query: F) -> Duration
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let start = Instant::now();
    let tasks: Vec<_> = (0..QUERIES)
        .map(|_| {
            let (limit, query) = (limit.clone(), query.clone());
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore");
                query().await;
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("query task panicked");
    }
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn row(name: &str, time: Duration, baseline: Duration) {
    let per_query_us = time.as_secs_f64() * 1e6 / QUERIES as f64;
    let qps = QUERIES as f64 / time.as_secs_f64();
    let ratio = time.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "{name:<28} {:>10.1} {:>12.0} {:>14.0} {:>8.1}x",
        time.as_secs_f64() * 1e3,
        qps,
        per_query_us,
        ratio
    );
}

#[tokio::main]
async fn main() {
    let url = labkit::services::require_postgres();
    let options: PgConnectOptions = url.parse().expect("DATABASE_URL");

    let config = PoolConfig {
        max_size: POOL_SIZE,
        ..PoolConfig::default()
    };
    let ours = Pool::new(PgManager::new(options.clone()), config).expect("Pool::new");
    let sqlx_pool = PgPoolOptions::new()
        .max_connections(POOL_SIZE as u32)
        .connect_with(options.clone())
        .await
        .expect("PgPool");

    let handle = ours.clone();
    let run_ours = move || {
        let pool = handle.clone();
        async move {
            let mut conn = pool.get().await.expect("get");
            conn.execute("SELECT 1").await.expect("query");
        }
    };
    let handle = sqlx_pool.clone();
    let run_sqlx = move || {
        let pool = handle.clone();
        async move {
            pool.execute("SELECT 1").await.expect("query");
        }
    };
    let run_connect = move || {
        let options = options.clone();
        async move {
            let mut conn = PgConnection::connect_with(&options).await.expect("connect");
            conn.execute("SELECT 1").await.expect("query");
            conn.close().await.expect("close");
        }
    };

    // One warm-up round each: the pools open their connections, the code paths get hot.
    timed(run_ours.clone()).await;
    timed(run_sqlx.clone()).await;
    let (mut t_ours, mut t_sqlx, mut t_connect) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        t_ours.push(timed(run_ours.clone()).await);
        t_sqlx.push(timed(run_sqlx.clone()).await);
        // Opening 1,000 connections is the slow part of the bench: 3 rounds are enough.
        if run < 3 {
            t_connect.push(timed(run_connect.clone()).await);
        }
    }
    let (ours_t, sqlx_t, connect_t) = (median(t_ours), median(t_sqlx), median(t_connect));

    println!(
        "{QUERIES} x SELECT 1, {CONCURRENCY} concurrent tasks, pools of {POOL_SIZE} (median of {RUNS} runs, 3 for connect)\n"
    );
    println!(
        "{:<28} {:>10} {:>12} {:>14} {:>9}",
        "", "total ms", "queries/s", "wall us/query", "vs ours"
    );
    row("this lab's Pool", ours_t, ours_t);
    row("sqlx::PgPool", sqlx_t, ours_t);
    row("new connection per query", connect_t, ours_t);
    ours.close().await;
    sqlx_pool.close().await;
}
