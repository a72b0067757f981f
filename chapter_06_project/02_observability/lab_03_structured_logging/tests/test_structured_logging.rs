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
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("requirement 1: a log line is not JSON ({e}); wanted JSON lines only: {line:?}")
        });
        lines.push(value);
    }
    lines
}

/// Waits (at most 5 s) until `count` lines match `pred`; returns them. Logs reach us through a
/// pipe and a reader thread, so they may trail the HTTP response a little. `what` names the
/// requirement and the lines, for the failure message.
fn wait_for_lines(
    server: &Server,
    what: &str,
    count: usize,
    pred: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found: Vec<Value> = log_lines(server).into_iter().filter(|l| pred(l)).collect();
        if found.len() >= count || Instant::now() > deadline {
            assert!(
                found.len() == count,
                "{what}: found {} such log lines; wanted {count}. The log:\n{}",
                found.len(),
                server.output()
            );
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts one member of a log line, naming the requirement.
fn assert_member(requirement: u32, line: &Value, pointer: &str, want: Value) {
    let got = line.pointer(pointer).cloned().unwrap_or(Value::Null);
    assert!(
        got == want,
        "requirement {requirement}: `{pointer}` of the log line is {got}; wanted {want} (line {line})"
    );
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
    let id = note["id"].as_i64().expect("the created note's id");
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
        assert!(
            reply.status().as_u16() == status,
            "requirement 1: {method} {path} answered {}; wanted {status}",
            reply.status()
        );
        let what = format!("requirement 1: `request completed` lines of {method} {path}");
        let line = wait_for_lines(&server, &what, 1, completed_for(&request_id)).remove(0);
        assert_member(1, &line, "/level", json!("INFO"));
        assert_member(1, &line, "/span/name", json!("request"));
        assert_member(1, &line, "/span/method", json!(method.as_str()));
        assert_member(1, &line, "/span/route", json!(route));
        assert_member(1, &line, "/fields/status", json!(status));
        let latency = line["fields"]["latency_ms"].as_f64().unwrap_or_else(|| {
            panic!(
                "requirement 1: `latency_ms` is {}; wanted a JSON number (line {line})",
                line["fields"]["latency_ms"]
            )
        });
        assert!(
            (0.0..10_000.0).contains(&latency),
            "requirement 1: `latency_ms` is {latency}; wanted milliseconds, 0 to 10 000 (line {line})"
        );
        assert!(
            line["timestamp"].is_string(),
            "requirement 1: the line has no `timestamp`: {line}"
        );
    }
}

#[tokio::test]
async fn unknown_routes_are_logged_as_unmatched_not_as_raw_paths() {
    let (server, api) = start(None, &[]);
    let request_id = random_request_id();
    let path = format!("/no/such/{}", rand::rng().random_range(0..1_000_000));
    let reply = send_with_id(&api, Method::GET, &path, None, &request_id).await;
    assert!(
        reply.status() == StatusCode::NOT_FOUND,
        "requirement 1: GET {path} answered {}; wanted 404",
        reply.status()
    );
    let what = format!("requirement 1: `request completed` lines of GET {path}");
    let line = wait_for_lines(&server, &what, 1, completed_for(&request_id)).remove(0);
    assert_member(1, &line, "/span/route", json!("unmatched"));
    assert_member(1, &line, "/fields/status", json!(404));
    assert!(
        !server.output().contains(&path),
        "requirement 1: the raw path {path} is in the log; wanted only the route template"
    );
}

// Requirement 2: request ids.
#[tokio::test]
async fn request_id_from_the_client_is_echoed_and_logged() {
    let (server, api) = start(None, &[]);
    for _ in 0..3 {
        let request_id = random_request_id();
        let reply = send_with_id(&api, Method::GET, "/notes", None, &request_id).await;
        let echoed = reply
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok());
        assert!(
            echoed == Some(request_id.as_str()),
            "requirement 2: the response's X-Request-Id is {echoed:?}; wanted the client's {request_id:?}"
        );
        let what = format!("requirement 2: completion lines with request_id {request_id}");
        wait_for_lines(&server, &what, 1, completed_for(&request_id));
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
        let reply = request.send().await.expect("GET /notes");
        let id = reply
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| {
                panic!("requirement 2: a response to X-Request-Id {sent:?} has no X-Request-Id")
            })
            .to_string();
        assert!(
            Some(id.as_str()) != sent,
            "requirement 2: the invalid X-Request-Id {sent:?} was kept; wanted a new UUID"
        );
        let uuid_shape = id.len() == 36
            && id.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        assert!(
            uuid_shape,
            "requirement 2: the generated id is {id:?}; wanted a UUID"
        );
        let what = format!("requirement 2: completion lines with the generated id {id}");
        wait_for_lines(&server, &what, 1, completed_for(&id));
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert!(
        seen.len() == 3,
        "requirement 2: 3 requests got {} distinct ids; wanted one each",
        seen.len()
    );
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
    assert!(
        reply.status() == StatusCode::INTERNAL_SERVER_ERROR,
        "requirement 3: a create with the journal on /dev/full answered {}; wanted 500",
        reply.status()
    );
    let text = reply.text().await.expect("the 500's body");
    let problem: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("requirement 3: the 500's body is not a problem document ({e}): {text:?}")
    });
    assert_member(3, &problem, "/code", json!("internal_error"));
    assert!(
        !text.contains("No space left") && !text.contains("/dev/full"),
        "requirement 3: the 500 tells the client our internals: {text}"
    );
    // The completion line comes after everything the request logged: wait for it, then count.
    let what = "requirement 3: completion lines of the failed create";
    let done = wait_for_lines(&server, what, 1, completed_for(&request_id));
    assert_member(3, &done[0], "/fields/status", json!(500));
    let errors: Vec<Value> = log_lines(&server)
        .into_iter()
        .filter(|l| l["level"] == json!("ERROR"))
        .collect();
    assert!(
        errors.len() == 1,
        "requirement 3: {} ERROR lines for one failed request; wanted exactly 1: {errors:?}",
        errors.len()
    );
    assert_member(3, &errors[0], "/span/request_id", json!(request_id));
    let error = errors[0]["fields"]["error"].as_str().unwrap_or_else(|| {
        panic!(
            "requirement 3: the ERROR line has no string `error` field: {}",
            errors[0]
        )
    });
    assert!(
        error.contains("journal") && error.contains("No space left on device"),
        "requirement 3: the `error` field is {error:?}; wanted the whole chain, from the journal \
         append down to ENOSPC (`No space left on device`)"
    );
    // Write-ahead: the failed write changed nothing.
    let total = api.get("/notes").await.json()["total"].clone();
    assert!(
        total == json!(0),
        "requirement 3: `total` is {total} after a failed journal write; wanted 0"
    );
}

// Requirement 4: span nesting.
#[tokio::test]
async fn journal_writes_run_in_a_child_span_of_the_request() {
    let dir = tempfile::tempdir().expect("a temporary directory");
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
    assert!(
        reply.status() == StatusCode::CREATED,
        "requirement 4: POST /notes answered {}; wanted 201",
        reply.status()
    );
    let what = "requirement 4: `journal appended` lines under the request's span";
    let line = wait_for_lines(&server, what, 1, |l| {
        message(l) == "journal appended" && l["spans"][0]["request_id"] == json!(request_id)
    })
    .remove(0);
    assert_member(4, &line, "/level", json!("DEBUG"));
    let names: Vec<&str> = line["spans"]
        .as_array()
        .map(|spans| {
            spans
                .iter()
                .map(|s| s["name"].as_str().unwrap_or("?"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names == ["request", "journal"],
        "requirement 4: the span stack is {names:?}; wanted [\"request\", \"journal\"] (line {line})"
    );
    assert_member(4, &line, "/spans/1/op", json!("create"));
    assert_member(4, &line, "/span/name", json!("journal"));
    assert!(
        line["fields"]["bytes"].as_u64().is_some_and(|b| b > 0),
        "requirement 4: `bytes` is {}; wanted a positive number (line {line})",
        line["fields"]["bytes"]
    );
    let written = std::fs::read_to_string(&journal).unwrap_or_default();
    assert!(
        written.contains(&title),
        "requirement 4: the journal ({} bytes) does not hold the created title {title:?}",
        written.len()
    );
}

// Requirement 5: RUST_LOG filtering.
#[tokio::test]
async fn default_level_is_info_without_debug_lines() {
    let dir = tempfile::tempdir().expect("a temporary directory");
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
    let what = "requirement 5: completion lines at the default level";
    wait_for_lines(&server, what, 1, completed_for(&request_id));
    let debug = log_lines(&server)
        .into_iter()
        .filter(|l| l["level"] == json!("DEBUG") || l["level"] == json!("TRACE"))
        .count();
    assert!(
        debug == 0,
        "requirement 5: {debug} DEBUG/TRACE lines without RUST_LOG; wanted none (default `info`)"
    );
}

#[tokio::test]
async fn rust_log_warn_keeps_errors_and_drops_info() {
    let (server, api) = start(Some("warn"), &["--journal", "/dev/full"]);
    let ok_id = random_request_id();
    let reply = send_with_id(&api, Method::GET, "/notes", None, &ok_id).await;
    assert!(
        reply.status() == StatusCode::OK,
        "requirement 5: GET /notes answered {}; wanted 200",
        reply.status()
    );
    let failing_id = random_request_id();
    send_with_id(
        &api,
        Method::POST,
        "/notes",
        Some(json!({"title": random_title()})),
        &failing_id,
    )
    .await;
    // The ERROR line arrives, still inside its request span (positive progress first)...
    let what = "requirement 5: under RUST_LOG=warn, ERROR lines carrying the request's span";
    wait_for_lines(&server, what, 1, |l| {
        l["level"] == json!("ERROR") && l["span"]["request_id"] == json!(failing_id)
    });
    // ...and no INFO line ever did.
    let infos = log_lines(&server)
        .into_iter()
        .filter(|l| l["level"] == json!("INFO"))
        .count();
    assert!(
        infos == 0,
        "requirement 5: {infos} INFO lines under RUST_LOG=warn; wanted none"
    );
}

// Requirement 6: no secrets in the logs.
#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let journal = dir.path().join("j").display().to_string();
    // The most verbose level the service has: whatever it logs, no secret may be in it.
    let (server, api) = start(Some("debug"), &["--journal", &journal]);
    let token = format!("tok{:016x}", rand::rng().random_range(0..u64::MAX));
    let cookie = format!("sess{:016x}", rand::rng().random_range(0..u64::MAX));
    let body_secret = format!("body{:016x}", rand::rng().random_range(0..u64::MAX));
    let request_id = random_request_id();
    let reply = api
        .client
        .post(format!("{}/notes", api.base))
        .header("x-request-id", &request_id)
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", format!("session={cookie}"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({"title": random_title(), "body": body_secret})).unwrap())
        .send()
        .await
        .expect("POST /notes");
    assert!(
        reply.status() == StatusCode::CREATED,
        "requirement 6: POST /notes answered {}; wanted 201",
        reply.status()
    );
    let what = "requirement 6: completion lines of the request carrying secrets";
    wait_for_lines(&server, what, 1, completed_for(&request_id));
    let log = server.output();
    for (name, secret) in [
        ("the Authorization token", &token),
        ("the session cookie", &cookie),
        ("the note's body", &body_secret),
    ] {
        let lines = log.lines().filter(|l| l.contains(secret.as_str())).count();
        assert!(
            lines == 0,
            "requirement 6: {name} appears in {lines} log lines; wanted in none"
        );
    }
}
