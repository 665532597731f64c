//! Measures the write-ahead log: appends per second and MB/s with each
//! sync policy, from one writer and from several (whose syncs are shared).
//!
//! ```sh
//! cargo run --release -p seam-store --example wal_throughput -- [DIR]
//! ```
//!
//! DIR (default: a temporary directory) should be on the disk Seam's data
//! directory would use: a sync on tmpfs costs nothing and says nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use seam_store::{SyncPolicy, Wal, WalConfig};

fn run(dir: &std::path::Path, sync: SyncPolicy, writers: usize, record: usize, per_writer: usize) {
    let path = dir.join(format!("{sync:?}-{writers}-{record}"));
    let config = WalConfig {
        sync,
        ..WalConfig::default()
    };
    let (wal, _) = Wal::open(&path, config).expect("open");
    let wal = Arc::new(wal);
    let payload = vec![0x5a_u8; record];
    let started = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|_| {
            let (wal, payload) = (wal.clone(), payload.clone());
            std::thread::spawn(move || {
                for _ in 0..per_writer {
                    wal.append(&payload).expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    wal.sync().expect("sync");
    let took = started.elapsed().max(Duration::from_micros(1));
    let n = (writers * per_writer) as f64;
    println!(
        "{sync:?}, {writers} writer(s), {record} B records: {:.0} appends/s, {:.0} MB/s",
        n / took.as_secs_f64(),
        n * record as f64 / took.as_secs_f64() / 1e6
    );
    let _ = std::fs::remove_dir_all(&path);
}

fn main() {
    let tmp;
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = std::env::temp_dir().join(format!("seam-wal-{}", std::process::id()));
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir).expect("dir");
    // 512 spans of ~720 bytes: a typical SDK batch.
    let batch = 370_000;
    for sync in [SyncPolicy::EveryBatch, SyncPolicy::Interval] {
        run(&dir, sync, 1, batch, 200);
        run(&dir, sync, 4, batch, 50);
        run(&dir, sync, 4, 8_000, 500);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
