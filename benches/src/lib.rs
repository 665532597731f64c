//! Inputs for the stage benchmarks in `benches/`: generated requests and
//! stores filled through the real ingest path.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use seam_collector::{Pipeline, ReceiverConfig, store_tables};
use seam_correlate::{CorrelationConfig, Correlator};
use seam_loadgen::{Generator, SpanShape};
use seam_model::TraceId;
use seam_query::{Correlation, QueryConfig, QueryEngine};
use seam_store::{Opened, RetentionConfig, StorageConfig, Store, WalConfig};

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

/// A server's ingest side: the store in `dir`, a correlator, and a
/// pipeline that logs to the write-ahead log when `wal` is set.
pub struct Server {
    pub store: Arc<Store>,
    pub correlator: Arc<Correlator>,
    pub pipeline: Pipeline,
}

impl Server {
    /// A query engine over this server's tables, as `seam serve` builds it.
    pub fn engine(&self) -> QueryEngine {
        QueryEngine::with_correlation(
            self.store.table("spans"),
            Correlation {
                boundaries: self.store.table("boundaries"),
                orphans: self.store.table("orphans"),
                view: self.correlator.view(),
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
        store_tables(),
    )
    .expect("open the store");
    let store = Arc::new(store);
    let correlator = Arc::new(Correlator::new(
        CorrelationConfig::default(),
        store.table("boundaries"),
        store.table("orphans"),
    ));
    if let Some(state) = state {
        correlator
            .restore_bytes(&state, "the state of the last seal")
            .expect("state");
    }
    let mut pipeline = Pipeline::new(store.table("spans"), ReceiverConfig::default())
        .with_correlator(correlator.clone());
    if wal {
        pipeline = pipeline.with_wal(store.wal().clone(), store.gate().clone());
    }
    let mut replayed = 0;
    for record in &replay.records {
        replayed += pipeline.replay(record).expect("replay").accepted;
    }
    (
        Server {
            store,
            correlator,
            pipeline,
        },
        replayed,
    )
}
