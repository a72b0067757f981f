//! The hand-written waker: its vtable keeps the `Arc`'s strong count exact.
//!
//! No process, no timing, no I/O: these tests also run under Miri, which checks every pointer
//! the vtable touches (see README, "What to observe"):
//! `cargo +nightly miri test -p ch7_executor --features solution --test test_waker`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use rand::RngExt;

labkit::lab_mod!(lab);
use lab::ArcWake;

/// Counts its wakes, by kind.
#[derive(Default)]
struct Counter {
    by_ref: AtomicUsize,
    by_value: AtomicUsize,
}

impl ArcWake for Counter {
    fn wake_by_ref(self: &Arc<Self>) {
        self.by_ref.fetch_add(1, Ordering::SeqCst);
    }

    fn wake(self: Arc<Self>) {
        self.by_value.fetch_add(1, Ordering::SeqCst);
    }
}

fn random_count() -> usize {
    // Small under Miri, which is slow.
    rand::rng().random_range(if cfg!(miri) { 2..6 } else { 5..200 })
}

// Requirement 1: clone and drop balance the strong count.
#[test]
fn clone_and_drop_balance_the_strong_count() {
    let counter = Arc::new(Counter::default());
    let waker = lab::waker(counter.clone());
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 2);
        assert!(
            seen == wanted,
            "requirement 1: the waker holds one reference: saw {seen:?}, wanted {wanted:?}"
        );
    };

    let clones: Vec<_> = (0..random_count()).map(|_| waker.clone()).collect();
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 2 + clones.len());
        assert!(
            seen == wanted,
            "requirement 1: each clone holds one more reference: saw {seen:?}, wanted {wanted:?}"
        );
    };
    assert!(
        clones.iter().all(|clone| clone.will_wake(&waker)),
        "a clone wakes the same task: same data pointer, same vtable"
    );
    drop(clones);
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 2);
        assert!(
            seen == wanted,
            "requirement 1: each drop releases one: saw {seen:?}, wanted {wanted:?}"
        );
    };
    drop(waker);
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 1);
        assert!(
            seen == wanted,
            "requirement 1: after the last waker is gone only our reference is left: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (counter.by_ref.load(Ordering::SeqCst), 0);
        assert!(
            seen == wanted,
            "requirement 1: no wake happened: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (counter.by_value.load(Ordering::SeqCst), 0);
        assert!(
            seen == wanted,
            "requirement 1: no wake happened: saw {seen:?}, wanted {wanted:?}"
        );
    };
}

// Requirement 2: wake consumes its reference, wake_by_ref does not.
#[test]
fn wake_consumes_and_wake_by_ref_borrows() {
    let counter = Arc::new(Counter::default());
    let waker = lab::waker(counter.clone());
    let rounds = random_count();

    for _ in 0..rounds {
        waker.wake_by_ref();
    }
    {
        let (seen, wanted) = (counter.by_ref.load(Ordering::SeqCst), rounds);
        assert!(
            seen == wanted,
            "requirement 2: ArcWake::wake_by_ref calls after as many Waker::wake_by_ref: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 2);
        assert!(
            seen == wanted,
            "requirement 2: wake_by_ref neither takes nor gives a reference: saw {seen:?}, wanted {wanted:?}"
        );
    };

    for _ in 0..rounds {
        let clone = waker.clone();
        clone.wake();
    }
    {
        let (seen, wanted) = (counter.by_value.load(Ordering::SeqCst), rounds);
        assert!(
            seen == wanted,
            "requirement 2: Waker::wake calls ArcWake::wake with the waker's own Arc: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 2);
        assert!(
            seen == wanted,
            "requirement 2: each wake() consumed the clone's reference: saw {seen:?}, wanted {wanted:?}"
        );
    };

    waker.wake();
    {
        let (seen, wanted) = (counter.by_value.load(Ordering::SeqCst), rounds + 1);
        assert!(
            seen == wanted,
            "requirement 2: ArcWake::wake calls after one more Waker::wake: saw {seen:?}, wanted {wanted:?}"
        );
    };
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 1);
        assert!(
            seen == wanted,
            "requirement 2: the last waker is consumed: saw {seen:?}, wanted {wanted:?}"
        );
    };
}

// Requirement 3: a waker is Send + Sync: threads clone and wake it.
#[test]
fn wakers_work_from_other_threads() {
    let counter = Arc::new(Counter::default());
    let waker = lab::waker(counter.clone());
    let (threads, per_thread) = if cfg!(miri) { (2, 5) } else { (8, 1000) };
    thread::scope(|scope| {
        for _ in 0..threads {
            let waker = &waker;
            scope.spawn(move || {
                for i in 0..per_thread {
                    if i % 2 == 0 {
                        waker.wake_by_ref();
                    } else {
                        let clone = waker.clone();
                        clone.wake();
                    }
                }
            });
        }
    });
    let total = counter.by_ref.load(Ordering::SeqCst) + counter.by_value.load(Ordering::SeqCst);
    {
        let (seen, wanted) = (total, threads * per_thread);
        assert!(
            seen == wanted,
            "requirement 3: every wake arrived: saw {seen:?}, wanted {wanted:?}"
        );
    };
    drop(waker);
    {
        let (seen, wanted) = (Arc::strong_count(&counter), 1);
        assert!(
            seen == wanted,
            "requirement 3: balanced after all threads: saw {seen:?}, wanted {wanted:?}"
        );
    };
}
