//! The rows correlation derives for the `boundaries` and `orphans` tables
//! (their schemas are the model's, [`seam_model::schema`]).
//!
//! Columns whose value can change after a row is stored (`flow_id`,
//! `deliveries`, `redelivery`, `consumer_cold_start`) are stored as
//! written at stitch time and resolved again when a query reads them
//! (see [`crate::view`]).

use std::sync::Arc;

use arrow::array::{
    BooleanBuilder, Int64Builder, RecordBatch, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::error::ArrowError;
use seam_model::Platform;
pub use seam_model::schema::{boundaries_schema, boundary_col, orphan_col, orphans_schema};

use crate::half::SpanKey;

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
