//! Load client for the echo servers of chapter 7 (graders and benchmarks run it; it is not part
//! of any exercise). A lab exposes it as a binary whose `main` calls [`main`], so that it runs in
//! a process of its own.
//!
//! ```text
//! <client> --addr HOST:PORT [--connections N] [--messages M] [--min-len A] [--max-len B]
//!          [--window W] [--timeout-secs T] [--hold]
//! ```
//!
//! Opens N connections and keeps them all open until the end. Through each one it sends M
//! random messages (A to B bytes), one at a time: the next message leaves when the echo of the
//! previous one came back, byte for byte. It runs in its own process because each side of
//! 10,000 connections needs 10,000 file descriptors, and one process may hold 20,000 here.
//!
//! 1. **Connect phase.** At most W connections are "in flight" (connecting, or waiting for the
//!    echo of their first message), so the server's accept queue never overflows. When every
//!    connection has its first echo, the client prints `connected N in X ms`.
//! 2. With `--hold`, it then waits for a line on stdin: the grader counts the server's fds
//!    while all N connections are open, then says go.
//! 3. **Message phase.** The other M-1 messages of every connection, timed: the client prints
//!    `echoed K messages in Y ms: Z msgs/s` and exits 0. Half of the connections close with a
//!    FIN, half with a reset.
//!
//! Any wrong byte, early close or error prints `error: ...` and exits 1; so does running out of
//! time (`--timeout-secs`, default 60). A bad command line is one line on stderr and exit code 2;
//! `--help` lists the options. One thread and one epoll instance do all of it.

use std::io::{self, BufRead};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    about = "Load client for the echo servers: N connections, M random messages each, every \
             echo checked byte for byte"
)]
struct Args {
    /// The echo server's address
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Connections open at the same time
    #[arg(long, value_name = "N", default_value_t = 1000)]
    connections: usize,
    /// Messages per connection (at least 1)
    #[arg(long, value_name = "M", default_value_t = 5)]
    messages: usize,
    /// Smallest message, in bytes (at least 1)
    #[arg(long, value_name = "A", default_value_t = 1)]
    min_len: usize,
    /// Largest message, in bytes
    #[arg(long, value_name = "B", default_value_t = 1024)]
    max_len: usize,
    /// Connections waiting for their first echo at most
    #[arg(long, value_name = "W", default_value_t = 1000)]
    window: usize,
    /// Give up after this many seconds
    #[arg(long, value_name = "T", default_value_t = 60)]
    timeout_secs: u64,
    /// After the connect phase, wait for a line on stdin before the message phase
    #[arg(long)]
    hold: bool,
}

struct Options {
    addr: SocketAddr,
    connections: usize,
    messages: usize,
    min_len: usize,
    max_len: usize,
    window: usize,
    timeout: Duration,
    hold: bool,
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2).
fn parse_args() -> Result<Options, ExitCode> {
    let args = Args::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "load client: {} (see --help)",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })?;
    let min_len = args.min_len.max(1);
    Ok(Options {
        addr: args.addr,
        connections: args.connections,
        messages: args.messages.max(1),
        min_len,
        max_len: args.max_len.max(min_len),
        window: args.window.max(1),
        timeout: Duration::from_secs(args.timeout_secs),
        hold: args.hold,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Sending,
    Receiving,
    /// First echo received; waiting for the message phase.
    Held,
    Done,
}

struct Conn {
    fd: OwnedFd,
    state: State,
    /// The message in flight and how much of it was written / echoed back.
    message: Vec<u8>,
    written: usize,
    received: usize,
    /// Messages fully echoed so far.
    echoed: usize,
}

/// A fast PRNG (xorshift64*): random sizes and bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut Vec<u8>, min: usize, max: usize) {
        let len = min + (self.next() as usize) % (max - min + 1);
        buf.clear();
        while buf.len() < len {
            buf.extend_from_slice(&self.next().to_le_bytes());
        }
        buf.truncate(len);
    }
}

struct Client {
    options: Options,
    epoll: OwnedFd,
    conns: Vec<Conn>,
    rng: Rng,
    /// Connections opened whose first echo has not come back yet.
    in_flight: usize,
    held: usize,
    done: usize,
    started: bool,
    buf: Vec<u8>,
}

fn os_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

impl Client {
    /// Opens one non-blocking connection and registers it, edge-triggered, both directions.
    fn open(&mut self) -> Result<(), String> {
        let domain = if self.options.addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket() takes integers only.
        let fd = unsafe { libc::socket(domain, kind, 0) };
        if fd < 0 {
            return Err(os_error("socket"));
        }
        // SAFETY: `fd` is fresh and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let (addr, len) = sockaddr(self.options.addr);
        // SAFETY: `addr` holds a valid sockaddr of `len` bytes.
        let rc = unsafe { libc::connect(fd.as_raw_fd(), (&raw const addr).cast(), len) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(format!(
                "connection {}: {}",
                self.conns.len(),
                os_error("connect")
            ));
        }
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: self.conns.len() as u64,
        };
        // SAFETY: `event` is valid for the call; both fds are open.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(os_error("epoll_ctl"));
        }
        self.conns.push(Conn {
            fd,
            state: State::Connecting,
            message: Vec::with_capacity(self.options.max_len),
            written: 0,
            received: 0,
            echoed: 0,
        });
        self.in_flight += 1;
        Ok(())
    }

    /// Moves connection `i` forward until its socket would block.
    fn progress(&mut self, i: usize) -> Result<(), String> {
        let Client {
            conns,
            rng,
            buf,
            options,
            ..
        } = self;
        let conn = &mut conns[i];
        let fd = conn.fd.as_raw_fd();
        loop {
            match conn.state {
                State::Held | State::Done => return Ok(()),
                State::Connecting => {
                    let error = socket_error(fd);
                    if error == libc::EINPROGRESS || error == libc::EALREADY {
                        return Ok(());
                    }
                    if error != 0 {
                        let e = io::Error::from_raw_os_error(error);
                        return Err(format!("connection {i}: connect: {e}"));
                    }
                    if !is_connected(fd) {
                        return Ok(()); // not yet: the EPOLLOUT edge comes later
                    }
                    rng.fill(&mut conn.message, options.min_len, options.max_len);
                    conn.state = State::Sending;
                }
                State::Sending => {
                    let rest = &conn.message[conn.written..];
                    // SAFETY: writes from a live slice of `rest.len()` bytes.
                    let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
                    if n < 0 {
                        return would_block(i, conn.echoed, "write");
                    }
                    conn.written += n as usize;
                    if conn.written == conn.message.len() {
                        // The echo cannot be there yet: rather than a read that says EAGAIN,
                        // wait for the EPOLLIN edge its arrival will cause.
                        conn.state = State::Receiving;
                        return Ok(());
                    }
                }
                State::Receiving => {
                    let want = conn.message.len() - conn.received;
                    // Ask for one byte more than we expect: a server that echoes too much is
                    // caught here instead of corrupting the next message.
                    let len = (want + 1).min(buf.len());
                    // SAFETY: reads into a live buffer of at least `len` bytes.
                    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), len) };
                    if n < 0 {
                        return would_block(i, conn.echoed, "read");
                    }
                    let n = n as usize;
                    if n == 0 {
                        return Err(format!(
                            "connection {i}: the server closed the connection after echoing \
                             {} of {} bytes of message {}",
                            conn.received,
                            conn.message.len(),
                            conn.echoed + 1
                        ));
                    }
                    if n > want {
                        return Err(format!(
                            "connection {i}: message {} of {} bytes: the server sent more bytes \
                             than the client did",
                            conn.echoed + 1,
                            conn.message.len()
                        ));
                    }
                    let expected = &conn.message[conn.received..conn.received + n];
                    if let Some(at) = expected.iter().zip(&buf[..n]).position(|(a, b)| a != b) {
                        return Err(format!(
                            "connection {i}: message {}: the echo differs at byte {}",
                            conn.echoed + 1,
                            conn.received + at
                        ));
                    }
                    conn.received += n;
                    if conn.received < conn.message.len() {
                        continue;
                    }
                    conn.echoed += 1;
                    conn.written = 0;
                    conn.received = 0;
                    if conn.echoed == 1 {
                        self.in_flight -= 1;
                        if !self.started {
                            conn.state = State::Held;
                            self.held += 1;
                            return Ok(());
                        }
                    }
                    if conn.echoed == options.messages {
                        conn.state = State::Done;
                        self.done += 1;
                        return Ok(());
                    }
                    rng.fill(&mut conn.message, options.min_len, options.max_len);
                    conn.state = State::Sending;
                }
            }
        }
    }

    /// Starts the message phase: every held connection sends its second message.
    fn start(&mut self) -> Result<(), String> {
        self.started = true;
        for i in 0..self.conns.len() {
            let conn = &mut self.conns[i];
            if conn.state != State::Held {
                continue;
            }
            self.held -= 1;
            if conn.echoed == self.options.messages {
                conn.state = State::Done;
                self.done += 1;
                continue;
            }
            self.rng.fill(
                &mut conn.message,
                self.options.min_len,
                self.options.max_len,
            );
            conn.state = State::Sending;
            self.progress(i)?;
        }
        Ok(())
    }

    /// One `epoll_wait` (at most 100 ms) and the progress it allows.
    fn turn(&mut self, events: &mut [libc::epoll_event]) -> Result<(), String> {
        // SAFETY: the kernel writes at most `events.len()` events into the slice.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                100,
            )
        };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(os_error("epoll_wait"));
        }
        for event in &events[..n as usize] {
            self.progress(event.u64 as usize)?;
        }
        Ok(())
    }

    fn status(&self) -> String {
        let waiting = self
            .conns
            .iter()
            .position(|c| !matches!(c.state, State::Done | State::Held));
        let first = match waiting {
            Some(i) => format!(
                "; connection {i} is stuck in {:?} after {} echoed messages ({} of {} bytes \
                 written, {} echoed)",
                self.conns[i].state,
                self.conns[i].echoed,
                self.conns[i].written,
                self.conns[i].message.len(),
                self.conns[i].received
            ),
            None => String::new(),
        };
        format!(
            "{} of {} connections opened, {} had their first echo, {} finished all {} messages{first}",
            self.conns.len(),
            self.options.connections,
            self.conns.len() - self.in_flight,
            self.done,
            self.options.messages
        )
    }
}

/// `EAGAIN` means "wait for the next edge"; anything else ends the run.
fn would_block(i: usize, echoed: usize, what: &str) -> Result<(), String> {
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
        _ => Err(format!(
            "connection {i}: {what} after {echoed} echoed messages: {e}"
        )),
    }
}

/// `SO_ERROR`: the result of a non-blocking connect.
fn socket_error(fd: RawFd) -> libc::c_int {
    let mut error: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one c_int into `error` and its size into `len`.
    unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).cast(),
            &mut len,
        )
    };
    error
}

/// Whether the handshake finished (`getpeername` succeeds only on a connected socket).
fn is_connected(fd: RawFd) -> bool {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `addr`.
    unsafe { libc::getpeername(fd, (&raw mut addr).cast(), &mut len) == 0 }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is big and aligned enough for a sockaddr_in.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for a sockaddr_in6.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Closes with a reset instead of a FIN (`SO_LINGER` 0): no TIME_WAIT left behind.
fn reset(fd: OwnedFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads one valid linger value; the fd is open.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    drop(fd);
}

fn raise_fd_limit(needed: usize) -> Result<(), String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the exclusive reference.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } < 0 {
        return Err(os_error("getrlimit"));
    }
    if (limit.rlim_max as usize) < needed {
        return Err(format!(
            "{needed} connections need {needed} open files, the hard limit is {}: raise it \
             (ulimit -Hn)",
            limit.rlim_max
        ));
    }
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads one valid rlimit; soft up to hard is always allowed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } < 0 {
        return Err(os_error("setrlimit"));
    }
    Ok(())
}

fn run(options: Options) -> Result<(), String> {
    raise_fd_limit(options.connections + 64)?;
    // SAFETY: epoll_create1 takes an int.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epoll < 0 {
        return Err(os_error("epoll_create1"));
    }
    let seed = std::hash::BuildHasher::hash_one(
        &std::hash::RandomState::new(),
        (Instant::now(), std::process::id()),
    );
    let mut client = Client {
        // SAFETY: `epoll` is fresh and ours.
        epoll: unsafe { OwnedFd::from_raw_fd(epoll) },
        conns: Vec::with_capacity(options.connections),
        rng: Rng(seed | 1),
        in_flight: 0,
        held: 0,
        done: 0,
        started: false,
        buf: vec![0; options.max_len + 1],
        options,
    };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let begin = Instant::now();
    let deadline = begin + client.options.timeout;
    let timed_out = |client: &Client| {
        Err(format!(
            "timed out after {:?}: {}",
            client.options.timeout,
            client.status()
        ))
    };

    // Connect phase: open connections, never more than `window` waiting for their first echo.
    while client.held < client.options.connections {
        while client.conns.len() < client.options.connections
            && client.in_flight < client.options.window
        {
            client.open()?;
        }
        client.turn(&mut events)?;
        if Instant::now() > deadline {
            return timed_out(&client);
        }
    }
    println!(
        "connected {} in {} ms",
        client.options.connections,
        begin.elapsed().as_millis()
    );
    if client.options.hold {
        // Whatever the line says (or end of file), go on.
        let mut line = String::new();
        let _ = io::stdin().lock().read_line(&mut line);
    }

    // Message phase.
    let start = Instant::now();
    client.start()?;
    while client.done < client.options.connections {
        client.turn(&mut events)?;
        if Instant::now() > deadline {
            return timed_out(&client);
        }
    }
    let elapsed = start.elapsed();
    let messages = client.options.connections * (client.options.messages - 1);
    println!(
        "echoed {messages} messages in {} ms: {:.0} msgs/s",
        elapsed.as_millis(),
        messages as f64 / elapsed.as_secs_f64()
    );
    for (i, conn) in client.conns.drain(..).enumerate() {
        if i % 2 == 0 {
            drop(conn.fd);
        } else {
            reset(conn.fd);
        }
    }
    Ok(())
}

/// The client's entry point: parses `std::env::args` and runs.
pub fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(code) => return code,
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs the client binary `client` once against `addr` with messages of exactly `len` bytes,
/// and returns the messages per second of its message phase: what the echo benchmarks compare.
/// Panics with the client's output, naming `server`, when the run fails.
pub fn rate(
    client: &str,
    addr: SocketAddr,
    connections: usize,
    messages: usize,
    len: usize,
    server: &str,
) -> f64 {
    let out = std::process::Command::new(client)
        .args(["--addr", &addr.to_string()])
        .args(["--connections", &connections.to_string()])
        .args(["--messages", &messages.to_string()])
        .args(["--min-len", &len.to_string()])
        .args(["--max-len", &len.to_string()])
        .args(["--timeout-secs", "60"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run the load client {client}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "load client failed against {server}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "echoed K messages in Y ms: Z msgs/s"
    stdout
        .lines()
        .find_map(|line| {
            line.strip_suffix(" msgs/s")?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no rate in the load client's output: {stdout}"))
}
