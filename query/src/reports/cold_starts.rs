//! Cold starts per function (`GET /api/v1/cold-starts`): invocations,
//! on-demand cold starts, their rate and penalty, init durations.

use seam_correlate::INVOCATION_SQL;
use serde::Serialize;

use super::TimeWindow;
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
