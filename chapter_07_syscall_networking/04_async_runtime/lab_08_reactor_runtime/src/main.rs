//! ## Goal
//! Build a small tokio: an executor like lab 7's with a reactor under it. The reactor registers
//! every socket once with epoll, keeps the waker of the task waiting on each socket, keeps the
//! timers ordered by deadline, and parks the thread in `epoll_wait` with the nearest deadline as
//! the timeout; an eventfd lets other threads interrupt that sleep. On top: `sleep`,
//! `AsyncTcpListener::accept`, `AsyncTcpStream::read` / `write`, `spawn`, and an echo server
//! written with plain `async fn`s that holds its own against tokio's `current_thread` runtime.
//!
//! ## Requirements
//! 1. **Timers.** `sleep(d)` / `sleep_until(deadline)` complete at their deadline, never before;
//!    10,000 sleeping tasks wake in deadline order; while sleeping, the thread sleeps in
//!    `epoll_wait` (timeout rounded up to a millisecond) and uses almost no CPU, even for a sleep
//!    shorter than a millisecond (100 sleeps of 300 µs put the thread to sleep at least 50 times);
//!    tasks spawned with `spawn` interleave on their timers. A `Sleep` dropped before its deadline
//!    (the losing side of a `select` or a timeout) removes its timer: the task that dropped it is
//!    not woken for it.
//! 2. **The reactor.** A task blocked on a socket is woken exactly when data arrives: its read
//!    future is polled once (`EAGAIN`: the waker is left with the reactor) and once more after the
//!    data arrives, never for another reason (the socket becoming writable, a timer, a loop).
//! 3. **Cross-thread wakes.** A waker called from another thread while the runtime is parked in
//!    `epoll_wait` with no timer and no socket event to come wakes it (through the eventfd), for a
//!    spawned task as well as for the main future.
//! 4. **Command line.** `ch7_reactor_runtime [--addr HOST:PORT]` prints `listening on <addr>`
//!    with the address the socket is bound to (`local_addr()`: the grader passes port 0).
//!    `--help` prints the usage on stdout and exits 0; a bad address or an unknown argument is one
//!    line on stderr and exit code 2; an address in use is one line on stderr and exit code 1.
//! 5. **Echo.** Every byte comes back in order; after a client's `shutdown(Write)` the server
//!    sends all it owes, then closes; a client that never reads does not stop the others, and is
//!    not read either: its writes stall once the kernel's buffers are full, and the server's
//!    resident memory (`VmRSS`) grows by at most 16 MiB while it tries to send 96 MiB. Bytes that
//!    pile up in a socket while the server is stopped (`SIGSTOP`) all come back: a read future
//!    reads until `EAGAIN` before it leaves its waker with the edge-triggered reactor.
//! 6. **Scale.** 1,000 concurrent clients are served; the listening socket holds a backlog of
//!    1,024; resets do not kill the server; every connection's fd is closed when its client leaves.
//! 7. **One thread, asleep when idle.** The server runs one thread (`/proc/<pid>/task`), and with
//!    10 clients connected and silent it sleeps in `epoll_wait` with no timeout: over one idle
//!    second it wakes at most 20 times and uses at most 5 CPU ticks.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.8    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: **Timers.** `sleep(d)` / `sleep_until(deadline)` complete at their
//!   deadline, never before; 10,000 sleeping tasks wake in deadline order; while sleeping, the
//!   thread sleeps in `epoll_wait` (timeout rounded up to a millisecond) and uses almost no CPU,
//!   even for a sleep shorter than a millisecond (100 sleeps of 300 µs put the thread to sleep at
//!   least 50 times); tasks spawned with `spawn` interleave on their timers
//! - [ ] Requirement 2: **The reactor.** A task blocked on a socket is woken exactly when data
//!   arrives: its read future is polled once (`EAGAIN`: the waker is left with the reactor) and
//!   once more after the data arrives, never for another reason (the socket becoming writable, a
//!   timer, a loop)
//! - [ ] Requirement 3: **Cross-thread wakes.** A waker called from another thread while the
//!   runtime is parked in `epoll_wait` with no timer and no socket event to come wakes it (through
//!   the eventfd), for a spawned task as well as for the main future
//! - [ ] Requirement 4: **Command line.** `ch7_reactor_runtime [--addr HOST:PORT]` prints
//!   `listening on <addr>` with the address the socket is bound to (`local_addr()`: the grader
//!   passes port 0)
//! - [ ] Requirement 5: **Echo.** Every byte comes back in order; after a client's
//!   `shutdown(Write)` the server sends all it owes, then closes; a client that never reads does
//!   not stop the others, and is not read either: its writes stall once the kernel's buffers are
//!   full, and the server's resident memory (`VmRSS`) grows by at most 16 MiB while it tries to
//!   send 96 MiB
//! - [ ] Requirement 6: **Scale.** 1,000 concurrent clients are served; the listening socket holds
//!   a backlog of 1,024; resets do not kill the server; every connection's fd is closed when its
//!   client leaves
//! - [ ] Requirement 7: **One thread, asleep when idle.** The server runs one thread
//!   (`/proc/<pid>/task`), and with 10 clients connected and silent it sleeps in `epoll_wait` with
//!   no timeout: over one idle second it wakes at most 20 times and uses at most 5 CPU ticks
//!
//! ## Notes
//!
//! Read README.md for the requirements; `cargo lab test 7.8` grades this file (the runtime
//! white-box in tests/test_runtime.rs, the echo server black-box in tests/test_server.rs).
//!
//! **Given**, in the chapter's support crate `ch7_support` (its source is in
//! `chapter_07_syscall_networking/support/src/`; `cargo doc -p ch7_support --open` shows its
//! docs): lab 6's epoll wrapper (`Epoll`, `Events`, `Event`, `Interest`, `Token`, `Trigger`),
//! its socket calls (`net::listen`, `net::accept`: non-blocking, close-on-exec) and
//! `raise_fd_limit`; lab 7's join handle (`task::joinable` splits a future into the task your
//! executor polls and the `JoinHandle` that `spawn` returns); `cli::parse_args`. Below, the
//! command line and `main`.
//!
//! **Yours**: everything else. The signatures below are what the grader calls; the types behind
//! them, and every type they need, are yours to design:
//!
//! - **the executor**: tasks, and wakers (std's `Wake` trait builds the vtable you wrote by hand
//!   in lab 7) that queue their task on a run queue any thread can fill; `spawn`;
//! - **the reactor**: every socket registered once with epoll, with the wakers of the tasks
//!   waiting to read it and to write it; the timers, ordered by deadline; epoll's events turned
//!   into wakes;
//! - **the loop** ([`Runtime::block_on`]): poll what is woken, fire the expired timers, then
//!   park in `epoll_wait` with the nearest deadline as the timeout when nothing is queued;
//! - **the eventfd**: a wake from another thread while the loop is parked writes to it, and
//!   `epoll_wait` returns;
//! - **the futures**: [`Sleep`], [`AsyncTcpListener::accept`], [`AsyncTcpStream::read`] /
//!   `write`: try the system call; on `EAGAIN` leave the waker with the reactor and return
//!   `Pending`;
//! - **the echo server**: [`serve`], [`echo`], `run`.
//!
//! `spawn`, `sleep` and the sockets take no runtime argument: they find the runtime whose
//! `block_on` runs on this thread (tokio keeps it in a thread-local). Remove the `allow` below
//! once everything is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ch7_support::cli;
use ch7_support::task::JoinHandle;
use clap::Parser;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// The listen backlog (std, mio and tokio's `bind` use 128).
pub const BACKLOG: i32 = 1024;

const USAGE: &str = "usage: ch7_reactor_runtime [--addr HOST:PORT]";

// =============================================================================================
// The runtime.

/// A single-threaded runtime: executor, reactor and timers on one thread and one epoll instance.
pub struct Runtime {
    // Your design: the tasks, the run queue, the reactor, the eventfd...
}

impl Runtime {
    pub fn new() -> io::Result<Runtime> {
        todo!(
            "an eventfd (libc::eventfd, EFD_NONBLOCK | EFD_CLOEXEC), an Epoll with it \
             registered, your executor's state"
        )
    }

    /// Runs `future`, and every task spawned meanwhile, until `future` is done.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        todo!(
            "poll what is woken, fire expired timers, park in epoll_wait until the nearest \
             deadline when nothing is queued; turn events into wakes"
        )
    }
}

/// Spawns a task on the runtime whose `block_on` runs on this thread; its handle gives the
/// task's output (`Err` if it panicked). Panics outside `Runtime::block_on`.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    todo!("ch7_support::task::joinable(future); queue the task, return the handle")
}

// =============================================================================================
// Timers.

/// Completes once `duration` has passed since `sleep` was called.
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(Instant::now() + duration)
}

/// Completes at `deadline` (at once if it has passed).
pub fn sleep_until(deadline: Instant) -> Sleep {
    todo!("a Sleep that has not registered a timer yet")
}

/// The future of [`sleep`] and [`sleep_until`]. Dropped before its deadline (the losing side of
/// a `select` or a timeout), it leaves no timer behind.
pub struct Sleep {
    // Your design.
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        todo!("Ready once the deadline has passed; else leave the waker with a timer, Pending")
    }
}

// =============================================================================================
// Sockets.

/// A listening socket served by the reactor.
pub struct AsyncTcpListener {
    // Your design.
}

impl AsyncTcpListener {
    /// Binds with a backlog of [`BACKLOG`] and registers with the current runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<AsyncTcpListener> {
        todo!(
            "ch7_support::net::listen(addr, BACKLOG), registered with the current runtime's \
             reactor"
        )
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        todo!()
    }

    /// The next connection, registered with the reactor.
    pub async fn accept(&self) -> io::Result<AsyncTcpStream> {
        todo!(
            "ch7_support::net::accept until it gives a connection; WouldBlock: wait for the \
             reactor"
        )
    }
}

/// A connected socket served by the reactor.
pub struct AsyncTcpStream {
    // Your design.
}

impl AsyncTcpStream {
    /// Reads what is there (at least one byte), or 0 at end of file.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        todo!("read; WouldBlock: leave the waker with the reactor, Pending")
    }

    /// Writes what the socket takes now (at least one byte).
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        todo!("write; WouldBlock: leave the waker with the reactor, Pending")
    }

    /// Writes all of `buf`, waiting for room as often as needed.
    pub async fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        todo!("write until everything is written")
    }
}

// =============================================================================================
// The echo server.

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The runtime or the listening socket could not be created: exit code 1.
    Io { what: String, source: io::Error },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Io { what, source } => write!(f, "{what}: {source}"),
        }
    }
}

/// The command line: `ch7_reactor_runtime [--addr HOST:PORT]`, parsed by `cli::parse_args`
/// (a bad argument is one line on stderr and exit code 2).
#[derive(Debug, Parser)]
#[command(
    name = "ch7_reactor_runtime",
    about = "An echo server on a hand-made reactor runtime: epoll, timers, async sockets"
)]
pub struct Args {
    /// The address to serve on; with port 0 the kernel picks one, and the server prints it
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: AsyncTcpListener) {
    todo!(
        "accept forever, spawn(echo(stream)) for each; on an error other than \
         ConnectionAborted, log it and sleep 10 ms"
    )
}

/// Sends back everything the client sends; closes after its FIN, once all is echoed.
pub async fn echo(stream: AsyncTcpStream) {
    todo!("read; 0 or an error: return; else write_all what was read")
}

fn run(addr: SocketAddr) -> Result<(), ServerError> {
    todo!(
        "raise_fd_limit, Runtime::new, block_on: bind, println!(\"listening on {{local}}\") with \
         the bound address (local_addr(): the grader passes port 0), serve"
    )
}

fn main() -> ExitCode {
    let args: Args = match cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args.addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_reactor_runtime: {e}");
            ExitCode::from(1)
        }
    }
}
