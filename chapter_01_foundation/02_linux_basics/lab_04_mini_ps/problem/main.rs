//! ## Goal
//! Write `mini_ps`, a small `ps` that lists processes by reading `/proc`: PID, parent PID, state,
//! number of threads, resident memory and command line, as a table, for one process (`--pid N`)
//! or as a tree (`--tree`). There is no system call that "lists processes": `ps`, `top` and `htop`
//! all read the same small text files the kernel generates in `/proc` at the moment you read them.
//! You learn their formats, their traps (a command name may contain `)`), and the fact that a
//! snapshot of a running system is never consistent (processes vanish while you read).
//!
//! ## Requirements
//! 1. PID, PPID, state and thread count come from `/proc/<pid>/stat`. The command name in that line
//!    sits between parentheses and may itself contain spaces and parentheses (`42 (a) b (c) S 1 ...`):
//!    parse it at the *last* `)`. The thread count is field 20 (`num_threads`, see `man 5 proc`).
//! 2. RSS is the `VmRSS` line of `/proc/<pid>/status`, in KiB; 0 when there is none (kernel threads
//!    and zombies have no user memory).
//! 3. The command is `/proc/<pid>/cmdline` (arguments ended by NUL bytes) joined with single
//!    spaces; when it is empty (kernel threads, zombies) it is the command name in brackets,
//!    `[kthreadd]`, as `ps` shows it. Control characters (a newline inside an argument of
//!    `sh -c`, a tab) are shown as `?`, so that each process stays on one line.
//! 4. `mini_ps` lists every process of `/proc`, sorted by PID, under the header
//!    `PID PPID S THR RSS_KIB COMMAND`. Each number is right-aligned under its header name and
//!    COMMAND starts at the same column on every line:
//!    ```text
//!    PID  PPID S THR RSS_KIB COMMAND
//!    1     0 S   1   11872 /sbin/init
//!    2     0 S   1       0 [kthreadd]
//!    9098  9097 S   1    4216 -bash
//!    17653  9098 S   1    1828 /tmp/a) b (c 30
//!    ```
//! 5. `mini_ps --pid N` prints the header and the row of process N. A PID that does not exist is
//!    one line on stderr naming it, nothing on stdout, exit code 1.
//! 6. `mini_ps --tree` prints one line `PID COMMAND` per process, indented by two spaces per level
//!    below its parent. Roots are the processes whose parent is not listed (PID 1 and `kthreadd`
//!    have PPID 0); siblings come in PID order; every process appears once.
//!    ```text
//!    1 /sbin/init
//!    9097 sshd: root@pts/0
//!    9098 -bash
//!    17653 /tmp/a) b (c 30
//!    2 [kthreadd]
//!    3 [pool_workqueue_release]
//!    ```
//! 7. Bad arguments (`--pid` without a number, an unknown option) print one line on stderr, with
//!    the usage, and exit with code 2. `--help` (or `-h`) prints the usage on stdout and exits 0.
//! 8. A process that exits while `mini_ps` reads it is skipped, not an error: `read_process` returns
//!    `Ok(None)` when its files are gone (`ENOENT`, or `ESRCH` when it died after the `open`).
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 1.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: PID, PPID, state and thread count come from `/proc/<pid>/stat`
//! - [ ] Requirement 2: RSS is the `VmRSS` line of `/proc/<pid>/status`, in KiB; 0 when there is
//!   none (kernel threads and zombies have no user memory)
//! - [ ] Requirement 3: The command is `/proc/<pid>/cmdline` (arguments ended by NUL bytes) joined
//!   with single spaces; when it is empty (kernel threads, zombies) it is the command name in
//!   brackets, `[kthreadd]`, as `ps` shows it
//! - [ ] Requirement 4: `mini_ps` lists every process of `/proc`, sorted by PID, under the header
//!   `PID PPID S THR RSS_KIB COMMAND`
//! - [ ] Requirement 5: `mini_ps --pid N` prints the header and the row of process N
//! - [ ] Requirement 6: `mini_ps --tree` prints one line `PID COMMAND` per process, indented by two
//!   spaces per level below its parent
//! - [ ] Requirement 7: Bad arguments (`--pid` without a number, an unknown option) print one line
//!   on stderr, with the usage, and exit with code 2
//! - [ ] Requirement 8: A process that exits while `mini_ps` reads it is skipped, not an error:
//!   `read_process` returns `Ok(None)` when its files are gone (`ENOENT`, or `ESRCH` when it died
//!   after the `open`)
//!
//! ## Notes
//!
//! Mini PS: `mini_ps [--pid N] [--tree]`, a small `ps` that reads `/proc`.
//!
//! List every process with its PID, PPID, state, thread count, resident memory and command
//! line, read from `/proc/<pid>/stat`, `/proc/<pid>/status` and `/proc/<pid>/cmdline`.
//! Read README.md for the requirements and the output format; `cargo lab test 1.4` grades this
//! file (the parsing functions directly, the program by running it).
//!
//! Remove the `allow` below once every argument is used.
#![allow(unused_variables)]

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

pub const USAGE: &str = "usage: mini_ps [--pid N] [--tree]";

/// Why the program stopped.
#[derive(Debug)]
pub enum PsError {
    /// The command line is wrong: exit code 2, with the usage, on one line of stderr.
    Usage(String),
    /// `--help` or `-h`: not a failure; the usage goes to stdout and the exit code is 0.
    Help,
    /// `--pid N` names no process: exit code 1.
    NoSuchProcess(u32),
    /// A `/proc` file could not be read or parsed: exit code 1.
    Proc { path: PathBuf, why: String },
}

impl fmt::Display for PsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsError::Usage(why) => write!(f, "{why}; {USAGE}"),
            PsError::Help => write!(f, "{USAGE}"),
            PsError::NoSuchProcess(pid) => write!(f, "no process with pid {pid}"),
            PsError::Proc { path, why } => write!(f, "{}: {why}", path.display()),
        }
    }
}

/// The fields of `/proc/<pid>/stat` that `mini_ps` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// The command name between the parentheses (at most 15 bytes, any characters).
    pub comm: String,
    /// `R` running, `S` sleeping, `D` disk wait, `Z` zombie, `T` stopped, `I` idle...
    pub state: char,
    pub ppid: u32,
    pub threads: u32,
}

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub state: char,
    pub threads: u32,
    pub rss_kib: u64,
    /// The command line, or `[comm]` when it is empty (kernel threads, zombies).
    pub command: String,
}

/// Parses one `/proc/<pid>/stat` line (see `man 5 proc`); `None` when it does not look like
/// one. Careful: the command name between the parentheses may itself contain spaces and
/// parentheses, as in `42 (a) b (c) S 1 ...`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    todo!(
        "pid before the first '(', comm up to the LAST ')', then state, ppid, ..., num_threads (field 20)"
    )
}

/// `VmRSS` of a `/proc/<pid>/status` text in KiB (`VmRSS:     1234 kB`); `None` when there is
/// no such line (kernel threads and zombies have none).
pub fn parse_status_rss_kib(status: &str) -> Option<u64> {
    todo!("find the VmRSS: line and parse its number")
}

/// The arguments of a `/proc/<pid>/cmdline` (each ended by a NUL byte) joined with single
/// spaces; `None` when it is empty. Non-UTF-8 bytes are shown lossily, and control characters
/// (a newline inside an argument, a tab) as `?`, so that one process stays one line.
pub fn parse_cmdline(raw: &[u8]) -> Option<String> {
    todo!("split on NUL, drop the trailing empty piece, join with ' ', control characters to '?'")
}

/// Reads one process from its three `/proc` files. `Ok(None)` when the process does not exist,
/// or stopped existing between two reads (`ENOENT`, or `ESRCH` = 3): that is not an error.
/// The command is the command line, or `[comm]` when the command line is empty.
pub fn read_process(pid: u32) -> Result<Option<Process>, PsError> {
    todo!("read stat, status and cmdline; a vanished process is Ok(None)")
}

fn main() -> ExitCode {
    todo!("parse --pid N / --tree, list /proc sorted by PID, print the table or the tree")
}
