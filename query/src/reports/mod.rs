//! The reports the API answers besides SQL: trace search, the edges
//! between services, cold starts per function, and a flow by any of its
//! traces. Each builds its query from parameters it has validated (never
//! from SQL text a client sent) and reads the answer into the API's JSON
//! shape; the time, duration and window parameters they share are parsed
//! here.
//!
//! ```text
//!  spans ──(flow_id resolved at scan)──┐
//!                                      ├─▶ flows.rs (a flow's spans and boundaries)
//!  boundaries ─────────────────────────┘
//!  edge_rollups ─▶ boundaries.rs (edges: producer service, system, destination, consumer service)
//!  function_rollups ─▶ cold_starts.rs (per function)
//!  operation_rollups ─▶ explorer.rs (services and their operations)
//!  spans ─▶ search.rs (traces with a matching span, summarized)
//! ```

pub mod boundaries;
pub mod cold_starts;
pub mod explorer;
pub mod flows;
pub mod search;

use datafusion::common::ScalarValue;
use datafusion::prelude::{Expr, lit};

/// Why a report's parameters were refused; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown parameter '{0}'")]
    Unknown(String),
    #[error("parameter '{0}' is given more than once")]
    Repeated(String),
    #[error("invalid value '{value}' for parameter '{name}': {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("parameter 'start' is after 'end'")]
    EmptyTimeRange,
    #[error("parameter 'min_duration' is larger than 'max_duration'")]
    EmptyDurationRange,
}

pub(crate) const TIME: &str = "expected an RFC 3339 time or integer unix nanoseconds";
pub(crate) const DURATION: &str =
    "expected a duration such as 250ms or 1.5s, or integer nanoseconds";

pub(crate) fn parse_time(value: &str) -> Option<i64> {
    if let Ok(ns) = value.parse::<i64>() {
        return Some(ns);
    }
    arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(value).ok()
}

pub(crate) fn parse_duration(value: &str) -> Option<i64> {
    if let Ok(ns) = value.parse::<i64>() {
        return (ns >= 0).then_some(ns);
    }
    let d = humantime::parse_duration(value).ok()?;
    Some(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// The rows of a rollup table whose minute overlaps `window`.
pub(crate) async fn rollup_frame(
    ctx: &datafusion::prelude::SessionContext,
    table: &str,
    window: TimeWindow,
) -> datafusion::error::Result<datafusion::prelude::DataFrame> {
    use datafusion::prelude::col;
    use seam_model::schema::rollup_col::MINUTE;
    let mut frame = ctx.table(table).await?;
    if let Some(start) = window.start {
        let first = seam_correlate::rollup::minute_of(start);
        frame = frame.filter(col(MINUTE).gt_eq(timestamp(first)))?;
    }
    if let Some(end) = window.end {
        frame = frame.filter(col(MINUTE).lt_eq(timestamp(end)))?;
    }
    Ok(frame)
}

/// Rollup rows by key, merged a few dozen at a time so that a long time
/// range holds one running total per key rather than every minute's.
pub(crate) struct Merging<K, T> {
    parts: std::collections::HashMap<K, Vec<T>>,
    merge: fn(&[T]) -> T,
}

/// Rows a key gathers before they are merged into one.
const MERGE_AT: usize = 64;

impl<K: std::hash::Hash + Eq, T> Merging<K, T> {
    pub(crate) fn new(merge: fn(&[T]) -> T) -> Self {
        Self {
            parts: std::collections::HashMap::new(),
            merge,
        }
    }

    pub(crate) fn add(&mut self, key: K, totals: T) {
        let parts = self.parts.entry(key).or_default();
        parts.push(totals);
        if parts.len() >= MERGE_AT {
            let merged = (self.merge)(parts);
            parts.clear();
            parts.push(merged);
        }
    }

    pub(crate) fn finish(self) -> impl Iterator<Item = (K, T)> {
        let merge = self.merge;
        self.parts
            .into_iter()
            .map(move |(k, parts)| (k, merge(&parts)))
    }
}

pub(crate) fn timestamp(ns: i64) -> Expr {
    lit(ScalarValue::TimestampNanosecond(
        Some(ns),
        Some("UTC".into()),
    ))
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
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ParamError> {
        let mut window = Self::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "start" => &mut window.start,
                "end" => &mut window.end,
                _ => return Err(ParamError::Unknown(name.clone())),
            };
            if value.is_empty() {
                continue;
            }
            *slot = Some(parse_time(value).ok_or_else(|| ParamError::Invalid {
                name: name.clone(),
                value: value.clone(),
                expected: TIME,
            })?);
        }
        if let (Some(s), Some(e)) = (window.start, window.end)
            && s > e
        {
            return Err(ParamError::EmptyTimeRange);
        }
        Ok(window)
    }

    /// `AND minute …` for a rollup table: a minute's row counts when the
    /// minute overlaps the window, as the reports merged from rollups
    /// count them.
    pub(crate) fn minute_predicate(&self) -> String {
        let minutes = Self {
            start: self.start.map(seam_correlate::rollup::minute_of),
            end: self.end,
        };
        minutes.predicate(seam_model::schema::rollup_col::MINUTE)
    }

    /// `AND column BETWEEN …` for the bounds that are set.
    pub(crate) fn predicate(&self, column: &str) -> String {
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
