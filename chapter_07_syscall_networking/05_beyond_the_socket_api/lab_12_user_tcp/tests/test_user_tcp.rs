//! Grader for A Minimal TCP in User Space over TUN: black-box. Each test runs in a network
//! namespace of its own (`labkit::private_network!`, no sudo), starts the lab's binary on a
//! TUN device with a random /24 of 10.0.0.0/8, and uses the kernel's own TCP (`TcpStream`) as
//! the peer. Every address lives only inside that namespace.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::Duration;

use labkit::{Server, lab_bin};
use rand::RngExt;

/// Deadline of one read, write or connect: generous for a loaded 2-core machine.
const IO: Duration = Duration::from_secs(30);

/// A random stack address and port, and a random TUN name.
fn start(extra: &[&str]) -> Server {
    let mut rng = rand::rng();
    let addr = Ipv4Addr::new(10, rng.random_range(1..250), rng.random_range(0..250), 2);
    let port: u16 = rng.random_range(1024..60000);
    let tun = format!("utcp{}", rng.random_range(0..100_000u32));
    let mut cmd = Command::new(lab_bin!());
    cmd.args([
        "--tun",
        &tun,
        "--addr",
        &addr.to_string(),
        "--port",
        &port.to_string(),
    ]);
    cmd.args(extra);
    let server = Server::start_command(cmd);
    assert_eq!(
        server.addr(),
        SocketAddr::from((addr, port)),
        "requirement 1: the `listening on` line names --addr and --port"
    );
    server
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, IO).unwrap_or_else(|e| {
        panic!("requirement 1: the kernel's TCP could not connect to {addr} (handshake): {e}")
    });
    stream.set_read_timeout(Some(IO)).unwrap();
    stream.set_write_timeout(Some(IO)).unwrap();
    stream
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random()).collect()
}

/// Sends `data` from a thread (the window is smaller than `data`: writing all before reading
/// would deadlock), reads `want` bytes back, then expects EOF (the server's FIN).
fn echo(stream: TcpStream, data: Vec<u8>, close_write: bool, want: usize, req: u32) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        writer.write_all(&data)?;
        if close_write {
            writer.shutdown(Shutdown::Write)?;
        }
        Ok::<(), std::io::Error>(())
    });
    let mut got = Vec::with_capacity(want);
    let mut reader = stream;
    let mut buf = [0u8; 16384];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "requirement {req}: no echo and no FIN for {IO:?} after {} of {want} bytes (lost \
                 segments never sent again? a FIN never sent?)",
                got.len()
            ),
            Err(e) => panic!(
                "requirement {req}: reading the echo failed after {} of {want} bytes: {e}",
                got.len()
            ),
        }
    }
    let sent = sender.join().unwrap();
    assert!(
        sent.is_ok(),
        "requirement {req}: the kernel could not send all the bytes: {sent:?}"
    );
    got
}

fn assert_same(got: &[u8], want: &[u8], req: u32) {
    assert_eq!(
        got.len(),
        want.len(),
        "requirement {req}: echoed {} bytes before EOF, sent {}",
        got.len(),
        want.len()
    );
    let first = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        first.is_none(),
        "requirement {req}: the echo differs from what was sent at byte {first:?} (bytes taken \
         out of order?)"
    );
}

/// Stops the server with SIGTERM and returns the count it printed for `label`.
fn final_count(server: &mut Server, label: &str) -> u64 {
    let status = server.terminate(IO);
    assert!(
        status.is_some_and(|s| s.success()),
        "requirement 6: SIGTERM must stop the program with exit code 0 (got {status:?})\n{}",
        server.output()
    );
    let out = server.output();
    out.lines()
        .find_map(|l| l.strip_prefix(label)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("requirement 6: no `{label} N` line on exit:\n{out}"))
}

// Requirement 1 and 2: handshake, data both ways, larger than the window; the peer closes first.
#[test]
fn echoes_random_bytes_byte_exact() {
    labkit::private_network!();
    let server = start(&[]);
    let data = random_bytes(rand::rng().random_range(60_000..200_000));
    let got = echo(connect(server.addr()), data.clone(), true, data.len(), 2);
    assert_same(&got, &data, 2);
}

// Requirement 3: several connections one after the other (more than a table of 8 holds, so
// closed ones must be freed) and several at once.
#[test]
fn serves_sequential_and_concurrent_connections() {
    labkit::private_network!();
    let server = start(&[]);
    for _ in 0..12 {
        let data = random_bytes(rand::rng().random_range(1_000..20_000));
        let got = echo(connect(server.addr()), data.clone(), true, data.len(), 3);
        assert_same(&got, &data, 3);
    }
    let addr = server.addr();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let data = random_bytes(rand::rng().random_range(20_000..60_000));
                let got = echo(connect(addr), data.clone(), true, data.len(), 3);
                assert_same(&got, &data, 3);
            })
        })
        .collect();
    for client in clients {
        client
            .join()
            .expect("requirement 3: a concurrent connection failed");
    }
}

// Requirement 4: a SYN to a port nobody listens on, and a segment of no connection, get RST.
#[test]
fn closed_port_is_refused_with_rst() {
    labkit::private_network!();
    let server = start(&[]);
    let mut closed = server.addr();
    closed.set_port(if closed.port() == 1024 {
        1025
    } else {
        closed.port() - 1
    });
    match TcpStream::connect_timeout(&closed, Duration::from_secs(5)) {
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::ConnectionRefused,
            "requirement 4: connecting to closed port {closed} must be refused at once (an RST); \
             got {e}"
        ),
        Ok(_) => panic!("requirement 4: connected to {closed}, where nobody listens"),
    }
}

// Requirement 5: the server closes first (--close-after), the peer reads EOF, then closes too;
// more connections than the table holds, so each must be freed after both FINs.
#[test]
fn server_closes_first_after_close_after_bytes() {
    labkit::private_network!();
    let limit = rand::rng().random_range(5_000..40_000usize);
    let server = start(&["--close-after", &limit.to_string()]);
    for _ in 0..10 {
        let data = random_bytes(limit);
        let got = echo(connect(server.addr()), data.clone(), false, limit, 5);
        assert_same(&got, &data, 5);
    }
}

// Requirement 6 and 7: lost segments in both directions (the documented test hook) are
// recovered: retransmission after a timeout, out-of-order bytes dropped and asked again.
#[test]
fn recovers_lost_segments_in_both_directions() {
    labkit::private_network!();
    let every = rand::rng().random_range(15..25u32);
    let mut server = start(&["--drop-every", &every.to_string()]);
    let data = random_bytes(rand::rng().random_range(50_000..80_000));
    let got = echo(connect(server.addr()), data.clone(), true, data.len(), 6);
    assert_same(&got, &data, 6);
    let retransmitted = final_count(&mut server, "retransmitted segments:");
    assert!(
        retransmitted > 0,
        "requirement 6: segments were lost (every {every}th) yet none was retransmitted"
    );
}

// Requirement 8: no heap allocation once `listening on` is printed, whatever the traffic.
#[test]
fn no_allocation_after_start_up() {
    labkit::private_network!();
    let mut server = start(&["--drop-every", "20"]);
    for _ in 0..3 {
        let data = random_bytes(rand::rng().random_range(10_000..40_000));
        let got = echo(connect(server.addr()), data.clone(), true, data.len(), 8);
        assert_same(&got, &data, 8);
    }
    let allocations = final_count(&mut server, "allocations after start-up:");
    assert_eq!(
        allocations, 0,
        "requirement 8: the program allocated {allocations} times after start-up; every buffer \
         must be fixed before `listening on`"
    );
}
