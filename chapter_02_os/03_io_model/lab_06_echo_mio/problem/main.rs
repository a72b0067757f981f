//! ## Goal
//! Write `echo_mio --addr HOST:PORT`, the echo server of lab 2.5 again, now on **one thread**:
//! non-blocking sockets and an event loop over epoll, through the `mio` crate. Nothing blocks any
//! more, so everything a sleeping thread did for you becomes your code: remembering the bytes a
//! partial write left over, asking for "writable" only while you hold such bytes, not reading from a
//! client whose echo is stuck, telling a half-close from a reset. The same grader as lab 2.5 checks
//! it, with 1,000 clients instead of 200.
//!
//! ## Requirements
//! 1. `echo_mio [--addr HOST:PORT]` (default `127.0.0.1:7000`) listens and prints
//!    `listening on <addr>` on stdout, with the address the socket is bound to (`local_addr()`):
//!    the grader passes port 0 and connects to the port the kernel picked. `--help` prints the
//!    usage on stdout and exits 0; a bad address or an unknown argument is one line on stderr and
//!    exit code 2; an address already in use is one line on stderr and exit code 1; never a panic.
//!    The server runs a single thread: with 200 clients connected and echoed, `/proc/<pid>/task`
//!    holds one thread.
//! 2. Every byte a client sends comes back, in order (a 1 MiB random payload, byte for byte). When
//!    the client shuts down its sending side (`shutdown(Write)`, a FIN), the server sends whatever
//!    echo it still owes, then closes: the client reads end-of-file right after its last byte, even
//!    when it reads slowly (so the server holds unsent bytes when the FIN arrives). mio reports
//!    readiness once per change (edge-triggered), so a connection reads until `WouldBlock`: 200 to
//!    700 KiB that pile up in a socket while the server is stopped (`SIGSTOP`) all come back.
//! 3. Clients are served concurrently: 1,000 clients connected at the same time each get their own
//!    message back. The listening socket has a backlog of 1,024: with the server frozen
//!    (`SIGSTOP`), 1,024 clients can still connect, and once it runs again all of them are served.
//! 4. A client that sends and never reads its echo does not stop the others (the loop never waits
//!    on one socket); when it starts reading it gets its whole echo, nothing lost or duplicated.
//!    Meanwhile the server stops reading from that client (backpressure): the client's writes
//!    stall once the kernel's buffers are full, and the server's resident memory (`VmRSS`) grows
//!    by at most 16 MiB while the client tries to send 96 MiB.
//! 5. Clients that vanish with a reset (`SO_LINGER` 0) never kill the server, and the server closes
//!    every connection whose client left: its number of open file descriptors (`/proc/<pid>/fd`)
//!    returns to where it was after 1,000 clients.
//! 6. An idle server sleeps in `epoll_wait` (`poll` with no timeout) until something happens: with
//!    10 clients connected and silent, over one idle second it wakes at most 20 times and uses at
//!    most 5 CPU ticks.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.6    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `echo_mio [--addr HOST:PORT]` (default `127.0.0.1:7000`) listens and prints
//!   `listening on <addr>` on stdout, with the address the socket is bound to (`local_addr()`): the
//!   grader passes port 0 and connects to the port the kernel picked
//! - [ ] Requirement 2: Every byte a client sends comes back, in order (a 1 MiB random payload,
//!   byte for byte)
//! - [ ] Requirement 3: Clients are served concurrently: 1,000 clients connected at the same time
//!   each get their own message back
//! - [ ] Requirement 4: A client that sends and never reads its echo does not stop the others (the
//!   loop never waits on one socket); when it starts reading it gets its whole echo, nothing lost
//!   or duplicated
//! - [ ] Requirement 5: Clients that vanish with a reset (`SO_LINGER` 0) never kill the server, and
//!   the server closes every connection whose client left: its number of open file descriptors
//!   (`/proc/<pid>/fd`) returns to where it was after 1,000 clients
//! - [ ] Requirement 6: An idle server sleeps in `epoll_wait` (`poll` with no timeout) until
//!   something happens: with 10 clients connected and silent, over one idle second it wakes at most
//!   20 times and uses at most 5 CPU ticks
//!
//! ## Notes
//!
//! Echo server, version 2 of 3: one thread, non-blocking sockets and a mio event loop.
//!
//! `echo_mio [--addr HOST:PORT]` sends back every byte each client sends, like lab 2.5, but
//! with a single thread: no `std::thread::spawn` anywhere. Print `listening on <addr>` on
//! stdout once the socket listens. Read README.md for the requirements; `cargo lab test 2.6`
//! grades this file by talking to the running program over TCP.
//!
//! The signatures below are a suggestion: the grader only runs the binary. Remove the
//! `allow` below once every argument is used.
#![allow(unused_variables)]

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: i32 = 1024;
/// Bytes read per `read` call, into one buffer shared by every connection.
pub const BUF_SIZE: usize = 8 * 1024;

const USAGE: &str = "usage: echo_mio [--addr HOST:PORT]";

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// The event loop itself failed (epoll): exit code 1.
    Poll(io::Error),
}

/// The command line: `echo_mio [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = "echo_mio",
    about = "An echo server: one thread, a mio event loop"
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
        eprintln!("echo_mio: {}; {USAGE}", why.trim_start_matches("error: "));
        ExitCode::from(2)
    })
}

/// Creates the non-blocking listening socket with a backlog of [`BACKLOG`].
///
/// `mio::net::TcpListener::bind` listens with a backlog of 128: build the socket with
/// `socket2::Socket` (listen(BACKLOG), set_nonblocking(true)), then `TcpListener::from_std`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    todo!("socket2 socket, reuse_address, bind, listen(BACKLOG), non-blocking, from_std")
}

/// One client: its socket and what we still owe it.
pub struct Connection {
    pub stream: TcpStream,
    /// Bytes read from the client that its socket has not accepted yet (a partial write).
    pub pending: Vec<u8>,
    /// What the connection is registered for (READABLE, or WRITABLE while `pending` is not
    /// empty).
    pub interest: Interest,
}

/// What the event loop does with a connection after it made progress.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep it: it waits for the readiness it is registered for.
    Wait,
    /// Everything is echoed and the client is gone: drop it.
    Close,
}

impl Connection {
    /// A new connection, registered for READABLE under `token`.
    pub fn new(stream: TcpStream, registry: &Registry, token: Token) -> io::Result<Self> {
        todo!("register the stream for READABLE, start with an empty pending buffer")
    }

    /// Makes all the progress the socket allows right now, then says what to wait for.
    ///
    /// mio is edge-triggered: read (or write) until `WouldBlock`, or you will never hear about
    /// this socket again. Keep what `write` did not take in `pending`, do not read while
    /// `pending` holds bytes, and register for WRITABLE only while it does. Read returning 0
    /// is the client's FIN: close only once everything it sent is echoed.
    pub fn on_ready(
        &mut self,
        registry: &Registry,
        token: Token,
        buf: &mut [u8],
    ) -> io::Result<Next> {
        todo!("flush pending; read and echo until WouldBlock; Close after FIN and the last echo")
    }
}

/// The event loop: waits for readiness, accepts new clients, drives the ready connections.
/// Returns only if epoll itself fails; a connection's error closes that connection only.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    todo!("Poll::new, register the listener, loop: poll, accept until WouldBlock, on_ready")
}

fn main() -> ExitCode {
    todo!(
        "parse_args (given), bind, print `listening on <local_addr()>`, serve; a bind error is \
         one line on stderr and exit code 1"
    )
}
