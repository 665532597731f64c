//! Behaviour of the whole stage, driven through [`Correlator`] as the
//! ingest path drives it: rows in, tables and views out.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use proptest::prelude::*;
use seam_model::{
    Attributes, ColdStartSource, ColdStartType, LinkRow, Platform, SpanId, SpanKind, SpanRow,
    TraceId,
};
use seam_store::Table;

use super::*;

static NO_ATTRS: Attributes<'static> = Vec::new();
const S: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;
const T0: i64 = 1_760_000_000 * S;

fn tid(n: u64) -> TraceId {
    let mut b = [0u8; 16];
    b[8..].copy_from_slice(&n.to_be_bytes());
    b[0] = 0x0a;
    TraceId(b)
}

fn sid(n: u64) -> SpanId {
    SpanId((n | 1 << 60).to_be_bytes())
}

/// A span with everything unset but ids and times.
fn span(trace: u64, id: u64, start: i64, end: i64) -> SpanRow<'static> {
    SpanRow {
        name: Cow::Borrowed("op"),
        kind: SpanKind::Internal,
        service_name: Cow::Borrowed("svc"),
        platform: Platform::Kubernetes,
        ..SpanRow::new(tid(trace), sid(id), start, end, &NO_ATTRS)
    }
}

fn producer(
    trace: u64,
    id: u64,
    service: &'static str,
    queue: &'static str,
    end: i64,
) -> SpanRow<'static> {
    let mut s = span(trace, id, end - 5 * MS, end);
    s.kind = SpanKind::Producer;
    s.service_name = Cow::Borrowed(service);
    s.messaging_system = Some(Cow::Borrowed("aws_sqs"));
    s.messaging_operation = Some(Cow::Borrowed("send"));
    s.messaging_destination = Some(Cow::Borrowed(queue));
    s
}

fn consumer(
    trace: u64,
    id: u64,
    service: &'static str,
    queue: &'static str,
    start: i64,
) -> SpanRow<'static> {
    let mut s = span(trace, id, start, start + 20 * MS);
    s.kind = SpanKind::Consumer;
    s.service_name = Cow::Borrowed(service);
    s.platform = Platform::Faas;
    s.messaging_system = Some(Cow::Borrowed("aws_sqs"));
    s.messaging_operation = Some(Cow::Borrowed("process"));
    s.messaging_destination = Some(Cow::Borrowed(queue));
    s
}

fn link(mut s: SpanRow<'static>, trace: u64, id: u64) -> SpanRow<'static> {
    s.links.push(LinkRow {
        trace_id: tid(trace),
        span_id: sid(id),
        trace_state: Cow::Borrowed(""),
        attributes: Vec::new(),
    });
    s
}

fn with_attr(mut s: SpanRow<'static>, key: &'static str, value: &str) -> SpanRow<'static> {
    s.attributes
        .push((Cow::Borrowed(key), Cow::Owned(value.to_owned())));
    s
}

/// A correlator with the tables the store would append its rows to.
struct Tested {
    correlator: Correlator,
    boundaries: Table,
    orphans: Table,
}

impl std::ops::Deref for Tested {
    type Target = Correlator;
    fn deref(&self) -> &Correlator {
        &self.correlator
    }
}

impl Tested {
    fn keep(&self, out: Derived) {
        for (table, batch) in out.into_rows() {
            match table {
                BOUNDARIES => self.boundaries.append(batch).unwrap(),
                ORPHANS => self.orphans.append(batch).unwrap(),
                other => panic!("rows for {other}"),
            }
        }
    }

    fn tick(&self, now: i64) -> Result<(), CorrelateError> {
        let mut out = Derived::default();
        self.correlator.tick(now, &mut out)?;
        self.keep(out);
        Ok(())
    }
}

fn correlator(config: CorrelationConfig) -> Tested {
    Tested {
        correlator: Correlator::new(config),
        boundaries: Table::new(boundaries_schema(), boundary_col::CONSUMER_TIME),
        orphans: Table::new(orphans_schema(), orphan_col::TIME),
    }
}

fn feed(c: &Tested, rows: &[SpanRow<'static>], now: i64) {
    let observed = rows.iter().map(|r| c.extractor().observe(r)).collect();
    let mut out = Derived::default();
    c.observe(observed, now, &mut out).unwrap();
    c.keep(out);
}

/// One boundary row as text, for comparisons.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    kind: String,
    stitched_by: String,
    producer: String,
    consumer: String,
    key: Option<String>,
    latency_ns: i64,
    flagged: bool,
    clock_skew: bool,
    flow_id: String,
    system: Option<String>,
    deliveries: i64,
    redelivery: bool,
}

fn text(b: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let c = b.column_by_name(name).unwrap().as_string::<i32>();
    c.is_valid(i).then(|| c.value(i).to_owned())
}

fn boundary_rows(c: &Tested) -> Vec<Row> {
    let batches: Vec<RecordBatch> = c
        .boundaries
        .snapshot()
        .segments
        .iter()
        .map(|s| s.batch.clone())
        .collect();
    let mut rows = Vec::new();
    for b in c.view().resolve_boundaries(&batches, &batches).unwrap() {
        for i in 0..b.num_rows() {
            let int = |n| {
                b.column_by_name(n)
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .value(i)
            };
            let boolean = |n| b.column_by_name(n).unwrap().as_boolean().value(i);
            rows.push(Row {
                kind: text(&b, "kind", i).unwrap(),
                stitched_by: text(&b, "stitched_by", i).unwrap(),
                producer: format!(
                    "{}/{}",
                    text(&b, "producer_trace_id", i).unwrap(),
                    text(&b, "producer_span_id", i).unwrap()
                ),
                consumer: format!(
                    "{}/{}",
                    text(&b, "consumer_trace_id", i).unwrap(),
                    text(&b, "consumer_span_id", i).unwrap()
                ),
                key: text(&b, "correlation_key", i),
                latency_ns: int("latency_ns"),
                flagged: boolean("flagged"),
                clock_skew: boolean("clock_skew"),
                flow_id: text(&b, "flow_id", i).unwrap(),
                system: text(&b, "system", i),
                deliveries: int("deliveries"),
                redelivery: boolean("redelivery"),
            });
        }
    }
    rows.sort();
    rows
}

fn orphan_rows(c: &Tested) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for s in c.orphans.snapshot().segments.iter() {
        let b = &s.batch;
        for i in 0..b.num_rows() {
            rows.push((
                text(b, "kind", i).unwrap(),
                text(b, "service_name", i).unwrap(),
                text(b, "span_id", i).unwrap(),
            ));
        }
    }
    rows.sort();
    rows
}

#[test]
fn a_link_stitches_a_queue_hop_with_its_dwell_time() {
    let c = correlator(CorrelationConfig::default());
    let end = T0 + 100 * MS;
    feed(&c, &[producer(1, 10, "checkout", "orders", end)], T0);
    feed(
        &c,
        &[link(
            consumer(2, 20, "invoice", "orders", end + 250 * MS),
            1,
            10,
        )],
        T0 + S,
    );
    let rows = boundary_rows(&c);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let b = &rows[0];
    assert_eq!((b.kind.as_str(), b.stitched_by.as_str()), ("async", "link"));
    assert_eq!(b.latency_ns, 250 * MS);
    assert!(!b.flagged && !b.clock_skew);
    assert_eq!(b.flow_id, tid(1).to_hex());
    assert_eq!(b.system.as_deref(), Some("aws_sqs"));
    assert_eq!(c.view().flow_id(&tid(2)), tid(1));
    assert_eq!(c.view().flow_members(&tid(2)), vec![tid(1), tid(2)]);
}

#[test]
fn parent_beats_correlation_and_skew_is_never_negative() {
    let c = correlator(CorrelationConfig::default());
    let end = T0 + 100 * MS;
    let p = with_attr(
        producer(1, 10, "orders-api", "payments", end),
        "messaging.message.id",
        "m-1",
    );
    let mut k = with_attr(
        consumer(1, 11, "payment-worker", "payments", end - 300 * MS),
        "messaging.message.id",
        "m-1",
    );
    k.parent_span_id = Some(sid(10));
    // Consumer first: the label must not depend on the order.
    feed(&c, &[k], T0);
    feed(&c, &[p], T0 + S);
    let rows = boundary_rows(&c);
    assert_eq!(rows.len(), 1, "one pair, stitched once: {rows:?}");
    assert_eq!(rows[0].stitched_by, "parent");
    assert_eq!(rows[0].latency_ns, 0);
    assert!(rows[0].clock_skew);
}

#[test]
fn lost_context_is_stitched_by_a_correlation_key_in_either_spelling() {
    let c = correlator(CorrelationConfig::default());
    let end = T0;
    feed(
        &c,
        &[with_attr(
            producer(1, 10, "reports", "report-requests", end),
            "messaging.message_id",
            "4523198744123",
        )],
        T0,
    );
    feed(
        &c,
        &[with_attr(
            consumer(2, 20, "renderer", "report-requests", end + 2 * S),
            "messaging.message.id",
            "4523198744123",
        )],
        T0,
    );
    let rows = boundary_rows(&c);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].stitched_by, "correlation");
    assert_eq!(rows[0].key.as_deref(), Some("messaging.message.id"));
    assert!(rows[0].flagged, "2 s is above the 1 s default threshold");
}

#[test]
fn thresholds_can_be_set_per_consumer_service() {
    let mut config = CorrelationConfig::default();
    config
        .latency_thresholds
        .insert("invoice".into(), Duration::from_secs(5).into());
    let c = correlator(config);
    feed(&c, &[producer(1, 10, "checkout", "orders", T0)], T0);
    feed(
        &c,
        &[link(
            consumer(2, 20, "invoice", "orders", T0 + 3 * S),
            1,
            10,
        )],
        T0,
    );
    feed(
        &c,
        &[link(consumer(3, 30, "mailer", "orders", T0 + 3 * S), 1, 10)],
        T0,
    );
    let rows = boundary_rows(&c);
    assert_eq!(rows.len(), 2);
    let flagged_for = |trace: u64| {
        let consumer = rows
            .iter()
            .find(|r| r.consumer.starts_with(&tid(trace).to_hex()))
            .unwrap_or_else(|| panic!("no boundary into trace {trace}: {rows:?}"));
        consumer.flagged
    };
    assert!(!flagged_for(2), "invoice: 3 s is under its own 5 s");
    assert!(flagged_for(3), "mailer: 3 s is over the 1 s default");
}

#[test]
fn every_link_of_a_batch_is_a_boundary_and_one_flow_holds_them() {
    let c = correlator(CorrelationConfig::default());
    let ps: Vec<_> = (0..3)
        .map(|i| producer(1 + i, 10 + i, "inventory", "stock", T0))
        .collect();
    let mut k = consumer(9, 90, "projector", "stock", T0 + 50 * MS);
    for i in 0..3 {
        k = link(k, 1 + i, 10 + i);
    }
    feed(&c, &[k], T0);
    feed(&c, &ps, T0);
    assert_eq!(boundary_rows(&c).len(), 3);
    assert_eq!(c.view().flow_members(&tid(9)).len(), 4);
}

#[test]
fn a_sync_call_is_a_boundary_only_across_platforms() {
    let c = correlator(CorrelationConfig::default());
    let mut client = span(1, 10, T0, T0 + 100 * MS);
    client.kind = SpanKind::Client;
    client.service_name = Cow::Borrowed("checkout");
    let mut fn_server = span(1, 11, T0 + 30 * MS, T0 + 90 * MS);
    fn_server.kind = SpanKind::Server;
    fn_server.platform = Platform::Faas;
    fn_server.parent_span_id = Some(sid(10));
    let mut k8s_client = span(1, 12, T0 + 40 * MS, T0 + 50 * MS);
    k8s_client.kind = SpanKind::Client;
    let mut k8s_server = span(1, 13, T0 + 41 * MS, T0 + 49 * MS);
    k8s_server.kind = SpanKind::Server;
    k8s_server.parent_span_id = Some(sid(12));
    feed(&c, &[fn_server, k8s_server, client, k8s_client], T0);
    let rows = boundary_rows(&c);
    assert_eq!(rows.len(), 1, "k8s → k8s is ordinary tracing: {rows:?}");
    assert_eq!(
        (rows[0].kind.as_str(), rows[0].stitched_by.as_str()),
        ("sync", "parent")
    );
    assert_eq!(rows[0].latency_ns, 30 * MS, "server start − client start");
}

#[test]
fn re_sent_spans_are_not_stitched_twice() {
    let c = correlator(CorrelationConfig::default());
    let p = producer(1, 10, "checkout", "orders", T0);
    let k = link(consumer(2, 20, "invoice", "orders", T0 + MS), 1, 10);
    feed(&c, &[p.clone(), k.clone()], T0);
    feed(&c, &[k, p], T0 + S);
    assert_eq!(boundary_rows(&c).len(), 1);
    assert_eq!(c.stats().duplicates, 2);
}

#[test]
fn redeliveries_are_counted_on_the_boundary() {
    let c = correlator(CorrelationConfig::default());
    feed(&c, &[producer(1, 10, "api", "jobs", T0)], T0);
    feed(
        &c,
        &[link(consumer(3, 30, "runner", "jobs", T0 + 30 * S), 1, 10)],
        T0,
    );
    feed(
        &c,
        &[link(consumer(2, 20, "runner", "jobs", T0 + S), 1, 10)],
        T0,
    );
    let rows = boundary_rows(&c);
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.deliveries == 2));
    let redelivered: Vec<&Row> = rows.iter().filter(|r| r.redelivery).collect();
    assert_eq!(redelivered.len(), 1);
    assert!(
        redelivered[0].consumer.starts_with(&tid(3).to_hex()),
        "the later delivery"
    );
}

#[test]
fn unmatched_halves_become_orphans_when_the_window_runs_out() {
    let c = correlator(CorrelationConfig {
        window: Duration::from_secs(60),
        ..CorrelationConfig::default()
    });
    feed(&c, &[producer(1, 10, "checkout", "refunds", T0)], T0);
    feed(&c, &[consumer(2, 20, "audit-log", "audit", T0)], T0);
    feed(&c, &[producer(3, 30, "checkout", "orders", T0)], T0);
    feed(
        &c,
        &[link(consumer(4, 40, "invoice", "orders", T0), 3, 30)],
        T0,
    );
    c.tick(T0 + 59 * S).unwrap();
    assert!(orphan_rows(&c).is_empty(), "the window has not run out");
    c.tick(T0 + 61 * S).unwrap();
    let orphans = orphan_rows(&c);
    assert_eq!(
        orphans,
        vec![
            ("orphan".into(), "audit-log".into(), sid(20).to_hex()),
            ("unconsumed".into(), "checkout".into(), sid(10).to_hex()),
        ]
    );
    // A late consumer no longer meets the expired producer.
    feed(
        &c,
        &[link(consumer(5, 50, "late", "refunds", T0), 1, 10)],
        T0 + 62 * S,
    );
    assert_eq!(boundary_rows(&c).len(), 1);
}

#[test]
fn the_state_is_capped_and_eviction_is_counted() {
    let c = correlator(CorrelationConfig {
        max_pending: 10,
        ..CorrelationConfig::default()
    });
    for i in 0..25 {
        feed(&c, &[producer(100 + i, 1, "p", "q", T0)], T0 + i as i64);
    }
    let stats = c.stats();
    assert_eq!(stats.pending_halves, 10);
    assert_eq!(stats.evicted, 15);
    c.tick(T0 + 7200 * S).unwrap();
    assert_eq!(
        c.stats().unconsumed,
        10,
        "evicted halves are not reported as unconsumed"
    );
}

#[test]
fn shared_values_join_flows_without_an_edge_and_placeholders_do_not() {
    let c = correlator(CorrelationConfig::default());
    feed(
        &c,
        &[with_attr(span(1, 10, T0, T0), "correlation_id", "order-7")],
        T0,
    );
    feed(
        &c,
        &[with_attr(span(2, 20, T0, T0), "correlation_id", "order-7")],
        T0,
    );
    feed(
        &c,
        &[with_attr(span(3, 30, T0, T0), "correlation_id", "null")],
        T0,
    );
    feed(
        &c,
        &[with_attr(span(4, 40, T0, T0), "correlation_id", "null")],
        T0,
    );
    assert_eq!(c.view().flow_id(&tid(2)), tid(1));
    assert_eq!(c.view().flow_id(&tid(4)), tid(4));
    assert!(boundary_rows(&c).is_empty());
}

fn invocation(
    trace: u64,
    id: u64,
    service: &'static str,
    instance: &'static str,
    start: i64,
) -> SpanRow<'static> {
    let mut s = span(trace, id, start, start + 100 * MS);
    s.kind = SpanKind::Server;
    s.platform = Platform::Faas;
    s.service_name = Cow::Borrowed(service);
    s.instance = Some(Cow::Borrowed(instance));
    s.faas_trigger = Some(Cow::Borrowed("http"));
    s
}

fn init_span(
    trace: u64,
    id: u64,
    instance: &'static str,
    start: i64,
    end: i64,
) -> SpanRow<'static> {
    let mut s = span(trace, id, start, end);
    s.platform = Platform::Faas;
    s.service_name = Cow::Borrowed("resizer");
    s.instance = Some(Cow::Borrowed(instance));
    s.name = Cow::Borrowed("Initialization");
    s
}

fn verdict(c: &Tested, trace: u64, id: u64) -> Option<coldstart::Verdict> {
    c.view().verdict(&SpanKey::new(tid(trace), sid(id)))
}

#[test]
fn an_init_span_makes_the_next_invocation_cold_whichever_arrives_first() {
    let c = correlator(CorrelationConfig::default());
    feed(&c, &[invocation(1, 10, "resizer", "i-1", T0 + S)], T0);
    feed(&c, &[invocation(2, 20, "resizer", "i-1", T0 + 5 * S)], T0);
    assert_eq!(
        verdict(&c, 1, 10).unwrap().source,
        Some(ColdStartSource::FirstInvocation)
    );
    feed(
        &c,
        &[init_span(1, 11, "i-1", T0 + 150 * MS, T0 + 950 * MS)],
        T0,
    );
    let v = verdict(&c, 1, 10).unwrap();
    assert_eq!(v.source, Some(ColdStartSource::InitSpan));
    assert_eq!(v.kind, Some(ColdStartType::OnDemand));
    assert_eq!(v.init_duration_ns, Some(800 * MS));
    assert!(
        verdict(&c, 2, 20).is_none(),
        "only the first invocation is cold"
    );
}

#[test]
fn an_init_long_before_the_first_invocation_is_proactive() {
    let c = correlator(CorrelationConfig::default());
    feed(
        &c,
        &[
            init_span(1, 11, "i-2", T0, T0 + S),
            invocation(1, 10, "resizer", "i-2", T0 + 31 * S),
        ],
        T0,
    );
    assert_eq!(
        verdict(&c, 1, 10).unwrap().kind,
        Some(ColdStartType::Proactive)
    );
}

#[test]
fn the_earliest_invocation_of_an_instance_is_the_cold_one() {
    let c = correlator(CorrelationConfig::default());
    feed(&c, &[invocation(2, 20, "fresh", "i-3", T0 + 5 * S)], T0);
    feed(&c, &[invocation(1, 10, "fresh", "i-3", T0 + S)], T0);
    assert!(verdict(&c, 2, 20).is_none());
    assert!(verdict(&c, 1, 10).unwrap().on_demand());
    let mut said_warm = invocation(3, 30, "steady", "i-4", T0);
    said_warm.cold_start = Some(false);
    feed(&c, &[said_warm], T0);
    assert!(
        verdict(&c, 3, 30).is_none(),
        "the span's own word is believed"
    );
}

#[test]
fn a_checkpoint_keeps_waiting_halves_flows_and_known_instances() {
    let config = CorrelationConfig::default();
    let before = correlator(config.clone());
    feed(&before, &[producer(1, 10, "checkout", "orders", T0)], T0);
    feed(&before, &[invocation(5, 50, "fresh", "i-9", T0)], T0);
    feed(
        &before,
        &[
            with_attr(span(6, 60, T0, T0), "correlation_id", "c"),
            with_attr(span(7, 70, T0, T0), "correlation_id", "c"),
        ],
        T0,
    );
    let captured = before.capture().unwrap();

    let after = correlator(config);
    after.restore_bytes(&captured, "the test's state").unwrap();
    feed(
        &after,
        &[link(consumer(2, 20, "invoice", "orders", T0 + S), 1, 10)],
        T0 + S,
    );
    feed(
        &after,
        &[invocation(8, 80, "fresh", "i-9", T0 + 9 * S)],
        T0 + S,
    );
    assert_eq!(boundary_rows(&after).len(), 1);
    assert_eq!(after.view().flow_id(&tid(7)), tid(6));
    // The joined traces by the start of the span that joined each, newest
    // first: the pair restored and the pair stitched after the restart
    // (the producer ended at T0, after 5 ms).
    let (joined, horizon) = after.view().joined_newest(None, 10).unwrap();
    assert_eq!(horizon, i64::MIN, "nothing forgotten");
    let want = vec![
        (tid(2), T0 + S),
        (tid(7), T0),
        (tid(6), T0),
        (tid(1), T0 - 5 * MS),
    ];
    assert_eq!(joined, want);
    assert!(verdict(&after, 5, 50).unwrap().cold, "verdicts survive");
    assert!(
        verdict(&after, 8, 80).is_none(),
        "a known instance is not cold again"
    );

    let err = correlator(CorrelationConfig::default())
        .restore_bytes(b"SEAMCORR garbage", "cut-7.state")
        .unwrap_err();
    assert!(err.to_string().contains("cut-7.state"), "{err}");
}

/// A Lambda's SQS `process` span, child of invocation span `parent` of
/// the same trace and instance, as the Node instrumentation makes it.
fn process_child(trace: u64, id: u64, parent: u64, start: i64) -> SpanRow<'static> {
    let mut s = invocation(trace, id, "worker", "i-7", start);
    s.kind = SpanKind::Consumer;
    s.parent_span_id = Some(sid(parent));
    s.faas_trigger = Some(Cow::Borrowed("pubsub"));
    s.end_time_unix_nano = start + 50 * MS;
    s
}

/// Whether the span was found to run inside another invocation.
fn nested(c: &Tested, trace: u64, id: u64) -> bool {
    verdict(c, trace, id).and_then(|v| v.source) == Some(ColdStartSource::InInvocation)
}

#[test]
fn a_span_inside_an_invocation_is_not_one_whichever_arrives_first() {
    let root = || invocation(1, 10, "worker", "i-7", T0);
    let child = || process_child(1, 11, 10, T0 + 10 * MS);
    for (first, second) in [(root(), child()), (child(), root())] {
        let c = correlator(CorrelationConfig::default());
        feed(&c, &[first], T0);
        feed(&c, &[second], T0 + S);
        let parent = verdict(&c, 1, 10).expect("the invocation is judged");
        assert!(parent.on_demand(), "{parent:?}");
        assert!(nested(&c, 1, 11), "the child is part of it");
        assert!(!verdict(&c, 1, 11).unwrap().cold);
    }
    // Another trace, or a span outside the parent's time, is an
    // invocation of its own.
    let c = correlator(CorrelationConfig::default());
    let mut late = process_child(1, 12, 10, T0 + 200 * MS);
    late.end_time_unix_nano = T0 + 300 * MS;
    feed(&c, &[root(), late], T0);
    assert!(!nested(&c, 1, 12));
}

#[test]
fn a_child_arriving_after_a_restart_still_finds_its_invocation() {
    let before = correlator(CorrelationConfig::default());
    feed(&before, &[invocation(1, 10, "worker", "i-7", T0)], T0);
    let captured = before.capture().unwrap();
    let after = correlator(CorrelationConfig::default());
    after.restore_bytes(&captured, "state").unwrap();
    feed(&after, &[process_child(1, 11, 10, T0 + 10 * MS)], T0 + S);
    assert!(nested(&after, 1, 11));
    // Past the horizon, it is forgotten.
    let later = T0 + nesting::HORIZON_NS + 120 * S;
    after.tick(later).unwrap();
    feed(&after, &[process_child(1, 12, 10, T0 + 20 * MS)], later);
    assert!(!nested(&after, 1, 12));
}

#[test]
fn the_enclosing_invocation_takes_the_verdict_its_child_had() {
    // Same start: the child's key sorts first, yet the parent is judged.
    let root = invocation(1, 20, "worker", "i-7", T0);
    let mut child = process_child(1, 11, 20, T0);
    child.end_time_unix_nano = T0 + 50 * MS;
    let c = correlator(CorrelationConfig::default());
    feed(&c, std::slice::from_ref(&child), T0);
    assert!(
        verdict(&c, 1, 11).unwrap().on_demand(),
        "alone, it is the invocation"
    );
    feed(&c, std::slice::from_ref(&root), T0 + S);
    assert!(verdict(&c, 1, 20).unwrap().on_demand());
    assert!(nested(&c, 1, 11));
    // An init span arriving later judges the parent, not the child again.
    let mut init = init_span(1, 21, "i-7", T0 - S, T0 - MS);
    init.service_name = Cow::Borrowed("worker");
    feed(&c, &[init], T0 + S);
    assert!(nested(&c, 1, 11));
    assert_eq!(
        verdict(&c, 1, 20).unwrap().source,
        Some(ColdStartSource::InitSpan)
    );

    // Child before a restart, parent after: the instance is known, but
    // its cold start moves to the parent rather than vanishing.
    let before = correlator(CorrelationConfig::default());
    feed(&before, &[child], T0);
    let after = correlator(CorrelationConfig::default());
    after
        .restore_bytes(&before.capture().unwrap(), "state")
        .unwrap();
    feed(&after, &[root], T0 + S);
    assert!(nested(&after, 1, 11));
    assert!(verdict(&after, 1, 20).unwrap().on_demand());
}

#[test]
fn pods_are_not_held_for_nesting_and_markers_never_push_out_verdicts() {
    let c = correlator(CorrelationConfig {
        cold_start: config::ColdStartConfig {
            max_instances: 2,
            ..Default::default()
        },
        ..Default::default()
    });
    let mut pod = invocation(9, 90, "api", "pod-1", T0);
    pod.platform = Platform::Kubernetes;
    let mut pod_child = process_child(9, 91, 90, T0 + MS);
    pod_child.platform = Platform::Kubernetes;
    feed(&c, &[pod, pod_child], T0);
    assert!(!nested(&c, 9, 91), "pods are judged as before");
    feed(&c, &[invocation(1, 10, "worker", "i-7", T0)], T0);
    for (trace, id) in [(1, 11), (1, 12), (1, 13)] {
        feed(&c, &[process_child(trace, id, 10, T0 + MS)], T0);
    }
    assert!(
        verdict(&c, 1, 10).unwrap().on_demand(),
        "markers have a cap of their own"
    );
}

#[test]
fn provisioned_instances_are_typed_by_their_resource_alone() {
    let c = correlator(CorrelationConfig::default());
    let mut first = invocation(1, 10, "ledger", "i-p", T0);
    first.initialization_type = Some(ColdStartType::Provisioned);
    feed(&c, &[first], T0);
    let v = verdict(&c, 1, 10).unwrap();
    assert!(v.cold && !v.on_demand());
    assert_eq!(v.kind, Some(ColdStartType::Provisioned));
    let mut said_warm = invocation(2, 20, "ledger", "i-q", T0);
    said_warm.initialization_type = Some(ColdStartType::Provisioned);
    said_warm.cold_start = Some(false);
    feed(&c, &[said_warm], T0);
    assert!(verdict(&c, 2, 20).is_none(), "false is believed");
}

#[test]
fn a_poll_without_links_is_no_orphan_and_two_message_ids_are_two_messages() {
    let c = correlator(CorrelationConfig {
        window: Duration::from_secs(2),
        ..Default::default()
    });
    let mut poll = consumer(1, 10, "worker", "orders", T0);
    poll.messaging_operation = Some(Cow::Borrowed("receive"));
    // A message with an id and one more correlation value.
    let carrying = |s: SpanRow<'static>, id: &str, key: &'static str, value: &str| {
        with_attr(with_attr(s, "messaging.message.id", id), key, value)
    };
    let conversation = "messaging.message.conversation_id";
    let lost = carrying(
        producer(2, 20, "checkout", "audit", T0),
        "m-1",
        conversation,
        "conv",
    );
    let other = carrying(
        consumer(3, 30, "mailer", "orders", T0 + S),
        "m-2",
        conversation,
        "conv",
    );
    // SNS to SQS: ids differ by design, and a shared key still joins.
    let mut sns = carrying(
        producer(4, 40, "checkout", "topic", T0),
        "sns-1",
        "correlation_id",
        "o-9",
    );
    sns.messaging_system = Some(Cow::Borrowed("aws_sns"));
    let sqs = carrying(
        consumer(5, 50, "billing", "queue", T0 + S),
        "sqs-1",
        "correlation_id",
        "o-9",
    );
    feed(&c, &[poll, lost, other, sns, sqs], T0);
    c.tick(T0 + 10 * S).unwrap();
    let joined: Vec<_> = boundary_rows(&c).into_iter().map(|b| b.consumer).collect();
    assert_eq!(
        joined,
        vec![format!("{}/{}", tid(5).to_hex(), sid(50).to_hex())],
        "a shared conversation id does not join two messages of one system"
    );
    let orphans: BTreeSet<_> = orphan_rows(&c).into_iter().map(|o| o.0).collect();
    assert_eq!(
        orphans,
        BTreeSet::from(["orphan".to_owned(), "unconsumed".to_owned()]),
        "the lost message and the consumer without context, not the poll"
    );
}

#[test]
fn an_init_span_is_evidence_not_a_cold_start_of_its_own() {
    let c = correlator(CorrelationConfig::default());
    let mut init = init_span(1, 11, "i-1", T0, T0 + S);
    init.name = Cow::Borrowed("init resizer");
    init.cold_start = Some(true);
    feed(
        &c,
        &[init, invocation(1, 10, "resizer", "i-1", T0 + S + MS)],
        T0,
    );
    assert_eq!(
        verdict(&c, 1, 10).unwrap().source,
        Some(ColdStartSource::InitSpan)
    );
    assert!(!verdict(&c, 1, 11).unwrap().cold);
}

/// Rows as the ingest path hands them over: observed, and added to the
/// trace summaries.
fn follow(c: &Tested, rows: &[SpanRow<'static>], now: i64) {
    let mut parts = TraceParts::default();
    rows.iter().for_each(|r| parts.add(r));
    let (traces, said_cold, operations) = parts.into_parts();
    let note = Note {
        observed: rows.iter().map(|r| c.extractor().observe(r)).collect(),
        traces,
        said_cold,
        operations,
        arrived: now,
    };
    let mut out = Derived::default();
    Follower::follow(&c.correlator, note, &mut out).unwrap();
    c.keep(out);
}

fn said_cold(mut s: SpanRow<'static>) -> SpanRow<'static> {
    s.cold_start = Some(true);
    s.cold_start_type = Some(ColdStartType::OnDemand);
    s
}

/// A flow's `cold_starts` counts spans reading `cold_start_type =
/// 'on_demand'`: correlation counts them per trace without reading the
/// spans, verdicts over what the spans said, across a restart.
#[test]
fn on_demand_cold_starts_are_counted_per_trace_as_a_read_of_the_spans_would() {
    let c = correlator(CorrelationConfig::default());
    follow(
        &c,
        &[
            // Judged cold as its instance's first invocation.
            invocation(1, 10, "resizer", "i-1", T0),
            // Says it was cold, though not its instance's first: believed.
            said_cold(invocation(2, 20, "resizer", "i-1", T0 + S)),
            // An init span saying so is evidence, not a cold start.
            said_cold(init_span(3, 30, "i-2", T0, T0 + S)),
            // Warm.
            invocation(4, 40, "resizer", "i-1", T0 + 2 * S),
        ],
        T0,
    );
    // A span re-sent is stored twice but is one cold start.
    follow(
        &c,
        &[said_cold(invocation(2, 20, "resizer", "i-1", T0 + S))],
        T0,
    );
    let traces = [tid(1), tid(2), tid(3), tid(4), tid(5)];
    let want = vec![1, 1, 0, 0, 0];
    assert_eq!(c.view().on_demand_counts(&traces), Some(want.clone()));

    let after = correlator(CorrelationConfig::default());
    after
        .restore_bytes(&c.capture().unwrap(), "the test's state")
        .unwrap();
    assert_eq!(after.view().on_demand_counts(&traces), Some(want));

    // Past the cap, what was forgotten is not guessed at.
    let capped = correlator(CorrelationConfig {
        max_indexed_traces: 1,
        ..CorrelationConfig::default()
    });
    for (trace, span) in [(1, 10), (2, 20)] {
        let row = said_cold(invocation(trace, span, "resizer", "i-1", T0));
        follow(&capped, &[row], T0);
    }
    assert_eq!(capped.view().on_demand_counts(&traces), None);
}

static LAMBDA: std::sync::LazyLock<Attributes<'static>> = std::sync::LazyLock::new(|| {
    vec![(Cow::Borrowed("cloud.platform"), Cow::Borrowed("aws_lambda"))]
});

fn named(mut s: SpanRow<'static>, service: &'static str, name: String) -> SpanRow<'static> {
    s.service_name = Cow::Borrowed(service);
    s.name = Cow::Owned(name);
    s
}

/// The operation rows live in memory over every minute, sorted.
fn live_operations(c: &Tested) -> Vec<operations::OperationRow> {
    let mut rows = c
        .view()
        .with_live_operations(i64::MIN, i64::MAX, |rows| rows);
    rows.sort();
    rows
}

/// Spans count per minute of start and operation, a function's with its
/// resource's `cloud.platform`; the counts survive a restart and are
/// written once quiet.
#[test]
fn spans_are_counted_per_minute_and_operation_across_a_restart() {
    use crate::operations::Operation;
    let c = correlator(CorrelationConfig::default());
    let mut resized = named(span(3, 30, T0, T0 + MS), "resizer", "resize".into());
    resized.platform = Platform::Faas;
    resized.kind = SpanKind::Server;
    resized.resource_attributes = &LAMBDA;
    let next_minute = T0 + rollup::MINUTE_NS;
    follow(
        &c,
        &[
            named(span(1, 10, T0, T0 + MS), "checkout", "GET /cart".into()),
            named(
                span(1, 11, T0 + MS, T0 + MS),
                "checkout",
                "GET /cart".into(),
            ),
            named(span(1, 12, T0, T0), "checkout", "SELECT".into()),
            named(
                span(2, 20, next_minute, next_minute),
                "checkout",
                "GET /cart".into(),
            ),
            resized.clone(),
        ],
        T0,
    );
    follow(&c, &[resized], T0 + S);
    let op =
        |service: &str, name: &str, kind: &str, platform: &str, cloud: Option<&str>| Operation {
            service: service.into(),
            name: Some(name.into()),
            kind: kind.into(),
            platform: platform.into(),
            cloud_platform: cloud.map(Into::into),
        };
    let minute = rollup::minute_of(T0);
    let internal = |name| op("checkout", name, "internal", "kubernetes", None);
    let mut want = vec![
        ((minute, internal("GET /cart")), 2),
        ((minute, internal("SELECT")), 1),
        ((minute + rollup::MINUTE_NS, internal("GET /cart")), 1),
        (
            (
                minute,
                op("resizer", "resize", "server", "faas", Some("aws_lambda")),
            ),
            2,
        ),
    ];
    want.sort();
    assert_eq!(live_operations(&c), want);

    let after = correlator(CorrelationConfig::default());
    after
        .restore_bytes(&c.capture().unwrap(), "the test's state")
        .unwrap();
    assert_eq!(live_operations(&after), want);

    // Quiet for `trace_idle`: written as rows and gone from memory.
    let idle = i64::try_from(CorrelationConfig::default().trace_idle.as_nanos()).unwrap();
    let mut written = Vec::new();
    after
        .flush_rollups(T0 + S + idle, &mut |out: Derived| {
            written.extend(out.into_rows());
            Ok(())
        })
        .unwrap();
    let rows: Vec<_> = (written.iter())
        .filter(|(table, _)| *table == OPERATION_ROLLUPS)
        .map(|(_, batch)| batch)
        .collect();
    assert_eq!(rows.len(), 1, "{written:?}");
    let spans = rows[0]
        .column_by_name("spans")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(spans.values().iter().sum::<i64>(), 6);
    assert_eq!(rows[0].num_rows(), 4);
    assert!(live_operations(&after).is_empty());

    // A write that fails keeps them for the next flush.
    follow(
        &after,
        &[named(span(4, 40, T0, T0), "checkout", "late".into())],
        T0,
    );
    let failed = after.flush_rollups(T0 + idle, &mut |_| Err("disk full".into()));
    assert!(failed.is_err());
    assert_eq!(live_operations(&after).len(), 1);
}

/// A service whose span names carry ids keeps [`operations::MAX_NAMES`]
/// names a minute; the rest count under no name, so its span count stays
/// exact and other services keep theirs.
#[test]
fn a_service_past_its_names_in_a_minute_counts_the_rest_under_no_name() {
    let c = correlator(CorrelationConfig::default());
    let extra = 5;
    let rows: Vec<_> = (0..operations::MAX_NAMES + extra)
        .map(|i| {
            named(
                span(1, i as u64, T0, T0),
                "orders",
                format!("GET /orders/{i}"),
            )
        })
        .collect();
    for request in rows.chunks(300) {
        follow(&c, request, T0);
    }
    follow(
        &c,
        &[named(span(2, 1, T0, T0), "cart", "GET /cart".into())],
        T0,
    );
    let live = live_operations(&c);
    let orders: Vec<_> = (live.iter())
        .filter(|((_, op), _)| op.service == "orders")
        .collect();
    assert_eq!(orders.len(), operations::MAX_NAMES + 1);
    let unnamed: Vec<_> = (orders.iter())
        .filter(|((_, op), _)| op.name.is_none())
        .collect();
    assert_eq!(unnamed.len(), 1);
    assert_eq!(unnamed[0].1, extra as i64);
    let total: i64 = orders.iter().map(|(_, n)| n).sum();
    assert_eq!(total, (operations::MAX_NAMES + extra) as i64);
    assert!(
        live.iter()
            .any(|((_, op), n)| op.service == "cart" && *n == 1)
    );
    // A name already kept still counts under its name.
    follow(
        &c,
        &[named(
            span(1, 9_999, T0, T0),
            "orders",
            "GET /orders/0".into(),
        )],
        T0,
    );
    let first = (live_operations(&c).into_iter())
        .find(|((_, op), _)| op.name.as_deref() == Some("GET /orders/0"))
        .unwrap();
    assert_eq!(first.1, 2);
}

// ---- order independence -------------------------------------------------

/// A small hybrid system: queue hops by link, parent and message id, a
/// batch, a fan-out, a sync call, and spans sharing a correlation id.
fn system() -> Vec<SpanRow<'static>> {
    let mut rows = vec![
        producer(1, 10, "checkout", "orders", T0),
        link(consumer(2, 20, "invoice", "orders", T0 + 300 * MS), 1, 10),
        producer(2, 21, "invoice", "mail", T0 + 400 * MS),
        with_attr(
            producer(3, 30, "reports", "renders", T0),
            "messaging.message.id",
            "m-30",
        ),
        with_attr(
            consumer(4, 40, "renderer", "renders", T0 + 3 * S),
            "messaging.message.id",
            "m-30",
        ),
        with_attr(span(5, 50, T0, T0), "correlation_id", "k"),
        with_attr(span(6, 60, T0, T0), "correlation_id", "k"),
        producer(7, 70, "inventory", "stock", T0),
        producer(8, 80, "inventory", "stock", T0),
        producer(11, 110, "checkout", "events", T0),
        link(consumer(12, 120, "email", "events", T0 + MS), 11, 110),
        link(consumer(13, 130, "analytics", "events", T0 + MS), 11, 110),
        consumer(14, 140, "audit", "audit", T0),
    ];
    let mut batch = consumer(9, 90, "projector", "stock", T0 - 2 * S);
    batch = link(batch, 7, 70);
    batch = link(batch, 8, 80);
    rows.push(batch);
    let mut mail = link(consumer(10, 100, "mailer", "mail", T0 + 500 * MS), 2, 21);
    mail.parent_span_id = None;
    rows.push(mail);
    let mut call = span(10, 101, T0 + 600 * MS, T0 + 700 * MS);
    call.kind = SpanKind::Client;
    call.platform = Platform::Faas;
    rows.push(call);
    let mut served = span(10, 102, T0 + 610 * MS, T0 + 690 * MS);
    served.kind = SpanKind::Server;
    served.parent_span_id = Some(sid(101));
    rows.push(served);
    rows
}

fn flows_of(c: &Tested) -> Vec<(TraceId, TraceId)> {
    (1..=14)
        .map(|t| (tid(t), c.view().flow_id(&tid(t))))
        .collect()
}

/// Feeds `rows` in `order`, cut into requests at `cuts`, with the clock
/// moving `gaps` seconds between requests; returns boundaries and flows.
fn run(
    rows: &[SpanRow<'static>],
    order: &[usize],
    cuts: &[bool],
    gaps: &[u16],
    resend: bool,
) -> (Vec<Row>, Vec<(TraceId, TraceId)>, Tested) {
    let c = correlator(CorrelationConfig::default());
    let mut now = T0;
    let mut request = Vec::new();
    for (i, &index) in order.iter().enumerate() {
        request.push(rows[index].clone());
        if cuts[i % cuts.len()] || i + 1 == order.len() {
            feed(&c, &request, now);
            if resend {
                feed(&c, &request, now);
            }
            request.clear();
            now += i64::from(gaps[i % gaps.len()]) * S;
        }
    }
    (boundary_rows(&c), flows_of(&c), c)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_arrival_order_gives_the_same_boundaries_and_flows(
        order in Just((0..system().len()).collect::<Vec<_>>()).prop_shuffle(),
        cuts in proptest::collection::vec(any::<bool>(), 1..8),
        // Up to ten minutes between requests: halves wait across them.
        gaps in proptest::collection::vec(0u16..600, 1..8),
        resend in any::<bool>(),
    ) {
        let rows = system();
        let in_order: Vec<usize> = (0..rows.len()).collect();
        let (want, want_flows, _) = run(&rows, &in_order, &[false], &[0], false);
        let (got, got_flows, c) = run(&rows, &order, &cuts, &gaps, resend);
        prop_assert_eq!(&got, &want);
        prop_assert_eq!(got_flows, want_flows);
        // Nothing stitched twice, every expected hop found.
        let pairs: BTreeSet<(&str, &str)> = got.iter().map(|r| (r.producer.as_str(), r.consumer.as_str())).collect();
        prop_assert_eq!(pairs.len(), got.len());
        prop_assert_eq!(got.len(), 8);
        // Nothing lost: every half with a role is still waiting.
        prop_assert_eq!(c.stats().pending_halves, rows.len());
    }
}

#[test]
fn the_system_stitches_as_designed() {
    let rows = system();
    let (got, flows, _) = run(
        &rows,
        &(0..rows.len()).collect::<Vec<_>>(),
        &[false],
        &[0],
        false,
    );
    let by: Vec<(&str, &str)> = got
        .iter()
        .map(|r| (r.kind.as_str(), r.stitched_by.as_str()))
        .collect();
    assert_eq!(
        by.iter().filter(|b| **b == ("async", "link")).count(),
        6,
        "{got:#?}"
    );
    assert_eq!(
        by.iter()
            .filter(|b| **b == ("async", "correlation"))
            .count(),
        1
    );
    assert_eq!(by.iter().filter(|b| **b == ("sync", "parent")).count(), 1);
    let flow = |t| flows[t as usize - 1].1;
    assert_eq!(flow(10), tid(1), "checkout → invoice → mailer is one flow");
    assert_eq!(flow(6), tid(5));
    assert_eq!(flow(9), tid(7));
    assert_eq!(flow(14), tid(14));
}
