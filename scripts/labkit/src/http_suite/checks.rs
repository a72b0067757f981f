//! The checks: one function per requirement of the shared specification.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::echo::random_bytes;
use crate::net::NET_TIMEOUT;

use super::*;

/// The number of a requirement in the README of the lab under test: the two labs number the
/// same specification differently (lab 3.3 from scratch, lab 3.4 with axum).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req(u8);

impl Req {
    /// Requirement `http_server` in lab 3.3, `axum` in lab 3.4.
    pub(crate) fn of(bin: &str, http_server: u8, axum: u8) -> Req {
        let name = Path::new(bin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Req(if name.contains("axum") {
            axum
        } else {
            http_server
        })
    }
}

impl std::fmt::Display for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "requirement {}", self.0)
    }
}

/// `bytes` for a failure message: at most 80 bytes, lossy UTF-8.
pub(crate) fn shown(bytes: &[u8]) -> String {
    format!(
        "{:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(80)])
    )
}

/// The first byte where `got` and `want` differ, for failure messages.
pub(crate) fn first_difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(at) => format!("{} bytes, first difference at byte {at}", got.len()),
        None => format!(
            "{} bytes, the first {} equal",
            got.len(),
            got.len().min(want.len())
        ),
    }
}

/// Sends `request` on a fresh connection and requires the response `status`, then the end of
/// the connection: after refusing a request, the server cannot know where the next one would
/// start, so it closes.
pub(crate) fn refused(r: Req, addr: SocketAddr, request: &[u8], status: u16, what: &str) {
    let mut conn = RawConn::open(addr);
    // The server may answer and close before it read everything (a 431 for example): a failed
    // write is not the test's concern, a missing response is.
    let _ = conn.writer.write_all(request);
    let got = conn.response(false, &format!("{r}: {what}"));
    assert!(
        got.status == status,
        "{r}: {what} got {}; wanted {status}",
        got.status
    );
    conn.wait_closed(
        Instant::now() + NET_TIMEOUT,
        &format!("{r}: {what}, after the {status} (a refused request ends its connection)"),
    );
}

/// Requirement: `GET /` answers 200, `text/plain`, body `hello, world\n`; `HEAD /` the same
/// head with no body.
pub fn serves_the_greeting(bin: &str) {
    let site = Site::start(bin);
    let (r, head) = (Req::of(bin, 1, 1), Req::of(bin, 8, 4));
    block_on(async {
        let client = http1_client();
        let got = fetch(&client, Method::GET, &site.url("/"), None, full("")).await;
        assert!(
            got.status == StatusCode::OK,
            "{r}: GET / got {}; wanted 200",
            got.status
        );
        let content_type = got.content_type();
        assert!(
            media_type(&content_type) == "text/plain",
            "{r}: GET / has the content type {content_type:?}; wanted text/plain"
        );
        assert!(
            got.body == GREETING.as_bytes(),
            "{r}: GET / returned {}; wanted {GREETING:?}",
            shown(&got.body)
        );
        let got = fetch(&client, Method::HEAD, &site.url("/"), None, full("")).await;
        assert!(
            got.status == StatusCode::OK,
            "{head}: HEAD / got {}; wanted 200",
            got.status
        );
        assert!(
            got.body.is_empty(),
            "{head}: HEAD / came with a body of {} bytes; wanted none",
            got.body.len()
        );
    });
}

/// Requirement: `GET /static/<path>` serves the file under the root, byte for byte, with the
/// content type of its extension (`application/octet-stream` when unknown); a missing file is
/// a 404; percent-encoded names are decoded (`with%20space.txt`).
pub fn serves_static_files_with_content_types(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 2, 2);
    block_on(async {
        let client = http1_client();
        for file in &site.files {
            let url = site.url(&format!("/static/{}", file.url));
            let got = fetch(&client, Method::GET, &url, None, full("")).await;
            assert!(
                got.status == StatusCode::OK,
                "{r}: GET {url} got {}; wanted 200",
                got.status
            );
            assert!(
                got.body == file.bytes,
                "{r}: GET {url}: the body ({}) differs from the file of {} bytes",
                first_difference(&got.body, &file.bytes),
                file.bytes.len()
            );
            let content_type = got.content_type();
            assert!(
                media_type(&content_type) == file.media_type,
                "{r}: GET {url} has the content type {content_type:?}; wanted {}",
                file.media_type
            );
        }
        for missing in [
            "/static/nope.txt",
            "/static/sub/nope.html",
            "/nope",
            "/static",
        ] {
            let got = fetch(&client, Method::GET, &site.url(missing), None, full("")).await;
            assert!(
                got.status == StatusCode::NOT_FOUND,
                "{r}: GET {missing} got {}; wanted 404",
                got.status
            );
        }
    });
}

/// Requirement: `POST /echo` answers 200 with the request body, whatever its size up to 1 MiB,
/// sent with `Content-Length` or chunked, and with the request's content type (or
/// `application/octet-stream`). Wrong methods get 405.
pub fn echoes_request_bodies(bin: &str) {
    let site = Site::start(bin);
    let url = site.url("/echo");
    let r = Req::of(bin, 3, 3);
    block_on(async {
        let client = http1_client();
        let sizes = [
            0,
            1,
            1000,
            65_536,
            200_000 + random_bytes(2)[0] as usize,
            MAX_BODY,
        ];
        for size in sizes {
            let body = random_bytes(size);
            let content_type = format!("application/x-test-{}", size % 97);
            let got = fetch(
                &client,
                Method::POST,
                &url,
                Some(&content_type),
                full(body.clone()),
            )
            .await;
            assert!(
                got.status == StatusCode::OK,
                "{r}: POST /echo of {size} bytes got {}; wanted 200",
                got.status
            );
            assert!(
                got.body == body,
                "{r}: POST /echo of {size} bytes came back as {}",
                first_difference(&got.body, &body)
            );
            assert!(
                got.content_type() == content_type,
                "{r}: POST /echo with the content type {content_type:?} came back with {:?}",
                got.content_type()
            );
        }
        let got = fetch(&client, Method::POST, &url, None, full("x")).await;
        assert!(
            media_type(&got.content_type()) == "application/octet-stream",
            "{r}: POST /echo without a content type came back with {:?}; wanted \
             application/octet-stream",
            got.content_type()
        );

        // A streamed body of unknown length: the client sends it chunked.
        let pieces: Vec<Bytes> = (0..7)
            .map(|i| Bytes::from(random_bytes(1 + i * 1500)))
            .collect();
        let whole: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        let body = BoxBody::new(Pieces(pieces.into()));
        let got = fetch(&client, Method::POST, &url, Some("text/plain"), body).await;
        let chunked = Req::of(bin, 5, 3);
        assert!(
            got.status == StatusCode::OK,
            "{chunked}: chunked POST /echo got {}; wanted 200",
            got.status
        );
        assert!(
            got.body == whole,
            "{chunked}: a chunked POST /echo of {} bytes came back as {}",
            whole.len(),
            first_difference(&got.body, &whole)
        );

        for (method, path) in [
            (Method::GET, "/echo"),
            (Method::POST, "/"),
            (Method::DELETE, "/echo"),
        ] {
            let got = fetch(&client, method.clone(), &site.url(path), None, full("")).await;
            assert!(
                got.status == StatusCode::METHOD_NOT_ALLOWED,
                "{r}: {method} {path} got {}; wanted 405",
                got.status
            );
        }
    });
}

/// Requirement: `HEAD` gets the headers a `GET` would get, `Content-Length` included, and no
/// body: the next response on the same connection starts right after the head.
pub fn answers_head_without_a_body(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 8, 4);
    let file = site.file("notes.txt");
    let mut conn = RawConn::open(site.addr());
    conn.send(b"HEAD /static/notes.txt HTTP/1.1\r\nHost: test\r\n\r\n");
    conn.send(&get("/"));
    let head = conn.response(true, &format!("{r}: HEAD /static/notes.txt"));
    assert!(
        head.status == 200,
        "{r}: HEAD /static/notes.txt got {}; wanted 200",
        head.status
    );
    let want = file.bytes.len().to_string();
    assert!(
        head.header("content-length") == Some(want.as_str()),
        "{r}: HEAD /static/notes.txt announced Content-Length {:?}; wanted {want}, the length \
         of the body a GET would get",
        head.header("content-length")
    );
    let next = conn.response(false, &format!("{r}: GET / after a HEAD"));
    assert!(
        (next.status, next.body.as_slice()) == (200, GREETING.as_bytes()),
        "{r}: the response after a HEAD response was {} {}; wanted 200 {GREETING:?} (a HEAD \
         response must not carry a body)",
        next.status,
        shown(&next.body)
    );
}

/// Requirement: HTTP/1.1 connections stay open for more requests; `Connection: close` gets its
/// response and then the server closes; HTTP/1.0 closes unless `Connection: keep-alive`.
pub fn keeps_connections_alive(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 6, 4);
    let deadline = || Instant::now() + NET_TIMEOUT;
    let mut conn = RawConn::open(site.addr());
    for i in 0..5 {
        let body = random_bytes(10 + i * 100);
        conn.send(&get("/"));
        let got = conn.response(false, &format!("{r}: GET / on a kept-alive connection"));
        assert!(
            (got.status, got.body.as_slice()) == (200, GREETING.as_bytes()),
            "{r}: GET / number {i} on a kept-alive connection got {} {}; wanted 200 {GREETING:?}",
            got.status,
            shown(&got.body)
        );
        conn.send(&post("/echo", &body));
        let got = conn.response(
            false,
            &format!("{r}: POST /echo on a kept-alive connection"),
        );
        assert!(
            got.status == 200 && got.body == body,
            "{r}: POST /echo number {i} on a kept-alive connection got {} and {}; wanted 200 \
             and the {} bytes sent",
            got.status,
            first_difference(&got.body, &body),
            body.len()
        );
    }
    conn.send(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let got = conn.response(false, &format!("{r}: GET / with Connection: close"));
    assert!(
        got.status == 200,
        "{r}: GET / with Connection: close got {}; wanted 200",
        got.status
    );
    let extra = conn.wait_closed(
        deadline(),
        &format!("{r}: after a `Connection: close` request"),
    );
    assert!(
        extra.is_empty(),
        "{r}: {} bytes followed the last response before the close; wanted none",
        extra.len()
    );

    let mut old = RawConn::open(site.addr());
    old.send(b"GET / HTTP/1.0\r\n\r\n");
    let got = old.response(false, &format!("{r}: HTTP/1.0 GET /"));
    assert!(
        got.status == 200,
        "{r}: HTTP/1.0 GET / got {}; wanted 200",
        got.status
    );
    old.wait_closed(
        deadline(),
        &format!("{r}: after an HTTP/1.0 request without keep-alive"),
    );

    let mut old = RawConn::open(site.addr());
    for i in 0..3 {
        old.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let got = old.response(
            false,
            &format!("{r}: HTTP/1.0 GET / number {i} with Connection: keep-alive"),
        );
        assert!(
            (got.status, got.body.as_slice()) == (200, GREETING.as_bytes()),
            "{r}: HTTP/1.0 GET / number {i} with Connection: keep-alive got {} {}; wanted 200 \
             {GREETING:?}",
            got.status,
            shown(&got.body)
        );
    }
}

/// Requirement: requests pipelined on one connection (all sent before any response is read,
/// in random-sized writes) are all answered, in order. The mix is random: greetings, files,
/// `HEAD`s, echoes with `Content-Length` or chunked, 404s.
pub fn answers_pipelined_requests_in_order(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 7, 4);
    let seed = random_bytes(256);
    let count = 30 + seed[0] as usize % 30;
    let mut wire = Vec::new();
    // (what, HEAD?, status, expected body)
    let mut expected: Vec<(String, bool, u16, Vec<u8>)> = Vec::new();
    for i in 0..count {
        let pick = seed[i % seed.len()] as usize;
        let file = &site.files[pick % site.files.len()];
        match pick % 6 {
            0 => {
                wire.extend(get("/"));
                expected.push(("GET /".into(), false, 200, GREETING.into()));
            }
            1 => {
                let url = format!("/static/{}", file.url);
                wire.extend(get(&url));
                expected.push((format!("GET {url}"), false, 200, file.bytes.clone()));
            }
            2 => {
                let url = format!("/static/{}", file.url);
                wire.extend(format!("HEAD {url} HTTP/1.1\r\nHost: test\r\n\r\n").bytes());
                expected.push((format!("HEAD {url}"), true, 200, Vec::new()));
            }
            3 => {
                let body = random_bytes(pick * 40);
                wire.extend(post("/echo", &body));
                expected.push(("POST /echo".into(), false, 200, body));
            }
            4 => {
                let body = random_bytes(1 + pick * 30);
                wire.extend(post_chunked(&body, &seed[i..]));
                expected.push(("chunked POST /echo".into(), false, 200, body));
            }
            _ => {
                wire.extend(get("/static/missing-file.txt"));
                expected.push(("GET a missing file".into(), false, 404, Vec::new()));
            }
        }
    }
    let mut conn = RawConn::open(site.addr());
    let mut writer = conn.writer();
    let sending = thread::spawn(move || -> io::Result<()> {
        let mut at = 0;
        let mut i = 0;
        while at < wire.len() {
            let size = (1 + seed[i % seed.len()] as usize * 13).min(wire.len() - at);
            writer.write_all(&wire[at..at + size])?;
            at += size;
            i += 1;
        }
        Ok(())
    });
    for (i, (what, head, status, body)) in expected.iter().enumerate() {
        let got = conn.response(
            *head,
            &format!("{r}: pipelined request {i} of {count} ({what})"),
        );
        assert!(
            got.status == *status,
            "{r}: pipelined request {i} of {count} ({what}) got {}; wanted {status}",
            got.status
        );
        if *status == 200 {
            assert!(
                got.body == *body,
                "{r}: pipelined request {i} of {count} ({what}): the body came back as {}, of \
                 {} bytes sent",
                first_difference(&got.body, body),
                body.len()
            );
        }
    }
    sending
        .join()
        .expect("writer thread")
        .unwrap_or_else(|e| panic!("{r}: writing the pipelined requests failed: {e}"));
}

/// Requirement: chunked request bodies are decoded: hex sizes in either case, chunk
/// extensions, trailers, and a request that arrives in small pieces.
pub fn decodes_chunked_request_bodies(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 5, 3);
    for round in 0..5 {
        let seed = random_bytes(64);
        let body = random_bytes(1 + seed[0] as usize * 97);
        let request = post_chunked(&body, &seed);
        let mut conn = RawConn::open(site.addr());
        // Small pieces with pauses: the server sees the request a few bytes at a time.
        for piece in request.chunks(1 + request.len() / 20) {
            conn.send(piece);
            thread::sleep(Duration::from_millis(2));
        }
        let got = conn.response(false, &format!("{r}: chunked POST /echo, round {round}"));
        assert!(
            got.status == 200,
            "{r}: chunked POST /echo, round {round}, got {}; wanted 200",
            got.status
        );
        assert!(
            got.body == body,
            "{r}: chunked POST /echo, round {round}: the decoded body came back as {}, of {} \
             bytes sent",
            first_difference(&got.body, &body),
            body.len()
        );
    }
    // Header names and the coding are case-insensitive.
    let mut conn = RawConn::open(site.addr());
    conn.send(
        b"POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: Chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
    );
    let got = conn.response(
        false,
        &format!("{r}: chunked POST with lower-case header names"),
    );
    assert!(
        (got.status, got.body.as_slice()) == (200, &b"abc"[..]),
        "{r}: `transfer-encoding: Chunked` got {} {}; wanted 200 \"abc\"",
        got.status,
        shown(&got.body)
    );
}

/// Requirement: no request reads a file outside the root: `..` in every disguise (plain,
/// percent-encoded in either case, mixed), absolute paths, encoded slashes. Each gets a 4xx
/// (403 or 404, or 400 for an undecodable path) and never the secret next to the root.
pub fn refuses_path_traversal(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 9, 5);
    let absolute = site.secret_path.display().to_string();
    let attempts = [
        "/static/../secret.txt".to_string(),
        "/static/%2e%2e/secret.txt".into(),
        "/static/%2E%2E/secret.txt".into(),
        "/static/.%2e/secret.txt".into(),
        "/static/..%2fsecret.txt".into(),
        "/static/..%2Fsecret.txt".into(),
        "/static/%2e%2e%2fsecret.txt".into(),
        "/static/sub/../../secret.txt".into(),
        "/static/sub/%2e%2e/%2e%2e/secret.txt".into(),
        "/static/sub/deep/..%2f..%2f..%2fsecret.txt".into(),
        "/static/%2e%2e%5csecret.txt".into(),
        "/static/....//secret.txt".into(),
        "/static/%252e%252e/secret.txt".into(),
        format!("/static/{absolute}"),
        format!("/static/{}", absolute.replace('/', "%2f")),
        "/static//etc/passwd".into(),
        "/static/%2fetc%2fpasswd".into(),
        "/static/../../../../../../etc/passwd".into(),
    ];
    for target in &attempts {
        let mut conn = RawConn::open(site.addr());
        conn.send(&get(target));
        let got = conn.response(false, &format!("{r}: GET {target}"));
        assert!(
            matches!(got.status, 400 | 403 | 404),
            "{r}: GET {target} got {}; wanted 403 or 404",
            got.status
        );
        let body = String::from_utf8_lossy(&got.body);
        assert!(
            !body.contains(&site.secret) && !body.contains("root:x:0:0"),
            "{r}: GET {target} served a file outside the root"
        );
    }
    // The files inside the root are still served, `sub/` included.
    let mut conn = RawConn::open(site.addr());
    conn.send(&get("/static/sub/deep/file.txt"));
    let got = conn.response(false, &format!("{r}: GET /static/sub/deep/file.txt"));
    let want = &site.file("sub/deep/file.txt").bytes;
    assert!(
        got.status == 200 && got.body == *want,
        "{r}: GET /static/sub/deep/file.txt got {} and {}; wanted 200 and the file of {} bytes",
        got.status,
        first_difference(&got.body, want),
        want.len()
    );
}

/// The malformed requests every server of the chapter must answer with 400.
pub const MALFORMED: &[&[u8]] = &[
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /\r\n\r\n",
    b"GET / HTTP/1.1 extra\r\nHost: test\r\n\r\n",
    b"GET / HTTX/1.1\r\nHost: test\r\n\r\n",
    b"GET / http/1.1\r\nHost: test\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: test\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: test\r\n\r\n",
    b"G(T / HTTP/1.1\r\nHost: test\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost test\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : test\r\n\r\n",
    b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
    b"GET / HTTP/1.1\r\nBad\x01Name: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: te\x00st\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: abc\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: -5\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
];

/// Requirement: a malformed request line or header, a bad `Content-Length` or a broken chunk
/// gets a 400 and the end of its connection, and the server keeps serving. A malformed
/// request line is refused as soon as it is complete, without waiting for the rest of the head.
pub fn rejects_malformed_requests_with_400(bin: &str) {
    let mut site = Site::start(bin);
    let r = Req::of(bin, 10, 6);
    for request in MALFORMED {
        refused(r, site.addr(), request, 400, &shown(request));
    }
    refused(
        r,
        site.addr(),
        b"NOT A REQUEST LINE\r\n",
        400,
        "a bad request line alone, the rest of the head never sent",
    );
    let status = status_of(site.addr(), &get("/"));
    assert!(
        status == 200,
        "{r}: GET / after the malformed requests got {status}; wanted 200"
    );
    site.assert_running(&format!("{r}: malformed requests"));
}

/// Requirement: a head over 8 KiB gets 431 (one huge header, or many, or a head that never
/// ends: refused once 8 KiB have arrived), and the end of its connection; a head just under
/// the limit is served.
pub fn rejects_oversized_heads_with_431(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 10, 6);
    let big = "a".repeat(MAX_HEAD + 2000);
    let one_huge = format!("GET / HTTP/1.1\r\nHost: test\r\nX-Big: {big}\r\n\r\n");
    refused(
        r,
        site.addr(),
        one_huge.as_bytes(),
        431,
        "one 10 KiB header",
    );

    let mut many = String::from("GET / HTTP/1.1\r\nHost: test\r\n");
    for i in 0..60 {
        many.push_str(&format!("X-Header-{i}: {}\r\n", "b".repeat(200)));
    }
    many.push_str("\r\n");
    refused(
        r,
        site.addr(),
        many.as_bytes(),
        431,
        "60 headers of 200 bytes",
    );

    let endless = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Endless: {}",
        "e".repeat(MAX_HEAD + 1000)
    );
    refused(
        r,
        site.addr(),
        endless.as_bytes(),
        431,
        "9 KiB of a head that never ends",
    );

    let near = format!(
        "GET / HTTP/1.1\r\nHost: test\r\nX-Near: {}\r\n\r\n",
        "c".repeat(MAX_HEAD - 1000)
    );
    let status = status_of(site.addr(), near.as_bytes());
    assert!(
        status == 200,
        "{r}: a 7 KiB head got {status}; wanted 200 (the limit is 8 KiB)"
    );
}

/// Requirement: a body over 1 MiB gets 413 and the end of its connection: announced by
/// `Content-Length` (refused before the body is read, so a client that claims 1 GiB and sends
/// nothing still gets its answer), or found while decoding chunks.
pub fn rejects_oversized_bodies_with_413(bin: &str) {
    let mut site = Site::start(bin);
    let r = Req::of(bin, 10, 6);
    let claim = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    );
    refused(
        r,
        site.addr(),
        claim.as_bytes(),
        413,
        "a head claiming a 1 GiB body, the body never sent",
    );

    let too_big = random_bytes(MAX_BODY + 1 + random_bytes(1)[0] as usize);
    let by_length = post("/echo", &too_big);
    let mut chunked =
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for piece in too_big.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    for (how, request) in [("Content-Length", by_length), ("chunked", chunked)] {
        let what = format!("POST /echo of {} bytes ({how})", too_big.len());
        let mut conn = RawConn::open(site.addr());
        // The whole request is sent while the response is read: the server may answer early.
        let mut writer = conn.writer();
        let sending = thread::spawn(move || {
            let _ = writer.write_all(&request);
        });
        let got = conn.response(false, &format!("{r}: {what}"));
        assert!(
            got.status == 413,
            "{r}: {what} got {}; wanted 413",
            got.status
        );
        conn.wait_closed(
            Instant::now() + NET_TIMEOUT,
            &format!("{r}: {what}, after the 413 (a refused request ends its connection)"),
        );
        let _ = sending.join();
    }
    let status = status_of(site.addr(), &post("/echo", b"small"));
    assert!(
        status == 200,
        "{r}: a small POST /echo after the oversized ones got {status}; wanted 200"
    );
    site.assert_running(&format!("{r}: oversized bodies"));
}

/// Requirement: a method the server does not know gets 501 and the end of its connection
/// (methods are case-sensitive, so `get` is unknown too).
pub fn rejects_unknown_methods_with_501(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 10, 6);
    for method in ["BREW", "PURGE", "get", "FROB"] {
        let request = format!("{method} / HTTP/1.1\r\nHost: test\r\n\r\n");
        refused(
            r,
            site.addr(),
            request.as_bytes(),
            501,
            &format!("{method} /"),
        );
    }
    let status = status_of(site.addr(), &get("/"));
    assert!(
        status == 200,
        "{r}: GET / after unknown methods got {status}; wanted 200"
    );
}

/// Requirement: a client that has not sent a complete request within `--request-timeout`
/// (here 1 s) is disconnected, whether it sends nothing, stops halfway through the head or the
/// body, trickles bytes, or sits idle after a request. Other clients are served meanwhile.
pub fn closes_slow_clients_and_keeps_serving_others(bin: &str) {
    let mut site = Site::start_with(bin, &["--request-timeout", "1"]);
    let r = Req::of(bin, 11, 7);
    let addr = site.addr();
    // Generous: six times the timeout, so a loaded machine does not fail the test.
    let deadline = Instant::now() + Duration::from_secs(6);

    let mut silent = RawConn::open(addr);
    let mut half_head = RawConn::open(addr);
    half_head.send(b"GET / HTTP/1.1\r\nHost: test\r\n");
    let mut half_body = RawConn::open(addr);
    half_body.send(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789");
    let mut idle = RawConn::open(addr);
    idle.send(&get("/"));
    let status = idle
        .response(false, &format!("{r}: GET / before idling"))
        .status;
    assert!(
        status == 200,
        "{r}: GET / before idling got {status}; wanted 200"
    );

    // One byte every 100 ms: each read succeeds, so only a deadline for the whole request
    // (not a timeout per read) stops this client.
    let mut trickle = RawConn::open(addr);
    let mut writer = trickle.writer();
    let trickling = thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\nX-Slow: ");
        let stop = Instant::now() + Duration::from_secs(8);
        while Instant::now() < stop {
            if writer.write_all(b"a").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
    });

    // The server is not stuck on them: other clients are served at once.
    for i in 0..5 {
        let status = status_of(addr, &get("/"));
        assert!(
            status == 200,
            "{r}: GET / number {i} while slow clients hang got {status}; wanted 200"
        );
    }

    for (what, conn) in [
        ("a client that sends nothing", &mut silent),
        (
            "a client that stops in the middle of the head",
            &mut half_head,
        ),
        (
            "a client that stops in the middle of the body",
            &mut half_body,
        ),
        ("a client idle after its request", &mut idle),
        ("a client that trickles one byte every 100 ms", &mut trickle),
    ] {
        let got = conn.wait_closed(deadline, &format!("{r}: {what} (--request-timeout 1)"));
        assert!(
            got.is_empty() || got.starts_with(b"HTTP/1.1 408"),
            "{r}: {what} got {} before the close; wanted nothing or a 408",
            shown(&got)
        );
    }
    let _ = trickling.join();
    let status = status_of(addr, &get("/"));
    assert!(
        status == 200,
        "{r}: GET / after the slow clients got {status}; wanted 200"
    );
    site.assert_running(&format!("{r}: slow clients"));
}

/// Requirement: garbage, truncated requests and resets do not kill the server.
pub fn survives_garbage_and_resets(bin: &str) {
    let mut site = Site::start(bin);
    let r = Req::of(bin, 13, 8);
    for (i, pick) in random_bytes(30).into_iter().enumerate() {
        let pick = pick as usize;
        let mut conn = RawConn::open(site.addr());
        let garbage = match i % 3 {
            0 => random_bytes(1 + pick * 50),
            1 => {
                let mut g = get("/");
                g.truncate(pick % g.len());
                g
            }
            _ => {
                let mut g = post("/echo", &random_bytes(5000));
                g.truncate(40 + pick * 10);
                g
            }
        };
        let _ = conn.writer.write_all(&garbage);
        if pick.is_multiple_of(2) {
            conn.reset_on_drop();
        }
    }
    let status = status_of(site.addr(), &get("/"));
    assert!(
        status == 200,
        "{r}: GET / after garbage and resets got {status}; wanted 200"
    );
    site.assert_running(&format!("{r}: garbage and resets"));
}

/// Requirement (lab 3.4): the server also speaks HTTP/2 over cleartext with prior knowledge
/// (h2c): many requests multiplexed on one connection, each answered as over HTTP/1.1.
pub fn serves_http2_with_prior_knowledge(bin: &str) {
    let site = Site::start(bin);
    let r = Req::of(bin, 0, 9);
    block_on(async {
        let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http();
        // Twenty requests at once, on one connection: HTTP/2 streams.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let client = client.clone();
            let file = site.files[i % site.files.len()].clone();
            let url = site.url(&format!("/static/{}", file.url));
            let echo = site.url("/echo");
            tasks.spawn(async move {
                let got = fetch(&client, Method::GET, &url, None, full("")).await;
                assert!(
                    got.version == hyper::Version::HTTP_2 && got.status == StatusCode::OK,
                    "{r}: GET {url} over h2c got {} over {:?}; wanted 200 over HTTP/2",
                    got.status,
                    got.version
                );
                assert!(
                    got.body == file.bytes,
                    "{r}: GET {url} over h2c: the body ({}) differs from the file of {} bytes",
                    first_difference(&got.body, &file.bytes),
                    file.bytes.len()
                );
                let body = random_bytes(1000 * i);
                let got = fetch(&client, Method::POST, &echo, None, full(body.clone())).await;
                assert!(
                    got.status == StatusCode::OK && got.body == body,
                    "{r}: POST /echo of {} bytes over h2c got {} and {}",
                    body.len(),
                    got.status,
                    first_difference(&got.body, &body)
                );
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        let got = fetch(&client, Method::GET, &site.url("/"), None, full("")).await;
        assert!(
            got.version == hyper::Version::HTTP_2 && got.body == GREETING.as_bytes(),
            "{r}: GET / over h2c got {} over {:?}; wanted {GREETING:?} over HTTP/2",
            shown(&got.body),
            got.version
        );
    });
}
