//! Grader for Raw ICMP Ping and IP_HDRINCL: black-box, through the real binary and real
//! sockets on loopback. Each test runs in a network namespace of its own (`labkit::private_network!`,
//! no sudo needed) and is named after the requirement it checks (see README.md).

use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use labkit::{lab_bin, process::run_command, run};
use rand::RngExt;

const TIMEOUT: Duration = Duration::from_secs(20);

fn ping(args: &[&str]) -> labkit::Output {
    labkit::sys::require_net_raw();
    let out = run(lab_bin!(), args);
    assert!(
        !out.stderr_str().contains("panicked"),
        "the program panicked; wanted a report or an error message:\n{}",
        out.stderr_str()
    );
    out
}

/// Runs the program in a private network namespace (only `lo`, up) after `setup` (shell
/// commands run there first).
fn ping_in_namespace(setup: &str, args: &[&str]) -> labkit::Output {
    labkit::sys::require_net_raw();
    labkit::sys::require_tool("unshare");
    let script = format!("ip link set lo up && {setup} && exec \"$0\" \"$@\"");
    let mut cmd = Command::new("unshare");
    cmd.args(["-n", "sh", "-c", script.as_str(), lab_bin!()]);
    cmd.args(args);
    let out = run_command(cmd, b"", TIMEOUT);
    let stderr = out.stderr_str();
    assert!(
        !stderr.contains("unshare failed") && !stderr.contains("Operation not permitted"),
        "this test needs a private network namespace (root, or run the tests inside \
         `unshare -rn`): {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "the program panicked; wanted a report: {stderr}"
    );
    out
}

/// The `icmp_seq=N` reply lines, as (seq, bytes, ttl, time in ms).
fn replies(stdout: &str) -> Vec<(u16, usize, u8, f64)> {
    stdout
        .lines()
        .filter(|l| l.contains("bytes from") && l.contains("icmp_seq="))
        .map(|l| {
            let field = |name: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no {name} in {l:?}"))
                    .to_string()
            };
            let bytes = l.split_whitespace().next().unwrap().parse().expect("bytes");
            (
                field("icmp_seq=").parse().expect("seq"),
                bytes,
                field("ttl=").parse().expect("ttl"),
                field("time=").parse().expect("time"),
            )
        })
        .collect()
}

fn assert_all_replies(out: &labkit::Output, count: u16) -> Vec<(u16, usize, u8, f64)> {
    let stdout = out.stdout_str();
    assert_eq!(
        out.code(),
        Some(0),
        "requirement 4: exit code when replies came back; wanted 0\n{stdout}{}",
        out.stderr_str()
    );
    let got = replies(&stdout);
    let seqs: Vec<u16> = got.iter().map(|r| r.0).collect();
    assert_eq!(
        seqs,
        (1..=count).collect::<Vec<_>>(),
        "requirements 1 and 3: the icmp_seq of the reply lines; wanted one per request, in \
         order:\n{stdout}"
    );
    assert!(
        !stdout.contains("DUP"),
        "requirement 3: a DUP! line means a packet that was not our reply was taken for one \
         (own request, another ping's reply, a forged or corrupted reply):\n{stdout}"
    );
    let summary = format!("{count} packets transmitted, {count} received, 0% packet loss");
    assert!(
        stdout.contains(&summary),
        "requirement 2: the summary line `{summary}` is missing:\n{stdout}"
    );
    got
}

// Requirement 1: echo requests and replies.
#[test]
fn pings_localhost_and_reports_every_reply() {
    labkit::private_network!();
    let count = rand::rng().random_range(3..8u16);
    let out = ping(&["127.0.0.1", "-c", &count.to_string(), "-i", "0.02"]);
    for (_, bytes, ttl, time) in assert_all_replies(&out, count) {
        assert_eq!(bytes, 64, "requirement 1: 56 data bytes + 8 header bytes");
        assert_eq!(
            ttl, 64,
            "requirement 1: the reply's TTL comes from its IPv4 header"
        );
        assert!(
            (0.0..1000.0).contains(&time),
            "requirement 1: `(0.0..1000.0).contains(&time)` is false"
        );
    }
    assert!(
        out.stdout_str().contains("from 127.0.0.1"),
        "requirement 1: `out.stdout_str().contains(\"from 127.0.0.1\")` is false"
    );
}

// The TTL is read from each reply: in a namespace whose default TTL is not 64, the kernel
// answers with that TTL.
#[test]
fn reports_the_ttl_of_each_reply() {
    labkit::private_network!();
    let ttl = loop {
        let ttl = rand::rng().random_range(2..=255u8);
        if ttl != 64 {
            break ttl;
        }
    };
    let out = ping_in_namespace(
        &format!("sysctl -qw net.ipv4.ip_default_ttl={ttl}"),
        &["127.0.0.1", "-c", "3", "-i", "0.02"],
    );
    for (seq, _, got, _) in assert_all_replies(&out, 3) {
        assert_eq!(
            got, ttl,
            "requirement 1: icmp_seq={seq} printed ttl={got}; the reply's IPv4 header says \
             {ttl} (net.ipv4.ip_default_ttl of this namespace)"
        );
    }
}

#[test]
fn data_size_sets_the_reply_length() {
    labkit::private_network!();
    let size = rand::rng().random_range(0..1400usize);
    let out = ping(&[
        "127.0.0.1",
        "-c",
        "2",
        "-i",
        "0.02",
        "-s",
        &size.to_string(),
    ]);
    for (_, bytes, _, _) in assert_all_replies(&out, 2) {
        assert_eq!(
            bytes,
            size + 8,
            "requirement 1: ICMP length = 8 + data bytes"
        );
    }
}

// Requirement 2: the RTT summary.
#[test]
fn rtt_summary_matches_the_reply_lines() {
    labkit::private_network!();
    let count = rand::rng().random_range(4..8u16);
    let out = ping(&["127.0.0.1", "-c", &count.to_string(), "-i", "0.02"]);
    let times: Vec<f64> = assert_all_replies(&out, count)
        .iter()
        .map(|r| r.3)
        .collect();
    let stdout = out.stdout_str();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rtt min/avg/max"))
        .expect("an `rtt min/avg/max` line");
    let numbers = line
        .split(" = ")
        .nth(1)
        .expect("` = `")
        .trim_end_matches(" ms");
    let stats: Vec<f64> = numbers
        .split('/')
        .map(|n| n.parse().expect("number"))
        .collect();
    let (min, avg, max) = (stats[0], stats[1], stats[2]);
    let close = |a: f64, b: f64| (a - b).abs() <= 0.0015;
    let true_min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let true_max = times.iter().copied().fold(0.0, f64::max);
    let true_avg = times.iter().sum::<f64>() / times.len() as f64;
    assert!(
        close(min, true_min),
        "requirement 2: min {min} but the lines say {true_min}\n{stdout}"
    );
    assert!(
        close(max, true_max),
        "requirement 2: max {max} but the lines say {true_max}\n{stdout}"
    );
    assert!(
        (avg - true_avg).abs() <= 0.003,
        "requirement 2: avg {avg} but the lines say {true_avg}\n{stdout}"
    );
}

// Requirement 3: only our replies count.
#[test]
fn ignores_its_own_requests_and_other_pings() {
    labkit::private_network!();
    let count = rand::rng().random_range(5..9u16);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                run(
                    lab_bin!(),
                    &["127.0.0.1", "-c", &count.to_string(), "-i", "0.02"],
                )
            })
        })
        .collect();
    for handle in handles {
        assert_all_replies(&handle.join().unwrap(), count);
    }
}

/// A raw ICMP socket with a 100 ms receive timeout.
fn icmp_socket() -> OwnedFd {
    // SAFETY: plain socket(2) call; the fd is owned right below.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_ICMP,
        )
    };
    assert!(
        fd >= 0,
        "requirement 3: raw ICMP socket for the grader: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_receive_timeout(&fd, 100_000);
    fd
}

fn set_receive_timeout(fd: &OwnedFd, usec: libc::suseconds_t) {
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: usec,
    };
    // SAFETY: tv is a valid timeval for the length given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

fn send_icmp(fd: &OwnedFd, message: &[u8], to: Ipv4Addr) {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: message and addr are valid for the lengths passed.
    unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            message.as_ptr().cast(),
            message.len(),
            0,
            (&raw const addr).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
}

/// An echo reply built from a request: type 0, the checksum recomputed.
fn reply_to(request: &[u8], ident: u16, seq: u16) -> Vec<u8> {
    let mut reply = request.to_vec();
    reply[0] = 0;
    reply[2..4].copy_from_slice(&[0, 0]);
    reply[4..6].copy_from_slice(&ident.to_be_bytes());
    reply[6..8].copy_from_slice(&seq.to_be_bytes());
    let sum = checksum(&reply);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    reply
}

/// Answers every echo request it sees on loopback with three forged echo replies: one with a
/// wrong checksum, one with a sequence number that was never sent, one with another
/// identifier. Returns how many requests it answered once `stop` is set.
fn forge_replies(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let fd = icmp_socket();
    std::thread::spawn(move || {
        let mut answered = 0;
        let mut buf = [0u8; 65536];
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: buf is valid for writes of its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 28 {
                continue;
            }
            let packet = &buf[..n as usize];
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let icmp = &packet[ihl..];
            if icmp.len() < 8 || icmp[0] != 8 {
                continue; // only echo requests
            }
            let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
            let ident = u16::from_be_bytes([icmp[4], icmp[5]]);
            let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
            let mut bad_sum = reply_to(icmp, ident, seq);
            bad_sum[2] ^= 0x5a;
            send_icmp(&fd, &bad_sum, src);
            send_icmp(&fd, &reply_to(icmp, ident, seq.wrapping_add(1000)), src);
            send_icmp(&fd, &reply_to(icmp, ident ^ 0x8000, seq), src);
            answered += 1;
        }
        answered
    })
}

// Requirement 3: a reply counts only with our identifier, a sequence we sent and a right
// checksum. The grader forges the wrong ones next to the kernel's right ones.
#[test]
fn forged_replies_are_ignored() {
    labkit::private_network!();
    let stop = Arc::new(AtomicBool::new(false));
    let forger = forge_replies(stop.clone());
    let count = rand::rng().random_range(3..7u16);
    let out = ping(&["127.0.0.1", "-c", &count.to_string(), "-i", "0.05"]);
    stop.store(true, Ordering::SeqCst);
    let answered = forger.join().expect("the forging thread");
    assert!(
        answered >= usize::from(count),
        "requirement 3: the grader's forger saw {answered} echo requests of {count}: it cannot test anything"
    );
    for (seq, bytes, _, _) in assert_all_replies(&out, count) {
        assert_eq!(
            bytes, 64,
            "requirement 3: icmp_seq={seq}: reply length {bytes}; wanted 64 (56 + 8)"
        );
    }
}

// Requirement 4: loss.
#[test]
fn reports_total_loss_when_nobody_answers() {
    labkit::private_network!();
    // A private network namespace where the kernel ignores echo requests: every request is lost.
    let out = ping_in_namespace(
        "sysctl -qw net.ipv4.icmp_echo_ignore_all=1",
        &["127.0.0.1", "-c", "3", "-i", "0.05", "-W", "0.3"],
    );
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    assert!(
        stdout.contains("3 packets transmitted, 0 received, 100% packet loss"),
        "requirement 4: 3 requests, nobody answers: the summary must say \
         `3 packets transmitted, 0 received, 100% packet loss`:\n{stdout}{stderr}"
    );
    assert!(
        replies(&stdout).is_empty(),
        "requirement 4: nobody answered, yet reply lines were printed (own requests taken for \
         replies?):\n{stdout}"
    );
    assert_eq!(
        out.code(),
        Some(1),
        "requirement 4: exit code when no reply came back; wanted 1, as ping(8)"
    );
}

// Requirement 5: IP_HDRINCL.

/// A raw IPPROTO_UDP socket: the kernel gives it a copy of every UDP datagram, IPv4 header
/// included, so the grader sees exactly what the program put on the wire.
fn udp_tap() -> OwnedFd {
    // SAFETY: plain socket(2) call; the fd is owned right below.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::IPPROTO_UDP,
        )
    };
    assert!(
        fd >= 0,
        "requirement 5: raw UDP socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: fd is fresh and owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 200_000,
    };
    // SAFETY: tv is a valid timeval for the length given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    fd
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn random_text() -> String {
    let mut rng = rand::rng();
    let len = rng.random_range(1..200);
    (0..len)
        .map(|_| char::from(rng.random_range(b'a'..=b'z')))
        .collect()
}

fn send_udp(port: u16, sport: u16, text: &str) -> labkit::Output {
    ping(&[
        "--udp",
        &format!("127.0.0.1:{port}"),
        "--sport",
        &sport.to_string(),
        text,
    ])
}

#[test]
fn hand_built_udp_datagram_arrives_intact() {
    labkit::private_network!();
    let receiver = labkit::net::udp_socket();
    let port = receiver.local_addr().unwrap().port();
    let sport = rand::rng().random_range(20_000..60_000u16);
    let text = random_text();
    let out = send_udp(port, sport, &text);
    assert_eq!(
        out.code(),
        Some(0),
        "requirement 5: exit code of --udp; wanted 0; stderr: {}",
        out.stderr_str()
    );
    let mut buf = [0u8; 2048];
    let (n, from) = receiver
        .recv_from(&mut buf)
        .expect("the datagram never arrived (a wrong UDP or IP field?)");
    assert_eq!(
        &buf[..n],
        text.as_bytes(),
        "requirement 5: `&buf[..n]` (left) must equal `text.as_bytes()` (right)"
    );
    assert_eq!(
        from,
        format!("127.0.0.1:{sport}").parse().unwrap(),
        "requirement 5: source port from --sport"
    );
}

#[test]
fn kernel_fills_the_source_and_the_udp_checksum_is_right() {
    labkit::private_network!();
    let tap = udp_tap();
    let receiver: UdpSocket = labkit::net::udp_socket();
    let port = receiver.local_addr().unwrap().port();
    let sport = rand::rng().random_range(20_000..60_000u16);
    let text = random_text();
    let out = send_udp(port, sport, &text);
    assert_eq!(
        out.code(),
        Some(0),
        "requirement 5: exit code of --udp; wanted 0; stderr: {}",
        out.stderr_str()
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 65536];
    let packet = loop {
        assert!(
            Instant::now() < deadline,
            "requirement 5: the datagram to port {port} never showed on the wire"
        );
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(tap.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 28 {
            continue;
        }
        let p = &buf[..n as usize];
        let ihl = usize::from(p[0] & 0x0f) * 4;
        if p.len() >= ihl + 8 && u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]) == port {
            break p.to_vec();
        }
    };
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    assert_eq!(
        Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        Ipv4Addr::LOCALHOST,
        "requirement 5: source filled in"
    );
    assert_eq!(
        checksum(&packet[..ihl]),
        0,
        "requirement 5: IPv4 header checksum (the kernel computes it)"
    );
    let udp = &packet[ihl..];
    assert_ne!(
        u16::from_be_bytes([udp[6], udp[7]]),
        0,
        "requirement 5: compute the UDP checksum, do not send 0"
    );
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&packet[12..20]);
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&(udp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(udp);
    assert_eq!(
        checksum(&pseudo),
        0,
        "requirement 5: UDP checksum over the pseudo-header with the real source"
    );
    assert_eq!(
        &udp[8..],
        text.as_bytes(),
        "requirement 5: `&udp[8..]` (left) must equal `text.as_bytes()` (right)"
    );
    let mut got = [0u8; 512];
    assert_eq!(
        receiver.recv(&mut got).expect("delivered"),
        text.len(),
        "requirement 5: `receiver.recv(&mut got).expect(\"delivered\")` (left) must equal `text.len()` (right)"
    );
}

// Requirement 6: errors.
#[test]
fn explains_missing_cap_net_raw() {
    labkit::private_network!();
    let out = if labkit::sys::is_root() {
        // Drop CAP_NET_RAW from the bounding and inheritable sets: after exec even root lacks
        // it, exactly what an ordinary user sees (works inside `unshare -rn` too).
        let setpriv = labkit::sys::require_tool("setpriv");
        let mut cmd = Command::new(setpriv);
        cmd.args([
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            lab_bin!(),
            "127.0.0.1",
            "-c",
            "1",
        ]);
        run_command(cmd, b"", TIMEOUT)
    } else {
        run(lab_bin!(), &["127.0.0.1", "-c", "1"])
    };
    let stderr = out.stderr_str();
    assert!(
        !stderr.contains("panicked"),
        "requirement 6: the program panicked without CAP_NET_RAW; wanted a message: {stderr}"
    );
    assert_eq!(
        out.code(),
        Some(2),
        "requirement 6: exit code 2; stderr: {stderr}"
    );
    assert!(
        stderr.contains("CAP_NET_RAW"),
        "requirement 6: name the missing capability: {stderr}"
    );
}

#[test]
fn rejects_bad_arguments_and_accepts_good_ones() {
    labkit::private_network!();
    let cases: HashMap<&str, Vec<&str>> = HashMap::from([
        ("no target", vec![]),
        ("bad count", vec!["127.0.0.1", "-c", "many"]),
        ("bad address", vec!["300.1.2.3"]),
        ("unknown option", vec!["127.0.0.1", "-x"]),
    ]);
    for (what, args) in cases {
        let out = run(lab_bin!(), &args);
        let stderr = out.stderr_str();
        assert!(
            !stderr.contains("panicked"),
            "requirement 6: {what}: the program panicked; wanted the usage: {stderr}"
        );
        assert_eq!(
            out.code(),
            Some(2),
            "requirement 6: {what}: exit code 2; stderr: {stderr}"
        );
        assert!(
            stderr.to_lowercase().contains("usage"),
            "requirement 6: {what}: print the usage: {stderr}"
        );
    }
    assert_all_replies(&ping(&["-c", "1", "-W", "2", "127.0.0.1"]), 1);
}
