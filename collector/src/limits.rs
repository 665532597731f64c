//! The `limits:` section: what one request may carry, and the memory above
//! which Seam pushes back instead of growing.
//!
//! A hostile or broken sender must not be able to make one request cost
//! unbounded memory: spans past `max_spans_per_request` are rejected (the
//! answer's `partial_success` says so), attributes past
//! `max_attributes_per_span` are dropped and keys and values longer than
//! `max_attribute_value_length` are cut, each counted in
//! `seam_receiver_attributes_truncated_total`; every other string (span
//! and event names, status messages, trace state, scope, service and
//! messaging fields) is cut at the same length, counted in
//! `seam_receiver_strings_truncated_total`. Every span carries its
//! resource, so a request of many spans with a large resource grows once
//! normalized: spans past `max_request_memory` of rows are rejected.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use bytesize::ByteSize;
use seam_model::{Attributes, SpanRow};
use serde::{Deserialize, Serialize};

use crate::normalize::ResourceContext;

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
    /// Bytes one attribute key or value, name, message or other string
    /// may have; longer ones are cut at a character boundary.
    pub max_attribute_value_length: usize,
    /// Memory one request's rows may take once normalized (each span
    /// carries its resource's attributes); further spans are rejected.
    pub max_request_memory: ByteSize,
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
            max_request_memory: ByteSize::mib(256),
            max_concurrent_exports: 8,
            queue_wait: std::time::Duration::from_millis(500),
        }
    }
}

impl LimitsConfig {
    /// Drops attributes past the count and cuts keys and values past the
    /// length; returns how many attributes were dropped or cut.
    pub fn apply(&self, attributes: &mut Attributes<'_>) -> u64 {
        let mut changed = 0;
        if attributes.len() > self.max_attributes_per_span {
            changed += (attributes.len() - self.max_attributes_per_span) as u64;
            attributes.truncate(self.max_attributes_per_span);
        }
        for (key, value) in attributes.iter_mut() {
            let cut_key = self.cut(key);
            if self.cut(value) || cut_key {
                changed += 1;
            }
        }
        changed
    }

    /// Cuts `value` at the length, on a character boundary; whether it did.
    pub fn cut(&self, value: &mut Cow<'_, str>) -> bool {
        let max = self.max_attribute_value_length;
        if value.len() <= max {
            return false;
        }
        let cut = value.floor_char_boundary(max);
        *value = match std::mem::take(value) {
            Cow::Borrowed(v) => Cow::Borrowed(&v[..cut]),
            Cow::Owned(mut v) => {
                v.truncate(cut);
                Cow::Owned(v)
            }
        };
        true
    }

    /// Applies the limits to everything of a span's row but its resource
    /// (which [`LimitsConfig::apply_resource`] took care of): returns how
    /// many attributes and how many other strings were dropped or cut.
    pub fn apply_row(&self, row: &mut SpanRow<'_>) -> (u64, u64) {
        let mut attributes = self.apply(&mut row.attributes);
        let mut strings = 0;
        let mut cut = |value: &mut Cow<'_, str>| strings += u64::from(self.cut(value));
        cut(&mut row.name);
        cut(&mut row.trace_state);
        cut(&mut row.status_message);
        cut(&mut row.scope_name);
        cut(&mut row.scope_version);
        for value in [
            &mut row.messaging_system,
            &mut row.messaging_operation,
            &mut row.messaging_destination,
            &mut row.messaging_message_id,
            &mut row.faas_trigger,
            &mut row.faas_invocation_id,
        ]
        .into_iter()
        .flatten()
        {
            cut(value);
        }
        for link in &mut row.links {
            cut(&mut link.trace_state);
        }
        for event in &mut row.events {
            cut(&mut event.name);
        }
        for link in &mut row.links {
            attributes += self.apply(&mut link.attributes);
        }
        for event in &mut row.events {
            attributes += self.apply(&mut event.attributes);
        }
        (attributes, strings)
    }

    /// Applies the limits to what every span of a resource shares: its
    /// attributes, and the service and instance read from them.
    pub fn apply_resource(&self, resource: &mut ResourceContext<'_>) -> (u64, u64) {
        let attributes = self.apply(&mut resource.attributes);
        let mut strings = u64::from(self.cut(&mut resource.service_name));
        for value in [&mut resource.instance, &mut resource.initialization_type]
            .into_iter()
            .flatten()
        {
            strings += u64::from(self.cut(value));
        }
        (attributes, strings)
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

    /// Reads this process's resident memory (Linux); `None` where it
    /// cannot be read, which the server reports at start.
    ///
    /// `VmRSS` in `/proc/self/status` is in kibibytes whatever the page
    /// size; `/proc/self/statm` counts pages, which are 16 or 64 KiB on
    /// some arm64 and POWER kernels, so reading it as 4 KiB pages would
    /// let a process run four to sixteen times past its limit.
    pub fn sample_rss() -> Option<u64> {
        parse_vm_rss(&std::fs::read_to_string("/proc/self/status").ok()?)
    }
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in bytes.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next()? {
        "kB" => Some(value * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_in_kibibytes_not_pages() {
        let status = "Name:\tseam\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 100 kB\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(
            parse_vm_rss("Name:\tkthreadd\n"),
            None,
            "kernel threads have none"
        );
        assert_eq!(parse_vm_rss("VmRSS:\t12 pages\n"), None);
        // This process's own figure agrees with the kernel's other count.
        let sampled = MemoryGauge::sample_rss().expect("Linux");
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        let page = std::fs::read_to_string("/proc/self/smaps")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("KernelPageSize:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(4)
            * 1024;
        let from_pages = pages * page;
        let diff = sampled.abs_diff(from_pages);
        assert!(
            diff < from_pages / 4,
            "status says {sampled}, statm × page size says {from_pages}"
        );
    }

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
