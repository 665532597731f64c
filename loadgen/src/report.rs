//! What a run achieved, for people (a few lines) and for scripts (`--json`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

/// Ack latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub endpoint: String,
    pub protocol: String,
    pub encoding: String,
    pub gzip: bool,
    pub topology: String,
    pub concurrency: usize,
    pub batch: usize,
    pub attributes: usize,
    pub attribute_size: usize,
    /// Spans per second asked for; `None` in max-throughput mode.
    pub target_rate: Option<u64>,
    pub duration_s: f64,
    pub requests: u64,
    pub spans_sent: u64,
    /// Spans in acknowledged requests, less those rejected by partial success.
    pub spans_acked: u64,
    pub spans_rejected: u64,
    /// `spans_acked` per second of the run.
    pub spans_per_sec: f64,
    /// From the request's scheduled start (rate mode, so a server that
    /// stalls cannot hide it) or its send (max mode) to the answer.
    pub ack_latency: Latency,
    /// Failed requests by code (`grpc RESOURCE_EXHAUSTED`, `http 429`, `transport`, …).
    pub errors: BTreeMap<String, u64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}{} to {} ({} topology, {} workers, {} spans/request, {} attributes of {} bytes)",
            self.protocol,
            self.encoding,
            if self.gzip { " gzip" } else { "" },
            self.endpoint,
            self.topology,
            self.concurrency,
            self.batch,
            self.attributes,
            self.attribute_size
        )?;
        writeln!(
            f,
            "acked {} spans in {:.1} s: {:.0} spans/s ({} requests, {} spans rejected)",
            self.spans_acked,
            self.duration_s,
            self.spans_per_sec,
            self.requests,
            self.spans_rejected
        )?;
        let l = &self.ack_latency;
        writeln!(
            f,
            "ack latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        )?;
        if self.errors.is_empty() {
            writeln!(f, "errors: none")
        } else {
            let list: Vec<String> = self
                .errors
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            writeln!(f, "errors: {}", list.join(", "))
        }
    }
}
