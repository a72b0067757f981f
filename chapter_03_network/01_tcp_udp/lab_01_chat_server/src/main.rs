//! ## Goal
//! Write `chat_server [--addr HOST:PORT] [--queue LINES]`, a chat room over plain TCP that any
//! line-based client can join (`nc`, `telnet`, or bash's `/dev/tcp`). Clients pick a nickname, and
//! every line they send reaches everybody else. It is small, and it meets the three problems of
//! every server that fans messages out: TCP delivers a byte stream, not lines; a client can send
//! garbage or a line that never ends; and one client that reads slowly must not slow down the
//! others. You will build it with tokio: one task per client for reading, one writer task per
//! client fed by a bounded queue.
//!
//! ## Requirements
//! 1. The first line a client sends is its nickname: 1 to 32 ASCII letters, digits, `_` or `-`. The
//!    server answers `welcome <name>`, and every other client gets `* <name> joined`.
//! 2. A nickname that is taken or invalid gets a line starting with `error:`; the client stays
//!    connected and may try another one.
//! 3. Any other line from a joined client reaches every other client as `<name>: <text>`, never
//!    its sender. Each client receives a given sender's lines in the order they were sent. Empty
//!    lines are ignored.
//! 4. `/who` answers `users: ` followed by all nicknames, sorted, separated by `, `.
//! 5. `/quit` answers `bye`, then the server closes the connection. A client that leaves (by
//!    `/quit`, by closing, or by a reset) is announced to the others as `* <name> left`, and its
//!    nickname is free again. An unknown command (`/dance`) gets an `error:` line.
//! 6. A line of up to 4,096 bytes (without its `\n` or `\r\n`) is accepted. A longer line gets an
//!    `error:` reply, reaches nobody, and the client stays connected; the server never stores more
//!    than about 4 KiB of an unfinished line, whatever the client sends.
//! 7. A line that is not valid UTF-8 (nickname or message) gets an `error:` reply, reaches nobody,
//!    and the client stays connected.
//! 8. Fifty clients talking at once all receive every message of every other client, each sender's
//!    in order.
//! 9. Each client has a bounded queue of lines waiting to be written to it (`--queue LINES`,
//!    default 1,024: large enough that a client that keeps reading never fills it). A client whose
//!    queue is full is too slow: the server disconnects it and announces `* <name> left`. The
//!    others keep receiving everything, without waiting for it.
//! 10. `--help` prints the usage on stdout and exits 0. A bad `--addr`, a bad `--queue` or an
//!     unknown argument is one line on stderr and exit code 2; an address in use is one line on
//!     stderr and exit code 1; never a panic.
//! 11. Garbage bytes and abrupt resets never kill the server.
//! 12. The kernel completes a client's three-way handshake (SYN, SYN-ACK, ACK) before the server
//!     calls `accept()`, and queues the connection on the listening socket: the `Recv-Q` of the
//!     `LISTEN` line in `ss -ltn`, the `rx_queue` of that line in `/proc/net/tcp`. With the server
//!     frozen (`SIGSTOP`), clients still connect and send their nicknames; once it runs again, each
//!     is welcomed. The listening socket is at the address printed, and the server accepts every
//!     connection at once: a client that connects and says nothing must not keep the next ones
//!     waiting in the accept queue.
//! 13. A client that stops reading fills its receive buffer and advertises a zero window (TCP flow
//!     control): the kernel then holds the server's lines for it in the send queue of the server's
//!     socket (`Send-Q` in `ss -tn`, `tx_queue` in `/proc/net/tcp`) and probes the window
//!     (`timer:(persist,...)` in `ss -tno`). The server keeps reading and broadcasting for the
//!     others meanwhile, drops that client once its queue is full (requirement 9), and closes its
//!     socket: the kernel shows that socket leave `ESTABLISHED`.
//! 14. After `/quit` the server closes the socket first, without waiting for the client, and
//!     gracefully (`bye`, then a FIN, never a reset): the client reads end-of-file, and once it
//!     closes too, the connection waits in `TIME-WAIT` on the server's side (local port = the
//!     server's port), not on the client's. A client that closes first keeps the `TIME-WAIT`
//!     itself, and the server closes its socket (no `CLOSE-WAIT` left). The server can be restarted
//!     on the same port at once while those entries last (60 s): its listening socket sets
//!     `SO_REUSEADDR` (`TcpListener::bind` does; `TcpSocket` and socket2 only when asked).
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.1    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: The first line a client sends is its nickname: 1 to 32 ASCII letters,
//!   digits, `_` or `-`
//! - [ ] Requirement 2: A nickname that is taken or invalid gets a line starting with `error:`; the
//!   client stays connected and may try another one
//! - [ ] Requirement 3: Any other line from a joined client reaches every other client as `<name>:
//!   <text>`, never its sender
//! - [ ] Requirement 4: `/who` answers `users: ` followed by all nicknames, sorted, separated by `,
//!   `
//! - [ ] Requirement 5: `/quit` answers `bye`, then the server closes the connection
//! - [ ] Requirement 6: A line of up to 4,096 bytes (without its `\n` or `\r\n`) is accepted
//! - [ ] Requirement 7: A line that is not valid UTF-8 (nickname or message) gets an `error:`
//!   reply, reaches nobody, and the client stays connected
//! - [ ] Requirement 8: Fifty clients talking at once all receive every message of every other
//!   client, each sender's in order
//! - [ ] Requirement 9: Each client has a bounded queue of lines waiting to be written to it
//!   (`--queue LINES`, default 1,024: large enough that a client that keeps reading never fills it)
//! - [ ] Requirement 10: `--help` prints the usage on stdout and exits 0; a bad argument is one
//!   line on stderr and exit code 2, an address in use exit code 1, never a panic
//! - [ ] Requirement 11: Garbage bytes and abrupt resets never kill the server
//! - [ ] Requirement 12: The kernel completes the handshake before `accept()`; the server accepts
//!   every connection at once, even while a client that said nothing is connected
//! - [ ] Requirement 13: A client that stops reading gets a zero window; the server keeps serving
//!   the others, drops it once its queue is full, and closes its socket
//! - [ ] Requirement 14: After `/quit` the server closes first (a FIN, not a reset), so the
//!   `TIME-WAIT` is on its side; it restarts on the same port at once (`SO_REUSEADDR`)
//!
//! ## Notes
//!
//! Chat server: `chat_server [--addr HOST:PORT] [--queue LINES]`.
//!
//! A line-based chat over TCP that `nc 127.0.0.1 7878` can talk to. Read README.md for the
//! protocol and the requirements; `cargo lab test 3.1` grades this file by talking to the
//! binary over real sockets.
//!
//! The items below are a suggested shape: the grader only runs the binary. Remove the `allow`
//! below once everything is used.
#![allow(unused_variables, dead_code)]

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use tokio::io::AsyncBufRead;
use tokio::net::TcpListener;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";
/// Longest line accepted, in bytes, without its `\n` (or `\r\n`).
pub const MAX_LINE: usize = 4096;
/// Longest nickname, in bytes.
pub const MAX_NICK: usize = 32;
/// Lines that may wait in one client's queue before the client counts as too slow.
pub const DEFAULT_QUEUE: usize = 1024;

const USAGE: &str = "usage: chat_server [--addr HOST:PORT] [--queue LINES]";

// Given code: the command line, parsed by clap (argument parsing is not this lab's lesson).

/// The command line: `chat_server [--addr HOST:PORT] [--queue LINES]`.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "chat_server",
    bin_name = "chat_server",
    about = "A line-based chat room over TCP"
)]
pub struct Config {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Lines that may wait for one client before it counts as too slow and is dropped
    #[arg(long, value_name = "LINES", default_value_t = DEFAULT_QUEUE, value_parser = positive)]
    pub queue: usize,
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("wanted a positive number".to_string()),
    }
}

/// Parses the command line. `--help` prints the usage on stdout (exit 0); a bad argument is one
/// line on stderr (exit 2), shorter than clap's own message. On `Err`, return the exit code
/// from `main`.
pub fn parse_args() -> Result<Config, ExitCode> {
    Config::try_parse().map_err(|e| {
        if !e.use_stderr() {
            let _ = e.print(); // --help
            return ExitCode::SUCCESS;
        }
        let message = e.to_string();
        let why = message.lines().next().unwrap_or_default();
        eprintln!(
            "chat_server: {}; {USAGE}",
            why.trim_start_matches("error: ")
        );
        ExitCode::from(2)
    })
}

// Your code from here on.

/// One unit of input from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// More than [`MAX_LINE`] bytes before the `\n`: the whole line was read and thrown away.
    TooLong,
    /// The line is not UTF-8.
    NotUtf8,
}

/// Cuts a byte stream into lines of at most [`MAX_LINE`] bytes. TCP delivers bytes, not
/// lines: one read may hold half a line or ten lines.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// The next line (without `\n` or `\r\n`), `TooLong`, `NotUtf8`, or `None` at the end of
    /// the stream. Never stores more than about `MAX_LINE` bytes, whatever the client sends.
    pub async fn next(&mut self) -> io::Result<Option<Input>> {
        todo!("fill_buf / consume up to the next '\\n', keep at most MAX_LINE bytes, check UTF-8")
    }
}

/// Accepts clients forever. Each client gets a task that reads its lines, and a writer task
/// that drains a bounded queue (`tokio::sync::mpsc::channel(queue)`) into its socket.
/// Broadcasting uses `try_send`: a client whose queue is full is dropped, never waited for.
pub async fn serve(listener: TcpListener, queue: usize) {
    todo!(
        "accept loop: spawn one task per client; share the room (name -> queue) in an Arc<Mutex<..>>"
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!(
        "parse_args(), bind (an error: one line on stderr, exit code 1), print `listening on \
         <addr>` with the address bound, serve"
    )
}
