//! Grader for Thread Pool, requirement 6: the same work with rayon, on the pool it is given.
//!
//! The grader builds a rayon pool of N threads (N random) whose names it chooses, and passes a
//! `work` closure that notes where it runs: the kernel's name for its thread, from
//! `/proc/thread-self/comm`. Parallel is proved by a count, not a clock: N chunks must be
//! running at the same time, meeting each other.

#[allow(dead_code)] // this file uses only part of the helpers shared by the graders
mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

use common::within_deadline;
use labkit::wait;
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::map_chunks_with_rayon;

/// The grader names its rayon threads `grader-rayon-<i>` (14 characters: the kernel keeps 15).
const PREFIX: &str = "grader-rayon-";

/// How long a chunk waits for the others before the grader gives up on them.
const PATIENCE: Duration = Duration::from_secs(5);

/// FNV-1a, 64 bits: the grader's own checksum, the oracle the results are compared with.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What `work` returns for a chunk: its checksum and its bytes reversed, so that the results
/// can be compared with the sequential ones byte for byte.
fn digest(chunk: &[u8]) -> (u64, Vec<u8>) {
    (fnv1a(chunk), chunk.iter().rev().copied().collect())
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::rng().fill(&mut bytes[..]);
    bytes
}

/// A rayon pool of `n` threads named `grader-rayon-0` to `grader-rayon-{n-1}`.
fn grader_pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("{PREFIX}{i}"))
        .build()
        .expect("a rayon pool for the grader")
}

/// The kernel's name for the thread running the caller.
fn kernel_thread_name() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .expect("/proc/thread-self/comm")
        .trim_end()
        .to_string()
}

/// A meeting point for the first `parties` chunks to arrive. A chunk that arrives waits (at
/// most [`PATIENCE`]) for the others; if they do not come the meeting is off, and nobody else
/// waits for it. Chunks that arrive once it is over pass through.
struct Meeting {
    /// Chunks that arrived in time, and whether the meeting is off.
    state: Mutex<(usize, bool)>,
    changed: Condvar,
    parties: usize,
}

impl Meeting {
    fn new(parties: usize) -> Self {
        Meeting {
            state: Mutex::new((0, false)),
            changed: Condvar::new(),
            parties,
        }
    }

    fn attend(&self) {
        let mut state = self.state.lock().unwrap();
        if state.0 >= self.parties || state.1 {
            return;
        }
        state.0 += 1;
        self.changed.notify_all();
        let (mut state, _) = self
            .changed
            .wait_timeout_while(state, PATIENCE, |(arrived, off)| {
                *arrived < self.parties && !*off
            })
            .unwrap();
        if state.0 < self.parties {
            state.1 = true;
            self.changed.notify_all();
        }
    }

    /// How many chunks were running at the same time, at most `parties`.
    fn met(&self) -> usize {
        self.state.lock().unwrap().0
    }
}

// Requirement 6: the results equal the sequential ones, in chunk order, each chunk once.
#[test]
fn rayon_results_equal_the_sequential_ones_in_chunk_order() {
    within_deadline(|| {
        let mut rng = rand::rng();
        let n = rng.random_range(2..=4);
        let pool = grader_pool(n);
        let data = random_bytes(rng.random_range(60_000..200_000));
        let chunk_len = rng.random_range(500..3_000);
        let want: Vec<_> = data.chunks(chunk_len).map(digest).collect();

        // The first chunk finishes only after another one has: a result collected in the order
        // the chunks finish (a channel, a Mutex<Vec> pushed to) then comes out of place.
        let first = &data[..chunk_len];
        let (calls, done) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let got = map_chunks_with_rayon(&pool, &data, chunk_len, |chunk| {
            calls.fetch_add(1, Ordering::SeqCst);
            if chunk == first {
                wait::until(PATIENCE, || done.load(Ordering::SeqCst) > 0);
            }
            let result = digest(chunk);
            done.fetch_add(1, Ordering::SeqCst);
            result
        });

        let calls = calls.into_inner();
        assert!(
            calls == want.len(),
            "requirement 6: {} bytes in chunks of {chunk_len} are {} chunks; `work` was called \
             {calls} times, wanted once per chunk",
            data.len(),
            want.len()
        );
        assert!(
            got.len() == want.len(),
            "requirement 6: {} bytes in chunks of {chunk_len} gave {} results; wanted {}, one \
             per chunk",
            data.len(),
            got.len(),
            want.len()
        );
        if let Some(at) = (0..want.len()).find(|&i| got[i] != want[i]) {
            let came_from = want.iter().position(|w| *w == got[at]);
            panic!(
                "requirement 6: result {at} of {} differs from the sequential \
                 `data.chunks({chunk_len}).map(work)`: it is the result of chunk {came_from:?}; \
                 wanted chunk {at}'s, in chunk order (collect the parallel iterator; do not \
                 gather results in the order they finish)",
                want.len()
            );
        }

        // The edges: nothing to do, one short chunk, chunks of one byte.
        let empty: Vec<(u64, Vec<u8>)> = map_chunks_with_rayon(&pool, &[], 7, digest);
        assert!(
            empty.is_empty(),
            "requirement 6: no data gave {} results; wanted none",
            empty.len()
        );
        let small = random_bytes(rng.random_range(1..100));
        for chunk_len in [small.len(), small.len() + 1 + rng.random_range(0..100), 1] {
            let got = map_chunks_with_rayon(&pool, &small, chunk_len, digest);
            let want: Vec<_> = small.chunks(chunk_len).map(digest).collect();
            assert!(
                got == want,
                "requirement 6: {} bytes in chunks of {chunk_len} gave {} results, not the {} \
                 of the sequential `data.chunks({chunk_len}).map(work)` (or not the same ones)",
                small.len(),
                got.len(),
                want.len()
            );
        }
    });
}

// Requirement 6: the chunks run in parallel on the pool passed in, never on the calling thread.
#[test]
fn rayon_work_runs_in_parallel_on_the_pool_it_is_given() {
    within_deadline(|| {
        let mut rng = rand::rng();
        let n = rng.random_range(2..=6);
        let pool = grader_pool(n);
        let chunk_len = rng.random_range(256..1024);
        let data = random_bytes(chunk_len * rng.random_range(8 * n..40 * n));
        let caller = thread::current().id();

        let meeting = Meeting::new(n);
        let ran_on = Mutex::new(Vec::new());
        let got = map_chunks_with_rayon(&pool, &data, chunk_len, |chunk| {
            ran_on
                .lock()
                .unwrap()
                .push((kernel_thread_name(), thread::current().id()));
            meeting.attend();
            fnv1a(chunk)
        });
        let want: Vec<u64> = data.chunks(chunk_len).map(fnv1a).collect();
        assert!(
            got == want,
            "requirement 6: the checksums of {} chunks differ from the sequential ones",
            want.len()
        );

        let ran_on = ran_on.into_inner().unwrap();
        let on_caller = ran_on.iter().filter(|(_, id)| *id == caller).count();
        assert!(
            on_caller == 0,
            "requirement 6: {on_caller} of {} chunks ran on the calling thread; wanted every \
             chunk on the threads of the rayon pool passed in, the caller only waiting \
             (`pool.install(...)`)",
            ran_on.len()
        );
        let threads: BTreeSet<&str> = ran_on.iter().map(|(name, _)| name.as_str()).collect();
        let strangers: Vec<&str> = threads
            .iter()
            .copied()
            .filter(|name| !name.starts_with(PREFIX))
            .collect();
        assert!(
            strangers.is_empty(),
            "requirement 6: chunks ran on threads {strangers:?}; wanted only the {n} threads of \
             the rayon pool passed in ({PREFIX}0 to {PREFIX}{}): a parallel iterator outside \
             `pool.install` runs on rayon's global pool",
            n - 1
        );
        let met = meeting.met();
        assert!(
            met == n,
            "requirement 6: on a rayon pool of {n} threads, at most {met} chunk(s) ran at the \
             same time (the first {n} to start waited {PATIENCE:?} for each other); wanted {n}: \
             is a sequential iterator (`.chunks`, `.iter`) doing the work instead of a parallel \
             one (`par_chunks`)?"
        );
        assert!(
            threads.len() == n,
            "requirement 6: the chunks ran on {} thread(s) {threads:?}; wanted all {n} threads \
             of the pool",
            threads.len()
        );
    });
}
