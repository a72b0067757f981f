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

use std::ffi::CString;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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
        let page = 4096;
        if config.block_size == 0
            || !config.block_size.is_multiple_of(page)
            || config.block_count == 0
        {
            return Err(SnifferError::BadConfig(
                "block size must be a non-zero multiple of 4096",
            ));
        }
        if config.frame_size == 0 || !config.block_size.is_multiple_of(config.frame_size) {
            return Err(SnifferError::BadConfig(
                "frame size must divide the block size",
            ));
        }
        let name =
            CString::new(interface).map_err(|_| SnifferError::NoSuchInterface(interface.into()))?;
        // SAFETY: name is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(SnifferError::NoSuchInterface(interface.into()));
        }

        // Protocol 0: the socket receives nothing until `bind` below, so the ring never holds
        // packets of other interfaces that arrived before we chose ours.
        // SAFETY: socket(2) with plain integers.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => SnifferError::NeedCapNetRaw,
                _ => SnifferError::Io("socket(AF_PACKET)", e),
            });
        }
        // SAFETY: fd is fresh and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::PACKET_VERSION, &version, "PACKET_VERSION")?;
        let req = libc::tpacket_req3 {
            tp_block_size: config.block_size,
            tp_block_nr: config.block_count,
            tp_frame_size: config.frame_size,
            tp_frame_nr: config.block_size / config.frame_size * config.block_count,
            tp_retire_blk_tov: config.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::PACKET_RX_RING, &req, "PACKET_RX_RING")?;

        let len = config.block_size as usize * config.block_count as usize;
        // SAFETY: we map the ring the kernel just allocated for this fd; the mapping is released
        // in Drop and nothing else aliases it in this process.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(last_error("mmap"));
        }
        let ring = NonNull::new(ring.cast::<u8>()).ok_or(SnifferError::BadConfig("null ring"))?;
        let sniffer = Sniffer {
            fd,
            ring,
            config: *config,
            next_block: 0,
            stats: Stats::default(),
        };

        // SAFETY: all-zero bytes are a valid sockaddr_ll; the fields that matter are set below.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: addr is a valid sockaddr_ll for the length given.
        let rc = unsafe {
            libc::bind(
                sniffer.fd.as_raw_fd(),
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(last_error("bind"));
        }
        Ok(sniffer)
    }

    /// Addresses of the mapped ring: every packet we hand out lies inside.
    pub fn ring_range(&self) -> Range<usize> {
        let start = self.ring.as_ptr() as usize;
        start..start + self.ring_len()
    }

    fn ring_len(&self) -> usize {
        self.config.block_size as usize * self.config.block_count as usize
    }

    /// The status word of block `index`, seen as an atomic shared with the kernel.
    fn block_status(&self, index: usize) -> &AtomicU32 {
        let offset = index * self.config.block_size as usize;
        // SAFETY: the block descriptor starts each block, inside the mapping, 4-byte aligned
        // (blocks are page aligned); `block_status` is its first field after `version` and
        // `offset_to_priv`. The kernel writes it concurrently, hence the atomic view.
        unsafe {
            let desc = self
                .ring
                .as_ptr()
                .add(offset)
                .cast::<libc::tpacket_block_desc>();
            AtomicU32::from_ptr(&raw mut (*desc).hdr.bh1.block_status)
        }
    }

    /// The next block the kernel has filled, waiting at most `timeout` for it. The block goes
    /// back to the kernel when the returned [`Block`] is dropped.
    pub fn next_block(&mut self, timeout: Duration) -> Result<Option<Block<'_>>, SnifferError> {
        let index = self.next_block;
        if self.block_status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(SnifferError::Io("poll", e));
                }
            }
            if self.block_status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
                return Ok(None);
            }
        }
        self.next_block = (index + 1) % self.config.block_count as usize;
        let size = self.config.block_size as usize;
        // SAFETY: block `index` lies inside the mapping; its status is USER, so the kernel will
        // not write it until we store KERNEL (Block::drop).
        let start = unsafe { self.ring.as_ptr().add(index * size) };
        Ok(Some(Block {
            start,
            size,
            status: self.block_status(index),
            _ring: PhantomData,
        }))
    }

    /// Received and dropped packets since `open`. The kernel resets its counters on each read,
    /// so we add them up.
    pub fn statistics(&mut self) -> Result<Stats, SnifferError> {
        // SAFETY: all-zero bytes are a valid tpacket_stats_v3.
        let mut raw: libc::tpacket_stats_v3 = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: raw and len are valid for writes; len holds raw's size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut raw).cast(),
                &mut len,
            )
        };
        if rc < 0 {
            return Err(last_error("getsockopt(PACKET_STATISTICS)"));
        }
        self.stats.packets += u64::from(raw.tp_packets);
        self.stats.drops += u64::from(raw.tp_drops);
        Ok(self.stats)
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range in `open`; no Block outlives `self` (they borrow it).
        unsafe { libc::munmap(self.ring.as_ptr().cast(), self.ring_len()) };
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
        // SAFETY: `start` is a block descriptor owned by us while status is USER.
        let bh = unsafe { &(*self.start.cast::<libc::tpacket_block_desc>()).hdr.bh1 };
        Packets {
            block: self,
            offset: bh.offset_to_first_pkt as usize,
            left: bh.num_pkts,
        }
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        // Release: every read of this block above happens before the kernel sees it is free.
        self.status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
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
        self.pkttype == libc::PACKET_OUTGOING
    }
}

const TPACKET3_HDR_ALIGNED: usize = (size_of::<libc::tpacket3_hdr>() + 15) & !15;

impl<'b> Iterator for Packets<'b> {
    type Item = Packet<'b>;

    fn next(&mut self) -> Option<Packet<'b>> {
        let size = self.block.size;
        if self.left == 0
            || self.offset + TPACKET3_HDR_ALIGNED + size_of::<libc::sockaddr_ll>() > size
        {
            return None;
        }
        self.left -= 1;
        // SAFETY: offset + header + sockaddr_ll lies inside the block (checked above); the
        // kernel aligns each tpacket3_hdr to 16 bytes.
        let (hdr, sll) = unsafe {
            let at = self.block.start.add(self.offset);
            (
                &*at.cast::<libc::tpacket3_hdr>(),
                &*at.add(TPACKET3_HDR_ALIGNED).cast::<libc::sockaddr_ll>(),
            )
        };
        let mac = self.offset + usize::from(hdr.tp_mac);
        let snap = hdr.tp_snaplen as usize;
        if mac + snap > size {
            self.left = 0; // a corrupt block: stop rather than read outside it
            return None;
        }
        // SAFETY: mac..mac+snap lies inside the block, which we own until the Block is dropped;
        // the lifetime 'b ties the slice to that borrow.
        let data = unsafe { std::slice::from_raw_parts(self.block.start.add(mac), snap) };
        let packet = Packet {
            pkttype: sll.sll_pkttype,
            ifindex: sll.sll_ifindex,
            wire_len: hdr.tp_len,
            sec: hdr.tp_sec,
            nsec: hdr.tp_nsec,
            data,
        };
        self.offset += hdr.tp_next_offset as usize;
        if hdr.tp_next_offset == 0 {
            self.left = 0;
        }
        Some(packet)
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
    if frame.len() < 14 || u16::from_be_bytes([frame[12], frame[13]]) != 0x0800 {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(*ip.first()? & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]])).clamp(ihl, ip.len());
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let seg = &ip[ihl..total];
    let port = |at: usize| u16::from_be_bytes([seg[at], seg[at + 1]]);
    let (transport, header_len) = match ip[9] {
        17 if seg.len() >= 8 => (
            Transport::Udp {
                src_port: port(0),
                dst_port: port(2),
            },
            8,
        ),
        6 if seg.len() >= 20 => {
            let len = usize::from(seg[12] >> 4) * 4;
            if len < 20 || len > seg.len() {
                return None;
            }
            (
                Transport::Tcp {
                    src_port: port(0),
                    dst_port: port(2),
                    flags: seg[13],
                },
                len,
            )
        }
        1 if seg.len() >= 8 => (
            Transport::Icmp {
                msg_type: seg[0],
                code: seg[1],
            },
            8,
        ),
        17 | 6 | 1 => return None,
        other => (Transport::Other(other), 0),
    };
    Some(Decoded {
        src,
        dst,
        transport,
        payload: &seg[header_len..],
    })
}

/// One line like tcpdump's: `12:00:01.000123 IP 127.0.0.1.4000 > 127.0.0.1.53: UDP, length 12`.
pub fn format_line(packet: &Packet<'_>, decoded: &Decoded<'_>) -> String {
    let secs = packet.sec % 86_400;
    let time = format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        packet.nsec / 1000
    );
    let (s, d, len) = (decoded.src, decoded.dst, decoded.payload.len());
    match decoded.transport {
        Transport::Udp { src_port, dst_port } => {
            format!("{time} IP {s}.{src_port} > {d}.{dst_port}: UDP, length {len}")
        }
        Transport::Tcp {
            src_port,
            dst_port,
            flags,
        } => {
            const NAMES: [(u8, char); 6] = [
                (0x02, 'S'),
                (0x01, 'F'),
                (0x04, 'R'),
                (0x08, 'P'),
                (0x20, 'U'),
                (0x10, '.'),
            ];
            let f: String = NAMES
                .iter()
                .filter(|(bit, _)| flags & bit != 0)
                .map(|(_, c)| *c)
                .collect();
            format!("{time} IP {s}.{src_port} > {d}.{dst_port}: Flags [{f}], length {len}")
        }
        Transport::Icmp { msg_type, code } => {
            format!("{time} IP {s} > {d}: ICMP type {msg_type} code {code}, length {len}")
        }
        Transport::Other(p) => format!("{time} IP {s} > {d}: ip-proto-{p}, length {len}"),
    }
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
    let mut sniffer = Sniffer::open(&opts.interface, &RingConfig::default())?;
    // SAFETY: on_signal only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    println!("capturing on {}", opts.interface);
    let mut captured = 0u64;
    let loopback = opts.interface == "lo";
    'outer: while !STOP.load(Ordering::Relaxed) {
        let Some(block) = sniffer.next_block(Duration::from_millis(100))? else {
            continue;
        };
        for packet in block.packets() {
            // libpcap does the same: on loopback the outgoing copy is a duplicate.
            if loopback && packet.is_outgoing() {
                continue;
            }
            let Some(decoded) = decode(packet.data) else {
                continue;
            };
            if !matches(opts, &decoded) {
                continue;
            }
            println!("{}", format_line(&packet, &decoded));
            captured += 1;
            if opts.count.is_some_and(|c| captured >= c) {
                break 'outer;
            }
        }
    }
    let stats = sniffer.statistics()?;
    println!("{captured} packets captured");
    println!("{} packets received by filter", stats.packets);
    println!("{} packets dropped by kernel", stats.drops);
    Ok(())
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
