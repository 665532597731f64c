//! Makes every operator hand its thread back regularly, so that a query
//! past its time limit actually stops.
//!
//! A timed-out query is cancelled by dropping its task, and a task can only
//! be dropped when it yields. DataFusion's own `EnsureCooperative` rule makes
//! leaves and exchanges spend Tokio's cooperative budget per batch, which is
//! enough when reading files batch by batch. The store's segments are few
//! and large, though: a nested-loop join over them can compute for minutes
//! between two reads from its inputs, never yielding, and keep the query
//! runtime's threads after the client was told the query timed out.
//!
//! [`YieldEverywhere`] wraps every operator in a `CooperativeExec`, so each
//! batch any operator produces spends budget and a task yields at least
//! every 128 batches. The cost is one budget check per batch per operator.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coop::CooperativeExec;

/// The physical optimizer rule; runs after DataFusion's own rules.
#[derive(Debug, Default)]
pub struct YieldEverywhere;

impl PhysicalOptimizerRule for YieldEverywhere {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(coop) = node.downcast_ref::<CooperativeExec>()
                && coop.input().is::<CooperativeExec>()
            {
                return Ok(Transformed::yes(Arc::clone(coop.input())));
            }
            if node.children().is_empty() || node.is::<CooperativeExec>() {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(
                Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "YieldEverywhere"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::*;

    use super::*;

    /// Every operator with inputs sits directly under exactly one
    /// `CooperativeExec`.
    fn assert_wrapped(plan: &Arc<dyn ExecutionPlan>, parent_is_coop: bool, shown: &str) {
        let is_coop = plan.is::<CooperativeExec>();
        if is_coop {
            assert!(!parent_is_coop, "nested wrappers in\n{shown}");
        } else if !plan.children().is_empty() {
            assert!(parent_is_coop, "{} is not wrapped in\n{shown}", plan.name());
        }
        for child in plan.children() {
            assert_wrapped(child, is_coop, shown);
        }
    }

    #[tokio::test]
    async fn wraps_each_operator_once() {
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(YieldEverywhere))
            .build();
        let ctx = SessionContext::new_with_state(state);
        let df = ctx
            .sql("SELECT count(*) FROM (VALUES (1), (2)) a(x), (VALUES (3)) b(y) WHERE a.x < b.y")
            .await
            .unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = displayable(plan.as_ref()).indent(false).to_string();
        assert!(plan.is::<CooperativeExec>(), "{shown}");
        assert_wrapped(&plan, false, &shown);
        let batches = df.collect().await.unwrap();
        let count = batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .unwrap()
            .value(0);
        assert_eq!(count, 2, "the wrapped plan still answers right");
    }
}
