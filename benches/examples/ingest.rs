//! Ingest on one thread, for profiling: generated requests through the
//! real pipeline (normalize, store, correlate; the write-ahead log with
//! `--wal`), with the generation done before the clock starts.
//!
//! ```sh
//! cargo build --release -p seam-benches --example ingest
//! perf record -g target/release/examples/ingest hybrid 200000
//! target/release/examples/ingest flat 1000000 --wal
//! ```

use std::time::Instant;

use seam_benches::{flat, hybrid, server};

fn main() {
    let mut args = std::env::args().skip(1);
    let topology = args.next().unwrap_or_else(|| "flat".into());
    let spans: usize = args
        .next()
        .map_or(200_000, |a| a.parse().expect("a span count"));
    let wal = args.any(|a| a == "--wal");
    let requests = match topology.as_str() {
        "flat" => flat(spans.div_ceil(512), 512, 1),
        "hybrid" => hybrid(spans, 1),
        other => panic!("unknown topology {other}: flat or hybrid"),
    };
    let n: usize = requests.iter().map(seam_loadgen::generate::count).sum();
    let dir = tempfile::tempdir_in(".").expect("a temporary directory here");
    let s = server(dir.path(), wal);
    let t = Instant::now();
    for r in &requests {
        s.pipeline.ingest(r).expect("ingest");
    }
    let took = t.elapsed();
    let hot = s.store.hot_bytes();
    println!(
        "{topology}: {n} spans in {} requests, {:.2} s: {:.0} spans/s; hot memory {:.0} bytes/span",
        requests.len(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        hot as f64 / n as f64
    );
    // Where the hot memory goes, column by column.
    let snapshot = s.store.table("spans").snapshot();
    let schema = snapshot.schema.clone();
    let mut columns: Vec<(usize, &str)> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let bytes = snapshot
                .segments
                .iter()
                .map(|seg| seg.batch.column(i).get_array_memory_size())
                .sum();
            (bytes, f.name().as_str())
        })
        .collect();
    columns.sort_by(|a, b| b.cmp(a));
    let rows = snapshot.num_rows().max(1) as f64;
    let line: Vec<String> = columns
        .iter()
        .take(40)
        .map(|(bytes, name)| format!("{name} {:.0}", *bytes as f64 / rows))
        .collect();
    println!("spans table, bytes/span by column: {}", line.join(", "));
}
