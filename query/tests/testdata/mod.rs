//! Realistic spans for the query tests: a checkout trace that publishes to
//! a queue, the Lambda trace that consumes it (cold start, link back), and a
//! health check. Shared by the unit tests and the API tests.

#![allow(dead_code)]

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::RecordBatch;
use seam_correlate::TraceParts;
use seam_model::schema::{col, spans_schema};
use seam_model::{
    Attributes, ColdStartType, EventRow, LinkRow, Platform, SpanBatchBuilder, SpanId, SpanKind,
    SpanRow, StatusCode, TraceId,
};
use seam_store::Table;

/// 2023-11-14T22:13:20Z in ns.
pub const T0: i64 = 1_700_000_000_000_000_000;
pub const MS: i64 = 1_000_000;

pub const CHECKOUT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
pub const CHECKOUT_ROOT_SPAN: &str = "b7ad6b7169203331";
pub const ORDERS_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub const HEALTH_TRACE: &str = "5b8efff798038103d269b633813fc60c";
pub const UNKNOWN_TRACE: &str = "11111111111111111111111111111111";
pub const SPAN_COUNT: usize = 7;

const PRODUCER_SPAN: &str = "00f067aa0ba902b7";

fn tid(s: &str) -> TraceId {
    TraceId::parse_hex(s).unwrap()
}

fn sid(s: &str) -> SpanId {
    SpanId::parse_hex(s).unwrap()
}

fn attrs(pairs: &[(&'static str, &'static str)]) -> Attributes<'static> {
    pairs
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn span<'a>(
    resource: &'a Attributes<'a>,
    trace: &str,
    span: &str,
    parent: Option<&str>,
    name: &'static str,
    kind: SpanKind,
    service: &'static str,
    start: i64,
    duration: i64,
) -> SpanRow<'a> {
    SpanRow {
        parent_span_id: parent.map(sid),
        name: Cow::Borrowed(name),
        kind,
        service_name: Cow::Borrowed(service),
        platform: Platform::Kubernetes,
        scope_name: Cow::Borrowed("test"),
        scope_version: Cow::Borrowed("1.0"),
        ..SpanRow::new(tid(trace), sid(span), start, start + duration, resource)
    }
}

/// The three traces as one batch of [`SPAN_COUNT`] rows.
pub fn batch() -> RecordBatch {
    with_rows(|rows| {
        let mut builder = SpanBatchBuilder::new();
        for row in rows {
            builder.append(row);
        }
        builder.finish().unwrap()
    })
}

/// The summaries of [`batch`]'s traces, as correlation writes them.
pub fn traces() -> RecordBatch {
    with_rows(summaries)
}

/// `traces` rows of `rows`.
fn summaries(rows: &[SpanRow<'_>]) -> RecordBatch {
    let mut parts = TraceParts::default();
    rows.iter().for_each(|r| parts.add(r));
    let parts = parts.into_vec();
    seam_correlate::traces::traces_batch(parts.iter()).unwrap()
}

fn with_rows<T>(then: impl FnOnce(&[SpanRow<'_>]) -> T) -> T {
    let checkout_res = attrs(&[
        ("service.name", "checkout"),
        ("k8s.pod.name", "checkout-7d9f"),
    ]);
    let payments_res = attrs(&[("service.name", "payments")]);
    let worker_res = attrs(&[("service.name", "order-worker"), ("cloud.provider", "aws")]);
    let mut rows = Vec::new();

    let mut root = span(
        &checkout_res,
        CHECKOUT_TRACE,
        CHECKOUT_ROOT_SPAN,
        None,
        "GET /checkout",
        SpanKind::Server,
        "checkout",
        T0,
        250 * MS,
    );
    root.instance = Some(Cow::Borrowed("checkout-7d9f"));
    root.status_code = StatusCode::Error;
    root.status_message = Cow::Borrowed("payment declined");
    root.attributes = attrs(&[("http.route", "/checkout"), ("http.request.method", "GET")]);
    root.events = vec![EventRow {
        time_unix_nano: T0 + 1_000,
        name: Cow::Borrowed("exception"),
        attributes: attrs(&[("exception.type", "PaymentDeclined")]),
    }];
    rows.push(root);

    let mut client = span(
        &checkout_res,
        CHECKOUT_TRACE,
        "1000000000000001",
        Some(CHECKOUT_ROOT_SPAN),
        "POST /payments",
        SpanKind::Client,
        "checkout",
        T0 + 10 * MS,
        100 * MS,
    );
    client.status_code = StatusCode::Error;
    rows.push(client);

    let mut payments = span(
        &payments_res,
        CHECKOUT_TRACE,
        "2000000000000002",
        Some("1000000000000001"),
        "POST /payments",
        SpanKind::Server,
        "payments",
        T0 + 20 * MS,
        80 * MS,
    );
    payments.attributes = attrs(&[("http.route", "/payments")]);
    rows.push(payments);

    let mut producer = span(
        &checkout_res,
        CHECKOUT_TRACE,
        PRODUCER_SPAN,
        Some(CHECKOUT_ROOT_SPAN),
        "orders publish",
        SpanKind::Producer,
        "checkout",
        T0 + 200 * MS,
        5 * MS,
    );
    producer.messaging_system = Some(Cow::Borrowed("aws_sqs"));
    producer.messaging_operation = Some(Cow::Borrowed("publish"));
    producer.messaging_destination = Some(Cow::Borrowed("orders"));
    producer.messaging_message_id = Some(Cow::Borrowed("m-1"));
    rows.push(producer);

    let mut consumer = span(
        &worker_res,
        ORDERS_TRACE,
        "3000000000000003",
        None,
        "orders process",
        SpanKind::Consumer,
        "order-worker",
        T0 + 1_000 * MS,
        1_200 * MS,
    );
    consumer.platform = Platform::Faas;
    consumer.cold_start = Some(true);
    consumer.cold_start_type = Some(ColdStartType::OnDemand);
    consumer.init_duration_ns = Some(300 * MS);
    consumer.messaging_system = Some(Cow::Borrowed("aws_sqs"));
    consumer.messaging_operation = Some(Cow::Borrowed("process"));
    consumer.messaging_destination = Some(Cow::Borrowed("orders"));
    consumer.messaging_message_id = Some(Cow::Borrowed("m-1"));
    consumer.faas_trigger = Some(Cow::Borrowed("pubsub"));
    consumer.attributes = attrs(&[("faas.trigger", "pubsub"), ("tenant", "acme")]);
    consumer.links = vec![LinkRow {
        trace_id: tid(CHECKOUT_TRACE),
        span_id: sid(PRODUCER_SPAN),
        trace_state: Cow::Borrowed(""),
        attributes: attrs(&[("messaging.message.id", "m-1")]),
    }];
    rows.push(consumer);

    let mut db = span(
        &worker_res,
        ORDERS_TRACE,
        "4000000000000004",
        Some("3000000000000003"),
        "db.query",
        SpanKind::Client,
        "order-worker",
        T0 + 1_500 * MS,
        30 * MS,
    );
    db.platform = Platform::Faas;
    db.status_code = StatusCode::Ok;
    db.attributes = attrs(&[("db.system", "postgresql"), ("tenant", "acme")]);
    rows.push(db);

    let mut health = span(
        &checkout_res,
        HEALTH_TRACE,
        "5000000000000005",
        None,
        "GET /healthz",
        SpanKind::Server,
        "checkout",
        T0 + 5_000 * MS,
        MS,
    );
    health.attributes = attrs(&[("http.route", "/healthz")]);
    rows.push(health);
    then(&rows)
}

/// `n` single-span traces starting at T0 + 10s, one ms apart, for tests
/// that need volume.
pub fn bulk(n: usize) -> RecordBatch {
    with_bulk(n, |rows| {
        let mut builder = SpanBatchBuilder::new();
        for row in rows {
            builder.append(row);
        }
        builder.finish().unwrap()
    })
}

/// The summaries of [`bulk`]`(n)`.
pub fn bulk_traces(n: usize) -> RecordBatch {
    with_bulk(n, summaries)
}

fn with_bulk<T>(n: usize, then: impl FnOnce(&[SpanRow<'_>]) -> T) -> T {
    let resource = attrs(&[("service.name", "loadgen")]);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let trace = format!("{:032x}", 0xbeef_0000_0000u64 + i as u64);
        let span_id = format!("{:016x}", 0xbeef_0000u64 + i as u64);
        let mut row = span(
            &resource,
            &trace,
            &span_id,
            None,
            "load",
            SpanKind::Internal,
            "loadgen",
            T0 + 10_000 * MS + i as i64 * MS,
            (i as i64 % 50) * MS,
        );
        row.attributes = attrs(&[
            ("http.route", "/load"),
            ("payload", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ]);
        rows.push(row);
    }
    then(&rows)
}

/// A `traces` table holding [`traces`].
pub fn traces_table() -> Arc<Table> {
    let def = seam_model::tables::traces();
    let table = Arc::new(Table::new(def.schema, def.time_column));
    table.append(traces()).unwrap();
    table
}

/// [`batch`] as SQL reads it (resources as maps).
pub fn sql_batch() -> RecordBatch {
    seam_model::cast::batch_to_sql(&batch(), &spans_schema()).unwrap()
}

/// A spans table holding [`batch`].
pub fn table() -> Arc<Table> {
    let table = Arc::new(
        Table::new(spans_schema(), col::START_TIME)
            .with_hot_schema(seam_model::schema::spans_hot_schema()),
    );
    table.append(batch()).unwrap();
    table
}
