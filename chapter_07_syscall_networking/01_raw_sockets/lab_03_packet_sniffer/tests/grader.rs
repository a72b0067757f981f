//! Grader for the TPACKET_V3 sniffer: white-box on the ring, black-box on the program.
//!
//! Each white-box test moves its own thread into a fresh network namespace (network namespaces
//! are per thread on Linux) with only `lo`, up. The ring then sees this test's traffic and
//! nothing else, however many other tests run on the machine. Each test is named after the
//! requirement it checks (see README.md).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{RingConfig, Sniffer, Transport};

const WAIT: Duration = Duration::from_secs(5);

/// Moves the calling thread into a new network namespace and brings its `lo` up. Falls back to
/// the host namespace (noisier, still correct: tests filter on their own ports) when not allowed.
fn private_loopback() {
    labkit::sys::require_net_raw();
    // SAFETY: unshare(2) only changes this thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!(
            "note: no private network namespace ({}), using the host's",
            std::io::Error::last_os_error()
        );
        return;
    }
    // SAFETY: a plain socket for the ioctl, closed right after; ifreq is zeroed then named "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let rc = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        libc::close(fd);
        assert_eq!(rc, 0, "bringing lo up: {}", std::io::Error::last_os_error());
    }
}

fn udp_pair() -> (UdpSocket, UdpSocket) {
    let tx = labkit::net::udp_socket();
    let rx = labkit::net::udp_socket();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    (tx, rx)
}

fn random_payload() -> Vec<u8> {
    let mut rng = rand::rng();
    let len = rng.random_range(8..200);
    (0..len).map(|_| rng.random()).collect()
}

/// Reads blocks until `done` says so or `WAIT` passes; returns the number of blocks read.
fn capture<S>(
    sniffer: &mut Sniffer,
    state: &mut S,
    mut on_packet: impl FnMut(&mut S, &lab::Packet<'_>),
    done: impl Fn(&S) -> bool,
) -> usize {
    let deadline = Instant::now() + WAIT;
    let mut blocks = 0;
    while !done(state) {
        assert!(
            Instant::now() < deadline,
            "capture made no progress for {WAIT:?}"
        );
        if let Some(block) = sniffer
            .next_block(Duration::from_millis(50))
            .expect("next_block")
        {
            blocks += 1;
            for packet in block.packets() {
                on_packet(state, &packet);
            }
        }
    }
    blocks
}

/// Payloads of the UDP datagrams to `port` (host copies only) seen in `packet`.
fn udp_payload_to(packet: &lab::Packet<'_>, port: u16) -> Option<Vec<u8>> {
    if packet.is_outgoing() {
        return None;
    }
    let d = lab::decode(packet.data)?;
    match d.transport {
        Transport::Udp { dst_port, .. } if dst_port == port => Some(d.payload.to_vec()),
        _ => None,
    }
}

// Requirement 1 and 2: every datagram, once.
#[test]
fn captures_every_datagram_exactly_once() {
    private_loopback();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default()).expect("open the sniffer on lo");
    let (tx, rx) = udp_pair();
    let port = rx.local_addr().unwrap().port();
    let sent: Vec<Vec<u8>> = (0..rand::rng().random_range(20..60))
        .map(|_| random_payload())
        .collect();
    for p in &sent {
        tx.send(p).unwrap();
    }
    // (payload -> host copies, outgoing copies, all copies)
    let mut state: (HashMap<Vec<u8>, usize>, usize, usize) = (HashMap::new(), 0, 0);
    capture(
        &mut sniffer,
        &mut state,
        |(seen, outgoing, total), packet| {
            if let Some(d) = lab::decode(packet.data)
                && matches!(d.transport, Transport::Udp { dst_port, .. } if dst_port == port)
            {
                *total += 1;
                *outgoing += usize::from(packet.is_outgoing());
            }
            if let Some(p) = udp_payload_to(packet, port) {
                *seen.entry(p).or_default() += 1;
            }
        },
        |(_, _, total)| *total >= 2 * sent.len(),
    );
    let (seen, outgoing, _) = state;
    for p in &sent {
        assert_eq!(
            seen.get(p),
            Some(&1),
            "payload of {} bytes: captured {:?} times",
            p.len(),
            seen.get(p)
        );
    }
    assert_eq!(seen.values().sum::<usize>(), sent.len());
    assert_eq!(
        outgoing,
        sent.len(),
        "on lo each datagram also shows once as PACKET_OUTGOING"
    );
}

#[test]
fn decoded_packets_point_into_the_mapped_ring() {
    private_loopback();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default()).expect("open the sniffer on lo");
    let ring = sniffer.ring_range();
    assert!(
        ring.end - ring.start >= 16 * 4096,
        "the default ring is at least 64 KiB"
    );
    let (tx, rx) = udp_pair();
    let port = rx.local_addr().unwrap().port();
    let payload = random_payload();
    tx.send(&payload).unwrap();
    let mut checked = false;
    capture(
        &mut sniffer,
        &mut checked,
        |checked, packet| {
            if let Some(d) = lab::decode(packet.data)
                && matches!(d.transport, Transport::Udp { dst_port, .. } if dst_port == port)
            {
                assert_eq!(d.payload, &payload[..]);
                let at = d.payload.as_ptr() as usize;
                assert!(
                    ring.contains(&at),
                    "payload at {at:#x} is a copy, not in the ring {ring:x?}"
                );
                assert!(ring.contains(&(packet.data.as_ptr() as usize)));
                *checked = true;
            }
        },
        |checked| *checked,
    );
}

// Requirement 3: blocks go back to the kernel; a small ring wraps many times without drops.
#[test]
fn small_ring_wraps_many_times_with_zero_drops() {
    private_loopback();
    let config = RingConfig {
        block_size: 4096,
        block_count: 4,
        frame_size: 2048,
        block_timeout_ms: 2,
    };
    let mut sniffer = Sniffer::open("lo", &config).expect("open the sniffer with a 16 KiB ring");
    let (tx, rx) = udp_pair();
    let port = rx.local_addr().unwrap().port();
    let (rounds, per_round) = (40, 8);
    let mut blocks = 0;
    let mut seen = 0;
    for round in 0..rounds {
        for i in 0..per_round {
            let mut p = random_payload();
            p.truncate(100);
            p[..4].copy_from_slice(&((round * per_round + i) as u32).to_be_bytes());
            tx.send(&p).unwrap();
        }
        // Pace on capture progress: the next round waits until this one is in.
        let target = (round + 1) * per_round;
        blocks += capture(
            &mut sniffer,
            &mut seen,
            |seen, packet| *seen += usize::from(udp_payload_to(packet, port).is_some()),
            |seen| *seen >= target,
        );
    }
    assert_eq!(seen, rounds * per_round, "every datagram captured once");
    assert!(
        blocks > 3 * config.block_count as usize,
        "the ring must wrap more than 3 times: {blocks} blocks read from a ring of {}",
        config.block_count
    );
    let stats = sniffer.statistics().expect("PACKET_STATISTICS");
    assert!(
        stats.packets >= (rounds * per_round) as u64,
        "received counter: {stats:?}"
    );
    assert_eq!(stats.drops, 0, "no drops at a paced rate: {stats:?}");
}

// Requirement 4: statistics.
#[test]
fn statistics_count_received_packets_cumulatively() {
    private_loopback();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default()).expect("open the sniffer on lo");
    let (tx, rx) = udp_pair();
    let port = rx.local_addr().unwrap().port();
    let n = rand::rng().random_range(5..30);
    let mut total = 0;
    for round in 1..=2 {
        for _ in 0..n {
            tx.send(&random_payload()).unwrap();
        }
        let mut seen = 0;
        capture(
            &mut sniffer,
            &mut seen,
            |seen, p| *seen += usize::from(udp_payload_to(p, port).is_some()),
            |seen| *seen >= n,
        );
        let stats = sniffer.statistics().expect("PACKET_STATISTICS");
        total += n;
        assert!(
            stats.packets >= total as u64,
            "round {round}: {stats:?}, sent {total} (the kernel resets its counter on each read: add up)"
        );
        assert_eq!(stats.drops, 0);
    }
}

// Requirement 5: decoding never panics, and decodes right.
#[test]
fn decode_reads_headers_and_survives_garbage() {
    let mut frame = vec![0u8; 14];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let payload = random_payload();
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 10, 1, 2, 3,
    ];
    let total = (20 + 8 + payload.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&[0x9c, 0x40, 0x00, 0x35]);
    frame.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(&payload);
    frame.extend_from_slice(&[0u8; 6]); // Ethernet padding after the IP packet
    let d = lab::decode(&frame).expect("a valid UDP frame");
    assert_eq!(d.src, std::net::Ipv4Addr::new(127, 0, 0, 1));
    assert_eq!(d.dst, std::net::Ipv4Addr::new(10, 1, 2, 3));
    assert_eq!(
        d.transport,
        Transport::Udp {
            src_port: 40000,
            dst_port: 53
        }
    );
    assert_eq!(
        d.payload,
        &payload[..],
        "the payload stops at the IPv4 total length"
    );

    let mut rng = rand::rng();
    for _ in 0..50_000 {
        let mut bytes: Vec<u8> = (0..rng.random_range(0..80)).map(|_| rng.random()).collect();
        if bytes.len() > 14 && rng.random() {
            bytes[12] = 0x08;
            bytes[13] = 0;
            bytes[14] = 0x40 | (bytes[14] & 0x0f);
        }
        let _ = lab::decode(&bytes);
    }
    for cut in 0..frame.len() {
        let _ = lab::decode(&frame[..cut]);
    }
}

#[test]
fn unknown_interface_is_a_clear_error() {
    labkit::sys::require_net_raw();
    match Sniffer::open("nosuch7", &RingConfig::default()) {
        Ok(_) => panic!("opening a missing interface must fail"),
        Err(e) => assert!(e.to_string().contains("nosuch7"), "name the interface: {e}"),
    }
    let bad = RingConfig {
        block_size: 1000,
        ..RingConfig::default()
    };
    assert!(
        Sniffer::open("lo", &bad).is_err(),
        "a block size that is not a page multiple"
    );
}

// Requirement 6: the program.
#[test]
fn prints_one_line_per_packet_like_tcpdump_and_statistics_on_exit() {
    labkit::sys::require_net_raw();
    let (tx, rx) = udp_pair();
    let port = rx.local_addr().unwrap().port();
    let sport = tx.local_addr().unwrap().port();
    let n = rand::rng().random_range(3..10);
    let mut child = Command::new(labkit::lab_bin!())
        .args([
            "-i",
            "lo",
            "-c",
            &n.to_string(),
            "--proto",
            "udp",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the sniffer");
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first = lines.recv_timeout(WAIT);
    if !matches!(&first, Ok(l) if l.starts_with("capturing on lo")) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "expected `capturing on lo` first, got {first:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lengths: Vec<usize> = (0..n).map(|i| 10 + i).collect();
    for len in &lengths {
        tx.send(&vec![b'x'; *len]).unwrap();
    }
    let status = labkit::process::wait_timeout(&mut child, WAIT)
        .expect("the sniffer exits after -c packets");
    let mut out = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        out.push(line);
    }
    assert!(status.success(), "exit status {status}; output: {out:#?}");
    let packet_lines: Vec<&String> = out.iter().filter(|l| l.contains(" IP ")).collect();
    assert_eq!(
        packet_lines.len(),
        n,
        "one line per datagram (the outgoing copy on lo skipped): {out:#?}"
    );
    for (line, len) in packet_lines.iter().zip(&lengths) {
        let expected = format!("IP 127.0.0.1.{sport} > 127.0.0.1.{port}: UDP, length {len}");
        assert!(
            line.contains(&expected),
            "{line:?} should contain {expected:?}"
        );
    }
    assert!(
        out.iter()
            .any(|l| l.ends_with("packets received by filter")),
        "{out:#?}"
    );
    assert!(
        out.iter().any(|l| l == "0 packets dropped by kernel"),
        "{out:#?}"
    );
}
