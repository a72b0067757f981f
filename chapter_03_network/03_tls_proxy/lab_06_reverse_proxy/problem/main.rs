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
