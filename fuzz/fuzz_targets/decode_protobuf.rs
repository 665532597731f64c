//! OTLP protobuf bodies as the HTTP receiver decodes them: any bytes give a
//! request or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seam_collector::decode::{Encoding, decode};

fuzz_target!(|body: &[u8]| {
    let _ = decode(body, Encoding::Protobuf);
});
