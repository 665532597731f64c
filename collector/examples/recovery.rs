//! What a restart costs, and what a span costs on disk.
//!
//! Stores `spans` spans (requests of 512 spans with 10 attributes each,
//! through the real pipeline: normalize, log, store, correlate), then:
//! 1. drops everything without sealing (as `kill -9` would) and times a
//!    start that replays them all from the write-ahead log;
//! 2. seals them and times a start that finds them sealed.
//!
//! Prints bytes per span in the log and in Parquet, and hot memory per span.
//!
//! ```sh
//! cargo run --release -p seam-collector --example recovery -- 1000000 /var/lib/seam-bench
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};
use prost::Message;
use seam_collector::{Pipeline, ReceiverConfig, store_tables};
use seam_correlate::{CorrelationConfig, Correlator};
use seam_store::{Opened, RetentionConfig, StorageConfig, Store, WalConfig};

const PER_REQUEST: usize = 512;

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(v: &str) -> Value {
    Value::StringValue(v.into())
}

/// Request `n`: 512 spans of 16-span traces from one of 20 services.
fn request(n: u64) -> ExportTraceServiceRequest {
    let service = format!("svc-{}", n % 20);
    let spans = (0..PER_REQUEST as u64)
        .map(|i| {
            let id = n * PER_REQUEST as u64 + i;
            let trace = id / 16 + 1;
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&trace.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
            trace_id[8..].copy_from_slice(&trace.to_be_bytes());
            let start = 1_790_000_000_000_000_000 + id * 1_000_000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (id + 1).to_be_bytes().to_vec(),
                parent_span_id: if id.is_multiple_of(16) {
                    Vec::new()
                } else {
                    (id - id % 16 + 1).to_be_bytes().to_vec()
                },
                name: format!("GET /api/items/{{id}}/{}", i % 8),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 2_500_000 + (id % 97) * 10_000,
                attributes: vec![
                    kv("http.request.method", s("GET")),
                    kv("http.route", s("/api/items/{id}")),
                    kv("http.response.status_code", Value::IntValue(200)),
                    kv(
                        "url.full",
                        s(&format!("https://shop.example.com/api/items/{id}")),
                    ),
                    kv("server.address", s("shop.example.com")),
                    kv("server.port", Value::IntValue(443)),
                    kv("user_agent.original", s("Mozilla/5.0 (X11; Linux x86_64)")),
                    kv("network.protocol.version", s("1.1")),
                    kv(
                        "client.address",
                        s(&format!("10.0.{}.{}", id % 250, i % 250)),
                    ),
                    kv("app.item_id", Value::IntValue(id as i64)),
                ],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s(&service)),
                    kv("k8s.pod.name", s(&format!("{service}-7d9f8-x2k{}", n % 3))),
                    kv("k8s.namespace.name", s("shop")),
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

struct Server {
    store: Arc<Store>,
    correlator: Arc<Correlator>,
    pipeline: Pipeline,
}

/// Opens the store and replays the log, as `seam serve` does on start.
fn start(dir: &Path) -> (Server, u64, std::time::Duration) {
    let started = Instant::now();
    let storage = StorageConfig {
        seal_size: bytesize::ByteSize::gib(64),
        ..StorageConfig::default()
    };
    let Opened {
        store,
        replay,
        state,
    } = Store::open(
        dir,
        storage,
        RetentionConfig::default(),
        WalConfig::default(),
        store_tables(),
    )
    .expect("open the store");
    let store = Arc::new(store);
    let correlator = Arc::new(Correlator::new(
        CorrelationConfig::default(),
        store.table("boundaries"),
        store.table("orphans"),
    ));
    if let Some(state) = state {
        correlator.restore_bytes(&state, "state").expect("state");
    }
    let pipeline = Pipeline::new(store.table("spans"), ReceiverConfig::default())
        .with_correlator(correlator.clone())
        .with_wal(store.wal().clone(), store.gate().clone());
    let mut replayed = 0;
    for record in &replay.records {
        let request = ExportTraceServiceRequest::decode(record.as_slice()).expect("decode");
        replayed += pipeline.replay(&request).expect("replay").accepted;
    }
    (
        Server {
            store,
            correlator,
            pipeline,
        },
        replayed,
        started.elapsed(),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let spans: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("a span count"));
    let tmp;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile_dir();
            tmp.clone()
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    let requests = spans.div_ceil(PER_REQUEST) as u64;
    println!(
        "data dir {}: {requests} requests of {PER_REQUEST} spans",
        dir.display()
    );

    let (server, _, _) = start(&dir);
    let t = Instant::now();
    for n in 0..requests {
        server.pipeline.ingest(&request(n)).expect("ingest");
    }
    let ingest = t.elapsed();
    let total = requests * PER_REQUEST as u64;
    let stats = server.store.stats();
    let hot = &stats.tables[0];
    println!(
        "stored {total} spans in {:.2} s ({:.0} spans/s, one thread, WAL every_batch)",
        ingest.as_secs_f64(),
        total as f64 / ingest.as_secs_f64()
    );
    println!(
        "write-ahead log {:.1} MiB = {:.0} bytes/span; hot Arrow {:.1} MiB = {:.0} bytes/span",
        stats.wal_bytes as f64 / 1048576.0,
        stats.wal_bytes as f64 / total as f64,
        hot.hot_bytes as f64 / 1048576.0,
        hot.hot_bytes as f64 / total as f64
    );
    drop(server);

    let (server, replayed, took) = start(&dir);
    assert_eq!(replayed, total);
    println!(
        "start after a crash, everything in the log: {:.2} s ({:.0} spans/s replayed)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );

    let t = Instant::now();
    let report = server
        .store
        .seal(server.correlator.as_ref())
        .expect("seal")
        .expect("rows to seal");
    let stats = server.store.stats();
    let sealed = &stats.tables[0];
    println!(
        "sealed {} rows in {:.2} s; spans on disk {:.1} MiB = {:.1} bytes/span (zstd Parquet, {} files)",
        report.rows,
        t.elapsed().as_secs_f64(),
        sealed.sealed_bytes as f64 / 1048576.0,
        sealed.sealed_bytes as f64 / sealed.sealed_rows as f64,
        sealed.sealed_files
    );
    drop(server);

    let (server, replayed, took) = start(&dir);
    assert_eq!(replayed, 0);
    assert_eq!(server.store.table("spans").num_rows() as u64, total);
    println!("start with everything sealed: {:.3} s", took.as_secs_f64());
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("seam-recovery-{}", std::process::id()))
}
