//! Which hot segments, sealed files and row groups a scan may skip, decided
//! by DataFusion's [`PruningPredicate`] over what Seam keeps in memory:
//!
//! | container | min/max of the time column | key values (`contained`) |
//! |---|---|---|
//! | hot segment | its time range | the set of its key columns' values (merged segments) |
//! | sealed file | its time range | — |
//! | row group of a sealed file | — | the file's bloom filters, read once and kept |
//!
//! The predicate is the conjunction of a scan's filters on stored columns
//! (read-time columns such as `flow_id` prune nothing), so the forms it
//! understands are DataFusion's: comparisons and `BETWEEN` on the time
//! column, and for the keys `=`, `IN (…)` and an `OR` of equalities (what
//! DataFusion rewrites a short `IN` list to) through its literal
//! guarantees.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Int64Array, UInt64Array};
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::Guarantee;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use seam_store::{KeyFilters, SealedFile, Segment};

/// A scan's predicate, ready to prune what the table keeps.
pub(crate) struct Pruner {
    predicate: Option<Arc<PruningPredicate>>,
    schema: SchemaRef,
    time_column: String,
}

impl Pruner {
    /// `predicate` is over `schema`; `None` prunes nothing.
    pub fn new(
        predicate: Option<&Arc<dyn PhysicalExpr>>,
        schema: SchemaRef,
        time_column: &str,
    ) -> Self {
        // A predicate DataFusion cannot turn into a pruning one prunes
        // nothing; the scan still applies it to every row.
        let predicate = predicate.and_then(|p| {
            PruningPredicateBuilder::new()
                .with_file_schema(schema.clone())
                .build(p.clone())
        });
        Self {
            predicate,
            schema,
            time_column: time_column.to_owned(),
        }
    }

    /// Whether the predicate says which values a key column must hold, so
    /// that reading a file's bloom filters can rule its row groups out.
    pub fn constrains(&self, columns: &[String]) -> bool {
        self.predicate.as_ref().is_some_and(|p| {
            p.literal_guarantees()
                .iter()
                .any(|g| g.guarantee == Guarantee::In && columns.contains(&g.column.name))
        })
    }

    /// For each segment, whether it may hold a matching row.
    pub fn segments(&self, segments: &[Segment]) -> Vec<bool> {
        let rows = segments.iter().map(|s| s.batch.num_rows() as u64);
        self.prune(&Containers {
            count: segments.len(),
            time: self.time_stats(segments.iter().map(|s| s.time_range)),
            time_column: &self.time_column,
            rows: Some(Arc::new(UInt64Array::from_iter_values(rows))),
            may_contain: &|column, values| {
                let index = self.schema.index_of(column).ok()?;
                if self.schema.field(index).data_type() != &DataType::Utf8 {
                    return None;
                }
                Some(
                    segments
                        .iter()
                        .map(|s| s.may_contain(index, values))
                        .collect(),
                )
            },
        })
    }

    /// For each file, whether its time range may hold a matching row.
    pub fn files(&self, files: &[&SealedFile]) -> Vec<bool> {
        self.prune(&Containers {
            count: files.len(),
            time: self.time_stats(files.iter().map(|f| f.time_range)),
            time_column: &self.time_column,
            rows: None,
            may_contain: &|_, _| None,
        })
    }

    /// For each row group of a file, whether its bloom filters may hold
    /// the key values the predicate asks for; `None` when they rule
    /// nothing out (no key condition, or no filters).
    pub fn row_groups(&self, filters: &KeyFilters) -> Option<Vec<bool>> {
        let keep = self.prune(&Containers {
            count: filters.row_group_count()?,
            time: None,
            time_column: &self.time_column,
            rows: None,
            may_contain: &|column, values| filters.row_groups(column, values),
        });
        (keep.contains(&false)).then_some(keep)
    }

    fn prune(&self, statistics: &dyn PruningStatistics) -> Vec<bool> {
        match &self.predicate {
            // An error evaluating the predicate on statistics prunes
            // nothing: the scan filters every row anyway.
            Some(p) => p
                .prune(statistics)
                .unwrap_or_else(|_| vec![true; statistics.num_containers()]),
            None => vec![true; statistics.num_containers()],
        }
    }

    /// The containers' time ranges as (min, max) arrays of the time
    /// column's type.
    fn time_stats(
        &self,
        ranges: impl Iterator<Item = Option<(i64, i64)>>,
    ) -> Option<(ArrayRef, ArrayRef)> {
        let (lo, hi): (Vec<Option<i64>>, Vec<Option<i64>>) =
            ranges.map(|r| (r.map(|r| r.0), r.map(|r| r.1))).unzip();
        let field = self.schema.field_with_name(&self.time_column).ok()?;
        let as_time = |v: Vec<Option<i64>>| -> Option<ArrayRef> {
            let ints: ArrayRef = Arc::new(Int64Array::from(v));
            arrow::compute::cast(&ints, field.data_type()).ok()
        };
        Some((as_time(lo)?, as_time(hi)?))
    }
}

/// The text values of a guarantee, or `None` if any is not text.
fn texts(values: &HashSet<ScalarValue>) -> Option<Vec<&str>> {
    values
        .iter()
        .map(|v| match v {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect()
}

/// For a key column and values, whether each container may hold one of
/// them; `None` when nothing is known.
type MayContain<'a> = dyn Fn(&str, &[&str]) -> Option<Vec<bool>> + 'a;

/// What Seam knows of a set of containers (segments, files or row
/// groups): the time column's range, row counts, and whether a container
/// may hold given key values (one answer per container).
struct Containers<'a> {
    count: usize,
    time: Option<(ArrayRef, ArrayRef)>,
    time_column: &'a str,
    rows: Option<ArrayRef>,
    may_contain: &'a MayContain<'a>,
}

impl Containers<'_> {
    fn time(&self, column: &Column, max: bool) -> Option<ArrayRef> {
        if column.name != self.time_column {
            return None;
        }
        let (lo, hi) = self.time.as_ref()?;
        Some(if max { hi.clone() } else { lo.clone() })
    }
}

impl PruningStatistics for Containers<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.time(column, false)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.time(column, true)
    }

    fn num_containers(&self) -> usize {
        self.count
    }

    fn null_counts(&self, _column: &Column) -> Option<ArrayRef> {
        None
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        self.rows.clone()
    }

    /// `false` where a container cannot hold any of the values, unknown
    /// elsewhere.
    fn contained(&self, column: &Column, values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        let may = (self.may_contain)(&column.name, &texts(values)?)?;
        Some(may.into_iter().map(|may| (!may).then_some(false)).collect())
    }
}
