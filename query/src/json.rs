//! Query results on the wire: `{"columns": [...], "rows": [[...], ...]}` for
//! people and scripts, an Arrow IPC stream for clients that keep types.
//!
//! Values are written by Arrow's JSON encoders, so every type Arrow knows
//! renders the same way here as anywhere else Arrow writes JSON: timestamps
//! as RFC 3339 strings, maps and structs as objects, lists as arrays,
//! integers as numbers, dictionary strings as their values. A type the JSON
//! encoders do not support is written as its Arrow display string.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef};
use arrow::error::ArrowError;
use arrow::ipc::writer::StreamWriter;
use arrow::json::writer::{EncoderOptions, make_encoder};

use crate::session::QueryResult;

/// The media type of an Arrow IPC stream.
pub const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

/// Encodes `result` as `{"columns": [...], "rows": [[...]]}`.
pub fn to_json(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"columns\":");
    let names: Vec<&str> = result
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    serde_json::to_writer(&mut out, &names).map_err(|e| ArrowError::JsonError(e.to_string()))?;
    out.extend_from_slice(b",\"rows\":[");
    let options = EncoderOptions::default().with_explicit_nulls(true);
    let mut first_row = true;
    for batch in &result.batches {
        let columns = encodable_columns(batch, &options)?;
        let mut encoders = columns
            .iter()
            .map(|(field, array)| make_encoder(field, array.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            if !first_row {
                out.push(b',');
            }
            first_row = false;
            out.push(b'[');
            for (i, encoder) in encoders.iter_mut().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if encoder.is_null(row) {
                    out.extend_from_slice(b"null");
                } else {
                    encoder.encode(row, &mut out);
                }
            }
            out.push(b']');
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// The batch's columns, with those the JSON encoders cannot write cast to
/// a type they can (maps whose keys are dictionary-encoded, as attribute
/// maps are, to maps of plain text keys) or else to strings.
fn encodable_columns(
    batch: &RecordBatch,
    options: &EncoderOptions,
) -> Result<Vec<(FieldRef, ArrayRef)>, ArrowError> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            if make_encoder(field, array.as_ref(), options).is_ok() {
                return Ok((field.clone(), array.clone()));
            }
            let plain = without_dictionaries(field.data_type());
            if let Ok(cast) = cast(array, &plain) {
                let field: FieldRef = Arc::new(field.as_ref().clone().with_data_type(plain));
                if make_encoder(&field, cast.as_ref(), options).is_ok() {
                    return Ok((field, cast));
                }
            }
            let text = cast(array, &DataType::Utf8)?;
            Ok((
                Arc::new(Field::new(field.name(), DataType::Utf8, true)),
                text,
            ))
        })
        .collect()
}

/// `data_type` with every dictionary inside it replaced by its values'
/// type.
fn without_dictionaries(data_type: &DataType) -> DataType {
    let field = |f: &FieldRef| -> FieldRef {
        Arc::new(
            f.as_ref()
                .clone()
                .with_data_type(without_dictionaries(f.data_type())),
        )
    };
    match data_type {
        DataType::Dictionary(_, values) => without_dictionaries(values),
        DataType::Map(entries, sorted) => DataType::Map(field(entries), *sorted),
        DataType::List(item) => DataType::List(field(item)),
        DataType::LargeList(item) => DataType::LargeList(field(item)),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        other => other.clone(),
    }
}

/// Encodes `result` as an Arrow IPC stream (schema first, so an empty
/// result still carries its columns).
pub fn to_arrow_stream(result: &QueryResult) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &result.schema)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    writer.into_inner()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use arrow::array::{Int64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Schema, TimeUnit};
    use arrow::ipc::reader::StreamReader;
    use serde_json::{Value, json};

    use super::*;
    use crate::testdata;

    fn small() -> QueryResult {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
            Field::new(
                "t",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                false,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("a\"b"), None])),
                Arc::new(Int64Array::from(vec![1, 9_007_199_254_740_993])),
                Arc::new(
                    TimestampNanosecondArray::from(vec![testdata::T0, testdata::T0 + 5])
                        .with_timezone("UTC"),
                ),
            ],
        )
        .unwrap();
        QueryResult {
            schema,
            batches: vec![batch.clone(), batch.slice(1, 1)],
        }
    }

    #[test]
    fn writes_columns_and_rows_in_order() {
        let json: Value = serde_json::from_slice(&to_json(&small()).unwrap()).unwrap();
        assert_eq!(
            json,
            json!({
                "columns": ["name", "n", "t"],
                "rows": [
                    ["a\"b", 1, "2023-11-14T22:13:20Z"],
                    [null, 9_007_199_254_740_993i64, "2023-11-14T22:13:20.000000005Z"],
                    [null, 9_007_199_254_740_993i64, "2023-11-14T22:13:20.000000005Z"],
                ]
            })
        );
    }

    #[test]
    fn writes_nested_span_columns() {
        let batch = testdata::batch();
        let result = QueryResult {
            schema: batch.schema(),
            batches: vec![batch],
        };
        let json: Value = serde_json::from_slice(&to_json(&result).unwrap()).unwrap();
        let columns: Vec<&str> = json["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let at = |name: &str| columns.iter().position(|c| *c == name).unwrap();
        let root = &json["rows"][0];
        assert_eq!(root[at("trace_id")], testdata::CHECKOUT_TRACE);
        assert_eq!(root[at("kind")], "server");
        assert_eq!(root[at("attributes")]["http.route"], "/checkout");
        assert_eq!(root[at("events")][0]["name"], "exception");
        assert_eq!(root[at("parent_span_id")], Value::Null);
        assert!(root[at("duration_ns")].is_i64());
    }

    #[test]
    fn an_empty_result_keeps_its_columns() {
        let mut result = small();
        result.batches.clear();
        let json: Value = serde_json::from_slice(&to_json(&result).unwrap()).unwrap();
        assert_eq!(json, json!({"columns": ["name", "n", "t"], "rows": []}));
        let ipc = to_arrow_stream(&result).unwrap();
        let reader = StreamReader::try_new(Cursor::new(ipc), None).unwrap();
        assert_eq!(reader.schema(), result.schema);
    }

    #[test]
    fn arrow_stream_round_trips() {
        let result = small();
        let ipc = to_arrow_stream(&result).unwrap();
        let batches: Vec<RecordBatch> = StreamReader::try_new(Cursor::new(ipc), None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0], result.batches[0]);
        assert_eq!(batches[1], result.batches[1]);
    }
}
