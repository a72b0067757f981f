//! ## Goal
//! Write `udp_echo`, one binary with two commands: a UDP echo server that can pretend to be a lossy
//! network, and a client that gets its answers anyway. UDP promises nothing: a datagram arrives
//! whole or not at all, maybe twice, maybe late. The client builds the minimum of reliability that
//! DNS resolvers, QUIC stacks and game clients build: a timeout, retries with exponential backoff,
//! a limit on attempts, and sequence numbers to tell the answer it waits for from a stale
//! duplicate.
//!
//! ## Requirements
//! 1. `udp_echo server` echoes every datagram back to its sender as one datagram, byte for byte,
//!    whatever its size from 0 to 65,507 bytes (the largest UDP payload over IPv4). It prints
//!    `listening on <addr>` once bound.
//! 2. With `--drop-every K` (K >= 1) the server drops the K-th, 2K-th, 3K-th... datagram it receives
//!    and echoes the others.
//! 3. `EchoClient::request(payload)` returns the echoed payload. A payload over 65,499 bytes (65,507
//!    minus the 8-byte header) is refused with `EchoError::TooLarge` and nothing is sent.
//! 4. Each request is sent as the next sequence number (8 bytes, big-endian) followed by the
//!    payload; `Reply::seq` is that number. A retry sends exactly the same datagram again.
//! 5. While waiting, the client drops every datagram that is not the echo of the current request:
//!    a late echo of an earlier request, a datagram too short to hold a sequence number, an echo
//!    whose bytes differ from what was sent, and anything from another address than the server's.
//!    Junk does not cost an attempt.
//! 6. The first attempt waits `first_timeout`; each retry waits twice as long as the one before.
//!    After `max_attempts` sends without an echo the client returns `EchoError::NoReply`, whose
//!    message names the server and the number of attempts.
//! 7. `udp_echo client --addr A MESSAGE...` sends each message in turn and prints each echo on its
//!    own line. When an echo never comes it prints one line on stderr naming the server and the
//!    attempts, and exits with code 1.
//! 8. Bad arguments and an address in use end the program with a message on stderr and a
//!    non-zero exit code, never a panic.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `udp_echo server` echoes every datagram back to its sender as one datagram,
//!   byte for byte, whatever its size from 0 to 65,507 bytes (the largest UDP payload over IPv4)
//! - [ ] Requirement 2: With `--drop-every K` (K >= 1) the server drops the K-th, 2K-th, 3K-th
//! - [ ] Requirement 3: `EchoClient::request(payload)` returns the echoed payload
//! - [ ] Requirement 4: Each request is sent as the next sequence number (8 bytes, big-endian)
//!   followed by the payload; `Reply::seq` is that number
//! - [ ] Requirement 5: While waiting, the client drops every datagram that is not the echo of the
//!   current request: a late echo of an earlier request, a datagram too short to hold a sequence
//!   number, an echo whose bytes differ from what was sent, and anything from another address than
//!   the server's
//! - [ ] Requirement 6: The first attempt waits `first_timeout`; each retry waits twice as long as
//!   the one before
//! - [ ] Requirement 7: `udp_echo client --addr A MESSAGE...` sends each message in turn and prints
//!   each echo on its own line
//! - [ ] Requirement 8: Bad arguments and an address in use end the program with a message on
//!   stderr and a non-zero exit code, never a panic
//!
//! ## Notes
//!
//! UDP echo, server and client:
//!
//! ```text
//! udp_echo server [--addr HOST:PORT] [--drop-every K]
//! udp_echo client --addr HOST:PORT [--timeout-ms MS] [--attempts N] MESSAGE...
//! ```
//!
//! Read README.md for the requirements; `cargo lab test 3.2` grades this file. The grader
//! runs the binary for the server and the `client` command, and calls `EchoClient` directly:
//! keep the names and signatures below. Remove the `allow` below once everything is used.
//!
//! Wire format of a request and of its reply (the server echoes bytes, it knows nothing of it):
//! an 8-byte big-endian sequence number, then the payload.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

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
    /// One clear line; `NoReply` names the server and the number of attempts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!("a message for each variant")
    }
}

/// Echoes every datagram back to its sender; with `drop_every = Some(k)`, drops the k-th,
/// 2k-th... datagram received instead. Mind the buffer size: a datagram may be 65,507 bytes.
pub fn run_server(socket: &UdpSocket, drop_every: Option<u64>) -> io::Result<()> {
    todo!("recv_from, count, maybe drop, send_to")
}

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
    /// The sequence number the request carried.
    pub seq: u64,
    /// The echoed payload (without the 8-byte header).
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
}

impl EchoClient {
    /// Binds an ephemeral port and connects the socket to `server`, so that only the server's
    /// datagrams are received.
    pub fn connect(server: SocketAddr, policy: RetryPolicy) -> Result<EchoClient, EchoError> {
        todo!("UdpSocket::bind then connect")
    }

    /// The client's own address (where replies must be sent).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        todo!("the socket's local address")
    }

    /// Sends `payload` with the next sequence number and waits for its echo: on a timeout,
    /// sends the same datagram again and waits twice as long, up to `max_attempts` sends.
    /// Replies that are not the echo of this request are dropped. `TooLarge` when `payload`
    /// exceeds [`MAX_PAYLOAD`] (nothing is sent), `NoReply` after the last attempt.
    pub fn request(&mut self, payload: &[u8]) -> Result<Reply, EchoError> {
        todo!("header + payload, send, recv with a deadline, match, back off, retry")
    }
}

/// What the command line asks for (given: main() parses it with `Command::parse()`).
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

fn main() -> ExitCode {
    todo!(
        "Command::parse(); bind and print `listening on <addr>`, or send each message and print \
         its echo; an error on stderr: exit code 1"
    )
}
