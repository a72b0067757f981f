//! Grader for Protobuf vs Cap'n Proto vs FlatBuffers: white-box. Round trips on random orders,
//! bytes checked with readers that do not go through the lab's code (hand-computed protobuf
//! bytes, the generated Cap'n Proto and FlatBuffers readers), zero-copy proven by addresses.

use std::ops::Range;

use rand::RngExt;

labkit::lab_mod!(lab);
// The generated Cap'n Proto code names its own module `crate::order_capnp`; in this test crate
// the module lives at `crate::lab::order_capnp`, so make the short path valid here too.
#[allow(unused_imports)]
use lab::order_capnp;
use lab::{LineItem, Order};

fn random_string(max: usize) -> String {
    let mut rng = rand::rng();
    let len = rng.random_range(0..=max);
    // Mostly ASCII, some multi-byte characters: every format must keep UTF-8 intact.
    (0..len)
        .map(|_| {
            if rng.random_range(0..10) == 0 {
                'é'
            } else {
                char::from(rng.random_range(b' '..=b'~'))
            }
        })
        .collect()
}

fn random_order() -> Order {
    let mut rng = rand::rng();
    Order {
        id: rng.random(),
        customer: random_string(40),
        created_at_ms: rng.random(),
        items: (0..rng.random_range(0..30))
            .map(|_| LineItem {
                sku: random_string(16),
                quantity: rng.random(),
                price_cents: rng.random(),
            })
            .collect(),
        tags: (0..rng.random_range(0..6))
            .map(|_| random_string(12))
            .collect(),
        note: random_string(120),
    }
}

/// What a decoder gave back, in one line: the error, or the first field that differs.
fn describe(got: &Result<Order, lab::SerError>, want: &Order) -> String {
    let got = match got {
        Err(e) => return format!("the error {e}"),
        Ok(got) => got,
    };
    let field = if got.id != want.id {
        "id"
    } else if got.customer != want.customer {
        "customer"
    } else if got.created_at_ms != want.created_at_ms {
        "created_at_ms"
    } else if got.items != want.items {
        "items"
    } else if got.tags != want.tags {
        "tags"
    } else if got.note != want.note {
        "note"
    } else {
        return "the same order".into();
    };
    format!("an order whose {field} differs")
}

fn range_of(buf: &[u8]) -> Range<usize> {
    let start = buf.as_ptr() as usize;
    start..start + buf.len()
}

// Requirement 1: round trips.
#[test]
fn protobuf_round_trips_random_orders() {
    for _ in 0..300 {
        let order = random_order();
        let bytes = lab::proto_encode(&order);
        let back = lab::proto_decode(&bytes);
        assert!(
            back.as_ref().is_ok_and(|back| *back == order),
            "requirement 1: protobuf: an order of {} items encoded to {} bytes came back as {}; \
             wanted the same order",
            order.items.len(),
            bytes.len(),
            describe(&back, &order)
        );
    }
}

#[test]
fn capnp_round_trips_random_orders() {
    for _ in 0..300 {
        let order = random_order();
        let bytes = lab::capnp_encode(&order);
        let back = lab::capnp_decode(&bytes);
        assert!(
            back.as_ref().is_ok_and(|back| *back == order),
            "requirement 1: capnp: an order of {} items encoded to {} bytes came back as {}; \
             wanted the same order",
            order.items.len(),
            bytes.len(),
            describe(&back, &order)
        );
    }
}

#[test]
fn flatbuffers_round_trips_random_orders() {
    for _ in 0..300 {
        let order = random_order();
        let bytes = lab::fb_encode(&order);
        let back = lab::fb_decode(&bytes);
        assert!(
            back.as_ref().is_ok_and(|back| *back == order),
            "requirement 1: flatbuffers: an order of {} items encoded to {} bytes came back as {}; \
             wanted the same order",
            order.items.len(),
            bytes.len(),
            describe(&back, &order)
        );
    }
}

// Requirement 2: the bytes follow each schema.
#[test]
fn protobuf_bytes_follow_the_wire_format() {
    let id = rand::rng().random_range(1..128u64);
    let order = Order {
        id,
        customer: "al".into(),
        ..Order::default()
    };
    // field 1 varint (tag 0x08), field 2 length-delimited (tag 0x12); defaults are not written.
    let got = lab::proto_encode(&order);
    let want = vec![0x08, id as u8, 0x12, 2, b'a', b'l'];
    assert!(
        got == want,
        "requirement 2: protobuf of {{ id: {id}, customer: \"al\" }} is {got:02x?}; wanted \
         {want:02x?}"
    );
    let with_item = Order {
        items: vec![LineItem {
            sku: "x".into(),
            quantity: 3,
            price_cents: 0,
        }],
        ..Order::default()
    };
    // field 4, a nested message of 5 bytes: sku "x" (0a 01 78), quantity 3 (10 03).
    let got = lab::proto_encode(&with_item);
    let want = vec![0x22, 5, 0x0a, 1, b'x', 0x10, 3];
    assert!(
        got == want,
        "requirement 2: protobuf of one item {{ sku: \"x\", quantity: 3 }} is {got:02x?}; \
         wanted {want:02x?}"
    );
}

#[test]
fn capnp_and_flatbuffers_bytes_follow_their_schemas() {
    let order = random_order();
    let bytes = lab::capnp_encode(&order);
    let mut slice = &bytes[..];
    let message = capnp::serialize::read_message_from_flat_slice(
        &mut slice,
        capnp::message::ReaderOptions::new(),
    )
    .expect("requirement 2: capnp_encode's bytes are not a Cap'n Proto message");
    let root = message
        .get_root::<lab::order_capnp::order::Reader<'_>>()
        .expect("requirement 2: capnp_encode's message has no Order root");
    let read = (
        root.get_id(),
        root.get_customer().ok().and_then(|c| c.to_str().ok()),
        root.get_items().map_or(0, |v| v.len() as usize),
        root.get_tags().map_or(0, |v| v.len() as usize),
    );
    let want = (
        order.id,
        Some(order.customer.as_str()),
        order.items.len(),
        order.tags.len(),
    );
    assert!(
        read == want,
        "requirement 2: the generated Cap'n Proto reader reads (id, customer, items, tags) = \
         {read:?} from capnp_encode's bytes; wanted {want:?}"
    );

    let bytes = lab::fb_encode(&order);
    let root = lab::order_generated::shop::root_as_order(&bytes)
        .expect("requirement 2: fb_encode's bytes fail the FlatBuffers verifier");
    let read = (
        root.id(),
        root.created_at_ms(),
        root.note().unwrap_or_default(),
        root.items().map_or(0, |v| v.len()),
    );
    let want = (
        order.id,
        order.created_at_ms,
        order.note.as_str(),
        order.items.len(),
    );
    assert!(
        read == want,
        "requirement 2: the generated FlatBuffers reader reads (id, created_at_ms, note, items) \
         = {read:?} from fb_encode's bytes; wanted {want:?}"
    );
}

// Requirement 3: zero-copy reads.
#[test]
fn capnp_and_flatbuffers_read_strings_in_place() {
    for _ in 0..50 {
        let mut order = random_order();
        order.customer.push_str("-customer");
        for (name, bytes, peek) in [
            (
                "capnp",
                lab::capnp_encode(&order),
                lab::capnp_peek as fn(&[u8]) -> _,
            ),
            ("flatbuffers", lab::fb_encode(&order), lab::fb_peek),
        ] {
            let p = peek(&bytes).unwrap_or_else(|e| {
                panic!("requirement 3: {name}: peek of a valid encoding failed: {e}")
            });
            let want = (order.total_cents(), order.customer.len());
            assert!(
                (p.total_cents, p.customer_len) == want,
                "requirement 3: {name}: peek read (total, customer length) = {:?}; wanted {want:?}",
                (p.total_cents, p.customer_len)
            );
            let buffer = range_of(&bytes);
            assert!(
                buffer.contains(&p.customer_addr),
                "requirement 3: {name}: the customer peek returned is at {:#x}, outside the \
                 input buffer {:#x}..{:#x}; wanted it read in place (zero copy), not copied",
                p.customer_addr,
                buffer.start,
                buffer.end
            );
            let offset = p.customer_addr - bytes.as_ptr() as usize;
            let in_place = bytes.get(offset..offset + p.customer_len);
            assert!(
                in_place == Some(order.customer.as_bytes()),
                "requirement 3: {name}: the bytes at the customer's address are not the customer"
            );
        }
        let bytes = lab::fb_encode(&order);
        let customer = lab::fb_customer(&bytes)
            .unwrap_or_else(|e| panic!("requirement 3: fb_customer of a valid buffer failed: {e}"));
        assert!(
            customer == order.customer && range_of(&bytes).contains(&(customer.as_ptr() as usize)),
            "requirement 3: fb_customer returned {customer:?} at {:p}; wanted {:?} inside the \
             input buffer",
            customer.as_ptr(),
            order.customer
        );
    }
}

#[test]
fn protobuf_peek_must_decode_into_owned_strings() {
    let mut order = random_order();
    order.customer.push_str("-customer");
    let bytes = lab::proto_encode(&order);
    let p = lab::proto_peek(&bytes)
        .unwrap_or_else(|e| panic!("requirement 3: proto_peek of a valid encoding failed: {e}"));
    let want = (order.total_cents(), order.customer.len());
    assert!(
        (p.total_cents, p.customer_len) == want,
        "requirement 3: proto_peek read (total, customer length) = {:?}; wanted {want:?}",
        (p.total_cents, p.customer_len)
    );
    assert!(
        !range_of(&bytes).contains(&p.customer_addr),
        "requirement 3: proto_peek's customer lies inside the input buffer; wanted it in the \
         decoded Order (prost decodes into an owned String)"
    );
}

// Requirement 4: sizes.
#[test]
fn protobuf_is_the_most_compact_of_the_three() {
    let mut smaller = 0;
    for _ in 0..100 {
        let mut order = random_order();
        order.items.push(LineItem {
            sku: "A".into(),
            quantity: 1,
            price_cents: 100,
        });
        let (p, c, f) = (
            lab::proto_encode(&order).len(),
            lab::capnp_encode(&order).len(),
            lab::fb_encode(&order).len(),
        );
        smaller += usize::from(p < c && p < f);
    }
    assert!(
        smaller == 100,
        "requirement 4: protobuf was smaller than both zero-copy formats for {smaller} of 100 \
         random orders; wanted all 100 (varints, no padding)"
    );
}

// Requirement 5: untrusted input.
#[test]
fn garbage_is_an_error_never_a_panic() {
    let mut rng = rand::rng();
    let valid = [
        lab::proto_encode(&random_order()),
        lab::capnp_encode(&random_order()),
        lab::fb_encode(&random_order()),
    ];
    let mut errors = 0;
    for i in 0..10_000 {
        let mut bytes = if i % 2 == 0 {
            (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect::<Vec<u8>>()
        } else {
            valid[i % 3].clone()
        };
        if !bytes.is_empty() {
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..bytes.len());
                bytes[at] = rng.random();
            }
        }
        errors += usize::from(lab::proto_decode(&bytes).is_err());
        errors += usize::from(lab::capnp_decode(&bytes).is_err());
        errors += usize::from(lab::fb_decode(&bytes).is_err());
        let _ = (
            lab::proto_peek(&bytes),
            lab::capnp_peek(&bytes),
            lab::fb_peek(&bytes),
        );
    }
    assert!(
        errors > 1000,
        "requirement 5: over 10,000 garbage inputs, the three decoders reported {errors} errors; \
         wanted most of them rejected"
    );
}

/// One format under test: its name, encoder, decoder and peek.
type Format = (
    &'static str,
    fn(&Order) -> Vec<u8>,
    fn(&[u8]) -> Result<Order, lab::SerError>,
    fn(&[u8]) -> Result<lab::Peek, lab::SerError>,
);

const FORMATS: [Format; 3] = [
    (
        "protobuf",
        lab::proto_encode,
        lab::proto_decode,
        lab::proto_peek,
    ),
    (
        "capnp",
        lab::capnp_encode,
        lab::capnp_decode,
        lab::capnp_peek,
    ),
    ("flatbuffers", lab::fb_encode, lab::fb_decode, lab::fb_peek),
];

/// An order whose customer is ASCII and easy to find in any encoding.
fn order_with_findable_customer() -> Order {
    let mut order = random_order();
    order.customer = format!("customer-{:016x}", rand::rng().random::<u64>());
    order
}

/// Where `needle` starts in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the customer's bytes appear in every encoding")
}

#[test]
fn truncated_messages_are_errors() {
    let mut rng = rand::rng();
    for _ in 0..100 {
        let order = order_with_findable_customer();
        for (name, encode, decode, peek) in FORMATS {
            let bytes = encode(&order);
            // Cap'n Proto (segment sizes up front) notices any cut. Protobuf cannot notice a cut
            // between two fields, only one inside a field; FlatBuffers' verifier checks that
            // what offsets point at lies inside the buffer, so a cut in the alignment padding
            // at the end goes unseen. Cut those two inside the customer string.
            let cut = if name == "protobuf" || name == "flatbuffers" {
                find(&bytes, order.customer.as_bytes()) + rng.random_range(1..order.customer.len())
            } else {
                rng.random_range(0..bytes.len())
            };
            let short = &bytes[..cut];
            let decoded = decode(short);
            assert!(
                decoded.is_err(),
                "requirement 5: {name}: the first {cut} of {} bytes decoded to {}; wanted an \
                 error (a truncated message)",
                bytes.len(),
                describe(&decoded, &order)
            );
            assert!(
                peek(short).is_err(),
                "requirement 5: {name}: peek of the first {cut} of {} bytes succeeded; wanted an \
                 error (a truncated message)",
                bytes.len()
            );
        }
    }
}

#[test]
fn invalid_utf8_in_a_string_is_an_error() {
    let mut rng = rand::rng();
    for _ in 0..100 {
        let order = order_with_findable_customer();
        for (name, encode, decode, peek) in FORMATS {
            let mut bytes = encode(&order);
            let at =
                find(&bytes, order.customer.as_bytes()) + rng.random_range(0..order.customer.len());
            bytes[at] = 0xff; // never valid in UTF-8
            let decoded = decode(&bytes);
            assert!(
                decoded.is_err(),
                "requirement 5: {name}: a customer with byte 0xff in it decoded to {}; wanted an \
                 error (strings are UTF-8: check, do not replace)",
                describe(&decoded, &order)
            );
            assert!(
                peek(&bytes).is_err(),
                "requirement 5: {name}: peek of a customer with byte 0xff in it succeeded; wanted \
                 an error"
            );
        }
    }
}
