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

fn random_bytes(len: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..len).map(|_| rng.random()).collect()
}

/// Where two byte strings first differ, for a message that does not dump them.
fn first_difference(got: &[u8], wanted: &[u8]) -> String {
    match got.iter().zip(wanted).position(|(a, b)| a != b) {
        Some(at) => format!("first difference at byte {at}"),
        None => format!("{} bytes, wanted {}", got.len(), wanted.len()),
    }
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
            "requirement 3: {side}: the hop-by-hop header {name} passed the proxy: {found:?}"
        );
    }
}

// Requirement 1: requests and responses pass through unchanged (method, target, body, status,
// end-to-end headers), with bodies of random sizes compared byte for byte.
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
    // Sizes from empty to a few hundred KiB: several reads and writes on each hop.
    let sizes = [
        0,
        rand::rng().random_range(1..2000),
        rand::rng().random_range(64_000..400_000),
    ];
    for (i, size) in sizes.into_iter().enumerate() {
        let (token, body) = (random_token(), random_bytes(size));
        let target = format!("/items/{token}?q={token}&page=2");
        let mut request = format!(
            "PUT {target} HTTP/1.1\r\nHost: shop.test\r\nX-Marker: {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let response = upstream::send(proxy.addr(), &request)
            .unwrap_or_else(|e| panic!("requirement 1: no response to PUT {target}: {e}"));

        assert_eq!(
            response.status, 201,
            "requirement 1: the upstream answered 201; the client got"
        );
        assert!(
            response.body == body,
            "requirement 1: a {size}-byte body echoed by the upstream came back altered: {}",
            first_difference(&response.body, &body)
        );
        assert_eq!(
            response.header("x-upstream-saw"),
            Some(token.as_str()),
            "requirement 1: the X-Marker the upstream saw, as it reported it back"
        );
        assert_eq!(
            response.headers_named("set-cookie"),
            ["a=1", "b=2"],
            "requirement 1: both Set-Cookie lines of the upstream's response"
        );
        let requests = upstream.requests();
        assert_eq!(
            requests.len(),
            i + 1,
            "requirement 1: requests the upstream received after {} sent",
            i + 1
        );
        let seen = &requests[i];
        assert_eq!(
            seen.method, "PUT",
            "requirement 1: the method the upstream saw"
        );
        assert_eq!(
            seen.target, target,
            "requirement 1: the target the upstream saw"
        );
        assert_eq!(
            seen.header("host"),
            Some("shop.test"),
            "requirement 1: the Host the upstream saw"
        );
        assert_eq!(
            seen.header("x-marker"),
            Some(token.as_str()),
            "requirement 1: the end-to-end header X-Marker the upstream saw"
        );
    }
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
        let status = upstream::send(proxy.addr(), request.as_bytes())
            .unwrap_or_else(|e| panic!("requirement 2: no response through the proxy: {e}"))
            .status;
        assert_eq!(status, 200, "requirement 2: status through the proxy");
    }
    let requests = upstream.requests();
    assert_eq!(
        requests.len(),
        2,
        "requirement 2: requests the upstream received"
    );

    let first = &requests[0];
    assert_eq!(
        first.header("x-forwarded-for"),
        Some("127.0.0.1"),
        "requirement 2: X-Forwarded-For of a client that sent none"
    );
    assert_eq!(
        first.header("x-forwarded-proto"),
        Some("http"),
        "requirement 2: X-Forwarded-Proto"
    );
    let via = first
        .header("via")
        .unwrap_or_else(|| panic!("requirement 2: the upstream got no Via header"));
    assert!(
        via.starts_with("1.1 ") && via.len() > 4 && !via.contains(','),
        "requirement 2: Via is {via:?}; wanted `1.1 <name>`"
    );

    let second = &requests[1];
    let expected = format!("{earlier}, 127.0.0.1");
    assert_eq!(
        second.headers_named("x-forwarded-for"),
        [expected.as_str()],
        "requirement 2: X-Forwarded-For of a client that sent {earlier}: append, do not replace"
    );
    let via = second.headers_named("via").join(", ");
    let hops: Vec<&str> = via.split(',').map(str::trim).collect();
    assert_eq!(
        hops.len(),
        2,
        "requirement 2: Via is {via:?}; wanted both hops, `1.0 fred, 1.1 <name>`"
    );
    assert_eq!(
        hops[0], "1.0 fred",
        "requirement 2: the client's hop in Via comes first"
    );
    assert!(
        hops[1].starts_with("1.1 "),
        "requirement 2: Via is {via:?}; wanted our hop last"
    );
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
    let response = upstream::send(proxy.addr(), request.as_bytes())
        .unwrap_or_else(|e| panic!("requirement 3: no response through the proxy: {e}"));
    assert_eq!(
        response.status, 200,
        "requirement 3: status through the proxy"
    );

    let requests = upstream.requests();
    assert_eq!(
        requests.len(),
        1,
        "requirement 3: requests the upstream received"
    );
    let seen = &requests[0];
    assert_eq!(
        seen.header("x-end-to-end"),
        Some(token.as_str()),
        "requirement 3: an end-to-end header must pass"
    );
    assert_eq!(
        seen.header("content-length"),
        Some("5"),
        "requirement 3: Content-Length of a 5-byte body"
    );
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
            "requirement 3: the client's Connection header reached the upstream: {value:?}"
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
    let response = upstream::get(proxy.addr(), "/")
        .unwrap_or_else(|e| panic!("requirement 3: no response through the proxy: {e}"));
    assert_eq!(
        response.status, 200,
        "requirement 3: status through the proxy"
    );
    assert_eq!(
        response.body_str(),
        "ok",
        "requirement 3: body through the proxy"
    );
    assert_eq!(
        response.header("x-end-to-end"),
        Some(token.as_str()),
        "requirement 3: an end-to-end response header must pass"
    );
    assert_absent(
        &response.headers,
        &[&hop, "keep-alive", "proxy-authenticate", "upgrade"],
        "response",
    );
    for value in response.headers_named("connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-hop"),
            "requirement 3: the upstream's Connection header reached the client: {value:?}"
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
    labkit::sys::status_kib(server.pid(), "VmHWM")
        .expect("VmHWM in /proc/<pid>/status of the proxy")
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
                "requirement 4: reading the 100 MiB response failed after {} bytes: {e}",
                verifier.seen
            )
        });
    assert_eq!(
        response.status, 200,
        "requirement 4: status of the 100 MiB response"
    );
    assert_eq!(
        verifier.seen,
        BLOCK * BLOCKS,
        "requirement 4: bytes of the 100 MiB body that arrived"
    );
    assert_eq!(
        verifier.mismatch, None,
        "requirement 4: the 100 MiB body changed on the way (offset of the first wrong byte)"
    );
    let peak = peak_memory_kib(&proxy);
    assert!(
        peak < MAX_HWM_KIB,
        "requirement 4: the proxy's peak memory (VmHWM) reached {peak} KiB for a 100 MiB body; wanted under {MAX_HWM_KIB} KiB: stream it"
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
            .expect("requirement 4: the proxy stopped reading the upload");
    }
    let response = upstream::read_response(&mut BufReader::new(stream))
        .unwrap_or_else(|e| panic!("requirement 4: no response to the 100 MiB upload: {e}"));
    assert_eq!(
        response.status, 200,
        "requirement 4: status of the 100 MiB upload"
    );
    assert_eq!(
        response.body_str(),
        format!("{} None", BLOCK * BLOCKS),
        "requirement 4: what the upstream received of the upload (bytes, first mismatch)"
    );
    let peak = peak_memory_kib(&proxy);
    assert!(
        peak < MAX_HWM_KIB,
        "requirement 4: the proxy's peak memory (VmHWM) reached {peak} KiB for a 100 MiB upload; wanted under {MAX_HWM_KIB} KiB: stream it"
    );
}

// Requirement 5: upstream down gives 502; the proxy keeps serving.
#[test]
fn upstream_down_gives_502_and_the_proxy_keeps_serving() {
    let proxy = proxy(labkit::net::closed_port(), &[]);
    for _ in 0..3 {
        let response = upstream::get(proxy.addr(), "/").unwrap_or_else(|e| {
            panic!("requirement 5: with the upstream down the proxy must still answer: {e}")
        });
        assert_eq!(
            response.status,
            502,
            "requirement 5: status with the upstream down; body {:?}",
            response.body_str()
        );
    }
}

// Requirement 9: upstream connections are kept alive and reused.
#[test]
fn reuses_upstream_connections() {
    let upstream = Upstream::ok("ok");
    let proxy = proxy(upstream.addr(), &[]);
    let n = rand::rng().random_range(8..=16);
    for i in 0..n {
        let response = upstream::get(proxy.addr(), &format!("/r/{i}"))
            .unwrap_or_else(|e| panic!("requirement 9: request {i} through the proxy: {e}"));
        assert_eq!(response.status, 200, "requirement 9: status of request {i}");
    }
    let served = upstream.requests().len();
    assert_eq!(served, n, "requirement 9: requests the upstream served");
    // Each client closed its connection; the proxy's upstream connection stays for the next
    // one. A connection per request is a TCP handshake per request (and a port in TIME_WAIT).
    let opened = upstream.connections_accepted();
    assert!(
        opened <= 3,
        "requirement 9: {n} sequential requests opened {opened} upstream connections; wanted \
         1 (a few at most): keep upstream connections alive and reuse them"
    );
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
    let get = |path: &str| {
        upstream::get(proxy.addr(), path)
            .unwrap_or_else(|e| panic!("requirement 6: GET {path} through the proxy: {e}"))
    };
    let fast = get("/fast");
    assert_eq!(
        (fast.status, fast.body_str().as_str()),
        (200, "fast"),
        "requirement 6: a fast answer passes"
    );
    let slow = get("/slow");
    assert_eq!(
        slow.status,
        504,
        "requirement 6: an upstream silent past --timeout 300ms; body {:?}",
        slow.body_str()
    );
    let fast = get("/fast");
    assert_eq!(
        fast.status, 200,
        "requirement 6: the proxy keeps serving after a timeout"
    );
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
        "requirement 7: the request never reached the upstream"
    );
    drop(client);
    let closed = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("requirement 7: the upstream handler did not report within 15 s");
    assert!(
        closed,
        "requirement 7: the client went away but the proxy kept its upstream connection open \
         for 10 s; wanted it closed (drop the upstream request with the client's)"
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
            "requirement 8: {args:?}: exit code; wanted 2; stderr: {}",
            out.stderr_str()
        );
        assert!(
            !out.stderr_str().contains("panicked"),
            "requirement 8: {args:?} panicked; wanted a usage error"
        );
    }
}
