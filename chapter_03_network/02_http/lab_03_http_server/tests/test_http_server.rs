//! Grader for the HTTP/1.1 server, part 1: the specification shared with lab 3.4 (the same
//! server with axum). The checks live in `labkit::http_suite`, so both labs pass the very same
//! tests; each one starts the binary over a fresh directory of random files.
//! Each test is named after the requirement it checks (see README.md).

use labkit::{http_suite as suite, lab_bin};

#[test]
fn serves_the_greeting() {
    suite::serves_the_greeting(lab_bin!());
}

#[test]
fn serves_static_files_with_content_types() {
    suite::serves_static_files_with_content_types(lab_bin!());
}

#[test]
fn echoes_request_bodies() {
    suite::echoes_request_bodies(lab_bin!());
}

#[test]
fn answers_head_without_a_body() {
    suite::answers_head_without_a_body(lab_bin!());
}

#[test]
fn keeps_connections_alive() {
    suite::keeps_connections_alive(lab_bin!());
}

#[test]
fn answers_pipelined_requests_in_order() {
    suite::answers_pipelined_requests_in_order(lab_bin!());
}

#[test]
fn decodes_chunked_request_bodies() {
    suite::decodes_chunked_request_bodies(lab_bin!());
}

#[test]
fn refuses_path_traversal() {
    suite::refuses_path_traversal(lab_bin!());
}

#[test]
fn rejects_malformed_requests_with_400() {
    suite::rejects_malformed_requests_with_400(lab_bin!());
}

#[test]
fn rejects_oversized_heads_with_431() {
    suite::rejects_oversized_heads_with_431(lab_bin!());
}

#[test]
fn rejects_oversized_bodies_with_413() {
    suite::rejects_oversized_bodies_with_413(lab_bin!());
}

#[test]
fn rejects_unknown_methods_with_501() {
    suite::rejects_unknown_methods_with_501(lab_bin!());
}

#[test]
fn closes_slow_clients_and_keeps_serving_others() {
    suite::closes_slow_clients_and_keeps_serving_others(lab_bin!());
}

#[test]
fn survives_garbage_and_resets() {
    suite::survives_garbage_and_resets(lab_bin!());
}

#[test]
fn rejects_bad_arguments_with_a_clear_error() {
    labkit::echo::rejects_bad_arguments_with_a_clear_error(lab_bin!());
}

// The checks below are this lab's own: lab 3.4 delegates them to libraries that decide
// otherwise (hyper rejects folded headers, ServeDir follows symlinks).

#[test]
fn refuses_symlinks_that_leave_the_root() {
    let site = suite::Site::start(lab_bin!());
    std::os::unix::fs::symlink(&site.secret_path, site.root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", site.root.join("etc")).unwrap();
    for target in ["/static/link.txt", "/static/etc/passwd"] {
        let mut conn = suite::RawConn::open(site.addr());
        conn.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        let got = conn.response(false, &format!("requirement 9: GET {target}"));
        assert!(
            matches!(got.status, 403 | 404),
            "requirement 9: GET {target} through a symlink out of the root got {}; wanted 403 \
             or 404",
            got.status
        );
        let body = String::from_utf8_lossy(&got.body);
        assert!(
            !body.contains(&site.secret) && !body.contains("root:x:0:0"),
            "requirement 9: GET {target} served a file outside the root through a symlink"
        );
    }
}

#[test]
fn unfolds_folded_header_lines() {
    let site = suite::Site::start(lab_bin!());
    let mut conn = suite::RawConn::open(site.addr());
    conn.send(
        b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain;\r\n \
          charset=utf-8\r\nContent-Length: 2\r\n\r\nhi",
    );
    let got = conn.response(
        false,
        "requirement 4: POST /echo with a folded Content-Type",
    );
    assert!(
        got.status == 200 && got.body == b"hi",
        "requirement 4: POST /echo with a folded Content-Type got {} {:?}; wanted 200 \"hi\"",
        got.status,
        String::from_utf8_lossy(&got.body)
    );
    assert!(
        got.header("content-type") == Some("text/plain; charset=utf-8"),
        "requirement 4: the folded `Content-Type: text/plain;` + ` charset=utf-8` came back as \
         {:?}; wanted \"text/plain; charset=utf-8\"",
        got.header("content-type")
    );
}
