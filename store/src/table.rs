//! One table of the store: recent rows in memory as Arrow record batches
//! (the hot tier), older rows in sealed Parquet files, read as one.
//!
//! ```text
//!  append ─▶ tail ─merge─▶ merged ──freeze──▶ sealing ──publish──▶ sealed (Parquet files)
//!            └──────────── hot ────────────┘  (still read)
//! ```
//!
//! # Invariants
//! - Every batch in the table has exactly the table's schema.
//! - A snapshot never changes after it was taken; appends made later are
//!   visible to the next snapshot, immediately (no refresh interval).
//! - Many small ingest batches are merged into larger ones once enough rows
//!   accumulate, so queries scan a few large batches instead of thousands of
//!   tiny ones. Merging keeps row order.
//! - Rows of small requests may be gathered in one shared builder
//!   ([`PendingRows`]) instead of a batch each: building a batch of some
//!   forty columns costs far more than the two spans a function
//!   invocation typically exports. The builder is finished into the table
//!   before every snapshot and every freeze, so those rows are as visible
//!   and as durable as any other.
//! - A row is in exactly one tier at any instant a snapshot can see: frozen
//!   batches stay readable until the files holding them are published in
//!   the same step that drops them.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::concat_batches;
use arrow::datatypes::{SchemaRef, TimestampNanosecondType};
use arrow::error::ArrowError;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

/// Why the store refused a batch.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("batch schema does not match the table schema")]
    SchemaMismatch,
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("the table gathers no rows of this kind")]
    NoPendingRows,
}

/// A builder shared by small appends, finished into the table as one batch.
pub trait PendingRows: std::any::Any + Send {
    /// Rows appended since the last finish.
    fn rows(&self) -> usize;
    /// Bytes of variable-length data (text) appended since the last
    /// finish: the builder is finished well before any column's 32-bit
    /// offsets could overflow.
    fn bytes(&self) -> usize;
    /// The rows appended so far, as one batch of the table's schema; the
    /// builder is empty afterwards.
    fn finish(&mut self) -> Result<RecordBatch, ArrowError>;
}

/// An immutable unit of in-memory table data with the statistics queries
/// prune by.
#[derive(Debug, Clone)]
pub struct Segment {
    pub batch: RecordBatch,
    /// Smallest and largest value of the table's time column, in ns since
    /// the epoch; `None` when the segment has no rows.
    pub time_range: Option<(i64, i64)>,
    /// Hashes of the values of each of the layout's string bloom columns
    /// (trace ids), on merged segments, by column index: what the bloom
    /// filters are to a sealed file, so that a lookup by id reads one
    /// segment of a million hot rows, not all of them.
    keys: Option<Arc<[KeySet]>>,
}

/// Text a shared builder gathers before it is finished, whatever its
/// rows: far below the 2 GiB a column's 32-bit offsets can address.
pub const MAX_PENDING_BYTES: usize = 256 * 1024 * 1024;

/// Memory a merged segment holds at most: batches are merged by rows, and
/// a few rows of very large spans must not add up past what a column's
/// 32-bit offsets can address.
const MERGE_BYTES: usize = 256 * 1024 * 1024;

/// The hashed values of one key column (by index) of a segment.
type KeySet = (usize, HashSet<u64, foldhash::fast::FixedState>);

impl Segment {
    fn new(batch: RecordBatch, time_column: usize) -> Self {
        let time_range = time_range(&batch, time_column);
        Self {
            batch,
            time_range,
            keys: None,
        }
    }

    /// A segment that also knows the values of the key columns `keys`
    /// (text, or ids held as bytes).
    fn keyed(batch: RecordBatch, time_column: usize, keys: &[usize]) -> Self {
        let sets = keys.iter().filter_map(|&k| {
            let column = batch.column(k);
            let mut set = HashSet::with_capacity_and_hasher(column.len(), Default::default());
            if let Some(values) = column.as_string_opt::<i32>() {
                set.extend(values.iter().flatten().map(key_hash));
            } else if let Some(ids) = column.as_fixed_size_binary_opt() {
                // Ids kept as bytes: their first 8, as `key_hash` takes
                // them from the hex a query names.
                set.extend(ids.iter().flatten().map(id_key));
            } else {
                return None;
            }
            Some((k, set))
        });
        let sets: Arc<[KeySet]> = sets.collect();
        Self {
            keys: (!sets.is_empty()).then_some(sets),
            ..Self::new(batch, time_column)
        }
    }

    /// Whether any row may fall in `[start, end]` (ns, inclusive).
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        overlaps(self.time_range, start, end)
    }

    /// Whether any row may hold one of `values` in key column `column`;
    /// true when the segment keeps no keys of that column.
    pub fn may_contain(&self, column: usize, values: &[&str]) -> bool {
        let mut keyed = self.keys.as_deref().into_iter().flatten();
        let Some((_, keys)) = keyed.find(|(c, _)| *c == column) else {
            return true;
        };
        values.iter().any(|v| keys.contains(&key_hash(v)))
    }
}

/// A fixed key of a value, so a segment's keys and a query's literal
/// agree: for an id (16 hex digits or more) its first 8 bytes, which for
/// random ids are as good as a hash of the whole and cost no hashing;
/// for anything else a hash.
fn key_hash(value: &str) -> u64 {
    use std::hash::BuildHasher;
    let mut prefix = [0u8; 8];
    match (value.as_bytes().get(..16)).map(|hex| const_hex::decode_to_slice(hex, &mut prefix)) {
        Some(Ok(())) => u64::from_be_bytes(prefix),
        _ => foldhash::fast::FixedState::with_seed(0).hash_one(value),
    }
}

/// The key of an id held as bytes: what [`key_hash`] takes from its hex.
fn id_key(id: &[u8]) -> u64 {
    let mut prefix = [0u8; 8];
    let n = id.len().min(8);
    prefix[..n].copy_from_slice(&id[..n]);
    u64::from_be_bytes(prefix)
}

fn overlaps(range: Option<(i64, i64)>, start: i64, end: i64) -> bool {
    range.is_some_and(|(lo, hi)| lo <= end && hi >= start)
}

pub(crate) fn time_range(batch: &RecordBatch, column: usize) -> Option<(i64, i64)> {
    let times = batch
        .column(column)
        .as_primitive_opt::<TimestampNanosecondType>()?;
    let lo = arrow::compute::min(times)?;
    let hi = arrow::compute::max(times)?;
    (times.null_count() < times.len()).then_some((lo, hi))
}

/// A sealed Parquet file of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    /// Unique across the store; names the file.
    pub id: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Memory the rows took as Arrow batches: what reading the whole file
    /// back costs (compaction bounds itself by it).
    #[serde(default)]
    pub mem_bytes: u64,
    /// Smallest and largest value of the table's time column.
    pub time_range: Option<(i64, i64)>,
    /// Where it is; set when the store opens, not kept in the manifest.
    #[serde(skip)]
    pub path: PathBuf,
}

impl SealedFile {
    /// Whether any row may fall in `[start, end]` (ns, inclusive).
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        overlaps(self.time_range, start, end)
    }
}

/// What a query reads: the table's rows at one instant, in memory and on disk.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// What SQL reads and sealed files hold.
    pub schema: SchemaRef,
    /// What the segments' batches hold ([`Table::hot_schema`]).
    pub hot_schema: SchemaRef,
    /// In-memory segments, oldest first.
    pub segments: Arc<[Segment]>,
    /// Sealed files, oldest first.
    pub sealed: Arc<[SealedFile]>,
}

impl Snapshot {
    /// Rows in memory and on disk.
    pub fn num_rows(&self) -> usize {
        self.hot_rows() + self.sealed.iter().map(|f| f.rows as usize).sum::<usize>()
    }

    /// Rows in memory.
    pub fn hot_rows(&self) -> usize {
        self.segments.iter().map(|s| s.batch.num_rows()).sum()
    }
}

/// How a table's rows are laid out when sealed.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Columns rows are sorted by, so the rows a lookup wants sit together
    /// in one row group.
    pub sort_by: Vec<String>,
    /// Columns with a bloom filter per row group, for equality lookups of
    /// values the min/max statistics cannot rule out.
    pub bloom: Vec<String>,
    /// Columns whose values are nearly all distinct (span ids): written
    /// without a dictionary, which would only be built to be abandoned.
    pub distinct: Vec<String>,
}

impl From<&seam_model::tables::TableDef> for Layout {
    fn from(def: &seam_model::tables::TableDef) -> Self {
        let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        Self {
            sort_by: owned(def.sort_by),
            bloom: owned(def.keys),
            distinct: owned(def.distinct),
        }
    }
}

struct Inner {
    /// Sealed files, oldest first.
    sealed: Vec<SealedFile>,
    /// Frozen by a seal in progress (or one that failed, to retry).
    sealing: Vec<Segment>,
    /// Merged segments, oldest first.
    merged: Vec<Segment>,
    /// Recent ingest batches not merged yet.
    tail: Vec<Segment>,
    tail_rows: usize,
    /// Memory the tail's batches hold.
    tail_bytes: usize,
    /// Memory the unfrozen hot batches hold.
    hot_bytes: usize,
    /// When the oldest unfrozen hot row was appended.
    oldest: Option<Instant>,
    /// Cached snapshot, rebuilt lazily after a change.
    snapshot: Option<Snapshot>,
}

/// A table: Arrow batches in memory, Parquet files on disk.
pub struct Table {
    name: String,
    schema: SchemaRef,
    /// See [`Table::hot_schema`].
    hot_schema: SchemaRef,
    time_column: usize,
    layout: Layout,
    /// See [`Table::key_columns`].
    key_columns: Vec<usize>,
    merge_rows: usize,
    /// Taken before `inner` wherever both are held.
    pending: Mutex<Option<Box<dyn PendingRows>>>,
    /// See [`Table::poison`].
    poisoned: std::sync::atomic::AtomicBool,
    inner: RwLock<Inner>,
}

impl Table {
    /// Rows the tail gathers before it is merged into one batch.
    pub const DEFAULT_MERGE_ROWS: usize = 16 * 1024;
    /// Batches the tail gathers before it is merged, however few rows
    /// they hold.
    pub const MERGE_BATCHES: usize = 64;

    /// A table whose pruning statistics come from `time_column` (a
    /// nanosecond timestamp column of `schema`).
    pub fn new(schema: SchemaRef, time_column: &str) -> Self {
        Self::named("table", schema, time_column, Layout::default())
    }

    /// A table of the store called `name`, sealed with `layout`.
    pub fn named(name: &str, schema: SchemaRef, time_column: &str, layout: Layout) -> Self {
        let time_column = schema
            .index_of(time_column)
            .expect("time column is in the schema");
        let key_columns = layout
            .bloom
            .iter()
            .filter_map(|name| schema.index_of(name).ok())
            .filter(|&i| schema.field(i).data_type() == &arrow::datatypes::DataType::Utf8)
            .collect();
        Self {
            name: name.to_owned(),
            hot_schema: schema.clone(),
            schema,
            time_column,
            layout,
            key_columns,
            merge_rows: Self::DEFAULT_MERGE_ROWS,
            pending: Mutex::new(None),
            poisoned: std::sync::atomic::AtomicBool::new(false),
            inner: RwLock::new(Inner {
                sealed: Vec::new(),
                sealing: Vec::new(),
                merged: Vec::new(),
                tail: Vec::new(),
                tail_rows: 0,
                tail_bytes: 0,
                hot_bytes: 0,
                oldest: None,
                snapshot: None,
            }),
        }
    }

    /// Overrides how many tail rows trigger a merge (tests use small values).
    pub fn with_merge_rows(mut self, rows: usize) -> Self {
        self.merge_rows = rows.max(1);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// What SQL reads and sealed files hold.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// What the rows in memory hold: [`Table::schema`]'s columns, some of
    /// them in a more compact type that casts to the schema's.
    pub fn hot_schema(&self) -> SchemaRef {
        self.hot_schema.clone()
    }

    /// Keeps rows in memory as `hot` (the same column names as the
    /// table's schema, in order).
    pub fn with_hot_schema(mut self, hot: SchemaRef) -> Self {
        debug_assert!(
            (hot.fields().iter().map(|f| f.name())).eq(self
                .schema
                .fields()
                .iter()
                .map(|f| f.name())),
            "a hot schema has the table's columns"
        );
        self.hot_schema = hot;
        self
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn time_column(&self) -> usize {
        self.time_column
    }

    /// The columns merged segments keep the values of: the layout's bloom
    /// columns that are string columns.
    pub fn key_columns(&self) -> &[usize] {
        &self.key_columns
    }

    /// Gathers small appends in the builder `make` returns, unless one is
    /// installed already.
    pub fn gather_in(&self, make: impl FnOnce() -> Box<dyn PendingRows>) {
        self.pending.lock().get_or_insert_with(make);
    }

    /// Appends rows through the shared builder installed with
    /// [`Table::gather_in`]; they are visible to every snapshot taken after
    /// this returns. The builder becomes a batch when it holds a merged
    /// segment's rows (so no merge copies them again), or when a snapshot
    /// or a seal needs its rows.
    pub(crate) fn append_gathered(
        &self,
        fill: &mut dyn FnMut(&mut dyn PendingRows),
    ) -> Result<(), StoreError> {
        let mut pending = self.pending.lock();
        let builder = pending.as_deref_mut().ok_or(StoreError::NoPendingRows)?;
        fill(builder);
        if builder.rows() >= self.merge_rows || builder.bytes() >= MAX_PENDING_BYTES {
            self.finish_pending(&mut pending)?;
        } else {
            // The seal's age trigger counts gathered rows too. The cached
            // snapshot stays: a snapshot finishes gathered rows first,
            // and that append clears it.
            self.inner.write().oldest.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    fn finish_pending(&self, pending: &mut Option<Box<dyn PendingRows>>) -> Result<(), StoreError> {
        let finished = match pending.as_deref_mut() {
            Some(builder) if builder.rows() > 0 => builder
                .finish()
                .map_err(StoreError::from)
                .and_then(|batch| self.append(batch)),
            _ => Ok(()),
        };
        if let Err(e) = &finished {
            // The builder's rows are gone from memory; only the log has
            // them now, and no seal may move past it.
            self.poison(e);
        }
        finished
    }

    /// Marks the table as having lost rows from memory that the log still
    /// holds: the store refuses to seal it (which would let the log go),
    /// and the server stops so that a start replays them.
    pub(crate) fn poison(&self, why: &StoreError) {
        tracing::error!(table = %self.name, error = %why, "rows of acknowledged exports are lost from memory; the log keeps them and a restart replays them");
        self.poisoned
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether [`Table::poison`] was called.
    pub fn poisoned(&self) -> bool {
        self.poisoned.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Appends a batch; it is visible to every snapshot taken after this
    /// returns. Only the write protocol ([`crate::Writer`]) and the
    /// follower's thread append to a store's tables; the `testing` feature
    /// opens it to tests of the crates above.
    #[cfg(not(any(test, feature = "testing")))]
    pub(crate) fn append(&self, batch: RecordBatch) -> Result<(), StoreError> {
        self.append_batch(batch)
    }

    /// See the other `append`: open to tests.
    #[cfg(any(test, feature = "testing"))]
    pub fn append(&self, batch: RecordBatch) -> Result<(), StoreError> {
        self.append_batch(batch)
    }

    fn append_batch(&self, batch: RecordBatch) -> Result<(), StoreError> {
        if batch.schema() != self.hot_schema {
            return Err(StoreError::SchemaMismatch);
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let bytes = batch.get_array_memory_size();
        let mut inner = self.inner.write();
        inner.hot_bytes += bytes;
        inner.oldest.get_or_insert_with(Instant::now);
        inner.snapshot = None;
        if batch.num_rows() >= self.merge_rows || bytes >= MERGE_BYTES {
            // Built at segment size (the shared builder, or a large
            // request): a segment as it is, after what the tail holds.
            self.merge_tail(&mut inner)?;
            let segment = Segment::keyed(batch, self.time_column, &self.key_columns);
            inner.merged.push(segment);
            return Ok(());
        }
        if inner.tail_bytes + bytes > MERGE_BYTES {
            self.merge_tail(&mut inner)?;
        }
        inner.tail_rows += batch.num_rows();
        inner.tail_bytes += bytes;
        inner.tail.push(Segment::new(batch, self.time_column));
        if inner.tail_rows >= self.merge_rows || inner.tail.len() >= Self::MERGE_BATCHES {
            self.merge_tail(&mut inner)?;
        }
        Ok(())
    }

    /// Merges the tail's batches into one segment.
    fn merge_tail(&self, inner: &mut Inner) -> Result<(), StoreError> {
        if inner.tail.is_empty() {
            return Ok(());
        }
        // A slow table (boundaries gain a row or two per request) fills
        // its tail by count, not rows: its small merged segment grows
        // up to merge_rows, so scans see few batches either way.
        let (tail_rows, tail_bytes) = (inner.tail_rows, inner.tail_bytes);
        let grow = inner.merged.last().is_some_and(|last| {
            last.batch.num_rows() + tail_rows <= self.merge_rows
                && last.batch.get_array_memory_size() + tail_bytes <= MERGE_BYTES
        });
        let mut batches: Vec<RecordBatch> = Vec::with_capacity(inner.tail.len() + 1);
        if grow && let Some(last) = inner.merged.pop() {
            batches.push(last.batch);
        }
        batches.extend(inner.tail.iter().map(|s| s.batch.clone()));
        let merged = match batches.as_slice() {
            [one] => one.clone(),
            _ => concat_batches(&self.hot_schema, &batches)?,
        };
        let before: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let after = merged.get_array_memory_size();
        inner.hot_bytes = (inner.hot_bytes + after).saturating_sub(before);
        inner.tail.clear();
        inner.tail_rows = 0;
        inner.tail_bytes = 0;
        inner
            .merged
            .push(Segment::keyed(merged, self.time_column, &self.key_columns));
        Ok(())
    }

    /// The table as it is now.
    pub fn snapshot(&self) -> Snapshot {
        {
            let mut pending = self.pending.lock();
            if let Err(e) = self.finish_pending(&mut pending) {
                // The builder only ever holds rows of the table's schema.
                tracing::error!(table = %self.name, error = %e, "finishing gathered rows");
            }
        }
        if let Some(s) = self.inner.read().snapshot.clone() {
            return s;
        }
        let mut inner = self.inner.write();
        if let Some(s) = inner.snapshot.clone() {
            return s;
        }
        let segments: Arc<[Segment]> = inner
            .sealing
            .iter()
            .chain(inner.merged.iter())
            .chain(inner.tail.iter())
            .cloned()
            .collect();
        let snapshot = Snapshot {
            schema: self.schema.clone(),
            hot_schema: self.hot_schema.clone(),
            segments,
            sealed: inner.sealed.iter().cloned().collect(),
        };
        inner.snapshot = Some(snapshot.clone());
        snapshot
    }

    /// Rows held, in memory and on disk.
    pub fn num_rows(&self) -> usize {
        self.snapshot().num_rows()
    }

    /// Whether rows a failed seal froze wait for the next one.
    pub(crate) fn has_frozen(&self) -> bool {
        !self.inner.read().sealing.is_empty()
    }

    /// Memory held by hot rows not frozen yet, and how long ago the oldest
    /// of them arrived.
    pub fn hot_usage(&self) -> (usize, Option<std::time::Duration>) {
        let inner = self.inner.read();
        (inner.hot_bytes, inner.oldest.map(|t| t.elapsed()))
    }

    /// Moves every hot row into the sealing tier and returns the batches
    /// to seal (those of an earlier seal that did not finish included).
    /// The rows stay readable until [`Table::publish_sealed`].
    pub(crate) fn freeze(&self) -> Result<Vec<RecordBatch>, StoreError> {
        let mut pending = self.pending.lock();
        self.finish_pending(&mut pending)?;
        let mut inner = self.inner.write();
        let Inner {
            sealing,
            merged,
            tail,
            ..
        } = &mut *inner;
        sealing.append(merged);
        sealing.append(tail);
        inner.tail_rows = 0;
        inner.tail_bytes = 0;
        inner.hot_bytes = 0;
        inner.oldest = None;
        inner.snapshot = None;
        Ok(inner.sealing.iter().map(|s| s.batch.clone()).collect())
    }

    /// Replaces the frozen rows by the file now holding them.
    pub(crate) fn publish_sealed(&self, file: Option<SealedFile>) {
        let mut inner = self.inner.write();
        inner.sealing.clear();
        inner.sealed.extend(file);
        inner.snapshot = None;
    }

    /// Swaps sealed files: `removed` go, `added` come (compaction,
    /// retention), in one step.
    pub(crate) fn replace_sealed(&self, removed: &[u64], added: Vec<SealedFile>) {
        let mut inner = self.inner.write();
        inner.sealed.retain(|f| !removed.contains(&f.id));
        inner.sealed.extend(added);
        inner.sealed.sort_by_key(|f| f.id);
        inner.snapshot = None;
    }

    /// Sets the sealed files found on disk when the store opens.
    pub(crate) fn load_sealed(&self, files: Vec<SealedFile>) {
        let mut inner = self.inner.write();
        inner.sealed = files;
        inner.snapshot = None;
    }

    /// The sealed files now.
    pub fn sealed(&self) -> Vec<SealedFile> {
        self.inner.read().sealed.clone()
    }

    /// Rows and bytes in memory and on disk, as the table keeps them: the
    /// shared builder is not finished and no snapshot is taken, so asking
    /// changes nothing (rows gathered in the builder count, their memory
    /// not until they are a batch).
    pub fn stats(&self) -> crate::store::TableStats {
        let gathered = self.pending.lock().as_deref().map_or(0, |b| b.rows());
        let inner = self.inner.read();
        let hot = inner.sealing.iter().chain(&inner.merged).chain(&inner.tail);
        let (rows, bytes) = hot.fold((gathered, 0), |(r, b), s| {
            (r + s.batch.num_rows(), b + s.batch.get_array_memory_size())
        });
        crate::store::TableStats {
            name: self.name.clone(),
            hot_rows: rows as u64,
            hot_bytes: bytes as u64,
            sealed_files: inner.sealed.len() as u64,
            sealed_rows: inner.sealed.iter().map(|f| f.rows).sum(),
            sealed_bytes: inner.sealed.iter().map(|f| f.bytes).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn schema() -> SchemaRef {
        crate::testing::schema("t", false)
    }

    fn batch(times: &[i64]) -> RecordBatch {
        crate::testing::batch(&schema(), None, times, times)
    }

    /// Column `v` of every segment, in order.
    fn values(snapshot: &Snapshot) -> Vec<i64> {
        crate::testing::values(snapshot.segments.iter().map(|s| &s.batch))
    }

    /// A segment's key set finds each of its ids, by the ids' prefix,
    /// and values that are not ids by a hash; ids it does not hold are
    /// ruled out.
    #[test]
    fn a_segments_keys_find_its_ids_and_rule_out_others() {
        let ids: Vec<String> = (1..=500u64)
            .map(|i| format!("{:016x}{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i))
            .collect();
        let mut values: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        values.extend([Some("not an id"), Some("abc"), None]);
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let column = arrow::array::StringArray::from(values);
        let batch = RecordBatch::try_new(schema, vec![Arc::new(column)]).unwrap();
        let segment = Segment::keyed(batch, 0, &[0]);
        for id in &ids {
            assert!(segment.may_contain(0, &[id]), "{id}");
        }
        assert!(segment.may_contain(0, &["not an id"]));
        assert!(segment.may_contain(0, &["abc"]));
        let absent = (501..=1000u64)
            .map(|i| format!("{:016x}{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i))
            .filter(|id| segment.may_contain(0, &[id]))
            .count();
        assert_eq!(absent, 0, "ids of other prefixes are ruled out");
        assert!(!segment.may_contain(0, &["something else"]));
        assert!(
            segment.may_contain(1, &["any"]),
            "a column without keys rules out nothing"
        );
    }

    #[test]
    fn appends_are_visible_and_merged_in_order() {
        let table = Table::new(schema(), "t").with_merge_rows(4);
        table.append(batch(&[5, 1])).unwrap();
        let before = table.snapshot();
        assert_eq!(before.num_rows(), 2);
        table.append(batch(&[9, 7])).unwrap();
        table.append(batch(&[3])).unwrap();
        // The old snapshot is unchanged.
        assert_eq!(before.num_rows(), 2);
        let now = table.snapshot();
        assert_eq!(now.num_rows(), 5);
        assert_eq!(
            now.segments.len(),
            2,
            "first four rows merged, one in the tail"
        );
        assert_eq!(now.segments[0].time_range, Some((1, 9)));
        let values = values(&now);
        assert_eq!(values, vec![5, 1, 9, 7, 3]);
        assert!(now.segments[1].overlaps(0, 3));
        assert!(!now.segments[1].overlaps(4, 10));
    }

    #[test]
    fn many_tiny_appends_grow_one_merged_batch() {
        let table = Table::new(schema(), "t").with_merge_rows(1000);
        for t in 0..200 {
            table.append(batch(&[t])).unwrap();
        }
        let snapshot = table.snapshot();
        let sizes: Vec<usize> = snapshot
            .segments
            .iter()
            .map(|s| s.batch.num_rows())
            .collect();
        assert_eq!(sizes[0], 192, "three merges of 64 grew one batch");
        assert_eq!(sizes[1..], [1; 8], "eight wait in the tail");
        let values = values(&snapshot);
        assert_eq!(values, (0..200).collect::<Vec<_>>(), "in order, none twice");
        assert_eq!(snapshot.segments[0].time_range, Some((0, 191)));
    }

    /// Gathers times; stands in for the spans builder of small requests.
    #[derive(Default)]
    struct Times(Vec<i64>);

    impl PendingRows for Times {
        fn rows(&self) -> usize {
            self.0.len()
        }
        fn bytes(&self) -> usize {
            0
        }
        fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
            Ok(batch(&std::mem::take(&mut self.0)))
        }
    }

    /// Appends through the shared builder, which is a [`Times`].
    fn gather(table: &Table, fill: impl FnOnce(&mut Times)) -> Result<(), StoreError> {
        let mut fill = Some(fill);
        table.append_gathered(&mut |b| {
            let times = (b as &mut dyn std::any::Any)
                .downcast_mut::<Times>()
                .unwrap();
            (fill.take().unwrap())(times)
        })
    }

    #[test]
    fn gathered_rows_are_one_batch_visible_at_once_and_frozen_with_the_rest() {
        let table = Table::new(schema(), "t");
        assert!(matches!(
            gather(&table, |t| t.0.push(1)),
            Err(StoreError::NoPendingRows)
        ));
        table.gather_in(|| Box::new(Times::default()));
        for t in 0..10 {
            gather(&table, |b| b.0.extend([t, t])).unwrap();
        }
        assert!(
            table.hot_usage().1.is_some(),
            "gathered rows count as hot for the seal's age"
        );
        let snapshot = table.snapshot();
        assert_eq!(snapshot.num_rows(), 20, "every gathered row is visible");
        assert_eq!(snapshot.segments.len(), 1, "ten appends made one batch");
        table.append(batch(&[100])).unwrap();
        gather(&table, |b| b.0.push(50)).unwrap();
        let frozen = table.freeze().unwrap();
        assert_eq!(
            frozen.iter().map(RecordBatch::num_rows).sum::<usize>(),
            22,
            "a freeze takes the gathered rows too"
        );
        assert_eq!(table.snapshot().num_rows(), 22, "no row read twice");
        // At a segment's rows the builder is finished without a reader,
        // and the batch is a segment as it is.
        let rows = Table::DEFAULT_MERGE_ROWS;
        gather(&table, |b| b.0.extend(0..rows as i64)).unwrap();
        let inner = table.inner.read();
        assert_eq!(inner.tail_rows, 0);
        let last = inner.merged.last().unwrap();
        assert_eq!(last.batch.num_rows(), rows);
    }

    #[test]
    fn asking_for_sizes_changes_nothing() {
        let table = Table::new(schema(), "t");
        table.gather_in(|| Box::new(Times::default()));
        gather(&table, |b| b.0.extend([1, 2, 3])).unwrap();
        table.append(batch(&[4, 5])).unwrap();
        let cached = table.snapshot();
        gather(&table, |b| b.0.push(6)).unwrap();
        let stats = table.stats();
        assert_eq!(stats.hot_rows, 6, "gathered rows count");
        assert_eq!(
            table.pending.lock().as_deref().unwrap().rows(),
            1,
            "still gathered"
        );
        let inner = table.inner.read();
        let batches = inner.merged.len() + inner.tail.len();
        assert_eq!(batches, 2, "no batch was finished to answer");
        assert!(inner.snapshot.is_some(), "and the cached snapshot stands");
        drop(inner);
        assert_eq!(cached.num_rows(), 5);
    }

    #[test]
    fn a_batch_of_a_segment_rows_is_not_copied_by_the_merge() {
        let table = Table::new(schema(), "t").with_merge_rows(4);
        let full = batch(&[1, 2, 3, 4]);
        let values = full.column(0).to_data().buffers()[0].as_ptr();
        table.append(full).unwrap();
        let inner = table.inner.read();
        assert!(inner.tail.is_empty());
        let kept = &inner.merged[0].batch;
        assert_eq!(kept.column(0).to_data().buffers()[0].as_ptr(), values);
        drop(inner);
        // Smaller batches are still merged into one.
        table.append(batch(&[5, 6])).unwrap();
        table.append(batch(&[7, 8])).unwrap();
        let inner = table.inner.read();
        let sizes: Vec<usize> = inner.merged.iter().map(|s| s.batch.num_rows()).collect();
        assert_eq!(sizes, [4, 4]);
    }

    #[test]
    fn frozen_rows_stay_readable_until_their_file_is_published() {
        let table = Table::new(schema(), "t");
        table.append(batch(&[1, 2])).unwrap();
        assert!(table.hot_usage().0 > 0);
        let frozen = table.freeze().unwrap();
        assert_eq!(frozen.len(), 1);
        assert_eq!(table.hot_usage(), (0, None));
        table.append(batch(&[3])).unwrap();
        assert_eq!(table.snapshot().num_rows(), 3, "frozen and new rows");
        // A seal that failed: the next freeze returns the old rows again.
        assert_eq!(table.freeze().unwrap().len(), 2);
        table.publish_sealed(Some(SealedFile {
            id: 7,
            rows: 3,
            bytes: 100,
            mem_bytes: 1000,
            time_range: Some((1, 3)),
            path: PathBuf::new(),
        }));
        let now = table.snapshot();
        assert_eq!(now.segments.len(), 0);
        assert_eq!(now.sealed.len(), 1);
        assert_eq!(now.num_rows(), 3);
        table.replace_sealed(&[7], Vec::new());
        assert_eq!(table.num_rows(), 0);
    }

    #[test]
    fn refuses_other_schemas() {
        let table = Table::new(schema(), "t");
        let other = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1]))],
        )
        .unwrap();
        assert!(matches!(
            table.append(other),
            Err(StoreError::SchemaMismatch)
        ));
        assert_eq!(table.num_rows(), 0);
    }
}
