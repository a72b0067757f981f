//! Grader for Connection Pool: the pool with a fake manager that counts every connect, check
//! and close, so each property is an exact count.

labkit::lab_mod!(lab);
mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{FakeManager, eventually};
use lab::{Pool, PoolConfig, PoolError};
use labkit::wait::within;
use rand::RngExt;

fn config(max_size: usize) -> PoolConfig {
    PoolConfig {
        max_size,
        wait_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(600),
    }
}

fn pool(max_size: usize) -> (Pool<FakeManager>, FakeManager) {
    let manager = FakeManager::default();
    let pool = Pool::new(manager.clone(), config(max_size)).expect("Pool::new");
    (pool, manager)
}

// Requirement 1: a pool has at least one connection.
#[tokio::test]
async fn rejects_a_pool_of_zero() {
    within(async {
        let (pool, manager) = pool(1);
        let conn = pool.get().await.expect("a pool of one lends a connection");
        assert_eq!(conn.id, 1);
        assert_eq!(manager.0.connects(), 1);
        let zero = Pool::new(FakeManager::default(), config(0));
        assert!(
            matches!(zero, Err(PoolError::ZeroSize)),
            "max_size 0 must be ZeroSize"
        );
    })
    .await
}

// Requirement 2: connections open on demand and are reused.
#[tokio::test]
async fn reuses_one_connection_for_sequential_gets() {
    within(async {
        let (pool, manager) = pool(rand::rng().random_range(2..8));
        assert_eq!(manager.0.connects(), 0, "a new pool opens nothing");
        for _ in 0..rand::rng().random_range(10..30) {
            let conn = pool.get().await.expect("get");
            assert_eq!(conn.id, 1, "the one connection comes back every time");
        }
        assert_eq!(manager.0.connects(), 1);
        assert_eq!(manager.0.closes(), 0);
        let state = pool.state();
        assert_eq!(
            (state.open, state.idle, state.waiting),
            (1, 1, 0),
            "{state:?}"
        );
    })
    .await
}

// Requirement 3: at most max_size connections; an exhausted pool times out with a clear error.
#[tokio::test]
async fn opens_at_most_max_size_connections() {
    within(async {
        let max = rand::rng().random_range(2..6);
        let manager = FakeManager::default();
        let config = PoolConfig {
            wait_timeout: Duration::from_millis(200),
            ..config(max)
        };
        let pool = Pool::new(manager.clone(), config).expect("Pool::new");
        let mut held = Vec::new();
        for _ in 0..max {
            held.push(pool.get().await.expect("get while there is room"));
        }
        assert_eq!(manager.0.connects(), max);
        assert_eq!(pool.state().open, max);

        let err = pool
            .get()
            .await
            .err()
            .expect("an exhausted pool must not lend a connection");
        assert!(
            matches!(err, PoolError::Timeout { .. }),
            "expected Timeout, got {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("timed out"),
            "the error must say it timed out: {message}"
        );
        assert!(
            message.contains(&max.to_string()),
            "and name the pool size: {message}"
        );

        held.pop();
        let again = pool
            .get()
            .await
            .expect("a returned connection is lent again");
        assert!(again.id <= max);
        assert_eq!(manager.0.connects(), max, "no connection beyond max_size");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_max_size_connections() {
    within(async {
        let max = rand::rng().random_range(2..6);
        let (pool, manager) = pool(max);
        let in_use = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (pool, in_use, peak) = (pool.clone(), in_use.clone(), peak.clone());
                tokio::spawn(async move {
                    for _ in 0..5 {
                        let conn = pool.get().await.expect("get");
                        let now = in_use.fetch_add(1, SeqCst) + 1;
                        peak.fetch_max(now, SeqCst);
                        tokio::task::yield_now().await;
                        in_use.fetch_sub(1, SeqCst);
                        drop(conn);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a task panicked");
        }
        assert!(
            peak.load(SeqCst) <= max,
            "{} lent at once, max {max}",
            peak.load(SeqCst)
        );
        let connects = manager.0.connects();
        assert!(
            (1..=max).contains(&connects),
            "{connects} connections opened, max {max}"
        );
        assert_eq!(pool.state().waiting, 0);
    })
    .await
}

// Requirement 4: returning a connection (dropping the guard) wakes a waiter.
#[tokio::test]
async fn a_returned_connection_wakes_a_waiter() {
    within(async {
        let (pool, manager) = pool(1);
        let held = pool.get().await.expect("get");
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await.map(|conn| conn.id) }
        });
        eventually("one caller waiting", || pool.state().waiting == 1).await;
        drop(held);
        let id = waiter
            .await
            .expect("waiter panicked")
            .expect("the waiter gets the connection");
        assert_eq!(id, 1, "the returned connection, not a new one");
        assert_eq!(manager.0.connects(), 1);
        assert_eq!(pool.state().waiting, 0);
    })
    .await
}

// Requirement 5: waiters are served first come, first served.
#[tokio::test(flavor = "current_thread")]
async fn waiters_are_served_in_fifo_order() {
    within(async {
        let (pool, _manager) = pool(1);
        let held = pool.get().await.expect("get");
        let order = Arc::new(Mutex::new(Vec::new()));
        let n = rand::rng().random_range(5..12);
        let mut waiters = Vec::new();
        for i in 0..n {
            let (handle, order) = (pool.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let conn = handle.get().await.expect("get");
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
                drop(conn);
            }));
            // One runtime thread: once `waiting` counts this waiter, it is queued behind
            // the previous ones.
            eventually("the waiter queued", || pool.state().waiting == i + 1).await;
        }
        drop(held);
        for waiter in waiters {
            waiter.await.expect("a waiter panicked");
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order, (0..n).collect::<Vec<_>>(), "served in arrival order");
    })
    .await
}

// Requirement 6: broken connections are found on checkout, closed and replaced.
#[tokio::test]
async fn broken_connections_are_discarded_on_checkout() {
    within(async {
        let (pool, manager) = pool(4);
        let n = rand::rng().random_range(2..=4);
        let held: Vec<_> = {
            let mut held = Vec::new();
            for _ in 0..n {
                held.push(pool.get().await.expect("get"));
            }
            held
        };
        drop(held);
        assert_eq!((manager.0.connects(), pool.state().idle), (n, n));

        manager.0.break_all();
        let conn = pool.get().await.expect("get after the server restarted");
        assert_eq!(conn.id, n + 1, "a new connection replaces the broken ones");
        assert_eq!(
            manager.0.closes(),
            n,
            "every broken idle connection is closed"
        );
        assert_eq!(manager.0.connects(), n + 1);
        let state = pool.state();
        assert_eq!((state.open, state.idle), (1, 0), "{state:?}");
        drop(conn);
        let checks_before = manager.0.checks.load(SeqCst);
        let again = pool.get().await.expect("get");
        assert_eq!(again.id, n + 1, "the healthy connection is reused");
        assert_eq!(
            manager.0.checks.load(SeqCst),
            checks_before + 1,
            "one check per checkout"
        );
    })
    .await
}

// Requirement 7: a failed connect is an error and does not use up a place in the pool.
#[tokio::test]
async fn a_failed_connect_is_reported_and_frees_its_slot() {
    within(async {
        let manager = FakeManager::default();
        let config = PoolConfig {
            wait_timeout: Duration::from_millis(500),
            ..config(1)
        };
        let pool = Pool::new(manager.clone(), config).expect("Pool::new");
        manager.0.fail_next_connect.store(true, SeqCst);
        let err = pool.get().await.err().expect("the connect failed");
        assert!(
            matches!(err, PoolError::Connect(_)),
            "expected Connect, got {err:?}"
        );
        assert!(
            err.to_string().contains("connection refused"),
            "carries the cause: {err}"
        );
        let conn = pool
            .get()
            .await
            .expect("the failed attempt must not keep the only place");
        assert_eq!(conn.id, 1);
        assert_eq!(manager.0.connect_attempts.load(SeqCst), 2);
        assert_eq!(pool.state().open, 1);
    })
    .await
}

// Requirement 8: idle connections are closed after the idle timeout.
#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    within(async {
        let manager = FakeManager::default();
        let config = PoolConfig {
            idle_timeout: Duration::from_millis(150),
            ..config(8)
        };
        let pool = Pool::new(manager.clone(), config).expect("Pool::new");
        let n = rand::rng().random_range(2..6);
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(pool.get().await.expect("get"));
        }
        drop(held);
        eventually("every idle connection closed", || manager.0.closes() == n).await;
        let state = pool.state();
        assert_eq!((state.open, state.idle), (0, 0), "{state:?}");
        let conn = pool
            .get()
            .await
            .expect("get after the idle ones were closed");
        assert_eq!(conn.id, n + 1, "a fresh connection");
        assert_eq!(manager.0.closes(), n, "a connection in use is never reaped");
    })
    .await
}

// Requirement 9: close() closes idle connections now and lent ones on return.
#[tokio::test]
async fn close_closes_every_connection_and_refuses_new_gets() {
    within(async {
        let (pool, manager) = pool(8);
        let n = rand::rng().random_range(3..7);
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(pool.get().await.expect("get"));
        }
        let still_out = held.pop().expect("one connection stays out");
        drop(held);
        pool.close().await;
        assert_eq!(
            manager.0.closes(),
            n - 1,
            "idle connections are closed at once"
        );
        let err = pool.get().await.err().expect("a closed pool lends nothing");
        assert!(
            matches!(err, PoolError::Closed),
            "expected Closed, got {err:?}"
        );
        drop(still_out);
        eventually("the returned connection closed", || manager.0.closes() == n).await;
        assert_eq!(pool.state().open, 0);
    })
    .await
}
