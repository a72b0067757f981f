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
    assert_eq!(
        lab::fold(lab::sum_words(0, &data)),
        0xddf2,
        "requirement 1: `lab::fold(lab::sum_words(0, &data))` (left) must equal `0xddf2` (right)"
    );
    assert_eq!(
        lab::checksum(&data),
        0x220d,
        "requirement 1: `lab::checksum(&data)` (left) must equal `0x220d` (right)"
    );
    // Folding one carry can make another: ffff + ffff + 0001 = 1_ffff, folded 1_0000, then 1.
    for (sum, folded) in [
        (0x1_ffff, 0x0001),
        (0xffff_ffff, 0xffff),
        (0x2_fffd, 0xffff),
    ] {
        let got = lab::fold(sum);
        assert_eq!(
            got, folded,
            "requirement 1: fold({sum:#x}) gave {got:#x}; wanted {folded:#x} (add the carries \
             back until none is left)"
        );
    }
    let got = lab::checksum(&[0xff, 0xff, 0xff, 0xff, 0x00, 0x01]);
    assert_eq!(
        got, 0xfffe,
        "requirement 1: checksum of ff ff ff ff 00 01 (two carries to fold) gave {got:#x}"
    );
}

#[test]
fn checksum_pads_odd_lengths_with_a_zero_byte() {
    assert_eq!(
        lab::checksum(&[0x01]),
        0xfeff,
        "requirement 1: `lab::checksum(&[0x01])` (left) must equal `0xfeff` (right)"
    );
    assert_eq!(
        lab::checksum(&[0x00, 0x01, 0xf2]),
        !0xf201,
        "requirement 1: `lab::checksum(&[0x00, 0x01, 0xf2])` (left) must equal `!0xf201` (right)"
    );
    let mut rng = rand::rng();
    for _ in 0..500 {
        let data = random_bytes(rng.random_range(0..3000));
        assert_eq!(
            lab::checksum(&data),
            reference_checksum(&data),
            "requirement 1: len {}",
            data.len()
        );
    }
}

#[test]
fn ipv4_checksum_matches_a_captured_header() {
    assert_eq!(
        lab::checksum(&CAPTURED_IPV4),
        0,
        "requirement 1 and 3: a correct header sums to 0xffff"
    );
    let mut zeroed = CAPTURED_IPV4;
    zeroed[10] = 0;
    zeroed[11] = 0;
    assert_eq!(
        lab::checksum(&zeroed),
        0xb861,
        "requirement 1 and 3: `lab::checksum(&zeroed)` (left) must equal `0xb861` (right)"
    );

    let mut packet = CAPTURED_IPV4.to_vec();
    packet.resize(0x73, 0);
    let ip = Ipv4Packet::new_checked(&packet[..]).expect("valid header");
    let parsed = Ipv4Repr::parse(&ip).expect("a valid header parses");
    let want = Ipv4Repr {
        dscp: 0,
        ecn: 0,
        ident: 0,
        dont_fragment: true,
        more_fragments: false,
        frag_offset: 0,
        ttl: 64,
        protocol: 17,
        src: Ipv4Addr::new(192, 168, 0, 1),
        dst: Ipv4Addr::new(192, 168, 0, 199),
        options: Vec::new(),
        payload_len: 0x73 - 20,
    };
    assert_eq!(
        parsed, want,
        "requirement 1 and 3: `Ipv4Repr::parse` of the captured header (left) must equal its fields (right)"
    );
    assert_eq!(
        ip.payload().len(),
        0x73 - 20,
        "requirement 1 and 3: `ip.payload().len()` (left) must equal `0x73 - 20` (right)"
    );
    assert!(
        ip.verify_checksum(),
        "requirement 1 and 3: `ip.verify_checksum()` is false"
    );
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
    assert_eq!(
        len,
        buf.len(),
        "requirement 1: `len` (left) must equal `buf.len()` (right)"
    );
    let udp = UdpPacket::new_checked(&buf[..]).unwrap();
    assert!(
        udp.verify_checksum(src, dst),
        "requirement 1: `udp.verify_checksum(src, dst)` is false"
    );
    // The same bytes between other addresses must not verify: the addresses are summed too.
    let other = Ipv4Addr::from(u32::from(src) ^ 0x0100_0000);
    assert!(
        !udp.verify_checksum(other, dst),
        "requirement 1: source address not in the checksum"
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
    assert_eq!(
        udp.checksum(),
        expected,
        "requirement 1: `udp.checksum()` (left) must equal `expected` (right)"
    );
    assert_eq!(
        lab::transport_checksum(src, dst, lab::PROTO_UDP, &buf),
        0,
        "requirement 1: a filled-in segment verifies to 0"
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
    assert_eq!(at, 14, "requirement 2: `at` (left) must equal `14` (right)");
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
        "requirement 2: emit must return the bytes it wrote"
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
        (eth.dst, eth.src, eth.ethertype),
        "requirement 2 (etherparse reads the frame): `(e.destination, e.source, e.ether_type.0)` (left) must equal `(eth.dst, eth.src, eth.ethertype)` (right)"
    );
    let Some(NetHeaders::Ipv4(h, _)) = parsed.net else {
        panic!("no IPv4 header")
    };
    assert_eq!(
        h.dscp.value(),
        ip.dscp,
        "requirement 2 (etherparse reads the frame): `h.dscp.value()` (left) must equal `ip.dscp` (right)"
    );
    assert_eq!(
        h.ecn.value(),
        ip.ecn,
        "requirement 2 (etherparse reads the frame): `h.ecn.value()` (left) must equal `ip.ecn` (right)"
    );
    assert_eq!(
        h.identification, ip.ident,
        "requirement 2 (etherparse reads the frame): `h.identification` (left) must equal `ip.ident` (right)"
    );
    assert_eq!(
        h.dont_fragment, ip.dont_fragment,
        "requirement 2 (etherparse reads the frame): `h.dont_fragment` (left) must equal `ip.dont_fragment` (right)"
    );
    assert_eq!(
        h.more_fragments, ip.more_fragments,
        "requirement 2 (etherparse reads the frame): `h.more_fragments` (left) must equal `ip.more_fragments` (right)"
    );
    assert_eq!(
        h.fragment_offset.value(),
        ip.frag_offset,
        "requirement 2 (etherparse reads the frame): `h.fragment_offset.value()` (left) must equal `ip.frag_offset` (right)"
    );
    assert_eq!(
        h.time_to_live, ip.ttl,
        "requirement 2 (etherparse reads the frame): `h.time_to_live` (left) must equal `ip.ttl` (right)"
    );
    assert_eq!(
        h.protocol.0, ip.protocol,
        "requirement 2 (etherparse reads the frame): `h.protocol.0` (left) must equal `ip.protocol` (right)"
    );
    assert_eq!(
        h.source,
        ip.src.octets(),
        "requirement 2 (etherparse reads the frame): `h.source` (left) must equal `ip.src.octets()` (right)"
    );
    assert_eq!(
        h.destination,
        ip.dst.octets(),
        "requirement 2 (etherparse reads the frame): `h.destination` (left) must equal `ip.dst.octets()` (right)"
    );
    assert_eq!(
        h.options.as_slice(),
        &ip.options[..],
        "requirement 2 (etherparse reads the frame): `h.options.as_slice()` (left) must equal `&ip.options[..]` (right)"
    );
    assert_eq!(
        usize::from(h.total_len),
        ip.header_len() + ip.payload_len,
        "requirement 2 (etherparse reads the frame): `usize::from(h.total_len)` (left) must equal `ip.header_len() + ip.payload_len` (right)"
    );
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "requirement 2 (etherparse reads the frame): IPv4 header checksum"
    );
    assert_eq!(
        parsed.payload.slice(),
        payload,
        "requirement 2 (etherparse reads the frame): payload"
    );
    match (transport, parsed.transport) {
        (Transport::Udp(u), Some(TransportHeader::Udp(p))) => {
            assert_eq!(
                (p.source_port, p.destination_port),
                (u.src_port, u.dst_port),
                "requirement 2 (etherparse reads the frame): `(p.source_port, p.destination_port)` (left) must equal `(u.src_port, u.dst_port)` (right)"
            );
            assert_eq!(
                usize::from(p.length),
                8 + payload.len(),
                "requirement 2 (etherparse reads the frame): `usize::from(p.length)` (left) must equal `8 + payload.len()` (right)"
            );
            let expected = p.calc_checksum_ipv4(&h, payload).unwrap();
            assert_eq!(
                p.checksum, expected,
                "requirement 2 (etherparse reads the frame): UDP checksum"
            );
        }
        (Transport::Tcp(t), Some(TransportHeader::Tcp(p))) => {
            assert_eq!(
                (p.source_port, p.destination_port),
                (t.src_port, t.dst_port),
                "requirement 2 (etherparse reads the frame): `(p.source_port, p.destination_port)` (left) must equal `(t.src_port, t.dst_port)` (right)"
            );
            assert_eq!(
                (p.sequence_number, p.acknowledgment_number),
                (t.seq_number, t.ack_number),
                "requirement 2 (etherparse reads the frame): `(p.sequence_number, p.acknowledgment_number)` (left) must equal `(t.seq_number, t.ack_number)` (right)"
            );
            let flags = [p.fin, p.syn, p.rst, p.psh, p.ack, p.urg, p.ece, p.cwr]
                .iter()
                .enumerate()
                .fold(0u8, |acc, (bit, set)| acc | (u8::from(*set) << bit));
            assert_eq!(
                flags, t.flags,
                "requirement 2 (etherparse reads the frame): TCP flags"
            );
            assert!(
                !p.ns,
                "requirement 2 (etherparse reads the frame): `!p.ns` is false"
            );
            assert_eq!(
                (p.window_size, p.urgent_pointer),
                (t.window, t.urgent_pointer),
                "requirement 2 (etherparse reads the frame): `(p.window_size, p.urgent_pointer)` (left) must equal `(t.window, t.urgent_pointer)` (right)"
            );
            assert_eq!(
                p.options.as_slice(),
                &t.options[..],
                "requirement 2 (etherparse reads the frame): `p.options.as_slice()` (left) must equal `&t.options[..]` (right)"
            );
            let expected = p.calc_checksum_ipv4(&h, payload).unwrap();
            assert_eq!(
                p.checksum, expected,
                "requirement 2 (etherparse reads the frame): TCP checksum"
            );
        }
        (Transport::Icmp(i), Some(TransportHeader::Icmpv4(p))) => {
            let echo = match p.icmp_type {
                etherparse::Icmpv4Type::EchoRequest(e) => {
                    assert_eq!(
                        i.msg_type,
                        lab::ICMP_ECHO_REQUEST,
                        "requirement 2 (etherparse reads the frame): `i.msg_type` (left) must equal `lab::ICMP_ECHO_REQUEST` (right)"
                    );
                    e
                }
                etherparse::Icmpv4Type::EchoReply(e) => {
                    assert_eq!(
                        i.msg_type,
                        lab::ICMP_ECHO_REPLY,
                        "requirement 2 (etherparse reads the frame): `i.msg_type` (left) must equal `lab::ICMP_ECHO_REPLY` (right)"
                    );
                    e
                }
                other => panic!("not an echo: {other:?}"),
            };
            assert_eq!(
                (echo.id, echo.seq),
                (i.ident, i.seq_number),
                "requirement 2 (etherparse reads the frame): `(echo.id, echo.seq)` (left) must equal `(i.ident, i.seq_number)` (right)"
            );
            let expected = etherparse::Icmpv4Header::with_checksum(p.icmp_type.clone(), payload);
            assert_eq!(
                p.checksum, expected.checksum,
                "requirement 2 (etherparse reads the frame): ICMP checksum"
            );
        }
        (t, other) => panic!("built {t:?}, etherparse read {other:?}"),
    }
}

/// The learner's own views and `parse` read back what the learner's reprs wrote.
fn check_own_views(frame: &[u8], ip_repr: &Ipv4Repr, transport: &Transport, payload: &[u8]) {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    assert_eq!(
        eth.ethertype(),
        lab::ETHERTYPE_IPV4,
        "requirement 3 (your views read your frame): `eth.ethertype()` (left) must equal `lab::ETHERTYPE_IPV4` (right)"
    );
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(
        ip.verify_checksum(),
        "requirement 3 (your views read your frame): `ip.verify_checksum()` is false"
    );
    assert_eq!(
        Ipv4Repr::parse(&ip).as_ref(),
        Ok(ip_repr),
        "requirement 3 (your views read your frame): `Ipv4Repr::parse(&ip)` (left) must give back the repr emitted (right)"
    );
    let seg = ip.payload();
    match transport {
        Transport::Udp(u) => {
            let p = UdpPacket::new_checked(seg).unwrap();
            assert_eq!(
                UdpRepr::parse(&p),
                Ok(*u),
                "requirement 3 (your views read your frame): `UdpRepr::parse(&p)` (left) must give back the repr emitted (right)"
            );
            assert_eq!(
                p.payload(),
                payload,
                "requirement 3 (your views read your frame): `p.payload()` (left) must equal `payload` (right)"
            );
            assert!(
                p.verify_checksum(ip_repr.src, ip_repr.dst),
                "requirement 3 (your views read your frame): `p.verify_checksum(src, dst)` is false"
            );
        }
        Transport::Tcp(t) => {
            let p = TcpPacket::new_checked(seg).unwrap();
            assert_eq!(
                TcpRepr::parse(&p).as_ref(),
                Ok(t),
                "requirement 3 (your views read your frame): `TcpRepr::parse(&p)` (left) must give back the repr emitted (right)"
            );
            assert_eq!(
                p.payload(),
                payload,
                "requirement 3 (your views read your frame): `p.payload()` (left) must equal `payload` (right)"
            );
            assert!(
                p.verify_checksum(ip_repr.src, ip_repr.dst),
                "requirement 3 (your views read your frame): `p.verify_checksum(src, dst)` is false"
            );
        }
        Transport::Icmp(i) => {
            let p = IcmpPacket::new_checked(seg).unwrap();
            assert_eq!(
                IcmpEchoRepr::parse(&p),
                Ok(*i),
                "requirement 3 (your views read your frame): `IcmpEchoRepr::parse(&p)` (left) must give back the repr emitted (right)"
            );
            assert_eq!(
                p.payload(),
                payload,
                "requirement 3 (your views read your frame): `p.payload()` (left) must equal `payload` (right)"
            );
            assert!(
                p.verify_checksum(),
                "requirement 3 (your views read your frame): `p.verify_checksum()` is false"
            );
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
            (ip.dont_fragment, ip.more_fragments),
            "requirement 2: `(h.dont_fragment, h.more_fragments)` (left) must equal `(ip.dont_fragment, ip.more_fragments)` (right)"
        );
        assert_eq!(
            h.fragment_offset.value(),
            ip.frag_offset,
            "requirement 2: `h.fragment_offset.value()` (left) must equal `ip.frag_offset` (right)"
        );
        let view = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&view).as_ref(),
            Ok(&ip),
            "requirement 2 and 3: `Ipv4Repr::parse(&view)` (left) must give back the repr emitted (right)"
        );
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
        assert!(
            ip.verify_checksum(),
            "requirement 3 (a frame built by etherparse): `ip.verify_checksum()` is false"
        );
        let ip_repr =
            Ipv4Repr::parse(&ip).expect("requirement 3: an IPv4 header built by etherparse parses");
        assert_eq!(
            (ip_repr.src, ip_repr.dst, ip_repr.ttl, ip_repr.payload_len),
            (src, dst, ttl, ip.payload().len()),
            "requirement 3 (a frame built by etherparse): `Ipv4Repr::parse(&ip)` (left) must read `(src, dst, ttl, payload length)` (right)"
        );
        match kind {
            0 => {
                let udp = UdpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!(
                    (UdpRepr::parse(&udp), udp.payload()),
                    (
                        Ok(UdpRepr {
                            src_port: sport,
                            dst_port: dport
                        }),
                        &payload[..]
                    ),
                    "requirement 3 (a frame built by etherparse): `(UdpRepr::parse(&udp), udp.payload())` (left) must equal the ports and payload sent (right)"
                );
                assert!(
                    udp.verify_checksum(src, dst),
                    "requirement 3 (a frame built by etherparse): `udp.verify_checksum(src, dst)` is false"
                );
            }
            1 => {
                let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                let repr = TcpRepr::parse(&tcp)
                    .expect("requirement 3: a TCP header built by etherparse parses");
                assert_eq!(
                    (repr.src_port, repr.dst_port, tcp.payload()),
                    (sport, dport, &payload[..]),
                    "requirement 3 (a frame built by etherparse): `TcpRepr::parse` ports and `tcp.payload()` (left) must equal `(sport, dport, &payload[..])` (right)"
                );
                assert_eq!(
                    repr.flags,
                    lab::tcp_flags::SYN | lab::tcp_flags::ACK,
                    "requirement 3 (a frame built by etherparse): `TcpRepr::parse(&tcp).flags` (left) must equal `lab::tcp_flags::SYN | lab::tcp_flags::ACK` (right)"
                );
                assert!(
                    tcp.verify_checksum(src, dst),
                    "requirement 3 (a frame built by etherparse): `tcp.verify_checksum(src, dst)` is false"
                );
            }
            _ => {
                let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
                assert_eq!(
                    IcmpEchoRepr::parse(&icmp),
                    Ok(IcmpEchoRepr {
                        msg_type: lab::ICMP_ECHO_REQUEST,
                        ident: sport,
                        seq_number: dport
                    }),
                    "requirement 3 (a frame built by etherparse): `IcmpEchoRepr::parse(&icmp)` (left) must equal the echo request sent (right)"
                );
                assert!(
                    icmp.verify_checksum(),
                    "requirement 3 (a frame built by etherparse): `icmp.verify_checksum()` is false"
                );
            }
        }
    }
}

/// A random frame built with the learner's reprs, and where its IPv4 header and segment start.
fn random_frame() -> (Vec<u8>, Ipv4Repr, Transport, Vec<u8>) {
    let mut rng = rand::rng();
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
        more_fragments: false,
        frag_offset: 0,
        ttl: rng.random(),
        protocol: 0,
        src: random_addr(),
        dst: random_addr(),
        options: random_options(4),
        payload_len: 0,
    };
    let transport = random_transport();
    let payload = random_bytes(rng.random_range(0..100));
    let frame = build(&eth, &mut ip, &transport, &payload);
    (frame, ip, transport, payload)
}

/// Whether the segment at the start of `seg` verifies (the learner's views).
fn segment_verifies(seg: &[u8], transport: &Transport, ip: &Ipv4Repr) -> Option<bool> {
    match transport {
        Transport::Udp(_) => UdpPacket::new_checked(seg)
            .ok()
            .map(|p| p.verify_checksum(ip.src, ip.dst)),
        Transport::Tcp(_) => TcpPacket::new_checked(seg)
            .ok()
            .map(|p| p.verify_checksum(ip.src, ip.dst)),
        Transport::Icmp(_) => IcmpPacket::new_checked(seg)
            .ok()
            .map(|p| p.verify_checksum()),
    }
}

// Requirement 3: verify_checksum fails on a damaged packet. One flipped bit always changes a
// ones' complement sum, so a right verification never lets one through.
#[test]
fn flipped_bits_and_zeroed_checksums_fail_verification() {
    let mut rng = rand::rng();
    for round in 0..2000 {
        let (frame, ip, transport, _) = random_frame();
        let hl = ip.header_len();
        let seg_at = 14 + hl;

        // A bit of the IPv4 header, outside version/IHL and total length (they move the
        // bounds the checksum covers).
        let mut bad = frame.clone();
        let byte = loop {
            let b = rng.random_range(0..hl);
            if b != 0 && b != 2 && b != 3 {
                break b;
            }
        };
        let bit = rng.random_range(0..8);
        bad[14 + byte] ^= 1 << bit;
        let view = Ipv4Packet::new_checked(&bad[14..])
            .unwrap_or_else(|e| panic!("round {round}: IPv4 header with byte {byte} changed: {e}"));
        assert!(
            !view.verify_checksum(),
            "requirement 3: an IPv4 header with bit {bit} of byte {byte} flipped passed \
             verify_checksum; wanted false (recompute the sum over the header)"
        );

        // The IPv4 checksum field zeroed.
        let mut zeroed = frame.clone();
        if zeroed[14 + 10..14 + 12] != [0, 0] {
            zeroed[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
            let view = Ipv4Packet::new_checked(&zeroed[14..]).expect("a zeroed checksum parses");
            assert!(
                !view.verify_checksum(),
                "requirement 3: an IPv4 header with its checksum zeroed passed verify_checksum"
            );
        }

        // A bit of the segment (UDP: not its length or checksum field, which have their own
        // meanings).
        let seg_len = frame.len() - seg_at;
        let skip = matches!(transport, Transport::Udp(_));
        let byte = loop {
            let b = rng.random_range(0..seg_len);
            if !(skip && (4..8).contains(&b)) {
                break b;
            }
        };
        let mut bad = frame.clone();
        bad[seg_at + byte] ^= 1 << bit;
        if let Some(ok) = segment_verifies(&bad[seg_at..], &transport, &ip) {
            assert!(
                !ok,
                "requirement 3: a {} segment with bit {bit} of byte {byte} flipped passed \
                 verify_checksum; wanted false",
                kind(&transport)
            );
        }

        // The TCP or ICMP checksum zeroed (for UDP, zero means \"no checksum\").
        let field = match transport {
            Transport::Tcp(_) => Some(16),
            Transport::Icmp(_) => Some(2),
            Transport::Udp(_) => None,
        };
        if let Some(at) = field
            && frame[seg_at + at..seg_at + at + 2] != [0, 0]
        {
            let mut zeroed = frame.clone();
            zeroed[seg_at + at..seg_at + at + 2].copy_from_slice(&[0, 0]);
            let ok = segment_verifies(&zeroed[seg_at..], &transport, &ip);
            assert_eq!(
                ok,
                Some(false),
                "requirement 3: a {} segment with its checksum zeroed; wanted verify_checksum \
                 false (only UDP gives zero a meaning)",
                kind(&transport)
            );
        }
    }
}

fn kind(transport: &Transport) -> &'static str {
    match transport {
        Transport::Udp(_) => "UDP",
        Transport::Tcp(_) => "TCP",
        Transport::Icmp(_) => "ICMP",
    }
}

// Requirement 3: the IPv4 payload ends at the total length: Ethernet pads short frames to 60
// bytes, and those bytes belong to no layer.
#[test]
fn payload_ends_at_the_total_length_not_at_the_buffer_end() {
    let mut rng = rand::rng();
    for _ in 0..500 {
        let (mut frame, ip, transport, payload) = random_frame();
        let padding = rng.random_range(1..=46);
        frame.extend(random_bytes(padding));
        let eth = EthernetFrame::new_checked(&frame[..]).expect("a valid frame");
        let view = Ipv4Packet::new_checked(eth.payload()).expect("a padded IPv4 packet parses");
        let want = ip.payload_len;
        assert_eq!(
            view.payload().len(),
            want,
            "requirement 3: the IPv4 payload of a frame with {padding} bytes of padding; wanted \
             total length - header length"
        );
        assert_eq!(
            Ipv4Repr::parse(&view).map(|r| r.payload_len),
            Ok(want),
            "requirement 3: `Ipv4Repr::parse` of a frame with {padding} bytes of padding: \
             payload_len (left) must be total length - header length (right)"
        );
        let seg = view.payload();
        let got = match &transport {
            Transport::Udp(_) => UdpPacket::new_checked(seg).map(|p| p.payload().to_vec()),
            Transport::Tcp(_) => TcpPacket::new_checked(seg).map(|p| p.payload().to_vec()),
            Transport::Icmp(_) => IcmpPacket::new_checked(seg).map(|p| p.payload().to_vec()),
        }
        .unwrap_or_else(|e| {
            panic!(
                "requirement 3: the {} segment does not parse: {e}",
                kind(&transport)
            )
        });
        assert!(
            got == payload,
            "requirement 3: the {} payload behind {padding} bytes of Ethernet padding has {} \
             bytes; wanted {}",
            kind(&transport),
            got.len(),
            payload.len()
        );
        assert_eq!(
            segment_verifies(seg, &transport, &ip),
            Some(true),
            "requirement 3: the {} checksum of a padded frame must verify",
            kind(&transport)
        );
    }
}

// Requirement 3: `IcmpEchoRepr::parse` is the parse with something to refuse. A raw ICMP socket
// (lab 7.2) receives every ICMP message: a destination unreachable taken for an echo reply would
// be a reply that never came.
#[test]
fn icmp_echo_repr_parses_only_echo_messages() {
    let mut rng = rand::rng();
    for _ in 0..500 {
        let echo = IcmpEchoRepr {
            msg_type: if rng.random() {
                lab::ICMP_ECHO_REQUEST
            } else {
                lab::ICMP_ECHO_REPLY
            },
            ident: rng.random(),
            seq_number: rng.random(),
        };
        let data = random_bytes(rng.random_range(0..64));
        let mut buf = vec![0u8; 8 + data.len()];
        echo.emit(&mut buf, &data).unwrap();
        let parse = |bytes: &[u8]| {
            let view = IcmpPacket::new_checked(bytes).expect("an 8-byte ICMP header");
            IcmpEchoRepr::parse(&view)
        };
        assert_eq!(
            parse(&buf),
            Ok(echo),
            "requirement 3: `IcmpEchoRepr::parse` of an echo (left) must give back the repr emitted (right)"
        );

        // Any other type: destination unreachable (3), time exceeded (11), timestamp (13)...
        let mut other = buf.clone();
        other[0] = loop {
            let t: u8 = rng.random();
            if t != lab::ICMP_ECHO_REQUEST && t != lab::ICMP_ECHO_REPLY {
                break t;
            }
        };
        let got = parse(&other);
        assert!(
            matches!(got, Err(WireError::Malformed(_))),
            "requirement 3: an ICMP message of type {} parsed as {got:?}; wanted \
             Err(WireError::Malformed(..)): only types 0 and 8 are echoes",
            other[0]
        );

        // An echo type with a code other than 0.
        let mut coded = buf.clone();
        coded[1] = rng.random_range(1..=255);
        let got = parse(&coded);
        assert!(
            matches!(got, Err(WireError::Malformed(_))),
            "requirement 3: an echo with code {} parsed as {got:?}; wanted \
             Err(WireError::Malformed(..)): an echo's code is 0",
            coded[1]
        );
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
        // `parse` reads every field: an accessor that indexes out of bounds panics here.
        let _ = (
            Ipv4Repr::parse(&ip),
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
            TcpRepr::parse(&t),
            t.payload().len(),
            t.verify_checksum(a, b),
        );
        ok += 1;
    }
    if let Ok(i) = IcmpPacket::new_checked(bytes) {
        let _ = (
            IcmpEchoRepr::parse(&i),
            i.payload().len(),
            i.verify_checksum(),
        );
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
        "requirement 4: some random buffers are long enough to be valid views"
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
            "requirement 4: IPv4 cut at {cut} bytes (total length says {})",
            ip_bytes.len()
        );
        touch_everything(&ip_bytes[..cut]);
    }
    let tcp_bytes = &ip_bytes[20..];
    for cut in 0..20 {
        assert_eq!(
            TcpPacket::new_checked(&tcp_bytes[..cut]).err(),
            Some(WireError::Truncated),
            "requirement 4: `TcpPacket::new_checked(&tcp_bytes[..cut]).err()` (left) must equal `Some(WireError::Truncated)` (right)"
        );
    }
    for cut in 0..14 {
        assert!(
            EthernetFrame::new_checked(&frame[..cut]).is_err(),
            "requirement 4: `EthernetFrame::new_checked(&frame[..cut]).is_err()` is false"
        );
    }
    for cut in 0..8 {
        assert!(
            UdpPacket::new_checked(&tcp_bytes[..cut]).is_err(),
            "requirement 4: `UdpPacket::new_checked(&tcp_bytes[..cut]).is_err()` is false"
        );
        assert!(
            IcmpPacket::new_checked(&tcp_bytes[..cut]).is_err(),
            "requirement 4: `IcmpPacket::new_checked(&tcp_bytes[..cut]).is_err()` is false"
        );
    }
    assert!(
        Ipv4Packet::new_checked(ip_bytes).is_ok(),
        "requirement 4: `Ipv4Packet::new_checked(ip_bytes).is_ok()` is false"
    );
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
        "requirement 4: version 6"
    );
    assert!(
        matches!(malformed(&|h| h[0] = 0x44), Some(WireError::Malformed(_))),
        "requirement 4: IHL 4"
    );
    assert!(
        malformed(&|h| h[3] = 10).is_some(),
        "requirement 4: total length below the header"
    );
    assert_eq!(
        malformed(&|h| h[2] = 0x10),
        Some(WireError::Truncated),
        "requirement 4: total length past the buffer"
    );
    assert_eq!(
        malformed(&|h| h[0] = 0x4f),
        None,
        "requirement 4: IHL 15 (60 bytes) fits in total length 115"
    );

    let mut udp = [0u8; 16];
    udp[5] = 4; // length 4 < 8
    assert!(
        UdpPacket::new_checked(&udp[..]).is_err(),
        "requirement 4: `UdpPacket::new_checked(&udp[..]).is_err()` is false"
    );
    udp[5] = 17; // length 17 > 16 bytes
    assert_eq!(
        UdpPacket::new_checked(&udp[..]).err(),
        Some(WireError::Truncated),
        "requirement 4: `UdpPacket::new_checked(&udp[..]).err()` (left) must equal `Some(WireError::Truncated)` (right)"
    );
    udp[5] = 12;
    assert_eq!(
        UdpPacket::new_checked(&udp[..]).unwrap().payload().len(),
        4,
        "requirement 4: `UdpPacket::new_checked(&udp[..]).unwrap().payload().len()` (left) must equal `4` (right)"
    );

    let mut tcp = [0u8; 24];
    tcp[12] = 0x40; // data offset 4 words
    assert!(
        TcpPacket::new_checked(&tcp[..]).is_err(),
        "requirement 4: `TcpPacket::new_checked(&tcp[..]).is_err()` is false"
    );
    tcp[12] = 0x70; // 28 bytes > 24
    assert_eq!(
        TcpPacket::new_checked(&tcp[..]).err(),
        Some(WireError::Truncated),
        "requirement 4: `TcpPacket::new_checked(&tcp[..]).err()` (left) must equal `Some(WireError::Truncated)` (right)"
    );
    tcp[12] = 0x60;
    let view = TcpPacket::new_checked(&tcp[..]).unwrap();
    assert_eq!(
        TcpRepr::parse(&view).map(|r| r.options.len()),
        Ok(4),
        "requirement 4: the options of a 24-byte TCP header with data offset 6 (left) must be 4 bytes (right)"
    );
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
    assert_eq!(
        ip.emit(&mut [0u8; 27]),
        Err(WireError::Truncated),
        "requirement 4: `ip.emit(&mut [0u8; 27])` (left) must equal `Err(WireError::Truncated)` (right)"
    );
    assert_eq!(
        ip.emit(&mut [0u8; 28]),
        Ok(28),
        "requirement 4: `ip.emit(&mut [0u8; 28])` (left) must equal `Ok(28)` (right)"
    );
    let bad = Ipv4Repr {
        options: vec![1; 3],
        ..ip.clone()
    };
    assert!(
        bad.emit(&mut [0u8; 60]).is_err(),
        "requirement 4: options not a multiple of 4"
    );
    let udp = UdpRepr {
        src_port: 1,
        dst_port: 2,
    };
    let (a, b) = (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
    assert_eq!(
        udp.emit(&mut [0u8; 10], a, b, b"abc"),
        Err(WireError::Truncated),
        "requirement 4: `udp.emit(&mut [0u8; 10], a, b, b\"abc\")` (left) must equal `Err(WireError::Truncated)` (right)"
    );
    let echo = IcmpEchoRepr {
        msg_type: 8,
        ident: 1,
        seq_number: 1,
    };
    assert_eq!(
        echo.emit(&mut [0u8; 8], b"x"),
        Err(WireError::Truncated),
        "requirement 4: `echo.emit(&mut [0u8; 8], b\"x\")` (left) must equal `Err(WireError::Truncated)` (right)"
    );
    assert_eq!(
        echo.emit(&mut [0u8; 9], b"x"),
        Ok(9),
        "requirement 4: `echo.emit(&mut [0u8; 9], b\"x\")` (left) must equal `Ok(9)` (right)"
    );
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
        Err(WireError::Truncated),
        "requirement 4: `tcp.emit(&mut [0u8; 19], a, b, b\"\")` (left) must equal `Err(WireError::Truncated)` (right)"
    );
}
