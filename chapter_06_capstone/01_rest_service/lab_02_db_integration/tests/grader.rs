//! Grader for the notes API on PostgreSQL: real HTTP against a real database, one fresh
//! database per test.

use std::process::Command;
use std::time::{Duration, Instant};

use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use labkit::notes::{Api, assert_note, random_body, random_title};
use labkit::pg::TestDb;
use labkit::wait::{eventually_for, within};

fn start(db: &TestDb, extra: &[&str]) -> (Server, Api) {
    let mut args = vec!["--database-url", db.url.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(lab_bin!(), &args);
    let api = Api::new(server.addr());
    (server, api)
}

// Requirement 1: migrations and CRUD on the database.
#[tokio::test]
async fn migrates_and_stores_notes_in_the_notes_table() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let (title, body) = (random_title(), random_body());
        let id = assert_note(&api.create(&title, &body).await, &title, &body, 1);
        let row: (String, String, i64) =
            sqlx::query_as("SELECT title, body, version FROM notes WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await
                .expect("the note must be a row of the `notes` table");
        assert_eq!(row, (title.clone(), body.clone(), 1));
        // A row written behind the service's back is served too: no cache in between.
        sqlx::query("UPDATE notes SET body = 'from psql' WHERE id = $1")
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap();
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_note(&reply.json(), &title, "from psql", 1);
    })
    .await;
}

#[tokio::test]
async fn crud_round_trip_through_the_database() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let id = api.create(&random_title(), "v1").await["id"]
            .as_i64()
            .unwrap();
        let (title, body) = (random_title(), random_body());
        let reply = api.update(id, &title, &body, 1).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_note(&reply.json(), &title, &body, 2);
        let version: i64 = sqlx::query_scalar("SELECT version FROM notes WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(version, 2);
        assert_eq!(
            api.delete(&format!("/notes/{id}")).await.status,
            StatusCode::NO_CONTENT
        );
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows, 0);
        api.get(&format!("/notes/{id}"))
            .await
            .assert_problem(404, "note_not_found");
        api.update(id, "x", "", 2)
            .await
            .assert_problem(404, "note_not_found");
        api.delete(&format!("/notes/{id}"))
            .await
            .assert_problem(404, "note_not_found");
    })
    .await;
}

#[tokio::test]
async fn notes_survive_a_restart() {
    within(async {
        let db = TestDb::new(4).await;
        let (mut server, api) = start(&db, &[]);
        let (title, body) = (random_title(), random_body());
        let id = assert_note(&api.create(&title, &body).await, &title, &body, 1);
        server.kill();
        // A second start runs the migrations again: they must be idempotent.
        let (_server, api) = start(&db, &[]);
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_note(&reply.json(), &title, &body, 1);
    })
    .await;
}

// Requirement 2: pagination in SQL.
#[tokio::test]
async fn lists_pages_from_the_database() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let count: usize = rand::rng().random_range(5..12);
        let mut ids = Vec::new();
        for _ in 0..count {
            ids.push(
                api.create(&random_title(), "").await["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
        let limit: usize = 3;
        let mut seen = Vec::new();
        for offset in (0..count).step_by(limit) {
            let page = api
                .get(&format!("/notes?limit={limit}&offset={offset}"))
                .await
                .json();
            assert_eq!(page["total"], json!(count), "{page}");
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n["id"].as_i64().unwrap()),
            );
        }
        assert_eq!(seen, ids);
        api.get("/notes?limit=0")
            .await
            .assert_problem(400, "invalid_query");
    })
    .await;
}

// Requirement 3: optimistic concurrency and unique titles, enforced by the database.
#[tokio::test]
async fn stale_version_is_409_version_conflict() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let id = api.create(&random_title(), "v1").await["id"]
            .as_i64()
            .unwrap();
        // Someone else bumps the version directly in the database.
        sqlx::query("UPDATE notes SET version = version + 1 WHERE id = $1")
            .bind(id)
            .execute(&db.pool)
            .await
            .unwrap();
        let problem = api
            .update(id, &random_title(), "lost", 1)
            .await
            .assert_problem(409, "version_conflict");
        assert!(
            problem["detail"].as_str().unwrap().contains('2'),
            "{problem}"
        );
        assert_eq!(
            api.update(id, &random_title(), "ok", 2).await.status,
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_updates_of_one_version_let_exactly_one_win() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let id = api.create(&random_title(), "v1").await["id"]
            .as_i64()
            .unwrap();
        let writers = rand::rng().random_range(4..9);
        let api = std::sync::Arc::new(api);
        let mut tasks = Vec::new();
        for i in 0..writers {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                api.update(id, &format!("writer {i} {}", random_title()), "", 1)
                    .await
            }));
        }
        let mut won = 0;
        for task in tasks {
            let reply = task.await.unwrap();
            match reply.status.as_u16() {
                200 => won += 1,
                409 => {
                    reply.assert_problem(409, "version_conflict");
                }
                other => panic!("a concurrent update answered {other}: {}", reply.text),
            }
        }
        assert_eq!(
            won, 1,
            "exactly one of {writers} writers of version 1 must win"
        );
        let version: i64 = sqlx::query_scalar("SELECT version FROM notes WHERE id = $1")
            .bind(id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(version, 2);
    })
    .await;
}

#[tokio::test]
async fn concurrent_creates_of_one_title_let_exactly_one_win() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let title = random_title();
        let api = std::sync::Arc::new(api);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (api, title) = (api.clone(), title.clone());
            tasks.push(tokio::spawn(async move {
                api.json(Method::POST, "/notes", &json!({"title": title}))
                    .await
            }));
        }
        let mut created = 0;
        for task in tasks {
            let reply = task.await.unwrap();
            if reply.status == StatusCode::CREATED {
                created += 1;
            } else {
                reply.assert_problem(409, "title_taken");
            }
        }
        assert_eq!(created, 1);
        // Renaming onto a taken title is a 409 too.
        let other = api.create(&random_title(), "").await["id"]
            .as_i64()
            .unwrap();
        api.update(other, &title, "", 1)
            .await
            .assert_problem(409, "title_taken");
    })
    .await;
}

// Requirement 4: the error contract of lab 1 still holds.
#[tokio::test]
async fn bad_input_is_a_4xx_problem_never_a_500() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        api.create(&random_title(), "").await;
        api.send(
            Method::POST,
            "/notes",
            Some("application/json"),
            Some(b"{".to_vec()),
        )
        .await
        .assert_problem(400, "malformed_json");
        api.json(Method::POST, "/notes", &json!({"title": " "}))
            .await
            .assert_problem(422, "validation_failed");
        api.json(Method::POST, "/notes", &json!({"title": 1}))
            .await
            .assert_problem(422, "invalid_body");
        let big = serde_json::to_vec(&json!({"title": "t", "body": "x".repeat(100_000)})).unwrap();
        api.send(Method::POST, "/notes", Some("application/json"), Some(big))
            .await
            .assert_problem(413, "payload_too_large");
        api.get("/notes/abc")
            .await
            .assert_problem(400, "invalid_id");
        // A negative id is a valid number that names no note.
        api.get("/notes/-5")
            .await
            .assert_problem(404, "note_not_found");
        // A title with SQL in it is just text.
        let title = format!("'); DROP TABLE notes; -- {}", random_title());
        assert_note(&api.create(&title, "").await, &title, "", 1);
        assert_eq!(api.get("/notes").await.json()["total"], json!(2));
    })
    .await;
}

// Requirement 5: readiness reports the database.
#[tokio::test]
async fn readiness_reports_the_database_state() {
    within(async {
        let db = TestDb::new(4).await;
        let (mut server, api) = start(&db, &[]);
        let reply = api.get("/health/ready").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(reply.json()["database"], json!("up"));
        assert_eq!(api.get("/health/live").await.status, StatusCode::OK);

        db.drop_now().await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let reply = loop {
            let reply = api.get("/health/ready").await;
            if reply.status == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        reply.assert_problem(503, "not_ready");
        // Still alive: liveness is about the process, not its dependencies.
        assert_eq!(api.get("/health/live").await.status, StatusCode::OK);
        assert!(server.is_running());
    })
    .await;
}

// Requirement 6: graceful shutdown.
#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish() {
    within(async {
        let db = TestDb::new(4).await;
        let (mut server, api) = start(&db, &[]);
        let id = api.create(&random_title(), "v1").await["id"]
            .as_i64()
            .unwrap();

        // Hold the note's row lock so the next update stays in flight inside the server.
        let mut lock = db.pool.begin().await.unwrap();
        sqlx::query("SELECT id FROM notes WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *lock)
            .await
            .unwrap();
        let api = std::sync::Arc::new(api);
        let title = random_title();
        let in_flight = {
            let (api, title) = (api.clone(), title.clone());
            tokio::spawn(async move { api.update(id, &title, "v2", 1).await })
        };
        let (pool, name) = (db.pool.clone(), db.name.clone());
        eventually_for(
            Duration::from_secs(10),
            "the update waits on the row lock",
            || {
                let (pool, name) = (pool.clone(), name.clone());
                async move {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = $1 AND wait_event_type = 'Lock'",
                    )
                    .bind(name)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                    waiting == 1
                }
            },
        )
        .await;

        let killed = Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        // The server stops accepting new connections...
        let addr = server.addr();
        eventually_for(
            Duration::from_secs(10),
            "the listener is closed",
            || async move { !labkit::net::is_listening(addr, Duration::from_millis(200)) },
        )
        .await;
        // ...but waits for the request it is serving.
        assert!(
            server.is_running(),
            "the server exited with a request in flight"
        );
        lock.commit().await.unwrap();
        let reply = in_flight.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_note(&reply.json(), &title, "v2", 2);
        let status = server
            .terminate(Duration::from_secs(10))
            .expect("the server must exit once the in-flight request is done");
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
    })
    .await;
}

// Requirement 7: a bad database is a clear startup error.
#[test]
fn unreachable_database_is_a_one_line_startup_error() {
    let port = labkit::net::closed_port().port();
    let url = format!("postgres://postgres:postgres@127.0.0.1:{port}/nothing");
    let out = labkit::run(
        lab_bin!(),
        &["--addr", "127.0.0.1:0", "--database-url", &url],
    );
    let stderr = out.stderr_str();
    assert_eq!(out.code(), Some(1), "exit code 1; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "must not panic: {stderr}");
    assert!(!out.stdout_str().contains("listening on"));
    assert!(
        stderr.trim_end().lines().count() == 1,
        "one line: {stderr:?}"
    );
}
