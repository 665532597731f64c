//! The correlation stage's read-time columns, plugged into table scans:
//! `spans.flow_id` and the cold-start columns, and `boundaries.flow_id`,
//! `deliveries`, `redelivery` and `consumer_cold_start`.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use seam_correlate::{CorrelationView, boundary_col};
use seam_model::schema::col;

use crate::resolve_exec::BatchResolver;
use crate::table::Resolve;

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

    fn prepare(&self, _all: &[RecordBatch]) -> Result<BatchResolver, ArrowError> {
        let view = self.view.clone();
        Ok(Arc::new(move |batch| view.resolve_spans(batch)))
    }
}

/// Resolves `boundaries`.
pub struct BoundariesResolver {
    pub view: CorrelationView,
    pub schema: SchemaRef,
}

impl Resolve for BoundariesResolver {
    fn columns(&self) -> &[&'static str] {
        &BOUNDARY_COLUMNS
    }

    fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
        reads_any(&self.schema, projection, &BOUNDARY_COLUMNS)
    }

    /// Deliveries are counted across the whole table, not only the rows a
    /// filter kept.
    fn table_wide(&self) -> &[&'static str] {
        &CorrelationView::DELIVERY_COLUMNS
    }

    fn prepare(&self, all: &[RecordBatch]) -> Result<BatchResolver, ArrowError> {
        let groups = Arc::new(CorrelationView::deliveries(all)?);
        let view = self.view.clone();
        Ok(Arc::new(move |batch| {
            view.resolve_boundaries_with(&groups, batch)
        }))
    }
}
