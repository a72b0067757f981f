//! Grader for Process vs Thread: memory of idle workers, and no child left behind.
//!
//! This file is its own test process, and its tests take a lock so that they run one at a time:
//! the numbers read from /proc are then about this lab's threads and children only.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rand::RngExt;

use labkit::wait;

labkit::lab_mod!(lab);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tasks_created() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    stat.lines()
        .find_map(|line| line.strip_prefix("processes ")?.trim().parse().ok())
        .expect("processes line in /proc/stat")
}

/// Pids of the processes whose parent is this process (zombies included).
fn children() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // it ended while we looked
        };
        // Fields after the command name (which may hold spaces): state, ppid, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        if rest.split(' ').nth(1).and_then(|p| p.parse().ok()) == Some(me) {
            found.push(pid);
        }
    }
    found
}

/// Ids of this process's threads (the entries of /proc/self/task), except the test harness's
/// thread for the other test of this file: libtest may start it while this test runs, and it
/// then waits on the lock until this test ends. It carries its test's name, cut by the kernel
/// to 15 bytes.
fn thread_ids() -> HashSet<u32> {
    let other_test = "fork_wait_reaps_every_child";
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|tid: &u32| {
            let comm =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
            let comm = comm.trim_end();
            comm.is_empty() || !other_test.starts_with(comm)
        })
        .collect()
}

// Requirement 3: idle processes cost more resident memory than idle threads.
#[test]
fn idle_processes_cost_more_rss_than_idle_threads() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let n = rand::rng().random_range(20..50);
    let threads_before = thread_ids();
    let tasks = tasks_created();

    let by_threads = lab::idle_threads_memory(n)
        .unwrap_or_else(|e| panic!("requirement 3: idle_threads_memory({n}) failed: {e}"));
    let created = tasks_created() - tasks;
    assert!(
        created >= n as u64,
        "requirement 3: idle_threads_memory({n}) created {created} tasks, wanted at least {n}"
    );
    assert!(
        by_threads.rss_kib > 0,
        "requirement 3: {n} started threads grew the RSS by {} KiB, wanted more than 0 (their stacks)",
        by_threads.rss_kib
    );
    assert!(
        wait::until(Duration::from_secs(5), || thread_ids()
            .difference(&threads_before)
            .count()
            == 0),
        "requirement 3: {} idle threads were still alive 5 s after idle_threads_memory returned, wanted all joined",
        thread_ids().difference(&threads_before).count()
    );

    let tasks = tasks_created();
    let by_processes = lab::idle_processes_memory(n)
        .unwrap_or_else(|e| panic!("requirement 3: idle_processes_memory({n}) failed: {e}"));
    let created = tasks_created() - tasks;
    assert!(
        created >= n as u64,
        "requirement 3: idle_processes_memory({n}) created {created} tasks, wanted at least {n}"
    );
    let left = children();
    assert!(
        left.is_empty(),
        "requirement 3: {} children (zombies?) were left after idle_processes_memory returned, wanted all killed and reaped: {:?}",
        left.len(),
        left.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        by_processes.private_kib > 0,
        "requirement 3: {n} idle children hold {} KiB of private memory in all, wanted more than 0",
        by_processes.private_kib
    );
    assert!(
        by_processes.rss_kib > by_threads.rss_kib,
        "requirement 3: {n} processes: RSS {} KiB (sum); {n} threads: +{} KiB; wanted the processes' RSS larger",
        by_processes.rss_kib,
        by_threads.rss_kib
    );
    assert!(
        by_processes.rss_kib >= by_processes.private_kib,
        "requirement 3: the children's RSS {} KiB is below their private memory {} KiB, wanted private pages counted in the RSS",
        by_processes.rss_kib,
        by_processes.private_kib
    );
}

// Requirement 1: a forked child is reaped, not left as a zombie.
#[test]
fn fork_wait_reaps_every_child() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tasks = tasks_created();
    lab::fork_wait(30).unwrap_or_else(|e| panic!("requirement 1: fork_wait(30) failed: {e}"));
    lab::ping_pong_processes(50)
        .unwrap_or_else(|e| panic!("requirement 2: ping_pong_processes(50) failed: {e}"));
    let created = tasks_created() - tasks;
    assert!(
        created >= 31,
        "requirement 1: fork_wait(30) and one ping-pong created {created} tasks, wanted at least 31"
    );
    let left = children();
    assert!(
        left.is_empty(),
        "requirement 1: {} children (zombies?) were left after fork_wait(30) and ping_pong_processes(50), wanted none: {:?}",
        left.len(),
        left.iter().take(5).collect::<Vec<_>>()
    );
}
