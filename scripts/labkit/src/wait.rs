//! Deadlines for async graders: a test that waits on something that never comes fails with a
//! message instead of hanging the run.

use std::future::Future;
use std::time::{Duration, Instant};

/// No async test may take longer than this.
pub const DEADLINE: Duration = Duration::from_secs(25);

/// Runs a test body under [`DEADLINE`].
pub async fn within<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(DEADLINE, body)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the test took longer than {} s: a lock, a connection or a reply that never came?",
                DEADLINE.as_secs()
            )
        })
}

/// Polls `ok` every 20 ms until it holds, for at most 5 s: for facts that become true just
/// after a reply (a connection back in its pool, a key expired, a message delivered).
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut ok: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok().await {
        assert!(
            Instant::now() < deadline,
            "still not true after 5 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
