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
