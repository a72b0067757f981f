//! Grader for the notes API: every route and every error shape, through real HTTP.

use std::collections::BTreeSet;

use labkit::{Server, lab_bin};
use rand::RngExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use labkit::notes::{Api, assert_note, random_body, random_title};

fn start() -> (Server, Api) {
    let server = Server::start(lab_bin!(), &[]);
    let api = Api::new(server.addr());
    (server, api)
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
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    let id = assert_note(&reply.json(), &title, &body, 1);
    assert_eq!(reply.header("location"), Some(format!("/notes/{id}")));
}

#[tokio::test]
async fn reads_a_note_back_by_id() {
    let (_server, api) = start();
    let mut created = Vec::new();
    for _ in 0..rand::rng().random_range(2..6) {
        let (title, body) = (random_title(), random_body());
        let id = assert_note(&api.create(&title, &body).await, &title, &body, 1);
        created.push((id, title, body));
    }
    for (id, title, body) in created {
        let reply = api.get(&format!("/notes/{id}")).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_eq!(assert_note(&reply.json(), &title, &body, 1), id);
    }
}

#[tokio::test]
async fn trims_the_title() {
    let (_server, api) = start();
    let title = random_title();
    let note = api.create(&format!("  {title}\t"), "x").await;
    assert_note(&note, &title, "x", 1);
}

// Requirement 2: pagination.
#[tokio::test]
async fn lists_notes_page_by_page_in_id_order() {
    let (_server, api) = start();
    let count: usize = rand::rng().random_range(7..16);
    let mut ids = Vec::new();
    for _ in 0..count {
        ids.push(
            api.create(&random_title(), "b").await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let limit: usize = rand::rng().random_range(2..5);
    let mut seen = Vec::new();
    let mut offset = 0;
    while offset < count + limit {
        let reply = api
            .get(&format!("/notes?limit={limit}&offset={offset}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let page = reply.json();
        assert_eq!(page["total"], json!(count), "total of {page}");
        assert_eq!(page["limit"], json!(limit), "limit of {page}");
        assert_eq!(page["offset"], json!(offset), "offset of {page}");
        let items = page["items"].as_array().expect("`items` array");
        assert_eq!(
            items.len(),
            limit.min(count.saturating_sub(offset)),
            "{page}"
        );
        seen.extend(items.iter().map(|n| n["id"].as_i64().unwrap()));
        offset += limit;
    }
    assert_eq!(seen, ids, "pages must list every note once, ordered by id");
}

#[tokio::test]
async fn list_defaults_to_20_items_from_offset_0() {
    let (_server, api) = start();
    for _ in 0..23 {
        api.create(&random_title(), "").await;
    }
    let page = api.get("/notes").await.json();
    assert_eq!(page["limit"], json!(20));
    assert_eq!(page["offset"], json!(0));
    assert_eq!(page["total"], json!(23));
    assert_eq!(page["items"].as_array().unwrap().len(), 20);
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
            .assert_problem(400, "invalid_query");
    }
    assert_eq!(api.get("/notes?limit=100").await.status, StatusCode::OK);
}

// Requirement 3: update with optimistic concurrency.
#[tokio::test]
async fn update_replaces_content_and_bumps_the_version() {
    let (_server, api) = start();
    let id = api.create(&random_title(), &random_body()).await["id"]
        .as_i64()
        .unwrap();
    let rounds = rand::rng().random_range(1..5);
    let mut last = (String::new(), String::new());
    for version in 1..=rounds {
        last = (random_title(), random_body());
        let reply = api.update(id, &last.0, &last.1, version).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        assert_note(&reply.json(), &last.0, &last.1, version + 1);
    }
    let stored = api.get(&format!("/notes/{id}")).await.json();
    assert_note(&stored, &last.0, &last.1, rounds + 1);
}

#[tokio::test]
async fn stale_version_is_409_version_conflict() {
    let (_server, api) = start();
    let id = api.create(&random_title(), "v1").await["id"]
        .as_i64()
        .unwrap();
    let reply = api.update(id, &random_title(), "v2", 1).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // A second writer still holding version 1 must not overwrite the first one's change.
    api.update(id, &random_title(), "lost update", 1)
        .await
        .assert_problem(409, "version_conflict");
    api.update(id, &random_title(), "future", 7)
        .await
        .assert_problem(409, "version_conflict");
    assert_eq!(
        api.get(&format!("/notes/{id}")).await.json()["body"],
        json!("v2")
    );
}

#[tokio::test]
async fn duplicate_title_is_409_title_taken() {
    let (_server, api) = start();
    let (a, b) = (random_title(), random_title());
    api.create(&a, "").await;
    let id_b = api.create(&b, "").await["id"].as_i64().unwrap();
    api.json(
        Method::POST,
        "/notes",
        &json!({"title": a, "body": "again"}),
    )
    .await
    .assert_problem(409, "title_taken");
    api.update(id_b, &a, "", 1)
        .await
        .assert_problem(409, "title_taken");
    // Keeping one's own title is not a conflict.
    assert_eq!(api.update(id_b, &b, "new", 1).await.status, StatusCode::OK);
}

// Requirement 4: delete.
#[tokio::test]
async fn delete_answers_204_and_the_note_is_gone() {
    let (_server, api) = start();
    let keep = api.create(&random_title(), "").await["id"]
        .as_i64()
        .unwrap();
    let id = api.create(&random_title(), "").await["id"]
        .as_i64()
        .unwrap();
    let reply = api.delete(&format!("/notes/{id}")).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    assert!(reply.text.is_empty(), "204 has no body");
    api.get(&format!("/notes/{id}"))
        .await
        .assert_problem(404, "note_not_found");
    api.delete(&format!("/notes/{id}"))
        .await
        .assert_problem(404, "note_not_found");
    assert_eq!(
        api.get(&format!("/notes/{keep}")).await.status,
        StatusCode::OK
    );
    assert_eq!(api.get("/notes").await.json()["total"], json!(1));
}

// Requirement 5: 404 and 400 for ids and routes.
#[tokio::test]
async fn missing_note_is_404_note_not_found_on_every_method() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    let id = rand::rng().random_range(1000..1_000_000);
    let path = format!("/notes/{id}");
    api.get(&path).await.assert_problem(404, "note_not_found");
    api.delete(&path)
        .await
        .assert_problem(404, "note_not_found");
    api.update(id, &random_title(), "", 1)
        .await
        .assert_problem(404, "note_not_found");
}

#[tokio::test]
async fn non_numeric_id_is_400_invalid_id() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    for path in ["/notes/abc", "/notes/1x", "/notes/99999999999999999999"] {
        api.get(path).await.assert_problem(400, "invalid_id");
    }
}

#[tokio::test]
async fn unknown_route_is_404_and_wrong_method_is_405() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    api.get("/nope")
        .await
        .assert_problem(404, "route_not_found");
    api.get("/notes/1/extra")
        .await
        .assert_problem(404, "route_not_found");
    api.send(Method::PATCH, "/notes", None, None)
        .await
        .assert_problem(405, "method_not_allowed");
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
        .assert_problem(422, "validation_failed");
    let fields: BTreeSet<&str> = problem["errors"]
        .as_array()
        .expect("`errors` lists the broken rules")
        .iter()
        .map(|e| e["field"].as_str().expect("each error names its `field`"))
        .collect();
    assert_eq!(fields, BTreeSet::from(["body", "title"]), "{problem}");
    for title in ["", "   "] {
        api.json(
            Method::POST,
            "/notes",
            &json!({"title": title, "body": "x"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    }
    // The limits themselves are allowed (counted in characters, not bytes).
    let ok = api
        .json(
            Method::POST,
            "/notes",
            &json!({"title": "é".repeat(120), "body": "ü".repeat(10_000)}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(api.get("/notes").await.json()["total"], json!(2));
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
            .assert_problem(422, "invalid_body");
    }
    api.json(Method::PUT, "/notes/1", &json!({"title": "no version"}))
        .await
        .assert_problem(422, "invalid_body");
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
        .assert_problem(400, "malformed_json");
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
    .assert_problem(415, "unsupported_media_type");
    api.send(Method::POST, "/notes", None, Some(body))
        .await
        .assert_problem(415, "unsupported_media_type");
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let (_server, api) = start();
    api.create(&random_title(), "").await;
    let size = rand::rng().random_range(70_000..200_000);
    let body = serde_json::to_vec(&json!({"title": "big", "body": "x".repeat(size)})).unwrap();
    api.send(Method::POST, "/notes", Some("application/json"), Some(body))
        .await
        .assert_problem(413, "payload_too_large");
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
            "{method} {path} with garbage answered {}: {}",
            reply.status,
            reply.text
        );
        if reply.status.is_client_error() {
            assert!(
                reply
                    .header("content-type")
                    .unwrap_or_default()
                    .starts_with("application/problem+json"),
                "every error is a problem document: {}",
                reply.text
            );
        }
    }
    assert!(server.is_running());
    api.create(&random_title(), "").await;
}
