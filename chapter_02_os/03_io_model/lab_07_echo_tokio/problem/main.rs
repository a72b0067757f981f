//! ## Goal
//! Write `echo_tokio --addr HOST:PORT`, the echo server of labs 2.5 and 2.6 a third time, with a
//! tokio task per connection. The code reads like the blocking version (a loop that reads, then
//! writes) and runs like the event loop (non-blocking sockets, epoll, a couple of threads): the
//! compiler turns each `async fn` into the state machine you wrote by hand in lab 2.6. The same
//! grader checks it, and a benchmark puts the three servers side by side, so you can see what each
//! model costs in memory, threads and messages per second.
//!
//! ## Requirements
//! 1. `echo_tokio [--addr HOST:PORT]` (default `127.0.0.1:7000`) listens and prints
//!    `listening on <addr>` on stdout, with the address the socket is bound to (`local_addr()`):
//!    the grader passes port 0 and connects to the port the kernel picked. `--help` prints the
//!    usage on stdout and exits 0; a bad address or an unknown argument is one line on stderr and
//!    exit code 2; an address already in use is one line on stderr and exit code 1; never a panic.
//! 2. Every byte a client sends comes back, in order (a 1 MiB random payload, byte for byte). When
//!    the client shuts down its sending side (`shutdown(Write)`, a FIN), the server sends whatever
//!    echo it still owes, then closes: the client reads end-of-file right after its last byte, even
//!    when it reads slowly.
//! 3. Clients are served concurrently: 1,000 clients connected at the same time each get their own
//!    message back. The listening socket has a backlog of 1,024: with the server frozen
//!    (`SIGSTOP`), 1,024 clients can still connect, and once it runs again all of them are served.
//! 4. A client that sends and never reads its echo does not stop the others; when it starts reading
//!    it gets its whole echo, nothing lost. Meanwhile the server stops reading from that client
//!    (backpressure): the client's writes stall once the kernel's buffers are full, and the
//!    server's resident memory (`VmRSS`) grows by at most 16 MiB while the client tries to send
//!    96 MiB.
//! 5. Clients that vanish with a reset (`SO_LINGER` 0) never kill the server, and the server closes
//!    every connection whose client left: its number of open file descriptors (`/proc/<pid>/fd`)
//!    returns to where it was after 1,000 clients.
//! 6. An idle server sleeps: with 10 clients connected and silent, the runtime's threads sleep in
//!    `epoll_wait` or on a futex until something happens. Over one idle second they wake at most
//!    20 times and use at most 5 CPU ticks in all: every wait is an `.await` on a socket, never a
//!    polling loop.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 2.7    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `echo_tokio [--addr HOST:PORT]` (default `127.0.0.1:7000`) listens and
//!   prints `listening on <addr>` on stdout, with the address the socket is bound to
//!   (`local_addr()`): the grader passes port 0 and connects to the port the kernel picked
//! - [ ] Requirement 2: Every byte a client sends comes back, in order (a 1 MiB random payload,
//!   byte for byte)
//! - [ ] Requirement 3: Clients are served concurrently: 1,000 clients connected at the same time
//!   each get their own message back
//! - [ ] Requirement 4: A client that sends and never reads its echo does not stop the others; when
//!   it starts reading it gets its whole echo, nothing lost
//! - [ ] Requirement 5: Clients that vanish with a reset (`SO_LINGER` 0) never kill the server, and
//!   the server closes every connection whose client left: its number of open file descriptors
//!   (`/proc/<pid>/fd`) returns to where it was after 1,000 clients
//! - [ ] Requirement 6: An idle server sleeps: with 10 clients connected and silent, the runtime's
//!   threads sleep in `epoll_wait` or on a futex until something happens
//!
//! ## Notes
//!
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

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

use tokio::net::{TcpListener, TcpStream};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: u32 = 1024;
/// Bytes read per `read` call, in a buffer owned by the connection's task.
pub const BUF_SIZE: usize = 8 * 1024;

const USAGE: &str = "usage: echo_tokio [--addr HOST:PORT]";

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
}

/// The command line: `echo_tokio [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(name = "echo_tokio", about = "An echo server: a tokio task per client")]
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
        eprintln!("echo_tokio: {}; {USAGE}", why.trim_start_matches("error: "));
        ExitCode::from(2)
    })
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
    todo!(
        "parse_args (given), bind, print `listening on <local_addr()>`, serve; a bind error is \
         one line on stderr and exit code 1"
    )
}
