//! Fuzz the learner's decoder (src/main.rs): any byte stream, cut into chunks at positions the
//! fuzzer chooses, must give frames or errors, never a panic, never an endless loop.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

// Your src/main.rs by default; `--features solution` fuzzes the reference answer.
#[allow(dead_code)]
#[cfg_attr(feature = "solution", path = "../../solution/main.rs")]
#[cfg_attr(not(feature = "solution"), path = "../../src/main.rs")]
mod lab;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, the second the maximum payload.
    let [chunk, max, stream @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk).max(1);
    let mut decoder = lab::FrameDecoder::new(usize::from(*max) * 16);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => assert!(frame.payload.len() <= usize::from(*max) * 16),
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = decoder.decode_eof(&mut buf);
});
