//! ## Goal
//! Write `echo_blocking --addr HOST:PORT`, a TCP server that sends back every byte each client
//! sends, with the oldest model there is: blocking sockets and one OS thread per connection. It is
//! the first of three versions of the same server (2.6: a mio event loop, 2.7: tokio tasks), graded
//! by the same tests, so that what each model costs can be measured rather than believed. On the way
//! you meet the listen backlog, half-closed connections, resets, and what a thread costs the
//! kernel.
//!
//! ## Requirements
//! 1. `echo_blocking [--addr HOST:PORT]` (default `127.0.0.1:7000`) listens and prints
//!    `listening on <addr>` on stdout, with the address the socket is bound to (`local_addr()`):
//!    the grader passes port 0 and connects to the port the kernel picked. `--help` prints the
//!    usage on stdout and exits 0; a bad address or an unknown argument is one line on stderr and
//!    exit code 2; an address already in use is one line on stderr and exit code 1; never a panic.
//! 2. Every byte a client sends comes back, in order (a 1 MiB random payload, byte for byte). When
//!    the client shuts down its sending side (`shutdown(Write)`, a FIN), the server sends whatever
//!    echo it still owes, then closes: the client reads end-of-file right after its last byte, even
//!    when it reads slowly.
//! 3. Clients are served concurrently: 200 clients connected at the same time each get their own
//!    message back. The listening socket has a backlog of 1,024: with the server frozen
//!    (`SIGSTOP`), 1,024 clients can still connect, and once it runs again all of them are served.
//!    Each client gets a thread of its own, which ends when the client leaves: with N clients
//!    connected the server runs at least N + 1 threads (`/proc/<pid>/task`), and once they are gone
//!    it is back to the one it started with.
//! 4. A client that sends and never reads its echo does not stop the others; when it starts reading
//!    it gets its whole echo, nothing lost. Meanwhile the server stops reading from that client
//!    (backpressure): the client's writes stall once the kernel's buffers are full, and the
//!    server's resident memory (`VmRSS`) grows by at most 16 MiB while the client tries to send
//!    96 MiB.
//! 5. Clients that vanish with a reset (`SO_LINGER` 0) never kill the server, and the server closes
//!    every connection whose client left: its number of open file descriptors (`/proc/<pid>/fd`)
//!    returns to where it was.
//! 6. An idle server sleeps: with 10 clients connected and silent, its threads sleep in the kernel
//!    (in `accept` and `read`) until something happens. Over one idle second all its threads
//!    together wake at most 20 times and use at most 5 CPU ticks: no polling loop, no read timeout.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.5    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `echo_blocking [--addr HOST:PORT]` (default `127.0.0.1:7000`) listens and
//!   prints `listening on <addr>` on stdout, with the address the socket is bound to
//!   (`local_addr()`): the grader passes port 0 and connects to the port the kernel picked
//! - [ ] Requirement 2: Every byte a client sends comes back, in order (a 1 MiB random payload,
//!   byte for byte)
//! - [ ] Requirement 3: Clients are served concurrently: 200 clients connected at the same time
//!   each get their own message back
//! - [ ] Requirement 4: A client that sends and never reads its echo does not stop the others; when
//!   it starts reading it gets its whole echo, nothing lost
//! - [ ] Requirement 5: Clients that vanish with a reset (`SO_LINGER` 0) never kill the server, and
//!   the server closes every connection whose client left: its number of open file descriptors
//!   (`/proc/<pid>/fd`) returns to where it was
//! - [ ] Requirement 6: An idle server sleeps: with 10 clients connected and silent, its threads
//!   sleep in the kernel (in `accept` and `read`) until something happens
//!
//! ## Notes
//!
//! Echo server, version 1 of 3: blocking I/O and one thread per connection.
//!
//! `echo_blocking [--addr HOST:PORT]` sends back every byte each client sends. Print
//! `listening on <addr>` on stdout once the socket listens. Read README.md for the requirements;
//! `cargo lab test 2.5` grades this file by talking to the running program over TCP.
//!
//! The signatures below are a suggestion: the grader only runs the binary. Remove the
//! `allow` below once every argument is used.
#![allow(unused_variables)]

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;

use clap::Parser;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: i32 = 1024;
/// Bytes read per `read` call.
pub const BUF_SIZE: usize = 8 * 1024;

const USAGE: &str = "usage: echo_blocking [--addr HOST:PORT]";

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
}

/// The command line: `echo_blocking [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = "echo_blocking",
    about = "An echo server: blocking sockets, a thread per client"
)]
pub struct Args {
    /// Where to listen (port 0: the kernel picks a free one; print the bound address)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2), shorter than clap's own message.
pub fn parse_args() -> Result<Args, ExitCode> {
    Args::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "echo_blocking: {}; {USAGE}",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
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
    todo!(
        "parse_args (given), bind, print `listening on <local_addr()>`, serve; a bind error is \
         one line on stderr and exit code 1"
    )
}
