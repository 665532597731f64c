//! The edges between services (`GET /api/v1/boundaries`): boundaries
//! grouped by producer service, system, destination and consumer service,
//! with latency percentiles. Merged from the per-minute `edge_rollups`
//! when a correlator keeps them; [`edges_sql`] says the same over the
//! `boundaries` rows, minute for minute.

use arrow::array::RecordBatch;
use seam_correlate::rollup::{Edge, EdgeTotals, edge_rows};
use serde::Serialize;

use super::{Merging, TimeWindow};
use crate::columns::{int64s, opt_str, strings};
use crate::error::QueryError;
use crate::session::QueryResult;

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

/// Edges merged from rows of `edge_rollups`.
pub struct EdgeMerge(Merging<Edge, EdgeTotals>);

impl Default for EdgeMerge {
    fn default() -> Self {
        Self(Merging::new(|parts| EdgeTotals::merged(parts.iter())))
    }
}

impl EdgeMerge {
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let rows = edge_rows(batch).map_err(|e| QueryError::Internal(e.to_string()))?;
        for ((_, edge), totals) in rows {
            self.0.add(edge, totals);
        }
        Ok(())
    }

    /// The edges, most boundaries first.
    pub fn finish(self) -> Vec<EdgeJson> {
        let mut out: Vec<EdgeJson> = (self.0.finish())
            .filter(|(_, t)| t.count > 0)
            .map(|(edge, t)| {
                let q = |q| t.latency.quantile(q).unwrap_or_default();
                EdgeJson {
                    p50_ns: q(0.5),
                    p95_ns: q(0.95),
                    p99_ns: q(0.99),
                    max_ns: t.max_ns.unwrap_or_default(),
                    count: t.count,
                    flagged: t.flagged,
                    redeliveries: t.redeliveries,
                    clock_skew: t.clock_skew,
                    producer_service: edge.producer_service,
                    system: edge.system,
                    destination: edge.destination,
                    consumer_service: edge.consumer_service,
                    kind: edge.kind,
                }
            })
            .collect();
        sort_edges(&mut out);
        out
    }
}

/// Most boundaries first, then by name: the order [`edges_sql`] asks,
/// made total.
pub fn sort_edges(edges: &mut [EdgeJson]) {
    edges.sort_by(|a, b| {
        (b.count.cmp(&a.count))
            .then_with(|| a.producer_service.cmp(&b.producer_service))
            .then_with(|| a.consumer_service.cmp(&b.consumer_service))
            .then_with(|| {
                (&a.system, &a.destination, &a.kind).cmp(&(&b.system, &b.destination, &b.kind))
            })
    });
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
