//! Echo server, version 1 of 3: blocking I/O and one thread per connection.
//!
//! `echo_blocking [--addr HOST:PORT]` sends back every byte each client sends.
//!
//! The simplest model there is: every connection gets its own OS thread, and that thread calls
//! the blocking `read` and `write` system calls. While a thread waits for its client, the kernel
//! puts it to sleep and runs another one, so the code reads top to bottom, like a single-client
//! program. The price is paid per connection: a thread (a kernel task, a stack that is 2 MiB of
//! reserved address space and a few touched pages of real memory) and a context switch each time
//! the kernel moves from one waiting client to the next. Labs 2.6 and 2.7 serve the same clients
//! with one thread.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use clap::Parser;

use socket2::{Domain, Socket, Type};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we `accept` them.
pub const BACKLOG: i32 = 1024;
/// Bytes read per `read` call. The buffer lives on the connection thread's stack.
pub const BUF_SIZE: usize = 8 * 1024;

const USAGE: &str = "usage: echo_blocking [--addr HOST:PORT]";

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
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
/// `std::net::TcpListener::bind` would do socket + bind + listen in one call, but it passes a
/// backlog of 128 to listen(2): once 128 connections wait to be accepted, the kernel drops new
/// SYNs and those clients retry a second later. A burst of 1,000 clients needs a deeper queue,
/// so we make the socket ourselves (socket2 is a thin layer over the same system calls) and
/// turn it into a std listener. The kernel caps the value at `net.core.somaxconn`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // Restarting the server must not fail while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// Accepts connections forever and hands each one to a new thread.
pub fn serve(listener: TcpListener) {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                // Builder instead of thread::spawn: spawning fails (EAGAIN) when the process hits
                // its thread limit, and that must cost one connection, not the server.
                let spawned = thread::Builder::new()
                    .name("echo-conn".into())
                    .spawn(move || {
                        if let Err(e) = handle_connection(stream) {
                            report(&e);
                        }
                    });
                if let Err(e) = spawned {
                    eprintln!("echo_blocking: cannot start a thread: {e}");
                }
            }
            Err(e) => {
                // ECONNABORTED (the client left before we accepted) or EMFILE (out of file
                // descriptors) concern one connection: report, back off a little, go on.
                eprintln!("echo_blocking: accept: {e}");
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Echoes one connection until the client closes it. Runs on the connection's own thread,
/// so blocking here blocks nobody else.
pub fn handle_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; BUF_SIZE];
    loop {
        let n = match stream.read(&mut buf) {
            // 0 bytes: the client shut down its sending side (FIN). Everything it sent has been
            // echoed, because write_all below returned; returning drops the stream, which closes
            // the socket and sends our FIN.
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        // write_all loops over partial writes; each write(2) sleeps while the client's receive
        // buffer and our send buffer are full. A client that never reads parks this thread
        // only.
        stream.write_all(&buf[..n])?;
    }
}

/// Logs a connection's error, except the ordinary ways for a client to leave.
fn report(e: &io::Error) {
    // A reset shows up as ECONNRESET on read or EPIPE on write. std sends with MSG_NOSIGNAL
    // (and Rust programs ignore SIGPIPE anyway), so writing to a reset socket is an error
    // value, not a signal that kills the process.
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        eprintln!("echo_blocking: connection: {e}");
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
            eprintln!("echo_blocking: {}", ServerError::Bind { addr, source });
            return ExitCode::from(1);
        }
    };
    // The address the socket is bound to, not the one asked for: with port 0 the kernel picks
    // the port, and only local_addr() knows it.
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("echo_blocking: local_addr: {e}"),
    }
    serve(listener);
    ExitCode::SUCCESS
}
