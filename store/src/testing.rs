//! Small tables for tests of the store and of what reads it: an optional
//! `trace_id`, a UTC nanosecond time column and an `Int64` `v`.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// `[trace_id,] <time>, v`.
pub fn schema(time: &str, traced: bool) -> SchemaRef {
    let mut fields = Vec::new();
    if traced {
        fields.push(Field::new("trace_id", DataType::Utf8, false));
    }
    fields.push(Field::new(
        time,
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        false,
    ));
    fields.push(Field::new("v", DataType::Int64, false));
    Arc::new(Schema::new(fields))
}

/// Rows of a [`schema`]; `ids` only where it has `trace_id`.
pub fn batch(
    schema: &SchemaRef,
    ids: Option<&[&str]>,
    times: &[i64],
    values: &[i64],
) -> RecordBatch {
    let mut columns: Vec<arrow::array::ArrayRef> = Vec::new();
    if let Some(ids) = ids {
        columns.push(Arc::new(StringArray::from(ids.to_vec())));
    }
    columns.push(Arc::new(
        TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC"),
    ));
    columns.push(Arc::new(Int64Array::from(values.to_vec())));
    RecordBatch::try_new(schema.clone(), columns).expect("rows of the test schema")
}

/// Column `v` of every batch, in order.
pub fn values<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>) -> Vec<i64> {
    batches
        .into_iter()
        .flat_map(|b| {
            b.column_by_name("v")
                .expect("a column v")
                .as_primitive::<arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}
