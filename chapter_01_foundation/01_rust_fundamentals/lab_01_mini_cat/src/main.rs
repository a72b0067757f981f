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
    /// The command line is wrong: exit code 2, with the usage.
    Usage(String),
    /// The input could not be opened or read: exit code 1, naming the file.
    Input { path: PathBuf, source: io::Error },
    /// Standard output failed.
    Output(io::Error),
}

/// Parses the arguments after the program name (`-n` may stand anywhere).
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
