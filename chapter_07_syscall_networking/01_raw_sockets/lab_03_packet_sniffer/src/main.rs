//! ## Goal
//! Build the engine of `tcpdump`: an `AF_PACKET` socket whose packets arrive in a `PACKET_RX_RING`
//! that you `mmap` once and then read in place. TPACKET_V3 fills the ring block by block; you walk
//! the packets of a block without copying a byte (your decoded views borrow the ring), hand the
//! block back to the kernel with the right memory ordering, and read the kernel's counters
//! (`PACKET_STATISTICS`) to prove nothing was dropped.
//!
//! ## Requirements
//! 1. `Sniffer::open(interface, &RingConfig)` opens `socket(AF_PACKET, SOCK_RAW, ...)`, selects
//!    `TPACKET_V3`, sets up a `PACKET_RX_RING` of `block_count` blocks of `block_size` bytes, maps
//!    it with `mmap` (one shared mapping of the socket), and binds to the interface. An unknown interface or a bad geometry is an
//!    error that names the problem.
//! 2. `next_block(timeout)` returns the next block the kernel has filled (`TP_STATUS_USER`), waiting
//!    with `poll(2)` at most `timeout` (asleep in one `poll`, not checking in a loop); `Block::packets()` walks its packets in place. Each
//!    `Packet` carries `sll_pkttype` (on `lo` every packet shows up twice: `PACKET_OUTGOING` and
//!    `PACKET_HOST`), and `data`, a slice *of the ring*. `decode` returns an IPv4 view whose
//!    `payload` is a slice of its input. Every datagram sent is captured once per copy.
//! 3. Dropping a `Block` gives it back to the kernel (`TP_STATUS_KERNEL`, a `Release` store; the
//!    status is read with `Acquire`), so a small ring (4 blocks of 4 KiB) wraps many times without
//!    losing a packet when the traffic is paced.
//! 4. `statistics()` returns packets received and dropped since `open` (the kernel resets its
//!    counters on each read: add them up).
//! 5. `decode` reads Ethernet + IPv4 + UDP/TCP/ICMP and returns `None` for anything else or anything
//!    malformed, never panicking; the payload stops at the IPv4 total length (Ethernet padding is
//!    not payload).
//! 6. The program, `ch7_packet_sniffer [-i interface] [-c count] [--proto udp|tcp|icmp] [--port N]`,
//!    prints `capturing on <interface>`, then one line per packet like tcpdump
//!    (`10:01:02.123456 IP 127.0.0.1.40000 > 127.0.0.1.9999: UDP, length 12`), skipping the outgoing
//!    copy on `lo`; after `count` packets or on Ctrl-C it prints `N packets captured`,
//!    `R packets received by filter`, `D packets dropped by kernel`.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `Sniffer::open(interface, &RingConfig)` opens `socket(AF_PACKET, SOCK_RAW,
//!   ...)`, selects `TPACKET_V3`, sets up a `PACKET_RX_RING` of `block_count` blocks of
//!   `block_size` bytes, maps it with `mmap` (one shared mapping of the socket), and binds to the
//!   interface
//! - [ ] Requirement 2: `next_block(timeout)` returns the next block the kernel has filled
//!   (`TP_STATUS_USER`), waiting with `poll(2)` at most `timeout` (asleep in one `poll`, not
//!   checking in a loop); `Block::packets()` walks its packets in place
//! - [ ] Requirement 3: Dropping a `Block` gives it back to the kernel (`TP_STATUS_KERNEL`, a
//!   `Release` store; the status is read with `Acquire`), so a small ring (4 blocks of 4 KiB) wraps
//!   many times without losing a packet when the traffic is paced
//! - [ ] Requirement 4: `statistics()` returns packets received and dropped since `open` (the
//!   kernel resets its counters on each read: add them up)
//! - [ ] Requirement 5: `decode` reads Ethernet + IPv4 + UDP/TCP/ICMP and returns `None` for
//!   anything else or anything malformed, never panicking; the payload stops at the IPv4 total
//!   length (Ethernet padding is not payload)
//! - [ ] Requirement 6: The program, `ch7_packet_sniffer [-i interface] [-c count] [--proto
//!   udp|tcp|icmp] [--port N]`, prints `capturing on <interface>`, then one line per packet like
//!   tcpdump (`10:01:02.123456 IP 127.0.0.1.40000 > 127.0.0.1.9999: UDP, length 12`), skipping the
//!   outgoing copy on `lo`; after `count` packets or on Ctrl-C it prints `N packets captured`, `R
//!   packets received by filter`, `D packets dropped by kernel`
//!
//! ## Notes
//!
//! A zero-copy packet sniffer: `AF_PACKET` + a `TPACKET_V3` receive ring shared with the kernel
//! through `mmap`.
//!
//! ```text
//! ch7_packet_sniffer [-i interface] [-c count] [--proto udp|tcp|icmp] [--port N]
//! ```
//!
//! With `recvfrom(2)` every packet costs one system call and one copy. With a `PACKET_RX_RING`
//! the kernel writes packets straight into memory that we mapped once; we read them in place.
//! TPACKET_V3 cuts the ring into *blocks*: the kernel fills a block with as many packets as fit
//! (or until a timer retires it), flips its status to `TP_STATUS_USER`, and moves on. We walk
//! the packets of that block, then hand it back by writing `TP_STATUS_KERNEL`. One `poll(2)`
//! per block instead of one system call per packet.
//!
//! The status word is the only synchronisation between the kernel and us, so it is read with
//! `Acquire` (the packet bytes written before it are visible after it) and written back with
//! `Release` (our reads of the block happen before the kernel may overwrite it).
//!
//! Read README.md for the requirements; `cargo lab test 7.3` grades this file (as root, or
//! inside `unshare -rn`): white-box on `Sniffer`, `Block`, `Packet` and `decode`, black-box on the
//! program. The command line, the error type and `setsockopt` are written for you. Remove the
//! `allow` once every item is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::ExitCode;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use clap::Parser;

/// Everything that can go wrong.
#[derive(Debug)]
pub enum SnifferError {
    /// `socket(AF_PACKET)` refused: CAP_NET_RAW is missing.
    NeedCapNetRaw,
    /// No interface of that name.
    NoSuchInterface(String),
    /// The ring geometry is invalid.
    BadConfig(&'static str),
    /// A system call failed.
    Io(&'static str, io::Error),
}

impl fmt::Display for SnifferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnifferError::NeedCapNetRaw => write!(
                f,
                "packet sockets need CAP_NET_RAW: run as root, inside `unshare -rn` (then `ip link set lo up`), or `sudo setcap cap_net_raw+ep <this binary>`"
            ),
            SnifferError::NoSuchInterface(name) => {
                write!(f, "no such interface: {name} (see `ip link`)")
            }
            SnifferError::BadConfig(why) => write!(f, "bad ring configuration: {why}"),
            SnifferError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for SnifferError {}

fn last_error(what: &'static str) -> SnifferError {
    SnifferError::Io(what, io::Error::last_os_error())
}

/// Geometry of the receive ring.
#[derive(Debug, Clone, Copy)]
pub struct RingConfig {
    /// Bytes per block: a multiple of the page size.
    pub block_size: u32,
    pub block_count: u32,
    /// TPACKET_V3 packs packets of any size into blocks; the frame size only has to divide the
    /// block size (the kernel still checks it).
    pub frame_size: u32,
    /// The kernel retires a block that is not full after this many milliseconds, so a quiet
    /// link still delivers its packets.
    pub block_timeout_ms: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 16,
            block_count: 16,
            frame_size: 2048,
            block_timeout_ms: 10,
        }
    }
}

/// Received and dropped packets, from `getsockopt(PACKET_STATISTICS)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub packets: u64,
    pub drops: u64,
}

/// An `AF_PACKET` socket with its mapped ring.
pub struct Sniffer {
    fd: OwnedFd,
    ring: NonNull<u8>,
    config: RingConfig,
    next_block: usize,
    stats: Stats,
}

impl Sniffer {
    /// Opens a packet socket on `interface` with a TPACKET_V3 ring of `config`'s geometry.
    pub fn open(interface: &str, config: &RingConfig) -> Result<Sniffer, SnifferError> {
        todo!(
            "if_nametoindex, socket(AF_PACKET, SOCK_RAW, 0), PACKET_VERSION, PACKET_RX_RING, mmap, bind"
        )
    }

    /// Addresses of the mapped ring: every packet we hand out lies inside.
    pub fn ring_range(&self) -> Range<usize> {
        todo!("Addresses of the mapped ring: every packet we hand out lies inside")
    }

    /// The next block the kernel has filled, waiting at most `timeout` for it. The block goes
    /// back to the kernel when the returned [`Block`] is dropped.
    pub fn next_block(&mut self, timeout: Duration) -> Result<Option<Block<'_>>, SnifferError> {
        todo!(
            "Acquire-load the status of block next_block; if not TP_STATUS_USER, poll(2) once and look again"
        )
    }

    /// Received and dropped packets since `open`. The kernel resets its counters on each read,
    /// so we add them up.
    pub fn statistics(&mut self) -> Result<Stats, SnifferError> {
        todo!(
            "getsockopt(SOL_PACKET, PACKET_STATISTICS) into a tpacket_stats_v3, added to self.stats"
        )
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        todo!("munmap the ring")
    }
}

fn setsockopt<T>(
    fd: &OwnedFd,
    option: libc::c_int,
    value: &T,
    what: &'static str,
) -> Result<(), SnifferError> {
    // SAFETY: value points to a T that lives for the call; the kernel copies size_of::<T>() bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(last_error(what))
    } else {
        Ok(())
    }
}

/// A block owned by user space until dropped.
pub struct Block<'r> {
    start: *mut u8,
    size: usize,
    status: &'r AtomicU32,
    _ring: PhantomData<&'r mut Sniffer>,
}

impl Block<'_> {
    /// The packets of this block, in the order the kernel wrote them. They borrow the block, so
    /// the compiler refuses any use of them after the block is returned.
    pub fn packets(&self) -> Packets<'_> {
        todo!("read num_pkts and offset_to_first_pkt from the block descriptor")
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        todo!("store TP_STATUS_KERNEL with Release ordering")
    }
}

/// Iterator over the packets of a block.
pub struct Packets<'b> {
    block: &'b Block<'b>,
    offset: usize,
    left: u32,
}

/// One captured packet, in place in the ring.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'b> {
    /// `PACKET_HOST`, `PACKET_OUTGOING`... (`sll_pkttype`).
    pub pkttype: u8,
    pub ifindex: i32,
    /// Length on the wire (`data` may be shorter if the snap length cut it).
    pub wire_len: u32,
    pub sec: u32,
    pub nsec: u32,
    /// The frame from the link-layer header on.
    pub data: &'b [u8],
}

impl Packet<'_> {
    /// On `lo` every packet shows up twice: once leaving (`PACKET_OUTGOING`), once arriving.
    pub fn is_outgoing(&self) -> bool {
        todo!("On lo every packet shows up twice: once leaving (PACKET_OUTGOING), once arriving")
    }
}

const TPACKET3_HDR_ALIGNED: usize = (size_of::<libc::tpacket3_hdr>() + 15) & !15;

impl<'b> Iterator for Packets<'b> {
    type Item = Packet<'b>;

    fn next(&mut self) -> Option<Packet<'b>> {
        todo!("tpacket3_hdr at offset, sockaddr_ll after it, data at tp_mac, then tp_next_offset")
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding, borrowing the ring
// ---------------------------------------------------------------------------------------------

/// Transport protocol of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp {
        src_port: u16,
        dst_port: u16,
    },
    Tcp {
        src_port: u16,
        dst_port: u16,
        flags: u8,
    },
    Icmp {
        msg_type: u8,
        code: u8,
    },
    Other(u8),
}

/// An Ethernet + IPv4 packet, decoded in place.
#[derive(Debug, Clone, Copy)]
pub struct Decoded<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub transport: Transport,
    /// The transport payload (after the UDP/TCP/ICMP header), a slice of the input.
    pub payload: &'a [u8],
}

/// Decodes an Ethernet II frame holding IPv4; `None` for anything else or anything malformed.
pub fn decode(frame: &[u8]) -> Option<Decoded<'_>> {
    todo!("Decodes an Ethernet II frame holding IPv4; None for anything else or anything malformed")
}

/// One line like tcpdump's: `12:00:01.000123 IP 127.0.0.1.4000 > 127.0.0.1.53: UDP, length 12`.
pub fn format_line(packet: &Packet<'_>, decoded: &Decoded<'_>) -> String {
    todo!(
        "One line like tcpdump's: 12:00:01.000123 IP 127.0.0.1.4000 > 127.0.0.1.53: UDP, length 12"
    )
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// The command line: `ch7_packet_sniffer [-i interface] [-c count] [--proto udp|tcp|icmp]
/// [--port N]`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_packet_sniffer",
    about = "Print the packets of an interface like tcpdump, read in place from a TPACKET_V3 ring"
)]
struct Options {
    /// The interface to capture on
    #[arg(short = 'i', value_name = "INTERFACE", default_value = "lo")]
    interface: String,
    /// Stop after this many packets (default: at Ctrl-C)
    #[arg(short = 'c', value_name = "COUNT")]
    count: Option<u64>,
    /// Only this transport protocol
    #[arg(long, value_parser = ["udp", "tcp", "icmp"])]
    proto: Option<String>,
    /// Only packets from or to this port
    #[arg(long, value_name = "N")]
    port: Option<u16>,
}

fn matches(opts: &Options, d: &Decoded<'_>) -> bool {
    let (proto, ports) = match d.transport {
        Transport::Udp { src_port, dst_port } => ("udp", Some((src_port, dst_port))),
        Transport::Tcp {
            src_port, dst_port, ..
        } => ("tcp", Some((src_port, dst_port))),
        Transport::Icmp { .. } => ("icmp", None),
        Transport::Other(_) => ("other", None),
    };
    opts.proto.as_deref().is_none_or(|p| p == proto)
        && opts
            .port
            .is_none_or(|port| ports.is_some_and(|(s, d)| s == port || d == port))
}

fn run(opts: &Options) -> Result<(), SnifferError> {
    todo!(
        "open the sniffer, print capturing on <interface>, walk blocks, print matching packets, then the statistics"
    )
}

fn main() -> ExitCode {
    // Before any socket: `--help` prints the usage (exit 0), a bad argument is a usage error
    // (exit 2).
    let opts = Options::parse();
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_packet_sniffer: {e}");
            ExitCode::from(2)
        }
    }
}
