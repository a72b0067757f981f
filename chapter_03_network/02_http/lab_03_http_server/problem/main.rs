//! ## Goal
//! Write `http_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]`, an HTTP/1.1
//! server over tokio's `TcpStream`, with **your own parser**: no hyper, no httparse. Three routes:
//!
//! ## Requirements
//! 1. `GET /` answers `200` with `Content-Type: text/plain` and the body `hello, world\n`.
//! 2. `GET /static/<path>` serves the file `<path>` under `--root`, byte for byte, with a
//!    `Content-Type` from its extension (`.html` `text/html`, `.css` `text/css`, `.js`
//!    `text/javascript`, `.json` `application/json`, `.txt` `text/plain`, `.png` `image/png`,
//!    anything else `application/octet-stream`). The path is percent-decoded (`a%20b.txt`). A
//!    missing file is a `404`.
//! 3. `POST /echo` answers `200` with the request body and the request's `Content-Type` (or
//!    `application/octet-stream` without one). A known path with the wrong method is a `405`; an
//!    unknown path is a `404`.
//! 4. Your own parser reads the request line (`METHOD TARGET HTTP/1.1`, single spaces), and header
//!    lines (`Name: value`): names are case-insensitive, values lose their surrounding spaces and
//!    tabs, an obsolete folded line (starting with a space or a tab) continues the previous value
//!    after one space. Lines may end with `\r\n` or a bare `\n`.
//! 5. Request bodies are read by `Content-Length` or by `Transfer-Encoding: chunked` (hex sizes in
//!    either case, chunk extensions, trailer fields), whatever the pieces the bytes arrive in.
//! 6. Connections stay open after a response (HTTP/1.1). `Connection: close` gets its response,
//!    then the server closes. HTTP/1.0 closes after each response unless `Connection: keep-alive`.
//! 7. Requests pipelined on one connection (sent before any response is read) are all answered,
//!    in order.
//! 8. `HEAD` gets the status and headers a `GET` would get, `Content-Length` included, and no body.
//! 9. No request ever reads a file outside `--root`: `..` plain or percent-encoded (`%2e%2e`,
//!    `..%2f`), absolute paths (`/static//etc/passwd`), and symlinks that lead out of the root get a
//!    `403` or `404`.
//! 10. Malformed requests are refused with the right status, after which the server closes that
//!     connection: a malformed request line or header, or a bad `Content-Length` or chunk: `400`;
//!     a head over 8 KiB: `431`; a body over 1 MiB: `413` (from `Content-Length` before reading the
//!     body, or while decoding chunks); an unknown method (`BREW`, `get`): `501`; another HTTP
//!     version (`HTTP/2.0`): `505`. A malformed request line is refused as soon as the line is
//!     complete, a head over 8 KiB as soon as 8 KiB have arrived.
//! 11. A client that has not sent a complete request within `--request-timeout` seconds (default
//!     10) is disconnected: silent, stopped in the middle of the head or the body, trickling bytes,
//!     or idle after its last request. Other clients are served meanwhile.
//! 12. `parse_request(buf)` is a pure function: `Ok(Some((request, bytes used)))`, `Ok(None)` when
//!     `buf` holds only the beginning of a request (for every prefix of a valid request), or the
//!     `HttpError` to answer with. It never panics, whatever the input.
//! 13. Garbage, truncated requests, resets and bad command-line arguments never crash the server;
//!     a bad argument gives a one-line error and a non-zero exit code.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `GET /` answers `200` with `Content-Type: text/plain` and the body `hello,
//!   world\n`
//! - [ ] Requirement 2: `GET /static/<path>` serves the file `<path>` under `--root`, byte for
//!   byte, with a `Content-Type` from its extension (`.html` `text/html`, `.css` `text/css`, `.js`
//!   `text/javascript`, `.json` `application/json`, `.txt` `text/plain`, `.png` `image/png`,
//!   anything else `application/octet-stream`)
//! - [ ] Requirement 3: `POST /echo` answers `200` with the request body and the request's
//!   `Content-Type` (or `application/octet-stream` without one)
//! - [ ] Requirement 4: Your own parser reads the request line (`METHOD TARGET HTTP/1.1`, single
//!   spaces), and header lines (`Name: value`): names are case-insensitive, values lose their
//!   surrounding spaces and tabs, an obsolete folded line (starting with a space or a tab)
//!   continues the previous value after one space
//! - [ ] Requirement 5: Request bodies are read by `Content-Length` or by `Transfer-Encoding:
//!   chunked` (hex sizes in either case, chunk extensions, trailer fields), whatever the pieces the
//!   bytes arrive in
//! - [ ] Requirement 6: Connections stay open after a response (HTTP/1.1)
//! - [ ] Requirement 7: Requests pipelined on one connection (sent before any response is read) are
//!   all answered, in order
//! - [ ] Requirement 8: `HEAD` gets the status and headers a `GET` would get, `Content-Length`
//!   included, and no body
//! - [ ] Requirement 9: No request ever reads a file outside `--root`: `..` plain or
//!   percent-encoded (`%2e%2e`, `..%2f`), absolute paths (`/static//etc/passwd`), and symlinks that
//!   lead out of the root get a `403` or `404`
//! - [ ] Requirement 10: Malformed requests are refused with the right status, after which the
//!   server closes that connection: a malformed request line or header, or a bad `Content-Length`
//!   or chunk: `400`; a head over 8 KiB: `431`; a body over 1 MiB: `413` (from `Content-Length`
//!   before reading the body, or while decoding chunks); an unknown method (`BREW`, `get`): `501`;
//!   another HTTP version (`HTTP/2.0`): `505`
//! - [ ] Requirement 11: A client that has not sent a complete request within `--request-timeout`
//!   seconds (default 10) is disconnected: silent, stopped in the middle of the head or the body,
//!   trickling bytes, or idle after its last request
//! - [ ] Requirement 12: `parse_request(buf)` is a pure function: `Ok(Some((request, bytes
//!   used)))`, `Ok(None)` when `buf` holds only the beginning of a request (for every prefix of a
//!   valid request), or the `HttpError` to answer with
//! - [ ] Requirement 13: Garbage, truncated requests, resets and bad command-line arguments never
//!   crash the server; a bad argument gives a one-line error and a non-zero exit code
//!
//! ## Notes
//!
//! HTTP/1.1 server from scratch:
//! `http_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]`.
//!
//! Routes: `GET /` (a greeting), `GET /static/<path>` (a file under `--root`), `POST /echo`
//! (the request body back). Read README.md for the requirements; `cargo lab test 3.3` grades
//! this file: `tests/test_http_server.rs` talks to the binary over sockets, `tests/test_parser.rs` calls
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

use clap::Parser;
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

/// What the command line asks for (given: main() parses it with `Args::parse()`).
#[derive(Debug, Parser)]
#[command(
    name = "http_server",
    about = "An HTTP/1.1 server with its own parser: GET /, GET /static/<path>, POST /echo"
)]
pub struct Args {
    /// Address to listen on
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Directory of the files served under /static/
    #[arg(long, value_name = "DIR", default_value = "public")]
    pub root: PathBuf,
    /// Seconds a client has to send one complete request
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = seconds)]
    pub request_timeout: Duration,
}

/// A positive number of seconds, fractions allowed, below one day.
fn seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs < 86_400.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err("expected a number of seconds, more than 0 and less than 86400".into()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!(
        "Args::parse(); canonicalize --root (not a directory: exit 1); bind; print `listening on \
         <addr>`; serve"
    )
}
