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

use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A raw socket, closed on drop.
struct RawSocket(OwnedFd);

impl RawSocket {
    fn open(protocol: libc::c_int) -> Result<RawSocket, PingError> {
        // SAFETY: socket(2) takes plain integers and returns a new fd or -1.
        let fd =
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => PingError::NeedCapNetRaw,
                _ => PingError::Io("socket", e),
            });
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        Ok(RawSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn send_to(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let addr = sockaddr_in(dst, 0);
        // SAFETY: packet and addr are valid for the lengths passed; the kernel only reads them.
        let sent = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                0,
                (&raw const addr).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits at most `timeout` for a packet; `None` on timeout.
    fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let mut pfd = libc::pollfd {
            fd: self.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: pfd is one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(e)
            };
        }
        if ready == 0 {
            return Ok(None);
        }
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe {
            libc::recv(
                self.0.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(e)
            };
        }
        Ok(Some(n as usize))
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
    let mut packet = vec![0u8; 8 + data_len];
    packet[0] = ICMP_ECHO_REQUEST;
    packet[4..6].copy_from_slice(&ident.to_be_bytes());
    packet[6..8].copy_from_slice(&seq.to_be_bytes());
    for (i, byte) in packet[8..].iter_mut().enumerate() {
        *byte = i as u8; // a recognisable pattern, like ping's
    }
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// An echo reply for us: (source, ttl, sequence, ICMP length). A raw ICMP socket receives the
/// IPv4 header too; anything that is not a valid reply to our identifier is `None`.
fn parse_reply(packet: &[u8], ident: u16) -> Option<(Ipv4Addr, u8, u16, usize)> {
    let ihl = usize::from(*packet.first()? & 0x0f) * 4;
    if packet.first()? >> 4 != 4 || ihl < 20 || packet.len() < ihl + 8 {
        return None;
    }
    let ttl = packet[8];
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = &packet[ihl..];
    let reply_ident = u16::from_be_bytes([icmp[4], icmp[5]]);
    if icmp[0] != ICMP_ECHO_REPLY || reply_ident != ident || checksum(icmp) != 0 {
        return None;
    }
    Some((src, ttl, u16::from_be_bytes([icmp[6], icmp[7]]), icmp.len()))
}

fn ping(opts: &PingOptions) -> Result<ExitCode, PingError> {
    let socket = RawSocket::open(libc::IPPROTO_ICMP)?;
    // Our identifier: the pid, as ping(8) did, mixed with the clock so two pings started
    // by the same test harness at the same time still differ.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let ident = (std::process::id() ^ nanos ^ (nanos >> 16)) as u16;

    println!("PING {} {} data bytes", opts.target, opts.data_len);
    let started = Instant::now();
    let mut sent_at: Vec<Instant> = Vec::with_capacity(usize::from(opts.count));
    let mut received = vec![false; usize::from(opts.count)];
    let mut rtts: Vec<f64> = Vec::new();
    let mut buf = [0u8; 65536];

    for seq in 1..=opts.count {
        let packet = echo_request(ident, seq, opts.data_len);
        sent_at.push(Instant::now());
        socket
            .send_to(&packet, opts.target)
            .map_err(|e| PingError::Io("sendto", e))?;
        // Listen until the next request is due; after the last one, for `wait`.
        let deadline = if seq == opts.count {
            Instant::now() + opts.wait
        } else {
            Instant::now() + opts.interval
        };
        loop {
            if seq == opts.count && received.iter().all(|r| *r) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(n) = socket
                .recv(&mut buf, left)
                .map_err(|e| PingError::Io("recv", e))?
            else {
                continue;
            };
            let Some((src, ttl, reply_seq, len)) = parse_reply(&buf[..n], ident) else {
                continue; // our own request, another ping's reply, other ICMP: not ours
            };
            let index = usize::from(reply_seq).wrapping_sub(1);
            if src != opts.target || index >= sent_at.len() {
                continue;
            }
            let rtt = sent_at[index].elapsed().as_secs_f64() * 1000.0;
            let dup = if received[index] { " (DUP!)" } else { "" };
            println!(
                "{len} bytes from {src}: icmp_seq={reply_seq} ttl={ttl} time={rtt:.3} ms{dup}"
            );
            if !received[index] {
                received[index] = true;
                rtts.push(rtt);
            }
        }
    }

    let transmitted = sent_at.len();
    let got = rtts.len();
    let loss = 100 * (transmitted - got) / transmitted.max(1);
    println!("\n--- {} ping statistics ---", opts.target);
    println!(
        "{transmitted} packets transmitted, {got} received, {loss}% packet loss, time {}ms",
        started.elapsed().as_millis()
    );
    if got == 0 {
        return Ok(ExitCode::from(1));
    }
    let min = rtts.iter().copied().fold(f64::INFINITY, f64::min);
    let max = rtts.iter().copied().fold(0.0, f64::max);
    let avg = rtts.iter().sum::<f64>() / got as f64;
    let mdev = (rtts.iter().map(|r| (r - avg).powi(2)).sum::<f64>() / got as f64).sqrt();
    println!("rtt min/avg/max/mdev = {min:.3}/{avg:.3}/{max:.3}/{mdev:.3} ms");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// Part 2: IP_HDRINCL, a hand-built IPv4 + UDP datagram
// ---------------------------------------------------------------------------------------------

/// The source address the kernel will choose for `dst`: connecting a UDP socket runs the
/// route lookup without sending anything.
fn source_for(dst: SocketAddrV4) -> Result<Ipv4Addr, PingError> {
    let probe = UdpSocket::bind("0.0.0.0:0").map_err(|e| PingError::Io("bind", e))?;
    probe
        .connect(dst)
        .map_err(|e| PingError::Io("route lookup", e))?;
    match probe
        .local_addr()
        .map_err(|e| PingError::Io("getsockname", e))?
    {
        std::net::SocketAddr::V4(a) => Ok(*a.ip()),
        std::net::SocketAddr::V6(_) => Err(PingError::Io(
            "route lookup",
            io::Error::other("an IPv6 source for an IPv4 destination"),
        )),
    }
}

/// IPv4 header (identification, checksum and source left at 0 for the kernel) + UDP header
/// with a checksum over the pseudo-header of the source the kernel will use.
fn udp_datagram(src: Ipv4Addr, sport: u16, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let total = 20 + udp_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45; // version 4, IHL 5
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40; // don't fragment
    p[8] = 64; // TTL
    p[9] = libc::IPPROTO_UDP as u8;
    // p[4..6] identification, p[10..12] checksum, p[12..16] source: zero, filled by the kernel.
    p[16..20].copy_from_slice(&dst.ip().octets());

    let udp = &mut p[20..];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    udp[8..].copy_from_slice(payload);
    let mut pseudo = Vec::with_capacity(12 + udp_len);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.ip().octets());
    pseudo.extend_from_slice(&[0, libc::IPPROTO_UDP as u8]);
    pseudo.extend_from_slice(&(udp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    let sum = match checksum(&pseudo) {
        0 => 0xffff, // 0 would mean "no checksum"
        sum => sum,
    };
    udp[6..8].copy_from_slice(&sum.to_be_bytes());
    p
}

fn send_udp(dst: SocketAddrV4, sport: u16, payload: &[u8]) -> Result<ExitCode, PingError> {
    let socket = RawSocket::open(libc::IPPROTO_RAW)?;
    let src = source_for(dst)?;
    let datagram = udp_datagram(src, sport, dst, payload);
    socket
        .send_to(&datagram, *dst.ip())
        .map_err(|e| PingError::Io("sendto", e))?;
    println!(
        "sent {} bytes to {dst} from {src}:{sport} (IP_HDRINCL)",
        datagram.len()
    );
    Ok(ExitCode::SUCCESS)
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
