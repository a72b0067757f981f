//! A one-shot signal for the graders of hand-built executors: a future that completes once
//! [`Signal::set`] is called, from any thread. It wakes through the waker it was last polled
//! with, so a runtime that loses or mis-routes wake-ups never sees it complete.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Clone, Default)]
pub struct Signal {
    state: Arc<Mutex<(bool, Option<Waker>)>>,
}

impl Signal {
    pub fn set(&self) {
        let waker = {
            let mut state = self.state.lock().unwrap();
            state.0 = true;
            state.1.take()
        };
        // Wake outside the lock: the runtime may poll the task at once, on this thread.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Future for Signal {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state.lock().unwrap();
        if state.0 {
            Poll::Ready(())
        } else {
            state.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
