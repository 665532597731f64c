//! Rows of one table by the values of a key column, in a given order: a
//! trace by id, a flow's spans and the boundaries it consumed.
//!
//! ```text
//!  table provider ──scan(key IN …)──▶ batches ──key filter──▶ rows ──sort──▶ result
//! ```
//!
//! A lookup's plan is always the same one scan, so it is asked of the
//! table directly instead of being planned from SQL: parsing, the logical
//! and physical optimizers and the sort and merge operators took a quarter
//! of a trace lookup's time at 10M spans, and they cannot change what it
//! reads. The scan is the one SQL would run (the same pruning by segment
//! key sets, bloom filters and page index, the same resolving); its
//! filters are inexact, so the key filter is applied again here, as
//! DataFusion's `FilterExec` would.

use std::sync::Arc;

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{SortColumn, SortOptions, concat_batches, filter_record_batch};
use arrow::compute::{lexsort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::common::{Column, DFSchema};
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, execute_stream};
use datafusion::prelude::{Expr, SessionContext, lit};

/// What to look up: rows of `table` whose `column` holds one of `keys`,
/// sorted ascending by `order`.
#[derive(Debug, Clone)]
pub struct Lookup {
    pub table: &'static str,
    pub column: &'static str,
    pub keys: Vec<String>,
    pub order: &'static [&'static str],
}

/// A lookup's scan, running: its batches and the exact key filter.
pub struct Scan {
    pub stream: SendableRecordBatchStream,
    pub predicate: Arc<dyn PhysicalExpr>,
}

impl Lookup {
    /// Starts the table's scan for the keys.
    pub async fn start(&self, ctx: &SessionContext) -> Result<Scan> {
        let provider = ctx.table_provider(self.table).await?;
        let schema = provider.schema();
        let key = Expr::Column(Column::from_name(self.column));
        let filter = match self.keys.as_slice() {
            [one] => key.eq(lit(one.as_str())),
            many => key.in_list(many.iter().map(|k| lit(k.as_str())).collect(), false),
        };
        let state = ctx.state();
        let plan: Arc<dyn ExecutionPlan> = provider
            .scan(&state, None, std::slice::from_ref(&filter), None)
            .await?;
        let predicate =
            state.create_physical_expr(filter, &DFSchema::try_from(schema.as_ref().clone())?)?;
        let stream = execute_stream(plan, ctx.task_ctx())?;
        Ok(Scan { stream, predicate })
    }
}

/// The rows of `batch` that hold one of the keys (`predicate`, a
/// [`Scan`]'s).
pub fn keep(predicate: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<RecordBatch> {
    let mask = predicate.evaluate(batch)?.into_array(batch.num_rows())?;
    Ok(filter_record_batch(batch, mask.as_boolean())?)
}

/// `batches` as one batch sorted ascending by `order` (nulls last, as
/// SQL's `ORDER BY` sorts).
pub fn sorted(schema: &SchemaRef, batches: &[RecordBatch], order: &[&str]) -> Result<RecordBatch> {
    let all = concat_batches(schema, batches)?;
    if all.num_rows() < 2 {
        return Ok(all);
    }
    let columns = order
        .iter()
        .map(|name| {
            Ok(SortColumn {
                values: all.column(schema.index_of(name)?).clone(),
                options: Some(SortOptions {
                    descending: false,
                    nulls_first: false,
                }),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let indices = lexsort_to_indices(&columns, None)?;
    take_record_batch(&all, &indices).map_err(DataFusionError::from)
}
