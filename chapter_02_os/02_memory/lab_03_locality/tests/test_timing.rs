//! Grader for Locality: the orders of magnitude that caches make. Ratios only, never absolute
//! times; the tests take turns so that they do not compete for the memory bus.

use std::sync::Mutex;
use std::time::{Duration, Instant};

labkit::lab_mod!(lab);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Median time of 5 runs of `f`, which must return `expected` each time.
fn median_time(expected: u64, mut f: impl FnMut() -> u64) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let result = std::hint::black_box(f());
            let elapsed = start.elapsed();
            assert!(
                result == expected,
                "the timed run returned {result}; wanted {expected}"
            );
            elapsed
        })
        .collect();
    times.sort();
    times[2]
}

// Requirement 1: on a matrix bigger than the caches, row-major clearly beats column-major.
#[test]
fn row_major_beats_column_major_on_a_large_matrix() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = 2048; // 32 MiB of u64, and a 16 KiB stride between the reads of a column
    let m: Vec<u64> = (0..(n * n) as u64).collect();
    let expected = m.iter().fold(0u64, |a, &b| a.wrapping_add(b));
    let row = median_time(expected, || lab::sum_row_major(&m, n));
    let column = median_time(expected, || lab::sum_column_major(&m, n));
    let ratio = column.as_secs_f64() / row.as_secs_f64();
    assert!(
        ratio >= 2.0,
        "requirement 1: on a 2048 x 2048 matrix column-major took {column:?} and row-major \
         {row:?}, {ratio:.1}x; wanted column-major at least 2x slower (does it walk down the \
         columns, m[row * n + col] with row in the inner loop?)"
    );
}

// Requirement 2: a chase that does not fit in the caches is much slower per hop.
#[test]
fn a_chase_through_64_mib_is_much_slower_than_through_16_kib() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const STEPS: usize = 1 << 19;
    let time = |bytes: usize| {
        let lines = lab::build_chase(bytes / 64);
        // The oracle for where `STEPS` hops end, computed before timing.
        let mut at = 0;
        for _ in 0..STEPS {
            at = lines[at].next;
        }
        lab::chase(&lines, lines.len()); // warm-up lap
        median_time(at as u64, || lab::chase(&lines, STEPS) as u64)
    };
    let small = time(16 << 10);
    let large = time(64 << 20);
    let ratio = large.as_secs_f64() / small.as_secs_f64();
    assert!(
        ratio >= 3.0,
        "requirement 2: {STEPS} hops took {large:?} in 64 MiB and {small:?} in 16 KiB, \
         {ratio:.1}x; wanted at least 3x slower in 64 MiB (is the chase in a random order?)"
    );
}
