//! The API through its router, without a socket: status codes, JSON shapes
//! and the behaviour of hostile queries.

mod testdata;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use axum::Router;
use axum::body::{Body, Bytes};
use bytesize::ByteSize;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use seam_query::{ApiState, Correlation, QueryConfig, QueryEngine, Readiness, api_router};
use seam_store::Table;
use serde_json::{Value, json};
use tower::ServiceExt;

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

struct Server {
    router: Router,
    table: Arc<Table>,
    readiness: Readiness,
}

fn server_with(config: QueryConfig) -> Server {
    let table = testdata::table();
    let correlation = Correlation {
        traces: testdata::traces_table(),
        ..Correlation::empty()
    };
    let engine =
        Arc::new(QueryEngine::with_correlation(table.clone(), correlation, config).unwrap());
    let readiness = Readiness::default();
    readiness.set_ready();
    Server {
        router: api_router(ApiState::new(engine, readiness.clone())),
        table,
        readiness,
    }
}

fn server() -> Server {
    server_with(QueryConfig::default())
}

/// Limits small enough for hostile queries to hit them quickly.
fn strict() -> Server {
    let server = server_with(QueryConfig {
        timeout: Duration::from_secs(2),
        memory_limit: ByteSize::mib(4),
        max_result_rows: 1_000,
        max_result_bytes: ByteSize::kib(256),
        threads: 2,
        ..QueryConfig::default()
    });
    server.table.append(testdata::bulk(2_000)).unwrap();
    server
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Bytes,
}

impl Answer {
    /// The body for failure messages, cut short.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(500)
            .collect()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .expect("an error message")
            .to_owned()
    }
}

async fn send(server: &Server, request: Request<Body>) -> Answer {
    let response = server.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        content_type,
        body,
    }
}

async fn get(server: &Server, uri: &str) -> Answer {
    send(server, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn sql(server: &Server, sql: &str) -> Answer {
    let body = json!({ "sql": sql }).to_string();
    let request = Request::post("/api/v1/sql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    send(server, request).await
}

async fn sql_ok(server: &Server, query: &str) -> Value {
    let answer = sql(server, query).await;
    assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
    answer.json()
}

/// The server still answers an ordinary query.
async fn assert_alive(server: &Server) {
    let json = sql_ok(server, "SELECT count(*) AS n FROM spans").await;
    assert!(json["rows"][0][0].as_i64().unwrap() >= testdata::SPAN_COUNT as i64);
}

#[tokio::test]
async fn sql_answers_columns_and_rows() {
    let s = server();
    let json = sql_ok(
        &s,
        &format!(
            "SELECT span_id, name, start_time, duration_ns, attributes FROM spans WHERE trace_id = '{}' ORDER BY start_time",
            testdata::CHECKOUT_TRACE
        ),
    )
    .await;
    assert_eq!(
        json["columns"],
        json!(["span_id", "name", "start_time", "duration_ns", "attributes"])
    );
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[0],
        json!([
            testdata::CHECKOUT_ROOT_SPAN,
            "GET /checkout",
            "2023-11-14T22:13:20Z",
            250_000_000,
            {"http.route": "/checkout", "http.request.method": "GET"}
        ])
    );
}

#[tokio::test]
async fn sql_indexes_attributes_and_groups_by_service() {
    let s = server();
    let json = sql_ok(
        &s,
        "SELECT name FROM spans WHERE attributes['http.route'] = '/payments'",
    )
    .await;
    assert_eq!(json["rows"], json!([["POST /payments"]]));
    let json = sql_ok(
        &s,
        "SELECT service_name, count(*) AS spans, sum(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END) AS errors \
         FROM spans GROUP BY service_name ORDER BY service_name",
    )
    .await;
    assert_eq!(
        json["rows"],
        json!([
            ["checkout", 4, 2],
            ["order-worker", 2, 0],
            ["payments", 1, 0]
        ])
    );
}

#[tokio::test]
async fn sql_answers_arrow_streams_on_request() {
    let s = server();
    let request = Request::post("/api/v1/sql")
        .header(header::ACCEPT, ARROW_STREAM)
        .body(Body::from(
            json!({"sql": "SELECT trace_id, kind, duration_ns FROM spans ORDER BY start_time"})
                .to_string(),
        ))
        .unwrap();
    let answer = send(&s, request).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type, ARROW_STREAM);
    let reader = StreamReader::try_new(Cursor::new(answer.body.to_vec()), None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(schema.field(0).name(), "trace_id");
    assert_eq!(
        batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        testdata::SPAN_COUNT
    );
    let pretty = arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(pretty.contains(testdata::CHECKOUT_TRACE), "{pretty}");
}

#[tokio::test]
async fn sql_sees_spans_appended_just_before() {
    let s = server();
    s.table.append(testdata::bulk(5)).unwrap();
    let json = sql_ok(
        &s,
        "SELECT count(*) FROM spans WHERE service_name = 'loadgen'",
    )
    .await;
    assert_eq!(json["rows"], json!([[5]]));
}

#[tokio::test]
async fn sql_refuses_malformed_requests() {
    let s = server();
    for body in [
        "",
        "{",
        "{\"query\": \"SELECT 1\"}",
        "{\"sql\": 1}",
        "{\"sql\": \"  \"}",
    ] {
        let request = Request::post("/api/v1/sql").body(Body::from(body)).unwrap();
        let answer = send(&s, request).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(!answer.error().is_empty());
    }
}

#[tokio::test]
async fn sql_reports_syntax_errors_with_datafusion_messages() {
    let s = server();
    let answer = sql(&s, "SELEC * FROM spans").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.error().contains("SELEC"), "{}", answer.error());
    let answer = sql(&s, "SELECT no_such_column FROM spans").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.error().contains("no_such_column"),
        "{}",
        answer.error()
    );
}

#[tokio::test]
async fn sql_is_read_only() {
    let s = server();
    for query in [
        "CREATE TABLE t (a INT)",
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
        "COPY (SELECT * FROM spans) TO '/tmp/spans.csv'",
        "INSERT INTO spans SELECT * FROM spans",
        "DROP TABLE spans",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let answer = sql(&s, query).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            answer
                .error()
                .starts_with("only read-only queries are allowed"),
            "{query}: {}",
            answer.error()
        );
    }
    for query in [
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
    ] {
        let answer = sql(&s, query).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
    }
    assert_alive(&s).await;
    assert_eq!(s.table.num_rows(), testdata::SPAN_COUNT);
}

#[tokio::test]
async fn hostile_queries_end_in_errors_and_the_server_keeps_answering() {
    let s = strict();
    let cases = [
        // Enough work to pass the 2 s limit many times over; the filter keeps
        // DataFusion from answering the count from statistics.
        (
            "SELECT count(*) FROM spans a, spans b, spans c WHERE a.duration_ns + b.duration_ns > c.duration_ns",
            "time limit",
        ),
        (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
            "time limit",
        ),
        (
            "SELECT a.span_id, b.span_id FROM spans a, spans b ORDER BY a.attributes['payload'], b.span_id",
            "memory limit",
        ),
        (
            "SELECT * FROM generate_series(1, 1000000000000)",
            "disabled",
        ),
        ("SELECT range(1000000000000)", "disabled"),
        ("SELECT repeat('x', 1000000000)", "disabled"),
        ("SELECT lpad('x', 1000000000)", "disabled"),
        ("SELECT array_resize([1], 1000000000)", "disabled"),
        ("SELECT * FROM spans a, spans b", "add a LIMIT"),
        ("SELECT * FROM spans LIMIT 1000", "add a LIMIT"),
    ];
    for (query, expected) in cases {
        assert_refused(query, &sql(&s, query).await, expected);
        assert_alive(&s).await;
    }
}

/// A 400 whose message says `expected`.
fn assert_refused(query: &str, answer: &Answer, expected: &str) {
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "{query}: {}",
        answer.text()
    );
    assert!(
        answer.error().contains(expected),
        "{query}: {}",
        answer.error()
    );
}

/// `replace` nested eight times over a ten-character literal asks for a
/// billion characters; the others build large values from columns or by
/// doubling through subqueries. Each is refused with the cap named, four at
/// once as well, and ordinary uses of the same functions still answer.
#[tokio::test]
async fn functions_cannot_build_values_past_their_cap() {
    let s = server_with(QueryConfig {
        max_function_output: ByteSize::mib(1),
        ..QueryConfig::default()
    });
    let x = "x".repeat(1000);
    let mut nested = "'aaaaaaaaaa'".to_owned();
    for _ in 0..8 {
        nested = format!("replace({nested}, 'a', 'aaaaaaaaaa')");
    }
    let doubling = |step: &str| {
        let steps: Vec<String> = (1..=30)
            .map(|i| format!("a{i} AS (SELECT {step} AS v FROM a{})", i - 1))
            .collect();
        format!(
            "WITH a0 AS (SELECT name AS v FROM spans), {} SELECT max(length(v)) FROM a30",
            steps.join(", ")
        )
    };
    // A hundred rows, so that a 60 KiB constant copied into each is 6 MiB.
    let hundred: Vec<String> = (0..100).map(|n| format!("({n})")).collect();
    let hundred = format!("(VALUES {}) AS g(n)", hundred.join(", "));
    let cases = [
        // From a column: a thousand times, twice.
        format!("SELECT max(length(replace(replace(name, 'o', '{x}'), 'x', '{x}'))) FROM spans"),
        format!(
            "SELECT max(length(regexp_replace(regexp_replace(name, '', '{x}', 'g'), '', '{x}', 'g'))) FROM spans"
        ),
        doubling("concat(v, v)"),
        // Simplified into DataFusion's own `concat`, which is bounded too.
        doubling("concat(v, v, '')"),
        doubling("OVERLAY(v PLACING v FROM 1 FOR 0)"),
        // The operator is not a function in DataFusion; it is bounded too.
        doubling("v || v"),
        // Lists: `[a, b]` and `||` on lists are planned as functions.
        doubling("[v, v]")
            .replace("name AS v", "[name] AS v")
            .replace("[v, v]", "array_concat(v, v)"),
        doubling("v || v").replace("name AS v", "[name] AS v"),
        // A constant copied into every row by a function.
        format!(
            "SELECT max(length(concat(CAST(n AS VARCHAR), '{}'))) FROM {hundred}",
            "c".repeat(60 * 1024)
        ),
        format!(
            "SELECT max(length(CAST(n AS VARCHAR) || '{}')) FROM {hundred}",
            "c".repeat(60 * 1024)
        ),
    ];
    let answers = futures::future::join_all(cases.iter().map(|q| sql(&s, q))).await;
    for (query, answer) in cases.iter().zip(answers) {
        assert_refused(query, &answer, "query.max_function_output (1.0 MiB)");
    }
    // Constants: a literal past 64 KiB, one folded from functions, and a
    // projection copying a constant into every row of a batch.
    let mut folded = "'aaaaaaaaaa'".to_owned();
    for _ in 0..5 {
        folded = format!("replace({folded}, 'a', 'aaaaaaaaaa')");
    }
    let constants = [
        (
            format!("SELECT length('{}')", "l".repeat(70 * 1024)),
            "the largest constant a query may hold (64.0 KiB)",
        ),
        (
            format!("SELECT length({nested})"),
            "the largest constant a query may hold (64.0 KiB)",
        ),
        (
            format!("SELECT length({folded})"),
            "the largest constant a query may hold (64.0 KiB)",
        ),
        (
            format!("SELECT n, '{}' AS c FROM {hundred}", "p".repeat(60 * 1024)),
            "a projection copying 60.0 KiB of constants into each of 100 rows would build 5.9 MiB",
        ),
    ];
    for (query, expected) in &constants {
        assert_refused(query, &sql(&s, query).await, expected);
    }
    assert_alive(&s).await;
    let fine = sql_ok(
        &s,
        "SELECT replace(name, 'op', 'operation') AS r, regexp_replace(name, '[0-9]', '#', 'g') AS g, concat(name, '!') AS c FROM spans LIMIT 1",
    )
    .await;
    let row = &fine["rows"][0];
    assert!(row[0].as_str().unwrap().len() >= 2, "{fine}");
    assert!(row[2].as_str().unwrap().ends_with('!'), "{fine}");
    assert_eq!(
        sql_ok(&s, "SELECT array_to_string(make_array('a', 'b'), '-')").await["rows"][0][0],
        "a-b"
    );
    // Functions a planner made and the same named in SQL are one.
    let years = sql_ok(
        &s,
        "SELECT EXTRACT(YEAR FROM start_time) AS y, count(*) AS n FROM spans GROUP BY date_part('YEAR', start_time)",
    )
    .await;
    assert_eq!(years["rows"].as_array().unwrap().len(), 1, "{years}");
    let names = sql_ok(
        &s,
        "SELECT name || '!' AS x, count(*) AS n FROM spans GROUP BY name || '!' ORDER BY x",
    )
    .await;
    let distinct = sql_ok(&s, "SELECT count(DISTINCT name) AS n FROM spans").await;
    assert_eq!(
        names["rows"].as_array().unwrap().len() as u64,
        distinct["rows"][0][0].as_u64().unwrap(),
        "{names}"
    );
    let route = sql_ok(&s, "SELECT attributes['http.route'] AS r FROM spans WHERE attributes['http.route'] IS NOT NULL LIMIT 1").await;
    assert!(route["rows"][0][0].is_string(), "{route}");
    // `||` keeps its meaning: null with a null side, other types as text,
    // dictionary columns, lists concatenated, its own column name.
    let answer = sql_ok(
        &s,
        "SELECT NULL || 'a' AS n, 'a' || 1 AS t, service_name || '!' AS d, [1] || [2] AS l, 'x' || 'y' FROM spans LIMIT 1",
    )
    .await;
    let row = &answer["rows"][0];
    assert_eq!(row[0], serde_json::Value::Null, "{answer}");
    assert_eq!(row[1], "a1");
    assert!(row[2].as_str().unwrap().ends_with('!'));
    assert_eq!(row[3], serde_json::json!([1, 2]));
    assert_eq!(row[4], "xy");
    assert_eq!(answer["columns"][4], "Utf8(\"x\") || Utf8(\"y\")");
}

#[tokio::test]
async fn result_caps_name_their_limit() {
    let s = strict();
    let answer = sql(&s, "SELECT span_id FROM spans").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.error(),
        "result exceeds 1000 rows; add a LIMIT or aggregate"
    );
}

/// Every key docs/contract.md §6 lists for a span, and no other.
const SPAN_KEYS: &[&str] = &[
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "service_name",
    "platform",
    "instance",
    "start_unix_nano",
    "end_unix_nano",
    "duration_ns",
    "status",
    "attributes",
    "resource",
    "events",
    "links",
    "cold_start",
    "cold_start_type",
    "init_duration_ns",
    "flow_id",
];

#[tokio::test]
async fn trace_answers_spans_in_the_documented_shape() {
    let s = server();
    let answer = get(&s, &format!("/api/v1/traces/{}", testdata::CHECKOUT_TRACE)).await;
    assert_eq!(answer.status, StatusCode::OK);
    let json = answer.json();
    assert_eq!(json["trace_id"], testdata::CHECKOUT_TRACE);
    let spans = json["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4);
    for span in spans {
        let mut keys: Vec<&str> = span
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut expected = SPAN_KEYS.to_vec();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }
    let starts: Vec<u64> = spans
        .iter()
        .map(|s| s["start_unix_nano"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(starts.is_sorted(), "{starts:?}");

    let root = &spans[0];
    assert_eq!(
        *root,
        json!({
            "trace_id": testdata::CHECKOUT_TRACE,
            "span_id": testdata::CHECKOUT_ROOT_SPAN,
            "parent_span_id": null,
            "name": "GET /checkout",
            "kind": "server",
            "service_name": "checkout",
            "platform": "kubernetes",
            "instance": "checkout-7d9f",
            "start_unix_nano": "1700000000000000000",
            "end_unix_nano": "1700000000250000000",
            "duration_ns": 250_000_000,
            "status": {"code": "ERROR", "message": "payment declined"},
            "attributes": {"http.route": "/checkout", "http.request.method": "GET"},
            "resource": {"service.name": "checkout", "k8s.pod.name": "checkout-7d9f"},
            "events": [{
                "time_unix_nano": "1700000000000001000",
                "name": "exception",
                "attributes": {"exception.type": "PaymentDeclined"}
            }],
            "links": [],
            "cold_start": null,
            "cold_start_type": null,
            "init_duration_ns": null,
            "flow_id": testdata::CHECKOUT_TRACE
        })
    );
    assert_eq!(spans[1]["parent_span_id"], testdata::CHECKOUT_ROOT_SPAN);
}

#[tokio::test]
async fn trace_shows_links_and_cold_starts() {
    let s = server();
    let json = get(&s, &format!("/api/v1/traces/{}", testdata::ORDERS_TRACE))
        .await
        .json();
    let consumer = &json["spans"][0];
    assert_eq!(consumer["kind"], "consumer");
    assert_eq!(consumer["platform"], "faas");
    assert_eq!(consumer["cold_start"], true);
    assert_eq!(
        consumer["links"],
        json!([{
            "trace_id": testdata::CHECKOUT_TRACE,
            "span_id": "00f067aa0ba902b7",
            "attributes": {"messaging.message.id": "m-1"}
        }])
    );
}

#[tokio::test]
async fn trace_accepts_uppercase_ids() {
    let s = server();
    let answer = get(
        &s,
        &format!("/api/v1/traces/{}", testdata::CHECKOUT_TRACE.to_uppercase()),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["trace_id"], testdata::CHECKOUT_TRACE);
}

#[tokio::test]
async fn trace_refuses_malformed_ids_and_reports_unknown_ones() {
    let s = server();
    for id in [
        "xyz",
        "0af7651916cd43dd",
        "00000000000000000000000000000000",
        "0af7651916cd43dd8448eb211c80319c0",
    ] {
        let answer = get(&s, &format!("/api/v1/traces/{id}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{id}");
        assert!(
            answer.error().contains("invalid trace id"),
            "{}",
            answer.error()
        );
    }
    let answer = get(&s, &format!("/api/v1/traces/{}", testdata::UNKNOWN_TRACE)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.error(),
        format!("trace {} not found", testdata::UNKNOWN_TRACE)
    );
}

/// Search from the testdata's time on (it is older than the default hour)
/// unless `query` sets `start`.
async fn search_ids(s: &Server, query: &str) -> Vec<String> {
    let sets_start = query.split('&').any(|p| p.starts_with("start="));
    let since = if sets_start { "" } else { "start=0&" };
    let answer = get(s, &format!("/api/v1/search?{since}{query}")).await;
    assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
    answer.json()["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn search_summarizes_traces_latest_first() {
    let s = server();
    let recent = get(&s, "/api/v1/search").await.json();
    assert_eq!(
        recent["traces"],
        json!([]),
        "the last hour holds nothing of 2023"
    );
    let json = get(&s, "/api/v1/search?start=2023-11-14T00:00:00Z")
        .await
        .json();
    let traces = json["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 3);
    assert_eq!(traces[0]["trace_id"], testdata::HEALTH_TRACE);
    assert_eq!(
        traces[2],
        json!({
            "trace_id": testdata::CHECKOUT_TRACE,
            "flow_id": testdata::CHECKOUT_TRACE,
            "root_service": "checkout",
            "root_name": "GET /checkout",
            "start_unix_nano": "1700000000000000000",
            "duration_ns": 250_000_000,
            "span_count": 4,
            "error_count": 2,
            "services": ["checkout", "payments"],
            "platforms": ["kubernetes"],
            "cold_start": false,
            "flagged": false,
            "flow_trace_count": 1
        })
    );
}

#[tokio::test]
async fn search_filters_by_each_parameter() {
    let s = server();
    let (checkout, orders, health) = (
        testdata::CHECKOUT_TRACE,
        testdata::ORDERS_TRACE,
        testdata::HEALTH_TRACE,
    );
    assert_eq!(search_ids(&s, "service=order-worker").await, vec![orders]);
    assert_eq!(
        search_ids(&s, "service=checkout").await,
        vec![health, checkout]
    );
    assert_eq!(
        search_ids(&s, "operation=POST%20%2Fpayments").await,
        vec![checkout]
    );
    assert_eq!(
        search_ids(&s, "service=payments&operation=GET%20%2Fcheckout").await,
        Vec::<String>::new()
    );
    assert_eq!(search_ids(&s, "min_duration=1s").await, vec![orders]);
    assert_eq!(
        search_ids(&s, "min_duration=200ms&max_duration=300ms").await,
        vec![checkout]
    );
    assert_eq!(search_ids(&s, "max_duration=1000000").await, vec![health]);
    assert_eq!(
        search_ids(&s, "attr.http.route=%2Fpayments").await,
        vec![checkout]
    );
    assert_eq!(
        search_ids(&s, "attr.tenant=acme&attr.db.system=postgresql").await,
        vec![orders]
    );
    assert_eq!(
        search_ids(&s, "attr.tenant=acme&attr.http.route=%2Fcheckout").await,
        Vec::<String>::new()
    );
    assert_eq!(search_ids(&s, "cold_start=true").await, vec![orders]);
    assert_eq!(
        search_ids(&s, "start=2023-11-14T22:13:21Z&end=2023-11-14T22:13:22Z").await,
        vec![orders]
    );
    assert_eq!(
        search_ids(&s, "start=1700000004000000000").await,
        vec![health]
    );
    assert_eq!(
        search_ids(&s, "end=2023-11-14T22:13:20.5Z").await,
        vec![checkout]
    );
    assert_eq!(search_ids(&s, "limit=2").await, vec![health, orders]);
    assert_eq!(search_ids(&s, "errors=true").await, vec![checkout]);
    assert_eq!(search_ids(&s, "errors=false").await, vec![health, orders]);
    assert_eq!(search_ids(&s, "flagged=true").await, Vec::<String>::new());
    assert_eq!(search_ids(&s, "service=&operation=").await.len(), 3);
}

#[tokio::test]
async fn search_refuses_unknown_and_bad_parameters() {
    let s = server();
    for (query, expected) in [
        ("servce=checkout", "unknown parameter 'servce'"),
        ("limit=0", "'limit'"),
        ("limit=5000", "'limit'"),
        ("min_duration=slow", "'min_duration'"),
        ("max_duration=-1", "'max_duration'"),
        ("start=yesterday", "'start'"),
        ("start=20&end=10", "'start' is after 'end'"),
        ("cold_start=maybe", "'cold_start'"),
        ("flagged=sometimes", "'flagged'"),
        ("errors=some", "'errors'"),
        ("service=a&service=b", "more than once"),
    ] {
        let answer = get(&s, &format!("/api/v1/search?{query}")).await;
        assert_refused(query, &answer, expected);
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let table = testdata::table();
    let engine = Arc::new(QueryEngine::new(table, QueryConfig::default()).unwrap());
    let readiness = Readiness::default();
    let s = Server {
        router: api_router(ApiState::new(engine, readiness.clone())),
        table: Arc::new(
            Table::new(seam_model::schema::spans_schema(), "start_time")
                .with_hot_schema(seam_model::schema::spans_hot_schema()),
        ),
        readiness,
    };
    let health = get(&s, "/healthz").await;
    assert_eq!(
        (health.status, &health.body[..]),
        (StatusCode::OK, &b"ok"[..])
    );
    assert_eq!(
        get(&s, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    s.readiness.set_ready();
    assert_eq!(get(&s, "/readyz").await.status, StatusCode::OK);
    // A stage that stopped turns it for good, with the reason.
    s.readiness
        .set_failed("upkeep failed: the disk went away".into());
    let stopping = get(&s, "/readyz").await;
    assert_eq!(stopping.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        &stopping.body[..],
        &b"stopping: upkeep failed: the disk went away"[..]
    );
    s.readiness.set_ready();
    assert_eq!(
        get(&s, "/readyz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let s = server();
    let answer = get(&s, "/api/v1/nope").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.error(), "no route for GET /api/v1/nope");
    let answer = get(&s, "/api/v1/sql").await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(answer.error().contains("GET"), "{}", answer.error());
    let request = Request::builder()
        .method(Method::DELETE)
        .uri(format!("/api/v1/traces/{}", testdata::CHECKOUT_TRACE))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&s, request).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test]
async fn correlation_endpoints_answer_in_their_shapes_and_refuse_bad_parameters() {
    let s = server();
    let flow = get(
        &s,
        &format!("/api/v1/traces/{}/flow", testdata::CHECKOUT_TRACE),
    )
    .await;
    assert_eq!(flow.status, StatusCode::OK, "{}", flow.text());
    let flow = flow.json();
    assert_eq!(
        flow["flow_id"],
        testdata::CHECKOUT_TRACE,
        "a trace alone is its own flow"
    );
    assert_eq!(flow["trace_ids"], json!([testdata::CHECKOUT_TRACE]));
    assert_eq!(flow["spans"].as_array().unwrap().len(), 4);
    assert_eq!(flow["boundaries"], json!([]));
    let unknown = get(
        &s,
        &format!("/api/v1/traces/{}/flow", testdata::UNKNOWN_TRACE),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&s, "/api/v1/traces/xyz/flow").await.status,
        StatusCode::BAD_REQUEST
    );

    let edges = get(&s, "/api/v1/boundaries?start=2020-01-01T00:00:00Z").await;
    assert_eq!(edges.status, StatusCode::OK, "{}", edges.text());
    assert_eq!(edges.json(), json!({"edges": []}));
    let cold = get(&s, "/api/v1/cold-starts").await;
    assert_eq!(cold.status, StatusCode::OK, "{}", cold.text());
    let functions = &cold.json()["functions"];
    assert_eq!(functions.as_array().unwrap().len(), 1, "{functions}");
    assert_eq!(functions[0]["function"], "order-worker");
    assert_eq!(
        (&functions[0]["invocations"], &functions[0]["cold_starts"]),
        (&json!(1), &json!(1))
    );
    for (path, expected) in [
        ("/api/v1/boundaries?start=yesterday", "'start'"),
        (
            "/api/v1/cold-starts?start=20&end=10",
            "'start' is after 'end'",
        ),
        (
            "/api/v1/cold-starts?service=x",
            "unknown parameter 'service'",
        ),
    ] {
        let answer = get(&s, path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            answer.error().contains(expected),
            "{path}: {}",
            answer.error()
        );
    }
    assert_eq!(
        get(&s, "/metrics").await.status,
        StatusCode::NOT_FOUND,
        "no renderer given"
    );
}
