//! Sealed storage from the outside: spans exported with the Python SDK are
//! sealed into Parquet files, small files are compacted, data reads the
//! same from memory, from files and after a restart, and retention deletes
//! what is past `retention.max_age`, counted in `/metrics`.

use std::time::{Duration, Instant};

use seam_integration_tests::{Seam, export_with_python, rows};

fn config(dir: &std::path::Path, retention: &str) -> String {
    let path = dir.join("seam.yaml");
    std::fs::write(
        &path,
        format!(
            "storage:\n  seal_interval: 1s\n  housekeeping_interval: 1s\n  compact_min_files: 3\nretention:\n  max_age: {retention}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Polls `until` on `seam`'s metric `series` for up to 30 s.
fn wait_metric(seam: &Seam, series: &str, until: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = seam.metric(series);
        if until(value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

const SEALED_FILES: &str = r#"seam_store_sealed_files{table="spans"}"#;
const SEALED_ROWS: &str = r#"seam_store_sealed_rows{table="spans"}"#;

fn span_ids(seam: &Seam) -> Vec<String> {
    rows(&seam.sql("SELECT span_id FROM spans ORDER BY span_id"))
        .iter()
        .map(|r| r["span_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn spans_are_sealed_compacted_kept_across_restarts_and_expired() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let env = [("SEAM_DATA_DIR", data_dir.to_str().unwrap())];
    let keep = config(dir.path(), "7d");
    let seam = Seam::start_with(&["--config", &keep], &env);

    // Several exports, each sealed on its own: small files to compact.
    let mut exported = Vec::new();
    let mut trace = None;
    for i in 0..4 {
        let sealed_before = seam.metric(SEALED_ROWS);
        let e = export_with_python(&seam, if i % 2 == 0 { "grpc" } else { "http" }, "stored");
        exported.extend(e.span_ids.clone());
        trace.get_or_insert(e.trace_id);
        let sealed = wait_metric(&seam, SEALED_ROWS, |v| v > sealed_before);
        assert!(sealed > sealed_before, "not sealed:\n{}", seam.logs());
    }
    exported.sort();
    let compacted = wait_metric(&seam, "seam_store_compactions_total", |v| v >= 1.0);
    assert!(compacted >= 1.0, "no compaction:\n{}", seam.logs());
    assert!(seam.metric(SEALED_FILES) < 4.0);
    assert_eq!(seam.metric(SEALED_ROWS) as usize, exported.len());
    assert_eq!(span_ids(&seam), exported, "every span once, from the files");
    // Each seal's pause and duration, each export's answer and each query
    // are in the histograms.
    let seals = seam.metric("seam_store_seals_total");
    assert!(seals >= 4.0);
    assert_eq!(seam.metric("seam_store_seal_pause_seconds_count"), seals);
    assert_eq!(seam.metric("seam_store_seal_duration_seconds_count"), seals);
    assert!(seam.metric("seam_receiver_ack_latency_seconds_count") >= 4.0);
    assert!(seam.metric(r#"seam_query_duration_seconds_count{outcome="ok"}"#) >= 1.0);

    // A trace read from its sealed file, through the API.
    let trace = trace.unwrap();
    let (status, body) = seam.get(&format!("/api/v1/traces/{trace}"));
    assert_eq!(status, 200, "{body}");
    assert!(!body["spans"].as_array().unwrap().is_empty());
    let status = seam.terminate();
    assert!(status.success());

    let files = data_dir.join("segments/spans");
    let on_disk = std::fs::read_dir(&files).unwrap().count();
    assert!(on_disk >= 1, "sealed files in {}", files.display());

    // Same data after a restart, with nothing to replay.
    let seam = Seam::start_with(&["--config", &keep], &env);
    assert!(seam.logs().contains("sealed data found"), "{}", seam.logs());
    assert_eq!(span_ids(&seam), exported);
    drop(seam);

    // A shorter retention deletes it all, and says so.
    let short = config(dir.path(), "1s");
    let seam = Seam::start_with(&["--config", &short], &env);
    let deleted = wait_metric(
        &seam,
        r#"seam_retention_deleted_rows_total{reason="age"}"#,
        |v| v > 0.0,
    );
    assert_eq!(deleted as usize, exported.len(), "{}", seam.logs());
    assert!(span_ids(&seam).is_empty());
    assert_eq!(seam.metric(SEALED_FILES), 0.0);
}
