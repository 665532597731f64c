//! A data directory on a small filesystem that fills up and gets space
//! back, with `kill -9` while it is full and after: exports are refused as
//! retryable while the disk is full (HTTP 503 with `Retry-After`, gRPC
//! `UNAVAILABLE`), queries keep answering, seals fail and leave the store
//! as it was, ingest resumes by itself once space returns, and every
//! acknowledged span is stored exactly once through both crashes.
//!
//! The filesystem is a real tmpfs of 24 MiB, mounted by the test; that
//! needs root on Linux, which the test command has. Elsewhere the test says
//! so and passes without running.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use seam_integration_tests::reqwest::blocking_client;
use seam_integration_tests::{Seam, rows};

use crate::common::request;

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        if !mounted.status.success() {
            eprintln!(
                "skipping: cannot mount a tmpfs here (needs root on Linux): {}",
                String::from_utf8_lossy(&mounted.stderr).trim()
            );
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the filesystem with one file, until a write fails.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // And the last few bytes a smaller write still finds.
        while file.write_all(&block[..512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// An OTLP/JSON export of 200 spans of trace `n`, started now (older
/// spans would be retention's to delete).
fn export(seam: &Seam, n: u32) -> (u16, Option<String>, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let spans: Vec<String> = (0..200u32)
        .map(|i| {
            format!(
                r#"{{"traceId":"{n:032x}","spanId":"{:016x}","name":"op-{}","kind":2,"startTimeUnixNano":"{now}","endTimeUnixNano":"{}","attributes":[{{"key":"http.route","value":{{"stringValue":"/items/{i}"}}}},{{"key":"payload","value":{{"stringValue":"{}"}}}}]}}"#,
                (u64::from(n) << 16) | u64::from(i + 1),
                i % 7,
                now + 250_000_000,
                "p".repeat(200),
            )
        })
        .collect();
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"disk"}}}}]}},"scopeSpans":[{{"spans":[{}]}}]}}]}}"#,
        spans.join(",")
    );
    let r = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/json")
        .body(body.into_bytes())
        .send()
        .expect("POST /v1/traces");
    let retry = r
        .headers
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = r.status().as_u16();
    (
        status,
        retry,
        String::from_utf8_lossy(r.bytes()).into_owned(),
    )
}

/// Spans per trace of the `disk` service.
fn stored(seam: &Seam) -> BTreeMap<String, i64> {
    rows(&seam.sql(
        "SELECT trace_id, count(*) AS n FROM spans WHERE service_name = 'disk' GROUP BY trace_id",
    ))
    .iter()
    .map(|r| {
        (
            r["trace_id"].as_str().unwrap().to_owned(),
            r["n"].as_i64().unwrap(),
        )
    })
    .collect()
}

fn assert_exactly_once(seam: &Seam, acked: &BTreeSet<u32>) {
    let stored = stored(seam);
    for n in acked {
        let trace = format!("{n:032x}");
        assert_eq!(
            stored.get(&trace),
            Some(&200),
            "acknowledged export {n}: its 200 spans, once\n{}",
            seam.logs()
        );
    }
}

#[test]
fn a_full_disk_refuses_exports_as_retryable_and_loses_nothing_acknowledged() {
    let Some(disk) = SmallDisk::mount("24m") else {
        return;
    };
    let data_dir = disk.path().join("data");
    let config = disk.path().join("seam.yaml");
    std::fs::write(
        &config,
        "storage:\n  seal_interval: 1s\n  housekeeping_interval: 1s\n  compact_min_files: 2\nwal:\n  segment_size: 2 MiB\n",
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let env = [("SEAM_DATA_DIR", data_dir.to_str().unwrap())];
    let mut seam = Seam::start_with(&args, &env);

    let mut acked = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for n in 1..=40 {
        let (status, _, body) = export(&seam, n);
        assert_eq!(status, 200, "{body}");
        acked.insert(n);
    }

    // The disk fills up (another program's file): exports are refused as
    // retryable, with nothing of them kept, and queries keep answering.
    let filler = disk.fill();
    let seal_failures = seam.metric("seam_store_seal_failures_total");
    let mut n = 41;
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused.len() < 5 && Instant::now() < deadline {
        let (status, retry, body) = export(&seam, n);
        match status {
            200 => {
                acked.insert(n);
            }
            503 => {
                assert_eq!(retry.as_deref(), Some("1"), "Retry-After on a 503");
                assert!(body.contains("retry"), "{body}");
                refused.insert(n);
            }
            other => panic!("export {n} while the disk is full: {other} {body}"),
        }
        n += 1;
    }
    assert!(
        refused.len() >= 5,
        "a full disk refused no exports:\n{}",
        seam.logs()
    );
    // gRPC says UNAVAILABLE, which OTLP exporters retry.
    let grpc = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut client = TraceServiceClient::connect(seam.grpc_url()).await.unwrap();
            client.export(request(9, 50, "grpc-full")).await
        });
    let status = grpc.expect_err("a gRPC export on a full disk");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_exactly_once(&seam, &acked);
    // Seals that cannot write leave the store as it was.
    let deadline = Instant::now() + Duration::from_secs(20);
    while seam.metric("seam_store_seal_failures_total") <= seal_failures
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seam.metric("seam_store_seal_failures_total") > seal_failures,
        "no seal was tried on the full disk:\n{}",
        seam.logs()
    );
    assert_exactly_once(&seam, &acked);
    for n in &refused {
        assert!(
            !stored(&seam).contains_key(&format!("{n:032x}")),
            "refused export {n} was kept"
        );
    }

    // Killed while the disk is full, started again on it.
    seam.kill_9();
    let mut seam = Seam::start_with(&args, &env);
    assert_exactly_once(&seam, &acked);

    // Space comes back: ingest resumes by itself, and the refused exports,
    // sent again as an exporter would, are stored.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let retried: Vec<u32> = refused.iter().copied().collect();
    for n in retried {
        loop {
            let (status, _, body) = export(&seam, n);
            if status == 200 {
                acked.insert(n);
                break;
            }
            assert_eq!(status, 503, "{body}");
            assert!(Instant::now() < deadline, "ingest did not resume: {body}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for n in 100..120 {
        let (status, _, body) = export(&seam, n);
        assert_eq!(status, 200, "{body}");
        acked.insert(n);
    }
    // Seals go through again, and a crash after them loses nothing.
    let seals = seam.metric("seam_store_seals_total");
    let deadline = Instant::now() + Duration::from_secs(20);
    while seam.metric("seam_store_seals_total") <= seals && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seam.metric("seam_store_seals_total") > seals);
    seam.kill_9();
    let seam = Seam::start_with(&args, &env);
    assert_exactly_once(&seam, &acked);
    let total: i64 = stored(&seam).values().sum();
    assert_eq!(
        total,
        200 * acked.len() as i64,
        "nothing but the acknowledged"
    );
}
