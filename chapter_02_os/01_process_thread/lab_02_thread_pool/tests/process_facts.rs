//! Grader for Thread Pool: facts about the whole test process (its CPU time, its threads).
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

labkit::lab_mod!(lab);
use lab::ThreadPool;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cpu_ticks() -> u64 {
    labkit::sys::cpu_ticks(std::process::id()).expect("/proc/self/stat")
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

// Requirement 5: idle workers sleep; they use no CPU.
#[test]
fn idle_workers_use_no_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    within_deadline(|| {
        let pool = ThreadPool::new(4).expect("ThreadPool::new");
        assert!(all_workers_answer(&pool, 4), "the 4 workers must run jobs");
        let before = cpu_ticks();
        thread::sleep(Duration::from_secs(1));
        let used = cpu_ticks() - before;
        // 4 spinning workers on 2 cores burn about 200 ticks a second; sleeping ones, about 0.
        assert!(
            used <= 10,
            "an idle pool used {used} clock ticks of CPU in one second: workers must sleep \
             (Condvar::wait), not spin or poll"
        );
        drop(pool);
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
        assert!(all_workers_answer(&pool, 3), "the 3 workers must run jobs");
        assert_eq!(
            new_threads(&before),
            3,
            "a pool of 3 adds 3 threads to the process"
        );

        let failures: Vec<_> = (0..20)
            .map(|_| pool.execute(|| -> () { panic!("{ON_PURPOSE}") }))
            .collect();
        for handle in failures {
            assert!(
                handle.join().is_err(),
                "a panicking job must report an error"
            );
        }
        assert!(
            wait::until(Duration::from_secs(5), || new_threads(&before) == 3),
            "after 20 panicking jobs the pool has {} threads, expected 3",
            new_threads(&before)
        );
        assert!(
            all_workers_answer(&pool, 3),
            "the 3 workers must still run jobs"
        );

        drop(pool);
        assert!(
            wait::until(Duration::from_secs(5), || new_threads(&before) == 0),
            "after drop(pool), {} of its threads are still alive",
            new_threads(&before)
        );
    });
}
