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

/// Number of tasks created on the whole machine since boot: the `processes` line of
/// `/proc/stat`.
pub fn tasks_created() -> io::Result<u64> {
    todo!("parse the `processes` line of /proc/stat")
}

fn main() -> ExitCode {
    todo!("parse --repeats N --round-trips N --idle N, run every measurement, print a table")
}
