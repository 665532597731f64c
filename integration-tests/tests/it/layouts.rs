//! Rows in memory and rows in sealed files are two layouts of one table
//! (in memory: ids as bytes, attribute keys and resources kept once per
//! batch; in files: the columns SQL reads). The same requests must answer
//! the same from either, every column of every table: the answers are
//! read while everything is in memory, then the server stops (sealing
//! what it holds), starts again from its files, and answers again.

use std::time::{Duration, Instant};

use seam_integration_tests::{Seam, loadgen, rows};

/// What each table answers. A rollup's minute may be several rows (one
/// written when the minute was quiet, more for what arrived later; one
/// per invocation not yet settled), which readers add up: the rollups
/// are compared added up by key, the other tables row by row.
const QUERIES: [(&str, &str); 8] = [
    ("spans", "SELECT * FROM spans"),
    ("traces", "SELECT * FROM traces"),
    ("boundaries", "SELECT * FROM boundaries"),
    ("orphans", "SELECT * FROM orphans"),
    ("flows", "SELECT * FROM flows"),
    (
        "edge_rollups",
        "SELECT minute, producer_service, system, destination, consumer_service, kind, \
         sum(count) AS count, max(max_ns) AS max_ns, sum(flagged) AS flagged, \
         sum(redeliveries) AS redeliveries, sum(clock_skew) AS clock_skew \
         FROM edge_rollups GROUP BY 1, 2, 3, 4, 5, 6",
    ),
    (
        "function_rollups",
        "SELECT minute, function, platform, sum(invocations) AS invocations, \
         sum(cold_starts) AS cold_starts, sum(proactive) AS proactive, \
         sum(provisioned) AS provisioned, sum(snapstart) AS snapstart \
         FROM function_rollups GROUP BY 1, 2, 3",
    ),
    (
        "operation_rollups",
        "SELECT minute, service_name, name, kind, platform, cloud_platform, sum(spans) AS spans \
         FROM operation_rollups GROUP BY 1, 2, 3, 4, 5, 6",
    ),
];

/// Every table's answer, each row as its JSON text, sorted: an order no
/// column's type can break (maps cannot be ordered by in SQL).
fn everything(seam: &Seam) -> Vec<(&'static str, Vec<String>)> {
    QUERIES
        .iter()
        .map(|(table, sql)| {
            let mut out: Vec<String> = rows(&seam.sql(sql))
                .iter()
                .map(|row| serde_json::to_string(row).unwrap())
                .collect();
            out.sort();
            (*table, out)
        })
        .collect()
}

fn load(seam: &Seam, topology: &str, seed: &str) {
    let grpc = seam.grpc_url();
    loadgen(&[
        "--endpoint",
        &grpc,
        "--topology",
        topology,
        "--rate",
        "1500",
        "--duration",
        "2s",
        "--seed",
        seed,
        "--timeout",
        "30s",
    ]);
}

#[test]
fn every_table_answers_the_same_from_memory_and_from_sealed_files() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let env = [("SEAM_DATA_DIR", data_dir.to_str().unwrap())];
    // Nothing seals while the answers from memory are read.
    let config = dir.path().join("seam.yaml");
    std::fs::write(&config, "storage:\n  seal_interval: 1h\n").unwrap();
    let config = config.to_str().unwrap().to_owned();
    let seam = Seam::start_with(&["--config", &config], &env);

    // The demo's journeys (queue hops, links, cold starts, functions)
    // and flat spans of ten attributes.
    load(&seam, "hybrid", "11");
    load(&seam, "flat", "12");

    // Correlation settles traces and declares orphans as time passes:
    // wait until two readings a few seconds apart agree.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut before = everything(&seam);
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let now = everything(&seam);
        if now == before || Instant::now() > deadline {
            assert_eq!(now, before, "answers never settled");
            break;
        }
        before = now;
    }
    for (table, rows) in &before {
        if *table != "orphans" {
            assert!(!rows.is_empty(), "no rows in {table}");
        }
    }
    let sealed = |table: &str| {
        std::fs::read_dir(data_dir.join("segments").join(table))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(sealed("spans"), 0, "read from memory");
    assert!(seam.terminate().success());
    assert!(sealed("spans") > 0, "sealed at stop");

    let seam = Seam::start_with(&["--config", &config], &env);
    let after = everything(&seam);
    for ((table, memory), (_, files)) in before.iter().zip(&after) {
        assert_eq!(
            memory.len(),
            files.len(),
            "{table}: rows\n{memory:#?}\n{files:#?}"
        );
        for (m, f) in memory.iter().zip(files) {
            assert_eq!(m, f, "{table}");
        }
    }
}
