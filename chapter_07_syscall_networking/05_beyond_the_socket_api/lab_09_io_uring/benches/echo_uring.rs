//! `cargo bench -p ch7_io_uring --features solution`
//!
//! Echo throughput of this lab's server (one thread, io_uring) against lab 7.6's design (one
//! thread, edge-triggered epoll, a `recv` and a `send` system call per message, here on
//! `ch7_support`'s epoll wrapper) and tokio's echo server (the multi-threaded runtime of
//! `#[tokio::main]`, and `current_thread`), at 1,000 and 10,000 concurrent connections.
//!
//! Every server runs in this process on a fresh listening socket for each run; the load comes
//! from the grader's client, `ch7_io_uring-load-client`, a separate process (each side of
//! 10,000 connections holds 10,000 fds). Each connection sends 64-byte messages one at a time
//! and waits for each echo: the client reports messages per second for the message phase,
//! connection setup excluded. Runs of the servers alternate, and the table shows the median of
//! five runs each.

#![allow(unused_imports, dead_code)] // the lab's items this benchmark does not use

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

use ch7_support::{Epoll, Events, Interest, Token, Trigger};

use labkit::load_client::rate;

labkit::lab_mod!(lab);

const CLIENT: &str = env!("CARGO_BIN_EXE_ch7_io_uring-load-client");
const RUNS: usize = 5;
const MESSAGE_LEN: usize = 64;
/// (connections, messages per connection): about 200,000 timed messages per run, 2 s or so:
/// shorter runs let a hiccup of the machine decide the median.
const LOADS: [(usize, usize); 2] = [(1_000, 201), (10_000, 21)];

#[derive(Debug, Clone, Copy)]
enum Server {
    Uring,
    Epoll,
    TokioMultiThread,
    TokioCurrentThread,
}

const SERVERS: [Server; 4] = [
    Server::Uring,
    Server::Epoll,
    Server::TokioMultiThread,
    Server::TokioCurrentThread,
];

fn listener() -> TcpListener {
    ch7_support::net::listen("127.0.0.1:0".parse().unwrap(), 1024).expect("listen")
}

/// This lab's server on a thread of its own.
fn start_uring() -> SocketAddr {
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        if let Err(e) = lab::serve(listener) {
            eprintln!("io_uring server: {e}");
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// Lab 7.6's server, its design in short: every connection registered once, readable and
// writable, edge-triggered; on an event, flush what is pending, then read and echo until the
// socket says WouldBlock; one 64 KiB read buffer shared by every connection.

struct EpollConn {
    stream: TcpStream,
    pending: Vec<u8>,
}

fn start_epoll() -> SocketAddr {
    const LISTENER: Token = Token(usize::MAX);
    let listener = listener();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let epoll = Epoll::new().expect("epoll");
        epoll
            .add(&listener, LISTENER, Interest::READABLE, Trigger::Level)
            .expect("register the listener");
        let mut conns: Vec<Option<EpollConn>> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            epoll.wait(&mut events, None).expect("epoll_wait");
            for event in events.iter() {
                if event.token() == LISTENER {
                    while let Ok((stream, _)) = ch7_support::net::accept(&listener) {
                        let slot = free.pop().unwrap_or_else(|| {
                            conns.push(None);
                            conns.len() - 1
                        });
                        let both = Interest::READABLE | Interest::WRITABLE;
                        epoll
                            .add(&stream, Token(slot), both, Trigger::Edge)
                            .expect("register a connection");
                        conns[slot] = Some(EpollConn {
                            stream,
                            pending: Vec::new(),
                        });
                    }
                    continue;
                }
                let slot = event.token().0;
                let Some(conn) = conns[slot].as_mut() else {
                    continue;
                };
                if !drive(conn, &mut buf) {
                    conns[slot] = None;
                    free.push(slot);
                }
            }
        }
    });
    addr
}

/// Flushes, then reads and echoes until WouldBlock. Returns false when the connection is done.
fn drive(conn: &mut EpollConn, buf: &mut [u8]) -> bool {
    loop {
        while !conn.pending.is_empty() {
            match conn.stream.write(&conn.pending) {
                Ok(n) => drop(conn.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
        match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                let sent = match conn.stream.write(&buf[..n]) {
                    Ok(sent) => sent,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(_) => return false,
                };
                conn.pending.extend_from_slice(&buf[sent..n]);
                // A short read means the socket is drained: wait for the next edge.
                if n < buf.len() && conn.pending.is_empty() {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let limit = ch7_support::raise_fd_limit().expect("raise the open-file limit");
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
        "{:>11} | {:>15} | {:>15} | {:>12} | {:>14} | {:>12} | {:>14}",
        "connections",
        "lab io_uring",
        "7.6 epoll",
        "tokio mt",
        "tokio 1 thread",
        "uring/epoll",
        "uring/tokio 1t"
    );
    for (connections, messages) in LOADS {
        let mut rates: [Vec<f64>; 4] = Default::default();
        for _ in 0..RUNS {
            for (i, server) in SERVERS.into_iter().enumerate() {
                let addr = match server {
                    Server::Uring => start_uring(),
                    Server::Epoll => start_epoll(),
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
        let [uring, epoll, multi, current] = rates.map(median);
        println!(
            "{connections:>11} | {uring:>15.0} | {epoll:>15.0} | {multi:>12.0} | {current:>14.0} \
             | {:>11.2}x | {:>13.2}x",
            uring / epoll,
            uring / current
        );
    }
}
