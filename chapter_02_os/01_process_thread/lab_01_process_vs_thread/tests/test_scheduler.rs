//! Grader for Process vs Thread: what the scheduler is told, observed in `/proc` while the
//! measurement runs.
//!
//! A ping-pong only measures context switches if both sides share one CPU. The tests run each
//! ping-pong on a thread with a name of their own and watch, from outside, the tasks that carry
//! that name: the caller, and the echo thread or forked child it creates (a new thread or a
//! forked process starts with the name of the thread that created it). For each one, `/proc`
//! says which CPUs it may run on (`Cpus_allowed_list` in `status`) and its nice value (field 19
//! of `stat`).
//!
//! This file is its own test process, and its tests take a lock so that they run one at a time.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rand::RngExt;

labkit::lab_mod!(lab);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A ping-pong long enough to be watched (a few hundred milliseconds), short enough for a test.
const ROUND_TRIPS: usize = 40_000;
/// How long a measurement may take before the test calls it hung.
const DEADLINE: Duration = Duration::from_secs(60);

/// One task seen in `/proc`: its id, the CPUs it may run on, and its nice value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Task {
    id: u32,
    cpus: String,
    nice: Option<i32>,
}

/// The nice value in a `stat` file: field 19, counted from the pid (the command name, field 2,
/// may hold spaces, so count after its closing parenthesis).
fn nice_in(stat_path: &str) -> Option<i32> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19 - 3)?
        .parse()
        .ok()
}

fn status_field(path: &str, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(path).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        Some(value.trim().to_string())
    })
}

fn comm(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|c| c.trim_end().to_string())
        .unwrap_or_default()
}

/// The threads of this process named `name`.
fn threads_named(name: &str) -> Vec<Task> {
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|tid| comm(&format!("/proc/self/task/{tid}/comm")) == name)
        .filter_map(|tid| {
            let cpus = status_field(
                &format!("/proc/self/task/{tid}/status"),
                "Cpus_allowed_list",
            )?;
            let nice = nice_in(&format!("/proc/self/task/{tid}/stat"));
            Some(Task {
                id: tid,
                cpus,
                nice,
            })
        })
        .collect()
}

/// The child processes of this process named `name` (a forked child keeps the name of the
/// thread that forked it).
fn children_named(name: &str) -> Vec<Task> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            status_field(&format!("/proc/{pid}/status"), "PPid").as_deref() == Some(me.as_str())
                && comm(&format!("/proc/{pid}/comm")) == name
        })
        .filter_map(|pid| {
            let cpus = status_field(&format!("/proc/{pid}/status"), "Cpus_allowed_list")?;
            let nice = nice_in(&format!("/proc/{pid}/stat"));
            Some(Task {
                id: pid,
                cpus,
                nice,
            })
        })
        .collect()
}

/// Runs `measure` on a thread named `name` and takes snapshots of the tasks named `name`
/// (threads of this process and its children) until it returns. Returns what `measure`
/// returned and the snapshots that saw at least two such tasks.
fn watch<T: Send + 'static>(
    name: &'static str,
    measure: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> (T, Vec<Vec<Task>>) {
    let (tx, rx) = mpsc::channel();
    let worker = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(measure());
        })
        .expect("spawn the measuring thread");
    let started = Instant::now();
    let mut snapshots = Vec::new();
    let value = loop {
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(result) => {
                break result.unwrap_or_else(|e| panic!("{name}: the measurement failed: {e}"));
            }
            Err(RecvTimeoutError::Timeout) => {
                let mut tasks = threads_named(name);
                tasks.extend(children_named(name));
                if tasks.len() >= 2 {
                    snapshots.push(tasks);
                }
                assert!(
                    started.elapsed() < DEADLINE,
                    "{name}: the measurement did not return within {DEADLINE:?}"
                );
            }
            Err(RecvTimeoutError::Disconnected) => match worker.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => unreachable!("the worker sends before it ends"),
            },
        }
    };
    (value, snapshots)
}

/// Requires a snapshot in which both sides of the ping-pong were pinned to the same single CPU.
fn assert_both_sides_on_one_cpu(what: &str, snapshots: &[Vec<Task>]) {
    let single_cpu = |cpus: &str| !cpus.is_empty() && !cpus.contains([',', '-']);
    let pinned = snapshots.iter().any(|tasks| {
        tasks.iter().all(|t| single_cpu(&t.cpus)) && tasks.iter().all(|t| t.cpus == tasks[0].cpus)
    });
    // What was seen, summarised: each allowed-CPU list and how many snapshots showed it.
    let mut seen: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for tasks in snapshots {
        *seen
            .entry(tasks.iter().map(|t| t.cpus.clone()).collect())
            .or_default() += 1;
    }
    assert!(
        !snapshots.is_empty(),
        "requirement 2: {what} never showed two tasks at once (caller and echo side) in /proc \
         during {ROUND_TRIPS} round trips"
    );
    assert!(
        pinned,
        "requirement 2: during {what}, the two sides were allowed the CPUs {seen:?} \
         (allowed-CPU lists per snapshot: count); wanted both pinned to the same single CPU \
         (sched_setaffinity before creating the other side)"
    );
}

fn unique_name(prefix: &str) -> &'static str {
    let name = format!("{prefix}{}", rand::rng().random_range(1000..10000));
    Box::leak(name.into_boxed_str())
}

// Requirement 2: both threads of the ping-pong run on one CPU.
#[test]
fn ping_pong_between_threads_runs_both_sides_on_one_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = unique_name("ppthreads");
    let (_, snapshots) = watch(name, || lab::ping_pong_threads(ROUND_TRIPS));
    assert_both_sides_on_one_cpu("ping_pong_threads", &snapshots);
}

// Requirement 2: the caller and its forked child run on one CPU.
#[test]
fn ping_pong_between_processes_runs_both_sides_on_one_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = unique_name("ppprocs");
    let (_, snapshots) = watch(name, || lab::ping_pong_processes(ROUND_TRIPS));
    assert_both_sides_on_one_cpu("ping_pong_processes", &snapshots);
}

/// The nice value of the calling thread.
fn own_nice() -> i32 {
    nice_in("/proc/thread-self/stat").expect("the nice value in /proc/thread-self/stat")
}

// Requirement 6: a thread that renices itself gets a smaller share of a shared CPU and waits
// longer in the run queue; the caller's nice does not change.
#[test]
fn nice_contest_gives_the_reniced_thread_less_cpu() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let nice = rand::rng().random_range(5..=10);
    let name = unique_name("nicecontest");
    let ((result, base, after), snapshots) = watch(name, move || {
        let base = own_nice();
        let result = lab::nice_contest(nice, Duration::from_millis(400))?;
        Ok((result, base, own_nice()))
    });
    let want = (base + nice).min(19);

    // While it ran: one thread at the raised nice value, every thread on the same single CPU.
    let single_cpu = |cpus: &str| !cpus.is_empty() && !cpus.contains([',', '-']);
    let seen_niced = snapshots
        .iter()
        .any(|tasks| tasks.iter().any(|t| t.nice == Some(want)));
    let seen_pinned = snapshots.iter().any(|tasks| {
        tasks.len() >= 3
            && tasks
                .iter()
                .all(|t| single_cpu(&t.cpus) && t.cpus == tasks[0].cpus)
    });
    let mut seen: BTreeMap<Vec<(String, Option<i32>)>, usize> = BTreeMap::new();
    for tasks in &snapshots {
        *seen
            .entry(tasks.iter().map(|t| (t.cpus.clone(), t.nice)).collect())
            .or_default() += 1;
    }
    assert!(
        seen_niced,
        "requirement 6: while nice_contest({nice}) ran, no thread of it had nice {want}; its \
         threads had (CPUs, nice) {seen:?} (per snapshot: count). The busy thread renices \
         itself: setpriority(PRIO_PROCESS, its own tid, ...)"
    );
    assert!(
        seen_pinned,
        "requirement 6: while nice_contest({nice}) ran, its threads had (CPUs, nice) {seen:?} \
         (per snapshot: count); wanted the caller and both busy threads pinned to the same CPU"
    );
    assert!(
        after == base,
        "requirement 6: the caller's nice went from {base} to {after} during \
         nice_contest({nice}); wanted it unchanged: only the second busy thread renices itself"
    );

    // What the scheduler gave them: the weights show in the CPU times.
    let [plain, niced] = result;
    assert!(
        plain.on_cpu > Duration::ZERO && niced.on_cpu > Duration::ZERO,
        "requirement 6: nice_contest({nice}) returned {plain:?} and {niced:?}; wanted time on \
         the CPU for both"
    );
    assert!(
        niced.on_cpu * 3 < plain.on_cpu * 2,
        "requirement 6: on one CPU, the thread at nice +{nice} ran {:?} and the other {:?}; \
         wanted the reniced one below two thirds of the other (its weight is a third or less)",
        niced.on_cpu,
        plain.on_cpu
    );
    assert!(
        niced.waiting > plain.waiting,
        "requirement 6: the thread at nice +{nice} waited {:?} in the run queue, the other {:?}; \
         wanted the reniced one to wait longer",
        niced.waiting,
        plain.waiting
    );
}
