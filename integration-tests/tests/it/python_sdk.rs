//! The official OpenTelemetry Python SDK exporting over gRPC and over
//! HTTP/protobuf, checked through SQL and the trace API.

use std::collections::BTreeSet;

use seam_integration_tests::{Seam, export_with_python, rows};

use crate::common::{assert_span_shape, span_named};

fn exported_trace_is_found(protocol: &str) {
    let seam = Seam::start();
    let exported = export_with_python(&seam, protocol, "checkout");
    assert_eq!(exported.spans, 3);

    // The first query after the SDK got its acknowledgement: no polling.
    let answer = seam.sql(&format!(
        "SELECT span_id, parent_span_id, name, kind, service_name, platform, instance, status_code, status_message, \
                messaging_system, messaging_operation, messaging_destination, messaging_message_id, \
                attributes['http.route'] AS route, attributes['http.response.status_code'] AS http_status, \
                resource_attributes['k8s.namespace.name'] AS namespace, duration_ns \
         FROM spans WHERE trace_id = '{}' ORDER BY start_time",
        exported.trace_id
    ));
    let rows = rows(&answer);
    let got: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["span_id"].as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = exported.span_ids.iter().map(String::as_str).collect();
    assert_eq!(got, want, "{answer}");

    let row = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {answer}"))
    };
    let root = row("POST /checkout");
    assert_eq!(root["kind"], "server");
    assert_eq!(root["service_name"], "checkout");
    assert_eq!(root["platform"], "kubernetes");
    assert_eq!(root["instance"], "checkout-7d9f8b-x2k4p");
    assert_eq!(root["route"], "/checkout");
    assert_eq!(root["http_status"], "201", "ints are stored as text");
    assert_eq!(root["namespace"], "shop");
    assert!(root["parent_span_id"].is_null());
    assert!(
        root["duration_ns"].as_i64().unwrap() > 0,
        "the root encloses its children"
    );

    let publish = row("publish orders");
    assert_eq!(publish["kind"], "producer");
    assert_eq!(publish["parent_span_id"], root["span_id"]);
    assert_eq!(publish["messaging_system"], "aws_sqs");
    assert_eq!(publish["messaging_operation"], "send");
    assert_eq!(publish["messaging_destination"], "orders");
    assert_eq!(publish["messaging_message_id"], "msg-0001");

    let charge = row("charge card");
    assert_eq!(charge["kind"], "client");
    assert_eq!(charge["status_code"], "ERROR");
    assert_eq!(charge["status_message"], "card declined");

    let (status, trace) = seam.get(&format!("/api/v1/traces/{}", exported.trace_id));
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["trace_id"], exported.trace_id);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 3);
    spans.iter().for_each(assert_span_shape);
    let publish = span_named(&trace, "publish orders");
    assert_eq!(
        publish["attributes"]["messaging.destination.name"],
        "orders"
    );
    assert_eq!(publish["resource"]["k8s.namespace.name"], "shop");
    assert_eq!(publish["resource"]["service.name"], "checkout");
    assert_eq!(publish["events"][0]["name"], "enqueued");
    assert_eq!(publish["events"][0]["attributes"]["queue.depth"], "3");
    let charge = span_named(&trace, "charge card");
    assert_eq!(charge["status"]["code"], "ERROR");
    assert_eq!(charge["status"]["message"], "card declined");

    // Ids are accepted in either case, as users paste them.
    let (status, upper) = seam.get(&format!(
        "/api/v1/traces/{}",
        exported.trace_id.to_uppercase()
    ));
    assert_eq!(status, 200);
    assert_eq!(upper["spans"].as_array().unwrap().len(), 3);
}

#[test]
fn python_sdk_over_grpc() {
    exported_trace_is_found("grpc");
}

#[test]
fn python_sdk_over_http_protobuf() {
    exported_trace_is_found("http");
}
