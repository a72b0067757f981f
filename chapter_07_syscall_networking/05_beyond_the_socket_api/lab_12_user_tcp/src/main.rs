//! ## Goal
//! Write enough TCP, in user space, for the kernel's own TCP to talk to it. A TUN device hands
//! your process every IPv4 packet the kernel routes to it (`read(2)`) and takes the packets you
//! write as if they came off a wire: parse IPv4 and TCP, run a fixed table of connections through
//! the handshake, data both ways, retransmission on loss, FIN in both orders and RST for strangers,
//! and serve an echo over it. Every buffer is fixed before start-up: a counting global allocator
//! proves that the stack allocates nothing while it serves.
//!
//! ## Requirements
//! 1. `ch7_user_tcp --tun NAME --addr A.B.C.D --port P` creates the TUN device, gives the kernel's
//!    side `<net>.1/24`, prints `listening on <addr>:<port>` and completes the kernel's handshake:
//!    SYN-ACK with a random ISN and the MSS option, IPv4 and TCP checksums computed (the TCP one
//!    over the pseudo-header) and verified on every packet received.
//! 2. Echo: the bytes received in order are sent back byte-exact through a fixed buffer per
//!    connection whose free space is the advertised window, so a transfer larger than the window
//!    flows. On the peer's FIN the server acknowledges it, echoes what is left, then sends its FIN.
//! 3. A fixed table of 8 connections serves several connections at once and one after another; a
//!    slot is freed once both FINs are acknowledged.
//! 4. A SYN to a closed port, or any segment of no connection, is answered with RST (never a RST to
//!    a RST). Bad packets (not IPv4/TCP, malformed, wrong checksum) are dropped and counted, never a
//!    panic.
//! 5. `--close-after BYTES`: once a connection has echoed BYTES, the server sends its FIN first
//!    (active close), then acknowledges the peer's FIN and frees the slot.
//! 6. Unacknowledged data and FIN are sent again after a retransmission timeout that doubles on each
//!    try. `--drop-every N` is a test hook that loses every Nth segment carrying data in each
//!    direction. On SIGTERM the program prints `retransmitted segments: N` and
//!    `allocations after start-up: N`, and exits 0.
//! 7. In-order data only: a segment that starts beyond the next expected byte is dropped and
//!    answered with an ACK of that byte; a retransmission overlapping received bytes adds only its
//!    new bytes.
//! 8. No heap allocation after start-up: `allocations after start-up: 0`, as counted by the global
//!    allocator.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.12   from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `ch7_user_tcp --tun NAME --addr A.B.C.D --port P` creates the TUN device,
//!   gives the kernel's side `<net>.1/24`, prints `listening on <addr>:<port>` and completes the
//!   kernel's handshake: SYN-ACK with a random ISN and the MSS option, IPv4 and TCP checksums
//!   computed (the TCP one over the pseudo-header) and verified on every packet received
//! - [ ] Requirement 2: Echo: the bytes received in order are sent back byte-exact through a fixed
//!   buffer per connection whose free space is the advertised window, so a transfer larger than the
//!   window flows
//! - [ ] Requirement 3: A fixed table of 8 connections serves several connections at once and one
//!   after another; a slot is freed once both FINs are acknowledged
//! - [ ] Requirement 4: A SYN to a closed port, or any segment of no connection, is answered with
//!   RST (never a RST to a RST)
//! - [ ] Requirement 5: `--close-after BYTES`: once a connection has echoed BYTES, the server sends
//!   its FIN first (active close), then acknowledges the peer's FIN and frees the slot
//! - [ ] Requirement 6: Unacknowledged data and FIN are sent again after a retransmission timeout
//!   that doubles on each try
//! - [ ] Requirement 7: In-order data only: a segment that starts beyond the next expected byte is
//!   dropped and answered with an ACK of that byte; a retransmission overlapping received bytes
//!   adds only its new bytes
//! - [ ] Requirement 8: No heap allocation after start-up: `allocations after start-up: 0`, as
//!   counted by the global allocator
//!
//! ## Notes
//!
//! The plumbing is written for you: the command line, the counting allocator, the TUN device
//! (`tun::Tun`: `wait`, `recv` one packet, `send` one packet, with the `--drop-every` hook inside)
//! and SIGTERM. Yours is `serve`: the headers and their checksums (lab 7.1), a connection's
//! state machine and its fixed buffers, the table, the RSTs, the retransmission timer.
//!
//! The rule of the lab: `serve` allocates nothing. Its table, its buffers and its packets live
//! in its own stack frame (arrays of a size fixed at compile time) or in statics; parse a
//! packet in place, build the answer in a `[u8; 1500]`. `main` prints what `serve` counted in
//! `Stats` once SIGTERM stops it. Read README.md for the design; `cargo lab hint 7.12` helps.
#![allow(unused_variables, dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

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
// Yours: the TCP
// ---------------------------------------------------------------------------------------------

/// Serves the echo over your TCP until `signals::stop_requested()`: wait for a packet or the
/// next retransmission deadline (`tun.wait`), handle every packet `tun.recv` gives, fire the
/// timers. Count what `main` prints in `stats`. No heap allocation in here.
fn serve(tun: &mut tun::Tun, args: &Args, stats: &mut Stats) {
    todo!("IPv4/TCP parsing and checksums, a fixed table of connections, RST, retransmission")
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
