//! Rows in memory hold some columns in another type than SQL reads them:
//! ids as their bytes, resources as a dictionary of maps. A scan of them
//! filters first, on the types memory holds, then converts what it keeps.
//!
//! ```text
//!  hot rows ──FilterExec (ids compared as bytes)──▶ ToSqlExec (bytes → hex, …) ──▶ SQL's types
//! ```
//!
//! Users name ids in hex (`trace_id = '4bf9…'`); converting every row's
//! id to hex to compare it would cost a lookup a hex encoding per row of
//! each segment it reads, so such filters are rewritten to compare bytes.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::lit;
use futures::StreamExt;

/// Rows in memory converted to SQL's types ([`seam_model::cast::to_sql`]
/// of each column whose type differs). A plan node of its own, not a
/// projection: DataFusion pushes a parent's filters down through a
/// projection into the filter under it, and placed first there, a
/// parent's `trace_id = '…'` converted every row's id to hex before the
/// comparison of bytes could rule it out. Filters above this node run on
/// what the filters below it kept.
pub struct ToSqlExec {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl ToSqlExec {
    /// `input`'s rows under `schema`: the same columns, by position.
    pub fn new(input: Arc<dyn ExecutionPlan>, schema: SchemaRef) -> Self {
        let properties = input
            .properties()
            .as_ref()
            .clone()
            .with_eq_properties(EquivalenceProperties::new(schema));
        Self {
            input,
            properties: Arc::new(properties),
        }
    }
}

impl fmt::Debug for ToSqlExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ToSqlExec")
    }
}

impl DisplayAs for ToSqlExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (input, output) = (self.input.schema(), self.schema());
        let converted = (output.fields().iter().zip(input.fields()))
            .filter(|(to, from)| to.data_type() != from.data_type())
            .map(|(to, _)| to.name().as_str())
            .collect::<Vec<_>>();
        write!(f, "ToSqlExec: {}", converted.join(", "))
    }
}

impl ExecutionPlan for ToSqlExec {
    fn name(&self) -> &str {
        "ToSqlExec"
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(children.remove(0), self.schema())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let schema = self.schema();
        let to = schema.clone();
        let stream = input.map(move |batch| Ok(seam_model::cast::batch_to_sql(&batch?, &to)?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// `filter` rewritten to compare the ids `hot` holds as bytes, when it is
/// an equality or a positive `IN` list of id columns with text (or an
/// `OR` of those); `None` for any other filter, left to run after the
/// conversion. Text that is not an id in lowercase hex of the column's
/// width equals no stored id: its comparison becomes `false`, which a
/// filter treats as SQL's null for a non-matching row.
pub fn ids_as_bytes(filter: &Expr, hot: &Schema) -> Option<Expr> {
    let width = |column: &datafusion::common::Column| match hot
        .field_with_name(&column.name)
        .ok()?
        .data_type()
    {
        DataType::FixedSizeBinary(w) => Some(*w),
        _ => None,
    };
    let bytes = |value: &ScalarValue, width: i32| {
        let text = value.try_as_str().flatten()?;
        let bytes = seam_model::cast::id_bytes(text, width as usize)?;
        Some(lit(ScalarValue::FixedSizeBinary(width, Some(bytes))))
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            match (left.as_ref(), op, right.as_ref()) {
                (Expr::Column(c), Operator::Eq, Expr::Literal(v, _))
                | (Expr::Literal(v, _), Operator::Eq, Expr::Column(c)) => {
                    let width = width(c)?;
                    Some(match bytes(v, width) {
                        Some(id) => Expr::Column(c.clone()).eq(id),
                        None => lit(false),
                    })
                }
                (l, Operator::Or, r) => Some(ids_as_bytes(l, hot)?.or(ids_as_bytes(r, hot)?)),
                _ => None,
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            let Expr::Column(c) = expr.as_ref() else {
                return None;
            };
            let width = width(c)?;
            let ids = list
                .iter()
                .map(|item| match item {
                    Expr::Literal(v, _) => Some(bytes(v, width)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()?;
            let ids: Vec<Expr> = ids.into_iter().flatten().collect();
            Some(if ids.is_empty() {
                lit(false)
            } else {
                Expr::Column(c.clone()).in_list(ids, false)
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use datafusion::prelude::col;

    fn hot() -> Schema {
        Schema::new(vec![
            Field::new("trace_id", DataType::FixedSizeBinary(16), false),
            Field::new("span_id", DataType::FixedSizeBinary(8), false),
            Field::new("name", DataType::Utf8, false),
        ])
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn trace_bytes() -> Expr {
        lit(ScalarValue::FixedSizeBinary(
            16,
            seam_model::cast::id_bytes(TRACE, 16),
        ))
    }

    #[test]
    fn equalities_and_lists_of_ids_compare_bytes() {
        let hot = hot();
        let eq = ids_as_bytes(&col("trace_id").eq(lit(TRACE)), &hot);
        assert_eq!(eq, Some(col("trace_id").eq(trace_bytes())));
        let flipped = ids_as_bytes(&lit(TRACE).eq(col("trace_id")), &hot);
        assert_eq!(flipped, eq);
        let list = col("trace_id").in_list(vec![lit(TRACE), lit("nope")], false);
        assert_eq!(
            ids_as_bytes(&list, &hot),
            Some(col("trace_id").in_list(vec![trace_bytes()], false)),
            "text that is no id matches nothing"
        );
        let or = col("trace_id")
            .eq(lit(TRACE))
            .or(col("span_id").eq(lit("AB")));
        assert_eq!(
            ids_as_bytes(&or, &hot),
            Some(col("trace_id").eq(trace_bytes()).or(lit(false)))
        );
    }

    #[test]
    fn other_filters_wait_for_the_conversion() {
        let hot = hot();
        for filter in [
            col("trace_id").not_eq(lit(TRACE)),
            col("trace_id").like(lit("4bf9%")),
            col("trace_id").in_list(vec![lit(TRACE)], true),
            col("name").eq(lit("GET")),
            col("trace_id")
                .eq(lit(TRACE))
                .or(col("name").eq(lit("GET"))),
        ] {
            assert_eq!(ids_as_bytes(&filter, &hot), None, "{filter}");
        }
    }
}
