//! ## Goal
//! Write `mini_cat <file> [pattern] [-n]`, a small `cat` that can filter like `grep` and number
//! lines like `cat -n`. On the way you meet the everyday tools of a Rust program that talks to the
//! operating system: `Result` and `?`, exit codes, `BufRead` streaming, bytes versus UTF-8, and the
//! `open`/`read`/`write`/`close` system calls your code turns into.
//!
//! ## Requirements
//! 1. `mini_cat <file>` prints the file unchanged, byte for byte (an empty file prints nothing).
//! 2. `mini_cat <file> <pattern>` prints only the lines that contain `pattern` (plain substring,
//!    case-sensitive), in order; no match prints nothing and still exits 0.
//! 3. `-n` (anywhere on the command line) numbers the printed lines like `cat -n`: the number
//!    right-aligned in 6 columns, a tab, the line. Numbers are the lines' numbers in the file,
//!    also when a pattern filters lines out.
//! 4. A line that is not valid UTF-8 does not stop the program: it is printed lossily (invalid
//!    bytes become U+FFFD `�`), and the lines around it are untouched.
//! 5. A file that cannot be read (not found, a directory, permission denied) gives exactly one line
//!    on stderr that names the path, nothing on stdout, exit code 1, and no panic.
//! 6. Bad arguments (none, more than two positional arguments, an unknown option such as `-x`)
//!    print one line on stderr, with the usage, and exit with code 2. `--help` (or `-h`) prints the
//!    usage on stdout and exits 0.
//! 7. The file is streamed: memory stays flat whatever its size (the grader prints a 200 MiB file
//!    and reads the program's peak resident memory, `VmHWM`, from `/proc/<pid>/status`; it must stay
//!    under 32 MiB).
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 1.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `mini_cat <file>` prints the file unchanged, byte for byte (an empty file
//!   prints nothing)
//! - [ ] Requirement 2: `mini_cat <file> <pattern>` prints only the lines that contain `pattern`
//!   (plain substring, case-sensitive), in order; no match prints nothing and still exits 0
//! - [ ] Requirement 3: `-n` (anywhere on the command line) numbers the printed lines like `cat
//!   -n`: the number right-aligned in 6 columns, a tab, the line
//! - [ ] Requirement 4: A line that is not valid UTF-8 does not stop the program: it is printed
//!   lossily (invalid bytes become U+FFFD `�`), and the lines around it are untouched
//! - [ ] Requirement 5: A file that cannot be read (not found, a directory, permission denied)
//!   gives exactly one line on stderr that names the path, nothing on stdout, exit code 1, and no
//!   panic
//! - [ ] Requirement 6: Bad arguments (none, more than two positional arguments, an unknown option
//!   such as `-x`) print one line on stderr, with the usage, and exit with code 2
//! - [ ] Requirement 7: The file is streamed: memory stays flat whatever its size (the grader
//!   prints a 200 MiB file and reads the program's peak resident memory, `VmHWM`, from
//!   `/proc/<pid>/status`; it must stay under 32 MiB)
//!
//! ## Notes
//!
//! Mini Cat/Grep: `mini_cat <file> [pattern] [-n]`.
//!
//! Print a file, keep only the lines that contain `pattern`, number them with `-n`.
//! Read README.md for the requirements; `cargo lab test 1.1` grades this file.
//!
//! The signatures below are a suggestion: the grader only runs the binary. Remove the
//! `allow` below once every argument is used.
#![allow(unused_variables)]

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

pub const USAGE: &str = "usage: mini_cat <file> [pattern] [-n]";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub pattern: Option<String>,
    pub number: bool,
}

/// Why the program stopped early.
#[derive(Debug)]
pub enum CatError {
    /// The command line is wrong: exit code 2, with the usage, on one line of stderr.
    Usage(String),
    /// `--help` or `-h`: not a failure; the usage goes to stdout and the exit code is 0.
    Help,
    /// The input could not be opened or read: exit code 1, naming the file.
    Input { path: PathBuf, source: io::Error },
    /// Standard output failed.
    Output(io::Error),
}

/// Parses the arguments after the program name (`-n` may stand anywhere; `--help` or `-h` is
/// `Err(CatError::Help)`).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Config, CatError> {
    todo!("turn the arguments into a Config, or a CatError::Usage")
}

/// Copies the selected lines of `config.path` to `out`, one line at a time.
pub fn run(config: &Config, out: &mut impl Write) -> Result<(), CatError> {
    todo!("open the file, stream it line by line with BufRead, filter, number, write")
}

fn main() -> ExitCode {
    todo!("parse the arguments, run, and turn each error into a message on stderr and an exit code")
}
