//! Raw HTTP over a plain socket: what a client library refuses to send.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use crate::net::connect;

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name`, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection that writes raw bytes and reads raw responses.
pub struct RawConn {
    reader: BufReader<TcpStream>,
    pub(crate) writer: TcpStream,
}

impl RawConn {
    pub fn open(addr: SocketAddr) -> RawConn {
        let stream = connect(addr);
        RawConn {
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
        }
    }

    /// Writes `bytes`; panics if the server already closed the connection.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("cannot write the request: {e}"));
    }

    /// A second handle on the socket (for a writer thread).
    pub fn writer(&self) -> TcpStream {
        self.writer.try_clone().expect("clone the stream")
    }

    /// Reads one response (a `HEAD` response has no body, whatever `Content-Length` says).
    pub fn try_response(&mut self, head_request: bool) -> io::Result<RawResponse> {
        read_response(&mut self.reader, head_request)
    }

    /// Reads one response; panics with `what` if none comes.
    pub fn response(&mut self, head_request: bool, what: &str) -> RawResponse {
        self.try_response(head_request)
            .unwrap_or_else(|e| panic!("{what}: no complete response: {e}"))
    }

    /// Waits until the server closes the connection (end of stream or a reset), at most until
    /// `deadline`. Returns the bytes received before the close.
    pub fn wait_closed(&mut self, deadline: Instant, what: &str) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: the server kept the connection open"
            );
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            match self.reader.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    panic!("{what}: the server kept the connection open")
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
    }

    /// Sets `SO_LINGER` to zero: dropping the connection then sends a RST instead of a FIN.
    pub fn reset_on_drop(&self) {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        use std::os::fd::AsRawFd;
        // SAFETY: setsockopt on a socket we own, with a pointer to a live `linger` and its size.
        unsafe {
            libc::setsockopt(
                self.writer.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
}

pub(crate) fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    let n = reader.take(64 * 1024).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let line = String::from_utf8_lossy(&line);
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub(crate) fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads one HTTP/1.1 response: the status line, headers, and a body delimited by
/// `Content-Length`, by chunked encoding, or by the end of the stream. Interim `1xx` responses
/// are skipped.
pub fn read_response(reader: &mut impl BufRead, head_request: bool) -> io::Result<RawResponse> {
    loop {
        let status_line = read_line(reader)?;
        let mut parts = status_line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or_default(), parts.next());
        if !version.starts_with("HTTP/1.") {
            return Err(invalid(format!("not a status line: {status_line:?}")));
        }
        let status: u16 = code
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| invalid(format!("no status code in {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(reader)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| invalid(format!("not a header line: {line:?}")))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 204 || status == 304 {
            return Ok(response);
        }
        let chunked = response
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = read_line(reader)?;
                let size = size_line.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| invalid(format!("bad chunk size line {size_line:?}")))?;
                if size == 0 {
                    while !read_line(reader)?.is_empty() {}
                    break;
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                reader.read_exact(&mut response.body[start..])?;
                read_line(reader)?;
            }
        } else if let Some(len) = response.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
            response.body.resize(len, 0);
            reader.read_exact(&mut response.body)?;
        } else {
            reader.read_to_end(&mut response.body)?;
        }
        return Ok(response);
    }
}

/// Sends `request` on a fresh connection and returns the status of the response.
pub fn status_of(addr: SocketAddr, request: &[u8]) -> u16 {
    let mut conn = RawConn::open(addr);
    // The server may answer and close before it read everything (a 431 for example): a failed
    // write is not the test's concern, a missing response is.
    let _ = conn.writer.write_all(request);
    let shown = String::from_utf8_lossy(&request[..request.len().min(120)]).into_owned();
    conn.response(false, &format!("request {shown:?}")).status
}

pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes()
}

pub(crate) fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// A chunked `POST /echo` of `body`, cut at random places, with a chunk extension and a
/// trailer now and then.
pub(crate) fn post_chunked(body: &[u8], rng_seed: &[u8]) -> Vec<u8> {
    let mut request =
        b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut at = 0;
    let mut i = 0;
    while at < body.len() {
        let pick = rng_seed[i % rng_seed.len()] as usize;
        let size = (1 + pick * 37 % 3000).min(body.len() - at);
        let size_hex = if i % 2 == 0 {
            format!("{size:x}")
        } else {
            format!("{size:X}")
        };
        let ext = if i % 3 == 1 { ";name=value" } else { "" };
        request.extend_from_slice(format!("{size_hex}{ext}\r\n").as_bytes());
        request.extend_from_slice(&body[at..at + size]);
        request.extend_from_slice(b"\r\n");
        at += size;
        i += 1;
    }
    request.extend_from_slice(b"0\r\n");
    if rng_seed[0].is_multiple_of(2) {
        request.extend_from_slice(b"X-Checksum: 42\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request
}
