//! The one grader of chapter 3's two HTTP servers: lab 3.3 (HTTP/1.1 from scratch) and lab 3.4
//! (the same routes with axum). Both build the same program, so both pass the same
//! specification: each lab's grader (`tests/test_http_server.rs`, `tests/test_axum_rewrite.rs`)
//! is a list of `#[test]` functions that call the checks below with the lab's binary, for example
//! `labkit::http_suite::refuses_path_traversal(labkit::lab_bin!())`.
//!
//! The server under test runs as `bin --addr 127.0.0.1:0 --root DIR [--request-timeout SECS]`
//! over a fresh directory of random files ([`Site`]), with a secret file next to the root that
//! must never be served. Happy paths go through a real HTTP client (hyper-util's); malformed
//! requests go through raw sockets ([`RawConn`]), because a client library refuses to send them.
//! Every network wait has a timeout.
//!
//! The module also holds what the two labs' benchmarks share: a reference hyper server with the
//! same routes ([`serve_hyper_baseline`]) and a `wrk` driver ([`wrk`]).

mod bench;
mod checks;
mod client;
mod raw;
mod site;

pub use bench::*;
pub use checks::*;
use client::*;
pub use raw::*;
pub use site::*;

/// Largest request head a server must accept; a bigger one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body a server must accept; a bigger one gets 413.
pub const MAX_BODY: usize = 1024 * 1024;
/// The body of `GET /`.
pub const GREETING: &str = "hello, world\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::echo::random_bytes;

    #[test]
    fn reads_responses_framed_every_way() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc\
                     HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1;x=y\r\nf\r\n0\r\nT: 1\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n\
                     HTTP/1.1 404 Not Found\r\n\r\nrest";
        let mut reader = &wire[..];
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abc"[..]));
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!(r.body, b"def");
        let r = read_response(&mut reader, true).unwrap();
        assert_eq!((r.status, r.header("content-length")), (200, Some("10")));
        assert!(r.body.is_empty());
        let r = read_response(&mut reader, false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"rest"[..]));
    }

    #[test]
    fn builds_chunked_requests_that_decode_to_the_body() {
        let body = random_bytes(10_000);
        let request = post_chunked(&body, &random_bytes(32));
        let start = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        // Decode with the response reader's chunk logic, dressed as a response.
        let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        wire.extend_from_slice(&request[start..]);
        let r = read_response(&mut &wire[..], false).unwrap();
        assert!(r.body == body);
    }
}
