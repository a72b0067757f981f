//! The server of lab 3.3, rewritten with axum:
//! `axum_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]`.
//!
//! Same routes, same limits, same status codes: the grader is lab 3.3's, unchanged
//! (`labkit::http_suite`), plus one test that speaks HTTP/2 without TLS (h2c, prior knowledge).
//! Read README.md for the requirements; `cargo lab test 3.4` grades this file.
//!
//! Find, for each requirement, the piece of the stack that already does it (hyper, axum,
//! tower-http), and write only the glue. The bench calls `app` and `serve`: keep their
//! signatures. Remove the `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Largest request head, in bytes: more is a 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body, in bytes: more is a 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// The body of `GET /`.
pub const GREETING: &str = "hello, world\n";

/// The routes: `GET /`, `POST /echo`, `/static` served from `root`, with the body limit, the
/// request timeout, and a 501 for unknown methods.
pub fn app(root: &Path, request_timeout: Duration) -> Router {
    todo!("Router::new().route(..).nest_service(\"/static\", ServeDir::new(root)).layer(..)")
}

/// Accepts connections forever and serves each with HTTP/1.1 or HTTP/2 (hyper-util's `auto`
/// builder), with an 8 KiB head limit and a deadline for slow clients.
pub async fn serve(listener: TcpListener, app: Router, request_timeout: Duration) {
    todo!("accept loop; hyper_util::server::conn::auto::Builder; TowerToHyperService")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!("parse --addr, --root, --request-timeout; bind; print `listening on <addr>`; serve")
}
