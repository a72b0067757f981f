//! Mini Cat/Grep: `mini_cat <file> [pattern] [-n]`.
//!
//! Prints a file, keeping only the lines that contain `pattern`, numbering them with `-n`.
//! Three ideas carry the lab:
//!
//! - **Streaming**: the file goes through a `BufReader` one line at a time, so memory stays the
//!   size of the longest line whatever the size of the file (`read_until` reuses one buffer).
//! - **Bytes, not `String`s**: a file is bytes; a line that is not UTF-8 is shown lossily
//!   (U+FFFD) instead of stopping the program.
//! - **Errors are values**: every failure travels up with `?` to `main`, the one place that
//!   turns it into a message on stderr and an exit code (1: the input, 2: the command line).

use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
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
    /// Standard output failed (a closed pipe is not reported as an error).
    Output(io::Error),
}

impl fmt::Display for CatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatError::Usage(why) => write!(f, "{why}; {USAGE}"),
            CatError::Help => write!(f, "{USAGE}"),
            CatError::Input { path, source } => write!(f, "{}: {source}", path.display()),
            CatError::Output(source) => write!(f, "cannot write to stdout: {source}"),
        }
    }
}

/// Parses the arguments after the program name. `-n` may stand anywhere; after `--` every
/// argument is positional, so `mini_cat f -- -n` searches for the text `-n`. `--help` (or `-h`)
/// anywhere before `--` asks for the usage.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Config, CatError> {
    let mut number = false;
    let mut positional = Vec::new();
    let mut only_positional = false;
    for arg in args {
        match arg.to_str() {
            Some("-h" | "--help") if !only_positional => return Err(CatError::Help),
            Some("-n") if !only_positional => number = true,
            Some("--") if !only_positional => only_positional = true,
            Some(flag) if flag.starts_with('-') && flag.len() > 1 && !only_positional => {
                return Err(CatError::Usage(format!("unknown option: {flag}")));
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let path = positional
        .next()
        .ok_or_else(|| CatError::Usage("missing <file>".into()))?;
    let pattern = match positional.next() {
        None => None,
        Some(p) => Some(
            p.into_string()
                .map_err(|_| CatError::Usage("the pattern is not valid UTF-8".into()))?,
        ),
    };
    if let Some(extra) = positional.next() {
        let extra = extra.to_string_lossy();
        return Err(CatError::Usage(format!("unexpected argument: {extra}")));
    }
    Ok(Config {
        path: path.into(),
        pattern,
        number,
    })
}

/// Copies the selected lines of `config.path` to `out`.
pub fn run(config: &Config, out: &mut impl Write) -> Result<(), CatError> {
    let input_error = |source| CatError::Input {
        path: config.path.clone(),
        source,
    };
    let file = File::open(&config.path).map_err(input_error)?;
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    // One buffer for every line: the allocation is reused, so memory does not grow with the
    // file. `read_until` keeps the '\n', so the output is byte-exact for UTF-8 input.
    let mut line = Vec::new();
    let mut number: u64 = 0;
    loop {
        line.clear();
        // A directory opens fine on Linux; reading it fails with EISDIR right here.
        if reader.read_until(b'\n', &mut line).map_err(input_error)? == 0 {
            return out.flush().map_err(CatError::Output);
        }
        number += 1;
        let text = String::from_utf8_lossy(&line);
        if config.pattern.as_deref().is_some_and(|p| !text.contains(p)) {
            continue;
        }
        if config.number {
            write!(out, "{number:>6}\t").map_err(CatError::Output)?;
        }
        out.write_all(text.as_bytes()).map_err(CatError::Output)?;
    }
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args_os().skip(1)).and_then(|config| {
        // Stdout is line-buffered when it is a terminal and unbuffered otherwise; our own
        // BufWriter turns a million lines into a few hundred write(2) calls.
        let mut out = BufWriter::new(io::stdout().lock());
        run(&config, &mut out)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CatError::Help) => {
            println!("{USAGE}\n\nPrints <file>, only its lines that contain [pattern] if given.");
            println!("  -n          number the printed lines (their numbers in the file)");
            println!("  -h, --help  print this help");
            ExitCode::SUCCESS
        }
        // `mini_cat big.txt | head` closes the pipe early: that is success, not an error.
        Err(CatError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e @ CatError::Usage(_)) => {
            eprintln!("mini_cat: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("mini_cat: {e}");
            ExitCode::from(1)
        }
    }
}
