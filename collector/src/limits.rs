//! The `limits:` section: what one request may carry, and the memory above
//! which Seam pushes back instead of growing.
//!
//! A hostile or broken sender must not be able to make one request cost
//! unbounded memory: spans past `max_spans_per_request` are rejected (the
//! answer's `partial_success` says so), attributes past
//! `max_attributes_per_span` are dropped and values longer than
//! `max_attribute_value_length` are cut, each counted in
//! `seam_receiver_attributes_truncated_total`, never silently.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use bytesize::ByteSize;
use seam_model::Attributes;
use serde::{Deserialize, Serialize};

/// Limits on memory and on each request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Resident memory above which exports are refused as retryable
    /// (gRPC `RESOURCE_EXHAUSTED` with `RetryInfo`, HTTP 429 with
    /// `Retry-After`) until it drops again.
    pub memory: ByteSize,
    /// Spans one export may carry; the rest are rejected.
    pub max_spans_per_request: usize,
    /// Attributes one span, resource, event or link may carry; the rest
    /// are dropped.
    pub max_attributes_per_span: usize,
    /// Bytes one attribute value may have; longer values are cut at a
    /// character boundary.
    pub max_attribute_value_length: usize,
    /// Exports stored at the same time; more wait for a turn.
    pub max_concurrent_exports: usize,
    /// How long an export waits for its turn before it is refused as
    /// retryable: the bound on the queue in front of the store.
    #[serde(with = "humantime_serde")]
    pub queue_wait: std::time::Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            memory: ByteSize::gib(4),
            max_spans_per_request: 100_000,
            max_attributes_per_span: 256,
            max_attribute_value_length: 32 * 1024,
            max_concurrent_exports: 8,
            queue_wait: std::time::Duration::from_millis(500),
        }
    }
}

impl LimitsConfig {
    /// Drops attributes past the count and cuts values past the length;
    /// returns how many attributes were dropped or cut.
    pub fn apply(&self, attributes: &mut Attributes<'_>) -> u64 {
        let mut changed = 0;
        if attributes.len() > self.max_attributes_per_span {
            changed += (attributes.len() - self.max_attributes_per_span) as u64;
            attributes.truncate(self.max_attributes_per_span);
        }
        let max = self.max_attribute_value_length;
        for (_, value) in attributes.iter_mut() {
            if value.len() > max {
                let cut = value.floor_char_boundary(max);
                *value = match std::mem::take(value) {
                    Cow::Borrowed(v) => Cow::Borrowed(&v[..cut]),
                    Cow::Owned(mut v) => {
                        v.truncate(cut);
                        Cow::Owned(v)
                    }
                };
                changed += 1;
            }
        }
        changed
    }
}

/// Turns for storing exports: a bounded queue in front of the pipeline.
#[derive(Debug)]
pub struct Admission {
    turns: tokio::sync::Semaphore,
    wait: std::time::Duration,
}

impl Admission {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            turns: tokio::sync::Semaphore::new(limits.max_concurrent_exports.max(1)),
            wait: limits.queue_wait,
        }
    }

    /// Waits for a turn, at most `queue_wait`; `None` means the export
    /// should be refused as retryable.
    pub async fn turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(self.wait, self.turns.acquire())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// The process's resident memory, sampled by the server and read by every
/// export: reading it per request would cost a system call each.
#[derive(Debug, Default)]
pub struct MemoryGauge(AtomicU64);

impl MemoryGauge {
    pub fn set(&self, bytes: u64) {
        self.0.store(bytes, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Reads this process's resident memory (Linux); `None` elsewhere.
    pub fn sample_rss() -> Option<u64> {
        let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
        let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
        Some(pages * 4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_is_refused_when_none_frees_up_in_time() {
        let admission = Admission::new(&LimitsConfig {
            max_concurrent_exports: 1,
            queue_wait: std::time::Duration::from_millis(50),
            ..LimitsConfig::default()
        });
        let first = admission.turn().await.expect("a free turn");
        assert!(admission.turn().await.is_none(), "the only turn is taken");
        drop(first);
        assert!(admission.turn().await.is_some());
    }

    #[test]
    fn extra_attributes_are_dropped_and_long_values_cut_at_a_char_boundary() {
        let limits = LimitsConfig {
            max_attributes_per_span: 2,
            max_attribute_value_length: 5,
            ..LimitsConfig::default()
        };
        let mut attrs: Attributes = vec![
            (Cow::Borrowed("a"), Cow::Borrowed("short")),
            (Cow::Borrowed("b"), Cow::Owned("héllo wörld".to_owned())),
            (Cow::Borrowed("c"), Cow::Borrowed("dropped")),
        ];
        assert_eq!(limits.apply(&mut attrs), 2);
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].1, "short");
        assert_eq!(
            attrs[1].1, "héll",
            "é is two bytes; the cut never splits it"
        );
        let mut fine: Attributes = vec![(Cow::Borrowed("a"), Cow::Borrowed("ok"))];
        assert_eq!(limits.apply(&mut fine), 0);
    }
}
