//! `seam loadgen` against a real server: what it reports acknowledged is
//! what the server stored, over every transport and encoding it offers;
//! its hybrid journeys stitch; refusals are reported by code.

use seam_integration_tests::{Seam, loadgen, rows};

/// Spans of the load's services, and how many distinct ids they have.
fn stored(seam: &Seam) -> (i64, i64) {
    let r = rows(&seam.sql(
        "SELECT count(*) AS n, count(DISTINCT trace_id || span_id) AS ids FROM spans WHERE service_name LIKE 'load-%'",
    ));
    (r[0]["n"].as_i64().unwrap(), r[0]["ids"].as_i64().unwrap())
}

#[test]
fn what_loadgen_reports_acknowledged_is_what_the_server_stored() {
    let seam = Seam::start();
    let grpc = seam.grpc_url();
    let http = seam
        .otlp_http_url()
        .trim_end_matches("/v1/traces")
        .to_owned();
    let mut expected = 0;
    for (endpoint, extra) in [
        (&grpc, vec!["--protocol", "grpc"]),
        (&grpc, vec!["--protocol", "grpc", "--gzip"]),
        (&http, vec!["--protocol", "http", "--encoding", "protobuf"]),
        (
            &http,
            vec!["--protocol", "http", "--encoding", "json", "--gzip"],
        ),
    ] {
        let mut args = vec![
            "--endpoint",
            endpoint.as_str(),
            "--duration",
            "1s",
            "--concurrency",
            "2",
            "--batch",
            "50",
            "--attributes",
            "12",
            "--attribute-size",
            "32",
        ];
        args.extend(extra.iter().copied());
        let report = loadgen(&args);
        assert!(report["errors"].as_object().unwrap().is_empty(), "{report}");
        let acked = report["spans_acked"].as_i64().unwrap();
        assert!(acked >= 50, "{report}");
        assert_eq!(acked, report["spans_sent"].as_i64().unwrap(), "{report}");
        assert_eq!(acked % 50, 0, "whole requests of 50 spans");
        assert!(report["ack_latency"]["p99_ms"].as_f64().unwrap() > 0.0);
        expected += acked;
        assert_eq!(stored(&seam), (expected, expected), "after {extra:?}");
    }
    // The shape reached the server: 12 attributes, values of 32 bytes.
    let shape = rows(&seam.sql(
        "SELECT cardinality(attributes) AS n, length(attributes['http.route']) AS len FROM spans WHERE service_name LIKE 'load-%' LIMIT 1",
    ));
    assert_eq!(shape[0]["n"], 12);
    assert_eq!(shape[0]["len"], 32);
}

#[test]
fn a_paced_run_sends_no_more_than_its_rate() {
    let seam = Seam::start();
    let report = loadgen(&[
        "--endpoint",
        &seam.grpc_url(),
        "--rate",
        "1000",
        "--duration",
        "2s",
        "--concurrency",
        "2",
        "--batch",
        "100",
    ]);
    let sent = report["spans_sent"].as_i64().unwrap();
    // 1000 spans/s for 2 s, plus the one request each worker may start at
    // the deadline.
    assert!(sent <= 2_000 + 2 * 100, "{report}");
    assert!(sent >= 100, "{report}");
    assert_eq!(report["target_rate"], 1000);
}

#[test]
fn hybrid_journeys_stitch_and_refusals_are_reported_by_code() {
    let seam = Seam::start();
    let report = loadgen(&[
        "--endpoint",
        &seam.grpc_url(),
        "--topology",
        "hybrid",
        "--duration",
        "1s",
        "--concurrency",
        "2",
    ]);
    assert!(report["spans_acked"].as_i64().unwrap() > 0, "{report}");
    let boundaries = rows(&seam.sql("SELECT count(*) AS n FROM boundaries"));
    assert!(
        boundaries[0]["n"].as_i64().unwrap() > 0,
        "journeys stitched"
    );

    let (_dir, config) = crate::common::config_file("receiver:\n  bearer_tokens: [sesame]\n");
    let guarded = Seam::start_with(&["--config", &config], &[]);
    let report = loadgen(&[
        "--endpoint",
        &guarded.grpc_url(),
        "--duration",
        "500ms",
        "--concurrency",
        "1",
        "--batch",
        "10",
    ]);
    assert_eq!(report["spans_acked"], 0, "{report}");
    assert!(
        report["errors"]["grpc UNAUTHENTICATED"].as_u64().unwrap() > 0,
        "{report}"
    );
    let with_token = loadgen(&[
        "--endpoint",
        &guarded.grpc_url(),
        "--duration",
        "500ms",
        "--concurrency",
        "1",
        "--batch",
        "10",
        "--token",
        "sesame",
    ]);
    assert!(
        with_token["errors"].as_object().unwrap().is_empty(),
        "{with_token}"
    );
    let acked = with_token["spans_acked"].as_u64().unwrap();
    assert!(acked > 0, "the token lets spans in: {with_token}");
    assert_eq!(with_token["spans_sent"].as_u64().unwrap(), acked);
}
