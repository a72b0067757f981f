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

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: i32 = 1024;
/// Bytes read per `read` call, into one buffer shared by every connection.
pub const BUF_SIZE: usize = 8 * 1024;

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The command line is wrong: exit code 2, with the usage.
    Usage(String),
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// The event loop itself failed (epoll): exit code 1.
    Poll(io::Error),
}

/// Parses the arguments after the program name: `--addr HOST:PORT` or nothing.
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<SocketAddr, ServerError> {
    todo!("read --addr (default DEFAULT_ADDR) and parse it; anything else is a Usage error")
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
    todo!("parse the arguments, bind, print `listening on <addr>`, serve; errors to stderr")
}
