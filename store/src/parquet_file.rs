//! Writing and reading one sealed Parquet file.
//!
//! A file is written sorted by its table's [`Layout`], zstd-compressed
//! (but for columns nearly always empty and those of a few distinct
//! values), with page-level statistics, a page index and bloom filters on the
//! lookup columns: a trace-id lookup rules out other files by their bloom
//! filters and reads only the row group, and within it the pages, whose
//! statistics can hold the id.
//!
//! Statistics are kept where they can prune: numbers and times (cheap,
//! and what time ranges prune by) and the text columns the layout sorts
//! or looks up by. Rows are sorted by trace, so a page's minimum and
//! maximum of any other text column (a name, a service, an attribute)
//! span nearly every value and rule nothing out, while computing them
//! compared every value: a third of a seal's CPU. DataFusion prunes with
//! nothing inside a map or a list at all.
//!
//! Files are written under a temporary name, synced, then renamed: a file
//! with its final name is always complete.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::array::{Array, AsArray};
use arrow::compute::{LexicographicalComparator, SortColumn, concat};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::error::ArrowError;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, ZstdLevel};
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::{ColumnPath, SchemaDescriptor};

use crate::table::Layout;

/// Why a sealed file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: {source}")]
    Parquet {
        path: String,
        source: parquet::errors::ParquetError,
    },
    #[error("{path}: {source}")]
    Arrow {
        path: String,
        source: arrow::error::ArrowError,
    },
}

/// How a sealed file's columns are compressed (`storage.compression`):
/// `zstd(LEVEL)` (1 to 22), `lz4_raw`, `snappy` or `uncompressed`.
/// Columns of few distinct values and mostly empty ones stay
/// uncompressed whatever is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Zstd(i32),
    Lz4Raw,
    Snappy,
    Uncompressed,
}

/// zstd at level 1: the seal's cheapest codec within 2% of the smallest
/// files (the figures are in BENCHMARKS.md).
impl Default for Codec {
    fn default() -> Self {
        Self::Zstd(1)
    }
}

impl Codec {
    fn compression(self) -> Compression {
        match self {
            Self::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).unwrap_or_default()),
            Self::Lz4Raw => Compression::LZ4_RAW,
            Self::Snappy => Compression::SNAPPY,
            Self::Uncompressed => Compression::UNCOMPRESSED,
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Zstd(level) => write!(f, "zstd({level})"),
            Self::Lz4Raw => f.write_str("lz4_raw"),
            Self::Snappy => f.write_str("snappy"),
            Self::Uncompressed => f.write_str("uncompressed"),
        }
    }
}

impl std::str::FromStr for Codec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let expected = || {
            format!(
                "unknown compression '{s}': expected zstd(1..22), lz4_raw, snappy or uncompressed"
            )
        };
        match s.trim() {
            "zstd" => Ok(Self::default()),
            "lz4_raw" => Ok(Self::Lz4Raw),
            "snappy" => Ok(Self::Snappy),
            "uncompressed" => Ok(Self::Uncompressed),
            other => {
                let level = (other.strip_prefix("zstd("))
                    .and_then(|l| l.strip_suffix(')'))
                    .and_then(|l| l.trim().parse::<i32>().ok())
                    .filter(|l| (1..=22).contains(l))
                    .ok_or_else(expected)?;
                Ok(Self::Zstd(level))
            }
        }
    }
}

impl serde::Serialize for Codec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Codec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How files are cut into row groups and pages.
#[derive(Debug, Clone, Copy)]
pub struct FileShape {
    /// Rows per row group: the unit a bloom filter covers and a lookup
    /// sets up (see `StorageConfig::row_group_rows`).
    pub row_group_rows: usize,
    /// Bytes a row group may take while it is encoded: bounds the memory
    /// a seal needs when spans are large.
    pub row_group_bytes: usize,
    /// Rows per data page at most: the unit the page index can skip. A
    /// lookup decompresses one page of each column it reads, so small
    /// pages make lookups cheap, for a few percent more disk (the
    /// trade-off measured is in BENCHMARKS.md).
    pub page_rows: usize,
    pub codec: Codec,
}

impl Default for FileShape {
    fn default() -> Self {
        Self {
            row_group_rows: 1024 * 1024,
            row_group_bytes: 64 * 1024 * 1024,
            page_rows: 512,
            codec: Codec::default(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub rows: u64,
    pub bytes: u64,
}

/// Largest dictionary a column chunk keeps before it falls back to plain
/// values. Reading any page of a chunk decompresses and decodes its whole
/// dictionary, so a lookup of one trace pays for every dictionary of the
/// row group it reads; the columns a dictionary suits (services, names,
/// attribute keys) stay far under this, and the values past it (attribute
/// values, instances, message ids) compress as well plain under zstd.
const DICTIONARY_PAGE_BYTES: usize = 8 * 1024;

/// How often a row group's bloom filter admits a key it does not hold.
/// A lookup reads every row group admitted: at 1%, a quarter of trace
/// lookups at 10M spans read a second file for nothing. The filters are folded to this rate over the
/// keys actually written, about 14 bits a trace.
const BLOOM_FPP: f64 = 0.001;

/// Largest data page of a map's values (attribute values): a lookup
/// decompresses and skips through a whole page of each column to reach
/// its rows, and attribute values are most of a row's bytes, so their
/// pages at the row limit took a lookup longer than all other columns'.
/// Smaller pages compress a little worse (BENCHMARKS.md, storage).
const MAP_VALUES_PAGE_BYTES: usize = 32 * 1024;

/// Rows interleaved into one batch at a time while writing: the memory a
/// seal needs beyond the rows it seals.
const WRITE_CHUNK_ROWS: usize = 8 * 1024;

/// Memory one interleaved chunk aims at, for tables of large rows.
const WRITE_CHUNK_BYTES: usize = 64 * 1024 * 1024;

/// Sorts `batches` by `layout` and writes them to `path`.
///
/// Only the sort columns are copied to sort; rows are then gathered in
/// sorted order a chunk at a time, so sealing needs little memory beyond
/// the rows themselves and one row group being encoded.
pub fn write(
    path: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    layout: &Layout,
    shape: FileShape,
) -> Result<Written, FileError> {
    let name = path.display().to_string();
    let arrow_err = |source| FileError::Arrow {
        path: name.clone(),
        source,
    };
    let io_err = |source| FileError::Io {
        path: name.clone(),
        source,
    };
    let parquet_err = |source| FileError::Parquet {
        path: name.clone(),
        source,
    };
    let unrun = (batches.iter())
        .filter(|b| b.num_rows() > 0)
        .map(|b| without_runs(b, schema))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow_err)?;
    let batches: Vec<&RecordBatch> = unrun.iter().collect();
    let order = sorted_positions(&batches, layout).map_err(arrow_err)?;
    let rows = order.len();
    let mut props = WriterProperties::builder()
        .set_compression(shape.codec.compression())
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(shape.row_group_rows.max(1)))
        .set_max_row_group_bytes(Some(shape.row_group_bytes.max(1)))
        .set_data_page_row_count_limit(shape.page_rows.max(1))
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES);
    let per_group = rows.min(shape.row_group_rows).max(1) as u64;
    let descriptor = ArrowSchemaConverter::new()
        .convert(schema)
        .map_err(parquet_err)?;
    for column in unpruned(&descriptor, layout) {
        props = props.set_column_statistics_enabled(column, EnabledStatistics::None);
    }
    for column in &layout.distinct {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false);
    }
    let sparse = sparse(&descriptor, schema, &batches, rows);
    let few = few_values(&descriptor, schema, &batches);
    for column in sparse.into_iter().chain(few) {
        props = props.set_column_compression(column, Compression::UNCOMPRESSED);
    }
    for column in map_values(&descriptor) {
        props = props.set_column_data_page_size_limit(column, MAP_VALUES_PAGE_BYTES);
    }
    for column in &layout.bloom {
        let column = ColumnPath::from(column.as_str());
        props = props
            .set_column_bloom_filter_enabled(column.clone(), true)
            .set_column_bloom_filter_fpp(column.clone(), BLOOM_FPP)
            .set_column_bloom_filter_max_ndv(column, per_group);
    }
    let tmp = path.with_extension("parquet.tmp");
    let written = (|| {
        let file = File::create(&tmp).map_err(io_err)?;
        let mut writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props.build())).map_err(parquet_err)?;
        let gather = Gather::new(schema, &batches).map_err(arrow_err)?;
        for chunk in order.chunks(chunk_rows(&batches, rows)) {
            write_gathered(&mut writer, &gather, chunk, &name)?;
        }
        let file = writer.into_inner().map_err(parquet_err)?;
        file.sync_all().map_err(io_err)?;
        file.metadata().map_err(io_err).map(|m| m.len())
    })();
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(e) => {
            // A full disk must not stay full of a file nobody will read.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, path).map_err(io_err)?;
    // The rename is durable only once the directory is synced: without
    // it a power loss could leave the manifest naming a missing file.
    let dir = path.parent().unwrap_or(Path::new("."));
    crate::manifest::sync_dir(dir).map_err(io_err)?;
    Ok(Written {
        rows: rows as u64,
        bytes,
    })
}

/// `batch` with the columns memory holds as runs converted to `schema`'s
/// types (a dictionary over the runs' values, no value hashed): what the
/// seal measures (sparse columns, few values) and gathers is then what
/// it would be without runs. The other columns are shared, not copied.
fn without_runs(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let hot = batch.schema();
    let runs = |i: usize| matches!(hot.field(i).data_type(), DataType::RunEndEncoded(..));
    if !(0..hot.fields().len()).any(runs) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(hot.fields().len());
    let mut columns = Vec::with_capacity(hot.fields().len());
    for (i, field) in hot.fields().iter().enumerate() {
        let column = batch.column(i);
        match schema.field_with_name(field.name()) {
            Ok(to) if runs(i) => {
                columns.push(seam_model::cast::to_sql(column, to.data_type())?);
                fields.push(to.clone());
            }
            _ => {
                columns.push(column.clone());
                fields.push(field.as_ref().clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
}

/// Rows gathered per chunk: up to [`WRITE_CHUNK_ROWS`], fewer when rows
/// are large, so a chunk holds about [`WRITE_CHUNK_BYTES`].
fn chunk_rows(batches: &[&RecordBatch], rows: usize) -> usize {
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let per_row = bytes / rows.max(1) + 1;
    (WRITE_CHUNK_BYTES / per_row).clamp(1, WRITE_CHUNK_ROWS)
}

/// Gathers rows of the batches being sealed into batches of the file's
/// schema. Columns kept in memory as a dictionary of what the file holds
/// plainly (the spans' resources) are gathered as their dictionaries'
/// values: all the batches' dictionaries joined once, then each chunk's
/// rows taken from them, rather than joined again for every chunk.
struct Gather<'a> {
    schema: SchemaRef,
    batches: &'a [&'a RecordBatch],
    /// By column, for columns the file holds plainly: the joined
    /// dictionary values, and each batch's keys into them.
    expanded: Vec<Option<(arrow::array::ArrayRef, Vec<Vec<usize>>)>>,
}

impl<'a> Gather<'a> {
    fn new(schema: &SchemaRef, batches: &'a [&'a RecordBatch]) -> Result<Self, ArrowError> {
        let expanded = (schema.fields().iter().enumerate())
            .map(|(i, field)| {
                let Some(first) = batches.first() else {
                    return Ok(None);
                };
                let hot = first.column(i).data_type();
                if hot == field.data_type() || !matches!(hot, DataType::Dictionary(..)) {
                    return Ok(None);
                }
                let dictionaries: Vec<_> = batches
                    .iter()
                    .map(|b| b.column(i).as_any_dictionary())
                    .collect();
                let values: Vec<&dyn Array> =
                    dictionaries.iter().map(|d| d.values().as_ref()).collect();
                let mut start = 0;
                let keys = (dictionaries.iter())
                    .map(|d| {
                        let keys = d.normalized_keys().into_iter().map(|k| k + start).collect();
                        start += d.values().len();
                        keys
                    })
                    .collect();
                Ok(Some((concat(&values)?, keys)))
            })
            .collect::<Result<_, ArrowError>>()?;
        Ok(Self {
            schema: schema.clone(),
            batches,
            expanded,
        })
    }

    fn rows(&self, positions: &[(usize, usize)]) -> Result<RecordBatch, ArrowError> {
        let columns = (self.schema.fields().iter().zip(&self.expanded).enumerate())
            .map(|(i, (field, expanded))| {
                let column = match expanded {
                    None => {
                        let arrays: Vec<&dyn Array> =
                            self.batches.iter().map(|b| b.column(i).as_ref()).collect();
                        arrow::compute::interleave(&arrays, positions)?
                    }
                    Some((values, keys)) => {
                        let indices: arrow::array::UInt32Array = (positions.iter())
                            .map(|&(b, row)| {
                                let valid = self.batches[b].column(i).is_valid(row);
                                valid.then(|| keys[b][row] as u32)
                            })
                            .collect();
                        arrow::compute::take(values, &indices, None)?
                    }
                };
                seam_model::cast::to_sql(&column, field.data_type())
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// Gathers the rows at `positions` into one batch and writes it; when
/// they hold more text than one column can address (a run of very large
/// rows), in halves.
fn write_gathered(
    writer: &mut ArrowWriter<File>,
    gather: &Gather<'_>,
    positions: &[(usize, usize)],
    name: &str,
) -> Result<(), FileError> {
    match gather.rows(positions) {
        Ok(part) => writer.write(&part).map_err(|source| FileError::Parquet {
            path: name.to_owned(),
            source,
        }),
        Err(_) if positions.len() > 1 => {
            let (a, b) = positions.split_at(positions.len() / 2);
            write_gathered(writer, gather, a, name)?;
            write_gathered(writer, gather, b, name)
        }
        Err(source) => Err(FileError::Arrow {
            path: name.to_owned(),
            source,
        }),
    }
}

/// The Parquet columns whose statistics would prune nothing: those inside
/// maps, lists and structs, and text the layout neither sorts nor looks
/// up by.
fn unpruned(descriptor: &SchemaDescriptor, layout: &Layout) -> Vec<ColumnPath> {
    let keyed = |name: &str| {
        layout
            .sort_by
            .iter()
            .chain(&layout.bloom)
            .any(|c| c == name)
    };
    descriptor
        .columns()
        .iter()
        .filter(|c| match c.path().parts() {
            [name] => c.physical_type() == parquet::basic::Type::BYTE_ARRAY && !keyed(name),
            _ => true,
        })
        .map(|c| c.path().clone())
        .collect()
}

/// A column holding a value in fewer rows than this, one in so many,
/// is written uncompressed.
const SPARSE_ROWS: usize = 100;

/// The leaves of the columns that hold a value (not null, not an empty
/// list, map or string) in fewer than one row in [`SPARSE_ROWS`]: links,
/// events and the messaging and cold-start columns of most spans. Their
/// levels encode to a few bytes a page, which zstd makes larger, not
/// smaller, and every column chunk read through zstd builds a compressor
/// and a decompressor first: for a lookup that reads one page of each
/// column, that costs more than decompressing the page does.
fn sparse(
    descriptor: &SchemaDescriptor,
    schema: &SchemaRef,
    batches: &[&RecordBatch],
    rows: usize,
) -> Vec<ColumnPath> {
    if rows == 0 {
        return Vec::new();
    }
    let sparse: Vec<&str> = (schema.fields().iter().enumerate())
        .filter(|(i, _)| {
            let held: usize = batches.iter().map(|b| held(b.column(*i).as_ref())).sum();
            held.saturating_mul(SPARSE_ROWS) < rows
        })
        .map(|(_, f)| f.name().as_str())
        .collect();
    descriptor
        .columns()
        .iter()
        .filter(|c| {
            c.path()
                .parts()
                .first()
                .is_some_and(|top| sparse.contains(&top.as_str()))
        })
        .map(|c| c.path().clone())
        .collect()
}

/// The dictionary columns whose distinct values fit one dictionary page
/// (services, platforms, kinds, status codes, scopes): their data pages
/// are a few bits a row that zstd barely shrinks (or grows), and every
/// compressed column chunk a lookup reads builds a zstd compressor and
/// decompressor first, which cost a lookup more than reading the column.
fn few_values(
    descriptor: &SchemaDescriptor,
    schema: &SchemaRef,
    batches: &[&RecordBatch],
) -> Vec<ColumnPath> {
    use arrow::datatypes::DataType;
    let few: Vec<&str> = (schema.fields().iter().enumerate())
        .filter(|(_, f)| matches!(f.data_type(), DataType::Dictionary(..)))
        .filter(|(i, _)| {
            let mut seen = std::collections::HashSet::new();
            let mut bytes = 0usize;
            for batch in batches {
                let Some(values) = batch.column(*i).as_any_dictionary_opt().map(|d| d.values())
                else {
                    return false;
                };
                let Some(values) = values.as_string_opt::<i32>() else {
                    return false;
                };
                for v in values.iter().flatten() {
                    if seen.insert(v) {
                        bytes += v.len() + 4;
                        // The writer falls back to plain values once
                        // the dictionary reaches the limit.
                        if bytes >= DICTIONARY_PAGE_BYTES {
                            return false;
                        }
                    }
                }
            }
            true
        })
        .map(|(_, f)| f.name().as_str())
        .collect();
    descriptor
        .columns()
        .iter()
        .filter(|c| matches!(c.path().parts(), [name] if few.contains(&name.as_str())))
        .map(|c| c.path().clone())
        .collect()
}

/// The value leaves of map columns (`attributes.entries.values`).
fn map_values(descriptor: &SchemaDescriptor) -> Vec<ColumnPath> {
    descriptor
        .columns()
        .iter()
        .filter(|c| matches!(c.path().parts(), [_, entries, values] if entries == "entries" && values == "values"))
        .map(|c| c.path().clone())
        .collect()
}

/// How many values `array` holds: entries of a list or a map, strings
/// other than empty ones, values other than nulls.
fn held(array: &dyn Array) -> usize {
    use arrow::datatypes::DataType;
    match array.data_type() {
        DataType::List(_) => {
            let offsets = array.as_list::<i32>().value_offsets();
            (offsets[offsets.len() - 1] - offsets[0]) as usize
        }
        DataType::Map(..) => {
            let offsets = array.as_map().value_offsets();
            (offsets[offsets.len() - 1] - offsets[0]) as usize
        }
        // A dictionary of maps: the entries its rows' maps hold.
        DataType::Dictionary(_, values) if matches!(**values, DataType::Map(..)) => {
            let dictionary = array.as_any_dictionary();
            let offsets = dictionary.values().as_map().value_offsets();
            (dictionary.normalized_keys().iter())
                .map(|&k| (offsets[k + 1] - offsets[k]) as usize)
                .sum()
        }
        DataType::Utf8 => {
            let strings = array.as_string::<i32>();
            let offsets = strings.value_offsets();
            if offsets[offsets.len() - 1] == offsets[0] {
                0
            } else {
                array.len() - array.null_count()
            }
        }
        _ => array.len() - array.null_count(),
    }
}

/// Every row as (batch, row), in `layout`'s order: the seal's sort.
pub fn sorted_positions(
    batches: &[&RecordBatch],
    layout: &Layout,
) -> Result<Vec<(usize, usize)>, arrow::error::ArrowError> {
    let positions: Vec<(usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows()).map(move |r| (b, r)))
        .collect();
    let mut keys: Vec<SortColumn> = Vec::new();
    for name in &layout.sort_by {
        let parts: Vec<&dyn arrow::array::Array> = batches
            .iter()
            .filter_map(|b| b.column_by_name(name).map(|c| c.as_ref()))
            .collect();
        if parts.len() != batches.len() || parts.is_empty() {
            continue;
        }
        keys.push(SortColumn {
            values: concat(&parts)?,
            options: None,
        });
    }
    if keys.is_empty() || positions.len() < 2 {
        return Ok(positions);
    }
    let compare = LexicographicalComparator::try_new(&keys)?;
    let (width, words) = sort_words(&keys);
    // Rows are sorted by their leading keys as big-endian words (a
    // trace id's 16 bytes and a start time: three integers), so the
    // sort compares integers instead of calling memcmp per comparison;
    // what the words cannot tell apart falls to the full comparison. The
    // comparator behind every comparison, as with an 8-byte prefix alone,
    // was most of a seal's sort (BENCHMARKS.md).
    let mut order: Vec<u32> = (0..positions.len() as u32).collect();
    let key = |i: u32| &words[i as usize * width..(i as usize + 1) * width];
    order.sort_unstable_by(|&a, &b| {
        key(a)
            .cmp(key(b))
            .then_with(|| compare.compare(a as usize, b as usize))
    });
    Ok(order.into_iter().map(|i| positions[i as usize]).collect())
}

/// Longest text value of a leading sort column that is turned into words.
const WORD_TEXT_BYTES: usize = 32;

/// The leading sort columns as `width` words a row, which order as the
/// columns do: text without nulls of at most [`WORD_TEXT_BYTES`] bytes
/// (big-endian, padded with zeroes, so a value and the same value with
/// trailing zero bytes tie), ids as bytes, 64-bit integers and times without nulls
/// (sign bit flipped). Columns from the first of another kind on, and
/// those after text of uneven lengths, are left to the full comparison.
fn sort_words(keys: &[SortColumn]) -> (usize, Vec<u64>) {
    let rows = keys.first().map_or(0, |k| k.values.len());
    let mut columns: Vec<(usize, &SortColumn)> = Vec::new();
    for key in keys {
        let values = &key.values;
        if values.null_count() > 0 {
            break;
        }
        let mut last = false;
        let words = match values.data_type() {
            DataType::Utf8 => {
                let lengths = values.as_string::<i32>().offsets().windows(2);
                let (shortest, longest) = lengths
                    .map(|w| (w[1] - w[0]) as usize)
                    .fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
                if longest > WORD_TEXT_BYTES {
                    break;
                }
                // Values of different lengths may pad to the same words
                // ("a" and "a\0"): the columns after this one must then
                // wait for the full comparison.
                last = shortest != longest;
                longest.div_ceil(8).max(1)
            }
            // Ids as bytes order as their lowercase hex does.
            DataType::FixedSizeBinary(width) if *width as usize <= WORD_TEXT_BYTES => {
                (*width as usize).div_ceil(8).max(1)
            }
            DataType::Int64 | DataType::Timestamp(_, _) => 1,
            _ => break,
        };
        columns.push((words, key));
        if last {
            break;
        }
    }
    let width: usize = columns.iter().map(|(w, _)| w).sum::<usize>().max(1);
    let mut out = vec![0u64; rows * width];
    let mut at = 0;
    for (words, key) in columns {
        let values = &key.values;
        match values.data_type() {
            DataType::Utf8 => {
                for (row, value) in values.as_string::<i32>().iter().enumerate() {
                    let slot = &mut out[row * width + at..row * width + at + words];
                    big_endian_words(value.unwrap_or_default().as_bytes(), slot);
                }
            }
            DataType::FixedSizeBinary(_) => {
                for (row, id) in values.as_fixed_size_binary().iter().enumerate() {
                    let slot = &mut out[row * width + at..row * width + at + words];
                    big_endian_words(id.unwrap_or_default(), slot);
                }
            }
            _ => {
                let data = values.to_data();
                for (row, v) in data.buffer::<i64>(0).iter().enumerate() {
                    out[row * width + at] = (*v as u64) ^ (1 << 63);
                }
            }
        }
        at += words;
    }
    (width, out)
}

/// `bytes` into `slot` as big-endian words, the last padded with zeroes.
fn big_endian_words(bytes: &[u8], slot: &mut [u64]) {
    for (word, chunk) in slot.iter_mut().zip(bytes.chunks(8)) {
        let mut head = [0u8; 8];
        head[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_be_bytes(head);
    }
}

fn open(path: &Path) -> Result<File, FileError> {
    File::open(path).map_err(|source| FileError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn parquet_error(path: &Path) -> impl Fn(parquet::errors::ParquetError) -> FileError + Copy + '_ {
    move |source| FileError::Parquet {
        path: path.display().to_string(),
        source,
    }
}

/// Reads `path` whole, or only `columns` of it.
pub fn read(path: &Path, columns: Option<&[&str]>) -> Result<Vec<RecordBatch>, FileError> {
    let name = path.display().to_string();
    let parquet_err = parquet_error(path);
    let file = open(path)?;
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(parquet_err)?
        .with_batch_size(64 * 1024);
    if let Some(columns) = columns {
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        builder = builder.with_projection(mask);
    }
    let reader = builder.build().map_err(parquet_err)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| FileError::Arrow { path: name, source })
}

/// Reads `path` whole as rows of `schema`: a file written when a column
/// had another physical type (attribute keys as plain text, before they
/// were kept once per batch) comes back cast to the table's type, so
/// files of either age merge into one.
pub fn read_as(path: &Path, schema: &SchemaRef) -> Result<Vec<RecordBatch>, FileError> {
    let arrow_err = |source| FileError::Arrow {
        path: path.display().to_string(),
        source,
    };
    read(path, None)?
        .into_iter()
        .map(|batch| seam_model::cast::batch_to_sql(&batch, schema).map_err(arrow_err))
        .collect()
}

/// The bloom filters of a file's key columns, every row group's, held in
/// memory so that a lookup by key rules the file out without opening it.
///
/// Trace ids are random, so every file's statistics span nearly all of
/// them and prune no file; opening each one (its footer, its statistics,
/// its bloom filters read from disk) cost a lookup at 10M spans most of
/// its time, for the one file that holds the trace.
#[derive(Debug, Clone, Default)]
pub struct KeyFilters {
    /// By column name: one filter per row group, `None` where the row
    /// group has none.
    columns: Vec<(String, Vec<Option<Sbbf>>)>,
    bytes: usize,
}

impl KeyFilters {
    /// Reads the bloom filters of `columns` (top-level columns) of the
    /// file at `path`.
    pub fn read(path: &Path, columns: &[&str]) -> Result<Self, FileError> {
        let parquet_err = parquet_error(path);
        let file = open(path)?;
        let metadata = ParquetMetaDataReader::new()
            .parse_and_finish(&file)
            .map_err(parquet_err)?;
        let schema = metadata.file_metadata().schema_descr();
        let (mut out, mut bytes) = (Vec::new(), 0);
        for column in columns {
            let top_level = |c: &parquet::schema::types::ColumnDescPtr| matches!(c.path().parts(), [name] if name == column);
            let Some(index) = schema.columns().iter().position(top_level) else {
                continue;
            };
            let mut filters = Vec::with_capacity(metadata.num_row_groups());
            for group in metadata.row_groups() {
                let chunk = group.column(index);
                let filter = Sbbf::read_from_column_chunk(chunk, &file).map_err(parquet_err)?;
                bytes += filter.as_ref().map_or(0, |_| {
                    chunk.bloom_filter_length().unwrap_or_default().max(0) as usize
                });
                filters.push(filter);
            }
            out.push(((*column).to_owned(), filters));
        }
        Ok(Self {
            columns: out,
            bytes,
        })
    }

    /// Which row groups may hold a row whose `column` is one of `values`,
    /// by row group index (a group without a filter may); `None` when the
    /// file has no column `column`.
    /// Row groups of the file; `None` when no column has filters.
    pub fn row_group_count(&self) -> Option<usize> {
        self.columns.first().map(|(_, filters)| filters.len())
    }

    pub fn row_groups(&self, column: &str, values: &[&str]) -> Option<Vec<bool>> {
        let (_, filters) = self.columns.iter().find(|(c, _)| c == column)?;
        let may = |f: &Option<Sbbf>| {
            f.as_ref()
                .is_none_or(|f| values.iter().any(|v| f.check(*v)))
        };
        Some(filters.iter().map(may).collect())
    }

    /// Bytes the filters took in the file: about what they take in memory.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, ListBuilder, StringArray, StringBuilder};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    #[test]
    fn files_are_sorted_compressed_and_carry_bloom_filters() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let batch = |ids: &[&str]| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(ids.to_vec())),
                    Arc::new(StringArray::from(vec!["op"; ids.len()])),
                ],
            )
            .unwrap()
        };
        let layout = Layout {
            sort_by: vec!["trace_id".into()],
            bloom: vec!["trace_id".into()],
            ..Layout::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        let shape = FileShape {
            row_group_rows: 2,
            page_rows: 1,
            ..FileShape::default()
        };
        let written = write(
            &path,
            &schema,
            &[batch(&["c", "a"]), batch(&["d", "b", "e"])],
            &layout,
            shape,
        )
        .unwrap();
        assert_eq!(written.rows, 5);
        assert!(!dir.path().join("1.parquet.tmp").exists());
        let back = read(&path, Some(&["trace_id"])).unwrap();
        let ids: Vec<&str> = back
            .iter()
            .flat_map(|b| b.column(0).as_string::<i32>().iter().flatten())
            .collect();
        assert_eq!(ids, ["a", "b", "c", "d", "e"]);
        assert_eq!(back[0].num_columns(), 1);

        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 3);
        let group = meta.row_group(0);
        let column = group.column(0);
        // The level is not recorded in the file, only the codec.
        assert!(matches!(column.compression(), Compression::ZSTD(_)));
        assert!(
            column.bloom_filter_offset().is_some(),
            "trace_id has a bloom filter"
        );
        assert!(group.column(1).bloom_filter_offset().is_none());

        // The filters, held in memory, answer for every row group.
        let filters = KeyFilters::read(&path, &["trace_id", "name", "nope"]).unwrap();
        // Whether any row may hold one of `values`.
        let may_contain = |column: &str, values: &[&str]| {
            (filters.row_groups(column, values)).is_none_or(|groups| groups.contains(&true))
        };
        assert!(filters.bytes() > 0);
        for id in ["a", "c", "e"] {
            assert!(may_contain("trace_id", &[id]), "{id}");
        }
        assert!(may_contain("trace_id", &["zz", "d"]));
        assert!(!may_contain("trace_id", &["zz"]));
        assert!(!may_contain("trace_id", &[]));
        // Row groups of two rows: a b | c d | e.
        let groups = |values: &[&str]| filters.row_groups("trace_id", values).unwrap();
        assert_eq!(groups(&["a"]), [true, false, false]);
        assert_eq!(groups(&["e", "c"]), [false, true, true]);
        assert_eq!(groups(&["zz"]), [false, false, false]);
        assert_eq!(filters.row_groups("name", &["zz"]), Some(vec![true; 3]));
        assert_eq!(filters.row_groups("nope", &["zz"]), None);
        // No filter on `name`, no column `nope`: nothing is ruled out.
        assert!(may_contain("name", &["zz"]));
        assert!(may_contain("nope", &["zz"]));
    }

    /// The codec configured is the one the file's columns carry, and
    /// every choice reads back the rows written.
    #[test]
    fn each_codec_writes_what_reads_back() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let ids: Vec<String> = (0..2_000).map(|i| format!("{i:032x}")).collect();
        let names: Vec<String> = (0..2_000).map(|i| format!("GET /items/{i}")).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(ids.clone())),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap();
        let layout = Layout {
            sort_by: vec!["trace_id".into()],
            ..Layout::default()
        };
        let dir = tempfile::tempdir().unwrap();
        for (codec, want) in [
            (Codec::Zstd(1), Compression::ZSTD(ZstdLevel::default())),
            (Codec::Lz4Raw, Compression::LZ4_RAW),
            (Codec::Snappy, Compression::SNAPPY),
            (Codec::Uncompressed, Compression::UNCOMPRESSED),
        ] {
            let path = dir.path().join(format!("{codec}.parquet"));
            let shape = FileShape {
                codec,
                ..FileShape::default()
            };
            write(&path, &schema, std::slice::from_ref(&batch), &layout, shape).unwrap();
            let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
            let got = reader.metadata().row_group(0).column(1).compression();
            assert_eq!(
                std::mem::discriminant(&got),
                std::mem::discriminant(&want),
                "{codec}"
            );
            let back = read(&path, Some(&["trace_id"])).unwrap();
            let read_ids: Vec<&str> = (back.iter())
                .flat_map(|b| b.column(0).as_string::<i32>().iter().flatten())
                .collect();
            assert_eq!(read_ids, ids, "{codec}");
        }
    }

    #[test]
    fn statistics_where_they_prune_and_no_dictionary_for_distinct_values() {
        let mut values = ListBuilder::new(StringBuilder::new());
        for v in ["x", "y"] {
            values.values().append_value(v);
            values.append(true);
        }
        let values = values.finish();
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("values", values.data_type().clone(), false),
            Field::new("name", DataType::Utf8, false),
            Field::new("duration", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(values),
                Arc::new(StringArray::from(vec!["GET", "POST"])),
                Arc::new(arrow::array::Int64Array::from(vec![5, 7])),
            ],
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        let layout = Layout {
            sort_by: vec!["trace_id".into()],
            bloom: vec![],
            distinct: vec!["name".into()],
        };
        write(&path, &schema, &[batch], &layout, FileShape::default()).unwrap();
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        assert_eq!(group.num_columns(), 4);
        assert!(group.column(0).statistics().is_some(), "trace_id prunes");
        assert!(
            group.column(1).statistics().is_none(),
            "a list's values do not"
        );
        assert!(
            group.column(2).statistics().is_none(),
            "other text does not"
        );
        assert!(group.column(3).statistics().is_some(), "numbers do");
        // Distinct columns are written without a dictionary.
        assert!(group.column(0).dictionary_page_offset().is_some());
        assert!(group.column(2).dictionary_page_offset().is_none());
        let back = read(&path, None).unwrap();
        let list = back[0].column(1).as_list::<i32>().value(1);
        assert_eq!(list.as_string::<i32>().value(0), "y");
    }
    #[test]
    fn the_word_sort_is_the_full_lexicographic_order() {
        // Values sharing their first eight bytes, shorter than eight,
        // empty, equal (for the second key to order), and equal but for
        // trailing zero bytes, which pad the words alike.
        let words = [
            "abcdefgh2",
            "abcdefgh1",
            "abcdefgh",
            "abc",
            "",
            "b",
            "abcdefgh1",
            "zz",
            "abcdefgi",
            "abc\0",
            "abc\0\0",
        ];
        sorts_as_lexsort(&words);
        // Values of one length (trace ids): the second key is a word too.
        sorts_as_lexsort(&["ab", "aa", "ba", "ab", "zz", "aa", "ab", "cd", "ba"]);
        // A value too long for words: the column is left to the
        // comparison alone.
        let long = "abcdefgh".repeat(5);
        let mut with_long = words.to_vec();
        with_long.push(&long);
        sorts_as_lexsort(&with_long);
    }

    fn sorts_as_lexsort(words: &[&str]) {
        use arrow::array::Int64Array;
        use arrow::compute::lexsort_to_indices;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("t", DataType::Int64, false),
        ]));
        let mut batches = Vec::new();
        for round in 0..3i64 {
            let keys: Vec<&str> = words
                .iter()
                .cycle()
                .skip(round as usize)
                .take(words.len() - 2)
                .copied()
                .collect();
            let times: Vec<i64> = (0..keys.len() as i64)
                .map(|i| (i * 7 + round * 3) % 5 - 2)
                .collect();
            batches.push(
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(keys)),
                        Arc::new(Int64Array::from(times)),
                    ],
                )
                .unwrap(),
            );
        }
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        let layout = Layout {
            sort_by: vec!["k".into(), "t".into()],
            ..Layout::default()
        };
        let got = sorted_positions(&refs, &layout).unwrap();
        let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
        let want = lexsort_to_indices(
            &[
                SortColumn {
                    values: all.column(0).clone(),
                    options: None,
                },
                SortColumn {
                    values: all.column(1).clone(),
                    options: None,
                },
            ],
            None,
        )
        .unwrap();
        let key = |(b, r): (usize, usize)| {
            let batch = &batches[b];
            (
                batch.column(0).as_string::<i32>().value(r).to_owned(),
                batch
                    .column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .value(r),
            )
        };
        let got: Vec<_> = got.into_iter().map(key).collect();
        let want: Vec<_> = want
            .values()
            .iter()
            .map(|&i| {
                let i = i as usize;
                (
                    all.column(0).as_string::<i32>().value(i).to_owned(),
                    all.column(1)
                        .as_primitive::<arrow::datatypes::Int64Type>()
                        .value(i),
                )
            })
            .collect();
        assert_eq!(got, want);
    }

    /// `batch` written sorted by `trace_id` in the default shape: the
    /// directory that holds the file, and the file.
    fn written_by_trace(
        schema: &SchemaRef,
        batch: RecordBatch,
    ) -> (tempfile::TempDir, std::path::PathBuf) {
        let layout = Layout {
            sort_by: vec!["trace_id".into()],
            ..Layout::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.parquet");
        write(&path, schema, &[batch], &layout, FileShape::default()).unwrap();
        (dir, path)
    }

    #[test]
    fn columns_nearly_always_empty_are_written_uncompressed() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("message_id", DataType::Utf8, true),
            Field::new("state", DataType::Utf8, false),
            Field::new(
                "links",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            ),
            Field::new("rare", DataType::Utf8, true),
        ]));
        let rows = 1000;
        let mut links = ListBuilder::new(StringBuilder::new());
        for i in 0..rows {
            if i == 0 {
                links.values().append_value("a link");
            }
            links.append(true);
        }
        // One value in 100 rows is not sparse; one in 1,000 is.
        let rare: StringArray = (0..rows)
            .map(|i| (i % 100 == 0).then(|| format!("m{i}")))
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("{i:08}")),
                )),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| (i == 7).then_some("one")),
                )),
                Arc::new(StringArray::from(vec![""; rows])),
                Arc::new(links.finish()),
                Arc::new(rare),
            ],
        )
        .unwrap();
        let (_dir, path) = written_by_trace(&schema, batch);
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        let codecs: Vec<(String, bool)> = (0..group.num_columns())
            .map(|i| {
                let column = group.column(i);
                let zstd = matches!(column.compression(), Compression::ZSTD(_));
                (column.column_path().string(), zstd)
            })
            .collect();
        let want = [
            ("trace_id", true),
            ("message_id", false),
            ("state", false),
            ("links.list.item", false),
            ("rare", true),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(c, z)| (c.to_string(), *z)).collect();
        assert_eq!(codecs, want);
        let back = read(&path, None).unwrap();
        assert_eq!(back[0].column(1).as_string::<i32>().value(7), "one");
        assert_eq!(back[0].column(3).as_list::<i32>().value(0).len(), 1);
    }

    #[test]
    fn dictionaries_of_few_values_are_uncompressed_and_map_values_paged_small() {
        use arrow::array::{MapBuilder, StringDictionaryBuilder};
        use arrow::datatypes::Int32Type;
        let rows = 4000;
        let mut few = StringDictionaryBuilder::<Int32Type>::new();
        let mut many = StringDictionaryBuilder::<Int32Type>::new();
        let mut attributes = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for i in 0..rows {
            few.append_value(["checkout", "payments", "orders"][i % 3]);
            // Past one dictionary page of distinct values.
            many.append_value(format!("pod-{i:06}-of-a-large-deployment"));
            for k in 0..8 {
                attributes.keys().append_value(format!("key.{k}"));
                attributes
                    .values()
                    .append_value(format!("value {i} {k} of some length"));
            }
            attributes.append(true).unwrap();
        }
        let (few, many, attributes) = (few.finish(), many.finish(), attributes.finish());
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("service", few.data_type().clone(), false),
            Field::new("instance", many.data_type().clone(), false),
            Field::new("attributes", attributes.data_type().clone(), false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("{i:08}")),
                )),
                Arc::new(few),
                Arc::new(many),
                Arc::new(attributes),
            ],
        )
        .unwrap();
        let (_dir, path) = written_by_trace(&schema, batch);
        let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        let zstd = |path: &str| {
            let i = (0..group.num_columns())
                .find(|&i| group.column(i).column_path().string() == path)
                .unwrap();
            matches!(group.column(i).compression(), Compression::ZSTD(_))
        };
        assert!(!zstd("service"), "three services");
        assert!(zstd("instance"), "a dictionary page could not hold them");
        assert!(zstd("attributes.entries.values"));
        // Map values in pages of at most about 32 KiB, not one page of the
        // row limit.
        let values = (0..group.num_columns())
            .find(|&i| group.column(i).column_path().string() == "attributes.entries.values")
            .unwrap();
        let mut pages = reader
            .get_row_group(0)
            .unwrap()
            .get_column_page_reader(values)
            .unwrap();
        let mut sizes = Vec::new();
        while let Some(page) = pages.get_next_page().unwrap() {
            if matches!(
                page.page_type(),
                parquet::basic::PageType::DATA_PAGE | parquet::basic::PageType::DATA_PAGE_V2
            ) {
                sizes.push(page.buffer().len());
            }
        }
        // At the row limit (512 rows of 8 values of 26 bytes) a page
        // would hold over 100 KiB; the limit is checked after each write
        // batch of 1,024 values, so a page may pass it by up to one.
        assert!(
            sizes.len() > 8 && sizes.iter().all(|s| *s <= 64 * 1024),
            "{sizes:?}"
        );
        let back = read(&path, None).unwrap();
        let back = arrow::compute::concat_batches(&back[0].schema(), &back).unwrap();
        assert_eq!(back.num_rows(), rows);
        assert_eq!(
            back.column(3)
                .as_map()
                .value(rows - 1)
                .column(1)
                .as_string::<i32>()
                .value(7),
            format!("value {} 7 of some length", rows - 1)
        );
    }
}
