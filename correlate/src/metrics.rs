//! Correlation's metrics (`seam_correlation_*`), one typed struct
//! registered under the server's registry. Sizes are gauges set after each
//! change, so a scrape never waits on the state's lock (which a seal holds
//! while it captures the state).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Default)]
pub struct CorrelationMetrics {
    pub pending_halves: Gauge,
    pub max_pending_halves: Gauge,
    pub indexed_traces: Gauge,
    pub instances: Gauge,
    pub boundaries: Counter,
    pub orphans: Counter,
    pub unconsumed: Counter,
    pub evicted: Counter,
    pub duplicates: Counter,
    pub merges_refused: Counter,
    pub flow_traces_forgotten: Counter,
    pub active_traces: Gauge,
    pub traces_written: Counter,
}

impl CorrelationMetrics {
    /// Registers every metric under `registry` (prefixed `seam_`).
    pub fn register(&self, registry: &mut Registry) {
        let gauges: [(&str, &str, &Gauge); 5] = [
            (
                "correlation_active_traces",
                "Trace summaries still receiving spans, not written to the traces table yet",
                &self.active_traces,
            ),
            (
                "correlation_pending_halves",
                "Halves waiting for their other half",
                &self.pending_halves,
            ),
            (
                "correlation_max_pending_halves",
                "The cap on waiting halves (correlation.max_pending)",
                &self.max_pending_halves,
            ),
            (
                "correlation_indexed_traces",
                "Traces joined to another in the flow index",
                &self.indexed_traces,
            ),
            (
                "correlation_instances",
                "Function instances and pods known to cold-start detection",
                &self.instances,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        let counters: [(&str, &str, &Counter); 8] = [
            (
                "correlation_trace_summaries",
                "Trace summary rows written to the traces table",
                &self.traces_written,
            ),
            (
                "correlation_boundaries",
                "Boundaries stitched",
                &self.boundaries,
            ),
            (
                "correlation_orphans",
                "Consumer spans whose producer never arrived",
                &self.orphans,
            ),
            (
                "correlation_unconsumed",
                "Producer spans nobody consumed",
                &self.unconsumed,
            ),
            (
                "correlation_evicted",
                "Waiting halves evicted at the cap before their window ran out",
                &self.evicted,
            ),
            (
                "correlation_duplicates",
                "Spans received again while their first copy was waiting",
                &self.duplicates,
            ),
            (
                "correlation_flow_merges_refused",
                "Flow joins refused at correlation.max_flow_traces",
                &self.merges_refused,
            ),
            (
                "correlation_flow_traces_forgotten",
                "Traces dropped from the flow index at correlation.max_indexed_traces",
                &self.flow_traces_forgotten,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
    }
}
