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
    /// Starts `threads` workers. `threads == 0` is `Err(PoolError::ZeroThreads)`.
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
