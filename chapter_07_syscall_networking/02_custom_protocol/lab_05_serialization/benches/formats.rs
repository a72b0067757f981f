//! Encode, decode, peek (two fields without a full decode) and size for the three formats on
//! one order of 20 line items. `cargo bench -p ch7_serialization --features solution`.
//! Prints the median of 7 runs per cell, in nanoseconds per operation.

use std::hint::black_box;
use std::time::Instant;

labkit::lab_mod!(lab);
// The generated Cap'n Proto code refers to `crate::order_capnp` (see tests/test_serialization.rs).
#[allow(unused_imports)]
use lab::order_capnp;

const RUNS: usize = 7;
const ITERS: u32 = 20_000;

/// Median time of one call of `f`, in nanoseconds.
fn median_ns(mut f: impl FnMut()) -> f64 {
    for _ in 0..ITERS / 10 {
        f(); // warm up caches and the allocator
    }
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ITERS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ITERS)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[RUNS / 2]
}

type Encode = fn(&lab::Order) -> Vec<u8>;
type Decode = fn(&[u8]) -> Result<lab::Order, lab::SerError>;
type Peek = fn(&[u8]) -> Result<lab::Peek, lab::SerError>;

fn main() {
    let order = lab::sample_order(20);
    let formats: [(&str, Encode, Decode, Peek); 3] = [
        (
            "protobuf (prost)",
            lab::proto_encode,
            lab::proto_decode,
            lab::proto_peek,
        ),
        (
            "Cap'n Proto",
            lab::capnp_encode,
            lab::capnp_decode,
            lab::capnp_peek,
        ),
        ("FlatBuffers", lab::fb_encode, lab::fb_decode, lab::fb_peek),
    ];
    println!("one order, 20 line items; median of {RUNS} runs of {ITERS} operations");
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>8}",
        "format", "encode ns", "decode ns", "peek ns", "bytes"
    );
    for (name, encode, decode, peek) in formats {
        let bytes = encode(&order);
        assert_eq!(decode(&bytes).expect("decode"), order, "{name} round trip");
        let enc = median_ns(|| {
            black_box(encode(black_box(&order)));
        });
        let dec = median_ns(|| {
            black_box(decode(black_box(&bytes)).unwrap());
        });
        let pk = median_ns(|| {
            black_box(peek(black_box(&bytes)).unwrap());
        });
        println!(
            "{name:<24} {enc:>10.0} {dec:>10.0} {pk:>10.0} {:>8}",
            bytes.len()
        );
    }

    // FlatBuffers' peek above includes the verifier, which walks the whole buffer once. On
    // trusted bytes (your own file, already verified) you may skip it: this row shows its price.
    let bytes = lab::fb_encode(&order);
    let unchecked = median_ns(|| {
        // SAFETY: `bytes` was produced by fb_encode just above, so it is a valid Order buffer.
        let root =
            unsafe { lab::order_generated::shop::root_as_order_unchecked(black_box(&bytes)) };
        let total = root.items().map_or(0u64, |items| {
            items
                .iter()
                .map(|i| u64::from(i.quantity()).wrapping_mul(i.price_cents()))
                .sum()
        });
        black_box((root.customer(), total));
    });
    println!(
        "{:<24} {:>10} {:>10} {unchecked:>10.0} {:>8}",
        "FlatBuffers, no verify",
        "-",
        "-",
        bytes.len()
    );
}
