//! Cold starts per function (`GET /api/v1/cold-starts`): invocations,
//! on-demand cold starts, their rate and penalty, init durations. Merged
//! from the per-minute `function_rollups` when a correlator keeps them;
//! [`cold_starts_sql`] says the same over the `spans` rows, minute for
//! minute.

use arrow::array::RecordBatch;
use seam_correlate::INVOCATION_SQL;
use seam_correlate::rollup::{Function, FunctionTotals, function_rows};
use serde::Serialize;

use super::{Merging, TimeWindow};
use crate::columns::{int64s, strings};
use crate::error::QueryError;
use crate::session::QueryResult;

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

impl FunctionColdStarts {
    fn new(function: String, platform: String, t: &FunctionTotals) -> Self {
        let (cold_p50, warm_p50) = (t.cold.quantile(0.5), t.warm.quantile(0.5));
        Self {
            function,
            platform,
            invocations: t.invocations,
            cold_starts: t.cold_starts,
            rate: if t.invocations > 0 {
                t.cold_starts as f64 / t.invocations as f64
            } else {
                0.0
            },
            proactive: t.proactive,
            provisioned: t.provisioned,
            snapstart: t.snapstart,
            init_p50_ns: t.init.quantile(0.5),
            init_p95_ns: t.init.quantile(0.95),
            cold_p50_ns: cold_p50,
            warm_p50_ns: warm_p50,
            penalty_ns: cold_p50.zip(warm_p50).map(|(c, w)| c - w),
        }
    }
}

/// Functions merged from rows of `function_rollups`.
pub struct FunctionMerge(Merging<Function, FunctionTotals>);

impl Default for FunctionMerge {
    fn default() -> Self {
        Self(Merging::new(|parts| FunctionTotals::merged(parts.iter())))
    }
}

impl FunctionMerge {
    pub fn add(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let rows = function_rows(batch).map_err(|e| QueryError::Internal(e.to_string()))?;
        for ((_, function), totals) in rows {
            self.0.add(function, totals);
        }
        Ok(())
    }

    /// The functions by name.
    pub fn finish(self) -> Vec<FunctionColdStarts> {
        let mut out: Vec<FunctionColdStarts> = (self.0.finish())
            .filter(|(_, t)| t.invocations > 0)
            .map(|(f, t)| FunctionColdStarts::new(f.function, f.platform, &t))
            .collect();
        out.sort_by(|a, b| (&a.function, &a.platform).cmp(&(&b.function, &b.platform)));
        out
    }
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
