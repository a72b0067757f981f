//! `block_on`: runs one future on the current thread, parking the thread while it is pending.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::thread;
use std::time::Duration;

use rand::RngExt;

labkit::lab_mod!(lab);

/// Pending `rounds` times; each time, another thread wakes it a little later.
struct WokenFromAThread {
    rounds: usize,
    polls: Arc<AtomicUsize>,
    wakes: Arc<AtomicUsize>,
}

impl Future for WokenFromAThread {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let polls = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if polls > self.rounds {
            return Poll::Ready(polls);
        }
        let waker = cx.waker().clone();
        let wakes = self.wakes.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(3));
            wakes.fetch_add(1, Ordering::SeqCst);
            waker.wake();
        });
        Poll::Pending
    }
}

// Requirement 4: block_on returns the output.
#[test]
fn block_on_returns_the_output() {
    let value: u64 = rand::rng().random();
    assert_eq!(lab::block_on(async move { value }), value);
    let nested = lab::block_on(async move {
        let a = async { value / 2 }.await;
        let b = async { value - value / 2 }.await;
        a + b
    });
    assert_eq!(nested, value);
}

// Requirement 5: pending means parked, woken from another thread, polled once per wake.
#[test]
fn block_on_sleeps_until_woken_from_another_thread() {
    let rounds = rand::rng().random_range(5..20);
    let polls = Arc::new(AtomicUsize::new(0));
    let wakes = Arc::new(AtomicUsize::new(0));
    let future = WokenFromAThread {
        rounds,
        polls: polls.clone(),
        wakes: wakes.clone(),
    };
    let finished_at = lab::block_on(future);
    assert_eq!(finished_at, rounds + 1);
    assert_eq!(wakes.load(Ordering::SeqCst), rounds);
    assert_eq!(
        polls.load(Ordering::SeqCst),
        rounds + 1,
        "exactly one poll per wake, plus the first: park the thread between wakes, do not spin"
    );
}

#[test]
fn a_wake_during_the_poll_is_not_lost() {
    // The future wakes itself before returning Pending: the wake comes before block_on parks,
    // and must still count (thread::unpark before park is remembered, so is a flag).
    let mut polls = 0;
    let result = lab::block_on(std::future::poll_fn(|cx| {
        polls += 1;
        if polls == 100 {
            Poll::Ready(polls)
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }));
    assert_eq!(result, 100);
}
