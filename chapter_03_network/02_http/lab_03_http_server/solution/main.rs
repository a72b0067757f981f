//! HTTP/1.1 server from scratch:
//! `http_server [--addr HOST:PORT] [--root DIR] [--request-timeout SECONDS]`.
//!
//! Routes: `GET /` (a greeting), `GET /static/<path>` (a file under `--root`), `POST /echo`
//! (the request body back). The program has two halves, kept apart on purpose:
//!
//! - **A parser that does no I/O** ([`parser`], [`chunked`]). It looks at bytes and answers "a
//!   request, and how many bytes it used", "not enough bytes yet", or "malformed, answer with
//!   status N". No sockets, no `await`: it can be tested and fuzzed on millions of inputs, and
//!   every limit (8 KiB of head, 1 MiB of body) is enforced *before* the bytes pile up in
//!   memory.
//! - **A connection loop** ([`server`]) that owns the socket: it reads until the parser has a
//!   request, routes it ([`routes`]), appends the response ([`response`]) to an output buffer,
//!   and writes that buffer only when it is about to wait for more input. Pipelined requests
//!   (several sent before reading any answer) thus get their responses in order, in one
//!   `write`.
//!
//! Everything a client can send ends in a response or a closed connection, never in a panic:
//! malformed framing is the classic door to request smuggling, so anything ambiguous (both
//! `Content-Length` and `Transfer-Encoding`, two different lengths) is refused outright.
//!
//! One idea per module, in reading order: [`error`] (the statuses a request can be refused
//! with), [`request`] (what the parser hands over), [`parser`] and [`chunked`] (bytes in, a
//! request out), [`response`], [`routes`], [`server`] (the connection loop), [`cli`], then
//! `main`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::net::TcpListener;

// What the grader and the benchmark call, at the paths they call it by.
pub use error::HttpError;
pub use parser::parse_request;
pub use request::{Method, Request, Version};
pub use routes::Config;
pub use server::serve;

use cli::Args;

/// Address used when `--addr` is not given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Largest request head (request line, headers, blank line), in bytes: more is a 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// Largest request body, in bytes: more is a 413.
pub const MAX_BODY: usize = 1024 * 1024;

mod error {
    //! The statuses a request can be refused with. The parser never panics and never guesses:
    //! it names a status, and the server answers with it, then closes the connection.

    use std::fmt;

    use super::{MAX_BODY, MAX_HEAD};

    /// Why a request is refused: each variant is a status code the client gets.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum HttpError {
        /// 400: the bytes are not HTTP/1.1 (the text says what is wrong).
        BadRequest(&'static str),
        /// 431: the head is over [`MAX_HEAD`] bytes.
        HeadTooLarge,
        /// 413: the body is over [`MAX_BODY`] bytes.
        BodyTooLarge,
        /// 501: a method or a transfer coding this server does not implement.
        NotImplemented(&'static str),
        /// 505: a well-formed version other than HTTP/1.0 and HTTP/1.1.
        VersionNotSupported,
    }

    impl HttpError {
        pub fn status(&self) -> u16 {
            match self {
                HttpError::BadRequest(_) => 400,
                HttpError::HeadTooLarge => 431,
                HttpError::BodyTooLarge => 413,
                HttpError::NotImplemented(_) => 501,
                HttpError::VersionNotSupported => 505,
            }
        }
    }

    impl fmt::Display for HttpError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                HttpError::BadRequest(why) => write!(f, "bad request: {why}"),
                HttpError::HeadTooLarge => write!(f, "request head over {MAX_HEAD} bytes"),
                HttpError::BodyTooLarge => write!(f, "request body over {MAX_BODY} bytes"),
                HttpError::NotImplemented(what) => write!(f, "not implemented: {what}"),
                HttpError::VersionNotSupported => write!(f, "HTTP version not supported"),
            }
        }
    }
}

mod request {
    //! The request as the parser hands it over: plain values, no borrowed bytes, no I/O. The
    //! rules that read headers (case-insensitive names, keep-alive by version) live here, next
    //! to the data they read.

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Method {
        Get,
        Head,
        Post,
        Put,
        Delete,
        Options,
        Patch,
        Trace,
        Connect,
    }

    impl Method {
        /// Methods are case-sensitive tokens: `get` is a valid token but an unknown method.
        pub fn from_token(token: &[u8]) -> Option<Method> {
            Some(match token {
                b"GET" => Method::Get,
                b"HEAD" => Method::Head,
                b"POST" => Method::Post,
                b"PUT" => Method::Put,
                b"DELETE" => Method::Delete,
                b"OPTIONS" => Method::Options,
                b"PATCH" => Method::Patch,
                b"TRACE" => Method::Trace,
                b"CONNECT" => Method::Connect,
                _ => return None,
            })
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Version {
        Http10,
        Http11,
    }

    /// How the body of a request is delimited (RFC 9112 section 6.3).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Framing {
        /// No `Content-Length`, no `Transfer-Encoding`: no body.
        Empty,
        Length(usize),
        Chunked,
    }

    /// A parsed request head.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Head {
        pub method: Method,
        /// The request target as sent, for example `/static/a%20b.txt?x=1`.
        pub target: String,
        pub version: Version,
        /// Names as sent; values without surrounding whitespace, folded lines joined by one space.
        pub headers: Vec<(String, String)>,
        pub framing: Framing,
        /// Bytes of the head, blank line included: the body starts here.
        pub len: usize,
    }

    impl Head {
        /// The first value of header `name`, compared case-insensitively (`Content-Length` and
        /// `content-length` are the same header).
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        /// Every comma-separated item of every `name` header, trimmed.
        pub fn header_items<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
            self.headers
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .filter(|item| !item.is_empty())
        }

        /// HTTP/1.1 keeps the connection open unless told `close`; HTTP/1.0 closes it unless told
        /// `keep-alive`.
        pub fn keep_alive(&self) -> bool {
            let mut tokens = self.header_items("connection");
            match self.version {
                Version::Http11 => !tokens.any(|t| t.eq_ignore_ascii_case("close")),
                Version::Http10 => tokens.any(|t| t.eq_ignore_ascii_case("keep-alive")),
            }
        }
    }

    /// A complete request: its head and its decoded body.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Request {
        pub head: Head,
        pub body: Vec<u8>,
    }

    impl Request {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.head.header(name)
        }
    }
}

mod parser {
    //! The parser: bytes in, a request (or "more bytes", or a status) out. No I/O.
    //!
    //! It is called again on the whole buffer each time more bytes arrive, so it must answer
    //! `Ok(None)` for every prefix of a valid request, and it checks each line as soon as that line
    //! is complete: a malformed request line is refused at once, not after 8 KiB of waiting.

    use super::chunked::ChunkedDecoder;
    use super::error::HttpError;
    use super::request::{Framing, Head, Method, Request, Version};
    use super::{MAX_BODY, MAX_HEAD};

    /// Splits a buffer into lines ending in `\n` (a `\r` before it is dropped), and remembers
    /// where the unread part starts.
    struct Lines<'a> {
        buf: &'a [u8],
        pos: usize,
    }

    impl<'a> Lines<'a> {
        /// The next complete line, or `None` when no `\n` is in the buffer yet.
        fn next_line(&mut self) -> Option<&'a [u8]> {
            let rest = &self.buf[self.pos..];
            let end = rest.iter().position(|&b| b == b'\n')?;
            self.pos += end + 1;
            let line = &rest[..end];
            Some(line.strip_suffix(b"\r").unwrap_or(line))
        }
    }

    /// Token characters (RFC 9110 section 5.6.2): what a method or a header name is made of.
    pub fn is_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    /// Control characters are never allowed in a header value (HTAB is whitespace, not control).
    pub fn has_ctl(bytes: &[u8]) -> bool {
        bytes.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    }

    pub fn trim_ows(bytes: &[u8]) -> &[u8] {
        let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
        let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|b| !is_ows(b))
            .map_or(start, |i| i + 1);
        &bytes[start..end]
    }

    /// Parses the head at the front of `buf`: `Ok(None)` while it is incomplete.
    ///
    /// Each line is checked as soon as it is complete, so a malformed request line is refused
    /// at once rather than after 8 KiB of waiting.
    pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, HttpError> {
        let incomplete = |seen: usize| {
            if seen > MAX_HEAD {
                Err(HttpError::HeadTooLarge)
            } else {
                Ok(None)
            }
        };
        let mut lines = Lines { buf, pos: 0 };

        // RFC 9112 section 2.2: a server SHOULD ignore empty lines before the request line.
        let request_line = loop {
            match lines.next_line() {
                None => return incomplete(buf.len()),
                Some(b"") => continue,
                Some(line) => break line,
            }
        };
        if lines.pos > MAX_HEAD {
            return Err(HttpError::HeadTooLarge);
        }
        let (method, target, version) = parse_request_line(request_line)?;

        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let Some(line) = lines.next_line() else {
                return incomplete(buf.len());
            };
            if lines.pos > MAX_HEAD {
                return Err(HttpError::HeadTooLarge);
            }
            if line.is_empty() {
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                // obs-fold: a line starting with whitespace continues the previous value. RFC 9112
                // section 5.2 lets a server reject it or replace the fold with one space.
                let Some((_, value)) = headers.last_mut() else {
                    return Err(HttpError::BadRequest("whitespace before the first header"));
                };
                let more = trim_ows(line);
                if has_ctl(more) {
                    return Err(HttpError::BadRequest("control character in a header value"));
                }
                if !more.is_empty() {
                    value.push(' ');
                    value.push_str(&String::from_utf8_lossy(more));
                }
                continue;
            }
            let colon = line
                .iter()
                .position(|&b| b == b':')
                .ok_or(HttpError::BadRequest("header line without a colon"))?;
            let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
            // No whitespace between the name and the colon (RFC 9112 section 5.1): `Host : x` is
            // a known way to make two parsers disagree, so it must be a 400.
            if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
                return Err(HttpError::BadRequest("invalid header name"));
            }
            if has_ctl(value) {
                return Err(HttpError::BadRequest("control character in a header value"));
            }
            headers.push((
                String::from_utf8_lossy(name).into_owned(),
                // Values may hold obs-text (bytes >= 0x80); this server never needs them exactly.
                String::from_utf8_lossy(value).into_owned(),
            ));
        }

        let mut head = Head {
            method,
            target,
            version,
            headers,
            framing: Framing::Empty,
            len: lines.pos,
        };
        head.framing = framing(&head)?;
        Ok(Some(head))
    }

    fn parse_request_line(line: &[u8]) -> Result<(Method, String, Version), HttpError> {
        let mut parts = line.split(|&b| b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HttpError::BadRequest(
                "the request line is not `METHOD TARGET VERSION`",
            ));
        };
        if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
            return Err(HttpError::BadRequest("invalid method"));
        }
        // Origin form only (`/path?query`), visible ASCII only: no spaces, no controls.
        if target.first() != Some(&b'/') || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(HttpError::BadRequest("invalid request target"));
        }
        let version = match version {
            b"HTTP/1.1" => Version::Http11,
            b"HTTP/1.0" => Version::Http10,
            [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                if major.is_ascii_digit() && minor.is_ascii_digit() =>
            {
                return Err(HttpError::VersionNotSupported);
            }
            _ => return Err(HttpError::BadRequest("invalid HTTP version")),
        };
        // Checked last: a syntax error is a 400 whatever the method.
        let method = Method::from_token(method).ok_or(HttpError::NotImplemented("method"))?;
        let target = String::from_utf8(target.to_vec()).expect("visible ASCII is UTF-8");
        Ok((method, target, version))
    }

    /// Decides how the body is delimited. Anything ambiguous is refused: when a proxy and a server
    /// disagree on where a body ends, an attacker can hide a second request inside the first
    /// (request smuggling).
    fn framing(head: &Head) -> Result<Framing, HttpError> {
        let codings: Vec<&str> = head.header_items("transfer-encoding").collect();
        let lengths: Vec<&str> = head.header_items("content-length").collect();
        let has_te = head
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
        if has_te {
            if !lengths.is_empty() {
                return Err(HttpError::BadRequest(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            return match codings.as_slice() {
                [only] if only.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
                [.., last] if last.eq_ignore_ascii_case("chunked") => {
                    Err(HttpError::NotImplemented("transfer coding"))
                }
                _ => Err(HttpError::BadRequest(
                    "chunked must be the last transfer coding",
                )),
            };
        }
        let Some(first) = lengths.first() else {
            return if head.header("content-length").is_some() {
                Err(HttpError::BadRequest("empty Content-Length"))
            } else {
                Ok(Framing::Empty)
            };
        };
        // `Content-Length: 5, 5` is tolerated (RFC 9110 section 8.6); `5, 6` is not.
        if lengths.iter().any(|l| l != first)
            || first.len() > 18
            || !first.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(HttpError::BadRequest("invalid Content-Length"));
        }
        let length: usize = first
            .parse()
            .map_err(|_| HttpError::BadRequest("invalid Content-Length"))?;
        if length > MAX_BODY {
            // Refused before a single byte of the body is read.
            return Err(HttpError::BodyTooLarge);
        }
        Ok(Framing::Length(length))
    }

    /// Parses one whole request from the front of `buf`: `Ok(Some((request, bytes used)))`,
    /// `Ok(None)` when `buf` holds only the beginning of one, or the status to answer with.
    /// The server feeds the same pieces incrementally; tests and fuzzers call this.
    pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, HttpError> {
        let Some(head) = parse_head(buf)? else {
            return Ok(None);
        };
        let after_head = &buf[head.len..];
        let (body, used) = match head.framing {
            Framing::Empty => (Vec::new(), 0),
            Framing::Length(n) if after_head.len() < n => return Ok(None),
            Framing::Length(n) => (after_head[..n].to_vec(), n),
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                if !decoder.decode(after_head)? {
                    return Ok(None);
                }
                let used = decoder.consumed();
                (decoder.into_body(), used)
            }
        };
        let used = head.len + used;
        Ok(Some((Request { head, body }, used)))
    }
}

mod chunked {
    //! `Transfer-Encoding: chunked`: a body sent as `size\r\ndata\r\n` pieces, ended by a zero-size
    //! chunk and optional trailer lines. Its own module because it is the one part of the parser
    //! with state: a decoder that remembers how far it got, so bytes trickled in one at a time cost
    //! linear time.

    use super::error::HttpError;
    use super::parser::{has_ctl, is_tchar, trim_ows};
    use super::{MAX_BODY, MAX_HEAD};

    /// Longest chunk-size line of a chunked body (size and extensions).
    const MAX_CHUNK_LINE: usize = 1024;

    /// Where a chunked body decoder stands.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    enum ChunkState {
        /// Expecting a chunk-size line (`1a;ext=x\r\n`).
        #[default]
        Size,
        /// Inside a chunk's data, with this many bytes to go.
        Data(usize),
        /// After a chunk's data: expecting its `\r\n`.
        DataEnd,
        /// After the last (zero-size) chunk: trailer lines until a blank line.
        Trailers,
        Done,
    }

    /// Decodes a chunked body incrementally.
    ///
    /// Call [`ChunkedDecoder::decode`] with the bytes after the head each time more arrived; the
    /// decoder remembers how far it got, so a body trickled in one byte at a time costs linear
    /// time, not quadratic.
    #[derive(Debug, Default)]
    pub struct ChunkedDecoder {
        state: ChunkState,
        /// Bytes of the input consumed so far.
        pos: usize,
        /// Bytes of trailer lines seen so far.
        trailers: usize,
        body: Vec<u8>,
    }

    impl ChunkedDecoder {
        /// Advances over `input` (always the whole body so far, from its first byte). `Ok(true)`
        /// once the body is complete: [`ChunkedDecoder::consumed`] bytes of `input` were used.
        pub fn decode(&mut self, input: &[u8]) -> Result<bool, HttpError> {
            loop {
                let rest = &input[self.pos.min(input.len())..];
                match self.state {
                    ChunkState::Size => {
                        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                            return if rest.len() > MAX_CHUNK_LINE {
                                Err(HttpError::BadRequest("chunk-size line too long"))
                            } else {
                                Ok(false)
                            };
                        };
                        if end > MAX_CHUNK_LINE {
                            return Err(HttpError::BadRequest("chunk-size line too long"));
                        }
                        let line = &rest[..end];
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        let size = parse_chunk_size(line)?;
                        if size > MAX_BODY - self.body.len() {
                            return Err(HttpError::BodyTooLarge);
                        }
                        self.pos += end + 1;
                        self.state = if size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    ChunkState::Data(left) => {
                        if rest.is_empty() {
                            return Ok(false);
                        }
                        let take = left.min(rest.len());
                        self.body.extend_from_slice(&rest[..take]);
                        self.pos += take;
                        self.state = if take == left {
                            ChunkState::DataEnd
                        } else {
                            ChunkState::Data(left - take)
                        };
                    }
                    ChunkState::DataEnd => match rest {
                        [] | [b'\r'] => return Ok(false),
                        [b'\n', ..] => {
                            self.pos += 1;
                            self.state = ChunkState::Size;
                        }
                        [b'\r', b'\n', ..] => {
                            self.pos += 2;
                            self.state = ChunkState::Size;
                        }
                        _ => return Err(HttpError::BadRequest("chunk data longer than its size")),
                    },
                    ChunkState::Trailers => {
                        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                            return if self.trailers + rest.len() > MAX_HEAD {
                                Err(HttpError::HeadTooLarge)
                            } else {
                                Ok(false)
                            };
                        };
                        self.trailers += end + 1;
                        if self.trailers > MAX_HEAD {
                            return Err(HttpError::HeadTooLarge);
                        }
                        self.pos += end + 1;
                        let line = &rest[..end];
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        } else {
                            // A trailer field is a header line; this server reads and ignores it.
                            let colon = line.iter().position(|&b| b == b':');
                            match colon {
                                Some(c) if c > 0 && line[..c].iter().all(|&b| is_tchar(b)) => {}
                                _ => return Err(HttpError::BadRequest("invalid trailer line")),
                            }
                        }
                    }
                    ChunkState::Done => return Ok(true),
                }
            }
        }

        /// Bytes of the input that the body used (valid once `decode` returned `Ok(true)`).
        pub fn consumed(&self) -> usize {
            self.pos
        }

        pub fn into_body(self) -> Vec<u8> {
            self.body
        }
    }

    /// `1A`, `1a;name=value`, `5 ; x`: hex digits, then optional extensions (ignored).
    fn parse_chunk_size(line: &[u8]) -> Result<usize, HttpError> {
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 15 {
            return Err(HttpError::BadRequest("invalid chunk size"));
        }
        let ext = trim_ows(&line[digits..]);
        if !(ext.is_empty() || ext[0] == b';') || has_ctl(ext) {
            return Err(HttpError::BadRequest("invalid chunk extension"));
        }
        let hex = std::str::from_utf8(&line[..digits]).expect("hex digits are ASCII");
        usize::from_str_radix(hex, 16).map_err(|_| HttpError::BadRequest("invalid chunk size"))
    }
}

mod response {
    //! A response, and how it is written: status line, `Date`, headers, `Content-Length` always
    //! (it is what lets the next response follow on the same connection), then the body.

    use std::io::Write as _;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// A response before it is serialized.
    #[derive(Debug)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(&'static str, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
            Response {
                status,
                headers: vec![("Content-Type", content_type.to_string())],
                body: body.into(),
            }
        }

        /// A short plain-text error page, `404 Not Found` and so on.
        pub fn error(status: u16) -> Response {
            let text = format!("{status} {}\n", reason(status));
            Response::new(status, "text/plain; charset=utf-8", text)
        }

        pub fn with_header(mut self, name: &'static str, value: &str) -> Response {
            self.headers.push((name, value.to_string()));
            self
        }

        /// Appends the response to `out`. `Content-Length` is always sent, so the client knows
        /// where this response ends and the next one on the connection begins; for `HEAD` it is
        /// the length of the body a `GET` would get, and the body itself is left out.
        pub fn write_to(&self, out: &mut Vec<u8>, head_only: bool, connection: Option<&str>) {
            let _ = write!(
                out,
                "HTTP/1.1 {} {}\r\nDate: {}\r\n",
                self.status,
                reason(self.status),
                http_date(SystemTime::now())
            );
            for (name, value) in &self.headers {
                let _ = write!(out, "{name}: {value}\r\n");
            }
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
            if let Some(connection) = connection {
                let _ = write!(out, "Connection: {connection}\r\n");
            }
            out.extend_from_slice(b"\r\n");
            if !head_only {
                out.extend_from_slice(&self.body);
            }
        }
    }

    fn reason(status: u16) -> &'static str {
        match status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            413 => "Content Too Large",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            _ => "",
        }
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 section 5.6.7), without a date crate.
    fn http_date(now: SystemTime) -> String {
        // 1970-01-01 was a Thursday.
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Days since the epoch to a civil date (Howard Hinnant's algorithm).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
            DAYS[(days % 7) as usize],
            MONTHS[(month - 1) as usize],
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

mod routes {
    //! The three routes, and the one that touches the file system: `/static/<path>`, where every
    //! check that keeps a request inside `--root` lives.

    use std::ffi::OsStr;
    use std::io;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use super::request::{Method, Request};
    use super::response::Response;

    /// What every connection needs to know.
    #[derive(Debug, Clone)]
    pub struct Config {
        /// The static files' directory, canonical (absolute, no symlinks).
        pub root: PathBuf,
        /// Time a client has to send one complete request.
        pub request_timeout: Duration,
    }

    /// Answers a complete request.
    pub async fn route(request: &Request, config: &Config) -> Response {
        let method = request.head.method;
        let path = request.head.target.split('?').next().unwrap_or("/");
        let get_or_head = matches!(method, Method::Get | Method::Head);
        match path {
            "/" if get_or_head => Response::new(200, "text/plain; charset=utf-8", "hello, world\n"),
            "/" => Response::error(405).with_header("Allow", "GET, HEAD"),
            "/echo" if method == Method::Post => {
                let content_type = request
                    .header("content-type")
                    .unwrap_or("application/octet-stream");
                Response::new(200, content_type, request.body.clone())
            }
            "/echo" => Response::error(405).with_header("Allow", "POST"),
            _ => match path.strip_prefix("/static/") {
                Some(rest) if get_or_head => serve_static(&config.root, rest).await,
                Some(_) => Response::error(405).with_header("Allow", "GET, HEAD"),
                None => Response::error(404),
            },
        }
    }

    /// Reads a file under the root. Path checks and the read are blocking system calls, so they
    /// run together on tokio's blocking thread pool (one hop there and back per request).
    async fn serve_static(root: &Path, rest: &str) -> Response {
        let (root, rest) = (root.to_path_buf(), rest.to_string());
        let read = tokio::task::spawn_blocking(move || {
            let path = resolve_static(&root, &rest)?;
            match std::fs::read(&path) {
                Ok(bytes) => Ok((path, bytes)),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(403),
                // Not found, or a directory (reading one fails with EISDIR).
                Err(_) => Err(404),
            }
        });
        match read.await {
            Ok(Ok((path, bytes))) => Response::new(200, content_type(&path), bytes),
            Ok(Err(status)) => Response::error(status),
            Err(_) => Response::error(500),
        }
    }

    /// Maps `rest` (what follows `/static/`) to a file inside `root`, or the status refusing it.
    ///
    /// Decode first, judge after: `%2e%2e` is `..` once decoded, and a check on the raw text would
    /// miss it. Then every segment must be a plain name (no `..`, `.`, empty segment, NUL), and
    /// finally the real path (symlinks resolved) must still be inside `root`: a symlink in the
    /// served tree could otherwise point anywhere.
    pub fn resolve_static(root: &Path, rest: &str) -> Result<PathBuf, u16> {
        let decoded = percent_decode(rest.as_bytes()).ok_or(400u16)?;
        if decoded.is_empty() {
            return Err(404);
        }
        let mut path = root.to_path_buf();
        for segment in decoded.split(|&b| b == b'/') {
            match segment {
                // An empty first segment is an absolute path (`/static//etc/passwd`).
                b"" | b"." | b".." => return Err(403),
                _ if segment.contains(&0) => return Err(400),
                _ => path.push(OsStr::from_bytes(segment)),
            }
        }
        let real = path.canonicalize().map_err(|_| 404u16)?;
        if !real.starts_with(root) {
            return Err(403);
        }
        Ok(real)
    }

    /// `%41` to `A`; `None` for a `%` not followed by two hex digits.
    fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'%' {
                let hex = input.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            } else {
                out.push(input[i]);
                i += 1;
            }
        }
        Some(out)
    }

    fn content_type(path: &Path) -> &'static str {
        let ext = path
            .extension()
            .and_then(OsStr::to_str)
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("html" | "htm") => "text/html; charset=utf-8",
            Some("css") => "text/css",
            Some("js" | "mjs") => "text/javascript",
            Some("json") => "application/json",
            Some("txt") => "text/plain; charset=utf-8",
            Some("png") => "image/png",
            Some("jpg" | "jpeg") => "image/jpeg",
            Some("gif") => "image/gif",
            Some("svg") => "image/svg+xml",
            Some("wasm") => "application/wasm",
            _ => "application/octet-stream",
        }
    }
}

mod server {
    //! The connection loop: the only code that touches a socket. It reads until the parser has a
    //! request, answers it, and decides when to write (before waiting for input), when to close
    //! (after an error or `Connection: close`), and how long a client may take (the request
    //! deadline).

    use std::io;
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::time::{Instant, timeout, timeout_at};

    use super::chunked::ChunkedDecoder;
    use super::error::HttpError;
    use super::parser::parse_head;
    use super::request::{Framing, Method, Request, Version};
    use super::response::Response;
    use super::routes::{Config, route};

    /// Output buffered for pipelined responses before it is written anyway.
    const FLUSH_AT: usize = 64 * 1024;
    /// How long a closing connection keeps reading (and discarding) what the client still sends.
    const LINGER: Duration = Duration::from_secs(1);

    /// Why a connection stops reading requests.
    enum ConnError {
        /// The client sent something to refuse: answer with its status, then close.
        Http(HttpError),
        /// The socket failed, or the client vanished in the middle of a request.
        Io(io::Error),
    }

    impl From<HttpError> for ConnError {
        fn from(e: HttpError) -> Self {
            ConnError::Http(e)
        }
    }

    impl From<io::Error> for ConnError {
        fn from(e: io::Error) -> Self {
            ConnError::Io(e)
        }
    }

    /// Accepts connections forever, one task each.
    pub async fn serve(listener: TcpListener, config: Arc<Config>) {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let config = config.clone();
                    tokio::spawn(async move {
                        // A client that resets, or leaves in the middle of a request, is
                        // ordinary: only other failures are worth a line in the log.
                        if let Err(e) = serve_connection(stream, &config).await
                            && !matches!(
                                e.kind(),
                                io::ErrorKind::ConnectionReset
                                    | io::ErrorKind::BrokenPipe
                                    | io::ErrorKind::UnexpectedEof
                            )
                        {
                            eprintln!("http_server: connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("http_server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Serves requests on one connection until it closes, in order.
    pub async fn serve_connection(mut stream: TcpStream, config: &Config) -> io::Result<()> {
        let _ = stream.set_nodelay(true); // a response is one write: send it now, not after an ACK
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        let mut out: Vec<u8> = Vec::with_capacity(4096);
        loop {
            // The clock for a request starts when we begin waiting for it: a client gets
            // `request_timeout` to send it whole, however it trickles it in (slowloris), and an
            // idle keep-alive connection is closed after the same time.
            let deadline = Instant::now() + config.request_timeout;
            let request =
                match timeout_at(deadline, read_request(&mut stream, &mut buf, &mut out)).await {
                    Ok(Ok(Some(request))) => request,
                    Ok(Ok(None)) => return flush(&mut stream, &mut out).await,
                    Ok(Err(ConnError::Http(e))) => {
                        Response::error(e.status()).write_to(&mut out, false, Some("close"));
                        return close(stream, &mut out).await;
                    }
                    Ok(Err(ConnError::Io(e))) => return Err(e),
                    Err(_elapsed) => {
                        // Say why only to a client that started a request; an idle connection just
                        // closes.
                        if !buf.is_empty() {
                            Response::error(408).write_to(&mut out, false, Some("close"));
                        }
                        return close(stream, &mut out).await;
                    }
                };
            let keep_alive = request.head.keep_alive();
            let connection = match (keep_alive, request.head.version) {
                (false, _) => Some("close"),
                (true, Version::Http10) => Some("keep-alive"),
                (true, Version::Http11) => None,
            };
            let head_only = request.head.method == Method::Head;
            route(&request, config)
                .await
                .write_to(&mut out, head_only, connection);
            if !keep_alive {
                return close(stream, &mut out).await;
            }
            if out.len() >= FLUSH_AT {
                // A client pipelining without reading: write now, so memory stays bounded (and
                // the write waits for the client: backpressure).
                flush(&mut stream, &mut out).await?;
            }
        }
    }

    /// Reads until `buf` starts with a complete request, and takes it out of `buf`. `Ok(None)`
    /// when the client closed the connection between two requests.
    async fn read_request(
        stream: &mut TcpStream,
        buf: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> Result<Option<Request>, ConnError> {
        let head = loop {
            if let Some(head) = parse_head(buf)? {
                break head;
            }
            if read_more(stream, buf, out).await? == 0 {
                return match buf.iter().all(|b| b.is_ascii_whitespace()) {
                    true => Ok(None),
                    false => Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into())),
                };
            }
        };
        let (body, used) = match head.framing {
            Framing::Empty => (Vec::new(), 0),
            Framing::Length(n) => {
                while buf.len() < head.len + n {
                    if read_more(stream, buf, out).await? == 0 {
                        return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                (buf[head.len..head.len + n].to_vec(), n)
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                while !decoder.decode(&buf[head.len..])? {
                    if read_more(stream, buf, out).await? == 0 {
                        return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
                let used = decoder.consumed();
                (decoder.into_body(), used)
            }
        };
        buf.drain(..head.len + used);
        Ok(Some(Request { head, body }))
    }

    /// Writes pending responses (we are about to wait for the client), then reads what it sent.
    async fn read_more(
        stream: &mut TcpStream,
        buf: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> io::Result<usize> {
        flush(stream, out).await?;
        buf.reserve(8192);
        stream.read_buf(buf).await
    }

    async fn flush(stream: &mut TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
        if !out.is_empty() {
            stream.write_all(out).await?;
            out.clear();
        }
        Ok(())
    }

    /// Writes what is pending and closes the connection gracefully.
    ///
    /// "Lingering close": after our FIN we keep reading, and discard, what the client still sends
    /// (for example the rest of a body we refused). Closing a socket with unread input makes the
    /// kernel send a RST, and a RST can destroy our response in the client's buffers before the
    /// client has read it.
    async fn close(mut stream: TcpStream, out: &mut Vec<u8>) -> io::Result<()> {
        flush(&mut stream, out).await?;
        stream.shutdown().await?;
        let _ = timeout(LINGER, async {
            let mut sink = [0u8; 8192];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        Ok(())
    }
}

mod cli {
    //! The command line, parsed by clap: `--help`, and a usage error (exit 2) for a bad argument.

    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::Duration;

    use clap::Parser;

    use super::DEFAULT_ADDR;

    /// What the command line asks for.
    #[derive(Debug, Parser)]
    #[command(
        name = "http_server",
        about = "An HTTP/1.1 server with its own parser: GET /, GET /static/<path>, POST /echo"
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
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let Some(root) = std::fs::canonicalize(&args.root)
        .ok()
        .filter(|path| path.is_dir())
    else {
        eprintln!(
            "http_server: --root {}: not a directory",
            args.root.display()
        );
        return ExitCode::from(1);
    };
    let config = Config {
        root,
        request_timeout: args.request_timeout,
    };
    let addr = args.addr;
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("http_server: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => eprintln!("http_server: local_addr: {e}"),
    }
    serve(listener, Arc::new(config)).await;
    ExitCode::SUCCESS
}
