//! The correlation side of the query API: the `flows` view and the answers
//! of `/api/v1/traces/{id}/flow`, `/api/v1/boundaries` and
//! `/api/v1/cold-starts`.
//!
//! ```text
//!  spans ──(flow_id resolved at scan)──┐
//!                                      ├─▶ flows (view: one row per flow)
//!  boundaries ─────────────────────────┘
//!  boundaries ─▶ edges (producer service, system, destination, consumer service)
//!  spans (invocations) ─▶ cold starts per function
//! ```
//!
//! Every query here is SQL text whose only inputs are validated trace ids
//! (hex) and integer times, so nothing a client sends reaches the SQL
//! verbatim.

use seam_correlate::INVOCATION_SQL;
use seam_model::TraceId;
use serde::Serialize;

use crate::columns::{booleans, int64s, opt_str, strings};
use crate::engine::QueryResult;
use crate::error::QueryError;
use crate::search::{SearchError, parse_time};

/// `flows`: one row per flow, over every trace that has spans.
pub const FLOWS_VIEW: &str = "CREATE VIEW flows AS \
WITH s AS ( \
  SELECT flow_id, \
         count(DISTINCT trace_id) AS trace_count, \
         count(*) AS span_count, \
         array_sort(array_agg(DISTINCT CAST(service_name AS VARCHAR))) AS services, \
         min(start_time) AS start_time, \
         max(end_time) AS end_time, \
         sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = 'on_demand' THEN 1 ELSE 0 END) AS cold_starts, \
         sum(CASE WHEN CAST(status_code AS VARCHAR) = 'ERROR' THEN 1 ELSE 0 END) AS errors \
  FROM spans GROUP BY flow_id \
), b AS ( \
  SELECT flow_id, count(*) AS boundary_count, \
         sum(CASE WHEN flagged THEN 1 ELSE 0 END) AS flagged_boundaries \
  FROM boundaries GROUP BY flow_id \
) \
SELECT s.flow_id, s.trace_count, s.span_count, s.services, s.start_time, s.end_time, \
       arrow_cast(s.end_time, 'Int64') - arrow_cast(s.start_time, 'Int64') AS duration_ns, \
       COALESCE(b.boundary_count, 0) AS boundary_count, \
       COALESCE(b.flagged_boundaries, 0) AS flagged_boundaries, \
       s.cold_starts, s.errors \
FROM s LEFT JOIN b ON s.flow_id = b.flow_id";

/// `IN (...)` of quoted hex ids.
fn id_list(ids: &[TraceId]) -> String {
    ids.iter()
        .map(|t| format!("'{}'", t.to_hex()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Spans of a flow's traces, in start order.
pub fn flow_spans_sql(traces: &[TraceId]) -> String {
    format!(
        "SELECT * FROM spans WHERE trace_id IN ({}) ORDER BY start_time, span_id",
        id_list(traces)
    )
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

/// `start` and `end` of the report endpoints, as ns since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeWindow {
    /// Reads `start` and `end` (RFC 3339 or integer ns); anything else is
    /// refused by name.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, SearchError> {
        let mut window = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "start" => &mut window.start,
                "end" => &mut window.end,
                _ => return Err(SearchError::Unknown(name.clone())),
            };
            if value.is_empty() {
                continue;
            }
            *slot = Some(parse_time(value).ok_or_else(|| SearchError::Invalid {
                name: name.clone(),
                value: value.clone(),
                expected: "expected an RFC 3339 time or integer unix nanoseconds",
            })?);
        }
        if let (Some(s), Some(e)) = (window.start, window.end)
            && s > e
        {
            return Err(SearchError::EmptyTimeRange);
        }
        Ok(window)
    }

    /// `AND column BETWEEN …` for the bounds that are set.
    fn predicate(&self, column: &str) -> String {
        let mut out = String::new();
        if let Some(start) = self.start {
            out.push_str(&format!(" AND arrow_cast({column}, 'Int64') >= {start}"));
        }
        if let Some(end) = self.end {
            out.push_str(&format!(" AND arrow_cast({column}, 'Int64') <= {end}"));
        }
        out
    }
}

/// Boundaries grouped by edge.
pub fn edges_sql(window: TimeWindow) -> String {
    format!(
        "SELECT producer_service, system, destination, consumer_service, kind, \
                count(*) AS count, \
                CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ns) AS BIGINT) AS p50_ns, \
                CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ns) AS BIGINT) AS p95_ns, \
                CAST(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ns) AS BIGINT) AS p99_ns, \
                max(latency_ns) AS max_ns, \
                sum(CASE WHEN flagged THEN 1 ELSE 0 END) AS flagged, \
                sum(CASE WHEN redelivery THEN 1 ELSE 0 END) AS redeliveries, \
                sum(CASE WHEN clock_skew THEN 1 ELSE 0 END) AS clock_skew \
         FROM boundaries WHERE true{} \
         GROUP BY producer_service, system, destination, consumer_service, kind \
         ORDER BY count DESC, producer_service, consumer_service",
        window.predicate("consumer_time")
    )
}

/// One edge of the boundary map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeJson {
    pub producer_service: String,
    pub system: Option<String>,
    pub destination: Option<String>,
    pub consumer_service: String,
    /// `async` or `sync`.
    pub kind: String,
    pub count: i64,
    pub p50_ns: i64,
    pub p95_ns: i64,
    pub p99_ns: i64,
    pub max_ns: i64,
    pub flagged: i64,
    pub redeliveries: i64,
    pub clock_skew: i64,
}

pub fn edges_from(result: &QueryResult) -> Result<Vec<EdgeJson>, QueryError> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let s = |name| strings(batch, name);
        let n = |name| int64s(batch, name);
        let (ps, sys, dest, cs, kind) = (
            s("producer_service")?,
            s("system")?,
            s("destination")?,
            s("consumer_service")?,
            s("kind")?,
        );
        let (count, p50, p95, p99, max) = (
            n("count")?,
            n("p50_ns")?,
            n("p95_ns")?,
            n("p99_ns")?,
            n("max_ns")?,
        );
        let (flagged, redeliveries, skew) = (n("flagged")?, n("redeliveries")?, n("clock_skew")?);
        for i in 0..batch.num_rows() {
            out.push(EdgeJson {
                producer_service: ps.value(i).to_owned(),
                system: opt_str(&sys, i),
                destination: opt_str(&dest, i),
                consumer_service: cs.value(i).to_owned(),
                kind: kind.value(i).to_owned(),
                count: count.value(i),
                p50_ns: p50.value(i),
                p95_ns: p95.value(i),
                p99_ns: p99.value(i),
                max_ns: max.value(i),
                flagged: flagged.value(i),
                redeliveries: redeliveries.value(i),
                clock_skew: skew.value(i),
            });
        }
    }
    Ok(out)
}

/// Invocations per function with their cold starts (only on-demand ones
/// count in `cold_starts`, `rate` and the cold duration).
pub fn cold_starts_sql(window: TimeWindow) -> String {
    let on_demand = "(cold_start AND CAST(cold_start_type AS VARCHAR) = 'on_demand')";
    format!(
        "SELECT CAST(service_name AS VARCHAR) AS function, CAST(platform AS VARCHAR) AS platform, \
                count(*) AS invocations, \
                sum(CASE WHEN {on_demand} THEN 1 ELSE 0 END) AS cold_starts, \
                sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = 'proactive' THEN 1 ELSE 0 END) AS proactive, \
                sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = 'provisioned' THEN 1 ELSE 0 END) AS provisioned, \
                sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = 'snapstart' THEN 1 ELSE 0 END) AS snapstart, \
                CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY init_duration_ns) AS BIGINT) AS init_p50_ns, \
                CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY init_duration_ns) AS BIGINT) AS init_p95_ns, \
                CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN {on_demand} THEN duration_ns END) AS BIGINT) AS cold_p50_ns, \
                CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY CASE WHEN cold_start THEN NULL ELSE duration_ns END) AS BIGINT) AS warm_p50_ns \
         FROM spans WHERE {INVOCATION_SQL}{} \
         GROUP BY 1, 2 ORDER BY 1",
        window.predicate("start_time")
    )
}

/// Cold starts of one function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionColdStarts {
    pub function: String,
    pub platform: String,
    pub invocations: i64,
    /// On-demand cold starts: a user waited.
    pub cold_starts: i64,
    /// `cold_starts / invocations`.
    pub rate: f64,
    pub proactive: i64,
    pub provisioned: i64,
    pub snapstart: i64,
    pub init_p50_ns: Option<i64>,
    pub init_p95_ns: Option<i64>,
    pub cold_p50_ns: Option<i64>,
    pub warm_p50_ns: Option<i64>,
    /// `cold_p50_ns − warm_p50_ns`: what a cold start costs a user.
    pub penalty_ns: Option<i64>,
}

pub fn cold_starts_from(result: &QueryResult) -> Result<Vec<FunctionColdStarts>, QueryError> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let n = |name| int64s(batch, name);
        let (function, platform) = (strings(batch, "function")?, strings(batch, "platform")?);
        let (inv, cold, pro, prov, snap) = (
            n("invocations")?,
            n("cold_starts")?,
            n("proactive")?,
            n("provisioned")?,
            n("snapstart")?,
        );
        let (i50, i95, c50, w50) = (
            n("init_p50_ns")?,
            n("init_p95_ns")?,
            n("cold_p50_ns")?,
            n("warm_p50_ns")?,
        );
        let opt = |a: &arrow::array::Int64Array, i: usize| {
            arrow::array::Array::is_valid(a, i).then(|| a.value(i))
        };
        for i in 0..batch.num_rows() {
            let (cold_p50, warm_p50) = (opt(&c50, i), opt(&w50, i));
            out.push(FunctionColdStarts {
                function: function.value(i).to_owned(),
                platform: platform.value(i).to_owned(),
                invocations: inv.value(i),
                cold_starts: cold.value(i),
                rate: if inv.value(i) > 0 {
                    cold.value(i) as f64 / inv.value(i) as f64
                } else {
                    0.0
                },
                proactive: pro.value(i),
                provisioned: prov.value(i),
                snapstart: snap.value(i),
                init_p50_ns: opt(&i50, i),
                init_p95_ns: opt(&i95, i),
                cold_p50_ns: cold_p50,
                warm_p50_ns: warm_p50,
                penalty_ns: cold_p50.zip(warm_p50).map(|(c, w)| c - w),
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
    use crate::table::SegmentTable;

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
