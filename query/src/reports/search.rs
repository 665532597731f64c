//! Trace search: `GET /api/v1/search` parameters, the query they become, and
//! the per-trace summaries it returns.
//!
//! A trace matches when **one of its spans** passes every span filter
//! (service, operation, time range, duration bounds, cold start,
//! attributes), the way Jaeger searches. Its summary then covers all of its
//! spans.
//!
//! Parameters:
//!
//! | parameter | value |
//! |---|---|
//! | `service`, `operation` | exact service and span name |
//! | `start`, `end` | span start bounds (inclusive): RFC 3339 (`2024-05-01T12:00:00Z`) or integer unix nanoseconds |
//! | `min_duration`, `max_duration` | span duration bounds (inclusive): `250ms`, `1.5s`, `2m` or integer nanoseconds |
//! | `cold_start` | `true` or `false` |
//! | `attr.KEY` | span attribute `KEY` equals the value; may repeat for several keys |
//! | `limit` | traces to return, 1 to 1000, default 20 |
//! | `flagged` | `true`: traces on a boundary slower than its threshold; `false`: traces on none |
//!
//! An empty value (`service=`) is the same as leaving the parameter out,
//! which is what form-based UIs send. Filter values go into the plan as
//! literals through DataFusion's expression API, never into SQL text.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::error::Result as DfResult;
use datafusion::functions_aggregate::expr_fn::{array_agg, count, first_value, max, min, sum};
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::prelude::{DataFrame, Expr, JoinType, SessionContext, cast, col, get_field, lit};
use seam_model::schema::col as column;
use seam_model::tables::{BOUNDARIES, SPANS};
use serde::Serialize;

use super::{DURATION, ParamError, TIME, parse_bool, parse_duration, parse_time, timestamp};
use crate::columns::{int64s, strings};
use crate::error::QueryError;
use crate::session::QueryResult;

/// Traces returned when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` accepted.
pub const MAX_LIMIT: usize = 1000;

/// Validated search filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchParams {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Span start bounds, ns since the epoch, inclusive.
    pub start: Option<i64>,
    pub end: Option<i64>,
    /// Span duration bounds in ns, inclusive.
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    pub cold_start: Option<bool>,
    /// Whether the trace is on a flagged boundary (either side).
    pub flagged: Option<bool>,
    /// Attribute equalities, all required on the same span.
    pub attributes: Vec<(String, String)>,
    pub limit: usize,
}

impl Default for SearchParams {
    fn default() -> Self {
        Self {
            service: None,
            operation: None,
            start: None,
            end: None,
            min_duration: None,
            max_duration: None,
            cold_start: None,
            flagged: None,
            attributes: Vec::new(),
            limit: DEFAULT_LIMIT,
        }
    }
}

impl SearchParams {
    /// Reads query-string pairs in order.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ParamError> {
        let mut params = Self::default();
        let mut seen = BTreeSet::new();
        for (name, value) in pairs {
            if let Some(key) = name.strip_prefix("attr.")
                && !key.is_empty()
            {
                if !value.is_empty() {
                    params.attributes.push((key.to_owned(), value.clone()));
                }
                continue;
            }
            if !KNOWN.contains(&name.as_str()) {
                return Err(ParamError::Unknown(name.clone()));
            }
            if !seen.insert(name.as_str()) {
                return Err(ParamError::Repeated(name.clone()));
            }
            if value.is_empty() {
                continue;
            }
            let invalid = |expected| ParamError::Invalid {
                name: name.clone(),
                value: value.clone(),
                expected,
            };
            match name.as_str() {
                "service" => params.service = Some(value.clone()),
                "operation" => params.operation = Some(value.clone()),
                "start" => params.start = Some(parse_time(value).ok_or_else(|| invalid(TIME))?),
                "end" => params.end = Some(parse_time(value).ok_or_else(|| invalid(TIME))?),
                "min_duration" => {
                    params.min_duration =
                        Some(parse_duration(value).ok_or_else(|| invalid(DURATION))?)
                }
                "max_duration" => {
                    params.max_duration =
                        Some(parse_duration(value).ok_or_else(|| invalid(DURATION))?)
                }
                "cold_start" => {
                    params.cold_start =
                        Some(parse_bool(value).ok_or_else(|| invalid("expected true or false"))?)
                }
                "limit" => {
                    params.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| invalid("expected a whole number from 1 to 1000"))?
                }
                "flagged" => {
                    params.flagged =
                        Some(parse_bool(value).ok_or_else(|| invalid("expected true or false"))?)
                }
                _ => unreachable!("every known parameter is handled"),
            }
        }
        if let (Some(start), Some(end)) = (params.start, params.end)
            && start > end
        {
            return Err(ParamError::EmptyTimeRange);
        }
        if let (Some(min), Some(max)) = (params.min_duration, params.max_duration)
            && min > max
        {
            return Err(ParamError::EmptyDurationRange);
        }
        Ok(params)
    }

    /// The span filters as one predicate, `None` when there are none.
    fn span_predicate(&self) -> Option<Expr> {
        let mut filters = Vec::new();
        if let Some(service) = &self.service {
            filters.push(col(column::SERVICE_NAME).eq(lit(service.as_str())));
        }
        if let Some(operation) = &self.operation {
            filters.push(col(column::NAME).eq(lit(operation.as_str())));
        }
        if let Some(start) = self.start {
            filters.push(col(column::START_TIME).gt_eq(timestamp(start)));
        }
        if let Some(end) = self.end {
            filters.push(col(column::START_TIME).lt_eq(timestamp(end)));
        }
        if let Some(min) = self.min_duration {
            filters.push(col(column::DURATION_NS).gt_eq(lit(min)));
        }
        if let Some(max) = self.max_duration {
            filters.push(col(column::DURATION_NS).lt_eq(lit(max)));
        }
        if let Some(cold) = self.cold_start {
            filters.push(col(column::COLD_START).eq(lit(cold)));
        }
        for (key, value) in &self.attributes {
            filters.push(get_field(col(column::ATTRIBUTES), key.as_str()).eq(lit(value.as_str())));
        }
        filters.into_iter().reduce(Expr::and)
    }
}

/// Every parameter name but `attr.*`, the one place to add a filter.
const KNOWN: &[&str] = &[
    "service",
    "operation",
    "start",
    "end",
    "min_duration",
    "max_duration",
    "cold_start",
    "limit",
    "flagged",
];

/// One trace in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    /// Service and name of the root span: the one without a parent, or the
    /// earliest span when the root has not arrived (yet).
    pub root_service: String,
    pub root_name: String,
    /// A decimal string, like every ns timestamp in the API.
    pub start_unix_nano: String,
    /// From the earliest start to the latest end among the trace's spans.
    pub duration_ns: i64,
    pub span_count: i64,
    pub error_count: i64,
    /// Distinct services, sorted.
    pub services: Vec<String>,
}

/// The plan: traces with a matching span, summarized over all their spans,
/// latest first.
pub(crate) async fn summaries_frame(
    ctx: &SessionContext,
    params: &SearchParams,
) -> DfResult<DataFrame> {
    let spans = ctx.table(SPANS).await?;
    let mut matched = spans.clone();
    if let Some(predicate) = params.span_predicate() {
        matched = matched.filter(predicate)?;
    }
    let mut matched = matched
        .select(vec![col(column::TRACE_ID).alias("matched_trace_id")])?
        .distinct()?;
    if let Some(flagged) = params.flagged {
        let boundaries = ctx
            .table(BOUNDARIES)
            .await?
            .filter(col("flagged").eq(lit(true)))?;
        let on_flagged = boundaries
            .clone()
            .select(vec![col("producer_trace_id").alias("flagged_trace_id")])?
            .union(boundaries.select(vec![col("consumer_trace_id").alias("flagged_trace_id")])?)?
            .distinct()?;
        let join = if flagged {
            JoinType::LeftSemi
        } else {
            JoinType::LeftAnti
        };
        matched = matched.join(
            on_flagged,
            join,
            &["matched_trace_id"],
            &["flagged_trace_id"],
            None,
        )?;
    }

    let root_first = || {
        vec![
            col(column::PARENT_SPAN_ID).is_not_null().sort(true, false),
            col(column::START_TIME).sort(true, false),
        ]
    };
    let service = cast(col(column::SERVICE_NAME), DataType::Utf8);
    spans
        .join(
            matched,
            JoinType::LeftSemi,
            &[column::TRACE_ID],
            &["matched_trace_id"],
            None,
        )?
        .aggregate(
            vec![col(column::TRACE_ID)],
            vec![
                min(col(column::START_TIME)).alias("start"),
                max(col(column::END_TIME)).alias("end"),
                count(lit(1)).alias("span_count"),
                sum(cast(
                    col(column::STATUS_CODE).eq(lit("ERROR")),
                    DataType::Int64,
                ))
                .alias("error_count"),
                array_agg(service.clone())
                    .distinct()
                    .build()?
                    .alias("services"),
                first_value(service, root_first()).alias("root_service"),
                first_value(col(column::NAME), root_first()).alias("root_name"),
            ],
        )?
        .sort(vec![
            col("start").sort(false, false),
            col(column::TRACE_ID).sort(true, false),
        ])?
        .limit(0, Some(params.limit))
}

/// Reads the rows of [`summaries_frame`].
pub(crate) fn summaries(result: &QueryResult) -> Result<Vec<TraceSummary>, QueryError> {
    let mut out = Vec::with_capacity(result.num_rows());
    for batch in &result.batches {
        let trace_id = strings(batch, column::TRACE_ID)?;
        let start = int64s(batch, "start")?;
        let end = int64s(batch, "end")?;
        let span_count = int64s(batch, "span_count")?;
        let error_count = int64s(batch, "error_count")?;
        let root_service = strings(batch, "root_service")?;
        let root_name = strings(batch, "root_name")?;
        let services = batch
            .column_by_name("services")
            .and_then(|c| c.as_list_opt::<i32>())
            .ok_or_else(|| QueryError::Internal("search result has no services list".into()))?;
        for row in 0..batch.num_rows() {
            let names = arrow::compute::cast(&services.value(row), &DataType::Utf8)
                .map_err(|e| QueryError::Internal(format!("reading services: {e}")))?;
            let names = names.as_string::<i32>();
            let services: BTreeSet<String> = names.iter().flatten().map(str::to_owned).collect();
            out.push(TraceSummary {
                trace_id: trace_id.value(row).to_owned(),
                root_service: root_service.value(row).to_owned(),
                root_name: root_name.value(row).to_owned(),
                start_unix_nano: start.value(row).to_string(),
                duration_ns: end.value(row).saturating_sub(start.value(row)),
                span_count: span_count.value(row),
                error_count: if error_count.is_null(row) {
                    0
                } else {
                    error_count.value(row)
                },
                services: services.into_iter().collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<SearchParams, ParamError> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        SearchParams::parse(&pairs)
    }

    #[test]
    fn reads_every_parameter() {
        let p = parse(&[
            ("service", "checkout"),
            ("operation", "GET /checkout"),
            ("start", "2023-11-14T22:13:20Z"),
            ("end", "1700000010000000000"),
            ("min_duration", "250ms"),
            ("max_duration", "2000000000"),
            ("cold_start", "true"),
            ("attr.http.route", "/checkout"),
            ("attr.tenant", "acme"),
            ("limit", "5"),
        ])
        .unwrap();
        assert_eq!(p.service.as_deref(), Some("checkout"));
        assert_eq!(p.operation.as_deref(), Some("GET /checkout"));
        assert_eq!(p.start, Some(1_700_000_000_000_000_000));
        assert_eq!(p.end, Some(1_700_000_010_000_000_000));
        assert_eq!(p.min_duration, Some(250_000_000));
        assert_eq!(p.max_duration, Some(2_000_000_000));
        assert_eq!(p.cold_start, Some(true));
        assert_eq!(
            p.attributes,
            vec![
                ("http.route".into(), "/checkout".into()),
                ("tenant".into(), "acme".into())
            ]
        );
        assert_eq!(p.limit, 5);
    }

    #[test]
    fn accepts_offsets_and_empty_values() {
        let p = parse(&[
            ("start", "2023-11-15T00:13:20+02:00"),
            ("service", ""),
            ("limit", ""),
        ])
        .unwrap();
        assert_eq!(p.start, Some(1_700_000_000_000_000_000));
        assert_eq!(p.service, None);
        assert_eq!(p.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn refuses_bad_parameters_by_name() {
        assert_eq!(
            parse(&[("servce", "x")]),
            Err(ParamError::Unknown("servce".into()))
        );
        assert_eq!(
            parse(&[("attr.", "x")]),
            Err(ParamError::Unknown("attr.".into()))
        );
        assert_eq!(
            parse(&[("limit", "1"), ("limit", "2")]),
            Err(ParamError::Repeated("limit".into()))
        );
        assert_eq!(parse(&[("flagged", "true")]).unwrap().flagged, Some(true));
        assert_eq!(
            parse(&[("start", "2"), ("end", "1")]),
            Err(ParamError::EmptyTimeRange)
        );
        assert_eq!(
            parse(&[("min_duration", "2s"), ("max_duration", "1s")]),
            Err(ParamError::EmptyDurationRange)
        );
        for (name, value) in [
            ("start", "yesterday"),
            ("end", "2023-13-01T00:00:00Z"),
            ("min_duration", "fast"),
            ("max_duration", "-5"),
            ("cold_start", "yes"),
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "ten"),
        ] {
            let err = parse(&[(name, value)]).unwrap_err();
            assert!(
                matches!(&err, ParamError::Invalid { name: n, .. } if n == name),
                "{name}={value}: {err}"
            );
            assert!(err.to_string().contains(&format!("'{name}'")), "{err}");
        }
    }
}
