//! Grader for Process vs Thread: the measuring functions, called directly.
//!
//! Timings are never compared with fixed numbers: each test checks a robust ordering, that the
//! work was really done (the kernel's own counters of created tasks and context switches), and
//! that a returned median fits in the time the call took.

use std::io;
use std::time::{Duration, Instant};

use rand::RngExt;

labkit::lab_mod!(lab);

/// Tasks (processes and threads) created on the machine since boot, read independently of the
/// lab's own `tasks_created`.
fn tasks_created() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    stat.lines()
        .find_map(|line| line.strip_prefix("processes ")?.trim().parse().ok())
        .expect("processes line in /proc/stat")
}

/// Voluntary plus involuntary context switches of `who` (RUSAGE_SELF or RUSAGE_CHILDREN).
fn context_switches(who: libc::c_int) -> u64 {
    // SAFETY: all zeroes is a valid rusage; getrusage fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes only to `usage`, a live local.
    let rc = unsafe { libc::getrusage(who, &mut usage) };
    assert!(rc == 0, "getrusage failed: {}", io::Error::last_os_error());
    (usage.ru_nvcsw + usage.ru_nivcsw) as u64
}

/// Runs a measurement, checks it succeeded, and returns it with the wall time it took and the
/// number of tasks the machine created meanwhile (a lower bound for what the call created).
fn observe<T>(what: &str, f: impl FnOnce() -> io::Result<T>) -> (T, Duration, u64) {
    let tasks = tasks_created();
    let start = Instant::now();
    let value =
        f().unwrap_or_else(|e| panic!("{what} returned an error, wanted a measurement: {e}"));
    (value, start.elapsed(), tasks_created() - tasks)
}

/// A median of `runs` runs cannot be more than twice the mean: half the runs took at least as
/// long as the median.
fn assert_is_a_median(what: &str, median: Duration, runs: usize, wall: Duration) {
    assert!(
        median > Duration::ZERO,
        "{what}: the median is {median:?}, wanted more than zero"
    );
    assert!(
        median * runs as u32 / 2 <= wall,
        "{what}: a median of {median:?} over {runs} runs cannot fit in the {wall:?} the call took: is it the median of one run each?"
    );
}

fn repeats() -> usize {
    rand::rng().random_range(20..60)
}

fn cpu_set() -> Vec<usize> {
    // SAFETY: all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: the kernel writes at most `size` bytes into `set`.
    let rc = unsafe { libc::sched_getaffinity(0, size, &mut set) };
    assert!(
        rc == 0,
        "sched_getaffinity failed: {}",
        io::Error::last_os_error()
    );
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: reads one bit of a set we own, below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

// Requirement 1: creation costs, each a median over real runs.
#[test]
fn thread_spawn_join_creates_one_task_per_run() {
    let n = repeats();
    let (median, wall, tasks) = observe("thread_spawn_join", || lab::thread_spawn_join(n));
    assert!(
        tasks >= n as u64,
        "requirement 1: thread_spawn_join({n}) created {tasks} tasks, wanted at least {n}"
    );
    assert_is_a_median("requirement 1: thread_spawn_join", median, n, wall);
}

#[test]
fn fork_wait_creates_one_process_per_run() {
    let n = repeats();
    let (median, wall, tasks) = observe("fork_wait", || lab::fork_wait(n));
    assert!(
        tasks >= n as u64,
        "requirement 1: fork_wait({n}) created {tasks} tasks, wanted at least {n}"
    );
    assert_is_a_median("requirement 1: fork_wait", median, n, wall);
}

#[test]
fn spawn_true_runs_the_program_once_per_run() {
    let n = repeats();
    let (median, wall, tasks) = observe("spawn_true", || lab::spawn_true(n));
    assert!(
        tasks >= n as u64,
        "requirement 1: spawn_true({n}) created {tasks} tasks, wanted at least {n}"
    );
    assert_is_a_median("requirement 1: spawn_true", median, n, wall);
}

#[test]
fn creating_a_thread_is_cheaper_than_fork_and_exec() {
    let thread = lab::thread_spawn_join(50)
        .unwrap_or_else(|e| panic!("requirement 1: thread_spawn_join(50) failed: {e}"));
    let program =
        lab::spawn_true(50).unwrap_or_else(|e| panic!("requirement 1: spawn_true(50) failed: {e}"));
    assert!(
        thread > Duration::ZERO && program > Duration::ZERO,
        "requirement 1: medians of {thread:?} (thread) and {program:?} (/bin/true), wanted both above zero"
    );
    assert!(
        thread < program,
        "requirement 1: thread spawn+join took {thread:?}, running /bin/true {program:?}; wanted the thread cheaper"
    );
}

#[test]
fn tasks_created_reads_the_kernel_counter() {
    let before = tasks_created();
    let theirs = lab::tasks_created()
        .unwrap_or_else(|e| panic!("requirement 1: tasks_created() failed: {e}"));
    std::thread::spawn(|| {}).join().unwrap();
    let after = tasks_created();
    assert!(
        (before..after).contains(&theirs),
        "requirement 1: tasks_created() = {theirs}, wanted a value in [{before}, {after}) (/proc/stat before and after)"
    );
}

#[test]
fn zero_runs_is_an_invalid_input_error() {
    type Call = (&'static str, fn() -> io::Result<()>);
    let calls: [Call; 9] = [
        ("thread_spawn_join(0)", || {
            lab::thread_spawn_join(0).map(drop)
        }),
        ("fork_wait(0)", || lab::fork_wait(0).map(drop)),
        ("spawn_true(0)", || lab::spawn_true(0).map(drop)),
        ("ping_pong_threads(0)", || {
            lab::ping_pong_threads(0).map(drop)
        }),
        ("ping_pong_processes(0)", || {
            lab::ping_pong_processes(0).map(drop)
        }),
        ("idle_threads_memory(0)", || {
            lab::idle_threads_memory(0).map(drop)
        }),
        ("idle_processes_memory(0)", || {
            lab::idle_processes_memory(0).map(drop)
        }),
        ("nice_contest(5, 0 s)", || {
            lab::nice_contest(5, Duration::ZERO).map(drop)
        }),
        ("nice_contest(0, 10 ms)", || {
            lab::nice_contest(0, Duration::from_millis(10)).map(drop)
        }),
    ];
    for (what, call) in calls {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
            Err(e) => panic!(
                "requirement 1: {what} returned an error of kind {:?} ({e}), wanted InvalidInput",
                e.kind()
            ),
            Ok(()) => panic!("requirement 1: {what} returned Ok, wanted an InvalidInput error"),
        }
    }
}

// Requirement 2: context switches, measured by ping-pong over pipes on one CPU.
#[test]
fn ping_pong_between_threads_switches_for_every_message() {
    let n = rand::rng().random_range(2_000..4_000);
    let switches = context_switches(libc::RUSAGE_SELF);
    let (median, wall, _) = observe("ping_pong_threads", || lab::ping_pong_threads(n));
    let switches = context_switches(libc::RUSAGE_SELF) - switches;
    assert!(
        switches >= n as u64,
        "requirement 2: {n} round trips between threads made {switches} context switches, wanted at least {n}"
    );
    assert_is_a_median("requirement 2: ping_pong_threads", median, n, wall);
}

#[test]
fn ping_pong_between_processes_switches_for_every_message() {
    let n = rand::rng().random_range(2_000..4_000);
    let count = || context_switches(libc::RUSAGE_SELF) + context_switches(libc::RUSAGE_CHILDREN);
    let switches = count();
    let (median, wall, tasks) = observe("ping_pong_processes", || lab::ping_pong_processes(n));
    let switches = count() - switches;
    assert!(
        tasks >= 1,
        "requirement 2: ping_pong_processes created {tasks} tasks, wanted a forked child"
    );
    assert!(
        switches >= n as u64,
        "requirement 2: {n} round trips between processes made {switches} context switches, wanted at least {n} (is the child reaped?)"
    );
    assert_is_a_median("requirement 2: ping_pong_processes", median, n, wall);
}

#[test]
fn ping_pong_gives_the_caller_its_cpu_set_back() {
    let before = cpu_set();
    lab::ping_pong_threads(100)
        .unwrap_or_else(|e| panic!("requirement 2: ping_pong_threads(100) failed: {e}"));
    let after = cpu_set();
    assert!(
        after == before,
        "requirement 2: after ping_pong_threads the caller may run on CPUs {after:?}, wanted its old set {before:?}"
    );
    lab::ping_pong_processes(100)
        .unwrap_or_else(|e| panic!("requirement 2: ping_pong_processes(100) failed: {e}"));
    let after = cpu_set();
    assert!(
        after == before,
        "requirement 2: after ping_pong_processes the caller may run on CPUs {after:?}, wanted its old set {before:?}"
    );
}
