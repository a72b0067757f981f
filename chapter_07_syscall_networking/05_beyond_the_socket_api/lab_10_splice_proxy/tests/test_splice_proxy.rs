//! Grader for Zero-Copy Forwarding with splice(2): black-box, through the real binary, with a
//! real upstream in this process and real sockets on loopback. Each test is named after the
//! requirement it checks (see README.md).
//!
//! Payloads are pseudo-random streams of a random length: the sender generates one from a seed,
//! the receiver generates it again and compares as the bytes arrive, so hundreds of MiB are
//! checked byte for byte without being kept in memory. "Zero-copy" is read from the kernel: the
//! proxy's `/proc/<pid>/io` counters, and its system calls under `strace`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use labkit::{Server, lab_bin};
use rand::rngs::SmallRng;
use rand::{Rng, RngExt, SeedableRng};

const MIB: u64 = 1 << 20;
/// How long one read or write may wait during a transfer (the machine may be busy).
const WAIT: Duration = Duration::from_secs(30);
/// How long a peer waits for an end-of-file (or a reset) that the proxy should pass on.
const END_WAIT: Duration = Duration::from_secs(10);
/// The fds a proxy may open once it serves, after printing `listening on` (its epoll fd, an
/// eventfd). Every test that counts fds leaves at least 3 connections behind, 6 fds or more if
/// they leaked.
const FD_SLACK: usize = 2;
/// Payloads are generated and checked in blocks of this size.
const BLOCK: usize = 64 << 10;

// ---------------------------------------------------------------------------------------------
// Requirement 1: the command line.

#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    let help = labkit::run(lab_bin!(), &["--help"]);
    let usage = help.stdout_str();
    assert!(
        help.code() == Some(0) && usage.contains("--listen") && usage.contains("--upstream"),
        "requirement 1: `--help` exited with {:?} and printed {usage:?}; wanted the usage, naming \
         --listen and --upstream, on stdout and exit code 0",
        help.status
    );
    let cases: [&[&str]; 4] = [
        &["--listen", "not-an-address", "--upstream", "127.0.0.1:9"],
        &["--listen", "127.0.0.1:0", "--upstream", "nowhere"],
        &["--listen", "127.0.0.1:0"],
        &["--no-such-flag"],
    ];
    for args in cases {
        let out = labkit::run(lab_bin!(), args);
        assert_one_line_error(&out, args, Some(2));
    }
    let occupied = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = occupied.local_addr().unwrap().to_string();
    let args = ["--listen", taken.as_str(), "--upstream", "127.0.0.1:9"];
    let out = labkit::run(lab_bin!(), &args);
    assert_one_line_error(&out, &args, Some(1));

    // `--addr`, the course's usual name for the listening address, is accepted too.
    let upstream = Upstream::start(|mut stream| stream.write_all(b"hello"));
    let proxy = Server::start(
        lab_bin!(),
        &["--upstream", upstream.addr.to_string().as_str()],
    );
    let mut client = connect(1, proxy.addr(), END_WAIT);
    let mut hello = [0; 5];
    client.read_exact(&mut hello).unwrap_or_else(|e| {
        panic!("requirement 1: started with --addr, the proxy forwarded nothing: {e}")
    });
    assert_eq!(&hello, b"hello", "requirement 1: forwarded bytes");
}

fn assert_one_line_error(out: &labkit::Output, args: &[&str], code: Option<i32>) {
    let stderr = out.stderr_str();
    let lines = stderr.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(
        lines == 1 && !stderr.contains("panicked"),
        "requirement 1: args {args:?}: wanted one line on stderr that says what is wrong, got \
         {lines}: {stderr:?}"
    );
    assert!(
        code.is_none() || out.code() == code,
        "requirement 1: args {args:?}: exit code {:?}; wanted {code:?} (2: a bad command line, \
         1: cannot listen)",
        out.code()
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 2: byte-exact, both directions at once.

#[test]
fn forwards_hundreds_of_mib_both_ways_byte_exact() {
    let up = Payload::random(128 * MIB..320 * MIB);
    let down = Payload::random(128 * MIB..320 * MIB);
    let (proxy, upstream) = proxy_to_exchanging_upstream(up, down, None);
    let client = exchange(connect(2, proxy.addr(), WAIT), up, down, None);
    assert_exchange(2, &client, &upstream.next(WAIT), up, down);
}

// ---------------------------------------------------------------------------------------------
// Requirement 3: zero-copy.

#[test]
fn keeps_rchar_and_wchar_far_below_the_bytes_moved() {
    let up = Payload::random(48 * MIB..128 * MIB);
    let down = Payload::random(48 * MIB..128 * MIB);
    let (proxy, upstream) = proxy_to_exchanging_upstream(up, down, None);
    let before = proc_io(proxy.pid());
    let client = exchange(connect(3, proxy.addr(), WAIT), up, down, None);
    assert_exchange(3, &client, &upstream.next(WAIT), up, down);
    let after = proc_io(proxy.pid());
    let grew = |key: &str| after[key].saturating_sub(before[key]);
    let (rchar, wchar) = (grew("rchar"), grew("wchar"));
    let moved = up.len + down.len;
    assert!(
        (rchar + wchar) * 100 < moved,
        "requirement 3: while the proxy forwarded {moved} bytes, its rchar grew by {rchar} and \
         its wchar by {wchar} (/proc/<pid>/io); wanted both together under 1% of the bytes \
         moved: the bytes went through read(2)/write(2) and a buffer in the proxy, splice them \
         through a pipe instead"
    );
}

#[test]
fn moves_no_byte_through_user_space_under_strace() {
    labkit::sys::require_strace();
    let up = Payload::random(8 * MIB..32 * MIB);
    let down = Payload::random(8 * MIB..32 * MIB);
    let (proxy, upstream) = proxy_to_exchanging_upstream(up, down, None);
    let tracer = Tracer::attach(proxy.pid());
    let client = exchange(connect(3, proxy.addr(), WAIT), up, down, None);
    assert_exchange(3, &client, &upstream.next(WAIT), up, down);
    let log = tracer.finish();
    let returned = bytes_returned(&log);
    let moved = up.len + down.len;
    let copied: u64 = DATA_CALLS
        .iter()
        .map(|name| returned.get(*name).copied().unwrap_or(0))
        .sum();
    let spliced = returned.get("splice").copied().unwrap_or(0);
    let by_call: Vec<String> = returned.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    assert!(
        copied * 100 < moved,
        "requirement 3: while the proxy forwarded {moved} bytes, its read/write/recv/send calls \
         returned {copied} bytes ({}); wanted under 1%: those bytes were copied into the proxy's \
         memory and out again. Move them with splice(2), socket -> pipe -> socket",
        by_call.join(", ")
    );
    assert!(
        spliced >= 2 * moved,
        "requirement 3: the proxy forwarded {moved} bytes, but its splice calls moved {spliced} \
         ({}); wanted at least twice the bytes, once into a pipe and once out of it",
        by_call.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 4: half-close.

#[test]
fn propagates_a_half_close_both_ways() {
    // The client finishes first: its end-of-file must reach the upstream, and the upstream's
    // answer, sent after that, must still reach the client, followed by end-of-file.
    let request = Payload::random(1..4 * MIB);
    let answer = Payload::random(1..4 * MIB);
    let upstream = Upstream::start(move |mut stream| {
        set_timeouts(&stream, END_WAIT);
        request.receive(&mut stream, None).map_err(|e| {
            format!(
                "the upstream, reading the {}-byte request until end-of-file: {e} (the client \
                 sent it all, then shutdown(SHUT_WR): pass the end-of-file on)",
                request.len
            )
        })?;
        answer
            .send(&mut stream)
            .map_err(|e| format!("the upstream, answering after the request's end: {e}"))
    });
    let proxy = start_proxy(upstream.addr);
    let mut client = connect(4, proxy.addr(), END_WAIT + END_WAIT);
    let client_side = thread::spawn(move || {
        request
            .send(&mut client)
            .map_err(|e| format!("sending the request: {e}"))?;
        answer.receive(&mut client, None).map_err(|e| {
            format!(
                "the client, reading the {}-byte answer after its own shutdown(SHUT_WR): {e}",
                answer.len
            )
        })
    });
    let at_upstream = upstream.next(END_WAIT + WAIT);
    assert_ok(4, at_upstream, "the upstream saw no end of the connection");
    assert_ok(4, client_side.join().ok(), "the client thread panicked");

    // The upstream finishes first: the client gets the answer and end-of-file, then sends its
    // request on the half-closed connection.
    let answer = Payload::random(1..4 * MIB);
    let request = Payload::random(1..4 * MIB);
    let upstream = Upstream::start(move |mut stream| {
        set_timeouts(&stream, END_WAIT + END_WAIT);
        answer
            .send(&mut stream)
            .map_err(|e| format!("the upstream, sending first: {e}"))?;
        request.receive(&mut stream, None).map_err(|e| {
            format!(
                "the upstream, reading the {}-byte request sent after its own \
                 shutdown(SHUT_WR): {e}",
                request.len
            )
        })
    });
    let proxy = start_proxy(upstream.addr);
    let mut client = connect(4, proxy.addr(), END_WAIT);
    answer.receive(&mut client, None).unwrap_or_else(|e| {
        panic!(
            "requirement 4: the client, reading the {}-byte message the upstream sent before its \
             shutdown(SHUT_WR): {e} (pass the end-of-file on, and keep the other direction open)",
            answer.len
        )
    });
    request.send(&mut client).unwrap_or_else(|e| {
        panic!("requirement 4: the client, sending on the half-closed connection: {e}")
    });
    assert_ok(
        4,
        upstream.next(END_WAIT + WAIT),
        "the upstream saw no end of the connection",
    );
}

// ---------------------------------------------------------------------------------------------
// Requirement 5: short splices, EAGAIN, slow readers.

#[test]
fn a_slow_reader_loses_no_byte() {
    // Both ends read slowly while the other end sends as fast as it can: the buffers towards
    // the readers fill, and the proxy's splices out of its pipes come back short, or EAGAIN.
    let up = Payload::random(8 * MIB..24 * MIB);
    let down = Payload::random(8 * MIB..24 * MIB);
    let slow = Slow {
        read_size: 16 << 10,
        pause: Duration::from_micros(500),
    };
    let (proxy, upstream) = proxy_to_exchanging_upstream(up, down, Some(slow));
    let client = exchange(connect(5, proxy.addr(), WAIT), up, down, Some(slow));
    assert_exchange(5, &client, &upstream.next(WAIT), up, down);
}

// ---------------------------------------------------------------------------------------------
// Requirement 6: many connections at once.

#[test]
fn serves_64_connections_at_once() {
    let upstream = Upstream::start(|stream| -> io::Result<()> {
        set_timeouts(&stream, WAIT);
        io::copy(&mut &stream, &mut &stream)?;
        stream.shutdown(Shutdown::Write)
    });
    let proxy = start_proxy(upstream.addr);
    let mut streams: Vec<TcpStream> = (0..64).map(|_| connect(6, proxy.addr(), WAIT)).collect();
    // Every connection is open and waits for its answer while the others are served.
    labkit::echo::exchange_messages(&mut streams, 6);
    // Then all of them move a few hundred KiB each way at the same time.
    let results: Vec<(Payload, Result<(), String>)> = thread::scope(|scope| {
        let runs: Vec<_> = streams
            .into_iter()
            .map(|stream| {
                let payload = Payload::random(64 << 10..1 << 20);
                scope.spawn(move || (payload, exchange(stream, payload, payload, None)))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("client thread"))
            .collect()
    });
    for (i, (payload, result)) in results.iter().enumerate() {
        if let Err(e) = result {
            panic!(
                "requirement 6: connection {i} of 64, echoing {} bytes through the proxy while \
                 63 others did the same: {e}",
                payload.len
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Requirement 7: errors.

#[test]
fn a_reset_closes_both_sides_and_the_proxy_goes_on() {
    // The client's first byte tells the upstream what to do; the upstream says when it has it.
    let (got_first, first_byte) = mpsc::channel();
    let upstream = Upstream::start(move |mut stream| -> Result<(), String> {
        set_timeouts(&stream, END_WAIT);
        let mut what = [0];
        stream
            .read_exact(&mut what)
            .map_err(|e| format!("the upstream got no first byte: {e}"))?;
        let _ = got_first.send(what[0]);
        match what[0] {
            // The client resets: the proxy must close our side too (EOF, or a reset).
            b'R' => read_until_closed(&mut stream).map_err(|got| {
                format!(
                    "after the client reset its connection, the upstream's side stayed open \
                     ({got} more bytes, then no end within {END_WAIT:?}): an error on one side \
                     must close both"
                )
            }),
            // We reset, with bytes on the way to the client.
            b'U' => {
                let _ = stream.write_all(&vec![7; 256 << 10]);
                labkit::echo::reset(stream);
                Ok(())
            }
            _ => {
                io::copy(&mut &stream, &mut &stream).map_err(|e| format!("echo: {e}"))?;
                stream.shutdown(Shutdown::Write).map_err(|e| e.to_string())
            }
        }
    });
    let mut proxy = start_proxy(upstream.addr);
    let baseline = labkit::sys::fd_count(proxy.pid());

    let mut client = connect(7, proxy.addr(), END_WAIT);
    let sent = client
        .write_all(b"R")
        .and_then(|()| client.write_all(&vec![1; 300 << 10]));
    if let Err(e) = sent {
        panic!("requirement 7: writing to the proxy: {e}");
    }
    // Reset once the upstream is connected through the proxy and has the first byte.
    assert!(
        first_byte.recv_timeout(END_WAIT) == Ok(b'R'),
        "requirement 7: the upstream did not get the client's first byte within {END_WAIT:?}"
    );
    labkit::echo::reset(client);
    assert_ok(
        7,
        upstream.next(END_WAIT + WAIT),
        "the upstream never finished",
    );

    let mut client = connect(7, proxy.addr(), END_WAIT);
    if let Err(e) = client.write_all(b"U") {
        panic!("requirement 7: writing to the proxy after a client reset: {e}");
    }
    assert_ok(7, upstream.next(WAIT), "the upstream never reset");
    if let Err(got) = read_until_closed(&mut client) {
        panic!(
            "requirement 7: after the upstream reset its connection, the client's side stayed \
             open ({got} bytes, then no end within {END_WAIT:?}): an error on one side must \
             close both"
        );
    }

    if !proxy.is_running() {
        proxy.fail(
            "requirement 7: exited after a peer reset; one connection's error must end that \
             connection only",
        );
    }
    let payload = Payload::random(MIB..4 * MIB);
    let mut client = connect(7, proxy.addr(), WAIT);
    if let Err(e) = client.write_all(b"E") {
        panic!("requirement 7: writing to the proxy after two resets: {e}");
    }
    let echoed = exchange(client, payload, payload, None);
    if let Err(e) = echoed {
        panic!("requirement 7: a new connection after two resets: {e}");
    }
    // The echo handler is done: its result is in.
    let _ = upstream.next(WAIT);
    assert_fds_back_to(&proxy, baseline, "two resets and one finished connection");
}

#[test]
fn a_refused_upstream_closes_the_client() {
    let mut proxy = start_proxy(labkit::net::closed_port());
    let baseline = labkit::sys::fd_count(proxy.pid());
    for attempt in 1..=3 {
        let mut client = connect(7, proxy.addr(), END_WAIT);
        let _ = client.write_all(b"anyone there?");
        if let Err(got) = read_until_closed(&mut client) {
            panic!(
                "requirement 7: attempt {attempt}: the upstream refuses connections, and the \
                 client's connection stayed open ({got} bytes, no end within {END_WAIT:?}); \
                 wanted it closed"
            );
        }
        if !proxy.is_running() {
            proxy.fail(&format!(
                "requirement 7: exited after the upstream refused a connection (attempt \
                 {attempt}); the proxy must keep serving"
            ));
        }
    }
    assert_fds_back_to(&proxy, baseline, "three refused connections");
}

/// Reads until end-of-file or an error (a reset): `Ok`. A timeout is `Err(bytes read)`.
fn read_until_closed(stream: &mut TcpStream) -> Result<(), u64> {
    set_timeouts(stream, END_WAIT);
    let mut buf = vec![0; 64 << 10];
    let mut got = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(got);
            }
            Err(_) => return Ok(()),
        }
    }
}

/// Waits until the proxy holds at most `baseline` fds (counted when it started listening),
/// plus [`FD_SLACK`].
fn assert_fds_back_to(proxy: &Server, baseline: usize, after: &str) {
    let pid = proxy.pid();
    let most = baseline + FD_SLACK;
    let closed = labkit::wait::until(END_WAIT, || labkit::sys::fd_count(pid) <= most);
    assert!(
        closed,
        "requirement 7: after {after}, the proxy holds {} fds; wanted at most {most} ({baseline} \
         when it started listening, and room for its epoll fd): close both sockets and both \
         pipes of a connection that ends",
        labkit::sys::fd_count(pid)
    );
}

// ---------------------------------------------------------------------------------------------
// The proxy and its upstream.

fn start_proxy(upstream: SocketAddr) -> Server {
    let mut cmd = Command::new(lab_bin!());
    cmd.args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.to_string());
    Server::start_command(cmd)
}

/// Connects to the proxy, with `timeout` on every read and write of the stream.
fn connect(requirement: u32, addr: SocketAddr, timeout: Duration) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, labkit::net::NET_TIMEOUT).unwrap_or_else(|e| {
        panic!(
            "requirement {requirement}: cannot connect to the proxy at {addr} ({e}): did it exit?"
        )
    });
    set_timeouts(&stream, timeout);
    stream
}

fn set_timeouts(stream: &TcpStream, timeout: Duration) {
    labkit::net::set_timeouts(stream, timeout);
}

/// A TCP server on 127.0.0.1:0 standing for the upstream: each connection it accepts goes to
/// `handle` on a thread of its own, and what `handle` returns comes out of [`Upstream::next`].
struct Upstream<T> {
    addr: SocketAddr,
    results: mpsc::Receiver<T>,
}

impl<T: Send + 'static> Upstream<T> {
    fn start(handle: impl Fn(TcpStream) -> T + Send + Sync + 'static) -> Upstream<T> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
        let addr = listener.local_addr().expect("upstream address");
        let (tx, results) = mpsc::channel();
        let handle = Arc::new(handle);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (tx, handle) = (tx.clone(), handle.clone());
                thread::spawn(move || {
                    let _ = tx.send(handle(stream));
                });
            }
        });
        Upstream { addr, results }
    }

    /// What the next connection to finish returned, or `None` after `timeout`.
    fn next(&self, timeout: Duration) -> Option<T> {
        self.results.recv_timeout(timeout).ok()
    }
}

/// A proxy in front of an upstream that sends `down` and receives `up` on every connection,
/// both at once.
fn proxy_to_exchanging_upstream(
    up: Payload,
    down: Payload,
    slow: Option<Slow>,
) -> (Server, Upstream<Result<(), String>>) {
    let upstream = Upstream::start(move |stream| {
        set_timeouts(&stream, WAIT);
        exchange(stream, down, up, slow)
    });
    (start_proxy(upstream.addr), upstream)
}

fn assert_exchange(
    requirement: u32,
    client: &Result<(), String>,
    upstream: &Option<Result<(), String>>,
    up: Payload,
    down: Payload,
) {
    match upstream {
        None => panic!(
            "requirement {requirement}: the upstream did not finish within {WAIT:?} of the client"
        ),
        Some(Err(e)) => panic!(
            "requirement {requirement}: client -> upstream, {} bytes (and {} back): at the \
             upstream, {e}",
            up.len, down.len
        ),
        Some(Ok(())) => {}
    }
    if let Err(e) = client {
        panic!(
            "requirement {requirement}: upstream -> client, {} bytes (and {} the other way): at \
             the client, {e}",
            down.len, up.len
        );
    }
}

fn assert_ok(requirement: u32, result: Option<Result<(), String>>, missing: &str) {
    match result {
        None => panic!("requirement {requirement}: {missing}"),
        Some(Err(e)) => panic!("requirement {requirement}: {e}"),
        Some(Ok(())) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Payloads.

/// `len` pseudo-random bytes generated from `seed`, in blocks of [`BLOCK`].
#[derive(Debug, Clone, Copy)]
struct Payload {
    seed: u64,
    len: u64,
}

/// How a slow peer reads: small reads, a pause after each.
#[derive(Debug, Clone, Copy)]
struct Slow {
    read_size: usize,
    pause: Duration,
}

impl Payload {
    fn random(len: Range<u64>) -> Payload {
        let mut rng = rand::rng();
        Payload {
            seed: rng.random(),
            len: rng.random_range(len),
        }
    }

    /// Writes the payload, then `shutdown(SHUT_WR)`.
    fn send(&self, stream: &mut TcpStream) -> io::Result<()> {
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let mut block = vec![0; BLOCK];
        let mut left = self.len;
        while left > 0 {
            rng.fill_bytes(&mut block);
            let n = left.min(BLOCK as u64) as usize;
            stream.write_all(&block[..n])?;
            left -= n as u64;
        }
        stream.shutdown(Shutdown::Write)
    }

    /// Reads until end-of-file and compares with the payload as the bytes arrive.
    fn receive(&self, stream: &mut TcpStream, slow: Option<Slow>) -> Result<(), String> {
        let mut rng = SmallRng::seed_from_u64(self.seed);
        let mut want = vec![0; BLOCK];
        let mut at = BLOCK; // nothing generated yet
        let mut buf = vec![0; slow.map_or(BLOCK, |s| s.read_size)];
        let mut offset = 0u64;
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("{e} after {offset} of {} bytes", self.len)),
            };
            if offset + n as u64 > self.len {
                return Err(format!(
                    "{} bytes arrived, {} were sent: bytes were doubled or came from the other \
                     direction",
                    offset + n as u64,
                    self.len
                ));
            }
            let mut got = &buf[..n];
            while !got.is_empty() {
                if at == BLOCK {
                    rng.fill_bytes(&mut want);
                    at = 0;
                }
                let k = got.len().min(BLOCK - at);
                if got[..k] != want[at..at + k] {
                    let i = (0..k).find(|&i| got[i] != want[at + i]).unwrap_or(0);
                    return Err(format!(
                        "byte {} of {} differs from what was sent: bytes were lost, reordered, \
                         or came from the other direction",
                        offset + i as u64,
                        self.len
                    ));
                }
                got = &got[k..];
                at += k;
                offset += k as u64;
            }
            if let Some(slow) = slow {
                thread::sleep(slow.pause);
            }
        }
        if offset != self.len {
            return Err(format!(
                "end-of-file after {offset} of {} bytes: the rest was lost",
                self.len
            ));
        }
        Ok(())
    }
}

/// Sends `send` (then half-closes) on one thread while receiving `receive` until end-of-file on
/// this one, so neither side can stall on full buffers.
fn exchange(
    stream: TcpStream,
    send: Payload,
    receive: Payload,
    slow: Option<Slow>,
) -> Result<(), String> {
    let mut writer = stream
        .try_clone()
        .map_err(|e| format!("clone the stream: {e}"))?;
    let mut reader = stream;
    thread::scope(|scope| {
        let sending = scope.spawn(move || send.send(&mut writer));
        let received = receive.receive(&mut reader, slow);
        if received.is_err() {
            // Wrong bytes: stop the sender too, instead of waiting for its writes to time out.
            let _ = reader.shutdown(Shutdown::Both);
        }
        let sent = sending.join().expect("sender thread");
        received?;
        sent.map_err(|e| format!("sending {} bytes: {e}", send.len))
    })
}

// ---------------------------------------------------------------------------------------------
// The kernel's view of the proxy.

/// `/proc/<pid>/io`: bytes passed to `read`/`write`-like calls (`rchar`, `wchar`), and more.
fn proc_io(pid: u32) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/io: {e}"));
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            Some((key.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The calls that move bytes through a buffer of the caller.
const DATA_CALLS: [&str; 14] = [
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "recvfrom",
    "sendto", "recvmsg", "sendmsg", "recvmmsg", "sendmmsg",
];

/// `strace` attached to a running process and all its threads, tracing [`DATA_CALLS`] and
/// `splice`. Killed with the test if the test fails.
struct Tracer {
    child: Child,
    log: PathBuf,
}

impl Tracer {
    fn attach(pid: u32) -> Tracer {
        let log = std::env::temp_dir().join(format!(
            "ch7_splice_proxy-strace-{}-{pid}.log",
            std::process::id()
        ));
        let mut calls = DATA_CALLS.join(",");
        calls.push_str(",splice");
        let mut cmd = Command::new("strace");
        // -s 0: no buffer contents, so " = " only ever precedes the return value.
        cmd.args(["-f", "-qq", "-s", "0", "-e"])
            .arg(format!("trace={calls}"))
            .arg("-o")
            .arg(&log)
            .arg("-p")
            .arg(pid.to_string());
        let child = labkit::process::die_with_test(&mut cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start strace: {e}"));
        let mut tracer = Tracer { child, log };
        // Attached when every thread of the proxy names a tracer in /proc.
        let attached = labkit::wait::until(END_WAIT, || {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                return false;
            };
            tasks.flatten().all(|task| {
                std::fs::read_to_string(task.path().join("status")).is_ok_and(|status| {
                    status
                        .lines()
                        .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
                })
            })
        });
        if !attached {
            let _ = tracer.child.kill();
            let mut why = String::new();
            if let Some(mut stderr) = tracer.child.stderr.take() {
                let _ = stderr.read_to_string(&mut why);
            }
            panic!(
                "strace could not attach to the proxy within {END_WAIT:?}: run as root or allow \
                 ptrace (`sysctl kernel.yama.ptrace_scope=0`): {why}"
            );
        }
        tracer
    }

    /// Detaches (SIGINT: strace lets go of the proxy, which runs on) and returns the log.
    fn finish(mut self) -> String {
        // SAFETY: kill(2) on the strace process we started; no memory is involved.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        if labkit::process::wait_timeout(&mut self.child, WAIT).is_none() {
            panic!("strace did not detach within {WAIT:?}");
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        log
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Sum of the non-negative return values per system call in a strace log: bytes, for the
/// calls traced here. A call that another thread's call interrupted in the log is printed in
/// two halves (`read(3, <unfinished ...>` then `<... read resumed>...) = 42`): the second half
/// holds the return value.
fn bytes_returned(log: &str) -> HashMap<String, u64> {
    let mut sums: HashMap<String, u64> = HashMap::new();
    for line in log.lines() {
        // Lines start with the thread id under -f.
        let line = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
        let name = match line.strip_prefix("<... ") {
            Some(rest) => rest.split_whitespace().next().unwrap_or_default(),
            None => match line.split_once('(') {
                Some((name, _)) => name,
                None => continue, // `--- SIGxxx ...`, `+++ exited ...`
            },
        };
        // strace pads short calls: `read(5, ""..., 65536)        = 65536`.
        let Some((call, ret)) = line.rsplit_once(" = ") else {
            continue; // `<unfinished ...>`: the other half has the result
        };
        if !call.trim_end().ends_with(')') {
            continue;
        }
        if let Some(n) = ret
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
        {
            *sums.entry(name.to_string()).or_default() += n;
        }
    }
    sums
}
