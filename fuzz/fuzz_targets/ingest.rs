//! Whatever decodes as an OTLP request goes through the whole ingest path:
//! normalization, the per-request limits, the batch builder, the store and
//! correlation. Nothing panics, and every span is either accepted or
//! rejected.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use seam_collector::{Pipeline, ReceiverConfig};
use seam_correlate::{
    CorrelationConfig, Correlator, boundaries_schema, boundary_col, orphan_col, orphans_schema,
};
use seam_model::schema::{col, spans_schema};
use seam_store::Table;

fuzz_target!(|body: &[u8]| {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return;
    };
    let spans = Arc::new(Table::new(spans_schema(), col::START_TIME));
    let correlator = Arc::new(Correlator::new(
        CorrelationConfig::default(),
        Arc::new(Table::new(boundaries_schema(), boundary_col::CONSUMER_TIME)),
        Arc::new(Table::new(orphans_schema(), orphan_col::TIME)),
    ));
    let pipeline =
        Pipeline::new(spans.clone(), ReceiverConfig::default()).with_correlator(correlator.clone());
    let total: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    // The receivers' path: the bytes, read in place where they can be.
    let outcome = pipeline
        .ingest_protobuf(body)
        .expect("an in-memory ingest of a decodable request does not fail");
    assert_eq!((outcome.accepted + outcome.rejected) as usize, total);
    assert_eq!(spans.num_rows(), outcome.accepted as usize);
    correlator.tick(i64::MAX).expect("expiring everything");
});
