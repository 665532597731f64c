//! The store as a whole: its tables, the write-ahead log in front of them,
//! and the upkeep that moves rows from memory to Parquet files and drops
//! them when retention says so.
//!
//! ```text
//!  <data_dir>/wal/…                       the log (replayed from MANIFEST.wal_start)
//!  <data_dir>/segments/MANIFEST.json       what is sealed; the commit point
//!  <data_dir>/segments/<table>/<id>.parquet
//!  <data_dir>/segments/cut-<n>.state       caller's state at log segment n
//! ```
//!
//! # Sealing is a cut
//! A seal holds ingest for a moment (the [`CutGate`]) and, with nothing in
//! flight, starts a new log segment, freezes every table's hot rows and
//! captures the caller's state (the correlation state). The frozen rows
//! then go to Parquet and the manifest moves the replay point to the new
//! segment. Rows of the log before the cut are in the files; rows after it
//! are replayed into a state exactly as it was at the cut, so a restart
//! stores and stitches every acknowledged span once.
//!
//! # Invariants
//! - Only files the manifest names are read; anything else in the
//!   segments directory is the leftover of an unfinished step and is
//!   deleted when the store opens.
//! - Files a step removes from the manifest are deleted only after
//!   [`Store::GRACE`], so a query that planned them can still read them.
//! - Seal, compaction and retention run one at a time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytesize::ByteSize;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::manifest::{self, Manifest, ManifestError};
use crate::parquet_file::{self, FileError, FileShape};
use crate::table::{Layout, SealedFile, StoreError, Table, time_range};
use crate::wal::{Replay, Wal, WalConfig, WalError};

/// The `storage:` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Seal when the hot rows of the tables hold this much memory.
    pub seal_size: ByteSize,
    /// Seal at least this often: bounds the log to replay after a crash.
    #[serde(with = "humantime_serde")]
    pub seal_interval: Duration,
    /// Rows per Parquet row group: what one trace lookup reads at most.
    pub row_group_rows: usize,
    /// Sealed files holding less than half of `seal_size` are merged,
    /// oldest first, up to `seal_size` at a time, once this many wait.
    pub compact_min_files: usize,
    /// How often compaction and retention run.
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            seal_size: ByteSize::mib(256),
            seal_interval: Duration::from_secs(60),
            row_group_rows: 128 * 1024,
            compact_min_files: 4,
            housekeeping_interval: Duration::from_secs(10),
        }
    }
}

/// The `retention:` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Sealed files whose newest row is older than this are deleted.
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    /// When sealed files take more than this, the oldest are deleted
    /// until they fit. `null`: no limit.
    pub max_disk: Option<ByteSize>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_disk: None,
        }
    }
}

/// A table the store keeps.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub name: String,
    pub schema: SchemaRef,
    /// Nanosecond timestamp column that time pruning and retention use.
    pub time_column: String,
    pub layout: Layout,
}

/// Why opening, sealing or upkeep failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("capturing the state to keep with the seal: {0}")]
    State(String),
    #[error("finishing the rows to seal: {0}")]
    Rows(#[from] StoreError),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SealError + '_ {
    move |source| SealError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// State kept beside each seal and handed back on open: whatever, besides
/// the tables, a replay of the log after the cut must start from.
pub trait CutState: Send + Sync {
    /// Encodes the state; called while ingest is held at the cut.
    fn capture(&self) -> Result<Vec<u8>, String>;
}

/// Holds ingest at a cut. Every step that logs and stores rows (or
/// changes the captured state) runs inside [`CutGate::enter`]; a seal
/// takes the gate exclusively for the instant of the cut.
#[derive(Default)]
pub struct CutGate(RwLock<()>);

impl CutGate {
    pub fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read()
    }

    fn hold(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write()
    }
}

/// What opening found: the log to replay and the state to start it from.
pub struct Opened {
    pub store: Store,
    /// Records logged after the last seal, oldest first.
    pub replay: Replay,
    /// The state captured at the last seal.
    pub state: Option<Vec<u8>>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
struct Counters {
    seals: AtomicU64,
    seal_failures: AtomicU64,
    compactions: AtomicU64,
    deleted_age_files: AtomicU64,
    deleted_age_rows: AtomicU64,
    deleted_disk_files: AtomicU64,
    deleted_disk_rows: AtomicU64,
}

/// Per-table sizes and the store's counters.
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Per table: (name, hot bytes, sealed files, sealed rows, sealed bytes).
    pub tables: Vec<TableStats>,
    pub wal_bytes: u64,
    pub seals: u64,
    pub seal_failures: u64,
    pub compactions: u64,
    pub deleted_age_files: u64,
    pub deleted_age_rows: u64,
    pub deleted_disk_files: u64,
    pub deleted_disk_rows: u64,
}

#[derive(Debug, Clone, Default)]
pub struct TableStats {
    pub name: String,
    pub hot_rows: u64,
    pub hot_bytes: u64,
    pub sealed_files: u64,
    pub sealed_rows: u64,
    pub sealed_bytes: u64,
}

/// What one seal did.
#[derive(Debug, Clone, Default)]
pub struct SealReport {
    pub rows: u64,
    pub bytes: u64,
    pub files: usize,
    pub elapsed: Duration,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub age_files: u64,
    pub age_rows: u64,
    pub disk_files: u64,
    pub disk_rows: u64,
}

pub struct Store {
    segments_dir: PathBuf,
    config: StorageConfig,
    retention: RetentionConfig,
    tables: Vec<Arc<Table>>,
    wal: Arc<Wal>,
    gate: Arc<CutGate>,
    manifest: Mutex<Manifest>,
    /// One upkeep step at a time.
    upkeep: Mutex<()>,
    /// Files out of the manifest, deleted once their grace ends.
    graveyard: Mutex<Vec<(Instant, PathBuf)>>,
    last_seal: Mutex<Instant>,
    counters: Counters,
}

impl Store {
    /// How long a file stays on disk after leaving the manifest: longer
    /// than a query may run.
    pub const GRACE: Duration = Duration::from_secs(120);

    /// Opens (creating) the store under `data_dir`.
    pub fn open(
        data_dir: &Path,
        config: StorageConfig,
        retention: RetentionConfig,
        wal_config: WalConfig,
        specs: Vec<TableSpec>,
    ) -> Result<Opened, SealError> {
        // Absolute, because queries read the files by URL: a relative
        // `--data-dir` would name files no object store finds.
        let data_dir = std::path::absolute(data_dir).map_err(io_error(data_dir))?;
        let data_dir = data_dir.as_path();
        let segments_dir = data_dir.join("segments");
        std::fs::create_dir_all(&segments_dir).map_err(io_error(&segments_dir))?;
        let manifest = Manifest::load(&segments_dir)?;
        let tables: Vec<Arc<Table>> = specs
            .into_iter()
            .map(|spec| {
                let dir = segments_dir.join(&spec.name);
                std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                let table = Table::named(&spec.name, spec.schema, &spec.time_column, spec.layout);
                let files = manifest
                    .tables
                    .get(&spec.name)
                    .into_iter()
                    .flatten()
                    .map(|f| SealedFile {
                        path: segments_dir.join(manifest::file_name(&spec.name, f.id)),
                        ..f.clone()
                    })
                    .collect();
                table.load_sealed(files);
                Ok(Arc::new(table))
            })
            .collect::<Result<_, SealError>>()?;
        remove_unreferenced(&segments_dir, &manifest)?;
        let state = match &manifest.state {
            Some(name) => {
                let path = segments_dir.join(name);
                Some(std::fs::read(&path).map_err(io_error(&path))?)
            }
            None => None,
        };
        let (wal, replay) = Wal::open_from(&data_dir.join("wal"), wal_config, manifest.wal_start)?;
        let sealed: u64 = manifest.tables.values().flatten().map(|f| f.rows).sum();
        if sealed > 0 {
            info!(
                rows = sealed,
                files = manifest.tables.values().map(Vec::len).sum::<usize>(),
                "sealed data found"
            );
        }
        Ok(Opened {
            store: Self {
                segments_dir,
                config,
                retention,
                tables,
                wal: Arc::new(wal),
                gate: Arc::new(CutGate::default()),
                manifest: Mutex::new(manifest),
                upkeep: Mutex::new(()),
                graveyard: Mutex::new(Vec::new()),
                last_seal: Mutex::new(Instant::now()),
                counters: Counters::default(),
            },
            replay,
            state,
        })
    }

    /// The table called `name`; panics on a name the store was not opened with.
    pub fn table(&self, name: &str) -> Arc<Table> {
        self.tables
            .iter()
            .find(|t| t.name() == name)
            .cloned()
            .unwrap_or_else(|| panic!("no table {name} in the store"))
    }

    pub fn wal(&self) -> &Arc<Wal> {
        &self.wal
    }

    pub fn gate(&self) -> &Arc<CutGate> {
        &self.gate
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// Memory the hot rows of every table hold.
    pub fn hot_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.hot_usage().0 as u64).sum()
    }

    /// Whether hot rows are big or old enough to seal.
    pub fn seal_due(&self) -> bool {
        let (bytes, oldest) = self
            .tables
            .iter()
            .map(|t| t.hot_usage())
            .fold((0usize, None), |(b, o), (tb, to)| (b + tb, o.max(to)));
        bytes as u64 >= self.config.seal_size.as_u64()
            || (oldest.is_some() && self.last_seal.lock().elapsed() >= self.config.seal_interval)
    }

    /// Seals every table's hot rows into Parquet files and moves the log's
    /// replay point past them. `None` when there was nothing to seal.
    pub fn seal(&self, state: &dyn CutState) -> Result<Option<SealReport>, SealError> {
        let _one = self.upkeep.lock();
        let started = Instant::now();
        let result = self.seal_locked(state, started);
        *self.last_seal.lock() = Instant::now();
        match &result {
            Ok(Some(report)) => {
                self.counters.seals.fetch_add(1, Ordering::Relaxed);
                info!(
                    rows = report.rows,
                    bytes = report.bytes,
                    files = report.files,
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    "sealed"
                );
            }
            Ok(None) => {}
            Err(_) => {
                self.counters.seal_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    fn seal_locked(
        &self,
        state: &dyn CutState,
        started: Instant,
    ) -> Result<Option<SealReport>, SealError> {
        let wal_start = self.manifest.lock().wal_start;
        let (cut, frozen, captured) = {
            let _held = self.gate.hold();
            let cut = self.wal.cut()?;
            let frozen = self
                .tables
                .iter()
                .map(|t| t.freeze())
                .collect::<Result<Vec<Vec<RecordBatch>>, _>>()?;
            if cut == wal_start && frozen.iter().all(Vec::is_empty) {
                return Ok(None);
            }
            (cut, frozen, state.capture().map_err(SealError::State))
        };
        let captured = captured?;
        let mut next = self.manifest.lock().clone();
        let mut written: Vec<(usize, SealedFile)> = Vec::new();
        let outcome = (|| {
            for (i, batches) in frozen.iter().enumerate() {
                if batches.iter().all(|b| b.num_rows() == 0) {
                    continue;
                }
                let file = self.write_file(&mut next, &self.tables[i], batches)?;
                written.push((i, file));
            }
            let name = format!("cut-{cut:020}.state");
            let path = self.segments_dir.join(&name);
            manifest::write_atomic(&path, &captured).map_err(|(p, e)| io_error(&p)(e))?;
            let previous = next.state.replace(name);
            next.wal_start = cut;
            next.save(&self.segments_dir)?;
            Ok::<_, SealError>(previous)
        })();
        let previous = match outcome {
            Ok(previous) => previous,
            Err(e) => {
                // The frozen rows stay in memory and in the log; the next
                // seal takes them again. What was written is not referenced.
                for (_, file) in &written {
                    let _ = std::fs::remove_file(&file.path);
                }
                return Err(e);
            }
        };
        *self.manifest.lock() = next;
        let mut report = SealReport::default();
        let mut by_table: Vec<Option<SealedFile>> = vec![None; self.tables.len()];
        for (i, file) in written {
            report.rows += file.rows;
            report.bytes += file.bytes;
            report.files += 1;
            by_table[i] = Some(file);
        }
        for (table, file) in self.tables.iter().zip(by_table) {
            table.publish_sealed(file);
        }
        if let Err(e) = self.wal.remove_before(cut) {
            warn!(error = %e, "removing sealed write-ahead log segments; they are removed on the next start");
        }
        if let Some(previous) = previous.filter(|p| Some(p) != self.manifest.lock().state.as_ref())
        {
            let _ = std::fs::remove_file(self.segments_dir.join(previous));
        }
        report.elapsed = started.elapsed();
        Ok(Some(report))
    }

    /// Writes `batches` as a new file of `table`, recorded in `manifest`.
    fn write_file(
        &self,
        manifest: &mut Manifest,
        table: &Table,
        batches: &[RecordBatch],
    ) -> Result<SealedFile, SealError> {
        let id = manifest.next_id.max(1);
        manifest.next_id = id + 1;
        let path = self
            .segments_dir
            .join(manifest::file_name(table.name(), id));
        let shape = FileShape {
            row_group_rows: self.config.row_group_rows,
            ..FileShape::default()
        };
        let written = parquet_file::write(&path, &table.schema(), batches, table.layout(), shape)?;
        let range = batches
            .iter()
            .filter_map(|b| time_range(b, table.time_column()))
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
        let file = SealedFile {
            id,
            rows: written.rows,
            bytes: written.bytes,
            mem_bytes: batches
                .iter()
                .map(|b| b.get_array_memory_size() as u64)
                .sum(),
            time_range: range,
            path,
        };
        manifest
            .tables
            .entry(table.name().to_owned())
            .or_default()
            .push(file.clone());
        Ok(file)
    }

    /// Merges one group of small sealed files per table into one sorted
    /// file. Returns how many files were merged away.
    pub fn compact(&self) -> Result<usize, SealError> {
        let _one = self.upkeep.lock();
        let mut merged = 0;
        for table in &self.tables {
            let files = table.sealed();
            let Some(group) = compaction_group(&files, &self.config) else {
                continue;
            };
            let started = Instant::now();
            let mut batches = Vec::new();
            for file in &group {
                batches.extend(parquet_file::read(&file.path, None)?);
            }
            let mut next = self.manifest.lock().clone();
            let removed: Vec<u64> = group.iter().map(|f| f.id).collect();
            let new = self.write_file(&mut next, table, &batches)?;
            drop(batches);
            if let Some(list) = next.tables.get_mut(table.name()) {
                list.retain(|f| !removed.contains(&f.id));
                list.sort_by_key(|f| f.id);
            }
            if let Err(e) = next.save(&self.segments_dir) {
                let _ = std::fs::remove_file(&new.path);
                return Err(e.into());
            }
            *self.manifest.lock() = next;
            debug!(
                table = table.name(),
                files = group.len(),
                rows = new.rows,
                bytes = new.bytes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "compacted"
            );
            table.replace_sealed(&removed, vec![new]);
            self.bury(group.iter().map(|f| f.path.clone()));
            merged += group.len();
            self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Ok(merged)
    }

    /// Deletes sealed files past `retention.max_age` (by their newest row,
    /// against `now_ns`) and, oldest first, past `retention.max_disk`.
    pub fn enforce_retention(&self, now_ns: i64) -> Result<RetentionReport, SealError> {
        let _one = self.upkeep.lock();
        let cutoff = now_ns
            .saturating_sub(i64::try_from(self.retention.max_age.as_nanos()).unwrap_or(i64::MAX));
        let mut doomed: BTreeMap<String, Vec<SealedFile>> = BTreeMap::new();
        let mut report = RetentionReport::default();
        let mut alive: Vec<(String, SealedFile)> = Vec::new();
        for table in &self.tables {
            for file in table.sealed() {
                let newest = file.time_range.map_or(i64::MIN, |(_, hi)| hi);
                if newest < cutoff {
                    report.age_files += 1;
                    report.age_rows += file.rows;
                    doomed
                        .entry(table.name().to_owned())
                        .or_default()
                        .push(file);
                } else {
                    alive.push((table.name().to_owned(), file));
                }
            }
        }
        if let Some(max) = self.retention.max_disk {
            let mut total: u64 = alive.iter().map(|(_, f)| f.bytes).sum();
            alive.sort_by_key(|(_, f)| (f.time_range.map_or(i64::MIN, |(_, hi)| hi), f.id));
            for (table, file) in alive {
                if total <= max.as_u64() {
                    break;
                }
                total -= file.bytes;
                report.disk_files += 1;
                report.disk_rows += file.rows;
                doomed.entry(table).or_default().push(file);
            }
        }
        if doomed.is_empty() {
            return Ok(report);
        }
        let mut next = self.manifest.lock().clone();
        for (table, files) in &doomed {
            if let Some(list) = next.tables.get_mut(table) {
                list.retain(|f| !files.iter().any(|d| d.id == f.id));
            }
        }
        next.save(&self.segments_dir)?;
        *self.manifest.lock() = next;
        for table in &self.tables {
            if let Some(files) = doomed.get(table.name()) {
                let ids: Vec<u64> = files.iter().map(|f| f.id).collect();
                table.replace_sealed(&ids, Vec::new());
                self.bury(files.iter().map(|f| f.path.clone()));
            }
        }
        let c = &self.counters;
        c.deleted_age_files
            .fetch_add(report.age_files, Ordering::Relaxed);
        c.deleted_age_rows
            .fetch_add(report.age_rows, Ordering::Relaxed);
        c.deleted_disk_files
            .fetch_add(report.disk_files, Ordering::Relaxed);
        c.deleted_disk_rows
            .fetch_add(report.disk_rows, Ordering::Relaxed);
        info!(
            by_age = report.age_files,
            by_disk = report.disk_files,
            rows = report.age_rows + report.disk_rows,
            "retention deleted sealed files"
        );
        Ok(report)
    }

    fn bury(&self, paths: impl Iterator<Item = PathBuf>) {
        let now = Instant::now();
        self.graveyard.lock().extend(paths.map(|p| (now, p)));
    }

    /// Deletes files whose grace ended (all of them with `force`).
    pub fn collect_garbage(&self, force: bool) {
        let mut graveyard = self.graveyard.lock();
        graveyard.retain(|(buried, path)| {
            if !force && buried.elapsed() < Self::GRACE {
                return true;
            }
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                warn!(path = %path.display(), error = %e, "deleting a file out of the store");
            }
            false
        });
    }

    /// Sizes and counters, for `/metrics`.
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            tables: self
                .tables
                .iter()
                .map(|t| {
                    let snapshot = t.snapshot();
                    TableStats {
                        name: t.name().to_owned(),
                        hot_rows: snapshot.hot_rows() as u64,
                        hot_bytes: snapshot
                            .segments
                            .iter()
                            .map(|s| s.batch.get_array_memory_size() as u64)
                            .sum(),
                        sealed_files: snapshot.sealed.len() as u64,
                        sealed_rows: snapshot.sealed.iter().map(|f| f.rows).sum(),
                        sealed_bytes: snapshot.sealed.iter().map(|f| f.bytes).sum(),
                    }
                })
                .collect(),
            wal_bytes: self.wal.disk_bytes(),
            seals: c.seals.load(Ordering::Relaxed),
            seal_failures: c.seal_failures.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            deleted_age_files: c.deleted_age_files.load(Ordering::Relaxed),
            deleted_age_rows: c.deleted_age_rows.load(Ordering::Relaxed),
            deleted_disk_files: c.deleted_disk_files.load(Ordering::Relaxed),
            deleted_disk_rows: c.deleted_disk_rows.load(Ordering::Relaxed),
        }
    }
}

/// The oldest run of small files worth merging: at least
/// `compact_min_files` of them, at most `seal_size` of memory in all (so a
/// compaction never holds more than a seal does).
fn compaction_group(files: &[SealedFile], config: &StorageConfig) -> Option<Vec<SealedFile>> {
    let limit = config.seal_size.as_u64();
    let mut group: Vec<SealedFile> = Vec::new();
    let mut held = 0;
    for file in files.iter().filter(|f| f.mem_bytes < limit / 2) {
        if held + file.mem_bytes > limit {
            if group.len() >= config.compact_min_files.max(2) {
                break;
            }
            group.clear();
            held = 0;
        }
        held += file.mem_bytes;
        group.push(file.clone());
    }
    (group.len() >= config.compact_min_files.max(2)).then_some(group)
}

/// Deletes what the segments directory holds beyond the manifest: files of
/// a seal or compaction that did not commit, temporary files, and files a
/// committed step removed before they were deleted.
fn remove_unreferenced(dir: &Path, manifest: &Manifest) -> Result<(), SealError> {
    let keep: std::collections::HashSet<PathBuf> = manifest
        .referenced()
        .into_iter()
        .map(|name| dir.join(name))
        .chain([dir.join(manifest::NAME)])
        .collect();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).map_err(io_error(&at))? {
            let path = entry.map_err(io_error(&at))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if !keep.contains(&path) {
                debug!(path = %path.display(), "removing a file no manifest refers to");
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
