//! The three ways against rayon's `par_iter().sum()` on 100 M elements.
//!
//! `cargo bench -p ch1_parallel_sum --features solution` (or `cargo lab bench 1.2`). Prints the
//! median time of each way over several rounds and its throughput relative to rayon.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rayon::prelude::*;

labkit::lab_mod!(lab);

const LEN: usize = 100_000_000;
const ROUNDS: usize = 11;

/// One way to sum the data, named for the table.
type Way<'a> = (&'static str, Box<dyn Fn() -> u128 + 'a>);

fn main() {
    let threads = thread::available_parallelism().map_or(1, |n| n.get());
    let data: Arc<[u64]> = (0..LEN).map(lab::value_at).collect();
    let expected = lab::sum_sequential(&data);

    let ways: Vec<Way<'_>> = vec![
        (
            "rayon par_iter",
            Box::new(|| data.par_iter().map(|&x| u128::from(x)).sum::<u128>()),
        ),
        (
            "scoped chunks",
            Box::new(|| lab::sum_scoped(&data, threads).unwrap()),
        ),
        (
            "arc + mutex",
            Box::new(|| lab::sum_mutex(&data, threads).unwrap()),
        ),
        (
            "mpsc channel",
            Box::new(|| lab::sum_channel(&data, threads).unwrap()),
        ),
        ("1 thread", Box::new(|| lab::sum_sequential(&data))),
    ];

    // Rounds of one run per way, so that a change of load on the machine affects every way
    // alike; the first round warms up (page faults, rayon's pool) and is not counted.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    for round in 0..=ROUNDS {
        for ((name, sum), times) in ways.iter().zip(&mut times) {
            let started = Instant::now();
            let result = sum();
            let elapsed = started.elapsed();
            assert_eq!(result, expected, "{name} gave a wrong sum");
            if round > 0 {
                times.push(elapsed);
            }
        }
    }
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect();

    println!(
        "sum of {LEN} u64 ({} MB), {threads} threads (rayon: {}), median of {ROUNDS} rounds",
        LEN * 8 / 1_000_000,
        rayon::current_num_threads()
    );
    println!(
        "{:<15} {:>9} {:>9} {:>10}",
        "way", "time", "GB/s", "vs rayon"
    );
    let rayon = medians[0].as_secs_f64();
    for ((name, _), median) in ways.iter().zip(&medians) {
        let seconds = median.as_secs_f64();
        println!(
            "{name:<15} {:>6.1} ms {:>9.2} {:>9.2}x",
            seconds * 1e3,
            (LEN * 8) as f64 / seconds / 1e9,
            rayon / seconds
        );
    }
}
