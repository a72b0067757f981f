//! Grader for the metrics: a known sequence of requests, then `/metrics` is scraped, parsed as
//! Prometheus text exposition format, and the numbers are checked.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::Method;
use serde_json::json;

use labkit::notes::{Api, random_title};
use labkit::pg::TestDb;
use labkit::wait::within;

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
            "several {name} series match {want:?}: {found:?}"
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
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("bad labels {line:?}"));
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label {line:?}"));
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
    assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&reply.text)
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
            ids.push(
                api.create(&random_title(), "").await["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        let (gets, misses, lists) = (
            rng.random_range(1..8),
            rng.random_range(1..5),
            rng.random_range(1..4),
        );
        for i in 0..gets {
            assert_eq!(
                api.get(&format!("/notes/{}", ids[i % ids.len()]))
                    .await
                    .status,
                200
            );
        }
        for _ in 0..misses {
            let missing = rng.random_range(10_000..1_000_000);
            assert_eq!(api.get(&format!("/notes/{missing}")).await.status, 404);
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
            assert_eq!(
                got, n as f64,
                "{total}{{method={method},route={route},status={status}}}"
            );
        }
        // No label explosion: no series names a concrete note id.
        for s in m.find(total, &[]) {
            let route = &s.labels["route"];
            assert!(
                !route.chars().any(|c| c.is_ascii_digit()),
                "raw path as a label: {s:?}"
            );
        }
        assert_eq!(m.types.get(total).map(String::as_str), Some("counter"));
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
            assert_eq!(api.get(&path).await.status, 404);
        }
        let m = scrape(&api).await;
        let got = m.value(
            "http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")],
        );
        assert_eq!(got, n as f64);
        // /metrics itself is not counted.
        assert!(
            m.find("http_requests_total", &[("route", "/metrics")])
                .is_empty()
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
        let id = api.create(&random_title(), "").await["id"]
            .as_i64()
            .unwrap();
        let n = rand::rng().random_range(3..12);
        for _ in 0..n {
            api.get(&format!("/notes/{id}")).await;
        }
        let m = scrape(&api).await;
        let name = "http_request_duration_seconds";
        assert_eq!(m.types.get(name).map(String::as_str), Some("histogram"));
        let labels = [("method", "GET"), ("route", "/notes/{id}")];
        assert_eq!(m.value(&format!("{name}_count"), &labels), n as f64);
        let sum = m.value(&format!("{name}_sum"), &labels);
        assert!(sum > 0.0 && sum < n as f64 * 5.0, "sum of latencies {sum}");
        let mut buckets: Vec<(f64, f64)> = m
            .find(&format!("{name}_bucket"), &labels)
            .iter()
            .map(|s| {
                let le = match s.labels["le"].as_str() {
                    "+Inf" => f64::INFINITY,
                    le => le.parse().unwrap(),
                };
                (le, s.value)
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() >= 8, "at least 8 buckets: {buckets:?}");
        assert!(
            buckets[0].0 <= 0.005,
            "the first bucket resolves milliseconds: {buckets:?}"
        );
        assert!(
            buckets[buckets.len() - 2].0 >= 1.0,
            "buckets reach a second: {buckets:?}"
        );
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "cumulative: {buckets:?}"
        );
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, n as f64));
    })
    .await;
}

// Requirement 3: in-flight gauge and pool gauges.
#[tokio::test]
async fn gauges_follow_requests_blocked_in_the_database() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db);
        let id = api.create(&random_title(), "").await["id"].as_i64().unwrap();
        let m = scrape(&api).await;
        assert_eq!(m.value("db_pool_max_connections", &[]), 8.0);
        assert_eq!(m.value("http_requests_in_flight", &[]), 0.0);
        assert_eq!(m.types.get("http_requests_in_flight").map(String::as_str), Some("gauge"));

        // Lock the row: every update of it waits in the server, holding a pooled connection.
        let mut lock = db.pool.begin().await.unwrap();
        sqlx::query("SELECT id FROM notes WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *lock)
            .await
            .unwrap();
        let blocked = rand::rng().random_range(2..6);
        let api = std::sync::Arc::new(api);
        let mut tasks = Vec::new();
        for _ in 0..blocked {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                api.json(Method::PUT, &format!("/notes/{id}"), &json!({"title": random_title(), "version": 1}))
                    .await
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = scrape(&api).await;
            let in_flight = m.value("http_requests_in_flight", &[]);
            let in_use = m.value("db_pool_connections", &[("state", "in_use")]);
            if in_flight == blocked as f64 && in_use >= blocked as f64 {
                let idle = m.value("db_pool_connections", &[("state", "idle")]);
                assert!(in_use + idle <= 8.0, "in_use {in_use} + idle {idle} within the pool size");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "expected in_flight = {blocked} and in_use >= {blocked}, got {in_flight} and {in_use}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        lock.commit().await.unwrap();
        let mut statuses = Vec::new();
        for task in tasks {
            statuses.push(task.await.unwrap().status.as_u16());
        }
        // Connections go back to the pool just after the response: allow a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let m = loop {
            let m = scrape(&api).await;
            let in_flight = m.value("http_requests_in_flight", &[]);
            let in_use = m.value("db_pool_connections", &[("state", "in_use")]);
            if in_flight == 0.0 && in_use == 0.0 {
                break m;
            }
            assert!(Instant::now() < deadline, "gauges must return to 0: {in_flight}, {in_use}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let puts: f64 = m
            .find("http_requests_total", &[("method", "PUT"), ("route", "/notes/{id}")])
            .iter()
            .map(|s| s.value)
            .sum();
        assert_eq!(puts, blocked as f64, "statuses {statuses:?}");
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
                "# HELP {name}:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "# TYPE {name} {kind}:\n{text}"
            );
        }
        // The connection that served GET /notes goes back to the pool just after the
        // response, so the scrape may still count it as in use: allow a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut m = parse(text);
        while m.value("db_pool_connections", &[("state", "idle")]) < 1.0 {
            assert!(
                Instant::now() < deadline,
                "no idle pooled connection within 5 s of GET /notes; first scrape:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            m = scrape(&api).await;
        }
    })
    .await;
}
