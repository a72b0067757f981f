//! Parallel Sum: add up a large `&[u64]` with N threads, three ways, and time them.
//!
//! The three ways are the three everyday tools for sharing work between threads in Rust:
//!
//! - **Scoped threads** (`std::thread::scope`): the threads may *borrow* the slice, because the
//!   scope guarantees they end before the slice can. Each thread returns its partial sum through
//!   its `JoinHandle`; nothing is shared, nothing is locked.
//! - **`Arc` + `Mutex`**: `std::thread::spawn` wants `'static` data, so the slice lives in an
//!   `Arc<[u64]>` (one allocation, shared by reference count) and the threads add their partial
//!   sums into an `Arc<Mutex<u128>>`. Each thread locks once, not once per element.
//! - **A channel** (`std::sync::mpsc`): each thread sends its partial sum; the caller adds what
//!   it receives until every sender is gone.
//!
//! Sums are `u128`: a `u64` sum overflows after two elements near `u64::MAX`, and a `u128`
//! cannot overflow for any slice that fits in memory (2^64 elements of at most 2^64 - 1 each is
//! below 2^128). So the functions have one failure only: zero threads.

use std::fmt;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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
    data.iter().map(|&x| u128::from(x)).sum()
}

/// The length of each thread's chunk so that at most `threads` chunks cover `len` elements.
///
/// Rounding up (`div_ceil`) gives at most `threads` chunks; `max(1)` keeps the length positive
/// for an empty slice, because `chunks(0)` panics. With more threads than elements every chunk
/// holds one element and only `len` threads start: asking for 64 threads to add 3 numbers is
/// fine, it is just wasteful.
fn chunk_len(len: usize, threads: usize) -> Result<usize, SumError> {
    if threads == 0 {
        return Err(SumError::ZeroThreads);
    }
    Ok(len.div_ceil(threads).max(1))
}

/// Scoped threads, one per chunk, each returning its partial sum through its `JoinHandle`.
pub fn sum_scoped(data: &[u64], threads: usize) -> Result<u128, SumError> {
    let chunk = chunk_len(data.len(), threads)?;
    let total = thread::scope(|scope| {
        // Collect the handles first: a lazy `map(spawn).map(join)` chain would join each thread
        // right after spawning it, and the "parallel" sum would run one chunk at a time.
        let workers: Vec<_> = data
            .chunks(chunk)
            .map(|part| scope.spawn(move || sum_sequential(part)))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("adding u128s cannot panic"))
            .sum()
    });
    Ok(total)
}

/// Plain `thread::spawn` threads sharing the data through an `Arc` and adding their partial
/// sums into one `Arc<Mutex<u128>>`.
pub fn sum_mutex(data: &Arc<[u64]>, threads: usize) -> Result<u128, SumError> {
    let chunk = chunk_len(data.len(), threads)?;
    let total = Arc::new(Mutex::new(0u128));
    let workers: Vec<_> = (0..data.len())
        .step_by(chunk)
        .map(|start| {
            // Each thread owns a clone of the `Arc` (a reference-count increment, not a copy of
            // the data): `thread::spawn` may outlive this function, so it cannot borrow.
            let data = Arc::clone(data);
            let total = Arc::clone(&total);
            thread::spawn(move || {
                let end = (start + chunk).min(data.len());
                let partial = sum_sequential(&data[start..end]);
                // Lock once per thread. Locking per element would turn the threads into a queue
                // at the mutex, slower than one thread alone.
                *total.lock().expect("no thread panics holding the lock") += partial;
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("adding u128s cannot panic");
    }
    let total = *total.lock().expect("no thread panics holding the lock");
    Ok(total)
}

/// Plain `thread::spawn` threads sending their partial sums through an `mpsc` channel.
pub fn sum_channel(data: &Arc<[u64]>, threads: usize) -> Result<u128, SumError> {
    let chunk = chunk_len(data.len(), threads)?;
    let (tx, rx) = mpsc::channel();
    for start in (0..data.len()).step_by(chunk) {
        let data = Arc::clone(data);
        let tx = tx.clone();
        thread::spawn(move || {
            let end = (start + chunk).min(data.len());
            // The receiver waits below until every sender is gone, so it is still there.
            tx.send(sum_sequential(&data[start..end]))
                .expect("the receiver outlives the senders");
        });
    }
    // `rx.iter()` ends when the last `Sender` is dropped. The workers drop their clones when they
    // finish; this one is ours, and without this line the loop below would wait forever.
    drop(tx);
    Ok(rx.iter().sum())
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
