//! The hot tier: record batches in memory, appended by ingest and read by
//! queries without copying (snapshots share the batches through `Arc`).
//!
//! # Invariants
//! - Every batch in the table has exactly the table's schema.
//! - A snapshot never changes after it was taken; appends made later are
//!   visible to the next snapshot, immediately (no refresh interval).
//! - Many small ingest batches are merged into larger ones once enough rows
//!   accumulate, so queries scan a few large batches instead of thousands of
//!   tiny ones. Merging keeps row order.

use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{SchemaRef, TimestampNanosecondType};
use arrow::error::ArrowError;
use parking_lot::RwLock;

/// Why the store refused a batch.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("batch schema does not match the table schema")]
    SchemaMismatch,
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

/// An immutable unit of table data with the statistics queries prune by.
#[derive(Debug, Clone)]
pub struct Segment {
    pub batch: RecordBatch,
    /// Smallest and largest value of the table's time column, in ns since
    /// the epoch; `None` when the segment has no rows.
    pub time_range: Option<(i64, i64)>,
}

impl Segment {
    fn new(batch: RecordBatch, time_column: usize) -> Self {
        let time_range = time_range(&batch, time_column);
        Self { batch, time_range }
    }

    /// Whether any row may fall in `[start, end]` (ns, inclusive).
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.time_range
            .is_some_and(|(lo, hi)| lo <= end && hi >= start)
    }
}

fn time_range(batch: &RecordBatch, column: usize) -> Option<(i64, i64)> {
    let times = batch
        .column(column)
        .as_primitive_opt::<TimestampNanosecondType>()?;
    let lo = arrow::compute::min(times)?;
    let hi = arrow::compute::max(times)?;
    (times.null_count() < times.len()).then_some((lo, hi))
}

/// What a query reads: the table's segments at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub schema: SchemaRef,
    pub segments: Arc<[Segment]>,
}

impl Snapshot {
    pub fn num_rows(&self) -> usize {
        self.segments.iter().map(|s| s.batch.num_rows()).sum()
    }
}

struct Inner {
    /// Merged segments, oldest first.
    merged: Vec<Segment>,
    /// Recent ingest batches not merged yet.
    tail: Vec<Segment>,
    tail_rows: usize,
    /// Cached snapshot, rebuilt lazily after an append.
    snapshot: Option<Snapshot>,
}

/// A table kept in memory as Arrow record batches.
pub struct HotTable {
    schema: SchemaRef,
    time_column: usize,
    merge_rows: usize,
    inner: RwLock<Inner>,
}

impl HotTable {
    /// Rows the tail gathers before it is merged into one batch.
    pub const DEFAULT_MERGE_ROWS: usize = 16 * 1024;

    /// A table whose pruning statistics come from `time_column` (a
    /// nanosecond timestamp column of `schema`).
    pub fn new(schema: SchemaRef, time_column: &str) -> Self {
        let time_column = schema
            .index_of(time_column)
            .expect("time column is in the schema");
        Self {
            schema,
            time_column,
            merge_rows: Self::DEFAULT_MERGE_ROWS,
            inner: RwLock::new(Inner {
                merged: Vec::new(),
                tail: Vec::new(),
                tail_rows: 0,
                snapshot: None,
            }),
        }
    }

    /// Overrides how many tail rows trigger a merge (tests use small values).
    pub fn with_merge_rows(mut self, rows: usize) -> Self {
        self.merge_rows = rows.max(1);
        self
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Appends a batch; it is visible to every snapshot taken after this returns.
    pub fn append(&self, batch: RecordBatch) -> Result<(), StoreError> {
        if batch.schema() != self.schema {
            return Err(StoreError::SchemaMismatch);
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let segment = Segment::new(batch, self.time_column);
        let mut inner = self.inner.write();
        inner.tail_rows += segment.batch.num_rows();
        inner.tail.push(segment);
        inner.snapshot = None;
        if inner.tail_rows >= self.merge_rows {
            let batches: Vec<RecordBatch> = inner.tail.iter().map(|s| s.batch.clone()).collect();
            let merged = concat_batches(&self.schema, &batches)?;
            inner.tail.clear();
            inner.tail_rows = 0;
            inner.merged.push(Segment::new(merged, self.time_column));
        }
        Ok(())
    }

    /// The table as it is now.
    pub fn snapshot(&self) -> Snapshot {
        if let Some(s) = self.inner.read().snapshot.clone() {
            return s;
        }
        let mut inner = self.inner.write();
        if let Some(s) = inner.snapshot.clone() {
            return s;
        }
        let segments: Arc<[Segment]> = inner
            .merged
            .iter()
            .chain(inner.tail.iter())
            .cloned()
            .collect();
        let snapshot = Snapshot {
            schema: self.schema.clone(),
            segments,
        };
        inner.snapshot = Some(snapshot.clone());
        snapshot
    }

    /// Rows held.
    pub fn num_rows(&self) -> usize {
        let inner = self.inner.read();
        inner
            .merged
            .iter()
            .map(|s| s.batch.num_rows())
            .sum::<usize>()
            + inner.tail_rows
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(
                "t",
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

    #[test]
    fn appends_are_visible_and_merged_in_order() {
        let table = HotTable::new(schema(), "t").with_merge_rows(4);
        table.append(batch(&[5, 1])).unwrap();
        let before = table.snapshot();
        assert_eq!(before.num_rows(), 2);
        table.append(batch(&[9, 7])).unwrap();
        table.append(batch(&[3])).unwrap();
        // The old snapshot is unchanged.
        assert_eq!(before.num_rows(), 2);
        let now = table.snapshot();
        assert_eq!(now.num_rows(), 5);
        assert_eq!(
            now.segments.len(),
            2,
            "first four rows merged, one in the tail"
        );
        assert_eq!(now.segments[0].time_range, Some((1, 9)));
        let values: Vec<i64> = now
            .segments
            .iter()
            .flat_map(|s| {
                s.batch
                    .column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, vec![5, 1, 9, 7, 3]);
        assert!(now.segments[1].overlaps(0, 3));
        assert!(!now.segments[1].overlaps(4, 10));
    }

    #[test]
    fn refuses_other_schemas() {
        let table = HotTable::new(schema(), "t");
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        assert!(matches!(
            table.append(other),
            Err(StoreError::SchemaMismatch)
        ));
        assert_eq!(table.num_rows(), 0);
    }
}
