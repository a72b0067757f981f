//! A fake connection manager that counts what the pool does with it.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use super::lab::Manager;

/// Polls `ok` every 10 ms for up to 5 s.
pub async fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "still not true after 5 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Default)]
pub struct Counters {
    pub connect_attempts: AtomicUsize,
    pub connects: AtomicUsize,
    pub checks: AtomicUsize,
    pub closes: AtomicUsize,
    /// Connections made before the current generation fail their health check.
    pub generation: AtomicUsize,
    pub fail_next_connect: AtomicBool,
    /// The next connect never completes (a server that does not answer): for cancellation.
    pub stall_next_connect: AtomicBool,
}

impl Counters {
    pub fn connects(&self) -> usize {
        self.connects.load(SeqCst)
    }
    pub fn closes(&self) -> usize {
        self.closes.load(SeqCst)
    }
    /// Breaks every connection made so far (as a server restart would).
    pub fn break_all(&self) {
        self.generation.fetch_add(1, SeqCst);
    }
}

#[derive(Debug)]
pub struct FakeError(pub &'static str);

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for FakeError {}

#[derive(Debug)]
pub struct FakeConn {
    /// 1 for the first connection made, 2 for the second...
    pub id: usize,
    generation: usize,
}

#[derive(Clone, Default)]
pub struct FakeManager(pub Arc<Counters>);

impl Manager for FakeManager {
    type Connection = FakeConn;
    type Error = FakeError;

    async fn connect(&self) -> Result<FakeConn, FakeError> {
        self.0.connect_attempts.fetch_add(1, SeqCst);
        tokio::task::yield_now().await; // a connect takes a little time
        if self.0.stall_next_connect.swap(false, SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.0.fail_next_connect.swap(false, SeqCst) {
            return Err(FakeError("connection refused (on purpose)"));
        }
        let id = self.0.connects.fetch_add(1, SeqCst) + 1;
        Ok(FakeConn {
            id,
            generation: self.0.generation.load(SeqCst),
        })
    }

    async fn check(&self, conn: &mut FakeConn) -> Result<(), FakeError> {
        self.0.checks.fetch_add(1, SeqCst);
        if conn.generation < self.0.generation.load(SeqCst) {
            return Err(FakeError("broken pipe (on purpose)"));
        }
        Ok(())
    }

    async fn close(&self, _conn: FakeConn) {
        self.0.closes.fetch_add(1, SeqCst);
    }
}
