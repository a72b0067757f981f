//! HTTP/1.1 server from scratch:
//! `http_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]`.
//!
//! Routes: `GET /` (a greeting), `GET /static/<path>` (a file under `--root`), `POST /echo`
//! (the request body back). Read README.md for the requirements; `cargo lab test 3.3` grades
//! this file: `tests/grader.rs` talks to the binary over sockets, `tests/parser.rs` calls
//! `parse_request` directly, so keep the names and signatures below.
//!
//! Suggested shape: a parser that does no I/O (bytes in; "a request and the bytes it used",
//! "need more bytes", or "refuse with status N" out), and a connection loop that reads until
//! the parser has a request, routes it, and writes the response. No hyper, no httparse: the
//! parser is the lab. Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Largest request head (request line, headers, blank line), in bytes: more is a 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body, in bytes: more is a 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a request is refused: each variant is a status code the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// 400: the bytes are not HTTP/1.1 (the text says what is wrong).
    BadRequest(&'static str),
    /// 431: the head is over [`MAX_HEAD`] bytes.
    HeadTooLarge,
    /// 413: the body is over [`MAX_BODY`] bytes.
    BodyTooLarge,
    /// 501: a method or a transfer coding this server does not implement.
    NotImplemented(&'static str),
    /// 505: a well-formed version other than HTTP/1.0 and HTTP/1.1.
    VersionNotSupported,
}

impl HttpError {
    pub fn status(&self) -> u16 {
        todo!("400, 431, 413, 501 or 505")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the body of a request is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No `Content-Length`, no `Transfer-Encoding`: no body.
    Empty,
    Length(usize),
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: Method,
    /// The request target as sent, for example `/static/a%20b.txt?x=1`.
    pub target: String,
    pub version: Version,
    /// Names as sent; values without surrounding whitespace, folded lines joined by one space.
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// Bytes of the head, blank line included: the body starts here.
    pub len: usize,
}

impl Head {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        todo!("find the header, ignoring ASCII case")
    }

    /// HTTP/1.1 keeps the connection open unless `Connection: close`; HTTP/1.0 closes it
    /// unless `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        todo!("look at the version and the Connection header")
    }
}

/// A complete request: its head and its decoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub head: Head,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

/// Parses the head at the front of `buf`: `Ok(None)` while it is incomplete. Refuses a
/// malformed line as soon as that line is complete, and a head over [`MAX_HEAD`] as soon as
/// the buffer passes the limit.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HttpError> {
    todo!("request line, header lines (obs-fold!), blank line; then decide the framing")
}

/// Parses one whole request from the front of `buf`: `Ok(Some((request, bytes used)))`,
/// `Ok(None)` when `buf` holds only the beginning of one, or the error to answer with.
/// Must never panic, whatever `buf` holds.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
    todo!("parse_head, then the body by its framing: Content-Length or chunked")
}

/// What every connection needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    /// The static files' directory, canonical (absolute, no symlinks).
    pub root: PathBuf,
    /// Time a client has to send one complete request.
    pub request_timeout: Duration,
}

/// Accepts connections forever, one task each.
pub async fn serve(listener: TcpListener, config: Arc<Config>) {
    todo!("accept, spawn serve_connection")
}

/// Serves requests on one connection, in order, until it closes: keep-alive, pipelining,
/// `Connection: close`, errors (a response, then close), the request deadline.
pub async fn serve_connection(stream: TcpStream, config: &Config) -> std::io::Result<()> {
    todo!("read until parse_request has a request, route it, write the response")
}

/// Parses `--addr`, `--root` and `--request-timeout`.
pub fn parse_args(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Result<(SocketAddr, Config), String> {
    todo!("the three flags, with their defaults (127.0.0.1:8080, public, 10 s)")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!("parse the arguments, bind, print `listening on <addr>`, serve")
}
