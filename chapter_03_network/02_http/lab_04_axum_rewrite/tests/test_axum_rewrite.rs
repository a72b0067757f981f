//! Grader for the axum server: the specification of lab 3.3 (the HTTP/1.1 server written from
//! scratch), unchanged, plus HTTP/2. The checks live in `labkit::http_suite`, so both labs pass
//! the very same tests; each one starts the binary over a fresh directory of random files.
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

#[test]
fn serves_http2_with_prior_knowledge() {
    suite::serves_http2_with_prior_knowledge(lab_bin!());
}
