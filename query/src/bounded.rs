//! What one scalar function call may build.
//!
//! The memory pool accounts for operators (joins, sorts, aggregations),
//! not for the values a function returns, so eight nested
//! `replace(…, 'a', 'aaaaaaaaaa')` calls built a billion-character string
//! from one literal and took the server to gigabytes. Every scalar
//! function is wrapped in [`Bounded`], which refuses a call whose output
//! would pass `query.max_function_output`:
//!
//! - before it runs, for the functions whose output can be a large multiple
//!   of their input by an argument (`replace`, `regexp_replace`,
//!   `array_to_string`): an exact or upper bound is computed from the
//!   arguments, so the large value is never allocated;
//! - after it runs, for every other function: what any of them returns is
//!   at most a small multiple of what it was given, so measuring the result
//!   bounds each step of a nesting to that multiple of the cap.
//!
//! The cap applies to one value and to the whole batch a call returns.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef};
use bytesize::ByteSize;
use datafusion::common::config::ConfigOptions;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::sqlparser::ast::BinaryOperator;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::logical_expr::{ExprSchemable, Volatility};
use datafusion::prelude::SessionContext;

/// The error a refused call ends the query with: a 400 that says why.
#[derive(Debug, thiserror::Error)]
#[error(
    "function '{function}' would build {} (a value or a batch of rows), more than query.max_function_output ({}); narrow the query or raise the limit",
    ByteSize::b(*.bytes as u64).display().iec(),
    ByteSize::b(*.cap as u64).display().iec()
)]
pub struct OutputTooLarge {
    pub function: String,
    pub bytes: usize,
    pub cap: usize,
}

/// Wraps every scalar function of `ctx` in [`Bounded`] with `cap` bytes,
/// and plans the text `||` operator as a bounded function.
pub fn bound_functions(ctx: &SessionContext, cap: usize) -> Result<()> {
    use datafusion::execution::FunctionRegistry;
    ctx.clone()
        .register_expr_planner(Arc::new(BoundedConcatPlanner::new(cap)))?;
    let state = ctx.state();
    let mut functions: Vec<Arc<ScalarUDF>> = state.scalar_functions().values().cloned().collect();
    functions.sort_by(|a, b| a.name().cmp(b.name()));
    functions.dedup_by(|a, b| a.name() == b.name());
    for udf in functions {
        let inner: &dyn Any = udf.inner().as_ref();
        if inner.is::<Bounded>() {
            continue;
        }
        ctx.register_udf(ScalarUDF::new_from_impl(Bounded::new(udf, cap)));
    }
    Ok(())
}

/// How a function's output is bounded before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rule {
    /// Measured after the call.
    After,
    /// `replace(s, from, to)`: exact, from the occurrences of `from`.
    Replace,
    /// `regexp_replace(s, pattern, replacement[, flags])`: at most every
    /// position a match, each replaced by the replacement with every
    /// group reference expanded to the whole input.
    RegexpReplace,
    /// `array_to_string(list, separator[, null])`: the elements, and a
    /// separator (or the null text) per element.
    Join,
}

/// A scalar function with a cap on what one call builds.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Bounded {
    inner: Arc<ScalarUDF>,
    cap: usize,
    rule: Rule,
}

impl Bounded {
    fn new(inner: Arc<ScalarUDF>, cap: usize) -> Self {
        let rule = match inner.name() {
            "replace" => Rule::Replace,
            "regexp_replace" => Rule::RegexpReplace,
            "array_to_string" => Rule::Join,
            _ => Rule::After,
        };
        Self { inner, cap, rule }
    }

    fn refuse(&self, bytes: usize) -> DataFusionError {
        DataFusionError::External(Box::new(OutputTooLarge {
            function: self.inner.name().to_owned(),
            bytes,
            cap: self.cap,
        }))
    }

    /// The most the call can build, per value and in all, when the rule
    /// knows it before the call.
    fn bound(&self, args: &ScalarFunctionArgs) -> Option<(usize, usize)> {
        let rows = args.number_rows;
        let arg = |i: usize| args.args.get(i).map(|a| Texts::of(a, rows));
        let mut largest = 0;
        let mut total = 0usize;
        let mut add = |n: usize| {
            largest = largest.max(n);
            total = total.saturating_add(n);
        };
        match self.rule {
            Rule::After => return None,
            Rule::Replace => {
                let (s, from, to) = (arg(0)?, arg(1)?, arg(2)?);
                for row in 0..rows.max(1) {
                    let (Some(s), Some(from), Some(to)) = (s.get(row), from.get(row), to.get(row))
                    else {
                        continue;
                    };
                    let grows = to.len().saturating_sub(from.len());
                    let count = occurrences(s, from, grows, self.cap);
                    add(s.len().saturating_add(count.saturating_mul(grows)));
                }
            }
            Rule::RegexpReplace => {
                let (s, replacement) = (arg(0)?, arg(2)?);
                for row in 0..rows.max(1) {
                    let (Some(s), Some(r)) = (s.get(row), replacement.get(row)) else {
                        continue;
                    };
                    let refs = r.matches('\\').count() + r.matches('$').count();
                    let each = r.len();
                    add(s
                        .len()
                        .saturating_mul(1 + refs)
                        .saturating_add((s.len() + 1).saturating_mul(each)));
                }
            }
            Rule::Join => {
                let list = args.args.first()?;
                let sep = arg(1)?;
                let null = arg(2);
                let ColumnarValue::Array(list) = list else {
                    return None;
                };
                let per_element = |row: usize| {
                    sep.get(row)
                        .map_or(0, str::len)
                        .max(null.as_ref().and_then(|n| n.get(row)).map_or(0, str::len))
                };
                for row in 0..list.len() {
                    let (elements, bytes) = list_row(list, row)?;
                    add(bytes.saturating_add(elements.saturating_mul(per_element(row))));
                }
            }
        }
        Some((largest, total))
    }

    fn check(&self, bytes: usize) -> Result<()> {
        if bytes > self.cap {
            return Err(self.refuse(bytes));
        }
        Ok(())
    }
}

/// How often `from` occurs in `s`, counted only as far as it matters: up to
/// the count at which replacing each by `grows` more bytes passes `cap`.
fn occurrences(s: &str, from: &str, grows: usize, cap: usize) -> usize {
    if grows == 0 {
        return 0;
    }
    // At most one match per byte of `s` (and one more for an empty
    // pattern): when even that stays under the cap, no need to count.
    let most = s.len() / from.len().max(1) + 1;
    if s.len().saturating_add(most.saturating_mul(grows)) <= cap {
        return most;
    }
    let enough = cap.saturating_sub(s.len()) / grows + 1;
    match from.as_bytes() {
        [] => s.chars().take(enough).count() + 1,
        // One byte: a plain count, which the compiler vectorizes; a
        // searcher would stop at every match.
        [byte] => s.bytes().filter(|b| b == byte).take(enough).count(),
        pattern => memchr::memmem::find_iter(s.as_bytes(), pattern)
            .take(enough)
            .count(),
    }
}

/// Elements and bytes of row `row` of a list array.
fn list_row(list: &ArrayRef, row: usize) -> Option<(usize, usize)> {
    let value = match list.data_type() {
        DataType::List(_) => list.as_list::<i32>().value(row),
        DataType::LargeList(_) => list.as_list::<i64>().value(row),
        DataType::FixedSizeList(..) => list.as_fixed_size_list().value(row),
        _ => return None,
    };
    Some((value.len(), value_bytes(value.as_ref())))
}

/// Bytes of the values an array holds (for text and binary, the text of
/// its own rows; otherwise its memory).
fn value_bytes(array: &dyn Array) -> usize {
    let offsets = |first: usize, last: usize| last.saturating_sub(first);
    match array.data_type() {
        DataType::Utf8 | DataType::Binary if !array.is_empty() => {
            let data = array.to_data();
            let o = data.buffer::<i32>(0);
            let (a, b) = (o[data.offset()], o[data.offset() + array.len()]);
            offsets(a as usize, b as usize)
        }
        DataType::LargeUtf8 | DataType::LargeBinary if !array.is_empty() => {
            let data = array.to_data();
            let o = data.buffer::<i64>(0);
            let (a, b) = (o[data.offset()], o[data.offset() + array.len()]);
            offsets(a as usize, b as usize)
        }
        DataType::Utf8View => array
            .as_string_view()
            .views()
            .iter()
            .map(|v| *v as u32 as usize)
            .sum(),
        // A slice counts its own rows only: results often share the
        // buffers of a much larger input.
        _ => array
            .to_data()
            .get_slice_memory_size()
            .unwrap_or_else(|_| array.get_array_memory_size()),
    }
}

/// A text argument, row by row (a scalar is the same for every row).
enum Texts<'a> {
    Scalar(Option<&'a str>),
    Array(&'a ArrayRef),
}

impl<'a> Texts<'a> {
    fn of(value: &'a ColumnarValue, _rows: usize) -> Self {
        match value {
            ColumnarValue::Scalar(s) => Self::Scalar(match s {
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                    v.as_deref()
                }
                _ => None,
            }),
            ColumnarValue::Array(a) => Self::Array(a),
        }
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::Scalar(s) => *s,
            Self::Array(a) => {
                if row >= a.len() || a.is_null(row) {
                    return None;
                }
                match a.data_type() {
                    DataType::Utf8 => Some(a.as_string::<i32>().value(row)),
                    DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row)),
                    DataType::Utf8View => Some(a.as_string_view().value(row)),
                    _ => None,
                }
            }
        }
    }
}

/// Bytes of a result: the largest value and the whole.
fn result_bytes(value: &ColumnarValue) -> (usize, usize) {
    match value {
        ColumnarValue::Scalar(s) => {
            let n = s.size();
            (n, n)
        }
        ColumnarValue::Array(a) => match a.data_type() {
            DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
            | DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Map(..)
            | DataType::Struct(_) => {
                let all = value_bytes(a.as_ref());
                // A single value is never more than the whole.
                (all, all)
            }
            _ => (0, 0),
        },
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let Some((largest, total)) = self.bound(&args) {
            self.check(largest.max(total))?;
        }
        let value = self.inner.invoke_with_args(args)?;
        let (largest, total) = result_bytes(&value);
        self.check(largest.max(total))?;
        Ok(value)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Self::new(
            Arc::new(updated),
            self.cap,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn conditional_arguments<'a>(
        &self,
        args: &'a [Expr],
    ) -> Option<(Vec<&'a Expr>, Vec<&'a Expr>)> {
        self.inner.inner().conditional_arguments(args)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}

/// Plans SQL's `string || string` as [`ConcatOperator`], which is bounded
/// like the functions: DataFusion evaluates the operator itself, outside
/// any function, and thirty nested doublings reached its 2 GiB offset
/// limit (and a panic) from one column. Lists keep DataFusion's own
/// planning (`array_concat` and friends, which are bounded functions).
#[derive(Debug)]
pub struct BoundedConcatPlanner {
    cap: usize,
}

impl BoundedConcatPlanner {
    pub fn new(cap: usize) -> Self {
        Self { cap }
    }
}

impl ExprPlanner for BoundedConcatPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let is_list = |e: &Expr| -> Result<bool> {
            Ok(matches!(
                e.get_type(schema)?,
                DataType::List(_)
                    | DataType::LargeList(_)
                    | DataType::FixedSizeList(..)
                    | DataType::ListView(_)
                    | DataType::LargeListView(_)
            ))
        };
        if expr.op != BinaryOperator::StringConcat || is_list(&expr.left)? || is_list(&expr.right)?
        {
            return Ok(PlannerResult::Original(expr));
        }
        let udf = Arc::new(ScalarUDF::new_from_impl(ConcatOperator::new(self.cap)));
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            datafusion::logical_expr::expr::ScalarFunction::new_udf(
                udf,
                vec![expr.left, expr.right],
            ),
        )))
    }
}

/// `a || b` on text: null when either side is null (unlike `concat`),
/// other types as their text, and refused past the cap before anything is
/// built (the result's size is the sum of its sides').
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConcatOperator {
    signature: Signature,
    cap: usize,
}

impl ConcatOperator {
    fn new(cap: usize) -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
            cap,
        }
    }
}

impl ScalarUDFImpl for ConcatOperator {
    fn name(&self) -> &str {
        "||"
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        match args {
            [a, b] => Ok(format!("{} || {}", a.schema_name(), b.schema_name())),
            _ => datafusion::common::plan_err!("|| takes two operands"),
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let n = if scalars { 1 } else { rows };
        let texts = args
            .args
            .iter()
            .map(|a| {
                let array = a.to_array(n)?;
                Ok(arrow::compute::cast(&array, &DataType::Utf8)?)
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        let [a, b] = texts.as_slice() else {
            return datafusion::common::exec_err!("|| takes two operands");
        };
        let bytes = value_bytes(a.as_ref()).saturating_add(value_bytes(b.as_ref()));
        if bytes > self.cap {
            return Err(DataFusionError::External(Box::new(OutputTooLarge {
                function: "||".to_owned(),
                bytes,
                cap: self.cap,
            })));
        }
        let joined = arrow::compute::kernels::concat_elements::concat_elements_utf8(
            a.as_string::<i32>(),
            b.as_string::<i32>(),
        )?;
        if scalars {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &joined, 0,
            )?));
        }
        Ok(ColumnarValue::Array(Arc::new(joined)))
    }
}
