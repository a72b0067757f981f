//! Grader for the TPACKET_V3 sniffer: white-box on the ring, black-box on the program.
//!
//! Each test runs in a network namespace of its own with only `lo`, up
//! (`labkit::private_network!`, which needs neither root nor sudo). The ring then sees this
//! test's traffic and nothing else, however many other tests run on the machine. Each test is named after the
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
            "requirement 3: capture made no progress for {WAIT:?}; wanted the packets sent (a \
             ring whose blocks are not given back stalls)"
        );
        if let Some(block) = sniffer
            .next_block(Duration::from_millis(50))
            .expect("requirement 2: next_block failed")
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
    labkit::private_network!();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default())
        .expect("requirement 1: Sniffer::open on lo failed");
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
    for (i, p) in sent.iter().enumerate() {
        let times = seen.get(p).copied().unwrap_or(0);
        assert_eq!(
            times,
            1,
            "requirement 2: datagram {i} of {} ({} bytes) was captured {times} times as \
             PACKET_HOST; wanted once",
            sent.len(),
            p.len()
        );
    }
    let total: usize = seen.values().sum();
    assert_eq!(
        total,
        sent.len(),
        "requirement 2: {total} host copies captured; wanted the {} datagrams sent",
        sent.len()
    );
    assert_eq!(
        outgoing,
        sent.len(),
        "requirement 2: {outgoing} PACKET_OUTGOING copies captured; wanted {}, one per datagram \
         on lo",
        sent.len()
    );
}

#[test]
fn decoded_packets_point_into_the_mapped_ring() {
    labkit::private_network!();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default())
        .expect("requirement 1: Sniffer::open on lo failed");
    let ring = sniffer.ring_range();
    assert!(
        ring.end - ring.start >= 16 * 4096,
        "requirement 1: the default ring spans {} bytes; wanted at least 64 KiB",
        ring.end - ring.start
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
                assert!(
                    d.payload == &payload[..],
                    "requirement 2: the captured payload has {} bytes; wanted the {} sent, byte \
                     for byte",
                    d.payload.len(),
                    payload.len()
                );
                let at = d.payload.as_ptr() as usize;
                assert!(
                    ring.contains(&at),
                    "requirement 2: the payload is at {at:#x}; wanted inside the ring {ring:x?} \
                     (a copy is not zero-copy)"
                );
                let data = packet.data.as_ptr() as usize;
                assert!(
                    ring.contains(&data),
                    "requirement 2: packet.data is at {data:#x}; wanted inside the ring {ring:x?}"
                );
                *checked = true;
            }
        },
        |checked| *checked,
    );
}

// Requirement 1, seen by the kernel: the ring is one shared mapping of the packet socket, of
// exactly block_size * block_count bytes, and `ring_range` is that mapping.
#[test]
fn ring_is_a_shared_mapping_of_the_socket() {
    labkit::private_network!();
    let mut rng = rand::rng();
    let config = RingConfig {
        block_size: 4096 << rng.random_range(0..3),
        block_count: rng.random_range(2..9),
        ..RingConfig::default()
    };
    let sniffer = Sniffer::open("lo", &config).expect("requirement 1: Sniffer::open on lo failed");
    let ring = sniffer.ring_range();
    let want = (config.block_size * config.block_count) as usize;
    assert!(
        ring.end - ring.start == want,
        "requirement 1: ring_range spans {} bytes; wanted block_size * block_count = {want}",
        ring.end - ring.start
    );
    let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
    let mapping = maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (lo, hi) = fields.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        (lo..hi)
            .contains(&ring.start)
            .then(|| (lo..hi, line.to_string()))
    });
    let Some((range, line)) = mapping else {
        panic!(
            "requirement 1: the ring at {:#x} is in no mapping of /proc/self/maps; wanted the \
             mmap of the packet socket",
            ring.start
        );
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (perms, path) = (fields[1], fields.get(5).copied().unwrap_or(""));
    assert!(
        range == ring
            && perms.starts_with("rw")
            && perms.ends_with('s')
            && path.starts_with("socket:"),
        "requirement 1: the ring {ring:x?} lies in the mapping `{line}`; wanted exactly that \
         range, rw and shared (`rw-s`), of a `socket:[...]`: mmap(MAP_SHARED) of the packet \
         socket's PACKET_RX_RING"
    );
}

// Requirement 2: waiting for a block sleeps in poll(2). On a quiet ring, next_block(500 ms)
// returns None having used almost no CPU and few context switches: a loop that polls every
// millisecond or spins on the status word fails.
#[test]
fn next_block_sleeps_in_poll_on_a_quiet_ring() {
    labkit::private_network!();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default())
        .expect("requirement 1: Sniffer::open on lo failed");
    let usage = || {
        // SAFETY: getrusage fills the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: u is valid for writes.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
        assert_eq!(rc, 0, "test setup: getrusage failed");
        let cpu_us = |t: libc::timeval| t.tv_sec * 1_000_000 + t.tv_usec;
        (u.ru_nvcsw, cpu_us(u.ru_utime) + cpu_us(u.ru_stime))
    };
    let (switches_before, cpu_before) = usage();
    let block = sniffer
        .next_block(Duration::from_millis(500))
        .expect("requirement 2: next_block failed");
    let got_block = block.is_some();
    drop(block);
    let (switches_after, cpu_after) = usage();
    assert!(
        !got_block,
        "requirement 2: next_block returned a block on a private lo with no traffic"
    );
    let (switches, cpu_ms) = (
        switches_after - switches_before,
        (cpu_after - cpu_before) / 1000,
    );
    assert!(
        switches <= 10 && cpu_ms <= 50,
        "requirement 2: waiting 500 ms for a block took {switches} voluntary context switches \
         and {cpu_ms} ms of CPU; wanted at most 10 and 50 ms: one poll(2) that sleeps for the \
         whole timeout, not a loop that polls or spins"
    );
}

// Requirement 3: blocks go back to the kernel; a small ring wraps many times without drops.
#[test]
fn small_ring_wraps_many_times_with_zero_drops() {
    labkit::private_network!();
    let config = RingConfig {
        block_size: 4096,
        block_count: 4,
        frame_size: 2048,
        block_timeout_ms: 2,
    };
    let mut sniffer = Sniffer::open("lo", &config)
        .expect("requirement 1: Sniffer::open with a 16 KiB ring failed");
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
    assert_eq!(
        seen,
        rounds * per_round,
        "requirement 3: {seen} datagrams captured; wanted the {} sent, each once",
        rounds * per_round
    );
    assert!(
        blocks > 3 * config.block_count as usize,
        "requirement 3: {blocks} blocks read from a ring of {}; wanted more than {}: the ring \
         must wrap more than 3 times",
        config.block_count,
        3 * config.block_count
    );
    let stats = sniffer
        .statistics()
        .expect("requirement 4: PACKET_STATISTICS failed");
    assert!(
        stats.packets >= (rounds * per_round) as u64,
        "requirement 4: the kernel counted {} packets received; wanted at least the {} sent",
        stats.packets,
        rounds * per_round
    );
    assert_eq!(
        stats.drops, 0,
        "requirement 3: the kernel dropped {} packets at a paced rate; wanted 0",
        stats.drops
    );
}

// Requirement 4: statistics.
#[test]
fn statistics_count_received_packets_cumulatively() {
    labkit::private_network!();
    let mut sniffer = Sniffer::open("lo", &RingConfig::default())
        .expect("requirement 1: Sniffer::open on lo failed");
    let (tx, rx) = udp_pair();
    let port = rx.local_addr().unwrap().port();
    let n = rand::rng().random_range(5..30);
    // Every packet the ring delivered (on lo, two copies per datagram), over both rounds.
    let mut captured = 0;
    for round in 1..=2 {
        for _ in 0..n {
            tx.send(&random_payload()).unwrap();
        }
        let mut state = (0, 0); // (host copies of our datagrams, packets of any kind)
        capture(
            &mut sniffer,
            &mut state,
            |(seen, all), p| {
                *seen += usize::from(udp_payload_to(p, port).is_some());
                *all += 1;
            },
            |(seen, _)| *seen >= n,
        );
        captured += state.1;
        let stats = sniffer
            .statistics()
            .expect("requirement 4: PACKET_STATISTICS failed");
        assert!(
            stats.packets >= captured as u64,
            "requirement 4: after round {round} statistics() says {} packets received; wanted at \
             least the {captured} captured since open (the kernel resets its counter on each \
             read: add them up)",
            stats.packets
        );
        assert_eq!(
            stats.drops, 0,
            "requirement 4: statistics() says {} drops; wanted 0",
            stats.drops
        );
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
    let d = lab::decode(&frame)
        .expect("requirement 5: decode returned None for a valid UDP frame; wanted its view");
    assert!(
        (d.src, d.dst)
            == (
                std::net::Ipv4Addr::new(127, 0, 0, 1),
                std::net::Ipv4Addr::new(10, 1, 2, 3)
            ),
        "requirement 5: decoded {} > {}; wanted 127.0.0.1 > 10.1.2.3",
        d.src,
        d.dst
    );
    assert_eq!(
        d.transport,
        Transport::Udp {
            src_port: 40000,
            dst_port: 53
        },
        "requirement 5: decoded transport {:?}; wanted UDP 40000 > 53",
        d.transport
    );
    assert!(
        d.payload == &payload[..],
        "requirement 5: the payload has {} bytes; wanted the {} up to the IPv4 total length (the \
         6 bytes of Ethernet padding are not payload)",
        d.payload.len(),
        payload.len()
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
    labkit::private_network!();
    match Sniffer::open("nosuch7", &RingConfig::default()) {
        Ok(_) => panic!("requirement 1: opening interface nosuch7 succeeded; wanted an error"),
        Err(e) => assert!(
            e.to_string().contains("nosuch7"),
            "requirement 1: the error {e:?} does not name the interface; wanted `nosuch7` in it"
        ),
    }
    let bad = RingConfig {
        block_size: 1000,
        ..RingConfig::default()
    };
    assert!(
        Sniffer::open("lo", &bad).is_err(),
        "requirement 1: a block size of 1000 bytes (not a page multiple) was accepted; wanted an \
         error"
    );
}

// Requirement 6: the program.
#[test]
fn prints_one_line_per_packet_like_tcpdump_and_statistics_on_exit() {
    labkit::private_network!();
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
            "requirement 6: the first line was {first:?}; wanted `capturing on lo`. stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lengths: Vec<usize> = (0..n).map(|i| 10 + i).collect();
    for len in &lengths {
        tx.send(&vec![b'x'; *len]).unwrap();
    }
    let status = labkit::process::wait_timeout(&mut child, WAIT)
        .expect("requirement 6: the sniffer did not exit within 5 s after -c packets");
    let mut out = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        out.push(line);
    }
    assert!(
        status.success(),
        "requirement 6: the sniffer exited with {status}; wanted success. Output: {out:#?}"
    );
    let packet_lines: Vec<&String> = out.iter().filter(|l| l.contains(" IP ")).collect();
    assert_eq!(
        packet_lines.len(),
        n,
        "requirement 6: {} packet lines for {n} datagrams; wanted one per datagram (the \
         outgoing copy on lo skipped): {out:#?}",
        packet_lines.len()
    );
    for (line, len) in packet_lines.iter().zip(&lengths) {
        let expected = format!("IP 127.0.0.1.{sport} > 127.0.0.1.{port}: UDP, length {len}");
        assert!(
            line.contains(&expected),
            "requirement 6: the line {line:?} lacks {expected:?}; wanted it"
        );
    }
    assert!(
        out.iter()
            .any(|l| l.ends_with("packets received by filter")),
        "requirement 6: no `N packets received by filter` line; wanted one: {out:#?}"
    );
    assert!(
        out.iter().any(|l| l == "0 packets dropped by kernel"),
        "requirement 6: no `0 packets dropped by kernel` line; wanted one: {out:#?}"
    );
}
