//! Fuzz the header views: any bytes, read as an Ethernet frame and then as whatever its headers
//! claim to carry, must give values or errors, never a panic (no slice out of bounds, no
//! overflow in a length or an offset, no checksum arithmetic that wraps in debug builds). Each
//! `Repr::parse` reads every field of its view, so it reaches every accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;

// Your src/main.rs by default; `--features solution` fuzzes the reference answer.
#[allow(dead_code, unused_imports)]
#[cfg_attr(feature = "solution", path = "../../solution/main.rs")]
#[cfg_attr(not(feature = "solution"), path = "../../src/main.rs")]
mod lab;

fuzz_target!(|data: &[u8]| {
    let _ = lab::checksum(data);
    // The same bytes as a frame, and (skipping the Ethernet header) as a bare IPv4 packet.
    if let Ok(frame) = lab::EthernetFrame::new_checked(data) {
        let _ = lab::EthernetRepr::parse(&frame);
        ip(frame.payload());
    }
    ip(data);
});

fn ip(bytes: &[u8]) {
    let Ok(packet) = lab::Ipv4Packet::new_checked(bytes) else {
        return;
    };
    let _ = packet.verify_checksum();
    let Ok(repr) = lab::Ipv4Repr::parse(&packet) else {
        return;
    };
    let (src, dst, payload) = (repr.src, repr.dst, packet.payload());
    let _ = lab::transport_checksum(src, dst, repr.protocol, payload);
    match repr.protocol {
        lab::PROTO_UDP => {
            if let Ok(udp) = lab::UdpPacket::new_checked(payload) {
                let _ = (lab::UdpRepr::parse(&udp), udp.payload());
                let _ = udp.verify_checksum(src, dst);
            }
        }
        lab::PROTO_TCP => {
            if let Ok(tcp) = lab::TcpPacket::new_checked(payload) {
                let _ = (lab::TcpRepr::parse(&tcp), tcp.payload());
                let _ = tcp.verify_checksum(src, dst);
            }
        }
        lab::PROTO_ICMP => {
            if let Ok(icmp) = lab::IcmpPacket::new_checked(payload) {
                let _ = (lab::IcmpEchoRepr::parse(&icmp), icmp.payload());
                let _ = icmp.verify_checksum();
            }
        }
        _ => {}
    }
}
