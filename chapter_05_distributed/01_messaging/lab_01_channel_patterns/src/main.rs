//! ## Goal
//! Build, with tokio's channels, the six shapes that concurrent backends are made of: a pool of
//! workers fed by a bounded queue (fan-out), a merge of many streams into one (fan-in), a
//! broadcast where a slow subscriber skips instead of slowing everyone down, request/response
//! with a `oneshot` return address, a pipeline of stages that shuts down without losing an item,
//! and `select!` between a message, a timer and a cancellation. Inside one process these are the
//! same problems as between services (chapter 5's queues and brokers): who waits when the consumer
//! is slow (back-pressure), who may miss a message, and how a stream ends without losing what is
//! in flight.
//!
//! ## Requirements
//! 1. `WorkerPool::new(workers, capacity, handler)` starts `workers` tasks sharing one queue;
//!    every submitted job runs exactly once, and the workers run jobs at the same time (`workers`
//!    jobs can meet at a barrier).
//! 2. Back-pressure: the queue holds at most `capacity` jobs. When it is full `submit` waits and
//!    `try_submit` returns `Err(PatternError::Full)`; a `submit` given up on while it waits leaves
//!    no job behind; `queued()` tells how many jobs wait. However fast a producer submits, the
//!    jobs accepted but not started never exceed `capacity` (plus one per worker in hand).
//! 3. `shutdown` is graceful: it returns once every queued job has run and every worker stopped.
//! 4. `merge(inputs, capacity)` forwards every item of every input exactly once, keeping each
//!    input's order; a silent input never delays a busy one; the output ends when all inputs end.
//! 5. `drain_broadcast(subscriber)` reads a broadcast channel to its end. A subscriber that falls
//!    more than the capacity behind counts what it missed (`Lagged(n)`) and goes on from the oldest
//!    value still kept; one that keeps up sees everything.
//! 6. `call(server, query)` sends a query with a `oneshot` sender and returns the answer:
//!    `Err(Closed)` if the server is gone, `Err(NoReply)` if it dropped the request unanswered.
//!    `spawn_counter` is an actor (a task owning a map of counters) served through `call`.
//! 7. `pipeline(input, stage1, stage2, capacity, shutdown)` runs each stage in its own task,
//!    joined by bounded channels, and returns the outputs in input order. Its stages work at the
//!    same time, a slow stage slows the ones before it (at most `capacity` items pile up between
//!    two stages), and when `shutdown` is cancelled no new item is taken from `input` while every
//!    item already taken comes out: nothing is lost.
//! 8. `recv_with_timeout` waits for a message at most `timeout`, and stops at once on cancellation
//!    (a cancelled token wins even over a waiting message, every time); `next_batch` gathers the
//!    items that arrive within `linger` of the first one (one deadline, however many items keep
//!    coming), at most `max_items`.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 5.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `WorkerPool::new(workers, capacity, handler)` starts `workers` tasks
//!   sharing one queue; every submitted job runs exactly once, and the workers run jobs at the same
//!   time (`workers` jobs can meet at a barrier)
//! - [ ] Requirement 2: Back-pressure: the queue holds at most `capacity` jobs
//! - [ ] Requirement 3: `shutdown` is graceful: it returns once every queued job has run and every
//!   worker stopped
//! - [ ] Requirement 4: `merge(inputs, capacity)` forwards every item of every input exactly once,
//!   keeping each input's order; a silent input never delays a busy one; the output ends when all
//!   inputs end
//! - [ ] Requirement 5: `drain_broadcast(subscriber)` reads a broadcast channel to its end
//! - [ ] Requirement 6: `call(server, query)` sends a query with a `oneshot` sender and returns the
//!   answer: `Err(Closed)` if the server is gone, `Err(NoReply)` if it dropped the request
//!   unanswered
//! - [ ] Requirement 7: `pipeline(input, stage1, stage2, capacity, shutdown)` runs each stage in
//!   its own task, joined by bounded channels, and returns the outputs in input order
//! - [ ] Requirement 8: `recv_with_timeout` waits for a message at most `timeout`, and stops at
//!   once on cancellation (a cancelled token wins even over a waiting message, every time);
//!   `next_batch` gathers the items that arrive within `linger` of the first one (one deadline,
//!   however many items keep coming), at most `max_items`
//!
//! ## Notes
//!
//! Channel patterns: the six shapes most concurrent tokio programs are built from.
//!
//! Build each pattern below with tokio's channels. Read README.md for the requirements;
//! `cargo lab test 5.1` grades this file, on tokio's paused clock, and `cargo run` runs the
//! demo at the bottom once your patterns work.
//!
//! 1. [`WorkerPool`]: fan-out. N workers share one bounded queue; `submit` waits when it is full.
//! 2. [`merge`]: fan-in. Many receivers become one; the output ends when every input has ended.
//! 3. [`drain_broadcast`]: one value to every subscriber; a slow subscriber skips (`Lagged`).
//! 4. [`call`] and [`spawn_counter`]: request/response with a `oneshot` return address.
//! 5. [`pipeline`]: stages joined by bounded channels, with a graceful shutdown.
//! 6. [`recv_with_timeout`] and [`next_batch`]: `select!` between a message, a timer and a
//!    cancellation.
//!
//! The grader calls exactly the items below. Remove the `allow` once every argument is used.
#![allow(unused_variables)]

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::Duration;

use clap::Parser;
use tokio::sync::{broadcast, mpsc, oneshot};
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
pub struct WorkerPool<T> {
    // TODO: the sending side of the queue, and the workers' `JoinHandle`s.
    _jobs: PhantomData<T>,
}

impl<T: Send + 'static> WorkerPool<T> {
    /// Starts `workers` tasks that run `handler(job)` for each job, one job per worker at a
    /// time, all workers at the same time. The queue holds at most `capacity` jobs.
    pub fn new<F, Fut>(workers: usize, capacity: usize, handler: F) -> WorkerPool<T>
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        todo!("a bounded mpsc channel, and `workers` tasks sharing its receiver")
    }

    /// Queues `job`, waiting while the queue is full (this wait is the back-pressure).
    /// `Err(PatternError::Closed)` if the workers are gone.
    pub async fn submit(&self, job: T) -> Result<(), PatternError> {
        todo!("send on the bounded channel")
    }

    /// Queues `job` if there is room now, else `Err(PatternError::Full)`.
    pub fn try_submit(&self, job: T) -> Result<(), PatternError> {
        todo!("try_send, and map its two errors")
    }

    /// Jobs waiting in the queue (not counting the ones workers are running).
    pub fn queued(&self) -> usize {
        todo!("the channel's bound minus its free capacity")
    }

    /// Graceful shutdown: no new jobs, every queued job runs, then every worker has stopped.
    pub async fn shutdown(self) {
        todo!("close the queue, then wait for every worker")
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Fan-in: merge many receivers into one.
// ---------------------------------------------------------------------------------------------

/// Forwards every item of every input to one output channel of `capacity` items.
///
/// Each input keeps its own order; items of different inputs interleave as they arrive (a
/// silent input never delays a busy one). The output ends (`recv` returns `None`) once every
/// input has ended.
pub fn merge<T: Send + 'static>(
    inputs: Vec<mpsc::Receiver<T>>,
    capacity: usize,
) -> mpsc::Receiver<T> {
    todo!("one output channel, one forwarding task per input")
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
pub async fn drain_broadcast<T: Clone>(subscriber: broadcast::Receiver<T>) -> Received<T> {
    todo!("recv in a loop: Ok, Lagged(n) and Closed are three different cases")
}

// ---------------------------------------------------------------------------------------------
// 4. Request/response: a oneshot sender is the return address.
// ---------------------------------------------------------------------------------------------

/// A request as a server task receives it: the query and where to send the answer.
pub type Request<Q, A> = (Q, oneshot::Sender<A>);

/// Sends `query` to `server` and waits for its answer: `Err(Closed)` when the server is gone
/// before taking the request, `Err(NoReply)` when it dropped the reply sender unanswered.
pub async fn call<Q, A>(server: &mpsc::Sender<Request<Q, A>>, query: Q) -> Result<A, PatternError> {
    todo!("a oneshot channel: send its sender with the query, await its receiver")
}

/// What the counter server can do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterOp {
    /// Add to a named counter; answers the new value.
    Incr(String, u64),
    /// Read a named counter; answers its value (0 for a counter never incremented).
    Get(String),
}

/// Spawns a task that owns a map of counters and serves [`CounterOp`]s one at a time; returns
/// the sender that callers clone. The task ends when every sender is dropped.
pub fn spawn_counter(capacity: usize) -> mpsc::Sender<Request<CounterOp, u64>> {
    todo!("a task owning a HashMap, answering each request on its oneshot")
}

// ---------------------------------------------------------------------------------------------
// 5. A pipeline with graceful shutdown.
// ---------------------------------------------------------------------------------------------

/// Runs `input -> stage1 -> stage2 -> output`, each stage a task, joined by bounded channels of
/// `capacity` items, until `input` closes or `shutdown` is cancelled. Returns the outputs in
/// input order.
///
/// On shutdown no new item is taken from `input`, and every item already taken goes through
/// both stages: nothing is lost.
pub async fn pipeline<F1, Fut1, F2, Fut2>(
    input: mpsc::Receiver<u64>,
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
    todo!("a source task, two stage tasks, bounded channels between them, and a sink")
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

/// Waits at most `timeout` for the next message, giving up at once when `cancel` fires (an
/// already-cancelled token wins even over a waiting message).
pub async fn recv_with_timeout<T>(
    rx: &mut mpsc::Receiver<T>,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Waited<T> {
    todo!("tokio::select! over cancellation, recv and a sleep")
}

/// Waits for a first item, then gathers more until `max_items` or until `linger` has passed
/// since the first one arrived. `None` once the channel is closed and empty.
pub async fn next_batch<T>(
    rx: &mut mpsc::Receiver<T>,
    max_items: usize,
    linger: Duration,
) -> Option<Vec<T>> {
    todo!("recv the first item, then recv more under one deadline")
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
