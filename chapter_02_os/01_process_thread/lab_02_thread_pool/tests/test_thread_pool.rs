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
use labkit::wait;
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
        "requirement 1: ThreadPool::new(0) must be Err(PoolError::ZeroThreads)"
    );
    within_deadline(|| {
        let n = rand::rng().random_range(1..8);
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        let threads = pool.threads();
        assert!(
            threads == n,
            "requirement 1: ThreadPool::new({n}).threads() returned {threads}; wanted {n}"
        );
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
            "requirement 1: {n} jobs on {n} workers did not all run at the same time (they met \
             for 5 s and some never came): is a job run while the queue's lock is held?"
        );
        let threads: HashSet<_> = results.iter().map(|(_, id)| *id).collect();
        assert!(
            threads.len() == n,
            "requirement 1: the {n} jobs ran on {} threads; wanted {n}, one per worker",
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
            let got = handle.join();
            assert!(
                matches!(got, Ok(r) if r == i * 3),
                "requirement 2: job {i}'s handle returned {got:?}; wanted Ok({})",
                i * 3
            );
        }
        drop(pool);
        let wrong = runs
            .iter()
            .enumerate()
            .map(|(i, count)| (i, count.load(Ordering::SeqCst)))
            .filter(|&(_, count)| count != 1)
            .collect::<Vec<_>>();
        assert!(
            wrong.is_empty(),
            "requirement 2: {} of {JOBS} jobs did not run exactly once (first: job {} ran {} \
             times); wanted each once",
            wrong.len(),
            wrong[0].0,
            wrong[0].1
        );
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
            let got = handle.join();
            let want = format!("{x}:{}", x * x);
            assert!(
                matches!(&got, Ok(s) if *s == want),
                "requirement 2: the handle of the job computing {x} returned {got:?}; wanted \
                 Ok({want:?})"
            );
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
        assert!(
            total == expected,
            "requirement 2: 4 threads each executed 500 jobs; the results summed to {total}, \
             wanted {expected}"
        );
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
        let ran = ran.load(Ordering::SeqCst);
        assert!(
            ran == 100,
            "requirement 2: 100 jobs whose handles were dropped at once ran {ran} times; wanted \
             100 (a dropped handle must not cancel its job)"
        );
    });
}

#[test]
fn execute_returns_at_once_while_every_worker_is_busy() {
    within_deadline(|| {
        let mut rng = rand::rng();
        let n = rng.random_range(1..=3);
        let jobs: usize = rng.random_range(3_000..6_000);
        let pool = Arc::new(ThreadPool::new(n).expect("ThreadPool::new"));
        // n jobs hold every worker until the gate opens (the sender is dropped).
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let gate_rx = Arc::new(Mutex::new(gate_rx));
        for _ in 0..n {
            let gate_rx = gate_rx.clone();
            pool.execute(move || {
                let _ = gate_rx
                    .lock()
                    .unwrap()
                    .recv_timeout(Duration::from_secs(10));
            });
        }
        // Meanwhile another thread queues thousands of jobs: every `execute` must return.
        let submitted = Arc::new(AtomicUsize::new(0));
        let submitter = {
            let (pool, submitted) = (pool.clone(), submitted.clone());
            thread::spawn(move || {
                (0..jobs)
                    .map(|i| {
                        let handle = pool.execute(move || i);
                        submitted.fetch_add(1, Ordering::SeqCst);
                        handle
                    })
                    .collect::<Vec<_>>()
            })
        };
        let all_queued = wait::until(Duration::from_secs(5), || {
            submitted.load(Ordering::SeqCst) == jobs
        });
        let queued = submitted.load(Ordering::SeqCst);
        drop(gate_tx);
        assert!(
            all_queued,
            "requirement 2: with all {n} workers busy, `execute` returned for {queued} of {jobs} \
             jobs within 5 s; wanted all of them (queue the job and return: never wait for a \
             free worker or for room in a bounded queue)"
        );
        let handles = submitter.join().expect("the submitting thread");
        let wrong = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| (i, h.join()))
            .find(|(i, got)| !matches!(got, Ok(r) if r == i));
        assert!(
            wrong.is_none(),
            "requirement 2: after the gate opened, a queued job's handle returned {wrong:?}; \
             wanted each job's own index"
        );
    });
}

#[test]
fn handles_deliver_results_after_the_pool_is_dropped() {
    within_deadline(|| {
        let jobs = rand::rng().random_range(20..60u64);
        let pool = ThreadPool::new(2).expect("ThreadPool::new");
        let handles: Vec<_> = (0..jobs).map(|i| pool.execute(move || i * 7)).collect();
        // Nobody reads a handle before the pool is gone: the results must wait for them.
        let (dropped_tx, dropped_rx) = mpsc::channel();
        thread::spawn(move || {
            drop(pool);
            let _ = dropped_tx.send(());
        });
        assert!(
            dropped_rx.recv_timeout(Duration::from_secs(5)).is_ok(),
            "requirement 2: drop(pool) did not return within 5 s while {jobs} handles were still \
             unread; wanted a worker to leave each result in its handle and move on (does it \
             wait for the handle to be read?)"
        );
        for (i, handle) in handles.into_iter().enumerate() {
            let got = handle.join();
            assert!(
                matches!(got, Ok(r) if r == i as u64 * 7),
                "requirement 2: job {i}'s handle, read after drop(pool), returned {got:?}; \
                 wanted Ok({})",
                i as u64 * 7
            );
        }
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
        let ran = ran.load(Ordering::SeqCst);
        assert!(
            ran == 502,
            "requirement 3: when drop(pool) returned, {ran} of 502 queued jobs had run; wanted \
             all of them"
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
        let slow_job_met = Arc::new(AtomicBool::new(false));
        let pool = ThreadPool::new(n).expect("ThreadPool::new");
        let meeting = Arc::new(Rendezvous::new(n));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (exited, meeting, done, job_met) = (
                    exited.clone(),
                    meeting.clone(),
                    slow_job_done.clone(),
                    slow_job_met.clone(),
                );
                pool.execute(move || {
                    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(ExitNotice(exited)));
                    let met = meeting.meet(MEET);
                    if i == 0 {
                        job_met.store(met, Ordering::SeqCst);
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
            "requirement 1: the {n} workers did not all run a job at the same time"
        );
        drop(pool);
        // The last job to arrive always meets the others: job 0 must have met them too.
        assert!(
            slow_job_met.load(Ordering::SeqCst),
            "requirement 1: the {n} workers did not all run a job at the same time"
        );
        assert!(
            slow_job_done.load(Ordering::SeqCst),
            "requirement 3: drop(pool) returned while a job was still running; wanted it to \
             wait for running jobs (join every worker)"
        );
        let exited = exited.load(Ordering::SeqCst);
        assert!(
            exited == n,
            "requirement 3: when drop(pool) returned, {exited} of {n} worker threads had exited; \
             wanted all {n} (joined)"
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
        let first_wrong = order.iter().enumerate().find(|&(at, &job)| at != job);
        assert!(
            order.len() == 1000 && first_wrong.is_none(),
            "requirement 3: a single worker ran {} of 1000 jobs, and at position {:?} job {:?}; \
             wanted every job, first in, first out",
            order.len(),
            first_wrong.map(|(at, _)| at),
            first_wrong.map(|(_, job)| job)
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
                "requirement 4: the error of a job that panicked with \"#{token}\" holds \
                 {message:?}; wanted the panic message"
            ),
            Err(other) => panic!(
                "requirement 4: a panicking job's handle returned Err({other:?}); wanted \
                 Err(PoolError::Panicked(message))"
            ),
            Ok(value) => panic!("requirement 4: a panicking job's handle returned Ok({value})"),
        }
        let after = pool.execute(|| 42).join();
        assert!(
            matches!(after, Ok(42)),
            "requirement 4: after a panic, a job returning 42 gave {after:?}; wanted Ok(42)"
        );
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
            let got = handle.join();
            assert!(
                matches!(got, Err(PoolError::Panicked(_))),
                "requirement 4: a panicking job's handle returned {got:?}; wanted \
                 Err(PoolError::Panicked(_))"
            );
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
                "requirement 4: after panicking jobs, {n} jobs can no longer run at once: a \
                 worker died"
            );
        }
    });
}
