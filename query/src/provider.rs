//! A store table as DataFusion sees it: a [`TableProvider`] that reads a
//! fresh snapshot of the table, in memory and sealed, on every scan.
//!
//! ```text
//!  Table ──snapshot()──▶ hot segments ──time pruning──▶ DataSourceExec (MemorySourceConfig) ─┐
//!                    └─▶ sealed files ──time pruning──▶ DataSourceExec (ParquetSource,       ├─▶ UnionExec
//!                                                      row groups and pages pruned by the     │
//!                                                      filters: statistics, bloom filters) ───┘
//! ```
//!
//! Taking the snapshot at scan time, not at registration, is what makes a
//! span appended a moment before a query visible to it.
//!
//! Every filter is accepted as *inexact*: DataFusion still applies each
//! one to the rows the scan returns. The filters not on a resolved column
//! are the scan's predicate: `pruning` skips segments, files and
//! row groups by it (time ranges, and key values against the segments'
//! key sets and the files' bloom filters), and it is the Parquet
//! predicate, so `trace_id = '…'` reads the one row group (and within it
//! the pages) whose statistics and bloom filter admit the id. Read-time
//! columns are resolved after the stored-column filters, on the rows they
//! keep.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetAccessPlan,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::union::UnionExec;
use seam_store::{KeyFilters, SealedFile, Segment, Table};

use crate::filters::{self, TimeBounds};
use crate::hot_types::{self, ToSqlExec};
use crate::parquet_reader::PageIndexed;
use crate::pruning::Pruner;
use crate::resolve_exec::{BatchResolver, ResolveExec};

/// Columns whose values are decided when a query reads them, not when the
/// rows were stored (a trace's flow, a cold-start verdict).
pub trait Resolve: Send + Sync {
    /// The columns resolved; stored values of these are never used to
    /// prune.
    fn columns(&self) -> &[&'static str];
    /// Whether a scan reading `projection` (indices into the table schema;
    /// `None` for all) needs resolving.
    fn needed(&self, projection: Option<&Vec<usize>>) -> bool;
    /// Stored columns resolving reads besides [`Resolve::columns`]: a scan
    /// reads these, the resolved columns, its filters' and its
    /// projection's, and no others.
    fn reads(&self) -> &[&'static str];
    /// Columns of every row of the table that resolving needs, beyond the
    /// rows a scan selects (values counted across the table).
    fn table_wide(&self) -> &[&'static str] {
        &[]
    }
    /// Prepares resolving for one scan; `all` holds [`Resolve::table_wide`]
    /// of every row of the table.
    fn prepare(&self, all: &Wide) -> std::result::Result<BatchResolver, arrow::error::ArrowError>;
    /// Derives, ahead of the next scan, what [`Resolve::prepare`] keeps
    /// from the sealed rows of `all`.
    fn warm(&self, _all: &Wide) -> std::result::Result<(), arrow::error::ArrowError> {
        Ok(())
    }
}

/// Rows a table's writer holds outside the table until they settle (trace
/// summaries of traces still receiving spans), read with the table's
/// snapshot in one step so that each row is in exactly one of the two.
pub trait Live: Send + Sync {
    /// The snapshot, and the rows held outside it that the scan's filters
    /// may keep: `time` bounds the table's time column, `keys` (when
    /// given) lists the values of its first key column.
    fn snapshot(
        &self,
        table: &Table,
        time: TimeBounds,
        keys: Option<&HashSet<String>>,
    ) -> (seam_store::Snapshot, Vec<RecordBatch>);
}

/// [`Resolve::table_wide`] columns of every row of a table at one
/// snapshot, sealed rows apart from rows in memory: sealed files never
/// change, so what a resolver derives from them holds for as long as the
/// same files are sealed.
#[derive(Debug, Default)]
pub struct Wide {
    /// Ids of the sealed files `sealed` was read from, oldest first.
    pub sealed_files: Vec<u64>,
    pub sealed: Vec<RecordBatch>,
    pub hot: Vec<RecordBatch>,
}

/// A store [`Table`] exposed to SQL, pruned by its time column.
pub struct SegmentTable {
    store: Arc<Table>,
    time_column: String,
    resolver: Option<Arc<dyn Resolve>>,
    live: Option<Arc<dyn Live>>,
    /// [`Resolve::table_wide`] columns of sealed files.
    table_wide: PerFile<Vec<RecordBatch>>,
    /// Bloom filters of the key columns of sealed files.
    key_filters: PerFile<Arc<KeyFilters>>,
    /// Sealed files whose bloom filters, footer and page index were read
    /// ahead of any lookup ([`SegmentTable::warm`]).
    warmed: PerFile<()>,
}

/// What a table reads from each sealed file once and keeps while the file
/// is in the table: sealed files never change.
struct PerFile<T>(parking_lot::Mutex<std::collections::HashMap<u64, T>>);

impl<T> Default for PerFile<T> {
    fn default() -> Self {
        Self(Default::default())
    }
}

impl<T: Clone + Send + 'static> PerFile<T> {
    /// What was read of each of `files`, in their order; files not read
    /// yet are read with `read`, off the async runtime.
    async fn get(
        &self,
        files: &[&SealedFile],
        read: impl Fn(&std::path::Path) -> std::result::Result<T, seam_store::FileError>
        + Send
        + 'static,
    ) -> Result<Vec<T>> {
        // What is kept now is taken now: a scan of a newer snapshot may
        // drop a file this one still reads.
        let mut found: Vec<Option<T>> = {
            let kept = self.0.lock();
            files.iter().map(|f| kept.get(&f.id).cloned()).collect()
        };
        let missing: Vec<(usize, u64, std::path::PathBuf)> = (files.iter().zip(&found))
            .enumerate()
            .filter(|(_, (_, t))| t.is_none())
            .map(|(i, (f, _))| (i, f.id, f.path.clone()))
            .collect();
        if !missing.is_empty() {
            let read = tokio::task::spawn_blocking(move || {
                let read =
                    (missing.into_iter()).map(|(i, id, path)| read(&path).map(|t| (i, id, t)));
                read.collect::<std::result::Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
            let mut kept = self.0.lock();
            for (i, id, t) in read {
                kept.insert(id, t.clone());
                found[i] = Some(t);
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Drops the entries of files not in `live`.
    fn retain(&self, live: &std::collections::HashSet<u64>) {
        self.0.lock().retain(|id, _| live.contains(id));
    }

    #[cfg(test)]
    fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.0.lock().keys().copied().collect();
        ids.sort();
        ids
    }
}

impl fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentTable")
            .field("time_column", &self.time_column)
            .finish_non_exhaustive()
    }
}

impl SegmentTable {
    /// `time_column` must be the column the store keeps segment time ranges for.
    pub fn new(store: Arc<Table>, time_column: &str) -> Self {
        Self {
            store,
            time_column: time_column.to_owned(),
            resolver: None,
            live: None,
            table_wide: Default::default(),
            key_filters: Default::default(),
            warmed: Default::default(),
        }
    }

    /// Reads ahead what a lookup in each sealed file not read yet needs
    /// (the key columns' bloom filters, the columns the resolver reads
    /// table-wide, the footer and the page index, all kept while the file
    /// is in the table), so the first lookup after
    /// a seal, a compaction or a restart does not pay for it.
    pub async fn warm(&self, runtime: &RuntimeEnv) -> Result<()> {
        let sealed = self.store.sealed();
        let fresh: Vec<&SealedFile> = {
            let warmed = self.warmed.0.lock();
            sealed
                .iter()
                .filter(|f| !warmed.contains_key(&f.id))
                .collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        if !self.store.key_columns().is_empty() {
            self.key_filters_of(&fresh).await?;
        }
        if let Some(resolver) = &self.resolver
            && !resolver.table_wide().is_empty()
        {
            let wide = self
                .table_wide(&self.store.snapshot(), resolver.table_wide())
                .await?;
            resolver.warm(&wide)?;
        }
        let reader = Self::reader(runtime)?;
        let metrics = ExecutionPlanMetricsSet::new();
        for file in fresh {
            let part = PartitionedFile::new(file.path.display().to_string(), file.bytes);
            let mut read = reader.create_reader(0, part, None, &metrics)?;
            read.get_metadata(None).await?;
            self.warmed.0.lock().insert(file.id, ());
        }
        Ok(())
    }

    /// Sealed files are read with their footers and page indexes cached
    /// across queries: they never change.
    fn reader(runtime: &RuntimeEnv) -> Result<PageIndexed> {
        Ok(PageIndexed(CachedParquetFileReaderFactory::new(
            runtime.object_store(ObjectStoreUrl::local_filesystem())?,
            runtime.cache_manager.get_file_metadata_cache(),
        )))
    }

    /// The bloom filters of the key columns of each of `files`.
    async fn key_filters_of(&self, files: &[&SealedFile]) -> Result<Vec<Arc<KeyFilters>>> {
        let schema = self.store.schema();
        let columns: Vec<String> = (self.store.key_columns().iter())
            .map(|&i| schema.field(i).name().clone())
            .collect();
        self.key_filters
            .get(files, move |path| {
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                KeyFilters::read(path, &columns).map(Arc::new)
            })
            .await
    }

    /// Applies `resolver` to every scan that reads a resolved column.
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Adds the rows `live` holds outside the table to every scan.
    pub fn with_live(mut self, live: Arc<dyn Live>) -> Self {
        self.live = Some(live);
        self
    }

    /// The segments that may hold rows the predicate passes, enough of
    /// them to produce `limit` rows when a limit is given.
    fn select<'a>(
        &self,
        segments: &'a [Segment],
        pruner: &Pruner,
        limit: Option<usize>,
    ) -> Vec<&'a Segment> {
        let keep = pruner.segments(segments);
        let mut rows = 0;
        let mut selected = Vec::new();
        for (segment, keep) in segments.iter().zip(keep) {
            if limit.is_some_and(|limit| rows >= limit) {
                break;
            }
            if keep {
                rows += segment.batch.num_rows();
                selected.push(segment);
            }
        }
        selected
    }

    /// The sealed files that may hold rows the predicate passes: by time
    /// range, then, when it asks for key values, by the key columns' bloom
    /// filters, read once per file and kept while the file is in the
    /// table. With each file, the row groups that may hold them (by
    /// index) when the filters say.
    async fn select_files<'a>(
        &self,
        files: &'a [SealedFile],
        pruner: &Pruner,
    ) -> Result<Vec<(&'a SealedFile, Option<Vec<bool>>)>> {
        let all: Vec<&SealedFile> = files.iter().collect();
        let keep = pruner.files(&all);
        let files: Vec<&SealedFile> = all
            .into_iter()
            .zip(keep)
            .filter_map(|(f, keep)| keep.then_some(f))
            .collect();
        let schema = self.store.schema();
        let columns: Vec<String> = (self.store.key_columns().iter())
            .map(|&i| schema.field(i).name().clone())
            .collect();
        if files.is_empty() || !pruner.constrains(&columns) {
            return Ok(files.into_iter().map(|f| (f, None)).collect());
        }
        let filters = self.key_filters_of(&files).await?;
        Ok(files
            .into_iter()
            .zip(filters)
            .map(|(file, filters)| (file, pruner.row_groups(&filters)))
            .filter(|(_, groups)| groups.as_ref().is_none_or(|g| g.contains(&true)))
            .collect())
    }

    /// Whether a filter names a key column (one with bloom filters).
    fn filters_a_key(&self, filters: &[Expr]) -> bool {
        let layout = self.store.layout();
        self.usable(filters).any(|f| {
            f.column_refs()
                .iter()
                .any(|c| layout.bloom.contains(&c.name))
        })
    }

    /// Drops what is kept of files no longer in the table.
    fn forget_files(&self, sealed: &[SealedFile]) {
        let live: std::collections::HashSet<u64> = sealed.iter().map(|f| f.id).collect();
        self.table_wide.retain(&live);
        self.key_filters.retain(&live);
        self.warmed.retain(&live);
    }

    /// The Parquet predicate: every filter not on a resolved column.
    /// The filters on stored columns only.
    fn usable<'a>(&self, filters: &'a [Expr]) -> impl Iterator<Item = &'a Expr> {
        let resolved: &[&str] = self.resolver.as_ref().map_or(&[], |r| r.columns());
        filters.iter().filter(move |f| {
            f.column_refs()
                .iter()
                .all(|c| !resolved.contains(&c.name.as_str()))
        })
    }

    fn predicate(
        &self,
        state: &dyn Session,
        schema: &SchemaRef,
        filters: &[Expr],
    ) -> Result<Option<Arc<dyn datafusion::physical_expr::PhysicalExpr>>> {
        let Some(expr) = conjunction(self.usable(filters).cloned()) else {
            return Ok(None);
        };
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        state.create_physical_expr(expr, &df_schema).map(Some)
    }

    /// Reads the resolver's table-wide columns of every row, in memory and
    /// sealed. A sealed file's columns are read once and kept while the
    /// file is in the table: they are a few id columns, and reading them
    /// from every file on every query cost more than the query.
    async fn table_wide(
        &self,
        snapshot: &seam_store::Snapshot,
        columns: &[&'static str],
    ) -> Result<Wide> {
        let hot = snapshot.segments.iter().map(|s| s.batch.clone()).collect();
        let columns = columns.to_vec();
        let files: Vec<&SealedFile> = snapshot.sealed.iter().collect();
        let per_file = (self.table_wide)
            .get(&files, move |path| {
                seam_store::parquet_file::read(path, Some(&columns))
            })
            .await?;
        let sealed = per_file.into_iter().flatten().collect();
        Ok(Wide {
            sealed_files: snapshot.sealed.iter().map(|f| f.id).collect(),
            sealed,
            hot,
        })
    }
}

#[async_trait]
impl TableProvider for SegmentTable {
    fn schema(&self) -> SchemaRef {
        self.store.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (snapshot, live) = match &self.live {
            Some(live) => {
                let schema = self.store.schema();
                let key =
                    (self.store.key_columns().first()).map(|&i| schema.field(i).name().clone());
                let keys = key.and_then(|k| filters::keys(filters, &k));
                let time = TimeBounds::of(filters, &self.time_column);
                live.snapshot(&self.store, time, keys.as_ref())
            }
            None => (self.store.snapshot(), Vec::new()),
        };
        let schema = snapshot.schema.clone();
        self.forget_files(&snapshot.sealed);
        // Filters on stored columns: what prunes segments, files and row
        // groups, and, applied before resolving, what keeps resolving to
        // the rows a lookup wants (DataFusion applies every filter again
        // above the scan).
        let predicate = self.predicate(state, &schema, filters)?;
        let pruner = Pruner::new(predicate.as_ref(), schema.clone(), &self.time_column);
        let selected = self.select(&snapshot.segments, &pruner, limit);
        let files = self.select_files(&snapshot.sealed, &pruner).await?;
        tracing::debug!(
            segments = snapshot.segments.len(),
            selected = selected.len(),
            files = snapshot.sealed.len(),
            selected_files = files.len(),
            "planning a table scan"
        );
        let resolver = match self.resolver.as_ref().filter(|r| r.needed(projection)) {
            Some(resolver) => {
                let wide = resolver.table_wide();
                let all = if wide.is_empty() {
                    Wide::default()
                } else {
                    self.table_wide(&snapshot, wide).await?
                };
                Some(
                    resolver
                        .prepare(&all)
                        .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?,
                )
            }
            None => None,
        };
        // Columns the rows in memory hold in another type than SQL reads
        // (ids as bytes, a dictionary of resources) are converted to it
        // after the filters have kept the rows a query wants
        // (`hot_types`).
        let hot_schema = snapshot.hot_schema.clone();
        let differs = |i: usize| schema.field(i).data_type() != hot_schema.field(i).data_type();
        // Resolving and converting read the columns they resolve and those
        // they read them from, and the filter before them reads its own:
        // with the projection, what the sources read; the projection is
        // applied after.
        let resolving = (self.resolver.as_ref().filter(|_| resolver.is_some()))
            .map(|r| r.columns().iter().chain(r.reads()).map(|c| (*c).to_owned()));
        let named: Vec<usize> = (resolving.into_iter().flatten())
            .chain(self.usable(filters).flat_map(|f| {
                f.column_refs()
                    .into_iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            }))
            .filter_map(|c| schema.index_of(&c).ok())
            .collect();
        let converts = named.iter().any(|&i| differs(i))
            || match projection {
                Some(p) => p.iter().any(|&i| differs(i)),
                None => (0..schema.fields().len()).any(differs),
            };
        let (scan_projection, filter) = if resolver.is_some() || converts {
            let mut read: Vec<usize> = match projection {
                Some(p) => p.clone(),
                None => (0..schema.fields().len()).collect(),
            };
            read.extend(named);
            read.sort_unstable();
            read.dedup();
            let read_schema = Arc::new(schema.project(&read)?);
            let filter = self.predicate(state, &read_schema, filters)?;
            (Some(read), filter)
        } else {
            (projection.cloned(), None)
        };
        let read_schema = match &scan_projection {
            Some(p) => Arc::new(schema.project(p)?),
            None => schema.clone(),
        };
        let partitions = state.config().target_partitions().max(1);
        let mut inputs: Vec<Arc<dyn ExecutionPlan>> = Vec::new();

        let resolved = |plan: Arc<dyn ExecutionPlan>, filter: Option<&Arc<dyn PhysicalExpr>>| {
            let Some(resolve) = &resolver else {
                return Ok::<_, DataFusionError>(plan);
            };
            let plan = match filter {
                Some(p) => Arc::new(FilterExec::try_new(p.clone(), plan)?),
                None => plan,
            };
            Ok(Arc::new(ResolveExec::new(plan, resolve.clone())) as Arc<dyn ExecutionPlan>)
        };
        // Rows in memory: filtered on the columns whose types agree and on
        // ids as bytes, converted, then resolved.
        let in_memory = |plan: Arc<dyn ExecutionPlan>| -> Result<Arc<dyn ExecutionPlan>> {
            if !converts {
                return resolved(plan, filter.as_ref());
            }
            let read: Vec<usize> = scan_projection.clone().unwrap_or_default();
            let hot_read = Arc::new(hot_schema.project(&read)?);
            let read_schema = Arc::new(schema.project(&read)?);
            // Filters on columns memory holds as SQL reads them, and on
            // ids as bytes, run first; then the columns held as runs are
            // expanded (a key a row) and the filters on them run; then
            // the rest (ids' hex, resources' maps) is built for the rows
            // kept.
            let runs =
                |i: usize| matches!(hot_schema.field(i).data_type(), DataType::RunEndEncoded(..));
            let on = |f: &Expr, ok: &dyn Fn(usize) -> bool| {
                (f.column_refs().iter()).all(|c| schema.index_of(&c.name).is_ok_and(ok))
            };
            let (mut first, mut second) = (Vec::new(), Vec::new());
            for f in self.usable(filters) {
                if on(f, &|i| !differs(i)) {
                    first.push(f.clone());
                } else if let Some(bytes) = hot_types::ids_as_bytes(f, &hot_read) {
                    first.push(bytes);
                } else if on(f, &|i| !differs(i) || runs(i)) {
                    second.push(f.clone());
                }
            }
            let filtered = |plan: Arc<dyn ExecutionPlan>, exprs: Vec<Expr>, over: &SchemaRef| {
                Ok::<_, DataFusionError>(match conjunction(exprs) {
                    Some(expr) => {
                        let df_schema = DFSchema::try_from(over.as_ref().clone())?;
                        let predicate = state.create_physical_expr(expr, &df_schema)?;
                        Arc::new(FilterExec::try_new(predicate, plan)?) as Arc<dyn ExecutionPlan>
                    }
                    None => plan,
                })
            };
            let mut plan = filtered(plan, first, &hot_read)?;
            if !second.is_empty() {
                let fields = (read.iter().zip(hot_read.fields()))
                    .map(|(&i, hot)| {
                        if runs(i) {
                            schema.field(i).clone()
                        } else {
                            hot.as_ref().clone()
                        }
                    })
                    .collect::<Vec<_>>();
                let expanded = Arc::new(arrow::datatypes::Schema::new(fields));
                plan = Arc::new(ToSqlExec::new(plan, expanded.clone()));
                plan = filtered(plan, second, &expanded)?;
            }
            let plan = Arc::new(ToSqlExec::new(plan, read_schema));
            resolved(plan, None)
        };

        if !selected.is_empty() || !live.is_empty() || files.is_empty() {
            // Round-robin over the target partitions so every query thread
            // has segments to read.
            let n = partitions.clamp(1, selected.len().max(1));
            let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
            // In batches of the session's size (slices, no copy), as a
            // Parquet scan reads them: a merged segment holds 16k rows,
            // and what an expression builds per batch is bounded by rows.
            let rows = state.config().batch_size().max(1);
            let batches = (selected.into_iter().map(|s| &s.batch)).chain(&live);
            for (i, batch) in batches.enumerate() {
                let slices = (0..batch.num_rows())
                    .step_by(rows)
                    .map(|at| batch.slice(at, rows.min(batch.num_rows() - at)));
                parts[i % n].extend(slices);
            }
            let source =
                MemorySourceConfig::try_new(&parts, hot_schema.clone(), scan_projection.clone())?
                    .with_limit(limit);
            inputs.push(in_memory(DataSourceExec::from_data_source(source))?);
        }

        if !files.is_empty() {
            // Footers and page indexes are parsed once per file, not once
            // per query.
            let reader = Self::reader(state.runtime_env())?;
            let mut source = ParquetSource::new(schema.clone())
                .with_parquet_file_reader_factory(Arc::new(reader));
            if let Some(predicate) = &predicate {
                source = source.with_predicate(predicate.clone());
                if self.filters_a_key(filters) {
                    // A lookup by key keeps a few rows of the pages it
                    // reads: with the filter in the reader, the other
                    // columns are decoded for those rows only (and, for a
                    // key the files are not sorted by, whose rows lie
                    // anywhere in a row group, read only on the pages
                    // that hold one), not whole.
                    source = source.with_pushdown_filters(true);
                }
            }
            if files.iter().all(|(_, groups)| groups.is_some()) {
                // The key filters kept in memory named the row groups
                // already: checking them again against the files' bloom
                // filters and statistics reads and decodes those for
                // nothing (the page index still narrows the pages read).
                let mut options = source.table_parquet_options().clone();
                options.global.pruning = false;
                options.global.bloom_filter_on_read = false;
                source = source.with_table_parquet_options(options);
            }
            // A file whose key filters name its row groups is read as one
            // part per row group, spread over the partitions: a flow's
            // traces are usually in one file, in row groups apart.
            let mut parts = Vec::new();
            for (file, groups) in &files {
                let whole = PartitionedFile::new(file.path.display().to_string(), file.bytes);
                let Some(groups) = groups else {
                    parts.push(whole);
                    continue;
                };
                for (i, _) in groups.iter().enumerate().filter(|(_, may)| **may) {
                    let mut plan = ParquetAccessPlan::new_none(groups.len());
                    plan.scan(i);
                    parts.push(whole.clone().with_extension(plan));
                }
            }
            let n = partitions.clamp(1, parts.len());
            let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); n];
            for (i, part) in parts.into_iter().enumerate() {
                groups[i % n].push(part);
            }
            let config =
                FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                    .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                    .with_projection_indices(scan_projection.clone())?
                    .with_limit(limit)
                    .build();
            inputs.push(resolved(
                DataSourceExec::from_data_source(config),
                filter.as_ref(),
            )?);
        }

        let plan = UnionExec::try_new(inputs)?;
        if scan_projection.as_deref() == projection.map(Vec::as_slice) {
            return Ok(plan);
        }
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..schema.fields().len()).collect(),
        };
        let exprs = wanted
            .iter()
            .map(|&i| {
                let name = schema.field(i).name().clone();
                let at = read_schema.index_of(&name)?;
                Ok(ProjectionExpr {
                    expr: Arc::new(Column::new(&name, at)),
                    alias: name,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(ProjectionExec::try_new(exprs, plan)?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, TimestampNanosecondArray};
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::ScalarValue;
    use datafusion::prelude::*;

    use super::*;

    fn schema() -> SchemaRef {
        seam_store::testing::schema("start_time", false)
    }

    fn batch(times: &[i64]) -> RecordBatch {
        seam_store::testing::batch(&schema(), None, times, times)
    }

    /// Three segments covering 0..=9, 100..=109 and 200..=209.
    fn table() -> SegmentTable {
        let store = Arc::new(Table::new(schema(), "start_time").with_merge_rows(10));
        for base in [0, 100, 200] {
            store
                .append(batch(&(base..base + 10).collect::<Vec<_>>()))
                .unwrap();
        }
        assert_eq!(store.snapshot().segments.len(), 3);
        SegmentTable::new(store, "start_time")
    }

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(ns),
            Some("UTC".into()),
        ))
    }

    /// The scan's pruning of `filters`, as a scan makes it.
    fn pruner(table: &SegmentTable, filters: &[Expr]) -> Pruner {
        let state = SessionContext::new().state();
        let schema = table.store.schema();
        let predicate = table.predicate(&state, &schema, filters).unwrap();
        Pruner::new(predicate.as_ref(), schema, &table.time_column)
    }

    fn selected(table: &SegmentTable, filters: &[Expr], limit: Option<usize>) -> Vec<(i64, i64)> {
        let snapshot = table.store.snapshot();
        table
            .select(&snapshot.segments, &pruner(table, filters), limit)
            .iter()
            .map(|s| s.time_range.unwrap())
            .collect()
    }

    #[test]
    fn prunes_segments_outside_the_time_range() {
        let t = table();
        assert_eq!(selected(&t, &[], None).len(), 3);
        assert_eq!(
            selected(&t, &[col("start_time").gt_eq(ts(100))], None),
            vec![(100, 109), (200, 209)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").gt(ts(109))], None),
            vec![(200, 209)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").lt(ts(100))], None),
            vec![(0, 9)]
        );
        assert_eq!(
            selected(&t, &[ts(150).gt(col("start_time"))], None),
            vec![(0, 9), (100, 109)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").eq(ts(105))], None),
            vec![(100, 109)]
        );
        assert_eq!(
            selected(&t, &[col("start_time").between(ts(5), ts(100))], None),
            vec![(0, 9), (100, 109)]
        );
        let both = col("start_time")
            .gt_eq(ts(50))
            .and(col("start_time").lt_eq(ts(150)));
        assert_eq!(selected(&t, &[both], None), vec![(100, 109)]);
        assert!(selected(&t, &[col("start_time").gt(ts(1_000))], None).is_empty());
    }

    #[test]
    fn prunes_by_what_the_statistics_can_bound_and_keeps_the_rest() {
        let t = table();
        // No statistics on `v`; `!=` bounds nothing.
        assert_eq!(selected(&t, &[col("v").gt(lit(150i64))], None).len(), 3);
        assert_eq!(
            selected(&t, &[col("start_time").not_eq(ts(5))], None).len(),
            3
        );
        // Either end of the range: the middle segment holds neither.
        let either = col("start_time")
            .lt(ts(5))
            .or(col("start_time").gt(ts(205)));
        assert_eq!(
            selected(&t, std::slice::from_ref(&either), None),
            vec![(0, 9), (200, 209)]
        );
        let pushdown = t
            .supports_filters_pushdown(&[&col("start_time").gt(ts(1)), &either])
            .unwrap();
        assert_eq!(
            pushdown,
            vec![TableProviderFilterPushDown::Inexact; 2],
            "every filter reaches the scan; DataFusion still applies each"
        );
    }

    #[test]
    fn stops_reading_segments_once_the_limit_is_met() {
        let t = table();
        assert_eq!(selected(&t, &[], Some(5)).len(), 1);
        assert_eq!(selected(&t, &[], Some(15)).len(), 2);
    }

    #[tokio::test]
    async fn sql_filters_read_only_matching_segments_and_stay_exact() {
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(table())).unwrap();
        let df = ctx
            .sql("SELECT count(*) AS n FROM t WHERE start_time >= to_timestamp_nanos(103) AND start_time < to_timestamp_nanos(205)")
            .await
            .unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        let batches = df.collect().await.unwrap();
        let n = first_count(&batches);
        assert_eq!(n, 7 + 5, "{shown}");
        // The scan holds only the two overlapping segments.
        let rows = plan_rows(&plan);
        assert_eq!(rows, 20, "{shown}");
    }

    /// The single Int64 a `SELECT count(*)` returns.
    fn first_count(batches: &[RecordBatch]) -> i64 {
        batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    }

    /// Rows the memory scans under `plan` would read.
    fn plan_rows(plan: &Arc<dyn ExecutionPlan>) -> usize {
        if let Some(exec) = plan.downcast_ref::<DataSourceExec>()
            && let Some(memory) = exec.data_source().downcast_ref::<MemorySourceConfig>()
        {
            return memory
                .partitions()
                .iter()
                .flatten()
                .map(RecordBatch::num_rows)
                .sum();
        }
        plan.children().into_iter().map(plan_rows).sum()
    }

    #[tokio::test]
    async fn sees_rows_appended_after_registration() {
        let t = table();
        let store = t.store.clone();
        let ctx = SessionContext::new();
        ctx.register_table("t", Arc::new(t)).unwrap();
        store.append(batch(&[300, 301])).unwrap();
        let batches = ctx
            .sql("SELECT count(*) FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let n = first_count(&batches);
        assert_eq!(n, 32);
    }

    mod sealed {
        use arrow::array::{AsArray, StringArray};
        use seam_model::tables::{Source, TableDef};
        use seam_store::{Layout, Opened, RetentionConfig, StorageConfig, Store, WalConfig};

        use super::*;
        use crate::resolve_exec::BatchResolver;

        fn schema() -> SchemaRef {
            seam_store::testing::schema("start_time", true)
        }

        /// Ten rows for each trace `t<first>` .. `t<last>`, `v` = the trace number.
        fn traces(first: i64, last: i64) -> RecordBatch {
            let mut ids = Vec::new();
            let mut times = Vec::new();
            let mut values = Vec::new();
            for t in first..=last {
                for i in 0..10 {
                    ids.push(format!("t{t:03}"));
                    times.push(t * 1_000 + i);
                    values.push(t);
                }
            }
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            seam_store::testing::batch(&schema(), Some(&ids), &times, &values)
        }

        /// `v` is resolved at read time to 100 × its stored value.
        struct Hundredfold;
        impl Resolve for Hundredfold {
            fn columns(&self) -> &[&'static str] {
                &["v"]
            }
            fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
                projection.is_none_or(|p| p.contains(&2))
            }
            fn reads(&self) -> &[&'static str] {
                &[]
            }
            fn prepare(
                &self,
                _all: &Wide,
            ) -> std::result::Result<BatchResolver, arrow::error::ArrowError> {
                Ok(Arc::new(|batch: &RecordBatch| {
                    let at = batch.schema().index_of("v")?;
                    let v = batch
                        .column(at)
                        .as_primitive::<arrow::datatypes::Int64Type>();
                    let scaled: Int64Array = v.iter().map(|x| x.map(|x| x * 100)).collect();
                    let mut columns = batch.columns().to_vec();
                    columns[at] = Arc::new(scaled);
                    RecordBatch::try_new(batch.schema(), columns)
                }))
            }
        }

        /// Two sealed files of 50 traces each (five row groups of 100 rows
        /// apiece), and one hot row of trace t007.
        fn store(dir: &std::path::Path) -> Arc<Store> {
            let spec = TableDef {
                name: "t",
                schema: schema(),
                hot_schema: None,
                source: Source::Ingest,
                time_column: "start_time",
                sort_by: &["trace_id"],
                keys: &["trace_id"],
                distinct: &[],
            };
            let config = StorageConfig {
                row_group_rows: 100,
                // Compaction runs only when a test calls it.
                compact_min_files: 2,
                ..StorageConfig::default()
            };
            let Opened { store, .. } = Store::open(
                dir,
                config,
                RetentionConfig::default(),
                WalConfig::default(),
                vec![spec],
            )
            .unwrap();
            // Appended in reverse: sealing sorts.
            let table = store.table("t");
            table.append(traces(25, 49)).unwrap();
            table.append(traces(0, 24)).unwrap();
            store.seal().unwrap().unwrap();
            table.append(traces(50, 99)).unwrap();
            store.seal().unwrap().unwrap();
            table.append(traces(7, 7).slice(0, 1)).unwrap();
            store
        }

        async fn run(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
            ctx.sql(sql).await.unwrap().collect().await.unwrap()
        }

        fn text(batches: &[RecordBatch]) -> String {
            arrow::util::pretty::pretty_format_batches(batches)
                .unwrap()
                .to_string()
        }

        /// `name=N total → M matched` as (N, M), summed over the plan.
        fn pruning(plan: &str, name: &str) -> (u64, u64) {
            let mut sum = (0, 0);
            for part in plan.split(&format!("{name}=")).skip(1) {
                let numbers: Vec<u64> = part
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .take(2)
                    .map(|s| s.parse().unwrap())
                    .collect();
                sum.0 += numbers[0];
                sum.1 += numbers[1];
            }
            sum
        }

        #[tokio::test]
        async fn trace_by_id_reads_one_row_group_of_the_sealed_files() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let ctx = SessionContext::new();
            let table = SegmentTable::new(store.table("t"), "start_time");
            ctx.register_table("t", Arc::new(table)).unwrap();
            let rows = run(&ctx, "SELECT v FROM t WHERE trace_id = 't007'").await;
            let n: usize = rows.iter().map(RecordBatch::num_rows).sum();
            assert_eq!(n, 11, "ten sealed rows and the hot one");

            let plan = text(
                &run(
                    &ctx,
                    "EXPLAIN ANALYZE SELECT * FROM t WHERE trace_id = 't007'",
                )
                .await,
            );
            // Ten row groups in two files: the other file is never opened
            // and four of this file's five row groups are never looked at
            // (the bloom filters, kept in memory, rule them out); one is
            // read.
            let (files, opened) = pruning(&plan, "files_ranges_pruned_statistics");
            assert_eq!((files, opened), (1, 1), "{plan}");
            let (groups, after_stats) = pruning(&plan, "row_groups_pruned_statistics");
            let (_, after_bloom) = pruning(&plan, "row_groups_pruned_bloom_filter");
            assert_eq!(groups, 1, "{plan}");
            assert_eq!(after_stats, 1, "{plan}");
            assert_eq!(after_bloom, 1, "one row group read:\n{plan}");

            // A short IN list, which DataFusion rewrites to an OR.
            let sql = "EXPLAIN ANALYZE SELECT * FROM t WHERE trace_id IN ('t007', 't008')";
            let plan = text(&run(&ctx, sql).await);
            assert!(plan.contains("t007 OR"), "{plan}");
            let (files, opened) = pruning(&plan, "files_ranges_pruned_statistics");
            assert_eq!((files, opened), (1, 1), "{plan}");
            let (groups, _) = pruning(&plan, "row_groups_pruned_statistics");
            assert_eq!(groups, 1, "both ids are in the first row group:\n{plan}");
            // Two row groups of one file, read as two parts: all rows of
            // both traces, each once.
            let both = "SELECT count(*) FROM t WHERE trace_id IN ('t007', 't042')";
            assert_eq!(first_count(&run(&ctx, both).await), 21);
            let plan = text(&run(&ctx, &format!("EXPLAIN ANALYZE {both}")).await);
            assert_eq!(
                pruning(&plan, "row_groups_pruned_statistics").0,
                2,
                "{plan}"
            );

            let missing = run(&ctx, "SELECT * FROM t WHERE trace_id = 't500'").await;
            assert_eq!(missing.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
            let all = run(&ctx, "SELECT count(*) FROM t").await;
            assert_eq!(first_count(&all), 1001);
        }

        #[tokio::test]
        async fn lookups_by_trace_id_skip_merged_segments_without_it() {
            let layout = Layout {
                sort_by: Vec::new(),
                bloom: vec!["trace_id".into()],
                ..Layout::default()
            };
            let table =
                Arc::new(Table::named("t", schema(), "start_time", layout).with_merge_rows(100));
            // Three merged segments of ten traces each, and one trace in
            // the tail, which keeps no keys.
            for first in [0, 10, 20] {
                table.append(traces(first, first + 9)).unwrap();
            }
            table.append(traces(30, 30)).unwrap();
            let provider = SegmentTable::new(table.clone(), "start_time");
            let snapshot = table.snapshot();
            assert_eq!(snapshot.segments.len(), 4);
            let read = |filter: Expr| {
                let pruner = pruner(&provider, &[filter]);
                provider.select(&snapshot.segments, &pruner, None).len()
            };
            assert_eq!(
                read(col("trace_id").eq(lit("t015"))),
                2,
                "its segment and the tail"
            );
            assert_eq!(read(lit("t025").eq(col("trace_id"))), 2);
            let two = col("trace_id").in_list(vec![lit("t001"), lit("t025")], false);
            assert_eq!(read(two), 3);
            let or = col("trace_id")
                .eq(lit("t001"))
                .or(col("trace_id").eq(lit("t025")));
            assert_eq!(
                read(or),
                3,
                "an OR of equalities, as DataFusion rewrites IN"
            );
            let mixed = col("trace_id").eq(lit("t001")).or(col("v").eq(lit(25)));
            assert_eq!(read(mixed), 4, "an OR with another column prunes nothing");
            assert_eq!(read(col("trace_id").eq(lit("t999"))), 1, "only the tail");
            assert_eq!(read(col("trace_id").not_eq(lit("t015"))), 4, "no pruning");

            let ctx = SessionContext::new();
            ctx.register_table("t", Arc::new(provider)).unwrap();
            for (id, rows) in [("t015", 10), ("t030", 10), ("t999", 0)] {
                let sql = format!("SELECT count(*) FROM t WHERE trace_id = '{id}'");
                assert_eq!(first_count(&run(&ctx, &sql).await), rows, "{sql}");
            }
        }

        #[tokio::test]
        async fn lookups_skip_merged_segments_by_every_key_column() {
            // A boundaries-like table: keyed by both ends' trace ids.
            let schema = Arc::new(Schema::new(vec![
                Field::new("producer", DataType::Utf8, false),
                Field::new("consumer", DataType::Utf8, false),
                Field::new(
                    "start_time",
                    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                    false,
                ),
            ]));
            let rows = |first: i64| {
                let n = first..first + 10;
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from_iter_values(
                            n.clone().map(|i| format!("p{i}")),
                        )),
                        Arc::new(StringArray::from_iter_values(
                            n.clone().map(|i| format!("c{i}")),
                        )),
                        Arc::new(
                            TimestampNanosecondArray::from_iter_values(n).with_timezone("UTC"),
                        ),
                    ],
                )
                .unwrap()
            };
            let layout = Layout {
                bloom: vec!["producer".into(), "consumer".into()],
                ..Layout::default()
            };
            let table = Arc::new(
                Table::named("b", schema.clone(), "start_time", layout).with_merge_rows(10),
            );
            for first in [0, 10, 20] {
                table.append(rows(first)).unwrap();
            }
            assert_eq!(table.key_columns(), &[0, 1]);
            let provider = SegmentTable::new(table.clone(), "start_time");
            let snapshot = table.snapshot();
            assert_eq!(snapshot.segments.len(), 3);
            let read = |filters: &[Expr]| {
                let pruner = pruner(&provider, filters);
                provider.select(&snapshot.segments, &pruner, None).len()
            };
            assert_eq!(read(&[col("consumer").eq(lit("c15"))]), 1);
            assert_eq!(read(&[col("producer").eq(lit("p25"))]), 1);
            let either = col("consumer").in_list(vec![lit("c1"), lit("c25")], false);
            assert_eq!(read(&[either]), 2);
            // Both conditions must hold: no segment has p1 with c25.
            let both = [
                col("producer").eq(lit("p1")),
                col("consumer").eq(lit("c25")),
            ];
            assert_eq!(read(&both), 0);
            // An OR across the columns says nothing about either.
            let or = col("producer")
                .eq(lit("p1"))
                .or(col("consumer").eq(lit("c25")));
            assert_eq!(read(&[or]), 3);

            let ctx = SessionContext::new();
            ctx.register_table("b", Arc::new(provider)).unwrap();
            let sql = "SELECT count(*) FROM b WHERE consumer IN ('c3', 'c27', 'c99')";
            assert_eq!(first_count(&run(&ctx, sql).await), 2);
        }

        #[tokio::test]
        async fn sealed_files_are_read_under_a_relative_data_dir() {
            // `seam serve --data-dir data`: a path relative to the working
            // directory.
            let dir = tempfile::tempdir_in(".").unwrap();
            let cwd = std::env::current_dir().unwrap();
            let relative = dir.path().strip_prefix(&cwd).unwrap_or(dir.path());
            assert!(relative.is_relative());
            let store = store(relative);
            let ctx = SessionContext::new();
            let table = SegmentTable::new(store.table("t"), "start_time");
            ctx.register_table("t", Arc::new(table)).unwrap();
            let rows = run(&ctx, "SELECT count(*) FROM t WHERE trace_id = 't042'").await;
            assert_eq!(first_count(&rows), 10);
        }

        #[tokio::test]
        async fn table_wide_columns_of_sealed_files_are_read_once_and_follow_the_files() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let resolver = Recording {
                wide: true,
                seen: seen.clone(),
                ..Recording::default()
            };
            let provider = Arc::new(
                SegmentTable::new(store.table("t"), "start_time").with_resolver(Arc::new(resolver)),
            );
            let ctx = SessionContext::new();
            ctx.register_table("t", provider.clone()).unwrap();
            let seen = || seen.load(std::sync::atomic::Ordering::Relaxed);
            run(&ctx, "SELECT v FROM t WHERE trace_id = 't007'").await;
            assert_eq!(seen(), 1001, "every row, sealed and hot");
            assert_eq!(provider.table_wide.ids().len(), 2, "both files kept");
            run(&ctx, "SELECT v FROM t WHERE trace_id = 't008'").await;
            assert_eq!(seen(), 1001, "the same rows from the kept columns");
            // A third file, then a compaction that replaces all three.
            store.table("t").append(traces(200, 209)).unwrap();
            store.seal().unwrap().unwrap();
            run(&ctx, "SELECT v FROM t WHERE trace_id = 't007'").await;
            assert_eq!(seen(), 1101);
            assert_eq!(provider.table_wide.ids().len(), 3);
            assert_eq!(provider.key_filters.ids().len(), 3, "every file's filters");
            store.compact().unwrap();
            run(&ctx, "SELECT v FROM t WHERE trace_id = 't007'").await;
            assert_eq!(seen(), 1101, "no row lost or doubled by the compaction");
            assert_eq!(provider.key_filters.ids().len(), 1, "the compacted file's");
            let mut kept: Vec<u64> = provider.table_wide.ids();
            kept.sort();
            let files: Vec<u64> = store.table("t").sealed().iter().map(|f| f.id).collect();
            assert_eq!(files.len(), 1, "compacted");
            assert_eq!(kept, files, "only the files in the table are kept");
        }

        #[tokio::test]
        async fn sealed_files_are_read_ahead_once_and_lookups_then_read_no_footer() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let provider = Arc::new(SegmentTable::new(store.table("t"), "start_time"));
            let ctx = SessionContext::new();
            ctx.register_table("t", provider.clone()).unwrap();
            let runtime = ctx.runtime_env();
            let cache = runtime.cache_manager.get_file_metadata_cache();
            assert_eq!(cache.len(), 0);
            provider.warm(&runtime).await.unwrap();
            let sealed = || {
                let mut ids: Vec<u64> = store.table("t").sealed().iter().map(|f| f.id).collect();
                ids.sort();
                ids
            };
            let files = sealed();
            assert_eq!(files.len(), 2);
            assert_eq!(provider.warmed.ids(), files, "every sealed file");
            assert_eq!(provider.key_filters.ids(), files, "with its key filters");
            assert_eq!(cache.len(), 2, "and its footer");
            // A lookup finds every footer kept: the cache gains nothing.
            let rows = run(&ctx, "SELECT v FROM t WHERE trace_id = 't007'").await;
            assert!(rows.iter().map(RecordBatch::num_rows).sum::<usize>() > 1);
            assert_eq!(cache.len(), 2);
            // A file sealed later is read ahead by the next call alone; a
            // compaction's file replaces what was kept of the others.
            store.table("t").append(traces(200, 209)).unwrap();
            store.seal().unwrap().unwrap();
            provider.warm(&runtime).await.unwrap();
            assert_eq!(provider.warmed.ids().len(), 3);
            store.compact().unwrap();
            run(&ctx, "SELECT count(*) FROM t").await;
            provider.warm(&runtime).await.unwrap();
            assert_eq!(sealed().len(), 1, "compacted");
            assert_eq!(provider.warmed.ids(), sealed());
        }

        /// [`Hundredfold`], counting the rows it resolves and the rows of
        /// its table-wide columns (`v`, when `wide`).
        #[derive(Default)]
        struct Recording {
            wide: bool,
            resolved: Arc<std::sync::atomic::AtomicUsize>,
            seen: Arc<std::sync::atomic::AtomicUsize>,
        }
        impl Resolve for Recording {
            fn columns(&self) -> &[&'static str] {
                Hundredfold.columns()
            }
            fn needed(&self, projection: Option<&Vec<usize>>) -> bool {
                Hundredfold.needed(projection)
            }
            fn reads(&self) -> &[&'static str] {
                &[]
            }
            fn table_wide(&self) -> &[&'static str] {
                if self.wide { &["v"] } else { &[] }
            }
            fn prepare(
                &self,
                all: &Wide,
            ) -> std::result::Result<BatchResolver, arrow::error::ArrowError> {
                let rows = all
                    .sealed
                    .iter()
                    .chain(&all.hot)
                    .map(RecordBatch::num_rows)
                    .sum();
                self.seen.store(rows, std::sync::atomic::Ordering::Relaxed);
                let inner = Hundredfold.prepare(all)?;
                let count = self.resolved.clone();
                Ok(Arc::new(move |batch: &RecordBatch| {
                    count.fetch_add(batch.num_rows(), std::sync::atomic::Ordering::Relaxed);
                    inner(batch)
                }))
            }
        }

        #[tokio::test]
        async fn a_lookup_resolves_only_the_rows_its_filters_keep() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            // Fifty more traces hot, beside the one hot row of t007.
            store.table("t").append(traces(100, 149)).unwrap();
            let resolved = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let ctx = SessionContext::new();
            let table = SegmentTable::new(store.table("t"), "start_time").with_resolver(Arc::new(
                Recording {
                    resolved: resolved.clone(),
                    ..Recording::default()
                },
            ));
            ctx.register_table("t", Arc::new(table)).unwrap();
            let rows = run(&ctx, "SELECT * FROM t WHERE trace_id = 't007'").await;
            assert_eq!(
                seam_store::testing::values(&rows),
                vec![700; 11],
                "ten sealed rows and the hot one, resolved"
            );
            assert_eq!(
                resolved.load(std::sync::atomic::Ordering::Relaxed),
                11,
                "of 1,501 rows only the eleven of the trace are resolved"
            );
        }

        #[tokio::test]
        async fn resolved_columns_are_resolved_on_sealed_rows_and_never_prune() {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let ctx = SessionContext::new();
            let table = SegmentTable::new(store.table("t"), "start_time")
                .with_resolver(Arc::new(Hundredfold));
            ctx.register_table("t", Arc::new(table)).unwrap();
            // Stored v is 7; resolved, 700. A filter on the stored value
            // would find nothing in the files.
            let rows = run(&ctx, "SELECT trace_id, v FROM t WHERE v = 700").await;
            let mut ids: Vec<String> = rows
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_string::<i32>()
                        .iter()
                        .flatten()
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .collect();
            ids.dedup();
            assert_eq!(ids, ["t007"]);
            assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 11);
            let projected = run(&ctx, "SELECT v FROM t WHERE trace_id = 't099'").await;
            assert_eq!(projected[0].num_columns(), 1);
            assert_eq!(
                projected[0]
                    .column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .value(0),
                9900
            );
        }
    }
}
