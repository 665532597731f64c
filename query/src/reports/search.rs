//! Trace search: `GET /api/v1/search` parameters, how they are answered
//! from the `traces` summaries, and the summaries it returns.
//!
//! A trace matches when **one of its spans** passes every span filter
//! (service, operation, time range, duration bounds, cold start,
//! attributes), the way Jaeger searches, and the trace passes the trace
//! filters (`errors`, `flagged`). Its summary covers all of its spans.
//!
//! Parameters:
//!
//! | parameter | value |
//! |---|---|
//! | `service`, `operation` | exact service and span name |
//! | `start`, `end` | span start bounds (inclusive): RFC 3339 (`2024-05-01T12:00:00Z`) or integer unix nanoseconds; `start` defaults to an hour ago |
//! | `min_duration`, `max_duration` | span duration bounds (inclusive): `250ms`, `1.5s`, `2m` or integer nanoseconds |
//! | `cold_start` | `true` or `false` |
//! | `attr.KEY` | span attribute `KEY` equals the value; may repeat for several keys |
//! | `errors` | `true`: traces with an error span; `false`: traces without |
//! | `flagged` | `true`: traces on a boundary slower than its threshold; `false`: traces on none |
//! | `limit` | traces to return, 1 to 1000, default 20 |
//!
//! An empty value (`service=`) is the same as leaving the parameter out,
//! which is what form-based UIs send. Filter values go into the plan as
//! literals through DataFusion's expression API, never into SQL text.
//!
//! # How it is answered
//!
//! From the newest summaries back, a window of start times at a time,
//! each window about as wide as a few pages of results (from the table's
//! row counts per time range, then from what the last window held):
//!
//! ```text
//!  traces rows with start in [lo, hi], overlapping [start, end],
//!  passing what a summary can rule out (service among its services,
//!  duration, cold start, flagged)           ─▶ merged by trace, newest first
//!       │ decided by the summary alone? (no filter a span must pass, or only
//!       │ the service, with the whole trace inside [start, end])
//!       ├─ yes ─▶ result
//!       └─ no  ─▶ the candidates' spans, by trace id, with the span filters ─▶ result
//!  until `limit` results, or the window reaches `start`; then the traces
//!  that began before `start` and reach into it
//! ```
//!
//! Search never reads spans beyond the candidates' and never a summary
//! outside the time range asked. A trace whose spans arrived more than
//! `correlation.trace_idle` apart has a summary row per burst; search
//! shows it once, summarized by the first row it meets.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use datafusion::datasource::MemTable;
use datafusion::error::Result as DfResult;
use datafusion::functions_nested::expr_fn::array_has;
use datafusion::prelude::{DataFrame, Expr, SessionContext, col, get_field, lit};
use seam_model::schema::{col as column, trace_col};
use seam_model::tables::{SPANS, TRACES};
use serde::Serialize;

use super::{DURATION, ParamError, TIME, parse_bool, parse_duration, parse_time, timestamp};
use seam_correlate::CorrelationView;
use seam_store::Table;

use crate::columns::{booleans, int64s, opt_str, raw, strings};
use crate::error::QueryError;
use crate::session::QueryResult;

/// How far back a search looks when `start` is not given, as Jaeger does.
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(3600);

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
    /// Whether a span of the trace has status ERROR.
    pub errors: Option<bool>,
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
            errors: None,
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
                "errors" => {
                    params.errors =
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

    /// Whether a filter only a span can decide is set (beyond the
    /// service, which a summary lists).
    fn needs_spans(&self) -> bool {
        self.operation.is_some()
            || self.min_duration.is_some()
            || self.max_duration.is_some()
            || self.cold_start.is_some()
            || !self.attributes.is_empty()
    }

    /// The span filters as one predicate, the time bounds `[start, end]`
    /// included.
    fn span_predicate(&self, start: i64, end: Option<i64>) -> Expr {
        let mut filters = vec![col(column::START_TIME).gt_eq(timestamp(start))];
        if let Some(service) = &self.service {
            filters.push(col(column::SERVICE_NAME).eq(lit(service.as_str())));
        }
        if let Some(operation) = &self.operation {
            filters.push(col(column::NAME).eq(lit(operation.as_str())));
        }
        if let Some(end) = end {
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
        filters
            .into_iter()
            .reduce(Expr::and)
            .expect("the start bound is always there")
    }

    /// What rules a summary row out whatever its other rows hold: the
    /// span a match needs is in one row, and that row lists its service,
    /// spans its duration and says whether one of its spans was cold. The
    /// trace filters are the same for every row of a trace.
    fn row_filters(&self) -> Vec<Expr> {
        let mut filters = Vec::new();
        if let Some(service) = &self.service {
            filters.push(array_has(col(trace_col::SERVICES), lit(service.as_str())));
        }
        if let Some(min) = self.min_duration {
            filters.push(col(trace_col::DURATION_NS).gt_eq(lit(min)));
        }
        if self.cold_start == Some(true) {
            filters.push(col(trace_col::COLD_START).eq(lit(true)));
        }
        if let Some(flagged) = self.flagged {
            filters.push(col(trace_col::FLAGGED).eq(lit(flagged)));
        }
        filters
    }

    /// Whether `trace` is a result (`Some(true)`), is not (`Some(false)`),
    /// or needs its spans looked at (`None`).
    fn decide(&self, trace: &Summary, start: i64, end: Option<i64>) -> Option<bool> {
        match self.errors {
            Some(true) if trace.errors == 0 => return Some(false),
            Some(false) if trace.errors > 0 => return Some(false),
            _ => {}
        }
        if self.flagged.is_some_and(|f| f != trace.flagged) {
            return Some(false);
        }
        if self.needs_spans() {
            return None;
        }
        match &self.service {
            // The earliest span starts inside the range.
            None => (trace.start >= start).then_some(true),
            Some(service) => {
                if !trace.services.iter().any(|s| s == service) {
                    return Some(false);
                }
                // Every span starts inside the range.
                let inside = trace.start >= start && end.is_none_or(|e| trace.end <= e);
                inside.then_some(true)
            }
        }
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
    "errors",
];

/// One trace in search results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The flow the trace belongs to (its own id when it was joined to no
    /// other trace).
    pub flow_id: String,
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
    /// Distinct platforms (`kubernetes`, `faas`, ...).
    pub platforms: Vec<String>,
    /// A span of the trace was a cold start.
    pub cold_start: bool,
    /// The trace is on a boundary slower than its threshold.
    pub flagged: bool,
}

/// A `traces` row as search reads it.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub(crate) trace_id: String,
    pub(crate) flow_id: String,
    pub(crate) root_service: String,
    pub(crate) root_name: String,
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) spans: i64,
    pub(crate) errors: i64,
    pub(crate) services: Vec<String>,
    pub(crate) platforms: Vec<String>,
    pub(crate) cold: bool,
    pub(crate) flagged: bool,
}

impl Summary {
    /// Adds another row of the same trace.
    pub(crate) fn merge(&mut self, other: Summary) {
        if other.start < self.start {
            self.root_service = other.root_service;
            self.root_name = other.root_name;
            self.start = other.start;
        }
        self.end = self.end.max(other.end);
        self.spans += other.spans;
        self.errors += other.errors;
        for s in other.services {
            if !self.services.contains(&s) {
                self.services.push(s);
            }
        }
        self.services.sort_unstable();
        for p in other.platforms {
            if !self.platforms.contains(&p) {
                self.platforms.push(p);
            }
        }
        self.cold |= other.cold;
        self.flagged |= other.flagged;
    }

    fn into_json(self) -> TraceSummary {
        TraceSummary {
            trace_id: self.trace_id,
            flow_id: self.flow_id,
            root_service: self.root_service,
            root_name: self.root_name,
            start_unix_nano: self.start.to_string(),
            duration_ns: self.end.saturating_sub(self.start),
            span_count: self.spans,
            error_count: self.errors,
            services: self.services,
            platforms: self.platforms,
            cold_start: self.cold,
            flagged: self.flagged,
        }
    }
}

fn string_lists(
    batch: &arrow::array::RecordBatch,
    name: &str,
) -> Result<Vec<Vec<String>>, QueryError> {
    let lists = raw(batch, name)?
        .as_list_opt::<i32>()
        .ok_or_else(|| QueryError::Internal(format!("'{name}' is not a list")))?;
    (0..lists.len())
        .map(|row| {
            let values = arrow::compute::cast(&lists.value(row), &DataType::Utf8)
                .map_err(|e| QueryError::Internal(format!("reading {name}: {e}")))?;
            Ok(values
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect())
        })
        .collect()
}

/// Reads `traces` rows, merges the rows of each trace, and orders them
/// newest first (ties by trace id).
pub(crate) fn read_summaries(result: &QueryResult) -> Result<Vec<Summary>, QueryError> {
    let mut by_trace: HashMap<String, Summary> = HashMap::new();
    for batch in &result.batches {
        let trace_id = strings(batch, trace_col::TRACE_ID)?;
        let flow_id = strings(batch, trace_col::FLOW_ID)?;
        let root_service = strings(batch, trace_col::ROOT_SERVICE)?;
        let root_name = strings(batch, trace_col::ROOT_NAME)?;
        let start = int64s(batch, trace_col::START_TIME)?;
        let end = int64s(batch, trace_col::END_TIME)?;
        let spans = int64s(batch, trace_col::SPAN_COUNT)?;
        let errors = int64s(batch, trace_col::ERROR_COUNT)?;
        let cold = booleans(batch, trace_col::COLD_START)?;
        let flagged = booleans(batch, trace_col::FLAGGED)?;
        let services = string_lists(batch, trace_col::SERVICES)?;
        let platforms = string_lists(batch, trace_col::PLATFORMS)?;
        for (row, (services, platforms)) in services.into_iter().zip(platforms).enumerate() {
            let summary = Summary {
                trace_id: trace_id.value(row).to_owned(),
                flow_id: opt_str(&flow_id, row).unwrap_or_else(|| trace_id.value(row).to_owned()),
                root_service: root_service.value(row).to_owned(),
                root_name: root_name.value(row).to_owned(),
                start: start.value(row),
                end: end.value(row),
                spans: spans.value(row),
                errors: errors.value(row),
                services,
                platforms,
                cold: cold.value(row),
                flagged: flagged.value(row),
            };
            match by_trace.entry(summary.trace_id.clone()) {
                Entry::Occupied(mut found) => found.get_mut().merge(summary),
                Entry::Vacant(slot) => {
                    slot.insert(summary);
                }
            }
        }
    }
    let mut out: Vec<Summary> = by_trace.into_values().collect();
    newest_first(&mut out);
    Ok(out)
}

/// Orders summaries newest first, ties by trace id.
pub(crate) fn newest_first(summaries: &mut [Summary]) {
    summaries.sort_unstable_by(|a, b| {
        b.start
            .cmp(&a.start)
            .then_with(|| a.trace_id.cmp(&b.trace_id))
    });
}

/// Summary rows with start in `[lo, hi]` that may hold a match of
/// `params` within `[start, end]`.
pub(crate) async fn window_frame(
    ctx: &SessionContext,
    params: &SearchParams,
    (start, end): (i64, Option<i64>),
    (lo, hi): (i64, i64),
) -> DfResult<DataFrame> {
    let mut filters = params.row_filters();
    filters.push(col(trace_col::START_TIME).gt_eq(timestamp(lo)));
    filters.push(col(trace_col::START_TIME).lt_eq(timestamp(hi)));
    filters.push(col(trace_col::END_TIME).gt_eq(timestamp(start)));
    if let Some(end) = end {
        filters.push(col(trace_col::START_TIME).lt_eq(timestamp(end)));
    }
    let predicate = filters
        .into_iter()
        .reduce(Expr::and)
        .expect("bounds are set");
    ctx.table(TRACES).await?.filter(predicate)
}

/// Every summary row of the traces `ids` that may hold a match of
/// `params` within `[start, end]`: the candidates when the flagged or
/// cold traces are known by id.
pub(crate) async fn listed_frame(
    ctx: &SessionContext,
    params: &SearchParams,
    (start, end): (i64, Option<i64>),
    ids: Vec<String>,
) -> DfResult<DataFrame> {
    let mut filters = params.row_filters();
    filters.push(col(trace_col::TRACE_ID).in_list(ids.into_iter().map(lit).collect(), false));
    filters.push(col(trace_col::END_TIME).gt_eq(timestamp(start)));
    if let Some(end) = end {
        filters.push(col(trace_col::START_TIME).lt_eq(timestamp(end)));
    }
    let predicate = filters.into_iter().reduce(Expr::and).expect("ids are set");
    ctx.table(TRACES).await?.filter(predicate)
}

/// The traces among `ids` with a span passing the span filters of
/// `params` within `[start, end]`. The candidates' spans are read first
/// and the filters applied to them alone: evaluated in the scan, an
/// attribute filter would read the attribute maps of every row of every
/// segment that holds a candidate.
pub(crate) async fn matching_frame(
    ctx: &SessionContext,
    params: &SearchParams,
    (start, end): (i64, Option<i64>),
    ids: Vec<String>,
) -> DfResult<DataFrame> {
    let ids = ids.into_iter().map(lit).collect();
    // Only what the filters read: `cold_start` is resolved, which reads
    // whole rows, and the attribute maps are most of a span's bytes.
    let mut columns = vec![col(column::TRACE_ID), col(column::START_TIME)];
    if params.service.is_some() {
        columns.push(col(column::SERVICE_NAME));
    }
    if params.operation.is_some() {
        columns.push(col(column::NAME));
    }
    if params.min_duration.is_some() || params.max_duration.is_some() {
        columns.push(col(column::DURATION_NS));
    }
    if params.cold_start.is_some() {
        columns.push(col(column::COLD_START));
    }
    if !params.attributes.is_empty() {
        columns.push(col(column::ATTRIBUTES));
    }
    let spans = ctx
        .table(SPANS)
        .await?
        .filter(col(column::TRACE_ID).in_list(ids, false))?
        .select(columns)?;
    let schema = Arc::new(spans.schema().as_arrow().clone());
    let batches = spans.collect().await?;
    let table = MemTable::try_new(schema, vec![batches])?;
    ctx.read_table(Arc::new(table))?
        .filter(params.span_predicate(start, end))?
        .select(vec![col(column::TRACE_ID)])?
        .distinct()
}

/// The trace ids of a [`matching_frame`] result.
pub(crate) fn matching_ids(result: &QueryResult) -> Result<HashSet<String>, QueryError> {
    let mut out = HashSet::new();
    for batch in &result.batches {
        let ids = strings(batch, column::TRACE_ID)?;
        out.extend(ids.iter().flatten().map(str::to_owned));
    }
    Ok(out)
}

/// Results of a search, collected newest first.
pub(crate) struct Results {
    limit: usize,
    found: Vec<TraceSummary>,
    seen: HashSet<String>,
}

impl Results {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            found: Vec::new(),
            seen: HashSet::new(),
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.found.len() >= self.limit
    }

    pub(crate) fn missing(&self) -> usize {
        self.limit.saturating_sub(self.found.len())
    }

    pub(crate) fn into_vec(self) -> Vec<TraceSummary> {
        self.found
    }

    /// Candidates not shown already, each with what its summary decides.
    pub(crate) fn candidates(
        &self,
        params: &SearchParams,
        summaries: Vec<Summary>,
        (start, end): (i64, Option<i64>),
    ) -> Vec<(Summary, Option<bool>)> {
        summaries
            .into_iter()
            .filter(|s| !self.seen.contains(&s.trace_id))
            .filter_map(|s| {
                let decided = params.decide(&s, start, end);
                (decided != Some(false)).then_some((s, decided))
            })
            .collect()
    }

    /// Takes candidates in order until full; `matched` says which of the
    /// undecided ones matched.
    pub(crate) fn take(
        &mut self,
        candidates: impl IntoIterator<Item = (Summary, Option<bool>)>,
        matched: &HashSet<String>,
    ) {
        for (summary, decided) in candidates {
            if self.full() {
                return;
            }
            let yes = decided.unwrap_or_else(|| matched.contains(&summary.trace_id));
            if yes && self.seen.insert(summary.trace_id.clone()) {
                self.found.push(summary.into_json());
            }
        }
    }
}

/// Now, in ns since the epoch.
pub(crate) fn now_unix_nano() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_nanos()).unwrap_or(i64::MAX)
}

/// Where the summaries lie in time, and how many there are: what sizes
/// search's first window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Density {
    pub earliest: i64,
    pub latest: i64,
    rows: u64,
}

impl Density {
    /// Of the `traces` table and the summaries not written yet; `None`
    /// when there are none.
    pub(crate) fn of(table: &Table, view: &CorrelationView) -> Option<Self> {
        view.with_active_traces(|active| {
            let snapshot = table.snapshot();
            let mut out: Option<Density> = None;
            let mut add = |range: Option<(i64, i64)>, rows: u64| {
                let Some((lo, hi)) = range else { return };
                let d = out.get_or_insert(Density {
                    earliest: lo,
                    latest: hi,
                    rows: 0,
                });
                d.earliest = d.earliest.min(lo);
                d.latest = d.latest.max(hi);
                d.rows += rows;
            };
            for segment in snapshot.segments.iter() {
                add(segment.time_range, segment.batch.num_rows() as u64);
            }
            for file in snapshot.sealed.iter() {
                add(file.time_range, file.rows);
            }
            for summary in active.summaries() {
                add(Some((summary.start, summary.start)), 1);
            }
            out
        })
    }

    /// A window expected to hold about `rows` summaries.
    pub(crate) fn width_for(&self, rows: usize) -> i64 {
        let span = self.latest.saturating_sub(self.earliest).saturating_add(1) as f64;
        let width = span * rows as f64 / self.rows.max(1) as f64;
        (width as i64).max(MIN_WIDTH)
    }
}

/// The most flagged or cold traces read by id; past it, search walks the
/// summaries by time as for any filter.
pub(crate) const MAX_LISTED: usize = 50_000;

/// The narrowest window: a millisecond.
const MIN_WIDTH: i64 = 1_000_000;

/// Summaries a window should hold: a few pages of results.
pub(crate) fn window_rows(limit: usize) -> usize {
    (4 * limit).clamp(256, 8192)
}

/// The next window's width, from what the last one held: wider when it
/// held few rows, narrower when it held many, by at most 8 times.
pub(crate) fn next_width(width: i64, rows: usize, want: usize) -> i64 {
    let scaled = if rows == 0 {
        width.saturating_mul(8)
    } else {
        let factor = (want as f64 / rows as f64).clamp(0.125, 8.0);
        (width as f64 * factor) as i64
    };
    scaled.max(MIN_WIDTH)
}

/// How many candidates to look up next: enough for the results still
/// missing at the share of looked-up candidates that matched so far (a
/// lookup costs about a trace's worth of pages each).
pub(crate) fn next_page(missing: usize, looked_up: usize, matched: usize) -> usize {
    let rate = if looked_up == 0 {
        1.0
    } else {
        (matched as f64 / looked_up as f64).max(1.0 / 16.0)
    };
    ((missing as f64 / rate).ceil() as usize + 4).clamp(8, 512)
}

/// The id of a candidate, for a lookup of its spans.
pub(crate) fn candidate_id(candidate: &(Summary, Option<bool>)) -> Option<&str> {
    candidate
        .1
        .is_none()
        .then_some(candidate.0.trace_id.as_str())
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
