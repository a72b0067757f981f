//! ## Goal
//! Write the event loop that mio and tokio are built on, with nothing between you and the kernel:
//! declare `epoll_create1`, `epoll_ctl` and `epoll_wait` yourself in an `extern "C"` block, with
//! `struct epoll_event` laid out exactly as the kernel expects; wrap them in a small safe API
//! (`Epoll`, `Events`, `Token`, `Interest`, level, edge and oneshot triggering); then build a
//! one-thread echo server on it that holds ten thousand connections at once. The grader checks
//! the wrapper's semantics on pipes and sockets, then runs the server against a client process
//! that opens 10,000 concurrent connections.
//!
//! ## Requirements
//! 1. **The FFI matches the kernel.** `EpollEvent` has the layout of `struct epoll_event`: 12
//!    bytes and packed on x86_64, 16 bytes elsewhere (the grader compares it with the `libc`
//!    crate's declaration). `Epoll::new` uses `EPOLL_CLOEXEC`, and the `Epoll` owns its fd:
//!    dropping it closes the fd.
//! 2. **Triggering.** `Trigger::Level` reports a ready fd on every wait while it stays ready;
//!    `Trigger::Edge` reports a change once (new data, new room), even if the data stays unread;
//!    `Trigger::Oneshot` reports one event and then nothing until `modify` re-arms it. An event
//!    says `is_readable`, `is_writable`, `is_read_closed` (`EPOLLRDHUP` for a peer's FIN, which
//!    READABLE always asks for; `EPOLLHUP` for a pipe whose writer closed) and `is_error`.
//! 3. **Registration.** Tokens (any `u64`, 0 and `u64::MAX` included) come back unchanged;
//!    `modify` changes the interest; `delete` stops the reports; adding an fd twice is `EEXIST`,
//!    deleting an unregistered one is `ENOENT` (as `io::Error`s, never a panic); `wait` stores at
//!    most `Events::with_capacity(n)` events.
//! 4. **Timeouts.** `wait(events, Some(d))` returns 0 events after `d` when nothing is ready, and
//!    rounds `d` **up** to whole milliseconds (a 300 µs timeout must not become 0);
//!    `wait(events, None)` has no timeout (-1 for `epoll_wait`) and returns with the first event.
//! 5. **Command line.** `ch7_epoll_ffi [--addr HOST:PORT]` prints `listening on <addr>` with the
//!    address the socket is bound to (`local_addr()`: the grader passes port 0). `--help` prints
//!    the usage on stdout and exits 0; a bad address or an unknown argument is one line on stderr
//!    and exit code 2; an address in use is one line on stderr and exit code 1.
//! 6. **Echo.** Every byte comes back in order, through partial writes (bytes the socket did not
//!    take wait in the connection's own buffer, and the server stops reading that client until
//!    they are sent); after a client's `shutdown(Write)` the server sends all it still owes, then
//!    closes; a client that never reads does not stop the others, and is not read either: its
//!    writes stall once the kernel's buffers are full, and the server's resident memory (`VmRSS`)
//!    grows by at most 16 MiB while it tries to send 96 MiB. After an edge the server reads until
//!    `EAGAIN` (or a short read): 200 to 700 KiB that pile up in a socket while the server is
//!    stopped (`SIGSTOP`) all come back.
//! 7. **Backlog, resets, closing.** The listening socket is made with `libc::socket`, `bind` and
//!    `listen(fd, 1024)` (std, mio and tokio use 128); clients that reset do not kill the server;
//!    every connection's fd is closed when its client leaves.
//! 8. **C10K.** The server raises its soft `RLIMIT_NOFILE` to the hard limit, and serves 10,000
//!    concurrent connections from another process, each exchanging several random messages, every
//!    echo byte-exact; the server holds one fd per connection meanwhile and returns to its
//!    baseline fd count afterwards.
//! 9. **One thread, asleep when idle.** The server runs one thread (`/proc/<pid>/task`), and with
//!    10 clients connected and silent it sleeps in `epoll_wait`: over one idle second it wakes at
//!    most 20 times and uses at most 5 CPU ticks.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.6    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: **The FFI matches the kernel.** `EpollEvent` has the layout of `struct
//!   epoll_event`: 12 bytes and packed on x86_64, 16 bytes elsewhere (the grader compares it with
//!   the `libc` crate's declaration)
//! - [ ] Requirement 2: **Triggering.** `Trigger::Level` reports a ready fd on every wait while it
//!   stays ready; `Trigger::Edge` reports a change once (new data, new room), even if the data
//!   stays unread; `Trigger::Oneshot` reports one event and then nothing until `modify` re-arms it
//! - [ ] Requirement 3: **Registration.** Tokens (any `u64`, 0 and `u64::MAX` included) come back
//!   unchanged; `modify` changes the interest; `delete` stops the reports; adding an fd twice is
//!   `EEXIST`, deleting an unregistered one is `ENOENT` (as `io::Error`s, never a panic); `wait`
//!   stores at most `Events::with_capacity(n)` events
//! - [ ] Requirement 4: **Timeouts.** `wait(events, Some(d))` returns 0 events after `d` when
//!   nothing is ready, and rounds `d` **up** to whole milliseconds (a 300 µs timeout must not
//!   become 0); `wait(events, None)` has no timeout (-1 for `epoll_wait`) and returns with the
//!   first event
//! - [ ] Requirement 5: **Command line.** `ch7_epoll_ffi [--addr HOST:PORT]` prints `listening on
//!   <addr>` with the address the socket is bound to (`local_addr()`: the grader passes port 0)
//! - [ ] Requirement 6: **Echo.** Every byte comes back in order, through partial writes (bytes the
//!   socket did not take wait in the connection's own buffer, and the server stops reading that
//!   client until they are sent); after a client's `shutdown(Write)` the server sends all it still
//!   owes, then closes; a client that never reads does not stop the others, and is not read either:
//!   its writes stall once the kernel's buffers are full, and the server's resident memory
//!   (`VmRSS`) grows by at most 16 MiB while it tries to send 96 MiB
//! - [ ] Requirement 7: **Backlog, resets, closing.** The listening socket is made with
//!   `libc::socket`, `bind` and `listen(fd, 1024)` (std, mio and tokio use 128); clients that reset
//!   do not kill the server; every connection's fd is closed when its client leaves
//! - [ ] Requirement 8: **C10K.** The server raises its soft `RLIMIT_NOFILE` to the hard limit, and
//!   serves 10,000 concurrent connections from another process, each exchanging several random
//!   messages, every echo byte-exact; the server holds one fd per connection meanwhile and returns
//!   to its baseline fd count afterwards
//! - [ ] Requirement 9: **One thread, asleep when idle.** The server runs one thread
//!   (`/proc/<pid>/task`), and with 10 clients connected and silent it sleeps in `epoll_wait`: over
//!   one idle second it wakes at most 20 times and uses at most 5 CPU ticks
//!
//! ## Notes
//!
//! epoll through FFI: a C10K echo server on three system calls you declare yourself.
//!
//! `ch7_epoll_ffi [--addr HOST:PORT]` sends back every byte each client sends, to ten thousand
//! clients at once, on one thread. Read README.md for the requirements; `cargo lab test 7.6`
//! grades this file.
//!
//! Three layers, bottom up:
//!
//! 1. **The FFI**: [`EpollEvent`] and an `unsafe extern "C"` block declaring `epoll_create1`,
//!    `epoll_ctl` and `epoll_wait` (the C prototypes are in `man 2 epoll_ctl`). Mind the
//!    layout of `struct epoll_event` on x86_64.
//! 2. **A safe wrapper**: [`Epoll`] (owns its fd), [`Events`], [`Event`], with the portable
//!    [`Token`], [`Interest`] and [`Trigger`] given below. No `unsafe` outside this layer.
//! 3. **The server**: [`bind`] with a backlog of 1,024, then [`serve`]: one edge-triggered
//!    registration per connection, reads until `EAGAIN`, partial writes kept per connection.
//!
//! The grader calls the wrapper directly (tests/test_epoll.rs) and runs the binary (tests/test_server.rs,
//! tests/test_c10k.rs). Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// The listen backlog: std, mio and tokio all use 128, too shallow for a burst of connects.
pub const BACKLOG: i32 = 1024;

const USAGE: &str = "usage: ch7_epoll_ffi [--addr HOST:PORT]";

// ---------------------------------------------------------------------------------------------
// Portable types (given): what the caller asks for.

/// A number attached to a registration; the kernel hands it back with every event (in the
/// `data` field of `struct epoll_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

/// Which readiness a registration waits for. READABLE should also ask for `EPOLLRDHUP`, so a
/// peer's half-close shows in the event flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    readable: bool,
    writable: bool,
}

impl Interest {
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };

    pub fn is_readable(self) -> bool {
        self.readable
    }

    pub fn is_writable(self) -> bool {
        self.writable
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        Interest {
            readable: self.readable || other.readable,
            writable: self.writable || other.writable,
        }
    }
}

/// When the kernel reports a ready fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// On every wait, as long as the fd is ready (no extra flag).
    Level,
    /// Once per change: `EPOLLET`. The caller must read/write until `EAGAIN`.
    Edge,
    /// One event, then disarmed until `modify`: `EPOLLONESHOT`.
    Oneshot,
}

// ---------------------------------------------------------------------------------------------
// The FFI.

/// `struct epoll_event` from `<sys/epoll.h>`: `uint32_t events; epoll_data_t data;` where
/// `data` is a 64-bit union (we only use its `u64`).
///
/// TODO: the kernel declares this struct `__attribute__((packed))` on x86_64 (and only there):
/// 12 bytes instead of 16. Make the layout right on every architecture
/// (`#[cfg_attr(target_arch = "x86_64", repr(packed))]`), and never take a reference to a field
/// of a packed struct: copy it out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EpollEvent {
    pub events: u32,
    pub data: u64,
}

// TODO: declare the three functions (glibc exports them):
//
//   int epoll_create1(int flags);
//   int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
//   int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
//
// in an `unsafe extern "C" { ... }` block, and the constants you need: EPOLL_CLOEXEC
// (0o2000000), EPOLL_CTL_ADD/DEL/MOD (1/2/3), EPOLLIN 0x1, EPOLLOUT 0x4, EPOLLERR 0x8,
// EPOLLHUP 0x10, EPOLLRDHUP 0x2000, EPOLLONESHOT 1<<30, EPOLLET 1<<31.

// ---------------------------------------------------------------------------------------------
// The safe wrapper.

/// An epoll instance. It owns its fd: closed exactly once, on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Epoll> {
        todo!("epoll_create1 with EPOLL_CLOEXEC; wrap the fd in an OwnedFd")
    }

    /// Starts watching `fd` (`EPOLL_CTL_ADD`); the token goes in the event's `data`.
    pub fn add(
        &self,
        fd: &impl AsRawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        todo!("EPOLL_CTL_ADD with the flags for interest and trigger")
    }

    /// Changes the registration (`EPOLL_CTL_MOD`); re-arms a oneshot one.
    pub fn modify(
        &self,
        fd: &impl AsRawFd,
        token: Token,
        interest: Interest,
        trigger: Trigger,
    ) -> io::Result<()> {
        todo!("EPOLL_CTL_MOD")
    }

    /// Stops watching `fd` (`EPOLL_CTL_DEL`).
    pub fn delete(&self, fd: &impl AsRawFd) -> io::Result<()> {
        todo!("EPOLL_CTL_DEL")
    }

    /// Waits until an fd is ready or `timeout` passes (`None`: forever); fills `events` and
    /// returns how many there are. Round a timeout up to whole milliseconds (300 µs must not
    /// become 0). A signal (`EINTR`) is "0 events", not an error.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        todo!("epoll_wait into the spare capacity of events, then set_len")
    }
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The buffer `epoll_wait` fills, allocated once and reused.
pub struct Events {
    buf: Vec<EpollEvent>,
}

impl Events {
    /// Room for `capacity` events (at least 1: epoll_wait rejects 0).
    pub fn with_capacity(capacity: usize) -> Events {
        todo!("a Vec with that capacity")
    }

    pub fn len(&self) -> usize {
        todo!()
    }

    pub fn is_empty(&self) -> bool {
        todo!()
    }

    /// The events of the last wait.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf
            .iter()
            .map(|raw| -> Event { todo!("copy `events` and `data` out of the EpollEvent") })
    }
}

/// One ready fd: its token and its event flags.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    token: Token,
    flags: u32,
}

impl Event {
    pub fn token(&self) -> Token {
        todo!()
    }

    /// `EPOLLIN` (or `EPOLLPRI`).
    pub fn is_readable(&self) -> bool {
        todo!()
    }

    /// `EPOLLOUT`.
    pub fn is_writable(&self) -> bool {
        todo!()
    }

    /// `EPOLLRDHUP` (the peer's FIN) or `EPOLLHUP` (a pipe's writer closed).
    pub fn is_read_closed(&self) -> bool {
        todo!()
    }

    /// `EPOLLERR`.
    pub fn is_error(&self) -> bool {
        todo!()
    }
}

// TODO (optional, cannot be graded on Linux): the same wrapper over kqueue, in a module behind
// `#[cfg(any(target_os = "macos", target_os = "freebsd"))]`. See README, "Going further".

// ---------------------------------------------------------------------------------------------
// The echo server.

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// The event queue itself failed: exit code 1.
    Poll(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServerError::Poll(source) => write!(f, "event loop: {source}"),
        }
    }
}

/// The command line: `ch7_epoll_ffi [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_epoll_ffi",
    about = "An echo server for ten thousand clients: one thread, epoll through FFI"
)]
pub struct Args {
    /// Where to listen (port 0: the kernel picks a free one; print the bound address)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2), shorter than clap's own message.
pub fn parse_args() -> Result<Args, ExitCode> {
    Args::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "ch7_epoll_ffi: {}; {USAGE}",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
}

/// The non-blocking listening socket with a backlog of [`BACKLOG`], made with `libc::socket`
/// (`SOCK_NONBLOCK | SOCK_CLOEXEC`), `SO_REUSEADDR`, `bind` and `listen`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    todo!("socket, setsockopt(SO_REUSEADDR), bind, listen(BACKLOG); TcpListener::from(OwnedFd)")
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (one fd per connection: 1,024 is far
/// below C10K). Returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    todo!("getrlimit, then setrlimit with rlim_cur = rlim_max")
}

/// The event loop. Returns only if the event queue itself fails; a connection's error closes
/// that connection only.
///
/// Suggested shape: the listener registered READABLE (level-triggered), accepted until
/// `EAGAIN`; each connection registered once, READABLE | WRITABLE, edge-triggered, token = its
/// index in a slab (`Vec<Option<Connection>>` plus a free list). On any event for a connection:
/// flush its pending bytes, then read and echo until `EAGAIN`; a short write keeps the rest
/// pending (and stops reading: backpressure); a read of 0 means: flush, then close.
pub fn serve(listener: TcpListener) -> Result<(), ServerError> {
    todo!("the epoll event loop")
}

/// Raises the fd limit, binds, prints `listening on <addr>`, serves.
pub fn run(addr: SocketAddr) -> Result<(), ServerError> {
    todo!(
        "raise_fd_limit, bind, println!(\"listening on {{addr}}\") with the bound address \
         (local_addr(): the grader passes port 0), serve"
    )
}

fn main() -> ExitCode {
    let addr = match parse_args() {
        Ok(args) => args.addr,
        Err(code) => return code,
    };
    match run(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_epoll_ffi: {e}");
            ExitCode::from(1)
        }
    }
}
