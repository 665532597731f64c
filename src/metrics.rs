//! `GET /metrics`: the ingest and correlation counters in Prometheus text
//! format. Labels are fixed sets, so the series count never grows with the
//! data.

use std::fmt::Write;
use std::sync::Arc;

use seam_collector::{MemoryGauge, Pipeline};
use seam_correlate::Correlator;
use seam_store::Store;

fn series(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// One metric with a series per label value.
fn labelled<V: std::fmt::Display>(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (String, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (key, value) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {value}");
    }
}

fn store_metrics(out: &mut String, store: &Store) {
    let s = store.stats();
    let per_table = |f: fn(&seam_store::TableStats) -> u64| {
        s.tables
            .iter()
            .map(move |t| (t.name.clone(), f(t)))
            .collect::<Vec<_>>()
    };
    labelled(
        out,
        "seam_store_hot_rows",
        "gauge",
        "Rows in memory, not sealed yet.",
        "table",
        per_table(|t| t.hot_rows),
    );
    labelled(
        out,
        "seam_store_hot_bytes",
        "gauge",
        "Memory held by rows not sealed yet.",
        "table",
        per_table(|t| t.hot_bytes),
    );
    labelled(
        out,
        "seam_store_sealed_files",
        "gauge",
        "Sealed Parquet files.",
        "table",
        per_table(|t| t.sealed_files),
    );
    labelled(
        out,
        "seam_store_sealed_rows",
        "gauge",
        "Rows in sealed Parquet files.",
        "table",
        per_table(|t| t.sealed_rows),
    );
    labelled(
        out,
        "seam_store_sealed_bytes",
        "gauge",
        "Bytes of sealed Parquet files on disk.",
        "table",
        per_table(|t| t.sealed_bytes),
    );
    series(
        out,
        "seam_wal_bytes",
        "gauge",
        "Bytes of write-ahead log on disk (what a restart replays).",
        s.wal_bytes,
    );
    series(
        out,
        "seam_store_seals_total",
        "counter",
        "Seals of hot rows into Parquet files.",
        s.seals,
    );
    series(
        out,
        "seam_store_seal_failures_total",
        "counter",
        "Seals that failed; their rows stay in memory and in the log.",
        s.seal_failures,
    );
    series(
        out,
        "seam_store_compactions_total",
        "counter",
        "Merges of small sealed files.",
        s.compactions,
    );
    labelled(
        out,
        "seam_retention_deleted_files_total",
        "counter",
        "Sealed files deleted by retention.",
        "reason",
        [
            ("age".to_owned(), s.deleted_age_files),
            ("disk".to_owned(), s.deleted_disk_files),
        ],
    );
    labelled(
        out,
        "seam_retention_deleted_rows_total",
        "counter",
        "Rows deleted by retention.",
        "reason",
        [
            ("age".to_owned(), s.deleted_age_rows),
            ("disk".to_owned(), s.deleted_disk_rows),
        ],
    );
}

/// The renderer the API serves.
pub fn renderer(
    pipeline: Arc<Pipeline>,
    correlator: Arc<Correlator>,
    store: Arc<Store>,
) -> seam_query::api::MetricsRenderer {
    Arc::new(move || {
        let mut out = String::with_capacity(4096);
        store_metrics(&mut out, &store);
        if let Some(rss) = MemoryGauge::sample_rss() {
            series(
                &mut out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory of the Seam process.",
                rss,
            );
        }
        let i = pipeline.stats();
        series(
            &mut out,
            "seam_receiver_requests_total",
            "counter",
            "Export requests received.",
            i.requests,
        );
        series(
            &mut out,
            "seam_receiver_spans_accepted_total",
            "counter",
            "Spans accepted and stored.",
            i.spans_accepted,
        );
        series(
            &mut out,
            "seam_receiver_spans_rejected_total",
            "counter",
            "Spans refused as invalid (partial success).",
            i.spans_rejected,
        );
        series(
            &mut out,
            "seam_receiver_links_dropped_total",
            "counter",
            "Span links dropped for invalid ids.",
            i.links_dropped,
        );
        series(
            &mut out,
            "seam_receiver_malformed_requests_total",
            "counter",
            "Requests that could not be decoded.",
            i.malformed_requests,
        );
        series(
            &mut out,
            "seam_receiver_attributes_truncated_total",
            "counter",
            "Attributes dropped or cut at the limits.",
            i.attributes_truncated,
        );
        series(
            &mut out,
            "seam_receiver_refused_overloaded_total",
            "counter",
            "Exports refused above limits.memory.",
            i.refused_overloaded,
        );
        series(
            &mut out,
            "seam_receiver_refused_busy_total",
            "counter",
            "Exports refused after waiting limits.queue_wait for a turn to be stored.",
            i.refused_busy,
        );
        let c = correlator.stats();
        series(
            &mut out,
            "seam_correlation_pending_halves",
            "gauge",
            "Halves waiting for their other half.",
            c.pending_halves,
        );
        series(
            &mut out,
            "seam_correlation_max_pending_halves",
            "gauge",
            "The cap on waiting halves (correlation.max_pending).",
            correlator.config().max_pending,
        );
        series(
            &mut out,
            "seam_correlation_indexed_traces",
            "gauge",
            "Traces joined to another in the flow index.",
            c.indexed_traces,
        );
        series(
            &mut out,
            "seam_correlation_instances",
            "gauge",
            "Function instances and pods known to cold-start detection.",
            c.instances,
        );
        series(
            &mut out,
            "seam_correlation_boundaries_total",
            "counter",
            "Boundaries stitched.",
            c.boundaries,
        );
        series(
            &mut out,
            "seam_correlation_orphans_total",
            "counter",
            "Consumer spans whose producer never arrived.",
            c.orphans,
        );
        series(
            &mut out,
            "seam_correlation_unconsumed_total",
            "counter",
            "Producer spans nobody consumed.",
            c.unconsumed,
        );
        series(
            &mut out,
            "seam_correlation_evicted_total",
            "counter",
            "Waiting halves evicted at the cap before their window ran out.",
            c.evicted,
        );
        series(
            &mut out,
            "seam_correlation_duplicates_total",
            "counter",
            "Spans received again while their first copy was waiting.",
            c.duplicates,
        );
        series(
            &mut out,
            "seam_correlation_flow_merges_refused_total",
            "counter",
            "Flow joins refused at correlation.max_flow_traces.",
            c.merges_refused,
        );
        series(
            &mut out,
            "seam_correlation_flow_traces_forgotten_total",
            "counter",
            "Traces dropped from the flow index at correlation.max_indexed_traces.",
            c.flow_traces_forgotten,
        );
        out
    })
}
