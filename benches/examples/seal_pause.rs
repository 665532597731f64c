//! What a seal costs ingest when the correlation state is full.
//!
//! Fills the correlation state with `halves` waiting producer halves (SQS
//! sends whose consumers never come), through the real pipeline (log,
//! store, correlation on its own thread), then seals three times while
//! another thread keeps exporting small requests, and prints:
//! - the pause: how long ingest was held at each seal's cut;
//! - the seal: how long the whole seal took, the state's capture included;
//! - the exports acknowledged while the seals ran, and their latency.
//!
//! ```sh
//! cargo run --release -p seam-benches --example seal_pause -- 1000000 /var/lib/seam-bench
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use seam_benches::{NOW, flat, start};

const PER_REQUEST: usize = 512;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// `n` SQS sends, each its own trace, numbered from `first`.
fn producers(first: u64, n: usize) -> ExportTraceServiceRequest {
    let spans = (first..first + n as u64)
        .map(|i| Span {
            trace_id: [i.to_be_bytes(), (i + 1).to_be_bytes()].concat(),
            span_id: (i | 1 << 62).to_be_bytes().to_vec(),
            name: "orders send".into(),
            kind: 4,
            start_time_unix_nano: NOW,
            end_time_unix_nano: NOW + 1_000_000,
            attributes: vec![
                text("messaging.system", "aws_sqs"),
                text("messaging.destination.name", "orders"),
                text("messaging.operation.type", "send"),
                text("messaging.message.id", &format!("m-{i}")),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "checkout"),
                    text("k8s.pod.name", "checkout-1"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let halves: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("a count of halves"));
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("seam-seal-pause-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let (server, _) = start(&dir, true);
    let server = Arc::new(server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let t = Instant::now();
    let mut first = 0u64;
    while (first as usize) < halves {
        let n = PER_REQUEST.min(halves - first as usize);
        server
            .pipeline
            .ingest(&producers(first, n))
            .expect("ingest");
        first += n as u64;
    }
    runtime.block_on(server.store.settle().settled());
    println!(
        "{} waiting halves taken in in {:.1} s",
        server.correlator.stats().pending_halves,
        t.elapsed().as_secs_f64()
    );
    // The rows of the fill are sealed once, so that the seals measured
    // below seal what arrives during them.
    server.store.seal().expect("seal").expect("rows to seal");

    let exporting = Arc::new(AtomicBool::new(true));
    let exporter = {
        let (server, exporting) = (server.clone(), exporting.clone());
        std::thread::spawn(move || {
            let requests = flat(256, 64, 9);
            let mut acks = Vec::new();
            let mut i = 0;
            while exporting.load(Ordering::Relaxed) {
                let started = Instant::now();
                server
                    .pipeline
                    .ingest(&requests[i % requests.len()])
                    .expect("ingest");
                acks.push((started, started.elapsed()));
                i += 1;
            }
            acks
        })
    };
    let mut seals = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        let report = server.store.seal().expect("seal").expect("rows to seal");
        seals.push((started, Instant::now(), report));
    }
    std::thread::sleep(Duration::from_millis(200));
    exporting.store(false, Ordering::Relaxed);
    let acks = exporter.join().expect("exporter");
    for (i, (_, _, report)) in seals.iter().enumerate() {
        println!(
            "seal {}: ingest held {:.2} ms; seal {:.2} s ({} rows, state captured off the pause)",
            i + 1,
            report.pause.as_secs_f64() * 1e3,
            report.elapsed.as_secs_f64(),
            report.rows
        );
    }
    let during: Vec<Duration> = {
        let mut d: Vec<Duration> = acks
            .iter()
            .filter(|(at, took)| {
                seals
                    .iter()
                    .any(|(from, to, _)| *at + *took >= *from && *at <= *to)
            })
            .map(|(_, took)| *took)
            .collect();
        d.sort();
        d
    };
    let mut all: Vec<Duration> = acks.iter().map(|(_, took)| *took).collect();
    all.sort();
    println!(
        "exports of 64 spans acknowledged while the seals ran: {} (ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms); over the whole run: {} (p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms)",
        during.len(),
        percentile(&during, 0.5).as_secs_f64() * 1e3,
        percentile(&during, 0.99).as_secs_f64() * 1e3,
        during.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        all.len(),
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let _ = std::fs::remove_dir_all(&dir);
}
