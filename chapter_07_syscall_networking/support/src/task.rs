//! A spawned task's output, delivered through a [`JoinHandle`]: lab 7.7's answer, for a
//! single-threaded executor (the task, its handle and the executor share one thread, so the
//! state is an `Rc<RefCell<..>>`, not an `Arc<Mutex<..>>`).
//!
//! An executor's `spawn` calls [`joinable`] and keeps the first half, a future of `()` it polls
//! like any other task; it hands the second half, the [`JoinHandle`], to its caller. What the
//! executor does with the task (where it stores it, how its waker queues it) is its own design.
//!
//! ```
//! use std::pin::pin;
//! use std::task::{Context, Poll, Waker};
//!
//! let (mut task, handle) = ch7_support::task::joinable(async { 6 * 7 });
//! let mut cx = Context::from_waker(Waker::noop());
//! assert_eq!(task.as_mut().poll(&mut cx), Poll::Ready(())); // the executor runs the task
//! assert_eq!(pin!(handle).poll(&mut cx), Poll::Ready(Ok(42))); // the caller gets its output
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A task as a single-threaded executor keeps it: boxed, so tasks of different types share
/// one collection; pinned, so it is polled in place; not `Send`, as it never leaves its thread.
pub type TaskFuture = Pin<Box<dyn Future<Output = ()>>>;

/// Splits `future` into the task an executor polls and the handle that awaits its output.
///
/// The task runs `future` to completion, catching a panic (the executor and the other tasks
/// carry on), stores the output or the panic in the state it shares with the handle, and wakes
/// whoever awaits the handle. Dropping the handle detaches the task: it still runs.
pub fn joinable<F>(future: F) -> (TaskFuture, JoinHandle<F::Output>)
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
    let mut future = Box::pin(future);
    let task = async move {
        let output = poll_fn(|cx| {
            // AssertUnwindSafe: after a panic the future is never polled again, so no broken
            // invariant of its can be observed.
            match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
                Err(panic) => Poll::Ready(Err(JoinError::from_panic(panic))),
            }
        })
        .await;
        let waiter = {
            let mut state = state.borrow_mut();
            state.output = Some(output);
            state.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    };
    (Box::pin(task), handle)
}

/// Why a task gave no output: it panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    message: String,
}

impl JoinError {
    fn from_panic(payload: Box<dyn Any + Send>) -> JoinError {
        // `panic!("literal")` carries a &'static str, `panic!("{x}")` a String.
        let message = match payload.downcast::<String>() {
            Ok(message) => *message,
            Err(payload) => match payload.downcast::<&'static str>() {
                Ok(message) => message.to_string(),
                Err(_) => "a panic with a non-string payload".to_string(),
            },
        };
        JoinError { message }
    }

    /// The panic's message.
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

/// What a task and its handle share: the output once there is one, and the waker of whoever
/// awaits it.
struct JoinState<T> {
    output: Option<Result<T, JoinError>>,
    waiter: Option<Waker>,
}

/// Awaits a spawned task's output: `Ok` with its value, `Err` if it panicked. Dropping the
/// handle detaches the task, which still runs.
pub struct JoinHandle<T> {
    state: Rc<RefCell<JoinState<T>>>,
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.state.borrow_mut();
        if let Some(output) = state.output.take() {
            return Poll::Ready(output);
        }
        // Keep the waker of the latest poll: the handle may have moved to another task.
        match &state.waiter {
            Some(waiter) if waiter.will_wake(cx.waker()) => {}
            _ => state.waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let finished = self.state.borrow().output.is_some();
        f.debug_struct("JoinHandle")
            .field("finished", &finished)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_handle_waits_for_the_task_and_is_woken_once_it_is_done() {
        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let (mut task, handle) = joinable(async { "done" });
        let mut handle = pin!(handle);
        assert!(handle.as_mut().poll(&mut cx).is_pending());
        assert_eq!(task.as_mut().poll(&mut cx), Poll::Ready(()));
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "the waiting handle is woken"
        );
        assert_eq!(handle.poll(&mut cx), Poll::Ready(Ok("done")));
    }

    #[test]
    fn a_panic_becomes_a_join_error() {
        let mut cx = Context::from_waker(Waker::noop());
        let (mut task, handle) = joinable(async {
            if true {
                panic!("boom {}", 42);
            }
        });
        let polled = task.as_mut().poll(&mut cx); // prints the panic, caught
        assert_eq!(polled, Poll::Ready(()));
        let Poll::Ready(Err(e)) = pin!(handle).poll(&mut cx) else {
            panic!("wanted a JoinError");
        };
        assert_eq!(e.message(), "boom 42");
    }
}
