//! Grader for the HTTP/1.1 server, part 2: the parser, white-box. `parse_request` is a pure
//! function of bytes, so it is tested on its own: exact results on known requests, every
//! prefix of random requests, a table of malformations, and 100,000 random and mutated inputs
//! (the stable-toolchain stand-in for the fuzz target in `fuzz/`).

use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::RngExt;
use rand::rngs::ThreadRng;

labkit::lab_mod!(lab);
use lab::{Method, Version, parse_request};

const MAX_HEAD: usize = labkit::http_suite::MAX_HEAD;
const MAX_BODY: usize = labkit::http_suite::MAX_BODY;

fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    format!("{text:?}")
}

/// The request at the front of `buf`, which must be complete (`req` names the requirement).
fn complete(req: &str, buf: &[u8]) -> (lab::Request, usize) {
    match parse_request(buf) {
        Ok(Some(parsed)) => parsed,
        other => panic!(
            "{req}: parse_request({}) gave {}; wanted a complete request",
            shown(buf),
            outcome(&other)
        ),
    }
}

/// `parse_request`'s answer in a few words, for failure messages.
fn outcome(result: &Result<Option<(lab::Request, usize)>, lab::HttpError>) -> String {
    match result {
        Ok(None) => "Ok(None)".to_string(),
        Ok(Some((request, used))) => format!(
            "a request ({:?} {:?}, body of {} bytes) using {used} bytes",
            request.head.method,
            request.head.target,
            request.body.len()
        ),
        Err(e) => format!("the error {}", e.status()),
    }
}

/// The status `buf` must be refused with.
fn status_of(req: &str, buf: &[u8]) -> u16 {
    match parse_request(buf) {
        Err(e) => e.status(),
        other => panic!(
            "{req}: parse_request({}) gave {}; wanted an error status",
            shown(buf),
            outcome(&other)
        ),
    }
}

// Requirement 4: the request line, headers (values trimmed) and a Content-Length body are
// parsed; `used` stops at the end of the body, leaving the next request in the buffer.
#[test]
fn parses_the_request_line_headers_and_body() {
    let r = "requirement 4";
    let buf = b"POST /echo?x=1 HTTP/1.1\r\nHost: example\r\nContent-Type: \t text/plain \r\n\
                Content-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
    let (request, used) = complete(r, buf);
    let head = &request.head;
    assert!(
        (head.method, head.target.as_str(), head.version)
            == (Method::Post, "/echo?x=1", Version::Http11),
        "{r}: the request line parsed as {:?} {:?} {:?}; wanted Post \"/echo?x=1\" Http11",
        head.method,
        head.target,
        head.version
    );
    assert!(
        request.header("content-type") == Some("text/plain"),
        "{r}: `Content-Type: \\t text/plain ` parsed as {:?}; wanted \"text/plain\" (spaces \
         and tabs around a value are trimmed)",
        request.header("content-type")
    );
    assert!(
        request.body == b"hello",
        "{r}: the body parsed as {}; wanted \"hello\" (Content-Length: 5)",
        shown(&request.body)
    );
    assert!(
        buf[used..] == *b"GET / HTTP/1.1\r\n\r\n",
        "{r}: used = {used} leaves {} in the buffer; wanted the next request, right after the \
         body",
        shown(&buf[used..])
    );

    let (request, used) = complete(r, b"GET / HTTP/1.0\n\n");
    assert!(
        request.head.version == Version::Http10 && used == 16 && request.body.is_empty(),
        "{r}: `GET / HTTP/1.0\\n\\n` parsed as {:?}, using {used} of 16 bytes, with a body of {} \
         bytes; wanted Http10, 16 bytes, no body (bare LF line endings are accepted)",
        request.head.version,
        request.body.len()
    );
}

// Requirement 4: header names are case-insensitive.
#[test]
fn looks_up_headers_case_insensitively() {
    let r = "requirement 4";
    let mut rng = rand::rng();
    let name: String = "X-Request-Token"
        .chars()
        .map(|c| {
            if rng.random_bool(0.5) {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let value = format!("v{}", rng.random_range(0..1_000_000));
    let buf = format!("GET / HTTP/1.1\r\n{name}: {value}\r\n\r\n");
    let (request, _) = complete(r, buf.as_bytes());
    for probe in ["x-request-token", "X-REQUEST-TOKEN", "X-Request-Token"] {
        assert!(
            request.header(probe) == Some(value.as_str()),
            "{r}: header({probe:?}) of a request sent with `{name}: {value}` gave {:?}; wanted \
             {value:?}",
            request.header(probe)
        );
    }
    assert!(
        request.header("x-request").is_none(),
        "{r}: header(\"x-request\") gave {:?}; wanted None (a prefix of a name is not the name)",
        request.header("x-request")
    );
}

// Requirement 4: an obsolete folded header line (starting with a space or a tab) continues
// the previous value, joined by one space.
#[test]
fn unfolds_obsolete_line_folding() {
    let r = "requirement 4";
    let (request, _) = complete(
        r,
        b"GET / HTTP/1.1\r\nX-Long: first\r\n   second\r\n\tthird part\r\nX-Next: n\r\n\r\n",
    );
    assert!(
        request.header("x-long") == Some("first second third part")
            && request.header("x-next") == Some("n"),
        "{r}: a value folded over three lines parsed as {:?} (and the next header as {:?}); \
         wanted \"first second third part\" and \"n\"",
        request.header("x-long"),
        request.header("x-next")
    );
    let status = status_of(r, b"GET / HTTP/1.1\r\n folded-first: x\r\n\r\n");
    assert!(
        status == 400,
        "{r}: a folded line with no header before it got {status}; wanted 400"
    );
}

// Requirement 5: chunked bodies, with extensions and trailers, are decoded.
#[test]
fn decodes_chunked_bodies() {
    let r = "requirement 5";
    let buf = b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                4;ext=1\r\nWiki\r\n5 ; a=\"b\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
                0\r\nX-Trailer: yes\r\n\r\nNEXT";
    let (request, used) = complete(r, buf);
    assert!(
        request.body == b"Wikipedia in\r\n\r\nchunks.",
        "{r}: the chunked body decoded as {}; wanted \"Wikipedia in\\r\\n\\r\\nchunks.\"",
        shown(&request.body)
    );
    assert!(
        buf[used..] == *b"NEXT",
        "{r}: used = {used} leaves {}; wanted \"NEXT\" (used ends after the trailers' blank line)",
        shown(&buf[used..])
    );
}

/// A random valid request, and what parsing it must give.
struct Generated {
    bytes: Vec<u8>,
    method: Method,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A random token of 1 to `max_len - 1` characters.
fn random_token(rng: &mut ThreadRng, max_len: usize) -> String {
    const TCHARS: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~";
    let len = rng.random_range(1..max_len);
    (0..len)
        .map(|_| TCHARS[rng.random_range(0..TCHARS.len())] as char)
        .collect()
}

fn random_request(rng: &mut ThreadRng) -> Generated {
    const METHODS: [(&str, Method); 7] = [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("PATCH", Method::Patch),
    ];
    let (method_text, method) = METHODS[rng.random_range(0..METHODS.len())];
    let eol = if rng.random_bool(0.8) { "\r\n" } else { "\n" };
    const PATH: &[u8] = b"abcXYZ019-._~%/?=&";
    let target = format!(
        "/{}",
        (0..rng.random_range(0..40))
            .map(|_| PATH[rng.random_range(0..PATH.len())] as char)
            .collect::<String>()
    );
    let mut text = format!("{method_text} {target} HTTP/1.1{eol}");
    let mut headers = Vec::new();
    for i in 0..rng.random_range(0..8) {
        let name = format!("X{i}-{}", random_token(rng, 12));
        let value = format!("{} {}", random_token(rng, 20), random_token(rng, 20));
        let pad = if rng.random_bool(0.5) { " \t" } else { "" };
        text.push_str(&format!("{name}:{pad}{value}{pad}{eol}"));
        headers.push((name, value));
    }
    let body: Vec<u8> = (0..rng.random_range(0..2000))
        .map(|_| rng.random())
        .collect();
    let mut bytes;
    match rng.random_range(0..3) {
        0 if body.is_empty() => {
            text.push_str(eol);
            bytes = text.into_bytes();
        }
        0 | 1 => {
            text.push_str(&format!("Content-Length: {}{eol}{eol}", body.len()));
            bytes = text.into_bytes();
            bytes.extend_from_slice(&body);
        }
        _ => {
            text.push_str(&format!("Transfer-Encoding: chunked{eol}{eol}"));
            bytes = text.into_bytes();
            let mut at = 0;
            while at < body.len() {
                let size = rng.random_range(1..=body.len() - at);
                let ext = if rng.random_bool(0.3) { ";x=1" } else { "" };
                bytes.extend_from_slice(format!("{size:x}{ext}{eol}").as_bytes());
                bytes.extend_from_slice(&body[at..at + size]);
                bytes.extend_from_slice(eol.as_bytes());
                at += size;
            }
            bytes.extend_from_slice(format!("0{eol}").as_bytes());
            if rng.random_bool(0.3) {
                bytes.extend_from_slice(format!("X-Trailer: t{eol}").as_bytes());
            }
            bytes.extend_from_slice(eol.as_bytes());
        }
    }
    Generated {
        bytes,
        method,
        target,
        headers,
        body,
    }
}

// Requirement 12: a request cut anywhere is "not complete yet" (`Ok(None)`), never an error
// and never a shorter request; the whole request parses to exactly what was sent.
#[test]
fn waits_for_more_bytes_on_every_prefix() {
    let r = "requirement 12";
    let mut rng = rand::rng();
    for _ in 0..40 {
        let generated = random_request(&mut rng);
        let bytes = &generated.bytes;
        for cut in 0..bytes.len() {
            match parse_request(&bytes[..cut]) {
                Ok(None) => {}
                other => panic!(
                    "{r}: the first {cut} of {} bytes of {} gave {}; wanted Ok(None)",
                    bytes.len(),
                    shown(bytes),
                    outcome(&other)
                ),
            }
        }
        let mut two = bytes.clone();
        two.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        let (request, used) = complete(r, &two);
        assert!(
            used == bytes.len(),
            "{r}: {} followed by another request: used = {used}; wanted {}",
            shown(bytes),
            bytes.len()
        );
        assert!(
            request.head.method == generated.method && request.head.target == generated.target,
            "{r}: {} parsed as {:?} {:?}; wanted {:?} {:?}",
            shown(bytes),
            request.head.method,
            request.head.target,
            generated.method,
            generated.target
        );
        assert!(
            request.body == generated.body,
            "{r}: the body of {} parsed as {} bytes; wanted the {} bytes sent",
            shown(bytes),
            request.body.len(),
            generated.body.len()
        );
        for (name, value) in &generated.headers {
            assert!(
                request.header(name) == Some(value.as_str()),
                "{r}: header {name:?} of {} parsed as {:?}; wanted {value:?}",
                shown(bytes),
                request.header(name)
            );
        }
    }
}

// Requirement 10: each malformation gets its status: 400 for broken syntax or framing, 431
// for a head over 8 KiB, 413 for a body over 1 MiB, 501 for an unknown method or transfer
// coding, 505 for another HTTP version.
#[test]
fn maps_each_malformation_to_its_status() {
    let r = "requirement 10";
    for request in labkit::http_suite::MALFORMED {
        let status = status_of(r, request);
        assert!(
            status == 400,
            "{r}: {} got {status}; wanted 400",
            shown(request)
        );
    }
    let big = "h".repeat(MAX_HEAD);
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_vec(),
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(),
            501,
        ),
        (b"BREW / HTTP/1.1\r\n\r\n".to_vec(), 501),
        (b"GET / HTTP/2.0\r\n\r\n".to_vec(), 505),
        (b"GET / HTTP/3.1\r\n\r\n".to_vec(), 505),
        (
            format!("GET / HTTP/1.1\r\nX: {big}\r\n\r\n").into_bytes(),
            431,
        ),
        (
            format!(
                "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            )
            .into_bytes(),
            413,
        ),
        (
            format!(
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                MAX_BODY + 1
            )
            .into_bytes(),
            413,
        ),
        (
            format!("POST / HTTP/1.1\r\nContent-Length: {MAX_BODY}\r\n\r\n").into_bytes(),
            0, // exactly 1 MiB is allowed: still waiting for the body
        ),
    ];
    for (request, status) in cases {
        if status == 0 {
            let got = parse_request(&request);
            assert!(
                matches!(got, Ok(None)),
                "{r}: {} (a body of exactly 1 MiB is allowed) gave {}; wanted Ok(None)",
                shown(&request),
                outcome(&got)
            );
        } else {
            let got = status_of(r, &request);
            assert!(
                got == status,
                "{r}: {} got {got}; wanted {status}",
                shown(&request)
            );
        }
    }
}

// Requirement 10: limits hold before the bytes are all there: a head that passes 8 KiB
// without its blank line is a 431 at once, a broken request line is a 400 as soon as it ends.
#[test]
fn refuses_early_without_waiting_for_the_rest() {
    let r = "requirement 10";
    let mut endless = b"GET / HTTP/1.1\r\nX-Endless: ".to_vec();
    endless.extend(std::iter::repeat_n(b'e', MAX_HEAD + 10));
    for (input, want, what) in [
        (&endless[..], 431, "an unfinished head over 8 KiB"),
        (
            b"NOT A REQUEST LINE\r\n",
            400,
            "a complete bad request line",
        ),
        (
            b"GET / HTTP/1.1\r\nno colon here\r\n",
            400,
            "a complete bad header line",
        ),
    ] {
        let got = status_of(r, input);
        assert!(got == want, "{r}: {what} got {got}; wanted {want}");
    }
}

/// Applies one random mutation to `input`.
fn mutate(rng: &mut ThreadRng, input: &mut Vec<u8>) {
    const INTERESTING: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b":",
        b" ",
        b"\t",
        b"0",
        b"ffffffffffffffff",
        b"-1",
        b"chunked",
        b"Content-Length: ",
        b"Transfer-Encoding: chunked\r\n",
        b"\x00",
        b"\xff",
        b";",
        b"%",
        b"99999999999999999999",
        b"\r\n\r\n",
    ];
    if input.is_empty() {
        input.push(rng.random());
        return;
    }
    let at = rng.random_range(0..input.len());
    match rng.random_range(0..6) {
        0 => input[at] = rng.random(),
        1 => input.insert(at, rng.random()),
        2 => {
            let end = rng.random_range(at..=input.len());
            input.drain(at..end);
        }
        3 => {
            let piece = INTERESTING[rng.random_range(0..INTERESTING.len())];
            input.splice(at..at, piece.iter().copied());
        }
        4 => input.truncate(at),
        _ => {
            let end = rng.random_range(at..=input.len().min(at + 64));
            let copy = input[at..end].to_vec();
            input.splice(at..at, copy);
        }
    }
}

// Requirement 12: on any input the parser returns (a request, "more bytes", or a status) and
// never panics: 100,000 inputs, random bytes and mutated valid requests.
#[test]
fn never_panics_on_100_000_random_and_mutated_inputs() {
    let r = "requirement 12";
    let mut rng = rand::rng();
    let mut outcomes = [0usize; 3];
    for i in 0..100_000 {
        let input: Vec<u8> = if i % 4 == 0 {
            (0..rng.random_range(0..400))
                .map(|_| rng.random())
                .collect()
        } else {
            let mut bytes = random_request(&mut rng).bytes;
            for _ in 0..rng.random_range(1..6) {
                mutate(&mut rng, &mut bytes);
            }
            bytes
        };
        let result = catch_unwind(AssertUnwindSafe(|| parse_request(&input)))
            .unwrap_or_else(|_| panic!("{r}: parse_request panicked on {}", shown(&input)));
        match result {
            Ok(None) => outcomes[0] += 1,
            Ok(Some((request, used))) => {
                assert!(
                    used > 0 && used <= input.len(),
                    "{r}: a request using {used} of {} bytes: {}; wanted 1 to {0}",
                    input.len(),
                    shown(&input)
                );
                assert!(
                    request.body.len() <= MAX_BODY,
                    "{r}: a body of {} bytes was accepted; wanted at most {MAX_BODY}",
                    request.body.len()
                );
                outcomes[1] += 1;
            }
            Err(e) => {
                assert!(
                    [400, 413, 431, 501, 505].contains(&e.status()),
                    "{r}: the status {} for {}; wanted one of 400, 413, 431, 501, 505",
                    e.status(),
                    shown(&input)
                );
                outcomes[2] += 1;
            }
        }
    }
    // The inputs reach every outcome: the mutations are neither all fatal nor all harmless.
    assert!(
        outcomes.iter().all(|&n| n > 1000),
        "{r}: outcomes (incomplete, request, error) were {outcomes:?}; wanted over 1,000 of each"
    );
}
