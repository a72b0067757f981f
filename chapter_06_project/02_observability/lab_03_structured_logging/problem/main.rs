//! ## Goal
//! Make lab 6.1's service observable from its logs with `tracing`: JSON lines, one span per
//! request carrying the method, the route template and a request id, one `request completed`
//! event with the status and latency, errors logged once with their cause chain, and `RUST_LOG`
//! to choose what gets printed. The journal (`--journal PATH`, a write-ahead log of every write)
//! gives the service a real way to fail: `--journal /dev/full` makes every write fail with ENOSPC.
//!
//! ## Requirements
//! 1. Every request logs exactly one INFO event `request completed` inside a span `request` whose
//!    fields are `method`, `route` (the template, such as `/notes/{id}`; `unmatched` for unknown
//!    paths, never the raw path) and `request_id`; the event has `status` and `latency_ms`.
//! 2. The request id is the client's `X-Request-Id` when it is 1..=64 characters of
//!    `[A-Za-z0-9-_.:]`, else a new UUID v4; the response echoes it in `X-Request-Id`.
//! 3. A server error is logged once at ERROR, inside the request span, with an `error` field that
//!    holds the whole cause chain (`cannot append to the journal /dev/full: No space left on device
//!    (os error 28)`); the client gets a 500 problem `internal_error` that leaks none of it. A
//!    failed journal write changes nothing.
//! 4. Each journal append runs in a span `journal` (field `op`) nested in the request span and
//!    logs DEBUG `journal appended` with `bytes`.
//! 5. `RUST_LOG` filters (default `info`): no DEBUG lines by default; with `RUST_LOG=warn` the
//!    INFO lines disappear but ERROR lines keep their request span.
//! 6. No secret reaches the logs, at any level: not the `Authorization` or `Cookie` headers, not a
//!    note's body.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 6.3    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: Every request logs exactly one INFO event `request completed` inside a span
//!   `request` whose fields are `method`, `route` (the template, such as `/notes/{id}`; `unmatched`
//!   for unknown paths, never the raw path) and `request_id`; the event has `status` and
//!   `latency_ms`
//! - [ ] Requirement 2: The request id is the client's `X-Request-Id` when it is 1..=64 characters
//!   of `[A-Za-z0-9-_.:]`, else a new UUID v4; the response echoes it in `X-Request-Id`
//! - [ ] Requirement 3: A server error is logged once at ERROR, inside the request span, with an
//!   `error` field that holds the whole cause chain (`cannot append to the journal /dev/full: No
//!   space left on device (os error 28)`); the client gets a 500 problem `internal_error` that
//!   leaks none of it
//! - [ ] Requirement 4: Each journal append runs in a span `journal` (field `op`) nested in the
//!   request span and logs DEBUG `journal appended` with `bytes`
//! - [ ] Requirement 5: `RUST_LOG` filters (default `info`): no DEBUG lines by default; with
//!   `RUST_LOG=warn` the INFO lines disappear but ERROR lines keep their request span
//! - [ ] Requirement 6: No secret reaches the logs, at any level: not the `Authorization` or
//!   `Cookie` headers, not a note's body
//!
//! ## Notes
//!
//! Notes API with structured logging: lab 1's service, observable from its logs.
//!
//! Read README.md for the requirements; `cargo lab test 6.3` grades this file by reading the
//! JSON lines the server prints on stderr. The server takes `--addr HOST:PORT` and
//! `--journal PATH`, and prints the plain line `listening on <addr>` on stdout.
//!
//! Start by copying your lab 1 solution here; the items below are what is new. Remove the
//! `allow` below once everything is used.
#![allow(unused_variables, dead_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use clap::Parser;

/// The header that carries a request's id from hop to hop.
pub const REQUEST_ID: &str = "x-request-id";

/// `top: cause: cause of the cause`, following `Error::source()` to the end.
pub fn cause_chain(error: &dyn std::error::Error) -> String {
    todo!("walk error.source() and join the messages with \": \"")
}

/// The client's `X-Request-Id` when it is 1..=64 characters of `[A-Za-z0-9-_.:]`, else a new
/// UUID v4 (`uuid::Uuid::new_v4()`).
fn request_id(req: &Request) -> String {
    todo!("keep a sane client id or generate one")
}

/// Middleware (`axum::middleware::from_fn`): one `request` span per request with `method`,
/// `route` (the template, `unmatched` for unknown routes) and `request_id`; one INFO event
/// `request completed` with `status` and `latency_ms` inside it; the id echoed in the response.
async fn trace_request(req: Request, next: Next) -> Response {
    todo!("span, run the request instrumented, log completion, echo the id")
}

/// An append-only file of JSON lines, one per write, written *before* the change is applied.
/// Each append runs in a `journal` span (field `op`) and logs DEBUG `journal appended` with a
/// `bytes` field; a failed write becomes a 500 whose log line carries the cause chain.
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

/// Where the server listens when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The command line (it replaces lab 1's: `--journal` is new), ready to use: `Config::parse()`
/// (clap answers `--help`, and exits with code 2 on a bad argument).
#[derive(Debug, Parser)]
#[command(
    name = "ch6_structured_logging",
    about = "The notes API with structured JSON logs on stderr (RUST_LOG filters them)"
)]
pub struct Config {
    /// Where to listen (port 0: the kernel picks a free one; the bound address is printed)
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_ADDR)]
    pub addr: SocketAddr,
    /// Append every write to this file before applying it (no journal when absent)
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
}

/// JSON logs on stderr, filtered by `RUST_LOG` (default `info`), with the current span and the
/// span list on every event (`tracing_subscriber::fmt().json()...`).
fn init_tracing() {
    todo!("tracing_subscriber fmt().json() with EnvFilter, current span, span list, stderr")
}

#[tokio::main]
async fn main() -> ExitCode {
    todo!(
        "Config::parse(), init_tracing(), journal, bind, println!(\"listening on ..\"), \
         axum::serve"
    )
}
