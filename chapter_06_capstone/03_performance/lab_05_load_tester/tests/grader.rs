//! Grader for the load tester: it is pointed at a server inside the test whose delays and
//! statuses are known, and its JSON report is checked against what the server saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use labkit::lab_bin;
use rand::RngExt;
use serde_json::Value;

/// What the test server does with request number `i` (counted from 0, over all
/// connections): how long it sleeps and which status it answers.
type Behaviour = dyn Fn(u64) -> (Duration, u16) + Send + Sync;

/// A tiny HTTP/1.1 server with keep-alive, a thread per connection, and counters.
struct TestServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl TestServer {
    fn start(behaviour: impl Fn(u64) -> (Duration, u16) + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let (req, conns) = (requests.clone(), connections.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                conns.fetch_add(1, Ordering::SeqCst);
                let (req, behaviour) = (req.clone(), behaviour.clone());
                thread::spawn(move || serve(stream, &req, &*behaviour));
            }
        });
        TestServer {
            addr,
            requests,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

fn serve(stream: TcpStream, counter: &AtomicU64, behaviour: &Behaviour) {
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    loop {
        // Read one request head (the tester sends GETs without a body).
        let mut saw_request_line = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" && saw_request_line => break,
                Ok(_) => saw_request_line = true,
            }
        }
        let i = counter.fetch_add(1, Ordering::SeqCst);
        let (delay, status) = behaviour(i);
        thread::sleep(delay);
        let reply = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok");
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs the tester with `--json` and returns the parsed report.
fn run_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = labkit::run(lab_bin!(), &all);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr_str());
    let stdout = out.stdout_str();
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("--json must print one JSON report ({e}): {stdout:?}"))
}

fn latency(report: &Value, key: &str) -> f64 {
    report["latency_ms"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("latency_ms.{key} must be a number: {report}"))
}

fn count(report: &Value, path: &[&str]) -> u64 {
    let mut v = report;
    for key in path {
        v = &v[*key];
    }
    v.as_u64().unwrap_or(0)
}

// Requirement 1: -n sends exactly n requests, over kept-alive connections.
#[test]
fn sends_exactly_n_requests() {
    let server = TestServer::start(|_| (Duration::ZERO, 200));
    let mut rng = rand::rng();
    let (c, n) = (rng.random_range(1..6u64), rng.random_range(50..300u64));
    let report = run_json(&["-c", &c.to_string(), "-n", &n.to_string(), &server.url()]);
    assert_eq!(count(&report, &["requests"]), n, "{report}");
    assert_eq!(count(&report, &["ok"]), n, "{report}");
    assert_eq!(count(&report, &["status", "200"]), n, "{report}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        n,
        "requests the server saw"
    );
}

#[test]
fn keeps_connections_alive() {
    let server = TestServer::start(|_| (Duration::ZERO, 200));
    let c = rand::rng().random_range(1..5u64);
    let report = run_json(&["-c", &c.to_string(), "-n", "200", &server.url()]);
    assert_eq!(count(&report, &["ok"]), 200, "{report}");
    let opened = server.connections.load(Ordering::SeqCst);
    assert!(
        (1..=c).contains(&opened),
        "{opened} connections for -c {c}: keep-alive"
    );
}

// Requirement 2: percentiles from an HDR histogram match the injected delays.
#[test]
fn percentiles_match_the_injected_delays() {
    // Every 10th request takes 100 ms, the others 5 ms.
    let server = TestServer::start(|i| (if i % 10 == 9 { ms(100) } else { ms(5) }, 200));
    let report = run_json(&["-c", "2", "-n", "200", &server.url()]);
    assert_eq!(count(&report, &["ok"]), 200, "{report}");
    let (p50, p99, max) = (
        latency(&report, "p50"),
        latency(&report, "p99"),
        latency(&report, "max"),
    );
    assert!(
        (5.0..40.0).contains(&p50),
        "p50 {p50} ms for a 5 ms median: {report}"
    );
    assert!(
        (100.0..200.0).contains(&p99),
        "p99 {p99} ms for a 100 ms tail: {report}"
    );
    assert!((100.0..300.0).contains(&max), "max {max}: {report}");
    let p90 = latency(&report, "p90");
    let p999 = latency(&report, "p99_9");
    assert!(
        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{report}"
    );
}

// Requirement 3: constant-rate mode measures from the intended send time.
#[test]
fn rate_mode_charges_a_stall_to_every_request_it_delayed() {
    // Request 5 stalls the server for 1 s; everything else takes 1 ms.
    let stall = |i| (if i == 4 { ms(1000) } else { ms(1) }, 200);
    let closed = TestServer::start(stall);
    let report = run_json(&["-c", "1", "-n", "100", &closed.url()]);
    let p90_closed = latency(&report, "p90");
    assert!(latency(&report, "max") >= 1000.0, "{report}");
    assert!(
        p90_closed < 200.0,
        "closed loop hides the stall: p90 {p90_closed}"
    );

    // At 50 req/s, about 50 requests were due during the stall: they all waited.
    let open = TestServer::start(stall);
    let report = run_json(&["-c", "1", "-n", "100", "--rate", "50", &open.url()]);
    assert_eq!(count(&report, &["ok"]), 100, "{report}");
    let p90_open = latency(&report, "p90");
    assert!(
        p90_open >= 400.0,
        "latency must run from the intended send time: p90 {p90_open} ms: {report}"
    );
}

#[test]
fn rate_mode_paces_requests() {
    let server = TestServer::start(|_| (Duration::ZERO, 200));
    let rate = rand::rng().random_range(80..160u64);
    let report = run_json(&[
        "-c",
        "2",
        "-n",
        "100",
        "--rate",
        &rate.to_string(),
        &server.url(),
    ]);
    assert_eq!(count(&report, &["ok"]), 100, "{report}");
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    let schedule = 99.0 / rate as f64;
    assert!(
        elapsed >= schedule * 0.95,
        "100 requests at {rate}/s cannot finish in {elapsed} s"
    );
}

// Requirement 4: statuses and errors by kind.
#[test]
fn counts_statuses_separately_from_errors() {
    let server = TestServer::start(|i| (Duration::ZERO, if i % 4 == 3 { 503 } else { 200 }));
    let n = 4 * rand::rng().random_range(10..30u64);
    let report = run_json(&["-c", "1", "-n", &n.to_string(), &server.url()]);
    assert_eq!(count(&report, &["requests"]), n, "{report}");
    assert_eq!(count(&report, &["status", "200"]), n / 4 * 3, "{report}");
    assert_eq!(count(&report, &["status", "503"]), n / 4, "{report}");
    assert_eq!(count(&report, &["ok"]), n / 4 * 3, "{report}");
}

#[test]
fn connection_refused_is_reported_not_hung() {
    let addr = labkit::net::closed_port();
    let n = rand::rng().random_range(5..40u64);
    let report = run_json(&["-c", "2", "-n", &n.to_string(), &format!("http://{addr}/")]);
    assert_eq!(count(&report, &["errors", "connect"]), n, "{report}");
    assert_eq!(count(&report, &["requests"]), n, "{report}");
    assert_eq!(count(&report, &["ok"]), 0, "{report}");
    // Duration mode against nobody ends on time too.
    let report = run_json(&["-c", "2", "-d", "300ms", &format!("http://{addr}/")]);
    assert!(count(&report, &["errors", "connect"]) > 0, "{report}");
}

#[test]
fn slow_responses_are_timeout_errors() {
    let server = TestServer::start(|_| (ms(3000), 200));
    let report = run_json(&["-c", "2", "-n", "4", "--timeout", "200ms", &server.url()]);
    assert_eq!(count(&report, &["errors", "timeout"]), 4, "{report}");
    assert_eq!(count(&report, &["ok"]), 0, "{report}");
}

// Requirement 5: duration mode and the text report.
#[test]
fn duration_mode_runs_for_the_given_time() {
    let server = TestServer::start(|_| (ms(1), 200));
    let report = run_json(&["-c", "2", "-d", "700ms", &server.url()]);
    let elapsed = report["elapsed_s"].as_f64().unwrap();
    assert!(
        (0.69..10.0).contains(&elapsed),
        "elapsed {elapsed}: {report}"
    );
    let ok = count(&report, &["ok"]);
    assert!(ok > 10, "{report}");
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        count(&report, &["requests"])
    );
    let rps = report["rps"].as_f64().unwrap();
    assert!(
        (rps - ok as f64 / elapsed).abs() < 0.05 * rps + 1.0,
        "rps {rps}: {report}"
    );
}

#[test]
fn text_report_shows_percentiles_and_a_histogram() {
    let server = TestServer::start(|i| (ms(i % 7), 200));
    let out = labkit::run(lab_bin!(), &["-c", "2", "-n", "100", &server.url()]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr_str());
    let text = out.stdout_str();
    for needle in ["p50", "p90", "p99", "p99.9", "max", "req/s", "200: 100"] {
        assert!(
            text.contains(needle),
            "the report shows {needle:?}:\n{text}"
        );
    }
    let bars = text.lines().filter(|l| l.contains('#')).count();
    assert!(bars >= 3, "a text histogram with bars:\n{text}");
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    for args in [
        vec![],
        vec!["-c", "0", "http://127.0.0.1:1/"],
        vec!["-n", "10", "-d", "1s", "http://127.0.0.1:1/"],
        vec!["https://127.0.0.1:1/"],
        vec!["-d", "soon", "http://127.0.0.1:1/"],
        vec!["--rate", "-5", "http://127.0.0.1:1/"],
    ] {
        let out = labkit::run(lab_bin!(), &args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr_str());
        assert!(
            out.stderr_str().contains("usage"),
            "{args:?}: {}",
            out.stderr_str()
        );
    }
}
