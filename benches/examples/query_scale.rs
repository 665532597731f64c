//! Query latency over a large store, p50 and p99.
//!
//! Fills a store through the real pipeline with `spans` flat spans
//! (`seam loadgen`'s shape: 512-span requests, 10 attributes of 16 bytes)
//! and the demo's hybrid journeys mixed in (one journey request per flat
//! request), sealing every million spans so that the last million stay
//! hot, as a running server would hold them. Then it times, one query at a
//! time on the server's runtime:
//! - trace by id (`GET /api/v1/traces/{id}`'s query) for traces spread
//!   over the whole store, hot and sealed;
//! - flow by id (`GET /api/v1/traces/{id}/flow`) for hybrid journeys, and
//!   its two queries (the spans, the boundaries) apart for stitched ones;
//! - `SELECT service_name, count(*) FROM spans GROUP BY 1`;
//! - a search by attribute value.
//!
//! ```sh
//! cargo run --release -p seam-benches --example query_scale -- 10000000 /var/lib/seam-bench
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use seam_benches::{NOW, first_trace, server};
use seam_loadgen::{Generator, SpanShape};
use seam_query::lookup::Lookup;
use seam_query::reports::flows::{flow_consumed, spans_of};
use seam_store::KeyFilters;

const PER_REQUEST: usize = 512;
const SEAL_EVERY: usize = 1_000_000;
/// Ids sampled for the by-id queries.
const LOOKUPS: usize = 200;

fn main() {
    let mut args = std::env::args().skip(1);
    let spans: usize = args
        .next()
        .map_or(10_000_000, |a| a.parse().expect("a span count"));
    let dir = args
        .next()
        .map_or_else(|| std::env::temp_dir().join("seam-query-scale"), Into::into);
    let _ = std::fs::remove_dir_all(&dir);
    let s = server(&dir, false);

    let requests = spans.div_ceil(PER_REQUEST);
    let every = (requests / LOOKUPS).max(1);
    let mut flat = Generator::flat(
        SpanShape {
            batch: PER_REQUEST,
            ..SpanShape::default()
        },
        11,
    );
    let mut hybrid = Generator::hybrid(12);
    let mut traces = Vec::new();
    let mut journeys = Vec::new();
    let mut route = String::new();
    let (mut stored, mut since_seal, mut seals) = (0usize, 0usize, Duration::ZERO);
    let t = Instant::now();
    for i in 0..requests {
        let (request, n) = flat.next_request(NOW);
        if i % every == 0 {
            traces.push(first_trace(&request));
        }
        if i == requests / 2 {
            route = route_of(&request);
        }
        s.pipeline.ingest(&request).expect("ingest");
        let (journey, m) = hybrid.next_request(NOW);
        if i % every == 0 {
            journeys.push(first_trace(&journey));
        }
        s.pipeline.ingest(&journey).expect("ingest");
        stored += n + m;
        since_seal += n + m;
        // The last million stays hot.
        if since_seal >= SEAL_EVERY && spans.saturating_sub(stored) >= SEAL_EVERY / 2 {
            let t = Instant::now();
            s.store.seal().expect("seal");
            seals += t.elapsed();
            since_seal = 0;
        }
    }
    let tables = s.store.table_stats();
    let spans_table = &tables[0];
    println!(
        "stored {stored} spans in {:.1} s (seals {:.1} s): {} sealed in {} files ({:.0} MiB), {} hot",
        t.elapsed().as_secs_f64(),
        seals.as_secs_f64(),
        spans_table.sealed_rows,
        spans_table.sealed_files,
        spans_table.sealed_bytes as f64 / 1048576.0,
        spans_table.hot_rows,
    );
    // What a lookup keeps in memory to skip files: their trace-id filters.
    let filters: usize = (s.store.table("spans").sealed().iter())
        .map(|f| {
            let filters = KeyFilters::read(&f.path, &["trace_id"]).expect("filters");
            filters.bytes()
        })
        .sum();
    println!(
        "trace-id bloom filters kept in memory: {:.1} MiB, {:.2} bytes per sealed span",
        filters as f64 / 1048576.0,
        filters as f64 / spans_table.sealed_rows.max(1) as f64,
    );

    let engine = Arc::new(s.engine());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    println!("| query | runs | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    let report = |name: &str, mut times: Vec<Duration>| {
        times.sort();
        let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        println!(
            "| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms |",
            times.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(*times.last().expect("runs"))
        );
    };
    let timed = |f: &dyn Fn() -> usize| {
        let t = Instant::now();
        let rows = f();
        assert!(rows > 0, "the query found nothing");
        t.elapsed()
    };

    // One warm-up query, as a server that has answered before.
    runtime.block_on(engine.trace(traces[0])).expect("trace");
    let times = traces
        .iter()
        .map(|&id| {
            timed(&|| {
                runtime
                    .block_on(engine.trace(id))
                    .expect("trace")
                    .num_rows()
            })
        })
        .collect();
    report("trace by id", times);
    let times = journeys
        .iter()
        .map(|&id| {
            timed(&|| {
                runtime
                    .block_on(engine.flow(id))
                    .expect("flow")
                    .map_or(0, |f| f.spans.num_rows())
            })
        })
        .collect();
    report("flow by id (hybrid journeys)", times);
    // Its two lookups apart, to tell which one it waits on.
    let members: Vec<Vec<_>> = journeys
        .iter()
        .map(|&id| {
            let flow = runtime.block_on(engine.flow(id)).expect("flow");
            flow.expect("a stored journey").trace_ids
        })
        // Stitched ones: a trace alone has no boundaries.
        .filter(|ids| ids.len() > 1)
        .collect();
    for (name, lookup) in [
        ("flow: its spans", spans_of as fn(&[_]) -> Lookup),
        ("flow: the boundaries it consumed", flow_consumed),
    ] {
        let times = members
            .iter()
            .map(|ids| {
                timed(&|| {
                    runtime
                        .block_on(engine.lookup(lookup(ids)))
                        .expect("lookup")
                        .num_rows()
                })
            })
            .collect();
        report(name, times);
    }
    let group = "SELECT service_name, count(*) FROM spans GROUP BY 1";
    let times = (0..30)
        .map(|_| timed(&|| runtime.block_on(engine.sql(group)).expect("sql").num_rows()))
        .collect();
    report(group, times);
    let search =
        format!("SELECT trace_id FROM spans WHERE attributes['http.route'] = '{route}' LIMIT 20");
    let times = (0..10)
        .map(|_| {
            timed(&|| {
                runtime
                    .block_on(engine.sql(&search))
                    .expect("sql")
                    .num_rows()
            })
        })
        .collect();
    report("attribute search (one span matches), LIMIT 20", times);
}

/// The `http.route` value of the request's first span.
fn route_of(
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    span.attributes
        .iter()
        .find(|a| a.key == "http.route")
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
        .expect("flat spans carry http.route")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
