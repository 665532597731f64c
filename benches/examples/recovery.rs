//! What a restart costs, and what a span costs on disk.
//!
//! Stores `spans` spans (`seam loadgen`'s flat requests: 512 spans with 10
//! attributes of 16 bytes, through the real pipeline: normalize, log,
//! store, correlate), then:
//! 1. drops everything without sealing (as `kill -9` would) and times a
//!    start that replays them all from the write-ahead log;
//! 2. seals them and times a start that finds them sealed.
//!
//! Prints bytes per span in the log and in Parquet, and hot memory per span.
//!
//! ```sh
//! cargo run --release -p seam-benches --example recovery -- 1000000 /var/lib/seam-bench
//! ```

use std::time::Instant;

use seam_benches::{NOW, start};
use seam_loadgen::{Generator, SpanShape};

const PER_REQUEST: usize = 512;

/// [`start`], timed.
fn timed_start(dir: &std::path::Path) -> (seam_benches::Server, u64, std::time::Duration) {
    let t = Instant::now();
    let (server, replayed) = start(dir, true);
    (server, replayed, t.elapsed())
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

    let (server, _, _) = timed_start(&dir);
    let mut generator = Generator::flat(
        SpanShape {
            batch: PER_REQUEST,
            ..SpanShape::default()
        },
        1,
    );
    let t = Instant::now();
    for _ in 0..requests {
        let (request, _) = generator.next_request(NOW);
        server.pipeline.ingest(&request).expect("ingest");
    }
    let ingest = t.elapsed();
    let total = requests * PER_REQUEST as u64;
    let tables = server.store.table_stats();
    let hot = &tables[0];
    let wal_bytes = server.store.wal().disk_bytes();
    println!(
        "stored {total} spans in {:.2} s ({:.0} spans/s, one thread, WAL every_batch)",
        ingest.as_secs_f64(),
        total as f64 / ingest.as_secs_f64()
    );
    println!(
        "write-ahead log {:.1} MiB = {:.0} bytes/span; hot Arrow {:.1} MiB = {:.0} bytes/span",
        wal_bytes as f64 / 1048576.0,
        wal_bytes as f64 / total as f64,
        hot.hot_bytes as f64 / 1048576.0,
        hot.hot_bytes as f64 / total as f64
    );
    drop(server);

    let (server, replayed, took) = timed_start(&dir);
    assert_eq!(replayed, total);
    println!(
        "start after a crash, everything in the log: {:.2} s ({:.0} spans/s replayed)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );

    let t = Instant::now();
    let report = server.store.seal().expect("seal").expect("rows to seal");
    let tables = server.store.table_stats();
    let sealed = &tables[0];
    println!(
        "sealed {} rows in {:.2} s; spans on disk {:.1} MiB = {:.1} bytes/span (zstd Parquet, {} files)",
        report.rows,
        t.elapsed().as_secs_f64(),
        sealed.sealed_bytes as f64 / 1048576.0,
        sealed.sealed_bytes as f64 / sealed.sealed_rows as f64,
        sealed.sealed_files
    );
    drop(server);

    let (server, replayed, took) = timed_start(&dir);
    assert_eq!(replayed, 0);
    assert_eq!(server.store.table("spans").num_rows() as u64, total);
    println!("start with everything sealed: {:.3} s", took.as_secs_f64());
}

fn tempfile_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("seam-recovery-{}", std::process::id()))
}
