//! Requests per second the load tester generates, next to wrk, against the same small hyper
//! server on this machine. Run with `cargo bench -p ch6_load_tester --features solution`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

labkit::lab_mod!(lab);

const CONNECTIONS: usize = 8;
const SECONDS: u64 = 3;
const RUNS: usize = 3;

/// A hello-world server on one runtime thread, so the generators get the other core.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = service_fn(|_req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

fn ours(url: &str) -> f64 {
    let args = [
        "ch6_load_tester",
        "-c",
        &CONNECTIONS.to_string(),
        "-d",
        &format!("{SECONDS}s"),
        url,
    ];
    let config = lab::Config::try_parse_from(args).unwrap();
    lab::load_test(&config).rps
}

/// wrk's `Requests/sec:` line; `None` when wrk is not installed.
fn wrk(url: &str) -> Option<f64> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS}s"),
            url,
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let url = format!("http://{}/", start_server());
    let mut ours_runs = Vec::new();
    let mut wrk_runs = Vec::new();
    for _ in 0..RUNS {
        ours_runs.push(ours(&url));
        if let Some(r) = wrk(&url) {
            wrk_runs.push(r);
        }
    }
    let ours = median(ours_runs);
    println!("{CONNECTIONS} connections, {SECONDS} s per run, median of {RUNS} runs");
    println!("{:<16} {:>12}", "generator", "req/s");
    println!("{:<16} {:>12.0}", "ch6_load_tester", ours);
    if wrk_runs.is_empty() {
        println!("{:<16} {:>12}", "wrk", "not installed");
    } else {
        let wrk = median(wrk_runs);
        println!("{:<16} {:>12.0}", "wrk -t2", wrk);
        println!("ratio ours / wrk: {:.2}x (target >= 0.8x)", ours / wrk);
    }
}
