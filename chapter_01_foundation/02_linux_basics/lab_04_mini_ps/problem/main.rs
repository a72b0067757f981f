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
    /// The command line is wrong: exit code 2, with the usage.
    Usage(String),
    /// `--pid N` names no process: exit code 1.
    NoSuchProcess(u32),
    /// A `/proc` file could not be read or parsed: exit code 1.
    Proc { path: PathBuf, why: String },
}

impl fmt::Display for PsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PsError::Usage(why) => write!(f, "{why}\n{USAGE}"),
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
