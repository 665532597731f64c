//! The correlation stage's read-time columns, plugged into table scans:
//! `spans.flow_id` and the cold-start columns, and `boundaries.flow_id`,
//! `deliveries`, `redelivery` and `consumer_cold_start`.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use parking_lot::Mutex;
use seam_correlate::{CorrelationView, Deliveries, boundary_col};
use seam_model::schema::{col, trace_col};

use crate::provider::{Resolve, Wide};
use crate::resolve_exec::BatchResolver;

const SPAN_COLUMNS: [&str; 5] = [
    col::FLOW_ID,
    col::COLD_START,
    col::COLD_START_TYPE,
    col::INIT_DURATION_NS,
    col::COLD_START_SOURCE,
];

const BOUNDARY_COLUMNS: [&str; 4] = [
    boundary_col::FLOW_ID,
    boundary_col::DELIVERIES,
    boundary_col::REDELIVERY,
    boundary_col::CONSUMER_COLD_START,
];

const TRACE_COLUMNS: [&str; 3] = [
    trace_col::FLOW_ID,
    trace_col::COLD_START,
    trace_col::FLAGGED,
];

/// Whether `projection` reads any of `columns` of `schema`.
fn reads_any(schema: &SchemaRef, projection: Option<&Vec<usize>>, columns: &[&str]) -> bool {
    let Some(projection) = projection else {
        return true;
    };
    projection
        .iter()
        .any(|i| columns.contains(&schema.field(*i).name().as_str()))
}

/// Resolves `spans`.
pub struct SpansResolver {
    pub view: CorrelationView,
    pub schema: SchemaRef,
}

impl Resolve for SpansResolver {
    fn columns(&self) -> &[&'static str] {
        &SPAN_COLUMNS
    }

    fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
        reads_any(&self.schema, projection, &SPAN_COLUMNS)
    }

    fn reads(&self) -> &[&'static str] {
        &[col::TRACE_ID, col::SPAN_ID]
    }

    fn prepare(&self, _all: &Wide) -> Result<BatchResolver, ArrowError> {
        let view = self.view.clone();
        Ok(Arc::new(move |batch| view.resolve_spans(batch)))
    }
}

/// Resolves `traces`.
pub struct TracesResolver {
    pub view: CorrelationView,
    pub schema: SchemaRef,
}

impl Resolve for TracesResolver {
    fn columns(&self) -> &[&'static str] {
        &TRACE_COLUMNS
    }

    fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
        reads_any(&self.schema, projection, &TRACE_COLUMNS)
    }

    fn reads(&self) -> &[&'static str] {
        &[trace_col::TRACE_ID]
    }

    fn prepare(&self, _all: &Wide) -> Result<BatchResolver, ArrowError> {
        let view = self.view.clone();
        Ok(Arc::new(move |batch| view.resolve_traces(batch)))
    }
}

/// Resolves `boundaries`.
pub struct BoundariesResolver {
    pub view: CorrelationView,
    pub schema: SchemaRef,
    /// Deliveries counted over the sealed files named, kept until a seal
    /// or a compaction changes them: counting every sealed row on every
    /// query cost a flow lookup more than its reads.
    sealed: Mutex<Option<(Vec<u64>, Arc<Deliveries>)>>,
}

impl BoundariesResolver {
    pub fn new(view: CorrelationView, schema: SchemaRef) -> Self {
        Self {
            view,
            schema,
            sealed: Mutex::new(None),
        }
    }

    /// Deliveries in the sealed files of `wide`, counted once per set of
    /// files.
    fn sealed(&self, wide: &Wide) -> Result<Arc<Deliveries>, ArrowError> {
        if let Some((files, groups)) = &*self.sealed.lock()
            && *files == wide.sealed_files
        {
            return Ok(groups.clone());
        }
        let groups = Arc::new(CorrelationView::deliveries(&wide.sealed)?);
        *self.sealed.lock() = Some((wide.sealed_files.clone(), groups.clone()));
        Ok(groups)
    }
}

impl Resolve for BoundariesResolver {
    fn columns(&self) -> &[&'static str] {
        &BOUNDARY_COLUMNS
    }

    fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
        reads_any(&self.schema, projection, &BOUNDARY_COLUMNS)
    }

    fn reads(&self) -> &[&'static str] {
        &[
            boundary_col::PRODUCER_TRACE_ID,
            boundary_col::PRODUCER_SPAN_ID,
            boundary_col::CONSUMER_SPAN_ID,
            boundary_col::CONSUMER_SERVICE,
            boundary_col::CONSUMER_TRACE_ID,
            boundary_col::CONSUMER_TIME,
        ]
    }

    /// Deliveries are counted across the whole table, not only the rows a
    /// filter kept.
    fn table_wide(&self) -> &[&'static str] {
        &CorrelationView::DELIVERY_COLUMNS
    }

    /// Deliveries over every sealed row are counted once per set of
    /// files; counted here, the first lookup after a seal does not wait.
    fn warm(&self, wide: &Wide) -> Result<(), ArrowError> {
        self.sealed(wide).map(drop)
    }

    fn prepare(&self, wide: &Wide) -> Result<BatchResolver, ArrowError> {
        let sealed = self.sealed(wide)?;
        let hot = CorrelationView::deliveries(&wide.hot)?;
        let view = self.view.clone();
        Ok(Arc::new(move |batch| {
            view.resolve_boundaries_with(&[&sealed, &hot], batch)
        }))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::Int64Type;
    use seam_correlate::boundaries_schema;

    use super::*;
    use crate::reports::flows::tests::boundaries;

    /// (deliveries, redelivery) of each row of `batch`, resolved.
    fn resolved(r: &BoundariesResolver, wide: &Wide, batch: &RecordBatch) -> Vec<(i64, bool)> {
        let out = r.prepare(wide).unwrap()(batch).unwrap();
        let n = out
            .column_by_name("deliveries")
            .unwrap()
            .as_primitive::<Int64Type>();
        let again = out.column_by_name("redelivery").unwrap().as_boolean();
        (0..out.num_rows())
            .map(|i| (n.value(i), again.value(i)))
            .collect()
    }

    #[test]
    fn deliveries_add_up_across_sealed_and_hot_rows_and_sealed_counts_are_kept() {
        let r = BoundariesResolver::new(CorrelationView::empty(), boundaries_schema());
        // Trace 1's message is delivered twice: sealed at t=1000, and again
        // in memory at t=990, the earlier one.
        let sealed = boundaries(&[(1, 2)], 0);
        let hot = boundaries(&[(1, 3), (5, 6)], 10);
        let wide = Wide {
            sealed_files: vec![1],
            sealed: vec![sealed.clone()],
            hot: vec![hot.clone()],
        };
        assert_eq!(resolved(&r, &wide, &sealed), [(2, true)]);
        assert_eq!(resolved(&r, &wide, &hot), [(2, false), (1, false)]);

        // The same sealed files: their counts are not read again.
        let cached = Wide {
            sealed: Vec::new(),
            ..wide
        };
        assert_eq!(resolved(&r, &cached, &hot), [(2, false), (1, false)]);
        // Other sealed files (the old one compacted away): counted anew.
        let changed = Wide {
            sealed_files: vec![2],
            ..cached
        };
        assert_eq!(resolved(&r, &changed, &hot), [(1, false), (1, false)]);
    }
}
