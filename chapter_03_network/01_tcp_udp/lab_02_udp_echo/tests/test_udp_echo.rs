//! Grader for the UDP echo lab: the server black-box (the binary over real UDP sockets), the
//! client white-box (`EchoClient` against the real server and against fake servers that lose,
//! delay and duplicate on purpose), and the client command black-box.
//! Each test is named after the requirement it checks (see README.md).

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use labkit::net::udp_socket;
use labkit::{Server, lab_bin};
use rand::RngExt;

labkit::lab_mod!(lab);
use lab::{EchoClient, EchoError, HEADER_LEN, MAX_DATAGRAM, MAX_PAYLOAD, RetryPolicy};

/// Starts `udp_echo server --addr 127.0.0.1:0 extra...`.
fn start_server(extra: &[&str]) -> Server {
    let mut cmd = Command::new(lab_bin!());
    cmd.args(["server", "--addr", "127.0.0.1:0"]).args(extra);
    Server::start_command(cmd)
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random()).collect()
}

/// A socket that plays the server in client tests: the test decides what it answers.
fn fake_server() -> (UdpSocket, SocketAddr) {
    let socket = udp_socket();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

fn policy(first_ms: u64, attempts: u32) -> RetryPolicy {
    RetryPolicy {
        first_timeout: Duration::from_millis(first_ms),
        max_attempts: attempts,
    }
}

fn seq_of(datagram: &[u8]) -> u64 {
    assert!(
        datagram.len() >= HEADER_LEN,
        "requirement 4: a request of {} bytes; wanted at least the 8-byte sequence number",
        datagram.len()
    );
    u64::from_be_bytes(datagram[..HEADER_LEN].try_into().unwrap())
}

// Requirement 1: every datagram comes back whole, as one datagram, whatever its size from 0
// to 65,507 bytes.
#[test]
fn echoes_datagrams_of_every_size_byte_exact() {
    let server = start_server(&[]);
    let socket = udp_socket();
    let mut sizes = vec![
        0,
        1,
        7,
        8,
        512,
        1472,
        1473,
        4096,
        9000,
        32768,
        65_000,
        MAX_DATAGRAM,
    ];
    let mut rng = rand::rng();
    sizes.extend((0..20).map(|_| rng.random_range(0..=MAX_DATAGRAM)));
    let mut buf = vec![0u8; 70_000];
    for size in sizes {
        let payload = random_bytes(size);
        socket.send_to(&payload, server.addr()).expect("send");
        let (len, from) = socket
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("requirement 1: no echo of a {size}-byte datagram: {e}"));
        assert!(
            from == server.addr(),
            "requirement 1: the echo came from {from}; wanted the server's address {}",
            server.addr()
        );
        assert!(
            len == size,
            "requirement 1: a {size}-byte datagram came back as {len} bytes; wanted {size} (is \
             the receive buffer as large as the largest datagram?)"
        );
        if let Some(at) = (0..len).find(|&i| buf[i] != payload[i]) {
            panic!("requirement 1: the {size}-byte echo differs from what was sent at byte {at}");
        }
    }
}

// Requirement 1: a burst of datagrams comes back as the same datagrams, never merged or split.
#[test]
fn keeps_datagram_boundaries_in_a_burst() {
    let server = start_server(&[]);
    let socket = udp_socket();
    let mut rng = rand::rng();
    let sent: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            let mut d = random_bytes(rng.random_range(1..1200));
            d[0] = i; // a tag, so the test knows which one came back
            d
        })
        .collect();
    for d in &sent {
        socket.send_to(d, server.addr()).expect("send");
    }
    let mut buf = vec![0u8; 70_000];
    let mut seen = BTreeSet::new();
    while seen.len() < sent.len() {
        let len = socket.recv(&mut buf).unwrap_or_else(|e| {
            panic!(
                "requirement 1: got {} of {} echoes of a burst; wanted all: {e}",
                seen.len(),
                sent.len()
            )
        });
        let tag = buf[0] as usize;
        assert!(
            len > 0 && tag < sent.len() && buf[..len] == sent[tag][..],
            "requirement 1: an echo of {len} bytes that is not exactly one of the datagrams sent \
             (datagrams merged or split?)"
        );
        seen.insert(tag);
    }
}

// Requirement 2: `--drop-every K` drops exactly the K-th, 2K-th... datagram received.
#[test]
fn drops_every_kth_datagram_in_lossy_mode() {
    let k: u8 = rand::rng().random_range(2..6);
    let server = start_server(&["--drop-every", &k.to_string()]);
    let socket = udp_socket();
    let total = 4 * k;
    let mut buf = [0u8; 64];
    // One at a time, so the server receives them in our order.
    let mut echoed = BTreeSet::new();
    for i in 1..=total {
        socket.send_to(&[i], server.addr()).expect("send");
        if i % k != 0 {
            let len = socket.recv(&mut buf).unwrap_or_else(|e| {
                panic!("requirement 2: datagram {i} of --drop-every {k} got no echo: {e}")
            });
            assert!(
                buf[..len] == [i],
                "requirement 2: the echo of datagram {i} (--drop-every {k}) was {:?}; wanted [{i}] \
                 (a wrong datagram was dropped?)",
                &buf[..len.min(8)]
            );
            echoed.insert(i);
        }
    }
    // The dropped ones never come back, late or otherwise.
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    if let Ok(len) = socket.recv(&mut buf) {
        panic!(
            "requirement 2: --drop-every {k}: datagram {:?} was echoed but should have been \
             dropped",
            &buf[..len.min(8)]
        );
    }
    assert!(
        echoed.len() == usize::from(total - 4),
        "requirement 2: {} of {total} datagrams echoed with --drop-every {k}; wanted {}",
        echoed.len(),
        total - 4
    );
}

// Requirement 3: the client gets the echo of each request, of any size up to the limit.
#[test]
fn client_gets_the_echo_of_each_request() {
    let server = start_server(&[]);
    let mut client = EchoClient::connect(server.addr(), policy(500, 3)).expect("connect");
    let mut rng = rand::rng();
    let mut last_seq = None;
    for i in 0..40 {
        let len = match i {
            0 => 0,
            1 => MAX_PAYLOAD,
            _ => rng.random_range(0..3000),
        };
        let payload = random_bytes(len);
        let reply = client
            .request(&payload)
            .unwrap_or_else(|e| panic!("requirement 3: request {i} of {len} bytes failed: {e}"));
        assert!(
            reply.payload == payload,
            "requirement 3: request {i}: an echo of {} bytes came back; wanted the {len} bytes \
             sent",
            reply.payload.len()
        );
        assert!(
            reply.attempts == 1,
            "requirement 3: request {i} took {} attempts; a lossless server answers the first",
            reply.attempts
        );
        if let Some(last) = last_seq {
            assert!(
                reply.seq > last,
                "requirement 4: request {i} has sequence number {} after {last}; wanted them \
                 increasing",
                reply.seq
            );
        }
        last_seq = Some(reply.seq);
    }
}

// Requirement 3: a payload over 65,499 bytes is refused before anything is sent.
#[test]
fn client_refuses_payloads_over_the_limit() {
    let (fake, addr) = fake_server();
    let mut client = EchoClient::connect(addr, policy(100, 2)).expect("connect");
    match client.request(&vec![7u8; MAX_PAYLOAD + 1]) {
        Err(EchoError::TooLarge { len }) => assert!(
            len == MAX_PAYLOAD + 1,
            "requirement 3: TooLarge says {len} bytes; wanted {}",
            MAX_PAYLOAD + 1
        ),
        other => panic!(
            "requirement 3: a payload of {} bytes gave {:?}; wanted EchoError::TooLarge",
            MAX_PAYLOAD + 1,
            other.map(|r| r.payload.len())
        ),
    }
    fake.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        fake.recv(&mut [0u8; 16]).is_err(),
        "requirement 3: a datagram was sent for a payload that is too large; wanted nothing sent"
    );
}

// Requirement 4: each request carries an 8-byte big-endian sequence number then the payload;
// retries resend the same bytes, the next request uses the next number.
#[test]
fn client_numbers_requests_and_retries_with_the_same_bytes() {
    let (fake, addr) = fake_server();
    let mut client = EchoClient::connect(addr, policy(150, 2)).expect("connect");
    let first = random_bytes(100);
    let second = random_bytes(50);
    let server = thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        let mut got = Vec::new();
        // Request 1: ignore the first attempt, answer the second.
        for answer in [false, true] {
            let (len, from) = fake.recv_from(&mut buf).expect("a request");
            got.push(buf[..len].to_vec());
            if answer {
                fake.send_to(&buf[..len], from).unwrap();
            }
        }
        // Request 2: answer at once.
        let (len, from) = fake.recv_from(&mut buf).expect("a request");
        got.push(buf[..len].to_vec());
        fake.send_to(&buf[..len], from).unwrap();
        got
    });
    let reply = client.request(&first).unwrap_or_else(|e| {
        panic!("requirement 4: request 1, answered on its 2nd attempt, failed: {e}")
    });
    assert!(
        reply.attempts == 2 && reply.payload == first,
        "requirement 4: request 1 returned {} bytes after {} attempts; wanted its {} bytes \
         after 2 (the fake server answers the retry with the retry's own bytes)",
        reply.payload.len(),
        reply.attempts,
        first.len()
    );
    let reply2 = client
        .request(&second)
        .unwrap_or_else(|e| panic!("requirement 4: request 2 failed: {e}"));
    assert!(
        reply2.payload == second,
        "requirement 4: request 2 returned {} bytes; wanted its {} bytes",
        reply2.payload.len(),
        second.len()
    );
    let got = server.join().expect("fake server");

    assert!(
        got[0] == got[1],
        "requirement 4: the retry of request 1 differs from its first attempt (sequence numbers \
         {} and {}); wanted exactly the same datagram",
        seq_of(&got[0]),
        seq_of(&got[1])
    );
    assert!(
        got[0][HEADER_LEN..] == first[..] && got[2][HEADER_LEN..] == second[..],
        "requirement 4: the payload must follow the 8-byte header: requests of {} and {} bytes \
         for payloads of {} and {}",
        got[0].len(),
        got[2].len(),
        first.len(),
        second.len()
    );
    assert!(
        seq_of(&got[0]) == reply.seq,
        "requirement 4: Reply::seq is {}; wanted the number sent, {}",
        reply.seq,
        seq_of(&got[0])
    );
    assert!(
        seq_of(&got[2]) == seq_of(&got[0]) + 1,
        "requirement 4: request 2 has sequence number {} after {}; wanted the next number",
        seq_of(&got[2]),
        seq_of(&got[0])
    );
}

// Requirement 5: stale duplicates (late echoes of an earlier request), runts and corrupt
// echoes are dropped; the client returns the echo of the request it is waiting for.
#[test]
fn client_discards_stale_duplicates_and_corrupt_replies() {
    let (fake, addr) = fake_server();
    let mut client = EchoClient::connect(addr, policy(300, 4)).expect("connect");
    let first = random_bytes(30);
    let second = random_bytes(30);
    let server = thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        // Request 1: the first attempt is "slow": it is answered only after the retry came,
        // so the client gets two identical echoes, and the second one is still queued when
        // request 2 starts.
        let (len, from) = fake.recv_from(&mut buf).expect("request 1");
        let one = buf[..len].to_vec();
        let (len, _) = fake.recv_from(&mut buf).expect("request 1, retry");
        assert!(
            buf[..len] == one[..],
            "requirement 4: the retry of request 1 differs from its first attempt"
        );
        fake.send_to(&one, from).unwrap();
        fake.send_to(&one, from).unwrap();
        // Request 2: junk first, then the echo.
        let (len, from) = fake.recv_from(&mut buf).expect("request 2");
        let two = buf[..len].to_vec();
        let mut corrupt = two.clone();
        *corrupt.last_mut().unwrap() ^= 0xff;
        fake.send_to(&one, from).unwrap(); // a third copy of the stale echo
        fake.send_to(&[1, 2, 3], from).unwrap(); // too short to hold a sequence number
        fake.send_to(&corrupt, from).unwrap(); // right number, damaged payload
        let mut future = two.clone();
        future[..HEADER_LEN].copy_from_slice(&(seq_of(&two) + 5).to_be_bytes());
        fake.send_to(&future, from).unwrap(); // a number never sent
        fake.send_to(&two, from).unwrap();
    });
    let reply = client
        .request(&first)
        .unwrap_or_else(|e| panic!("requirement 5: request 1 failed: {e}"));
    assert!(
        reply.payload == first,
        "requirement 5: request 1 returned {} bytes; wanted its own echo",
        reply.payload.len()
    );
    let reply = client.request(&second).unwrap_or_else(|e| {
        panic!("requirement 5: request 2 failed after junk and a late duplicate: {e}")
    });
    assert!(
        reply.payload == second,
        "requirement 5: request 2 returned {}; wanted its own echo",
        if reply.payload == first {
            "the stale echo of request 1".to_string()
        } else if reply.payload.len() == second.len() {
            "a damaged copy of its echo".to_string()
        } else {
            format!("{} bytes that are not its echo", reply.payload.len())
        }
    );
    assert!(
        reply.attempts == 1,
        "requirement 5: request 2 took {} attempts; junk before the echo must not cost one",
        reply.attempts
    );
    server.join().expect("fake server");
}

// Requirement 5: a reply from any address but the server's is ignored, even a perfect copy.
#[test]
fn client_ignores_replies_from_other_addresses() {
    let (fake, addr) = fake_server();
    let stranger = udp_socket();
    let mut client = EchoClient::connect(addr, policy(80, 2)).expect("connect");
    let client_addr = client.local_addr().expect("local_addr");
    let forger = thread::spawn(move || {
        let mut buf = vec![0u8; 70_000];
        // The real server stays silent; a stranger echoes every attempt to the client.
        for _ in 0..2 {
            let (len, _) = fake.recv_from(&mut buf).expect("a request");
            stranger.send_to(&buf[..len], client_addr).unwrap();
        }
    });
    let result = client.request(b"who answers?");
    forger.join().expect("forger thread");
    match result {
        Err(EchoError::NoReply { attempts: 2, .. }) => {}
        other => panic!(
            "requirement 5: only the server may answer (connect the socket): got {:?}; wanted \
             NoReply after 2 attempts",
            other.map(|r| format!("a reply of {} bytes", r.payload.len()))
        ),
    }
}

// Requirement 6: waits double from one attempt to the next, and after the last attempt the
// client stops with NoReply naming the server and the number of attempts.
#[test]
fn client_backs_off_exponentially_then_gives_up() {
    let (fake, addr) = fake_server();
    let mut client = EchoClient::connect(addr, policy(60, 4)).expect("connect");
    let listener = thread::spawn(move || {
        // Long enough to see a 5th attempt if there were one.
        fake.set_read_timeout(Some(Duration::from_millis(1500)))
            .unwrap();
        let mut arrivals = Vec::new();
        let mut buf = vec![0u8; 70_000];
        while let Ok(len) = fake.recv(&mut buf) {
            arrivals.push((Instant::now(), buf[..len].to_vec()));
        }
        arrivals
    });
    let started = Instant::now();
    let result = client.request(b"anyone?");
    let elapsed = started.elapsed();
    let arrivals = listener.join().expect("listener thread");

    let err = match result {
        Err(e @ EchoError::NoReply { attempts: 4, .. }) => e,
        other => panic!(
            "requirement 6: a silent server gave {:?}; wanted NoReply after 4 attempts",
            other.map(|r| r.attempts)
        ),
    };
    let message = err.to_string();
    assert!(
        message.contains('4') && message.contains(&addr.to_string()),
        "requirement 6: the error {message:?} must name the 4 attempts and the server {addr}"
    );
    assert!(
        arrivals.len() == 4,
        "requirement 6: {} datagrams reached the server; wanted exactly max_attempts, 4",
        arrivals.len()
    );
    assert!(
        arrivals.iter().all(|(_, d)| *d == arrivals[0].1),
        "requirement 4: the 4 attempts did not all send the same datagram"
    );
    // 60 + 120 + 240 + 480 ms of waiting: at least the sum of the timeouts.
    assert!(
        elapsed >= Duration::from_millis(800),
        "requirement 6: gave up after {elapsed:?}; wanted at least 60+120+240+480 ms of waiting"
    );
    // A ratio, not a duration: the wait before the 4th attempt is 4x the first wait.
    let gap = |i: usize| arrivals[i + 1].0 - arrivals[i].0;
    assert!(
        gap(2) >= gap(0) * 2,
        "requirement 6: the wait before the 4th attempt ({:?}) is not about 4x the wait \
         before the 2nd ({:?}); wanted each retry to wait twice as long as the one before",
        gap(2),
        gap(0)
    );
}

// Requirement 2 and 6: through a server that drops every other datagram, every request
// still succeeds, thanks to retries.
#[test]
fn client_retries_through_a_lossy_server() {
    let server = start_server(&["--drop-every", "2"]);
    let mut client = EchoClient::connect(server.addr(), policy(50, 6)).expect("connect");
    let mut attempts = 0;
    for i in 0..20 {
        let payload = random_bytes(rand::rng().random_range(1..2000));
        let reply = client.request(&payload).unwrap_or_else(|e| {
            panic!("requirement 6: request {i} through a lossy server failed: {e}")
        });
        assert!(
            reply.payload == payload,
            "requirement 6: request {i} through a lossy server returned {} bytes; wanted its \
             {} bytes",
            reply.payload.len(),
            payload.len()
        );
        attempts += reply.attempts;
    }
    assert!(
        attempts >= 30,
        "requirement 2: half the datagrams are dropped, yet 20 requests took only {attempts} \
         attempts; wanted at least 30"
    );
}

// Requirement 7: `udp_echo client` prints each echo on its own line; when the server never
// answers it exits with code 1 and a one-line error naming the server and the attempts.
#[test]
fn client_command_prints_echoes_and_fails_clearly() {
    let server = start_server(&[]);
    let words = [
        format!("hello{}", rand::rng().random_range(0..1000)),
        "world".into(),
    ];
    let addr = server.addr().to_string();
    let out = labkit::run(
        lab_bin!(),
        &["client", "--addr", &addr, &words[0], &words[1]],
    );
    assert!(
        out.code() == Some(0),
        "requirement 7: the client exited with {:?}; wanted 0 (stderr: {})",
        out.code(),
        out.stderr_str()
    );
    let want = format!("{}\n{}\n", words[0], words[1]);
    assert!(
        out.stdout_str() == want,
        "requirement 7: the client printed {:?}; wanted {want:?}",
        out.stdout_str()
    );

    let (_silent, silent_addr) = fake_server();
    let silent_addr = silent_addr.to_string();
    let out = labkit::run(
        lab_bin!(),
        &[
            "client",
            "--addr",
            &silent_addr,
            "--timeout-ms",
            "30",
            "--attempts",
            "3",
            "hi",
        ],
    );
    let stderr = out.stderr_str();
    assert!(
        out.code() == Some(1),
        "requirement 7: with no reply the client exited with {:?}; wanted 1 (stderr: {stderr})",
        out.code()
    );
    assert!(
        !stderr.contains("panicked"),
        "requirement 7: the client panicked: {stderr}"
    );
    assert!(
        stderr.contains("3 attempts") && stderr.contains(&silent_addr),
        "requirement 7: stderr was {stderr:?}; wanted the server and the 3 attempts named"
    );
}

// Requirement 8: bad arguments and a port already in use give a clear error, never a panic.
#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    let taken = udp_socket();
    let taken = taken.local_addr().unwrap().to_string();
    let cases: [&[&str]; 5] = [
        &["server", "--addr", "not-an-address"],
        &["server", "--addr", &taken],
        &["server", "--addr", "127.0.0.1:0", "--drop-every", "0"],
        &["client", "hello"],
        &["sideways"],
    ];
    for args in cases {
        let out = labkit::run(lab_bin!(), args);
        let stderr = out.stderr_str();
        assert!(
            !stderr.contains("panicked"),
            "requirement 8: {args:?} panicked: {stderr}"
        );
        assert!(
            matches!(out.code(), Some(code) if code != 0),
            "requirement 8: {args:?} exited with {:?}; wanted a non-zero code",
            out.status
        );
        assert!(
            !stderr.trim().is_empty(),
            "requirement 8: {args:?} printed nothing on stderr; wanted what is wrong"
        );
    }
}
