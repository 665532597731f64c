//! Typed access to result columns by name, for code that turns query
//! results into API shapes. Dictionary strings are decoded and timestamps
//! read as nanoseconds, so callers see one type per column whatever
//! encoding the plan produced.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};

use crate::error::QueryError;

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, QueryError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| QueryError::Internal(format!("result has no column '{name}'")))
}

fn cast_to(array: &ArrayRef, name: &str, to: &DataType) -> Result<ArrayRef, QueryError> {
    cast(array, to)
        .map_err(|e| QueryError::Internal(format!("reading column '{name}' as {to}: {e}")))
}

/// A string column, dictionary or not.
pub fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray, QueryError> {
    let array = cast_to(column(batch, name)?, name, &DataType::Utf8)?;
    Ok(array.as_string::<i32>().clone())
}

/// An integer column; timestamps read as their value in their unit
/// (nanoseconds for every Seam time column).
pub fn int64s(batch: &RecordBatch, name: &str) -> Result<Int64Array, QueryError> {
    let array = cast_to(column(batch, name)?, name, &DataType::Int64)?;
    Ok(array.as_primitive::<Int64Type>().clone())
}

pub fn booleans(batch: &RecordBatch, name: &str) -> Result<BooleanArray, QueryError> {
    let array = cast_to(column(batch, name)?, name, &DataType::Boolean)?;
    Ok(array.as_boolean().clone())
}

/// The raw column, for nested types read element by element.
pub fn raw<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, QueryError> {
    column(batch, name)
}

/// `Some(value)` unless null.
pub fn opt_str(array: &StringArray, row: usize) -> Option<String> {
    array.is_valid(row).then(|| array.value(row).to_owned())
}
