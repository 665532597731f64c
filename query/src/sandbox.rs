//! What SQL may do on a shared server: read the tables, within bounds.
//!
//! Two guards, both applied to every SQL text before it runs:
//!
//! 1. **Read only.** The logical plan is checked for DDL (`CREATE TABLE`,
//!    `CREATE EXTERNAL TABLE`, `DROP`, views), DML (`INSERT`, `UPDATE`,
//!    `DELETE`, `COPY … TO`) and statements (`SET`, transactions,
//!    `PREPARE`), including inside `EXPLAIN`. Any of them is refused before
//!    anything executes. No table function reads files (DataFusion registers
//!    `read_parquet`/`read_csv` only in its CLI) and URL tables
//!    (`SELECT * FROM 'file.csv'`) are not enabled, so SQL can only read the
//!    registered tables.
//! 2. **No unbounded generators.** Memory limits cover operators (joins,
//!    sorts, aggregations), not the output of a single function call, so a
//!    function whose output size is an argument could allocate gigabytes in
//!    one step. These are disabled; calling one fails at planning with a
//!    message naming it:
//!
//!    | function | why |
//!    |---|---|
//!    | `repeat(s, n)` | a string of `n` copies |
//!    | `lpad(s, n)`, `rpad(s, n)` | a string of length `n` |
//!    | `generate_series`, `range` (table functions) | `n` rows, produced without a memory reservation |
//!    | `generate_series`, `range` (scalar) | a list of `n` elements |
//!    | `array_repeat` (alias `list_repeat`) | a list of `n` copies |
//!    | `array_resize` (alias `list_resize`) | a list of length `n` |
//!
//! Time is bounded separately: every query runs under the engine's timeout.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, LogicalPlan, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::prelude::{SQLOptions, SessionContext};

use crate::error::QueryError;

/// Scalar functions replaced by [`DisabledFunction`]; see the module docs.
pub const DISABLED_SCALAR_FUNCTIONS: &[&str] = &[
    "repeat",
    "lpad",
    "rpad",
    "range",
    "generate_series",
    "array_repeat",
    "array_resize",
];

/// Table functions replaced by [`DisabledFunction`]; see the module docs.
pub const DISABLED_TABLE_FUNCTIONS: &[&str] = &["generate_series", "range"];

/// Applies both guards' function part to `ctx`: each disabled function,
/// with its aliases, now fails at planning.
pub fn disable_functions(ctx: &SessionContext) {
    for &name in DISABLED_SCALAR_FUNCTIONS {
        let aliases = ctx
            .udf(name)
            .map(|udf| udf.aliases().to_vec())
            .unwrap_or_default();
        ctx.deregister_udf(name);
        ctx.register_udf(ScalarUDF::new_from_impl(DisabledFunction::new(
            name, aliases,
        )));
    }
    for &name in DISABLED_TABLE_FUNCTIONS {
        ctx.deregister_udtf(name);
        ctx.register_udtf(name, Arc::new(DisabledFunction::new(name, Vec::new())));
    }
}

/// Refuses plans that would change state or touch anything but the tables.
pub fn check_read_only(plan: &LogicalPlan) -> Result<(), QueryError> {
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    options
        .verify_plan(plan)
        .map_err(|err| QueryError::Refused(err.message().into_owned()))
}

/// Stands in for a function that is disabled, so that calling it explains
/// itself instead of reading as a typo.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DisabledFunction {
    name: String,
    aliases: Vec<String>,
    signature: Signature,
}

impl DisabledFunction {
    fn new(name: &str, aliases: Vec<String>) -> Self {
        Self {
            name: name.to_owned(),
            aliases,
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Volatile,
            ),
        }
    }

    fn refuse<T>(&self) -> Result<T> {
        plan_err!(
            "function '{}' is disabled on this server: its output size is set by an argument, so one call could exhaust memory",
            self.name
        )
    }
}

impl ScalarUDFImpl for DisabledFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        self.refuse()
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.refuse()
    }
}

impl TableFunctionImpl for DisabledFunction {
    fn call_with_args(&self, _args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        self.refuse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan_error(ctx: &SessionContext, sql: &str) -> String {
        ctx.sql(sql).await.expect_err(sql).to_string()
    }

    #[tokio::test]
    async fn disabled_functions_explain_themselves() {
        let ctx = SessionContext::new();
        disable_functions(&ctx);
        for sql in [
            "SELECT repeat('x', 1000000000)",
            "SELECT lpad('x', 1000000000)",
            "SELECT rpad('x', 1000000000, 'y')",
            "SELECT range(1000000000)",
            "SELECT generate_series(1, 1000000000)",
            "SELECT array_repeat(1, 1000000000)",
            "SELECT list_repeat(1, 1000000000)",
            "SELECT array_resize([1], 1000000000)",
            "SELECT list_resize([1], 1000000000)",
            "SELECT * FROM generate_series(1, 1000000000000)",
            "SELECT * FROM range(1000000000000)",
            "SELECT repeat()",
        ] {
            let err = plan_error(&ctx, sql).await;
            assert!(err.contains("is disabled on this server"), "{sql}: {err}");
        }
        // Neighbours still work.
        ctx.sql("SELECT reverse('abc'), array_reverse([1, 2]), lower('A')")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn file_reading_functions_do_not_exist() {
        // The engine's own context, as every query gets it.
        let engine =
            crate::QueryEngine::new(crate::testdata::table(), crate::QueryConfig::default())
                .unwrap();
        for sql in [
            "SELECT * FROM read_parquet('/etc/passwd')",
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_json('/etc/passwd')",
            "SELECT * FROM parquet_metadata('/etc/passwd')",
            "SELECT * FROM '/etc/passwd'",
        ] {
            let err = engine.sql(sql).await.unwrap_err();
            assert!(matches!(err, crate::QueryError::Invalid(_)), "{sql}: {err}");
        }
    }

    #[tokio::test]
    async fn refuses_writes_and_statements() {
        let ctx = SessionContext::new();
        for sql in [
            "CREATE TABLE t (a INT)",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "SET datafusion.execution.batch_size = 1",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE t",
            "EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'",
        ] {
            let plan = ctx.state().create_logical_plan(sql).await.expect(sql);
            let err = check_read_only(&plan).expect_err(sql);
            assert!(matches!(err, QueryError::Refused(_)), "{sql}: {err}");
        }
        let plan = ctx.state().create_logical_plan("SELECT 1").await.unwrap();
        check_read_only(&plan).unwrap();
    }
}
