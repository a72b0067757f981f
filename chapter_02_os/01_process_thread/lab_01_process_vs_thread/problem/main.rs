//! ## Goal
//! "Threads are cheaper than processes" is something every backend engineer repeats. In this lab
//! you measure it on your own machine, with the real system calls: how long it takes to create a
//! thread, to `fork` a process, and to start a program (`fork` + `exec`); how long one context
//! switch takes between two threads and between two processes; and how much memory 100 idle
//! threads cost against 100 idle processes. Then you watch the same facts from the outside with
//! `strace`, `/proc` and `perf`.
//!
//! ## Requirements
//! 1. `thread_spawn_join(n)`, `fork_wait(n)` and `spawn_true(n)` each run their operation `n` times
//!    and return the median time of one run: an empty `thread::spawn` + `join`; a `libc::fork()`
//!    whose child calls `_exit(0)` at once + `waitpid` (the child is reaped, never left a zombie);
//!    `Command::new("/bin/true")` run to completion. Each run really creates a task (the kernel's
//!    `processes` counter in `/proc/stat` grows by at least `n`). Creating a thread costs less
//!    than running a program. `tasks_created()` returns that counter. Every function of the lab
//!    asked for zero runs (or zero workers) returns an `InvalidInput` error.
//! 2. `ping_pong_threads(n)` and `ping_pong_processes(n)` bounce one byte over two pipes, `n` round
//!    trips, between two threads, then between the caller and a forked child; both sides pinned to
//!    one CPU (`sched_setaffinity`), so each message is a context switch. They return the median
//!    round trip, give the caller its old CPU set back, and reap the child.
//! 3. `idle_threads_memory(n)` returns how much this process's `VmRSS` and private memory grew
//!    while `n` started threads sleep (all joined before returning); `idle_processes_memory(n)`
//!    returns the sum of `VmRSS` and private memory (`Private_Clean + Private_Dirty` from
//!    `/proc/<pid>/smaps_rollup`) over `n` started, sleeping children (all killed and reaped before
//!    returning). The processes' summed RSS is larger than the threads'.
//! 4. The program runs every measurement and prints a table, one line each (options `--repeats N`,
//!    default 200; `--round-trips N`, default 20000; `--idle N`, default 100). Under
//!    `strace -f -c` every thread, fork and program it starts shows up as a `clone`/`clone3` call.
//! 5. A bad argument (unknown option, missing or non-numeric value, 0) prints one line on stderr,
//!    with the usage, and exits with code 2. `--help` prints the usage on stdout and exits 0.
//! 6. `nice_contest(nice, duration)` runs two busy threads pinned to one CPU for `duration`, the
//!    second one at `nice` more (it renices itself: nice is per thread on Linux; the caller's nice
//!    does not change), and returns the time each spent on the CPU and waiting in the run queue,
//!    read from `/proc/thread-self/schedstat`. The niced thread gets a smaller share of the CPU and
//!    waits longer. A `nice` outside 1..=19 or a zero duration is an `InvalidInput` error.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `thread_spawn_join(n)`, `fork_wait(n)` and `spawn_true(n)` each run their
//!   operation `n` times and return the median time of one run: an empty `thread::spawn` + `join`;
//!   a `libc::fork()` whose child calls `_exit(0)` at once + `waitpid` (the child is reaped, never
//!   left a zombie); `Command::new("/bin/true")` run to completion
//! - [ ] Requirement 2: `ping_pong_threads(n)` and `ping_pong_processes(n)` bounce one byte over
//!   two pipes, `n` round trips, between two threads, then between the caller and a forked child;
//!   both sides pinned to one CPU (`sched_setaffinity`), so each message is a context switch
//! - [ ] Requirement 3: `idle_threads_memory(n)` returns how much this process's `VmRSS` and
//!   private memory grew while `n` started threads sleep (all joined before returning);
//!   `idle_processes_memory(n)` returns the sum of `VmRSS` and private memory (`Private_Clean +
//!   Private_Dirty` from `/proc/<pid>/smaps_rollup`) over `n` started, sleeping children (all
//!   killed and reaped before returning)
//! - [ ] Requirement 4: The program runs every measurement and prints a table, one line each
//!   (options `--repeats N`, default 200; `--round-trips N`, default 20000; `--idle N`, default
//!   100)
//! - [ ] Requirement 5: A bad argument (unknown option, missing or non-numeric value, 0) prints one
//!   line on stderr, with the usage, and exits with code 2
//! - [ ] Requirement 6: `nice_contest(nice, duration)` runs two busy threads pinned to one CPU for
//!   `duration`, the second one at `nice` more (it renices itself: nice is per thread on Linux; the
//!   caller's nice does not change), and returns the time each spent on the CPU and waiting in the
//!   run queue, read from `/proc/thread-self/schedstat`
//!
//! ## Notes
//!
//! Process vs thread: what the kernel charges for each.
//!
//! Measure, with real system calls, how much more a process costs than a thread: to create, to
//! switch between, and to keep alive. Read README.md for the requirements; `cargo lab test 2.1`
//! grades this file.
//!
//! Every timing function returns the MEDIAN of its runs, and returns an `InvalidInput` error
//! when asked for zero runs. Remove the `allow` below once every argument is used.
#![allow(unused_variables)]

use std::io;
use std::process::ExitCode;
use std::time::Duration;

/// Memory that a set of idle workers costs, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Resident set size, as `ps` and `top` show it. For threads: how much this process's
    /// `VmRSS` grew. For processes: the sum of the children's `VmRSS`.
    pub rss_kib: u64,
    /// Pages nobody else maps (`Private_Clean + Private_Dirty` in `/proc/<pid>/smaps_rollup`).
    /// For threads: how much this process's private memory grew. For processes: the sum over
    /// the children.
    pub private_kib: u64,
}

/// Median time of one `thread::spawn` of an empty closure followed by `join`.
pub fn thread_spawn_join(repeats: usize) -> io::Result<Duration> {
    todo!("time `repeats` spawn + join pairs and return the median")
}

/// Median time of one `libc::fork()` whose child calls `libc::_exit(0)` at once, followed by
/// `libc::waitpid` in the parent.
pub fn fork_wait(repeats: usize) -> io::Result<Duration> {
    todo!("time `repeats` fork + waitpid pairs and return the median")
}

/// Median time of running `/bin/true` with `std::process::Command` and waiting for it.
pub fn spawn_true(repeats: usize) -> io::Result<Duration> {
    todo!("time `repeats` runs of /bin/true and return the median")
}

/// Median round trip of one byte sent to an echo thread over a pipe (`std::io::pipe`) and back
/// over a second pipe. Pin both threads to one CPU (`libc::sched_setaffinity`; a new thread
/// inherits its creator's CPU set) so that a round trip is two context switches, and give the
/// caller its old CPU set back afterwards.
pub fn ping_pong_threads(round_trips: usize) -> io::Result<Duration> {
    todo!("bounce a byte between two threads, one CPU, and return the median round trip")
}

/// The same ping-pong, with the echo side in a forked child process (which then `_exit`s and
/// is reaped).
pub fn ping_pong_processes(round_trips: usize) -> io::Result<Duration> {
    todo!("bounce a byte between two processes, one CPU, and return the median round trip")
}

/// What `n` threads, all started and sleeping (in a `std::sync::Barrier`, say), add to this
/// process's memory. Every thread is joined before returning.
pub fn idle_threads_memory(n: usize) -> io::Result<MemoryUse> {
    todo!("read /proc/self/status and smaps_rollup before and while n threads sleep")
}

/// The memory of `n` forked children, all started and sleeping (`libc::pause()`), summed over
/// the children. Every child is killed and reaped before returning.
pub fn idle_processes_memory(n: usize) -> io::Result<MemoryUse> {
    todo!("fork n sleeping children, sum their /proc/<pid>/status and smaps_rollup, reap them")
}

/// What the scheduler gave one thread, from its `/proc/thread-self/schedstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedTime {
    /// Time spent running on a CPU (the first number of schedstat, in nanoseconds).
    pub on_cpu: Duration,
    /// Time spent runnable but waiting in the run queue for a CPU (the second number).
    pub waiting: Duration,
}

/// Two busy threads share one CPU (pinned, as for the ping-pong) for `duration`; the second one
/// raises its own nice value by `nice` (1 to 19) with `libc::setpriority(libc::PRIO_PROCESS,
/// its_own_tid, ..)`. Each returns the growth of its `/proc/thread-self/schedstat` while it was
/// busy. The first thread's result comes first. A `nice` out of 1..=19 or a zero duration is an
/// `InvalidInput` error.
pub fn nice_contest(nice: i32, duration: Duration) -> io::Result<[SchedTime; 2]> {
    todo!("pin, spawn two busy threads (the second renices itself), read their schedstat")
}

/// Number of tasks created on the whole machine since boot: the `processes` line of
/// `/proc/stat`.
pub fn tasks_created() -> io::Result<u64> {
    todo!("parse the `processes` line of /proc/stat")
}

fn main() -> ExitCode {
    todo!("parse --repeats N --round-trips N --idle N, run every measurement, print a table")
}
