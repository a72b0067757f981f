//! ## Goal
//! Add up a large `&[u64]` with N threads, three ways, and compare them with one thread:
//!
//! - **scoped threads** (`std::thread::scope`), each borrowing its chunk of the slice and returning
//!   its partial sum through its `JoinHandle`;
//! - **`Arc` + `Mutex`**: plain `std::thread::spawn` threads, which must own what they use, share the
//!   data through an `Arc<[u64]>` and add their partial sums into an `Arc<Mutex<u128>>`;
//! - **a channel**: the same threads send their partial sums through `std::sync::mpsc`.
//!
//! ## Requirements
//! 1. `sum_sequential(data)` returns the exact sum of `data` as a `u128`.
//! 2. `sum_scoped(data, threads)`, `sum_mutex(data, threads)` and `sum_channel(data, threads)`
//!    return `Ok` of exactly the same sum, for any input and any `threads >= 1`. Each splits the
//!    data into at most `threads` contiguous chunks (exactly `threads` when the length is a multiple
//!    of `threads`) and sums each chunk on a thread of its own; the threads run at the same time,
//!    and the calling thread only starts them, waits and adds the partial sums.
//! 3. `threads == 0` returns `Err(SumError::ZeroThreads)`: no panic, no hang. The binary turns it
//!    into a message on stderr and exit code 2.
//! 4. More threads than elements works (3 elements, 64 threads: the right sum).
//! 5. An empty slice sums to 0, whatever the number of threads.
//! 6. The binary (`ch1_parallel_sum [--len N] [--threads T]`, 100 M elements and one thread per
//!    CPU by default) prints a table of the four ways and a last line `sum = <total>`, where
//!    element `i` is `value_at(i)`. `--help` prints the usage (exit 0); a bad argument is one line on
//!    stderr and exit code 2.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 1.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `sum_sequential(data)` returns the exact sum of `data` as a `u128`
//! - [ ] Requirement 2: `sum_scoped(data, threads)`, `sum_mutex(data, threads)` and
//!   `sum_channel(data, threads)` return `Ok` of exactly the same sum, for any input and any
//!   `threads >= 1`
//! - [ ] Requirement 3: `threads == 0` returns `Err(SumError::ZeroThreads)`: no panic, no hang
//! - [ ] Requirement 4: More threads than elements works (3 elements, 64 threads: the right sum)
//! - [ ] Requirement 5: An empty slice sums to 0, whatever the number of threads
//! - [ ] Requirement 6: The binary (`ch1_parallel_sum [--len N] [--threads T]`, 100 M elements and
//!   one thread per CPU by default) prints a table of the four ways and a last line `sum =
//!   <total>`, where element `i` is `value_at(i)`
//!
//! ## Notes
//!
//! Parallel Sum: add up a large `&[u64]` with N threads, three ways, and time them.
//!
//! Write the four `sum_*` functions below; `main` is written for you: it builds the data, times
//! each way and prints a table. Read README.md for the requirements; `cargo lab test 1.2` grades
//! this file, and `cargo run --release` shows the table.
//!
//! Sums are `u128`: a `u64` sum overflows after two elements near `u64::MAX`, and a `u128`
//! cannot overflow for any slice that fits in memory. So the only failure is zero threads.
//!
//! Remove the `allow` below once every argument is used.
#![allow(unused_variables)]

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;

pub const USAGE: &str = "usage: parallel_sum [--len N] [--threads T]";

/// Why a sum could not be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SumError {
    /// `threads == 0`: nobody to do the work.
    ZeroThreads,
}

impl fmt::Display for SumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SumError::ZeroThreads => write!(f, "the number of threads must be at least 1"),
        }
    }
}

impl std::error::Error for SumError {}

/// The single-thread baseline: what every parallel way must return.
pub fn sum_sequential(data: &[u64]) -> u128 {
    todo!("add every element as a u128")
}

/// Scoped threads (`std::thread::scope`): split `data` into at most `threads` chunks, one thread
/// per chunk borrowing its chunk, each returning its partial sum through its `JoinHandle`.
///
/// `threads == 0` is `Err(SumError::ZeroThreads)`; more threads than elements works; an empty
/// slice sums to 0.
pub fn sum_scoped(data: &[u64], threads: usize) -> Result<u128, SumError> {
    todo!("thread::scope, data.chunks(..), spawn one thread per chunk, join and add")
}

/// Plain `std::thread::spawn` threads: each clones the `Arc` (spawned threads must own what
/// they use) and adds its partial sum into a shared `Arc<Mutex<u128>>`.
pub fn sum_mutex(data: &Arc<[u64]>, threads: usize) -> Result<u128, SumError> {
    todo!("Arc<Mutex<u128>>, one thread::spawn per chunk, lock once per thread, join all")
}

/// Plain `std::thread::spawn` threads sending their partial sums through a
/// `std::sync::mpsc` channel; the caller adds what it receives.
pub fn sum_channel(data: &Arc<[u64]>, threads: usize) -> Result<u128, SumError> {
    todo!("mpsc::channel, a Sender clone per thread, drop your own Sender, sum rx.iter()")
}

/// Element `i` of the data the binary sums. The values are spread over the whole `u64` range
/// (multiplying by an odd constant scrambles the bits), so the total overflows a `u64` after a
/// few elements: a sum that is not computed in `u128` shows up at once.
pub fn value_at(i: usize) -> u64 {
    (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Adds up `--len` values with `--threads` threads, three parallel ways and one thread, and
/// prints how long each way took.
#[derive(Parser)]
#[command(name = "parallel_sum")]
struct Args {
    /// How many u64 values to add up (8 bytes each)
    #[arg(long, value_name = "N", default_value_t = 100_000_000)]
    len: usize,
    /// Threads for the parallel ways [default: one per CPU]
    #[arg(long, value_name = "T")]
    threads: Option<usize>,
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2), shorter than clap's own message.
fn parse_args() -> Result<Args, ExitCode> {
    Args::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "parallel_sum: {}; {USAGE}",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
}

/// One line of the table.
struct Row {
    way: &'static str,
    sum: u128,
    median: Duration,
}

/// One way to compute the sum, ready to run.
type Way<'a> = &'a dyn Fn() -> Result<u128, SumError>;

/// Times each way (median of a few runs). The threaded ways go first so that a bad thread
/// count fails at once, before the slow single-thread runs.
fn measure_all(data: &Arc<[u64]>, threads: usize) -> Result<Vec<Row>, SumError> {
    const RUNS: usize = 5;
    let ways: [(&'static str, Way<'_>); 4] = [
        ("scoped chunks", &|| sum_scoped(data, threads)),
        ("arc + mutex", &|| sum_mutex(data, threads)),
        ("mpsc channel", &|| sum_channel(data, threads)),
        ("1 thread", &|| Ok(sum_sequential(data))),
    ];
    let mut rows = Vec::new();
    for (way, sum) in ways {
        let mut times = Vec::with_capacity(RUNS);
        let mut result = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            result = sum()?;
            times.push(started.elapsed());
        }
        times.sort();
        rows.push(Row {
            way,
            sum: result,
            median: times[RUNS / 2],
        });
    }
    Ok(rows)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(code) => return code,
    };
    let len = args.len;
    let threads = args
        .threads
        .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
    // Collecting into `Arc<[u64]>` allocates once; `&data` derefs to the `&[u64]` of the
    // scoped way, and the other two clone the `Arc`.
    let data: Arc<[u64]> = (0..len).map(value_at).collect();
    let rows = match measure_all(&data, threads) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("parallel_sum: {e}");
            return ExitCode::from(2);
        }
    };

    let single = rows.last().expect("four ways were measured");
    let (expected, baseline) = (single.sum, single.median.as_secs_f64().max(1e-9));
    println!(
        "{len} u64 values ({} MB), {threads} threads, median of 5 runs",
        len * 8 / 1_000_000
    );
    println!(
        "{:<14} {:>11} {:>10} {:>8}",
        "way", "time", "Melem/s", "speedup"
    );
    for row in &rows {
        let seconds = row.median.as_secs_f64().max(1e-9);
        let verdict = if row.sum == expected {
            ""
        } else {
            "  WRONG SUM"
        };
        println!(
            "{:<14} {:>8.3} ms {:>10.0} {:>7.2}x{verdict}",
            row.way,
            seconds * 1e3,
            len as f64 / seconds / 1e6,
            baseline / seconds,
        );
    }
    println!("sum = {expected}");
    if rows.iter().all(|row| row.sum == expected) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
