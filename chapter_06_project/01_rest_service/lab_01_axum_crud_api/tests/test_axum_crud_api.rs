//! Grader for the notes API: every route and every error shape, through real HTTP.

use std::collections::{BTreeMap, BTreeSet};

use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use labkit::notes::{Api, Reply, assert_note, random_body, random_text, random_title};

fn start() -> (Server, Api) {
    let server = Server::start(lab_bin!(), &[]);
    let api = Api::new(server.addr());
    (server, api)
}

/// Asserts the status of a reply, naming the requirement and the request.
fn assert_status(requirement: u32, what: &str, reply: &Reply, want: StatusCode) {
    assert!(
        reply.status == want,
        "requirement {requirement}: {what} answered {}; wanted {want} (body {:?})",
        reply.status,
        reply.text
    );
}

fn id_of(requirement: u32, note: &Value) -> i64 {
    note["id"].as_i64().unwrap_or_else(|| {
        panic!("requirement {requirement}: the note's `id` is not an integer: {note}")
    })
}

// Requirement 1: create and read.
#[tokio::test]
async fn creates_a_note_with_201_and_location() {
    let (_server, api) = start();
    let (title, body) = (random_title(), random_body());
    let reply = api
        .json(
            Method::POST,
            "/notes",
            &json!({"title": title, "body": body}),
        )
        .await;
    assert_status(1, "POST /notes", &reply, StatusCode::CREATED);
    let content_type = reply.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "requirement 1: the created note came as {content_type:?}; wanted application/json"
    );
    let id = assert_note(1, &reply.json(), &title, &body, 1);
    let location = reply.header("location");
    assert!(
        location == Some(format!("/notes/{id}")),
        "requirement 1: `Location` is {location:?}; wanted \"/notes/{id}\""
    );
}

#[tokio::test]
async fn reads_a_note_back_by_id() {
    let (_server, api) = start();
    let mut created = Vec::new();
    for _ in 0..rand::rng().random_range(3..7) {
        // Bodies of random length and content, with whitespace at both ends: what comes back
        // must be what was sent, byte for byte.
        let (title, body) = (random_title(), random_text(10_000));
        let id = assert_note(1, &api.create(&title, &body).await, &title, &body, 1);
        created.push((id, title, body));
    }
    for (id, title, body) in created {
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_status(1, &format!("GET /notes/{id}"), &reply, StatusCode::OK);
        let got = assert_note(1, &reply.json(), &title, &body, 1);
        assert!(
            got == id,
            "requirement 1: GET /notes/{id} served note {got}"
        );
    }
}

#[tokio::test]
async fn trims_the_title() {
    let (_server, api) = start();
    let title = random_title();
    let note = api.create(&format!("  {title}\t"), "x").await;
    assert_note(1, &note, &title, "x", 1);
}

#[tokio::test]
async fn ids_are_never_reused_after_a_delete() {
    let (_server, api) = start();
    let mut rng = rand::rng();
    let mut live: BTreeMap<i64, String> = BTreeMap::new();
    let mut ever = BTreeSet::new();
    for round in 0..rng.random_range(12..20) {
        // Mostly creates, some deletes of a random live note.
        if round > 2 && !live.is_empty() && rng.random_range(0..3) == 0 {
            let victim = *live.keys().nth(rng.random_range(0..live.len())).unwrap();
            let reply = api.delete(&format!("/notes/{victim}")).await;
            assert_status(
                4,
                &format!("DELETE /notes/{victim}"),
                &reply,
                StatusCode::NO_CONTENT,
            );
            live.remove(&victim);
        } else {
            let title = random_title();
            let id = id_of(1, &api.create(&title, "").await);
            assert!(
                ever.insert(id),
                "requirement 1: a new note got id {id}, which an earlier note already had; \
                 wanted a fresh id (ids seen: {} notes)",
                ever.len()
            );
            live.insert(id, title);
        }
    }
    // Every live note is still itself: no create overwrote another note.
    for (id, title) in &live {
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_status(1, &format!("GET /notes/{id}"), &reply, StatusCode::OK);
        let got = &reply.json()["title"];
        assert!(
            got == &json!(title),
            "requirement 1: note {id} now has title {got}; wanted {title:?}"
        );
    }
    let total = api.get("/notes?limit=100").await.json()["total"].clone();
    assert!(
        total == json!(live.len()),
        "requirement 2: `total` is {total} after the creates and deletes; wanted {}",
        live.len()
    );
}

// Requirement 2: pagination.
#[tokio::test]
async fn lists_notes_page_by_page_in_id_order() {
    let (_server, api) = start();
    let count: usize = rand::rng().random_range(7..16);
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(id_of(1, &api.create(&random_title(), "b").await));
    }
    let limit: usize = rand::rng().random_range(2..5);
    let mut seen = Vec::new();
    let mut offset = 0;
    while offset < count + limit {
        let path = format!("/notes?limit={limit}&offset={offset}");
        let reply = api.get(&path).await;
        assert_status(2, &format!("GET {path}"), &reply, StatusCode::OK);
        let page = reply.json();
        for (member, want) in [("total", count), ("limit", limit), ("offset", offset)] {
            assert!(
                page[member] == json!(want),
                "requirement 2: GET {path} has `{member}` {}; wanted {want}",
                page[member]
            );
        }
        let items = page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("requirement 2: GET {path} has no `items` array: {page}"));
        let want = limit.min(count.saturating_sub(offset));
        assert!(
            items.len() == want,
            "requirement 2: GET {path} listed {} items; wanted {want}",
            items.len()
        );
        seen.extend(items.iter().map(|n| id_of(2, n)));
        offset += limit;
    }
    assert!(
        seen == ids,
        "requirement 2: the pages listed ids {seen:?}; wanted each of {ids:?} once, in order"
    );
}

#[tokio::test]
async fn list_defaults_to_20_items_from_offset_0() {
    let (_server, api) = start();
    for _ in 0..23 {
        api.create(&random_title(), "").await;
    }
    let page = api.get("/notes").await.json();
    for (member, want) in [("limit", 20), ("offset", 0), ("total", 23)] {
        assert!(
            page[member] == json!(want),
            "requirement 2: GET /notes has `{member}` {}; wanted {want}",
            page[member]
        );
    }
    let items = page["items"].as_array().map_or(0, Vec::len);
    assert!(
        items == 20,
        "requirement 2: GET /notes listed {items} items of 23; wanted 20"
    );
}

#[tokio::test]
async fn bad_pagination_parameters_are_400_invalid_query() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "offset=-1",
        "limit=1.5",
    ] {
        api.get(&format!("/notes?{query}"))
            .await
            .assert_problem(2, 400, "invalid_query");
    }
    let reply = api.get("/notes?limit=100").await;
    assert_status(2, "GET /notes?limit=100", &reply, StatusCode::OK);
}

// Requirement 3: update with optimistic concurrency.
#[tokio::test]
async fn update_replaces_content_and_bumps_the_version() {
    let (_server, api) = start();
    let id = id_of(1, &api.create(&random_title(), &random_body()).await);
    let rounds = rand::rng().random_range(1..5);
    let mut last = (String::new(), String::new());
    for version in 1..=rounds {
        last = (random_title(), random_text(2_000));
        let reply = api.update(id, &last.0, &last.1, version).await;
        assert_status(3, &format!("PUT /notes/{id}"), &reply, StatusCode::OK);
        assert_note(3, &reply.json(), &last.0, &last.1, version + 1);
    }
    let stored = api.get(&format!("/notes/{id}")).await.json();
    assert_note(3, &stored, &last.0, &last.1, rounds + 1);
}

#[tokio::test]
async fn stale_version_is_409_version_conflict() {
    let (_server, api) = start();
    let id = id_of(1, &api.create(&random_title(), "v1").await);
    let title = random_title();
    let reply = api.update(id, &title, "v2", 1).await;
    assert_status(3, &format!("PUT /notes/{id}"), &reply, StatusCode::OK);
    // A second writer still holding version 1 must not overwrite the first one's change.
    api.update(id, &random_title(), "lost update", 1)
        .await
        .assert_problem(3, 409, "version_conflict");
    api.update(id, &random_title(), "future", 7)
        .await
        .assert_problem(3, 409, "version_conflict");
    // The refused updates changed nothing.
    let stored = api.get(&format!("/notes/{id}")).await.json();
    assert_note(3, &stored, &title, "v2", 2);
}

#[tokio::test]
async fn concurrent_updates_of_one_version_let_exactly_one_win() {
    let (_server, api) = start();
    let id = id_of(1, &api.create(&random_title(), "v1").await);
    let writers = rand::rng().random_range(16..32);
    let api = std::sync::Arc::new(api);
    let tasks: Vec<_> = (0..writers)
        .map(|n| {
            let api = api.clone();
            tokio::spawn(async move {
                let reply = api
                    .update(id, &random_title(), &format!("writer {n}"), 1)
                    .await;
                (n, reply)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (n, reply) = task.await.expect("an update task");
        if reply.status == StatusCode::OK {
            winners.push(n);
        } else {
            reply.assert_problem(3, 409, "version_conflict");
        }
    }
    assert!(
        winners.len() == 1,
        "requirement 3: {} of {writers} concurrent updates of version 1 succeeded; wanted exactly 1",
        winners.len()
    );
    let stored = api.get(&format!("/notes/{id}")).await.json();
    let want = format!("writer {}", winners[0]);
    assert!(
        stored["body"] == json!(want) && stored["version"] == json!(2),
        "requirement 3: after the race the note is {stored}; wanted the winner's body {want:?} at version 2"
    );
}

#[tokio::test]
async fn duplicate_title_is_409_title_taken() {
    let (_server, api) = start();
    let (a, b) = (random_title(), random_title());
    api.create(&a, "").await;
    let id_b = id_of(1, &api.create(&b, "").await);
    api.json(
        Method::POST,
        "/notes",
        &json!({"title": a, "body": "again"}),
    )
    .await
    .assert_problem(3, 409, "title_taken");
    // The same title with other whitespace around it is the same title.
    api.json(
        Method::POST,
        "/notes",
        &json!({"title": format!(" {a} "), "body": "again"}),
    )
    .await
    .assert_problem(3, 409, "title_taken");
    api.update(id_b, &a, "", 1)
        .await
        .assert_problem(3, 409, "title_taken");
    // Keeping one's own title is not a conflict.
    let reply = api.update(id_b, &b, "new", 1).await;
    assert_status(3, "an update keeping its own title", &reply, StatusCode::OK);
}

// Requirement 4: delete.
#[tokio::test]
async fn delete_answers_204_and_the_note_is_gone() {
    let (_server, api) = start();
    let keep = id_of(1, &api.create(&random_title(), "").await);
    let id = id_of(1, &api.create(&random_title(), "").await);
    let reply = api.delete(&format!("/notes/{id}")).await;
    assert_status(
        4,
        &format!("DELETE /notes/{id}"),
        &reply,
        StatusCode::NO_CONTENT,
    );
    assert!(
        reply.text.is_empty(),
        "requirement 4: the 204 came with a body of {} bytes; wanted none",
        reply.text.len()
    );
    api.get(&format!("/notes/{id}"))
        .await
        .assert_problem(4, 404, "note_not_found");
    // Deleting it again is not a success: the note is not there.
    api.delete(&format!("/notes/{id}"))
        .await
        .assert_problem(4, 404, "note_not_found");
    let reply = api.get(&format!("/notes/{keep}")).await;
    assert_status(
        4,
        "GET of the note that was not deleted",
        &reply,
        StatusCode::OK,
    );
    let total = api.get("/notes").await.json()["total"].clone();
    assert!(
        total == json!(1),
        "requirement 4: `total` is {total} after deleting 1 of 2 notes; wanted 1"
    );
}

// Requirement 5: 404 and 400 for ids and routes.
#[tokio::test]
async fn missing_note_is_404_note_not_found_on_every_method() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    let id = rand::rng().random_range(1000..1_000_000);
    let path = format!("/notes/{id}");
    api.get(&path)
        .await
        .assert_problem(5, 404, "note_not_found");
    api.delete(&path)
        .await
        .assert_problem(5, 404, "note_not_found");
    api.update(id, &random_title(), "", 1)
        .await
        .assert_problem(5, 404, "note_not_found");
    let total = api.get("/notes").await.json()["total"].clone();
    assert!(
        total == json!(1),
        "requirement 5: `total` is {total} after requests on a missing note; wanted 1"
    );
}

#[tokio::test]
async fn non_numeric_id_is_400_invalid_id() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    for path in ["/notes/abc", "/notes/1x", "/notes/99999999999999999999"] {
        api.get(path).await.assert_problem(5, 400, "invalid_id");
    }
    api.delete("/notes/abc")
        .await
        .assert_problem(5, 400, "invalid_id");
    api.json(
        Method::PUT,
        "/notes/abc",
        &json!({"title": random_title(), "version": 1}),
    )
    .await
    .assert_problem(5, 400, "invalid_id");
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    api.get("/nope")
        .await
        .assert_problem(5, 404, "route_not_found");
    api.get("/notes/1/extra")
        .await
        .assert_problem(5, 404, "route_not_found");
    api.send(Method::PATCH, "/notes", None, None)
        .await
        .assert_problem(5, 405, "method_not_allowed");
}

// Requirement 6: validation.
#[tokio::test]
async fn invalid_content_is_422_listing_every_field() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    let long_title = "t".repeat(121);
    let long_body = "b".repeat(10_001);
    let problem = api
        .json(
            Method::POST,
            "/notes",
            &json!({"title": long_title, "body": long_body}),
        )
        .await
        .assert_problem(6, 422, "validation_failed");
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("requirement 6: no `errors` array in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap_or("<no field>"))
        .collect();
    assert!(
        fields == BTreeSet::from(["body", "title"]),
        "requirement 6: `errors` names the fields {fields:?}; wanted both \"body\" and \"title\""
    );
    for title in ["", "   "] {
        api.json(
            Method::POST,
            "/notes",
            &json!({"title": title, "body": "x"}),
        )
        .await
        .assert_problem(6, 422, "validation_failed");
    }
    // The limits themselves are allowed (counted in characters, not bytes).
    let ok = api
        .json(
            Method::POST,
            "/notes",
            &json!({"title": "é".repeat(120), "body": "ü".repeat(10_000)}),
        )
        .await;
    assert_status(
        6,
        "a 120-character title and a 10 000-character body (2 bytes each)",
        &ok,
        StatusCode::CREATED,
    );
    let total = api.get("/notes").await.json()["total"].clone();
    assert!(
        total == json!(2),
        "requirement 6: `total` is {total}; wanted 2 (refused notes are not stored)"
    );
}

#[tokio::test]
async fn json_of_the_wrong_shape_is_422_invalid_body() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    for body in [
        json!({"body": "no title"}),
        json!({"title": 5}),
        json!("just a string"),
    ] {
        api.json(Method::POST, "/notes", &body)
            .await
            .assert_problem(6, 422, "invalid_body");
    }
    api.json(Method::PUT, "/notes/1", &json!({"title": "no version"}))
        .await
        .assert_problem(6, 422, "invalid_body");
}

// Requirement 7: malformed bodies.
#[tokio::test]
async fn malformed_json_is_400_malformed_json() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    for body in [
        &b"{"[..],
        b"{\"title\": }",
        b"not json",
        b"{\"title\": \"a\"} trailing",
        b"",
    ] {
        api.send(
            Method::POST,
            "/notes",
            Some("application/json"),
            Some(body.to_vec()),
        )
        .await
        .assert_problem(7, 400, "malformed_json");
    }
}

#[tokio::test]
async fn body_without_json_content_type_is_415() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    let body = br#"{"title": "x"}"#.to_vec();
    api.send(
        Method::POST,
        "/notes",
        Some("text/plain"),
        Some(body.clone()),
    )
    .await
    .assert_problem(7, 415, "unsupported_media_type");
    api.send(Method::POST, "/notes", None, Some(body))
        .await
        .assert_problem(7, 415, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    let size = rand::rng().random_range(70_000..200_000);
    let body = serde_json::to_vec(&json!({"title": "big", "body": "x".repeat(size)})).unwrap();
    api.send_oversized("/notes", body)
        .await
        .assert_problem(7, 413, "payload_too_large");
    // The server is still fine afterwards.
    api.create(&random_title(), "").await;
}

#[tokio::test]
async fn random_garbage_never_gets_a_500() {
    let (mut server, api) = start();
    api.create(&random_title(), "").await;
    let mut rng = rand::rng();
    let routes = [
        (Method::POST, "/notes"),
        (Method::PUT, "/notes/1"),
        (Method::GET, "/notes"),
    ];
    for _ in 0..60 {
        let (method, path) = &routes[rng.random_range(0..routes.len())];
        let len = rng.random_range(0..300);
        let body: Vec<u8> = (0..len).map(|_| rng.random_range(0..=255u8)).collect();
        let reply = api
            .send(method.clone(), path, Some("application/json"), Some(body))
            .await;
        assert!(
            reply.status.is_client_error() || reply.status.is_success(),
            "requirement 7: {method} {path} with {len} random bytes answered {}; wanted a 2xx or 4xx: {}",
            reply.status,
            reply.text
        );
        if reply.status.is_client_error() {
            let content_type = reply.header("content-type").unwrap_or_default();
            assert!(
                content_type.starts_with("application/problem+json"),
                "requirement 7: a {} came as {content_type:?}; wanted a problem document: {}",
                reply.status,
                reply.text
            );
        }
    }
    assert!(
        server.is_running(),
        "requirement 7: the server exited after random bodies; wanted it serving"
    );
    api.create(&random_title(), "").await;
}
