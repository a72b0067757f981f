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
pub fn sum_words(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([word[0], word[1]])));
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds the carries of a 32-bit sum back into 16 bits (end-around carry, ones' complement).
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The Internet checksum of `data`: the ones' complement of the ones' complement sum.
/// A buffer whose checksum field is already filled in sums to `0xffff`, so this returns 0.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum_words(0, data))
}

/// Sum of the IPv4 pseudo-header that TCP and UDP checksums cover: source, destination,
/// zero, protocol, and the length of the TCP/UDP segment (header plus payload).
pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment_len: u16) -> u32 {
    let mut sum = sum_words(0, &src.octets());
    sum = sum_words(sum, &dst.octets());
    sum = sum.wrapping_add(u32::from(protocol));
    sum.wrapping_add(u32::from(segment_len))
}

/// The TCP or UDP checksum of `segment` (its checksum field zeroed, or filled in to verify).
pub fn transport_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
    // A segment longer than 65535 bytes cannot be in an IPv4 packet; truncating the length
    // here only makes the checksum wrong, never panics.
    let sum = pseudo_header_sum(src, dst, protocol, segment.len() as u16);
    !fold(sum_words(sum, segment))
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Fails with `Truncated` when `buf` cannot hold `len` bytes.
fn need(buf: &[u8], len: usize) -> Result<(), WireError> {
    if buf.len() < len {
        Err(WireError::Truncated)
    } else {
        Ok(())
    }
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
        need(buffer.as_ref(), ETHERNET_HEADER_LEN)?;
        Ok(EthernetFrame { buffer })
    }

    pub fn dst(&self) -> [u8; 6] {
        let b = self.buffer.as_ref();
        b[eth_field::DST..eth_field::SRC]
            .try_into()
            .unwrap_or_default()
    }

    pub fn src(&self) -> [u8; 6] {
        let b = self.buffer.as_ref();
        b[eth_field::SRC..eth_field::ETHERTYPE]
            .try_into()
            .unwrap_or_default()
    }

    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), eth_field::ETHERTYPE)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[eth_field::PAYLOAD..]
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
        need(buf, ETHERNET_HEADER_LEN)?;
        buf[eth_field::DST..eth_field::SRC].copy_from_slice(&self.dst);
        buf[eth_field::SRC..eth_field::ETHERTYPE].copy_from_slice(&self.src);
        put16(buf, eth_field::ETHERTYPE, self.ethertype);
        Ok(ETHERNET_HEADER_LEN)
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
        let b = buffer.as_ref();
        need(b, IPV4_MIN_HEADER_LEN)?;
        if b[ip_field::VER_IHL] >> 4 != 4 {
            return Err(WireError::Malformed("IP version is not 4"));
        }
        let header_len = usize::from(b[ip_field::VER_IHL] & 0x0f) * 4;
        if header_len < IPV4_MIN_HEADER_LEN {
            return Err(WireError::Malformed("IHL below 5"));
        }
        let total_len = usize::from(be16(b, ip_field::TOTAL_LEN));
        if total_len < header_len {
            return Err(WireError::Malformed("total length shorter than the header"));
        }
        need(b, total_len)?;
        Ok(Ipv4Packet { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn version(&self) -> u8 {
        self.b()[ip_field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL counts 32-bit words).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[ip_field::VER_IHL] & 0x0f) * 4
    }

    pub fn dscp(&self) -> u8 {
        self.b()[ip_field::DSCP_ECN] >> 2
    }

    pub fn ecn(&self) -> u8 {
        self.b()[ip_field::DSCP_ECN] & 0b11
    }

    pub fn total_len(&self) -> u16 {
        be16(self.b(), ip_field::TOTAL_LEN)
    }

    pub fn ident(&self) -> u16 {
        be16(self.b(), ip_field::IDENT)
    }

    pub fn dont_fragment(&self) -> bool {
        be16(self.b(), ip_field::FLAGS_FRAG) & DONT_FRAGMENT != 0
    }

    pub fn more_fragments(&self) -> bool {
        be16(self.b(), ip_field::FLAGS_FRAG) & MORE_FRAGMENTS != 0
    }

    /// Fragment offset in 8-byte units, as on the wire.
    pub fn frag_offset(&self) -> u16 {
        be16(self.b(), ip_field::FLAGS_FRAG) & FRAG_OFFSET_MASK
    }

    pub fn ttl(&self) -> u8 {
        self.b()[ip_field::TTL]
    }

    pub fn protocol(&self) -> u8 {
        self.b()[ip_field::PROTOCOL]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), ip_field::CHECKSUM)
    }

    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), ip_field::SRC))
    }

    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from(be32(self.b(), ip_field::DST))
    }

    pub fn options(&self) -> &[u8] {
        &self.b()[ip_field::OPTIONS..self.header_len()]
    }

    /// The bytes after the header, up to `total_len`.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }

    /// Whether the header checksum is right (the header, options included, sums to 0xffff).
    pub fn verify_checksum(&self) -> bool {
        checksum(&self.b()[..self.header_len()]) == 0
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
        IPV4_MIN_HEADER_LEN + self.options.len()
    }

    /// Writes the header, checksum included, at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let header_len = self.header_len();
        if !self.options.len().is_multiple_of(4) || self.options.len() > 40 {
            return Err(WireError::Malformed(
                "options must be 0..=40 bytes, a multiple of 4",
            ));
        }
        let total_len = u16::try_from(header_len + self.payload_len)
            .map_err(|_| WireError::Malformed("packet longer than 65535 bytes"))?;
        need(buf, header_len)?;
        let b = &mut buf[..header_len];
        b[ip_field::VER_IHL] = (4 << 4) | (header_len / 4) as u8;
        b[ip_field::DSCP_ECN] = (self.dscp << 2) | (self.ecn & 0b11);
        put16(b, ip_field::TOTAL_LEN, total_len);
        put16(b, ip_field::IDENT, self.ident);
        let mut flags_frag = self.frag_offset & FRAG_OFFSET_MASK;
        if self.dont_fragment {
            flags_frag |= DONT_FRAGMENT;
        }
        if self.more_fragments {
            flags_frag |= MORE_FRAGMENTS;
        }
        put16(b, ip_field::FLAGS_FRAG, flags_frag);
        b[ip_field::TTL] = self.ttl;
        b[ip_field::PROTOCOL] = self.protocol;
        b[ip_field::SRC..ip_field::DST].copy_from_slice(&self.src.octets());
        b[ip_field::DST..ip_field::OPTIONS].copy_from_slice(&self.dst.octets());
        b[ip_field::OPTIONS..].copy_from_slice(&self.options);
        // The checksum covers the header with its own field zeroed.
        put16(b, ip_field::CHECKSUM, 0);
        let sum = checksum(b);
        put16(b, ip_field::CHECKSUM, sum);
        Ok(header_len)
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
        let b = buffer.as_ref();
        need(b, UDP_HEADER_LEN)?;
        let len = usize::from(be16(b, udp_field::LENGTH));
        if len < UDP_HEADER_LEN {
            return Err(WireError::Malformed("UDP length below 8"));
        }
        need(b, len)?;
        Ok(UdpPacket { buffer })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), udp_field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), udp_field::DST_PORT)
    }

    /// The UDP length field (header plus payload), not a container length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), udp_field::LENGTH)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), udp_field::CHECKSUM)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[UDP_HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum is right for this source and destination (0 means "not computed").
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        self.checksum() == 0 || transport_checksum(src, dst, PROTO_UDP, datagram) == 0
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
        let len = UDP_HEADER_LEN + payload.len();
        let len16 = u16::try_from(len).map_err(|_| WireError::Malformed("datagram too long"))?;
        need(buf, len)?;
        let b = &mut buf[..len];
        put16(b, udp_field::SRC_PORT, self.src_port);
        put16(b, udp_field::DST_PORT, self.dst_port);
        put16(b, udp_field::LENGTH, len16);
        put16(b, udp_field::CHECKSUM, 0);
        b[UDP_HEADER_LEN..].copy_from_slice(payload);
        // A computed 0 is sent as 0xffff: 0 on the wire means "no checksum" (RFC 768).
        let sum = match transport_checksum(src, dst, PROTO_UDP, b) {
            0 => 0xffff,
            sum => sum,
        };
        put16(b, udp_field::CHECKSUM, sum);
        Ok(len)
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
        let b = buffer.as_ref();
        need(b, TCP_MIN_HEADER_LEN)?;
        let header_len = usize::from(b[tcp_field::DATA_OFFSET] >> 4) * 4;
        if header_len < TCP_MIN_HEADER_LEN {
            return Err(WireError::Malformed("TCP data offset below 5"));
        }
        need(b, header_len)?;
        Ok(TcpPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn src_port(&self) -> u16 {
        be16(self.b(), tcp_field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.b(), tcp_field::DST_PORT)
    }

    pub fn seq_number(&self) -> u32 {
        be32(self.b(), tcp_field::SEQ)
    }

    pub fn ack_number(&self) -> u32 {
        be32(self.b(), tcp_field::ACK)
    }

    /// Header length in bytes (the data offset counts 32-bit words).
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[tcp_field::DATA_OFFSET] >> 4) * 4
    }

    /// The eight flag bits ([`tcp_flags`]).
    pub fn flags(&self) -> u8 {
        self.b()[tcp_field::FLAGS]
    }

    pub fn window(&self) -> u16 {
        be16(self.b(), tcp_field::WINDOW)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), tcp_field::CHECKSUM)
    }

    pub fn urgent_pointer(&self) -> u16 {
        be16(self.b(), tcp_field::URGENT)
    }

    pub fn options(&self) -> &[u8] {
        &self.b()[tcp_field::OPTIONS..self.header_len()]
    }

    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        transport_checksum(src, dst, PROTO_TCP, self.b()) == 0
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
        TCP_MIN_HEADER_LEN + self.options.len()
    }

    /// Writes header and payload; returns their length.
    pub fn emit(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) -> Result<usize, WireError> {
        if !self.options.len().is_multiple_of(4) || self.options.len() > 40 {
            return Err(WireError::Malformed(
                "options must be 0..=40 bytes, a multiple of 4",
            ));
        }
        let header_len = self.header_len();
        let len = header_len + payload.len();
        need(buf, len)?;
        let b = &mut buf[..len];
        put16(b, tcp_field::SRC_PORT, self.src_port);
        put16(b, tcp_field::DST_PORT, self.dst_port);
        put32(b, tcp_field::SEQ, self.seq_number);
        put32(b, tcp_field::ACK, self.ack_number);
        // Data offset in the high nibble; the low nibble (reserved bits and NS) stays zero.
        b[tcp_field::DATA_OFFSET] = ((header_len / 4) as u8) << 4;
        b[tcp_field::FLAGS] = self.flags;
        put16(b, tcp_field::WINDOW, self.window);
        put16(b, tcp_field::CHECKSUM, 0);
        put16(b, tcp_field::URGENT, self.urgent_pointer);
        b[tcp_field::OPTIONS..header_len].copy_from_slice(&self.options);
        b[header_len..].copy_from_slice(payload);
        let sum = transport_checksum(src, dst, PROTO_TCP, b);
        put16(b, tcp_field::CHECKSUM, sum);
        Ok(len)
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
        need(buffer.as_ref(), ICMP_HEADER_LEN)?;
        Ok(IcmpPacket { buffer })
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[icmp_field::TYPE]
    }

    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[icmp_field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), icmp_field::CHECKSUM)
    }

    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), icmp_field::IDENT)
    }

    pub fn seq_number(&self) -> u16 {
        be16(self.buffer.as_ref(), icmp_field::SEQ)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[icmp_field::DATA..]
    }

    /// ICMP's checksum covers the whole message and no pseudo-header.
    pub fn verify_checksum(&self) -> bool {
        checksum(self.buffer.as_ref()) == 0
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
        let len = ICMP_HEADER_LEN + data.len();
        need(buf, len)?;
        let b = &mut buf[..len];
        b[icmp_field::TYPE] = self.msg_type;
        b[icmp_field::CODE] = 0;
        put16(b, icmp_field::CHECKSUM, 0);
        put16(b, icmp_field::IDENT, self.ident);
        put16(b, icmp_field::SEQ, self.seq_number);
        b[icmp_field::DATA..].copy_from_slice(data);
        let sum = checksum(b);
        put16(b, icmp_field::CHECKSUM, sum);
        Ok(len)
    }
}

// ---------------------------------------------------------------------------------------------
// A demo: build an Ethernet + IPv4 + UDP frame, print it as hex, parse it back.
// ---------------------------------------------------------------------------------------------

fn main() -> Result<(), WireError> {
    let (src, dst) = (
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 199),
    );
    let payload = b"hello, wire";
    let mut frame = vec![0u8; 14 + 20 + 8 + payload.len()];
    let eth = EthernetRepr {
        dst: [0x02, 0, 0, 0, 0, 2],
        src: [0x02, 0, 0, 0, 0, 1],
        ethertype: ETHERTYPE_IPV4,
    };
    let ip = Ipv4Repr {
        dscp: 0,
        ecn: 0,
        ident: 1,
        dont_fragment: true,
        more_fragments: false,
        frag_offset: 0,
        ttl: 64,
        protocol: PROTO_UDP,
        src,
        dst,
        options: Vec::new(),
        payload_len: UDP_HEADER_LEN + payload.len(),
    };
    let mut at = eth.emit(&mut frame)?;
    at += ip.emit(&mut frame[at..])?;
    UdpRepr {
        src_port: 40000,
        dst_port: 53,
    }
    .emit(&mut frame[at..], src, dst, payload)?;

    for line in frame.chunks(16) {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        println!("{}", hex.join(" "));
    }
    let eth = EthernetFrame::new_checked(&frame[..])?;
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    let udp = UdpPacket::new_checked(ip.payload())?;
    println!(
        "{} > {}: UDP {} > {} len {} ip-checksum-ok={} udp-checksum-ok={}",
        ip.src(),
        ip.dst(),
        udp.src_port(),
        udp.dst_port(),
        udp.payload().len(),
        ip.verify_checksum(),
        udp.verify_checksum(ip.src(), ip.dst())
    );
    Ok(())
}
