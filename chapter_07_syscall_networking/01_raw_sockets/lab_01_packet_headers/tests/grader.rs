//! Grader for Packet Headers by Hand: white-box, with etherparse as an independent oracle.
//! Each test is named after the requirement it checks (see README.md).

use std::net::Ipv4Addr;

use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TransportHeader};
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{
    EthernetFrame, EthernetRepr, IcmpEchoRepr, IcmpPacket, Ipv4Packet, Ipv4Repr, TcpPacket,
    TcpRepr, UdpPacket, UdpRepr, WireError,
};

/// A plain byte-at-a-time RFC 1071 sum, written differently from the usual word loop.
fn reference_checksum(data: &[u8]) -> u16 {
    let mut sum: u64 = 0;
    for (i, byte) in data.iter().enumerate() {
        sum += if i % 2 == 0 {
            u64::from(*byte) << 8
        } else {
            u64::from(*byte)
        };
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random()).collect()
}

fn random_addr() -> Ipv4Addr {
    Ipv4Addr::from(rand::rng().random::<u32>())
}

/// Options as a NOP-padded, 4-byte aligned list (the content is opaque to both parsers).
fn random_options(max_words: usize) -> Vec<u8> {
    let words = rand::rng().random_range(0..=max_words);
    vec![1u8; words * 4] // option kind 1 is NOP in both IPv4 and TCP
}

// A captured IPv4 header (the classic example: 192.168.0.1 > 192.168.0.199, UDP).
const CAPTURED_IPV4: [u8; 20] = [
    0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01,
    0xc0, 0xa8, 0x00, 0xc7,
];

// Requirement 1: RFC 1071 checksum.
#[test]
fn checksum_matches_the_rfc_1071_example() {
    // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is !ddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(lab::fold(lab::sum_words(0, &data)), 0xddf2);
    assert_eq!(lab::checksum(&data), 0x220d);
}

#[test]
fn checksum_pads_odd_lengths_with_a_zero_byte() {
    assert_eq!(lab::checksum(&[0x01]), 0xfeff);
    assert_eq!(lab::checksum(&[0x00, 0x01, 0xf2]), !0xf201);
    let mut rng = rand::rng();
    for _ in 0..500 {
        let data = random_bytes(rng.random_range(0..3000));
        assert_eq!(
            lab::checksum(&data),
            reference_checksum(&data),
            "len {}",
            data.len()
        );
    }
}

#[test]
fn ipv4_checksum_matches_a_captured_header() {
    assert_eq!(
        lab::checksum(&CAPTURED_IPV4),
        0,
        "a correct header sums to 0xffff"
    );
    let mut zeroed = CAPTURED_IPV4;
    zeroed[10] = 0;
    zeroed[11] = 0;
    assert_eq!(lab::checksum(&zeroed), 0xb861);

    let mut packet = CAPTURED_IPV4.to_vec();
    packet.resize(0x73, 0);
    let ip = Ipv4Packet::new_checked(&packet[..]).expect("valid header");
    assert_eq!(ip.version(), 4);
    assert_eq!(ip.header_len(), 20);
    assert_eq!(ip.total_len(), 0x73);
    assert!(ip.dont_fragment() && !ip.more_fragments());
    assert_eq!((ip.ttl(), ip.protocol(), ip.checksum()), (64, 17, 0xb861));
    assert_eq!(ip.src(), Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(ip.dst(), Ipv4Addr::new(192, 168, 0, 199));
    assert_eq!(ip.payload().len(), 0x73 - 20);
    assert!(ip.verify_checksum());
}

#[test]
fn transport_checksums_cover_the_pseudo_header() {
    let (src, dst) = (random_addr(), random_addr());
    let payload = random_bytes(rand::rng().random_range(0..200));
    let mut buf = vec![0u8; 8 + payload.len()];
    let len = UdpRepr {
        src_port: 5353,
        dst_port: 53,
    }
    .emit(&mut buf, src, dst, &payload)
    .unwrap();
    assert_eq!(len, buf.len());
    let udp = UdpPacket::new_checked(&buf[..]).unwrap();
    assert!(udp.verify_checksum(src, dst));
    // The same bytes between other addresses must not verify: the addresses are summed too.
    let other = Ipv4Addr::from(u32::from(src) ^ 0x0100_0000);
    assert!(
        !udp.verify_checksum(other, dst),
        "source address not in the checksum"
    );

    let ph = etherparse::UdpHeader {
        source_port: 5353,
        destination_port: 53,
        length: len as u16,
        checksum: 0,
    };
    let expected = ph
        .calc_checksum_ipv4_raw(src.octets(), dst.octets(), &payload)
        .unwrap();
    assert_eq!(udp.checksum(), expected);
    assert_eq!(
        lab::transport_checksum(src, dst, lab::PROTO_UDP, &buf),
        0,
        "a filled-in segment verifies to 0"
    );
}

// Requirement 2 and 3: build, then parse, every field; etherparse as the oracle.

#[derive(Debug, Clone)]
enum Transport {
    Udp(UdpRepr),
    Tcp(TcpRepr),
    Icmp(IcmpEchoRepr),
}

fn random_transport() -> Transport {
    let mut rng = rand::rng();
    match rng.random_range(0..3) {
        0 => Transport::Udp(UdpRepr {
            src_port: rng.random(),
            dst_port: rng.random(),
        }),
        1 => Transport::Tcp(TcpRepr {
            src_port: rng.random(),
            dst_port: rng.random(),
            seq_number: rng.random(),
            ack_number: rng.random(),
            flags: rng.random(),
            window: rng.random(),
            urgent_pointer: rng.random(),
            options: random_options(10),
        }),
        _ => Transport::Icmp(IcmpEchoRepr {
            msg_type: if rng.random() {
                lab::ICMP_ECHO_REQUEST
            } else {
                lab::ICMP_ECHO_REPLY
            },
            ident: rng.random(),
            seq_number: rng.random(),
        }),
    }
}

/// Builds a frame with the learner's `emit`s; returns it with the reprs used.
fn build(eth: &EthernetRepr, ip: &mut Ipv4Repr, transport: &Transport, payload: &[u8]) -> Vec<u8> {
    let (protocol, header) = match transport {
        Transport::Udp(_) => (lab::PROTO_UDP, 8),
        Transport::Tcp(tcp) => (lab::PROTO_TCP, 20 + tcp.options.len()),
        Transport::Icmp(_) => (lab::PROTO_ICMP, 8),
    };
    ip.protocol = protocol;
    ip.payload_len = header + payload.len();
    let mut frame = vec![0xAAu8; 14 + ip.header_len() + ip.payload_len];
    let mut at = eth.emit(&mut frame).unwrap();
    assert_eq!(at, 14);
    at += ip.emit(&mut frame[at..]).unwrap();
    let rest = &mut frame[at..];
    let written = match transport {
        Transport::Udp(u) => u.emit(rest, ip.src, ip.dst, payload),
        Transport::Tcp(t) => t.emit(rest, ip.src, ip.dst, payload),
        Transport::Icmp(i) => i.emit(rest, payload),
    }
    .unwrap();
    assert_eq!(
        at + written,
        frame.len(),
        "emit must return the bytes it wrote"
    );
    frame
}

fn check_against_etherparse(
    frame: &[u8],
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    transport: &Transport,
    payload: &[u8],
) {
    let parsed = PacketHeaders::from_ethernet_slice(frame)
        .unwrap_or_else(|e| panic!("etherparse rejects the frame: {e}\n{frame:02x?}"));
    let Some(etherparse::LinkHeader::Ethernet2(e)) = parsed.link else {
        panic!("no Ethernet II header")
    };
    assert_eq!(
        (e.destination, e.source, e.ether_type.0),
        (eth.dst, eth.src, eth.ethertype)
    );
    let Some(NetHeaders::Ipv4(h, _)) = parsed.net else {
        panic!("no IPv4 header")
    };
    assert_eq!(h.dscp.value(), ip.dscp);
    assert_eq!(h.ecn.value(), ip.ecn);
    assert_eq!(h.identification, ip.ident);
    assert_eq!(h.dont_fragment, ip.dont_fragment);
    assert_eq!(h.more_fragments, ip.more_fragments);
    assert_eq!(h.fragment_offset.value(), ip.frag_offset);
    assert_eq!(h.time_to_live, ip.ttl);
    assert_eq!(h.protocol.0, ip.protocol);
    assert_eq!(h.source, ip.src.octets());
    assert_eq!(h.destination, ip.dst.octets());
    assert_eq!(h.options.as_slice(), &ip.options[..]);
    assert_eq!(usize::from(h.total_len), ip.header_len() + ip.payload_len);
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum"
    );
    assert_eq!(parsed.payload.slice(), payload, "payload");
    match (transport, parsed.transport) {
        (Transport::Udp(u), Some(TransportHeader::Udp(p))) => {
            assert_eq!(
                (p.source_port, p.destination_port),
                (u.src_port, u.dst_port)
            );
            assert_eq!(usize::from(p.length), 8 + payload.len());
            let expected = p.calc_checksum_ipv4(&h, payload).unwrap();
            assert_eq!(p.checksum, expected, "UDP checksum");
        }
        (Transport::Tcp(t), Some(TransportHeader::Tcp(p))) => {
            assert_eq!(
                (p.source_port, p.destination_port),
                (t.src_port, t.dst_port)
            );
            assert_eq!(
                (p.sequence_number, p.acknowledgment_number),
                (t.seq_number, t.ack_number)
            );
            let flags = [p.fin, p.syn, p.rst, p.psh, p.ack, p.urg, p.ece, p.cwr]
                .iter()
                .enumerate()
                .fold(0u8, |acc, (bit, set)| acc | (u8::from(*set) << bit));
            assert_eq!(flags, t.flags, "TCP flags");
            assert!(!p.ns);
            assert_eq!(
                (p.window_size, p.urgent_pointer),
                (t.window, t.urgent_pointer)
            );
            assert_eq!(p.options.as_slice(), &t.options[..]);
            let expected = p.calc_checksum_ipv4(&h, payload).unwrap();
            assert_eq!(p.checksum, expected, "TCP checksum");
        }
        (Transport::Icmp(i), Some(TransportHeader::Icmpv4(p))) => {
            let echo = match p.icmp_type {
                etherparse::Icmpv4Type::EchoRequest(e) => {
                    assert_eq!(i.msg_type, lab::ICMP_ECHO_REQUEST);
                    e
                }
                etherparse::Icmpv4Type::EchoReply(e) => {
                    assert_eq!(i.msg_type, lab::ICMP_ECHO_REPLY);
                    e
                }
                other => panic!("not an echo: {other:?}"),
            };
            assert_eq!((echo.id, echo.seq), (i.ident, i.seq_number));
            let expected = etherparse::Icmpv4Header::with_checksum(p.icmp_type.clone(), payload);
            assert_eq!(p.checksum, expected.checksum, "ICMP checksum");
        }
        (t, other) => panic!("built {t:?}, etherparse read {other:?}"),
    }
}

/// The learner's own views read back what the learner's reprs wrote.
fn check_own_views(frame: &[u8], ip_repr: &Ipv4Repr, transport: &Transport, payload: &[u8]) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(eth.ethertype(), lab::ETHERTYPE_IPV4);
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum());
    assert_eq!(
        (ip.ident(), ip.ttl(), ip.src(), ip.dst()),
        (ip_repr.ident, ip_repr.ttl, ip_repr.src, ip_repr.dst)
    );
    assert_eq!((ip.dscp(), ip.ecn()), (ip_repr.dscp, ip_repr.ecn));
    assert_eq!(ip.options(), &ip_repr.options[..]);
    let seg = ip.payload();
    match transport {
        Transport::Udp(u) => {
            let p = UdpPacket::new_checked(seg).unwrap();
            assert_eq!((p.src_port(), p.dst_port()), (u.src_port, u.dst_port));
            assert_eq!(p.payload(), payload);
            assert!(p.verify_checksum(ip.src(), ip.dst()));
        }
        Transport::Tcp(t) => {
            let p = TcpPacket::new_checked(seg).unwrap();
            assert_eq!(
                (p.seq_number(), p.ack_number(), p.flags()),
                (t.seq_number, t.ack_number, t.flags)
            );
            assert_eq!(
                (p.window(), p.urgent_pointer()),
                (t.window, t.urgent_pointer)
            );
            assert_eq!(p.header_len(), t.header_len());
            assert_eq!(p.options(), &t.options[..]);
            assert_eq!(p.payload(), payload);
            assert!(p.verify_checksum(ip.src(), ip.dst()));
        }
        Transport::Icmp(i) => {
            let p = IcmpPacket::new_checked(seg).unwrap();
            assert_eq!(
                (p.msg_type(), p.code(), p.ident(), p.seq_number()),
                (i.msg_type, 0, i.ident, i.seq_number)
            );
            assert_eq!(p.payload(), payload);
            assert!(p.verify_checksum());
        }
    }
}

#[test]
fn ten_thousand_random_packets_reparse_identically_with_etherparse() {
    let mut rng = rand::rng();
    for _ in 0..10_000 {
        let eth = EthernetRepr {
            dst: rng.random(),
            src: rng.random(),
            ethertype: lab::ETHERTYPE_IPV4,
        };
        let mut ip = Ipv4Repr {
            dscp: rng.random_range(0..64),
            ecn: rng.random_range(0..4),
            ident: rng.random(),
            dont_fragment: rng.random(),
            // Fragments would stop etherparse before the transport header: tested apart.
            more_fragments: false,
            frag_offset: 0,
            ttl: rng.random(),
            protocol: 0,
            src: random_addr(),
            dst: random_addr(),
            options: random_options(10),
            payload_len: 0,
        };
        let transport = random_transport();
        let payload = random_bytes(rng.random_range(0..300));
        let frame = build(&eth, &mut ip, &transport, &payload);
        check_against_etherparse(&frame, &eth, &ip, &transport, &payload);
        check_own_views(&frame, &ip, &transport, &payload);
    }
}

#[test]
fn fragment_fields_pack_into_flags_and_offset() {
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let ip = Ipv4Repr {
            dscp: 0,
            ecn: 0,
            ident: rng.random(),
            dont_fragment: rng.random(),
            more_fragments: rng.random(),
            frag_offset: rng.random_range(0..0x2000),
            ttl: 64,
            protocol: 253,
            src: random_addr(),
            dst: random_addr(),
            options: Vec::new(),
            payload_len: 16,
        };
        let mut buf = vec![0u8; 36];
        ip.emit(&mut buf).unwrap();
        let (h, _) = etherparse::Ipv4Header::from_slice(&buf).unwrap();
        assert_eq!(
            (h.dont_fragment, h.more_fragments),
            (ip.dont_fragment, ip.more_fragments)
        );
        assert_eq!(h.fragment_offset.value(), ip.frag_offset);
        let view = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(view.frag_offset(), ip.frag_offset);
        assert_eq!(view.more_fragments(), ip.more_fragments);
    }
}

#[test]
fn views_read_packets_built_by_etherparse() {
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let (src, dst) = (random_addr(), random_addr());
        let (sport, dport, ttl) = (rng.random(), rng.random(), rng.random());
        let payload = random_bytes(rng.random_range(0..200));
        let base = PacketBuilder::ethernet2(rng.random(), rng.random()).ipv4(
            src.octets(),
            dst.octets(),
            ttl,
        );
        let mut frame = Vec::new();
        let kind = rng.random_range(0..3);
        match kind {
            0 => base.udp(sport, dport).write(&mut frame, &payload).unwrap(),
            1 => base
                .tcp(sport, dport, rng.random(), rng.random())
                .syn()
                .ack(rng.random())
                .write(&mut frame, &payload)
                .unwrap(),
            _ => base
                .icmpv4_echo_request(sport, dport)
                .write(&mut frame, &payload)
                .unwrap(),
        }
        let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
        let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!((ip.src(), ip.dst(), ip.ttl()), (src, dst, ttl));
        match kind {
            0 => {
                let udp = UdpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!(
                    (udp.src_port(), udp.dst_port(), udp.payload()),
                    (sport, dport, &payload[..])
                );
                assert!(udp.verify_checksum(src, dst));
            }
            1 => {
                let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!(
                    (tcp.src_port(), tcp.dst_port(), tcp.payload()),
                    (sport, dport, &payload[..])
                );
                assert_eq!(tcp.flags(), lab::tcp_flags::SYN | lab::tcp_flags::ACK);
                assert!(tcp.verify_checksum(src, dst));
            }
            _ => {
                let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!(
                    (icmp.msg_type(), icmp.ident(), icmp.seq_number()),
                    (8, sport, dport)
                );
                assert!(icmp.verify_checksum());
            }
        }
    }
}

// Requirement 4: short or malformed input is an error, never a panic.

/// Every accessor of every view, so that an out-of-bounds read anywhere would panic here.
fn touch_everything(bytes: &[u8]) -> usize {
    let mut ok = 0;
    if let Ok(e) = EthernetFrame::new_checked(bytes) {
        let _ = (e.dst(), e.src(), e.ethertype(), e.payload().len());
        ok += 1;
    }
    if let Ok(ip) = Ipv4Packet::new_checked(bytes) {
        let _ = (
            ip.version(),
            ip.header_len(),
            ip.dscp(),
            ip.ecn(),
            ip.total_len(),
            ip.ident(),
        );
        let _ = (
            ip.dont_fragment(),
            ip.more_fragments(),
            ip.frag_offset(),
            ip.ttl(),
            ip.protocol(),
        );
        let _ = (
            ip.checksum(),
            ip.src(),
            ip.dst(),
            ip.options().len(),
            ip.payload().len(),
            ip.verify_checksum(),
        );
        ok += 1;
    }
    let (a, b) = (Ipv4Addr::LOCALHOST, Ipv4Addr::BROADCAST);
    if let Ok(u) = UdpPacket::new_checked(bytes) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.checksum(),
            u.payload().len(),
            u.verify_checksum(a, b),
        );
        ok += 1;
    }
    if let Ok(t) = TcpPacket::new_checked(bytes) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
            t.flags(),
        );
        let _ = (
            t.window(),
            t.checksum(),
            t.urgent_pointer(),
            t.options().len(),
            t.payload().len(),
        );
        let _ = t.verify_checksum(a, b);
        ok += 1;
    }
    if let Ok(i) = IcmpPacket::new_checked(bytes) {
        let _ = (
            i.msg_type(),
            i.code(),
            i.checksum(),
            i.ident(),
            i.seq_number(),
            i.payload().len(),
        );
        let _ = i.verify_checksum();
        ok += 1;
    }
    ok
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    let mut rng = rand::rng();
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut bytes = random_bytes(rng.random_range(0..120));
        // Half the time, make it look like IPv4 so the deeper checks are reached.
        if rng.random() && !bytes.is_empty() {
            bytes[0] = 0x40 | (bytes[0] & 0x0f);
        }
        accepted += touch_everything(&bytes);
    }
    assert!(
        accepted > 0,
        "some random buffers are long enough to be valid views"
    );
}

#[test]
fn every_truncation_of_a_valid_packet_is_an_error_or_a_shorter_view() {
    let payload = random_bytes(40);
    let mut frame = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(1, 2, 3, 4)
        .write(&mut frame, &payload)
        .unwrap();
    let ip_bytes = &frame[14..];
    for cut in 0..ip_bytes.len() {
        assert_eq!(
            Ipv4Packet::new_checked(&ip_bytes[..cut]).err(),
            Some(WireError::Truncated),
            "IPv4 cut at {cut} bytes (total length says {})",
            ip_bytes.len()
        );
        touch_everything(&ip_bytes[..cut]);
    }
    let tcp_bytes = &ip_bytes[20..];
    for cut in 0..20 {
        assert_eq!(
            TcpPacket::new_checked(&tcp_bytes[..cut]).err(),
            Some(WireError::Truncated)
        );
    }
    for cut in 0..14 {
        assert!(EthernetFrame::new_checked(&frame[..cut]).is_err());
    }
    for cut in 0..8 {
        assert!(UdpPacket::new_checked(&tcp_bytes[..cut]).is_err());
        assert!(IcmpPacket::new_checked(&tcp_bytes[..cut]).is_err());
    }
    assert!(Ipv4Packet::new_checked(ip_bytes).is_ok());
}

#[test]
fn rejects_malformed_length_and_version_fields() {
    let mut header = CAPTURED_IPV4.to_vec();
    header.resize(0x73, 0);
    let malformed = |mutate: &dyn Fn(&mut Vec<u8>)| {
        let mut h = header.clone();
        mutate(&mut h);
        Ipv4Packet::new_checked(&h[..]).err()
    };
    assert!(
        matches!(malformed(&|h| h[0] = 0x65), Some(WireError::Malformed(_))),
        "version 6"
    );
    assert!(
        matches!(malformed(&|h| h[0] = 0x44), Some(WireError::Malformed(_))),
        "IHL 4"
    );
    assert!(
        malformed(&|h| h[3] = 10).is_some(),
        "total length below the header"
    );
    assert_eq!(
        malformed(&|h| h[2] = 0x10),
        Some(WireError::Truncated),
        "total length past the buffer"
    );
    assert_eq!(
        malformed(&|h| h[0] = 0x4f),
        None,
        "IHL 15 (60 bytes) fits in total length 115"
    );

    let mut udp = [0u8; 16];
    udp[5] = 4; // length 4 < 8
    assert!(UdpPacket::new_checked(&udp[..]).is_err());
    udp[5] = 17; // length 17 > 16 bytes
    assert_eq!(
        UdpPacket::new_checked(&udp[..]).err(),
        Some(WireError::Truncated)
    );
    udp[5] = 12;
    assert_eq!(UdpPacket::new_checked(&udp[..]).unwrap().payload().len(), 4);

    let mut tcp = [0u8; 24];
    tcp[12] = 0x40; // data offset 4 words
    assert!(TcpPacket::new_checked(&tcp[..]).is_err());
    tcp[12] = 0x70; // 28 bytes > 24
    assert_eq!(
        TcpPacket::new_checked(&tcp[..]).err(),
        Some(WireError::Truncated)
    );
    tcp[12] = 0x60;
    assert_eq!(TcpPacket::new_checked(&tcp[..]).unwrap().options().len(), 4);
}

#[test]
fn emit_into_a_short_buffer_is_an_error() {
    let ip = Ipv4Repr {
        dscp: 0,
        ecn: 0,
        ident: 7,
        dont_fragment: false,
        more_fragments: false,
        frag_offset: 0,
        ttl: 1,
        protocol: lab::PROTO_UDP,
        src: Ipv4Addr::LOCALHOST,
        dst: Ipv4Addr::LOCALHOST,
        options: vec![1; 8],
        payload_len: 0,
    };
    assert_eq!(ip.emit(&mut [0u8; 27]), Err(WireError::Truncated));
    assert_eq!(ip.emit(&mut [0u8; 28]), Ok(28));
    let bad = Ipv4Repr {
        options: vec![1; 3],
        ..ip.clone()
    };
    assert!(
        bad.emit(&mut [0u8; 60]).is_err(),
        "options not a multiple of 4"
    );
    let udp = UdpRepr {
        src_port: 1,
        dst_port: 2,
    };
    let (a, b) = (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
    assert_eq!(
        udp.emit(&mut [0u8; 10], a, b, b"abc"),
        Err(WireError::Truncated)
    );
    let echo = IcmpEchoRepr {
        msg_type: 8,
        ident: 1,
        seq_number: 1,
    };
    assert_eq!(echo.emit(&mut [0u8; 8], b"x"), Err(WireError::Truncated));
    assert_eq!(echo.emit(&mut [0u8; 9], b"x"), Ok(9));
    let tcp = TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq_number: 0,
        ack_number: 0,
        flags: lab::tcp_flags::SYN,
        window: 0,
        urgent_pointer: 0,
        options: Vec::new(),
    };
    assert_eq!(
        tcp.emit(&mut [0u8; 19], a, b, b""),
        Err(WireError::Truncated)
    );
}
