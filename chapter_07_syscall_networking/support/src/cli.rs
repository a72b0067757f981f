//! The command line of the chapter's servers, with the conventions every lab binary keeps
//! (and `cargo lab verify` checks): `--help` prints the usage on stdout and exits 0; a bad
//! argument is **one line** on stderr and exit code 2, never a panic. clap's own message
//! would be several lines (the error, a usage block, a tip).

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Parses the process's arguments into `A`. On `Err`, what had to be said is printed, and
/// `main` returns the exit code as it is:
///
/// ```no_run
/// # use std::process::ExitCode;
/// #[derive(clap::Parser)]
/// #[command(name = "my_server")]
/// struct Args {
///     #[arg(long, default_value = "127.0.0.1:7000")]
///     addr: std::net::SocketAddr,
/// }
///
/// fn main() -> ExitCode {
///     let args: Args = match ch7_support::cli::parse_args("usage: my_server [--addr HOST:PORT]") {
///         Ok(args) => args,
///         Err(code) => return code,
///     };
///     ExitCode::SUCCESS
/// }
/// ```
pub fn parse_args<A: Parser>(usage: &str) -> Result<A, ExitCode> {
    A::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help or --version: stdout, exit 0
            return ExitCode::SUCCESS;
        }
        eprintln!("{}", one_line::<A>(&e, usage));
        ExitCode::from(2)
    })
}

/// `<program>: <what is wrong>; <usage>`, from clap's first line.
fn one_line<A: CommandFactory>(e: &clap::Error, usage: &str) -> String {
    let message = e.to_string();
    let why = message.lines().next().unwrap_or_default();
    let why = why.trim_start_matches("error: ");
    format!("{}: {why}; {usage}", A::command().get_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    #[command(name = "demo")]
    struct Args {
        #[arg(long)]
        addr: std::net::SocketAddr,
    }

    #[test]
    fn a_bad_argument_is_one_line_naming_the_program_and_the_usage() {
        let e = Args::try_parse_from(["demo", "--addr", "nowhere"]).unwrap_err();
        assert!(e.use_stderr());
        let line = one_line::<Args>(&e, "usage: demo --addr HOST:PORT");
        assert!(!line.contains('\n'), "{line:?}");
        assert!(
            line.starts_with("demo: invalid value 'nowhere'")
                && line.ends_with("; usage: demo --addr HOST:PORT"),
            "{line:?}"
        );
    }
}
