//! ## Goal
//! Read and write the headers every packet on your machine carries (Ethernet II, IPv4, UDP, TCP,
//! ICMP echo) with nothing but slices, shifts and masks. You build the two layers smoltcp uses in
//! `src/wire/`: a *view* (`Ipv4Packet<T: AsRef<[u8]>>`) that checks lengths once and then reads
//! big-endian fields at named offsets without ever panicking, and a *repr* (`Ipv4Repr`) that emits
//! a header into a buffer, computing lengths and RFC 1071 checksums (with the TCP/UDP pseudo-header).
//! The next two labs put these bytes on the wire.
//!
//! ## Requirements
//! 1. `checksum`, `sum_words`, `fold`: the RFC 1071 Internet checksum, odd lengths padded with a
//!    zero byte; `transport_checksum` adds the IPv4 pseudo-header (source, destination, zero,
//!    protocol, segment length) for TCP and UDP.
//! 2. `EthernetRepr`, `Ipv4Repr`, `UdpRepr`, `TcpRepr`, `IcmpEchoRepr` emit their header (and, for
//!    UDP/TCP/ICMP, the payload) into a buffer: big-endian fields, IHL and TCP data offset in 32-bit
//!    words, flags and fragment offset packed into one 16-bit word, checksums filled in, and return
//!    the number of bytes written.
//! 3. The views (`EthernetFrame`, `Ipv4Packet`, `UdpPacket`, `TcpPacket`, `IcmpPacket`) read every
//!    field back; `verify_checksum` recomputes the checksum, so a packet with one bit flipped or
//!    its checksum zeroed fails it (only UDP gives a zero checksum a meaning: "none"). The IPv4
//!    payload ends at the total length, not at the end of the buffer (Ethernet pads short frames).
//!    Frames you build are read identically by an independent parser (etherparse), and frames it
//!    builds are read identically by yours.
//! 4. `new_checked` rejects short buffers with `WireError::Truncated` and impossible fields
//!    (version not 4, IHL < 5, total length below the header, UDP length < 8, TCP data offset < 5)
//!    with an error; once a view exists, no accessor can panic, whatever the bytes. `emit` into a
//!    buffer that is too small is an error, not a panic.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `checksum`, `sum_words`, `fold`: the RFC 1071 Internet checksum, odd
//!   lengths padded with a zero byte; `transport_checksum` adds the IPv4 pseudo-header (source,
//!   destination, zero, protocol, segment length) for TCP and UDP
//! - [ ] Requirement 2: `EthernetRepr`, `Ipv4Repr`, `UdpRepr`, `TcpRepr`, `IcmpEchoRepr` emit their
//!   header (and, for UDP/TCP/ICMP, the payload) into a buffer: big-endian fields, IHL and TCP data
//!   offset in 32-bit words, flags and fragment offset packed into one 16-bit word, checksums
//!   filled in, and return the number of bytes written
//! - [ ] Requirement 3: The views (`EthernetFrame`, `Ipv4Packet`, `UdpPacket`, `TcpPacket`,
//!   `IcmpPacket`) read every field back; `verify_checksum` recomputes the checksum, so a packet
//!   with one bit flipped or its checksum zeroed fails it (only UDP gives a zero checksum a
//!   meaning: "none")
//! - [ ] Requirement 4: `new_checked` rejects short buffers with `WireError::Truncated` and
//!   impossible fields (version not 4, IHL < 5, total length below the header, UDP length < 8, TCP
//!   data offset < 5) with an error; once a view exists, no accessor can panic, whatever the bytes
//!
//! ## Notes
//!
//! Packet headers by hand: Ethernet II, IPv4, UDP, TCP and ICMP echo, parsed from `&[u8]` and
//! built into a buffer, with the RFC 1071 Internet checksum.
//!
//! Two layers, as in smoltcp's `src/wire/`:
//! - a *view* (`Ipv4Packet<T: AsRef<[u8]>>`) wraps a buffer, checks its lengths once in
//!   `new_checked`, then reads fields at named offsets. After the check no accessor can index
//!   out of bounds, so no accessor can panic, whatever bytes arrived from the wire.
//! - a *repr* (`Ipv4Repr`) is a plain struct of field values that `emit`s itself into a buffer.
//!
//! Every multi-byte field on the wire is big-endian ("network byte order"): `u16::from_be_bytes`
//! to read, `to_be_bytes` to write. Fields narrower than a byte (IHL, flags, DSCP) are packed
//! with shifts and masks.
//!
//! Read README.md for the requirements; `cargo lab test 7.1` grades this file, white-box: the
//! grader calls exactly the items below. The offset constants are yours to use. Remove the
//! `allow` once every argument is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::net::Ipv4Addr;

/// Why a buffer is not a valid packet (or too small to emit one into).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer is shorter than the header (or than a length field says).
    Truncated,
    /// A field has a value the format forbids (version 6 in an IPv4 view, IHL < 5...).
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated packet"),
            WireError::Malformed(why) => write!(f, "malformed packet: {why}"),
        }
    }
}

impl std::error::Error for WireError {}

// ---------------------------------------------------------------------------------------------
// RFC 1071: the Internet checksum
// ---------------------------------------------------------------------------------------------

/// Adds `data` as a sequence of big-endian 16-bit words to `sum` (a trailing odd byte is padded
/// with a zero byte on the right). Returns the unfolded 32-bit sum: call [`fold`] at the end.
pub fn sum_words(sum: u32, data: &[u8]) -> u32 {
    todo!(
        "Adds data as a sequence of big-endian 16-bit words to sum (a trailing odd byte is padded"
    )
}

/// Folds the carries of a 32-bit sum back into 16 bits (end-around carry, ones' complement).
pub fn fold(sum: u32) -> u16 {
    todo!(
        "Folds the carries of a 32-bit sum back into 16 bits (end-around carry, ones' complement)"
    )
}

/// The Internet checksum of `data`: the ones' complement of the ones' complement sum.
/// A buffer whose checksum field is already filled in sums to `0xffff`, so this returns 0.
pub fn checksum(data: &[u8]) -> u16 {
    todo!("The Internet checksum of data: the ones' complement of the ones' complement sum")
}

/// Sum of the IPv4 pseudo-header that TCP and UDP checksums cover: source, destination,
/// zero, protocol, and the length of the TCP/UDP segment (header plus payload).
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment_len: u16) -> u32 {
    todo!("Sum of the IPv4 pseudo-header that TCP and UDP checksums cover: source, destination,")
}

/// The TCP or UDP checksum of `segment` (its checksum field zeroed, or filled in to verify).
pub fn transport_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    todo!("The TCP or UDP checksum of segment (its checksum field zeroed, or filled in to verify)")
}

// ---------------------------------------------------------------------------------------------
// Ethernet II
// ---------------------------------------------------------------------------------------------
//
//  0                   1                   2                   3
//  +-----------------------------------------------+-----------------------------------------+
//  |        destination MAC (6 bytes)              |          source MAC (6 bytes)           |
//  +-----------------------------------------------+-----------------------------------------+
//  |   EtherType   |  payload ...
//  +---------------+

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;

mod eth_field {
    pub const DST: usize = 0;
    pub const SRC: usize = 6;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// Length of an Ethernet II header (no VLAN tag).
pub const ETHERNET_HEADER_LEN: usize = eth_field::PAYLOAD;

/// A read-only view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buffer` after checking that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        todo!("Wraps buffer after checking that it holds a whole header")
    }

    pub fn dst(&self) -> [u8; 6] {
        todo!("read the field at its offset")
    }

    pub fn src(&self) -> [u8; 6] {
        todo!("read the field at its offset")
    }

    pub fn ethertype(&self) -> u16 {
        todo!("read ethertype from the buffer")
    }

    pub fn payload(&self) -> &[u8] {
        todo!("read payload from the buffer")
    }
}

/// The fields of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Writes the 14-byte header at the start of `buf`; returns the bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        todo!("Writes the 14-byte header at the start of buf; returns the bytes written")
    }
}

// ---------------------------------------------------------------------------------------------
// IPv4 (RFC 791)
// ---------------------------------------------------------------------------------------------
//
//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |Version|  IHL  |   DSCP    |ECN|          Total Length         |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |         Identification        |0|D|M|      Fragment Offset    |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |  Time to Live |    Protocol   |         Header Checksum       |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                       Source Address                          |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                    Destination Address                        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                    Options (IHL > 5)                          |

/// IP protocol numbers used in this lab.
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

mod ip_field {
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const OPTIONS: usize = 20;
}

/// Length of an IPv4 header without options.
pub const IPV4_MIN_HEADER_LEN: usize = ip_field::OPTIONS;

const DONT_FRAGMENT: u16 = 0x4000;
const MORE_FRAGMENTS: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// A read-only view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks version 4, 5 <= IHL, and header_len <= total_len <= buffer length. Bytes after
    /// `total_len` (Ethernet padding of short frames) are ignored by [`Self::payload`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        todo!(
            "Checks version 4, 5 <= IHL, and header_len <= total_len <= buffer length. Bytes after"
        )
    }

    pub fn version(&self) -> u8 {
        todo!("read version from the buffer")
    }

    /// Header length in bytes (IHL counts 32-bit words).
    pub fn header_len(&self) -> usize {
        todo!("Header length in bytes (IHL counts 32-bit words)")
    }

    pub fn dscp(&self) -> u8 {
        todo!("read dscp from the buffer")
    }

    pub fn ecn(&self) -> u8 {
        todo!("read ecn from the buffer")
    }

    pub fn total_len(&self) -> u16 {
        todo!("read total_len from the buffer")
    }

    pub fn ident(&self) -> u16 {
        todo!("read ident from the buffer")
    }

    pub fn dont_fragment(&self) -> bool {
        todo!("read dont_fragment from the buffer")
    }

    pub fn more_fragments(&self) -> bool {
        todo!("read more_fragments from the buffer")
    }

    /// Fragment offset in 8-byte units, as on the wire.
    pub fn frag_offset(&self) -> u16 {
        todo!("Fragment offset in 8-byte units, as on the wire")
    }

    pub fn ttl(&self) -> u8 {
        todo!("read ttl from the buffer")
    }

    pub fn protocol(&self) -> u8 {
        todo!("read protocol from the buffer")
    }

    pub fn checksum(&self) -> u16 {
        todo!("read checksum from the buffer")
    }

    pub fn src(&self) -> Ipv4Addr {
        todo!("read the field at its offset")
    }

    pub fn dst(&self) -> Ipv4Addr {
        todo!("read the field at its offset")
    }

    pub fn options(&self) -> &[u8] {
        todo!("read options from the buffer")
    }

    /// The bytes after the header, up to `total_len`.
    pub fn payload(&self) -> &[u8] {
        todo!("The bytes after the header, up to total_len")
    }

    /// Whether the header checksum is right (the header, options included, sums to 0xffff).
    pub fn verify_checksum(&self) -> bool {
        todo!("Whether the header checksum is right (the header, options included, sums to 0xffff)")
    }
}

/// The fields of an IPv4 header. `emit` computes IHL, total length and the checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub dscp: u8,
    pub ecn: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    pub frag_offset: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Options, already encoded; their length must be a multiple of 4 and at most 40.
    pub options: Vec<u8>,
    /// Length of what follows the header (not written by `emit`).
    pub payload_len: usize,
}

impl Ipv4Repr {
    pub fn header_len(&self) -> usize {
        todo!("20 plus the options length")
    }

    /// Writes the header, checksum included, at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        todo!("Writes the header, checksum included, at the start of buf; returns its length")
    }
}

// ---------------------------------------------------------------------------------------------
// UDP (RFC 768)
// ---------------------------------------------------------------------------------------------
//
// +-------------------------------+-------------------------------+
// |          Source Port          |       Destination Port        |
// +-------------------------------+-------------------------------+
// |            Length             |           Checksum            |
// +-------------------------------+-------------------------------+

mod udp_field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
    pub const PAYLOAD: usize = 8;
}

pub const UDP_HEADER_LEN: usize = udp_field::PAYLOAD;

/// A read-only view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks 8 <= length field <= buffer length.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        todo!("Checks 8 <= length field <= buffer length")
    }

    pub fn src_port(&self) -> u16 {
        todo!("read src_port from the buffer")
    }

    pub fn dst_port(&self) -> u16 {
        todo!("read dst_port from the buffer")
    }

    /// The UDP length field (header plus payload), not a container length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        todo!("read len from the buffer")
    }

    pub fn checksum(&self) -> u16 {
        todo!("read checksum from the buffer")
    }

    pub fn payload(&self) -> &[u8] {
        todo!("read payload from the buffer")
    }

    /// Whether the checksum is right for this source and destination (0 means "not computed").
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        todo!(
            "Whether the checksum is right for this source and destination (0 means 'not computed')"
        )
    }
}

/// The fields of a UDP header; `emit` fills in the length and the checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Writes header and payload; returns their length.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize, WireError> {
        todo!("Writes header and payload; returns their length")
    }
}

// ---------------------------------------------------------------------------------------------
// TCP (RFC 9293)
// ---------------------------------------------------------------------------------------------
//
// +-------------------------------+-------------------------------+
// |          Source Port          |       Destination Port        |
// +-------------------------------+-------------------------------+
// |                        Sequence Number                        |
// +---------------------------------------------------------------+
// |                    Acknowledgment Number                      |
// +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
// | Data  |       |C|E|U|A|P|R|S|F|                               |
// | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
// +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
// |           Checksum            |         Urgent Pointer        |
// +-------------------------------+-------------------------------+
// |                    Options (data offset > 5)                  |

/// TCP flag bits, as in byte 13 of the header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

mod tcp_field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
    pub const OPTIONS: usize = 20;
}

pub const TCP_MIN_HEADER_LEN: usize = tcp_field::OPTIONS;

/// A read-only view of a TCP segment (the whole buffer is the segment).
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Checks 20 <= data offset * 4 <= buffer length.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        todo!("Checks 20 <= data offset * 4 <= buffer length")
    }

    pub fn src_port(&self) -> u16 {
        todo!("read src_port from the buffer")
    }

    pub fn dst_port(&self) -> u16 {
        todo!("read dst_port from the buffer")
    }

    pub fn seq_number(&self) -> u32 {
        todo!("read seq_number from the buffer")
    }

    pub fn ack_number(&self) -> u32 {
        todo!("read ack_number from the buffer")
    }

    /// Header length in bytes (the data offset counts 32-bit words).
    pub fn header_len(&self) -> usize {
        todo!("Header length in bytes (the data offset counts 32-bit words)")
    }

    /// The eight flag bits ([`tcp_flags`]).
    pub fn flags(&self) -> u8 {
        todo!("The eight flag bits ([tcp_flags])")
    }

    pub fn window(&self) -> u16 {
        todo!("read window from the buffer")
    }

    pub fn checksum(&self) -> u16 {
        todo!("read checksum from the buffer")
    }

    pub fn urgent_pointer(&self) -> u16 {
        todo!("read urgent_pointer from the buffer")
    }

    pub fn options(&self) -> &[u8] {
        todo!("read options from the buffer")
    }

    pub fn payload(&self) -> &[u8] {
        todo!("read payload from the buffer")
    }

    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        todo!("read verify_checksum from the buffer")
    }
}

/// The fields of a TCP header; `emit` fills in the data offset and the checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq_number: u32,
    pub ack_number: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent_pointer: u16,
    /// Options, already encoded; length a multiple of 4, at most 40.
    pub options: Vec<u8>,
}

impl TcpRepr {
    pub fn header_len(&self) -> usize {
        todo!("20 plus the options length")
    }

    /// Writes header and payload; returns their length.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize, WireError> {
        todo!("Writes header and payload; returns their length")
    }
}

// ---------------------------------------------------------------------------------------------
// ICMP echo (RFC 792)
// ---------------------------------------------------------------------------------------------
//
// +---------------+---------------+-------------------------------+
// |     Type      |     Code      |           Checksum            |
// +---------------+---------------+-------------------------------+
// |          Identifier           |        Sequence Number        |
// +-------------------------------+-------------------------------+
// |     Data ...

pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_ECHO_REQUEST: u8 = 8;

mod icmp_field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const IDENT: usize = 4;
    pub const SEQ: usize = 6;
    pub const DATA: usize = 8;
}

pub const ICMP_HEADER_LEN: usize = icmp_field::DATA;

/// A read-only view of an ICMP message (identifier and sequence are meaningful for echo).
#[derive(Debug, Clone)]
pub struct IcmpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> IcmpPacket<T> {
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        todo!("check that the buffer holds the 8-byte header")
    }

    pub fn msg_type(&self) -> u8 {
        todo!("read msg_type from the buffer")
    }

    pub fn code(&self) -> u8 {
        todo!("read code from the buffer")
    }

    pub fn checksum(&self) -> u16 {
        todo!("read checksum from the buffer")
    }

    pub fn ident(&self) -> u16 {
        todo!("read ident from the buffer")
    }

    pub fn seq_number(&self) -> u16 {
        todo!("read seq_number from the buffer")
    }

    pub fn payload(&self) -> &[u8] {
        todo!("read payload from the buffer")
    }

    /// ICMP's checksum covers the whole message and no pseudo-header.
    pub fn verify_checksum(&self) -> bool {
        todo!("ICMP's checksum covers the whole message and no pseudo-header")
    }
}

/// An echo request or reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpEchoRepr {
    /// [`ICMP_ECHO_REQUEST`] or [`ICMP_ECHO_REPLY`].
    pub msg_type: u8,
    pub ident: u16,
    pub seq_number: u16,
}

impl IcmpEchoRepr {
    /// Writes header and data, checksum included; returns their length.
    pub fn emit(&self, buf: &mut [u8], data: &[u8]) -> Result<usize, WireError> {
        todo!("Writes header and data, checksum included; returns their length")
    }
}

// ---------------------------------------------------------------------------------------------
// A demo: build an Ethernet + IPv4 + UDP frame, print it as hex, parse it back.
// ---------------------------------------------------------------------------------------------

fn main() -> Result<(), WireError> {
    todo!("build an Ethernet + IPv4 + UDP frame with your reprs, print it as hex, parse it back")
}
