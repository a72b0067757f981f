//! Grader for the notes API on PostgreSQL: real HTTP against a real database, one fresh
//! database per test. What the service stores is read back with the grader's own SQL, and its
//! connections are counted on the server side, in `pg_stat_activity`.

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use labkit::notes::{Api, Reply, assert_note, first_difference, random_text, random_title};
use labkit::pg::{TestDb, lock_waiters};
use labkit::wait::{eventually_for, within};

fn start(db: &TestDb, extra: &[&str]) -> (Server, Api) {
    let mut args = vec!["--database-url", db.url.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(lab_bin!(), &args);
    let api = Api::new(server.addr());
    (server, api)
}

fn assert_status(requirement: u32, what: &str, reply: &Reply, want: StatusCode) {
    assert!(
        reply.status == want,
        "requirement {requirement}: {what} answered {}; wanted {want} (body {:?})",
        reply.status,
        reply.text
    );
}

fn id_of(requirement: u32, note: &serde_json::Value) -> i64 {
    note["id"].as_i64().unwrap_or_else(|| {
        panic!("requirement {requirement}: the note's `id` is not an integer: {note}")
    })
}

/// The grader's own SQL, so a failure says which query broke.
async fn scalar_i64(db: &TestDb, sql: &'static str, id: i64) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("the grader's query {sql:?} failed: {e}"))
}

// Requirement 1: migrations and CRUD on the database.
#[tokio::test]
async fn migrates_and_stores_notes_in_the_notes_table() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let (title, body) = (random_title(), random_text(10_000));
        let id = assert_note(1, &api.create(&title, &body).await, &title, &body, 1);
        let row: Option<(String, String, i64)> =
            sqlx::query_as("SELECT title, body, version FROM notes WHERE id = $1")
                .bind(id)
                .fetch_optional(&db.pool)
                .await
                .unwrap_or_else(|e| panic!("requirement 1: no `notes` table to read: {e}"));
        let (got_title, got_body, got_version) = row.unwrap_or_else(|| {
            panic!("requirement 1: note {id} was created, but `notes` has no row with that id")
        });
        assert!(
            got_title == title && got_version == 1,
            "requirement 1: the row holds title {got_title:?} version {got_version}; wanted {title:?} version 1"
        );
        assert!(
            got_body == body,
            "requirement 1: the row's body differs from the one sent: {}",
            first_difference(&got_body, &body)
        );
        // A row written behind the service's back is served too: no cache in between, not
        // even of a note the service has just read.
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_note(1, &reply.json(), &title, &body, 1);
        sqlx::query("UPDATE notes SET body = 'from psql' WHERE id = $1")
            .bind(id)
            .execute(&db.pool)
            .await
            .expect("the grader's UPDATE");
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_note(1, &reply.json(), &title, "from psql", 1);
    })
    .await;
}

#[tokio::test]
async fn crud_round_trip_through_the_database() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let id = id_of(1, &api.create(&random_title(), "v1").await);
        let (title, body) = (random_title(), random_text(2_000));
        let reply = api.update(id, &title, &body, 1).await;
        assert_status(1, &format!("PUT /notes/{id}"), &reply, StatusCode::OK);
        assert_note(1, &reply.json(), &title, &body, 2);
        let version = scalar_i64(&db, "SELECT version FROM notes WHERE id = $1", id).await;
        assert!(
            version == 2,
            "requirement 1: the row's version is {version} after one update; wanted 2"
        );
        let reply = api.delete(&format!("/notes/{id}")).await;
        assert_status(
            1,
            &format!("DELETE /notes/{id}"),
            &reply,
            StatusCode::NO_CONTENT,
        );
        let rows = scalar_i64(&db, "SELECT count(*) FROM notes WHERE id = $1", id).await;
        assert!(
            rows == 0,
            "requirement 1: the row of note {id} is still in `notes` after the DELETE"
        );
        api.get(&format!("/notes/{id}"))
            .await
            .assert_problem(1, 404, "note_not_found");
        api.update(id, "x", "", 2)
            .await
            .assert_problem(1, 404, "note_not_found");
        api.delete(&format!("/notes/{id}"))
            .await
            .assert_problem(1, 404, "note_not_found");
    })
    .await;
}

#[tokio::test]
async fn notes_survive_a_restart() {
    within(async {
        let db = TestDb::new(4).await;
        let (mut server, api) = start(&db, &[]);
        let (title, body) = (random_title(), random_text(500));
        let id = assert_note(1, &api.create(&title, &body).await, &title, &body, 1);
        server.kill();
        // A second start runs the migrations again: they must be idempotent.
        let restarted = std::panic::catch_unwind(AssertUnwindSafe(|| start(&db, &[])));
        let (_server, api) = restarted.unwrap_or_else(|_| {
            panic!("requirement 1: the server did not start a second time on the same database (see its output above); migrations must run again harmlessly")
        });
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_status(1, "GET after a restart", &reply, StatusCode::OK);
        assert_note(1, &reply.json(), &title, &body, 1);
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
            ids.push(id_of(2, &api.create(&random_title(), "").await));
        }
        let limit: usize = 3;
        let mut seen = Vec::new();
        for offset in (0..count).step_by(limit) {
            let path = format!("/notes?limit={limit}&offset={offset}");
            let page = api.get(&path).await.json();
            assert!(
                page["total"] == json!(count),
                "requirement 2: GET {path} has `total` {}; wanted {count}",
                page["total"]
            );
            let items = page["items"]
                .as_array()
                .unwrap_or_else(|| panic!("requirement 2: GET {path} has no `items`: {page}"));
            seen.extend(items.iter().map(|n| id_of(2, n)));
        }
        assert!(
            seen == ids,
            "requirement 2: the pages listed ids {seen:?}; wanted {ids:?}"
        );
        // A row inserted behind the service's back is counted and listed too.
        let outside: i64 = sqlx::query_scalar(
            "INSERT INTO notes (title, body) VALUES ($1, 'from psql') RETURNING id",
        )
        .bind(random_title())
        .fetch_one(&db.pool)
        .await
        .expect("the grader's INSERT");
        let path = format!("/notes?limit=1&offset={count}");
        let page = api.get(&path).await.json();
        assert!(
            page["total"] == json!(count + 1) && page["items"][0]["id"] == json!(outside),
            "requirement 2: after an INSERT in psql, GET {path} is {page}; wanted total {} and note {outside}",
            count + 1
        );
        api.get("/notes?limit=0")
            .await
            .assert_problem(2, 400, "invalid_query");
    })
    .await;
}

// Requirement 3: optimistic concurrency and unique titles, enforced by the database.
#[tokio::test]
async fn stale_version_is_409_version_conflict() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let id = id_of(3, &api.create(&random_title(), "v1").await);
        // Someone else bumps the version directly in the database.
        sqlx::query("UPDATE notes SET version = version + 1 WHERE id = $1")
            .bind(id)
            .execute(&db.pool)
            .await
            .expect("the grader's UPDATE");
        let problem = api
            .update(id, &random_title(), "lost", 1)
            .await
            .assert_problem(3, 409, "version_conflict");
        assert!(
            problem["detail"].as_str().unwrap_or_default().contains('2'),
            "requirement 3: the conflict's detail does not name the current version 2: {problem}"
        );
        let body = scalar_i64(&db, "SELECT length(body)::bigint FROM notes WHERE id = $1", id).await;
        assert!(
            body == 2,
            "requirement 3: the refused update changed the row (body of {body} chars; wanted \"v1\")"
        );
        let reply = api.update(id, &random_title(), "ok", 2).await;
        assert_status(3, "an update based on the current version", &reply, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn concurrent_updates_of_one_version_let_exactly_one_win() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let id = id_of(3, &api.create(&random_title(), "v1").await);
        // Every writer reads version 1 and reaches the database before any of them can write:
        // the grader holds the row lock until all of them wait on it. A version check done by
        // a SELECT before the UPDATE passes for all of them; one in the UPDATE's WHERE does not.
        let lock = db.lock_row("notes", id).await;
        let writers = rand::rng().random_range(3..8);
        let api = Arc::new(api);
        let mut tasks = Vec::new();
        for i in 0..writers {
            let api = api.clone();
            tasks.push(tokio::spawn(async move {
                api.update(id, &format!("writer {i} {}", random_title()), "", 1)
                    .await
            }));
        }
        let (pool, name) = (db.pool.clone(), db.name.clone());
        eventually_for(
            Duration::from_secs(10),
            &format!("requirement 3: {writers} concurrent updates all wait on the row lock"),
            || {
                let (pool, name) = (pool.clone(), name.clone());
                async move { lock_waiters(&pool, &name).await == writers }
            },
        )
        .await;
        lock.commit().await.expect("COMMIT");
        let mut won = 0;
        for task in tasks {
            let reply = task.await.expect("an update task");
            match reply.status.as_u16() {
                200 => won += 1,
                _ => {
                    reply.assert_problem(3, 409, "version_conflict");
                }
            }
        }
        let version = scalar_i64(&db, "SELECT version FROM notes WHERE id = $1", id).await;
        assert!(
            won == 1 && version == 2,
            "requirement 3: {won} of {writers} concurrent updates of version 1 won and the row is at version {version}; wanted exactly 1 winner and version 2"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_creates_of_one_title_let_exactly_one_win() {
    within(async {
        let db = TestDb::new(4).await;
        let (_server, api) = start(&db, &[]);
        let title = random_title();
        let api = Arc::new(api);
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
            let reply = task.await.expect("a create task");
            if reply.status == StatusCode::CREATED {
                created += 1;
            } else {
                reply.assert_problem(3, 409, "title_taken");
            }
        }
        assert!(
            created == 1,
            "requirement 3: {created} of 8 concurrent creates of one title succeeded; wanted 1"
        );
        // One more, alone, after the race: still a 409, and still one row.
        api.json(Method::POST, "/notes", &json!({"title": title}))
            .await
            .assert_problem(3, 409, "title_taken");
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notes WHERE title = $1")
            .bind(&title)
            .fetch_one(&db.pool)
            .await
            .expect("the grader's count");
        assert!(
            rows == 1,
            "requirement 3: `notes` holds {rows} rows titled {title:?}; wanted 1"
        );
        // Renaming onto a taken title is a 409 too.
        let other = id_of(3, &api.create(&random_title(), "").await);
        api.update(other, &title, "", 1)
            .await
            .assert_problem(3, 409, "title_taken");
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
        .assert_problem(4, 400, "malformed_json");
        api.json(Method::POST, "/notes", &json!({"title": " "}))
            .await
            .assert_problem(4, 422, "validation_failed");
        api.json(Method::POST, "/notes", &json!({"title": 1}))
            .await
            .assert_problem(4, 422, "invalid_body");
        let big = serde_json::to_vec(&json!({"title": "t", "body": "x".repeat(100_000)}))
            .expect("a JSON body");
        api.send_oversized("/notes", big)
            .await
            .assert_problem(4, 413, "payload_too_large");
        api.get("/notes/abc")
            .await
            .assert_problem(4, 400, "invalid_id");
        // A negative id is a valid number that names no note.
        api.get("/notes/-5")
            .await
            .assert_problem(4, 404, "note_not_found");
        // A title with SQL in it is just text.
        let title = format!("'); DROP TABLE notes; -- {}", random_title());
        assert_note(4, &api.create(&title, "").await, &title, "", 1);
        let total = api.get("/notes").await.json()["total"].clone();
        assert!(
            total == json!(2),
            "requirement 4: `total` is {total} after the bad requests; wanted 2"
        );
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
        assert_status(5, "GET /health/ready", &reply, StatusCode::OK);
        let ready = reply.json();
        assert!(
            ready["database"] == json!("up"),
            "requirement 5: readiness is {ready}; wanted \"database\": \"up\""
        );
        let reply = api.get("/health/live").await;
        assert_status(5, "GET /health/live", &reply, StatusCode::OK);

        db.drop_now().await;
        let deadline = Instant::now() + Duration::from_secs(15);
        let reply = loop {
            let reply = api.get("/health/ready").await;
            if reply.status == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        reply.assert_problem(5, 503, "not_ready");
        // Still alive: liveness is about the process, not its dependencies.
        let reply = api.get("/health/live").await;
        assert_status(
            5,
            "GET /health/live without a database",
            &reply,
            StatusCode::OK,
        );
        assert!(
            server.is_running(),
            "requirement 5: the server exited when its database went away; wanted it alive"
        );
    })
    .await;
}

// Requirement 6: graceful shutdown.
#[tokio::test]
async fn sigterm_lets_the_in_flight_request_finish() {
    within(async {
        let db = TestDb::new(4).await;
        let (mut server, api) = start(&db, &[]);
        let id = id_of(6, &api.create(&random_title(), "v1").await);

        // Hold the note's row lock so the next update stays in flight inside the server.
        let lock = db.lock_row("notes", id).await;
        let api = Arc::new(api);
        let title = random_title();
        let in_flight = {
            let (api, title) = (api.clone(), title.clone());
            tokio::spawn(async move { api.update(id, &title, "v2", 1).await })
        };
        let (pool, name) = (db.pool.clone(), db.name.clone());
        eventually_for(
            Duration::from_secs(10),
            "requirement 6: the update reaches the database and waits on the row lock",
            || {
                let (pool, name) = (pool.clone(), name.clone());
                async move { lock_waiters(&pool, &name).await == 1 }
            },
        )
        .await;

        let killed = Command::new("kill")
            .args(["-TERM", &server.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(killed.success(), "kill -TERM {} failed", server.pid());
        // The server stops accepting new connections...
        let addr = server.addr();
        eventually_for(
            Duration::from_secs(10),
            "requirement 6: after SIGTERM the listener is closed",
            || async move { !labkit::net::is_listening(addr, Duration::from_millis(200)) },
        )
        .await;
        // ...but waits for the request it is serving.
        assert!(
            server.is_running(),
            "requirement 6: the server exited on SIGTERM with a request in flight; wanted it to finish the request first"
        );
        lock.commit().await.expect("COMMIT");
        let reply = in_flight.await.expect("the in-flight update task");
        assert_status(6, "the update in flight during SIGTERM", &reply, StatusCode::OK);
        assert_note(6, &reply.json(), &title, "v2", 2);
        let status = server.terminate(Duration::from_secs(10));
        assert!(
            status.is_some_and(|s| s.success()),
            "requirement 6: once the request was done the server exited with {status:?}; wanted exit code 0"
        );
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
    assert!(
        out.code() == Some(1),
        "requirement 7: exit code {:?} with an unreachable database; wanted 1 (stderr {stderr:?})",
        out.code()
    );
    assert!(
        !stderr.contains("panicked"),
        "requirement 7: the server panicked; wanted one error line: {stderr}"
    );
    assert!(
        !out.stdout_str().contains("listening on"),
        "requirement 7: the server said `listening on` without a database"
    );
    let lines = stderr.trim_end().lines().count();
    assert!(
        lines == 1,
        "requirement 7: stderr has {lines} lines; wanted one: {stderr:?}"
    );
}

// Requirement 8: the pool is the only door to the database.
#[tokio::test]
async fn pool_never_opens_more_than_max_connections() {
    within(async {
        let db = TestDb::new(4).await;
        let max: i64 = rand::rng().random_range(2..5);
        let (_server, api) = start(&db, &["--max-connections", &max.to_string()]);
        let id = id_of(8, &api.create(&random_title(), "v1").await);
        // `max` requests take every connection of the pool and wait on the grader's row lock;
        // the others wait for a connection and must give up with a 503 after the acquire
        // timeout, while the first ones are still in flight.
        let lock = db.lock_row("notes", id).await;
        let requests = max + rand::rng().random_range(2..4);
        let api = Arc::new(api);
        let replies: Arc<Mutex<Vec<Reply>>> = Arc::default();
        let mut tasks = Vec::new();
        for i in 0..requests {
            let (api, replies) = (api.clone(), replies.clone());
            tasks.push(tokio::spawn(async move {
                let reply = api
                    .update(id, &format!("request {i} {}", random_title()), "", 1)
                    .await;
                replies.lock().unwrap().push(reply);
            }));
        }
        let (pool, name) = (db.pool.clone(), db.name.clone());
        let refused = requests - max;
        eventually_for(
            Duration::from_secs(12),
            &format!(
                "requirement 8: with --max-connections {max} and {requests} requests in flight, {refused} must answer 503 after the acquire timeout"
            ),
            || {
                let (pool, name, replies) = (pool.clone(), name.clone(), replies.clone());
                async move {
                    let waiting = lock_waiters(&pool, &name).await;
                    assert!(
                        waiting <= max,
                        "requirement 8: {waiting} connections of the server wait in PostgreSQL with --max-connections {max}; wanted at most {max}"
                    );
                    replies.lock().unwrap().len() as i64 >= refused
                }
            },
        )
        .await;
        let waiting = lock_waiters(&db.pool, &db.name).await;
        assert!(
            waiting == max,
            "requirement 8: {waiting} server connections hold requests in flight; wanted {max} (the whole pool)"
        );
        for reply in replies.lock().unwrap().drain(..) {
            reply.assert_problem(8, 503, "database_unavailable");
        }
        lock.commit().await.expect("COMMIT");
        for task in tasks {
            task.await.expect("a request task");
        }
        let replies = replies.lock().unwrap();
        let won = replies.iter().filter(|r| r.status == StatusCode::OK).count();
        assert!(
            won == 1,
            "requirement 8: {won} of the {max} requests that had a connection won; wanted 1 (the others 409)"
        );
    })
    .await;
}
