//! Columns held in memory in another type than SQL reads them, converted
//! to SQL's: ids from their bytes to the lowercase hex users write and
//! every tracing UI shows; anything else by Arrow's own cast (a
//! dictionary of resource maps to the maps).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, FixedSizeBinaryArray, Int32Array, NullBufferBuilder,
    RecordBatch, RecordBatchOptions, RunArray, StringArray,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Int32Type, SchemaRef};
use arrow::error::ArrowError;

/// `array` as `to`: fixed-size binary to text as lowercase hex, every
/// other pair as [`arrow::compute::cast`] converts it.
pub fn to_sql(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    match (array.data_type(), to) {
        (from, to) if from == to => Ok(array.clone()),
        (DataType::FixedSizeBinary(_), DataType::Utf8) => {
            Ok(Arc::new(hex(array.as_fixed_size_binary())?))
        }
        (DataType::RunEndEncoded(ends, _), to) if ends.data_type() == &DataType::Int32 => {
            expand(array.as_run::<Int32Type>(), to)
        }
        _ => arrow::compute::cast(array, to),
    }
}

/// `batch`'s columns of `schema`, by name, each as [`to_sql`] makes it;
/// the row count kept for a batch of no columns (`count(*)`).
pub fn batch_to_sql(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let columns = (schema.fields().iter())
        .map(|field| {
            let column = batch
                .column_by_name(field.name())
                .ok_or_else(|| ArrowError::SchemaError(format!("no column {}", field.name())))?;
            to_sql(column, field.data_type())
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let rows = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &rows)
}

/// Runs as one value a row, of type `to`: a dictionary over the runs'
/// values (a value per run, repeated values allowed) when `to` is a
/// dictionary of them, so no value is hashed; else each row's value.
fn expand(runs: &RunArray<Int32Type>, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let values = runs.values();
    match (to, values.as_dictionary_opt::<Int32Type>()) {
        // Runs of a dictionary's keys: each row its run's key.
        (DataType::Dictionary(key, value), Some(dictionary))
            if **key == DataType::Int32 && **value == *dictionary.values().data_type() =>
        {
            let keys = dictionary.keys();
            let keys = per_row(runs, |run| keys.is_valid(run).then(|| keys.value(run)));
            Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
                keys,
                dictionary.values().clone(),
            )?))
        }
        (DataType::Dictionary(key, value), None)
            if **key == DataType::Int32 && **value == *values.data_type() =>
        {
            let keys = per_row(runs, |run| values.is_valid(run).then_some(run as i32));
            Ok(Arc::new(DictionaryArray::<Int32Type>::try_new(
                keys,
                values.clone(),
            )?))
        }
        _ => {
            let indices = per_row(runs, |run| values.is_valid(run).then_some(run as i32));
            to_sql(&arrow::compute::take(values, &indices, None)?, to)
        }
    }
}

/// `of(run)` for each row of `runs`' logical rows (a slice's own), null
/// where it is `None`: written a run at a time.
fn per_row(runs: &RunArray<Int32Type>, of: impl Fn(usize) -> Option<i32>) -> Int32Array {
    let ends = runs.run_ends();
    let (offset, len) = (ends.offset(), ends.len());
    let mut out: Vec<i32> = Vec::with_capacity(len);
    let mut nulls = NullBufferBuilder::new(len);
    let mut at = offset;
    let physical = ends.values().iter().enumerate();
    for (run, &end) in physical.skip(ends.get_start_physical_index()) {
        let end = (end as usize).min(offset + len);
        let n = end.saturating_sub(at);
        match of(run) {
            Some(v) => {
                out.extend(std::iter::repeat_n(v, n));
                nulls.append_n_non_nulls(n);
            }
            None => {
                out.extend(std::iter::repeat_n(0, n));
                nulls.append_n_nulls(n);
            }
        }
        at = at.max(end);
        if at >= offset + len {
            break;
        }
    }
    Int32Array::new(out.into(), nulls.finish())
}

/// Each value as lowercase hex, written into one buffer at a fixed
/// stride; null slots keep their (zeroed) bytes' hex behind the null
/// mask, as Arrow allows.
pub fn hex(ids: &FixedSizeBinaryArray) -> Result<StringArray, ArrowError> {
    let width = ids.value_length() as usize;
    let mut text = vec![0u8; ids.len() * width * 2];
    let bytes = ids.value_data();
    for (out, id) in text
        .chunks_exact_mut(width * 2)
        .zip(bytes.chunks_exact(width))
    {
        const_hex::encode_to_slice(id, out).map_err(|e| ArrowError::CastError(e.to_string()))?;
    }
    let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(width * 2, ids.len()));
    StringArray::try_new(offsets, Buffer::from_vec(text), ids.nulls().cloned())
}

/// The bytes of `text` if it is an id of `width` bytes in lowercase hex,
/// the only text that equals a stored id; `None` for any other string,
/// which no stored id equals.
pub fn id_bytes(text: &str, width: usize) -> Option<Vec<u8>> {
    let lowercase = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if text.len() != width * 2 || !text.as_bytes().iter().all(lowercase) {
        return None;
    }
    const_hex::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::FixedSizeBinaryBuilder;

    #[test]
    fn ids_become_lowercase_hex_and_nulls_stay_null() {
        let mut ids = FixedSizeBinaryBuilder::new(8);
        ids.append_value([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
            .unwrap();
        ids.append_null();
        ids.append_value([0xff; 8]).unwrap();
        let ids: ArrayRef = Arc::new(ids.finish());
        let text = to_sql(&ids, &DataType::Utf8).unwrap();
        let text = text.as_string::<i32>();
        assert_eq!(text.value(0), "00f067aa0ba902b7");
        assert!(text.is_null(1));
        assert_eq!(text.value(2), "ffffffffffffffff");
    }

    #[test]
    fn an_offset_slice_is_converted_from_its_own_rows() {
        let mut ids = FixedSizeBinaryBuilder::new(2);
        for v in [[1, 2], [3, 4], [5, 6]] {
            ids.append_value(v).unwrap();
        }
        let ids: ArrayRef = Arc::new(ids.finish().slice(1, 2));
        let text = to_sql(&ids, &DataType::Utf8).unwrap();
        let text: Vec<_> = text.as_string::<i32>().iter().flatten().collect();
        assert_eq!(text, ["0304", "0506"]);
    }

    #[test]
    fn runs_become_a_value_a_row_and_slices_keep_their_rows() {
        use arrow::array::{Int64Array, StringArray};
        let ends = Int32Array::from(vec![2, 3, 6]);
        let text = StringArray::from(vec![Some("a"), None, Some("b")]);
        let runs = RunArray::<Int32Type>::try_new(&ends, &text).unwrap();
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        for (array, want) in [
            (
                runs.slice(0, 6),
                vec![Some("a"), Some("a"), None, Some("b"), Some("b"), Some("b")],
            ),
            (runs.slice(1, 3), vec![Some("a"), None, Some("b")]),
            (runs.slice(4, 2), vec![Some("b"), Some("b")]),
            (runs.slice(2, 0), vec![]),
        ] {
            let array: ArrayRef = Arc::new(array);
            for to in [&dict, &DataType::Utf8] {
                let out = to_sql(&array, to).unwrap();
                assert_eq!(out.data_type(), to);
                assert_eq!(
                    out.null_count(),
                    want.iter().filter(|v| v.is_none()).count()
                );
                let plain = arrow::compute::cast(&out, &DataType::Utf8).unwrap();
                let got: Vec<_> = plain.as_string::<i32>().iter().collect();
                assert_eq!(got, want, "{to}");
            }
        }
        // Runs of a dictionary's keys, as the spans' text runs are held.
        let keys = Int32Array::from(vec![Some(1), None, Some(0)]);
        let names = StringArray::from(vec!["b", "a"]);
        let text = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(names)).unwrap();
        let runs = RunArray::<Int32Type>::try_new(&ends, &text).unwrap();
        for to in [&dict, &DataType::Utf8] {
            let out = to_sql(&(Arc::new(runs.slice(1, 4)) as ArrayRef), to).unwrap();
            assert_eq!(out.data_type(), to);
            let plain = arrow::compute::cast(&out, &DataType::Utf8).unwrap();
            let got: Vec<_> = plain.as_string::<i32>().iter().collect();
            assert_eq!(got, [Some("a"), None, Some("b"), Some("b")], "{to}");
        }
        let numbers = Int64Array::from(vec![None, Some(7)]);
        let runs = RunArray::<Int32Type>::try_new(&Int32Array::from(vec![3, 4]), &numbers).unwrap();
        let out = to_sql(&(Arc::new(runs) as ArrayRef), &DataType::Int64).unwrap();
        let got: Vec<_> = out
            .as_primitive::<arrow::datatypes::Int64Type>()
            .iter()
            .collect();
        assert_eq!(got, [None, None, None, Some(7)]);
    }

    #[test]
    fn only_exact_lowercase_hex_names_an_id() {
        assert_eq!(
            id_bytes("00f067aa0ba902b7", 8),
            Some(vec![0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!(
            id_bytes("00F067AA0BA902B7", 8),
            None,
            "text never equals uppercase"
        );
        assert_eq!(id_bytes("f067aa0ba902b7", 8), None, "nor a shorter id");
        assert_eq!(id_bytes("00f067aa0ba902bz", 8), None);
        assert_eq!(id_bytes("", 8), None);
    }
}
