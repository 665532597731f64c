//! The store's metrics, registered under the server's one registry:
//! counters and histograms updated where things happen, and gauges read at
//! scrape time from what the tables and the log keep (a scrape finishes
//! no builder, takes no snapshot and reads no file).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::store::{RetentionReport, Store};

/// `reason` of a retention deletion.
type Reason = [(&'static str, &'static str); 1];

#[derive(Debug, Clone)]
pub struct StoreMetrics {
    pub seals: Counter,
    pub seal_failures: Counter,
    pub compactions: Counter,
    /// How long ingest was held at a seal's cut.
    pub seal_pause: Histogram,
    /// A whole seal: cut, capture, files, manifest.
    pub seal_duration: Histogram,
    pub(crate) deleted_files: Family<Reason, Counter>,
    pub(crate) deleted_rows: Family<Reason, Counter>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        let metrics = Self {
            seals: Counter::default(),
            seal_failures: Counter::default(),
            compactions: Counter::default(),
            // 50 µs to about 13 s.
            seal_pause: Histogram::new(exponential_buckets(0.000_05, 4.0, 10)),
            // 1 ms to about 4 min.
            seal_duration: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            deleted_files: Family::default(),
            deleted_rows: Family::default(),
        };
        // Both reasons are series from the start, at zero.
        metrics.retention_deleted(&RetentionReport::default());
        metrics
    }
}

impl StoreMetrics {
    pub(crate) fn retention_deleted(&self, report: &RetentionReport) {
        for (reason, files, rows) in [
            ("age", report.age_files, report.age_rows),
            ("disk", report.disk_files, report.disk_rows),
        ] {
            let label = [("reason", reason)];
            self.deleted_files.get_or_create(&label).inc_by(files);
            self.deleted_rows.get_or_create(&label).inc_by(rows);
        }
    }

    /// Registers the store's metrics (`seam_store_*`, `seam_wal_*`,
    /// `seam_retention_*` under a `seam` prefix).
    pub fn register(store: &Arc<Store>, registry: &mut Registry) {
        let m = store.metrics();
        let counters = [
            (
                "store_seals",
                "Seals of hot rows into Parquet files",
                &m.seals,
            ),
            (
                "store_seal_failures",
                "Seals that failed; their rows stay in memory and in the log",
                &m.seal_failures,
            ),
            (
                "store_compactions",
                "Merges of small sealed files",
                &m.compactions,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let histograms = [
            (
                "store_seal_pause",
                "How long ingest was held at a seal's cut",
                &m.seal_pause,
            ),
            (
                "store_seal_duration",
                "How long a whole seal took (cut, state, files, manifest)",
                &m.seal_duration,
            ),
        ];
        for (name, help, histogram) in histograms {
            registry.register_with_unit(name, help, Unit::Seconds, histogram.clone());
        }
        let deleted = [
            (
                "retention_deleted_files",
                "Sealed files deleted by retention",
                &m.deleted_files,
            ),
            (
                "retention_deleted_rows",
                "Rows deleted by retention",
                &m.deleted_rows,
            ),
        ];
        for (name, help, family) in deleted {
            registry.register(name, help, family.clone());
        }
        registry.register_collector(Box::new(Sizes(store.clone())));
    }
}

/// The per-table sizes and the log's size, read at scrape time.
#[derive(Debug)]
struct Sizes(Arc<Store>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Collector for Sizes {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tables = self.0.table_stats();
        type Pick = fn(&crate::store::TableStats) -> u64;
        let per_table: [(&str, &str, Pick); 5] = [
            ("store_hot_rows", "Rows in memory, not sealed yet", |t| {
                t.hot_rows
            }),
            (
                "store_hot_bytes",
                "Memory held by rows not sealed yet",
                |t| t.hot_bytes,
            ),
            ("store_sealed_files", "Sealed Parquet files", |t| {
                t.sealed_files
            }),
            ("store_sealed_rows", "Rows in sealed Parquet files", |t| {
                t.sealed_rows
            }),
            (
                "store_sealed_bytes",
                "Bytes of sealed Parquet files on disk",
                |t| t.sealed_bytes,
            ),
        ];
        for (name, help, pick) in per_table {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for table in &tables {
                let labels = [("table", table.name.as_str())];
                ConstGauge::new(pick(table) as i64).encode(family.encode_family(&labels)?)?;
            }
        }
        let wal = ConstGauge::new(self.0.wal().disk_bytes() as i64);
        wal.encode(encoder.encode_descriptor(
            "wal_bytes",
            "Bytes of write-ahead log on disk (what a restart replays)",
            None,
            wal.metric_type(),
        )?)?;
        Ok(())
    }
}
