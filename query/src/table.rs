//! A store table as DataFusion sees it: a [`TableProvider`] that reads the
//! segments of a fresh snapshot on every scan.
//!
//! ```text
//!  HotTable ──snapshot()──▶ [Segment …] ──time pruning──▶ partitions ──▶ DataSourceExec (MemorySourceConfig)
//! ```
//!
//! Taking the snapshot at scan time, not at registration, is what makes a
//! span appended a moment before a query visible to it.
//!
//! Filters comparing the time column with a literal (`start_time >= '…'`,
//! `BETWEEN`) are accepted as *inexact*: segments whose time range cannot
//! match are skipped, and DataFusion still applies the filter to the rows of
//! the segments that remain. Everything else is left to DataFusion.
//!
//! Segments are the unit of pruning whatever holds them; a Parquet tier adds
//! its segments to the snapshot and this provider plans them beside the
//! in-memory ones.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::expr::{Between, BinaryExpr, Cast, TryCast};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use seam_store::{HotTable, Segment};

/// Columns whose values are decided when a query reads them, not when the
/// rows were stored (a trace's flow, a cold-start verdict).
pub trait Resolve: Send + Sync {
    /// Whether a scan reading `projection` (indices into the table schema;
    /// `None` for all) needs resolving.
    fn needed(&self, projection: Option<&Vec<usize>>) -> bool;
    /// Rewrites the `selected` batches; `all` is the whole table, for
    /// values counted across it.
    fn resolve(
        &self,
        selected: Vec<RecordBatch>,
        all: &[RecordBatch],
    ) -> std::result::Result<Vec<RecordBatch>, arrow::error::ArrowError>;
}

/// A [`HotTable`] exposed to SQL, pruned by its time column.
pub struct SegmentTable {
    store: Arc<HotTable>,
    time_column: String,
    resolver: Option<Arc<dyn Resolve>>,
}

impl fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentTable")
            .field("time_column", &self.time_column)
            .finish_non_exhaustive()
    }
}

impl SegmentTable {
    /// `time_column` must be the column the store keeps segment time ranges for.
    pub fn new(store: Arc<HotTable>, time_column: &str) -> Self {
        Self {
            store,
            time_column: time_column.to_owned(),
            resolver: None,
        }
    }

    /// Applies `resolver` to every scan that reads a resolved column.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// The segments of `segments` that may hold rows passing `filters`,
    /// enough of them to produce `limit` rows when a limit is given.
    fn select<'a>(
        &self,
        segments: &'a [Segment],
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Vec<&'a Segment> {
        let range = TimeRange::from_filters(filters, &self.time_column);
        let mut rows = 0;
        let mut selected = Vec::new();
        for segment in segments {
            if limit.is_some_and(|limit| rows >= limit) {
                break;
            }
            if range.is_unbounded() || segment.overlaps(range.start, range.end) {
                rows += segment.batch.num_rows();
                selected.push(segment);
            }
        }
        selected
    }
}

#[async_trait]
impl TableProvider for SegmentTable {
    fn schema(&self) -> SchemaRef {
        self.store.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|filter| {
                if TimeRange::from_filters(std::slice::from_ref(*filter), &self.time_column)
                    .is_unbounded()
                {
                    TableProviderFilterPushDown::Unsupported
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let snapshot = self.store.snapshot();
        let selected = self.select(&snapshot.segments, filters, limit);
        tracing::debug!(
            segments = snapshot.segments.len(),
            selected = selected.len(),
            "planning a table scan"
        );
        // Round-robin over the target partitions so every query thread has
        // segments to read.
        let partitions = state
            .config()
            .target_partitions()
            .clamp(1, selected.len().max(1));
        let mut selected: Vec<RecordBatch> =
            selected.into_iter().map(|s| s.batch.clone()).collect();
        if let Some(resolver) = self.resolver.as_ref().filter(|r| r.needed(projection)) {
            let all: Vec<RecordBatch> = snapshot.segments.iter().map(|s| s.batch.clone()).collect();
            selected = resolver
                .resolve(selected, &all)
                .map_err(|e| datafusion::error::DataFusionError::ArrowError(Box::new(e), None))?;
        }
        let mut batches: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
        for (i, batch) in selected.into_iter().enumerate() {
            batches[i % partitions].push(batch);
        }
        let source = MemorySourceConfig::try_new(&batches, snapshot.schema, projection.cloned())?
            .with_limit(limit);
        Ok(DataSourceExec::from_data_source(source))
    }
}

/// Inclusive bounds on the time column, in ns since the epoch, implied by
/// a conjunction of filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeRange {
    start: i64,
    end: i64,
}

impl TimeRange {
    const ALL: Self = Self {
        start: i64::MIN,
        end: i64::MAX,
    };

    fn from_filters(filters: &[Expr], column: &str) -> Self {
        let mut range = Self::ALL;
        for filter in filters {
            range.narrow(filter, column);
        }
        range
    }

    fn is_unbounded(&self) -> bool {
        *self == Self::ALL
    }

    fn narrow(&mut self, filter: &Expr, column: &str) {
        match filter {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    self.narrow(left, column);
                    self.narrow(right, column);
                } else if is_column(left, column)
                    && let Some(value) = timestamp_nanos(right)
                {
                    self.compare(*op, value);
                } else if is_column(right, column)
                    && let Some(value) = timestamp_nanos(left)
                    && let Some(op) = op.swap()
                {
                    self.compare(op, value);
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_column(expr, column) => {
                if let (Some(low), Some(high)) = (timestamp_nanos(low), timestamp_nanos(high)) {
                    self.start = self.start.max(low);
                    self.end = self.end.min(high);
                }
            }
            _ => {}
        }
    }

    /// Narrows by `column <op> value`.
    fn compare(&mut self, op: Operator, value: i64) {
        match op {
            Operator::Eq => {
                self.start = self.start.max(value);
                self.end = self.end.min(value);
            }
            Operator::Gt => self.start = self.start.max(value.saturating_add(1)),
            Operator::GtEq => self.start = self.start.max(value),
            Operator::Lt => self.end = self.end.min(value.saturating_sub(1)),
            Operator::LtEq => self.end = self.end.min(value),
            _ => {}
        }
    }
}

fn is_column(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Column(c) if c.name == name)
}

/// The instant a literal (or a cast of one) names, in ns since the epoch.
fn timestamp_nanos(expr: &Expr) -> Option<i64> {
    match expr {
        Expr::Literal(value, _) => scalar_nanos(value),
        Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) => {
            match expr.as_ref() {
                Expr::Literal(value, _) if matches!(field.data_type(), DataType::Timestamp(..)) => {
                    let cast = value
                        .cast_to(&DataType::Timestamp(
                            TimeUnit::Nanosecond,
                            Some("UTC".into()),
                        ))
                        .ok()?;
                    scalar_nanos(&cast)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn scalar_nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::prelude::*;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "start_time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
            Field::new("v", DataType::Int64, false),
        ]))
    }

    fn batch(times: &[i64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC")),
                Arc::new(Int64Array::from(times.to_vec())),
            ],
        )
        .unwrap()
    }

    /// Three segments covering 0..=9, 100..=109 and 200..=209.
    fn table() -> SegmentTable {
        let store = Arc::new(HotTable::new(schema(), "start_time").with_merge_rows(10));
        for base in [0, 100, 200] {
            store
                .append(batch(&(base..base + 10).collect::<Vec<_>>()))
                .unwrap();
        }
        assert_eq!(store.snapshot().segments.len(), 3);
        SegmentTable::new(store, "start_time")
    }

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(ns),
            Some("UTC".into()),
        ))
    }

    fn selected(table: &SegmentTable, filters: &[Expr], limit: Option<usize>) -> Vec<(i64, i64)> {
        let snapshot = table.store.snapshot();
        table
            .select(&snapshot.segments, filters, limit)
            .iter()
            .map(|s| s.time_range.unwrap())
            .collect()
    }

    #[test]
    fn prunes_segments_outside_the_time_range() {
        let t = table();
        assert_eq!(selected(&t, &[], None).len(), 3);
        assert_eq!(
            selected(&t, &[col("start_time").gt_eq(ts(100))], None),
            vec![(100, 109), (200, 209)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").gt(ts(109))], None),
            vec![(200, 209)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").lt(ts(100))], None),
            vec![(0, 9)]
        );
        assert_eq!(
            selected(&t, &[ts(150).gt(col("start_time"))], None),
            vec![(0, 9), (100, 109)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").eq(ts(105))], None),
            vec![(100, 109)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").between(ts(5), ts(100))], None),
            vec![(0, 9), (100, 109)]
        );
        let both = col("start_time")
            .gt_eq(ts(50))
            .and(col("start_time").lt_eq(ts(150)));
        assert_eq!(selected(&t, &[both], None), vec![(100, 109)]);
        assert!(selected(&t, &[col("start_time").gt(ts(1_000))], None).is_empty());
    }

    #[test]
    fn ignores_filters_it_cannot_bound() {
        let t = table();
        assert_eq!(selected(&t, &[col("v").gt(lit(150i64))], None).len(), 3);
        assert_eq!(
            selected(&t, &[col("start_time").not_eq(ts(5))], None).len(),
            3
        );
        let either = col("start_time")
            .lt(ts(5))
            .or(col("start_time").gt(ts(205)));
        assert_eq!(selected(&t, std::slice::from_ref(&either), None).len(), 3);
        let pushdown = t
            .supports_filters_pushdown(&[&col("start_time").gt(ts(1)), &either])
            .unwrap();
        assert_eq!(
            pushdown,
            vec![
                TableProviderFilterPushDown::Inexact,
                TableProviderFilterPushDown::Unsupported
            ]
        );
    }

    #[test]
    fn stops_reading_segments_once_the_limit_is_met() {
        let t = table();
        assert_eq!(selected(&t, &[], Some(5)).len(), 1);
        assert_eq!(selected(&t, &[], Some(15)).len(), 2);
    }

    #[tokio::test]
    async fn sql_filters_read_only_matching_segments_and_stay_exact() {
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(table())).unwrap();
        let df = ctx
            .sql("SELECT count(*) AS n FROM t WHERE start_time >= to_timestamp_nanos(103) AND start_time < to_timestamp_nanos(205)")
            .await
            .unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        let batches = df.collect().await.unwrap();
        let n = first_count(&batches);
        assert_eq!(n, 7 + 5, "{shown}");
        // The scan holds only the two overlapping segments.
        let rows = plan_rows(&plan);
        assert_eq!(rows, 20, "{shown}");
    }

    /// The single Int64 a `SELECT count(*)` returns.
    fn first_count(batches: &[RecordBatch]) -> i64 {
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    /// Rows the memory scans under `plan` would read.
    fn plan_rows(plan: &Arc<dyn ExecutionPlan>) -> usize {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(memory) = exec.data_source().downcast_ref::<MemorySourceConfig>()
        {
            return memory
                .partitions()
                .iter()
                .flatten()
                .map(RecordBatch::num_rows)
                .sum();
        }
        plan.children().into_iter().map(plan_rows).sum()
    }

    #[tokio::test]
    async fn sees_rows_appended_after_registration() {
        let t = table();
        let store = t.store.clone();
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(t)).unwrap();
        store.append(batch(&[300, 301])).unwrap();
        let batches = ctx
            .sql("SELECT count(*) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = first_count(&batches);
        assert_eq!(n, 32);
    }
}
