//! Each stage on its own, on generated inputs of several sizes:
//!
//! ```sh
//! cargo bench -p seam-benches --features bench
//! cargo bench -p seam-benches --features bench -- query   # one group
//! cargo bench -p seam-benches --features bench -- stage   # each stage against its budget
//! ```
//!
//! Throughput is in spans (elements) per second; the query groups report
//! the time of one query over a store of the given size.

use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use seam_benches::{first_trace, flat, hybrid, server};
use seam_collector::view::wire;
use seam_model::TraceId;
use seam_query::QueryEngine;
use seam_store::parquet_file::{self, FileShape};

fn spans(
    requests: &[opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest],
) -> u64 {
    requests
        .iter()
        .map(|r| seam_loadgen::generate::count(r) as u64)
        .sum()
}

fn decode_protobuf(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for batch in [64, 512, 4096] {
        let body = flat(1, batch, 1)[0].encode_to_vec();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("protobuf", batch), &body, |b, body| {
            b.iter(|| {
                opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                    body.as_slice(),
                )
                .expect("decodes")
            })
        });
        // What the pipeline does with protobuf: read it in place.
        group.bench_with_input(BenchmarkId::new("in_place", batch), &body, |b, body| {
            b.iter(|| wire::read(body).expect("reads"))
        });
    }
    group.finish();
}

/// How a benchmark hands requests to the pipeline.
#[derive(Clone, Copy, PartialEq)]
enum Input {
    /// As prost structs ([`seam_collector::Pipeline::ingest`]): the
    /// stages after decoding.
    Decoded,
    /// As the receivers do, protobuf bytes
    /// ([`seam_collector::Pipeline::ingest_protobuf`]): decoding included.
    Protobuf,
}

/// Ingests `requests` into a fresh store per iteration (in a temporary
/// directory on the disk when the log is on, where its syncs are real).
fn bench_ingest(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    requests: &[opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest],
    wal: bool,
    input: Input,
) {
    let bodies: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
    group.throughput(Throughput::Elements(spans(requests)));
    group.bench_function(id, |b| {
        b.iter_batched(
            || {
                let dir = if wal {
                    tempfile::tempdir_in(".")
                } else {
                    tempfile::tempdir()
                }
                .expect("tempdir");
                let s = server(dir.path(), wal);
                (dir, s)
            },
            |(_dir, s)| match input {
                Input::Decoded => {
                    for r in requests {
                        s.pipeline.ingest(r).expect("ingest");
                    }
                }
                Input::Protobuf => {
                    for body in &bodies {
                        s.pipeline.ingest_protobuf(body).expect("ingest");
                    }
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
}

fn ingest(c: &mut Criterion) {
    let mut group = c.benchmark_group("ingest");
    group.sample_size(20);
    for batch in [64, 512, 4096] {
        let id = BenchmarkId::new("flat", batch);
        bench_ingest(&mut group, id, &flat(64, batch, 2), false, Input::Decoded);
    }
    let id = BenchmarkId::new("flat_from_protobuf", 512);
    bench_ingest(&mut group, id, &flat(64, 512, 2), false, Input::Protobuf);
    let id = BenchmarkId::from_parameter("hybrid_stitching");
    bench_ingest(&mut group, id, &hybrid(30_000, 3), false, Input::Decoded);
    let id = BenchmarkId::from_parameter("flat_512_with_wal_every_batch");
    bench_ingest(&mut group, id, &flat(64, 512, 4), true, Input::Decoded);
    group.finish();
}

/// A store of `n` spans, sealed or hot, with a query engine over it, and
/// the id of a trace in the middle.
fn engine(
    n: usize,
    sealed: bool,
) -> (
    tempfile::TempDir,
    seam_benches::Server,
    QueryEngine,
    TraceId,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = server(dir.path(), false);
    let requests = flat(n / 512, 512, 5);
    for r in &requests {
        s.pipeline.ingest(r).expect("ingest");
    }
    if sealed {
        s.store.seal().expect("seal");
    }
    let trace = first_trace(&requests[requests.len() / 2]);
    let engine = s.engine();
    (dir, s, engine, trace)
}

fn store_and_seal(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    for n in [10_000usize, 100_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = server(dir.path(), false);
        for r in &flat(n / 512, 512, 6) {
            s.pipeline.ingest(r).expect("ingest");
        }
        let table = s.store.table("spans");
        let batches: Vec<_> = table
            .snapshot()
            .segments
            .iter()
            .map(|x| x.batch.clone())
            .collect();
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_function(BenchmarkId::new("append", rows), |b| {
            b.iter_batched(
                || {
                    seam_store::Table::new(table.schema(), seam_model::schema::col::START_TIME)
                        .with_hot_schema(table.hot_schema())
                },
                |t| {
                    for batch in &batches {
                        t.append(batch.clone()).expect("append");
                    }
                },
                criterion::BatchSize::PerIteration,
            )
        });
        let out = tempfile::tempdir_in(".").expect("tempdir on the disk");
        let path = out.path().join("seal.parquet");
        group.bench_function(BenchmarkId::new("seal_parquet", rows), |b| {
            b.iter(|| {
                parquet_file::write(
                    &path,
                    &table.schema(),
                    &batches,
                    &seam_store::Layout::from(&seam_model::tables::spans()),
                    FileShape::default(),
                )
                .expect("write")
            })
        });
    }
    group.finish();
}

fn queries(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("query");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (n, sealed) in [(100_000usize, false), (100_000, true), (1_000_000, true)] {
        let (_dir, _server, engine, trace) = engine(n, sealed);
        let engine = Arc::new(engine);
        let label = format!("{n}_{}", if sealed { "sealed" } else { "hot" });
        group.bench_function(BenchmarkId::new("trace_by_id", &label), |b| {
            b.iter(|| runtime.block_on(engine.trace(trace)).expect("trace"))
        });
        group.bench_function(BenchmarkId::new("flow_by_id", &label), |b| {
            b.iter(|| runtime.block_on(engine.flow(trace)).expect("flow"))
        });
        group.bench_function(BenchmarkId::new("count_by_service", &label), |b| {
            b.iter(|| {
                runtime
                    .block_on(engine.sql("SELECT service_name, count(*) FROM spans GROUP BY 1"))
                    .expect("sql")
            })
        });
        group.bench_function(BenchmarkId::new("attribute_search", &label), |b| {
            b.iter(|| {
                runtime
                    .block_on(engine.sql(
                        "SELECT trace_id FROM spans WHERE attributes['http.route'] = '1-4242xxxxxxxxxx' LIMIT 20",
                    ))
                    .expect("sql")
            })
        });
    }
    group.finish();
}

/// `bodies` as the pipeline builds them: read in place, normalized,
/// appended to one builder.
fn columns(bodies: &[Vec<u8>]) -> seam_model::SpanBatchBuilder {
    use seam_collector::normalize::{self, ResourceContext, Rules, ScopeContext};
    let mut builder = seam_model::SpanBatchBuilder::new();
    let mut dropped = 0;
    for body in bodies {
        let export = wire::read(body).expect("reads in place");
        for r in &export.resource_spans {
            let resource = ResourceContext::new(r.resource.as_deref().unwrap_or_default());
            for scope_spans in &r.scope_spans {
                let scope = ScopeContext::new(scope_spans.scope.as_ref());
                for span in &scope_spans.spans {
                    let row = normalize::normalize(
                        span,
                        &resource,
                        &scope,
                        Rules::default(),
                        &mut dropped,
                    )
                    .expect("normalizes");
                    builder.append(&row);
                }
            }
        }
    }
    builder
}

/// Calls `f` with every row of `bodies`, normalized ahead, so that what
/// `f` times is only what follows normalization.
fn with_rows(bodies: &[Vec<u8>], f: impl FnOnce(&[seam_model::SpanRow<'_>])) {
    use seam_collector::normalize::{self, ResourceContext, Rules, ScopeContext};
    let exports: Vec<_> = (bodies.iter())
        .map(|b| wire::read(b).expect("reads"))
        .collect();
    let resources: Vec<Vec<ResourceContext<'_>>> = (exports.iter())
        .map(|e| {
            (e.resource_spans.iter())
                .map(|r| ResourceContext::new(r.resource.as_deref().unwrap_or_default()))
                .collect()
        })
        .collect();
    let mut rows = Vec::new();
    let mut dropped = 0;
    for (export, resources) in exports.iter().zip(&resources) {
        for (r, resource) in export.resource_spans.iter().zip(resources) {
            for scope_spans in &r.scope_spans {
                let scope = ScopeContext::new(scope_spans.scope.as_ref());
                for span in &scope_spans.spans {
                    let row = normalize::normalize(
                        span,
                        resource,
                        &scope,
                        Rules::default(),
                        &mut dropped,
                    )
                    .expect("normalizes");
                    rows.push(row);
                }
            }
        }
    }
    f(&rows)
}

/// The stages a span passes, one by one, each per span against its
/// budget in BENCHMARKS.md: protobuf bytes to Arrow columns, the log, the
/// seal's sort, the encoding of row groups, correlation.
fn stage(c: &mut Criterion) {
    let mut group = c.benchmark_group("stage");
    group.sample_size(20);
    // A merged segment's worth: 32 requests of 512 flat spans.
    let requests = flat(32, 512, 8);
    let bodies: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
    let n = spans(&requests);
    group.throughput(Throughput::Elements(n));

    group.bench_function("bytes_to_columns", |b| {
        b.iter(|| columns(&bodies).finish().expect("finish"))
    });

    for (name, sync) in [
        ("wal_every_batch", seam_store::SyncPolicy::EveryBatch),
        ("wal_interval", seam_store::SyncPolicy::Interval),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir_in(".").expect("tempdir on the disk");
                    let config = seam_store::WalConfig {
                        sync,
                        ..seam_store::WalConfig::default()
                    };
                    let (wal, _) = seam_store::Wal::open(dir.path(), config).expect("open the log");
                    (dir, wal)
                },
                |(_dir, wal)| {
                    for body in &bodies {
                        wal.append(body).expect("append");
                    }
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }

    // The segment as the seal finds it, and its rows in trace order.
    let segment = columns(&bodies).finish().expect("finish");
    let layout = seam_store::Layout::from(&seam_model::tables::spans());
    group.bench_function("seal_sort", |b| {
        b.iter(|| parquet_file::sorted_positions(&[&segment], &layout).expect("sort"))
    });
    let order = parquet_file::sorted_positions(&[&segment], &layout).expect("sort");
    let indices: arrow::array::UInt32Array = order.iter().map(|&(_, r)| r as u32).collect();
    let sorted = arrow::compute::take_record_batch(&segment, &indices).expect("take");
    let out = tempfile::tempdir_in(".").expect("tempdir on the disk");
    let path = out.path().join("row_groups.parquet");
    let schema = seam_model::schema::spans_schema();
    // Sorted rows written: gathering, encoding, compressing, the file's
    // sync (the sort of rows already in order is in it, small).
    group.bench_function("row_group_encode", |b| {
        b.iter(|| {
            parquet_file::write(
                &path,
                &schema,
                std::slice::from_ref(&sorted),
                &layout,
                FileShape::default(),
            )
            .expect("write")
        })
    });

    // Correlation: extracting each span's halves, then stitching them;
    // the demo's hybrid journeys, where it has work, and flat spans.
    let journeys = hybrid(16_384, 9);
    for (name, requests) in [
        ("correlation_hybrid", &journeys),
        ("correlation_flat", &requests),
    ] {
        let bodies: Vec<Vec<u8>> = requests.iter().map(Message::encode_to_vec).collect();
        group.throughput(Throughput::Elements(spans(requests)));
        with_rows(&bodies, |rows| {
            group.bench_function(name, |b| {
                b.iter_batched(
                    || seam_correlate::Correlator::new(Default::default()),
                    |correlator| {
                        let extractor = correlator.extractor();
                        let observed: Vec<_> = (rows.iter())
                            .map(|row| extractor.observe(row))
                            .filter(|o| !o.is_empty())
                            .collect();
                        let mut out = seam_store::Derived::default();
                        correlator
                            .observe(observed, seam_collector::now_unix_nano(), &mut out)
                            .expect("observe");
                        (correlator, out)
                    },
                    criterion::BatchSize::PerIteration,
                )
            });
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    decode_protobuf,
    ingest,
    store_and_seal,
    queries,
    stage
);
criterion_main!(benches);
