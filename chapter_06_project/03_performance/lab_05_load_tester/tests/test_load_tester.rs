//! Grader for the load tester: it is pointed at a server inside the test whose delays and
//! statuses are known, and its JSON report is checked against what the server saw.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use labkit::lab_bin;
use rand::RngExt;
use serde_json::Value;

/// What the test server does with request number `i` (counted from 0, over all
/// connections) arriving on connection number `conn` (counted from 0, in accept order): how long
/// it sleeps and which status it answers.
type Behaviour = dyn Fn(u64, u64) -> (Duration, u16) + Send + Sync;

/// What the server itself counted.
#[derive(Default)]
struct Record {
    requests: AtomicU64,
    connections: AtomicU64,
    /// Requests being served right now, and the most at any one time.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    /// The delay injected into every request, in the order they were served.
    delays: Mutex<Vec<Duration>>,
}

/// A tiny HTTP/1.1 server with keep-alive, a thread per connection, and counters.
struct TestServer {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
    record: Arc<Record>,
}

impl TestServer {
    fn start(behaviour: impl Fn(u64) -> (Duration, u16) + Send + Sync + 'static) -> TestServer {
        TestServer::start_per_connection(move |i, _| behaviour(i))
    }

    fn start_per_connection(
        behaviour: impl Fn(u64, u64) -> (Duration, u16) + Send + Sync + 'static,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let record = Arc::new(Record::default());
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let (req, conns, rec) = (requests.clone(), connections.clone(), record.clone());
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let conn = conns.fetch_add(1, Ordering::SeqCst);
                rec.connections.fetch_add(1, Ordering::SeqCst);
                let (req, rec, behaviour) = (req.clone(), rec.clone(), behaviour.clone());
                thread::spawn(move || serve(stream, conn, &req, &rec, &*behaviour));
            }
        });
        TestServer {
            addr,
            requests,
            connections,
            record,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

fn serve(
    stream: TcpStream,
    conn: u64,
    counter: &AtomicU64,
    record: &Record,
    behaviour: &Behaviour,
) {
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
        record.requests.fetch_add(1, Ordering::SeqCst);
        let now = record.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        record.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let (delay, status) = behaviour(i, conn);
        record.delays.lock().unwrap().push(delay);
        thread::sleep(delay);
        // Done before the reply leaves: the client cannot send its next request before this.
        record.in_flight.fetch_sub(1, Ordering::SeqCst);
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
    assert_eq!(
        out.code(),
        Some(0),
        "requirement 5: {args:?} exited with {:?}; wanted 0. stderr: {}",
        out.code(),
        out.stderr_str()
    );
    let stdout = out.stdout_str();
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("requirement 5: --json printed {stdout:?} ({e}); wanted one JSON report")
    })
}

fn latency(report: &Value, key: &str) -> f64 {
    report["latency_ms"][key].as_f64().unwrap_or_else(|| {
        panic!("requirement 2: latency_ms.{key} is not a number; wanted one: {report}")
    })
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
    for path in [&["requests"][..], &["ok"], &["status", "200"]] {
        let got = count(&report, path);
        assert_eq!(
            got,
            n,
            "requirement 1: {} is {got} after -n {n}; wanted {n}: {report}",
            path.join(".")
        );
    }
    let seen = server.requests.load(Ordering::SeqCst);
    assert_eq!(
        seen, n,
        "requirement 1: the server saw {seen} requests after -n {n}; wanted exactly {n}"
    );
}

#[test]
fn keeps_connections_alive() {
    let server = TestServer::start(|_| (Duration::ZERO, 200));
    let c = rand::rng().random_range(1..5u64);
    let report = run_json(&["-c", &c.to_string(), "-n", "200", &server.url()]);
    let ok = count(&report, &["ok"]);
    assert_eq!(
        ok, 200,
        "requirement 1: ok is {ok} after -n 200; wanted 200: {report}"
    );
    let opened = server.connections.load(Ordering::SeqCst);
    assert!(
        (1..=c).contains(&opened),
        "requirement 1: 200 requests with -c {c} opened {opened} connections at the server; \
         wanted 1 to {c}: keep-alive reuses them"
    );
}

// Requirement 2: percentiles from an HDR histogram match the injected delays.
#[test]
fn percentiles_match_the_injected_delays() {
    // Every 10th request takes 100 ms, the others 5 ms.
    let server = TestServer::start(|i| (if i % 10 == 9 { ms(100) } else { ms(5) }, 200));
    let report = run_json(&["-c", "2", "-n", "200", &server.url()]);
    let ok = count(&report, &["ok"]);
    assert_eq!(
        ok, 200,
        "requirement 1: ok is {ok} after -n 200; wanted 200: {report}"
    );
    let (p50, p99, max) = (
        latency(&report, "p50"),
        latency(&report, "p99"),
        latency(&report, "max"),
    );
    assert!(
        (5.0..40.0).contains(&p50),
        "requirement 2: p50 is {p50} ms; wanted 5 to 40 ms for a 5 ms median: {report}"
    );
    assert!(
        (100.0..200.0).contains(&p99),
        "requirement 2: p99 is {p99} ms; wanted 100 to 200 ms for a 100 ms tail: {report}"
    );
    assert!(
        (100.0..300.0).contains(&max),
        "requirement 2: max is {max} ms; wanted 100 to 300 ms: {report}"
    );
    let p90 = latency(&report, "p90");
    let p999 = latency(&report, "p99_9");
    assert!(
        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "requirement 2: p50 {p50}, p90 {p90}, p99 {p99}, p99.9 {p999}, max {max}; wanted them in \
         order: {report}"
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
    let max = latency(&report, "max");
    assert!(
        max >= 1000.0,
        "requirement 2: max is {max} ms with a 1 s stall; wanted at least 1000: {report}"
    );
    assert!(
        p90_closed < 200.0,
        "requirement 3: the closed loop's p90 is {p90_closed} ms; wanted below 200 (it hides \
         the stall): {report}"
    );

    // At 50 req/s, about 50 requests were due during the stall: they all waited.
    let open = TestServer::start(stall);
    let report = run_json(&["-c", "1", "-n", "100", "--rate", "50", &open.url()]);
    let ok = count(&report, &["ok"]);
    assert_eq!(
        ok, 100,
        "requirement 1: ok is {ok} after -n 100; wanted 100: {report}"
    );
    let p90_open = latency(&report, "p90");
    assert!(
        p90_open >= 400.0,
        "requirement 3: at 50 req/s with a 1 s stall p90 is {p90_open} ms; wanted at least 400: \
         latency runs from the intended send time: {report}"
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
    let ok = count(&report, &["ok"]);
    assert_eq!(
        ok, 100,
        "requirement 1: ok is {ok} after -n 100; wanted 100: {report}"
    );
    let elapsed = report["elapsed_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("requirement 5: elapsed_s is not a number: {report}"));
    let schedule = 99.0 / rate as f64;
    assert!(
        elapsed >= schedule * 0.95,
        "requirement 3: 100 requests at {rate}/s finished in {elapsed} s; wanted at least \
         {schedule:.3} s: the pace is never faster than the rate"
    );
}

// Requirement 4: statuses and errors by kind.
#[test]
fn counts_statuses_separately_from_errors() {
    let server = TestServer::start(|i| (Duration::ZERO, if i % 4 == 3 { 503 } else { 200 }));
    let n = 4 * rand::rng().random_range(10..30u64);
    let report = run_json(&["-c", "1", "-n", &n.to_string(), &server.url()]);
    for (path, want) in [
        (&["requests"][..], n),
        (&["status", "200"], n / 4 * 3),
        (&["status", "503"], n / 4),
        (&["ok"], n / 4 * 3),
    ] {
        let got = count(&report, path);
        assert_eq!(
            got,
            want,
            "requirement 4: {} is {got} when every 4th of {n} answers is a 503; wanted {want}: \
             {report}",
            path.join(".")
        );
    }
}

#[test]
fn connection_refused_is_reported_not_hung() {
    let addr = labkit::net::closed_port();
    let n = rand::rng().random_range(5..40u64);
    let report = run_json(&["-c", "2", "-n", &n.to_string(), &format!("http://{addr}/")]);
    for (path, want) in [
        (&["errors", "connect"][..], n),
        (&["requests"], n),
        (&["ok"], 0),
    ] {
        let got = count(&report, path);
        assert_eq!(
            got,
            want,
            "requirement 4: {} is {got} after -n {n} against a closed port; wanted {want}: {report}",
            path.join(".")
        );
    }
    // Duration mode against nobody ends on time too.
    let report = run_json(&["-c", "2", "-d", "300ms", &format!("http://{addr}/")]);
    let refused = count(&report, &["errors", "connect"]);
    assert!(
        refused > 0,
        "requirement 4: errors.connect is {refused} after 300 ms against a closed port; wanted \
         more than 0: {report}"
    );
}

#[test]
fn slow_responses_are_timeout_errors() {
    let server = TestServer::start(|_| (ms(3000), 200));
    let report = run_json(&["-c", "2", "-n", "4", "--timeout", "200ms", &server.url()]);
    for (path, want) in [(&["errors", "timeout"][..], 4), (&["ok"], 0)] {
        let got = count(&report, path);
        assert_eq!(
            got,
            want,
            "requirement 4: {} is {got} for 4 requests to a 3 s server with --timeout 200ms; \
             wanted {want}: {report}",
            path.join(".")
        );
    }
}

// Requirement 5: duration mode and the text report.
#[test]
fn duration_mode_runs_for_the_given_time() {
    let server = TestServer::start(|_| (ms(1), 200));
    let report = run_json(&["-c", "2", "-d", "700ms", &server.url()]);
    let elapsed = report["elapsed_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("requirement 5: elapsed_s is not a number: {report}"));
    assert!(
        (0.69..10.0).contains(&elapsed),
        "requirement 5: -d 700ms ran for {elapsed} s; wanted 0.69 to 10: {report}"
    );
    let ok = count(&report, &["ok"]);
    assert!(
        ok > 10,
        "requirement 5: {ok} requests answered in 700 ms of 1 ms answers; wanted more than 10: \
         {report}"
    );
    let (seen, reported) = (
        server.requests.load(Ordering::SeqCst),
        count(&report, &["requests"]),
    );
    assert_eq!(
        seen, reported,
        "requirement 5: the server saw {seen} requests, the report says {reported}; wanted the \
         same"
    );
    let rps = report["rps"]
        .as_f64()
        .unwrap_or_else(|| panic!("requirement 5: rps is not a number: {report}"));
    assert!(
        (rps - ok as f64 / elapsed).abs() < 0.05 * rps + 1.0,
        "requirement 5: rps is {rps}; wanted responses / elapsed = {:.1}: {report}",
        ok as f64 / elapsed
    );
}

#[test]
fn text_report_shows_percentiles_and_a_histogram() {
    let server = TestServer::start(|i| (ms(i % 7), 200));
    let out = labkit::run(lab_bin!(), &["-c", "2", "-n", "100", &server.url()]);
    assert_eq!(
        out.code(),
        Some(0),
        "requirement 5: the text run exited with {:?}; wanted 0. stderr: {}",
        out.code(),
        out.stderr_str()
    );
    let text = out.stdout_str();
    for needle in ["p50", "p90", "p99", "p99.9", "max", "req/s", "200: 100"] {
        assert!(
            text.contains(needle),
            "requirement 5: the text report lacks {needle:?}; wanted it:\n{text}"
        );
    }
    let bars = text.lines().filter(|l| l.contains('#')).count();
    assert!(
        bars >= 3,
        "requirement 5: the text report has {bars} histogram bars; wanted at least 3:\n{text}"
    );
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
        assert_eq!(
            out.code(),
            Some(2),
            "requirement 5: {args:?} exited with {:?}; wanted 2. stderr: {}",
            out.code(),
            out.stderr_str()
        );
        assert!(
            out.stderr_str().to_lowercase().contains("usage"),
            "requirement 5: {args:?} printed {:?} on stderr; wanted the usage",
            out.stderr_str()
        );
    }
}

// Requirement 1: the -c connections really send at the same time: the server sees c requests
// in flight at once, each on its own connection.
#[test]
fn connections_send_concurrently() {
    let server = TestServer::start(|_| (ms(20), 200));
    let c = rand::rng().random_range(2..7u64);
    let n = c * 10;
    let report = run_json(&["-c", &c.to_string(), "-n", &n.to_string(), &server.url()]);
    let ok = count(&report, &["ok"]);
    assert!(
        ok == n,
        "requirement 1: {ok} of {n} requests answered 200; wanted all: {report}"
    );
    let most = server.record.max_in_flight.load(Ordering::SeqCst);
    assert!(
        most == c,
        "requirement 1: with -c {c} and 20 ms per request the server had at most {most} requests \
         in flight at once; wanted {c} (one per connection, all sending concurrently)"
    );
    let opened = server.record.connections.load(Ordering::SeqCst);
    assert!(
        opened == c,
        "requirement 1: -c {c} opened {opened} connections at the server; wanted {c}"
    );
}

/// The value at quantile `q` of `sorted` (nearest rank), as an HDR histogram reports it.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// Requirement 2: the percentiles describe every request of every connection, as the server
// recorded them. Connection 0 answers in 60 ms, the other in 1 ms, so the fast connection makes
// most requests and the slow one only the tail: p50 is fast, p99 and max are slow. Each
// percentile the tester reports must lie between the delay the server injected at that
// percentile and that delay plus 25 ms of overhead.
#[test]
fn percentiles_match_the_servers_own_record() {
    let server =
        TestServer::start_per_connection(|_, conn| (if conn == 0 { ms(60) } else { ms(1) }, 200));
    // Two connections: the slow one makes about 2% of the requests, clear of p50 and p99.
    let n = rand::rng().random_range(300..500u64);
    let report = run_json(&["-c", "2", "-n", &n.to_string(), &server.url()]);
    let ok = count(&report, &["ok"]);
    assert!(
        ok == n,
        "requirement 1: {ok} of {n} requests answered 200: {report}"
    );
    let mut delays = server.record.delays.lock().unwrap().clone();
    delays.sort();
    let slow = delays.iter().filter(|d| **d == ms(60)).count();
    for (key, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        let injected = quantile(&delays, q).as_secs_f64() * 1000.0;
        let got = latency(&report, key);
        assert!(
            got >= injected * 0.99 && got <= injected + 25.0,
            "requirement 2: {key} is {got} ms; the server injected {injected} ms at that \
             percentile ({slow} of {n} requests took 60 ms, on one connection), so wanted \
             {injected} to {} ms: the percentiles must come from one histogram of every request",
            injected + 25.0
        );
    }
}
