//! What one expression may build.
//!
//! The memory pool accounts for operators (joins, sorts, aggregations),
//! not for the values expressions return, so eight nested
//! `replace(…, 'a', 'aaaaaaaaaa')` calls built a billion-character string
//! from one literal and took the server to gigabytes. Three guards bound
//! what an expression builds by `query.max_function_output` (the cap):
//!
//! 1. **Every scalar function call** is wrapped in [`Bounded`], by an
//!    analyzer rule ([`BoundFunctions`]) that sees every call in a plan,
//!    whether the SQL named it, a planner made it (`[a, b]`, `OVERLAY`,
//!    `EXTRACT`) or a simplification rewrote it. A call is refused:
//!    - before it runs, for the functions whose output grows with their
//!      input: from the bytes of their arguments (a constant counted once
//!      for every row it is copied into) times how much the function can
//!      grow them; `replace`, `regexp_replace` and `array_to_string`, which
//!      grow by an argument, get bounds of their own;
//!    - after it runs, for every other function, whose output is at most a
//!      small multiple of its input;
//!    - when it folds to a constant larger than [`MAX_CONSTANT`]: a
//!      constant is copied into every row of every batch it meets.
//! 2. **SQL's text `||`**, which DataFusion evaluates as an operator, not a
//!    function, is planned as [`ConcatOperator`], bounded before it runs.
//! 3. **Constants a projection copies into every row** (`SELECT '…' FROM
//!    spans`, `CASE … THEN '…'`) are bounded at planning by
//!    [`BoundConstants`]: their bytes times the rows of a batch (fewer
//!    when the input is known to be smaller: one row without `FROM`, a
//!    `VALUES` list); literals longer than [`MAX_CONSTANT`] are refused
//!    outright.
//!
//! The cap applies to one value and to the whole batch a call returns;
//! batches are at most `datafusion.execution.batch_size` rows (8,192).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, FieldRef};
use bytesize::ByteSize;
use datafusion::common::config::ConfigOptions;
use datafusion::common::format::DEFAULT_CAST_OPTIONS;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::preimage::PreimageResult;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::sqlparser::ast::BinaryOperator;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ExprSchemable, ExpressionPlacement, LogicalPlan,
    ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// The largest constant a query may hold, typed or folded: it is copied
/// into every row of every batch it meets.
pub const MAX_CONSTANT: usize = 64 * 1024;

/// The error a refused expression ends the query with: a 400 that says why.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} would build {}, more than {limit} ({}); narrow the query{hint}",
    ByteSize::b(*.bytes as u64).display().iec(),
    ByteSize::b(*.cap as u64).display().iec()
)]
pub struct OutputTooLarge {
    /// What would have built it: a function, `||`, a constant.
    pub what: String,
    pub bytes: usize,
    /// The limit's name and value.
    pub limit: &'static str,
    pub cap: usize,
    pub hint: &'static str,
}

const CAP: &str = "query.max_function_output";
const RAISE: &str = " or raise the limit";

fn refuse(what: String, bytes: usize, cap: usize) -> DataFusionError {
    DataFusionError::External(Box::new(OutputTooLarge {
        what,
        bytes,
        limit: CAP,
        cap,
        hint: RAISE,
    }))
}

fn too_large_constant(what: String, bytes: usize) -> DataFusionError {
    DataFusionError::External(Box::new(OutputTooLarge {
        what,
        bytes,
        limit: "the largest constant a query may hold",
        cap: MAX_CONSTANT,
        hint: "",
    }))
}

/// Plans `||` on text as [`ConcatOperator`].
pub fn planner(cap: usize) -> Arc<dyn ExprPlanner> {
    Arc::new(BoundedConcatPlanner { cap })
}

/// Wraps every scalar function call of a plan in [`Bounded`], and refuses
/// literals longer than [`MAX_CONSTANT`].
#[derive(Debug)]
pub struct BoundFunctions {
    pub cap: usize,
}

impl AnalyzerRule for BoundFunctions {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            plan.map_expressions(|expr| expr.transform_up(|e| bound(e, self.cap)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "bound_functions"
    }
}

/// One node of an expression, its function bounded and its literal checked.
fn bound(expr: Expr, cap: usize) -> Result<Transformed<Expr>> {
    match expr {
        Expr::ScalarFunction(ScalarFunction { func, args }) if !is_bounded(&func) => {
            let func = Arc::new(ScalarUDF::new_from_impl(Bounded::new(func, cap)));
            Ok(Transformed::yes(Expr::ScalarFunction(ScalarFunction {
                func,
                args,
            })))
        }
        Expr::Literal(value, _) if constant_bytes(&value) > MAX_CONSTANT => Err(
            too_large_constant("a literal".to_owned(), constant_bytes(&value)),
        ),
        other => Ok(Transformed::no(other)),
    }
}

fn is_bounded(func: &ScalarUDF) -> bool {
    let inner: &dyn std::any::Any = func.inner().as_ref();
    inner.is::<Bounded>() || inner.is::<ConcatOperator>()
}

/// Bytes of what a constant copies into each row it meets.
fn constant_bytes(value: &ScalarValue) -> usize {
    match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.len(),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b))
        | ScalarValue::FixedSizeBinary(_, Some(b)) => b.len(),
        ScalarValue::List(_)
        | ScalarValue::LargeList(_)
        | ScalarValue::FixedSizeList(_)
        | ScalarValue::Struct(_)
        | ScalarValue::Map(_) => value.size(),
        _ => 0,
    }
}

/// How a function's output is bounded before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rule {
    /// Measured after the call: the function shrinks or keeps its input
    /// (`substr`, `trim`, `get_field`, hashes) or builds a small value.
    After,
    /// At most this many times the bytes of its arguments.
    Grows(usize),
    /// `replace(s, from, to)`: exact, from the occurrences of `from`.
    Replace,
    /// `regexp_replace(s, pattern, replacement[, flags])`: at most every
    /// position a match (only the first with no `g` flag), each replaced by
    /// the replacement with every group reference expanded to the whole
    /// input.
    RegexpReplace,
    /// `array_to_string(list, separator[, null])`: the elements' text, and
    /// a separator (or the null text) per element, however nested.
    Join,
}

impl Rule {
    fn of(name: &str) -> Self {
        match name {
            "replace" => Self::Replace,
            "regexp_replace" => Self::RegexpReplace,
            "array_to_string" => Self::Join,
            // Joins of their arguments.
            "concat" | "concat_ws" | "overlay" | "make_array" | "array_concat" | "array_append"
            | "array_prepend" | "array_union" | "array_intersect" | "named_struct" | "struct"
            | "map" | "make_map" | "string_to_array" | "array_distinct" | "array_sort"
            | "array_reverse" => Self::Grows(1),
            // Hex doubles; base64 adds a third.
            "to_hex" | "encode" => Self::Grows(2),
            // Changing case can lengthen a character to three bytes.
            "upper" | "lower" | "initcap" => Self::Grows(3),
            // A character can become one of up to four bytes.
            "translate" => Self::Grows(4),
            _ => Self::After,
        }
    }
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
        let rule = Rule::of(inner.name());
        Self { inner, cap, rule }
    }

    /// The most the call can build, per value and in all, when the rule
    /// knows it before the call.
    fn bound(&self, args: &ScalarFunctionArgs) -> Option<(usize, usize)> {
        let rows = args.number_rows.max(1);
        let arg = |i: usize| args.args.get(i).map(Texts::of);
        let mut largest = 0;
        let mut total = 0usize;
        let mut add = |n: usize| {
            largest = largest.max(n);
            total = total.saturating_add(n);
        };
        match self.rule {
            Rule::After => return None,
            Rule::Grows(k) => {
                // A constant argument is copied into every row.
                let bytes: usize = args
                    .args
                    .iter()
                    .map(|a| match a {
                        ColumnarValue::Scalar(s) => constant_bytes(s).saturating_mul(rows),
                        ColumnarValue::Array(a) => value_bytes(a.as_ref()),
                    })
                    .fold(0usize, usize::saturating_add);
                let all = bytes.saturating_mul(k);
                return Some((all, all));
            }
            Rule::Replace => {
                let (s, from, to) = (arg(0)?, arg(1)?, arg(2)?);
                for row in 0..rows {
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
                let flags = arg(3);
                for row in 0..rows {
                    let (Some(s), Some(r)) = (s.get(row), replacement.get(row)) else {
                        continue;
                    };
                    let global = flags
                        .as_ref()
                        .and_then(|f| f.get(row))
                        .is_some_and(|f| f.contains('g'));
                    let refs = r.matches('\\').count() + r.matches('$').count();
                    let matches = if global { s.len() + 1 } else { 1 };
                    add(s
                        .len()
                        .saturating_mul(1 + refs)
                        .saturating_add(matches.saturating_mul(r.len())));
                }
            }
            Rule::Join => {
                let list = match args.args.first()? {
                    ColumnarValue::Array(a) => a.clone(),
                    ColumnarValue::Scalar(s) => s.to_array().ok()?,
                };
                let (sep, null) = (arg(1)?, arg(2));
                let scalar = matches!(args.args.first(), Some(ColumnarValue::Scalar(_)));
                for row in 0..rows {
                    let at = if scalar { 0 } else { row };
                    if at >= list.len() || list.is_null(at) {
                        continue;
                    }
                    let (elements, bytes) = leaves(&list.slice(at, 1));
                    let per_element = sep
                        .get(row)
                        .map_or(0, str::len)
                        .max(null.as_ref().and_then(|n| n.get(row)).map_or(0, str::len));
                    add(bytes.saturating_add(elements.saturating_mul(per_element)));
                }
            }
        }
        Some((largest, total))
    }

    fn check(&self, bytes: usize) -> Result<()> {
        if bytes > self.cap {
            return Err(refuse(
                format!("function '{}'", self.name()),
                bytes,
                self.cap,
            ));
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

/// Text width charged for an element that is not text (a number or a
/// date as text).
const NON_TEXT_WIDTH: usize = 32;

/// The leaf elements of a (possibly nested) list array, and the bytes of
/// their text.
fn leaves(array: &ArrayRef) -> (usize, usize) {
    match array.data_type() {
        DataType::List(_) => leaves(array.as_list::<i32>().values()),
        DataType::LargeList(_) => leaves(array.as_list::<i64>().values()),
        DataType::FixedSizeList(..) => leaves(array.as_fixed_size_list().values()),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Binary => {
            (array.len(), value_bytes(array.as_ref()))
        }
        _ => (array.len(), array.len().saturating_mul(NON_TEXT_WIDTH)),
    }
}

/// Bytes of the values an array holds (for text and binary, the text of
/// its own rows; otherwise its memory, a slice counting its own rows).
fn value_bytes(array: &dyn Array) -> usize {
    match array.data_type() {
        DataType::Utf8 | DataType::Binary if !array.is_empty() => {
            // The typed buffer already starts at the array's offset.
            let data = array.to_data();
            let o = data.buffer::<i32>(0);
            (o[array.len()] - o[0]) as usize
        }
        DataType::LargeUtf8 | DataType::LargeBinary if !array.is_empty() => {
            let data = array.to_data();
            let o = data.buffer::<i64>(0);
            (o[array.len()] - o[0]) as usize
        }
        DataType::Utf8View => array
            .as_string_view()
            .views()
            .iter()
            .map(|v| *v as u32 as usize)
            .sum(),
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
    fn of(value: &'a ColumnarValue) -> Self {
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

/// Bytes of an array result (0 for fixed-width values, which are never
/// more than their rows).
fn result_bytes(array: &ArrayRef) -> usize {
    match array.data_type() {
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
        | DataType::Struct(_) => value_bytes(array.as_ref()),
        _ => 0,
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
        match &value {
            ColumnarValue::Array(array) => self.check(result_bytes(array))?,
            ColumnarValue::Scalar(s) if constant_bytes(s) > MAX_CONSTANT => {
                return Err(too_large_constant(
                    format!("a constant from function '{}'", self.name()),
                    constant_bytes(s),
                ));
            }
            ColumnarValue::Scalar(_) => {}
        }
        Ok(value)
    }

    fn with_updated_config(&self, config: &ConfigOptions) -> Option<ScalarUDF> {
        let updated = self.inner.inner().with_updated_config(config)?;
        Some(ScalarUDF::new_from_impl(Self::new(
            Arc::new(updated),
            self.cap,
        )))
    }

    /// What the function simplifies to is bounded too: `concat` and
    /// others rebuild themselves from DataFusion's own functions.
    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        match self.inner.simplify(args, info)? {
            ExprSimplifyResult::Simplified(expr) => Ok(ExprSimplifyResult::Simplified(
                expr.transform_up(|e| bound(e, self.cap))?.data,
            )),
            original => Ok(original),
        }
    }

    fn preimage(
        &self,
        args: &[Expr],
        lit_expr: &Expr,
        info: &SimplifyContext,
    ) -> Result<PreimageResult> {
        self.inner.preimage(args, lit_expr, info)
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

    fn evaluate_bounds(&self, input: &[&Interval]) -> Result<Interval> {
        self.inner.evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> Result<Option<Vec<Interval>>> {
        self.inner.propagate_constraints(interval, inputs)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.preserves_lex_ordering(inputs)
    }

    fn strictly_order_preserving(&self, inputs: &[ExprProperties]) -> Result<bool> {
        self.inner.strictly_order_preserving(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn placement(&self, args: &[ExpressionPlacement]) -> ExpressionPlacement {
        self.inner.placement(args)
    }
}

/// Plans SQL's `||` on text as [`ConcatOperator`], which is bounded like
/// the functions: DataFusion evaluates the operator itself, outside any
/// function, and thirty nested doublings reached its 2 GiB offset limit
/// (and a panic) from one column. Lists keep DataFusion's own planning
/// (`array_concat` and friends, functions [`BoundFunctions`] bounds).
#[derive(Debug)]
struct BoundedConcatPlanner {
    cap: usize,
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

fn is_list(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
    )
}

impl ExprPlanner for BoundedConcatPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op != BinaryOperator::StringConcat {
            return Ok(PlannerResult::Original(expr));
        }
        let (left, right) = (expr.left.get_type(schema)?, expr.right.get_type(schema)?);
        // What DataFusion's operator takes: text with text or with a
        // value it casts to text; anything else keeps its own error.
        if is_list(&left) || is_list(&right) || !(is_text(&left) || is_text(&right)) {
            return Ok(PlannerResult::Original(expr));
        }
        let udf = Arc::new(ScalarUDF::new_from_impl(ConcatOperator::new(self.cap)));
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(udf, vec![expr.left, expr.right]),
        )))
    }
}

/// `a || b` on text: null when either side is null (unlike `concat`),
/// the other side cast to text as DataFusion casts it, and refused past
/// the cap before anything is built (the result's size is the sum of its
/// sides', a constant side counted once per row).
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
        // As text first, measured before a constant is copied into rows.
        let mut bytes = 0usize;
        let mut sides = Vec::with_capacity(2);
        for arg in &args.args {
            let text = arg.cast_to(&DataType::Utf8, Some(&DEFAULT_CAST_OPTIONS))?;
            bytes = bytes.saturating_add(match &text {
                ColumnarValue::Scalar(s) => constant_bytes(s).saturating_mul(n),
                ColumnarValue::Array(a) => value_bytes(a.as_ref()),
            });
            sides.push(text);
        }
        if bytes > self.cap {
            return Err(refuse("'||'".to_owned(), bytes, self.cap));
        }
        let [a, b] = sides.as_slice() else {
            return datafusion::common::exec_err!("|| takes two operands");
        };
        let (a, b) = (a.to_array(n)?, b.to_array(n)?);
        let joined = arrow::compute::kernels::concat_elements::concat_elements_utf8(
            a.as_string::<i32>(),
            b.as_string::<i32>(),
        )?;
        if scalars {
            let value = ScalarValue::try_from_array(&joined, 0)?;
            if constant_bytes(&value) > MAX_CONSTANT {
                return Err(too_large_constant(
                    "a constant from '||'".to_owned(),
                    constant_bytes(&value),
                ));
            }
            return Ok(ColumnarValue::Scalar(value));
        }
        Ok(ColumnarValue::Array(Arc::new(joined)))
    }
}

/// Refuses, at planning, a projection whose constants, copied into every
/// row of a batch, would build more than the cap: `SELECT '<1 MB>' FROM
/// spans` asks for a gigabyte a batch.
#[derive(Debug)]
pub struct BoundConstants {
    pub cap: usize,
}

impl PhysicalOptimizerRule for BoundConstants {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = usize::from(config.execution.batch_size);
        let statistics = StatisticsContext::new();
        plan.apply(|node| {
            if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                // A batch holds at most what the input can yield: one row
                // for a query without FROM, a VALUES list's rows.
                let rows = statistics
                    .compute(projection.input().as_ref(), &StatisticsArgs::new())
                    .ok()
                    .and_then(|s| s.num_rows.get_value().copied())
                    .map_or(batch, |n| n.min(batch));
                let constants: usize = projection
                    .expr()
                    .iter()
                    .map(|p| literal_bytes(&p.expr))
                    .sum();
                let bytes = constants.saturating_mul(rows);
                if bytes > self.cap {
                    return Err(refuse(
                        format!(
                            "a projection copying {} of constants into each of {rows} rows",
                            ByteSize::b(constants as u64).display().iec()
                        ),
                        bytes,
                        self.cap,
                    ));
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "bound_constants"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Bytes of the constants anywhere in an expression.
fn literal_bytes(expr: &Arc<dyn PhysicalExpr>) -> usize {
    let mut bytes = 0usize;
    let _ = expr.apply(|e| {
        if let Some(literal) = e.downcast_ref::<Literal>() {
            bytes = bytes.saturating_add(constant_bytes(literal.value()));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    bytes
}
