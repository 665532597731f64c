//! `GET /metrics`: the ingest and correlation counters in Prometheus text
//! format. Labels are fixed sets, so the series count never grows with the
//! data.

use std::fmt::Write;
use std::sync::Arc;

use seam_collector::{MemoryGauge, Pipeline};
use seam_correlate::Correlator;

fn series(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// The renderer the API serves.
pub fn renderer(
    pipeline: Arc<Pipeline>,
    correlator: Arc<Correlator>,
) -> seam_query::api::MetricsRenderer {
    Arc::new(move || {
        let mut out = String::with_capacity(4096);
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
