//! For the benchmarks: a reference hyper server with the same routes, and a `wrk` driver.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;

use super::*;

/// The reference server of the benchmarks: hyper's HTTP/1.1 server with the same three routes
/// (`/`, `/static/<file>`, `/echo`). It skips what a fair grader would demand (traversal
/// checks beyond `..`, limits), so it is, if anything, a little fast.
pub async fn serve_hyper_baseline(listener: tokio::net::TcpListener, root: PathBuf) {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let root = std::sync::Arc::new(root);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let root = root.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let root = root.clone();
                async move { Ok::<_, Infallible>(baseline_route(request, &root).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub(crate) async fn baseline_route(
    request: hyper::Request<hyper::body::Incoming>,
    root: &Path,
) -> hyper::Response<Full<Bytes>> {
    let respond = |status: u16, content_type: &str, body: Bytes| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(body))
            .expect("a valid response")
    };
    let path = request.uri().path().to_string();
    match (request.method().clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/") => respond(200, "text/plain", Bytes::from(GREETING)),
        (Method::POST, "/echo") => match request.into_body().collect().await {
            Ok(body) => respond(200, "application/octet-stream", body.to_bytes()),
            Err(_) => respond(400, "text/plain", Bytes::new()),
        },
        (Method::GET | Method::HEAD, _) if path.starts_with("/static/") && !path.contains("..") => {
            match tokio::fs::read(root.join(&path["/static/".len()..])).await {
                Ok(bytes) => respond(200, "application/octet-stream", bytes.into()),
                Err(_) => respond(404, "text/plain", Bytes::new()),
            }
        }
        _ => respond(404, "text/plain", Bytes::new()),
    }
}

/// Runs `wrk -t1 -c<connections> -d<seconds>s <url>` (keep-alive, one request at a time per
/// connection) and returns its requests per second. Panics with the fix when wrk is missing.
pub fn wrk(url: &str, connections: usize, seconds: u64) -> f64 {
    let wrk = crate::sys::require_tool("wrk");
    let output = Command::new(wrk)
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            url,
        ])
        .output()
        .expect("run wrk");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|rate| rate.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no rate:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}

/// The benchmark of labs 3.3 and 3.4: `server` (started by `start` on a listener, serving a
/// root directory) against [`serve_hyper_baseline`], both in this process on one two-thread
/// tokio runtime, driven one at a time by `wrk` (a separate process) over 32 keep-alive
/// connections. Prints a table of medians; returns the median ratios (server / hyper).
pub fn compare_with_hyper<F, Fut>(server: &str, start: F) -> Vec<f64>
where
    F: Fn(tokio::net::TcpListener, PathBuf) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    const RUNS: usize = 3;
    const SECONDS: u64 = 3;
    const CONNECTIONS: usize = 32;
    let dir = tempfile::tempdir().expect("temporary directory");
    let page: Vec<u8> = (0..4096).map(|i| b"abcdefghij\n"[i % 11]).collect();
    std::fs::write(dir.path().join("page.html"), &page).expect("write page.html");
    let root = dir.path().canonicalize().expect("canonical root");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let bind = || {
        runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind")
    };
    let (ours, theirs) = (bind(), bind());
    let (ours_addr, theirs_addr) = (ours.local_addr().unwrap(), theirs.local_addr().unwrap());
    runtime.spawn(start(ours, root.clone()));
    runtime.spawn(serve_hyper_baseline(theirs, root.clone()));

    println!(
        "keep-alive requests per second, wrk -t1 -c{CONNECTIONS} -d{SECONDS}s, median of {RUNS} runs"
    );
    println!(
        "{:<32} {:>14} {:>14} {:>7}",
        "request", server, "hyper", "ratio"
    );
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut ratios = Vec::new();
    for (label, path) in [
        ("GET / (13 bytes)", "/"),
        ("GET /static/page.html (4 KiB)", "/static/page.html"),
    ] {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            a.push(wrk(
                &format!("http://{ours_addr}{path}"),
                CONNECTIONS,
                SECONDS,
            ));
            b.push(wrk(
                &format!("http://{theirs_addr}{path}"),
                CONNECTIONS,
                SECONDS,
            ));
        }
        let (a, b) = (median(a), median(b));
        ratios.push(a / b);
        println!("{label:<32} {a:>14.0} {b:>14.0} {:>6.2}x", a / b);
    }
    ratios
}
