//! The lab's thread pool against rayon, and against one thread.
//!
//! Run with `cargo bench -p ch2_thread_pool --features solution` (or without the feature, to
//! measure your own `src/main.rs`). Each number is the median of several runs.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

labkit::lab_mod!(lab);
use lab::ThreadPool;

const RUNS: usize = 7;

/// Runs every contender once per round, `RUNS` rounds after a warm-up round, and returns each
/// one's median time. Taking turns spreads any change in the machine's load over all of them,
/// instead of penalizing whoever happened to run last. Every run must return `expected`.
fn compare(expected: u64, contenders: &mut [&mut dyn FnMut() -> u64]) -> Vec<Duration> {
    let mut samples = vec![Vec::with_capacity(RUNS); contenders.len()];
    for round in 0..=RUNS {
        for (f, times) in contenders.iter_mut().zip(&mut samples) {
            let start = Instant::now();
            let result = black_box(f());
            let elapsed = start.elapsed();
            assert_eq!(result, expected, "wrong result");
            if round > 0 {
                times.push(elapsed);
            }
        }
    }
    samples
        .into_iter()
        .map(|mut times| {
            times.sort_unstable();
            times[RUNS / 2]
        })
        .collect()
}

/// CPU work for one element (the splitmix64 finalizer): the compiler cannot turn a loop of it
/// into a formula, and it touches no memory.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn mix_range(lo: u64, hi: u64) -> u64 {
    (lo..hi).map(mix).fold(0, u64::wrapping_add)
}

fn slice_sum(values: &[u64]) -> u64 {
    values.iter().fold(0, |a, &b| a.wrapping_add(b))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn row(what: &str, times: &[Duration]) {
    let &[one_thread, pool, rayon] = times else {
        unreachable!("three contenders")
    };
    let speed = rayon.as_secs_f64() / pool.as_secs_f64();
    println!(
        "{what:<44} {:>10} {:>10} {:>10} {:>8.2}x",
        ms(one_thread),
        ms(pool),
        ms(rayon),
        speed
    );
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = ThreadPool::new(threads).expect("ThreadPool::new");
    println!(
        "{threads} pool workers, {} rayon threads; median of {RUNS} runs, contenders taking turns\n",
        rayon::current_num_threads()
    );
    println!(
        "{:<44} {:>10} {:>10} {:>10} {:>9}",
        "workload", "1 thread", "pool", "rayon", "pool/rayon"
    );

    // Coarse, CPU-bound: 64 jobs of 512k elements each.
    const ELEMENTS: u64 = 32 << 20;
    const JOBS: u64 = 64;
    let per_job = ELEMENTS / JOBS;
    let times = compare(
        mix_range(0, ELEMENTS),
        &mut [
            &mut || mix_range(0, ELEMENTS),
            &mut || {
                let handles: Vec<_> = (0..JOBS)
                    .map(|j| pool.execute(move || mix_range(j * per_job, (j + 1) * per_job)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold(0, u64::wrapping_add)
            },
            &mut || {
                (0..JOBS)
                    .into_par_iter()
                    .map(|j| mix_range(j * per_job, (j + 1) * per_job))
                    .reduce(|| 0, u64::wrapping_add)
            },
        ],
    );
    row("coarse CPU: 64 jobs x 512k mix()", &times);

    // Coarse, memory-bound: sum a 128 MiB vector in 64 chunks.
    let data: Arc<Vec<u64>> = Arc::new((0..16u64 << 20).map(mix).collect());
    let chunk = data.len() / JOBS as usize;
    let times = compare(
        slice_sum(&data),
        &mut [
            &mut || slice_sum(&data),
            &mut || {
                let handles: Vec<_> = (0..JOBS as usize)
                    .map(|j| {
                        let data = Arc::clone(&data);
                        pool.execute(move || slice_sum(&data[j * chunk..(j + 1) * chunk]))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold(0, u64::wrapping_add)
            },
            &mut || {
                data.par_chunks(chunk)
                    .map(slice_sum)
                    .reduce(|| 0, u64::wrapping_add)
            },
        ],
    );
    row("coarse memory: sum 128 MiB in 64 jobs", &times);

    // Many small jobs: 100k jobs of one mix() each. Rayon's side is `scope` + `spawn`, one task
    // per job as well; its `par_iter` (which batches) is in the last row.
    const SMALL: u64 = 100_000;
    let times = compare(
        mix_range(0, SMALL),
        &mut [
            &mut || mix_range(0, SMALL),
            &mut || {
                let handles: Vec<_> = (0..SMALL).map(|i| pool.execute(move || mix(i))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold(0, u64::wrapping_add)
            },
            &mut || {
                let sum = AtomicU64::new(0);
                rayon::scope(|s| {
                    for i in 0..SMALL {
                        let sum = &sum;
                        s.spawn(move |_| {
                            sum.fetch_add(mix(i), Ordering::Relaxed);
                        });
                    }
                });
                sum.into_inner()
            },
        ],
    );
    row("small: 100k jobs x 1 mix() (rayon: spawn)", &times);

    // The same work, batched: 100 jobs of 1000 elements, against rayon's par_iter.
    let times = compare(
        mix_range(0, SMALL),
        &mut [
            &mut || mix_range(0, SMALL),
            &mut || {
                let handles: Vec<_> = (0..100)
                    .map(|b| pool.execute(move || mix_range(b * 1000, (b + 1) * 1000)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .fold(0, u64::wrapping_add)
            },
            &mut || {
                (0..SMALL)
                    .into_par_iter()
                    .map(mix)
                    .reduce(|| 0, u64::wrapping_add)
            },
        ],
    );
    row("batched: 100 jobs x 1000 mix() (par_iter)", &times);
    println!("\npool/rayon > 1 means the pool is faster (rayon time / pool time).");
}
