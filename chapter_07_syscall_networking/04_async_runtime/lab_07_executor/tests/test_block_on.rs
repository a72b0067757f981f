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
    {
        let (seen, wanted) = (lab::block_on(async move { value }), value);
        assert!(
            seen == wanted,
            "requirement 4: block_on(async move {{ value }}) returned something else: saw {seen:?}, wanted {wanted:?}"
        );
    };
    let nested = lab::block_on(async move {
        let a = async { value / 2 }.await;
        let b = async { value - value / 2 }.await;
        a + b
    });
    {
        let (seen, wanted) = (nested, value);
        assert!(
            seen == wanted,
            "requirement 4: block_on of an async block awaiting two others: saw {seen:?}, wanted {wanted:?}"
        );
    };
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
    {
        let (seen, wanted) = (finished_at, rounds + 1);
        assert!(
            seen == wanted,
            "requirement 5: the poll at which the future finished: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (wakes.load(Ordering::SeqCst), rounds);
        assert!(
            seen == wanted,
            "requirement 5: wakes sent by the other threads: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (polls.load(Ordering::SeqCst), rounds + 1);
        assert!(
            seen == wanted,
            "requirement 5: exactly one poll per wake, plus the first: park the thread between wakes, do not spin: saw {seen:?}, wanted {wanted:?}"
        );
    };
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
    {
        let (seen, wanted) = (result, 100);
        assert!(
            seen == wanted,
            "requirement 5: a future that wakes itself 99 times during its poll returned: saw {seen:?}, wanted {wanted:?}"
        );
    };
}

// Requirement 5: while the future is pending, block_on's thread sleeps in the kernel.
#[test]
fn block_on_parks_while_pending() {
    let signal = labkit::signal::Signal::default();
    let polls = Arc::new(AtomicUsize::new(0));
    let (mut future_signal, future_polls) = (signal.clone(), polls.clone());
    // A named thread, so that the grader can watch it in /proc/self/task/*/comm.
    let runner = thread::Builder::new()
        .name("block-on-idle".into())
        .spawn(move || {
            lab::block_on(std::future::poll_fn(|cx| {
                future_polls.fetch_add(1, Ordering::SeqCst);
                Pin::new(&mut future_signal).poll(cx)
            }))
        })
        .expect("spawn the block_on thread");
    assert!(
        labkit::wait::until(Duration::from_secs(5), || polls.load(Ordering::SeqCst) >= 1),
        "requirement 4: block_on did not poll its future within 5 s"
    );
    labkit::sys::assert_asleep(
        std::process::id(),
        "requirement 5: block_on parks its thread while the future waits for another thread",
        |name| name == "block-on-idle",
    );
    signal.set();
    assert!(
        labkit::wait::until(Duration::from_secs(5), || runner.is_finished()),
        "requirement 5: block_on did not return within 5 s of the wake"
    );
    let _ = runner.join();
    let polls = polls.load(Ordering::SeqCst);
    assert!(
        polls == 2,
        "requirement 5: the future was polled {polls} times; wanted 2 (once, then once after \
         its wake)"
    );
}
