//! ## Goal
//! Write a small program whose system calls follow a contract, and prove it with `strace`. Every
//! line of Rust you write here turns into a system call you can point at: `File::open` is an
//! `openat`, `read` is a `read`, the end of a scope is a `close`, `sync_all` is an `fsync`. The
//! grader runs your binary under `strace` and checks the sequence, the flags and the counts.
//!
//! ## Requirements
//! 1. `copy <src> <dst>` makes `dst` a byte-identical copy of `src` and exits 0.
//! 2. `src` is opened once, read-only (`O_RDONLY`), *before* `dst` is opened once with `O_WRONLY`,
//!    `O_CREAT`, `O_TRUNC` and mode `0644`.
//! 3. The source is read through one 64 KiB buffer: every `read` asks for 65536 bytes, and a file of
//!    `size` bytes takes exactly `ceil(size / 65536) + 1` reads (the last one returns 0; an empty
//!    file takes one read).
//! 4. Each chunk read is written once: `ceil(size / 65536)` writes to `dst`, adding up to `size`.
//! 5. The source is closed after its last read and before `fsync(dst)`; `fsync(dst)` comes after
//!    the last write, then `close(dst)`. Each happens exactly once, by scope and `drop`, not by
//!    `std::process::exit` (which skips destructors, so no `close` would appear).
//! 6. An existing, longer `dst` is truncated: afterwards it holds exactly the source.
//! 7. Errors are one line on stderr naming the file, and exit code 1: a missing source (and then
//!    nothing is created), a destination in a directory that does not exist.
//! 8. `lines <n>` writes `line 1\n` .. `line <n>\n` to stdout; so does `lines <n> --buffered`.
//!    `--help` prints the usage on stdout (exit 0); a bad command line is one line on stderr,
//!    with exit code 2.
//! 9. Unbuffered, each line is exactly one `write(1, ...)`.
//! 10. Buffered, there are at least 10 times fewer `write` calls than unbuffered.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 1.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `copy <src> <dst>` makes `dst` a byte-identical copy of `src` and exits 0
//! - [ ] Requirement 2: `src` is opened once, read-only (`O_RDONLY`), *before* `dst` is opened once
//!   with `O_WRONLY`, `O_CREAT`, `O_TRUNC` and mode `0644`
//! - [ ] Requirement 3: The source is read through one 64 KiB buffer: every `read` asks for 65536
//!   bytes, and a file of `size` bytes takes exactly `ceil(size / 65536) + 1` reads (the last one
//!   returns 0; an empty file takes one read)
//! - [ ] Requirement 4: Each chunk read is written once: `ceil(size / 65536)` writes to `dst`,
//!   adding up to `size`
//! - [ ] Requirement 5: The source is closed after its last read and before `fsync(dst)`;
//!   `fsync(dst)` comes after the last write, then `close(dst)`
//! - [ ] Requirement 6: An existing, longer `dst` is truncated: afterwards it holds exactly the
//!   source
//! - [ ] Requirement 7: Errors are one line on stderr naming the file, and exit code 1: a missing
//!   source (and then nothing is created), a destination in a directory that does not exist
//! - [ ] Requirement 8: `lines <n>` writes `line 1\n`
//! - [ ] Requirement 9: Unbuffered, each line is exactly one `write(1, ...)`
//! - [ ] Requirement 10: Buffered, there are at least 10 times fewer `write` calls than unbuffered
//!
//! ## Notes
//!
//! strace Lab: a program whose system calls follow a contract, proven with `strace`.
//!
//! - `copy <src> <dst>`: open `src` read-only, create `dst` with mode 0644, copy through one
//!   fixed 64 KiB buffer, close `src`, then fsync and close `dst`.
//! - `lines <n> [--buffered]`: write `line 1` .. `line n` to stdout, one `write` system call per
//!   line, or (buffered) at least ten times fewer.
//!
//! `main` and the argument parsing are written for you: write `copy` and `write_lines`.
//! Read README.md for the exact contract; `cargo lab test 1.3` grades this file by running it
//! under `strace`.
//!
//! Remove the `allow` below once every argument is used.
#![allow(unused_variables)]

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub const USAGE: &str = "usage: strace_lab copy <src> <dst> | strace_lab lines <n> [--buffered]";

/// The size of the one buffer `copy` reads into: `read` is called with exactly this count.
pub const BUF_SIZE: usize = 64 * 1024;

/// Why the program stopped early.
#[derive(Debug)]
pub enum LabError {
    /// A file could not be opened, read, written or synced: exit code 1, naming the file.
    File { path: PathBuf, source: io::Error },
    /// Standard output failed.
    Output(io::Error),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::File { path, source } => write!(f, "{}: {source}", path.display()),
            LabError::Output(source) => write!(f, "cannot write to stdout: {source}"),
        }
    }
}

/// Copies `src` to `dst` and returns the number of bytes copied. The system calls, in order:
///
/// ```text
/// openat(src, O_RDONLY|O_CLOEXEC)                          = S
/// openat(dst, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644)    = D
/// read(S, 65536) / write(D, n) ... until read returns 0
/// close(S)
/// fsync(D)
/// close(D)
/// ```
///
/// Errors name the file: `LabError::File { path, source }`.
pub fn copy(src: &Path, dst: &Path) -> Result<u64, LabError> {
    todo!(
        "open src, create dst (mode 0644), read/write with one 64 KiB buffer, drop src, sync_all dst"
    )
}

/// Writes `line 1` .. `line n` to stdout (each followed by `\n`). Unbuffered: one `write` per
/// line. Buffered (`--buffered`): through a `BufWriter`. Errors are `LabError::Output`.
pub fn write_lines(n: u64, buffered: bool) -> Result<(), LabError> {
    todo!("writeln! to io::stdout().lock(), or to a BufWriter around it; flush at the end")
}

/// A program whose system calls follow a contract, to read with `strace`.
#[derive(Debug, Parser)]
#[command(name = "strace_lab")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What the command line asks for. Paths are `PathBuf`s: a file name on Linux is bytes, not
/// necessarily UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Copy <SRC> to <DST> through one 64 KiB buffer, then fsync it
    Copy { src: PathBuf, dst: PathBuf },
    /// Write `line 1` .. `line <N>` to stdout
    Lines {
        n: u64,
        /// Through a BufWriter: far fewer write calls
        #[arg(long)]
        buffered: bool,
    },
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad command line is
/// one line on stderr (exit 2), shorter than clap's own message.
fn parse_args() -> Result<Command, ExitCode> {
    Cli::try_parse().map(|cli| cli.command).map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!("strace_lab: {}; {USAGE}", why.trim_start_matches("error: "));
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let command = match parse_args() {
        Ok(command) => command,
        Err(code) => return code,
    };
    let result = match command {
        Command::Copy { src, dst } => copy(&src, &dst).map(|_| ()),
        Command::Lines { n, buffered } => write_lines(n, buffered),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `strace_lab lines 1000000 | head` closes the pipe early: that is success.
        Err(LabError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strace_lab: {e}");
            ExitCode::from(1)
        }
    }
}
