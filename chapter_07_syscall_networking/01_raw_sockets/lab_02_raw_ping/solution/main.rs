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
        std::net::SocketAddr::V6(_) => Err(PingError::Usage("IPv4 only".into())),
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
