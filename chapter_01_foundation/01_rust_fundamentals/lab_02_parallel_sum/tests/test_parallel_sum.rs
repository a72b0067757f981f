//! Grader for Parallel Sum: the four functions are called directly (white-box), each against a
//! sequential oracle written here, and the binary is run once for its table.
//! Each test is named after the requirement it checks (see README.md).

use std::process::Command;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use labkit::{lab_bin, run};
use rand::RngExt;

labkit::lab_mod!(lab);

use lab::SumError;

/// A sum that does not return within this time is hung (a channel whose last `Sender` is never
/// dropped, a thread that is never joined): the test fails instead of waiting forever.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The three parallel ways, so that every rule is checked on each of them.
#[derive(Debug, Clone, Copy)]
enum Way {
    Scoped,
    Mutex,
    Channel,
}

const WAYS: [Way; 3] = [Way::Scoped, Way::Mutex, Way::Channel];

/// What the learner's code must return: an independent sequential sum.
fn oracle(data: &[u64]) -> u128 {
    data.iter().fold(0u128, |acc, &x| acc + x as u128)
}

/// Runs `f` on its own thread; fails the test if it does not return within [`TIMEOUT`], and
/// passes on its panic (a `todo!()`, an overflow) if it panics.
fn within_timeout<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!(
            "{what} did not return within {TIMEOUT:?}: is a thread never joined, or a Sender never dropped?"
        ),
        Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sends before it ends"),
        },
    }
}

fn sum_with(way: Way, data: Vec<u64>, threads: usize) -> Result<u128, SumError> {
    let what = format!(
        "{way:?} sum of {} elements with {threads} threads",
        data.len()
    );
    within_timeout(what, move || match way {
        Way::Scoped => lab::sum_scoped(&data, threads),
        Way::Mutex => lab::sum_mutex(&Arc::from(data), threads),
        Way::Channel => lab::sum_channel(&Arc::from(data), threads),
    })
}

/// Random values over the whole `u64` range: their sum overflows a `u64` almost at once.
fn random_data(len: usize) -> Vec<u64> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random_range(0..=u64::MAX)).collect()
}

/// Random lengths, mostly small (many uneven splits), sometimes a few hundred thousand.
fn random_len() -> usize {
    let mut rng = rand::rng();
    if rng.random_range(0..10) == 0 {
        rng.random_range(100_000..400_000)
    } else {
        rng.random_range(0..5_000)
    }
}

fn matches_oracle_on_random_inputs(way: Way) {
    let mut rng = rand::rng();
    for _ in 0..40 {
        let data = random_data(random_len());
        let threads = rng.random_range(1..=12);
        let expected = oracle(&data);
        let len = data.len();
        let got = sum_with(way, data, threads);
        assert!(
            got == Ok(expected),
            "requirement 2: {way:?} sum of {len} random u64 with {threads} threads returned {got:?}, wanted Ok({expected})"
        );
    }
}

// Requirement 1: the sequential sum is exact, in u128.
#[test]
fn sequential_sum_matches_the_oracle() {
    for _ in 0..20 {
        let data = random_data(random_len());
        let expected = oracle(&data);
        let len = data.len();
        let got = within_timeout("sum_sequential".into(), move || lab::sum_sequential(&data));
        assert!(
            got == expected,
            "requirement 1: sum_sequential of {len} random u64 returned {got}, wanted {expected}"
        );
    }
}

// Requirement 2: each parallel way returns exactly the sequential sum.
#[test]
fn scoped_threads_match_the_sequential_oracle() {
    matches_oracle_on_random_inputs(Way::Scoped);
}

#[test]
fn arc_mutex_matches_the_sequential_oracle() {
    matches_oracle_on_random_inputs(Way::Mutex);
}

#[test]
fn channel_matches_the_sequential_oracle() {
    matches_oracle_on_random_inputs(Way::Channel);
}

// Requirement 1 and 2: sums far beyond u64::MAX are exact.
#[test]
fn sums_beyond_u64_max_are_exact() {
    let len = rand::rng().random_range(1_000..3_000);
    let expected = len as u128 * u64::MAX as u128;
    let got = lab::sum_sequential(&vec![u64::MAX; len]);
    assert!(
        got == expected,
        "requirement 1: sum_sequential of {len} x u64::MAX returned {got}, wanted {expected}"
    );
    for way in WAYS {
        for threads in [1, 3, 8] {
            let got = sum_with(way, vec![u64::MAX; len], threads);
            assert!(
                got == Ok(expected),
                "requirement 2: {way:?} sum of {len} x u64::MAX with {threads} threads returned {got:?}, wanted Ok({expected})"
            );
        }
    }
}

// Requirement 3: zero threads is an error, not a panic or a hang.
#[test]
fn zero_threads_is_an_error_for_every_way() {
    for way in WAYS {
        for len in [0, 1, random_len()] {
            let got = sum_with(way, random_data(len), 0);
            assert!(
                got == Err(SumError::ZeroThreads),
                "requirement 3: {way:?} sum of {len} elements with 0 threads returned {got:?}, wanted Err(ZeroThreads)"
            );
        }
    }
}

// Requirement 4: more threads than elements works.
#[test]
fn more_threads_than_elements_works() {
    let mut rng = rand::rng();
    for way in WAYS {
        for _ in 0..10 {
            let data = random_data(rng.random_range(1..8));
            let threads = rng.random_range(data.len() + 1..=64);
            let expected = oracle(&data);
            let len = data.len();
            let got = sum_with(way, data, threads);
            assert!(
                got == Ok(expected),
                "requirement 4: {way:?} sum of {len} elements with {threads} threads returned {got:?}, wanted Ok({expected})"
            );
        }
    }
}

// Requirement 5: an empty slice sums to 0 whatever the number of threads.
#[test]
fn empty_input_sums_to_zero() {
    let got = lab::sum_sequential(&[]);
    assert!(
        got == 0,
        "requirement 5: sum_sequential of an empty slice returned {got}, wanted 0"
    );
    for way in WAYS {
        for threads in [1, 2, rand::rng().random_range(3..100)] {
            let got = sum_with(way, Vec::new(), threads);
            assert!(
                got == Ok(0),
                "requirement 5: {way:?} sum of an empty slice with {threads} threads returned {got:?}, wanted Ok(0)"
            );
        }
    }
}

// Requirement 6: the binary prints a table of the four ways and the exact sum.
#[test]
fn binary_prints_the_table_and_the_exact_sum() {
    let len = rand::rng().random_range(50_000..200_000);
    let expected: u128 = (0..len).map(|i| lab::value_at(i) as u128).sum();
    let mut cmd = Command::new(lab_bin!());
    cmd.args(["--len", &len.to_string(), "--threads", "3"]);
    // The sums take milliseconds: a run that lasts longer is hung (see TIMEOUT).
    let out = labkit::process::run_command(cmd, b"", 2 * TIMEOUT);
    let stdout = out.stdout_str();
    assert!(
        out.code() == Some(0),
        "requirement 6: the binary exited with {:?}, wanted 0; stdout:\n{stdout}\nstderr:\n{}",
        out.code(),
        out.stderr_str()
    );
    for way in ["scoped chunks", "arc + mutex", "mpsc channel", "1 thread"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(way)),
            "requirement 6: no row for `{way}` in the table:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains("WRONG"),
        "requirement 6: a way disagrees with the others:\n{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == format!("sum = {expected}")),
        "requirement 6: no line `sum = {expected}` in:\n{stdout}"
    );
}

// Requirement 3, through the binary: --threads 0 is a clear error with exit code 2; so is any
// bad argument, and --help prints the usage.
#[test]
fn binary_rejects_bad_arguments_with_exit_code_2() {
    let out = run(lab_bin!(), &["--len", "1000", "--threads", "0"]);
    let stderr = out.stderr_str();
    assert!(
        out.code() == Some(2) && !stderr.contains("panicked"),
        "requirement 3: --threads 0 exited with {:?}, wanted 2 without a panic; stderr: {stderr:?}",
        out.code()
    );
    assert!(
        stderr.contains("thread"),
        "requirement 3: the message for --threads 0 does not name the threads: {stderr:?}"
    );
    let cases: [&[&str]; 3] = [&["--bogus"], &["--len", "many"], &["--threads"]];
    for args in cases {
        let out = run(lab_bin!(), args);
        let stderr = out.stderr_str();
        assert!(
            out.code() == Some(2) && stderr.trim_end().lines().count() == 1,
            "requirement 6: {args:?} exited with {:?} and {} lines on stderr, wanted exit 2 and one line: {stderr:?}",
            out.code(),
            stderr.trim_end().lines().count()
        );
    }
    let out = run(lab_bin!(), &["--help"]);
    assert!(
        out.code() == Some(0) && out.stdout_str().to_lowercase().contains("usage"),
        "requirement 6: --help exited with {:?}, wanted 0 and the usage on stdout; stdout: {:?}",
        out.code(),
        out.stdout_str()
    );
}
