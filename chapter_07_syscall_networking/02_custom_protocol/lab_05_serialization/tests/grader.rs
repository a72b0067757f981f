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

fn range_of(buf: &[u8]) -> Range<usize> {
    let start = buf.as_ptr() as usize;
    start..start + buf.len()
}

// Requirement 1: round trips.
#[test]
fn protobuf_round_trips_random_orders() {
    for _ in 0..300 {
        let order = random_order();
        assert_eq!(
            lab::proto_decode(&lab::proto_encode(&order)).expect("decode"),
            order
        );
    }
}

#[test]
fn capnp_round_trips_random_orders() {
    for _ in 0..300 {
        let order = random_order();
        assert_eq!(
            lab::capnp_decode(&lab::capnp_encode(&order)).expect("decode"),
            order
        );
    }
}

#[test]
fn flatbuffers_round_trips_random_orders() {
    for _ in 0..300 {
        let order = random_order();
        assert_eq!(
            lab::fb_decode(&lab::fb_encode(&order)).expect("decode"),
            order
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
    assert_eq!(
        lab::proto_encode(&order),
        vec![0x08, id as u8, 0x12, 2, b'a', b'l']
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
    assert_eq!(
        lab::proto_encode(&with_item),
        vec![0x22, 5, 0x0a, 1, b'x', 0x10, 3]
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
    .expect("a Cap'n Proto message");
    let root = message
        .get_root::<lab::order_capnp::order::Reader<'_>>()
        .unwrap();
    assert_eq!(root.get_id(), order.id);
    assert_eq!(
        root.get_customer().unwrap().to_str().unwrap(),
        order.customer
    );
    assert_eq!(root.get_items().unwrap().len() as usize, order.items.len());
    assert_eq!(root.get_tags().unwrap().len() as usize, order.tags.len());

    let bytes = lab::fb_encode(&order);
    let root = lab::order_generated::shop::root_as_order(&bytes).expect("a verified FlatBuffer");
    assert_eq!(root.id(), order.id);
    assert_eq!(root.created_at_ms(), order.created_at_ms);
    assert_eq!(root.note().unwrap_or_default(), order.note);
    assert_eq!(root.items().map_or(0, |v| v.len()), order.items.len());
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
            let p = peek(&bytes).expect("peek");
            assert_eq!(p.total_cents, order.total_cents(), "{name}: total");
            assert_eq!(
                p.customer_len,
                order.customer.len(),
                "{name}: customer length"
            );
            assert!(
                range_of(&bytes).contains(&p.customer_addr),
                "{name}: the customer must be read in place, inside the input buffer"
            );
            let offset = p.customer_addr - bytes.as_ptr() as usize;
            assert_eq!(
                &bytes[offset..offset + p.customer_len],
                order.customer.as_bytes()
            );
        }
        let bytes = lab::fb_encode(&order);
        let customer = lab::fb_customer(&bytes).unwrap();
        assert_eq!(customer, order.customer);
        assert!(range_of(&bytes).contains(&(customer.as_ptr() as usize)));
    }
}

#[test]
fn protobuf_peek_must_decode_into_owned_strings() {
    let mut order = random_order();
    order.customer.push_str("-customer");
    let bytes = lab::proto_encode(&order);
    let p = lab::proto_peek(&bytes).expect("peek");
    assert_eq!(p.total_cents, order.total_cents());
    assert_eq!(p.customer_len, order.customer.len());
    assert!(
        !range_of(&bytes).contains(&p.customer_addr),
        "prost decodes into an owned String"
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
    assert_eq!(
        smaller, 100,
        "varints and no padding: protobuf is smaller than both zero-copy formats"
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
        "garbage must be reported as errors ({errors})"
    );
}
