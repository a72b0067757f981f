//! Fuzz the header views: any bytes, read as an Ethernet frame and then as whatever its headers
//! claim to carry, must give values or errors, never a panic (no slice out of bounds, no
//! overflow in a length or an offset, no checksum arithmetic that wraps in debug builds).
#![no_main]

use libfuzzer_sys::fuzz_target;

// Your src/main.rs by default; `--features solution` fuzzes the reference answer.
#[allow(dead_code)]
#[cfg_attr(feature = "solution", path = "../../solution/main.rs")]
#[cfg_attr(not(feature = "solution"), path = "../../src/main.rs")]
mod lab;

fuzz_target!(|data: &[u8]| {
    let _ = lab::checksum(data);
    // The same bytes as a frame, and (skipping the Ethernet header) as a bare IPv4 packet.
    if let Ok(frame) = lab::EthernetFrame::new_checked(data) {
        let _ = (frame.dst(), frame.src(), frame.ethertype());
        ip(frame.payload());
    }
    ip(data);
});

fn ip(bytes: &[u8]) {
    let Ok(packet) = lab::Ipv4Packet::new_checked(bytes) else {
        return;
    };
    let _ = (
        packet.header_len(),
        packet.total_len(),
        packet.ident(),
        packet.ttl(),
    );
    let _ = (packet.frag_offset(), packet.checksum(), packet.options());
    let (src, dst, payload) = (packet.src(), packet.dst(), packet.payload());
    let _ = lab::transport_checksum(src, dst, packet.protocol(), payload);
    match packet.protocol() {
        17 => {
            if let Ok(udp) = lab::UdpPacket::new_checked(payload) {
                let _ = udp.payload();
            }
        }
        6 => {
            if let Ok(tcp) = lab::TcpPacket::new_checked(payload) {
                let _ = (tcp.options(), tcp.payload());
            }
        }
        1 => {
            if let Ok(icmp) = lab::IcmpPacket::new_checked(payload) {
                let _ = icmp.payload();
            }
        }
        _ => {}
    }
}
