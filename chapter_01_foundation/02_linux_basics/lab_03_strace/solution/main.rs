//! strace Lab: a program whose system calls follow a contract, proven with `strace`.
//!
//! - `copy <src> <dst>` opens `src` read-only, creates `dst` with mode 0644, copies through one
//!   fixed 64 KiB buffer, closes `src`, then `fsync`s and closes `dst`. Every step is one system
//!   call you can point at in `strace` output: `File::open` is `openat`, `read` is `read`, and
//!   the end of a scope (or `drop`) is `close`.
//! - `lines <n> [--buffered]` writes `line 1` .. `line n` to stdout, either one `write` per line
//!   (Rust's stdout is line-buffered) or through a `BufWriter` (one `write` per 8 KiB).
//!
//! Why the order matters: `close` never reports a write error in Rust (a `File`'s `Drop` ignores
//! it), so the data is made durable and its errors are seen with an explicit `sync_all` (fsync)
//! before the file goes away. The source is closed first because we are done with it: holding
//! descriptors longer than needed is how servers run out of them.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
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

/// Tags an I/O error with the file it happened on.
fn on(path: &Path) -> impl FnOnce(io::Error) -> LabError + '_ {
    move |source| LabError::File {
        path: path.to_path_buf(),
        source,
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
pub fn copy(src: &Path, dst: &Path) -> Result<u64, LabError> {
    // Open the source first: when it is missing, the destination is never created.
    let mut input = File::open(src).map_err(on(src))?;
    // `File::create` would ask for mode 0666 (the umask then usually makes it 0644); we state
    // the mode we want. The umask can still remove bits, never add them.
    let mut output = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(dst)
        .map_err(on(dst))?;

    // One buffer, allocated once, on the heap (64 KiB is a lot for a thread's stack).
    // `io::copy` would be shorter, but on Linux it uses `copy_file_range`, which moves the data
    // inside the kernel: fast, and invisible to `strace -e trace=read,write`.
    let mut buf = vec![0u8; BUF_SIZE];
    let mut copied = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break, // end of file
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(on(src)(e)),
        };
        output.write_all(&buf[..n]).map_err(on(dst))?;
        copied += n as u64;
    }

    // Done reading: close the source now, not at the end of the function.
    drop(input);
    // Flush the data to the disk and learn about any write error while we still can.
    output.sync_all().map_err(on(dst))?;
    Ok(copied)
    // `output` goes out of scope here: close(dst).
}

/// Writes `line 1` .. `line n` to stdout, one line each. Unbuffered, Rust's stdout is
/// line-buffered: it makes one `write` per line. Buffered, a `BufWriter` collects 8 KiB before
/// each `write`, about 800 lines of this size.
pub fn write_lines(n: u64, buffered: bool) -> Result<(), LabError> {
    let stdout = io::stdout().lock();
    if buffered {
        print_lines(n, BufWriter::new(stdout))
    } else {
        print_lines(n, stdout)
    }
    .map_err(LabError::Output)
}

fn print_lines(n: u64, mut out: impl Write) -> io::Result<()> {
    for i in 1..=n {
        writeln!(out, "line {i}")?;
    }
    // A `BufWriter` flushes on drop too, but ignores the error there: flush explicitly.
    out.flush()
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
