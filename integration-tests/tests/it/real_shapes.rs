//! The corpus of real span shapes (`fixtures/real/`, its README says the
//! format): each file's spans, as a real instrumentation sends them, go to
//! a fresh server over OTLP/HTTP JSON, and every verdict Seam reaches —
//! boundaries, orphans, flows, cold starts — must be the file's `expect`,
//! no more and no less.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use seam_integration_tests::reqwest::blocking_client;
use seam_integration_tests::{Seam, rows};

use crate::common::config_file;

/// Servers running at once: each fixture waits out a 2 s window, so a few
/// in parallel keep the whole corpus to seconds on two cores.
const PARALLEL: usize = 4;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/real")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Adds `base` to every span, event and link time: the files hold offsets.
fn shift_times(value: &mut Value, base: u64) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "startTimeUnixNano" | "endTimeUnixNano" | "timeUnixNano"
                ) {
                    let offset = match v {
                        Value::String(s) => s.parse::<u64>().expect("a time offset"),
                        Value::Number(n) => n.as_u64().expect("a time offset"),
                        _ => panic!("{key} is not a number"),
                    };
                    *v = Value::String((base + offset).to_string());
                } else {
                    shift_times(v, base);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, base)),
        _ => {}
    }
}

fn span_count(request: &Value) -> usize {
    let list = |v: &Value, key: &str| v[key].as_array().cloned().unwrap_or_default();
    list(request, "resourceSpans")
        .iter()
        .flat_map(|r| list(r, "scopeSpans"))
        .map(|s| list(&s, "spans").len())
        .sum()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// The rows of `sql`, each as the listed columns' text.
fn tuples(seam: &Seam, sql: &str, columns: &[&str]) -> BTreeSet<Vec<String>> {
    rows(&seam.sql(sql))
        .iter()
        .map(|r| columns.iter().map(|c| text(&r[*c])).collect())
        .collect()
}

fn expected(expect: &Value, key: &str, fields: &[&str]) -> BTreeSet<Vec<String>> {
    expect[key]
        .as_array()
        .unwrap_or_else(|| panic!("expect.{key} is a list"))
        .iter()
        .map(|e| fields.iter().map(|f| text(&e[*f])).collect())
        .collect()
}

/// What Seam answered for one fixture, in the shape of `expect`.
#[derive(Debug, PartialEq)]
struct Verdicts {
    boundaries: BTreeSet<Vec<String>>,
    orphans: BTreeSet<Vec<String>>,
    flows: BTreeSet<BTreeSet<String>>,
    cold_starts: BTreeSet<Vec<String>>,
    cold: BTreeSet<Vec<String>>,
}

const COLD_START_FIELDS: [&str; 6] = [
    "function",
    "invocations",
    "cold_starts",
    "proactive",
    "provisioned",
    "snapstart",
];

impl Verdicts {
    /// Each verdict as text, in the order of `WHAT` in [`check`].
    fn shown(&self) -> [String; 5] {
        [
            format!("{:?}", self.boundaries),
            format!("{:?}", self.orphans),
            format!("{:?}", self.flows),
            format!("{:?}", self.cold_starts),
            format!("{:?}", self.cold),
        ]
    }
}

fn want(expect: &Value) -> Verdicts {
    let flows = expect["flows"]
        .as_array()
        .expect("expect.flows is a list")
        .iter()
        .map(|g| {
            g.as_array()
                .expect("a flow is a list of trace ids")
                .iter()
                .map(text)
                .collect()
        })
        .collect();
    Verdicts {
        boundaries: expected(
            expect,
            "boundaries",
            &["producer", "consumer", "stitched_by", "kind"],
        ),
        orphans: expected(expect, "orphans", &["span", "kind"]),
        flows,
        cold_starts: expected(expect, "cold_starts", &COLD_START_FIELDS),
        cold: expected(expect, "cold", &["span", "type", "source"]),
    }
}

fn got(seam: &Seam) -> Verdicts {
    let boundaries = tuples(
        seam,
        "SELECT producer_span_id, consumer_span_id, stitched_by, kind FROM boundaries",
        &[
            "producer_span_id",
            "consumer_span_id",
            "stitched_by",
            "kind",
        ],
    );
    let orphans = tuples(
        seam,
        "SELECT span_id, kind FROM orphans",
        &["span_id", "kind"],
    );
    let mut flows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in rows(&seam.sql("SELECT DISTINCT trace_id, flow_id FROM spans")) {
        flows
            .entry(text(&r["flow_id"]))
            .or_default()
            .insert(text(&r["trace_id"]));
    }
    let (status, report) = seam.get("/api/v1/cold-starts");
    assert_eq!(status, 200, "{report}");
    let cold_starts = report["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .map(|f| COLD_START_FIELDS.iter().map(|k| text(&f[*k])).collect())
        .collect();
    let cold = tuples(
        seam,
        "SELECT span_id, CAST(cold_start_type AS VARCHAR) AS type, \
         CAST(cold_start_source AS VARCHAR) AS source FROM spans WHERE cold_start",
        &["span_id", "type", "source"],
    );
    Verdicts {
        boundaries,
        orphans,
        flows: flows.into_values().collect(),
        cold_starts,
        cold,
    }
}

/// Posts one fixture to a fresh server, its requests in the file's order
/// or the reverse, and returns what differs from its `expect`, empty when
/// everything holds.
fn check(path: &Path, reverse: bool) -> Vec<String> {
    let mut name = path.file_name().unwrap().to_string_lossy().into_owned();
    if reverse {
        name.push_str(" (requests in reverse)");
    }
    let fixture: Value = serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
    let want = want(&fixture["expect"]);
    let (_dir, config) = config_file("correlation:\n  window: 2s\n  sync_window: 2s\n");
    let seam = Seam::start_with(&["--config", &config], &[]);
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 60_000_000_000;
    let mut spans = 0;
    let mut requests: Vec<(usize, &Value)> = fixture["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .enumerate()
        .collect();
    if reverse {
        requests.reverse();
    }
    for (i, request) in requests {
        let mut request = request.clone();
        shift_times(&mut request, base);
        spans += span_count(&request);
        let r = blocking_client()
            .post(seam.otlp_http_url())
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&request).unwrap())
            .send()
            .expect("POST /v1/traces");
        let status = r.status().as_u16();
        let body = r.text().unwrap_or_default();
        assert_eq!(status, 200, "{name}: request {i} refused: {body}");
        assert!(
            !body.contains("rejected"),
            "{name}: request {i} had spans refused: {body}"
        );
    }
    // Every span stored and every half settled (stitched, or expired into
    // an orphan row when the window ran out); then the verdicts may still
    // be a tick behind, so they are read until they match or time is up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = rows(&seam.sql("SELECT count(*) AS n FROM spans"))[0]["n"]
            .as_u64()
            .unwrap_or(0);
        let pending = seam.metric("seam_correlation_pending_halves");
        if stored as usize >= spans && pending == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: {stored} of {spans} spans stored, {pending} halves pending after 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let settle = Instant::now() + Duration::from_secs(3);
    let verdicts = loop {
        let verdicts = got(&seam);
        if verdicts == want || Instant::now() > settle {
            break verdicts;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    const WHAT: [&str; 5] = [
        "boundaries (producer, consumer, stitched_by, kind)",
        "orphans (span, kind)",
        "flows",
        "cold-starts report (function, invocations, cold_starts, proactive, provisioned, snapstart)",
        "cold spans (span, type, source)",
    ];
    let (got, want) = (verdicts.shown(), want.shown());
    WHAT.iter()
        .zip(got.iter().zip(&want))
        .filter(|(_, (got, want))| got != want)
        .map(|(what, (got, want))| format!("{name}: {what}\n    got:  {got}\n    want: {want}"))
        .collect()
}

#[test]
fn every_real_shape_gets_the_verdicts_its_users_expect() {
    let files = fixtures();
    assert!(files.len() >= 20, "the corpus has {} files", files.len());
    // Every verdict is the same whatever order the spans arrive in.
    let runs: Vec<(PathBuf, bool)> = files
        .iter()
        .flat_map(|f| [(f.clone(), false), (f.clone(), true)])
        .collect();
    let queue = Mutex::new(runs);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while let Some((path, reverse)) = queue.lock().unwrap().pop() {
                    // A fixture that panics is one failure among the
                    // others, not the end of the run.
                    let wrong =
                        std::panic::catch_unwind(|| check(&path, reverse)).unwrap_or_else(|e| {
                            let why = e
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                                .unwrap_or_default();
                            vec![format!("{}: {why}", path.display())]
                        });
                    failures.lock().unwrap().extend(wrong);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} verdicts differ from the fixtures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
