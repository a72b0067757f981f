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
        "a request carries an 8-byte sequence number, got {} bytes",
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
            .unwrap_or_else(|e| panic!("no echo of a {size}-byte datagram: {e}"));
        assert_eq!(
            from,
            server.addr(),
            "the echo comes from the server's address"
        );
        assert_eq!(len, size, "a {size}-byte datagram came back as {len} bytes");
        assert!(buf[..len] == payload[..], "the {size}-byte echo differs");
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
        let len = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("got {} of {} echoes: {e}", seen.len(), sent.len()));
        let tag = buf[0] as usize;
        assert!(
            tag < sent.len() && buf[..len] == sent[tag][..],
            "an echo that is not exactly one of the datagrams sent ({len} bytes)"
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
            let len = socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i} of --drop-every {k} got no echo: {e}"));
            assert_eq!(&buf[..len], &[i], "the echo of datagram {i}");
            echoed.insert(i);
        }
    }
    // The dropped ones never come back, late or otherwise.
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    if let Ok(len) = socket.recv(&mut buf) {
        panic!(
            "--drop-every {k}: datagram {:?} was echoed but should have been dropped",
            &buf[..len]
        );
    }
    assert_eq!(echoed.len(), usize::from(total - 4));
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
        let reply = client.request(&payload).expect("request");
        assert_eq!(reply.payload, payload, "request {i}: the echoed payload");
        assert_eq!(
            reply.attempts, 1,
            "a lossless server answers the first attempt"
        );
        if let Some(last) = last_seq {
            assert!(reply.seq > last, "sequence numbers increase");
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
        Err(EchoError::TooLarge { len }) => assert_eq!(len, MAX_PAYLOAD + 1),
        other => panic!("expected EchoError::TooLarge, got {other:?}"),
    }
    fake.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        fake.recv(&mut [0u8; 16]).is_err(),
        "nothing is sent for a payload that is too large"
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
    let reply = client
        .request(&first)
        .expect("request 1 (answered on the 2nd attempt)");
    assert_eq!(reply.attempts, 2);
    assert_eq!(reply.payload, first);
    let reply2 = client.request(&second).expect("request 2");
    assert_eq!(reply2.payload, second);
    let got = server.join().expect("fake server");

    assert_eq!(got[0], got[1], "a retry sends exactly the same datagram");
    assert_eq!(
        &got[0][HEADER_LEN..],
        &first[..],
        "the payload follows the 8-byte header"
    );
    assert_eq!(&got[2][HEADER_LEN..], &second[..]);
    assert_eq!(seq_of(&got[0]), reply.seq, "Reply::seq is the number sent");
    assert_eq!(
        seq_of(&got[2]),
        seq_of(&got[0]) + 1,
        "the next request takes the next sequence number"
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
        assert_eq!(buf[..len], one[..], "the retry repeats request 1");
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
    let reply = client.request(&first).expect("request 1");
    assert_eq!(reply.payload, first);
    let reply = client.request(&second).expect("request 2");
    assert_eq!(
        reply.payload, second,
        "request 2 must return its own echo, not a stale or corrupt one"
    );
    assert_eq!(
        reply.attempts, 1,
        "junk before the echo does not cost an attempt"
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
            "only the server may answer (connect the socket): expected NoReply after 2 \
             attempts, got {other:?}"
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
        other => panic!("expected NoReply after 4 attempts, got {other:?}"),
    };
    let message = err.to_string();
    assert!(
        message.contains('4') && message.contains(&addr.to_string()),
        "the error names the attempts and the server: {message:?}"
    );
    assert_eq!(arrivals.len(), 4, "exactly max_attempts datagrams are sent");
    assert!(
        arrivals.iter().all(|(_, d)| *d == arrivals[0].1),
        "every attempt sends the same datagram"
    );
    // 60 + 120 + 240 + 480 ms of waiting: at least the sum of the timeouts.
    assert!(
        elapsed >= Duration::from_millis(800),
        "gave up after {elapsed:?}, before waiting 60+120+240+480 ms"
    );
    let gap = |i: usize| arrivals[i + 1].0 - arrivals[i].0;
    assert!(
        gap(2) >= gap(0) * 2,
        "backoff: the wait before the 4th attempt ({:?}) should be about 4x the wait before \
         the 2nd ({:?})",
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
        let reply = client
            .request(&payload)
            .unwrap_or_else(|e| panic!("request {i} through a lossy server: {e}"));
        assert_eq!(reply.payload, payload, "request {i}");
        attempts += reply.attempts;
    }
    assert!(
        attempts >= 30,
        "half the datagrams are dropped, yet 20 requests took only {attempts} attempts"
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
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr_str());
    assert_eq!(out.stdout_str(), format!("{}\n{}\n", words[0], words[1]));

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
    assert_eq!(
        out.code(),
        Some(1),
        "no reply: exit code 1 (stderr: {stderr})"
    );
    assert!(!stderr.contains("panicked"), "must not panic: {stderr}");
    assert!(
        stderr.contains("3 attempts") && stderr.contains(&silent_addr),
        "stderr must name the server and the 3 attempts: {stderr:?}"
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
            "{args:?}: must not panic: {stderr}"
        );
        assert!(
            matches!(out.code(), Some(code) if code != 0),
            "{args:?}: must exit with a non-zero code, got {:?}",
            out.status
        );
        assert!(
            !stderr.trim().is_empty(),
            "{args:?}: say what is wrong on stderr"
        );
    }
}
