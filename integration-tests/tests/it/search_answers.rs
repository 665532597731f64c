//! Search answered from the trace summaries gives what a full scan of the
//! spans gives: generated traces (split over several exports, hybrid,
//! with errors, cold starts, attributes and slow queue hops), every search
//! filter, compared field by field with a reference computed from every
//! stored span, while the summaries are still active, once they are
//! written and sealed, and after a kill -9 and a restart. The boundary
//! map and the cold-start report, merged from per-minute rollups, are
//! compared with the same figures grouped from every boundary and
//! invocation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use seam_integration_tests::{Seam, rows};
use serde_json::Value as Json;

use crate::common::{kv, post_protobuf};

const MIN: i64 = 60_000_000_000;
const MS: i64 = 1_000_000;
const SERVICES: &[&str] = &["cart", "checkout", "payments", "inventory", "mailer"];
const OPERATIONS: &[&str] = &["GET /a", "GET /b", "POST /c", "db.query", "render"];

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// One generated span and the resource it is sent under.
#[derive(Clone)]
struct Gen {
    trace: [u8; 16],
    span: [u8; 8],
    parent: Option<[u8; 8]>,
    service: &'static str,
    name: String,
    kind: i32,
    start: i64,
    end: i64,
    error: bool,
    attributes: Vec<KeyValue>,
    /// A Lambda function's span, on this instance.
    instance: Option<u32>,
}

fn bool_kv(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Value::BoolValue(value)),
        }),
        ..Default::default()
    }
}

/// `traces` traces with ids from `seed`: most in the last hour, some an
/// hour or two ago, some starting before the hour and reaching into it;
/// a trace's spans on a few services; queue hops between traces, some
/// slower than the flagging threshold.
fn generate(seed: u64, traces: usize, now: i64) -> Vec<Vec<Gen>> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out: Vec<Vec<Gen>> = Vec::new();
    let mut next_span = 1u64;
    let mut span_id = |rng: &mut SmallRng| {
        next_span += 1;
        let mut id = (next_span | seed << 40).to_be_bytes();
        id[0] = rng.random_range(1..=255);
        id
    };
    for t in 0..traces {
        let mut trace = [0u8; 16];
        rng.fill(&mut trace[..]);
        trace[0] = 0xa0 | (seed as u8 & 0x0f);
        // Away from the hour's edge, so that the default range is the same
        // for the answer and the reference computed a moment later.
        let (start, root_len) = match t % 10 {
            0 => (now - rng.random_range(62 * MIN..110 * MIN), 20 * MS),
            1 => (now - 64 * MIN, 10 * MIN),
            _ => (now - rng.random_range(MIN / 60..58 * MIN), 0),
        };
        let root_len = if root_len == 0 {
            rng.random_range(1..3_000) * MS
        } else {
            root_len
        };
        let function = t % 7 == 3;
        let service = if function {
            "resizer"
        } else {
            SERVICES[rng.random_range(0..SERVICES.len())]
        };
        let instance = function.then(|| rng.random_range(0..4));
        let mut spans = vec![Gen {
            trace,
            span: span_id(&mut rng),
            parent: None,
            service,
            name: OPERATIONS[rng.random_range(0..OPERATIONS.len())].to_owned(),
            kind: 2,
            start,
            end: start + root_len,
            error: rng.random_bool(0.08),
            attributes: vec![kv("http.route", ["/a", "/b", "/c"][t % 3])],
            instance,
        }];
        if function {
            spans[0]
                .attributes
                .push(bool_kv("faas.coldstart", rng.random_bool(0.5)));
        }
        for _ in 0..rng.random_range(0..6) {
            let parent = spans[rng.random_range(0..spans.len())].span;
            let offset = rng.random_range(0..root_len.max(2 * MS) / MS) * MS;
            let len = rng.random_range(1..400) * MS;
            let service = SERVICES[rng.random_range(0..SERVICES.len())];
            let mut attributes = Vec::new();
            if rng.random_bool(0.4) {
                attributes.push(kv("tenant", ["acme", "globex"][rng.random_range(0..2)]));
            }
            if rng.random_bool(0.3) {
                attributes.push(kv("http.route", ["/a", "/b", "/c"][rng.random_range(0..3)]));
            }
            spans.push(Gen {
                trace,
                span: span_id(&mut rng),
                parent: Some(parent),
                service,
                name: OPERATIONS[rng.random_range(0..OPERATIONS.len())].to_owned(),
                kind: 3,
                start: start + offset,
                end: start + offset + len,
                error: rng.random_bool(0.05),
                attributes,
                instance: None,
            });
        }
        out.push(spans);
    }
    // Queue hops: a producer in one trace, its consumer the root of a
    // later trace, by message id; every third slower than a second.
    for hop in 0..traces / 8 {
        let (p, c) = (hop * 8 + 2, hop * 8 + 5);
        let producer_trace = out[p][0].trace;
        let sent = out[p][0].start + MS;
        let wait = if hop % 3 == 0 { 3_000 * MS } else { 20 * MS };
        let id = format!("msg-{seed}-{hop}");
        let messaging = |op: &str| {
            vec![
                kv("messaging.system", "aws_sqs"),
                kv("messaging.operation", op),
                kv("messaging.destination.name", "orders"),
                kv("messaging.message.id", &id),
            ]
        };
        let producer = Gen {
            trace: producer_trace,
            span: span_id(&mut rng),
            parent: Some(out[p][0].span),
            service: out[p][0].service,
            name: "orders publish".into(),
            kind: 4,
            start: sent,
            end: sent + 2 * MS,
            error: false,
            attributes: messaging("publish"),
            instance: None,
        };
        out[p].push(producer);
        let consumer = &mut out[c][0];
        let shift = sent + 2 * MS + wait - consumer.start;
        for s in out[c].iter_mut() {
            s.start += shift;
            s.end += shift;
        }
        out[c][0].kind = 5;
        out[c][0].name = "orders process".into();
        out[c][0].attributes.extend(messaging("process"));
    }
    out
}

/// The generated traces as exports: each trace's spans in one to three
/// pieces, pieces of different traces shuffled together.
fn exports(traces: &[Vec<Gen>], seed: u64) -> Vec<ExportTraceServiceRequest> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    let mut pieces: Vec<Vec<Gen>> = Vec::new();
    for spans in traces {
        let n = rng.random_range(1..=3).min(spans.len());
        let mut split: Vec<Vec<Gen>> = vec![Vec::new(); n];
        for s in spans {
            split[rng.random_range(0..n)].push(s.clone());
        }
        pieces.extend(split.into_iter().filter(|p| !p.is_empty()));
    }
    pieces.shuffle(&mut rng);
    pieces
        .chunks(6)
        .map(|chunk| {
            let mut by_resource: HashMap<(&str, Option<u32>), Vec<Span>> = HashMap::new();
            for g in chunk.iter().flatten() {
                by_resource
                    .entry((g.service, g.instance))
                    .or_default()
                    .push(Span {
                        trace_id: g.trace.to_vec(),
                        span_id: g.span.to_vec(),
                        parent_span_id: g.parent.map(|p| p.to_vec()).unwrap_or_default(),
                        name: g.name.clone(),
                        kind: g.kind,
                        start_time_unix_nano: g.start as u64,
                        end_time_unix_nano: g.end as u64,
                        attributes: g.attributes.clone(),
                        status: g.error.then(|| Status {
                            code: 2,
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
            }
            ExportTraceServiceRequest {
                resource_spans: by_resource
                    .into_iter()
                    .map(|((service, instance), spans)| {
                        let mut attributes = vec![kv("service.name", service)];
                        if let Some(i) = instance {
                            attributes.push(kv("cloud.platform", "aws_lambda"));
                            attributes.push(kv("faas.name", service));
                            attributes.push(kv("faas.instance", &format!("{service}-{i}")));
                        } else {
                            attributes.push(kv("k8s.pod.name", &format!("{service}-pod")));
                        }
                        ResourceSpans {
                            resource: Some(Resource {
                                attributes,
                                ..Default::default()
                            }),
                            scope_spans: vec![ScopeSpans {
                                spans,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }
                    })
                    .collect(),
            }
        })
        .collect()
}

fn send(seam: &Seam, traces: &[Vec<Gen>], seed: u64) {
    for request in exports(traces, seed) {
        let (status, body) = post_protobuf(seam, &request);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
}

/// A stored span as the full scan reads it.
struct Stored {
    trace: String,
    span: String,
    parent: Option<String>,
    name: String,
    service: String,
    platform: String,
    start: i64,
    end: i64,
    duration: i64,
    error: bool,
    cold: Option<bool>,
    attributes: HashMap<String, String>,
}

/// Every stored span, and the traces on a flagged boundary.
fn full_scan(seam: &Seam) -> (Vec<Stored>, HashSet<String>) {
    let answer = seam.sql(
        "SELECT trace_id, span_id, parent_span_id, name, service_name, platform, \
                arrow_cast(start_time, 'Int64') AS s, arrow_cast(end_time, 'Int64') AS e, \
                duration_ns, status_code, cold_start, \
                attributes['http.route'] AS route, attributes['tenant'] AS tenant \
         FROM spans",
    );
    let text = |r: &serde_json::Map<String, Json>, k: &str| r[k].as_str().map(str::to_owned);
    let spans = rows(&answer)
        .iter()
        .map(|r| Stored {
            trace: text(r, "trace_id").unwrap(),
            span: text(r, "span_id").unwrap(),
            parent: text(r, "parent_span_id"),
            name: text(r, "name").unwrap(),
            service: text(r, "service_name").unwrap(),
            platform: text(r, "platform").unwrap(),
            start: r["s"].as_i64().unwrap(),
            end: r["e"].as_i64().unwrap(),
            duration: r["duration_ns"].as_i64().unwrap(),
            error: r["status_code"] == "ERROR",
            cold: r["cold_start"].as_bool(),
            attributes: [("http.route", "route"), ("tenant", "tenant")]
                .into_iter()
                .filter_map(|(k, c)| text(r, c).map(|v| (k.to_owned(), v)))
                .collect(),
        })
        .collect();
    let flagged = rows(&seam.sql(
        "SELECT producer_trace_id AS t FROM boundaries WHERE flagged \
         UNION SELECT consumer_trace_id AS t FROM boundaries WHERE flagged",
    ))
    .iter()
    .map(|r| r["t"].as_str().unwrap().to_owned())
    .collect();
    (spans, flagged)
}

/// What `/api/v1/search?query` answers, computed from every span.
fn reference(spans: &[Stored], flagged: &HashSet<String>, query: &str, now: i64) -> Vec<Json> {
    let params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_owned(), v.replace("%20", " ").replace("%2F", "/"))
        })
        .collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let ns = |v: String| -> i64 { v.parse().unwrap() };
    let start = get("start").map_or(now - 60 * MIN, ns);
    let end = get("end").map(ns);
    let limit: usize = get("limit").map_or(20, |v| v.parse().unwrap());
    let attrs: Vec<(String, String)> = params
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("attr.").map(|k| (k.to_owned(), v.clone())))
        .collect();
    let passes = |s: &Stored| {
        s.start >= start
            && end.is_none_or(|e| s.start <= e)
            && get("service").is_none_or(|v| s.service == v)
            && get("operation").is_none_or(|v| s.name == v)
            && get("min_duration").is_none_or(|v| s.duration >= ns(v))
            && get("max_duration").is_none_or(|v| s.duration <= ns(v))
            && get("cold_start").is_none_or(|v| s.cold == Some(v == "true"))
            && attrs.iter().all(|(k, v)| s.attributes.get(k) == Some(v))
    };
    let mut by_trace: HashMap<&str, Vec<&Stored>> = HashMap::new();
    for s in spans {
        by_trace.entry(&s.trace).or_default().push(s);
    }
    let mut found: Vec<(i64, &str, Json)> = by_trace
        .into_iter()
        .filter(|(_, spans)| spans.iter().any(|s| passes(s)))
        .filter(|(t, spans)| {
            let errors = spans.iter().any(|s| s.error);
            get("errors").is_none_or(|v| errors == (v == "true"))
                && get("flagged").is_none_or(|v| flagged.contains(*t) == (v == "true"))
        })
        .map(|(t, spans)| {
            let root = spans
                .iter()
                .min_by_key(|s| (s.parent.is_some(), s.start, s.span.clone()))
                .unwrap();
            let first = spans.iter().map(|s| s.start).min().unwrap();
            let last = spans.iter().map(|s| s.end).max().unwrap();
            let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
            let platforms: BTreeSet<&str> = spans.iter().map(|s| s.platform.as_str()).collect();
            let summary = serde_json::json!({
                "trace_id": t,
                "root_service": root.service,
                "root_name": root.name,
                "start_unix_nano": first.to_string(),
                "duration_ns": last - first,
                "span_count": spans.len(),
                "error_count": spans.iter().filter(|s| s.error).count(),
                "services": services,
                "platforms": platforms,
                "cold_start": spans.iter().any(|s| s.cold == Some(true)),
                "flagged": flagged.contains(t),
            });
            (first, t, summary)
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    found.into_iter().take(limit).map(|(_, _, j)| j).collect()
}

/// The API's answer in the reference's shape (platforms as a set; the
/// flow id is checked apart).
fn answered(seam: &Seam, query: &str) -> Vec<Json> {
    let (status, body) = seam.get(&format!("/api/v1/search?{query}"));
    assert_eq!(status, 200, "{query}: {body}");
    body["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let mut t = t.clone();
            let flow = t.as_object_mut().unwrap().remove("flow_id").unwrap();
            assert!(flow.as_str().is_some_and(|f| f.len() == 32), "{t}");
            // What the flow around the trace holds is correlation's, from
            // memory; the reference is the trace itself.
            let traces = t
                .as_object_mut()
                .unwrap()
                .remove("flow_trace_count")
                .unwrap();
            assert!(traces.as_u64().is_some_and(|n| n >= 1), "{t}");
            for key in ["flow_boundary_count", "flow_flagged_boundaries"] {
                t.as_object_mut().unwrap().remove(key);
            }
            let platforms: BTreeSet<String> =
                serde_json::from_value(t["platforms"].take()).unwrap();
            t["platforms"] = serde_json::json!(platforms);
            t
        })
        .collect()
}

fn queries(now: i64) -> Vec<String> {
    let ago = |m: i64| (now - m * MIN).to_string();
    let mut q: Vec<String> = [
        "",
        "limit=5",
        "limit=1000",
        "service=checkout",
        "service=resizer&limit=50",
        "operation=db.query",
        "service=payments&operation=GET%20%2Fa",
        "min_duration=500000000",
        "max_duration=5000000",
        "min_duration=10000000&max_duration=200000000&limit=40",
        "cold_start=true",
        "cold_start=false&limit=30",
        "attr.http.route=%2Fb",
        "attr.http.route=%2Fa&attr.tenant=acme",
        "errors=true",
        "errors=false&service=cart",
        "flagged=true",
        "flagged=false&limit=100",
        "service=resizer&cold_start=true",
        "errors=true&service=inventory&limit=3",
        "start=0&end=1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    q.push(format!("start={}", ago(180)));
    q.push(format!("start={}&end={}&limit=200", ago(120), ago(61)));
    q.push(format!("start={}&service=mailer&limit=50", ago(100)));
    q.push(format!(
        "start={}&end={}&attr.tenant=globex",
        ago(63),
        ago(30)
    ));
    q.push(format!("start={}&min_duration=1000000000", ago(70)));
    q
}

/// `flows` as an aggregate over every span and boundary: the reference.
const FULL_FLOWS: &str = "WITH s AS ( \
  SELECT flow_id, count(DISTINCT trace_id) AS trace_count, count(*) AS span_count, \
         array_sort(array_agg(DISTINCT CAST(service_name AS VARCHAR))) AS services, \
         min(start_time) AS start_time, max(end_time) AS end_time, \
         sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = 'on_demand' THEN 1 ELSE 0 END) AS cold_starts, \
         sum(CASE WHEN CAST(status_code AS VARCHAR) = 'ERROR' THEN 1 ELSE 0 END) AS errors \
  FROM spans GROUP BY flow_id), \
b AS (SELECT flow_id, count(*) AS boundary_count, \
         sum(CASE WHEN flagged THEN 1 ELSE 0 END) AS flagged_boundaries \
  FROM boundaries GROUP BY flow_id), \
full_flows AS (SELECT s.flow_id, s.trace_count, s.span_count, s.services, s.start_time, s.end_time, \
       arrow_cast(s.end_time, 'Int64') - arrow_cast(s.start_time, 'Int64') AS duration_ns, \
       COALESCE(b.boundary_count, 0) AS boundary_count, \
       COALESCE(b.flagged_boundaries, 0) AS flagged_boundaries, s.cold_starts, s.errors \
  FROM s LEFT JOIN b ON s.flow_id = b.flow_id) ";

/// `flows` answers each question as the aggregate over every span does.
fn compare_flows(seam: &Seam, phase: &str, now: i64) {
    let at = |ns: i64| format!("arrow_cast({ns}, 'Timestamp(Nanosecond, Some(\"UTC\"))')");
    let multi = rows(&seam.sql(&format!(
        "{FULL_FLOWS} SELECT flow_id FROM full_flows WHERE trace_count > 1 ORDER BY flow_id LIMIT 1"
    )));
    assert!(!multi.is_empty(), "{phase}: some flows join traces");
    let multi = multi[0]["flow_id"].as_str().unwrap().to_owned();
    let tails = [
        "SELECT * FROM {} ORDER BY start_time DESC, flow_id LIMIT 50".to_owned(),
        "SELECT * FROM {} ORDER BY start_time DESC LIMIT 7".to_owned(),
        "SELECT flow_id, trace_count, services FROM {} WHERE trace_count > 1 ORDER BY start_time DESC, flow_id LIMIT 20".to_owned(),
        "SELECT * FROM {} WHERE flagged_boundaries > 0 ORDER BY start_time DESC, flow_id LIMIT 20".to_owned(),
        "SELECT * FROM {} WHERE cold_starts > 0 ORDER BY start_time DESC, flow_id LIMIT 20".to_owned(),
        format!(
            "SELECT flow_id, cold_starts, trace_count FROM {{}} WHERE cold_starts > 0 AND start_time < {} ORDER BY start_time DESC, flow_id LIMIT 20",
            at(now - 20 * MIN)
        ),
        "SELECT count(*) AS n, sum(trace_count) AS t, sum(span_count) AS s, sum(boundary_count) AS b, sum(flagged_boundaries) AS f, sum(cold_starts) AS c, sum(errors) AS e FROM {}".to_owned(),
        format!(
            "SELECT * FROM {{}} WHERE start_time >= {} AND start_time < {} ORDER BY start_time DESC, flow_id",
            at(now - 30 * MIN),
            at(now - 5 * MIN)
        ),
        format!("SELECT * FROM {{}} WHERE flow_id = '{multi}'"),
    ];
    for tail in tails {
        let want = seam.sql(&format!("{FULL_FLOWS}{}", tail.replace("{}", "full_flows")));
        let got = seam.sql(&tail.replace("{}", "flows"));
        assert!(
            got["rows"].as_array().is_some_and(|r| !r.is_empty()),
            "{phase}: {tail}: {got}"
        );
        if got != want {
            let (g, w) = (
                got["rows"].as_array().unwrap(),
                want["rows"].as_array().unwrap(),
            );
            let only_got: Vec<_> = g.iter().filter(|r| !w.contains(r)).collect();
            let only_want: Vec<_> = w.iter().filter(|r| !g.contains(r)).collect();
            panic!(
                "{phase}: {tail}: {} rows, expected {}; only in the answer: {only_got:?}; only in the reference: {only_want:?}",
                g.len(),
                w.len()
            );
        }
    }
}

/// The reports over whole minutes: what `/api/v1/boundaries` and
/// `/api/v1/cold-starts` answer from their rollups, against the same
/// figures grouped from every row by SQL.
/// `path`'s list under `field` holds the rows of `want`, in order, each
/// with the values `want` gives (the answer may carry more fields).
fn assert_listed(
    seam: &Seam,
    phase: &str,
    (path, field): (&str, &str),
    want: &[serde_json::Map<String, Json>],
) {
    let (status, got) = seam.get(path);
    assert_eq!(status, 200, "{phase}: {path}: {got}");
    let got = got[field].as_array().unwrap();
    assert_eq!(
        got.len(),
        want.len(),
        "{phase}: {path}: {got:?} vs {want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        for (k, v) in w {
            assert_eq!(&g[k], v, "{phase}: {path}: {k} of {g} vs {w:?}");
        }
    }
}

fn compare_reports(seam: &Seam, phase: &str, now: i64) {
    let minute = |t: i64| t.div_euclid(MIN) * MIN;
    let windows = [
        (None, None),
        (Some(minute(now - 60 * MIN)), None),
        (
            Some(minute(now - 40 * MIN)),
            Some(minute(now - 10 * MIN) + MIN - 1),
        ),
    ];
    let int = |t: i64| format!("arrow_cast({t}, 'Timestamp(Nanosecond, Some(\"UTC\"))')");
    for (start, end) in windows {
        let bound = |column: &str| {
            let mut p = String::new();
            if let Some(s) = start {
                p.push_str(&format!(" AND {column} >= {}", int(s)));
            }
            if let Some(e) = end {
                p.push_str(&format!(" AND {column} <= {}", int(e)));
            }
            p
        };
        let query: Vec<String> = [("start", start), ("end", end)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        let query = query.join("&");
        let pct = |q: f64, expr: &str| {
            format!("CAST(approx_percentile_cont({q}) WITHIN GROUP (ORDER BY {expr}) AS BIGINT)")
        };
        let edges = seam.sql(&format!(
            "SELECT producer_service, system, destination, consumer_service, kind, count(*) AS count, \
                    {} AS p50_ns, {} AS p95_ns, {} AS p99_ns, max(latency_ns) AS max_ns, \
                    sum(CASE WHEN flagged THEN 1 ELSE 0 END) AS flagged, \
                    sum(CASE WHEN redelivery THEN 1 ELSE 0 END) AS redeliveries, \
                    sum(CASE WHEN clock_skew THEN 1 ELSE 0 END) AS clock_skew \
             FROM boundaries WHERE true{} GROUP BY 1, 2, 3, 4, 5 \
             ORDER BY count DESC, producer_service, consumer_service, system, destination, kind",
            pct(0.5, "latency_ns"),
            pct(0.95, "latency_ns"),
            pct(0.99, "latency_ns"),
            bound("consumer_time")
        ));
        let path = format!("/api/v1/boundaries?{query}");
        assert_listed(seam, phase, (&path, "edges"), &rows(&edges));

        // The explorer's lists, from the operation rollups.
        // A service on two platforms is listed once, on the one with more
        // spans; a function with its `cloud.platform`.
        let by_platform = rows(&seam.sql(&format!(
            "SELECT CAST(service_name AS VARCHAR) AS name, CAST(platform AS VARCHAR) AS platform, \
                    max(CASE WHEN platform = 'faas' THEN resource_attributes['cloud.platform'] END) \
                      AS cloud_platform, \
                    count(*) AS spans \
             FROM spans WHERE true{} GROUP BY 1, 2 ORDER BY 1, spans DESC",
            bound("start_time")
        )));
        let mut services: Vec<serde_json::Map<String, Json>> = Vec::new();
        for row in by_platform {
            match services.last_mut() {
                Some(last) if last["name"] == row["name"] => {
                    let spans = last["spans"].as_i64().unwrap() + row["spans"].as_i64().unwrap();
                    last.insert("spans".into(), spans.into());
                    if last["cloud_platform"].is_null() {
                        last.insert("cloud_platform".into(), row["cloud_platform"].clone());
                    }
                }
                _ => services.push(row),
            }
        }
        assert!(
            services.iter().any(|s| s["cloud_platform"] == "aws_lambda"),
            "{phase}: functions were sent: {services:?}"
        );
        let path = format!("/api/v1/services?{query}");
        assert_listed(seam, phase, (&path, "services"), &services);
        for service in &services {
            let service = service["name"].as_str().unwrap();
            let want = rows(&seam.sql(&format!(
                "SELECT name, lower(CAST(kind AS VARCHAR)) AS kind, count(*) AS spans \
                 FROM spans WHERE service_name = '{service}'{} \
                 GROUP BY 1, 2 ORDER BY spans DESC, name, kind",
                bound("start_time")
            )));
            let path = format!("/api/v1/services/{service}/operations?{query}");
            assert_listed(seam, phase, (&path, "operations"), &want);
        }

        let on_demand = "(cold_start AND CAST(cold_start_type AS VARCHAR) = 'on_demand')";
        let typed = |t: &str| {
            format!(
                "sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = '{t}' THEN 1 ELSE 0 END)"
            )
        };
        let functions = seam.sql(&format!(
            "SELECT CAST(service_name AS VARCHAR) AS function, CAST(platform AS VARCHAR) AS platform, \
                    count(*) AS invocations, sum(CASE WHEN {on_demand} THEN 1 ELSE 0 END) AS cold_starts, \
                    {} AS proactive, {} AS provisioned, {} AS snapstart, \
                    {} AS init_p50_ns, {} AS init_p95_ns, {} AS cold_p50_ns, {} AS warm_p50_ns \
             FROM spans WHERE platform = 'faas' AND (faas_trigger IS NOT NULL \
                   OR faas_invocation_id IS NOT NULL OR kind = 'server' \
                   OR (kind = 'consumer' AND parent_span_id IS NULL)) \
               AND (cold_start_source IS NULL OR CAST(cold_start_source AS VARCHAR) <> 'in_invocation'){} \
             GROUP BY 1, 2 ORDER BY 1, 2",
            typed("proactive"),
            typed("provisioned"),
            typed("snapstart"),
            pct(0.5, "init_duration_ns"),
            pct(0.95, "init_duration_ns"),
            pct(0.5, &format!("CASE WHEN {on_demand} THEN duration_ns END")),
            pct(0.5, "CASE WHEN cold_start THEN NULL ELSE duration_ns END"),
            bound("start_time")
        ));
        let want = rows(&functions);
        assert!(
            start.is_some() || !want.is_empty(),
            "{phase}: invocations were sent"
        );
        let path = format!("/api/v1/cold-starts?{query}");
        assert_listed(seam, phase, (&path, "functions"), &want);
    }
}

/// A trace by id and a flow by id answer what SQL over the tables does:
/// the same spans in the same order, with the same read-time columns
/// (flow, cold start), and the same boundaries.
fn compare_lookups(seam: &Seam, phase: &str) {
    let column = |answer: &Json, keys: &[&str]| -> Vec<Vec<Json>> {
        let list = answer.as_array().cloned().unwrap_or_default();
        (list.iter())
            .map(|r| keys.iter().map(|k| r[*k].clone()).collect())
            .collect()
    };
    let sql_rows =
        |sql: &str| Json::Array(rows(&seam.sql(sql)).into_iter().map(Json::Object).collect());
    let span_keys = ["span_id", "flow_id", "cold_start", "name", "service_name"];
    let hop_keys = [
        "producer_span_id",
        "consumer_span_id",
        "flow_id",
        "latency_ns",
    ];
    // Traces of multi-trace flows, and as many traces alone.
    let multi = rows(&seam.sql(
        "SELECT trace_id FROM spans WHERE flow_id <> trace_id GROUP BY trace_id ORDER BY trace_id LIMIT 20",
    ));
    let single = rows(&seam.sql(
        "SELECT trace_id FROM spans WHERE flow_id = trace_id GROUP BY trace_id ORDER BY trace_id LIMIT 20",
    ));
    assert!(!multi.is_empty() && !single.is_empty(), "{phase}");
    for row in multi.iter().chain(&single) {
        let id = row["trace_id"].as_str().unwrap();
        // The spans `path` answers are those of `members`, as SQL reads them.
        let spans_match = |path: String, members: &str| {
            let (status, answer) = seam.get(&path);
            assert_eq!(status, 200, "{phase}: {answer}");
            let want = sql_rows(&format!(
                "SELECT * FROM spans WHERE trace_id IN ({members}) ORDER BY start_time, span_id"
            ));
            let got = column(&answer["spans"], &span_keys);
            assert_eq!(got, column(&want, &span_keys), "{phase}: {path}");
            answer
        };
        spans_match(format!("/api/v1/traces/{id}"), &format!("'{id}'"));
        let (_, flow) = seam.get(&format!("/api/v1/traces/{id}/flow"));
        let members: Vec<String> = (flow["trace_ids"].as_array().unwrap().iter())
            .map(|t| format!("'{}'", t.as_str().unwrap()))
            .collect();
        let members = members.join(", ");
        let flow = spans_match(format!("/api/v1/traces/{id}/flow"), &members);
        let want = sql_rows(&format!(
            "SELECT * FROM boundaries WHERE producer_trace_id IN ({members}) \
             OR consumer_trace_id IN ({members}) \
             ORDER BY consumer_time, producer_span_id, consumer_span_id"
        ));
        assert_eq!(
            column(&flow["boundaries"], &hop_keys),
            column(&want, &hop_keys),
            "{phase}: boundaries of the flow of {id}"
        );
    }
}

fn compare(seam: &Seam, phase: &str) {
    let now = now_ns();
    compare_lookups(seam, phase);
    compare_flows(seam, phase, now);
    compare_reports(seam, phase, now);
    let (spans, flagged) = full_scan(seam);
    assert!(!flagged.is_empty(), "{phase}: some hops are slow");
    // Ranges that start after every span did: only the traces still
    // running reach into them.
    let after = spans.iter().map(|s| s.start).max().unwrap() + 1;
    let late = ["", "&flagged=true", "&cold_start=true", "&errors=false"]
        .map(|filter| format!("start={after}{filter}"));
    for query in queries(now).into_iter().chain(late) {
        // The default range ends at the request: the reference's hour is
        // taken just before it, not when the comparison began seconds ago.
        let asked = now_ns();
        let got = answered(seam, &query);
        let want = reference(&spans, &flagged, &query, asked);
        assert_eq!(got, want, "{phase}: search?{query}");
    }
}

#[test]
fn search_answers_as_a_full_scan_does() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let config = data.path().join("seam.yaml");
    // The flow index keeps fewer traces than are joined (60 in the first
    // batch), so the newest multi-trace flows are listed down to what was
    // forgotten and read in full below it; the other trace sets stay
    // whole.
    std::fs::write(
        &config,
        "storage:\n  seal_interval: 1s\ncorrelation:\n  trace_idle: 4s\n  max_indexed_traces: 56\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env = [("SEAM_DATA_DIR", data_dir)];

    let mut seam = Seam::start_with(&["--config", config], &env);
    let now = now_ns();
    send(&seam, &generate(1, 240, now), 1);
    assert!(seam.metric("seam_correlation_active_traces") > 0.0);
    compare(&seam, "summaries still active");
    // The comparison's queries waited for correlation to take in every
    // write.
    assert!(
        seam.metric("seam_correlation_flow_traces_forgotten_total") > 0.0,
        "the flow index is past its cap"
    );

    // Written to the table once quiet, then sealed.
    let wait = |done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !done() {
            assert!(Instant::now() < deadline, "{}", seam.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait(&|| seam.metric("seam_correlation_active_traces") == 0.0);
    // Every summary written is sealed (the seal may come with the write,
    // so a seal counted after it is not waited for).
    let written = seam.metric("seam_correlation_trace_summaries_total");
    assert!(written >= 240.0, "{written}");
    wait(&|| {
        seam.metric(r#"seam_store_hot_rows{table="traces"}"#) == 0.0
            && seam.metric(r#"seam_store_sealed_rows{table="traces"}"#) >= written
    });
    compare(&seam, "summaries written and sealed");

    // More traces, then a crash: these are in the log and the active
    // summaries only.
    send(&seam, &generate(2, 120, now), 2);
    seam.kill_9();
    let seam = Seam::start_with(&["--config", config], &env);
    compare(&seam, "after a restart");

    // A range that holds nothing is empty.
    let (status, body) =
        seam.get("/api/v1/search?start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00Z");
    assert_eq!(
        (status, body["traces"].clone()),
        (200, serde_json::json!([]))
    );
}

/// A flow whose member produced a message consumed by a trace the flow
/// could not take in (the merge was refused at `max_flow_traces`): the
/// flow by id still holds that boundary, though its consumer is outside.
#[test]
fn a_flow_by_id_holds_the_boundaries_that_leave_it() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("seam.yaml");
    std::fs::write(&config, "correlation:\n  max_flow_traces: 2\n").unwrap();
    let data_dir = data.path().join("data");
    let env = [("SEAM_DATA_DIR", data_dir.to_str().unwrap())];
    let seam = Seam::start_with(&["--config", config.to_str().unwrap()], &env);
    let now = now_ns();
    let messaging = |op: &str, id: &str| {
        vec![
            kv("messaging.system", "aws_sqs"),
            kv("messaging.operation", op),
            kv("messaging.destination.name", "orders"),
            kv("messaging.message.id", id),
        ]
    };
    let span = |trace: u8, span: u8, parent: Option<u8>, kind: i32, at: i64, attributes| Gen {
        trace: [trace; 16],
        span: [span; 8],
        parent: parent.map(|p| [p; 8]),
        service: SERVICES[usize::from(trace) % SERVICES.len()],
        name: format!("op-{span}"),
        kind,
        start: now - MIN + at * MS,
        end: now - MIN + at * MS + MS,
        error: false,
        attributes,
        instance: None,
    };
    let traces = vec![
        vec![
            span(0xa1, 1, None, 2, 0, vec![]),
            span(0xa1, 2, Some(1), 4, 1, messaging("publish", "m-1")),
        ],
        vec![
            span(0xb2, 3, None, 5, 10, messaging("process", "m-1")),
            span(0xb2, 4, Some(3), 4, 11, messaging("publish", "m-2")),
        ],
        vec![span(0xc3, 5, None, 5, 20, messaging("process", "m-2"))],
    ];
    // One trace at a time, in the order of their hops: the hop stitched
    // first joins its traces and the other meets the cap. In one request
    // the resources' order, and so which hop came first, was left to a
    // hash map's.
    for trace in &traces {
        send(&seam, std::slice::from_ref(trace), 7);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows(&seam.sql("SELECT count(*) AS n FROM boundaries"))[0]["n"] != 2 {
        assert!(Instant::now() < deadline, "{}", seam.logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let hex = |b: u8| format!("{b:02x}").repeat(16);
    let flow = |trace: u8| {
        let (status, flow) = seam.get(&format!("/api/v1/traces/{}/flow", hex(trace)));
        assert_eq!(status, 200, "{flow}");
        let hops: BTreeSet<(String, String)> = (flow["boundaries"].as_array().unwrap().iter())
            .map(|b| {
                let end = |k: &str| b[k].as_str().unwrap()[..2].to_owned();
                (end("producer_trace_id"), end("consumer_trace_id"))
            })
            .collect();
        (flow["trace_ids"].clone(), hops)
    };
    let pair = |p: &str, c: &str| (p.to_owned(), c.to_owned());
    assert_eq!(
        flow(0xa1),
        (
            serde_json::json!([hex(0xa1), hex(0xb2)]),
            BTreeSet::from([pair("a1", "b2"), pair("b2", "c3")])
        ),
        "the second hop was refused as a join, not as a boundary"
    );
    assert_eq!(
        flow(0xc3),
        (
            serde_json::json!([hex(0xc3)]),
            BTreeSet::from([pair("b2", "c3")])
        )
    );
}
