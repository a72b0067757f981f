//! Grader for the load balancer, in the style of a real deployment: in-test upstreams
//! (labkit::upstream) count the requests they serve and answer health checks; one of them is
//! killed and brought back on the same port while traffic flows. Every wait polls with a
//! deadline; no test sleeps for a fixed time to let something happen.

use std::io::{BufReader, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use labkit::upstream::{self, Exchange, Response, Upstream};
use labkit::wait;
use labkit::{Server, lab_bin, run};
use rand::RngExt;

/// Upstreams that answer traffic with 200 and their health path with a status the test sets.
struct Fleet {
    upstreams: Vec<Upstream>,
    health_status: Vec<Arc<AtomicU16>>,
    health_path: String,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        let health_path = format!("/health-{:08x}", rand::rng().random_range(0..u32::MAX));
        let mut fleet = Fleet {
            upstreams: Vec::new(),
            health_status: Vec::new(),
            health_path,
        };
        for i in 0..n {
            let status = Arc::new(AtomicU16::new(200));
            let (path, status2) = (fleet.health_path.clone(), status.clone());
            fleet
                .upstreams
                .push(Upstream::start(move |ex: &mut Exchange<'_>| {
                    if ex.request.path() == path {
                        let code = status2.load(Ordering::SeqCst);
                        return ex.respond(code, &[], b"health");
                    }
                    ex.respond(200, &[], format!("upstream {i}").as_bytes())
                }));
            fleet.health_status.push(status);
        }
        fleet
    }

    fn addrs(&self) -> Vec<String> {
        self.upstreams
            .iter()
            .map(|u| u.addr().to_string())
            .collect()
    }

    /// Requests served by upstream `i`, health checks excluded.
    fn traffic(&self, i: usize) -> usize {
        let path = self.health_path.as_str();
        self.upstreams[i].count(|r| r.path() != path)
    }

    fn traffic_all(&self) -> Vec<usize> {
        (0..self.upstreams.len()).map(|i| self.traffic(i)).collect()
    }

    fn health_checks(&self, i: usize) -> usize {
        let path = self.health_path.as_str();
        self.upstreams[i].count(|r| r.path() == path)
    }
}

/// Starts the balancer in front of `addrs`, with the fleet's health path.
fn balancer(addrs: &[String], health_path: &str, extra: &[&str]) -> Server {
    let mut args: Vec<&str> = Vec::new();
    for addr in addrs {
        args.extend(["--upstream", addr.as_str()]);
    }
    args.extend(["--health-path", health_path]);
    args.extend_from_slice(extra);
    Server::start(lab_bin!(), &args)
}

fn get(lb: &Server, path: &str) -> Response {
    upstream::get(lb.addr(), path).unwrap_or_else(|e| {
        panic!("GET {path} through the balancer failed: {e}; wanted a response")
    })
}

/// Sends `n` sequential requests; every one must get a 200.
fn send_ok(lb: &Server, n: usize) {
    for i in 0..n {
        let response = get(lb, &format!("/work/{i}"));
        assert_eq!(
            response.status,
            200,
            "requirements 1 and 3: status of request {i} of {n}; body {:?}",
            response.body_str()
        );
    }
}

/// Each count must be within 20% of `total / counts.len()`.
fn assert_even(counts: &[usize], total: usize, when: &str) {
    let fair = total as f64 / counts.len() as f64;
    for (i, &count) in counts.iter().enumerate() {
        assert!(
            (count as f64 - fair).abs() <= fair * 0.2,
            "requirement 1: {when}: upstream {i} got {count} of {total} requests; wanted {fair:.0} ± 20%: {counts:?}"
        );
    }
}

fn delta(after: &[usize], before: &[usize]) -> Vec<usize> {
    after.iter().zip(before).map(|(a, b)| a - b).collect()
}

// Requirements 1, 3 and 4, the way production sees them: even spread, an upstream dies, the
// traffic goes on without errors, the upstream comes back on the same port and gets its
// share again.
fn survives_losing_and_regaining_an_upstream(strategy: &str) {
    let mut fleet = Fleet::new(3);
    let lb = balancer(
        &fleet.addrs(),
        &fleet.health_path,
        &["--strategy", strategy, "--health-interval", "200ms"],
    );

    send_ok(&lb, 150);
    assert_even(&fleet.traffic_all(), 150, "three healthy upstreams");

    let victim = rand::rng().random_range(0..3);
    fleet.upstreams[victim].stop();
    let before = fleet.traffic_all();
    send_ok(&lb, 60); // every request succeeds: the dead upstream is skipped or retried
    let served = delta(&fleet.traffic_all(), &before);
    assert_eq!(
        served[victim], 0,
        "requirement 3: requests served by the stopped upstream {victim}"
    );
    let survivors: Vec<usize> = (0..3).filter(|&i| i != victim).map(|i| served[i]).collect();
    assert_even(&survivors, 60, "one upstream down");

    fleet.upstreams[victim].restart();
    let before_recovery = fleet.traffic(victim);
    let mut sent = 0;
    let recovered = wait::until(Duration::from_secs(10), || {
        sent += 1;
        let status = get(&lb, "/probe").status;
        assert_eq!(
            status, 200,
            "requirement 4: status of probe {sent} during the recovery"
        );
        fleet.traffic(victim) > before_recovery
    });
    assert!(
        recovered,
        "requirement 4: upstream {victim} is back on its port, yet it got none of {sent} requests in 10 s \
         (the active health check must re-add it)"
    );

    let before = fleet.traffic_all();
    send_ok(&lb, 90);
    assert_even(
        &delta(&fleet.traffic_all(), &before),
        90,
        "after the recovery",
    );
}

#[test]
fn round_robin_survives_losing_and_regaining_an_upstream() {
    survives_losing_and_regaining_an_upstream("round-robin");
}

#[test]
fn least_connections_survives_losing_and_regaining_an_upstream() {
    survives_losing_and_regaining_an_upstream("least-connections");
}

// Requirement 1: round-robin is the default strategy.
#[test]
fn round_robin_is_the_default_and_spreads_evenly() {
    let fleet = Fleet::new(3);
    let lb = balancer(&fleet.addrs(), &fleet.health_path, &[]);
    send_ok(&lb, 90);
    assert_even(&fleet.traffic_all(), 90, "round-robin by default");
}

// Requirement 2: least-connections sends a request to the upstream with the fewest in flight.

/// A handler gate: traffic requests wait for a permit, health checks pass at once.
#[derive(Default)]
struct Gate {
    permits: Mutex<usize>,
    freed: Condvar,
}

impl Gate {
    fn release(&self, n: usize) {
        *self.permits.lock().unwrap() += n;
        self.freed.notify_all();
    }

    fn pass(&self) -> bool {
        let permits = self.permits.lock().unwrap();
        let (mut permits, timeout) = self
            .freed
            .wait_timeout_while(permits, Duration::from_secs(20), |p| *p == 0)
            .unwrap();
        if timeout.timed_out() {
            return false;
        }
        *permits -= 1;
        true
    }
}

#[test]
fn least_connections_picks_the_upstream_with_fewest_requests_in_flight() {
    let health_path = "/health";
    let gates: Vec<Arc<Gate>> = (0..3).map(|_| Arc::default()).collect();
    let upstreams: Vec<Upstream> = gates
        .iter()
        .map(|gate| {
            let gate = gate.clone();
            Upstream::start(move |ex: &mut Exchange<'_>| {
                if ex.request.path() == health_path {
                    return ex.respond(200, &[], b"done");
                }
                // The head and the first byte of the body go out at once; the rest waits for
                // the gate. The request is in flight until its last byte has been sent.
                ex.write_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nd")?;
                if !gate.pass() {
                    ex.close_after();
                    return Ok(()); // the test is over
                }
                ex.write_raw(b"one")
            })
        })
        .collect();
    let addrs: Vec<String> = upstreams.iter().map(|u| u.addr().to_string()).collect();
    let lb = balancer(
        &addrs,
        health_path,
        &[
            "--strategy",
            "least-connections",
            "--health-interval",
            "60s",
        ],
    );
    let lb_addr = lb.addr();
    let arrived = |i: usize| upstreams[i].count(|r| r.path() != health_path);
    let total = || (0..3).map(arrived).sum::<usize>();

    // One client thread per request; it returns the status it got.
    let spawn_request = |n: usize| {
        thread::spawn(move || -> u16 {
            upstream::get(lb_addr, &format!("/slow/{n}")).map_or(0, |r| r.status)
        })
    };
    let mut clients: Vec<Vec<thread::JoinHandle<u16>>> = vec![Vec::new(), Vec::new(), Vec::new()];

    // Three requests, held by the upstreams: least-connections gives one to each.
    for n in 0..3 {
        let handle = spawn_request(n);
        assert!(
            wait::until(Duration::from_secs(10), || total() == n + 1),
            "requirement 2: request {n} never reached an upstream"
        );
        let at = (0..3)
            .find(|&i| arrived(i) > clients[i].len())
            .expect("the upstream that got the request");
        clients[at].push(handle);
    }
    let spread: Vec<usize> = (0..3).map(arrived).collect();
    assert_eq!(
        spread,
        [1, 1, 1],
        "requirement 2: three held requests on three idle upstreams; wanted one each"
    );

    // Free a random upstream: it now has 0 in flight, the others 1 each. The next request
    // must go there. Round-robin or random choices pass 8 rounds by luck once in 6,561.
    for round in 0..8 {
        let free = rand::rng().random_range(0..3);
        gates[free].release(1);
        let status = clients[free].pop().unwrap().join().unwrap();
        assert_eq!(
            status, 200,
            "requirement 2: round {round}: status of the released request"
        );

        let before: Vec<usize> = (0..3).map(arrived).collect();
        let handle = spawn_request(10 + round);
        assert!(
            wait::until(Duration::from_secs(10), || total()
                == before.iter().sum::<usize>() + 1),
            "requirement 2: round {round}: the request never reached an upstream"
        );
        let at = (0..3)
            .find(|&i| arrived(i) > before[i])
            .expect("the upstream that got the request");
        assert_eq!(
            at, free,
            "requirement 2: round {round}: upstream {free} had 0 requests in flight and the \
             others 1 each (their bodies still streaming), but the request went to upstream {at}"
        );
        clients[at].push(handle);
    }

    for gate in &gates {
        gate.release(100);
    }
    for handle in clients.into_iter().flatten() {
        let status = handle.join().unwrap();
        assert_eq!(status, 200, "requirement 2: status of a released request");
    }
}

// Requirement 3: passive health: a refused connection marks the upstream down and the
// request is retried on another one.
#[test]
fn refused_connection_is_retried_elsewhere_and_marks_the_upstream_down() {
    let mut fleet = Fleet::new(3);
    // Active checks far apart: within this test only passive health can act.
    let lb = balancer(
        &fleet.addrs(),
        &fleet.health_path,
        &["--health-interval", "60s"],
    );
    let dead = rand::rng().random_range(0..3);
    fleet.upstreams[dead].stop();
    send_ok(&lb, 30);
    let served = fleet.traffic_all();
    assert_eq!(
        served.iter().sum::<usize>(),
        30,
        "requirement 3: requests served in all; wanted each of 30 served once: {served:?}"
    );

    // Back on its port, but marked down, and no health check has run: it gets nothing yet.
    fleet.upstreams[dead].restart();
    let before = fleet.traffic_all();
    send_ok(&lb, 30);
    let served = delta(&fleet.traffic_all(), &before);
    assert_eq!(
        served[dead], 0,
        "requirement 3: upstream {dead} refused a connection, so it stays out until a health \
         check passes; it got requests anyway: {served:?}"
    );
}

// Requirement 4: active health checks on --health-path every --health-interval.
#[test]
fn active_health_checks_take_out_and_re_add_an_unhealthy_upstream() {
    let fleet = Fleet::new(3);
    let lb = balancer(
        &fleet.addrs(),
        &fleet.health_path,
        &["--health-interval", "100ms"],
    );
    send_ok(&lb, 30);
    let sick = rand::rng().random_range(0..3);
    assert!(
        fleet.traffic(sick) > 0,
        "requirement 1: upstream {sick} got no traffic of 30 requests at first"
    );
    assert!(
        wait::until(Duration::from_secs(10), || fleet.health_checks(sick) >= 3),
        "requirement 4: health checks must ask for {} every 100ms (got {} in 10 s)",
        fleet.health_path,
        fleet.health_checks(sick)
    );

    // The upstream still accepts connections but says it is unhealthy.
    fleet.health_status[sick].store(503, Ordering::SeqCst);
    let taken_out = wait::until(Duration::from_secs(10), || {
        let before = fleet.traffic(sick);
        send_ok(&lb, 6);
        fleet.traffic(sick) == before
    });
    assert!(
        taken_out,
        "requirement 4: an upstream whose health check answers 503 still gets traffic after 10 s"
    );
    let before = fleet.traffic(sick);
    send_ok(&lb, 30);
    assert_eq!(
        fleet.traffic(sick),
        before,
        "requirement 4: requests served by the upstream whose health check answers 503"
    );

    fleet.health_status[sick].store(200, Ordering::SeqCst);
    let back = wait::until(Duration::from_secs(10), || {
        send_ok(&lb, 3);
        fleet.traffic(sick) > before
    });
    assert!(
        back,
        "requirement 4: its health check passes again, yet the upstream got no traffic in 10 s"
    );
}

// Requirement 5: no upstream reachable gives 502.
#[test]
fn all_upstreams_down_gives_502() {
    let mut fleet = Fleet::new(2);
    // Active checks far apart: only trying the marked-down upstreams can bring service back.
    let lb = balancer(
        &fleet.addrs(),
        &fleet.health_path,
        &["--health-interval", "60s"],
    );
    send_ok(&lb, 4);
    for upstream in &mut fleet.upstreams {
        upstream.stop();
    }
    for i in 0..5 {
        let response = get(&lb, "/");
        assert_eq!(
            response.status,
            502,
            "requirement 5: request {i} with every upstream down; body {:?}",
            response.body_str()
        );
    }
    fleet.upstreams[0].restart();
    let back = wait::until(Duration::from_secs(10), || get(&lb, "/").status == 200);
    assert!(
        back,
        "requirement 5: upstream 0 is back, but with every upstream marked down the balancer \
         kept answering 502 for 10 s; wanted it to try them anyway"
    );
}

// Requirement 6: per-client-IP rate limit.

/// `GET /` from the local address `from` (any 127.x.y.z works on Linux loopback).
fn get_from(from: &str, to: SocketAddr) -> Response {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into()).unwrap();
    socket
        .connect_timeout(&to.into(), labkit::net::NET_TIMEOUT)
        .unwrap_or_else(|e| panic!("requirement 6: connect from {from}: {e}"));
    let mut stream: std::net::TcpStream = socket.into();
    labkit::net::set_timeouts(&stream, labkit::net::NET_TIMEOUT);
    stream
        .write_all(b"GET /limited HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n")
        .unwrap();
    upstream::read_response(&mut BufReader::new(stream))
        .unwrap_or_else(|e| panic!("requirement 6: no response to a request from {from}: {e}"))
}

#[test]
fn rate_limit_per_client_ip_gives_429() {
    let fleet = Fleet::new(2);
    let limit = rand::rng().random_range(3..=8);
    let lb = balancer(
        &fleet.addrs(),
        &fleet.health_path,
        &["--max-requests-per-minute", &limit.to_string()],
    );
    for i in 0..limit {
        let response = get_from("127.0.0.1", lb.addr());
        assert_eq!(
            response.status, 200,
            "requirement 6: status of request {i}, within the limit of {limit}"
        );
    }
    for _ in 0..2 {
        let response = get_from("127.0.0.1", lb.addr());
        assert_eq!(
            response.status,
            429,
            "requirement 6: status of request {}, over the limit of {limit}",
            limit + 1
        );
        assert!(
            response.header("retry-after").is_some(),
            "requirement 6: a 429 without Retry-After; wanted it to say when to come back"
        );
    }
    assert_eq!(
        fleet.traffic_all().iter().sum::<usize>(),
        limit,
        "requirement 6: requests that reached an upstream; wanted only the {limit} allowed"
    );
    // Another client IP has its own budget.
    let response = get_from("127.0.0.2", lb.addr());
    assert_eq!(
        response.status, 200,
        "requirement 6: status for 127.0.0.2 after 127.0.0.1 used its budget; wanted 200 (a budget per IP)"
    );
}

// Requirement 7: a bad command line is a usage error.
#[test]
fn rejects_a_bad_command_line() {
    let up = labkit::net::closed_port().to_string();
    let cases: [&[&str]; 4] = [
        &["--addr", "127.0.0.1:0"],
        &[
            "--addr",
            "127.0.0.1:0",
            "--upstream",
            &up,
            "--strategy",
            "random",
        ],
        &[
            "--addr",
            "127.0.0.1:0",
            "--upstream",
            &up,
            "--health-interval",
            "often",
        ],
        &[
            "--addr",
            "127.0.0.1:0",
            "--upstream",
            &up,
            "--max-requests-per-minute",
            "0",
        ],
    ];
    for args in cases {
        let out = run(lab_bin!(), args);
        assert_eq!(
            out.code(),
            Some(2),
            "requirement 7: {args:?}: exit code; wanted 2; stderr: {}",
            out.stderr_str()
        );
        assert!(
            !out.stderr_str().contains("panicked"),
            "requirement 7: {args:?} panicked; wanted a usage error"
        );
    }
}
