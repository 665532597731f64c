//! Inputs for the stage benchmarks in `benches/`: generated requests and
//! stores filled through the real ingest path.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use seam_collector::{Pipeline, ReceiverConfig};
use seam_correlate::{CorrelationConfig, Correlator, Note};
use seam_loadgen::{Generator, SpanShape};
use seam_model::TraceId;
use seam_model::tables::{
    self, BOUNDARIES, EDGE_ROLLUPS, FUNCTION_ROLLUPS, OPERATION_ROLLUPS, ORPHANS, SPANS, TRACES,
};
use seam_query::{Correlation, QueryConfig, QueryEngine};
use seam_store::{Opened, RetentionConfig, StorageConfig, Store, WalConfig, Writer};

/// A fixed start time, so runs are comparable.
pub const NOW: u64 = 1_790_000_000_000_000_000;

/// `requests` flat requests of `batch` spans with 10 attributes of 16 bytes.
pub fn flat(requests: usize, batch: usize, seed: u64) -> Vec<ExportTraceServiceRequest> {
    let mut g = Generator::flat(
        SpanShape {
            batch,
            ..SpanShape::default()
        },
        seed,
    );
    (0..requests).map(|_| g.next_request(NOW).0).collect()
}

/// Requests of the demo's hybrid journeys, about `spans` spans in all.
pub fn hybrid(spans: usize, seed: u64) -> Vec<ExportTraceServiceRequest> {
    let mut g = Generator::hybrid(seed);
    let mut out = Vec::new();
    let mut n = 0;
    while n < spans {
        let (r, s) = g.next_request(NOW);
        n += s;
        out.push(r);
    }
    out
}

/// A server's ingest side: the store in `dir`, a correlator following its
/// writes, and a pipeline that logs to the write-ahead log when `wal` is
/// set.
pub struct Server {
    pub store: Arc<Store>,
    pub correlator: Arc<Correlator>,
    pub writer: Arc<Writer<Note>>,
    pub pipeline: Pipeline,
}

impl Server {
    /// A query engine over this server's tables, as `seam serve` builds it.
    pub fn engine(&self) -> QueryEngine {
        QueryEngine::with_correlation(
            self.store.table(SPANS),
            Correlation {
                boundaries: self.store.table(BOUNDARIES),
                orphans: self.store.table(ORPHANS),
                traces: self.store.table(TRACES),
                edge_rollups: self.store.table(EDGE_ROLLUPS),
                function_rollups: self.store.table(FUNCTION_ROLLUPS),
                operation_rollups: self.store.table(OPERATION_ROLLUPS),
                view: self.correlator.view(),
                settle: self.store.settle(),
            },
            QueryConfig::default(),
        )
        .expect("engine")
    }
}

/// The trace of `request`'s first span.
pub fn first_trace(request: &ExportTraceServiceRequest) -> TraceId {
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    TraceId::from_bytes(&span.trace_id).expect("a trace id")
}

pub fn server(dir: &std::path::Path, wal: bool) -> Server {
    start(dir, wal).0
}

/// Starts on `dir` the way `seam serve` does: opens the store, restores
/// the correlation state of the last seal and replays the log after it.
/// Returns the server and how many spans the replay stored.
pub fn start(dir: &std::path::Path, wal: bool) -> (Server, u64) {
    let storage = StorageConfig {
        // Seals only when asked: what is measured decides when.
        seal_size: bytesize::ByteSize::gib(64),
        ..StorageConfig::default()
    };
    let Opened {
        store,
        replay,
        state,
    } = Store::open(
        dir,
        storage,
        RetentionConfig::default(),
        WalConfig::default(),
        tables::all(),
    )
    .expect("open the store");
    let correlator = Arc::new(Correlator::new(CorrelationConfig::default()));
    if let Some(state) = state {
        correlator
            .restore_bytes(&state, "the state of the last seal")
            .expect("state");
    }
    let writer = Arc::new(store.follow(SPANS, correlator.clone()).expect("follow"));
    let mut pipeline = Pipeline::new(
        writer.clone(),
        &store.table(SPANS),
        ReceiverConfig::default(),
    )
    .with_correlation(correlator.extractor().clone());
    if !wal {
        pipeline = pipeline.without_log();
    }
    let mut replayed = 0;
    for record in replay {
        replayed += pipeline
            .replay(&record.expect("read the log"))
            .expect("replay")
            .accepted;
    }
    (
        Server {
            store,
            correlator,
            writer,
            pipeline,
        },
        replayed,
    )
}
