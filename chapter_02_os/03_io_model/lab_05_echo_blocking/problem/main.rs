//! Echo server, version 1 of 3: blocking I/O and one thread per connection.
//!
//! `echo_blocking [--addr HOST:PORT]` sends back every byte each client sends. Print
//! `listening on <addr>` on stdout once the socket listens. Read README.md for the requirements;
//! `cargo lab test 2.5` grades this file by talking to the running program over TCP.
//!
//! The signatures below are a suggestion: the grader only runs the binary. Remove the
//! `allow` below once every argument is used.
#![allow(unused_variables)]

use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: i32 = 1024;
/// Bytes read per `read` call.
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
/// `std::net::TcpListener::bind` passes a backlog of 128 to listen(2), too small for a burst
/// of 1,000 clients: build the socket with `socket2::Socket`, then convert it with `.into()`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    todo!("socket2: Socket::new, set_reuse_address, bind, listen(BACKLOG), into()")
}

/// Accepts connections forever and hands each one to a new thread. An accept error or a
/// thread that cannot start costs one connection, never the server.
pub fn serve(listener: TcpListener) {
    todo!("accept in a loop, std::thread::Builder::spawn a handle_connection per client")
}

/// Echoes one connection until the client closes it (read returns 0).
pub fn handle_connection(stream: TcpStream) -> io::Result<()> {
    todo!("read into a buffer, write_all it back, until read returns 0")
}

fn main() -> ExitCode {
    todo!("parse the arguments, bind, print `listening on <addr>`, serve; errors to stderr")
}
