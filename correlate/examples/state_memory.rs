//! Measures what the correlation state costs: resident memory per waiting
//! half, and how fast halves are taken in and stitched.
//!
//! ```sh
//! cargo run --release -p seam-correlate --example state_memory -- 1000000
//! ```
//!
//! Each waiting half is a producer span of an SQS-like queue with a
//! message id (the common case: the consumer has not arrived yet). Memory
//! is read from `/proc/self/statm`, so the figure includes the hash maps'
//! spare capacity, as a running server would.

use std::borrow::Cow;
use std::time::Instant;

use seam_correlate::{CorrelationConfig, Correlator};
use seam_model::{Attributes, LinkRow, Platform, SpanId, SpanKind, SpanRow, TraceId};
use seam_store::Derived;

static NO_ATTRS: Attributes<'static> = Vec::new();

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn ids(n: u64) -> (TraceId, SpanId) {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    t[8..].copy_from_slice(&(n + 1).to_be_bytes());
    (TraceId(t), SpanId((n | 1 << 62).to_be_bytes()))
}

fn span(n: u64, consumer: bool) -> SpanRow<'static> {
    let (trace_id, span_id) = ids(if consumer { n + (1 << 40) } else { n });
    let (pt, ps) = ids(n);
    let (name, kind, service, platform, operation) = if consumer {
        (
            "orders process",
            SpanKind::Consumer,
            "invoice",
            Platform::Faas,
            "process",
        )
    } else {
        (
            "orders send",
            SpanKind::Producer,
            "checkout",
            Platform::Kubernetes,
            "send",
        )
    };
    SpanRow {
        name: Cow::Borrowed(name),
        kind,
        service_name: Cow::Borrowed(service),
        platform,
        messaging_system: Some(Cow::Borrowed("aws_sqs")),
        messaging_operation: Some(Cow::Borrowed(operation)),
        messaging_destination: Some(Cow::Borrowed("orders")),
        attributes: vec![(
            Cow::Borrowed("messaging.message.id"),
            Cow::Owned(format!("{:08x}-5f0c-4d6e-9a51-{n:012x}", n as u32)),
        )],
        links: if consumer {
            vec![LinkRow {
                trace_id: pt,
                span_id: ps,
                trace_state: Cow::Borrowed(""),
                attributes: Vec::new(),
            }]
        } else {
            Vec::new()
        },
        ..SpanRow::new(
            trace_id,
            span_id,
            1_760_000_000_000_000_000,
            1_760_000_000_005_000_000,
            &NO_ATTRS,
        )
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let config = CorrelationConfig {
        max_pending: usize::MAX,
        ..CorrelationConfig::default()
    };
    let correlator = Correlator::new(config);
    let now = 1_760_000_000_000_000_000;
    let batch = 512;

    let before = rss_bytes();
    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        let rows: Vec<SpanRow<'static>> = chunk.iter().map(|i| span(*i, false)).collect();
        let observed = rows
            .iter()
            .map(|r| correlator.extractor().observe(r))
            .collect();
        correlator
            .observe(observed, now, &mut Derived::default())
            .expect("observe");
    }
    let producers_took = started.elapsed();
    let after = rss_bytes();
    let pending = correlator.stats().pending_halves;
    println!(
        "{pending} waiting halves: {:.0} bytes each (RSS +{} MiB); taken in at {:.0} halves/s",
        (after.saturating_sub(before)) as f64 / pending as f64,
        (after.saturating_sub(before)) >> 20,
        n as f64 / producers_took.as_secs_f64()
    );

    let started = Instant::now();
    let captured = correlator.capture().expect("capture");
    let wrote = started.elapsed();
    let size = captured.len() as u64;
    let restored = Correlator::new(CorrelationConfig {
        max_pending: usize::MAX,
        ..CorrelationConfig::default()
    });
    let started = Instant::now();
    restored
        .restore_bytes(&captured, "the captured state")
        .expect("restore");
    let read = started.elapsed();
    println!(
        "state of {pending} halves: {} MiB ({:.0} bytes each), captured in {:.2} s, installed in {:.2} s",
        size >> 20,
        size as f64 / pending as f64,
        wrote.as_secs_f64(),
        read.as_secs_f64()
    );
    drop(restored);

    let started = Instant::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        let rows: Vec<SpanRow<'static>> = chunk.iter().map(|i| span(*i, true)).collect();
        let observed = rows
            .iter()
            .map(|r| correlator.extractor().observe(r))
            .collect();
        correlator
            .observe(observed, now, &mut Derived::default())
            .expect("observe");
    }
    let took = started.elapsed();
    let stats = correlator.stats();
    println!(
        "{} consumers stitched {} boundaries at {:.0} spans/s ({} flows' traces indexed)",
        n,
        stats.boundaries,
        n as f64 / took.as_secs_f64(),
        stats.indexed_traces
    );
}
