//! Connection Pool: a generic async pool, built by hand.
//!
//! Opening a PostgreSQL connection costs a TCP handshake, a new server process (`fork`) and an
//! authentication exchange: milliseconds, against tens of microseconds for a short query on an
//! open one. A pool keeps connections open and lends them out. This one shows the moving parts
//! of every real pool (deadpool, bb8, sqlx's `PgPool`):
//!
//! - **A `Semaphore` of `max_size` permits** bounds the connections lent out. Waiting for a
//!   connection is waiting for a permit, under a timeout. tokio's semaphore is fair: waiters
//!   are served first come, first served, so no request starves.
//! - **A guard** (`PooledConnection`) derefs to the connection and gives it back on `Drop`:
//!   nobody can forget to return one, not even a function that returns early with `?`.
//! - **A health check on checkout** (`Manager::check`, a `ping` for PostgreSQL): a connection
//!   that died while idle (server restart, firewall timeout) is closed and replaced before a
//!   caller sees it.
//! - **An idle timeout**: a background task closes connections unused for too long, so a quiet
//!   service gives its server processes back.

use std::collections::VecDeque;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use clap::Parser;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What the pool needs to know about one kind of connection.
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
    /// Callers of `get` waiting for a permit.
    pub waiting: usize,
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

struct Shared<M: Manager> {
    manager: M,
    config: PoolConfig,
    /// One permit per connection that may be lent out at once. Closing the semaphore closes
    /// the pool: waiters wake up with an error.
    permits: Arc<Semaphore>,
    /// Oldest at the front, most recently returned at the back. A `std::sync::Mutex` is right
    /// here: it is held for a push or a pop, never across an `.await`.
    idle: Mutex<VecDeque<Idle<M::Connection>>>,
    open: AtomicUsize,
    waiting: AtomicUsize,
}

impl<M: Manager> Shared<M> {
    fn idle(&self) -> std::sync::MutexGuard<'_, VecDeque<Idle<M::Connection>>> {
        // A panic while the lock is held cannot leave the queue half-changed (push and pop
        // are atomic), so a poisoned lock is still usable.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn close(&self, conn: M::Connection) {
        self.manager.close(conn).await;
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A pool of connections made by `M`. Cloning gives another handle to the same pool.
pub struct Pool<M: Manager> {
    shared: Arc<Shared<M>>,
}

impl<M: Manager> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool {
            shared: self.shared.clone(),
        }
    }
}

impl<M: Manager> Pool<M> {
    /// Creates an empty pool (connections open on demand) and starts its idle reaper.
    /// Call it inside a tokio runtime.
    pub fn new(manager: M, config: PoolConfig) -> Result<Self, PoolError<M::Error>> {
        if config.max_size == 0 {
            return Err(PoolError::ZeroSize);
        }
        let shared = Arc::new(Shared {
            manager,
            permits: Arc::new(Semaphore::new(config.max_size)),
            config,
            idle: Mutex::new(VecDeque::new()),
            open: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        });
        tokio::spawn(reap_idle(Arc::downgrade(&shared)));
        Ok(Pool { shared })
    }

    /// Lends a connection: an idle one that passes its health check, else a new one. Waits up
    /// to `wait_timeout` when `max_size` are already lent out.
    pub async fn get(&self) -> Result<PooledConnection<M>, PoolError<M::Error>> {
        let shared = &self.shared;
        let timeout = shared.config.wait_timeout;
        let permit = {
            // Counted as waiting until this block ends, also when the caller gives up on us.
            let _waiting = Counted::new(&shared.waiting);
            match tokio::time::timeout(timeout, shared.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_closed)) => return Err(PoolError::Closed),
                Err(_elapsed) => {
                    let max_size = shared.config.max_size;
                    return Err(PoolError::Timeout {
                        waited: timeout,
                        max_size,
                    });
                }
            }
        };

        // Most recently returned first: hot connections stay hot, and the cold ones at the
        // front age out through the idle timeout.
        loop {
            let Some(Idle { mut conn, .. }) = shared.idle().pop_back() else {
                break;
            };
            match shared.manager.check(&mut conn).await {
                Ok(()) => return Ok(PooledConnection::new(conn, permit, shared)),
                Err(_broken) => shared.close(conn).await,
            }
        }

        // Nothing idle: open a new connection. On failure `permit` drops here, so the failed
        // attempt does not keep a place in the pool.
        let conn = shared.manager.connect().await.map_err(PoolError::Connect)?;
        shared.open.fetch_add(1, Ordering::SeqCst);
        Ok(PooledConnection::new(conn, permit, shared))
    }

    pub fn state(&self) -> PoolState {
        PoolState {
            open: self.shared.open.load(Ordering::SeqCst),
            idle: self.shared.idle().len(),
            waiting: self.shared.waiting.load(Ordering::SeqCst),
        }
    }

    /// Closes the pool: waiting and future `get`s fail with `Closed`, idle connections are
    /// closed now, lent ones when they come back.
    pub async fn close(&self) {
        self.shared.permits.close();
        let idle: Vec<_> = self.shared.idle().drain(..).collect();
        for Idle { conn, .. } in idle {
            self.shared.close(conn).await;
        }
    }
}

/// Closes connections idle for longer than `idle_timeout`. It holds a `Weak` reference, so
/// it does not keep a dropped pool alive: it ends at the first tick after the last handle.
async fn reap_idle<M: Manager>(shared: Weak<Shared<M>>) {
    let Some(period) = shared.upgrade().map(|s| s.config.idle_timeout / 2) else {
        return;
    };
    let mut ticks = tokio::time::interval(period.max(Duration::from_millis(5)));
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let expired: Vec<_> = {
            let mut idle = shared.idle();
            let mut expired = Vec::new();
            while idle
                .front()
                .is_some_and(|oldest| oldest.since.elapsed() >= shared.config.idle_timeout)
            {
                expired.extend(idle.pop_front());
            }
            expired
        };
        for Idle { conn, .. } in expired {
            shared.close(conn).await;
        }
        if shared.permits.is_closed() {
            return;
        }
    }
}

/// A connection lent by the pool. Derefs to the connection; goes back to the pool on drop.
pub struct PooledConnection<M: Manager> {
    conn: Option<M::Connection>,
    shared: Arc<Shared<M>>,
    // Declared after `conn`, but what matters is that `drop` below runs before any field is
    // dropped: the connection is back in the queue before the permit wakes the next waiter,
    // who therefore finds it there instead of opening a new one.
    _permit: OwnedSemaphorePermit,
}

impl<M: Manager> PooledConnection<M> {
    fn new(conn: M::Connection, permit: OwnedSemaphorePermit, shared: &Arc<Shared<M>>) -> Self {
        PooledConnection {
            conn: Some(conn),
            shared: shared.clone(),
            _permit: permit,
        }
    }
}

impl<M: Manager> Deref for PooledConnection<M> {
    type Target = M::Connection;

    fn deref(&self) -> &M::Connection {
        self.conn
            .as_ref()
            .expect("the connection is only taken in drop")
    }
}

impl<M: Manager> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        self.conn
            .as_mut()
            .expect("the connection is only taken in drop")
    }
}

impl<M: Manager> Drop for PooledConnection<M> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        {
            // Checked under the lock that `close` drains under: a connection is either in the
            // queue before the drain, or sees the pool closed. None is stranded in between.
            let mut idle = self.shared.idle();
            if !self.shared.permits.is_closed() {
                idle.push_back(Idle {
                    conn,
                    since: Instant::now(),
                });
                return;
            }
        }
        // The pool was closed while this connection was out. `drop` cannot await, so the
        // close runs as a task (when there is a runtime; otherwise the connection just drops).
        let shared = self.shared.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { shared.close(conn).await });
        }
    }
}

/// Increments a counter now and decrements it when dropped, whatever the path out.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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

    async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    /// One round trip: enough to find a connection whose server process is gone.
    async fn check(&self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        conn.ping().await
    }

    /// A polite goodbye (`Terminate`), so the server does not log an unexpected EOF.
    async fn close(&self, conn: PgConnection) {
        let _ = conn.close().await;
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
