//! Echo server, version 3 of 3: tokio tasks.
//!
//! `echo_tokio [--addr HOST:PORT]` sends back every byte each client sends, like labs 2.5 and
//! 2.6, with a task per connection on tokio's runtime. Print `listening on <addr>` on stdout
//! once the socket listens. Read README.md for the requirements; `cargo lab test 2.7` grades
//! this file by talking to the running program over TCP.
//!
//! The signatures below are a suggestion: the grader only runs the binary. Remove the
//! `allow` below once every argument is used.
#![allow(unused_variables)]

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::net::{TcpListener, TcpStream};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: u32 = 1024;
/// Bytes read per `read` call, in a buffer owned by the connection's task.
pub const BUF_SIZE: usize = 8 * 1024;

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The command line is wrong: exit code 2, with the usage.
    Usage(String),
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
}

/// Parses the arguments after the program name: `--addr HOST:PORT` or nothing.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<SocketAddr, ServerError> {
    todo!("read --addr (default DEFAULT_ADDR) and parse it; anything else is a Usage error")
}

/// Creates the listening socket with a backlog of [`BACKLOG`].
///
/// `tokio::net::TcpListener::bind` listens with a backlog of 128: use `tokio::net::TcpSocket`
/// (new_v4 / new_v6, set_reuseaddr, bind, listen(BACKLOG)). Call it inside the runtime.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    todo!("TcpSocket: new, set_reuseaddr, bind, listen(BACKLOG)")
}

/// Accepts connections forever and spawns a task for each one. An accept error costs one
/// connection, never the server.
pub async fn serve(listener: TcpListener) {
    todo!("loop: listener.accept().await, tokio::spawn(handle_connection(stream))")
}

/// Echoes one connection until the client closes it (read returns 0).
pub async fn handle_connection(stream: TcpStream) -> io::Result<()> {
    todo!("AsyncReadExt::read into a buffer, AsyncWriteExt::write_all it back, until 0")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!("parse the arguments, bind, print `listening on <addr>`, serve; errors to stderr")
}
