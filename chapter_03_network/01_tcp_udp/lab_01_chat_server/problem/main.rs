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
//! 10. A bad `--addr`, an address in use or an unknown argument: a one-line error on stderr and a
//!     non-zero exit code, no panic.
//! 11. Garbage bytes and abrupt resets never kill the server.
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
//! - [ ] Requirement 10: A bad `--addr`, an address in use or an unknown argument: a one-line error
//!   on stderr and a non-zero exit code, no panic
//! - [ ] Requirement 11: Garbage bytes and abrupt resets never kill the server
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

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub addr: SocketAddr,
    pub queue: usize,
}

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
    todo!("parse --addr and --queue, bind, print `listening on <addr>`, serve")
}
