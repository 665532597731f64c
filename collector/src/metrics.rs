//! The collector's metrics (`seam_receiver_*`), one typed struct
//! registered under the server's registry.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// What the receivers and the pipeline count.
#[derive(Debug, Clone)]
pub struct IngestMetrics {
    pub requests: Counter,
    pub spans_accepted: Counter,
    pub spans_rejected: Counter,
    pub links_dropped: Counter,
    pub malformed_requests: Counter,
    pub attributes_truncated: Counter,
    pub strings_truncated: Counter,
    pub refused_overloaded: Counter,
    pub refused_busy: Counter,
    /// Exports refused because they could not be logged or stored.
    pub refused_unavailable: Counter,
    /// From a request's body being read to its answer being ready.
    pub ack_latency: Histogram,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        Self {
            requests: Counter::default(),
            spans_accepted: Counter::default(),
            spans_rejected: Counter::default(),
            links_dropped: Counter::default(),
            malformed_requests: Counter::default(),
            attributes_truncated: Counter::default(),
            strings_truncated: Counter::default(),
            refused_overloaded: Counter::default(),
            refused_busy: Counter::default(),
            refused_unavailable: Counter::default(),
            // 100 µs to about 26 s.
            ack_latency: Histogram::new(exponential_buckets(0.000_1, 4.0, 10)),
        }
    }
}

impl IngestMetrics {
    /// Registers every metric under `registry` (prefixed `seam_`).
    pub fn register(&self, registry: &mut Registry) {
        let counters: [(&str, &str, &Counter); 10] = [
            (
                "receiver_requests",
                "Export requests received",
                &self.requests,
            ),
            (
                "receiver_spans_accepted",
                "Spans accepted and stored",
                &self.spans_accepted,
            ),
            (
                "receiver_spans_rejected",
                "Spans refused as invalid (partial success)",
                &self.spans_rejected,
            ),
            (
                "receiver_links_dropped",
                "Span links dropped for invalid ids",
                &self.links_dropped,
            ),
            (
                "receiver_malformed_requests",
                "Requests that could not be decoded",
                &self.malformed_requests,
            ),
            (
                "receiver_attributes_truncated",
                "Attributes dropped or cut at the limits",
                &self.attributes_truncated,
            ),
            (
                "receiver_strings_truncated",
                "Names, messages and other strings cut at limits.max_attribute_value_length",
                &self.strings_truncated,
            ),
            (
                "receiver_refused_overloaded",
                "Exports refused above limits.memory",
                &self.refused_overloaded,
            ),
            (
                "receiver_refused_busy",
                "Exports refused after waiting limits.queue_wait for a turn to be stored",
                &self.refused_busy,
            ),
            (
                "receiver_refused_unavailable",
                "Exports refused as retryable because they could not be logged or stored (a full or failing disk)",
                &self.refused_unavailable,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register_with_unit(
            "receiver_ack_latency",
            "From an export's body being read to its answer",
            Unit::Seconds,
            self.ack_latency.clone(),
        );
    }
}
