//! In-test HTTP/1.1 peers for the graders of proxies and load balancers.
//!
//! - [`Upstream`]: a backend server on `127.0.0.1` that records every request it receives (the
//!   head as it arrived on the wire) and answers as the test's handler says. It can be stopped
//!   (the port then refuses connections) and restarted on the same port.
//! - [`send`] / [`get`] / [`read_response`]: a raw client that shows exactly which headers and
//!   bytes come back, with the framing (`Content-Length`, chunked, or until close) decoded.
//!
//! Plain blocking `std` sockets, one thread per connection, timeouts on every read: enough for
//! a grader, and nothing between the test and the bytes.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::net::{NET_TIMEOUT, set_timeouts};

/// Longest request or response head the helpers accept.
const MAX_HEAD: usize = 64 * 1024;

/// A request head as the upstream received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/path?query`).
    pub target: String,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    /// Every header line in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The address of the peer that sent it (the proxy, seen from the upstream).
    pub peer: SocketAddr,
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Every header called `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        headers_named(&self.headers, name)
    }

    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// One request being answered: the handler reads the body (or not) and writes a response.
pub struct Exchange<'a> {
    pub request: &'a Request,
    reader: &'a mut BufReader<TcpStream>,
    body_read: bool,
    close: bool,
}

impl Exchange<'_> {
    /// Copies the request body (`Content-Length` or chunked) to `sink`; returns its length.
    pub fn read_body(&mut self, sink: &mut impl Write) -> io::Result<u64> {
        self.body_read = true;
        copy_body(self.reader, &self.request.headers, false, sink)
    }

    /// The request body, in memory.
    pub fn body_bytes(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        self.read_body(&mut body)?;
        Ok(body)
    }

    /// Writes a complete response with a `Content-Length`. `headers` are written as given.
    pub fn respond(
        &mut self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()
    }

    /// Writes raw bytes (a hand-made response, or a part of one).
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Closes the connection once the handler returns (for a response delimited by the close).
    pub fn close_after(&mut self) {
        self.close = true;
    }

    /// Waits until the peer closes the connection (end of file or reset): true, or `timeout`
    /// passes first: false. Bytes the peer sends meanwhile are discarded.
    pub fn wait_for_close(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        self.close = true;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let stream = self.reader.get_mut();
            let _ = stream.set_read_timeout(Some(left.min(Duration::from_millis(100))));
            match stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return true,
            }
        }
    }
}

type Handler = dyn Fn(&mut Exchange<'_>) -> io::Result<()> + Send + Sync;

/// An HTTP/1.1 backend for a test. Dropping it stops it.
pub struct Upstream {
    addr: SocketAddr,
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<Request>>>,
    /// TCP connections accepted so far (over every restart).
    accepted: Arc<AtomicU64>,
    running: Option<Running>,
}

/// The live part: the accept thread and the open connections.
struct Running {
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    accept: JoinHandle<()>,
}

impl Upstream {
    /// Starts an upstream on `127.0.0.1:0`. `handler` answers each request; the request head is
    /// recorded before the handler runs, so a test sees a request arrive even while the handler
    /// holds it. Keep-alive works: a body the handler did not read is drained afterwards.
    pub fn start(
        handler: impl Fn(&mut Exchange<'_>) -> io::Result<()> + Send + Sync + 'static,
    ) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an upstream");
        let addr = listener.local_addr().expect("local addr");
        let mut upstream = Upstream {
            addr,
            handler: Arc::new(handler),
            requests: Arc::new(Mutex::new(Vec::new())),
            accepted: Arc::new(AtomicU64::new(0)),
            running: None,
        };
        upstream.run(listener);
        upstream
    }

    /// An upstream that answers every request `200 OK` with `body`.
    pub fn ok(body: &'static str) -> Upstream {
        Upstream::start(move |ex| {
            ex.respond(200, &[("Content-Type", "text/plain")], body.as_bytes())
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests received so far match `pred`.
    pub fn count(&self, pred: impl Fn(&Request) -> bool) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| pred(r))
            .count()
    }

    /// How many TCP connections the upstream has accepted so far: a proxy that reuses its
    /// upstream connections makes fewer than one per request.
    pub fn connections_accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// How many connections are open right now (accepted and not yet closed by either side).
    pub fn connections_open(&self) -> usize {
        self.running
            .as_ref()
            .map_or(0, |running| running.conns.lock().unwrap().len())
    }

    /// Whether the upstream is accepting connections.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Stops the upstream like a crashed process: the listening socket is closed (new
    /// connections are refused) and every open connection is shut down.
    pub fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.stop.store(true, Ordering::SeqCst);
        // Wake the blocked accept(2); the accept thread sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, NET_TIMEOUT);
        let _ = running.accept.join();
        for (_, conn) in running.conns.lock().unwrap().drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Starts a stopped upstream again on the same port, with the same handler and records.
    pub fn restart(&mut self) {
        if self.running.is_some() {
            return;
        }
        // std sets SO_REUSEADDR, so connections in TIME_WAIT do not block the port; another
        // process may still grab it in between, which would be reported here.
        let deadline = Instant::now() + NET_TIMEOUT;
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.run(listener);
    }

    fn run(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<HashMap<u64, TcpStream>>> = Arc::default();
        let accept = {
            let (stop, conns) = (stop.clone(), conns.clone());
            let (handler, requests) = (self.handler.clone(), self.requests.clone());
            let accepted = self.accepted.clone();
            thread::spawn(move || accept_loop(listener, stop, conns, accepted, handler, requests))
        };
        self.running = Some(Running {
            stop,
            conns,
            accept,
        });
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<u64, TcpStream>>>,
    accepted: Arc<AtomicU64>,
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<Request>>>,
) {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        accepted.fetch_add(1, Ordering::SeqCst);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            conns.lock().unwrap().insert(id, clone);
        }
        let (conns, handler, requests) = (conns.clone(), handler.clone(), requests.clone());
        thread::spawn(move || {
            serve_connection(stream, &*handler, &requests);
            conns.lock().unwrap().remove(&id);
        });
    }
}

fn serve_connection(stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>) {
    let Ok(peer) = stream.peer_addr() else { return };
    // Idle keep-alive connections are closed after a while, like a real server does.
    set_timeouts(&stream, Duration::from_secs(10));
    let mut reader = BufReader::new(stream);
    loop {
        let Ok(Some(Head { start, headers })) = read_head(&mut reader) else {
            return;
        };
        let mut parts = start.splitn(3, ' ');
        let request = Request {
            method: parts.next().unwrap_or_default().to_string(),
            target: parts.next().unwrap_or_default().to_string(),
            version: parts.next().unwrap_or_default().trim().to_string(),
            headers,
            peer,
        };
        requests.lock().unwrap().push(request.clone());
        let wants_close = request
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || request.version == "HTTP/1.0";
        let mut exchange = Exchange {
            request: &request,
            reader: &mut reader,
            body_read: false,
            close: wants_close,
        };
        if handler(&mut exchange).is_err() {
            return;
        }
        let (body_read, close) = (exchange.body_read, exchange.close);
        if close {
            return;
        }
        if !body_read && copy_body(&mut reader, &request.headers, false, &mut io::sink()).is_err() {
            return;
        }
    }
}

/// A response as the client received it, framing decoded.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Every header called `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        headers_named(&self.headers, name)
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to `addr`, writes `request` as is, and reads one response (body in memory).
pub fn send(addr: SocketAddr, request: &[u8]) -> io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, NET_TIMEOUT)?;
    set_timeouts(&stream, NET_TIMEOUT);
    stream.write_all(request)?;
    read_response(&mut BufReader::new(stream))
}

/// `GET path` with `Connection: close`.
pub fn get(addr: SocketAddr, path: &str) -> io::Result<Response> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    send(addr, request.as_bytes())
}

/// Reads one response, body in memory.
pub fn read_response(reader: &mut impl BufRead) -> io::Result<Response> {
    let mut body = Vec::new();
    let mut response = read_response_streaming(reader, &mut body)?;
    response.body = body;
    Ok(response)
}

/// Reads one response and copies its body to `sink` (the returned `body` stays empty).
pub fn read_response_streaming(
    reader: &mut impl BufRead,
    sink: &mut impl Write,
) -> io::Result<Response> {
    let Head { start, headers } = read_head(reader)?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response"))?;
    let mut parts = start.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_string();
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("not a status line: {start:?}")))?;
    // 1xx, 204 and 304 have no body.
    if !(100..200).contains(&status) && status != 204 && status != 304 {
        copy_body(reader, &headers, true, sink)?;
    }
    Ok(Response {
        status,
        version,
        headers,
        body: Vec::new(),
    })
}

/// A start line (`GET / HTTP/1.1`, `HTTP/1.1 200 OK`) and the header lines after it.
#[derive(Debug, Clone)]
pub struct Head {
    pub start: String,
    pub headers: Vec<(String, String)>,
}

/// Reads a start line and header lines up to the empty line. `Ok(None)`: the peer closed
/// before sending anything.
pub fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut start = String::new();
    if read_line(reader, &mut start)? == 0 {
        return Ok(None);
    }
    let start = start.trim_end().to_string();
    let mut headers = Vec::new();
    let mut total = start.len();
    loop {
        let mut line = String::new();
        if read_line(reader, &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside a head",
            ));
        }
        total += line.len();
        if total > MAX_HEAD {
            return Err(invalid("head too large".into()));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok(Some(Head { start, headers }));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("not a header line: {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

fn read_line(reader: &mut impl BufRead, line: &mut String) -> io::Result<usize> {
    let mut bytes = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_HEAD as u64)
        .read_until(b'\n', &mut bytes)?;
    line.push_str(&String::from_utf8_lossy(&bytes));
    Ok(n)
}

/// Copies a body framed by `headers` to `sink`: chunked, `Content-Length`, or (for a
/// response, `until_close`) everything until the peer closes. Returns the body's length.
pub fn copy_body(
    reader: &mut impl BufRead,
    headers: &[(String, String)],
    until_close: bool,
    sink: &mut impl Write,
) -> io::Result<u64> {
    let chunked = headers_named(headers, "transfer-encoding")
        .iter()
        .any(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return copy_chunked(reader, sink);
    }
    if let Some(len) = header(headers, "content-length") {
        let len: u64 = len
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        let copied = io::copy(&mut reader.by_ref().take(len), sink)?;
        if copied < len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("body ended after {copied} of {len} bytes"),
            ));
        }
        return Ok(len);
    }
    if until_close {
        return io::copy(reader, sink);
    }
    Ok(0)
}

fn copy_chunked(reader: &mut impl BufRead, sink: &mut impl Write) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let mut line = String::new();
        if read_line(reader, &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside a chunked body",
            ));
        }
        let size = line.trim().split(';').next().unwrap_or_default();
        let size = u64::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                if read_line(reader, &mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(total);
                }
            }
        }
        let copied = io::copy(&mut reader.by_ref().take(size), sink)?;
        if copied < size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed inside a chunk",
            ));
        }
        total += size;
        let mut crlf = String::new();
        read_line(reader, &mut crlf)?;
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn headers_named<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_requests_and_answers() {
        let upstream = Upstream::start(|ex| {
            let body = ex.body_bytes()?;
            ex.respond(201, &[("X-Seen", "yes")], &body)
        });
        let request = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        let response = send(upstream.addr(), request).unwrap();
        assert_eq!(response.status, 201);
        assert_eq!(response.header("x-seen"), Some("yes"));
        assert_eq!(response.body, b"hello");
        let requests = upstream.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path(), "/a");
        assert_eq!(requests[0].header("HOST"), Some("x"));
    }

    #[test]
    fn decodes_chunked_and_close_delimited_responses() {
        let upstream = Upstream::start(|ex| {
            if ex.request.path() == "/chunked" {
                ex.write_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n")
            } else {
                ex.close_after();
                ex.write_raw(b"HTTP/1.0 200 OK\r\n\r\nuntil close")
            }
        });
        assert_eq!(get(upstream.addr(), "/chunked").unwrap().body, b"abcde");
        assert_eq!(get(upstream.addr(), "/close").unwrap().body, b"until close");
    }

    #[test]
    fn keeps_connections_alive_and_drains_unread_bodies() {
        let upstream = Upstream::ok("ok");
        let mut stream = TcpStream::connect(upstream.addr()).unwrap();
        set_timeouts(&stream, NET_TIMEOUT);
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        for _ in 0..3 {
            stream
                .write_all(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
                .unwrap();
            assert_eq!(read_response(&mut reader).unwrap().body, b"ok");
        }
        assert_eq!(upstream.requests().len(), 3);
        assert_eq!(
            upstream.connections_accepted(),
            1,
            "one connection for three requests"
        );
        assert_eq!(upstream.connections_open(), 1);
        drop((stream, reader));
        let deadline = Instant::now() + NET_TIMEOUT;
        while upstream.connections_open() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            upstream.connections_open(),
            0,
            "the closed connection is forgotten"
        );
    }

    #[test]
    fn stops_and_restarts_on_the_same_port() {
        let mut upstream = Upstream::ok("ok");
        let addr = upstream.addr();
        assert_eq!(get(addr, "/").unwrap().status, 200);
        upstream.stop();
        assert!(!upstream.is_running());
        assert!(
            TcpStream::connect_timeout(&addr, NET_TIMEOUT).is_err(),
            "refused once stopped"
        );
        upstream.restart();
        assert_eq!(upstream.addr(), addr);
        assert_eq!(get(addr, "/").unwrap().status, 200);
        assert_eq!(upstream.requests().len(), 2);
    }

    #[test]
    fn sees_the_peer_close() {
        let seen = Arc::new(AtomicBool::new(false));
        let upstream = {
            let seen = seen.clone();
            Upstream::start(move |ex| {
                seen.store(ex.wait_for_close(NET_TIMEOUT), Ordering::SeqCst);
                Ok(())
            })
        };
        let mut stream = TcpStream::connect(upstream.addr()).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let deadline = Instant::now() + NET_TIMEOUT;
        while upstream.requests().is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        drop(stream);
        let deadline = Instant::now() + NET_TIMEOUT;
        while !seen.load(Ordering::SeqCst) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert!(seen.load(Ordering::SeqCst));
    }
}
