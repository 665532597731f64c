//! The `correlation:` section of Seam's config file: how long halves wait,
//! when a hop is slow, which attributes correlate, and the bounds of the
//! state.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the correlation stage (docs/contract.md §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorrelationConfig {
    /// How long a half waits for its other half, from its arrival.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long a synchronous call's client or server span waits for the
    /// other: both are exported within seconds of each other, and every
    /// cross-platform call would otherwise be held for the whole window.
    #[serde(with = "humantime_serde")]
    pub sync_window: Duration,
    /// A boundary slower than this is flagged.
    #[serde(with = "humantime_serde")]
    pub latency_threshold: Duration,
    /// Thresholds for one consumer service or one destination (queue,
    /// topic); the service wins when both match.
    pub latency_thresholds: BTreeMap<String, humantime_serde::Serde<Duration>>,
    /// Attributes whose equal values join a producer and a consumer that
    /// lost their context, and join traces into one flow.
    pub keys: Vec<String>,
    /// Waiting halves kept at most; past it the oldest is evicted (counted).
    pub max_pending: usize,
    /// Traces one flow may join; a value shared by everything must not
    /// merge the world.
    pub max_flow_traces: usize,
    /// Traces the flow index keeps at most (only traces stitched to
    /// another are kept); the oldest flows are forgotten first.
    pub max_indexed_traces: usize,
    /// A trace's summary row is written once no span of it has arrived
    /// for this long; a span arriving later adds a row of its own.
    #[serde(with = "humantime_serde")]
    pub trace_idle: Duration,
    /// Summaries of traces still receiving spans kept at most; past it the
    /// least recently active are written early.
    pub max_active_traces: usize,
    /// Cold-start detection.
    pub cold_start: ColdStartConfig,
}

impl Default for CorrelationConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(3600),
            sync_window: Duration::from_secs(300),
            latency_threshold: Duration::from_secs(1),
            latency_thresholds: BTreeMap::new(),
            keys: DEFAULT_KEYS.iter().map(|k| (*k).to_owned()).collect(),
            max_pending: 1_000_000,
            max_flow_traces: 10_000,
            max_indexed_traces: 5_000_000,
            trace_idle: Duration::from_secs(10),
            max_active_traces: 500_000,
            cold_start: ColdStartConfig::default(),
        }
    }
}

/// The default correlation keys (docs/contract.md §5.1).
pub const DEFAULT_KEYS: &[&str] = &[
    "messaging.message.id",
    "messaging.message.conversation_id",
    "cloudevents.event_id",
    "correlation_id",
    "correlation.id",
    "x-correlation-id",
];

/// How cold starts are recognised (docs/contract.md §5.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColdStartConfig {
    /// Span names that mark a function instance's initialisation.
    pub init_span_names: Vec<String>,
    /// Call the first invocation seen from a new instance cold, when the
    /// span itself does not say.
    pub first_invocation: bool,
    /// An init span that ended longer than this before the first
    /// invocation was the platform warming up ahead of time (`proactive`).
    #[serde(with = "humantime_serde")]
    pub proactive_gap: Duration,
    /// An instance not seen for this long is forgotten; seen again, it
    /// would count as new.
    #[serde(with = "humantime_serde")]
    pub instance_ttl: Duration,
    /// Instances remembered at most.
    pub max_instances: usize,
}

impl Default for ColdStartConfig {
    fn default() -> Self {
        Self {
            init_span_names: ["Initialization", "aws.lambda.init", "aws.lambda.cold_start"]
                .iter()
                .map(|n| (*n).to_owned())
                .collect(),
            first_invocation: true,
            proactive_gap: Duration::from_secs(10),
            instance_ttl: Duration::from_secs(24 * 3600),
            max_instances: 1_000_000,
        }
    }
}

pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl CorrelationConfig {
    /// The flag threshold for a hop into `consumer_service` over `destination`.
    pub fn threshold_ns(&self, consumer_service: &str, destination: Option<&str>) -> i64 {
        let over = self
            .latency_thresholds
            .get(consumer_service)
            .or_else(|| destination.and_then(|d| self.latency_thresholds.get(d)));
        nanos(over.map_or(self.latency_threshold, |d| **d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_yaml_like_values_and_overrides() {
        let c: CorrelationConfig = serde_json::from_str(
            r#"{"window": "3s", "latency_thresholds": {"invoice": "5s", "orders": "2s"},
                "cold_start": {"first_invocation": false}}"#,
        )
        .unwrap();
        assert_eq!(c.window, Duration::from_secs(3));
        assert_eq!(c.threshold_ns("invoice", Some("orders")), 5_000_000_000);
        assert_eq!(c.threshold_ns("mailer", Some("orders")), 2_000_000_000);
        assert_eq!(c.threshold_ns("mailer", None), 1_000_000_000);
        assert!(!c.cold_start.first_invocation);
        assert_eq!(c.keys.len(), 6);
        assert!(serde_json::from_str::<CorrelationConfig>(r#"{"windw": "1s"}"#).is_err());
    }
}
