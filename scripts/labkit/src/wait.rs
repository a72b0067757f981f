//! Waiting on a condition instead of sleeping a fixed time: a grader polls what it can observe
//! (a gauge, a thread list in /proc, a health check) until it holds or a deadline passes, so
//! it is as fast as the lab allows and never hangs.
//!
//! [`until`] is for synchronous graders; the async functions (feature `wait`) are for graders
//! on tokio, where a blocking sleep would stall the very tasks under test.

use std::time::{Duration, Instant};

/// Polls `done` every 10 ms until it holds (`true`) or `timeout` passes (`false`).
pub fn until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// Runs `test` on a thread of its own and returns its result, or panics with `what` if it has
/// not finished within `deadline`: for graders of hand-built executors and runtimes, where a
/// lost wake-up shows as a thread asleep forever. (The thread is left behind on a timeout;
/// the test process ends with the failure.)
pub fn on_a_thread_within<T: Send + 'static>(
    deadline: Duration,
    what: &str,
    test: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(test());
    });
    match rx.recv_timeout(deadline) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: not finished after {deadline:?}: a wake-up was lost (or it spins)")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("{what}: the test thread panicked")
        }
    }
}

#[cfg(feature = "wait")]
pub use self::tokio_waits::*;

#[cfg(feature = "wait")]
mod tokio_waits {
    use std::future::Future;
    use std::time::{Duration, Instant};

    /// No async test may take longer than this.
    pub const DEADLINE: Duration = Duration::from_secs(25);

    /// Runs a test body under [`DEADLINE`].
    pub async fn within<F: Future>(body: F) -> F::Output {
        tokio::time::timeout(DEADLINE, body).await.unwrap_or_else(|_| {
            panic!(
                "the test took longer than {} s: a lock, a connection or a reply that never came?",
                DEADLINE.as_secs()
            )
        })
    }

    /// Polls `ok` every 20 ms until it holds, for at most 5 s: for facts that become true just
    /// after a reply (a connection back in its pool, a key expired, a message delivered).
    pub async fn eventually<F: Future<Output = bool>>(what: &str, ok: impl FnMut() -> F) {
        eventually_for(Duration::from_secs(5), what, ok).await
    }

    /// [`eventually`] with a deadline of `timeout`.
    pub async fn eventually_for<F: Future<Output = bool>>(
        timeout: Duration,
        what: &str,
        mut ok: impl FnMut() -> F,
    ) {
        let deadline = Instant::now() + timeout;
        while !ok().await {
            assert!(
                Instant::now() < deadline,
                "still not true after {timeout:?}: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
