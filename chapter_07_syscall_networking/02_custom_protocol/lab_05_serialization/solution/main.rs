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

use std::fmt;
use std::process::ExitCode;

use clap::Parser;
use prost::Message;

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
        self.items.iter().fold(0u64, |sum, item| {
            sum.wrapping_add(u64::from(item.quantity).wrapping_mul(item.price_cents))
        })
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
    order.encode_to_vec()
}

pub fn proto_decode(buf: &[u8]) -> Result<Order, SerError> {
    Order::decode(buf).map_err(SerError::Protobuf)
}

/// Protobuf has no random access: to read two fields we parse the whole message, and the
/// customer we return lives in the freshly decoded Order, not in `buf`.
pub fn proto_peek(buf: &[u8]) -> Result<Peek, SerError> {
    let order = proto_decode(buf)?;
    Ok(peek_of(&order.customer, order.total_cents()))
}

// ---------------------------------------------------------------------------------------------
// Cap'n Proto: the wire format is the in-memory layout; getters walk pointers in place
// ---------------------------------------------------------------------------------------------

pub fn capnp_encode(order: &Order) -> Vec<u8> {
    let mut message = capnp::message::Builder::new_default();
    let mut root = message.init_root::<order_capnp::order::Builder<'_>>();
    root.set_id(order.id);
    root.set_customer(order.customer.as_str());
    root.set_created_at_ms(order.created_at_ms);
    let mut items = root.reborrow().init_items(order.items.len() as u32);
    for (i, item) in order.items.iter().enumerate() {
        let mut b = items.reborrow().get(i as u32);
        b.set_sku(item.sku.as_str());
        b.set_quantity(item.quantity);
        b.set_price_cents(item.price_cents);
    }
    let mut tags = root.reborrow().init_tags(order.tags.len() as u32);
    for (i, tag) in order.tags.iter().enumerate() {
        tags.set(i as u32, tag.as_str());
    }
    root.set_note(order.note.as_str());
    capnp::serialize::write_message_to_words(&message)
}

/// Runs `f` on the root of a message read in place. `read_message_from_flat_slice_no_alloc`
/// only records where the segments are; nothing is copied or allocated. The traversal limit
/// (in the default `ReaderOptions`) bounds the work a malicious message can cause.
fn with_capnp_root<R>(
    buf: &[u8],
    f: impl FnOnce(order_capnp::order::Reader<'_>) -> Result<R, SerError>,
) -> Result<R, SerError> {
    let mut slice = buf;
    let message = capnp::serialize::read_message_from_flat_slice_no_alloc(
        &mut slice,
        capnp::message::ReaderOptions::new(),
    )?;
    f(message.get_root::<order_capnp::order::Reader<'_>>()?)
}

pub fn capnp_decode(buf: &[u8]) -> Result<Order, SerError> {
    with_capnp_root(buf, |o| {
        let mut items = Vec::new();
        for item in o.get_items()? {
            items.push(LineItem {
                sku: item.get_sku()?.to_str()?.to_owned(),
                quantity: item.get_quantity(),
                price_cents: item.get_price_cents(),
            });
        }
        let mut tags = Vec::new();
        for tag in o.get_tags()? {
            tags.push(tag?.to_str()?.to_owned());
        }
        Ok(Order {
            id: o.get_id(),
            customer: o.get_customer()?.to_str()?.to_owned(),
            created_at_ms: o.get_created_at_ms(),
            items,
            tags,
            note: o.get_note()?.to_str()?.to_owned(),
        })
    })
}

pub fn capnp_peek(buf: &[u8]) -> Result<Peek, SerError> {
    with_capnp_root(buf, |o| {
        let mut total = 0u64;
        for item in o.get_items()? {
            total = total
                .wrapping_add(u64::from(item.get_quantity()).wrapping_mul(item.get_price_cents()));
        }
        // to_str checks UTF-8 and returns a &str borrowing the message, i.e. `buf`.
        Ok(peek_of(o.get_customer()?.to_str()?, total))
    })
}

// ---------------------------------------------------------------------------------------------
// FlatBuffers: tables with vtables, verified once, then plain loads
// ---------------------------------------------------------------------------------------------

pub fn fb_encode(order: &Order) -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::with_capacity(1024);
    // FlatBuffers are built back to front: children (strings, items) before their parent.
    let items: Vec<_> = order
        .items
        .iter()
        .map(|item| {
            let sku = fbb.create_string(&item.sku);
            fb::LineItem::create(
                &mut fbb,
                &fb::LineItemArgs {
                    sku: Some(sku),
                    quantity: item.quantity,
                    price_cents: item.price_cents,
                },
            )
        })
        .collect();
    let items = fbb.create_vector(&items);
    let tags: Vec<_> = order.tags.iter().map(|t| fbb.create_string(t)).collect();
    let tags = fbb.create_vector(&tags);
    let customer = fbb.create_string(&order.customer);
    let note = fbb.create_string(&order.note);
    let root = fb::Order::create(
        &mut fbb,
        &fb::OrderArgs {
            id: order.id,
            customer: Some(customer),
            created_at_ms: order.created_at_ms,
            items: Some(items),
            tags: Some(tags),
            note: Some(note),
        },
    );
    fb::finish_order_buffer(&mut fbb, root);
    fbb.finished_data().to_vec()
}

/// The verified root: `root_as_order` checks every offset once, so the accessors after it
/// can read without further checks (and cannot go out of bounds).
fn fb_root(buf: &[u8]) -> Result<fb::Order<'_>, SerError> {
    fb::root_as_order(buf).map_err(SerError::FlatBuffers)
}

pub fn fb_decode(buf: &[u8]) -> Result<Order, SerError> {
    let o = fb_root(buf)?;
    Ok(Order {
        id: o.id(),
        customer: o.customer().unwrap_or_default().to_owned(),
        created_at_ms: o.created_at_ms(),
        items: o
            .items()
            .map(|items| {
                items
                    .iter()
                    .map(|item| LineItem {
                        sku: item.sku().unwrap_or_default().to_owned(),
                        quantity: item.quantity(),
                        price_cents: item.price_cents(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tags: o
            .tags()
            .map(|t| t.iter().map(str::to_owned).collect())
            .unwrap_or_default(),
        note: o.note().unwrap_or_default().to_owned(),
    })
}

/// The customer as a `&str` with the lifetime of `buf`: FlatBuffers' accessors borrow the input.
pub fn fb_customer(buf: &[u8]) -> Result<&str, SerError> {
    Ok(fb_root(buf)?.customer().unwrap_or_default())
}

pub fn fb_peek(buf: &[u8]) -> Result<Peek, SerError> {
    let o = fb_root(buf)?;
    let total = o.items().map_or(0u64, |items| {
        items.iter().fold(0u64, |sum, item| {
            sum.wrapping_add(u64::from(item.quantity()).wrapping_mul(item.price_cents()))
        })
    });
    Ok(peek_of(o.customer().unwrap_or_default(), total))
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
