//! `cargo bench -p ch3_axum_rewrite --features solution`
//!
//! Requests per second over keep-alive connections: the axum server against a plain hyper
//! server with the same routes (the same comparison as lab 3.3's bench, so the two tables
//! line up), both in this process on the same two-thread runtime, driven by `wrk`.

use std::time::Duration;

labkit::lab_mod!(lab);

fn main() {
    labkit::http_suite::compare_with_hyper("axum_server", |listener, root| {
        let timeout = Duration::from_secs(10);
        lab::serve(listener, lab::app(&root, timeout), timeout)
    });
}
