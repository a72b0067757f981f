//! Grader for Thread Pool: facts about the whole test process (its threads, what they do).
//!
//! This file is its own process, and its tests run one at a time, so what /proc says about the
//! process is about this pool only.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{ON_PURPOSE, Rendezvous, quiet_intentional_panics, within_deadline};

use labkit::wait;
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::ThreadPool;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Requirement 1 names the workers `pool-worker-<i>`, so the grader can find them in /proc.
const WORKER_PREFIX: &str = "pool-worker-";

/// The pool's worker threads in this process: their names and scheduler states (`S` asleep,
/// `R` running), from /proc/self/task/*/comm and stat.
fn pool_workers() -> Vec<(String, char)> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .flatten()
        .filter_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?;
            let name = name.trim_end();
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let state = stat[stat.rfind(')')? + 2..].chars().next()?;
            name.starts_with(WORKER_PREFIX)
                .then(|| (name.to_string(), state))
        })
        .collect()
}

/// Ids of this process's threads (the entries of /proc/self/task).
fn thread_ids() -> HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Threads that did not exist in `before`: the pool's workers, counted by their ids so that a
/// thread of the test harness that comes or goes meanwhile does not count.
fn new_threads(before: &HashSet<u32>) -> usize {
    thread_ids().difference(before).count()
}

/// Proves `n` workers are alive: `n` jobs meet while running at the same time.
fn all_workers_answer(pool: &ThreadPool, n: usize) -> bool {
    let meeting = Arc::new(Rendezvous::new(n));
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let meeting = meeting.clone();
            pool.execute(move || meeting.meet(Duration::from_secs(5)))
        })
        .collect();
    handles.into_iter().all(|h| h.join().unwrap())
}

// Requirement 5: idle workers sleep in the kernel; they neither spin nor poll.
#[test]
fn idle_workers_sleep() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within_deadline(|| {
        let pool = ThreadPool::new(4).expect("ThreadPool::new");
        assert!(
            all_workers_answer(&pool, 4),
            "requirement 1: the 4 workers did not all run a job at the same time"
        );
        let mut names: Vec<String> = pool_workers().into_iter().map(|(name, _)| name).collect();
        names.sort();
        assert!(
            names
                == [
                    "pool-worker-0",
                    "pool-worker-1",
                    "pool-worker-2",
                    "pool-worker-3"
                ],
            "requirement 1: a pool of 4 has threads named {names:?} in /proc/self/task/*/comm; \
             wanted pool-worker-0 to pool-worker-3"
        );
        // One idle second: a worker asleep in `Condvar::wait` (futex) neither wakes nor runs; a
        // worker polling with `wait_timeout(1 ms)` wakes about a thousand times.
        labkit::sys::assert_asleep(
            std::process::id(),
            "requirement 5: an idle pool's workers sleep until a job comes",
            |name| name.starts_with(WORKER_PREFIX),
        );
        drop(pool);
    });
}

// Requirement 3: drop wakes every sleeping worker, not just one, and joins them all.
#[test]
fn drop_wakes_every_sleeping_worker() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within_deadline(|| {
        let n = rand::rng().random_range(2..=5);
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        assert!(
            all_workers_answer(&pool, n),
            "requirement 1: the {n} workers did not all run a job at the same time"
        );
        let asleep = || {
            let workers = pool_workers();
            workers.len() == n && workers.iter().all(|(_, state)| *state == 'S')
        };
        assert!(
            wait::until(Duration::from_secs(5), asleep),
            "requirement 5: the {n} idle workers are not all asleep (state S) after 5 s: {:?}",
            pool_workers()
        );
        let (dropped_tx, dropped_rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            drop(pool);
            let _ = dropped_tx.send(());
        });
        let returned = dropped_rx.recv_timeout(Duration::from_secs(5)).is_ok();
        assert!(
            returned,
            "requirement 3: drop(pool) with {n} sleeping workers did not return within 5 s; \
             {} worker(s) still alive: shutting down must wake every worker (notify_all), and \
             each must leave once the queue is empty",
            pool_workers().len()
        );
        let left = pool_workers();
        assert!(
            left.is_empty(),
            "requirement 3: after drop(pool), worker threads {left:?} are still alive; wanted \
             every worker joined"
        );
    });
}

// Requirement 4: the pool keeps its n workers through panics; requirement 3: drop joins them.
#[test]
fn keeps_n_live_threads_through_panics_and_joins_them_on_drop() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    quiet_intentional_panics();
    within_deadline(|| {
        let before = thread_ids();
        let pool = ThreadPool::new(3).expect("ThreadPool::new");
        assert!(
            all_workers_answer(&pool, 3),
            "requirement 1: the 3 workers did not all run a job at the same time"
        );
        let added = new_threads(&before);
        assert!(
            added == 3,
            "requirement 1: a pool of 3 added {added} threads to the process; wanted 3"
        );

        let failures: Vec<_> = (0..20)
            .map(|_| pool.execute(|| -> () { panic!("{ON_PURPOSE}") }))
            .collect();
        for handle in failures {
            assert!(
                handle.join().is_err(),
                "requirement 4: a panicking job's handle returned Ok; wanted an error"
            );
        }
        assert!(
            wait::until(Duration::from_secs(5), || new_threads(&before) == 3),
            "requirement 4: after 20 panicking jobs the pool has {} threads; wanted 3",
            new_threads(&before)
        );
        assert!(
            all_workers_answer(&pool, 3),
            "requirement 4: after 20 panicking jobs, 3 jobs can no longer run at once"
        );

        drop(pool);
        assert!(
            wait::until(Duration::from_secs(5), || new_threads(&before) == 0),
            "requirement 3: 5 s after drop(pool), {} of its threads are still alive; wanted 0",
            new_threads(&before)
        );
    });
}
