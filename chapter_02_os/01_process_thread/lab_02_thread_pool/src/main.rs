//! ## Goal
//! Lab 2.1 showed that creating a thread costs tens of microseconds. A server that starts a thread
//! per request pays that every time; a *thread pool* pays it once and then hands each job to a
//! thread that already exists. You build the classic one: `n` workers, one shared queue behind a
//! mutex, a condition variable to sleep on, a handle per job to get its result back, panics that
//! do not kill workers, and a shutdown that finishes the work before it joins the threads. Then you
//! race it against rayon.
//!
//! ## Requirements
//! 1. `ThreadPool::new(n)` starts `n` worker threads named `pool-worker-0` to `pool-worker-{n-1}`
//!    (the grader finds them by name in `/proc/self/task/*/comm`), and `threads()` returns `n`;
//!    `new(0)` is `Err(PoolError::ZeroThreads)`. `n` jobs can run at the same time, each on its
//!    own worker: no job runs while the queue's lock is held.
//! 2. `execute(job)` queues any `FnOnce() -> T + Send + 'static` and returns a `JobHandle<T>` at
//!    once, even when every worker is busy and thousands of jobs wait (the queue is unbounded);
//!    `handle.join()` blocks until the job has run and returns its value. Every job runs exactly
//!    once, also when its handle is dropped unread, and a handle can still be read after the pool
//!    is dropped (a worker leaves the result and moves on). The pool is `Send + Sync`: several
//!    threads may call `execute` on one `&ThreadPool`.
//! 3. Dropping the pool is a graceful shutdown: it wakes every worker, every queued job runs, a
//!    running job finishes, and every worker thread is joined before `drop` returns. Jobs start in
//!    submission order (FIFO), which a single worker makes visible.
//! 4. A job that panics does not kill its worker: `join` returns `Err(PoolError::Panicked(msg))`
//!    with the panic message, and the pool keeps `n` live workers.
//! 5. No busy waiting: an idle worker sleeps in the kernel until a job comes. The grader watches
//!    the `pool-worker-*` threads for one idle second and counts their context switches and CPU
//!    ticks: a worker asleep in `Condvar::wait` makes none, one that polls with
//!    `wait_timeout(1 ms)` wakes a thousand times, one that spins burns a core.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `ThreadPool::new(n)` starts `n` worker threads named `pool-worker-0` to
//!   `pool-worker-{n-1}` (the grader finds them by name in `/proc/self/task/*/comm`), and
//!   `threads()` returns `n`; `new(0)` is `Err(PoolError::ZeroThreads)`
//! - [ ] Requirement 2: `execute(job)` queues any `FnOnce() -> T + Send + 'static` and returns a
//!   `JobHandle<T>` at once, even when every worker is busy and thousands of jobs wait (the queue
//!   is unbounded); `handle.join()` blocks until the job has run and returns its value
//! - [ ] Requirement 3: Dropping the pool is a graceful shutdown: it wakes every worker, every
//!   queued job runs, a running job finishes, and every worker thread is joined before `drop`
//!   returns
//! - [ ] Requirement 4: A job that panics does not kill its worker: `join` returns
//!   `Err(PoolError::Panicked(msg))` with the panic message, and the pool keeps `n` live workers
//! - [ ] Requirement 5: No busy waiting: an idle worker sleeps in the kernel until a job comes
//!
//! ## Notes
//!
//! A thread pool: `n` worker threads that take jobs from one shared queue.
//!
//! Build `ThreadPool::new(n)`, `execute(job)` returning a `JobHandle`, and a `Drop` that shuts
//! the pool down gracefully. Read README.md for the requirements; `cargo lab test 2.2` grades
//! this file and `cargo run` runs the demo in `main` once your pool works.
//!
//! The grader calls exactly the items below. Remove the `allow` once every argument is used.
#![allow(unused_variables)]

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::process::ExitCode;
use std::thread;

/// Everything that can go wrong with the pool or one of its jobs.
#[derive(Debug)]
pub enum PoolError {
    /// `ThreadPool::new(0)`: a pool without workers would never run anything.
    ZeroThreads,
    /// The operating system refused to create a worker thread.
    Spawn(io::Error),
    /// The job panicked; the panic message, when it was a string.
    Panicked(String),
    /// The job was dropped without running, so it has no result.
    Lost,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::ZeroThreads => write!(f, "a thread pool needs at least one thread"),
            PoolError::Spawn(e) => write!(f, "cannot start a worker thread: {e}"),
            PoolError::Panicked(msg) => write!(f, "the job panicked: {msg}"),
            PoolError::Lost => write!(f, "the job was dropped before it ran"),
        }
    }
}

impl std::error::Error for PoolError {}

/// A fixed set of worker threads running jobs in submission order (FIFO).
///
/// It must be `Send + Sync`: several threads may call `execute` on a shared `&ThreadPool`.
pub struct ThreadPool {
    // TODO: the shared job queue, and the workers' `JoinHandle`s.
}

impl ThreadPool {
    /// Starts `threads` workers, named `pool-worker-0`, `pool-worker-1`... (the grader finds
    /// them by name). `threads == 0` is `Err(PoolError::ZeroThreads)`.
    pub fn new(threads: usize) -> Result<ThreadPool, PoolError> {
        todo!("start `threads` workers that sleep until a job is queued")
    }

    /// Queues `job` and returns a handle to its result at once (never waits for a job to run).
    /// A job that panics must not kill its worker: the handle reports the panic instead.
    pub fn execute<F, T>(&self, job: F) -> JobHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        todo!("box the job, push it on the queue, wake one worker, return a handle")
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        todo!("the number of workers")
    }
}

impl Drop for ThreadPool {
    /// Graceful shutdown: every queued job runs, then every worker is joined.
    fn drop(&mut self) {
        todo!("tell the workers to finish the queue and leave, then join them all")
    }
}

/// The result of one job, available once a worker has run it.
pub struct JobHandle<T> {
    // TODO: replace with what carries the result from the worker (a channel, say).
    _result: PhantomData<T>,
}

impl<T> JobHandle<T> {
    /// Blocks until the job has run and returns its value, `Err(PoolError::Panicked(message))`
    /// if it panicked, or `Err(PoolError::Lost)` if it was dropped without running.
    pub fn join(self) -> Result<T, PoolError> {
        todo!("wait for the job's result")
    }
}

/// A small demo: which worker ran how many jobs, and a panic that does not kill anybody.
fn main() -> ExitCode {
    let idle = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 0,
        [flag, secs] if flag == "--idle" && secs.parse::<u64>().is_ok() => {
            secs.parse().unwrap_or(0)
        }
        _ => {
            eprintln!("usage: ch2_thread_pool [--idle SECONDS]");
            return ExitCode::from(2);
        }
    };
    // A panic is still reported by the panic hook (on the worker's thread) before
    // `catch_unwind` stops it; keep that report to one line.
    std::panic::set_hook(Box::new(|info| eprintln!("(panic hook) {info}")));
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let pool = match ThreadPool::new(threads) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("ch2_thread_pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handles: Vec<_> = (0..1000u64)
        .map(|i| pool.execute(move || (i * i, thread::current().name().map(String::from))))
        .collect();
    let mut per_worker = std::collections::BTreeMap::<String, usize>::new();
    let mut sum = 0;
    for handle in handles {
        match handle.join() {
            Ok((square, name)) => {
                sum += square;
                *per_worker.entry(name.unwrap_or_default()).or_default() += 1;
            }
            Err(e) => eprintln!("job failed: {e}"),
        }
    }
    println!("sum of squares below 1000 = {sum}, by {threads} workers:");
    for (worker, jobs) in per_worker {
        println!("  {worker}: {jobs} jobs");
    }
    let oops = pool.execute(|| -> u32 { panic!("this job fails on purpose") });
    println!(
        "a panicking job gives: {:?}",
        oops.join().map_err(|e| e.to_string())
    );
    println!(
        "and the pool still works: {:?}",
        pool.execute(|| 6 * 7).join().ok()
    );
    if idle > 0 {
        println!("pid {}: the pool is idle for {idle} s", std::process::id());
        thread::sleep(std::time::Duration::from_secs(idle));
    }
    ExitCode::SUCCESS
}
