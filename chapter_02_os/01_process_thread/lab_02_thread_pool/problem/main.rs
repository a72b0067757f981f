//! ## Goal
//! Lab 2.1 showed that creating a thread costs tens of microseconds. A server that starts a thread
//! per request pays that every time; a *thread pool* pays it once and then hands each job to a
//! thread that already exists. You build the classic one: `n` workers, one shared queue behind a
//! mutex, a condition variable to sleep on, a handle per job to get its result back, panics that
//! do not kill workers, and a shutdown that finishes the work before it joins the threads. Then you
//! redo the work with rayon, the crate Rust programs use for this, on a rayon pool you are given,
//! and race the two.
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
//! 6. Then the same work with rayon: `map_chunks_with_rayon(pool, data, chunk_len, work)` runs
//!    `work` once on every `chunk_len`-byte chunk of `data` (the last may be shorter) and returns
//!    the results in chunk order, equal to `data.chunks(chunk_len).map(work).collect()`, but
//!    computed in parallel on the threads of the `rayon::ThreadPool` it is given: never on rayon's
//!    global pool, never on the calling thread, which only waits. The grader passes a pool of N
//!    threads it names (N random), reads in `/proc/thread-self/comm` which thread ran each chunk,
//!    and makes N chunks meet while they run.
//! 7. The program `ch2_thread_pool [--threads N] [--idle SECONDS]` (its command line is given,
//!    with clap) runs the demo: N pool workers run 1,000 jobs, then one thread, the pool and a
//!    rayon pool of N threads checksum the same 4 MiB and agree. `--help` prints the usage on
//!    stdout and exits 0; an unknown option or a bad value prints one line on stderr and exits 2.
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
//! - [ ] Requirement 6: `map_chunks_with_rayon` returns what `data.chunks(chunk_len).map(work)`
//!   gives, in chunk order, computed in parallel on the rayon pool it is given, never on the
//!   global pool or the calling thread
//! - [ ] Requirement 7: `cargo run -- --threads N` runs the demo and the pool and rayon agree with
//!   one thread; `--help` exits 0, a bad option exits 2 with one line on stderr
//!
//! ## Notes
//!
//! A thread pool: `n` worker threads that take jobs from one shared queue.
//!
//! Build `ThreadPool::new(n)`, `execute(job)` returning a `JobHandle`, and a `Drop` that shuts
//! the pool down gracefully; then `map_chunks_with_rayon`, the same kind of work on a rayon pool.
//! Read README.md for the requirements; `cargo lab test 2.2` grades this file and `cargo run`
//! runs the demo in `main` (given, like its command line) once your pool works.
//!
//! The grader calls exactly the items below. Remove the `allow` once every argument is used.
#![allow(unused_variables)]

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::thread;

use clap::Parser;

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

/// The same work with rayon: `work` on every `chunk_len`-byte chunk of `data` (the last may be
/// shorter), in parallel on the threads of `pool` (not rayon's global pool, not the calling
/// thread), results in chunk order. The same as `data.chunks(chunk_len).map(work).collect()`,
/// only parallel. May panic if `chunk_len` is 0.
pub fn map_chunks_with_rayon<T, F>(
    pool: &rayon::ThreadPool,
    data: &[u8],
    chunk_len: usize,
    work: F,
) -> Vec<T>
where
    T: Send,
    F: Fn(&[u8]) -> T + Sync + Send,
{
    todo!("run a parallel iterator over the chunks of `data` on `pool`, collecting in order")
}

/// FNV-1a, 64 bits: the demo's checksum of one chunk.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The demo: a thread pool runs 1,000 tiny jobs and one that panics; then one thread, the pool
/// and a rayon pool checksum the same 4 MiB, chunk by chunk.
#[derive(Debug, Parser)]
#[command(name = "ch2_thread_pool")]
struct Cli {
    /// Workers in the thread pool, and threads in the rayon pool [default: one per CPU]
    #[arg(long, value_name = "N")]
    threads: Option<NonZeroUsize>,
    /// At the end, keep both pools alive and idle for SECONDS, to look at them from outside
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    idle: u64,
}

const DEMO_CHUNK: usize = 4 << 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--help` prints the usage on stdout (exit 0); a bad argument is one line on stderr (exit
    // 2), shorter than clap's own message.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        if !e.use_stderr() {
            e.exit(); // --help
        }
        let why = e.to_string();
        let why = why.lines().next().unwrap_or_default();
        let why = why.trim_start_matches("error: ");
        eprintln!("ch2_thread_pool: {why}; usage: ch2_thread_pool [--threads N] [--idle SECONDS]");
        std::process::exit(2)
    });
    // A panic is still reported by the panic hook (on the worker's thread) before
    // `catch_unwind` stops it; keep that report to one line.
    std::panic::set_hook(Box::new(|info| eprintln!("(panic hook) {info}")));
    let threads = (cli.threads)
        .or_else(|| thread::available_parallelism().ok())
        .map_or(2, NonZeroUsize::get);
    let pool = ThreadPool::new(threads)?;
    let name = || thread::current().name().map(String::from);
    let handles: Vec<_> = (0..1000u64)
        .map(|i| pool.execute(move || (i * i, name())))
        .collect();
    let done: Vec<_> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let sum: u64 = done.iter().map(|(square, _)| square).sum();
    println!("sum of squares below 1000 = {sum}, by {threads} workers:");
    print_counts(done.into_iter().map(|(_, worker)| worker), "jobs");
    let oops = pool.execute(|| -> u32 { panic!("this job fails on purpose") });
    let oops = oops.join().map_err(|e| e.to_string());
    println!("a panicking job gives: {oops:?}");
    let after = pool.execute(|| 6 * 7).join().ok();
    println!("and the pool still works: {after:?}");

    // The same checksums three ways. The pool's jobs must own what they touch ('static), so
    // they share the data through an Arc; rayon's borrow it, since `install` waits for them.
    let data: Vec<u8> = (0..4u64 << 20)
        .map(|i| ((i * 0x9e37_79b1) >> 24) as u8)
        .collect();
    let data = Arc::new(data);
    let one_thread: Vec<u64> = data.chunks(DEMO_CHUNK).map(fnv1a).collect();
    let handles: Vec<_> = (0..one_thread.len())
        .map(|i| {
            let data = Arc::clone(&data);
            pool.execute(move || fnv1a(data.chunks(DEMO_CHUNK).nth(i).unwrap_or_default()))
        })
        .collect();
    let on_the_pool: Vec<u64> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rayon-worker-{i}"))
        .build()?;
    let with_rayon = map_chunks_with_rayon(&rayon_pool, &data, DEMO_CHUNK, |chunk| {
        (fnv1a(chunk), name())
    });
    let (with_rayon, rayon_threads): (Vec<u64>, Vec<_>) = with_rayon.into_iter().unzip();
    let (chunks, pool_agrees) = (one_thread.len(), on_the_pool == one_thread);
    let rayon_agrees = with_rayon == one_thread;
    println!(
        "fnv1a of {chunks} chunks of 4 KiB: the pool agrees with one thread: {pool_agrees}, \
         rayon agrees: {rayon_agrees}"
    );
    println!("rayon's {threads} threads checksummed:");
    print_counts(rayon_threads.into_iter(), "chunks");
    if cli.idle > 0 {
        let (pid, idle) = (std::process::id(), cli.idle);
        println!("pid {pid}: both pools are idle for {idle} s");
        thread::sleep(std::time::Duration::from_secs(idle));
    }
    Ok(())
}

/// Prints how many jobs each thread ran, given the name of the thread that ran each job.
fn print_counts(names: impl Iterator<Item = Option<String>>, what: &str) {
    let mut counts = BTreeMap::<String, usize>::new();
    for name in names {
        *counts.entry(name.unwrap_or_default()).or_default() += 1;
    }
    for (name, count) in counts {
        println!("  {name}: {count} {what}");
    }
}
