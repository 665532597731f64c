//! Limits every query runs under, set once at start-up.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

/// How much time, memory and result size one query may take.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Wall-clock time a query may run before it is cancelled.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Memory all running queries share for joins, sorts and aggregations.
    pub memory_limit: ByteSize,
    /// Rows a query may return; larger results are refused, not truncated.
    pub max_result_rows: usize,
    /// Size of the Arrow data a query may return.
    pub max_result_bytes: ByteSize,
    /// What one scalar function call may build (one value, or its batch
    /// of rows): larger results are refused, before they are built where
    /// the arguments tell.
    pub max_function_output: ByteSize,
    /// Worker threads of the query runtime, and DataFusion's target partitions.
    pub threads: usize,
    /// When set, the API, UI and `/metrics` require `Authorization: Bearer
    /// <token>` with one of these; `/healthz` and `/readyz` stay open for
    /// probes.
    pub bearer_tokens: Vec<String>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_limit: ByteSize::mib(512),
            max_result_rows: 100_000,
            max_result_bytes: ByteSize::mib(64),
            max_function_output: ByteSize::mib(64),
            threads: 2,
            bearer_tokens: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_human_units_and_refuses_unknown_fields() {
        let config: QueryConfig =
            serde_json::from_str(r#"{"timeout": "2s", "memory_limit": "16 MiB", "threads": 1}"#)
                .unwrap();
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.memory_limit, ByteSize::mib(16));
        assert_eq!(config.threads, 1);
        assert_eq!(config.max_result_rows, 100_000);
        assert!(serde_json::from_str::<QueryConfig>(r#"{"timout": "2s"}"#).is_err());
    }
}
