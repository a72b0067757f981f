//! The one grader of chapter 2's three echo servers (labs 2.5 blocking, 2.6 mio, 2.7 tokio).
//!
//! The three labs build the same program three ways, so they pass the same specification: each
//! lab's `tests/grader.rs` is a list of `#[test]` functions that call the checks below with the
//! lab's binary, for example `labkit::echo::echoes_1_mib_byte_exact(labkit::lab_bin!())`.
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
pub fn echoes_1_mib_byte_exact(bin: &str) {
    let server = Server::start(bin, &[]);
    let payload = random_bytes(1 << 20);
    let echoed = echo_through(connect(server.addr()), &payload);
    assert_same_bytes(&echoed, &payload, "1 MiB echo");
}

/// Requirement: a client that half-closes (`shutdown(Write)`: FIN) right after its last byte
/// still gets its whole echo, then end-of-file. First the client sends small payloads and
/// half-closes before reading a single byte; then it sends 4 MiB and half-closes while reading
/// slowly, so the server still holds unsent echo when the FIN arrives. The server must send all
/// of it before it closes the connection.
pub fn flushes_the_echo_after_a_half_close(bin: &str) {
    let server = Server::start(bin, &[]);
    for len in [1, 100, 64 << 10, 200 << 10] {
        let payload = random_bytes(len);
        let mut stream = connect(server.addr());
        stream.write_all(&payload).expect("write the payload");
        stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap_or_else(|e| {
            panic!(
                "after a half-close the server must send the {len}-byte echo, then close; \
                 got {} bytes then: {e}",
                echoed.len()
            )
        });
        assert_same_bytes(
            &echoed,
            &payload,
            &format!("{len}-byte echo after half-close"),
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
                    "slow reader: {e} after {} of {} bytes",
                    echoed.len(),
                    payload.len()
                ),
            }
            thread::sleep(Duration::from_micros(200));
        }
        if let Err(e) = sending.join().expect("writer thread") {
            panic!("sending 4 MiB to the server: {e}");
        }
        assert_same_bytes(
            &echoed,
            &payload,
            "4 MiB echo to a slow reader after half-close",
        );
    });
}

/// Requirement: `clients` connections are open at the same time, each sends its own random
/// message, and each gets its own message back. A server that serves one connection at a time
/// never answers the second one.
pub fn serves_concurrent_clients(bin: &str, clients: usize) {
    raise_fd_limit(clients + 100);
    let server = Server::start(bin, &[]);
    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams);
}

/// Requirement: the listening socket holds at least 1,024 connections that the server has not
/// accepted yet. The check freezes the server (SIGSTOP), opens 1,024 connections (the kernel
/// completes their handshakes into the accept queue on its own), thaws it (SIGCONT), and then
/// every one of them must be served. With `listen(fd, 128)` the 130th connect times out.
pub fn holds_a_backlog_of_1024(bin: &str) {
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
                    "the accept queue is full after {} connections ({e}): listen with a backlog \
                     of {BACKLOG} (std, mio and tokio's bind() all use 128)",
                    streams.len()
                ),
            }
        }
    }
    for stream in &streams {
        crate::net::set_timeouts(stream, NET_TIMEOUT);
    }
    exchange_messages(&mut streams);
}

/// Requirement: one client that sends without ever reading fills the server's buffers towards
/// it, and the server keeps serving everybody else. Nothing that client sent is lost: once it
/// starts reading it gets its whole echo.
pub fn keeps_serving_while_a_client_never_reads(bin: &str) {
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
            "the server read only {now_written} bytes from a client that sends 48 MiB"
        );
    }

    // Meanwhile, another client is served at once.
    let mut other = connect(server.addr());
    for round in 0..20 {
        let message = random_bytes(1 + round * 300);
        other.write_all(&message).expect("write to the server");
        let mut echoed = vec![0; message.len()];
        other.read_exact(&mut echoed).unwrap_or_else(|e| {
            panic!(
                "round {round}: no echo while another client does not read ({e}): a stuck \
                 write to one client must not stop the others"
            )
        });
        assert_same_bytes(&echoed, &message, &format!("round {round}"));
    }

    // The hog starts reading: it gets back exactly what it sent, nothing lost, nothing doubled.
    let mut received = 0;
    let mut buf = vec![0; 256 << 10];
    loop {
        let n = hog.read(&mut buf).unwrap_or_else(|e| {
            panic!("the client that did not read got {received} bytes back, then: {e}")
        });
        if n == 0 {
            break;
        }
        for (i, byte) in buf[..n].iter().enumerate() {
            let at = received + i;
            if *byte != block[at % block.len()] {
                panic!("the echo differs at byte {at}: data was lost or reordered");
            }
        }
        received += n;
    }
    writer
        .join()
        .expect("writer thread")
        .expect("send 48 MiB to the server");
    assert_eq!(
        received, TOTAL,
        "the client that did not read gets its whole echo"
    );
}

/// Requirement: clients that vanish with a TCP reset (`SO_LINGER` 0, then close) do not kill
/// the server: some reset before reading their echo, some while the server is busy writing
/// to them. Afterwards a fresh client is still served.
pub fn survives_abrupt_resets(bin: &str) {
    let mut server = Server::start(bin, &[]);
    for _ in 0..50 {
        let mut stream = connect(server.addr());
        stream.write_all(&random_bytes(1000)).expect("write");
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
                Err(e) => panic!("write to the server: {e}"),
            }
        }
        reset(stream);
    }
    let payload = random_bytes(64 << 10);
    let echoed = echo_through(connect(server.addr()), &payload);
    assert_same_bytes(&echoed, &payload, "echo after 60 resets");
    if !server.is_running() {
        server.fail("died after clients reset their connections");
    }
}

/// Requirement: the server closes every connection whose client left, normally or with a
/// reset: its count of open file descriptors (`/proc/<pid>/fd`) returns to what it was before
/// `clients` clients came and went.
pub fn closes_every_fd_after_clients_leave(bin: &str, clients: usize) {
    raise_fd_limit(clients + 100);
    let server = Server::start(bin, &[]);
    let pid = server.pid();
    // The baseline is measured with one echoed client connected, minus that client: a server
    // may open its own descriptors (epoll, eventfd) after printing `listening on`.
    let mut warm_up = connect(server.addr());
    exchange_messages(std::slice::from_mut(&mut warm_up));
    let baseline = fd_count(pid).saturating_sub(1);
    assert!(baseline > 0, "cannot read /proc/{pid}/fd");
    drop(warm_up);

    let mut streams: Vec<TcpStream> = (0..clients).map(|_| connect(server.addr())).collect();
    exchange_messages(&mut streams);
    let open = wait_for(FD_DEADLINE, || fd_count(pid) >= baseline + clients);
    assert!(
        open,
        "{clients} clients are connected and echoed, yet the server holds {} fds (baseline \
         {baseline}): one fd per connection is expected",
        fd_count(pid)
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
        "{FD_DEADLINE:?} after {clients} clients left, the server still holds {} fds (baseline \
         {baseline}): close a connection when read returns 0 or an error",
        fd_count(pid)
    );
}

/// Requirement: a bad `--addr`, an address already in use or an unknown argument end the
/// program with an error on stderr and a non-zero exit code, never a panic.
pub fn rejects_bad_arguments_with_a_clear_error(bin: &str) {
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
            "args {args:?}: must not panic: {stderr}"
        );
        assert!(
            matches!(out.code(), Some(code) if code != 0),
            "args {args:?}: must exit with a non-zero code, got {:?}",
            out.status
        );
        assert!(
            !stderr.trim().is_empty(),
            "args {args:?}: say what is wrong on stderr"
        );
    }
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
pub fn echo_through(stream: TcpStream, payload: &[u8]) -> Vec<u8> {
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
            panic!("sending {} bytes to the server: {e}", payload.len());
        }
        if let Err(e) = read {
            panic!(
                "reading the echo: {e} after {} of {} bytes (did the server close the \
                 connection after the client's shutdown(Write)?)",
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
pub fn exchange_messages(streams: &mut [TcpStream]) {
    let sizes = random_bytes(streams.len() * 2);
    let messages: Vec<Vec<u8>> = sizes
        .chunks(2)
        .map(|s| random_bytes(1 + (u16::from_le_bytes([s[0], s[1]]) as usize % 2048)))
        .collect();
    for (i, (stream, message)) in streams.iter_mut().zip(&messages).enumerate() {
        stream
            .write_all(message)
            .unwrap_or_else(|e| panic!("client {i}: write: {e}"));
    }
    for (i, (stream, message)) in streams.iter_mut().zip(&messages).enumerate() {
        let mut echoed = vec![0; message.len()];
        stream.read_exact(&mut echoed).unwrap_or_else(|e| {
            panic!(
                "client {i} of {}: no echo ({e}); all clients are connected at the same time",
                messages.len()
            )
        });
        assert_same_bytes(&echoed, message, &format!("client {i}"));
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
