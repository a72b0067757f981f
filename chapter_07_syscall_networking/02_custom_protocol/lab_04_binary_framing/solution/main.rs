//! A binary protocol: fixed header + payload, a streaming decoder, and a key-value server.
//!
//! ```text
//! ch7_binary_framing --addr 127.0.0.1:7070              # server: prints `listening on <addr>`
//! ch7_binary_framing client <addr> put <key> <value>    # client: prints OK
//! ch7_binary_framing client <addr> get <key>            # prints the value, or (not found)
//! ch7_binary_framing client <addr> delete <key>
//! ```
//!
//! Every frame starts with a 14-byte header, all integers big-endian:
//!
//! ```text
//!  0       2       3       4               6                      10                     14
//! +-------+-------+-------+---------------+----------------------+----------------------+
//! | magic |version| type  |    flags      |      request id      |    payload length    |
//! | C7 4B |  01   |  u8   |     u16       |         u32          |         u32          |
//! +-------+-------+-------+---------------+----------------------+----------------------+
//! | payload (length bytes) ...
//! ```
//!
//! TCP is a byte stream: one `read` may return half a header or three frames. The decoder
//! therefore works on a growing `BytesMut`: it looks at the header without consuming it, says
//! "need more" until the whole frame is there, then splits the frame off the front. The length
//! is checked against the maximum *before* anything is allocated for it, so a peer claiming a
//! 4 GiB frame costs us 14 bytes, not 4 GiB.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::{Parser, Subcommand};

pub const MAGIC: u16 = 0xC74B;
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 14;
/// Largest payload the server accepts.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Message types. Requests go client to server, the rest answer them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// Payload: the key.
    Get = 1,
    /// Payload: key length (u16), key, value.
    Put = 2,
    /// Payload: the key.
    Delete = 3,
    /// Answer to Get: the value.
    Value = 4,
    /// Answer to Get or Delete of a missing key: empty.
    NotFound = 5,
    /// Answer to Put or Delete: empty.
    Ok = 6,
    /// Protocol or request error: a UTF-8 message. The server closes the connection after it.
    Error = 7,
}

impl TryFrom<u8> for MessageType {
    type Error = ProtocolError;

    fn try_from(value: u8) -> Result<Self, ProtocolError> {
        Ok(match value {
            1 => MessageType::Get,
            2 => MessageType::Put,
            3 => MessageType::Delete,
            4 => MessageType::Value,
            5 => MessageType::NotFound,
            6 => MessageType::Ok,
            7 => MessageType::Error,
            other => return Err(ProtocolError::UnknownType(other)),
        })
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub msg_type: MessageType,
    pub flags: u16,
    pub request_id: u32,
    pub payload: Bytes,
}

/// Why a byte stream is not our protocol. Every variant ends the connection: after a bad
/// header we cannot know where the next frame starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    BadMagic(u16),
    UnsupportedVersion(u8),
    UnknownType(u8),
    FrameTooLarge {
        len: usize,
        max: usize,
    },
    /// The stream ended inside a frame.
    Truncated {
        buffered: usize,
    },
    /// A well-framed request whose payload makes no sense (a Put without its key length...).
    BadPayload(&'static str),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::BadMagic(m) => write!(f, "bad magic {m:#06x}"),
            ProtocolError::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            ProtocolError::UnknownType(t) => write!(f, "unknown message type {t}"),
            ProtocolError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            ProtocolError::Truncated { buffered } => {
                write!(f, "stream ended inside a frame ({buffered} bytes buffered)")
            }
            ProtocolError::BadPayload(why) => write!(f, "bad payload: {why}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Appends `frame`, header and payload, to `dst`.
pub fn encode(frame: &Frame, dst: &mut BytesMut) {
    dst.reserve(HEADER_LEN + frame.payload.len());
    dst.put_u16(MAGIC);
    dst.put_u8(VERSION);
    dst.put_u8(frame.msg_type as u8);
    dst.put_u16(frame.flags);
    dst.put_u32(frame.request_id);
    dst.put_u32(frame.payload.len() as u32);
    dst.put_slice(&frame.payload);
}

/// A streaming decoder: feed it every byte the socket gives, in order.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: usize,
}

impl FrameDecoder {
    pub fn new(max_payload: usize) -> FrameDecoder {
        FrameDecoder { max_payload }
    }

    /// Takes one whole frame off the front of `src`, or returns `Ok(None)` and leaves `src`
    /// untouched when more bytes are needed.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        // Validate what we can as soon as we have it: a bad magic in the first two bytes is
        // reported at once, not after waiting for a header that may never come.
        if src.len() >= 2 {
            let magic = u16::from_be_bytes([src[0], src[1]]);
            if magic != MAGIC {
                return Err(ProtocolError::BadMagic(magic));
            }
        }
        if src.len() >= 3 && src[2] != VERSION {
            return Err(ProtocolError::UnsupportedVersion(src[2]));
        }
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        let msg_type = MessageType::try_from(src[3])?;
        let len = u32::from_be_bytes([src[10], src[11], src[12], src[13]]) as usize;
        if len > self.max_payload {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max: self.max_payload,
            });
        }
        if src.len() < HEADER_LEN + len {
            // Not `src.reserve(len)`: the buffer grows with what actually arrives.
            return Ok(None);
        }
        let flags = u16::from_be_bytes([src[4], src[5]]);
        let request_id = u32::from_be_bytes([src[6], src[7], src[8], src[9]]);
        src.advance(HEADER_LEN);
        // split_to + freeze: the payload shares the buffer's memory, no copy.
        let payload = src.split_to(len).freeze();
        Ok(Some(Frame {
            msg_type,
            flags,
            request_id,
            payload,
        }))
    }

    /// At end of stream: a last frame, `None` if the stream ended cleanly between frames, or
    /// `Truncated` if it ended inside one.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::Truncated {
                buffered: src.len(),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The key-value service
// ---------------------------------------------------------------------------------------------

type Store = Arc<Mutex<HashMap<Bytes, Bytes>>>;

/// A Put payload: key length (u16), key, value.
pub fn put_payload(key: &[u8], value: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(2 + key.len() + value.len());
    b.put_u16(key.len() as u16);
    b.put_slice(key);
    b.put_slice(value);
    b.freeze()
}

fn reply(to: &Frame, msg_type: MessageType, payload: Bytes) -> Frame {
    Frame {
        msg_type,
        flags: 0,
        request_id: to.request_id,
        payload,
    }
}

/// The answer to one request.
fn handle(store: &Store, request: &Frame) -> Result<Frame, ProtocolError> {
    let mut map = store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(match request.msg_type {
        MessageType::Get => match map.get(&request.payload) {
            Some(value) => reply(request, MessageType::Value, value.clone()),
            None => reply(request, MessageType::NotFound, Bytes::new()),
        },
        MessageType::Put => {
            let mut p = request.payload.clone();
            if p.len() < 2 {
                return Err(ProtocolError::BadPayload("put without a key length"));
            }
            let key_len = usize::from(p.get_u16());
            if p.len() < key_len {
                return Err(ProtocolError::BadPayload("put key longer than the payload"));
            }
            let key = p.split_to(key_len);
            map.insert(key, p);
            reply(request, MessageType::Ok, Bytes::new())
        }
        MessageType::Delete => match map.remove(&request.payload) {
            Some(_) => reply(request, MessageType::Ok, Bytes::new()),
            None => reply(request, MessageType::NotFound, Bytes::new()),
        },
        _ => return Err(ProtocolError::BadPayload("clients send Get, Put or Delete")),
    })
}

/// Serves one connection until EOF or a protocol error (answered with an Error frame).
fn serve_connection(mut stream: TcpStream, store: Store) -> io::Result<()> {
    // A client that stops sending mid-frame must not hold a thread forever.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut decoder = FrameDecoder::new(MAX_PAYLOAD);
    let mut buf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let mut failed = None;
        loop {
            let decoded = if n == 0 {
                decoder.decode_eof(&mut buf)
            } else {
                decoder.decode(&mut buf)
            };
            match decoded.and_then(|f| f.map(|f| handle(&store, &f)).transpose()) {
                Ok(Some(response)) => encode(&response, &mut out),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = &failed {
            let error = Frame {
                msg_type: MessageType::Error,
                flags: 0,
                request_id: 0,
                payload: Bytes::from(e.to_string()),
            };
            encode(&error, &mut out);
        }
        // One write for all the answers of this read: pipelined requests cost one syscall.
        stream.write_all(&out)?;
        out.clear();
        if n == 0 || failed.is_some() {
            return Ok(());
        }
    }
}

fn serve(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening on {}", listener.local_addr()?);
    let store: Store = Arc::default();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let store = store.clone();
        // A thread per connection keeps the lab about framing; chapter 7 part 2 does epoll.
        thread::spawn(move || {
            if let Err(e) = serve_connection(stream, store) {
                eprintln!("connection: {e}");
            }
        });
    }
    Ok(())
}

/// Sends one request and reads its answer.
fn client(addr: &str, request: Frame) -> Result<Frame, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut out = BytesMut::new();
    encode(&request, &mut out);
    stream.write_all(&out)?;
    let mut decoder = FrameDecoder::new(MAX_PAYLOAD);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.decode(&mut buf)? {
            return Ok(frame);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(decoder
                .decode_eof(&mut buf)?
                .map_or("server closed the connection".into(), |_| {
                    "unexpected frame".into()
                }));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The command line: serve with `--addr`, or send one request with `client`.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_binary_framing",
    about = "A key-value store over a binary protocol: the server, or a client for one request",
    override_usage = "\
        ch7_binary_framing --addr <HOST:PORT>\n       \
        ch7_binary_framing client <HOST:PORT> (get <KEY> | put <KEY> <VALUE> | delete <KEY>)",
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Serve the store on this address (port 0: the kernel picks one; the address is printed)
    #[arg(long, value_name = "HOST:PORT", required = true)]
    addr: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send one request to a server and print its answer
    Client {
        /// The server's address
        #[arg(value_name = "HOST:PORT")]
        addr: String,
        #[command(subcommand)]
        request: Request,
    },
}

#[derive(Debug, Subcommand)]
enum Request {
    /// Print the value stored under KEY, or (not found)
    Get { key: String },
    /// Store VALUE under KEY; prints OK
    Put { key: String, value: String },
    /// Remove KEY; prints OK, or (not found)
    Delete { key: String },
}

fn main() -> ExitCode {
    // `--help` prints the usage (exit 0); a bad argument is a usage error (exit 2).
    let args = Args::parse();
    let frame = |msg_type, payload| Frame {
        msg_type,
        flags: 0,
        request_id: 1,
        payload,
    };
    let result = match args.command {
        Some(Command::Client { addr, request }) => {
            let request = match request {
                Request::Get { key } => frame(MessageType::Get, Bytes::from(key)),
                Request::Delete { key } => frame(MessageType::Delete, Bytes::from(key)),
                Request::Put { key, value } => frame(
                    MessageType::Put,
                    put_payload(key.as_bytes(), value.as_bytes()),
                ),
            };
            client(&addr, request).map(Some)
        }
        None => {
            let addr = args
                .addr
                .expect("clap requires --addr without a subcommand");
            serve(&addr).map_err(Into::into).map(|()| None)
        }
    };
    match result {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(frame)) => match frame.msg_type {
            MessageType::Value => {
                println!("{}", String::from_utf8_lossy(&frame.payload));
                ExitCode::SUCCESS
            }
            MessageType::Ok => {
                println!("OK");
                ExitCode::SUCCESS
            }
            MessageType::NotFound => {
                println!("(not found)");
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!("error: {}", String::from_utf8_lossy(&frame.payload));
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("ch7_binary_framing: {e}");
            ExitCode::from(1)
        }
    }
}
