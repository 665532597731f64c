//! OTLP JSON bodies, with every trap the decoder handles (hex ids, enum
//! names, snake_case, 64-bit integers as strings): a request or an error,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seam_collector::decode::decode_json;

fuzz_target!(|body: &[u8]| {
    let _ = decode_json(body);
});
