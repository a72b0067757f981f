//! Grader for Thread Pool: the pool, used as a library.
//!
//! Every test body runs under a deadline, so a deadlocked pool fails instead of hanging.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use common::{ON_PURPOSE, Rendezvous, quiet_intentional_panics, within_deadline};
use rand::RngExt;
use rand::seq::SliceRandom;

labkit::lab_mod!(lab);
use lab::{PoolError, ThreadPool};

const MEET: Duration = Duration::from_secs(5);

// Requirement 1: `new(0)` is an error; `new(n)` starts n workers.
#[test]
fn zero_threads_is_an_error() {
    assert!(
        matches!(ThreadPool::new(0), Err(PoolError::ZeroThreads)),
        "ThreadPool::new(0) must be Err(PoolError::ZeroThreads)"
    );
    within_deadline(|| {
        let n = rand::rng().random_range(1..8);
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        assert_eq!(pool.threads(), n);
    });
}

#[test]
fn jobs_run_in_parallel_on_every_worker() {
    within_deadline(|| {
        let n = rand::rng().random_range(2..=6);
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        let meeting = Arc::new(Rendezvous::new(n));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let meeting = meeting.clone();
                pool.execute(move || (meeting.meet(MEET), thread::current().id()))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(
            results.iter().all(|(met, _)| *met),
            "{n} jobs on {n} workers must be able to run at the same time"
        );
        let threads: HashSet<_> = results.iter().map(|(_, id)| *id).collect();
        assert_eq!(
            threads.len(),
            n,
            "the {n} jobs ran on {} threads",
            threads.len()
        );
    });
}

// Requirement 2: every job runs exactly once and its handle returns its result.
#[test]
fn runs_10000_jobs_exactly_once() {
    within_deadline(|| {
        const JOBS: usize = 10_000;
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..JOBS).map(|_| AtomicUsize::new(0)).collect());
        let pool = ThreadPool::new(4).expect("ThreadPool::new");
        let handles: Vec<_> = (0..JOBS)
            .map(|i| {
                let runs = runs.clone();
                pool.execute(move || {
                    runs[i].fetch_add(1, Ordering::SeqCst);
                    i * 3
                })
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), i * 3, "result of job {i}");
        }
        drop(pool);
        for (i, count) in runs.iter().enumerate() {
            assert_eq!(
                count.load(Ordering::SeqCst),
                1,
                "job {i} ran the wrong number of times"
            );
        }
    });
}

#[test]
fn handles_return_each_jobs_own_result_in_any_join_order() {
    within_deadline(|| {
        let mut rng = rand::rng();
        let inputs: Vec<u64> = (0..500).map(|_| rng.random_range(0..1_000_000)).collect();
        let pool = ThreadPool::new(3).expect("ThreadPool::new");
        let mut handles: Vec<_> = inputs
            .iter()
            .map(|&x| (x, pool.execute(move || format!("{x}:{}", x * x))))
            .collect();
        handles.shuffle(&mut rng);
        for (x, handle) in handles {
            assert_eq!(handle.join().unwrap(), format!("{x}:{}", x * x));
        }
    });
}

#[test]
fn execute_can_be_called_from_many_threads() {
    within_deadline(|| {
        let pool = ThreadPool::new(3).expect("ThreadPool::new");
        let total: u64 = thread::scope(|s| {
            let submitters: Vec<_> = (0..4u64)
                .map(|t| {
                    let pool = &pool;
                    s.spawn(move || {
                        let handles: Vec<_> = (0..500u64)
                            .map(|i| pool.execute(move || t * 1000 + i))
                            .collect();
                        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                    })
                })
                .collect();
            submitters.into_iter().map(|s| s.join().unwrap()).sum()
        });
        let expected: u64 = (0..4u64)
            .flat_map(|t| (0..500).map(move |i| t * 1000 + i))
            .sum();
        assert_eq!(total, expected);
    });
}

#[test]
fn a_dropped_handle_does_not_cancel_its_job() {
    within_deadline(|| {
        let ran = Arc::new(AtomicUsize::new(0));
        let pool = ThreadPool::new(2).expect("ThreadPool::new");
        for _ in 0..100 {
            let ran = ran.clone();
            let _ = pool.execute(move || ran.fetch_add(1, Ordering::SeqCst));
        }
        drop(pool);
        assert_eq!(ran.load(Ordering::SeqCst), 100);
    });
}

// Requirement 3: dropping the pool runs every queued job, then joins every worker.
#[test]
fn dropping_the_pool_runs_every_queued_job_first() {
    within_deadline(|| {
        let pool = ThreadPool::new(2).expect("ThreadPool::new");
        let ran = Arc::new(AtomicUsize::new(0));
        // Two jobs hold both workers until the gate opens, so the next 500 wait in the queue.
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Arc::new(Mutex::new(gate_rx));
        for _ in 0..2 {
            let (gate_rx, ran) = (gate_rx.clone(), ran.clone());
            pool.execute(move || {
                let _ = gate_rx.lock().unwrap().recv_timeout(Duration::from_secs(5));
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        for _ in 0..500 {
            let ran = ran.clone();
            pool.execute(move || {
                thread::sleep(Duration::from_micros(20));
                ran.fetch_add(1, Ordering::SeqCst);
            });
        }
        drop(gate_tx); // both gate jobs return at once
        drop(pool);
        assert_eq!(
            ran.load(Ordering::SeqCst),
            502,
            "drop(pool) returned before every queued job had run"
        );
    });
}

/// Counts worker threads that have exited: a thread-local whose destructor runs at thread exit.
struct ExitNotice(Arc<AtomicUsize>);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<ExitNotice>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn drop_waits_for_running_jobs_and_joins_every_worker() {
    within_deadline(|| {
        let n = rand::rng().random_range(2..=5);
        let exited = Arc::new(AtomicUsize::new(0));
        let slow_job_done = Arc::new(AtomicBool::new(false));
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        let meeting = Arc::new(Rendezvous::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (exited, meeting, done) =
                    (exited.clone(), meeting.clone(), slow_job_done.clone());
                pool.execute(move || {
                    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(ExitNotice(exited)));
                    let met = meeting.meet(MEET);
                    if i == 0 {
                        thread::sleep(Duration::from_millis(200));
                        done.store(true, Ordering::SeqCst);
                    }
                    met
                })
            })
            .collect();
        // Wait until every worker holds a job (one each), then drop while job 0 still sleeps.
        let results: Vec<_> = handles
            .into_iter()
            .skip(1)
            .map(|h| h.join().unwrap())
            .collect();
        assert!(
            results.iter().all(|met| *met),
            "the {n} workers must run at the same time"
        );
        drop(pool);
        assert!(
            slow_job_done.load(Ordering::SeqCst),
            "drop(pool) returned while a job was still running"
        );
        assert_eq!(
            exited.load(Ordering::SeqCst),
            n,
            "when drop(pool) returns, all {n} worker threads must have exited (joined)"
        );
    });
}

#[test]
fn a_single_worker_runs_jobs_in_submission_order() {
    within_deadline(|| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let pool = ThreadPool::new(1).expect("ThreadPool::new");
        for i in 0..1000 {
            let order = order.clone();
            pool.execute(move || order.lock().unwrap().push(i));
        }
        drop(pool);
        let order = order.lock().unwrap();
        assert_eq!(
            *order,
            (0..1000).collect::<Vec<_>>(),
            "jobs must run first in, first out"
        );
    });
}

// Requirement 4: a panicking job reports its panic and does not kill its worker.
#[test]
fn a_panicking_job_reports_its_message_through_its_handle() {
    quiet_intentional_panics();
    within_deadline(|| {
        let token: u32 = rand::rng().random();
        let pool = ThreadPool::new(2).expect("ThreadPool::new");
        let failed = pool.execute(move || -> u32 { panic!("{ON_PURPOSE} #{token}") });
        match failed.join() {
            Err(PoolError::Panicked(message)) => assert!(
                message.contains(&format!("#{token}")),
                "the panic message should be in the error: {message:?}"
            ),
            Err(other) => panic!("expected PoolError::Panicked, got {other:?}"),
            Ok(value) => panic!("a panicking job returned {value}"),
        }
        assert_eq!(pool.execute(|| 42).join().unwrap(), 42);
    });
}

#[test]
fn panicking_jobs_do_not_kill_workers() {
    quiet_intentional_panics();
    within_deadline(|| {
        let n = rand::rng().random_range(2..=4);
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        let failures: Vec<_> = (0..5 * n)
            .map(|_| pool.execute(|| -> () { panic!("{ON_PURPOSE}") }))
            .collect();
        for handle in failures {
            assert!(matches!(handle.join(), Err(PoolError::Panicked(_))));
        }
        // All n workers must still be there: n jobs can meet at the same time.
        let meeting = Arc::new(Rendezvous::new(n));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let meeting = meeting.clone();
                pool.execute(move || meeting.meet(MEET))
            })
            .collect();
        for handle in handles {
            assert!(
                handle.join().unwrap(),
                "after panicking jobs, {n} jobs can no longer run at once: a worker died"
            );
        }
    });
}
