//! libFuzzer feeds `parse_request` arbitrary bytes, steering towards inputs that reach new
//! code. A panic (index out of bounds, overflow in a debug build, `unwrap` on a bad header) is
//! a crash, saved in `fuzz/artifacts/parse_request/` to replay with
//! `cargo +nightly fuzz run parse_request fuzz/artifacts/parse_request/<file>`.
//!
//! It fuzzes the learner's file, `src/main.rs`, included as a module.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/main.rs"]
mod lab;

fuzz_target!(|data: &[u8]| {
    match lab::parse_request(data) {
        Ok(Some((request, used))) => {
            assert!(
                used > 0 && used <= data.len(),
                "used {used} of {}",
                data.len()
            );
            assert!(request.body.len() <= lab::MAX_BODY);
        }
        Ok(None) => {}
        Err(e) => assert!([400, 413, 431, 501, 505].contains(&e.status())),
    }
});
