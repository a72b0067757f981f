//! Wakers and an executor from scratch: what `#[tokio::main]` does before any I/O.
//!
//! A `Future` is a state machine that the executor polls. When it cannot progress it returns
//! `Poll::Pending`, after storing the [`Waker`] from its `Context` somewhere: whoever can make
//! it progress later (a timer, a socket's reactor, another thread) calls `wake()`, and the
//! executor polls it again. This file builds the three pieces under every runtime:
//!
//! 1. **A waker by hand** ([`ArcWake`], [`waker`]): a `Waker` is a data pointer plus a
//!    [`RawWakerVTable`] of four functions (clone, wake, wake_by_ref, drop). Ours points to an
//!    `Arc<W>` and the four functions keep its strong count exact: clone +1, drop -1, wake
//!    consumes one reference, wake_by_ref none. (std's `std::task::Wake` trait writes the same
//!    vtable for you; tokio and async-task write their own to pack more into the pointer.)
//! 2. **[`block_on`]**: poll a future on this thread; when it is pending, park the thread; its
//!    waker unparks it. No busy loop: one poll per wake-up.
//! 3. **An [`Executor`]** for many tasks on one thread: a run queue of task ids that wakers
//!    push to (from any thread, hence a `Mutex`), a map of task futures that only the
//!    executor's thread touches (hence no `Send` needed on futures), a per-task `scheduled`
//!    flag so a task woken twice is queued once, and a [`JoinHandle`] that is itself a future
//!    and carries a task's panic back as a [`JoinError`].
//!
//! What a production runtime does differently, briefly: tokio stores the task header, future
//! and output in one allocation with the state bits in one atomic word; it has a fixed-size
//! local queue plus an injection queue instead of a `Mutex<VecDeque>`; it budgets each task
//! (cooperative yielding) so one busy task cannot starve the others; and several worker threads
//! steal each other's work.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use clap::Parser;

// ---------------------------------------------------------------------------------------------
// 1. A waker by hand.

/// Something that can be woken, shared through an `Arc` (like `futures::task::ArcWake`).
pub trait ArcWake: Send + Sync + 'static {
    /// Wake without giving up a reference.
    fn wake_by_ref(self: &Arc<Self>);

    /// Wake and consume this reference.
    fn wake(self: Arc<Self>) {
        Self::wake_by_ref(&self)
    }
}

/// A `Waker` whose data pointer is `Arc::into_raw(wake)`: the waker owns that one reference.
pub fn waker<W: ArcWake>(wake: Arc<W>) -> Waker {
    let data = Arc::into_raw(wake).cast::<()>();
    // SAFETY: `data` comes from `Arc::into_raw::<W>` and the vtable's four functions treat it
    // as exactly that, each keeping the strong count balanced (see each function). `W` is
    // Send + Sync, so the waker may be sent to and used from any thread.
    unsafe { Waker::from_raw(RawWaker::new(data, vtable::<W>())) }
}

/// One vtable per type `W`, in static memory (an inline `const` may use the generic `W`).
fn vtable<W: ArcWake>() -> &'static RawWakerVTable {
    const {
        &RawWakerVTable::new(
            clone_raw::<W>,
            wake_raw::<W>,
            wake_by_ref_raw::<W>,
            drop_raw::<W>,
        )
    }
}

/// `Waker::clone`: one more reference for the new waker.
unsafe fn clone_raw<W: ArcWake>(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live `Arc<W>` pointer (the waker being cloned holds a reference), so
    // the count is at least 1 and may be incremented.
    unsafe { Arc::increment_strong_count(data.cast::<W>()) };
    RawWaker::new(data, vtable::<W>())
}

/// `Waker::wake(self)`: the waker is consumed, and so is its reference.
unsafe fn wake_raw<W: ArcWake>(data: *const ()) {
    // SAFETY: we take over the waker's own reference; the rebuilt Arc releases it when
    // `wake` is done with it. The waker is not used again (wake takes it by value).
    let wake = unsafe { Arc::from_raw(data.cast::<W>()) };
    ArcWake::wake(wake);
}

/// `Waker::wake_by_ref(&self)`: borrow the reference, give it back untouched.
unsafe fn wake_by_ref_raw<W: ArcWake>(data: *const ()) {
    // SAFETY: the waker still owns its reference: `ManuallyDrop` keeps the rebuilt Arc from
    // decrementing the count when it goes out of scope.
    let wake = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<W>()) });
    ArcWake::wake_by_ref(&wake);
}

/// `drop(waker)`: release the waker's reference.
unsafe fn drop_raw<W: ArcWake>(data: *const ()) {
    // SAFETY: the waker is being dropped, so its reference is ours to release, exactly once.
    drop(unsafe { Arc::from_raw(data.cast::<W>()) });
}

// ---------------------------------------------------------------------------------------------
// 2. block_on: one future, a parked thread.

/// Wakes the thread that runs `block_on` (or an executor).
struct ThreadNotify {
    thread: Thread,
    /// Set by a wake, cleared by the poller. `park` may return spuriously, and an `unpark`
    /// before `park` is remembered, so the flag, not the return of `park`, says "woken".
    notified: AtomicBool,
}

impl ThreadNotify {
    fn new(notified: bool) -> Arc<ThreadNotify> {
        Arc::new(ThreadNotify {
            thread: thread::current(),
            notified: AtomicBool::new(notified),
        })
    }

    /// Consumes a pending notification, if any.
    fn take(&self) -> bool {
        self.notified.swap(false, Ordering::Acquire)
    }
}

impl ArcWake for ThreadNotify {
    fn wake_by_ref(self: &Arc<Self>) {
        // Only the wake that sets the flag needs to unpark: later ones find it set.
        if !self.notified.swap(true, Ordering::Release) {
            self.thread.unpark();
        }
    }
}

/// Runs `future` to completion on this thread, sleeping while it is pending.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let notify = ThreadNotify::new(false);
    let waker = waker(notify.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        while !notify.take() {
            thread::park();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The executor.

/// Why a task gave no output: it panicked. The panic's message is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    message: String,
}

impl JoinError {
    fn from_panic(payload: Box<dyn Any + Send>) -> JoinError {
        let message = match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(message) => message.to_string(),
                Err(_) => "a panic with a non-string payload".to_string(),
            },
        };
        JoinError { message }
    }

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

/// What a task and its handle share: the output, once there is one, and the waker of whoever
/// awaits the handle. Both live on the executor's thread: `Rc<RefCell>` is enough.
struct JoinState<T> {
    output: Option<Result<T, JoinError>>,
    waiter: Option<Waker>,
}

/// Awaits a spawned task's output (`Err` if it panicked). Dropping it detaches the task: the
/// task still runs to completion.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.state.borrow_mut();
        match state.output.take() {
            Some(output) => Poll::Ready(output),
            None => {
                // Keep the newest waker (the awaiting task may have moved between polls).
                match &mut state.waiter {
                    Some(waiter) if waiter.will_wake(cx.waker()) => {}
                    waiter => *waiter = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

/// What wakers share with the executor, from any thread.
struct Shared {
    /// Ids of tasks to poll, in wake order.
    queue: Mutex<VecDeque<u64>>,
    /// The executor's thread, unparked when the queue gets work.
    thread: Thread,
}

/// A task's waker: pushes the task's id, once, however many times it is woken.
struct TaskWaker {
    id: u64,
    /// True while the id is in the queue (or the task is finished: then it stays true, and
    /// wakes of a stale waker do nothing).
    scheduled: AtomicBool,
    shared: Arc<Shared>,
}

impl ArcWake for TaskWaker {
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.shared
                .queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(self.id);
            self.shared.thread.unpark();
        }
    }
}

/// A spawned future, its output already routed to its [`JoinHandle`].
struct Task {
    future: Pin<Box<dyn Future<Output = ()>>>,
    wake: Arc<TaskWaker>,
    /// Made once from `wake` and reused for every poll.
    waker: Waker,
}

struct Inner {
    /// Futures live here, touched by this thread only: they need not be `Send`.
    tasks: RefCell<HashMap<u64, Task>>,
    /// Ids are never reused, so a late wake can never poll the wrong task.
    next_id: Cell<u64>,
    shared: Arc<Shared>,
}

/// A single-threaded executor. Cloning it gives another handle to the same executor, so a task
/// can capture one and spawn more tasks.
#[derive(Clone)]
pub struct Executor {
    inner: Rc<Inner>,
}

impl Default for Executor {
    fn default() -> Self {
        Executor::new()
    }
}

impl Executor {
    /// An executor for the current thread.
    pub fn new() -> Executor {
        Executor {
            inner: Rc::new(Inner {
                tasks: RefCell::new(HashMap::new()),
                next_id: Cell::new(0),
                shared: Arc::new(Shared {
                    queue: Mutex::new(VecDeque::new()),
                    thread: thread::current(),
                }),
            }),
        }
    }

    /// Queues `future` as a new task; it runs while [`Executor::block_on`] runs.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let state = Rc::new(RefCell::new(JoinState {
            output: None,
            waiter: None,
        }));
        let handle = JoinHandle {
            state: state.clone(),
        };
        // The task is the future plus the plumbing: catch a panic during any poll, store the
        // output, wake whoever awaits the handle.
        let mut future = Box::pin(future);
        let task = async move {
            let output = std::future::poll_fn(|cx| {
                match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
                    Err(panic) => Poll::Ready(Err(JoinError::from_panic(panic))),
                }
            })
            .await;
            let mut state = state.borrow_mut();
            state.output = Some(output);
            if let Some(waiter) = state.waiter.take() {
                waiter.wake();
            }
        };

        let id = self.inner.next_id.get();
        self.inner.next_id.set(id + 1);
        let wake = Arc::new(TaskWaker {
            id,
            scheduled: AtomicBool::new(false),
            shared: self.inner.shared.clone(),
        });
        let waker = waker(wake.clone());
        self.inner.tasks.borrow_mut().insert(
            id,
            Task {
                future: Box::pin(task),
                wake,
                waker: waker.clone(),
            },
        );
        waker.wake(); // the first poll
        handle
    }

    /// Runs `future` on this thread, and every spawned task with it, until `future` is done.
    /// Sleeps (parks the thread) whenever nothing is ready.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let main = ThreadNotify::new(true);
        let main_waker = waker(main.clone());
        let mut cx = Context::from_waker(&main_waker);
        loop {
            if main.take()
                && let Poll::Ready(output) = future.as_mut().poll(&mut cx)
            {
                return output;
            }
            // A snapshot of the queue: a task that wakes itself at every poll goes to the
            // back of the next batch instead of starving the main future.
            let batch = std::mem::take(&mut *self.lock_queue());
            for id in &batch {
                self.poll_task(*id);
            }
            if batch.is_empty() {
                self.park(&main);
            }
        }
    }

    /// Sleeps until a task is queued or the main future is woken.
    fn park(&self, main: &ThreadNotify) {
        while !main.notified.load(Ordering::Acquire) && self.lock_queue().is_empty() {
            thread::park();
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        // A panic cannot happen while the lock is held (push/take only): ignore poisoning.
        self.inner
            .shared
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn poll_task(&self, id: u64) {
        // Take the task out of the map while it runs: it may spawn (which inserts into the
        // map) without a RefCell double borrow.
        let Some(mut task) = self.inner.tasks.borrow_mut().remove(&id) else {
            return; // finished already
        };
        // Clear the flag before polling: a wake during the poll must queue the task again.
        task.wake.scheduled.store(false, Ordering::Release);
        let mut cx = Context::from_waker(&task.waker);
        match task.future.as_mut().poll(&mut cx) {
            Poll::Pending => {
                self.inner.tasks.borrow_mut().insert(id, task);
            }
            Poll::Ready(()) => {
                // Finished: its waker stays "scheduled" forever, so stale clones are inert,
                // and dropping `task` frees the future and everything it captured.
                task.wake.scheduled.store(true, Ordering::Release);
            }
        }
    }

    /// Tasks spawned and not finished yet.
    pub fn task_count(&self) -> usize {
        self.inner.tasks.borrow().len()
    }
}

/// Returns `Pending` once (after waking itself), so other tasks run: a cooperative yield.
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

/// The command line: no options; `--help` says what the program shows.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_executor",
    about = "A hand-made executor: 100,000 tasks on one thread, then block_on woken from another \
             thread"
)]
struct Args {}

fn main() {
    // `--help` prints the usage (exit 0); any argument is a usage error (exit 2).
    let Args {} = Args::parse();
    // A small demonstration: 100,000 tasks that each yield twice, then a sum of their outputs.
    const TASKS: u64 = 100_000;
    let executor = Executor::new();
    let started = Instant::now();
    let handles: Vec<JoinHandle<u64>> = (0..TASKS)
        .map(|i| {
            executor.spawn(async move {
                yield_now().await;
                yield_now().await;
                i
            })
        })
        .collect();
    let sum = executor.block_on(async {
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.expect("no task panics");
        }
        sum
    });
    let elapsed = started.elapsed();
    assert_eq!(sum, TASKS * (TASKS - 1) / 2);
    println!(
        "{TASKS} tasks, 3 polls each, in {:.1} ms ({:.0} ns per poll)",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / (3 * TASKS) as f64
    );
    // block_on parks between wakes: a future woken 5 times by another thread is polled 6
    // times, and the thread sleeps in between (futex calls under strace).
    let mut polls = 0;
    let woken = block_on(std::future::poll_fn(|cx| {
        polls += 1;
        if polls > 5 {
            return Poll::Ready(polls - 1);
        }
        let waker = cx.waker().clone();
        thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(10));
            waker.wake();
        });
        Poll::Pending
    }));
    println!("block_on: woken {woken} times from another thread, polled {polls} times");
}
