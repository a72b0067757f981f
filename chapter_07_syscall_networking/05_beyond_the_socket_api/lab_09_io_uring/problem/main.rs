//! ## Goal
//! Write the completion model from the system calls up: set up an io_uring with the raw
//! `io_uring_setup` and `io_uring_enter` system calls, map its submission and completion queues
//! yourself, and build a one-thread echo server on it that keeps thousands of receives and sends
//! in flight, lends each one its buffer until the kernel gives it back, and submits a whole batch
//! of them with one system call. The grader looks at the ring in `/proc`, counts the server's
//! system calls with `strace`, and runs it against a client process that opens 10,000 concurrent
//! connections.
//!
//! ## Requirements
//! 1. **Command line.** `ch7_io_uring [--addr HOST:PORT]` prints `listening on <addr>` with the
//!    address the socket is bound to (the grader passes port 0). `--help` prints the usage on
//!    stdout and exits 0; a bad address or an unknown argument is one line on stderr and exit code
//!    2; an address in use is one line on stderr and exit code 1.
//! 2. **A ring of your own.** The server sets up one io_uring instance with the raw
//!    `io_uring_setup` system call (no liburing, no crate): 256 submission entries, and the
//!    kernel's default of twice that for completions. It maps the submission ring, the completion
//!    ring and the SQE array with `mmap`, and declares `io_uring_params`, the two ring-offset
//!    structs, `io_uring_sqe` and `io_uring_cqe` itself, `#[repr(C)]`, with their sizes checked at
//!    compile time. It loads the kernel's index of each ring (the SQ head, the CQ tail) with
//!    `Acquire`, and publishes its own (the SQ tail, the CQ head) with `Release`.
//! 3. **Every socket operation through the ring.** One multishot `IORING_OP_ACCEPT` accepts the
//!    connections, `IORING_OP_RECV` reads them and `IORING_OP_SEND` writes them; each SQE's
//!    `user_data` names the connection and the operation, and comes back in its CQE. While it
//!    echoes, the server makes no `accept`, `recv`, `send`, `read`, `write`, `epoll_wait` or
//!    `poll` system call of its own.
//! 4. **Batching.** One `io_uring_enter` submits every SQE queued since the last one and waits for
//!    at least one completion; the loop then reaps every CQE there. With 1,000 clients each sending
//!    messages one at a time, the server makes at most 1.5 system calls per message (`strace -c`),
//!    where an epoll server makes 2 at least (a recv and a send).
//! 5. **Buffer ownership.** Each connection owns its buffer. From the SQE that names it until its
//!    CQE is reaped, the buffer belongs to the kernel: the server does not read, write, reuse or
//!    free it. A thousand clients that send at once each get their own bytes back.
//! 6. **Echo, short sends, backpressure.** Every byte comes back in order. A send that completes
//!    short (the socket had less room) is resubmitted for the rest, and a connection's next recv
//!    is submitted only when its echo is all sent: a client that never reads is not read either,
//!    its writes stall, and the server's resident memory grows by at most 16 MiB while it tries to
//!    send 96 MiB. After a client's `shutdown(Write)` the server sends all it owes, then closes.
//! 7. **End of file and errors.** A recv of 0 bytes (the client's FIN) closes the connection, and
//!    so does a negative result (`-errno`: a reset, a broken pipe), for that connection only; the
//!    server goes on. Every connection's fd is closed when its client leaves.
//! 8. **A ring smaller than the load.** The listening socket has a backlog of 1,024. When the
//!    submission queue is full, the server submits what is queued and goes on: no request is
//!    dropped or written over. A multishot accept whose CQE comes without `IORING_CQE_F_MORE` has
//!    stopped (an error, or a completion queue that was full) and is armed again. 1,024
//!    connections that arrive while the server is stopped (`SIGSTOP`) are all served.
//! 9. **C10K.** The server raises its soft `RLIMIT_NOFILE` to the hard limit and serves 10,000
//!    concurrent connections from another process, each exchanging several random messages, every
//!    echo byte-exact; it holds one fd per connection meanwhile and returns to its baseline fd
//!    count afterwards.
//! 10. **One thread, asleep when idle.** The server runs one thread (no `SQPOLL` kernel thread, no
//!     helper), and with 10 clients connected and silent it sleeps in `io_uring_enter`: over one
//!     idle second it wakes at most 20 times and uses at most 5 CPU ticks.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.9    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: **Command line.** `listening on <addr>`; `--help`; one line on stderr and
//!   exit code 2 for a bad argument, exit code 1 for an address in use
//! - [ ] Requirement 2: **A ring of your own.** One ring from `io_uring_setup` (256 SQ and 512 CQ
//!   entries) mapped with `mmap`; the kernel's structs declared by you, their sizes checked
//! - [ ] Requirement 3: **Every socket operation through the ring.** Multishot accept, recv and send
//!   as SQEs, `user_data` naming the connection and the operation; no socket system calls
//! - [ ] Requirement 4: **Batching.** One `io_uring_enter` per batch: at most 1.5 system calls per
//!   message
//! - [ ] Requirement 5: **Buffer ownership.** A buffer is the kernel's from its SQE until its CQE
//!   is reaped
//! - [ ] Requirement 6: **Echo, short sends, backpressure.** Short sends resubmitted; no recv while
//!   an echo is unsent; everything flushed after a half-close
//! - [ ] Requirement 7: **End of file and errors.** A recv of 0 or a `-errno` closes that
//!   connection only; every fd closed
//! - [ ] Requirement 8: **A ring smaller than the load.** A full SQ submitted, never dropped; a
//!   stopped multishot accept armed again; 1,024 queued connections served
//! - [ ] Requirement 9: **C10K.** 10,000 concurrent connections, byte-exact, one fd each, back to
//!   the baseline after
//! - [ ] Requirement 10: **One thread, asleep when idle.** One thread, asleep in `io_uring_enter`
//!   while nothing happens
//!
//! ## Notes
//!
//! The kernel's side is `/usr/include/linux/io_uring.h` (Debian's `linux-libc-dev`) and
//! `man 2 io_uring_setup`, `man 2 io_uring_enter`, `man 7 io_uring` (the `liburing-dev` package
//! has them). The `libc` crate gives `libc::SYS_io_uring_setup` and `libc::SYS_io_uring_enter`
//! for `libc::syscall`, and no struct: declare those you need. A shape that works, one module
//! each: the ABI (structs, constants, the two calls); a `Ring` (setup, the three mappings, push
//! an SQE, submit and wait, reap the CQEs); the `user_data` encoding; the server (a slab of
//! connections, each with its buffer, and one handler per kind of completion). The tests are
//! black-box: `tests/test_server.rs`, `tests/test_ring.rs`, `tests/test_load.rs`. Remove the
//! `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use clap::Parser;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7000";
/// Connections the kernel may hold for us before we accept them (std, mio, tokio: 128).
pub const BACKLOG: libc::c_int = 1024;
/// Submission queue entries: far fewer than the connections, on purpose (requirement 8).
pub const RING_ENTRIES: u32 = 256;

const USAGE: &str = "usage: ch7_io_uring [--addr HOST:PORT]";

/// The event loop. Returns only if the ring itself fails; a connection's error closes that
/// connection only.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    todo!(
        "set up a ring of RING_ENTRIES (io_uring_setup, then mmap its three areas), arm a \
         multishot accept on the listener, then loop: submit everything queued and wait for one \
         completion (one io_uring_enter), reap every CQE, handle each: a new connection gets a \
         recv, a recv gets a send of what it read, a send gets the rest or the next recv, 0 and \
         -errno close"
    )
}

// ---------------------------------------------------------------------------------------------
// The program around it: not the lesson.

/// Why the server stopped (or never started).
#[derive(Debug)]
pub enum ServerError {
    /// The listening socket could not be created: exit code 1.
    Bind { addr: SocketAddr, source: io::Error },
    /// The ring failed (or io_uring is not available): exit code 1.
    Ring(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            ServerError::Ring(source) => write!(f, "io_uring: {source}"),
        }
    }
}

/// The command line: `ch7_io_uring [--addr HOST:PORT]`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_io_uring",
    about = "An echo server on io_uring: one thread, one system call for many operations"
)]
pub struct Args {
    /// Where to listen (port 0: the kernel picks a free one; print the bound address)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
}

/// Raises the fd limit, binds, prints `listening on <addr>`, serves.
pub fn run(addr: SocketAddr) -> Result<(), ServerError> {
    todo!(
        "ch7_support::raise_fd_limit(), ch7_support::net::listen(addr, BACKLOG), \
         println!(\"listening on {{addr}}\") with the bound address (local_addr(): the grader \
         passes port 0), then serve"
    )
}

fn main() -> ExitCode {
    let addr = match ch7_support::cli::parse_args::<Args>(USAGE) {
        Ok(args) => args.addr,
        Err(code) => return code,
    };
    match run(addr) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_io_uring: {e}");
            ExitCode::from(1)
        }
    }
}
