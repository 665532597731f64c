//! The query API against the real server: SQL, the trace and search
//! endpoints, their errors, and queries written to hurt.

use std::io::Write;

use seam_integration_tests::reqwest::blocking_client;
use seam_integration_tests::{Seam, rows};

use crate::common::{count, post_protobuf, request, trace_hex};

fn seeded(config: &str) -> (Seam, tempfile::NamedTempFile) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(config.as_bytes()).unwrap();
    let seam = Seam::start_with(&["--config", file.path().to_str().unwrap()], &[]);
    for (seed, service) in [(1, "cart"), (2, "checkout"), (3, "cart")] {
        let (status, _) = post_protobuf(&seam, &request(seed, 500, service));
        assert_eq!(status, 200);
    }
    (seam, file)
}

fn still_serving(seam: &Seam) {
    let (status, _) = seam.get("/healthz");
    assert_eq!(status, 200);
    assert_eq!(count(seam, ""), 1500, "data intact after a failed query");
}

#[test]
fn sql_answers_and_refuses_what_it_must() {
    let (seam, _cfg) = seeded("");
    let answer = seam.sql("SELECT service_name, count(*) AS spans FROM spans GROUP BY service_name ORDER BY service_name");
    assert_eq!(
        answer["columns"],
        serde_json::json!(["service_name", "spans"])
    );
    assert_eq!(
        answer["rows"],
        serde_json::json!([["cart", 1000], ["checkout", 500]])
    );

    let by_route = seam.sql(&format!(
        "SELECT attributes['http.route'] AS route, count(*) AS n FROM spans WHERE trace_id = '{}' GROUP BY 1 ORDER BY 1",
        trace_hex(2)
    ));
    assert_eq!(rows(&by_route).len(), 3, "{by_route}");
    assert_eq!(by_route["rows"][0], serde_json::json!(["/items/0", 167]));

    for (sql, needle) in [
        ("SELEC * FROM spans", "SELEC"),
        ("SELECT no_such_column FROM spans", "no_such_column"),
        ("SELECT * FROM no_such_table", "no_such_table"),
        (
            "CREATE TABLE t AS SELECT * FROM spans",
            "only read-only queries are allowed: DDL",
        ),
        (
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "only read-only queries are allowed: DDL",
        ),
        (
            "COPY (SELECT 1) TO '/tmp/seam-copy-test.csv'",
            "only read-only queries are allowed: DML",
        ),
        (
            "INSERT INTO spans SELECT * FROM spans",
            "only read-only queries are allowed: DML",
        ),
        (
            "DROP TABLE spans",
            "only read-only queries are allowed: DDL",
        ),
        (
            "SET datafusion.execution.batch_size = 1",
            "only read-only queries are allowed: Statement",
        ),
        (
            "SELECT * FROM read_parquet('/etc/passwd')",
            "table function 'read_parquet' not found",
        ),
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "table function 'read_csv' not found",
        ),
    ] {
        let (status, body) = seam.sql_response(sql);
        assert_eq!(status, 400, "{sql} → {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error message for {sql}: {body}"));
        assert!(message.contains(needle), "{sql}: {message}");
    }
    assert!(!std::path::Path::new("/tmp/seam-copy-test.csv").exists());

    let (status, body) = {
        let r = blocking_client()
            .post(seam.api_url("/api/v1/sql"))
            .header("content-type", "application/json")
            .body(b"{\"query\": 1}".to_vec())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("error"), "{body}");

    let r = blocking_client()
        .post(seam.api_url("/api/v1/sql"))
        .header("accept", "application/vnd.apache.arrow.stream")
        .json(&serde_json::json!({"sql": "SELECT span_id FROM spans LIMIT 3"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers.get("content-type").unwrap(),
        "application/vnd.apache.arrow.stream"
    );
    assert_eq!(
        &r.bytes()[..4],
        &[0xff, 0xff, 0xff, 0xff],
        "Arrow IPC continuation marker"
    );
    still_serving(&seam);
}

#[test]
fn hostile_queries_end_in_errors_not_outages() {
    let (seam, _cfg) = seeded("query:\n  timeout: 3s\n");
    // A bare count over the cross join is answered from row statistics.
    let answer = seam.sql("SELECT count(*) FROM spans a, spans b, spans c");
    assert_eq!(answer["rows"][0][0], 1500i64.pow(3));
    for sql in [
        "SELECT count(*) FROM spans a, spans b, spans c WHERE a.name <> c.name",
        "SELECT * FROM spans a, spans b, spans c",
        "SELECT * FROM generate_series(1, 1000000000000)",
        "SELECT count(*) FROM generate_series(1, 1000000000000)",
        "SELECT count(*) FROM range(1000000000000)",
        "SELECT repeat('x', 2000000000)",
        "SELECT a.name || b.name FROM spans a CROSS JOIN spans b ORDER BY 1",
    ] {
        let (status, body) = seam.sql_response(sql);
        assert!((400..500).contains(&status), "{sql} → {status} {body}");
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{sql}: {body}"
        );
        still_serving(&seam);
    }
}

#[test]
fn trace_and_search_endpoints() {
    let (seam, _cfg) = seeded("");
    let (status, trace) = seam.get(&format!("/api/v1/traces/{}", trace_hex(2)));
    assert_eq!(status, 200);
    assert_eq!(trace["spans"].as_array().unwrap().len(), 500);

    for (path, code, needle) in [
        ("/api/v1/traces/not-a-trace-id", 400, "trace"),
        (
            "/api/v1/traces/00000000000000000000000000000000",
            400,
            "zero",
        ),
        (
            "/api/v1/traces/0123456789abcdef0123456789abcdef0",
            400,
            "32",
        ),
        (
            "/api/v1/traces/0123456789abcdef0123456789abcdef",
            404,
            "not found",
        ),
        ("/api/v1/search?servce=cart", 400, "servce"),
        ("/api/v1/search?min_duration=soon", 400, "min_duration"),
        ("/api/v1/search?limit=-1", 400, "limit"),
        ("/api/v1/search?start=yesterday", 400, "start"),
        (
            "/api/v1/nothing-here",
            404,
            "no route for get /api/v1/nothing-here",
        ),
    ] {
        let (status, body) = seam.get(path);
        assert_eq!(status, code, "{path} → {body}");
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no JSON error in {body}"));
        assert!(message.to_lowercase().contains(needle), "{path}: {message}");
    }

    // All data is from 2025: older than the hour a search covers unless
    // told otherwise.
    let (status, found) = seam.get("/api/v1/search?service=cart");
    assert_eq!(
        (status, found["traces"].clone()),
        (200, serde_json::json!([]))
    );
    let (status, found) =
        seam.get("/api/v1/search?service=cart&limit=10&start=2025-01-01T00:00:00Z");
    assert_eq!(status, 200, "{found}");
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 2);
    assert!(
        traces.iter().all(|t| t["services"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("cart"))),
        "{found}"
    );

    let (_, found) = seam.get("/api/v1/search?service=checkout&attr.http.route=/items/1&start=0");
    let traces = found["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{found}");
    assert_eq!(traces[0]["trace_id"], trace_hex(2));

    let (_, found) = seam.get("/api/v1/search?service=cart&limit=1&start=0");
    assert_eq!(found["traces"].as_array().unwrap().len(), 1);
    let (_, found) = seam.get("/api/v1/search?min_duration=1s&start=0");
    assert_eq!(
        found["traces"].as_array().unwrap().len(),
        0,
        "every span is 500 µs"
    );
    let (_, found) = seam.get("/api/v1/search?start=2030-01-01T00:00:00Z");
    assert_eq!(
        found["traces"].as_array().unwrap().len(),
        0,
        "all data is from 2025"
    );
}

/// Eight nested `replace(…, 'a', 'aaaaaaaaaa')` calls on every span's name
/// ask for a billion characters a row: four of them at once, while an exporter keeps
/// sending, are each refused with a 400 that names the limit, the server
/// stays inside `limits.memory`, and every export is acknowledged. (A small
/// cap keeps the debug build quick; BENCHMARKS.md has the default's
/// figures on a release build.)
#[test]
fn functions_that_would_build_gigabytes_are_refused_and_ingest_goes_on() {
    let (seam, _cfg) =
        seeded("limits:\n  memory: 768 MiB\nquery:\n  max_function_output: 256 KiB\n");
    let mut nested = "concat(name, 'a')".to_owned();
    for _ in 0..8 {
        nested = format!("replace({nested}, 'a', 'aaaaaaaaaa')");
    }
    let query = format!("SELECT max(length({nested})) AS n FROM spans");
    let exporting = std::sync::atomic::AtomicBool::new(true);
    let (answers, exports) = std::thread::scope(|scope| {
        let exporter = scope.spawn(|| {
            let mut statuses = Vec::new();
            while exporting.load(std::sync::atomic::Ordering::SeqCst) || statuses.len() < 20 {
                let seed = 10 + (statuses.len() % 200) as u8;
                statuses.push(post_protobuf(&seam, &request(seed, 50, "steady")).0);
            }
            statuses
        });
        let queries: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| seam.sql_response(&query)))
            .collect();
        let answers: Vec<_> = queries.into_iter().map(|q| q.join()).collect();
        exporting.store(false, std::sync::atomic::Ordering::SeqCst);
        (answers, exporter.join().unwrap())
    });
    for answer in answers {
        let (status, answer) = answer.unwrap();
        assert_eq!(status, 400, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains("function 'replace'"), "{error}");
        assert!(
            error.contains("query.max_function_output (256.0 KiB)"),
            "{error}"
        );
    }
    assert!(
        exports.iter().all(|s| *s == 200),
        "every export during the queries acknowledged: {exports:?}"
    );
    let peak = seam.peak_rss();
    assert!(
        peak < 768 * 1024 * 1024,
        "peak resident memory {peak} bytes"
    );
    let (status, _) = seam.get("/readyz");
    assert_eq!(status, 200);
}
