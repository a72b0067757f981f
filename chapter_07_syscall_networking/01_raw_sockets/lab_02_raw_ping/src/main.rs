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

/// Everything that can stop the program.
#[derive(Debug)]
enum PingError {
    /// Bad command line (exit code 2).
    Usage(String),
    /// `socket(SOCK_RAW)` was refused: not root and no CAP_NET_RAW (exit code 2).
    NeedCapNetRaw,
    /// A system call failed.
    Io(&'static str, io::Error),
}

impl std::fmt::Display for PingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingError::Usage(why) => write!(f, "{why}\n{USAGE}"),
            PingError::NeedCapNetRaw => write!(
                f,
                "raw sockets need CAP_NET_RAW: run as root, inside `unshare -rn` (then `ip link set lo up`), or `sudo setcap cap_net_raw+ep <this binary>`"
            ),
            PingError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

const USAGE: &str = "usage: ch7_raw_ping <ipv4> [-c count] [-i interval_s] [-W wait_s] [-s data_bytes]\n       ch7_raw_ping --udp <ipv4:port> [--sport port] <text>";

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

enum Command {
    Ping(PingOptions),
    Udp {
        dst: SocketAddrV4,
        sport: u16,
        payload: String,
    },
}

fn parse_args(args: &[String]) -> Result<Command, PingError> {
    fn value<'a>(
        it: &mut impl Iterator<Item = &'a String>,
        flag: &str,
    ) -> Result<&'a String, PingError> {
        it.next()
            .ok_or_else(|| PingError::Usage(format!("{flag} needs a value")))
    }
    fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, PingError> {
        text.parse()
            .map_err(|_| PingError::Usage(format!("bad value for {flag}: {text}")))
    }
    fn seconds(text: &str, flag: &str) -> Result<Duration, PingError> {
        Duration::try_from_secs_f64(number(text, flag)?)
            .map_err(|_| PingError::Usage(format!("bad duration for {flag}: {text}")))
    }

    let mut it = args.iter();
    let (mut target, mut udp_dst, mut text) = (None, None, None);
    let mut opts = (
        4u16,
        Duration::from_secs(1),
        Duration::from_secs(1),
        56usize,
        40000u16,
    );
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-c" => opts.0 = number(value(&mut it, "-c")?, "-c")?,
            "-i" => opts.1 = seconds(value(&mut it, "-i")?, "-i")?,
            "-W" => opts.2 = seconds(value(&mut it, "-W")?, "-W")?,
            "-s" => opts.3 = number(value(&mut it, "-s")?, "-s")?,
            "--sport" => opts.4 = number(value(&mut it, "--sport")?, "--sport")?,
            "--udp" => udp_dst = Some(number::<SocketAddrV4>(value(&mut it, "--udp")?, "--udp")?),
            flag if flag.starts_with('-') => {
                return Err(PingError::Usage(format!("unknown option {flag}")));
            }
            _ if udp_dst.is_some() => text = Some(arg.clone()),
            _ => target = Some(number::<Ipv4Addr>(arg, "the target")?),
        }
    }
    if let Some(dst) = udp_dst {
        let payload = text.ok_or_else(|| PingError::Usage("--udp needs a text to send".into()))?;
        return Ok(Command::Udp {
            dst,
            sport: opts.4,
            payload,
        });
    }
    let target = target.ok_or_else(|| PingError::Usage("missing target".into()))?;
    if opts.0 == 0 || opts.3 > 65_000 {
        return Err(PingError::Usage(
            "count must be at least 1, size at most 65000".into(),
        ));
    }
    Ok(Command::Ping(PingOptions {
        target,
        count: opts.0,
        interval: opts.1,
        wait: opts.2,
        data_len: opts.3,
    }))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(|command| match command {
        Command::Ping(opts) => ping(&opts),
        Command::Udp {
            dst,
            sport,
            payload,
        } => send_udp(dst, sport, payload.as_bytes()),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ch7_raw_ping: {e}");
            ExitCode::from(2)
        }
    }
}
