//! `cargo bench -p ch7_epoll_ffi --features solution`
//!
//! Echo throughput of this lab's server (one thread, edge-triggered epoll through our own FFI)
//! against tokio echo servers (the multi-threaded runtime of `#[tokio::main]`, and the
//! single-threaded `current_thread` one), at 1,000 and 10,000 concurrent connections.
//!
//! Every server runs in this process on a fresh listening socket for each run; the load comes
//! from the grader's client, `ch7_epoll_ffi-c10k-client`, a separate process (each side of
//! 10,000 connections holds 10,000 fds). Each connection sends 64-byte messages one at a time
//! and waits for each echo: the client reports messages per second for the message phase,
//! connection setup excluded. Runs of the servers alternate, and the table shows the median of
//! five runs each.

#![allow(unused_imports)] // the lab re-exports items this benchmark does not use

use std::net::SocketAddr;
use std::process::Command;
use std::thread;

use labkit::load_client::rate;

labkit::lab_mod!(lab);

const CLIENT: &str = env!("CARGO_BIN_EXE_ch7_epoll_ffi-c10k-client");
const RUNS: usize = 5;
const MESSAGE_LEN: usize = 64;
/// (connections, messages per connection): about 200,000 timed messages per run, 2 s or so:
/// shorter runs let a hiccup of the machine decide the median.
const LOADS: [(usize, usize); 2] = [(1_000, 201), (10_000, 21)];

#[derive(Debug, Clone, Copy)]
enum Server {
    Lab,
    TokioMultiThread,
    TokioCurrentThread,
}

const SERVERS: [Server; 3] = [
    Server::Lab,
    Server::TokioMultiThread,
    Server::TokioCurrentThread,
];

fn start_lab() -> SocketAddr {
    let listener = lab::bind("127.0.0.1:0".parse().unwrap()).expect("lab::bind");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        if let Err(e) = lab::serve(listener) {
            eprintln!("lab server: {e}");
        }
    });
    addr
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let limit = lab::raise_fd_limit().expect("raise the open-file limit");
    assert!(
        limit >= 10_100,
        "the benchmark needs 10,100 open files, the hard limit is {limit}"
    );
    let tokio = labkit::rivals::TokioEcho::new();
    println!(
        "echo throughput in messages/s, {MESSAGE_LEN}-byte messages, median of {RUNS} runs \
         (one load-client process)"
    );
    println!(
        "{:>11} | {:>15} | {:>18} | {:>20} | {:>13}",
        "connections",
        "lab epoll (1 t)",
        "tokio multi-thread",
        "tokio current_thread",
        "lab / tokio mt"
    );
    for (connections, messages) in LOADS {
        let mut rates: [Vec<f64>; 3] = Default::default();
        for _ in 0..RUNS {
            for (i, server) in SERVERS.into_iter().enumerate() {
                let addr = match server {
                    Server::Lab => start_lab(),
                    Server::TokioMultiThread => tokio.start(true),
                    Server::TokioCurrentThread => tokio.start(false),
                };
                rates[i].push(rate(
                    CLIENT,
                    addr,
                    connections,
                    messages,
                    MESSAGE_LEN,
                    &format!("{server:?}"),
                ));
            }
        }
        let [lab, multi, current] = rates.map(median);
        println!(
            "{connections:>11} | {lab:>15.0} | {multi:>18.0} | {current:>20.0} | {:>12.2}x",
            lab / multi
        );
    }
}
