//! Grader for Connection Pool: the pool with a fake manager that counts every connect, check
//! and close, so each property is an exact count.

labkit::lab_mod!(lab);
mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use common::{FakeManager, eventually};
use lab::{Pool, PoolConfig, PoolError, PoolState};
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
        assert!(
            conn.id == 1 && manager.0.connects() == 1,
            "requirement 1: a pool of one lent connection {} after {} connects; wanted connection 1 after 1",
            conn.id,
            manager.0.connects()
        );
        let zero = Pool::new(FakeManager::default(), config(0));
        assert!(
            matches!(zero, Err(PoolError::ZeroSize)),
            "requirement 1: Pool::new with max_size 0 must be ZeroSize"
        );
    })
    .await
}

// Requirement 2: connections open on demand and are reused.
#[tokio::test]
async fn reuses_one_connection_for_sequential_gets() {
    within(async {
        let (pool, manager) = pool(rand::rng().random_range(2..8));
        assert!(
            manager.0.connects() == 0,
            "requirement 2: a new pool opened {} connections; wanted 0 until a get",
            manager.0.connects()
        );
        for _ in 0..rand::rng().random_range(10..30) {
            let conn = pool.get().await.expect("get");
            assert!(
                conn.id == 1,
                "requirement 2: a sequential get lent connection {}; wanted the one connection, 1",
                conn.id
            );
        }
        let (connects, closes) = (manager.0.connects(), manager.0.closes());
        assert!(
            (connects, closes) == (1, 0),
            "requirement 2: sequential gets made {connects} connects and {closes} closes; wanted 1 and 0"
        );
        let state = pool.state();
        assert!(
            (state.open, state.idle, state.waiting) == (1, 1, 0),
            "requirement 2: state after sequential gets is {state:?}; wanted open 1, idle 1, waiting 0"
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
        let (connects, open) = (manager.0.connects(), pool.state().open);
        assert!(
            connects == max && open == max,
            "requirement 3: {max} held connections made {connects} connects, state().open {open}; wanted {max}"
        );

        let err = pool
            .get()
            .await
            .err()
            .expect("requirement 3: an exhausted pool lent a connection beyond max_size");
        assert!(
            matches!(err, PoolError::Timeout { .. }),
            "requirement 3: an exhausted pool answered {err:?}; wanted PoolError::Timeout"
        );
        let message = err.to_string();
        assert!(
            message.contains("timed out") && message.contains(&max.to_string()),
            "requirement 3: the timeout says {message:?}; wanted it to say \"timed out\" and name the pool size {max}"
        );
        let waiting = pool.state().waiting;
        assert!(
            waiting == 0,
            "requirement 3: state().waiting is {waiting} after the only waiter timed out; wanted 0 (count waiters with a guard that decrements on every way out)"
        );

        held.pop();
        let again = pool
            .get()
            .await
            .expect("a returned connection is lent again");
        let connects = manager.0.connects();
        assert!(
            again.id <= max && connects == max,
            "requirement 3: after a return, got connection {} and {connects} connects; wanted a reused one and {max} connects",
            again.id
        );
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
        let peak = peak.load(SeqCst);
        assert!(
            peak <= max,
            "requirement 3: {peak} connections were lent at once; wanted at most max_size {max}"
        );
        let connects = manager.0.connects();
        assert!(
            (1..=max).contains(&connects),
            "requirement 3: 64 tasks made {connects} connects; wanted 1 to max_size {max}"
        );
        let waiting = pool.state().waiting;
        assert!(
            waiting == 0,
            "requirement 3: state().waiting is {waiting} once every task is done; wanted 0"
        );
    })
    .await
}

/// Requirement 3: a caller waiting for a connection sleeps on the semaphore. A pool that polls
/// (`try_acquire` and a 1 ms sleep, in a loop) wakes its runtime a thousand times a second.
#[test]
fn a_waiting_get_sleeps() {
    // A runtime of our own, with a thread name of our own: the other tests' runtimes in this
    // process are not counted.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("pool-waiter")
        .enable_all()
        .build()
        .expect("runtime");
    let (pool, held, waiter) = runtime.block_on(async {
        let config = PoolConfig {
            wait_timeout: Duration::from_secs(60),
            ..config(1)
        };
        let pool = Pool::new(FakeManager::default(), config).expect("Pool::new");
        let held = pool.get().await.expect("get");
        let waiter = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await.map(|conn| conn.id) }
        });
        eventually("requirement 3: one caller waiting", || {
            pool.state().waiting == 1
        })
        .await;
        (pool, held, waiter)
    });
    labkit::sys::assert_asleep(
        std::process::id(),
        "requirement 3: a get waiting for a connection sleeps until one comes back",
        |thread| thread == "pool-waiter",
    );
    drop(held);
    let id = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("requirement 4: the waiter was not woken by the returned connection")
            .expect("waiter panicked")
            .expect("the waiter gets the connection")
    });
    assert!(
        id == 1,
        "requirement 4: the waiter got connection {id}; wanted the returned one, 1"
    );
    drop(pool);
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
        eventually("requirement 4: one caller waiting", || {
            pool.state().waiting == 1
        })
        .await;
        drop(held);
        let id = waiter
            .await
            .expect("waiter panicked")
            .expect("the waiter gets the connection");
        let connects = manager.0.connects();
        assert!(
            id == 1 && connects == 1,
            "requirement 4: the waiter got connection {id} after {connects} connects; wanted the returned connection 1, no new connect"
        );
        let waiting = pool.state().waiting;
        assert!(
            waiting == 0,
            "requirement 4: state().waiting is {waiting} once the waiter is served; wanted 0"
        );
    })
    .await
}

/// Records the pool's state at the moment the waiter is woken: inside the guard's drop.
struct Snoop {
    pool: Pool<FakeManager>,
    at_wake: Mutex<Option<PoolState>>,
}

impl Wake for Snoop {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut at_wake = self.at_wake.lock().unwrap();
        if at_wake.is_none() {
            *at_wake = Some(self.pool.state());
        }
    }
}

/// Requirement 4: the connection is back in the pool before its permit wakes the next waiter;
/// the other order lets the woken waiter find the queue empty and open a connection too many.
#[tokio::test]
async fn the_connection_is_back_before_the_waiter_wakes() {
    within(async {
        let (pool, manager) = pool(1);
        let held = pool.get().await.expect("get");
        // Poll a waiting get by hand, with a waker that looks at the pool when it is called.
        // The permit's release calls it synchronously, from inside the guard's drop.
        let snoop = Arc::new(Snoop {
            pool: pool.clone(),
            at_wake: Mutex::new(None),
        });
        let waker = Waker::from(snoop.clone());
        let mut waiter = Box::pin(pool.get());
        let first = waiter.as_mut().poll(&mut Context::from_waker(&waker));
        assert!(
            first.is_pending(),
            "requirement 3: a get on an exhausted pool returned at once; wanted it to wait"
        );
        drop(held);
        let seen = *snoop.at_wake.lock().unwrap();
        let Some(seen) = seen else {
            panic!("requirement 4: dropping the guard did not wake the waiting get");
        };
        assert!(
            seen.idle == 1,
            "requirement 4: when the waiter was woken the pool was {seen:?}; wanted the returned connection already idle (release the permit after pushing the connection back)"
        );
        let conn = waiter.await.expect("the waiter gets the connection");
        assert!(
            conn.id == 1 && manager.0.connects() == 1,
            "requirement 4: the waiter got connection {} after {} connects; wanted 1 after 1",
            conn.id,
            manager.0.connects()
        );
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
            eventually("requirement 5: the waiter queued", || {
                pool.state().waiting == i + 1
            })
            .await;
        }
        drop(held);
        for waiter in waiters {
            waiter.await.expect("a waiter panicked");
        }
        let order = order.lock().unwrap().clone();
        assert!(
            order == (0..n).collect::<Vec<_>>(),
            "requirement 5: {n} waiters were served in the order {order:?}; wanted arrival order 0..{n}"
        );
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
        let (connects, idle) = (manager.0.connects(), pool.state().idle);
        assert!(
            (connects, idle) == (n, n),
            "requirement 6: {n} returned connections: {connects} connects, {idle} idle; wanted {n} and {n}"
        );

        manager.0.break_all();
        let conn = pool.get().await.expect("get after the server restarted");
        assert!(
            conn.id == n + 1,
            "requirement 6: after every idle connection broke, get lent connection {}; wanted a new one, {}",
            conn.id,
            n + 1
        );
        let (closes, connects) = (manager.0.closes(), manager.0.connects());
        assert!(
            closes == n && connects == n + 1,
            "requirement 6: {closes} closes and {connects} connects; wanted every broken idle connection closed ({n}) and one new connect ({})",
            n + 1
        );
        let state = pool.state();
        assert!(
            (state.open, state.idle) == (1, 0),
            "requirement 6: the pool is {state:?}; wanted open 1, idle 0"
        );
        drop(conn);
        let checks_before = manager.0.checks.load(SeqCst);
        let again = pool.get().await.expect("get");
        let checks = manager.0.checks.load(SeqCst) - checks_before;
        assert!(
            again.id == n + 1 && checks == 1,
            "requirement 6: the next get lent connection {} after {checks} checks; wanted the healthy {} after one check",
            again.id,
            n + 1
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
            matches!(err, PoolError::Connect(_)) && err.to_string().contains("connection refused"),
            "requirement 7: a failed connect answered {err:?} ({err}); wanted PoolError::Connect carrying the cause"
        );
        let conn = pool
            .get()
            .await
            .expect("requirement 7: the failed attempt kept the only place in the pool");
        let (attempts, open) = (manager.0.connect_attempts.load(SeqCst), pool.state().open);
        assert!(
            conn.id == 1 && attempts == 2 && open == 1,
            "requirement 7: got connection {} after {attempts} attempts, open {open}; wanted connection 1, 2 attempts, open 1",
            conn.id
        );
    })
    .await
}

/// Requirement 7: a get abandoned while its connect is in flight (a timeout around it, a
/// dropped request) gives its place back: nothing counts a connection that never opened.
#[tokio::test]
async fn a_get_dropped_mid_connect_frees_its_place() {
    within(async {
        let manager = FakeManager::default();
        let config = PoolConfig {
            wait_timeout: Duration::from_secs(1),
            ..config(1)
        };
        let pool = Pool::new(manager.clone(), config).expect("Pool::new");
        manager.0.stall_next_connect.store(true, SeqCst);
        let stalled = tokio::spawn({
            let pool = pool.clone();
            async move { pool.get().await.map(|conn| conn.id) }
        });
        eventually("requirement 7: the connect started", || {
            manager.0.connect_attempts.load(SeqCst) == 1
        })
        .await;
        stalled.abort();
        let _ = stalled.await;
        let state = pool.state();
        assert!(
            (state.open, state.waiting) == (0, 0),
            "requirement 7: after a get was dropped in the middle of its connect, the pool is {state:?}; wanted open 0, waiting 0 (count a connection once it exists)"
        );
        let conn = pool.get().await;
        assert!(
            matches!(&conn, Ok(c) if c.id == 1),
            "requirement 7: the next get on the pool of one answered {:?}; wanted connection 1 (the dropped get must give its permit back)",
            conn.as_ref().map(|c| c.id)
        );
        let open = pool.state().open;
        assert!(
            open == 1,
            "requirement 7: state().open is {open} with one connection out; wanted 1"
        );
    })
    .await
}

/// Requirement 3: a caller that gives up while waiting (its future dropped) is no longer
/// counted, and takes no place.
#[tokio::test]
async fn a_get_given_up_while_waiting_leaves_no_trace() {
    within(async {
        let (pool, manager) = pool(1);
        let held = pool.get().await.expect("get");
        let n = rand::rng().random_range(2..6);
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
            })
            .collect();
        eventually("requirement 3: every caller waiting", || {
            pool.state().waiting == n
        })
        .await;
        for waiter in waiters {
            waiter.abort();
            let _ = waiter.await;
        }
        let waiting = pool.state().waiting;
        assert!(
            waiting == 0,
            "requirement 3: {n} waiting gets were dropped, and state().waiting is {waiting}; wanted 0 (decrement in a guard's Drop, which also runs on cancellation)"
        );
        drop(held);
        let conn = pool.get().await.expect("get after the waiters gave up");
        assert!(
            conn.id == 1 && manager.0.connects() == 1,
            "requirement 3: got connection {} after {} connects; wanted the one connection, 1",
            conn.id,
            manager.0.connects()
        );
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
        eventually("requirement 8: every idle connection closed", || {
            manager.0.closes() == n
        })
        .await;
        let state = pool.state();
        assert!(
            (state.open, state.idle) == (0, 0),
            "requirement 8: after the idle timeout the pool is {state:?}; wanted open 0, idle 0"
        );
        let conn = pool
            .get()
            .await
            .expect("get after the idle ones were closed");
        let closes = manager.0.closes();
        assert!(
            conn.id == n + 1 && closes == n,
            "requirement 8: got connection {} with {closes} closes; wanted a fresh one ({}) and {n} closes (a connection in use is never reaped)",
            conn.id,
            n + 1
        );
    })
    .await
}

/// Requirement 8: the reaper ends with the pool. The fake manager's counters are shared with
/// the pool's state, so their reference count says whether that state still exists.
#[tokio::test]
async fn dropping_the_last_handle_frees_the_pool() {
    within(async {
        let (pool, manager) = pool(rand::rng().random_range(1..4));
        let other_handle = pool.clone();
        drop(pool.get().await.expect("get"));
        drop(pool);
        drop(other_handle);
        eventually(
            "requirement 8: the pool's state is freed once the last Pool handle is dropped (the idle reaper must hold a Weak, not an Arc)",
            || Arc::strong_count(&manager.0) == 1,
        )
        .await;
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
        let closes = manager.0.closes();
        assert!(
            closes == n - 1,
            "requirement 9: close() closed {closes} connections at once; wanted the {} idle ones",
            n - 1
        );
        let err = pool.get().await.err().expect("a closed pool lends nothing");
        assert!(
            matches!(err, PoolError::Closed),
            "requirement 9: get on a closed pool answered {err:?}; wanted PoolError::Closed"
        );
        drop(still_out);
        eventually("requirement 9: the returned connection closed", || {
            manager.0.closes() == n
        })
        .await;
        let open = pool.state().open;
        assert!(
            open == 0,
            "requirement 9: state().open is {open} after close; wanted 0"
        );
    })
    .await
}

/// Requirement 9: callers already waiting when the pool closes are woken with `Closed`, not
/// left to wait for their timeout.
#[tokio::test]
async fn close_wakes_waiters_with_closed() {
    within(async {
        let config = PoolConfig {
            wait_timeout: Duration::from_secs(600),
            ..config(1)
        };
        let pool = Pool::new(FakeManager::default(), config).expect("Pool::new");
        let held = pool.get().await.expect("get");
        let n = rand::rng().random_range(1..4);
        let waiters: Vec<_> = (0..n)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.get().await.map(|conn| conn.id) })
            })
            .collect();
        eventually("requirement 9: every caller waiting", || {
            pool.state().waiting == n
        })
        .await;
        pool.close().await;
        for waiter in waiters {
            let result = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect(
                    "requirement 9: a get waiting when close() ran was still waiting 5 s later; wanted it woken with PoolError::Closed",
                )
                .expect("waiter panicked");
            assert!(
                matches!(result, Err(PoolError::Closed)),
                "requirement 9: a get waiting when close() ran answered {result:?}; wanted PoolError::Closed"
            );
        }
        drop(held);
    })
    .await
}
