//! ## Goal
//! Read and write the headers every packet on your machine carries (Ethernet II, IPv4, UDP, TCP,
//! ICMP echo) with nothing but slices, shifts and masks, in the two layers smoltcp uses in
//! `src/wire/`: a *view* (`Ipv4Packet<T: AsRef<[u8]>>`) that checks lengths once and then reads
//! big-endian fields at named byte ranges without ever panicking, and a *repr* (`Ipv4Repr`) whose
//! `parse` reads the fields from a view and whose `emit` writes them into a buffer, computing
//! lengths and RFC 1071 checksums (with the TCP/UDP pseudo-header). Ethernet and UDP are given
//! whole, as worked examples of the pattern; you write IPv4, TCP and ICMP echo the same way, and
//! the checksum they all need. The next two labs put these bytes on the wire.
//!
//! ## Requirements
//! 1. `checksum`, `sum_words`, `fold`: the RFC 1071 Internet checksum, odd lengths padded with a
//!    zero byte; `transport_checksum` adds the IPv4 pseudo-header (source, destination, zero,
//!    protocol, segment length) for TCP and UDP.
//! 2. `Ipv4Repr`, `TcpRepr` and `IcmpEchoRepr` emit their header (and, for TCP and ICMP, the
//!    payload) into a buffer, as the given `EthernetRepr` and `UdpRepr` do: big-endian fields, IHL
//!    and TCP data offset in 32-bit words, flags and fragment offset packed into one 16-bit word,
//!    checksums filled in, and return the number of bytes written.
//! 3. `Ipv4Repr::parse`, `TcpRepr::parse` and `IcmpEchoRepr::parse` read every field back from the
//!    views (`Ipv4Packet`, `TcpPacket`, `IcmpPacket`): parsing what `emit` wrote gives the same
//!    repr, and `IcmpEchoRepr::parse` refuses any message that is not an echo (type 0 or 8, code
//!    0). `verify_checksum` recomputes the checksum, so a packet with one bit flipped or its
//!    checksum zeroed fails it (only UDP gives a zero checksum a meaning: "none"). The IPv4 payload
//!    ends at the total length, not at the end of the buffer (Ethernet pads short frames). Frames
//!    you build are read identically by an independent parser (etherparse), and frames it builds
//!    are read identically by yours.
//! 4. `new_checked` rejects short buffers with `WireError::Truncated` and impossible fields
//!    (version not 4, IHL < 5, total length below the header, TCP data offset < 5) with an error;
//!    once a view exists, neither its accessors nor `parse` can panic, whatever the bytes. `emit`
//!    into a buffer that is too small is an error, not a panic.
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
//! - [ ] Requirement 2: `Ipv4Repr`, `TcpRepr` and `IcmpEchoRepr` emit their header (and, for TCP
//!   and ICMP, the payload) into a buffer, as the given `EthernetRepr` and `UdpRepr` do: big-endian
//!   fields, IHL and TCP data offset in 32-bit words, flags and fragment offset packed into one
//!   16-bit word, checksums filled in, and return the number of bytes written
//! - [ ] Requirement 3: `Ipv4Repr::parse`, `TcpRepr::parse` and `IcmpEchoRepr::parse` read every
//!   field back from the views (`Ipv4Packet`, `TcpPacket`, `IcmpPacket`): parsing what `emit` wrote
//!   gives the same repr, and `IcmpEchoRepr::parse` refuses any message that is not an echo (type 0
//!   or 8, code 0)
//! - [ ] Requirement 4: `new_checked` rejects short buffers with `WireError::Truncated` and
//!   impossible fields (version not 4, IHL < 5, total length below the header, TCP data offset <
//!   5) with an error; once a view exists, neither its accessors nor `parse` can panic, whatever
//!   the bytes
//!
//! ## Notes
//!
//! Packet headers by hand: Ethernet II, IPv4, UDP, TCP and ICMP echo, parsed from `&[u8]` and
//! built into a buffer, with the RFC 1071 Internet checksum.
//!
//! One module per header, each in two layers, as in smoltcp's `src/wire/`:
//! - a *view* (`Ipv4Packet<T: AsRef<[u8]>>`) wraps a buffer, checks its lengths once in
//!   `new_checked`, then reads fields at the byte ranges its `field` module names. After the
//!   check no accessor can index out of bounds, so no accessor can panic, whatever bytes arrived
//!   from the wire.
//! - a *repr* (`Ipv4Repr`) is a plain struct of field values: `parse` reads it from a view,
//!   `emit` writes it into a buffer, computing lengths and checksums.
//!
//! Read [`ethernet`] and [`udp`] first: they are the pattern, whole. Then write [`checksum`],
//! [`ipv4`], [`tcp`] and [`icmp`] the same way: each of those gives only what the grader calls
//! (the types, `new_checked`, `payload`, `verify_checksum`, the repr's `parse`, `header_len` and
//! `emit`); its `field` module and the view's accessors, one per field, are yours.
//!
//! Read README.md for the requirements; `cargo lab test 7.1` grades this file, white-box: the
//! grader calls exactly the items the modules below declare `pub`, at the root (the `pub use`
//! lines). `main` is a demo (`cargo run`) that works once your parts do. Remove the `allow` once
//! everything is used.
#![allow(unused_variables, unused_imports, dead_code)]

use std::net::Ipv4Addr;

use clap::Parser;

// What the grader calls, at the paths it calls it by.
pub use checksum::{checksum, fold, sum_words, transport_checksum};
pub use ethernet::{ETHERTYPE_IPV4, EthernetFrame, EthernetRepr};
pub use icmp::{ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, IcmpEchoRepr, IcmpPacket};
pub use ipv4::{Ipv4Packet, Ipv4Repr, PROTO_ICMP, PROTO_TCP, PROTO_UDP};
pub use tcp::{TcpPacket, TcpRepr, flags as tcp_flags};
pub use udp::{UdpPacket, UdpRepr};
pub use wire::WireError;

mod wire {
    //! What every header module shares: the error, the types of the byte ranges its `field`
    //! module names, and big-endian reads and writes at those ranges.

    use std::fmt;
    use std::ops::{Range, RangeFrom};

    /// The bytes of a multi-byte field: `12..14` is the two bytes at offsets 12 and 13.
    pub type Field = Range<usize>;
    /// From an offset to the end of the buffer: where a payload starts.
    pub type Rest = RangeFrom<usize>;

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

    /// Fails with `Truncated` when `buf` cannot hold `len` bytes.
    pub fn check_len(buf: &[u8], len: usize) -> Result<(), WireError> {
        if buf.len() < len {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The big-endian `u16` in `field` (two bytes).
    pub fn read_u16(data: &[u8], field: Field) -> u16 {
        let mut bytes = [0; 2];
        bytes.copy_from_slice(&data[field]);
        u16::from_be_bytes(bytes)
    }

    /// The big-endian `u32` in `field` (four bytes).
    pub fn read_u32(data: &[u8], field: Field) -> u32 {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&data[field]);
        u32::from_be_bytes(bytes)
    }

    pub fn write_u16(data: &mut [u8], field: Field, value: u16) {
        data[field].copy_from_slice(&value.to_be_bytes());
    }

    pub fn write_u32(data: &mut [u8], field: Field, value: u32) {
        data[field].copy_from_slice(&value.to_be_bytes());
    }
}

mod checksum {
    //! RFC 1071: the Internet checksum, the ones' complement of the ones' complement sum of
    //! 16-bit words. IPv4 sums its header; ICMP its whole message; TCP and UDP their segment
    //! plus a pseudo-header of IPv4 fields, so a segment delivered to the wrong address fails.

    use std::net::Ipv4Addr;

    /// Adds `data` as a sequence of big-endian 16-bit words to `sum` (a trailing odd byte is
    /// padded with a zero byte on the right). Returns the unfolded 32-bit sum: call [`fold`] at
    /// the end.
    pub fn sum_words(sum: u32, data: &[u8]) -> u32 {
        todo!("add the big-endian 16-bit words of data to sum; pad an odd last byte on the right")
    }

    /// Folds the carries of a 32-bit sum back into 16 bits (end-around carry, ones' complement).
    pub fn fold(sum: u32) -> u16 {
        todo!("add the carries (sum >> 16) back into the low 16 bits until none is left")
    }

    /// The Internet checksum of `data`: the ones' complement of the ones' complement sum.
    /// A buffer whose checksum field is already filled in sums to `0xffff`, so this returns 0.
    pub fn checksum(data: &[u8]) -> u16 {
        todo!("the complement of the folded sum of data")
    }

    /// Sum of the IPv4 pseudo-header that TCP and UDP checksums cover: source, destination,
    /// zero, protocol, and the length of the TCP/UDP segment (header plus payload).
    pub fn pseudo_header_sum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment_len: u16) -> u32 {
        todo!("sum the pseudo-header's words: it is never sent, only summed")
    }

    /// The TCP or UDP checksum of `segment` (its checksum field zeroed, or filled in to verify).
    pub fn transport_checksum(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, segment: &[u8]) -> u16 {
        todo!("the pseudo-header's sum, then the segment's words, folded and complemented")
    }
}

mod ethernet {
    //! Ethernet II: two addresses and the type of what follows. No length, no checksum (the
    //! card checks the frame's CRC and strips it).
    //!
    //! ```text
    //! +-----------------------------------+-----------------------------------+
    //! |   destination MAC (6 bytes)       |   source MAC (6 bytes)            |
    //! +-----------------------------------+-----------------------------------+
    //! |   EtherType   |  payload ...
    //! +---------------+
    //! ```

    use super::wire::{Field, Rest, WireError, check_len, read_u16, write_u16};

    /// EtherType of IPv4.
    pub const ETHERTYPE_IPV4: u16 = 0x0800;

    /// Where each field lies in the header.
    mod field {
        use super::{Field, Rest};

        pub const DST: Field = 0..6;
        pub const SRC: Field = 6..12;
        pub const ETHERTYPE: Field = 12..14;
        pub const PAYLOAD: Rest = 14..;
    }

    /// Length of an Ethernet II header (no VLAN tag).
    pub const HEADER_LEN: usize = field::PAYLOAD.start;

    /// A read-only view of an Ethernet II frame.
    #[derive(Debug, Clone)]
    pub struct EthernetFrame<T: AsRef<[u8]>> {
        buffer: T,
    }

    impl<T: AsRef<[u8]>> EthernetFrame<T> {
        /// Wraps `buffer` after checking that it holds a whole header: from here on, every
        /// field below is in bounds.
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            check_len(buffer.as_ref(), HEADER_LEN)?;
            Ok(EthernetFrame { buffer })
        }

        pub fn dst(&self) -> [u8; 6] {
            let mut mac = [0; 6];
            mac.copy_from_slice(&self.buffer.as_ref()[field::DST]);
            mac
        }

        pub fn src(&self) -> [u8; 6] {
            let mut mac = [0; 6];
            mac.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
            mac
        }

        pub fn ethertype(&self) -> u16 {
            read_u16(self.buffer.as_ref(), field::ETHERTYPE)
        }

        pub fn payload(&self) -> &[u8] {
            &self.buffer.as_ref()[field::PAYLOAD]
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
        /// The header's fields as values. The view checked the lengths already, and any
        /// EtherType is acceptable here: nothing can fail.
        pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr, WireError> {
            Ok(EthernetRepr {
                dst: frame.dst(),
                src: frame.src(),
                ethertype: frame.ethertype(),
            })
        }

        /// Writes the 14-byte header at the start of `buf`; returns the bytes written.
        pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
            check_len(buf, HEADER_LEN)?;
            buf[field::DST].copy_from_slice(&self.dst);
            buf[field::SRC].copy_from_slice(&self.src);
            write_u16(buf, field::ETHERTYPE, self.ethertype);
            Ok(HEADER_LEN)
        }
    }
}

mod ipv4 {
    //! IPv4 (RFC 791): lengths in two places (IHL in 32-bit words, total length in bytes),
    //! fields narrower than a byte, and a checksum over the header alone.
    //!
    //! ```text
    //!  0                   1                   2                   3
    //!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    //! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //! |Version|  IHL  |   DSCP    |ECN|          Total Length         |
    //! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //! |         Identification        |0|D|M|      Fragment Offset    |
    //! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //! |  Time to Live |    Protocol   |         Header Checksum       |
    //! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //! |                       Source Address                          |
    //! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //! |                    Destination Address                        |
    //! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
    //! |                    Options (IHL > 5)                          |
    //! ```
    //!
    //! Yours, in the pattern of [`super::udp`]: a `mod field` naming the byte range of each field
    //! of the diagram (single bytes as `usize` offsets), one accessor per field on the view, and
    //! the items below.

    use std::net::Ipv4Addr;

    use super::checksum::checksum;
    use super::wire::{Field, WireError, check_len, read_u16, read_u32, write_u16};

    /// IP protocol numbers used in this lab.
    pub const PROTO_ICMP: u8 = 1;
    pub const PROTO_TCP: u8 = 6;
    pub const PROTO_UDP: u8 = 17;

    /// A read-only view of an IPv4 packet.
    #[derive(Debug, Clone)]
    pub struct Ipv4Packet<T: AsRef<[u8]>> {
        buffer: T,
    }

    impl<T: AsRef<[u8]>> Ipv4Packet<T> {
        /// Checks version 4, 5 <= IHL, and header_len <= total_len <= buffer length. Bytes
        /// after `total_len` (Ethernet padding of short frames) are ignored by
        /// [`Self::payload`].
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            todo!("every length that comes from the packet is checked here, before any slicing")
        }

        /// The bytes after the header, up to `total_len`.
        pub fn payload(&self) -> &[u8] {
            todo!("from the header length (IHL * 4) to the total length")
        }

        /// Whether the header checksum is right (the header, options included, sums to 0xffff).
        pub fn verify_checksum(&self) -> bool {
            todo!("the checksum of the header, options included, is 0")
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
        /// The header's fields as values, what `emit` would write them from: `emit` backwards.
        pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr, WireError> {
            todo!("read every field through the view's accessors; payload_len from the payload")
        }

        pub fn header_len(&self) -> usize {
            todo!("20 plus the options length")
        }

        /// Writes the header, checksum included, at the start of `buf`; returns its length.
        pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
            todo!("check the options and the buffer, pack the fields, then the checksum")
        }
    }
}

mod udp {
    //! UDP (RFC 768): ports, a length, and a checksum over a pseudo-header of IPv4 fields plus
    //! the datagram. A zero checksum means "not computed".
    //!
    //! ```text
    //! +-------------------------------+-------------------------------+
    //! |          Source Port          |       Destination Port        |
    //! +-------------------------------+-------------------------------+
    //! |            Length             |           Checksum            |
    //! +-------------------------------+-------------------------------+
    //! ```

    use std::net::Ipv4Addr;

    use super::checksum::transport_checksum;
    use super::ipv4::PROTO_UDP;
    use super::wire::{Field, Rest, WireError, check_len, read_u16, write_u16};

    /// Where each field lies in the header.
    mod field {
        use super::{Field, Rest};

        pub const SRC_PORT: Field = 0..2;
        pub const DST_PORT: Field = 2..4;
        pub const LENGTH: Field = 4..6;
        pub const CHECKSUM: Field = 6..8;
        pub const PAYLOAD: Rest = 8..;
    }

    /// Length of a UDP header.
    pub const HEADER_LEN: usize = field::PAYLOAD.start;

    /// A read-only view of a UDP datagram.
    #[derive(Debug, Clone)]
    pub struct UdpPacket<T: AsRef<[u8]>> {
        buffer: T,
    }

    impl<T: AsRef<[u8]>> UdpPacket<T> {
        /// Checks 8 <= length field <= buffer length: the length comes from the packet, so it
        /// is checked before anything slices with it.
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            let b = buffer.as_ref();
            check_len(b, HEADER_LEN)?;
            let len = usize::from(read_u16(b, field::LENGTH));
            if len < HEADER_LEN {
                return Err(WireError::Malformed("UDP length below 8"));
            }
            check_len(b, len)?;
            Ok(UdpPacket { buffer })
        }

        pub fn src_port(&self) -> u16 {
            read_u16(self.buffer.as_ref(), field::SRC_PORT)
        }

        pub fn dst_port(&self) -> u16 {
            read_u16(self.buffer.as_ref(), field::DST_PORT)
        }

        /// The UDP length field (header plus payload), not a container length.
        #[allow(clippy::len_without_is_empty)]
        pub fn len(&self) -> u16 {
            read_u16(self.buffer.as_ref(), field::LENGTH)
        }

        pub fn checksum(&self) -> u16 {
            read_u16(self.buffer.as_ref(), field::CHECKSUM)
        }

        /// The bytes after the header, up to the length field (not the buffer's end).
        pub fn payload(&self) -> &[u8] {
            &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
        }

        /// Whether the checksum is right for this source and destination (0 means "not
        /// computed").
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
        /// The header's fields as values. Length and checksum are not fields of the repr:
        /// `emit` computes them, and the view checks them (`new_checked`, `verify_checksum`).
        pub fn parse<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<UdpRepr, WireError> {
            Ok(UdpRepr {
                src_port: packet.src_port(),
                dst_port: packet.dst_port(),
            })
        }

        /// Writes header and payload; returns their length.
        pub fn emit(
            &self,
            buf: &mut [u8],
            src: Ipv4Addr,
            dst: Ipv4Addr,
            payload: &[u8],
        ) -> Result<usize, WireError> {
            let len = HEADER_LEN + payload.len();
            let len16 =
                u16::try_from(len).map_err(|_| WireError::Malformed("datagram too long"))?;
            check_len(buf, len)?;
            let b = &mut buf[..len];
            write_u16(b, field::SRC_PORT, self.src_port);
            write_u16(b, field::DST_PORT, self.dst_port);
            write_u16(b, field::LENGTH, len16);
            write_u16(b, field::CHECKSUM, 0);
            b[field::PAYLOAD].copy_from_slice(payload);
            // A computed 0 is sent as 0xffff: 0 on the wire means "no checksum" (RFC 768).
            let sum = match transport_checksum(src, dst, PROTO_UDP, b) {
                0 => 0xffff,
                sum => sum,
            };
            write_u16(b, field::CHECKSUM, sum);
            Ok(len)
        }
    }
}

mod tcp {
    //! TCP (RFC 9293): the header of a segment. The data offset counts 32-bit words, the flags
    //! are one byte, and the checksum covers the IPv4 pseudo-header as UDP's does.
    //!
    //! ```text
    //! +-------------------------------+-------------------------------+
    //! |          Source Port          |       Destination Port        |
    //! +-------------------------------+-------------------------------+
    //! |                        Sequence Number                        |
    //! +---------------------------------------------------------------+
    //! |                    Acknowledgment Number                      |
    //! +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
    //! | Data  |       |C|E|U|A|P|R|S|F|                               |
    //! | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
    //! +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
    //! |           Checksum            |         Urgent Pointer        |
    //! +-------------------------------+-------------------------------+
    //! |                    Options (data offset > 5)                  |
    //! ```
    //!
    //! Yours, in the pattern of [`super::udp`]: a `mod field`, one accessor per field on the
    //! view, and the items below.

    use std::net::Ipv4Addr;

    use super::checksum::transport_checksum;
    use super::ipv4::PROTO_TCP;
    use super::wire::{Field, WireError, check_len, read_u16, read_u32, write_u16, write_u32};

    /// TCP flag bits, as in byte 13 of the header.
    pub mod flags {
        pub const FIN: u8 = 0x01;
        pub const SYN: u8 = 0x02;
        pub const RST: u8 = 0x04;
        pub const PSH: u8 = 0x08;
        pub const ACK: u8 = 0x10;
        pub const URG: u8 = 0x20;
        pub const ECE: u8 = 0x40;
        pub const CWR: u8 = 0x80;
    }

    /// A read-only view of a TCP segment (the whole buffer is the segment).
    #[derive(Debug, Clone)]
    pub struct TcpPacket<T: AsRef<[u8]>> {
        buffer: T,
    }

    impl<T: AsRef<[u8]>> TcpPacket<T> {
        /// Checks 20 <= data offset * 4 <= buffer length.
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            todo!("check the fixed header, then the data offset against the buffer")
        }

        /// The bytes after the header (options included in the header).
        pub fn payload(&self) -> &[u8] {
            todo!("from the data offset * 4 to the end of the segment")
        }

        /// Whether the checksum is right for this source and destination.
        pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
            todo!("transport_checksum over the whole segment is 0")
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
        /// The header's fields as values (any combination of flags).
        pub fn parse<T: AsRef<[u8]>>(packet: &TcpPacket<T>) -> Result<TcpRepr, WireError> {
            todo!("read every field through the view's accessors")
        }

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
            todo!("check, write the fields and the payload, then the checksum")
        }
    }
}

mod icmp {
    //! ICMP echo (RFC 792), what `ping` sends: a type, a code, a checksum over the whole
    //! message (no pseudo-header), and for echo an identifier and a sequence number.
    //!
    //! ```text
    //! +---------------+---------------+-------------------------------+
    //! |     Type      |     Code      |           Checksum            |
    //! +---------------+---------------+-------------------------------+
    //! |          Identifier           |        Sequence Number        |
    //! +-------------------------------+-------------------------------+
    //! |     Data ...
    //! ```
    //!
    //! Yours, in the pattern of [`super::udp`]: a `mod field`, one accessor per field on the
    //! view, and the items below.

    use super::checksum::checksum;
    use super::wire::{Field, Rest, WireError, check_len, read_u16, write_u16};

    pub const ICMP_ECHO_REPLY: u8 = 0;
    pub const ICMP_ECHO_REQUEST: u8 = 8;

    /// A read-only view of an ICMP message (identifier and sequence are meaningful for echo).
    #[derive(Debug, Clone)]
    pub struct IcmpPacket<T: AsRef<[u8]>> {
        buffer: T,
    }

    impl<T: AsRef<[u8]>> IcmpPacket<T> {
        pub fn new_checked(buffer: T) -> Result<Self, WireError> {
            todo!("check that the buffer holds the 8-byte header")
        }

        /// The data after the 8-byte header.
        pub fn payload(&self) -> &[u8] {
            todo!("everything after the header")
        }

        /// ICMP's checksum covers the whole message and no pseudo-header.
        pub fn verify_checksum(&self) -> bool {
            todo!("the checksum of the whole message is 0")
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
        /// The echo's fields as values; any message that is not an echo (type 0 or 8, code 0) is
        /// a `WireError::Malformed`.
        pub fn parse<T: AsRef<[u8]>>(packet: &IcmpPacket<T>) -> Result<IcmpEchoRepr, WireError> {
            todo!("refuse what this repr cannot say, then read the fields")
        }

        /// Writes header and data, checksum included; returns their length.
        pub fn emit(&self, buf: &mut [u8], data: &[u8]) -> Result<usize, WireError> {
            todo!("type, code 0, ident, sequence, data, then the checksum")
        }
    }
}

/// The command line: no options; `--help` says what the program shows.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_packet_headers",
    about = "Build an Ethernet + IPv4 + UDP frame by hand, print it as hex, and parse it back"
)]
struct Args {}

/// A demo: build an Ethernet + IPv4 + UDP frame, print it as hex, parse it back.
fn main() -> Result<(), WireError> {
    // `--help` prints the usage (exit 0); any argument is a usage error (exit 2).
    let Args {} = Args::parse();
    let (src, dst) = (
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 199),
    );
    let payload = b"hello, wire";
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
        payload_len: udp::HEADER_LEN + payload.len(),
    };
    let udp = UdpRepr {
        src_port: 40000,
        dst_port: 53,
    };
    let mut frame = vec![0u8; ethernet::HEADER_LEN + ip.header_len() + ip.payload_len];
    let mut at = eth.emit(&mut frame)?;
    at += ip.emit(&mut frame[at..])?;
    udp.emit(&mut frame[at..], src, dst, payload)?;

    for line in frame.chunks(16) {
        let hex: Vec<String> = line.iter().map(|b| format!("{b:02x}")).collect();
        println!("{}", hex.join(" "));
    }
    let eth = EthernetFrame::new_checked(&frame[..])?;
    let ip = Ipv4Packet::new_checked(eth.payload())?;
    let ip_repr = Ipv4Repr::parse(&ip)?;
    let datagram = UdpPacket::new_checked(ip.payload())?;
    let udp_repr = UdpRepr::parse(&datagram)?;
    println!(
        "{} > {}: UDP {} > {} len {} ip-checksum-ok={} udp-checksum-ok={}",
        ip_repr.src,
        ip_repr.dst,
        udp_repr.src_port,
        udp_repr.dst_port,
        datagram.payload().len(),
        ip.verify_checksum(),
        datagram.verify_checksum(ip_repr.src, ip_repr.dst)
    );
    Ok(())
}
