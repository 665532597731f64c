//! A flow by any of its traces: the spans of every member trace and the
//! boundaries touching them (`GET /api/v1/traces/{id}/flow`).

use seam_model::TraceId;
use seam_model::schema::{boundary_col, col};
use seam_model::tables::{BOUNDARIES, SPANS};
use serde::Serialize;

use crate::columns::{booleans, int64s, opt_str, strings};
use crate::error::QueryError;
use crate::lookup::Lookup;
use crate::session::QueryResult;

/// A flow as the API returns it.
#[derive(Debug, Clone)]
pub struct FlowResult {
    pub flow_id: TraceId,
    pub trace_ids: Vec<TraceId>,
    pub spans: QueryResult,
    pub boundaries: QueryResult,
}

/// `IN (...)` of quoted hex ids.
fn id_list(ids: &[TraceId]) -> String {
    ids.iter()
        .map(|t| format!("'{}'", t.to_hex()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Spans of a flow's traces (or of one trace), in start order.
pub fn spans_of(traces: &[TraceId]) -> Lookup {
    Lookup {
        table: SPANS,
        column: col::TRACE_ID,
        keys: traces.iter().map(TraceId::to_hex).collect(),
        order: &[col::START_TIME, col::SPAN_ID],
    }
}

/// Boundaries whose consumer is one of a flow's traces, in consumer time
/// order: all of the flow's boundaries when every boundary its traces
/// produced is among them (see [`produced_within`]). One lookup by the
/// column the table is sorted by reads a page or two; a lookup by
/// producer reads that column of every row group its bloom filter admits.
pub fn flow_consumed(traces: &[TraceId]) -> Lookup {
    Lookup {
        table: BOUNDARIES,
        column: boundary_col::CONSUMER_TRACE_ID,
        keys: traces.iter().map(TraceId::to_hex).collect(),
        order: &[
            boundary_col::CONSUMER_TIME,
            boundary_col::PRODUCER_SPAN_ID,
            boundary_col::CONSUMER_SPAN_ID,
        ],
    }
}

/// How many rows of `boundaries` were produced by one of `traces`.
pub fn produced_within(boundaries: &QueryResult, traces: &[TraceId]) -> Result<u64, QueryError> {
    let ids: std::collections::HashSet<String> = traces.iter().map(TraceId::to_hex).collect();
    let mut n = 0;
    for batch in &boundaries.batches {
        let producers = strings(batch, "producer_trace_id")?;
        n += producers
            .iter()
            .filter(|p| p.is_some_and(|p| ids.contains(p)))
            .count() as u64;
    }
    Ok(n)
}

/// Boundaries touching a flow's traces, in consumer time order.
///
/// Usually both ends of a boundary are in the flow, but not always: a
/// merge `max_flow_traces` refused, or a flow the index evicted, leaves
/// one end outside, so both ends are looked up. Two lookups of one column
/// each, not one `OR` across both: only a filter on a single column lets
/// bloom filters and hot segment keys rule anything out. The second skips
/// rows the first returned (`producer_trace_id` is never null).
pub fn flow_boundaries_sql(traces: &[TraceId]) -> String {
    let ids = id_list(traces);
    format!(
        "SELECT * FROM boundaries WHERE producer_trace_id IN ({ids}) \
         UNION ALL \
         SELECT * FROM boundaries WHERE consumer_trace_id IN ({ids}) \
           AND producer_trace_id NOT IN ({ids}) \
         ORDER BY consumer_time, producer_span_id, consumer_span_id"
    )
}

/// One boundary in API JSON (docs/contract.md §6 names; times as decimal ns strings).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoundaryJson {
    pub flow_id: Option<String>,
    pub kind: String,
    pub stitched_by: String,
    pub correlation_key: Option<String>,
    pub correlation_value: Option<String>,
    pub producer_trace_id: String,
    pub producer_span_id: String,
    pub producer_service: String,
    pub producer_platform: String,
    pub consumer_trace_id: String,
    pub consumer_span_id: String,
    pub consumer_service: String,
    pub consumer_platform: String,
    pub system: Option<String>,
    pub destination: Option<String>,
    pub producer_time: String,
    pub consumer_time: String,
    pub latency_ns: i64,
    pub flagged: bool,
    pub clock_skew: bool,
    pub consumer_cold_start: bool,
    pub deliveries: i64,
    pub redelivery: bool,
}

/// Reads `boundaries` rows (all columns).
pub fn boundaries_from(result: &QueryResult) -> Result<Vec<BoundaryJson>, QueryError> {
    let mut out = Vec::with_capacity(result.num_rows());
    for batch in &result.batches {
        let s = |name| strings(batch, name);
        let (flow, kind, by, key, value) = (
            s("flow_id")?,
            s("kind")?,
            s("stitched_by")?,
            s("correlation_key")?,
            s("correlation_value")?,
        );
        let (pt, ps, psvc, pplat) = (
            s("producer_trace_id")?,
            s("producer_span_id")?,
            s("producer_service")?,
            s("producer_platform")?,
        );
        let (ct, cs, csvc, cplat) = (
            s("consumer_trace_id")?,
            s("consumer_span_id")?,
            s("consumer_service")?,
            s("consumer_platform")?,
        );
        let (system, destination) = (s("system")?, s("destination")?);
        let (ptime, ctime, latency, deliveries) = (
            int64s(batch, "producer_time")?,
            int64s(batch, "consumer_time")?,
            int64s(batch, "latency_ns")?,
            int64s(batch, "deliveries")?,
        );
        let (flagged, skew, cold, redelivery) = (
            booleans(batch, "flagged")?,
            booleans(batch, "clock_skew")?,
            booleans(batch, "consumer_cold_start")?,
            booleans(batch, "redelivery")?,
        );
        for i in 0..batch.num_rows() {
            out.push(BoundaryJson {
                flow_id: opt_str(&flow, i),
                kind: kind.value(i).to_owned(),
                stitched_by: by.value(i).to_owned(),
                correlation_key: opt_str(&key, i),
                correlation_value: opt_str(&value, i),
                producer_trace_id: pt.value(i).to_owned(),
                producer_span_id: ps.value(i).to_owned(),
                producer_service: psvc.value(i).to_owned(),
                producer_platform: pplat.value(i).to_owned(),
                consumer_trace_id: ct.value(i).to_owned(),
                consumer_span_id: cs.value(i).to_owned(),
                consumer_service: csvc.value(i).to_owned(),
                consumer_platform: cplat.value(i).to_owned(),
                system: opt_str(&system, i),
                destination: opt_str(&destination, i),
                producer_time: ptime.value(i).to_string(),
                consumer_time: ctime.value(i).to_string(),
                latency_ns: latency.value(i),
                flagged: flagged.value(i),
                clock_skew: skew.value(i),
                consumer_cold_start: cold.value(i),
                deliveries: deliveries.value(i),
                redelivery: redelivery.value(i),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use arrow::array::TimestampNanosecondArray;
    use arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::DataType;
    use datafusion::prelude::SessionContext;
    use seam_correlate::{boundaries_schema, boundary_col as b};
    use seam_store::{Layout, Table};

    use super::*;
    use crate::provider::SegmentTable;

    fn trace(n: u8) -> TraceId {
        TraceId::parse_hex(&format!("{n:032x}")).unwrap()
    }

    /// Async boundary rows of (producer trace, consumer trace), the
    /// consumer time falling with the row's position. A producer trace
    /// sends one message: its boundaries to the one consumer service are
    /// deliveries of it.
    pub(crate) fn boundaries(rows: &[(u8, u8)], first: i64) -> RecordBatch {
        let schema = boundaries_schema();
        let n = rows.len();
        let columns = schema.fields().iter().map(|f| -> ArrayRef {
            let text = |v: &dyn Fn(usize) -> String| {
                Arc::new(StringArray::from_iter_values((0..n).map(v)))
            };
            match (f.name().as_str(), f.data_type()) {
                (b::PRODUCER_TRACE_ID, _) => text(&|i| trace(rows[i].0).to_hex()),
                (b::CONSUMER_TRACE_ID, _) => text(&|i| trace(rows[i].1).to_hex()),
                (b::PRODUCER_SPAN_ID, _) => text(&|i| format!("{:016x}", rows[i].0)),
                (b::CONSUMER_SPAN_ID, _) => text(&|i| format!("{:016x}", first + i as i64)),
                (b::KIND, _) => text(&|_| "async".into()),
                (_, DataType::Utf8) => text(&|_| "x".into()),
                (_, DataType::Timestamp(..)) => Arc::new(
                    TimestampNanosecondArray::from_iter_values(
                        (0..n).map(|i| 1_000 - first - i as i64),
                    )
                    .with_timezone("UTC"),
                ),
                (_, DataType::Int64) => Arc::new(Int64Array::from(vec![1; n])),
                (_, DataType::Boolean) => Arc::new(BooleanArray::from(vec![false; n])),
                (name, other) => panic!("{name}: {other}"),
            }
        });
        RecordBatch::try_new(schema.clone(), columns.collect()).unwrap()
    }

    #[tokio::test]
    async fn a_flow_has_every_boundary_touching_its_traces_once() {
        let layout = Layout {
            bloom: vec![b::PRODUCER_TRACE_ID.into(), b::CONSUMER_TRACE_ID.into()],
            ..Layout::default()
        };
        let table = Table::named("boundaries", boundaries_schema(), b::CONSUMER_TIME, layout)
            .with_merge_rows(4);
        let table = Arc::new(table);
        // The flow is traces 1 and 2. Inside it, a boundary from the
        // producer's side, one from the consumer's side (the other end in a
        // trace a capped merge left out), and boundaries of other flows, in
        // keyed segments and in the tail.
        table
            .append(boundaries(&[(1, 2), (7, 8), (7, 8), (8, 9)], 0))
            .unwrap();
        table
            .append(boundaries(&[(5, 6), (2, 3), (6, 5), (9, 7)], 10))
            .unwrap();
        table.append(boundaries(&[(4, 1), (1, 1)], 20)).unwrap();
        assert_eq!(table.snapshot().segments.len(), 3);
        let ctx = SessionContext::new();
        let provider = SegmentTable::new(table, b::CONSUMER_TIME);
        ctx.register_table("boundaries", Arc::new(provider))
            .unwrap();

        let sql = flow_boundaries_sql(&[trace(1), trace(2)]);
        let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
        let found = boundaries_from(&QueryResult {
            schema: boundaries_schema(),
            batches,
        })
        .unwrap();
        let ends: Vec<(String, String)> = found
            .iter()
            .map(|b| (b.producer_trace_id.clone(), b.consumer_trace_id.clone()))
            .collect();
        let hex = |n| trace(n).to_hex();
        // Consumer time order: the latest appended first.
        assert_eq!(
            ends,
            [
                (hex(1), hex(1)),
                (hex(4), hex(1)),
                (hex(2), hex(3)),
                (hex(1), hex(2))
            ]
        );
    }
}
