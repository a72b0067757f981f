//! ## Goal
//! Write `reverse_proxy`, the piece that sits in front of almost every web application (nginx,
//! Envoy, a cloud load balancer): clients talk to it, it talks to the upstream server. You will
//! keep bodies streaming in both directions so memory stays flat whatever their size, decide
//! which headers belong to one connection and which to the whole message, tell the upstream who
//! the client was, turn upstream failures into honest status codes (502, 504), and make a
//! client's disconnect cancel the work it started upstream.
//!
//! ## Requirements
//! 1. Each request is forwarded to `--upstream` with its method, target (path and query), `Host`,
//!    end-to-end headers and body unchanged; the upstream's status, headers (repeated ones such as
//!    `Set-Cookie` included) and body come back unchanged. The proxy prints `listening on <addr>`.
//! 2. The proxy appends the client's IP to `X-Forwarded-For` (`203.0.113.7, 127.0.0.1` when the
//!    client already sent one), sets `X-Forwarded-Proto: http`, and appends its own hop to `Via`
//!    (`1.0 fred, 1.1 reverse_proxy`; the protocol version, a space, a name).
//! 3. Hop-by-hop headers are not forwarded, neither in requests nor in responses: `Connection`
//!    and every header it names, `Keep-Alive`, `Proxy-Authenticate`, `Proxy-Authorization`,
//!    `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`.
//! 4. Bodies stream both ways: a 100 MiB response and a 100 MiB upload pass byte for byte while
//!    the proxy's peak resident memory (`VmHWM` in `/proc/<pid>/status`) stays under 32 MiB.
//! 5. An upstream that cannot be reached gives `502 Bad Gateway`; the proxy keeps serving.
//! 6. An upstream that has not answered (response head) within `--timeout` gives
//!    `504 Gateway Timeout`, and the proxy keeps serving.
//! 7. A client that disconnects while its request is in flight cancels it: the proxy closes its
//!    upstream connection, so the upstream sees the end of file instead of working for nobody.
//! 8. A wrong command line (no `--upstream`, a bad address, a bad duration) exits with code 2.
//! 9. Upstream connections are kept alive and reused: sequential requests, even from clients
//!    that each close their own connection, share one upstream connection instead of paying a
//!    TCP handshake each.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.6    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: Each request is forwarded to `--upstream` with its method, target (path and
//!   query), `Host`, end-to-end headers and body unchanged; the upstream's status, headers
//!   (repeated ones such as `Set-Cookie` included) and body come back unchanged
//! - [ ] Requirement 2: The proxy appends the client's IP to `X-Forwarded-For` (`203.0.113.7,
//!   127.0.0.1` when the client already sent one), sets `X-Forwarded-Proto: http`, and appends its
//!   own hop to `Via` (`1.0 fred, 1.1 reverse_proxy`; the protocol version, a space, a name)
//! - [ ] Requirement 3: Hop-by-hop headers are not forwarded, neither in requests nor in responses:
//!   `Connection` and every header it names, `Keep-Alive`, `Proxy-Authenticate`,
//!   `Proxy-Authorization`, `Proxy-Connection`, `TE`, `Trailer`, `Transfer-Encoding`, `Upgrade`
//! - [ ] Requirement 4: Bodies stream both ways: a 100 MiB response and a 100 MiB upload pass byte
//!   for byte while the proxy's peak resident memory (`VmHWM` in `/proc/<pid>/status`) stays under
//!   32 MiB
//! - [ ] Requirement 5: An upstream that cannot be reached gives `502 Bad Gateway`; the proxy keeps
//!   serving
//! - [ ] Requirement 6: An upstream that has not answered (response head) within `--timeout` gives
//!   `504 Gateway Timeout`, and the proxy keeps serving
//! - [ ] Requirement 7: A client that disconnects while its request is in flight cancels it: the
//!   proxy closes its upstream connection, so the upstream sees the end of file instead of working
//!   for nobody
//! - [ ] Requirement 8: A wrong command line (no `--upstream`, a bad address, a bad duration) exits
//!   with code 2
//! - [ ] Requirement 9: Upstream connections are kept alive and reused: sequential requests, even
//!   from clients that each close their own connection, share one upstream connection instead of
//!   paying a TCP handshake each
//!
//! ## Notes
//!
//! Reverse proxy: `reverse_proxy --addr HOST:PORT --upstream HOST:PORT [--timeout 30s]`.
//!
//! Accept HTTP/1.1 clients and forward each request to the upstream, and the response back:
//! bodies streamed both ways (never held in memory whole), hop-by-hop headers removed,
//! `X-Forwarded-For` / `X-Forwarded-Proto` / `Via` added, `502` when the upstream cannot be
//! reached, `504` when it is slower than `--timeout`, and a client that goes away cancels its
//! upstream request. Print `listening on <addr>` on stdout once the socket listens. Read
//! README.md for the requirements; `cargo lab test 3.6` grades this file.
//!
//! The command line (`Args`, `parse_duration`) is ready; the signatures below are a
//! suggestion: the grader only runs the binary. Remove the `allow` below once every argument
//! is used.
#![allow(unused_variables)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode, Version};
use tokio::net::TcpListener;

/// The name this proxy gives itself in `Via`.
pub const VIA_NAME: &str = "reverse_proxy";

/// Headers that describe one connection (RFC 9110 section 7.6.1): never forwarded. The
/// headers named by `Connection` are hop-by-hop too.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The command line (ready to use: `Args::parse()`).
#[derive(Debug, Parser)]
#[command(
    name = "reverse_proxy",
    about = "Forwards HTTP requests to one upstream"
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The server to forward to.
    #[arg(long)]
    pub upstream: SocketAddr,
    /// How long the upstream may take to answer (connect, send, response head): `500ms`, `2s`.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Parses `250ms`, `2s`, `1.5s` or a plain number of seconds (ready to use).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.strip_suffix("ms") {
        Some(ms) => (ms, 0.001),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(Duration::from_secs_f64(n * unit)),
        _ => Err(format!("not a duration like 500ms or 2s: {text:?}")),
    }
}

/// The body type to answer with: either the upstream's stream (`Incoming`, boxed with
/// `BodyExt::boxed`) or a small error message of our own.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// What every request needs: an HTTP client (`hyper_util::client::legacy::Client` keeps a
/// pool of upstream connections), the upstream address, the timeout.
pub struct Proxy {
    // Your fields.
}

impl Proxy {
    pub fn new(upstream: SocketAddr, timeout: Duration) -> Proxy {
        todo!("build the client")
    }

    /// Forwards one request (absolute URI towards the upstream, headers fixed up) and returns
    /// the upstream's response with its body still streaming, or a 502 / 504 of our own.
    pub async fn forward(&self, req: Request<Incoming>, client: SocketAddr) -> Response<ProxyBody> {
        todo!("rewrite the URI, fix the headers, send with a timeout, map errors to 502/504")
    }
}

/// Removes the hop-by-hop headers, including the ones `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    todo!("collect the names listed in Connection, remove them, then remove HOP_BY_HOP")
}

/// Appends the client's IP to `X-Forwarded-For`, sets `X-Forwarded-Proto: http`, appends
/// `<version> VIA_NAME` (`1.1 reverse_proxy`) to `Via`.
pub fn add_forwarding_headers(headers: &mut HeaderMap, client: SocketAddr, version: Version) {
    todo!("append to the existing lists, or start them")
}

/// A short plain-text response of our own (502, 504...).
pub fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    todo!("Full::new(..).map_err(|never| match never {{}}).boxed()")
}

/// Accepts clients forever; each connection is served by hyper's HTTP/1.1 server in its own
/// task, calling `Proxy::forward` for every request.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>) {
    todo!(
        "accept, spawn, http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(..))"
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!("Args::parse, bind, print `listening on <addr>`, serve")
}
