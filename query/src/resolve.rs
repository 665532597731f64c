//! The correlation stage's read-time columns, plugged into table scans:
//! `spans.flow_id` and the cold-start columns, and `boundaries.flow_id`,
//! `deliveries`, `redelivery` and `consumer_cold_start`.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use seam_correlate::{CorrelationView, boundary_col};
use seam_model::schema::col;

use crate::table::Resolve;

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
    fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
        reads_any(
            &self.schema,
            projection,
            &[
                col::FLOW_ID,
                col::COLD_START,
                col::COLD_START_TYPE,
                col::INIT_DURATION_NS,
                col::COLD_START_SOURCE,
            ],
        )
    }

    fn resolve(
        &self,
        selected: Vec<RecordBatch>,
        _all: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, ArrowError> {
        selected
            .iter()
            .map(|b| self.view.resolve_spans(b))
            .collect()
    }
}

/// Resolves `boundaries`.
pub struct BoundariesResolver {
    pub view: CorrelationView,
    pub schema: SchemaRef,
}

impl Resolve for BoundariesResolver {
    fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
        reads_any(
            &self.schema,
            projection,
            &[
                boundary_col::FLOW_ID,
                boundary_col::DELIVERIES,
                boundary_col::REDELIVERY,
                boundary_col::CONSUMER_COLD_START,
            ],
        )
    }

    fn resolve(
        &self,
        selected: Vec<RecordBatch>,
        all: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, ArrowError> {
        self.view.resolve_boundaries(&selected, all)
    }
}
