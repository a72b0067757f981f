//! ## Goal
//! Rewrite the server of lab 3.3 with the standard Rust web stack: `axum` for routing, `hyper`
//! (under axum) for HTTP, `tower-http` for static files and timeouts.
//! `axum_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]` has the same three
//! routes, the same limits and the same status codes, and it is graded by **the same tests**:
//! both labs' graders call `labkit::http_suite`. On top of that it speaks HTTP/2 without TLS (h2c,
//! "prior knowledge"), which lab 3.3 does not.
//!
//! ## Requirements
//! 1. `GET /` answers `200` with `Content-Type: text/plain` and the body `hello, world\n`.
//! 2. `GET /static/<path>` serves the file under `--root` with its content type (`.html`
//!    `text/html`, `.css` `text/css`, `.js` `text/javascript`, `.json` `application/json`, `.txt`
//!    `text/plain`, `.png` `image/png`, else `application/octet-stream`); percent-encoded names
//!    work; a missing file is a `404`.
//! 3. `POST /echo` answers `200` with the request body and the request's `Content-Type` (or
//!    `application/octet-stream`), for bodies up to 1 MiB sent with `Content-Length` or chunked. A
//!    known path with the wrong method is a `405`, an unknown path a `404`.
//! 4. Keep-alive, `Connection: close`, HTTP/1.0, pipelined requests answered in order, `HEAD`
//!    without a body: as in lab 3.3.
//! 5. No request reads a file outside `--root` (`..` plain or encoded, absolute paths): `403` or
//!    `404`.
//! 6. A malformed request line or header, a bad `Content-Length` or chunk: `400`. A head over
//!    8 KiB: `431`, also for a head that never ends. A body over 1 MiB: `413`, from
//!    `Content-Length` before the body is read. An unknown method (`BREW`, `get`): `501`. After
//!    each refusal the server closes the connection.
//! 7. A client without a complete request within `--request-timeout` seconds (default 10) is
//!    disconnected, whether it sends nothing, stops in the head or the body, trickles bytes, or
//!    idles after a request; others are served meanwhile.
//! 8. Garbage, resets and bad arguments never crash the server; a bad argument gives a one-line
//!    error and a non-zero exit code.
//! 9. The same port also speaks HTTP/2 with prior knowledge (h2c): many requests multiplexed on
//!    one connection, each answered as over HTTP/1.1.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 3.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `GET /` answers `200` with `Content-Type: text/plain` and the body `hello,
//!   world\n`
//! - [ ] Requirement 2: `GET /static/<path>` serves the file under `--root` with its content type
//!   (`.html` `text/html`, `.css` `text/css`, `.js` `text/javascript`, `.json` `application/json`,
//!   `.txt` `text/plain`, `.png` `image/png`, else `application/octet-stream`); percent-encoded
//!   names work; a missing file is a `404`
//! - [ ] Requirement 3: `POST /echo` answers `200` with the request body and the request's
//!   `Content-Type` (or `application/octet-stream`), for bodies up to 1 MiB sent with
//!   `Content-Length` or chunked
//! - [ ] Requirement 4: Keep-alive, `Connection: close`, HTTP/1.0, pipelined requests answered in
//!   order, `HEAD` without a body: as in lab 3.3
//! - [ ] Requirement 5: No request reads a file outside `--root` (`..` plain or encoded, absolute
//!   paths): `403` or `404`
//! - [ ] Requirement 6: A malformed request line or header, a bad `Content-Length` or chunk: `400`
//! - [ ] Requirement 7: A client without a complete request within `--request-timeout` seconds
//!   (default 10) is disconnected, whether it sends nothing, stops in the head or the body,
//!   trickles bytes, or idles after a request; others are served meanwhile
//! - [ ] Requirement 8: Garbage, resets and bad arguments never crash the server; a bad argument
//!   gives a one-line error and a non-zero exit code
//! - [ ] Requirement 9: The same port also speaks HTTP/2 with prior knowledge (h2c): many requests
//!   multiplexed on one connection, each answered as over HTTP/1.1
//!
//! ## Notes
//!
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

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use clap::Parser;
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

/// What the command line asks for (given: main() parses it with `Args::parse()`).
#[derive(Debug, Parser)]
#[command(
    name = "axum_server",
    about = "The server of lab 3.3 on axum, hyper and tower-http: GET /, GET /static/<path>, \
             POST /echo, over HTTP/1.1 and h2c"
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
