//! The Arrow schemas of the `boundaries` and `orphans` tables (DESIGN §6)
//! and the rows correlation appends to them.
//!
//! Columns whose value can change after a row is stored (`flow_id`,
//! `deliveries`, `redelivery`, `consumer_cold_start`) are stored as
//! written at stitch time and resolved again when a query reads them
//! (see [`crate::view`]).

use std::sync::{Arc, LazyLock};

use arrow::array::{
    BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::error::ArrowError;
use seam_model::Platform;
use seam_model::schema::timestamp_type;

use crate::half::SpanKey;

/// Column names of `boundaries`.
pub mod boundary_col {
    pub const FLOW_ID: &str = "flow_id";
    pub const KIND: &str = "kind";
    pub const STITCHED_BY: &str = "stitched_by";
    pub const CORRELATION_KEY: &str = "correlation_key";
    pub const CORRELATION_VALUE: &str = "correlation_value";
    pub const PRODUCER_TRACE_ID: &str = "producer_trace_id";
    pub const PRODUCER_SPAN_ID: &str = "producer_span_id";
    pub const PRODUCER_SERVICE: &str = "producer_service";
    pub const PRODUCER_PLATFORM: &str = "producer_platform";
    pub const CONSUMER_TRACE_ID: &str = "consumer_trace_id";
    pub const CONSUMER_SPAN_ID: &str = "consumer_span_id";
    pub const CONSUMER_SERVICE: &str = "consumer_service";
    pub const CONSUMER_PLATFORM: &str = "consumer_platform";
    pub const SYSTEM: &str = "system";
    pub const DESTINATION: &str = "destination";
    pub const PRODUCER_TIME: &str = "producer_time";
    pub const CONSUMER_TIME: &str = "consumer_time";
    pub const LATENCY_NS: &str = "latency_ns";
    pub const FLAGGED: &str = "flagged";
    pub const CLOCK_SKEW: &str = "clock_skew";
    pub const CONSUMER_COLD_START: &str = "consumer_cold_start";
    pub const DELIVERIES: &str = "deliveries";
    pub const REDELIVERY: &str = "redelivery";
}

/// Column names of `orphans`.
pub mod orphan_col {
    pub const KIND: &str = "kind";
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const SERVICE_NAME: &str = "service_name";
    pub const SYSTEM: &str = "system";
    pub const DESTINATION: &str = "destination";
    pub const CORRELATION_KEY: &str = "correlation_key";
    pub const CORRELATION_VALUE: &str = "correlation_value";
    pub const TIME: &str = "time";
}

static BOUNDARIES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use boundary_col::*;
    let s = |name| Field::new(name, DataType::Utf8, false);
    let s_null = |name| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        s_null(FLOW_ID),
        s(KIND),
        s(STITCHED_BY),
        s_null(CORRELATION_KEY),
        s_null(CORRELATION_VALUE),
        s(PRODUCER_TRACE_ID),
        s(PRODUCER_SPAN_ID),
        s(PRODUCER_SERVICE),
        s(PRODUCER_PLATFORM),
        s(CONSUMER_TRACE_ID),
        s(CONSUMER_SPAN_ID),
        s(CONSUMER_SERVICE),
        s(CONSUMER_PLATFORM),
        s_null(SYSTEM),
        s_null(DESTINATION),
        Field::new(PRODUCER_TIME, timestamp_type(), false),
        Field::new(CONSUMER_TIME, timestamp_type(), false),
        Field::new(LATENCY_NS, DataType::Int64, false),
        Field::new(FLAGGED, DataType::Boolean, false),
        Field::new(CLOCK_SKEW, DataType::Boolean, false),
        Field::new(CONSUMER_COLD_START, DataType::Boolean, false),
        Field::new(DELIVERIES, DataType::Int64, false),
        Field::new(REDELIVERY, DataType::Boolean, false),
    ]))
});

static ORPHANS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use orphan_col::*;
    Arc::new(Schema::new(vec![
        Field::new(KIND, DataType::Utf8, false),
        Field::new(TRACE_ID, DataType::Utf8, false),
        Field::new(SPAN_ID, DataType::Utf8, false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        Field::new(SYSTEM, DataType::Utf8, true),
        Field::new(DESTINATION, DataType::Utf8, true),
        Field::new(CORRELATION_KEY, DataType::Utf8, true),
        Field::new(CORRELATION_VALUE, DataType::Utf8, true),
        Field::new(TIME, timestamp_type(), false),
    ]))
});

pub fn boundaries_schema() -> SchemaRef {
    BOUNDARIES_SCHEMA.clone()
}

pub fn orphans_schema() -> SchemaRef {
    ORPHANS_SCHEMA.clone()
}

/// `async` through a queue or bus, `sync` for a call across platforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BoundaryKind {
    Async,
    Sync,
}

impl BoundaryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Async => "async",
            Self::Sync => "sync",
        }
    }
}

/// The evidence a boundary was found by, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StitchedBy {
    Parent,
    Link,
    Correlation,
}

impl StitchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Link => "link",
            Self::Correlation => "correlation",
        }
    }
}

/// One row of `boundaries`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Boundary {
    pub producer: SpanKey,
    pub consumer: SpanKey,
    pub kind: BoundaryKind,
    pub stitched_by: StitchedBy,
    pub correlation: Option<(String, String)>,
    pub producer_service: String,
    pub producer_platform: &'static str,
    pub consumer_service: String,
    pub consumer_platform: &'static str,
    pub system: Option<String>,
    pub destination: Option<String>,
    pub producer_time: i64,
    pub consumer_time: i64,
    pub latency_ns: i64,
    pub flagged: bool,
    pub clock_skew: bool,
}

pub(crate) fn platform_str(p: Platform) -> &'static str {
    p.as_str()
}

/// Builds a `boundaries` batch.
pub fn boundaries_batch(rows: &[Boundary]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut strings: Vec<StringBuilder> = (0..15)
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut producer_time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut consumer_time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut latency = Int64Builder::with_capacity(n);
    let mut flagged = BooleanBuilder::with_capacity(n);
    let mut skew = BooleanBuilder::with_capacity(n);
    let mut cold = BooleanBuilder::with_capacity(n);
    let mut deliveries = Int64Builder::with_capacity(n);
    let mut redelivery = BooleanBuilder::with_capacity(n);
    for b in rows {
        strings[0].append_null();
        strings[1].append_value(b.kind.as_str());
        strings[2].append_value(b.stitched_by.as_str());
        strings[3].append_option(b.correlation.as_ref().map(|(k, _)| k));
        strings[4].append_option(b.correlation.as_ref().map(|(_, v)| v));
        strings[5].append_value(b.producer.trace.to_hex());
        strings[6].append_value(b.producer.span.to_hex());
        strings[7].append_value(&b.producer_service);
        strings[8].append_value(b.producer_platform);
        strings[9].append_value(b.consumer.trace.to_hex());
        strings[10].append_value(b.consumer.span.to_hex());
        strings[11].append_value(&b.consumer_service);
        strings[12].append_value(b.consumer_platform);
        strings[13].append_option(b.system.as_deref());
        strings[14].append_option(b.destination.as_deref());
        producer_time.append_value(b.producer_time);
        consumer_time.append_value(b.consumer_time);
        latency.append_value(b.latency_ns);
        flagged.append_value(b.flagged);
        skew.append_value(b.clock_skew);
        cold.append_value(false);
        deliveries.append_value(1);
        redelivery.append_value(false);
    }
    let mut columns: Vec<arrow::array::ArrayRef> = strings
        .into_iter()
        .map(|mut s| Arc::new(s.finish()) as _)
        .collect();
    columns.push(Arc::new(producer_time.finish()));
    columns.push(Arc::new(consumer_time.finish()));
    columns.push(Arc::new(latency.finish()));
    columns.push(Arc::new(flagged.finish()));
    columns.push(Arc::new(skew.finish()));
    columns.push(Arc::new(cold.finish()));
    columns.push(Arc::new(deliveries.finish()));
    columns.push(Arc::new(redelivery.finish()));
    RecordBatch::try_new(boundaries_schema(), columns)
}

/// `orphan` (consumer without producer) or `unconsumed` (the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrphanKind {
    Orphan,
    Unconsumed,
}

impl OrphanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orphan => "orphan",
            Self::Unconsumed => "unconsumed",
        }
    }
}

/// One row of `orphans`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Orphan {
    pub kind: OrphanKind,
    pub key: SpanKey,
    pub service: String,
    pub system: Option<String>,
    pub destination: Option<String>,
    pub correlation: Option<(String, String)>,
    pub time: i64,
}

/// Builds an `orphans` batch.
pub fn orphans_batch(rows: &[Orphan]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut strings: Vec<StringBuilder> = (0..8)
        .map(|_| StringBuilder::with_capacity(n, n * 16))
        .collect();
    let mut time = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    for o in rows {
        strings[0].append_value(o.kind.as_str());
        strings[1].append_value(o.key.trace.to_hex());
        strings[2].append_value(o.key.span.to_hex());
        strings[3].append_value(&o.service);
        strings[4].append_option(o.system.as_deref());
        strings[5].append_option(o.destination.as_deref());
        strings[6].append_option(o.correlation.as_ref().map(|(k, _)| k));
        strings[7].append_option(o.correlation.as_ref().map(|(_, v)| v));
        time.append_value(o.time);
    }
    let mut columns: Vec<arrow::array::ArrayRef> = strings
        .into_iter()
        .map(|mut s| Arc::new(s.finish()) as _)
        .collect();
    columns.push(Arc::new(time.finish()));
    RecordBatch::try_new(orphans_schema(), columns)
}
