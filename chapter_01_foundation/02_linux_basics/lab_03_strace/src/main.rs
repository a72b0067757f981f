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

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const USAGE: &str =
    "usage: strace_lab copy <src> <dst>\n       strace_lab lines <n> [--buffered]";

/// The size of the one buffer `copy` reads into: `read` is called with exactly this count.
pub const BUF_SIZE: usize = 64 * 1024;

/// Why the program stopped early.
#[derive(Debug)]
pub enum LabError {
    /// The command line is wrong: exit code 2, with the usage.
    Usage(String),
    /// A file could not be opened, read, written or synced: exit code 1, naming the file.
    File { path: PathBuf, source: io::Error },
    /// Standard output failed.
    Output(io::Error),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Usage(why) => write!(f, "{why}\n{USAGE}"),
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

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Copy { src: PathBuf, dst: PathBuf },
    Lines { n: u64, buffered: bool },
}

/// Parses the arguments after the program name. Paths are `OsString`s: a file name on Linux
/// is bytes, not necessarily UTF-8.
pub fn parse_args(args: &[OsString]) -> Result<Command, LabError> {
    let usage = |why: &str| Err(LabError::Usage(why.to_string()));
    match args {
        [cmd, src, dst] if cmd == "copy" => Ok(Command::Copy {
            src: src.into(),
            dst: dst.into(),
        }),
        [cmd, n, rest @ ..] if cmd == "lines" => {
            let buffered = match rest {
                [] => false,
                [flag] if flag == "--buffered" => true,
                _ => return usage("lines takes <n> and an optional --buffered"),
            };
            match n.to_str().and_then(|n| n.parse().ok()) {
                Some(n) => Ok(Command::Lines { n, buffered }),
                None => usage(&format!("not a number of lines: {}", n.to_string_lossy())),
            }
        }
        [] => usage("missing command"),
        _ => usage("unknown command or wrong number of arguments"),
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = parse_args(&args).and_then(|command| match command {
        Command::Copy { src, dst } => copy(&src, &dst).map(|_| ()),
        Command::Lines { n, buffered } => write_lines(n, buffered),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `strace_lab lines 1000000 | head` closes the pipe early: that is success.
        Err(LabError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e @ LabError::Usage(_)) => {
            eprintln!("strace_lab: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("strace_lab: {e}");
            ExitCode::from(1)
        }
    }
}
