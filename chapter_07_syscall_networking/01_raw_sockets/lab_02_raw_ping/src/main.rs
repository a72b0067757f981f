//! ## Goal
//! Write `ping` yourself on a raw socket, `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`, through libc:
//! build echo requests with an identifier and a sequence number, receive replies with a timeout,
//! throw away everything that is not yours (a raw ICMP socket sees *all* ICMP of the host, your own
//! requests included on `lo`), and report round-trip times and loss like `ping(8)`. Then go one
//! layer lower: with `IPPROTO_RAW` (which implies `IP_HDRINCL`) you write the IPv4 header too, and
//! watch the kernel fill in the fields you left at zero.
//!
//! ## Requirements
//! 1. `ch7_raw_ping <ipv4> [-c count] [-i interval_s] [-W wait_s] [-s data_bytes]` sends `count`
//!    echo requests (default 4, one per `interval`, default 1 s) carrying `data_bytes` of data
//!    (default 56) and prints one line per reply, in the format of ping(8):
//!    `64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms` (bytes = ICMP length, ttl from
//!    the reply's IPv4 header).
//! 2. At the end: `--- <ip> ping statistics ---`, then
//!    `N packets transmitted, M received, L% packet loss, time Tms` and, when something came back,
//!    `rtt min/avg/max/mdev = a/b/c/d ms` consistent with the reply lines.
//! 3. Only replies to this process count: echo replies (type 0) with its identifier, a sequence
//!    it sent and a correct ICMP checksum. Its own requests, other pings' replies and other ICMP
//!    are ignored (several pings at once each see exactly their own replies, no `DUP!`).
//! 4. Lost replies: after the last request the program waits at most `wait` seconds; the summary
//!    then reports the loss, and the exit code is 1 when nothing came back (0 otherwise).
//! 5. `ch7_raw_ping --udp <ipv4:port> [--sport port] <text>` sends one UDP datagram through
//!    `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)` with a hand-built IPv4 header whose identification,
//!    header checksum and source address are left at 0 for the kernel to fill in, and a correct UDP
//!    checksum. An ordinary `UdpSocket` receives `<text>` from `--sport`.
//! 6. Without `CAP_NET_RAW` the program says so on stderr in one line that names the capability
//!    and the fix, with exit code 2 (no panic). Bad arguments print the usage, exit code 2.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.2    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `ch7_raw_ping <ipv4> [-c count] [-i interval_s] [-W wait_s] [-s
//!   data_bytes]` sends `count` echo requests (default 4, one per `interval`, default 1 s) carrying
//!   `data_bytes` of data (default 56) and prints one line per reply, in the format of ping(8): `64
//!   bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms` (bytes = ICMP length, ttl from the
//!   reply's IPv4 header)
//! - [ ] Requirement 2: At the end: `--- <ip> ping statistics ---`, then `N packets transmitted, M
//!   received, L% packet loss, time Tms` and, when something came back, `rtt min/avg/max/mdev =
//!   a/b/c/d ms` consistent with the reply lines
//! - [ ] Requirement 3: Only replies to this process count: echo replies (type 0) with its
//!   identifier, a sequence it sent and a correct ICMP checksum
//! - [ ] Requirement 4: Lost replies: after the last request the program waits at most `wait`
//!   seconds; the summary then reports the loss, and the exit code is 1 when nothing came back (0
//!   otherwise)
//! - [ ] Requirement 5: `ch7_raw_ping --udp <ipv4:port> [--sport port] <text>` sends one UDP
//!   datagram through `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)` with a hand-built IPv4 header whose
//!   identification, header checksum and source address are left at 0 for the kernel to fill in,
//!   and a correct UDP checksum
//! - [ ] Requirement 6: Without `CAP_NET_RAW` the program says so on stderr in one line that names
//!   the capability and the fix, with exit code 2 (no panic)
//!
//! ## Notes
//!
//! Raw ICMP ping and IP_HDRINCL, straight on libc.
//!
//! ```text
//! ch7_raw_ping <ipv4> [-c count] [-i interval_s] [-W wait_s] [-s data_bytes]
//! ch7_raw_ping --udp <ipv4:port> [--sport port] <text>
//! ```
//!
//! The first form is `ping(8)`: echo requests on `socket(AF_INET, SOCK_RAW, IPPROTO_ICMP)`.
//! The kernel writes the IPv4 header for us, but hands every ICMP packet of the host to every
//! raw ICMP socket, IPv4 header included: our own requests (on `lo`), other pings' replies,
//! unreachables. So we filter: type 0 (echo reply), our identifier, a sequence we sent.
//!
//! The second form writes the IPv4 header too: `socket(AF_INET, SOCK_RAW, IPPROTO_RAW)` implies
//! `IP_HDRINCL`. We leave the identification, header checksum and source address at zero and
//! the kernel fills them in (raw(7)); the UDP checksum is ours, and it covers the source address,
//! so we ask the routing table which source the kernel will pick.
//!
//! Read README.md for the requirements; `cargo lab test 7.2` grades this file through the
//! binary (run the tests as root, or inside `unshare -rn`). The command line, the error type and
//! `sockaddr_in` are written for you; the sockets and the packets are yours. Remove the `allow`
//! once every item is used.
#![allow(unused_variables, dead_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::RangedU64ValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, value_parser};

/// Everything that can stop the program.
#[derive(Debug)]
enum PingError {
    /// `socket(SOCK_RAW)` was refused: not root and no CAP_NET_RAW (exit code 2).
    NeedCapNetRaw,
    /// A system call failed.
    Io(&'static str, io::Error),
}

impl std::fmt::Display for PingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingError::NeedCapNetRaw => write!(
                f,
                "raw sockets need CAP_NET_RAW: run as root, inside `unshare -rn` (then `ip link set lo up`), or `sudo setcap cap_net_raw+ep <this binary>`"
            ),
            PingError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;

/// RFC 1071 Internet checksum (odd lengths padded with a zero byte).
fn checksum(data: &[u8]) -> u16 {
    todo!("RFC 1071 Internet checksum (odd lengths padded with a zero byte)")
}

/// A raw socket, closed on drop.
struct RawSocket(OwnedFd);

impl RawSocket {
    fn open(protocol: libc::c_int) -> Result<RawSocket, PingError> {
        todo!(
            "socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, protocol); EPERM/EACCES become NeedCapNetRaw"
        )
    }

    fn send_to(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        todo!("sendto(2) with a sockaddr_in for dst (port 0: raw sockets have no ports)")
    }

    /// Waits at most `timeout` for a packet; `None` on timeout.
    fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        todo!("poll(2) with a timeout, then recv(2); None on timeout")
    }
}

fn sockaddr_in(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        // s_addr is in network byte order: the octets as they are.
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    }
}

// ---------------------------------------------------------------------------------------------
// Part 1: ping
// ---------------------------------------------------------------------------------------------

struct PingOptions {
    target: Ipv4Addr,
    count: u16,
    interval: Duration,
    wait: Duration,
    data_len: usize,
}

/// An echo request: type 8, code 0, checksum, identifier, sequence, then `data_len` bytes.
fn echo_request(ident: u16, seq: u16, data_len: usize) -> Vec<u8> {
    todo!("An echo request: type 8, code 0, checksum, identifier, sequence, then data_len bytes")
}

/// An echo reply for us: (source, ttl, sequence, ICMP length). A raw ICMP socket receives the
/// IPv4 header too; anything that is not a valid reply to our identifier is `None`.
fn parse_reply(packet: &[u8], ident: u16) -> Option<(Ipv4Addr, u8, u16, usize)> {
    todo!("skip the IPv4 header (IHL), keep type 0 with our identifier and a valid checksum")
}

fn ping(opts: &PingOptions) -> Result<ExitCode, PingError> {
    todo!(
        "open the socket, pick an identifier, send count requests every interval, collect replies with a deadline, print the summary"
    )
}

// ---------------------------------------------------------------------------------------------
// Part 2: IP_HDRINCL, a hand-built IPv4 + UDP datagram
// ---------------------------------------------------------------------------------------------

/// The source address the kernel will choose for `dst`: connecting a UDP socket runs the
/// route lookup without sending anything.
fn source_for(dst: SocketAddrV4) -> Result<Ipv4Addr, PingError> {
    todo!("connect a UdpSocket to dst (no packet is sent) and read its local address")
}

/// IPv4 header (identification, checksum and source left at 0 for the kernel) + UDP header
/// with a checksum over the pseudo-header of the source the kernel will use.
fn udp_datagram(src: Ipv4Addr, sport: u16, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    todo!(
        "20-byte IPv4 header (id, checksum, source = 0) + UDP header with a pseudo-header checksum"
    )
}

fn send_udp(dst: SocketAddrV4, sport: u16, payload: &[u8]) -> Result<ExitCode, PingError> {
    todo!("open an IPPROTO_RAW socket, find the source, build the datagram, sendto")
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/// The command line, as clap parses it; [`parse_command`] checks it into a [`Command`].
#[derive(Debug, Parser)]
#[command(
    name = "ch7_raw_ping",
    about = "ping(8) on a raw ICMP socket; with --udp, one UDP datagram with a hand-built IPv4 \
             header",
    override_usage = "\
        ch7_raw_ping <IPV4> [-c COUNT] [-i INTERVAL_S] [-W WAIT_S] [-s DATA_BYTES]\n       \
        ch7_raw_ping --udp <IPV4:PORT> [--sport PORT] <TEXT>"
)]
struct Args {
    /// The host to ping; with --udp, the text to send
    #[arg(value_name = "IPV4 | TEXT")]
    operand: String,
    /// Echo requests to send
    #[arg(
        short = 'c',
        value_name = "COUNT",
        default_value_t = 4,
        value_parser = value_parser!(u16).range(1..)
    )]
    count: u16,
    /// Seconds between two requests
    #[arg(short = 'i', value_name = "INTERVAL_S", default_value = "1", value_parser = seconds)]
    interval: Duration,
    /// Seconds to wait for the replies after the last request
    #[arg(short = 'W', value_name = "WAIT_S", default_value = "1", value_parser = seconds)]
    wait: Duration,
    /// Bytes of data in each request
    #[arg(
        short = 's',
        value_name = "DATA_BYTES",
        default_value_t = 56,
        value_parser = RangedU64ValueParser::<usize>::new().range(..=65_000)
    )]
    data_len: usize,
    /// Instead of pinging, send one UDP datagram with a hand-built IPv4 header to this address
    #[arg(long, value_name = "IPV4:PORT")]
    udp: Option<SocketAddrV4>,
    /// The datagram's source port
    #[arg(long, value_name = "PORT", default_value_t = 40000, requires = "udp")]
    sport: u16,
}

/// A number of seconds, fractions allowed: `0.2`.
fn seconds(text: &str) -> Result<Duration, String> {
    let secs: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

enum Command {
    Ping(PingOptions),
    Udp {
        dst: SocketAddrV4,
        sport: u16,
        payload: String,
    },
}

impl Args {
    /// What to do: without `--udp` the operand must be an IPv4 address.
    fn into_command(self) -> Result<Command, clap::Error> {
        if let Some(dst) = self.udp {
            return Ok(Command::Udp {
                dst,
                sport: self.sport,
                payload: self.operand,
            });
        }
        let target = self.operand.parse().map_err(|e| {
            let why = format!("invalid value '{}' for '<IPV4>': {e}", self.operand);
            Args::command().error(ErrorKind::ValueValidation, why)
        })?;
        Ok(Command::Ping(PingOptions {
            target,
            count: self.count,
            interval: self.interval,
            wait: self.wait,
            data_len: self.data_len,
        }))
    }
}

/// Parses the command line before any socket is opened. `--help` prints the usage (exit 0); a
/// bad argument prints the error and the usage (exit 2): clap shows the usage after an unknown
/// option but not after a bad value, and requirement 6 wants it every time.
fn parse_command() -> Command {
    Args::try_parse()
        .and_then(Args::into_command)
        .unwrap_or_else(|mut e| {
            if e.use_stderr() && e.get(ContextKind::Usage).is_none() {
                let usage = Args::command().render_usage();
                e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
            }
            e.exit()
        })
}

fn main() -> ExitCode {
    let result = match parse_command() {
        Command::Ping(opts) => ping(&opts),
        Command::Udp {
            dst,
            sport,
            payload,
        } => send_udp(dst, sport, payload.as_bytes()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ch7_raw_ping: {e}");
            ExitCode::from(2)
        }
    }
}
