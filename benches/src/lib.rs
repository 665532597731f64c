//! Inputs for the stage benchmarks in `benches/`: generated requests and
//! stores filled through the real ingest path.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use seam_collector::{Pipeline, ReceiverConfig, store_tables};
use seam_correlate::{CorrelationConfig, Correlator};
use seam_loadgen::{Generator, SpanShape};
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

pub fn server(dir: &std::path::Path, wal: bool) -> Server {
    let Opened { store, .. } = Store::open(
        dir,
        StorageConfig::default(),
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
    let mut pipeline = Pipeline::new(store.table("spans"), ReceiverConfig::default())
        .with_correlator(correlator.clone());
    if wal {
        pipeline = pipeline.with_wal(store.wal().clone(), store.gate().clone());
    }
    Server {
        store,
        correlator,
        pipeline,
    }
}
