//! Pushing back instead of falling over: above `limits.memory` every export
//! is refused with the codes OTLP clients retry (gRPC `RESOURCE_EXHAUSTED`
//! with `RetryInfo`, HTTP 429 with `Retry-After`) and nothing is stored;
//! oversized attributes are cut and counted, never silently.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use seam_integration_tests::reqwest::blocking_client;
use seam_integration_tests::{Seam, rows};

use crate::common::{RpcStatus, config_file as config, kv, request};

#[test]
fn above_the_memory_limit_exports_are_refused_as_retryable() {
    // Any running server is above one mebibyte.
    let (_dir, path) = config("limits:\n  memory: 1 MiB\n");
    let seam = Seam::start_with(&["--config", &path], &[]);

    let answer = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/x-protobuf")
        .body(request(1, 5, "flood").encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers["retry-after"], "1");
    let status = RpcStatus::decode(answer.bytes()).unwrap();
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");
    assert!(
        status.message.contains("memory limit"),
        "{}",
        status.message
    );
    assert_eq!(
        status.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );

    let url = seam.grpc_url();
    let refused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let mut client = TraceServiceClient::connect(url).await.unwrap();
            client.export(request(2, 5, "flood")).await.unwrap_err()
        });
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    let details = RpcStatus::decode(refused.details()).unwrap();
    assert_eq!(
        details.details[0].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );

    // Nothing was stored, and the server still answers queries.
    let stored = rows(&seam.sql("SELECT count(*) AS n FROM spans"));
    assert_eq!(stored[0]["n"], 0);
    let (_, metrics) = seam.get("/metrics");
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("seam_receiver_refused_overloaded_total 2"),
        "{metrics}"
    );
}

#[test]
fn oversized_attributes_are_cut_and_counted() {
    let (_dir, path) =
        config("limits:\n  max_attribute_value_length: 16\n  max_attributes_per_span: 2\n");
    let seam = Seam::start_with(&["--config", &path], &[]);
    let mut req = request(3, 1, "big");
    let span = &mut req.resource_spans[0].scope_spans[0].spans[0];
    span.attributes = vec![
        kv("payload", &"x".repeat(10_000)),
        kv("kept", "ok"),
        kv("dropped", "past the count"),
    ];
    let answer = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let stored = rows(&seam.sql(
        "SELECT length(attributes['payload']) AS len, attributes['kept'] AS kept, attributes['dropped'] AS dropped \
         FROM spans WHERE service_name = 'big'",
    ));
    assert_eq!(stored[0]["len"], 16);
    assert_eq!(stored[0]["kept"], "ok");
    assert!(stored[0]["dropped"].is_null());
    let (_, metrics) = seam.get("/metrics");
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("seam_receiver_attributes_truncated_total 2"),
        "{metrics}"
    );
}

/// More load than one turn at a time can take: every answer is a success
/// or a retryable refusal, and everything acknowledged is stored, once.
#[test]
fn a_flood_gets_only_successes_and_retryable_refusals() {
    let (_dir, path) =
        config("limits:\n  max_concurrent_exports: 1\n  queue_wait: 0ms\n  memory: 1 GiB\n");
    let seam = Seam::start_with(&["--config", &path], &[]);
    let url = seam.otlp_http_url();
    let senders: Vec<_> = (0..12u8)
        .map(|t| {
            let url = url.clone();
            std::thread::spawn(move || {
                let client = blocking_client();
                let (mut acked, mut refused) = (0u64, 0u64);
                for i in 0..15u8 {
                    // Distinct trace per request: seed from sender and round.
                    let seed = t.wrapping_mul(16).wrapping_add(i);
                    let mut req = request(seed, 200, "flood");
                    for span in &mut req.resource_spans[0].scope_spans[0].spans {
                        span.trace_id[0] = t;
                        span.trace_id[1] = i;
                    }
                    let answer = client
                        .post(url.clone())
                        .header("content-type", "application/x-protobuf")
                        .body(req.encode_to_vec())
                        .send()
                        .unwrap();
                    match answer.status().as_u16() {
                        200 => acked += 200,
                        429 => {
                            assert_eq!(answer.headers["retry-after"], "1");
                            refused += 1;
                        }
                        other => panic!("not a retryable answer: {other}"),
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    let (mut acked, mut refused) = (0, 0);
    for s in senders {
        let (a, r) = s.join().unwrap();
        acked += a;
        refused += r;
    }
    assert!(
        refused > 0,
        "twelve senders against one turn were never refused"
    );
    let stored = rows(&seam.sql(
        "SELECT count(*) AS n, count(DISTINCT trace_id || span_id) AS distinct_spans FROM spans WHERE service_name = 'flood'",
    ));
    assert_eq!(
        stored[0]["n"], acked,
        "every acknowledged span, and only those"
    );
    assert_eq!(stored[0]["distinct_spans"], acked, "none twice");
    let (_, metrics) = seam.get("/metrics");
    let metrics = metrics.as_str().unwrap().to_owned();
    let rss: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no RSS in {metrics}"));
    assert!(
        rss < 1024.0 * 1024.0 * 1024.0,
        "RSS {rss} above the 1 GiB limit"
    );
    eprintln!(
        "flood: {acked} spans acknowledged, {refused} requests refused (429), server RSS {:.0} MiB",
        rss / 1048576.0
    );
    assert!(
        metrics.contains(&format!("seam_receiver_refused_busy_total {refused}")),
        "{metrics}"
    );
}

/// Saturation: eight senders push large requests as fast as the server
/// answers, past what it can store under a small memory limit. Every
/// answer is a success or a retryable refusal, every acknowledged span is
/// stored once (while seals move rows to disk under the load), and resident
/// memory, sampled all along, stays near the limit (under 1.4x).
#[test]
fn saturation_stays_near_the_memory_limit_and_loses_nothing_acknowledged() {
    const LIMIT_MIB: f64 = 256.0;
    let (_dir, path) =
        config("limits:\n  memory: 256 MiB\nstorage:\n  seal_size: 32 MiB\n  seal_interval: 1s\n");
    let seam = Seam::start_with(&["--config", &path], &[]);
    let url = seam.otlp_http_url();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let padding = "x".repeat(200);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = {
        let stop = stop.clone();
        let seam_api = seam.api_url("/metrics");
        std::thread::spawn(move || {
            let client = blocking_client();
            let mut peak = 0f64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(r) = client.get(seam_api.clone()).send()
                    && let Ok(text) = r.text()
                    && let Some(rss) = text
                        .lines()
                        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                        .and_then(|v| v.parse::<f64>().ok())
                {
                    peak = peak.max(rss);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            peak
        })
    };
    let started = std::time::Instant::now();
    let senders: Vec<_> = (0..8u8)
        .map(|t| {
            let (url, padding) = (url.clone(), padding.clone());
            std::thread::spawn(move || {
                let client = blocking_client();
                let (mut acked, mut refused) = (0u64, std::collections::BTreeMap::new());
                let mut round = 0u32;
                while started.elapsed() < std::time::Duration::from_secs(8) {
                    round += 1;
                    let mut req = request(t, 500, "saturation");
                    for (i, span) in req.resource_spans[0].scope_spans[0]
                        .spans
                        .iter_mut()
                        .enumerate()
                    {
                        span.trace_id[..4].copy_from_slice(&round.to_be_bytes());
                        span.start_time_unix_nano = now + i as u64;
                        span.end_time_unix_nano = now + i as u64 + 1_000;
                        for a in 0..10 {
                            span.attributes
                                .push(kv(&format!("app.field_{a}"), &padding));
                        }
                    }
                    let answer = client
                        .post(url.clone())
                        .header("content-type", "application/x-protobuf")
                        .body(req.encode_to_vec())
                        .send()
                        .unwrap();
                    match answer.status().as_u16() {
                        200 => acked += 500,
                        code @ (429 | 503) => {
                            assert!(answer.headers.contains_key("retry-after"));
                            *refused.entry(code).or_insert(0u64) += 1;
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        other => panic!("not a retryable answer: {other}"),
                    }
                }
                (acked, refused)
            })
        })
        .collect();
    let (mut acked, mut refused) = (0, std::collections::BTreeMap::new());
    for s in senders {
        let (a, r) = s.join().unwrap();
        acked += a;
        for (code, n) in r {
            *refused.entry(code).or_insert(0) += n;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak_mib = peak.join().unwrap() / 1048576.0;
    assert!(
        peak_mib > 0.0,
        "resident memory was never sampled from /metrics"
    );
    let stored = rows(&seam.sql(
        "SELECT count(*) AS n, count(DISTINCT trace_id || span_id) AS distinct_spans FROM spans WHERE service_name = 'saturation'",
    ));
    assert_eq!(
        stored[0]["n"], acked,
        "every acknowledged span, and only those"
    );
    assert_eq!(stored[0]["distinct_spans"], acked, "none twice");
    let seals = seam.metric("seam_store_seals_total");
    eprintln!(
        "saturation: {acked} spans acknowledged in 8 s, refused {refused:?}, {seals} seals, peak RSS {peak_mib:.0} MiB (limit {LIMIT_MIB} MiB)"
    );
    assert!(!refused.is_empty(), "the load never exceeded the limit");
    assert!(seals >= 1.0, "no seal under load:\n{}", seam.logs());
    // The limit gates admission on a 100 ms sample: what is already in
    // flight (at most max_concurrent_exports requests) and a seal in
    // progress can land on top. Measured peaks are about 1.2x; without
    // early seals under pressure they were 1.6x.
    assert!(
        peak_mib < LIMIT_MIB * 1.4,
        "peak RSS {peak_mib:.0} MiB, limit {LIMIT_MIB} MiB"
    );
}

/// Where resident memory cannot be read, the server says so at start and
/// serves, rather than refusing every export or silently enforcing
/// nothing. The test hides `/proc` from the server with a mount namespace
/// of its own (root on Linux; skipped elsewhere).
#[test]
fn where_resident_memory_cannot_be_read_the_server_says_so_at_start() {
    let hidden = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", "mount -t tmpfs none /proc"])
        .output();
    match hidden {
        Ok(out) if out.status.success() => {}
        other => {
            eprintln!(
                "skipping: cannot hide /proc in a mount namespace here (needs root on Linux): {other:?}"
            );
            return;
        }
    }
    let (_dir, path) = config("limits:\n  memory: 1 MiB\n");
    let wrapper = [
        "unshare",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs none /proc && exec \"$0\" \"$@\"",
    ];
    let seam = Seam::start_under(&wrapper, &["--config", &path], &[]);
    let logs = seam.logs();
    assert!(
        logs.contains("resident memory cannot be read on this system")
            && logs.contains("limits.memory is not enforced"),
        "{logs}"
    );
    let answer = blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/x-protobuf")
        .body(request(2, 5, "unmeasured").encode_to_vec())
        .send()
        .unwrap();
    assert_eq!(
        answer.status(),
        200,
        "an unread gauge is not a full one: {logs}"
    );
    assert_eq!(
        seam.sql("SELECT count(*) AS n FROM spans WHERE service_name = 'unmeasured'")["rows"][0][0],
        5
    );
}
