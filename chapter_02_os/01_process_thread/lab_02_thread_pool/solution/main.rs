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

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};

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
