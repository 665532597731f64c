//! What the web explorer asks besides search and lookups: the services and
//! their operations (its filters), one edge's dwell histogram with its
//! slowest boundaries (the map), cold starts minute by minute (the
//! cold-start view) and the orphans list (the hops view). Each is one
//! query over a time window; string parameters enter the SQL as quoted
//! literals, never as SQL text.

use serde::Serialize;

use super::TimeWindow;
use super::flows::BoundaryJson;
use crate::columns::{int64s, opt_str, strings};
use crate::error::QueryError;
use crate::session::QueryResult;

/// `s` as a SQL string literal: quotes doubled, so no value can end the
/// literal early.
pub fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A service seen in the window, with the platform its spans ran on and,
/// for functions, the resource's `cloud.platform` (which function service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceJson {
    pub name: String,
    pub platform: String,
    pub cloud_platform: Option<String>,
    pub spans: i64,
}

pub fn services_sql(window: TimeWindow) -> String {
    format!(
        "SELECT service_name, platform, count(*) AS spans \
         FROM spans WHERE true{} \
         GROUP BY service_name, platform ORDER BY service_name, spans DESC",
        window.predicate("start_time")
    )
}

/// [`services_sql`] from the per-minute `operation_rollups`, by whole
/// minutes; the rows carry `cloud_platform`, so [`services_from`] reads it
/// as the samples of [`cloud_platforms_sql`] too.
pub fn services_rolled_sql(window: TimeWindow) -> String {
    format!(
        "SELECT service_name, platform, \
                max(CASE WHEN platform = 'faas' THEN cloud_platform END) AS cloud_platform, \
                CAST(sum(spans) AS BIGINT) AS spans \
         FROM operation_rollups WHERE true{} \
         GROUP BY service_name, platform ORDER BY service_name, spans DESC",
        window.minute_predicate()
    )
}

/// Function services' `cloud.platform`, from a sample of their spans:
/// reading the resource map of every span in an hour of traffic would
/// cost more than the list itself, and a function's platform does not
/// change from span to span.
pub fn cloud_platforms_sql(window: TimeWindow) -> String {
    format!(
        "SELECT service_name, max(cloud_platform) AS cloud_platform FROM ( \
           SELECT service_name, resource_attributes['cloud.platform'] AS cloud_platform \
           FROM spans WHERE platform = 'faas'{} LIMIT 10000) \
         GROUP BY service_name",
        window.predicate("start_time")
    )
}

/// One row per service: a service seen on two platforms (a migration)
/// is listed once, on the platform with more spans.
pub fn services_from(
    result: &QueryResult,
    clouds: &QueryResult,
) -> Result<Vec<ServiceJson>, QueryError> {
    let mut cloud_of = std::collections::HashMap::new();
    for batch in &clouds.batches {
        let (name, cloud) = (
            strings(batch, "service_name")?,
            strings(batch, "cloud_platform")?,
        );
        for i in 0..batch.num_rows() {
            if let Some(c) = opt_str(&cloud, i) {
                cloud_of.insert(name.value(i).to_owned(), c);
            }
        }
    }
    let mut out: Vec<ServiceJson> = Vec::new();
    for batch in &result.batches {
        let (name, platform) = (strings(batch, "service_name")?, strings(batch, "platform")?);
        let spans = int64s(batch, "spans")?;
        for i in 0..batch.num_rows() {
            let row = ServiceJson {
                name: name.value(i).to_owned(),
                platform: platform.value(i).to_owned(),
                cloud_platform: cloud_of.get(name.value(i)).cloned(),
                spans: spans.value(i),
            };
            match out.last_mut() {
                Some(last) if last.name == row.name => last.spans += row.spans,
                _ => out.push(row),
            }
        }
    }
    Ok(out)
}

/// An operation (span name) of a service, with its span kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationJson {
    pub name: String,
    pub kind: String,
    pub spans: i64,
}

/// The most frequent operations first; at most 1,000 (a service whose
/// span names carry ids has unbounded "operations").
pub fn operations_sql(service: &str, window: TimeWindow) -> String {
    format!(
        "SELECT name, lower(kind) AS kind, count(*) AS spans \
         FROM spans WHERE service_name = {}{} \
         GROUP BY name, kind ORDER BY spans DESC, name, kind LIMIT 1000",
        quoted(service),
        window.predicate("start_time")
    )
}

/// [`operations_sql`] from the per-minute `operation_rollups`, by whole
/// minutes; names past a service's cap in a minute (no name) are left out.
pub fn operations_rolled_sql(service: &str, window: TimeWindow) -> String {
    format!(
        "SELECT name, kind, CAST(sum(spans) AS BIGINT) AS spans \
         FROM operation_rollups WHERE service_name = {} AND name IS NOT NULL{} \
         GROUP BY name, kind ORDER BY spans DESC, name, kind LIMIT 1000",
        quoted(service),
        window.minute_predicate()
    )
}

pub fn operations_from(result: &QueryResult) -> Result<Vec<OperationJson>, QueryError> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let (name, kind, spans) = (
            strings(batch, "name")?,
            strings(batch, "kind")?,
            int64s(batch, "spans")?,
        );
        for i in 0..batch.num_rows() {
            out.push(OperationJson {
                name: name.value(i).to_owned(),
                kind: kind.value(i).to_owned(),
                spans: spans.value(i),
            });
        }
    }
    Ok(out)
}

/// One edge of the map, as `/api/v1/boundaries` names it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EdgeFilter {
    pub producer_service: String,
    pub consumer_service: String,
    pub system: Option<String>,
    pub destination: Option<String>,
}

impl EdgeFilter {
    fn predicate(&self, window: TimeWindow) -> String {
        let optional = |column: &str, value: &Option<String>| match value {
            Some(v) => format!(" AND {column} = {}", quoted(v)),
            None => format!(" AND {column} IS NULL"),
        };
        format!(
            "producer_service = {} AND consumer_service = {}{}{}{}",
            quoted(&self.producer_service),
            quoted(&self.consumer_service),
            optional("system", &self.system),
            optional("destination", &self.destination),
            window.predicate("consumer_time"),
        )
    }
}

/// Dwell times in buckets that double (the upper bound of each is a power
/// of two nanoseconds): a few buckets cover a microsecond to an hour, as
/// X-Ray's event-age histogram does. Negative dwell (clock skew) counts in
/// the first bucket.
pub fn histogram_sql(edge: &EdgeFilter, window: TimeWindow) -> String {
    format!(
        "SELECT CAST(ceil(log2(CAST(greatest(latency_ns, 1) AS DOUBLE))) AS BIGINT) AS bucket, \
                count(*) AS count \
         FROM boundaries WHERE {} GROUP BY 1 ORDER BY 1",
        edge.predicate(window)
    )
}

pub fn slowest_sql(edge: &EdgeFilter, window: TimeWindow, limit: usize) -> String {
    format!(
        "SELECT * FROM boundaries WHERE {} ORDER BY latency_ns DESC, consumer_time DESC LIMIT {limit}",
        edge.predicate(window)
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketJson {
    /// Dwell times up to this bound (and above the previous bucket's).
    pub le_ns: i64,
    pub count: i64,
}

/// The buckets from the first to the last non-empty one, empty ones in
/// between included, so the chart's x axis is continuous.
pub fn buckets_from(result: &QueryResult) -> Result<Vec<BucketJson>, QueryError> {
    let mut counts = Vec::new();
    for batch in &result.batches {
        let (bucket, count) = (int64s(batch, "bucket")?, int64s(batch, "count")?);
        for i in 0..batch.num_rows() {
            counts.push((bucket.value(i).clamp(0, 62), count.value(i)));
        }
    }
    let (Some(first), Some(last)) = (
        counts.iter().map(|c| c.0).min(),
        counts.iter().map(|c| c.0).max(),
    ) else {
        return Ok(Vec::new());
    };
    Ok((first..=last)
        .map(|b| BucketJson {
            le_ns: 1_i64 << b,
            count: counts.iter().filter(|c| c.0 == b).map(|c| c.1).sum(),
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct EdgeDetailJson {
    pub buckets: Vec<BucketJson>,
    /// Slowest first.
    pub slowest: Vec<BoundaryJson>,
}

/// Cold starts and invocations per minute, from the rollups.
pub fn timeline_sql(function: Option<&str>, window: TimeWindow) -> String {
    let function = function
        .map(|f| format!(" AND function = {}", quoted(f)))
        .unwrap_or_default();
    let range = window.minute_predicate();
    format!(
        "SELECT arrow_cast(minute, 'Int64') AS minute, \
                CAST(sum(invocations) AS BIGINT) AS invocations, \
                CAST(sum(cold_starts) AS BIGINT) AS cold_starts \
         FROM function_rollups WHERE true{function}{range} \
         GROUP BY 1 ORDER BY 1"
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinuteJson {
    /// The minute's start, decimal ns since the epoch.
    pub minute_unix_nano: String,
    pub invocations: i64,
    pub cold_starts: i64,
}

pub fn timeline_from(result: &QueryResult) -> Result<Vec<MinuteJson>, QueryError> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let (minute, inv, cold) = (
            int64s(batch, "minute")?,
            int64s(batch, "invocations")?,
            int64s(batch, "cold_starts")?,
        );
        for i in 0..batch.num_rows() {
            out.push(MinuteJson {
                minute_unix_nano: minute.value(i).to_string(),
                invocations: inv.value(i),
                cold_starts: cold.value(i),
            });
        }
    }
    Ok(out)
}

/// Newest first.
pub fn orphans_sql(window: TimeWindow, limit: usize) -> String {
    format!(
        "SELECT kind, trace_id, span_id, service_name, system, destination, \
                correlation_key, correlation_value, arrow_cast(time, 'Int64') AS time \
         FROM orphans WHERE true{} ORDER BY time DESC LIMIT {limit}",
        window.predicate("time")
    )
}

/// A message nobody consumed, or a consumer whose producer was never seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrphanJson {
    /// `orphan` or `unconsumed`.
    pub kind: String,
    pub trace_id: String,
    pub span_id: String,
    pub service_name: String,
    pub system: Option<String>,
    pub destination: Option<String>,
    pub correlation_key: Option<String>,
    pub correlation_value: Option<String>,
    pub time_unix_nano: String,
}

pub fn orphans_from(result: &QueryResult) -> Result<Vec<OrphanJson>, QueryError> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let s = |name| strings(batch, name);
        let (kind, trace, span, service) = (
            s("kind")?,
            s("trace_id")?,
            s("span_id")?,
            s("service_name")?,
        );
        let (system, destination, key, value) = (
            s("system")?,
            s("destination")?,
            s("correlation_key")?,
            s("correlation_value")?,
        );
        let time = int64s(batch, "time")?;
        for i in 0..batch.num_rows() {
            out.push(OrphanJson {
                kind: kind.value(i).to_owned(),
                trace_id: trace.value(i).to_owned(),
                span_id: span.value(i).to_owned(),
                service_name: service.value(i).to_owned(),
                system: opt_str(&system, i),
                destination: opt_str(&destination, i),
                correlation_key: opt_str(&key, i),
                correlation_value: opt_str(&value, i),
                time_unix_nano: time.value(i).to_string(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_a_value_inside_its_literal() {
        assert_eq!(quoted("cart"), "'cart'");
        assert_eq!(quoted("o'brien' OR 1=1 --"), "'o''brien'' OR 1=1 --'");
    }

    #[test]
    fn an_edge_without_system_or_destination_matches_nulls() {
        let edge = EdgeFilter {
            producer_service: "a".into(),
            consumer_service: "b".into(),
            system: None,
            destination: Some("q".into()),
        };
        let p = edge.predicate(TimeWindow {
            start: Some(5),
            end: None,
        });
        assert!(p.contains("system IS NULL"), "{p}");
        assert!(p.contains("destination = 'q'"), "{p}");
        assert!(p.contains(">= 5"), "{p}");
    }
}
