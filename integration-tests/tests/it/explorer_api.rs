//! The endpoints the web explorer reads, each checked against SQL over the
//! same spans (sent by the OpenTelemetry Python SDK), and the explorer's
//! own files: served at every path outside the API, without a token,
//! while API paths keep their JSON errors and their token.

use std::time::Duration;

use serde_json::Value;

use seam_integration_tests::reqwest::blocking_client;
use seam_integration_tests::{Seam, rows, run_journeys, wait_for_rows};

fn config(yaml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seam.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

fn ok(seam: &Seam, path: &str) -> Value {
    let (status, body) = seam.get(path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_explorers_lists_agree_with_sql() {
    let (_dir, path) = config("correlation:\n  window: 2s\n");
    let seam = Seam::start_with(&["--config", &path], &[]);
    let ids = run_journeys(
        &seam,
        "http",
        &["link", "slow", "orphan", "unconsumed", "coldstart_init"],
        &[],
    );
    wait_for_rows(
        &seam,
        "SELECT kind FROM orphans",
        2,
        Duration::from_secs(20),
    );
    let range = "start=2000-01-01T00:00:00Z";

    // Services: one per service, as SQL groups them.
    let services = ok(&seam, &format!("/api/v1/services?{range}"));
    let names: Vec<String> = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> =
        rows(&seam.sql("SELECT DISTINCT service_name FROM spans ORDER BY service_name"))
            .iter()
            .map(|r| r["service_name"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(names, expected);
    let checkout = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "checkout")
        .unwrap();
    let spans = rows(&seam.sql("SELECT count(*) AS n FROM spans WHERE service_name = 'checkout'"));
    assert_eq!(checkout["spans"], spans[0]["n"]);
    // A function says which function service ran it; a pod does not.
    assert_eq!(checkout["platform"], "kubernetes");
    assert_eq!(checkout["cloud_platform"], Value::Null);
    let invoice = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "invoice")
        .unwrap();
    assert_eq!(invoice["platform"], "faas");
    assert_eq!(invoice["cloud_platform"], "aws_lambda");

    // Operations of a service, with their kinds; a quote in a name is a
    // value, not SQL.
    let ops = ok(
        &seam,
        &format!("/api/v1/services/checkout/operations?{range}"),
    );
    let got: Vec<(String, String)> = ops["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut want: Vec<(String, String)> = rows(&seam.sql(
        "SELECT DISTINCT name, lower(kind) AS kind FROM spans WHERE service_name = 'checkout'",
    ))
    .iter()
    .map(|r| {
        (
            r["name"].as_str().unwrap().to_owned(),
            r["kind"].as_str().unwrap().to_owned(),
        )
    })
    .collect();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    let none = ok(&seam, "/api/v1/services/x'%20OR%20'1'='1/operations");
    assert_eq!(none["operations"], serde_json::json!([]));

    // One edge: a histogram holding every boundary of the edge, and its
    // slowest boundaries first.
    let edge = rows(&seam.sql(
        "SELECT producer_service, consumer_service, system, destination, count(*) AS n \
         FROM boundaries WHERE destination = 'slow-orders' GROUP BY 1, 2, 3, 4",
    ));
    assert_eq!(edge.len(), 1, "{edge:?}");
    let e = &edge[0];
    let detail = ok(
        &seam,
        &format!(
            "/api/v1/boundaries/edge?producer_service={}&consumer_service={}&system={}&destination={}&{range}",
            e["producer_service"].as_str().unwrap(),
            e["consumer_service"].as_str().unwrap(),
            e["system"].as_str().unwrap(),
            e["destination"].as_str().unwrap()
        ),
    );
    let total: i64 = detail["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total, e["n"].as_i64().unwrap());
    let slowest = detail["slowest"].as_array().unwrap();
    assert_eq!(
        slowest[0]["consumer_trace_id"],
        ids["slow"]["consumer_trace"]
    );
    // 3 s lies in the bucket up to 2^32 ns.
    let bucket = detail["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["count"].as_i64().unwrap() > 0)
        .unwrap();
    assert_eq!(bucket["le_ns"], 1_i64 << 32);
    let (status, missing) = seam.get("/api/v1/boundaries/edge?consumer_service=x");
    assert_eq!(status, 400);
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .contains("producer_service"),
        "{missing}"
    );

    // Cold starts per minute add up to the cold-start report.
    let timeline = ok(&seam, &format!("/api/v1/cold-starts/timeline?{range}"));
    let report = ok(&seam, &format!("/api/v1/cold-starts?{range}"));
    let sum = |v: &Value, list: &str, key: &str| -> i64 {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].as_i64().unwrap())
            .sum()
    };
    assert_eq!(
        sum(&timeline, "minutes", "invocations"),
        sum(&report, "functions", "invocations")
    );
    assert_eq!(
        sum(&timeline, "minutes", "cold_starts"),
        sum(&report, "functions", "cold_starts")
    );
    assert!(sum(&timeline, "minutes", "cold_starts") >= 1);
    let resizer = ok(
        &seam,
        &format!("/api/v1/cold-starts/timeline?function=resizer&{range}"),
    );
    assert!(sum(&resizer, "minutes", "cold_starts") >= 1, "{resizer}");

    // Orphans, newest first, as the table has them.
    let orphans = ok(&seam, &format!("/api/v1/orphans?{range}"));
    let mut kinds = strs(
        &orphans["orphans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].clone())
            .collect::<Vec<_>>()
            .into(),
    );
    kinds.sort();
    assert_eq!(kinds, ["orphan", "unconsumed"]);
    let one = ok(&seam, &format!("/api/v1/orphans?limit=1&{range}"));
    assert_eq!(one["orphans"].as_array().unwrap().len(), 1);

    // The flow around a trace without its spans; search says how many
    // traces and hops the flow has.
    let consumer = ids["link"]["consumer_trace"].as_str().unwrap();
    let full = ok(&seam, &format!("/api/v1/traces/{consumer}/flow"));
    let outline = ok(
        &seam,
        &format!("/api/v1/traces/{consumer}/flow?spans=false"),
    );
    assert_eq!(outline["trace_ids"], full["trace_ids"]);
    assert_eq!(outline["boundaries"], full["boundaries"]);
    assert_eq!(outline["spans"], serde_json::json!([]));
    assert_eq!(
        seam.get(&format!("/api/v1/traces/{consumer}/flow?spans=maybe"))
            .0,
        400
    );
    let found = ok(&seam, &format!("/api/v1/search?service=invoice&{range}"));
    let hits = found["traces"].as_array().unwrap();
    let hit = hits
        .iter()
        .find(|t| t["trace_id"] == consumer)
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(hit["flow_trace_count"], 2);
    assert_eq!(hit["flow_boundary_count"], 1);
    assert_eq!(hit["flow_flagged_boundaries"], 0);
}

#[test]
fn the_explorer_is_served_outside_the_api_and_needs_no_token() {
    let seam = Seam::start_with(&[], &[("SEAM_API_TOKEN", "explorer-test-token")]);
    let client = blocking_client();
    for path in [
        "/",
        "/search?service=x",
        "/traces/0af7651916cd43dd8448eb211c80319c",
        "/flows/abc",
        "/sql",
    ] {
        let r = client.get(seam.api_url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        let page = r.text().unwrap();
        let script = page
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_else(|| panic!("no script in {page}"));
        let js = client.get(seam.api_url(script)).send().unwrap();
        assert_eq!(js.status(), 200, "{script}");
        assert!(
            js.headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
    assert_eq!(
        client
            .get(seam.api_url("/assets/not-built.js"))
            .send()
            .unwrap()
            .status(),
        404
    );
    // API paths: the token, and JSON errors.
    let denied = client.get(seam.api_url("/api/v1/services")).send().unwrap();
    assert_eq!(denied.status(), 401);
    let missing = client
        .get(seam.api_url("/api/v1/no-such-thing"))
        .header("authorization", "Bearer explorer-test-token")
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = serde_json::from_str(&missing.text().unwrap()).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no route"),
        "{body}"
    );
    assert_eq!(
        client
            .get(seam.api_url("/metrics"))
            .send()
            .unwrap()
            .status(),
        401
    );
}
