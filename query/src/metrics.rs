//! The query side's metrics (`seam_query_*`), registered under the
//! server's registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// How a query ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// `ok`, `refused` (the caller's mistake or a limit) or `failed`.
    pub outcome: &'static str,
}

#[derive(Debug, Clone)]
pub struct QueryMetrics {
    /// Every query the engine ran (SQL and the API's own), by outcome.
    pub duration: Family<Outcome, Histogram>,
}

impl Default for QueryMetrics {
    fn default() -> Self {
        Self {
            // 100 µs to about 26 s.
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 4.0, 10))
            }),
        }
    }
}

impl QueryMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "query_duration",
            "How long queries took, from arrival to answer",
            Unit::Seconds,
            self.duration.clone(),
        );
    }

    pub(crate) fn observe(&self, outcome: &'static str, seconds: f64) {
        self.duration
            .get_or_create(&Outcome { outcome })
            .observe(seconds);
    }
}
