//! A thread pool: `n` worker threads that take jobs from one shared queue.
//!
//! Creating a thread costs tens of microseconds (lab 2.1); a pool pays that once and then hands
//! each job to a thread that already exists. Four ideas carry the design:
//!
//! - **One queue, one lock, one condition variable.** `execute` pushes a job under the mutex and
//!   wakes one worker with `notify_one`. A worker with nothing to do sleeps in `Condvar::wait`,
//!   which is a `futex(FUTEX_WAIT)` system call: the kernel does not schedule it again until
//!   someone notifies. That is why an idle pool costs no CPU (no spinning, no polling).
//! - **Results travel through a channel per job.** `execute` returns a `JobHandle` holding the
//!   receiving end of a one-slot channel; the worker sends the job's result into it.
//! - **A panic is a result, not a dead worker.** `catch_unwind` stops the unwinding at the job's
//!   boundary, so the worker lives on and the handle reports the panic.
//! - **Shutdown is graceful.** Dropping the pool raises a flag and wakes every worker; a worker
//!   leaves only when the queue is empty *and* the flag is up, so every queued job runs. `Drop`
//!   then joins each worker, so when `drop(pool)` returns no worker thread is left.
//!
//! Then the same work with rayon ([`map_chunks_with_rayon`]): a pool that already exists (its
//! threads are started once), but with a deque per thread and work stealing instead of one
//! locked queue, and jobs that may borrow the caller's data because the call waits for them.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

use clap::Parser;
use rayon::prelude::*;

/// A job as the queue stores it: any closure, boxed so that jobs of different types fit in one
/// queue. Its return value has already been routed to the job's handle by `execute`.
type Job = Box<dyn FnOnce() + Send + 'static>;

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

/// The state the workers share, behind one mutex.
struct Queue {
    jobs: VecDeque<Job>,
    /// Workers sleeping in `wake_up.wait`: `execute` makes the `notify_one` system call only
    /// when somebody is there to hear it.
    sleeping: usize,
    shutting_down: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when a job is pushed, and (to everyone) when the pool shuts down.
    wake_up: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No user code runs while the lock is held (jobs run after it is released), so the
        // mutex cannot be poisoned by a panicking job; take the guard either way.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A fixed set of worker threads running jobs in submission order (FIFO).
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl ThreadPool {
    /// Starts `threads` workers. `threads == 0` is an error.
    pub fn new(threads: usize) -> Result<ThreadPool, PoolError> {
        if threads == 0 {
            return Err(PoolError::ZeroThreads);
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                sleeping: 0,
                shutting_down: false,
            }),
            wake_up: Condvar::new(),
        });
        let mut pool = ThreadPool {
            shared,
            workers: Vec::with_capacity(threads),
        };
        for id in 0..threads {
            let shared = Arc::clone(&pool.shared);
            let worker = thread::Builder::new()
                .name(format!("pool-worker-{id}"))
                .spawn(move || work(&shared))
                // On error `pool` is dropped here, which stops and joins the workers started so far.
                .map_err(PoolError::Spawn)?;
            pool.workers.push(worker);
        }
        Ok(pool)
    }

    /// Queues `job` and returns a handle to its result. Never blocks on a running job.
    pub fn execute<F, T>(&self, job: F) -> JobHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move || {
            // The panic stops here instead of unwinding through the worker's loop. Asserting
            // unwind safety is fine: whatever the job captured is dropped with it.
            let result = panic::catch_unwind(AssertUnwindSafe(job));
            // The handle may be gone (the caller did not want the result): not an error.
            let _ = tx.send(result);
        });
        let someone_sleeps = {
            let mut queue = self.shared.lock();
            queue.jobs.push_back(job);
            queue.sleeping > 0
        };
        // Wake one sleeping worker (a futex system call), after releasing the lock so that it
        // does not wake up only to block on the mutex. When nobody sleeps, every worker is busy
        // and will find the job when it comes back to the queue: no wake-up needed.
        if someone_sleeps {
            self.shared.wake_up.notify_one();
        }
        JobHandle { result: rx }
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }
}

/// A worker's life: take the next job, run it without holding the lock, repeat; sleep while the
/// queue is empty; leave once the queue is empty and the pool is shutting down.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queue = shared.lock();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                if queue.shutting_down {
                    return;
                }
                // Releases the lock and sleeps in the kernel until notified. The loop re-checks
                // the queue, since a wake-up can be spurious or another worker may have won.
                queue.sleeping += 1;
                queue = shared
                    .wake_up
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
                queue.sleeping -= 1;
            }
        };
        job();
    }
}

impl Drop for ThreadPool {
    /// Graceful shutdown: every queued job runs, then every worker is joined.
    fn drop(&mut self) {
        self.shared.lock().shutting_down = true;
        self.shared.wake_up.notify_all();
        for worker in self.workers.drain(..) {
            // A worker cannot panic (jobs are caught), so there is nothing to report here.
            let _ = worker.join();
        }
    }
}

/// The result of one job, available once a worker has run it.
pub struct JobHandle<T> {
    result: mpsc::Receiver<thread::Result<T>>,
}

impl<T> JobHandle<T> {
    /// Blocks until the job has run and returns its value, or why there is none.
    pub fn join(self) -> Result<T, PoolError> {
        match self.result.recv() {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(payload)) => Err(PoolError::Panicked(panic_message(payload.as_ref()))),
            // The sender was dropped without sending: the job never ran.
            Err(mpsc::RecvError) => Err(PoolError::Lost),
        }
    }
}

/// The text of a panic: `panic!("literal")` carries a `&str`, `panic!("{x}")` a `String`.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// The same work with rayon: `work` on every `chunk_len`-byte chunk of `data` (the last may be
/// shorter), in parallel on the threads of `pool`, results in chunk order. The same as
/// `data.chunks(chunk_len).map(work).collect()`, only parallel. Panics if `chunk_len` is 0.
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
    // `install` runs the closure on one of `pool`'s threads and blocks the caller until it is
    // done, so every parallel iterator inside splits its work among *that* pool's threads; the
    // same `par_chunks` outside `install` would run on rayon's global pool. Because the caller
    // waits, the chunks may borrow `data`: no `Arc`, no `'static`, no copy, unlike a job given
    // to `ThreadPool::execute`. `par_chunks` is an indexed iterator, so `collect` puts each
    // result at its chunk's index, whichever thread finished first.
    pool.install(|| data.par_chunks(chunk_len).map(work).collect())
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
