//! UDP echo, server and client:
//!
//! ```text
//! udp_echo server [--addr HOST:PORT] [--drop-every K]
//! udp_echo client --addr HOST:PORT [--timeout-ms MS] [--attempts N] MESSAGE...
//! ```
//!
//! UDP gives you datagrams: each `send` is one message that arrives whole or not at all, maybe
//! twice, maybe out of order. Reliability is the application's job, and this lab builds the
//! smallest version of it:
//!
//! - **Boundaries for free.** One `recv_from` returns exactly one datagram. The server needs a
//!   buffer as large as the largest datagram (65,507 bytes of payload over IPv4), or the kernel
//!   silently cuts the rest off.
//! - **Timeouts and retries.** The client cannot tell a lost request from a lost reply or a
//!   slow server; it waits, then sends again, doubling the wait each time (exponential backoff,
//!   so a struggling server is not hammered), and gives up after a fixed number of attempts.
//! - **Matching by sequence number.** Retries create duplicates: the reply to attempt 1 may
//!   arrive after attempt 2 was sent, and then sit in the socket when the next request waits.
//!   Every request carries a sequence number; a reply with another number is stale and dropped.
//!
//! Wire format of a request and of its reply (the server echoes bytes, it knows nothing of it):
//! an 8-byte big-endian sequence number, then the payload.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, value_parser};

/// Address used when `--addr` is not given to the server.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7979";
/// Largest UDP payload over IPv4: 65,535 (IP total length) - 20 (IP header) - 8 (UDP header).
pub const MAX_DATAGRAM: usize = 65_507;
/// Bytes of the sequence number in front of every request.
pub const HEADER_LEN: usize = 8;
/// Largest payload a request may carry.
pub const MAX_PAYLOAD: usize = MAX_DATAGRAM - HEADER_LEN;

/// Everything that can go wrong, in the server or in the client.
#[derive(Debug)]
pub enum EchoError {
    /// The socket could not be bound.
    Bind { addr: SocketAddr, source: io::Error },
    /// A socket call failed.
    Io(io::Error),
    /// The payload does not fit in one datagram with its header.
    TooLarge { len: usize },
    /// Every attempt timed out.
    NoReply { server: SocketAddr, attempts: u32 },
}

impl fmt::Display for EchoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EchoError::Bind { addr, source } => write!(f, "cannot bind {addr}: {source}"),
            EchoError::Io(e) => write!(f, "{e}"),
            EchoError::TooLarge { len } => write!(
                f,
                "payload of {len} bytes is too large (max {MAX_PAYLOAD} bytes per datagram)"
            ),
            EchoError::NoReply { server, attempts } => {
                write!(f, "no reply from {server} after {attempts} attempts")
            }
        }
    }
}

impl From<io::Error> for EchoError {
    fn from(e: io::Error) -> Self {
        EchoError::Io(e)
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// Echoes every datagram back to its sender, dropping every `drop_every`-th one received
/// (counting from 1) when asked: a lossy network on demand.
pub fn run_server(socket: &UdpSocket, drop_every: Option<u64>) -> io::Result<()> {
    // One byte more than the largest datagram: if recv ever filled it, something was cut.
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut received: u64 = 0;
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            // An unconnected UDP socket should not see these, but some kernels report an
            // ICMP error from an earlier send here: it concerns one peer, not the server.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        received += 1;
        if drop_every.is_some_and(|k| received.is_multiple_of(k)) {
            continue;
        }
        if let Err(e) = socket.send_to(&buf[..len], peer) {
            // A full send buffer or a vanished peer costs one reply, like any loss in UDP.
            eprintln!("udp_echo: send to {peer}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client

/// How long to wait and how often to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait for the first attempt; each retry waits twice as long as the one before.
    pub first_timeout: Duration,
    /// Attempts in all (the first send included) before giving up.
    pub max_attempts: u32,
}

/// A matched reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub seq: u64,
    pub payload: Vec<u8>,
    /// Attempts it took (1 when the first one was answered).
    pub attempts: u32,
}

/// A client that sends one request at a time and waits for its echo.
pub struct EchoClient {
    socket: UdpSocket,
    server: SocketAddr,
    policy: RetryPolicy,
    next_seq: u64,
    buf: Vec<u8>,
}

impl EchoClient {
    /// Binds an ephemeral port and *connects* the socket to `server`.
    ///
    /// `connect` on UDP sends nothing: it sets the default destination and makes the kernel
    /// drop datagrams from any other address, so a stranger cannot answer in the server's
    /// place. It also lets ICMP errors ("port unreachable") come back as `ECONNREFUSED`.
    pub fn connect(server: SocketAddr, policy: RetryPolicy) -> Result<EchoClient, EchoError> {
        let local: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid address")
        } else {
            "[::]:0".parse().expect("valid address")
        };
        let socket = UdpSocket::bind(local).map_err(|source| EchoError::Bind {
            addr: local,
            source,
        })?;
        socket.connect(server)?;
        Ok(EchoClient {
            socket,
            server,
            policy,
            next_seq: 1,
            buf: vec![0u8; MAX_DATAGRAM + 1],
        })
    }

    /// The client's own address (where replies must be sent).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `payload` and waits for its echo, retrying with exponential backoff.
    pub fn request(&mut self, payload: &[u8]) -> Result<Reply, EchoError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(EchoError::TooLarge { len: payload.len() });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut datagram = Vec::with_capacity(HEADER_LEN + payload.len());
        datagram.extend_from_slice(&seq.to_be_bytes());
        datagram.extend_from_slice(payload);

        let mut timeout = self.policy.first_timeout;
        for attempt in 1..=self.policy.max_attempts {
            match self.socket.send(&datagram) {
                Ok(_) => {}
                // The ICMP error of an earlier attempt: this send may still get through.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(len) = self.wait_for(&datagram, Instant::now() + timeout)? {
                return Ok(Reply {
                    seq,
                    payload: self.buf[HEADER_LEN..len].to_vec(),
                    attempts: attempt,
                });
            }
            timeout = timeout.saturating_mul(2);
        }
        Err(EchoError::NoReply {
            server: self.server,
            attempts: self.policy.max_attempts,
        })
    }

    /// Reads datagrams until the echo of `datagram` arrives (its length) or `deadline` passes
    /// (`None`). Anything else is stale or corrupt and dropped: an echo of an earlier sequence
    /// number (a duplicate of a retried request), a datagram too short to hold a header, or
    /// bytes that differ from what we sent.
    fn wait_for(&mut self, datagram: &[u8], deadline: Instant) -> Result<Option<usize>, EchoError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut self.buf) {
                Ok(len) if self.buf[..len] == *datagram => return Ok(Some(len)),
                Ok(_) => continue, // stale or corrupt: drop it and keep waiting
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                // Port unreachable: nobody listens (yet). Keep waiting out this attempt
                // instead of spinning; the next attempt may find the server up.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command line

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "udp_echo",
    about = "A UDP echo server, and a client that retries with exponential backoff"
)]
pub enum Command {
    /// Echo every datagram back to its sender
    Server {
        /// Address to listen on
        #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
        addr: SocketAddr,
        /// Drop the K-th, 2K-th, 3K-th... datagram received instead of echoing it
        #[arg(long, value_name = "K", value_parser = value_parser!(u64).range(1..))]
        drop_every: Option<u64>,
    },
    /// Send each MESSAGE in turn and print its echo
    Client {
        /// The server's address
        #[arg(long, value_name = "HOST:PORT")]
        addr: SocketAddr,
        /// Milliseconds to wait for the first attempt; each retry waits twice as long
        #[arg(
            long,
            value_name = "MS",
            default_value_t = 200,
            value_parser = value_parser!(u64).range(1..)
        )]
        timeout_ms: u64,
        /// Sends in all before giving up
        #[arg(
            long,
            value_name = "N",
            default_value_t = 5,
            value_parser = value_parser!(u32).range(1..)
        )]
        attempts: u32,
        /// The messages, one datagram each
        messages: Vec<String>,
    },
}

fn run(command: Command) -> Result<(), EchoError> {
    match command {
        Command::Server { addr, drop_every } => {
            let socket =
                UdpSocket::bind(addr).map_err(|source| EchoError::Bind { addr, source })?;
            println!("listening on {}", socket.local_addr()?);
            run_server(&socket, drop_every)?;
            Ok(())
        }
        Command::Client {
            addr,
            timeout_ms,
            attempts,
            messages,
        } => {
            let policy = RetryPolicy {
                first_timeout: Duration::from_millis(timeout_ms),
                max_attempts: attempts,
            };
            let mut client = EchoClient::connect(addr, policy)?;
            for message in messages {
                let reply = client.request(message.as_bytes())?;
                println!("{}", String::from_utf8_lossy(&reply.payload));
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Command::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp_echo: {e}");
            ExitCode::from(1)
        }
    }
}
