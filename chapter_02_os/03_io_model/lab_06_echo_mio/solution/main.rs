//! Echo server, version 2 of 3: one thread, non-blocking sockets and a mio event loop.
//!
//! `echo_mio [--addr HOST:PORT]` sends back every byte each client sends.
//!
//! Every socket is non-blocking: `read` and `write` never sleep, they return `WouldBlock` when
//! there is nothing to read or no room to write. One thread asks the kernel (epoll, through mio)
//! "which of my sockets can make progress?", does that progress, and asks again. A connection
//! costs a file descriptor and a [`Connection`] value in a map, not a thread.
//!
//! What the blocking version got for free, we now do by hand:
//!
//! - **Partial writes.** `write` may take only part of the bytes. The rest waits in the
//!   connection's `pending` buffer, and we ask for WRITABLE readiness only while that buffer is
//!   not empty (asking for it all the time would wake us for every idle connection).
//! - **Backpressure.** While `pending` is not empty we stop reading from that client: a client
//!   that does not read its echo stops being read, so its memory stays bounded by one read
//!   buffer, and the kernel's full buffers slow it down.
//! - **Half-close.** `read` returning 0 means the client sent FIN, not that it is gone: we still
//!   owe it the echo of what it sent. Because we read only when `pending` is empty, a 0 from
//!   `read` means everything is echoed, and closing at that moment loses nothing.
//! - **Edge-triggered readiness.** mio reports a socket when it *becomes* ready, once; we must
//!   read or write until `WouldBlock`, or we would never hear about that socket again.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use socket2::{Domain, Socket, Type};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: i32 = 1024;
/// Bytes read per `read` call, into one buffer shared by every connection.
pub const BUF_SIZE: usize = 8 * 1024;
/// The token of the listening socket; connections get 1, 2, 3...
const LISTENER: Token = Token(0);

const USAGE: &str = "usage: echo_mio [--addr HOST:PORT]";

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// The event loop itself failed (epoll): exit code 1.
    Poll(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServerError::Poll(source) => write!(f, "event loop: {source}"),
        }
    }
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
/// `mio::net::TcpListener::bind` listens with a backlog of 128, like std: too shallow for a
/// burst of 1,000 connections. socket2 gives us the plain socket calls; `set_nonblocking` makes
/// `accept` return `WouldBlock` instead of sleeping, which an event loop requires.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// One client: its socket and what we still owe it.
pub struct Connection {
    stream: TcpStream,
    /// Bytes read from the client that its socket has not accepted yet (a partial write).
    pending: Vec<u8>,
    /// What the connection is registered for, to skip needless `epoll_ctl` calls.
    interest: Interest,
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
    pub fn new(mut stream: TcpStream, registry: &Registry, token: Token) -> io::Result<Self> {
        registry.register(&mut stream, token, Interest::READABLE)?;
        Ok(Connection {
            stream,
            pending: Vec::new(),
            interest: Interest::READABLE,
        })
    }

    /// Makes all the progress the socket allows right now: flush `pending`, then read and echo
    /// until `WouldBlock`. Returns what to do next; an error means "drop this connection".
    ///
    /// The only state is `pending`: empty means "waiting to read", not empty means "waiting to
    /// write". A connection is never both, which is what keeps this loop short.
    pub fn on_ready(
        &mut self,
        registry: &Registry,
        token: Token,
        buf: &mut [u8],
    ) -> io::Result<Next> {
        loop {
            // 1. Send what the client has not taken yet. Until that is done, do not read more:
            //    that is the backpressure that keeps `pending` smaller than one buffer.
            while !self.pending.is_empty() {
                match self.stream.write(&self.pending) {
                    Ok(n) => {
                        self.pending.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return self.wait_for(Interest::WRITABLE, registry, token);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            // 2. Read a chunk and echo it at once; what the socket does not take goes to
            //    `pending`, and step 1 deals with it on the next turn of the loop.
            match self.stream.read(buf) {
                // FIN from the client. `pending` is empty (we only read when it is), so every
                // byte it sent is echoed: dropping the stream closes the socket, which sends
                // our FIN after the bytes still in the kernel's send buffer, and leaves epoll.
                Ok(0) => return Ok(Next::Close),
                Ok(n) => {
                    let sent = write_some(&mut self.stream, &buf[..n])?;
                    self.pending.extend_from_slice(&buf[sent..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.wait_for(Interest::READABLE, registry, token);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Registers for `interest` if that changes anything, and tells the loop to wait.
    ///
    /// Changing the registration (EPOLL_CTL_MOD) also re-checks readiness: if the socket became
    /// ready between our `WouldBlock` and this call, the next poll reports it, so no wake-up
    /// is lost.
    fn wait_for(
        &mut self,
        interest: Interest,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Next> {
        if self.interest != interest {
            registry.reregister(&mut self.stream, token, interest)?;
            self.interest = interest;
        }
        Ok(Next::Wait)
    }
}

/// Writes as much of `data` as the socket takes now; returns how many bytes that was.
fn write_some(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut sent = 0;
    while sent < data.len() {
        match stream.write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// The event loop: waits for readiness, accepts new clients, drives the ready connections.
/// Returns only if epoll itself fails; a connection's error closes that connection only.
pub fn serve(mut listener: TcpListener) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut connections: HashMap<Token, Connection> = HashMap::new();
    // Tokens are never reused, so a late event for a closed connection cannot reach a new one.
    let mut next_token = 1;
    let mut buf = vec![0u8; BUF_SIZE];

    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                accept_all(
                    &listener,
                    poll.registry(),
                    &mut connections,
                    &mut next_token,
                );
                continue;
            }
            let token = event.token();
            let Some(conn) = connections.get_mut(&token) else {
                continue; // closed earlier in this batch
            };
            let next = conn.on_ready(poll.registry(), token, &mut buf);
            match next {
                Ok(Next::Wait) => {}
                Ok(Next::Close) => {
                    connections.remove(&token);
                }
                Err(e) => {
                    report(&e);
                    connections.remove(&token);
                }
            }
        }
    }
}

/// Accepts every waiting connection: the listener is edge-triggered too, so we accept until
/// `WouldBlock` or we would miss clients that arrived together.
fn accept_all(
    listener: &TcpListener,
    registry: &Registry,
    connections: &mut HashMap<Token, Connection>,
    next_token: &mut usize,
) {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                let token = Token(*next_token);
                *next_token += 1;
                match Connection::new(stream, registry, token) {
                    Ok(conn) => {
                        connections.insert(token, conn);
                    }
                    Err(e) => eprintln!("echo_mio: register: {e}"),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and friends: the connection stays in the kernel's queue; we will try
                // again when the next client arrives. (See README, "Going further".)
                eprintln!("echo_mio: accept: {e}");
                return;
            }
        }
    }
}

/// Logs a connection's error, except the ordinary ways for a client to leave.
fn report(e: &io::Error) {
    // Sends use MSG_NOSIGNAL: writing to a reset socket is an EPIPE error value, not SIGPIPE.
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        eprintln!("echo_mio: connection: {e}");
    }
}

fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(args) => args.addr,
        Err(code) => return code,
    };
    let listener = match bind(addr) {
        Ok(listener) => listener,
        Err(source) => {
            eprintln!("echo_mio: {}", ServerError::Bind { addr, source });
            return ExitCode::from(1);
        }
    };
    // The address the socket is bound to, not the one asked for: with port 0 the kernel picks
    // the port, and only local_addr() knows it.
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("echo_mio: local_addr: {e}"),
    }
    if let Err(e) = serve(listener) {
        eprintln!("echo_mio: {}", ServerError::Poll(e));
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
