//! Grader for the metrics: a known sequence of requests, then `/metrics` is scraped, parsed as
//! Prometheus text exposition format, and the numbers are checked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use labkit::notes::{Api, random_title};
use labkit::pg::{TestDb, lock_waiters};
use labkit::wait::{eventually_for, within};
use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::Method;
use serde_json::json;

const MAX_CONNECTIONS: &str = "8";

fn start(db: &TestDb) -> (Server, Api) {
    let args = [
        "--database-url",
        db.url.as_str(),
        "--max-connections",
        MAX_CONNECTIONS,
    ];
    let server = Server::start(lab_bin!(), &args);
    let api = Api::new(server.addr());
    (server, api)
}

/// One sample: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape: the samples and the `# TYPE` of each metric family.
struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// Values of `name` whose labels include every pair of `want`.
    fn find(&self, name: &str, want: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                want.iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The one value of `name` with exactly these labels (0 when the series does not exist).
    fn value(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self
            .find(name, want)
            .into_iter()
            .filter(|s| s.labels.len() == want.len())
            .collect();
        assert!(
            found.len() <= 1,
            "requirement 4: {} {name} series have the labels {want:?}; wanted at most one: {found:?}",
            found.len()
        );
        found.first().map_or(0.0, |s| s.value)
    }
}

/// Parses the text format (https://prometheus.io/docs/instrumenting/exposition_formats/).
fn parse(text: &str) -> Scrape {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("requirement 4: {line:?} is not `# TYPE <name> <kind>`"));
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("requirement 4: {line:?} is not `<series> <value>`"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("requirement 4: the value of {line:?} is not a number")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| {
                    panic!("requirement 4: the labels of {line:?} do not end with }}")
                });
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| {
                        panic!("requirement 4: a label of {line:?} is not name=\"value\"")
                    });
                    labels.insert(
                        k.trim_start_matches(',').to_string(),
                        v.trim_end_matches('"').to_string(),
                    );
                }
                (name.to_string(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    Scrape { samples, types }
}

async fn scrape(api: &Api) -> Scrape {
    let reply = api.get("/metrics").await;
    assert!(
        reply.status.as_u16() == 200,
        "requirement 4: GET /metrics answered {}; wanted 200 (body {:?})",
        reply.status,
        reply.text
    );
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain"),
        "requirement 4: /metrics came as {content_type:?}; wanted text/plain"
    );
    parse(&reply.text)
}

/// `(le, cumulative count)` of one histogram series, sorted by `le`.
fn buckets(m: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, f64)> {
    let mut buckets: Vec<(f64, f64)> = m
        .find(&format!("{name}_bucket"), labels)
        .iter()
        .map(|s| {
            let le = match s.labels.get("le").map(String::as_str) {
                Some("+Inf") => f64::INFINITY,
                Some(le) => le.parse().unwrap_or_else(|_| {
                    panic!("requirement 4: the bucket bound le={le:?} is not a number: {s:?}")
                }),
                None => panic!("requirement 2: a bucket without an `le` label: {s:?}"),
            };
            (le, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// Waits until `n` of the server's statements wait on the grader's row lock.
async fn wait_for_lock_waiters(db: &TestDb, n: i64, what: &str) {
    let (pool, name) = (db.pool.clone(), db.name.clone());
    eventually_for(Duration::from_secs(10), what, || {
        let (pool, name) = (pool.clone(), name.clone());
        async move { lock_waiters(&pool, &name).await == n }
    })
    .await;
}

fn id_of(note: &serde_json::Value) -> i64 {
    note["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("the created note has no integer `id`: {note}"))
}

// Requirement 1: counter by route template and status.
#[tokio::test]
async fn counts_requests_by_method_route_template_and_status() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let mut rng = rand::rng();
        let creates = rng.random_range(2..6);
        let mut ids = Vec::new();
        for _ in 0..creates {
            ids.push(id_of(&api.create(&random_title(), "").await));
        }
        let (gets, misses, lists) = (
            rng.random_range(1..8),
            rng.random_range(1..5),
            rng.random_range(1..4),
        );
        for i in 0..gets {
            let path = format!("/notes/{}", ids[i % ids.len()]);
            let status = api.get(&path).await.status;
            assert!(status == 200, "requirement 1: GET {path} answered {status}; wanted 200");
        }
        for _ in 0..misses {
            let path = format!("/notes/{}", rng.random_range(10_000..1_000_000));
            let status = api.get(&path).await.status;
            assert!(status == 404, "requirement 1: GET {path} answered {status}; wanted 404");
        }
        for _ in 0..lists {
            api.get("/notes?limit=2").await;
        }
        let bad_json = rng.random_range(1..4);
        for _ in 0..bad_json {
            api.send(
                Method::POST,
                "/notes",
                Some("application/json"),
                Some(b"{".to_vec()),
            )
            .await;
        }
        let m = scrape(&api).await;
        let total = "http_requests_total";
        let cases = [
            ("POST", "/notes", "201", creates),
            ("POST", "/notes", "400", bad_json),
            ("GET", "/notes/{id}", "200", gets),
            ("GET", "/notes/{id}", "404", misses),
            ("GET", "/notes", "200", lists),
        ];
        for (method, route, status, n) in cases {
            let got = m.value(
                total,
                &[("method", method), ("route", route), ("status", status)],
            );
            assert!(
                got == n as f64,
                "requirement 1: {total}{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} is {got}; wanted {n}"
            );
        }
        // No label explosion: no series names a concrete note id.
        let series = m.find(total, &[]);
        for s in &series {
            let route = s.labels.get("route").map_or("", String::as_str);
            assert!(
                !route.chars().any(|c| c.is_ascii_digit()),
                "requirement 1: a series is labelled with the raw path {route:?}; wanted the route template"
            );
        }
        assert!(
            series.len() <= cases.len(),
            "requirement 1: {} series of {total} for {} kinds of request; wanted one per kind",
            series.len(),
            cases.len()
        );
        let kind = m.types.get(total).map_or("none", String::as_str);
        assert!(
            kind == "counter",
            "requirement 1: # TYPE of {total} is {kind}; wanted counter"
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_paths_share_one_unmatched_route_label() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let n = rand::rng().random_range(3..9);
        for _ in 0..n {
            let path = format!("/x/{}", rand::rng().random_range(0..u32::MAX));
            let status = api.get(&path).await.status;
            assert!(status == 404, "requirement 1: GET {path} answered {status}; wanted 404");
        }
        // Scrape twice: the first scrape must not count itself in the second.
        scrape(&api).await;
        let m = scrape(&api).await;
        let got = m.value(
            "http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")],
        );
        assert!(
            got == n as f64,
            "requirement 1: http_requests_total{{route=\"unmatched\",status=\"404\"}} is {got} after {n} unknown paths; wanted {n}"
        );
        let scrapes = m.find("http_requests_total", &[("route", "/metrics")]).len();
        assert!(
            scrapes == 0,
            "requirement 1: /metrics counts itself ({scrapes} series with route=\"/metrics\"); wanted it uncounted"
        );
    })
    .await;
}

// Requirement 2: latency histogram.
#[tokio::test]
async fn latency_histogram_has_sensible_cumulative_buckets() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let id = id_of(&api.create(&random_title(), "").await);
        let n = rand::rng().random_range(3..12);
        for _ in 0..n {
            api.get(&format!("/notes/{id}")).await;
        }
        let m = scrape(&api).await;
        let name = "http_request_duration_seconds";
        let kind = m.types.get(name).map_or("none", String::as_str);
        assert!(
            kind == "histogram",
            "requirement 2: # TYPE of {name} is {kind}; wanted histogram"
        );
        let labels = [("method", "GET"), ("route", "/notes/{id}")];
        let count = m.value(&format!("{name}_count"), &labels);
        assert!(
            count == n as f64,
            "requirement 2: {name}_count of GET /notes/{{id}} is {count} after {n} requests; wanted {n}"
        );
        let buckets = buckets(&m, name, &labels);
        assert!(
            buckets.len() >= 8,
            "requirement 2: {} buckets; wanted at least 8: {buckets:?}",
            buckets.len()
        );
        assert!(
            buckets[0].0 <= 0.005,
            "requirement 2: the first bucket is le={}; wanted at most 0.005 s: {buckets:?}",
            buckets[0].0
        );
        assert!(
            buckets[buckets.len() - 2].0 >= 1.0,
            "requirement 2: the last finite bucket is le={}; wanted at least 1 s",
            buckets[buckets.len() - 2].0
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "requirement 2: bucket counts decrease somewhere; wanted cumulative: {buckets:?}"
        );
        let last = buckets[buckets.len() - 1];
        assert!(
            last == (f64::INFINITY, n as f64),
            "requirement 2: the last bucket is {last:?}; wanted le=+Inf holding all {n}"
        );
    })
    .await;
}

#[tokio::test]
async fn latency_is_recorded_in_seconds() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let id = id_of(&api.create(&random_title(), "").await);
        // The grader controls how long these requests take: they wait on its row lock, which
        // it holds for `hold` after all of them are waiting. Each request's duration in the
        // server therefore lies between `held` (lock wait) and what its client measured.
        let lock = db.lock_row("notes", id).await;
        let k = rand::rng().random_range(2..5);
        let api = Arc::new(api);
        let mut tasks = Vec::new();
        for _ in 0..k {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                let body = json!({"title": random_title(), "version": 1});
                let reply = api.json(Method::PUT, &format!("/notes/{id}"), &body).await;
                (start.elapsed(), reply.status)
            }));
        }
        wait_for_lock_waiters(&db, k, "requirement 2: the timed updates wait on the row lock")
            .await;
        let waiting_since = Instant::now();
        let hold = Duration::from_millis(rand::rng().random_range(250..450));
        tokio::time::sleep(hold).await;
        // Measured before the release: every request waited at least this long in the server.
        let held = waiting_since.elapsed().as_secs_f64();
        lock.commit().await.expect("COMMIT");
        let mut client_total = 0.0;
        let mut client_max: f64 = 0.0;
        for task in tasks {
            let (elapsed, _status) = task.await.expect("a timed update");
            client_total += elapsed.as_secs_f64();
            client_max = client_max.max(elapsed.as_secs_f64());
        }

        let m = scrape(&api).await;
        let name = "http_request_duration_seconds";
        let labels = [("method", "PUT"), ("route", "/notes/{id}")];
        let count = m.value(&format!("{name}_count"), &labels);
        assert!(
            count == k as f64,
            "requirement 2: {name}_count of PUT /notes/{{id}} is {count}; wanted {k}"
        );
        // Ratios against durations the grader measured itself: the unit is the only way off.
        let sum = m.value(&format!("{name}_sum"), &labels);
        let (low, high) = (k as f64 * held, client_total);
        assert!(
            sum >= low * 0.99 && sum <= high * 1.01,
            "requirement 2: {name}_sum of {k} requests is {sum}, {:.3} times what their clients measured in seconds; wanted between {low:.3} (lock wait) and {high:.3} (client side)",
            sum / high
        );
        // Each observation lands in a bucket that brackets it: none below the lock wait,
        // all at or above what the slowest client saw.
        for (le, n) in buckets(&m, name, &labels) {
            if le < held * 0.99 {
                assert!(
                    n == 0.0,
                    "requirement 2: bucket le={le} counts {n} of the requests that waited {held:.3} s; wanted 0"
                );
            } else if le >= client_max * 1.01 {
                assert!(
                    n == k as f64,
                    "requirement 2: bucket le={le} counts {n} of {k} requests that took at most {client_max:.3} s; wanted {k}"
                );
            }
        }
    })
    .await;
}

// Requirement 3: in-flight gauge and pool gauges.
#[tokio::test]
async fn gauges_follow_requests_blocked_in_the_database() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let id = id_of(&api.create(&random_title(), "").await);
        let m = scrape(&api).await;
        let max = m.value("db_pool_max_connections", &[]);
        assert!(
            max == 8.0,
            "requirement 3: db_pool_max_connections is {max} with --max-connections 8; wanted 8"
        );
        let in_flight = m.value("http_requests_in_flight", &[]);
        assert!(
            in_flight == 0.0,
            "requirement 3: http_requests_in_flight is {in_flight} with nothing in flight (the scrape is not counted); wanted 0"
        );
        let kind = m.types.get("http_requests_in_flight").map_or("none", String::as_str);
        assert!(
            kind == "gauge",
            "requirement 3: # TYPE of http_requests_in_flight is {kind}; wanted gauge"
        );

        let lock = db.lock_row("notes", id).await;
        let blocked = rand::rng().random_range(2..6);
        let api = Arc::new(api);
        let mut tasks = Vec::new();
        for _ in 0..blocked {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({"title": random_title(), "version": 1});
                api.json(Method::PUT, &format!("/notes/{id}"), &body).await
            }));
        }
        wait_for_lock_waiters(&db, blocked, "requirement 3: the updates wait on the row lock")
            .await;
        let m = scrape(&api).await;
        let in_flight = m.value("http_requests_in_flight", &[]);
        let in_use = m.value("db_pool_connections", &[("state", "in_use")]);
        let idle = m.value("db_pool_connections", &[("state", "idle")]);
        assert!(
            in_flight == blocked as f64 && in_use >= blocked as f64 && in_use + idle <= 8.0,
            "requirement 3: with {blocked} requests blocked in the database, in_flight={in_flight} in_use={in_use} idle={idle}; wanted in_flight={blocked}, in_use>={blocked}, in_use+idle<=8"
        );
        lock.commit().await.expect("COMMIT");
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.expect("an update task").status.as_u16());
        }
        // Connections go back to the pool just after the response: poll.
        let deadline = Instant::now() + Duration::from_secs(5);
        let m = loop {
            let m = scrape(&api).await;
            let in_flight = m.value("http_requests_in_flight", &[]);
            let in_use = m.value("db_pool_connections", &[("state", "in_use")]);
            if (in_flight, in_use) == (0.0, 0.0) {
                break m;
            }
            assert!(
                Instant::now() < deadline,
                "requirement 3: 5 s after the requests, in_flight={in_flight} in_use={in_use}; wanted both back to 0"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let puts: f64 = m
            .find("http_requests_total", &[("method", "PUT"), ("route", "/notes/{id}")])
            .iter()
            .map(|s| s.value)
            .sum();
        assert!(
            puts == blocked as f64,
            "requirement 1: http_requests_total of PUT /notes/{{id}} sums to {puts}; wanted {blocked} (statuses {statuses:?})"
        );
    })
    .await;
}

#[tokio::test]
async fn in_flight_gauge_returns_to_zero_when_clients_give_up() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let id = id_of(&api.create(&random_title(), "").await);
        let lock = db.lock_row("notes", id).await;
        let abandoned = rand::rng().random_range(1..4);
        let api = Arc::new(api);
        let mut tasks = Vec::new();
        for _ in 0..abandoned {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                let body = json!({"title": random_title(), "version": 1});
                api.json(Method::PUT, &format!("/notes/{id}"), &body).await
            }));
        }
        wait_for_lock_waiters(&db, abandoned, "requirement 3: the updates wait on the row lock")
            .await;
        let in_flight = scrape(&api).await.value("http_requests_in_flight", &[]);
        assert!(
            in_flight == abandoned as f64,
            "requirement 3: http_requests_in_flight is {in_flight} with {abandoned} requests in flight; wanted {abandoned}"
        );
        // The clients give up: their connections close and axum drops the request futures
        // halfway, while the lock is still held. Nothing after their `.await` ever runs.
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        let api2 = api.clone();
        eventually_for(
            Duration::from_secs(5),
            &format!("requirement 3: http_requests_in_flight back to 0 after {abandoned} clients hung up mid-request"),
            || {
                let api = api2.clone();
                async move { scrape(&api).await.value("http_requests_in_flight", &[]) == 0.0 }
            },
        )
        .await;
        lock.commit().await.expect("COMMIT");
        // The service is fine afterwards.
        let status = api.get(&format!("/notes/{id}")).await.status;
        assert!(
            status == 200,
            "requirement 3: GET /notes/{id} after the abandoned requests answered {status}; wanted 200"
        );
    })
    .await;
}

// Requirement 4: the exposition format.
#[tokio::test]
async fn metrics_are_prometheus_text_with_help_and_type() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        api.get("/notes").await;
        let reply = api.get("/metrics").await;
        let text = &reply.text;
        for (name, kind) in [
            ("http_requests_total", "counter"),
            ("http_request_duration_seconds", "histogram"),
            ("http_requests_in_flight", "gauge"),
            ("db_pool_connections", "gauge"),
            ("db_pool_max_connections", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "requirement 4: no `# HELP {name}` line in the scrape ({} bytes)",
                text.len()
            );
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "requirement 4: no `# TYPE {name} {kind}` line in the scrape ({} bytes)",
                text.len()
            );
        }
        // Every sample line parses (the parser panics on a bad one).
        let m = parse(text);
        assert!(
            !m.samples.is_empty(),
            "requirement 4: the scrape holds no samples"
        );
        // The connection that served GET /notes goes back to the pool just after the
        // response, so the scrape may still count it as in use: poll.
        let api = Arc::new(api);
        eventually_for(
            Duration::from_secs(5),
            "requirement 3: an idle pooled connection after GET /notes (db_pool_connections{state=\"idle\"} >= 1)",
            || {
                let api = api.clone();
                async move {
                    scrape(&api)
                        .await
                        .value("db_pool_connections", &[("state", "idle")])
                        >= 1.0
                }
            },
        )
        .await;
    })
    .await;
}
