//! ## Goal
//! Write the TCP proxy that HAProxy and nginx become when they forward bytes they do not need to
//! look at: every byte goes client socket → pipe → upstream socket (and back) with `splice(2)`,
//! inside the kernel, and never through a buffer of your program. The grader moves hundreds of
//! MiB both ways and compares them byte for byte, reads your proxy's `/proc/<pid>/io` and traces
//! its system calls to prove that no byte was copied into user space, and checks half-closes,
//! slow readers, 64 connections at once and resets.
//!
//! ## Requirements
//! 1. **Command line.** `ch7_splice_proxy --listen HOST:PORT --upstream HOST:PORT` (`--addr` is
//!    accepted for `--listen`) prints `listening on <addr>` with the address it is bound to (the
//!    grader passes port 0) and forwards every connection it accepts to a new connection to the
//!    upstream. `--help` prints the usage on stdout and exits 0; a bad address, a missing
//!    `--upstream` or an unknown argument is one line on stderr and exit code 2; a listen address
//!    in use is one line on stderr and exit code 1.
//! 2. **Byte-exact, both ways at once.** Hundreds of MiB (a random size) go through one
//!    connection in each direction at the same time and arrive exactly as sent. Each direction
//!    has its own pipe: bytes parked for one peer never come out at the other.
//! 3. **Zero-copy.** The bytes move socket → pipe → socket with `splice(2)`
//!    (`SPLICE_F_MOVE | SPLICE_F_NONBLOCK`, the pipes made with `pipe2(O_NONBLOCK | O_CLOEXEC)`)
//!    and never enter the proxy's memory: while it forwards, its `rchar + wchar` in
//!    `/proc/<pid>/io` grow by less than 1% of the bytes moved; under `strace`, its `read`,
//!    `write`, `recv*` and `send*` calls return less than 1% of them, and its `splice` calls at
//!    least twice the bytes moved (into a pipe, then out of it).
//! 4. **Half-close.** An end-of-file from one peer is passed on, after the bytes still in that
//!    direction's pipe, as `shutdown(SHUT_WR)` on the other peer; the other direction goes on
//!    until it ends too, and only then is the connection closed. Either peer may finish first.
//! 5. **Short splices and `EAGAIN`.** A splice may move fewer bytes than asked: what it leaves in
//!    the pipe is parked, and goes out before anything more is read from that source. `EAGAIN`
//!    means "wait for the next event", never end-of-file. Peers that read slowly at both ends,
//!    while the other end sends as fast as it can, get every byte.
//! 6. **Concurrency.** 64 connections are served at once: each one exchanges messages while all
//!    the others are open, then all of them forward a few hundred KiB each way at the same time.
//! 7. **Errors.** A reset or an error on one side of a connection closes both sides (the other
//!    peer sees end-of-file or a reset) and releases its sockets and pipes; an upstream that
//!    refuses closes the client's connection; the proxy keeps serving new connections.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.10   from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: **Command line.** `--listen`, `--upstream`, `listening on <addr>`, clear
//!   errors with exit codes 2 and 1
//! - [ ] Requirement 2: **Byte-exact, both ways at once**, each direction with its own pipe
//! - [ ] Requirement 3: **Zero-copy.** `rchar + wchar`, and the bytes of `read`, `write`,
//!   `recv` and `send`, under 1% of the bytes moved; `splice` moves them all, in and out
//! - [ ] Requirement 4: **Half-close** passed on with `shutdown(SHUT_WR)`, either peer first
//! - [ ] Requirement 5: **Short splices and `EAGAIN`**: parked bytes go out first; slow readers
//!   lose nothing
//! - [ ] Requirement 6: **Concurrency**: 64 connections at once
//! - [ ] Requirement 7: **Errors**: a reset closes both sides and its fds; a refused upstream
//!   closes the client; the proxy goes on
//!
//! ## Notes
//!
//! `ch7_splice_proxy --listen 127.0.0.1:7000 --upstream 127.0.0.1:8000` forwards every
//! connection. Read README.md for the requirements; `cargo lab test 7.10` grades this file.
//!
//! What is given: the command line (below), and chapter 7's support crate `ch7_support`, which
//! holds what earlier labs taught: [`ch7_support::net::listen`] (a non-blocking listener with a
//! backlog), [`ch7_support::net::accept`] and [`ch7_support::net::connect`] (non-blocking
//! sockets; `connect` returns at once and the socket becomes writable when the handshake is
//! over), [`ch7_support::raise_fd_limit`], and lab 7.6's epoll wrapper
//! ([`ch7_support::Epoll`], `Events`, `Interest`, `Token`, `Trigger`).
//!
//! What you build, and how, is yours:
//!
//! - **A pipe per direction.** `libc::pipe2(fds, O_NONBLOCK | O_CLOEXEC)`, both ends owned
//!   (`OwnedFd`), optionally grown with `fcntl(F_SETPIPE_SZ)` (64 KiB by default).
//! - **`splice`.** `libc::splice(fd_in, null_mut(), fd_out, null_mut(), len, flags)` moves up
//!   to `len` bytes between a socket and a pipe and returns how many: 0 is end-of-file, -1 with
//!   `EAGAIN` means "nothing now". One side of each call must be a pipe, so socket → socket
//!   is two calls per chunk.
//! - **A direction's state**: how many bytes sit in its pipe, whether its source ended, whether
//!   that end was passed on.
//! - **The driving loop**: one thread with epoll (edge-triggered, every call until `EAGAIN`),
//!   or a thread per direction with blocking sockets. Either passes; the reference uses epoll,
//!   and its module comment says why.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// Address used when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7000";
/// The listen backlog for `ch7_support::net::listen`.
pub const BACKLOG: libc::c_int = 1024;

const USAGE: &str = "usage: ch7_splice_proxy [--listen HOST:PORT] --upstream HOST:PORT";

/// `ch7_splice_proxy [--listen HOST:PORT] --upstream HOST:PORT`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_splice_proxy",
    about = "A TCP proxy that forwards with splice(2): socket -> pipe -> socket, never through \
             user space"
)]
pub struct Args {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, visible_alias = "addr", value_name = "HOST:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The server each connection is forwarded to
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: SocketAddr,
}

/// Binds, prints `listening on <addr>` with the bound address, and forwards every connection to
/// `args.upstream` until killed. An `Err` ends the program with exit code 1 (for example: the
/// address is in use); one connection's error must end that connection only.
pub fn run(args: &Args) -> io::Result<()> {
    todo!(
        "ch7_support::net::listen(args.listen, BACKLOG), println!(\"listening on {{addr}}\") with \
         listener.local_addr(), then forward each accepted connection to {}: a pipe per \
         direction, splice in, splice out, EOF passed on with shutdown(Write)",
        args.upstream
    )
}

fn main() -> ExitCode {
    let args: Args = match ch7_support::cli::parse_args(USAGE) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch7_splice_proxy: {e}");
            ExitCode::from(1)
        }
    }
}
