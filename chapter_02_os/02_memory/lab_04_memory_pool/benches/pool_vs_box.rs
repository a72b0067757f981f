//! The lab's pool against `Box::new` (glibc malloc): `cargo bench -p ch2_memory_pool --features solution`.
//!
//! Two patterns: an alloc immediately followed by its free (the allocator's fast path, over
//! and over), and 1000 live blocks freed in a random order before the next round.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;

labkit::lab_mod!(lab);
use lab::Pool;

/// A 64-byte value, like a small request or an order book entry.
#[derive(Clone, Copy)]
struct Order {
    _fields: [u64; 8],
}

const RUNS: usize = 7;

/// Runs both contenders once per round, `RUNS` rounds after a warm-up round, and returns the
/// median time per operation of each (`ops` operations per run). Taking turns spreads any change
/// in the machine's load over both.
fn compare(ops: usize, pool: &mut dyn FnMut(), boxed: &mut dyn FnMut()) -> (f64, f64) {
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..=RUNS {
        for (side, times) in samples.iter_mut().enumerate() {
            let start = Instant::now();
            if side == 0 {
                pool()
            } else {
                boxed()
            }
            if round > 0 {
                times.push(start.elapsed());
            }
        }
    }
    let [pool, boxed] = samples.map(|mut times: Vec<Duration>| {
        times.sort_unstable();
        times[RUNS / 2].as_nanos() as f64 / ops as f64
    });
    (pool, boxed)
}

fn row(what: &str, (pool, boxed): (f64, f64)) {
    println!("{what:<46} {pool:>9.2} {boxed:>9.2} {:>8.1}x", boxed / pool);
}

fn main() {
    let order = Order { _fields: [7; 8] };
    println!("ns per alloc+free pair, median of {RUNS} runs, contenders taking turns\n");
    println!(
        "{:<46} {:>9} {:>9} {:>9}",
        "pattern", "pool", "Box::new", "speedup"
    );

    const PAIRS: usize = 2_000_000;
    let pool = Pool::with_capacity(1024).expect("pool");
    let times = compare(
        PAIRS,
        &mut || {
            for _ in 0..PAIRS {
                let b = pool.alloc(black_box(order)).expect("a free block");
                black_box(&*b);
            }
        },
        &mut || {
            for _ in 0..PAIRS {
                let b = Box::new(black_box(order));
                black_box(&*b);
            }
        },
    );
    row("alloc then free, 2M times", times);

    const LIVE: usize = 1000;
    const ROUNDS: usize = 500;
    let mut order_of_free: Vec<usize> = (0..LIVE).collect();
    order_of_free.shuffle(&mut rand::rng());
    let pool = Pool::with_capacity(LIVE).expect("pool");
    let times = compare(
        LIVE * ROUNDS,
        &mut || {
            for _ in 0..ROUNDS {
                let mut live: Vec<Option<_>> =
                    (0..LIVE).map(|_| pool.alloc(black_box(order))).collect();
                for &i in &order_of_free {
                    black_box(live[i].take());
                }
            }
        },
        &mut || {
            for _ in 0..ROUNDS {
                let mut live: Vec<Option<_>> = (0..LIVE)
                    .map(|_| Some(Box::new(black_box(order))))
                    .collect();
                for &i in &order_of_free {
                    black_box(live[i].take());
                }
            }
        },
    );
    row("1000 live, freed in random order, 500 rounds", times);
}
