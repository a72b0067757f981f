//! ## Goal
//! Put one realistic record (an `Order` with nested line items, strings and a list of strings)
//! through three serialization formats and measure what their designs cost: Protocol Buffers
//! (prost), a compact tag-length-value encoding that must be parsed into owned structs, and Cap'n
//! Proto and FlatBuffers, whose bytes are read *in place*. You prove the zero-copy claim with
//! addresses (a string you read points into the input buffer) and measure encode time, decode
//! time, the time to read two fields, and the encoded size.
//!
//! ## Requirements
//! 1. `proto_encode`/`proto_decode`, `capnp_encode`/`capnp_decode`, `fb_encode`/`fb_decode` round
//!    trip any `Order` (UTF-8 strings of any content, empty lists, `u64` extremes).
//! 2. The bytes follow the schemas: protobuf's exactly as the wire format says (field tags,
//!    varints, defaults omitted), Cap'n Proto's and FlatBuffers' readable by their generated
//!    readers.
//! 3. `capnp_peek` and `fb_peek` read the customer and the order total without building an `Order`:
//!    the customer `&str` they return lies inside the input buffer (`fb_customer` returns it with
//!    the buffer's lifetime). `proto_peek` cannot: it decodes the whole message and its customer is
//!    an owned `String`.
//! 4. Protobuf is the most compact of the three on this record.
//! 5. Random and corrupted bytes are an error (`SerError`) in every decoder and peek, never a panic.
//!    In particular: a truncated Cap'n Proto or FlatBuffers message, cut anywhere, and a protobuf
//!    message cut inside a string, are errors (not an empty or partial `Order`), and a string that
//!    is not UTF-8 is an error in every format (checked, not replaced).
//!
//! ## Verification
//! cargo test            in this lab's folder
//! cargo lab test 7.5    from anywhere: a summary, and PROGRESS.md ticked when green
//!
//! ## Acceptance Criteria
//! Tick each box in your copy when its tests pass (the README's table names them).
//! - [ ] Requirement 1: `proto_encode`/`proto_decode`, `capnp_encode`/`capnp_decode`,
//!   `fb_encode`/`fb_decode` round trip any `Order` (UTF-8 strings of any content, empty lists,
//!   `u64` extremes)
//! - [ ] Requirement 2: The bytes follow the schemas: protobuf's exactly as the wire format says
//!   (field tags, varints, defaults omitted), Cap'n Proto's and FlatBuffers' readable by their
//!   generated readers
//! - [ ] Requirement 3: `capnp_peek` and `fb_peek` read the customer and the order total without
//!   building an `Order`: the customer `&str` they return lies inside the input buffer
//!   (`fb_customer` returns it with the buffer's lifetime)
//! - [ ] Requirement 4: Protobuf is the most compact of the three on this record
//! - [ ] Requirement 5: Random and corrupted bytes are an error (`SerError`) in every decoder and
//!   peek, never a panic
//!
//! ## Notes
//!
//! One record, three formats: Protocol Buffers (prost), Cap'n Proto and FlatBuffers.
//!
//! The record is an `Order` with nested line items, strings and a list of strings; the schema
//! is in `schema/` in each format's language. For protobuf the Rust types are prost structs
//! written by hand (what `prost-build` would generate from `schema/order.proto`, minus the
//! need for `protoc`); they double as the plain Rust model that the other two formats encode
//! from and decode to. For Cap'n Proto and FlatBuffers the code in `generated/` comes from
//! their compilers (see the comments in the schema files) and is committed, so building
//! needs neither.
//!
//! Three operations per format:
//! - `*_encode`: the Order into bytes;
//! - `*_decode`: bytes into an owned Order (every string copied);
//! - `*_peek`: read the customer and the order total *without* building an Order. For Cap'n
//!   Proto and FlatBuffers the customer `&str` points into the input buffer (zero copy); for
//!   protobuf there is no way around decoding the whole message first.
//!
//! Read README.md for the requirements; `cargo lab test 7.5` grades this file (white-box) and
//! `cargo bench -p ch7_serialization` measures it. The record types, the generated modules and
//! `main` are given; the nine functions of the three formats are yours. Remove the `allow` once
//! every item is used.
#![allow(unused_variables, dead_code)]

use std::fmt;
use std::process::ExitCode;

use clap::Parser;

#[path = "../generated/order_capnp.rs"]
#[allow(clippy::all, unsafe_op_in_unsafe_fn, rust_2018_idioms)]
pub mod order_capnp;

#[path = "../generated/order_generated.rs"]
#[allow(
    clippy::all,
    unsafe_op_in_unsafe_fn,
    rust_2018_idioms,
    clippy::undocumented_unsafe_blocks
)]
pub mod order_generated;

// The FlatBuffers types: fb::Order, fb::OrderArgs, fb::LineItem, fb::root_as_order...
#[allow(unused_imports)]
use order_generated::shop as fb;

/// The record: prost structs, equivalent to `schema/order.proto`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct LineItem {
    #[prost(string, tag = "1")]
    pub sku: String,
    #[prost(uint32, tag = "2")]
    pub quantity: u32,
    #[prost(uint64, tag = "3")]
    pub price_cents: u64,
}

#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Order {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub customer: String,
    #[prost(uint64, tag = "3")]
    pub created_at_ms: u64,
    #[prost(message, repeated, tag = "4")]
    pub items: Vec<LineItem>,
    #[prost(string, repeated, tag = "5")]
    pub tags: Vec<String>,
    #[prost(string, tag = "6")]
    pub note: String,
}

impl Order {
    /// Sum of quantity * price over the items (wrapping: the inputs are untrusted).
    pub fn total_cents(&self) -> u64 {
        todo!("sum of quantity * price over the items, with wrapping arithmetic")
    }
}

/// A realistic order with `items` line items, the same every time (demo and benchmark).
pub fn sample_order(items: usize) -> Order {
    Order {
        id: 4_211_017,
        customer: "Ada Lovelace <ada@example.com>".into(),
        created_at_ms: 1_763_700_000_000,
        items: (0..items)
            .map(|i| LineItem {
                sku: format!(
                    "SKU-{:06}-{}",
                    i * 7919 % 1_000_000,
                    ["red", "blue", "green"][i % 3]
                ),
                quantity: (i % 5 + 1) as u32,
                price_cents: 199 + (i as u64 * 37) % 10_000,
            })
            .collect(),
        tags: vec!["priority".into(), "gift-wrap".into(), "eu-warehouse".into()],
        note: "Leave the parcel with the neighbour if nobody answers.".into(),
    }
}

/// Why bytes could not be read.
#[derive(Debug)]
pub enum SerError {
    Protobuf(prost::DecodeError),
    Capnp(capnp::Error),
    FlatBuffers(flatbuffers::InvalidFlatbuffer),
    /// A string that is not UTF-8 (Cap'n Proto checks UTF-8 when you ask for a `&str`).
    Utf8(std::str::Utf8Error),
}

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerError::Protobuf(e) => write!(f, "protobuf: {e}"),
            SerError::Capnp(e) => write!(f, "capnp: {e}"),
            SerError::FlatBuffers(e) => write!(f, "flatbuffers: {e}"),
            SerError::Utf8(e) => write!(f, "invalid UTF-8: {e}"),
        }
    }
}

impl std::error::Error for SerError {}

impl From<capnp::Error> for SerError {
    fn from(e: capnp::Error) -> Self {
        SerError::Capnp(e)
    }
}

impl From<std::str::Utf8Error> for SerError {
    fn from(e: std::str::Utf8Error) -> Self {
        SerError::Utf8(e)
    }
}

/// What `*_peek` reads: the customer (where it lies in memory, and its length) and the total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    pub customer_addr: usize,
    pub customer_len: usize,
    pub total_cents: u64,
}

fn peek_of(customer: &str, total_cents: u64) -> Peek {
    Peek {
        customer_addr: customer.as_ptr() as usize,
        customer_len: customer.len(),
        total_cents,
    }
}

// ---------------------------------------------------------------------------------------------
// Protocol Buffers: tag-length-value with varints; decoding is a full parse
// ---------------------------------------------------------------------------------------------

pub fn proto_encode(order: &Order) -> Vec<u8> {
    todo!("prost::Message gives you encode_to_vec")
}

pub fn proto_decode(buf: &[u8]) -> Result<Order, SerError> {
    todo!("Order::decode, errors into SerError::Protobuf")
}

/// Protobuf has no random access: to read two fields we parse the whole message, and the
/// customer we return lives in the freshly decoded Order, not in `buf`.
pub fn proto_peek(buf: &[u8]) -> Result<Peek, SerError> {
    todo!("decode the whole message, then read the two fields from the owned Order")
}

// ---------------------------------------------------------------------------------------------
// Cap'n Proto: the wire format is the in-memory layout; getters walk pointers in place
// ---------------------------------------------------------------------------------------------

pub fn capnp_encode(order: &Order) -> Vec<u8> {
    todo!(
        "capnp::message::Builder, init_root::<order_capnp::order::Builder>, set every field, write_message_to_words"
    )
}

pub fn capnp_decode(buf: &[u8]) -> Result<Order, SerError> {
    todo!("read_message_from_flat_slice_no_alloc, get_root, copy every field into an Order")
}

pub fn capnp_peek(buf: &[u8]) -> Result<Peek, SerError> {
    todo!("read the message in place: sum the items, return the customer &str without copying it")
}

// ---------------------------------------------------------------------------------------------
// FlatBuffers: tables with vtables, verified once, then plain loads
// ---------------------------------------------------------------------------------------------

pub fn fb_encode(order: &Order) -> Vec<u8> {
    todo!("FlatBufferBuilder: strings and items first, then the Order table, finish_order_buffer")
}

pub fn fb_decode(buf: &[u8]) -> Result<Order, SerError> {
    todo!("root_as_order (it verifies), then copy every field into an Order")
}

/// The customer as a `&str` with the lifetime of `buf`: FlatBuffers' accessors borrow the input.
pub fn fb_customer(buf: &[u8]) -> Result<&str, SerError> {
    todo!("root_as_order(buf)?.customer(): a &str borrowing buf")
}

pub fn fb_peek(buf: &[u8]) -> Result<Peek, SerError> {
    todo!("root_as_order, sum the items, return the customer in place")
}

type Encode = fn(&Order) -> Vec<u8>;
type Decode = fn(&[u8]) -> Result<Order, SerError>;

/// The command line: no options; `--help` says what the program shows.
#[derive(Debug, Parser)]
#[command(
    name = "ch7_serialization",
    about = "Encode one order in Protocol Buffers, Cap'n Proto and FlatBuffers, and decode it back"
)]
struct Args {}

fn main() -> ExitCode {
    // `--help` prints the usage (exit 0); any argument is a usage error (exit 2).
    let Args {} = Args::parse();
    let order = sample_order(20);
    println!(
        "order {} with {} items, total {} cents",
        order.id,
        order.items.len(),
        order.total_cents()
    );
    let formats: [(&str, Encode, Decode); 3] = [
        ("protobuf", proto_encode, proto_decode),
        ("capnp", capnp_encode, capnp_decode),
        ("flatbuffers", fb_encode, fb_decode),
    ];
    for (name, encode, decode) in formats {
        let bytes = encode(&order);
        match decode(&bytes) {
            Ok(back) if back == order => {
                println!("{name:>12}: {:>5} bytes, round trip ok", bytes.len())
            }
            Ok(_) => {
                eprintln!("{name}: round trip changed the order");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
