//! Shared by the grader's test files.

use std::sync::mpsc;
use std::sync::{Condvar, Mutex, Once};
use std::thread;
use std::time::Duration;

/// How long any test body may run: a pool that deadlocks fails the test instead of hanging it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `body` on its own thread and fails the test if it does not finish within [`DEADLINE`]
/// (a deadlocked pool, a `Drop` that never returns). A panic inside `body` fails the test with
/// its own message.
pub fn within_deadline(body: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let runner = thread::spawn(move || {
        body();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(DEADLINE) {
        Ok(()) => runner.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = runner.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not finish within {DEADLINE:?}: a job, `join` or `drop(pool)` is stuck")
        }
    }
}

/// A meeting point for `parties` jobs that gives up after `timeout`: returns whether all of them
/// arrived. Jobs that meet here prove they ran at the same time, on different workers.
pub struct Rendezvous {
    arrived: Mutex<usize>,
    all_here: Condvar,
    parties: usize,
}

impl Rendezvous {
    pub fn new(parties: usize) -> Self {
        Rendezvous {
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
            parties,
        }
    }

    pub fn meet(&self, timeout: Duration) -> bool {
        let mut arrived = self.arrived.lock().unwrap();
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, _) = self
            .all_here
            .wait_timeout_while(arrived, timeout, |n| *n < self.parties)
            .unwrap();
        *arrived >= self.parties
    }
}

/// Panics whose message contains this text are the tests' own: their report is hidden.
pub const ON_PURPOSE: &str = "job panicked on purpose";

/// Keeps the test output readable: panics raised on purpose by jobs are not printed, every other
/// panic is reported as usual.
pub fn quiet_intentional_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !message.contains(ON_PURPOSE) {
                default(info);
            }
        }));
    });
}
