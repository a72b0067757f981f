//! Echo server, version 3 of 3: tokio tasks.
//!
//! `echo_tokio [--addr HOST:PORT]` sends back every byte each client sends.
//!
//! The code looks like lab 2.5 (a loop that reads then writes, one per connection) and runs like
//! lab 2.6 (non-blocking sockets, epoll, a few threads). Each connection is a *task*: a future
//! the runtime polls. When a read would block, `.await` returns control to the runtime, which
//! parks the task and registers interest with its epoll reactor; when epoll reports the socket,
//! the task is woken and polled again where it left off. The compiler turns the `async fn` into
//! the state machine that lab 2.6 wrote by hand (its `pending` buffer is the `buf` still alive
//! across an `.await`), and the runtime runs many of them on a few worker threads (one per
//! core by default).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

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

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
        }
    }
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
/// `tokio::net::TcpListener::bind` is mio's bind underneath, which listens with a backlog of
/// 128. `TcpSocket` is tokio's builder for the same system calls and lets us choose. It must
/// run inside the runtime: the listener is registered with the runtime's reactor.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accepts connections forever and spawns a task for each one.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // A task costs one allocation holding the future's state (about the size of
                // `handle_connection`'s locals), not a thread with its own stack.
                tokio::spawn(async move {
                    if let Err(e) = handle_connection(stream).await {
                        report(&e);
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends concern one connection: report, back off, go on. The
                // sleep is a timer in the runtime; it blocks no thread.
                eprintln!("echo_tokio: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Echoes one connection until the client closes it.
pub async fn handle_connection(mut stream: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        // Each `.await` may suspend this task (the socket said WouldBlock) and let the worker
        // thread run other tasks meanwhile. A client that never reads parks this task in
        // `write_all`, and stops being read: the same backpressure as lab 2.6.
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            // FIN from the client, and everything before it is echoed: dropping the stream
            // closes the socket.
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// Logs a connection's error, except the ordinary ways for a client to leave.
fn report(e: &io::Error) {
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    ) {
        eprintln!("echo_tokio: connection: {e}");
    }
}

// The multi-threaded runtime: one worker thread per core, each running an event loop over
// its share of the tasks, stealing work from the others when idle.
#[tokio::main]
async fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(args) => args.addr,
        Err(code) => return code,
    };
    let listener = match bind(addr) {
        Ok(listener) => listener,
        Err(source) => {
            eprintln!("echo_tokio: {}", ServerError::Bind { addr, source });
            return ExitCode::from(1);
        }
    };
    // The address the socket is bound to, not the one asked for: with port 0 the kernel picks
    // the port, and only local_addr() knows it.
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("echo_tokio: local_addr: {e}"),
    }
    serve(listener).await;
    ExitCode::SUCCESS
}
