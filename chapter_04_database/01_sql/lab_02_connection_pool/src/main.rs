//! ## Goal
//! Build `Pool<M: Manager>`, a generic async connection pool, then plug PostgreSQL into it. Opening
//! a PostgreSQL connection costs a TCP handshake, a new server process and an authentication
//! exchange: milliseconds, against tens of microseconds for a short query on a connection that is
//! already open. A pool keeps connections open and lends them out. Yours has the parts of every
//! real pool (sqlx's `PgPool`, deadpool, bb8): a size limit, a bounded wait that fails with a clear
//! error, a guard that returns the connection when dropped, a health check on checkout, an idle
//! timeout, and first-come-first-served waiters. The benchmark then measures what it buys.
//!
//! ## Requirements
//! 1. `Pool::new` refuses `max_size` 0 (`PoolError::ZeroSize`) and opens nothing until asked.
//! 2. Connections open on demand and are reused: sequential `get`s share one connection.
//! 3. At most `max_size` connections exist. When all are lent out, `get` waits up to
//!    `wait_timeout`, asleep (no polling), then fails with `PoolError::Timeout`, whose message says
//!    it timed out and names the pool size. `state().waiting` counts the callers waiting now: one
//!    that timed out or whose `get` future was dropped is no longer counted.
//! 4. Dropping the `PooledConnection` guard returns the connection and wakes a waiter, who gets
//!    that connection (not a new one): the connection is back in the pool before the waiter wakes.
//! 5. Waiters are served in arrival order (FIFO).
//! 6. An idle connection is health-checked (`Manager::check`) before it is lent; a broken one is
//!    closed (`Manager::close`) and replaced. One check per checkout.
//! 7. A failed connect is `PoolError::Connect` with the cause, and does not keep a place in the
//!    pool; neither does a `get` dropped while its connect is in flight.
//! 8. Connections idle for `idle_timeout` are closed by a background task, which ends when the
//!    pool is dropped.
//! 9. `close()` closes idle connections at once and lent ones when they come back; waiting and
//!    later `get`s fail with `PoolError::Closed`.
//! 10. `PgManager` makes it work with real `PgConnection`s: reused server processes, at most
//!     `max_size` of them in `pg_stat_activity`, and a connection killed by the server replaced.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 4.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `Pool::new` refuses `max_size` 0 (`PoolError::ZeroSize`) and opens nothing
//!   until asked
//! - [ ] Requirement 2: Connections open on demand and are reused: sequential `get`s share one
//!   connection
//! - [ ] Requirement 3: At most `max_size` connections exist
//! - [ ] Requirement 4: Dropping the `PooledConnection` guard returns the connection and wakes a
//!   waiter, who gets that connection (not a new one): the connection is back in the pool before
//!   the waiter wakes
//! - [ ] Requirement 5: Waiters are served in arrival order (FIFO)
//! - [ ] Requirement 6: An idle connection is health-checked (`Manager::check`) before it is lent;
//!   a broken one is closed (`Manager::close`) and replaced
//! - [ ] Requirement 7: A failed connect is `PoolError::Connect` with the cause, and does not keep
//!   a place in the pool; neither does a `get` dropped while its connect is in flight
//! - [ ] Requirement 8: Connections idle for `idle_timeout` are closed by a background task, which
//!   ends when the pool is dropped
//! - [ ] Requirement 9: `close()` closes idle connections at once and lent ones when they come
//!   back; waiting and later `get`s fail with `PoolError::Closed`
//! - [ ] Requirement 10: `PgManager` makes it work with real `PgConnection`s: reused server
//!   processes, at most `max_size` of them in `pg_stat_activity`, and a connection killed by the
//!   server replaced
//!
//! ## Notes
//!
//! Connection Pool: a generic async pool, built by hand.
//!
//! Build `Pool<M: Manager>`: it lends connections made by a `Manager`, at most `max_size` at
//! once, makes callers wait (under a timeout, first come first served) when all are lent out,
//! takes them back when the guard drops, health-checks idle ones before lending them, and
//! closes those idle for too long. Then implement `Manager` for PostgreSQL (`PgManager`).
//! Read README.md for the requirements; `cargo lab test 4.2` grades this file.
//!
//! The fields below are placeholders: shape the pool's insides as you like (the grader only
//! uses the `pub` items). Remove the `allow` below once every placeholder is gone.
#![allow(unused_variables, dead_code)]

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sqlx::postgres::{PgConnectOptions, PgConnection};

/// What the pool needs to know about one kind of connection. (Given: do not change it.)
pub trait Manager: Send + Sync + 'static {
    type Connection: Send + 'static;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Opens a new connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Connection, Self::Error>> + Send;
    /// Checks that an idle connection still works, before it is lent out.
    fn check(
        &self,
        conn: &mut Self::Connection,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Closes a connection the pool gives up on (broken, idle for too long, pool closed).
    fn close(&self, conn: Self::Connection) -> impl Future<Output = ()> + Send;
}

/// Sizes and timeouts of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most connections open at once.
    pub max_size: usize,
    /// How long `get` waits for a connection when all are lent out.
    pub wait_timeout: Duration,
    /// An idle connection unused for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 10,
            wait_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Why `get` (or `new`) gave no connection.
#[derive(Debug, thiserror::Error)]
pub enum PoolError<E: std::error::Error + 'static> {
    #[error("a pool needs max_size of at least 1")]
    ZeroSize,
    #[error("timed out after {waited:?} waiting for a connection: all {max_size} are in use")]
    Timeout { waited: Duration, max_size: usize },
    #[error("the pool is closed")]
    Closed,
    #[error("cannot open a connection: {0}")]
    Connect(#[source] E),
}

/// A snapshot of the pool, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    /// Connections open: idle plus lent out.
    pub open: usize,
    /// Connections waiting in the pool.
    pub idle: usize,
    /// Callers of `get` waiting for their turn.
    pub waiting: usize,
}

/// A pool of connections made by `M`. Cloning gives another handle to the SAME pool.
pub struct Pool<M: Manager> {
    // Placeholder. The handles share one state: an `Arc` of the manager, the config, a
    // `tokio::sync::Semaphore` of `max_size` permits, a queue of idle connections...
    manager: Arc<M>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            manager: self.manager.clone(),
        }
    }
}

impl<M: Manager> Pool<M> {
    /// An empty pool (connections open on demand); `max_size` 0 is `ZeroSize`. Also starts
    /// the task that closes connections idle for longer than `idle_timeout` (called inside a
    /// tokio runtime; the task must end once the pool is dropped).
    pub fn new(manager: M, config: PoolConfig) -> Result<Self, PoolError<M::Error>> {
        todo!("check max_size, build the shared state, spawn the idle reaper")
    }

    /// Lends a connection: an idle one that passes `Manager::check` (a broken one is closed,
    /// and the next tried), else a new one. When `max_size` are lent out, waits for one to
    /// come back, first come first served, up to `wait_timeout` (then `Timeout`). A failed
    /// connect is `Connect(error)` and must not keep a place in the pool. After `close`,
    /// `Closed`.
    pub async fn get(&self) -> Result<PooledConnection<M>, PoolError<M::Error>> {
        todo!("wait for a permit under the timeout, then reuse an idle connection or connect")
    }

    /// Counts of open and idle connections and of waiting callers.
    pub fn state(&self) -> PoolState {
        todo!("read the counters")
    }

    /// Closes the pool: waiting and later `get`s fail with `Closed`, idle connections are
    /// closed now (through `Manager::close`), lent ones when they come back.
    pub async fn close(&self) {
        todo!("close the semaphore, close the idle connections")
    }
}

/// A connection lent by the pool. Derefs to the connection; goes back to the pool on drop
/// (implement `Drop`).
pub struct PooledConnection<M: Manager> {
    // Placeholder: the guard also needs a way back to the pool (and its permit).
    conn: M::Connection,
}

impl<M: Manager> Deref for PooledConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        &self.conn
    }
}

impl<M: Manager> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        &mut self.conn
    }
}

impl<M: Manager> Drop for PooledConnection<M> {
    /// Gives the connection back to the pool (or closes it if the pool was closed meanwhile).
    fn drop(&mut self) {
        // TODO: take the connection out (keep it in an `Option` so `drop` can `take()` it) and
        // push it to the idle queue. Never panic here: `drop` also runs during unwinding.
    }
}

/// PostgreSQL connections through sqlx.
pub struct PgManager {
    options: PgConnectOptions,
}

impl PgManager {
    pub fn new(options: PgConnectOptions) -> Self {
        PgManager { options }
    }
}

impl Manager for PgManager {
    type Connection = PgConnection;
    type Error = sqlx::Error;

    /// `PgConnection::connect_with`.
    async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        todo!("open a PgConnection")
    }

    /// One round trip that fails on a connection whose server process is gone.
    async fn check(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        todo!("ping")
    }

    /// A polite goodbye, so the server does not log an unexpected EOF.
    async fn close(&self, conn: PgConnection) {
        todo!("close the connection, ignoring errors")
    }
}

/// The demo takes no options; `--help` says what it does.
#[derive(Parser)]
#[command(
    name = "ch4_connection_pool",
    about = "100 queries from 20 tasks through a pool of 4 connections to the PostgreSQL at \
             DATABASE_URL (default postgres://postgres:postgres@127.0.0.1:5432/course)"
)]
struct Args {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    Args::parse(); // `--help` exits 0, any argument exits 2
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/course".to_string());
    let options: PgConnectOptions = url.parse()?;
    let config = PoolConfig {
        max_size: 4,
        ..PoolConfig::default()
    };
    let pool = Pool::new(
        PgManager::new(options.application_name("ch4_pool_demo")),
        config,
    )?;

    // 100 queries from 20 tasks share at most 4 server processes.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut pids = Vec::new();
                for _ in 0..5 {
                    let mut conn = pool.get().await?;
                    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                        .fetch_one(&mut *conn)
                        .await?;
                    pids.push(pid);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(pids)
            })
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for task in tasks {
        pids.extend(task.await?.map_err(|e| e.to_string())?);
    }
    println!(
        "100 queries ran on {} server processes: {pids:?}",
        pids.len()
    );
    println!("pool state: {:?}", pool.state());
    // Time to look at the server side: see "What to observe" in README.md.
    println!("holding the pool open for 3 s (application_name ch4_pool_demo)");
    tokio::time::sleep(Duration::from_secs(3)).await;
    pool.close().await;
    println!("after close: {:?}", pool.state());
    Ok(())
}
