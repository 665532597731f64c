//! Measures what the correlation state costs: resident memory per waiting
//! half, and how fast halves are taken in and stitched.
//!
//! ```sh
//! cargo run --release -p seam-correlate --example state_memory -- 1000000
//! ```
//!
//! What the state of nested invocations costs at its caps: function
//! invocation spans seen, and the same spans waiting for a parent that
//! was exported apart from them, one process each:
//!
//! ```sh
//! cargo run --release -p seam-correlate --example state_memory -- nesting seen
//! cargo run --release -p seam-correlate --example state_memory -- nesting waiting
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
    if std::env::args().nth(1).as_deref() == Some("nesting") {
        return nesting(std::env::args().nth(2).as_deref() == Some("waiting"));
    }
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

/// A Lambda invocation span of one of a thousand instances, with or
/// without a parent span (exported elsewhere, never seen here). INTERNAL
/// with a trigger, so that it is no side of a call and only the nesting
/// state holds it.
fn invocation(n: u64, parented: bool) -> SpanRow<'static> {
    let (trace_id, span_id) = ids(n + (1 << 41));
    SpanRow {
        name: Cow::Borrowed("orders-handler"),
        kind: SpanKind::Internal,
        service_name: Cow::Borrowed("orders-handler"),
        platform: Platform::Faas,
        instance: Some(Cow::Owned(format!("2026/12/05/[$LATEST]{:032x}", n % 1000))),
        faas_trigger: Some(Cow::Borrowed("http")),
        parent_span_id: parented.then(|| ids(n + (1 << 42)).1),
        ..SpanRow::new(
            trace_id,
            span_id,
            1_760_000_000_000_000_000,
            1_760_000_000_005_000_000,
            &NO_ATTRS,
        )
    }
}

/// RSS growth of taking in `n` invocation spans on a fresh correlator.
fn invocations_rss(n: u64, parented: bool) -> u64 {
    let correlator = Correlator::new(CorrelationConfig::default());
    let before = rss_bytes();
    for chunk in (0..n).collect::<Vec<_>>().chunks(512) {
        let rows: Vec<SpanRow<'static>> = chunk.iter().map(|i| invocation(*i, parented)).collect();
        let observed = rows
            .iter()
            .map(|r| correlator.extractor().observe(r))
            .collect();
        correlator
            .observe(observed, 1_760_000_000_000_000_000, &mut Derived::default())
            .expect("observe");
    }
    rss_bytes().saturating_sub(before)
}

fn nesting(parented: bool) {
    let n = seam_correlate::nesting::CAP as u64;
    let grew = invocations_rss(n, parented);
    println!(
        "{n} function invocation spans {}: RSS +{} MiB, {:.0} bytes each",
        if parented {
            "seen and waiting for a parent"
        } else {
            "seen, with no parent"
        },
        grew >> 20,
        grew as f64 / n as f64
    );
}
