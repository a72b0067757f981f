//! Grader for the reverse proxy: black-box tests through the real binary, between a raw HTTP
//! client and in-test upstreams (labkit::upstream) that record exactly what they received.

use std::io::{self, BufReader, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use labkit::upstream::{self, Exchange, Upstream};
use labkit::wait;
use labkit::{Server, lab_bin, run};
use rand::RngExt;

/// Starts the proxy in front of `upstream`.
fn proxy(upstream: SocketAddr, extra: &[&str]) -> Server {
    let upstream = upstream.to_string();
    let mut args = vec!["--upstream", upstream.as_str()];
    args.extend_from_slice(extra);
    Server::start(lab_bin!(), &args)
}

fn random_token() -> String {
    format!("{:016x}", rand::rng().random_range(0..u64::MAX))
}

/// Asserts that none of `names` is among `headers` (case-insensitive).
fn assert_absent(headers: &[(String, String)], names: &[&str], side: &str) {
    for name in names {
        let found: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .collect();
        assert!(
            found.is_empty(),
            "{side}: hop-by-hop header {name} must not pass: {found:?}"
        );
    }
}

// Requirement 1: requests and responses pass through unchanged (method, target, body, status,
// end-to-end headers).
#[test]
fn forwards_the_request_and_returns_the_response() {
    let upstream = Upstream::start(|ex: &mut Exchange<'_>| {
        let body = ex.body_bytes()?;
        let marker = ex
            .request
            .header("x-marker")
            .unwrap_or_default()
            .to_string();
        ex.respond(
            201,
            &[
                ("X-Upstream-Saw", &marker),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
            ],
            &body,
        )
    });
    let proxy = proxy(upstream.addr(), &[]);
    let (token, body) = (random_token(), random_token().repeat(50));
    let target = format!("/items/{token}?q={token}&page=2");
    let request = format!(
        "PUT {target} HTTP/1.1\r\nHost: shop.test\r\nX-Marker: {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let response = upstream::send(proxy.addr(), request.as_bytes()).expect("a response");

    assert_eq!(response.status, 201);
    assert_eq!(response.body_str(), body);
    assert_eq!(response.header("x-upstream-saw"), Some(token.as_str()));
    assert_eq!(response.headers_named("set-cookie"), ["a=1", "b=2"]);
    let requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "the upstream must get exactly one request"
    );
    assert_eq!(requests[0].method, "PUT");
    assert_eq!(requests[0].target, target);
    assert_eq!(requests[0].header("host"), Some("shop.test"));
    assert_eq!(requests[0].header("x-marker"), Some(token.as_str()));
}

// Requirement 2: X-Forwarded-For, X-Forwarded-Proto and Via.
#[test]
fn adds_x_forwarded_for_x_forwarded_proto_and_via() {
    let upstream = Upstream::ok("ok");
    let proxy = proxy(upstream.addr(), &[]);
    let earlier = format!("203.0.113.{}", rand::rng().random_range(1..255));

    let plain = "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string();
    let chained = format!(
        "GET /b HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {earlier}\r\nVia: 1.0 fred\r\nConnection: close\r\n\r\n"
    );
    for request in [plain, chained] {
        assert_eq!(
            upstream::send(proxy.addr(), request.as_bytes())
                .unwrap()
                .status,
            200
        );
    }
    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);

    let first = &requests[0];
    assert_eq!(first.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(first.header("x-forwarded-proto"), Some("http"));
    let via = first.header("via").expect("a Via header");
    assert!(
        via.starts_with("1.1 ") && via.len() > 4 && !via.contains(','),
        "Via must be `1.1 <name>`: {via:?}"
    );

    let second = &requests[1];
    let expected = format!("{earlier}, 127.0.0.1");
    assert_eq!(second.headers_named("x-forwarded-for"), [expected.as_str()]);
    let via = second.headers_named("via").join(", ");
    let hops: Vec<&str> = via.split(',').map(str::trim).collect();
    assert_eq!(hops.len(), 2, "Via must list both hops: {via:?}");
    assert_eq!(hops[0], "1.0 fred");
    assert!(hops[1].starts_with("1.1 "), "our hop comes last: {via:?}");
}

// Requirement 3: hop-by-hop headers stop at the proxy, in both directions.
#[test]
fn strips_hop_by_hop_request_headers() {
    let upstream = Upstream::ok("ok");
    let proxy = proxy(upstream.addr(), &[]);
    let (hop, token) = (format!("X-Hop-{}", random_token()), random_token());
    let request = format!(
        "POST /hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, {hop}\r\n{hop}: secret\r\n\
         Keep-Alive: timeout=5\r\nProxy-Authorization: Basic c2VjcmV0\r\nTE: trailers\r\n\
         Upgrade: websocket\r\nX-End-To-End: {token}\r\nContent-Length: 5\r\n\r\nhello"
    );
    let response = upstream::send(proxy.addr(), request.as_bytes()).unwrap();
    assert_eq!(response.status, 200);

    let requests = upstream.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(
        seen.header("x-end-to-end"),
        Some(token.as_str()),
        "end-to-end headers pass"
    );
    assert_eq!(seen.header("content-length"), Some("5"));
    assert_absent(
        &seen.headers,
        &[
            &hop,
            "keep-alive",
            "proxy-authorization",
            "te",
            "upgrade",
            "transfer-encoding",
        ],
        "request",
    );
    for value in seen.headers_named("connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-hop"),
            "the client's Connection header must not pass: {value:?}"
        );
    }
}

#[test]
fn strips_hop_by_hop_response_headers() {
    let hop = format!("X-Hop-{}", random_token());
    let token = random_token();
    let upstream = {
        let (hop, token) = (hop.clone(), token.clone());
        Upstream::start(move |ex: &mut Exchange<'_>| {
            let response = format!(
                "HTTP/1.1 200 OK\r\nConnection: {hop}\r\n{hop}: secret\r\nKeep-Alive: timeout=5, max=100\r\n\
                 Proxy-Authenticate: Basic realm=\"x\"\r\nUpgrade: h2c\r\nX-End-To-End: {token}\r\n\
                 Content-Length: 2\r\n\r\nok"
            );
            ex.write_raw(response.as_bytes())
        })
    };
    let proxy = proxy(upstream.addr(), &[]);
    let response = upstream::get(proxy.addr(), "/").unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body_str(), "ok");
    assert_eq!(response.header("x-end-to-end"), Some(token.as_str()));
    assert_absent(
        &response.headers,
        &[&hop, "keep-alive", "proxy-authenticate", "upgrade"],
        "response",
    );
    for value in response.headers_named("connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-hop"),
            "the upstream's Connection header must not pass: {value:?}"
        );
    }
}

// Requirement 4: bodies stream both ways: 100 MiB pass with flat proxy memory.

const BLOCK: usize = 64 * 1024;
const BLOCKS: usize = 1600; // 100 MiB
/// Peak resident memory the proxy may reach while 100 MiB go through it.
const MAX_HWM_KIB: u64 = 32 * 1024;

fn random_block() -> Vec<u8> {
    let mut rng = rand::rng();
    (0..BLOCK).map(|_| rng.random_range(0..=255u8)).collect()
}

/// A sink that checks the bytes are `block` repeated, and counts them.
struct Verifier<'a> {
    block: &'a [u8],
    seen: usize,
    mismatch: Option<usize>,
}

impl Write for Verifier<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for (i, &byte) in buf.iter().enumerate() {
            let at = self.seen + i;
            if self.mismatch.is_none() && byte != self.block[at % BLOCK] {
                self.mismatch = Some(at);
            }
        }
        self.seen += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn peak_memory_kib(server: &Server) -> u64 {
    labkit::sys::status_kib(server.pid(), "VmHWM").expect("VmHWM of the proxy")
}

#[test]
fn streams_a_100_mib_response_in_flat_memory() {
    let block = random_block();
    let upstream = {
        let block = block.clone();
        Upstream::start(move |ex: &mut Exchange<'_>| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                BLOCK * BLOCKS
            );
            ex.write_raw(head.as_bytes())?;
            for _ in 0..BLOCKS {
                ex.write_raw(&block)?;
            }
            Ok(())
        })
    };
    let proxy = proxy(upstream.addr(), &[]);
    let mut stream = labkit::net::connect(proxy.addr());
    stream
        .write_all(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut verifier = Verifier {
        block: &block,
        seen: 0,
        mismatch: None,
    };
    let response = upstream::read_response_streaming(&mut BufReader::new(stream), &mut verifier)
        .unwrap_or_else(|e| {
            panic!(
                "reading the 100 MiB response: {e} after {} bytes",
                verifier.seen
            )
        });
    assert_eq!(response.status, 200);
    assert_eq!(verifier.seen, BLOCK * BLOCKS, "the whole body must arrive");
    assert_eq!(
        verifier.mismatch, None,
        "the body must arrive byte for byte"
    );
    let peak = peak_memory_kib(&proxy);
    assert!(
        peak < MAX_HWM_KIB,
        "the proxy's peak memory (VmHWM) reached {peak} KiB for a 100 MiB body: stream it"
    );
}

#[test]
fn streams_a_100_mib_upload_in_flat_memory() {
    let block = random_block();
    let upstream = {
        let block = block.clone();
        Upstream::start(move |ex: &mut Exchange<'_>| {
            let mut verifier = Verifier {
                block: &block,
                seen: 0,
                mismatch: None,
            };
            ex.read_body(&mut verifier)?;
            let report = format!("{} {:?}", verifier.seen, verifier.mismatch);
            ex.respond(200, &[], report.as_bytes())
        })
    };
    let proxy = proxy(upstream.addr(), &[]);
    let mut stream = labkit::net::connect(proxy.addr());
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        BLOCK * BLOCKS
    );
    stream.write_all(head.as_bytes()).unwrap();
    for _ in 0..BLOCKS {
        stream
            .write_all(&block)
            .expect("the proxy must keep reading the upload");
    }
    let response = upstream::read_response(&mut BufReader::new(stream)).expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body_str(),
        format!("{} None", BLOCK * BLOCKS),
        "the upstream must receive the whole upload byte for byte (bytes, first mismatch)"
    );
    let peak = peak_memory_kib(&proxy);
    assert!(
        peak < MAX_HWM_KIB,
        "the proxy's peak memory (VmHWM) reached {peak} KiB for a 100 MiB upload: stream it"
    );
}

// Requirement 5: upstream down gives 502; the proxy keeps serving.
#[test]
fn upstream_down_gives_502_and_the_proxy_keeps_serving() {
    let proxy = proxy(labkit::net::closed_port(), &[]);
    for _ in 0..3 {
        let response = upstream::get(proxy.addr(), "/").expect("the proxy must answer");
        assert_eq!(response.status, 502, "body: {}", response.body_str());
    }
}

// Requirement 6: an upstream slower than --timeout gives 504.
#[test]
fn slow_upstream_gives_504_after_the_timeout() {
    let upstream = Upstream::start(|ex: &mut Exchange<'_>| {
        if ex.request.path() == "/slow" && ex.wait_for_close(Duration::from_secs(5)) {
            return Ok(()); // the proxy gave up: nobody to answer
        }
        ex.respond(200, &[], b"fast")
    });
    let proxy = proxy(upstream.addr(), &["--timeout", "300ms"]);
    let fast = upstream::get(proxy.addr(), "/fast").unwrap();
    assert_eq!((fast.status, fast.body_str().as_str()), (200, "fast"));
    let slow = upstream::get(proxy.addr(), "/slow").unwrap();
    assert_eq!(slow.status, 504, "body: {}", slow.body_str());
    let fast = upstream::get(proxy.addr(), "/fast").unwrap();
    assert_eq!(fast.status, 200, "the proxy keeps serving after a timeout");
}

// Requirement 7: a client that disconnects cancels its upstream request.
#[test]
fn client_disconnect_cancels_the_upstream_request() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let upstream = Upstream::start(move |ex: &mut Exchange<'_>| {
        // Hold the request; report whether the proxy closed our connection within 10 s.
        let closed = ex.wait_for_close(Duration::from_secs(10));
        let _ = tx.lock().unwrap().send(closed);
        Ok(())
    });
    let proxy = proxy(upstream.addr(), &[]);
    let mut client = labkit::net::connect(proxy.addr());
    client
        .write_all(b"GET /long-poll HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(
        wait::until(Duration::from_secs(10), || !upstream.requests().is_empty()),
        "the request must reach the upstream"
    );
    drop(client);
    let closed = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the upstream handler reports");
    assert!(
        closed,
        "when the client goes away, the proxy must close its upstream connection"
    );
}

// Requirement 8: a bad command line is a usage error.
#[test]
fn rejects_a_bad_command_line() {
    let up = labkit::net::closed_port().to_string();
    let cases: [&[&str]; 3] = [
        &["--addr", "127.0.0.1:0"],
        &["--addr", "127.0.0.1:0", "--upstream", "not-an-address"],
        &[
            "--addr",
            "127.0.0.1:0",
            "--upstream",
            &up,
            "--timeout",
            "soon",
        ],
    ];
    for args in cases {
        let out = run(lab_bin!(), args);
        assert_eq!(
            out.code(),
            Some(2),
            "{args:?}: exit code 2; stderr: {}",
            out.stderr_str()
        );
        assert!(!out.stderr_str().contains("panicked"), "{args:?}: no panic");
    }
}
