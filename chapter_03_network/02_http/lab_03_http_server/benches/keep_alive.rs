//! `cargo bench -p ch3_http_server --features solution`
//!
//! Requests per second over keep-alive connections: this lab's server against a hyper server
//! with the same routes, both in this process on the same two-thread runtime, driven by `wrk`
//! (a separate process). The target is at least 0.7x hyper.

#![allow(unused_imports)] // the lab re-exports items this benchmark does not use

use std::sync::Arc;
use std::time::Duration;

labkit::lab_mod!(lab);

fn main() {
    labkit::http_suite::compare_with_hyper("http_server", |listener, root| {
        let config = lab::Config {
            root,
            request_timeout: Duration::from_secs(10),
        };
        lab::serve(listener, Arc::new(config))
    });
}
