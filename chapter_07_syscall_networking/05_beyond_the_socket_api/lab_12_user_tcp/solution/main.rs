//! Reference solution of lab 7.12: a minimal TCP in user space, over a TUN device, that the
//! kernel's own TCP talks to. One thread, one event loop, no heap allocation after start-up.
//!
//! ```text
//!   kernel TCP (TcpStream, curl) ──► tun (kernel side: <net>.1) ──► read(2) on /dev/net/tun
//!                                                                          │
//!   this process: parse IPv4 + TCP ──► connection table (8 slots) ──► echo ring ──► emit
//!                                                                          │
//!   kernel TCP ◄── tun ◄─────────────────────────── write(2) of a whole IPv4 packet
//! ```
//!
//! The layers, one module each, as in smoltcp: `wire` reads and writes the headers (with the
//! checksums), `tcp` is the state machine of one connection with its fixed buffers, `stack`
//! demultiplexes segments onto the table and answers strangers with RST. `counting`, `tun` and
//! `signals` are the plumbing the stub gives.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;

const USAGE: &str = "usage: ch7_user_tcp --tun NAME --addr A.B.C.D --port P [--drop-every N] \
                     [--close-after BYTES]";

/// A minimal TCP echo server in user space, over a TUN device.
#[derive(Debug, Parser)]
#[command(name = "ch7_user_tcp")]
pub struct Args {
    /// Name of the TUN device to create (the kernel's side gets <net>.1/24).
    #[arg(long)]
    pub tun: String,
    /// This stack's IPv4 address, in the /24 of the TUN device (not <net>.1).
    #[arg(long)]
    pub addr: Ipv4Addr,
    /// The TCP port the echo service listens on.
    #[arg(long)]
    pub port: u16,
    /// Test hook: lose every Nth TCP segment carrying data, in each direction.
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..))]
    pub drop_every: Option<u32>,
    /// Close each connection first (active close) once it has echoed this many bytes.
    #[arg(long)]
    pub close_after: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Given plumbing: the counting allocator, the TUN device, SIGTERM
// ---------------------------------------------------------------------------------------------

/// Counts every allocation of the process: the proof of "no heap after start-up".
mod counting {
    use super::*;

    pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    pub struct Counting;

    // SAFETY: every call is forwarded to the system allocator unchanged; we only count.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as ours, forwarded.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours, forwarded.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: same contract as ours, forwarded.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    pub fn allocations() -> u64 {
        ALLOCATIONS.load(Ordering::Relaxed)
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// `/dev/net/tun`: one `read(2)` is one IPv4 packet the kernel routed to us, one `write(2)`
/// is one packet we hand to the kernel as if it came off the wire.
mod tun {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    use super::*;

    pub struct Tun {
        fd: OwnedFd,
        drop_every: Option<u32>,
        data_in: Hook,
        data_out: Hook,
        pub dropped_in: u64,
        pub dropped_out: u64,
    }

    fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
        }
        Ok(())
    }

    fn ifreq(name: &str) -> libc::ifreq {
        // SAFETY: ifreq is plain old data; all zeroes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req
            .ifr_name
            .iter_mut()
            .zip(name.bytes().take(libc::IFNAMSIZ - 1))
        {
            *dst = src as libc::c_char;
        }
        req
    }

    fn sockaddr(ip: Ipv4Addr) -> libc::sockaddr {
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(ip.octets()),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as AF_INET.
        unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
    }

    /// Length of the TCP payload of an IPv4 packet (0 if it is not TCP or is malformed).
    fn tcp_payload_len(p: &[u8]) -> usize {
        if p.len() < 40 || p[0] >> 4 != 4 || p[9] != 6 {
            return 0;
        }
        let ihl = usize::from(p[0] & 0xf) * 4;
        let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
        let Some(&off) = p.get(ihl + 12) else {
            return 0;
        };
        total.saturating_sub(ihl + usize::from(off >> 4) * 4)
    }

    impl Tun {
        /// Creates the TUN device `name`, gives the kernel's side `kernel_addr`/24 and brings it
        /// up (`ip addr add` and `ip link set up`, as ioctls).
        pub fn open(name: &str, kernel_addr: Ipv4Addr, drop_every: Option<u32>) -> io::Result<Tun> {
            let path = c"/dev/net/tun";
            // SAFETY: a NUL-terminated path; the fd is owned at once.
            let raw = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
                )
            };
            check(raw, "open /dev/net/tun")?;
            // SAFETY: raw was just returned by open(2) and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let mut req = ifreq(name);
            req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
            // SAFETY: TUNSETIFF reads and writes one ifreq, which lives across the call.
            let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) };
            check(rc, "TUNSETIFF")?;

            // SAFETY: plain socket(2), owned at once; used only for the interface ioctls.
            let sock =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            check(sock, "socket")?;
            // SAFETY: as above.
            let sock = unsafe { OwnedFd::from_raw_fd(sock) };
            let s = sock.as_raw_fd();
            let mut req = ifreq(name);
            req.ifr_ifru.ifru_addr = sockaddr(kernel_addr);
            // SAFETY: each ioctl reads (or fills) the one ifreq we pass, alive across the call.
            let rc = unsafe { libc::ioctl(s, libc::SIOCSIFADDR, &req) };
            check(rc, "SIOCSIFADDR")?;
            req.ifr_ifru.ifru_netmask = sockaddr(Ipv4Addr::new(255, 255, 255, 0));
            // SAFETY: as above.
            let rc = unsafe { libc::ioctl(s, libc::SIOCSIFNETMASK, &req) };
            check(rc, "SIOCSIFNETMASK")?;
            // SAFETY: as above.
            let rc = unsafe { libc::ioctl(s, libc::SIOCGIFFLAGS, &mut req) };
            check(rc, "SIOCGIFFLAGS")?;
            // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
            let flags = unsafe { req.ifr_ifru.ifru_flags };
            req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            // SAFETY: as above.
            let rc = unsafe { libc::ioctl(s, libc::SIOCSIFFLAGS, &req) };
            check(rc, "SIOCSIFFLAGS")?;
            Ok(Tun {
                fd,
                drop_every,
                data_in: Hook::default(),
                data_out: Hook::default(),
                dropped_in: 0,
                dropped_out: 0,
            })
        }

        /// Waits at most `timeout` for a packet to read (false on timeout or a signal).
        pub fn wait(&self, timeout: Duration) -> bool {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = timeout.as_millis().min(1000) as libc::c_int;
            // SAFETY: one pollfd, alive across the call.
            unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
        }

        /// Reads one packet into `buf`; `None` when none is waiting. The test hook may lose it.
        pub fn recv(&mut self, buf: &mut [u8]) -> Option<usize> {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let n = usize::try_from(n).ok()?;
            if lose(self.drop_every, &mut self.data_in, &buf[..n]) {
                self.dropped_in += 1;
                return Some(0);
            }
            Some(n)
        }

        /// Writes one whole IPv4 packet. The test hook may lose it instead.
        pub fn send(&mut self, packet: &[u8]) {
            if lose(self.drop_every, &mut self.data_out, packet) {
                self.dropped_out += 1;
                return;
            }
            // SAFETY: packet is valid for reads of its length. A failed write is a lost packet.
            let _ =
                unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        }
    }

    /// The test hook's memory in one direction: segments with data seen, and the sequence
    /// number of the last one lost.
    #[derive(Default)]
    struct Hook {
        count: u32,
        last_lost: Option<u32>,
    }

    /// The test hook: every Nth segment carrying data is lost, except a retransmission of the
    /// segment lost last (so that recovery is quick, even for the kernel's backed-off timer).
    fn lose(every: Option<u32>, hook: &mut Hook, packet: &[u8]) -> bool {
        let Some(every) = every else { return false };
        if tcp_payload_len(packet) == 0 {
            return false;
        }
        let ihl = usize::from(packet[0] & 0xf) * 4;
        let seq = u32::from_be_bytes([
            packet[ihl + 4],
            packet[ihl + 5],
            packet[ihl + 6],
            packet[ihl + 7],
        ]);
        if hook.last_lost == Some(seq) {
            return false;
        }
        hook.count += 1;
        let lost = hook.count.is_multiple_of(every);
        if lost {
            hook.last_lost = Some(seq);
        }
        lost
    }
}

/// SIGTERM and SIGINT set a flag that the event loop reads: the loop then prints its counts.
mod signals {
    use super::*;

    static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::Relaxed);
    }

    pub fn install() {
        let handler: extern "C" fn(libc::c_int) = on_signal;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
            libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        }
    }

    pub fn stop_requested() -> bool {
        STOP.load(Ordering::Relaxed)
    }
}

/// What the program prints when it stops: the grader reads these counts.
#[derive(Debug, Default)]
pub struct Stats {
    /// Packets dropped because they were malformed, not IPv4/TCP, or failed a checksum.
    pub bad_packets: u64,
    /// Segments sent again after a retransmission timeout.
    pub retransmitted: u64,
    /// RSTs sent to segments of no connection.
    pub resets: u64,
}

// ---------------------------------------------------------------------------------------------
// wire: IPv4 and TCP headers, read and written in place, with their checksums
// ---------------------------------------------------------------------------------------------

/// Views and emitters of the two headers. Lab 7.1 in short: big-endian fields at fixed
/// offsets, the RFC 1071 sum, and for TCP the pseudo-header (source, destination, protocol,
/// TCP length) in the sum, so that a segment delivered to the wrong address fails the check.
mod wire {
    use super::*;

    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;

    /// One parsed TCP segment; `payload` borrows the receive buffer (no copy).
    pub struct Segment<'a> {
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub sport: u16,
        pub dport: u16,
        pub seq: u32,
        pub ack: u32,
        pub flags: u8,
        pub window: u16,
        pub mss: Option<u16>,
        pub payload: &'a [u8],
    }

    impl Segment<'_> {
        pub fn has(&self, flag: u8) -> bool {
            self.flags & flag != 0
        }
        /// Sequence space the segment occupies: its bytes, plus one each for SYN and FIN.
        pub fn len(&self) -> u32 {
            self.payload.len() as u32 + u32::from(self.has(SYN)) + u32::from(self.has(FIN))
        }
    }

    fn sum_words(mut sum: u32, data: &[u8]) -> u32 {
        let mut chunks = data.chunks_exact(2);
        for w in &mut chunks {
            sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = chunks.remainder() {
            sum += u32::from(*last) << 8;
        }
        sum
    }

    fn fold(mut sum: u32) -> u16 {
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    pub fn checksum(data: &[u8]) -> u16 {
        !fold(sum_words(0, data))
    }

    /// The TCP checksum: the pseudo-header, then the whole segment.
    pub fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
        let mut sum = sum_words(0, &src.octets());
        sum = sum_words(sum, &dst.octets());
        sum += 6 + segment.len() as u32;
        !fold(sum_words(sum, segment))
    }

    fn be16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
    }

    /// Parses one IPv4 packet holding a TCP segment; `None` for anything else (dropped and
    /// counted by the caller). Every length is checked before it is used to index.
    pub fn parse(p: &[u8]) -> Option<Segment<'_>> {
        if p.len() < 20 || p[0] >> 4 != 4 || p[9] != 6 {
            return None;
        }
        let ihl = usize::from(p[0] & 0xf) * 4;
        let total = usize::from(be16(p, 2));
        let fragment = be16(p, 6) & 0x3fff; // MF flag or a fragment offset
        if ihl < 20 || total < ihl + 20 || total > p.len() || fragment != 0 {
            return None;
        }
        if checksum(&p[..ihl]) != 0 {
            return None;
        }
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        let t = &p[ihl..total];
        let off = usize::from(t[12] >> 4) * 4;
        if off < 20 || off > t.len() || tcp_checksum(src, dst, t) != 0 {
            return None;
        }
        // The only option we read: MSS (kind 2, length 4), in a SYN.
        let mut mss = None;
        let mut opts = &t[20..off];
        while let [kind, rest @ ..] = opts {
            match kind {
                0 => break,
                1 => opts = rest,
                _ => {
                    let len = usize::from(*rest.first()?);
                    if len < 2 || len > opts.len() {
                        break;
                    }
                    if *kind == 2 && len == 4 {
                        mss = Some(be16(opts, 2));
                    }
                    opts = &opts[len..];
                }
            }
        }
        Some(Segment {
            src,
            dst,
            sport: be16(t, 0),
            dport: be16(t, 2),
            seq: be32(t, 4),
            ack: be32(t, 8),
            flags: t[13],
            window: be16(t, 14),
            mss,
            payload: &t[off..],
        })
    }

    /// The fields of a segment to send.
    pub struct Out<'a> {
        pub src: Ipv4Addr,
        pub dst: Ipv4Addr,
        pub sport: u16,
        pub dport: u16,
        pub seq: u32,
        pub ack: u32,
        pub flags: u8,
        pub window: u16,
        pub mss: Option<u16>,
        pub payload: &'a [u8],
    }

    /// Writes the IPv4 packet of `out` into `buf` (a fixed buffer on the stack) and returns
    /// its length. The caller keeps `payload` within the MSS, so it always fits.
    pub fn emit(out: &Out<'_>, ident: u16, buf: &mut [u8; 1500]) -> usize {
        let tcp_len = if out.mss.is_some() { 24 } else { 20 };
        let total = 20 + tcp_len + out.payload.len();
        let ip = &mut buf[..20];
        ip.fill(0);
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[6] = 0x40; // don't fragment
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&out.src.octets());
        ip[16..20].copy_from_slice(&out.dst.octets());
        let sum = checksum(ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());

        let t = &mut buf[20..total];
        t[..tcp_len].fill(0);
        t[0..2].copy_from_slice(&out.sport.to_be_bytes());
        t[2..4].copy_from_slice(&out.dport.to_be_bytes());
        t[4..8].copy_from_slice(&out.seq.to_be_bytes());
        t[8..12].copy_from_slice(&out.ack.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = out.flags;
        t[14..16].copy_from_slice(&out.window.to_be_bytes());
        if let Some(mss) = out.mss {
            t[20] = 2;
            t[21] = 4;
            t[22..24].copy_from_slice(&mss.to_be_bytes());
        }
        t[tcp_len..].copy_from_slice(out.payload);
        let sum = tcp_checksum(out.src, out.dst, t);
        t[16..18].copy_from_slice(&sum.to_be_bytes());
        total
    }
}

// ---------------------------------------------------------------------------------------------
// tcp: one connection, its fixed buffer and its state machine
// ---------------------------------------------------------------------------------------------

/// One connection of RFC 793's state machine, reduced to a passive open: no TIME-WAIT (the
/// slot is freed once both FINs are acknowledged; random ISNs keep an old segment from being
/// taken for a new connection's), no options but MSS, in-order data only.
mod tcp {
    use super::wire::{ACK, FIN, Out, PSH, RST, SYN, Segment};
    use super::*;

    /// Bytes of the echo buffer of one connection: what was received and not yet acknowledged
    /// by the peer after echoing. Its free space is the window we advertise.
    pub const RING: usize = 16 * 1024;
    /// The largest payload we send or accept in one segment (a 1500-byte MTU).
    pub const MSS: u16 = 1460;
    const RTO_FIRST: Duration = Duration::from_millis(200);
    const RTO_MAX: Duration = Duration::from_secs(2);
    const MAX_RETRIES: u32 = 10;

    /// `a < b` in sequence space (modulo 2^32).
    pub fn lt(a: u32, b: u32) -> bool {
        (a.wrapping_sub(b) as i32) < 0
    }
    pub fn le(a: u32, b: u32) -> bool {
        a == b || lt(a, b)
    }

    /// A byte ring of fixed size: the bytes from `snd_una` on, sent or not yet.
    pub struct Ring {
        buf: [u8; RING],
        start: usize,
        len: usize,
    }

    impl Ring {
        pub const fn new() -> Ring {
            Ring {
                buf: [0; RING],
                start: 0,
                len: 0,
            }
        }
        pub fn len(&self) -> usize {
            self.len
        }
        pub fn free(&self) -> usize {
            RING - self.len
        }
        /// Appends as much of `data` as fits; returns how much did.
        pub fn push(&mut self, data: &[u8]) -> usize {
            let n = data.len().min(self.free());
            for (i, b) in data[..n].iter().enumerate() {
                self.buf[(self.start + self.len + i) % RING] = *b;
            }
            self.len += n;
            n
        }
        /// Forgets the first `n` bytes (the peer acknowledged them).
        pub fn consume(&mut self, n: usize) {
            let n = n.min(self.len);
            self.start = (self.start + n) % RING;
            self.len -= n;
        }
        /// Copies the bytes at `offset` from the start into `out`; returns how many.
        pub fn copy_out(&self, offset: usize, out: &mut [u8]) -> usize {
            let n = out.len().min(self.len.saturating_sub(offset));
            for (i, b) in out[..n].iter_mut().enumerate() {
                *b = self.buf[(self.start + offset + i) % RING];
            }
            n
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum State {
        Free,
        SynReceived,
        Established,
        /// The peer sent FIN: we echo what is left, then send ours.
        CloseWait,
        LastAck,
        /// We sent FIN first (`--close-after`).
        FinWait1,
        FinWait2,
        Closing,
    }

    pub struct Conn {
        pub state: State,
        pub peer: Ipv4Addr,
        pub peer_port: u16,
        iss: u32,
        snd_una: u32,
        snd_nxt: u32,
        /// The highest sequence number sent: an ACK up to it is valid even after a rewind.
        snd_max: u32,
        snd_wnd: u32,
        mss: usize,
        rcv_nxt: u32,
        ring: Ring,
        /// We want to close: the FIN goes out once every echoed byte is sent.
        closing: bool,
        fin_seq: Option<u32>,
        echoed: u64,
        close_after: Option<u64>,
        rto: Duration,
        deadline: Option<Instant>,
        retries: u32,
        advertised: usize,
    }

    /// Where a connection sends its segments: the device, the addresses, the counters.
    pub struct Link<'a> {
        pub tun: &'a mut tun::Tun,
        pub addr: Ipv4Addr,
        pub port: u16,
        pub ident: &'a mut u16,
        pub stats: &'a mut Stats,
    }

    impl Link<'_> {
        pub fn send(&mut self, out: &Out<'_>) {
            let mut buf = [0u8; 1500];
            *self.ident = self.ident.wrapping_add(1);
            let n = wire::emit(out, *self.ident, &mut buf);
            self.tun.send(&buf[..n]);
        }
    }

    impl Conn {
        pub const fn free() -> Conn {
            Conn {
                state: State::Free,
                peer: Ipv4Addr::UNSPECIFIED,
                peer_port: 0,
                iss: 0,
                snd_una: 0,
                snd_nxt: 0,
                snd_max: 0,
                snd_wnd: 0,
                mss: MSS as usize,
                rcv_nxt: 0,
                ring: Ring::new(),
                closing: false,
                fin_seq: None,
                echoed: 0,
                close_after: None,
                rto: RTO_FIRST,
                deadline: None,
                retries: 0,
                advertised: 0,
            }
        }

        pub fn deadline(&self) -> Option<Instant> {
            self.deadline
        }

        /// A SYN for our port took this free slot: answer SYN-ACK with our random ISN.
        pub fn open(
            &mut self,
            syn: &Segment<'_>,
            iss: u32,
            close_after: Option<u64>,
            link: &mut Link<'_>,
        ) {
            // Reset in place, field by field: `*self = Conn::free()` would build a 16 KiB
            // temporary; the ring's old bytes are dead anyway (len 0).
            self.state = State::SynReceived;
            self.peer = syn.src;
            self.peer_port = syn.sport;
            self.iss = iss;
            self.snd_una = iss;
            self.snd_nxt = iss.wrapping_add(1);
            self.snd_max = self.snd_nxt;
            self.snd_wnd = u32::from(syn.window);
            self.mss = usize::from(syn.mss.unwrap_or(536).clamp(64, MSS));
            self.rcv_nxt = syn.seq.wrapping_add(1);
            self.ring.consume(RING);
            self.closing = false;
            self.fin_seq = None;
            self.echoed = 0;
            self.close_after = close_after;
            self.rto = RTO_FIRST;
            self.retries = 0;
            self.send_syn_ack(link);
            self.deadline = Some(Instant::now() + self.rto);
        }

        fn send_syn_ack(&mut self, link: &mut Link<'_>) {
            self.advertised = self.ring.free();
            link.send(&Out {
                src: link.addr,
                dst: self.peer,
                sport: link.port,
                dport: self.peer_port,
                seq: self.iss,
                ack: self.rcv_nxt,
                flags: SYN | ACK,
                window: self.window(),
                mss: Some(MSS),
                payload: &[],
            });
        }

        fn window(&self) -> u16 {
            self.ring.free().min(usize::from(u16::MAX)) as u16
        }

        fn send_ack(&mut self, link: &mut Link<'_>) {
            self.send_flags(ACK, self.snd_nxt, link);
        }

        fn send_flags(&mut self, flags: u8, seq: u32, link: &mut Link<'_>) {
            self.advertised = self.ring.free();
            link.send(&Out {
                src: link.addr,
                dst: self.peer,
                sport: link.port,
                dport: self.peer_port,
                seq,
                ack: self.rcv_nxt,
                flags,
                window: self.window(),
                mss: None,
                payload: &[],
            });
        }

        /// Frees the slot.
        fn close(&mut self) {
            self.state = State::Free;
            self.deadline = None;
        }

        /// One segment of this connection.
        pub fn on_segment(&mut self, seg: &Segment<'_>, link: &mut Link<'_>) {
            if seg.has(RST) {
                // Accept a reset only at the edge of the window (RFC 5961's blind-reset check).
                if seg.seq == self.rcv_nxt {
                    self.close();
                }
                return;
            }
            if seg.has(SYN) {
                if self.state == State::SynReceived && seg.seq.wrapping_add(1) == self.rcv_nxt {
                    self.send_syn_ack(link); // the peer lost our SYN-ACK
                } else {
                    self.send_ack(link); // a stray SYN on a live connection: a challenge ACK
                }
                return;
            }
            if !seg.has(ACK) {
                return;
            }
            if self.state == State::SynReceived {
                if seg.ack != self.iss.wrapping_add(1) {
                    return;
                }
                self.state = State::Established;
                self.snd_una = seg.ack;
                self.deadline = None;
            }
            self.on_ack(seg, link);
            if self.state == State::Free {
                return;
            }
            self.on_data(seg, link);
            if self.state != State::Free {
                self.pump(link);
            }
        }

        /// The peer acknowledged bytes: free them from the ring, restart the timer.
        fn on_ack(&mut self, seg: &Segment<'_>, link: &mut Link<'_>) {
            let ack = seg.ack;
            if lt(self.snd_una, ack) && le(ack, self.snd_max) {
                let mut acked = ack.wrapping_sub(self.snd_una) as usize;
                let fin_acked = self.fin_seq.is_some_and(|f| ack == f.wrapping_add(1));
                if fin_acked {
                    acked -= 1;
                }
                self.ring.consume(acked);
                self.snd_una = ack;
                if lt(self.snd_nxt, ack) {
                    self.snd_nxt = ack;
                }
                self.retries = 0;
                self.rto = RTO_FIRST;
                self.deadline = (self.snd_una != self.snd_max).then(|| Instant::now() + self.rto);
                if fin_acked {
                    match self.state {
                        State::LastAck | State::Closing => return self.close(),
                        State::FinWait1 => self.state = State::FinWait2,
                        _ => {}
                    }
                }
            }
            if le(self.snd_una, ack) && le(ack, self.snd_max) {
                self.snd_wnd = u32::from(seg.window);
            }
            // Our window had shrunk below one segment and the ring has room again: say so,
            // or the peer waits for its persist timer.
            if self.advertised < self.mss && self.ring.free() >= self.mss {
                self.send_ack(link);
            }
        }

        /// In-order bytes go into the echo ring; anything else is dropped and the peer is
        /// told, with an ACK, which byte we still wait for.
        fn on_data(&mut self, seg: &Segment<'_>, link: &mut Link<'_>) {
            let fin = seg.has(FIN);
            if seg.payload.is_empty() && !fin {
                // A zero-window probe (one sequence number back) wants our window: answer it.
                if lt(seg.seq, self.rcv_nxt) {
                    self.send_ack(link);
                }
                return;
            }
            let receiving = matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            );
            // Bytes before rcv_nxt were received already: skip them (a retransmission that
            // overlaps). A segment starting after rcv_nxt is out of order: dropped.
            let skip = self.rcv_nxt.wrapping_sub(seg.seq) as usize;
            if !le(seg.seq, self.rcv_nxt) || skip > seg.payload.len() || !receiving {
                return self.send_ack(link);
            }
            let data = &seg.payload[skip..];
            let taken = if self.closing {
                data.len() // we closed: read and discard
            } else {
                let room = self.close_after.map_or(usize::MAX, |limit| {
                    limit.saturating_sub(self.echoed) as usize
                });
                let n = self.ring.push(&data[..data.len().min(room)]);
                self.echoed += n as u64;
                if self.close_after.is_some_and(|limit| self.echoed >= limit) {
                    self.closing = true; // --close-after reached: active close
                    data.len() // what goes beyond the limit is read and discarded
                } else {
                    n
                }
            };
            self.rcv_nxt = self.rcv_nxt.wrapping_add(taken as u32);
            if fin && taken == data.len() {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
                match self.state {
                    State::Established => {
                        self.state = State::CloseWait;
                        self.closing = true;
                    }
                    State::FinWait1 => self.state = State::Closing,
                    State::FinWait2 => {
                        self.send_ack(link);
                        return self.close();
                    }
                    _ => {}
                }
            }
            self.send_ack(link);
        }

        /// Sends what the window allows, then our FIN once everything is out.
        fn pump(&mut self, link: &mut Link<'_>) {
            let data_end = self.snd_una.wrapping_add(self.ring.len() as u32);
            while lt(self.snd_nxt, data_end) {
                let in_flight = self.snd_nxt.wrapping_sub(self.snd_una);
                if in_flight >= self.snd_wnd {
                    break;
                }
                let mut buf = [0u8; MSS as usize];
                let n = (data_end.wrapping_sub(self.snd_nxt) as usize)
                    .min(self.mss)
                    .min((self.snd_wnd - in_flight) as usize);
                let n = self.ring.copy_out(in_flight as usize, &mut buf[..n]);
                self.advertised = self.ring.free();
                link.send(&Out {
                    src: link.addr,
                    dst: self.peer,
                    sport: link.port,
                    dport: self.peer_port,
                    seq: self.snd_nxt,
                    ack: self.rcv_nxt,
                    flags: ACK | PSH,
                    window: self.window(),
                    mss: None,
                    payload: &buf[..n],
                });
                self.advance(n as u32);
            }
            let fin_due = self.fin_seq.is_none_or(|f| f == self.snd_nxt);
            if self.closing && self.snd_nxt == data_end && fin_due {
                self.send_flags(FIN | ACK, self.snd_nxt, link);
                self.fin_seq = Some(self.snd_nxt);
                self.advance(1);
                self.state = match self.state {
                    State::CloseWait => State::LastAck,
                    State::Established => State::FinWait1,
                    other => other,
                };
            }
        }

        fn advance(&mut self, n: u32) {
            self.snd_nxt = self.snd_nxt.wrapping_add(n);
            if lt(self.snd_max, self.snd_nxt) {
                self.snd_max = self.snd_nxt;
            }
            if self.deadline.is_none() {
                self.deadline = Some(Instant::now() + self.rto);
            }
        }

        /// The retransmission timer fired: go back to the oldest unacknowledged byte and send
        /// again (go-back-N), with the timeout doubled. Too many tries in a row: reset.
        pub fn on_timer(&mut self, now: Instant, link: &mut Link<'_>) {
            if self.deadline.is_none_or(|d| now < d) {
                return;
            }
            self.retries += 1;
            if self.retries > MAX_RETRIES {
                self.send_flags(RST | ACK, self.snd_nxt, link);
                return self.close();
            }
            self.rto = (self.rto * 2).min(RTO_MAX);
            self.deadline = Some(now + self.rto);
            link.stats.retransmitted += 1;
            if self.state == State::SynReceived {
                return self.send_syn_ack(link);
            }
            self.snd_nxt = self.snd_una;
            // A zero window with bytes waiting: probe with one byte so the reopening is seen.
            if self.snd_wnd == 0 {
                self.snd_wnd = 1;
            }
            self.pump(link);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// stack: demultiplexing onto the table, RST for strangers
// ---------------------------------------------------------------------------------------------

/// The connection table and the packets that belong to no connection.
mod stack {
    use super::tcp::{Conn, Link, State};
    use super::wire::{ACK, RST, SYN, Segment};
    use super::*;

    /// Connections at once: a fixed table, allocated before start-up like every buffer.
    pub const SLOTS: usize = 8;

    /// A random initial sequence number, from the kernel's generator (no allocation).
    fn random_isn() -> u32 {
        let mut b = [0u8; 4];
        // SAFETY: b is valid for writes of 4 bytes. On failure the clock is the fallback.
        let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, 0) };
        if n == 4 {
            u32::from_ne_bytes(b)
        } else {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
                ^ std::process::id()
        }
    }

    pub fn on_packet(
        packet: &[u8],
        table: &mut [Conn; SLOTS],
        close_after: Option<u64>,
        link: &mut Link<'_>,
    ) {
        let Some(seg) = wire::parse(packet) else {
            link.stats.bad_packets += 1;
            return;
        };
        if seg.dst != link.addr {
            link.stats.bad_packets += 1;
            return;
        }
        let live =
            |c: &&mut Conn| c.state != State::Free && c.peer == seg.src && c.peer_port == seg.sport;
        if seg.dport == link.port
            && let Some(conn) = table.iter_mut().find(live)
        {
            return conn.on_segment(&seg, link);
        }
        if seg.dport == link.port && seg.has(SYN) && !seg.has(ACK) && !seg.has(RST) {
            // A full table drops the SYN: the peer retries, as with a full accept queue.
            if let Some(slot) = table.iter_mut().find(|c| c.state == State::Free) {
                slot.open(&seg, random_isn(), close_after, link);
            }
            return;
        }
        reset(&seg, link);
    }

    /// RFC 793's reset for a segment of no connection: never answer a RST; if the segment
    /// acknowledged something, the RST takes that number as its sequence; otherwise it
    /// acknowledges everything the segment occupied.
    fn reset(seg: &Segment<'_>, link: &mut Link<'_>) {
        if seg.has(RST) {
            return;
        }
        let (seq, ack, flags) = if seg.has(ACK) {
            (seg.ack, 0, RST)
        } else {
            (0, seg.seq.wrapping_add(seg.len()), RST | ACK)
        };
        link.stats.resets += 1;
        link.send(&wire::Out {
            src: link.addr,
            dst: seg.src,
            sport: seg.dport,
            dport: seg.sport,
            seq,
            ack,
            flags,
            window: 0,
            mss: None,
            payload: &[],
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The event loop
// ---------------------------------------------------------------------------------------------

/// Serves until SIGTERM: one packet at a time, then the timers. Everything it uses lives on
/// its stack frame, sized at compile time.
fn serve(tun: &mut tun::Tun, args: &Args, stats: &mut Stats) {
    // The table and the packet buffer live in this frame: sized at compile time, no heap.
    let mut table: [tcp::Conn; stack::SLOTS] = [const { tcp::Conn::free() }; stack::SLOTS];
    let table = &mut table;
    let mut ident = 0u16;
    let mut packet = [0u8; 2048];
    while !signals::stop_requested() {
        let now = Instant::now();
        let next = table.iter().filter_map(|c| c.deadline()).min();
        let timeout = next.map_or(Duration::from_millis(200), |d| {
            d.saturating_duration_since(now)
        });
        if tun.wait(timeout.min(Duration::from_millis(200))) {
            while let Some(n) = tun.recv(&mut packet) {
                if n == 0 {
                    continue; // lost by the test hook
                }
                let mut link = tcp::Link {
                    tun,
                    addr: args.addr,
                    port: args.port,
                    ident: &mut ident,
                    stats,
                };
                stack::on_packet(&packet[..n], table, args.close_after, &mut link);
            }
        }
        let now = Instant::now();
        let mut link = tcp::Link {
            tun,
            addr: args.addr,
            port: args.port,
            ident: &mut ident,
            stats,
        };
        for conn in table.iter_mut() {
            if conn.state != tcp::State::Free {
                conn.on_timer(now, &mut link);
            }
        }
    }
}

fn main() -> ExitCode {
    let args: Args = match ch7_support::cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let [a, b, c, d] = args.addr.octets();
    if d == 0 || d == 1 || d == 255 {
        eprintln!(
            "ch7_user_tcp: --addr must not end in .0, .1 (the kernel's side) or .255; {USAGE}"
        );
        return ExitCode::from(2);
    }
    let mut tun = match tun::Tun::open(&args.tun, Ipv4Addr::new(a, b, c, 1), args.drop_every) {
        Ok(tun) => tun,
        Err(e) => {
            eprintln!("ch7_user_tcp: {e} (needs CAP_NET_ADMIN: run as root or in `unshare -rn`)");
            return ExitCode::FAILURE;
        }
    };
    signals::install();
    let mut stats = Stats::default();
    println!("listening on {}:{}", args.addr, args.port);
    // Start-up ends here: from now on the count of allocations must not move.
    let baseline = counting::allocations();
    serve(&mut tun, &args, &mut stats);
    let after = counting::allocations() - baseline;
    println!("allocations after start-up: {after}");
    println!("retransmitted segments: {}", stats.retransmitted);
    println!("resets sent: {}", stats.resets);
    println!("bad packets dropped: {}", stats.bad_packets);
    println!(
        "lost by the test hook: in={} out={}",
        tun.dropped_in, tun.dropped_out
    );
    ExitCode::SUCCESS
}
