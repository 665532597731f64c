//! A plan node that resolves read-time columns of every batch its input
//! produces, as rows stream out of memory or Parquet, after the filters
//! on stored columns have kept only the rows a query wants.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// Rewrites one batch's resolved columns; the schema stays the same.
pub type BatchResolver = Arc<dyn Fn(&RecordBatch) -> Result<RecordBatch, ArrowError> + Send + Sync>;

pub struct ResolveExec {
    input: Arc<dyn ExecutionPlan>,
    resolve: BatchResolver,
}

impl ResolveExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, resolve: BatchResolver) -> Self {
        Self { input, resolve }
    }
}

impl fmt::Debug for ResolveExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResolveExec")
    }
}

impl DisplayAs for ResolveExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResolveExec")
    }
}

impl ExecutionPlan for ResolveExec {
    fn name(&self) -> &str {
        "ResolveExec"
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(
            children.remove(0),
            self.resolve.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = input.schema();
        let resolve = self.resolve.clone();
        let stream = input.map(move |batch| {
            batch.and_then(|b| {
                resolve(&b).map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}
