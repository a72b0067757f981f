//! The one grader of the course's echo servers: chapter 2's three (labs 2.5 blocking, 2.6 mio,
//! 2.7 tokio) and chapter 7's two (lab 7.6 on hand-written epoll, lab 7.8 on a hand-made
//! runtime).
//!
//! The labs build the same program several ways, so they pass the same specification: each
//! lab's grader is a list of `#[test]` functions that call the checks below with the lab's
//! binary and the number of the README requirement they check, for example
//! `labkit::echo::echoes_1_mib_byte_exact(labkit::lab_bin!(), 2)`.
//!
//! Two kinds of checks. Some look at what a client sees: the echo byte for byte, end-of-file
//! after a half-close, many clients at once, resets, a clear command line. The others look at
//! the mechanism through the kernel, because a wrong design can produce the right bytes: the
//! server's threads asleep while its clients are silent (`/proc/<pid>/task/*/stat`), one thread
//! or one thread per client (`/proc/<pid>/task`), memory that does not grow for a client that
//! never reads (`VmRSS`), bytes left in a socket after one edge-triggered event
//! (`/proc/net/tcp`), file descriptors closed (`/proc/<pid>/fd`).
//!
//! Every check starts the server with [`Server::start`] (`--addr 127.0.0.1:0`), waits on the
//! network with timeouts only, and polls `/proc` with a deadline instead of sleeping for a fixed
//! time. Clients are plain blocking `std` sockets; many sockets share one thread, so 1,000
//! clients cost 1,000 file descriptors in the test process, not 1,000 threads.

use std::hash::{BuildHasher, RandomState};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::net::{NET_TIMEOUT, connect};
use crate::process::Server;
use crate::sys::fd_count;

/// The listen backlog every echo server must ask for (`listen(fd, 1024)`).
pub const BACKLOG: usize = 1024;

/// How long a check waits for the server's file descriptors to settle.
const FD_DEADLINE: Duration = Duration::from_secs(10);

/// Requirement: a 1 MiB random payload, sent in random-sized pieces while the echo is read
/// concurrently, comes back byte for byte; after the client's `shutdown(Write)` the server
/// closes its side, so the client reads end-of-file right after the last byte.
pub fn echoes_1_mib_byte_exact(bin: &str, requirement: u32) {
    let server = Server::start(bin, &[]);
    let payload = random_bytes(1 << 20);
    let echoed = echo_through(connect(server.addr()), &payload, requirement);
    assert_same_bytes(
        &echoed,
        &payload,
        &format!("requirement {requirement}: 1 MiB echo"),
    );
}

/// Requirement: a client that half-closes (`shutdown(Write)`: FIN) right after its last byte
/// still gets its whole echo, then end-of-file. First the client sends small payloads and
/// half-closes before reading a single byte; then it sends 4 MiB and half-closes while reading
/// slowly, so the server still holds unsent echo when the FIN arrives. The server must send all
/// of it before it closes the connection.
pub fn flushes_the_echo_after_a_half_close(bin: &str, requirement: u32) {
    let server = Server::start(bin, &[]);
    for len in [1, 100, 64 << 10, 200 << 10] {
        let payload = random_bytes(len);
        let mut stream = connect(server.addr());
        stream.write_all(&payload).expect("write the payload");
        stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap_or_else(|e| {
            panic!(
                "requirement {requirement}: after a half-close the server must send the \
                 {len}-byte echo, then close; got {} bytes then: {e}",
                echoed.len()
            )
        });
        assert_same_bytes(
            &echoed,
            &payload,
            &format!("requirement {requirement}: {len}-byte echo after half-close"),
        );
    }

    let payload = random_bytes(4 << 20);
    let stream = connect(server.addr());
    // A small receive buffer, and slow reads: the server's writes meet full buffers long
    // before its reads do, so it holds unsent echo when the FIN arrives.
    set_recv_buffer(&stream, 32 << 10);
    let mut reader = stream.try_clone().expect("clone the stream");
    thread::scope(|scope| {
        let sending = scope.spawn(|| {
            let mut writer = stream;
            writer.write_all(&payload)?;
            writer.shutdown(Shutdown::Write)
        });
        let mut echoed = Vec::with_capacity(payload.len());
        let mut buf = [0; 16 << 10];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => echoed.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "requirement {requirement}: a slow reader of a 4 MiB echo after a \
                     half-close got {e} after {} of {} bytes",
                    echoed.len(),
                    payload.len()
                ),
            }
            thread::sleep(Duration::from_micros(200));
        }
        if let Err(e) = sending.join().expect("writer thread") {
            panic!("requirement {requirement}: sending 4 MiB to the server: {e}");
        }
        assert_same_bytes(
            &echoed,
            &payload,
            &format!("requirement {requirement}: 4 MiB echo to a slow reader after half-close"),
        );
    });
}

/// Requirement: `clients` connections are open at the same time, each sends its own random
/// message, and each gets its own message back. A server that serves one connection at a time
/// never answers the second one.
pub fn serves_concurrent_clients(bin: &str, clients: usize, requirement: u32) {
    raise_fd_limit(clients + 100);
    let server = Server::start(bin, &[]);
    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams, requirement);
}

/// Requirement: the listening socket holds at least 1,024 connections that the server has not
/// accepted yet. The check freezes the server (SIGSTOP), opens 1,024 connections (the kernel
/// completes their handshakes into the accept queue on its own), thaws it (SIGCONT), and then
/// every one of them must be served. With `listen(fd, 128)` the 130th connect times out.
pub fn holds_a_backlog_of_1024(bin: &str, requirement: u32) {
    raise_fd_limit(BACKLOG + 100);
    let server = Server::start(bin, &[]);
    // The kernel silently caps every backlog at net.core.somaxconn.
    let somaxconn = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(BACKLOG);
    let wanted = BACKLOG.min(somaxconn);
    let mut streams = Vec::with_capacity(wanted);
    {
        let _frozen = Frozen::new(server.pid());
        while streams.len() < wanted {
            match TcpStream::connect_timeout(&server.addr(), Duration::from_secs(1)) {
                Ok(stream) => streams.push(stream),
                Err(e) => panic!(
                    "requirement {requirement}: the accept queue is full after {} connections \
                     ({e}); wanted room for {wanted}: listen with a backlog of {BACKLOG} (std, \
                     mio and tokio's bind() all use 128)",
                    streams.len()
                ),
            }
        }
    }
    for stream in &streams {
        crate::net::set_timeouts(stream, NET_TIMEOUT);
    }
    exchange_messages(&mut streams, requirement);
}

/// Requirement: one client that sends without ever reading fills the server's buffers towards
/// it, and the server keeps serving everybody else. Nothing that client sent is lost: once it
/// starts reading it gets its whole echo.
pub fn keeps_serving_while_a_client_never_reads(bin: &str, requirement: u32) {
    const TOTAL: usize = 48 << 20;
    let server = Server::start(bin, &[]);
    let block = Arc::new(random_bytes(1 << 20));

    let mut hog = connect(server.addr());
    hog.set_write_timeout(Some(Duration::from_secs(25)))
        .unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (mut hog, block, written) = (hog.try_clone().unwrap(), block.clone(), written.clone());
        thread::spawn(move || -> io::Result<()> {
            for chunk in block.chunks(64 << 10).cycle().take(TOTAL / (64 << 10)) {
                hog.write_all(chunk)?;
                written.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            hog.shutdown(Shutdown::Write)
        })
    };

    // Wait until the hog's writes stall: every buffer between it and the server is full, so
    // the server is stuck on that client (or it buffered all 48 MiB, which is its business).
    let deadline = Instant::now() + Duration::from_secs(15);
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        thread::sleep(Duration::from_millis(20));
        if writer.is_finished() {
            break; // all sent, or failed: joining the writer below tells which
        }
        let now_written = written.load(Ordering::Relaxed);
        if now_written != last {
            (last, last_change) = (now_written, Instant::now());
        }
        if now_written >= 1 << 20 && last_change.elapsed() >= Duration::from_millis(500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requirement {requirement}: the server read only {now_written} bytes in 15 s from a \
             client that sends 48 MiB; wanted its writes to go on until the buffers are full"
        );
    }

    // Meanwhile, another client is served at once.
    let mut other = connect(server.addr());
    for round in 0..20 {
        let message = random_bytes(1 + round * 300);
        other.write_all(&message).unwrap_or_else(|e| {
            panic!("requirement {requirement}: round {round}: write to the server: {e}")
        });
        let mut echoed = vec![0; message.len()];
        other.read_exact(&mut echoed).unwrap_or_else(|e| {
            panic!(
                "requirement {requirement}: round {round}: no echo while another client does \
                 not read ({e}): a stuck write to one client must not stop the others"
            )
        });
        assert_same_bytes(
            &echoed,
            &message,
            &format!("requirement {requirement}: round {round}"),
        );
    }

    // The hog starts reading: it gets back exactly what it sent, nothing lost, nothing doubled.
    let mut received = 0;
    let mut buf = vec![0; 256 << 10];
    loop {
        let n = hog.read(&mut buf).unwrap_or_else(|e| {
            panic!(
                "requirement {requirement}: the client that did not read got {received} of \
                 {TOTAL} bytes back, then: {e}"
            )
        });
        if n == 0 {
            break;
        }
        for (i, byte) in buf[..n].iter().enumerate() {
            let at = received + i;
            if *byte != block[at % block.len()] {
                panic!(
                    "requirement {requirement}: the echo to the client that did not read \
                     differs at byte {at}: data was lost or reordered"
                );
            }
        }
        received += n;
    }
    if let Err(e) = writer.join().expect("writer thread") {
        panic!("requirement {requirement}: sending 48 MiB to the server: {e}");
    }
    assert!(
        received == TOTAL,
        "requirement {requirement}: the client that did not read got {received} bytes back; \
         wanted its whole echo, {TOTAL} bytes"
    );
}

/// Requirement: clients that vanish with a TCP reset (`SO_LINGER` 0, then close) do not kill
/// the server: some reset before reading their echo, some while the server is busy writing
/// to them. Afterwards a fresh client is still served.
pub fn survives_abrupt_resets(bin: &str, requirement: u32) {
    let mut server = Server::start(bin, &[]);
    for _ in 0..50 {
        let mut stream = connect(server.addr());
        stream
            .write_all(&random_bytes(1000))
            .unwrap_or_else(|e| panic!("requirement {requirement}: write to the server: {e}"));
        reset(stream);
    }
    for _ in 0..10 {
        // Send until our own buffers are full (the server is writing its echo to us and we do
        // not read), then vanish: the server's next write meets ECONNRESET or EPIPE.
        let mut stream = connect(server.addr());
        stream.set_nonblocking(true).unwrap();
        let chunk = random_bytes(64 << 10);
        let mut sent = 0;
        while sent < 64 << 20 {
            match stream.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("requirement {requirement}: write to the server: {e}"),
            }
        }
        reset(stream);
    }
    let payload = random_bytes(64 << 10);
    let echoed = echo_through(connect(server.addr()), &payload, requirement);
    assert_same_bytes(
        &echoed,
        &payload,
        &format!("requirement {requirement}: echo after 60 resets"),
    );
    if !server.is_running() {
        server.fail(&format!(
            "requirement {requirement}: died after clients reset their connections"
        ));
    }
}

/// Requirement: the server closes every connection whose client left, normally or with a
/// reset: its count of open file descriptors (`/proc/<pid>/fd`) returns to what it was before
/// `clients` clients came and went.
pub fn closes_every_fd_after_clients_leave(bin: &str, clients: usize, requirement: u32) {
    raise_fd_limit(clients + 100);
    let server = Server::start(bin, &[]);
    let pid = server.pid();
    // The baseline is measured with one echoed client connected, minus that client: a server
    // may open its own descriptors (epoll, eventfd) after printing `listening on`.
    let mut warm_up = connect(server.addr());
    exchange_messages(std::slice::from_mut(&mut warm_up), requirement);
    let baseline = fd_count(pid).saturating_sub(1);
    assert!(baseline > 0, "cannot read /proc/{pid}/fd");
    drop(warm_up);

    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams, requirement);
    let open = wait_for(FD_DEADLINE, || fd_count(pid) >= baseline + clients);
    assert!(
        open,
        "requirement {requirement}: {clients} clients are connected and echoed, yet the server \
         holds {} fds (baseline {baseline}); wanted at least {}: one fd per connection",
        fd_count(pid),
        baseline + clients
    );

    // Half the clients close politely (FIN), half vanish with a reset (RST).
    for (i, stream) in streams.into_iter().enumerate() {
        if i % 2 == 0 {
            drop(stream);
        } else {
            reset(stream);
        }
    }
    let closed = wait_for(FD_DEADLINE, || fd_count(pid) <= baseline);
    assert!(
        closed,
        "requirement {requirement}: {FD_DEADLINE:?} after {clients} clients left, the server \
         still holds {} fds; wanted {baseline} as before: close a connection when read returns \
         0 or an error",
        fd_count(pid)
    );
}

/// Requirement: a bad `--addr`, an address already in use or an unknown argument end the
/// program with an error on stderr and a non-zero exit code, never a panic.
pub fn rejects_bad_arguments_with_a_clear_error(bin: &str) {
    rejects_bad_arguments(bin, None);
}

/// Requirement: the command-line conventions of the course. `--help` prints the usage (naming
/// `--addr`) on stdout and exits 0; a bad `--addr` or an unknown argument is one line on stderr
/// and exit code 2; an address already in use is one line on stderr and a non-zero exit code.
/// Never a panic.
pub fn rejects_bad_arguments_of(bin: &str, requirement: u32) {
    rejects_bad_arguments(bin, Some(requirement));
    let help = crate::run(bin, &["--help"]);
    let stdout = help.stdout_str();
    assert!(
        help.code() == Some(0) && stdout.contains("--addr"),
        "requirement {requirement}: `--help` exited with {:?} and printed {} bytes on stdout; \
         wanted the usage, naming --addr, on stdout and exit code 0",
        help.status,
        stdout.len()
    );
    let occupied = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = occupied.local_addr().unwrap().to_string();
    let cases: [(&[&str], Option<i32>); 3] = [
        (&["--addr", "not-an-address"], Some(2)),
        (&["--no-such-flag"], Some(2)),
        (&["--addr", &taken], None),
    ];
    for (args, code) in cases {
        let out = crate::run(bin, args);
        let stderr = out.stderr_str();
        let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
        assert!(
            lines == 1,
            "requirement {requirement}: args {args:?}: {lines} lines on stderr; wanted one line \
             that says what is wrong: {stderr:?}"
        );
        if let Some(code) = code {
            assert!(
                out.code() == Some(code),
                "requirement {requirement}: args {args:?}: exit code {:?}; wanted {code}, the \
                 code for a bad command line",
                out.code()
            );
        }
    }
}

fn rejects_bad_arguments(bin: &str, requirement: Option<u32>) {
    let prefix = requirement.map_or(String::new(), |r| format!("requirement {r}: "));
    let occupied = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = occupied.local_addr().unwrap().to_string();
    let cases: [&[&str]; 3] = [
        &["--addr", "not-an-address"],
        &["--addr", &taken],
        &["--no-such-flag"],
    ];
    for args in cases {
        let out = crate::run(bin, args);
        let stderr = out.stderr_str();
        assert!(
            !stderr.contains("panicked"),
            "{prefix}args {args:?}: must not panic: {stderr}"
        );
        assert!(
            matches!(out.code(), Some(code) if code != 0),
            "{prefix}args {args:?}: must exit with a non-zero code, got {:?}",
            out.status
        );
        assert!(
            !stderr.trim().is_empty(),
            "{prefix}args {args:?}: say what is wrong on stderr"
        );
    }
}

/// Requirement: a server whose clients are connected but silent sleeps in the kernel (in
/// `epoll_wait`, `read` or `accept`) until one of them sends: over one idle second, all its
/// threads together wake at most 20 times and use at most 5 CPU ticks
/// ([`crate::sys::assert_asleep`]). An event loop that polls with a zero or 1 ms timeout, a
/// level-triggered socket that stays writable, or a thread that retries every millisecond fails.
pub fn sleeps_while_clients_are_idle(bin: &str, requirement: u32) {
    let mut server = Server::start(bin, &[]);
    let mut streams: Vec<TcpStream> = (0..10).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams, requirement);
    crate::sys::assert_asleep(
        server.pid(),
        &format!(
            "requirement {requirement}: 10 clients are connected, echoed and silent, so the \
             server has nothing to do"
        ),
        |_| true,
    );
    if !server.is_running() {
        server.fail(&format!("requirement {requirement}: died while idle"));
    }
}

/// Requirement: one thread serves every client. With `clients` connections open and echoed,
/// `/proc/<pid>/task` holds exactly one thread (the event loop).
pub fn runs_on_one_thread(bin: &str, clients: usize, requirement: u32) {
    raise_fd_limit(clients + 100);
    let server = Server::start(bin, &[]);
    let pid = server.pid();
    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams, requirement);
    let threads = crate::sys::thread_count(pid).unwrap_or(0);
    assert!(
        threads == 1,
        "requirement {requirement}: with {clients} clients connected and echoed, the server runs \
         {threads} threads ({}); wanted 1: one event loop serves every client, no thread per \
         client or helper thread",
        thread_names(pid)
    );
}

/// Requirement: every client gets a thread of its own, and that thread ends when its client
/// leaves. A random number of clients (20 to 59) connect and are echoed: the server runs at
/// least one more thread per client; once they leave (half with a FIN, half with a reset), it
/// is back to the threads it had before.
pub fn runs_a_thread_per_client_until_it_leaves(bin: &str, requirement: u32) {
    let server = Server::start(bin, &[]);
    let pid = server.pid();
    let baseline = crate::sys::thread_count(pid).unwrap_or(0);
    assert!(baseline > 0, "cannot read /proc/{pid}/status");
    let clients = 20 + random_bytes(1)[0] as usize % 40;
    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams, requirement);
    let spawned = wait_for(FD_DEADLINE, || {
        crate::sys::thread_count(pid).unwrap_or(0) >= baseline + clients
    });
    assert!(
        spawned,
        "requirement {requirement}: {clients} clients are connected and echoed, yet the server \
         runs {} threads ({}); wanted at least {}: one thread per client plus the accept loop",
        crate::sys::thread_count(pid).unwrap_or(0),
        thread_names(pid),
        baseline + clients
    );
    for (i, stream) in streams.into_iter().enumerate() {
        if i % 2 == 0 {
            drop(stream);
        } else {
            reset(stream);
        }
    }
    let ended = wait_for(FD_DEADLINE, || {
        crate::sys::thread_count(pid).unwrap_or(usize::MAX) <= baseline
    });
    assert!(
        ended,
        "requirement {requirement}: {FD_DEADLINE:?} after its {clients} clients left, the server \
         still runs {} threads ({}); wanted {baseline}, as before they came: a client's thread \
         returns when read gives 0 or an error",
        crate::sys::thread_count(pid).unwrap_or(0),
        thread_names(pid)
    );
}

/// Requirement: backpressure instead of buffering. A client sends up to 96 MiB and never reads
/// its echo. The server must stop reading from it while its echo cannot be sent, so the
/// client's writes stall once the kernel's buffers are full, and the server's resident memory
/// (`VmRSS`) grows by at most 16 MiB. A server that keeps reading into a queue or an unbounded
/// channel takes all 96 MiB and holds it.
pub fn buffers_little_for_a_client_that_never_reads(bin: &str, requirement: u32) {
    const TOTAL: usize = 96 << 20;
    const MAX_GROWTH_KIB: u64 = 16 << 10;
    let server = Server::start(bin, &[]);
    let pid = server.pid();
    // One echoed client first, so that what the server allocates once is in the baseline.
    let mut warm_up = connect(server.addr());
    exchange_messages(std::slice::from_mut(&mut warm_up), requirement);
    let rss = || crate::sys::status_kib(pid, "VmRSS").unwrap_or(0);
    let baseline = rss();
    assert!(baseline > 0, "cannot read VmRSS in /proc/{pid}/status");

    let hog = connect(server.addr());
    hog.set_write_timeout(Some(Duration::from_secs(25)))
        .expect("SO_SNDTIMEO");
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (mut hog, written) = (hog.try_clone().expect("clone the stream"), written.clone());
        let block = random_bytes(1 << 20);
        thread::spawn(move || -> io::Result<()> {
            for chunk in block.chunks(64 << 10).cycle().take(TOTAL / (64 << 10)) {
                hog.write_all(chunk)?;
                written.fetch_add(chunk.len(), Ordering::Relaxed);
            }
            Ok(())
        })
    };
    // Wait until the client's writes stall (every buffer on the way is full) or all is sent.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut last, mut last_change) = (0, Instant::now());
    let mut peak = baseline;
    while !writer.is_finished() {
        thread::sleep(Duration::from_millis(20));
        peak = peak.max(rss());
        let now_written = written.load(Ordering::Relaxed);
        if now_written != last {
            (last, last_change) = (now_written, Instant::now());
        }
        if last_change.elapsed() >= Duration::from_millis(500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "requirement {requirement}: the client that never reads is still sending after 20 s \
             ({now_written} bytes so far)"
        );
    }
    let sent = written.load(Ordering::Relaxed);
    let growth = peak.max(rss()).saturating_sub(baseline);
    let took_everything = writer.is_finished() && sent == TOTAL;
    // Unblock and end the writer: shutdown reaches the socket that its clone shares.
    let _ = hog.shutdown(Shutdown::Both);
    let _ = writer.join();
    assert!(
        growth <= MAX_GROWTH_KIB,
        "requirement {requirement}: a client sent {} MiB without reading its echo, and the \
         server's resident memory grew by {} MiB; wanted at most {} MiB: stop reading from a \
         client while its echo waits to be sent, so that TCP slows it down",
        sent >> 20,
        growth >> 10,
        MAX_GROWTH_KIB >> 10
    );
    assert!(
        !took_everything,
        "requirement {requirement}: the server accepted all {} MiB from a client that never \
         reads its echo; wanted its writes to stall once the kernel's buffers are full \
         (backpressure), not a server that reads on and queues the echo",
        TOTAL >> 20
    );
}

/// Requirement: read until the socket is drained. The server is frozen (SIGSTOP) while a
/// client sends a random 200 to 700 KiB without closing, until more than 64 KiB wait unread
/// in the server's receive queue (`/proc/net/tcp`); then it runs again and must echo it all.
/// Edge-triggered readiness reported those bytes once: a server that reads one buffer per
/// event leaves the rest in the socket, and no event ever comes for it.
pub fn echoes_bytes_queued_while_it_was_stopped(bin: &str, requirement: u32) {
    const QUEUED: usize = 64 << 10;
    let server = Server::start(bin, &[]);
    let mut stream = connect(server.addr());
    // One echo first: the connection is accepted and registered before the freeze.
    exchange_messages(std::slice::from_mut(&mut stream), requirement);
    let sizes = random_bytes(2);
    let len = (200 << 10) + (u16::from_le_bytes([sizes[0], sizes[1]]) as usize % (500 << 10));
    let payload = random_bytes(len);
    let client_port = stream.local_addr().expect("local address").port();
    let server_port = server.addr().port();
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut echoed = vec![0; len];
    thread::scope(|scope| {
        let frozen = Frozen::new(server.pid());
        let sending = scope.spawn(|| writer.write_all(&payload));
        let queued = wait_for(Duration::from_secs(10), || {
            receive_queue(server_port, client_port).is_some_and(|n| n > QUEUED)
        });
        assert!(
            queued,
            "requirement {requirement}: the stopped server's receive queue never held more than \
             {QUEUED} bytes (it holds {:?})",
            receive_queue(server_port, client_port)
        );
        drop(frozen);
        let mut got = 0;
        while got < len {
            match stream.read(&mut echoed[got..]) {
                Ok(0) => panic!(
                    "requirement {requirement}: the server closed the connection after echoing \
                     {got} of {len} bytes"
                ),
                Ok(n) => got += n,
                Err(e) => panic!(
                    "requirement {requirement}: {len} bytes were queued in the socket while the \
                     server was stopped; it echoed {got} of them, then nothing ({e}): after a \
                     readiness event, read until WouldBlock (edge-triggered epoll reports bytes \
                     once, and bytes left in the socket raise no new event)"
                ),
            }
        }
        if let Err(e) = sending.join().expect("writer thread") {
            panic!("requirement {requirement}: sending {len} bytes to the server: {e}");
        }
    });
    assert_same_bytes(
        &echoed,
        &payload,
        &format!("requirement {requirement}: {len} bytes queued while the server was stopped"),
    );
}

/// Bytes waiting unread in the receive queue of the server's side of a loopback connection:
/// the `rx_queue` of its line in `/proc/net/tcp` (IPv4).
fn receive_queue(server_port: u16, client_port: u16) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let port = |field: &str| u16::from_str_radix(field.rsplit(':').next()?, 16).ok();
        if port(fields.get(1)?)? != server_port || port(fields.get(2)?)? != client_port {
            return None;
        }
        let (_tx, rx) = fields.get(4)?.split_once(':')?;
        usize::from_str_radix(rx, 16).ok()
    })
}

/// `name x count` for each thread name of `pid`, for messages about thread counts.
fn thread_names(pid: u32) -> String {
    let mut names: Vec<(String, usize)> = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let comm = comm.trim_end().to_string();
            match names.iter_mut().find(|(name, _)| *name == comm) {
                Some((_, count)) => *count += 1,
                None => names.push((comm, 1)),
            }
        }
    }
    names
        .iter()
        .map(|(name, count)| format!("{name} x{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Building blocks, public for graders that want to go further.

/// `len` random bytes (a small PRNG seeded per call: no dependency, different every run).
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut state = RandomState::new().hash_one(Instant::now());
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Sends `payload` in random-sized pieces on one thread while reading on another (so neither
/// side can deadlock on full buffers), half-closes, and returns everything read until EOF.
pub fn echo_through(stream: TcpStream, payload: &[u8], requirement: u32) -> Vec<u8> {
    let mut reader = stream.try_clone().expect("clone the stream");
    let mut writer = stream;
    let sizes = random_bytes(payload.len() / 1000 + 1);
    thread::scope(|scope| {
        let sending = scope.spawn(move || -> io::Result<()> {
            let mut rest = payload;
            let mut size = sizes.iter().cycle();
            while !rest.is_empty() {
                let piece = (1 + *size.next().unwrap() as usize * 256).min(rest.len());
                writer.write_all(&rest[..piece])?;
                rest = &rest[piece..];
            }
            writer.shutdown(Shutdown::Write)
        });
        let mut echoed = Vec::with_capacity(payload.len());
        let read = reader.read_to_end(&mut echoed);
        let sent = sending.join().expect("writer thread");
        if let Err(e) = sent {
            panic!(
                "requirement {requirement}: sending {} bytes to the server: {e}",
                payload.len()
            );
        }
        if let Err(e) = read {
            panic!(
                "requirement {requirement}: reading the echo: {e} after {} of {} bytes (did the \
                 server close the connection after the client's shutdown(Write)?)",
                echoed.len(),
                payload.len()
            );
        }
        echoed
    })
}

/// Writes a random message (1 to 2,048 bytes) on every stream, then reads every echo back.
/// All the messages are in flight at once, so this needs a server that serves the streams
/// concurrently; messages are small enough to sit in the kernel's buffers meanwhile.
pub fn exchange_messages(streams: &mut [TcpStream], requirement: u32) {
    let sizes = random_bytes(streams.len() * 2);
    let messages: Vec<Vec<u8>> = sizes
        .chunks(2)
        .map(|s| random_bytes(1 + (u16::from_le_bytes([s[0], s[1]]) as usize % 2048)))
        .collect();
    for (i, (stream, message)) in streams.iter_mut().zip(&messages).enumerate() {
        stream
            .write_all(message)
            .unwrap_or_else(|e| panic!("requirement {requirement}: client {i}: write: {e}"));
    }
    for (i, (stream, message)) in streams.iter_mut().zip(&messages).enumerate() {
        let mut echoed = vec![0; message.len()];
        stream.read_exact(&mut echoed).unwrap_or_else(|e| {
            panic!(
                "requirement {requirement}: client {i} of {}: no echo ({e}); all clients are \
                 connected at the same time, and each must be served",
                messages.len()
            )
        });
        assert_same_bytes(
            &echoed,
            message,
            &format!("requirement {requirement}: client {i}"),
        );
    }
}

/// Closes `stream` with a reset instead of a FIN: `SO_LINGER` on with a zero timeout makes
/// close(2) drop unsent data and send RST.
pub fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid, live `linger` value,
    // and the fd belongs to `stream`, which is open for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", io::Error::last_os_error());
    drop(stream);
}

/// Sets `SO_RCVBUF`, which also turns off the kernel's receive-buffer autotuning.
pub fn set_recv_buffer(stream: &TcpStream, bytes: libc::c_int) {
    // SAFETY: setsockopt reads one valid `c_int`; the fd belongs to the live `stream`.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const bytes).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_RCVBUF: {}", io::Error::last_os_error());
}

/// Raises this process's soft limit on open files towards `needed` (up to the hard limit).
/// Servers started afterwards inherit it. Panics with the fix when the hard limit is too low.
pub fn raise_fd_limit(needed: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid, exclusive reference we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit: {}", io::Error::last_os_error());
    if limit.rlim_cur as usize >= needed {
        return;
    }
    assert!(
        limit.rlim_max as usize >= needed,
        "this test needs {needed} open files but the hard limit is {}: raise it (`ulimit -Hn`, \
         /etc/security/limits.conf) and open a new shell",
        limit.rlim_max
    );
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads one valid `rlimit`; raising the soft limit up to the hard limit
    // is always allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit: {}", io::Error::last_os_error());
}

/// Polls `condition` every few milliseconds until it holds (true) or `deadline` passes (false).
pub fn wait_for(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    let mut pause = Duration::from_millis(1);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// A stopped process (SIGSTOP) that is continued (SIGCONT) when this value is dropped, even if
/// the check panics in between.
struct Frozen {
    pid: u32,
}

impl Frozen {
    fn new(pid: u32) -> Frozen {
        // SAFETY: kill(2) with a pid we spawned and a valid signal has no memory effects.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGSTOP) };
        assert_eq!(rc, 0, "SIGSTOP: {}", io::Error::last_os_error());
        // The signal is asynchronous: wait until /proc says the process is stopped.
        let stopped = wait_for(Duration::from_secs(5), || {
            crate::sys::status_field(&pid.to_string(), "State")
                .is_some_and(|state| state.starts_with('T'))
        });
        assert!(stopped, "the server did not stop on SIGSTOP");
        Frozen { pid }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        // SAFETY: as in `Frozen::new`.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGCONT) };
    }
}

/// Compares two byte strings and reports the first difference instead of dumping megabytes.
fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got == want {
        return;
    }
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(at) => panic!(
            "{what}: the echo differs from what was sent at byte {at} (got {} bytes, sent {})",
            got.len(),
            want.len()
        ),
        None => panic!(
            "{what}: got {} bytes back, sent {} (the same up to the shorter one)",
            got.len(),
            want.len()
        ),
    }
}
