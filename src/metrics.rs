//! `GET /metrics`: every stage's typed metrics under one registry, in the
//! OpenMetrics text format. Labels are fixed sets, so the series count
//! never grows with the data, and a scrape reads counters only: it changes
//! nothing in the store.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use seam_collector::{MemoryGauge, Pipeline};
use seam_correlate::Correlator;
use seam_query::QueryEngine;
use seam_store::{Store, StoreMetrics};

/// The registry of every stage's metrics.
pub fn registry(
    pipeline: &Pipeline,
    correlator: &Correlator,
    store: &Arc<Store>,
    engine: &QueryEngine,
    memory: Arc<MemoryGauge>,
) -> Registry {
    let mut root = Registry::default();
    let seam = root.sub_registry_with_prefix("seam");
    pipeline.metrics().register(seam);
    correlator.metrics().register(seam);
    StoreMetrics::register(store, seam);
    engine.metrics().register(seam);
    root.register_collector(Box::new(Resident(memory)));
    root
}

/// The renderer the API serves.
pub fn renderer(registry: Registry) -> seam_query::api::MetricsRenderer {
    let registry = Arc::new(registry);
    Arc::new(move || {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "encoding the metrics");
        }
        out
    })
}

/// `process_resident_memory_bytes`, as last sampled (every 100 ms).
#[derive(Debug)]
struct Resident(Arc<MemoryGauge>);

impl Collector for Resident {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rss = self.0.get();
        if rss == 0 {
            return Ok(());
        }
        let gauge = ConstGauge::new(rss as i64);
        gauge.encode(encoder.encode_descriptor(
            "process_resident_memory",
            "Resident memory of the Seam process",
            Some(&Unit::Bytes),
            gauge.metric_type(),
        )?)
    }
}
