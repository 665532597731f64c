//! OTLP protobuf bodies as the receivers read them: any bytes give a
//! request or an error, never a panic; and wherever the in-place reader
//! answers, its view is prost's (the pipeline hands everything else to
//! prost).
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use seam_collector::view::{Export, wire};

fuzz_target!(|body: &[u8]| {
    let prost = ExportTraceServiceRequest::decode(body);
    match wire::read(body) {
        Ok(view) => {
            let decoded = prost.expect("prost reads what the in-place reader read");
            // Debug text, so that a NaN double equals itself.
            assert_eq!(format!("{view:?}"), format!("{:?}", Export::from(&decoded)));
        }
        Err(wire::Unread) => {
            let answer = Export::decode_then(body, |view| format!("{view:?}"));
            match prost {
                Ok(decoded) => {
                    assert_eq!(answer.unwrap(), format!("{:?}", Export::from(&decoded)))
                }
                Err(_) => assert!(answer.is_err()),
            }
        }
    }
});
