//! Grader for structured logging: the server's stderr is read back as JSON lines and checked
//! field by field, span by span.

use std::process::Command;
use std::time::{Duration, Instant};

use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use labkit::notes::{Api, random_title};

/// Starts the server with `RUST_LOG` set (or removed) and the extra arguments.
fn start(rust_log: Option<&str>, args: &[&str]) -> (Server, Api) {
    let mut cmd = Command::new(lab_bin!());
    cmd.args(["--addr", "127.0.0.1:0"]).args(args);
    match rust_log {
        Some(filter) => cmd.env("RUST_LOG", filter),
        None => cmd.env_remove("RUST_LOG"),
    };
    let server = Server::start_command(cmd);
    let api = Api::new(server.addr());
    (server, api)
}

/// Every JSON log line printed so far (the `listening on` line is the only plain one allowed).
fn log_lines(server: &Server) -> Vec<Value> {
    let mut lines = Vec::new();
    for line in server.output().lines().filter(|l| !l.trim().is_empty()) {
        if line.starts_with("listening on ") {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("every log line must be JSON ({e}): {line:?}"));
        lines.push(value);
    }
    lines
}

/// Waits (at most 5 s) until `count` lines match `pred`; returns them. Logs reach us through a
/// pipe and a reader thread, so they may trail the HTTP response a little.
fn wait_for_lines(server: &Server, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<Value> = log_lines(server).into_iter().filter(|l| pred(l)).collect();
        if found.len() >= count || Instant::now() > deadline {
            assert_eq!(
                found.len(),
                count,
                "expected {count} matching log lines; the log:\n{}",
                server.output()
            );
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

fn completed_for(id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |l| message(l) == "request completed" && l["span"]["request_id"] == json!(id)
}

fn random_request_id() -> String {
    format!("req-{:012x}", rand::rng().random_range(0..u64::MAX >> 16))
}

async fn send_with_id(
    api: &Api,
    method: Method,
    path: &str,
    body: Option<Value>,
    id: &str,
) -> reqwest::Response {
    let mut request = api
        .client
        .request(method, format!("{}{path}", api.base))
        .header("x-request-id", id);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap());
    }
    request.send().await.expect("request")
}

// Requirement 1: one completion line per request, with method, route template, status, latency.
#[tokio::test]
async fn every_request_logs_one_completion_line_with_its_fields() {
    let (server, api) = start(None, &[]);
    let note = api.create(&random_title(), "b").await;
    let id = note["id"].as_i64().unwrap();
    let missing = rand::rng().random_range(1000..100_000);
    let cases = [
        (
            Method::GET,
            format!("/notes/{id}"),
            None,
            "/notes/{id}",
            200,
        ),
        (
            Method::GET,
            format!("/notes/{missing}"),
            None,
            "/notes/{id}",
            404,
        ),
        (
            Method::GET,
            "/notes?limit=5".to_string(),
            None,
            "/notes",
            200,
        ),
        (
            Method::POST,
            "/notes".to_string(),
            Some(json!({"title": random_title()})),
            "/notes",
            201,
        ),
        (
            Method::PUT,
            format!("/notes/{id}"),
            Some(json!({"title": random_title(), "version": 1})),
            "/notes/{id}",
            200,
        ),
        (
            Method::DELETE,
            format!("/notes/{id}"),
            None,
            "/notes/{id}",
            204,
        ),
    ];
    for (method, path, body, route, status) in cases {
        let request_id = random_request_id();
        let reply = send_with_id(&api, method.clone(), &path, body, &request_id).await;
        assert_eq!(reply.status().as_u16(), status, "{method} {path}");
        let line = wait_for_lines(&server, 1, completed_for(&request_id)).remove(0);
        assert_eq!(line["level"], json!("INFO"), "{line}");
        assert_eq!(line["span"]["name"], json!("request"), "{line}");
        assert_eq!(line["span"]["method"], json!(method.as_str()), "{line}");
        assert_eq!(
            line["span"]["route"],
            json!(route),
            "the route template: {line}"
        );
        assert_eq!(line["fields"]["status"], json!(status), "{line}");
        let latency = line["fields"]["latency_ms"]
            .as_f64()
            .unwrap_or_else(|| panic!("`latency_ms` must be a number: {line}"));
        assert!((0.0..10_000.0).contains(&latency), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn unknown_routes_are_logged_as_unmatched_not_as_raw_paths() {
    let (server, api) = start(None, &[]);
    let request_id = random_request_id();
    let path = format!("/no/such/{}", rand::rng().random_range(0..1_000_000));
    let reply = send_with_id(&api, Method::GET, &path, None, &request_id).await;
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    let line = wait_for_lines(&server, 1, completed_for(&request_id)).remove(0);
    assert_eq!(line["span"]["route"], json!("unmatched"), "{line}");
    assert_eq!(line["fields"]["status"], json!(404), "{line}");
    assert!(
        !server.output().contains(&path),
        "the raw path must not be logged"
    );
}

// Requirement 2: request ids.
#[tokio::test]
async fn request_id_from_the_client_is_echoed_and_logged() {
    let (server, api) = start(None, &[]);
    for _ in 0..3 {
        let request_id = random_request_id();
        let reply = send_with_id(&api, Method::GET, "/notes", None, &request_id).await;
        assert_eq!(
            reply
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            Some(request_id.as_str())
        );
        wait_for_lines(&server, 1, completed_for(&request_id));
    }
}

#[tokio::test]
async fn missing_or_invalid_request_id_is_replaced_by_a_generated_uuid() {
    let (server, api) = start(None, &[]);
    let too_long = "x".repeat(65);
    let mut seen = Vec::new();
    for sent in [None, Some(too_long.as_str()), Some("has spaces in it")] {
        let mut request = api.client.get(format!("{}/notes", api.base));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let reply = request.send().await.unwrap();
        let id = reply
            .headers()
            .get("x-request-id")
            .expect("every response carries x-request-id")
            .to_str()
            .unwrap()
            .to_string();
        assert_ne!(Some(id.as_str()), sent);
        let uuid_shape = id.len() == 36
            && id.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        assert!(uuid_shape, "a generated id is a UUID: {id:?}");
        wait_for_lines(&server, 1, completed_for(&id));
        seen.push(id);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "each request gets its own id");
}

// Requirement 3: errors with their cause chain, inside the request span.
#[tokio::test]
async fn server_errors_are_logged_once_with_their_cause_chain() {
    let (server, api) = start(None, &["--journal", "/dev/full"]);
    let request_id = random_request_id();
    let reply = send_with_id(
        &api,
        Method::POST,
        "/notes",
        Some(json!({"title": random_title()})),
        &request_id,
    )
    .await;
    assert_eq!(reply.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = reply.text().await.unwrap();
    let problem: Value = serde_json::from_str(&text).expect("a problem document");
    assert_eq!(problem["code"], json!("internal_error"));
    assert!(
        !text.contains("No space left") && !text.contains("/dev/full"),
        "internals must not leak to the client: {text}"
    );
    let errors = wait_for_lines(&server, 1, |l| {
        l["level"] == json!("ERROR") && l["span"]["request_id"] == json!(request_id)
    });
    let error = errors[0]["fields"]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the ERROR line has an `error` field: {}", errors[0]));
    assert!(error.contains("journal"), "the top-level context: {error}");
    assert!(
        error.contains("No space left on device"),
        "the root cause (ENOSPC from /dev/full) must be in the chain: {error}"
    );
    let done = wait_for_lines(&server, 1, completed_for(&request_id));
    assert_eq!(done[0]["fields"]["status"], json!(500));
    // Write-ahead: the failed write changed nothing.
    assert_eq!(api.get("/notes").await.json()["total"], json!(0));
}

// Requirement 4: span nesting.
#[tokio::test]
async fn journal_writes_run_in_a_child_span_of_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let journal_arg = journal.display().to_string();
    let (server, api) = start(Some("debug"), &["--journal", &journal_arg]);
    let request_id = random_request_id();
    let title = random_title();
    let reply = send_with_id(
        &api,
        Method::POST,
        "/notes",
        Some(json!({"title": title})),
        &request_id,
    )
    .await;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let line = wait_for_lines(&server, 1, |l| {
        message(l) == "journal appended" && l["spans"][0]["request_id"] == json!(request_id)
    })
    .remove(0);
    assert_eq!(line["level"], json!("DEBUG"), "{line}");
    let spans = line["spans"]
        .as_array()
        .expect("`spans` lists the span stack");
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["request", "journal"], "{line}");
    assert_eq!(spans[1]["op"], json!("create"), "{line}");
    assert_eq!(
        line["span"]["name"],
        json!("journal"),
        "the current span: {line}"
    );
    assert!(
        line["fields"]["bytes"].as_u64().is_some_and(|b| b > 0),
        "{line}"
    );
    let written = std::fs::read_to_string(&journal).unwrap();
    assert!(
        written.contains(&title),
        "the journal holds the write: {written:?}"
    );
}

// Requirement 5: RUST_LOG filtering.
#[tokio::test]
async fn default_level_is_info_without_debug_lines() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j").display().to_string();
    let (server, api) = start(None, &["--journal", &journal]);
    let request_id = random_request_id();
    send_with_id(
        &api,
        Method::POST,
        "/notes",
        Some(json!({"title": random_title()})),
        &request_id,
    )
    .await;
    wait_for_lines(&server, 1, completed_for(&request_id));
    let levels: Vec<Value> = log_lines(&server)
        .iter()
        .map(|l| l["level"].clone())
        .collect();
    assert!(
        !levels.contains(&json!("DEBUG")),
        "no DEBUG line at the default level: {levels:?}"
    );
}

#[tokio::test]
async fn rust_log_warn_keeps_errors_and_drops_info() {
    let (server, api) = start(Some("warn"), &["--journal", "/dev/full"]);
    let ok_id = random_request_id();
    let reply = send_with_id(&api, Method::GET, "/notes", None, &ok_id).await;
    assert_eq!(reply.status(), StatusCode::OK);
    let failing_id = random_request_id();
    send_with_id(
        &api,
        Method::POST,
        "/notes",
        Some(json!({"title": random_title()})),
        &failing_id,
    )
    .await;
    // The ERROR line arrives (positive progress first)...
    wait_for_lines(&server, 1, |l| {
        l["level"] == json!("ERROR") && l["span"]["request_id"] == json!(failing_id)
    });
    // ...and no INFO line ever did.
    let infos: Vec<Value> = log_lines(&server)
        .into_iter()
        .filter(|l| l["level"] == json!("INFO"))
        .collect();
    assert!(
        infos.is_empty(),
        "RUST_LOG=warn must drop INFO lines: {infos:?}"
    );
}
