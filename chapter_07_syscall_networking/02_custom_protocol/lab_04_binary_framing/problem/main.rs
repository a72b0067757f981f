//! ## Goal
//! Design a binary protocol and the code that survives what TCP does to it. TCP delivers a byte
//! stream, not messages: one `read` may return half a header, another three frames and a bit. You
//! write a fixed 14-byte header, a streaming decoder over `bytes::BytesMut` that handles any split,
//! limits that hold against a hostile peer (a header claiming 4 GiB costs 14 bytes, not 4 GiB), and
//! a small key-value server and client that speak it.
//!
//! ## Requirements
//! 1. `encode(&Frame, &mut BytesMut)` appends exactly the wire format below.
//! 2. `FrameDecoder::decode(&mut BytesMut)` takes one whole frame off the front of the buffer or
//!    returns `Ok(None)` and leaves the buffer alone; it works whatever the split: one byte at a
//!    time, random cut points, many frames in one read.
//! 3. Limits and errors: a payload length above the decoder's maximum is `FrameTooLarge` as soon as
//!    the header is there, with nothing allocated for the claimed size (and a legal length does not
//!    reserve its size before the bytes arrive); a bad magic, another version or an unknown type is
//!    a protocol error; `decode_eof` reports a stream that ends inside a frame as `Truncated`. No
//!    input, however random, makes the decoder panic.
//! 4. `ch7_binary_framing --addr <addr>` serves the key-value store (prints `listening on <addr>`):
//!    Put answers Ok, Get answers Value or NotFound, Delete answers Ok or NotFound, each with the
//!    request's id, in order, also for pipelined requests arriving in arbitrary pieces.
//!    `ch7_binary_framing client <addr> get|put|delete ...` prints the value, `OK` or `(not found)`.
//! 5. A connection that breaks the protocol gets an Error frame and is closed; the server keeps
//!    serving everybody else.
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.4    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `encode(&Frame, &mut BytesMut)` appends exactly the wire format below
//! - [ ] Requirement 2: `FrameDecoder::decode(&mut BytesMut)` takes one whole frame off the front
//!   of the buffer or returns `Ok(None)` and leaves the buffer alone; it works whatever the split:
//!   one byte at a time, random cut points, many frames in one read
//! - [ ] Requirement 3: Limits and errors: a payload length above the decoder's maximum is
//!   `FrameTooLarge` as soon as the header is there, with nothing allocated for the claimed size
//!   (and a legal length does not reserve its size before the bytes arrive); a bad magic, another
//!   version or an unknown type is a protocol error; `decode_eof` reports a stream that ends inside
//!   a frame as `Truncated`
//! - [ ] Requirement 4: `ch7_binary_framing --addr <addr>` serves the key-value store (prints
//!   `listening on <addr>`): Put answers Ok, Get answers Value or NotFound, Delete answers Ok or
//!   NotFound, each with the request's id, in order, also for pipelined requests arriving in
//!   arbitrary pieces
//! - [ ] Requirement 5: A connection that breaks the protocol gets an Error frame and is closed;
//!   the server keeps serving everybody else
//!
//! ## Notes
//!
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
//!
//! Read README.md for the requirements; `cargo lab test 7.4` grades this file: white-box on
//! `encode` and `FrameDecoder`, black-box on the server and the client. The command line is
//! written for you. Remove the `allow` once every item is used.
#![allow(unused_variables, dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
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
        todo!("map 1..=7 to the variants, anything else to ProtocolError::UnknownType")
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
    todo!("Appends frame, header and payload, to dst")
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
        todo!(
            "check magic, version, type and length as soon as they are there; split the frame off only when complete"
        )
    }

    /// At end of stream: a last frame, `None` if the stream ended cleanly between frames, or
    /// `Truncated` if it ended inside one.
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        todo!("decode, then tell a clean end from one inside a frame")
    }
}

// ---------------------------------------------------------------------------------------------
// The key-value service
// ---------------------------------------------------------------------------------------------

type Store = Arc<Mutex<HashMap<Bytes, Bytes>>>;

/// A Put payload: key length (u16), key, value.
pub fn put_payload(key: &[u8], value: &[u8]) -> Bytes {
    todo!("A Put payload: key length (u16), key, value")
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
    todo!("Get, Put, Delete on the map; anything else is a BadPayload error")
}

/// Serves one connection until EOF or a protocol error (answered with an Error frame).
fn serve_connection(stream: TcpStream, store: Store) -> io::Result<()> {
    todo!(
        "read, decode every complete frame, answer, and on a protocol error send an Error frame and close"
    )
}

fn serve(addr: &str) -> io::Result<()> {
    todo!("bind, print listening on <addr>, a thread per connection")
}

/// Sends one request and reads its answer.
fn client(addr: &str, request: Frame) -> Result<Frame, Box<dyn std::error::Error>> {
    todo!("Sends one request and reads its answer")
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
