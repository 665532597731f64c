//! `seam serve --demo`: within seconds of starting, the built-in hybrid
//! application has produced stitched flows of every kind, visible through
//! SQL and the boundaries endpoint like any user's data.

use std::time::{Duration, Instant};

use serde_json::Value;

use seam_integration_tests::{Seam, rows};

/// The edges the demo must have produced, as (system, destination,
/// consumer service, stitched by).
const EXPECTED: &[(&str, &str, &str, &str)] = &[
    ("aws_sqs", "orders", "invoice", "link"),
    ("aws_sns", "order-events", "email-sender", "link"),
    ("aws_sns", "order-events", "analytics-ingest", "link"),
    ("kafka", "stock-updates", "stock-projector", "link"),
    (
        "gcp_pubsub",
        "report-requests",
        "report-renderer",
        "correlation",
    ),
    ("", "", "customers", "parent"),
];

fn present(seam: &Seam) -> Vec<(String, String, String, String)> {
    rows(&seam.sql(
        "SELECT DISTINCT COALESCE(system, '') AS system, COALESCE(destination, '') AS destination, \
                consumer_service, stitched_by FROM boundaries",
    ))
    .into_iter()
    .map(|r| {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        (
            s("system"),
            s("destination"),
            s("consumer_service"),
            s("stitched_by"),
        )
    })
    .collect()
}

#[test]
fn the_demo_shows_every_kind_of_flow_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seam.yaml");
    // A short window, so the lost message and the broken consumer are
    // reported while the test watches.
    std::fs::write(&config, "correlation:\n  window: 3s\n").unwrap();
    let seam = Seam::start_with(&["--demo", "--config", config.to_str().unwrap()], &[]);
    let started = Instant::now();
    let all_there = |found: &[(String, String, String, String)]| {
        EXPECTED.iter().all(|(sys, dest, consumer, by)| {
            found.iter().any(|f| {
                (f.0.as_str(), f.1.as_str(), f.2.as_str(), f.3.as_str())
                    == (*sys, *dest, *consumer, *by)
            })
        })
    };
    let mut found = present(&seam);
    while !all_there(&found) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        found = present(&seam);
    }
    assert!(
        all_there(&found),
        "after 10 s the demo's edges are {found:?}"
    );

    // A slow queue hop is flagged; the boundaries endpoint shows the edges.
    let flagged = rows(&seam.sql("SELECT count(*) AS n FROM boundaries WHERE flagged"));
    let (status, edges) = seam.get("/api/v1/boundaries");
    assert_eq!(status, 200, "{edges}");
    let edges = edges["edges"].as_array().unwrap();
    for (_, dest, consumer, _) in EXPECTED {
        assert!(
            edges.iter().any(|e| e["consumer_service"] == *consumer
                && e["destination"].as_str().unwrap_or_default() == *dest),
            "no edge into {consumer} in {edges:?}"
        );
    }

    // Flows: the batch joins two traces (three producers in one, the batch
    // consumer in the other), the fan-out three.
    let flows = rows(&seam.sql(
        "SELECT services, trace_count, boundary_count, cold_starts FROM flows WHERE boundary_count > 0",
    ));
    let has = |service: &str, traces: i64| {
        flows.iter().any(|f| {
            f["trace_count"] == traces
                && f["services"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == service))
        })
    };
    assert!(
        has("email-sender", 3),
        "fan-out flow of three traces: {flows:?}"
    );
    assert!(has("stock-projector", 2), "batch flow: {flows:?}");
    assert!(
        has("report-renderer", 2),
        "Pub/Sub flow stitched by message id: {flows:?}"
    );
    assert!(
        has("customers", 1),
        "a function calling a pod, one trace: {flows:?}"
    );
    assert!(
        flows
            .iter()
            .any(|f| f["cold_starts"].as_i64().unwrap_or(0) > 0),
        "some flow crossed a cold start: {flows:?}"
    );
    let waited = Instant::now();
    let mut flagged_n = flagged[0]["n"].as_i64().unwrap();
    while flagged_n == 0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        flagged_n = rows(&seam.sql("SELECT count(*) AS n FROM boundaries WHERE flagged"))[0]["n"]
            .as_i64()
            .unwrap();
    }
    assert!(flagged_n > 0, "the slow queue shows up flagged");

    // The lost message and the broken consumer, once the window ran out.
    let deadline = Instant::now() + Duration::from_secs(15);
    let kinds = loop {
        let kinds: Vec<Value> = rows(
            &seam.sql("SELECT DISTINCT kind, service_name, destination FROM orphans ORDER BY kind"),
        )
        .into_iter()
        .map(Value::Object)
        .collect();
        if kinds.len() >= 2 || Instant::now() > deadline {
            break kinds;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        kinds
            .iter()
            .any(|k| k["kind"] == "orphan" && k["service_name"] == "audit-log"),
        "{kinds:?}"
    );
    assert!(
        kinds
            .iter()
            .any(|k| k["kind"] == "unconsumed" && k["destination"] == "refunds"),
        "{kinds:?}"
    );
}
