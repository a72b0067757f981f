//! `cargo bench -p ch7_reactor_runtime --features solution`
//!
//! Echo throughput of the same `async fn` echo server on this lab's runtime and on tokio's
//! `current_thread` runtime (one thread each), at 1,000 and 10,000 concurrent connections.
//!
//! Both servers run in this process, each on a thread of its own, on a fresh listening socket
//! for every run; the load comes from `ch7_reactor_runtime-load-client` (the client of lab 6's
//! grader), a separate process. Each connection sends 64-byte messages one at a time and waits
//! for each echo; the client reports messages per second for the message phase, connection
//! setup excluded. Runs alternate between the two servers; the table shows medians of five.
#![allow(unused_imports)] // the lab's items this benchmark does not use

use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::thread;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use labkit::load_client::rate;

labkit::lab_mod!(lab);

const CLIENT: &str = env!("CARGO_BIN_EXE_ch7_reactor_runtime-load-client");
const RUNS: usize = 5;
const MESSAGE_LEN: usize = 64;
/// (connections, messages per connection): about 200,000 timed messages per run, 2 s or so:
/// shorter runs let a hiccup of the machine decide the median.
const LOADS: [(usize, usize); 2] = [(1_000, 201), (10_000, 21)];

/// This lab's runtime on a new thread, serving a new listener; returns its address.
fn start_lab() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let runtime = lab::Runtime::new().expect("lab runtime");
        runtime.block_on(async move {
            let listener =
                lab::AsyncTcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("lab listener");
            tx.send(listener.local_addr().unwrap()).unwrap();
            lab::serve(listener).await;
        });
    });
    rx.recv().expect("lab server address")
}

/// tokio's current_thread runtime on a new thread, the same echo server; returns its address.
fn start_tokio() -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(1024).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(echo(stream));
                }
            }
        });
    });
    rx.recv().expect("tokio server address")
}

/// The same loop as `lab::echo`, line for line, with the same 8 KiB buffer.
async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(_) => return, // a reset: nothing to answer
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() {
    let limit = ch7_support::raise_fd_limit().expect("raise the open-file limit");
    assert!(
        limit >= 10_100,
        "the benchmark needs 10,100 open files, the hard limit is {limit}"
    );
    println!(
        "echo throughput in messages/s, {MESSAGE_LEN}-byte messages, median of {RUNS} runs \
         (one load-client process)"
    );
    println!(
        "{:>11} | {:>16} | {:>20} | {:>18}",
        "connections", "lab runtime", "tokio current_thread", "lab / tokio"
    );
    for (connections, messages) in LOADS {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(rate(
                CLIENT,
                start_lab(),
                connections,
                messages,
                MESSAGE_LEN,
                "the lab runtime",
            ));
            theirs.push(rate(
                CLIENT,
                start_tokio(),
                connections,
                messages,
                MESSAGE_LEN,
                "tokio",
            ));
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "{connections:>11} | {ours:>16.0} | {theirs:>20.0} | {:>17.2}x",
            ours / theirs
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
