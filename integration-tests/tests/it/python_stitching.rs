//! Stitching with the OpenTelemetry Python SDK, through the public API
//! only: every stitch kind, skew, thresholds, orphans, redeliveries,
//! order independence, each cold-start rule, and a restart in the middle.
//! The journeys are `python/journeys.py`; each test starts its own server.

use std::time::Duration;

use serde_json::{Map, Value, json};

use seam_integration_tests::{Seam, rows, run_journeys, wait_for_rows};

use crate::common::config_file as config;

type Row = Map<String, Value>;

const BOUNDARY_COLUMNS: &str = "kind, stitched_by, correlation_key, correlation_value, producer_trace_id, producer_span_id, \
     producer_service, producer_platform, consumer_trace_id, consumer_span_id, consumer_service, consumer_platform, \
     system, destination, latency_ns, flagged, clock_skew, deliveries, redelivery, flow_id";

/// The boundary rows whose destination is `destination`.
fn boundaries_to(seam: &Seam, destination: &str) -> Vec<Row> {
    rows(&seam.sql(&format!(
        "SELECT {BOUNDARY_COLUMNS} FROM boundaries WHERE destination = '{destination}' ORDER BY consumer_time"
    )))
}

fn one(seam: &Seam, destination: &str) -> Row {
    let mut b = boundaries_to(seam, destination);
    assert_eq!(b.len(), 1, "one boundary into {destination}: {b:?}");
    b.remove(0)
}

/// Checks that `b` joins exactly the spans the script reported.
fn joins(b: &Row, ids: &Value) {
    for (column, key) in [
        ("producer_trace_id", "producer_trace"),
        ("producer_span_id", "producer_span"),
        ("consumer_trace_id", "consumer_trace"),
        ("consumer_span_id", "consumer_span"),
    ] {
        assert_eq!(b[column], ids[key], "{column}");
    }
}

#[test]
fn every_stitch_kind_from_the_python_sdk() {
    let seam = Seam::start();
    let ids = run_journeys(
        &seam,
        "grpc",
        &["link", "parent", "correlation", "legacy"],
        &[],
    );

    let link = one(&seam, "orders");
    joins(&link, &ids["link"]);
    assert_eq!(link["kind"], "async");
    assert_eq!(link["stitched_by"], "link");
    assert_eq!(link["correlation_key"], Value::Null);
    assert_eq!(
        (&link["producer_service"], &link["producer_platform"]),
        (&json!("checkout"), &json!("kubernetes"))
    );
    assert_eq!(
        (&link["consumer_service"], &link["consumer_platform"]),
        (&json!("invoice"), &json!("faas"))
    );
    assert_eq!(link["system"], "aws_sqs");
    assert_eq!(
        link["latency_ns"], 200_000_000,
        "consumer start − producer end"
    );
    assert_eq!(
        (&link["flagged"], &link["clock_skew"]),
        (&json!(false), &json!(false))
    );

    let parent = one(&seam, "payments");
    joins(&parent, &ids["parent"]);
    assert_eq!(
        parent["stitched_by"], "parent",
        "traceparent through the message headers"
    );
    assert_eq!(parent["system"], "rabbitmq");
    assert_eq!(parent["latency_ns"], 300_000_000);
    assert_eq!(parent["producer_trace_id"], parent["consumer_trace_id"]);

    let correlated = one(&seam, "report-requests");
    joins(&correlated, &ids["correlation"]);
    assert_eq!(correlated["stitched_by"], "correlation");
    assert_eq!(correlated["correlation_key"], "messaging.message.id");
    assert_eq!(
        correlated["correlation_value"],
        ids["correlation"]["message_id"]
    );
    assert_eq!(correlated["system"], "gcp_pubsub");
    assert_eq!(
        correlated["consumer_platform"], "faas",
        "Cloud Run is a function platform"
    );

    let legacy = one(&seam, "legacy-q");
    joins(&legacy, &ids["legacy"]);
    assert_eq!(
        legacy["stitched_by"], "correlation",
        "messaging.message_id is read too"
    );
    assert_eq!(legacy["system"], "aws_sqs", "AmazonSQS is normalized");

    // Flows: both traces of a hop are one flow, whichever is asked for.
    let (p, c) = (
        ids["link"]["producer_trace"].as_str().unwrap(),
        ids["link"]["consumer_trace"].as_str().unwrap(),
    );
    let flow_id = p.min(c);
    assert_eq!(link["flow_id"], flow_id);
    let span_flows = rows(&seam.sql(&format!(
        "SELECT DISTINCT flow_id FROM spans WHERE trace_id IN ('{p}', '{c}')"
    )));
    assert_eq!(span_flows.len(), 1);
    assert_eq!(span_flows[0]["flow_id"], flow_id);
    for trace in [p, c] {
        let (status, flow) = seam.get(&format!("/api/v1/traces/{trace}/flow"));
        assert_eq!(status, 200, "{flow}");
        assert_eq!(flow["flow_id"], flow_id);
        let mut want = vec![p, c];
        want.sort();
        assert_eq!(flow["trace_ids"], json!(want));
        assert_eq!(flow["spans"].as_array().unwrap().len(), 2);
        let b = &flow["boundaries"].as_array().unwrap()[0];
        for key in [
            "flow_id",
            "kind",
            "stitched_by",
            "correlation_key",
            "correlation_value",
            "producer_trace_id",
            "producer_span_id",
            "producer_service",
            "producer_platform",
            "consumer_trace_id",
            "consumer_span_id",
            "consumer_service",
            "consumer_platform",
            "system",
            "destination",
            "producer_time",
            "consumer_time",
            "latency_ns",
            "flagged",
            "clock_skew",
            "consumer_cold_start",
        ] {
            assert!(b.get(key).is_some(), "boundary JSON lacks {key}: {b}");
        }
        assert_eq!(b["latency_ns"], 200_000_000);
    }
    let flows = rows(&seam.sql(&format!(
        "SELECT trace_count, span_count, boundary_count, services FROM flows WHERE flow_id = '{flow_id}'"
    )));
    assert_eq!(flows[0]["trace_count"], 2);
    assert_eq!(flows[0]["boundary_count"], 1);
    assert_eq!(flows[0]["services"], json!(["checkout", "invoice"]));

    // Malformed input is refused and loses nothing that was stitched.
    let status = seam_integration_tests::reqwest::blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/x-protobuf")
        .body(b"\xff\xff\xff not protobuf".to_vec())
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 400);
    let count = rows(&seam.sql("SELECT count(*) AS n FROM boundaries"));
    assert_eq!(count[0]["n"], 4);
    assert_eq!(one(&seam, "orders"), link);
}

#[test]
fn skew_is_never_a_negative_latency_and_slow_hops_are_flagged() {
    let seam = Seam::start();
    let ids = run_journeys(&seam, "http", &["link", "skew", "slow"], &[]);
    let skew = one(&seam, "skewed");
    joins(&skew, &ids["skew"]);
    assert_eq!(
        (&skew["latency_ns"], &skew["clock_skew"]),
        (&json!(0), &json!(true))
    );
    let slow = one(&seam, "slow-orders");
    assert_eq!(slow["latency_ns"], 3_000_000_000u64);
    assert_eq!(slow["flagged"], true, "3 s is above the 1 s default");

    let (status, found) = seam.get("/api/v1/search?flagged=true");
    assert_eq!(status, 200, "{found}");
    let mut got: Vec<&str> = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want = vec![
        ids["slow"]["producer_trace"].as_str().unwrap(),
        ids["slow"]["consumer_trace"].as_str().unwrap(),
    ];
    want.sort();
    assert_eq!(got, want, "only the slow hop's traces");

    let (status, edges) = seam.get("/api/v1/boundaries");
    assert_eq!(status, 200, "{edges}");
    let edge = edges["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["destination"] == "slow-orders")
        .unwrap_or_else(|| panic!("no slow-orders edge in {edges}"));
    assert_eq!(edge["producer_service"], "checkout");
    assert_eq!(edge["consumer_service"], "invoice");
    assert_eq!(edge["system"], "aws_sqs");
    assert_eq!((&edge["count"], &edge["flagged"]), (&json!(1), &json!(1)));
    assert_eq!(edge["p50_ns"], 3_000_000_000u64);
}

#[test]
fn a_threshold_can_be_raised_for_one_consumer_service() {
    let (_dir, path) = config("correlation:\n  latency_thresholds:\n    invoice: 5s\n");
    let seam = Seam::start_with(&["--config", &path], &[]);
    run_journeys(&seam, "grpc", &["slow"], &[]);
    let slow = one(&seam, "slow-orders");
    assert_eq!(slow["latency_ns"], 3_000_000_000u64);
    assert_eq!(slow["flagged"], false, "3 s is below invoice's 5 s");
}

#[test]
fn orphans_and_lost_messages_are_reported_when_the_window_runs_out() {
    let (_dir, path) = config("correlation:\n  window: 2s\n");
    let seam = Seam::start_with(&["--config", &path], &[]);
    let ids = run_journeys(&seam, "http", &["orphan", "unconsumed", "link"], &[]);
    let answer = wait_for_rows(
        &seam,
        "SELECT kind, trace_id, span_id, service_name, system, destination, correlation_key FROM orphans ORDER BY kind",
        2,
        Duration::from_secs(20),
    );
    let orphans = rows(&answer);
    assert_eq!(orphans.len(), 2, "{answer}");
    assert_eq!(orphans[0]["kind"], "orphan");
    assert_eq!(orphans[0]["span_id"], ids["orphan"]["span"]);
    assert_eq!(orphans[0]["service_name"], "audit-log");
    assert_eq!(orphans[0]["destination"], "audit");
    assert_eq!(orphans[0]["correlation_key"], "messaging.message.id");
    assert_eq!(orphans[1]["kind"], "unconsumed");
    assert_eq!(orphans[1]["span_id"], ids["unconsumed"]["span"]);
    assert_eq!(orphans[1]["service_name"], "checkout");
    assert_eq!(orphans[1]["destination"], "refunds");
    // The stitched hop is neither: after another window, still two rows.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rows(&seam.sql("SELECT kind FROM orphans")).len(), 2);
    let (_, metrics) = seam.get("/metrics");
    let metrics = metrics.as_str().unwrap_or_default().to_owned();
    assert!(
        metrics.contains("seam_correlation_orphans_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("seam_correlation_unconsumed_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("seam_correlation_evicted_total 0"),
        "{metrics}"
    );
}

#[test]
fn the_consumer_may_arrive_first() {
    let seam = Seam::start();
    // The consumer's span is acknowledged two seconds before the producer's.
    let ids = run_journeys(
        &seam,
        "grpc",
        &["link", "correlation"],
        &["--consumer-first", "2"],
    );
    let link = one(&seam, "orders");
    joins(&link, &ids["link"]);
    assert_eq!(
        (&link["stitched_by"], &link["latency_ns"]),
        (&json!("link"), &json!(200_000_000))
    );
    let correlated = one(&seam, "report-requests");
    joins(&correlated, &ids["correlation"]);
    assert_eq!(correlated["stitched_by"], "correlation");
}

#[test]
fn redeliveries_are_counted_on_their_boundary() {
    let seam = Seam::start();
    let ids = run_journeys(&seam, "http", &["redelivery"], &[]);
    let b = boundaries_to(&seam, "jobs");
    assert_eq!(b.len(), 2, "{b:?}");
    assert!(b.iter().all(|r| r["deliveries"] == 2));
    assert_eq!(b[0]["redelivery"], false);
    assert_eq!(b[1]["redelivery"], true);
    assert_eq!(
        b[1]["consumer_span_id"],
        ids["redelivery"]["redelivered_span"]
    );
    let (_, edges) = seam.get("/api/v1/boundaries");
    let jobs = edges["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["destination"] == "jobs")
        .unwrap();
    assert_eq!(
        (&jobs["count"], &jobs["redeliveries"]),
        (&json!(2), &json!(1))
    );
}

fn cold_columns(seam: &Seam, span: &Value) -> Row {
    let r = rows(&seam.sql(&format!(
        "SELECT cold_start, cold_start_type, init_duration_ns, cold_start_source FROM spans WHERE span_id = '{}'",
        span.as_str().unwrap()
    )));
    assert_eq!(r.len(), 1, "span {span}");
    r.into_iter().next().unwrap()
}

fn cold(seam: &Seam, span: &Value, kind: &str, init: Value, source: &str) {
    let r = cold_columns(seam, span);
    assert_eq!(
        (
            &r["cold_start"],
            &r["cold_start_type"],
            &r["init_duration_ns"],
            &r["cold_start_source"]
        ),
        (&json!(true), &json!(kind), &init, &json!(source)),
        "span {span}"
    );
}

fn warm(seam: &Seam, span: &Value) {
    let r = cold_columns(seam, span);
    assert_ne!(r["cold_start"], true, "span {span}: {r:?}");
    assert_eq!(r["cold_start_source"], Value::Null);
}

#[test]
fn each_cold_start_rule_and_type() {
    let seam = Seam::start();
    let ids = run_journeys(
        &seam,
        "grpc",
        &[
            "coldstart_attr",
            "coldstart_init",
            "coldstart_proactive",
            "coldstart_provisioned",
            "coldstart_heuristic",
        ],
        &[],
    );
    let span = |scenario: &str, which: &str| ids[scenario][which][1].clone();
    cold(
        &seam,
        &span("coldstart_attr", "cold"),
        "on_demand",
        Value::Null,
        "attribute",
    );
    warm(&seam, &span("coldstart_attr", "warm"));
    cold(
        &seam,
        &span("coldstart_init", "first"),
        "on_demand",
        json!(800_000_000),
        "init_span",
    );
    warm(&seam, &span("coldstart_init", "second"));
    cold(
        &seam,
        &span("coldstart_proactive", "first"),
        "proactive",
        json!(800_000_000),
        "init_span",
    );
    cold(
        &seam,
        &span("coldstart_provisioned", "first"),
        "provisioned",
        Value::Null,
        "attribute",
    );
    cold(
        &seam,
        &span("coldstart_heuristic", "first"),
        "on_demand",
        Value::Null,
        "first_invocation",
    );
    warm(&seam, &span("coldstart_heuristic", "second"));
    cold(
        &seam,
        &span("coldstart_heuristic", "pod_first"),
        "on_demand",
        Value::Null,
        "pod_first_request",
    );

    let (status, report) = seam.get("/api/v1/cold-starts");
    assert_eq!(status, 200, "{report}");
    let function = |name: &str| {
        report["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == name)
            .unwrap_or_else(|| panic!("no {name} in {report}"))
            .clone()
    };
    let resizer = function("resizer");
    assert_eq!(
        (&resizer["invocations"], &resizer["cold_starts"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(resizer["rate"], 0.5);
    assert_eq!(resizer["init_p50_ns"], 800_000_000);
    assert_eq!(resizer["cold_p50_ns"], 1_200_000_000);
    assert_eq!(resizer["warm_p50_ns"], 200_000_000);
    assert_eq!(resizer["penalty_ns"], 1_000_000_000);
    let warmer = function("warmer");
    assert_eq!(
        (&warmer["cold_starts"], &warmer["proactive"]),
        (&json!(0), &json!(1)),
        "a proactive start is not counted as a cold start"
    );
    let steady = function("steady");
    assert_eq!(
        (&steady["cold_starts"], &steady["provisioned"]),
        (&json!(0), &json!(1))
    );

    let (status, found) = seam.get("/api/v1/search?service=resizer&cold_start=true");
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["traces"][0]["trace_id"],
        ids["coldstart_init"]["first"][0]
    );
    assert_eq!(found["traces"].as_array().unwrap().len(), 1);
}

#[test]
fn a_restart_in_the_middle_forgets_nothing_that_waited() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let state = data.path().join("journey.json");
    let state = state.to_str().unwrap();

    let before = Seam::start_with(&[], &[("SEAM_DATA_DIR", data_dir)]);
    run_journeys(
        &before,
        "grpc",
        &["link", "coldstart_heuristic"],
        &["--phase", "producer", "--state", state],
    );
    assert!(before.terminate().success());

    let after = Seam::start_with(&[], &[("SEAM_DATA_DIR", data_dir)]);
    assert!(
        after.logs().contains("restored correlation state"),
        "{}",
        after.logs()
    );
    let ids = run_journeys(
        &after,
        "http",
        &["link", "coldstart_heuristic"],
        &["--phase", "consumer", "--state", state],
    );
    let link = one(&after, "orders");
    joins(&link, &ids["link"]);
    assert_eq!(
        link["producer_service"], "checkout",
        "the waiting half came back"
    );
    assert_eq!(link["latency_ns"], 200_000_000);
    let (status, flow) = after.get(&format!(
        "/api/v1/traces/{}/flow",
        ids["link"]["consumer_trace"].as_str().unwrap()
    ));
    assert_eq!(status, 200, "{flow}");
    assert_eq!(flow["trace_ids"].as_array().unwrap().len(), 2, "{flow}");
    // A known instance is not called cold again after the restart.
    warm(&after, &ids["coldstart_heuristic"]["after_restart"][1]);
}
