//! ## Goal
//! Build, with the standard library alone (clap only reads the demo's command line), the part of an
//! async runtime that has nothing to do with I/O: a `Waker` made by hand from a `RawWakerVTable`
//! whose four functions keep an `Arc`'s reference count exact; `block_on`, which runs one future
//! and parks the thread while it is pending; and a single-threaded executor with `spawn`, a
//! `JoinHandle` you can `.await`, deduplicated scheduling, and panics reported instead of
//! propagated. Lab 8 puts a reactor under it.
//!
//! ## Requirements
//! 1. `waker(arc)` returns a `Waker` built on `RawWaker::new(Arc::into_raw(arc), &VTABLE)`:
//!    cloning a waker adds one strong reference to the `Arc`, dropping one removes one; clones
//!    `will_wake` the original. After the last waker is dropped the count is back to where it was.
//! 2. `Waker::wake_by_ref` calls `ArcWake::wake_by_ref` and keeps the waker's reference;
//!    `Waker::wake` calls `ArcWake::wake` with the waker's own `Arc` (consuming its reference).
//! 3. Wakers are `Send + Sync`: threads may clone and wake them concurrently; every wake arrives.
//! 4. `block_on(future)` returns the future's output.
//! 5. `block_on` parks the thread while the future is pending and polls it once per wake-up (no
//!    busy loop, no timed polling: the thread sleeps until a waker unparks it), including a wake
//!    that comes during the poll itself, before the thread parks.
//! 6. `Executor::spawn(future)` returns a `JoinHandle<T>`, a future of `Result<T, JoinError>`;
//!    `Executor::block_on(main)` runs the main future and every spawned task; tasks can spawn
//!    tasks (through a clone of the executor); dropping a `JoinHandle` detaches its task, which
//!    still runs.
//! 7. 100,000 tasks run to completion.
//! 8. Wakes from other threads are never lost, even when they race with the executor going to
//!    sleep; while it waits, the executor's thread sleeps until a waker unparks it (it uses under
//!    5% of the CPU time of the wait, and does not wake up on a timer).
//! 9. A task woken several times before it runs is queued, and polled, once; a task that was not
//!    woken is not polled.
//! 10. A task that panics gives `Err(JoinError)` through its handle, with the panic message;
//!     the other tasks and the executor carry on.
//! 11. A finished task's future is dropped (with everything it captured); waking a finished
//!     task's stale waker does nothing.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.7    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `waker(arc)` returns a `Waker` built on `RawWaker::new(Arc::into_raw(arc),
//!   &VTABLE)`: cloning a waker adds one strong reference to the `Arc`, dropping one removes one;
//!   clones `will_wake` the original
//! - [ ] Requirement 2: `Waker::wake_by_ref` calls `ArcWake::wake_by_ref` and keeps the waker's
//!   reference; `Waker::wake` calls `ArcWake::wake` with the waker's own `Arc` (consuming its
//!   reference)
//! - [ ] Requirement 3: Wakers are `Send + Sync`: threads may clone and wake them concurrently;
//!   every wake arrives
//! - [ ] Requirement 4: `block_on(future)` returns the future's output
//! - [ ] Requirement 5: `block_on` parks the thread while the future is pending and polls it once
//!   per wake-up (no busy loop, no timed polling: the thread sleeps until a waker unparks it),
//!   including a wake that comes during the poll itself, before the thread parks
//! - [ ] Requirement 6: `Executor::spawn(future)` returns a `JoinHandle<T>`, a future of `Result<T,
//!   JoinError>`; `Executor::block_on(main)` runs the main future and every spawned task; tasks can
//!   spawn tasks (through a clone of the executor); dropping a `JoinHandle` detaches its task,
//!   which still runs
//! - [ ] Requirement 7: 100,000 tasks run to completion
//! - [ ] Requirement 8: Wakes from other threads are never lost, even when they race with the
//!   executor going to sleep; while it waits, the executor's thread sleeps until a waker unparks it
//!   (it uses under 5% of the CPU time of the wait, and does not wake up on a timer)
//! - [ ] Requirement 9: A task woken several times before it runs is queued, and polled, once; a
//!   task that was not woken is not polled
//! - [ ] Requirement 10: A task that panics gives `Err(JoinError)` through its handle, with the
//!   panic message; the other tasks and the executor carry on
//! - [ ] Requirement 11: A finished task's future is dropped (with everything it captured); waking
//!   a finished task's stale waker does nothing
//!
//! ## Notes
//!
//! Wakers and an executor from scratch: what `#[tokio::main]` does before any I/O.
//!
//! Read README.md for the requirements; `cargo lab test 7.7` grades this file (white-box: the
//! grader calls the functions below). Three parts, in order:
//!
//! 1. **A waker by hand**: [`waker`] turns an `Arc<impl ArcWake>` into a `std::task::Waker`
//!    through a `RawWakerVTable` you write: four `unsafe fn`s (clone, wake, wake_by_ref, drop)
//!    that keep the `Arc`'s strong count exact. Do not use `std::task::Wake`: that is the
//!    exercise.
//! 2. **[`block_on`]**: poll one future on this thread; park the thread while it is pending;
//!    its waker unparks it.
//! 3. **An [`Executor`]**: many tasks on one thread, `spawn` returning a [`JoinHandle`] (a
//!    future of the task's output), a task woken twice queued once, a panic reported through
//!    the handle.
//!
//! Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use clap::Parser;

// ---------------------------------------------------------------------------------------------
// 1. A waker by hand.

/// Something that can be woken, shared through an `Arc` (like `futures::task::ArcWake`).
/// (Given: this is the interface the grader implements.)
pub trait ArcWake: Send + Sync + 'static {
    /// Wake without giving up a reference.
    fn wake_by_ref(self: &Arc<Self>);

    /// Wake and consume this reference.
    fn wake(self: Arc<Self>) {
        Self::wake_by_ref(&self)
    }
}

/// A `Waker` whose data pointer is `Arc::into_raw(wake)`: the waker owns that one reference.
///
/// Write four `unsafe fn(*const ())` for a `RawWakerVTable` (one vtable per `W`: an inline
/// `const { &RawWakerVTable::new(...) }` in a generic function gives a `&'static` one):
/// - clone: `Arc::increment_strong_count`, and a new `RawWaker` with the same pointer;
/// - wake: rebuild the `Arc` with `Arc::from_raw` (taking over the waker's reference) and call
///   `ArcWake::wake` with it;
/// - wake_by_ref: rebuild it inside `ManuallyDrop` (the waker keeps its reference) and call
///   `ArcWake::wake_by_ref`;
/// - drop: rebuild it and drop it.
///
/// The grader checks `Arc::strong_count` after every operation.
pub fn waker<W: ArcWake>(wake: Arc<W>) -> Waker {
    todo!("Arc::into_raw, RawWaker::new(ptr, vtable), Waker::from_raw")
}

// ---------------------------------------------------------------------------------------------
// 2. block_on.

/// Runs `future` to completion on this thread, sleeping while it is pending: one poll per
/// wake-up, never a busy loop. The waker sets a flag and unparks this thread
/// (`std::thread::current()`, `Thread::unpark`); `thread::park` may return spuriously, so
/// wait for the flag.
pub fn block_on<F: Future>(future: F) -> F::Output {
    todo!("pin the future, make a waker for this thread, poll / park until Ready")
}

// ---------------------------------------------------------------------------------------------
// 3. The executor.

/// Why a task gave no output: it panicked. (Given.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    message: String,
}

impl JoinError {
    /// The panic message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task panicked: {}", self.message)
    }
}

impl std::error::Error for JoinError {}

/// Awaits a spawned task's output: `Ok(output)`, or `Err` if the task panicked. Dropping it
/// detaches the task, which still runs to completion.
///
/// Suggested shape: an `Rc<RefCell<...>>` shared with the task, holding the output once there
/// is one and the waker of whoever awaits the handle.
pub struct JoinHandle<T> {
    _output: PhantomData<T>,
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        todo!("Ready(output) if the task is done; else keep cx.waker() and return Pending")
    }
}

/// A single-threaded executor. Cloning it gives another handle to the same executor, so a task
/// can capture one and spawn more tasks.
///
/// Suggested shape: the futures in a map from task id to task, touched by this thread only
/// (so futures need not be `Send`); a run queue of ids in an `Arc<Mutex<VecDeque<_>>>` that
/// task wakers push to from any thread, then unpark the executor's thread; in each task's
/// waker an `AtomicBool` "already queued", so a second wake does not queue it twice.
#[derive(Clone)]
pub struct Executor {
    _todo: (),
}

impl Default for Executor {
    fn default() -> Self {
        Executor::new()
    }
}

impl Executor {
    /// An executor for the current thread.
    pub fn new() -> Executor {
        todo!("the task map and the shared run queue")
    }

    /// Queues `future` as a new task; it runs while [`Executor::block_on`] runs. A panic in
    /// the task (`std::panic::catch_unwind` around each poll) comes out of its handle as a
    /// `JoinError` with the panic message.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        todo!("wrap the future so its output reaches the JoinHandle; store it; queue it")
    }

    /// Runs `future` on this thread, and every spawned task with it, until `future` is done.
    /// Parks the thread whenever no task is queued and the main future was not woken.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        todo!("poll the main future when woken, poll the queued tasks, park when idle")
    }

    /// Tasks spawned and not finished yet.
    pub fn task_count(&self) -> usize {
        todo!()
    }
}

/// Returns `Pending` once (after waking itself), so other tasks run: a cooperative yield.
/// (Given.)
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// The command line: no options; `--help` says what the program shows. Ready to use:
/// `let Args {} = Args::parse();` first thing in main (clap exits 2 on any argument).
#[derive(Debug, Parser)]
#[command(
    name = "ch7_executor",
    about = "A hand-made executor: 100,000 tasks on one thread, then block_on woken from another \
             thread"
)]
#[allow(dead_code)] // main() parses it: Args::parse()
struct Args {}

fn main() {
    todo!(
        "Args::parse(), spawn 100,000 tasks on an Executor, sum their outputs, print the time \
         it took"
    )
}
