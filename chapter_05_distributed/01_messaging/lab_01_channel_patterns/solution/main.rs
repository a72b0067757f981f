//! Channel patterns: the six shapes most concurrent tokio programs are built from.
//!
//! A channel is a queue with a waiting policy. Everything below comes from three choices:
//! how many senders and receivers there are (`mpsc`, `broadcast`, `oneshot`), whether the
//! queue is bounded (a bound is what makes a fast producer *wait*: back-pressure), and who
//! decides that the stream is over (channels close when the last sender is dropped, so
//! "shutdown" is mostly "drop the right sender at the right time").
//!
//! 1. [`WorkerPool`]: fan-out. N workers share one bounded queue; `submit` waits when it is full.
//! 2. [`merge`]: fan-in. Many receivers become one; the output ends when every input has ended.
//! 3. [`drain_broadcast`]: one value to every subscriber; a slow subscriber skips (`Lagged`),
//!    it never slows the publisher down.
//! 4. [`call`] and [`spawn_counter`]: request/response. The request carries a `oneshot` sender,
//!    the return address of the answer.
//! 5. [`pipeline`]: stages joined by bounded channels; a shutdown stops the *entrance* only, and
//!    the end of the stream flows downstream, so every item already inside is finished.
//! 6. [`recv_with_timeout`] and [`next_batch`]: `select!` between a message, a timer and a
//!    cancellation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why a message could not be sent or answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternError {
    /// The receiving side is gone: nobody will ever handle the message.
    Closed,
    /// The server took the request, then dropped the reply sender without answering.
    NoReply,
    /// `try_submit` found the queue full (`submit` would have waited).
    Full,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Closed => write!(f, "the receiver is gone"),
            PatternError::NoReply => write!(f, "the request was dropped without an answer"),
            PatternError::Full => write!(f, "the queue is full"),
        }
    }
}

impl std::error::Error for PatternError {}

// ---------------------------------------------------------------------------------------------
// 1. Fan-out: a worker pool with a bounded queue.
// ---------------------------------------------------------------------------------------------

/// `workers` tasks taking jobs from one queue that holds at most `capacity` jobs.
///
/// The bound is the whole point: with an unbounded queue a producer faster than the workers
/// grows memory until the process dies; with a bounded one it waits in `submit`, so the system
/// runs at the speed of its slowest part and memory stays at `capacity` jobs.
pub struct WorkerPool<T> {
    queue: mpsc::Sender<T>,
    workers: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> WorkerPool<T> {
    /// Starts `workers` tasks that run `handler(job)` for each job, one job per worker at a time.
    pub fn new<F, Fut>(workers: usize, capacity: usize, handler: F) -> WorkerPool<T>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        assert!(workers > 0, "a pool needs at least one worker");
        let (queue, jobs) = mpsc::channel(capacity);
        // tokio's mpsc has exactly one receiver; N workers share it behind an async mutex.
        let jobs = Arc::new(Mutex::new(jobs));
        let handler = Arc::new(handler);
        let workers = (0..workers)
            .map(|_| {
                let jobs = jobs.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    loop {
                        // The guard is a temporary: the lock is held while waiting for the next
                        // job and released before running it, so workers run jobs in parallel.
                        let job = jobs.lock().await.recv().await;
                        match job {
                            Some(job) => handler(job).await,
                            // Every sender is gone and the queue is empty: the pool is done.
                            None => break,
                        }
                    }
                })
            })
            .collect();
        WorkerPool { queue, workers }
    }

    /// Queues `job`, waiting while the queue is full (this wait is the back-pressure).
    pub async fn submit(&self, job: T) -> Result<(), PatternError> {
        self.queue.send(job).await.map_err(|_| PatternError::Closed)
    }

    /// Queues `job` if there is room now, else `Err(PatternError::Full)`: for callers that
    /// prefer shedding load to waiting (answer 503 at once, say).
    pub fn try_submit(&self, job: T) -> Result<(), PatternError> {
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => PatternError::Full,
            TrySendError::Closed(_) => PatternError::Closed,
        })
    }

    /// Jobs waiting in the queue (not counting the ones workers are running).
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Graceful shutdown: no new jobs, every queued job runs, then every worker has stopped.
    pub async fn shutdown(self) {
        // Dropping the only sender closes the queue; workers see `None` once it is empty.
        drop(self.queue);
        for worker in self.workers {
            // A handler that panicked ends its worker; the others finish the queue.
            let _ = worker.await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Fan-in: merge many receivers into one.
// ---------------------------------------------------------------------------------------------

/// Forwards every item of every input to one output channel of `capacity` items.
///
/// Each input keeps its own order; items of different inputs interleave as they arrive. The
/// output ends (`recv` returns `None`) once every input has ended.
pub fn merge<T: Send + 'static>(
    inputs: Vec<mpsc::Receiver<T>>,
    capacity: usize,
) -> mpsc::Receiver<T> {
    let (output, merged) = mpsc::channel(capacity);
    for mut input in inputs {
        // One forwarding task per input: a quiet input never delays a busy one.
        let output = output.clone();
        tokio::spawn(async move {
            while let Some(item) = input.recv().await {
                if output.send(item).await.is_err() {
                    break; // the consumer dropped the merged receiver: stop reading
                }
            }
        });
    }
    // Our own `output` is dropped here, so the clones held by the forwarders are the only
    // senders left: the merged channel closes exactly when the last forwarder ends.
    merged
}

// ---------------------------------------------------------------------------------------------
// 3. Broadcast: every subscriber sees every value, unless it lags.
// ---------------------------------------------------------------------------------------------

/// What one broadcast subscriber received before the channel closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<T> {
    /// The values it read, in publication order.
    pub values: Vec<T>,
    /// Values it never saw because it fell more than the channel's capacity behind.
    pub missed: u64,
}

/// Reads `subscriber` until every sender is gone, counting what it missed instead of failing.
///
/// A broadcast channel keeps the last `capacity` values in a ring. A subscriber that falls
/// further behind gets `RecvError::Lagged(n)` once, and its next `recv` continues from the
/// oldest value still kept. The publisher never waits for anybody: a slow subscriber pays
/// for its own slowness, and must decide what skipping means for it.
pub async fn drain_broadcast<T: Clone>(mut subscriber: broadcast::Receiver<T>) -> Received<T> {
    let mut received = Received {
        values: Vec::new(),
        missed: 0,
    };
    loop {
        match subscriber.recv().await {
            Ok(value) => received.values.push(value),
            Err(broadcast::error::RecvError::Lagged(skipped)) => received.missed += skipped,
            Err(broadcast::error::RecvError::Closed) => return received,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Request/response: a oneshot sender is the return address.
// ---------------------------------------------------------------------------------------------

/// A request as a server task receives it: the query and where to send the answer.
pub type Request<Q, A> = (Q, oneshot::Sender<A>);

/// Sends `query` to `server` and waits for its answer.
///
/// Two different failures: the server is gone before taking the request (`Closed`), or it
/// took the request and dropped the reply sender without answering (`NoReply`).
pub async fn call<Q, A>(server: &mpsc::Sender<Request<Q, A>>, query: Q) -> Result<A, PatternError> {
    let (reply, answer) = oneshot::channel();
    server
        .send((query, reply))
        .await
        .map_err(|_| PatternError::Closed)?;
    answer.await.map_err(|_| PatternError::NoReply)
}

/// What the counter server can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterOp {
    /// Add to a named counter; answers the new value.
    Incr(String, u64),
    /// Read a named counter; answers its value (0 for a counter never incremented).
    Get(String),
}

/// Spawns a task that owns a map of counters and serves [`CounterOp`]s one at a time.
///
/// The actor pattern: the state has one owner and no lock; concurrency comes from many
/// callers sharing clones of the returned sender. The task ends when every sender is dropped.
pub fn spawn_counter(capacity: usize) -> mpsc::Sender<Request<CounterOp, u64>> {
    let (server, mut requests) = mpsc::channel::<Request<CounterOp, u64>>(capacity);
    tokio::spawn(async move {
        let mut counters: HashMap<String, u64> = HashMap::new();
        while let Some((op, reply)) = requests.recv().await {
            let value = match op {
                CounterOp::Incr(name, by) => {
                    let counter = counters.entry(name).or_default();
                    *counter += by;
                    *counter
                }
                CounterOp::Get(name) => counters.get(&name).copied().unwrap_or(0),
            };
            // The caller may have stopped waiting (a timeout): that is its business, not ours.
            let _ = reply.send(value);
        }
    });
    server
}

// ---------------------------------------------------------------------------------------------
// 5. A pipeline with graceful shutdown.
// ---------------------------------------------------------------------------------------------

/// Runs `input -> stage1 -> stage2 -> output`, each stage a task, joined by bounded channels of
/// `capacity` items, until `input` closes or `shutdown` is cancelled. Returns the outputs in
/// input order.
///
/// On shutdown only the entrance stops: no new item is taken from `input`, and every item
/// already taken goes through both stages. The end travels downstream as closed channels: the
/// source drops its sender, stage 1 drains its queue and drops its own, and so on. Had every
/// stage watched the token, the items sitting in the queues between stages would be lost.
pub async fn pipeline<F1, Fut1, F2, Fut2>(
    mut input: mpsc::Receiver<u64>,
    stage1: F1,
    stage2: F2,
    capacity: usize,
    shutdown: CancellationToken,
) -> Vec<u64>
where
    F1: Fn(u64) -> Fut1 + Send + 'static,
    Fut1: Future<Output = u64> + Send + 'static,
    F2: Fn(u64) -> Fut2 + Send + 'static,
    Fut2: Future<Output = u64> + Send + 'static,
{
    let (to_stage1, mut stage1_in) = mpsc::channel(capacity);
    let (to_stage2, mut stage2_in) = mpsc::channel(capacity);
    let (to_sink, mut sink) = mpsc::channel(capacity);

    let source = tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                // `biased`: once the token is cancelled, take nothing more even if items wait.
                biased;
                _ = shutdown.cancelled() => break,
                // `recv` is cancel-safe: when the other branch wins, no item is lost.
                item = input.recv() => match item {
                    Some(item) => item,
                    None => break,
                },
            };
            // Taken means accepted: this send may wait (back-pressure) but is never abandoned.
            if to_stage1.send(item).await.is_err() {
                break;
            }
        }
    });
    let first = tokio::spawn(async move {
        while let Some(item) = stage1_in.recv().await {
            if to_stage2.send(stage1(item).await).await.is_err() {
                break;
            }
        }
    });
    let second = tokio::spawn(async move {
        while let Some(item) = stage2_in.recv().await {
            if to_sink.send(stage2(item).await).await.is_err() {
                break;
            }
        }
    });

    let mut output = Vec::new();
    while let Some(item) = sink.recv().await {
        output.push(item);
    }
    // The sink saw the end, so every stage has finished; a panic in one resurfaces here.
    for task in [source, first, second] {
        if let Err(e) = task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    output
}

// ---------------------------------------------------------------------------------------------
// 6. select! with a timeout.
// ---------------------------------------------------------------------------------------------

/// How a wait on a channel ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited<T> {
    Message(T),
    TimedOut,
    Cancelled,
    /// Every sender is gone and the channel is empty.
    Closed,
}

/// Waits at most `timeout` for the next message, giving up at once when `cancel` fires.
pub async fn recv_with_timeout<T>(
    rx: &mut mpsc::Receiver<T>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Waited<T> {
    tokio::select! {
        // Cancellation first: a program that is stopping should not start on new work.
        biased;
        _ = cancel.cancelled() => Waited::Cancelled,
        item = rx.recv() => item.map_or(Waited::Closed, Waited::Message),
        _ = tokio::time::sleep(timeout) => Waited::TimedOut,
    }
}

/// Waits for a first item, then gathers more until `max_items` or until `linger` has passed
/// since the first one arrived. `None` once the channel is closed and empty.
///
/// This is how a log writer batches fsyncs (lab 5.2) or a client batches requests: the first
/// item starts a short clock, and whatever arrives meanwhile shares the cost of one flush.
pub async fn next_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    max_items: usize,
    linger: Duration,
) -> Option<Vec<T>> {
    let first = rx.recv().await?;
    // One deadline for the whole batch, not a fresh timeout per item: a steady trickle of
    // items would otherwise keep the batch open forever.
    let deadline = Instant::now() + linger;
    let mut batch = vec![first];
    while batch.len() < max_items {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(item)) => batch.push(item),
            // Closed (hand over what we have; the next call returns None) or time is up.
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

// ---------------------------------------------------------------------------------------------
// A demo of each pattern: `cargo run`.
// ---------------------------------------------------------------------------------------------

/// The demo takes no options; `--help` says what it does.
#[derive(Parser)]
#[command(
    name = "ch5_channel_patterns",
    about = "A demo of each pattern: a worker pool, fan-in, broadcast, request/response, a \
             pipeline stopped mid-flight, select!"
)]
struct Args {}

#[tokio::main]
async fn main() {
    Args::parse(); // `--help` exits 0, any argument exits 2
    // 1. A fast producer and two slow workers: the producer waits, the queue stays at 4.
    let pool = WorkerPool::new(2, 4, |job: u64| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let _ = job;
    });
    let started = Instant::now();
    let mut peak = 0;
    for job in 0..40 {
        pool.submit(job).await.expect("the pool is running");
        peak = peak.max(pool.queued());
    }
    println!(
        "worker pool: 40 jobs submitted in {:?}, queue peak {peak} (bound 4), try_submit now: {:?}",
        started.elapsed(),
        pool.try_submit(40).err()
    );
    pool.shutdown().await;

    // 2. Fan-in of three producers.
    let mut inputs = Vec::new();
    for producer in 0..3u64 {
        let (tx, rx) = mpsc::channel(8);
        inputs.push(rx);
        tokio::spawn(async move {
            for i in 0..5 {
                let _ = tx.send(producer * 100 + i).await;
            }
        });
    }
    let mut merged = merge(inputs, 8);
    let mut all = Vec::new();
    while let Some(item) = merged.recv().await {
        all.push(item);
    }
    println!("merge: {} items: {all:?}", all.len());

    // 3. A subscriber that reads nothing while 20 values go by a ring of 8.
    let (publisher, subscriber) = broadcast::channel(8);
    for value in 0..20u64 {
        let _ = publisher.send(value);
    }
    drop(publisher);
    let received = drain_broadcast(subscriber).await;
    println!(
        "broadcast: read {:?}, missed {}",
        received.values, received.missed
    );

    // 4. Request/response.
    let counter = spawn_counter(16);
    for _ in 0..3 {
        let _ = call(&counter, CounterOp::Incr("hits".into(), 2)).await;
    }
    println!(
        "counter: hits = {:?}",
        call(&counter, CounterOp::Get("hits".into())).await
    );

    // 5. A pipeline stopped while items are in flight: nothing is lost.
    let (feed, input) = mpsc::channel(4);
    tokio::spawn(async move {
        for i in 0.. {
            if feed.send(i).await.is_err() {
                break;
            }
        }
    });
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stop.cancel();
    });
    let out = pipeline(
        input,
        |x| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            x * 2
        },
        |x| async move { x + 1 },
        4,
        shutdown,
    )
    .await;
    let gaps = out.windows(2).filter(|w| w[1] != w[0] + 2).count();
    println!(
        "pipeline: {} items out after shutdown, {gaps} gaps",
        out.len()
    );

    // 6. select!: a timeout, then a batch.
    let (tx, mut rx) = mpsc::channel(16);
    let never = CancellationToken::new();
    let waited = recv_with_timeout(&mut rx, Duration::from_millis(10), &never).await;
    println!("recv_with_timeout on a silent channel: {waited:?}");
    for i in 0..7 {
        let _ = tx.send(i).await;
    }
    drop(tx);
    while let Some(batch) = next_batch(&mut rx, 3, Duration::from_millis(5)).await {
        println!("batch: {batch:?}");
    }
}
