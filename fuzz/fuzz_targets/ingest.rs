//! Whatever decodes as an OTLP request goes through the whole ingest path:
//! normalization, the per-request limits, the batch builder, the store's
//! write protocol and correlation on its own thread. Nothing panics, and
//! every span is either accepted or rejected.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use seam_collector::{Pipeline, ReceiverConfig};
use seam_correlate::{CorrelationConfig, Correlator, Note};
use seam_model::tables::{self, SPANS};
use seam_store::{Store, Writer};

/// One server for the whole run: opening a store per input would be most
/// of the work.
struct Server {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    writer: Arc<Writer<Note>>,
    pipeline: Pipeline,
    runtime: tokio::runtime::Runtime,
}

static SERVER: LazyLock<Server> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open_default(dir.path(), tables::all())
    .expect("a store")
    .store;
    let correlator = Arc::new(Correlator::new(CorrelationConfig::default()));
    let writer = Arc::new(store.follow(SPANS, correlator.clone()).expect("follow"));
    // Not logged: the log keeps bytes as they are, and a long run would
    // fill the disk with them.
    let pipeline = Pipeline::new(writer.clone(), &store.table(SPANS), ReceiverConfig::default())
        .with_correlation(correlator.extractor().clone())
        .without_log();
    Server {
        _dir: dir,
        store,
        writer,
        pipeline,
        runtime: tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime"),
    }
});

fuzz_target!(|body: &[u8]| {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return;
    };
    let server = &*SERVER;
    let spans = server.store.table(SPANS);
    let before = spans.num_rows();
    let total: usize = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum();
    // The receivers' path: the bytes, read in place where they can be.
    let outcome = server
        .pipeline
        .ingest_protobuf(body)
        .expect("an in-memory ingest of a decodable request does not fail");
    assert_eq!((outcome.accepted + outcome.rejected) as usize, total);
    assert_eq!(spans.num_rows() - before, outcome.accepted as usize);
    server.writer.tick(i64::MAX);
    server.runtime.block_on(server.store.settle().settled());
});
