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
//! flight, starts a new log segment, freezes the ingest tables' hot rows
//! and queues a cut for the follower (correlation), which freezes its own
//! tables and captures its state when it reaches it, while ingest goes on
//! (see [`crate::write`]). The frozen rows then go to Parquet and the
//! manifest moves the replay point to the new segment. Rows of the log
//! before the cut are in the files; rows after it are replayed into a state
//! exactly as it was at the cut, so a restart stores and stitches every
//! acknowledged span once.
//!
//! # Durability of a seal
//! Each new file is synced, renamed into place and its directory synced
//! before the manifest names it; the manifest is replaced the same way;
//! only then are the log segments it covers deleted. A power loss at any
//! point leaves either the old manifest with the old log, or the new one
//! with every file it names.
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
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use bytesize::ByteSize;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use seam_model::tables::{Source, TableDef};

use crate::manifest::{self, Manifest, ManifestError};
use crate::metrics::StoreMetrics;
use crate::parquet_file::{self, Codec, FileError, FileShape};
use crate::table::{Layout, SealedFile, StoreError, Table, time_range};
use crate::wal::{Replay, Wal, WalConfig, WalError};
use crate::write::{CutQueue, Follower, Settle, Writer};

/// The `storage:` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Seal when the hot rows of the tables hold this much memory.
    pub seal_size: ByteSize,
    /// Seal at least this often: bounds the log to replay after a crash.
    #[serde(with = "humantime_serde")]
    pub seal_interval: Duration,
    /// Rows per Parquet row group of the tables sorted by the key they
    /// are looked up by (spans by trace). A lookup reads only the pages
    /// that hold its keys, but sets up every column of each row group it
    /// reads (a reader, a zstd context) and finds row groups by their
    /// bloom filters: a flow's traces, sealed together, are one row group
    /// to set up when row groups are large. Tables looked up by a key
    /// they are not sorted by keep at most
    /// [`UNSORTED_KEYS_ROW_GROUP_ROWS`].
    pub row_group_rows: usize,
    /// Sealed files holding less than half of `seal_size` are merged,
    /// oldest first, up to `seal_size` at a time, once this many wait.
    pub compact_min_files: usize,
    /// How often compaction and retention run.
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
    /// How sealed files are compressed (CPU and bytes a span of each
    /// choice are in BENCHMARKS.md).
    pub compression: Codec,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            seal_size: ByteSize::mib(256),
            seal_interval: Duration::from_secs(60),
            row_group_rows: 1024 * 1024,
            compact_min_files: 4,
            housekeeping_interval: Duration::from_secs(10),
            compression: Codec::default(),
        }
    }
}

/// Largest row group of a table looked up by a key it is not sorted by
/// (trace summaries, sorted by start; boundaries by producer): such a
/// lookup decodes the key column of every row group its bloom filter
/// admits, whole, so its cost grows with the row group.
pub const UNSORTED_KEYS_ROW_GROUP_ROWS: usize = 128 * 1024;

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

/// Why opening, sealing or upkeep failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("writing the state kept with the seal: {0}")]
    StateFile(#[from] manifest::AtomicWriteError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("capturing the state to keep with the seal: {0}")]
    State(String),
    #[error("finishing the rows to seal: {0}")]
    Rows(#[from] StoreError),
    #[error("the correlation stage has stopped; nothing can be sealed")]
    FollowerStopped,
    /// Rows of the table are lost from memory and kept only by the log: a
    /// seal would let the log go. The server must restart and replay it.
    #[error(
        "rows of the {0} table are lost from memory; a restart replays them from the log, so nothing is sealed until then"
    )]
    Poisoned(String),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> SealError + '_ {
    move |source| SealError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Holds ingest at a cut. Every step that logs and stores rows (or
/// changes the captured state) runs inside [`CutGate::enter`]; a seal
/// takes the gate exclusively for the instant of the cut.
#[derive(Default)]
pub struct CutGate(RwLock<()>);

impl CutGate {
    pub(crate) fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.0.read()
    }

    fn hold(&self) -> RwLockWriteGuard<'_, ()> {
        self.0.write()
    }
}

/// What opening found: the log to replay and the state to start it from.
pub struct Opened {
    pub store: Arc<Store>,
    /// Records logged after the last seal, oldest first.
    pub replay: Replay,
    /// The state captured at the last seal.
    pub state: Option<Vec<u8>>,
}

/// Sizes of one table, read from what the table keeps (nothing is
/// finished, snapshotted or read from disk to get them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// How long ingest was held at the cut.
    pub pause: Duration,
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
    /// Who writes each table, by index.
    sources: Vec<Source>,
    wal: Arc<Wal>,
    gate: CutGate,
    manifest: Mutex<Manifest>,
    /// The follower's queue, once a writer with a follower exists.
    follower: Mutex<Option<Arc<dyn CutQueue>>>,
    settle: Arc<Settle>,
    /// One upkeep step at a time.
    upkeep: Mutex<()>,
    /// Files out of the manifest, deleted once their grace ends.
    graveyard: Mutex<Vec<(Instant, PathBuf)>>,
    last_seal: Mutex<Instant>,
    metrics: StoreMetrics,
}

impl Store {
    /// How long a file stays on disk after leaving the manifest: longer
    /// than a query may run.
    pub const GRACE: Duration = Duration::from_secs(120);

    /// Opens (creating) the store under `data_dir`, with `tables`.
    pub fn open(
        data_dir: &Path,
        config: StorageConfig,
        retention: RetentionConfig,
        wal_config: WalConfig,
        tables: Vec<TableDef>,
    ) -> Result<Opened, SealError> {
        // Absolute, because queries read the files by URL: a relative
        // `--data-dir` would name files no object store finds.
        let data_dir = std::path::absolute(data_dir).map_err(io_error(data_dir))?;
        let data_dir = data_dir.as_path();
        let segments_dir = data_dir.join("segments");
        std::fs::create_dir_all(&segments_dir).map_err(io_error(&segments_dir))?;
        let manifest = Manifest::load(&segments_dir)?;
        let sources = tables.iter().map(|t| t.source).collect();
        let tables: Vec<Arc<Table>> = tables
            .iter()
            .map(|def| {
                let dir = segments_dir.join(def.name);
                std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
                let table = Table::named(
                    def.name,
                    def.schema.clone(),
                    def.time_column,
                    Layout::from(def),
                )
                .with_hot_schema(def.hot());
                let files = manifest
                    .tables
                    .get(def.name)
                    .into_iter()
                    .flatten()
                    .map(|f| SealedFile {
                        path: segments_dir.join(manifest::file_name(def.name, f.id)),
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
            store: Arc::new(Self {
                segments_dir,
                config,
                retention,
                tables,
                sources,
                wal: Arc::new(wal),
                gate: CutGate::default(),
                manifest: Mutex::new(manifest),
                follower: Mutex::new(None),
                settle: Arc::new(Settle::default()),
                upkeep: Mutex::new(()),
                graveyard: Mutex::new(Vec::new()),
                last_seal: Mutex::new(Instant::now()),
                metrics: StoreMetrics::default(),
            }),
            replay,
            state,
        })
    }

    /// Opens a store under `data_dir` with every setting at its default:
    /// for tests, fuzzing and examples.
    pub fn open_default(data_dir: &Path, tables: Vec<TableDef>) -> Result<Opened, SealError> {
        Self::open(
            data_dir,
            StorageConfig::default(),
            RetentionConfig::default(),
            WalConfig::default(),
            tables,
        )
    }

    /// The writer of the ingest table `table`, with no follower: notes
    /// are dropped and seals capture no state.
    pub fn writer<N: Send + 'static>(self: &Arc<Self>, table: &str) -> Writer<N> {
        Writer::unfollowed(self.clone(), self.table(table))
    }

    /// The writer of the ingest table `table`, whose notes `follower`
    /// takes in on a thread of its own; the derived tables are its to
    /// write, and its state is captured with every seal. One per store.
    pub fn follow<F: Follower>(
        self: &Arc<Self>,
        table: &str,
        follower: Arc<F>,
    ) -> Result<Writer<F::Note>, SealError> {
        let mut slot = self.follower.lock();
        assert!(slot.is_none(), "a store has one follower");
        let derived = self
            .tables
            .iter()
            .enumerate()
            .filter(|(i, _)| self.sources[*i] == Source::Derived)
            .map(|(i, t)| (i, t.clone()))
            .collect();
        let (writer, cuts) = Writer::followed(
            self.clone(),
            self.table(table),
            follower,
            derived,
            self.settle.clone(),
        )
        .map_err(|e| SealError::Io {
            path: "the correlation thread".into(),
            source: e,
        })?;
        *slot = Some(cuts);
        Ok(writer)
    }

    /// What queries wait on to see everything acknowledged before them.
    pub fn settle(&self) -> Arc<Settle> {
        self.settle.clone()
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

    pub(crate) fn gate(&self) -> &CutGate {
        &self.gate
    }

    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
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
    pub fn seal(&self) -> Result<Option<SealReport>, SealError> {
        let _one = self.upkeep.lock();
        let started = Instant::now();
        let result = self.seal_locked(started);
        *self.last_seal.lock() = Instant::now();
        match &result {
            Ok(Some(report)) => {
                self.metrics.seals.inc();
                self.metrics
                    .seal_duration
                    .observe(report.elapsed.as_secs_f64());
                info!(
                    rows = report.rows,
                    bytes = report.bytes,
                    files = report.files,
                    pause_us = report.pause.as_micros() as u64,
                    elapsed_ms = report.elapsed.as_millis() as u64,
                    "sealed"
                );
            }
            Ok(None) => {}
            Err(_) => {
                self.metrics.seal_failures.inc();
            }
        }
        result
    }

    fn seal_locked(&self, started: Instant) -> Result<Option<SealReport>, SealError> {
        let wal_start = self.manifest.lock().wal_start;
        let follower = self.follower.lock().clone();
        if let Some(table) = self.tables.iter().find(|t| t.poisoned()) {
            return Err(SealError::Poisoned(table.name().to_owned()));
        }
        let derived_idle = || {
            self.tables.iter().zip(&self.sources).all(|(t, s)| {
                *s == Source::Ingest || (t.hot_usage().1.is_none() && !t.has_frozen())
            })
        };
        let (cut, mut frozen, captured, pause) = {
            let held = Instant::now();
            let _held = self.gate.hold();
            let cut = self.wal.cut()?;
            let mut frozen: Vec<(usize, Vec<RecordBatch>)> = Vec::new();
            for (i, table) in self.tables.iter().enumerate() {
                if self.sources[i] == Source::Ingest || follower.is_none() {
                    frozen.push((i, table.freeze()?));
                }
            }
            let nothing = frozen.iter().all(|(_, b)| b.is_empty());
            if cut == wal_start && nothing && derived_idle() {
                return Ok(None);
            }
            let captured = match &follower {
                Some(queue) => Some(queue.cut().map_err(|_| SealError::FollowerStopped)?),
                None => None,
            };
            (cut, frozen, captured, held.elapsed())
        };
        self.metrics.seal_pause.observe(pause.as_secs_f64());
        let state = match captured {
            Some(reply) => {
                let captured = reply
                    .recv()
                    .map_err(|_| SealError::FollowerStopped)?
                    .map_err(SealError::State)?;
                frozen.extend(captured.frozen);
                Some(captured.state)
            }
            None => None,
        };
        let mut next = self.manifest.lock().clone();
        let mut written: Vec<(usize, SealedFile)> = Vec::new();
        let outcome = (|| {
            for (i, batches) in &frozen {
                if batches.iter().all(|b| b.num_rows() == 0) {
                    continue;
                }
                let file = self.write_file(&mut next, &self.tables[*i], batches)?;
                written.push((*i, file));
            }
            let previous = match &state {
                Some(state) => {
                    // A name of its own: a seal at the same cut (orphans
                    // found while no export came) must not overwrite the
                    // state the committed manifest names.
                    let id = next.next_id.max(1);
                    next.next_id = id + 1;
                    let name = format!("cut-{cut:020}-{id:020}.state");
                    let path = self.segments_dir.join(&name);
                    manifest::write_atomic(&path, state)?;
                    next.state.replace(name)
                }
                None => None,
            };
            next.wal_start = cut;
            Ok::<_, SealError>((previous, commit(&next, &self.segments_dir)?))
        })();
        let (previous, durable) = match outcome {
            Ok(committed) => committed,
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
        let mut report = SealReport {
            pause,
            ..SealReport::default()
        };
        let mut by_table: Vec<Option<SealedFile>> = vec![None; self.tables.len()];
        for (i, file) in written {
            report.rows += file.rows;
            report.bytes += file.bytes;
            report.files += 1;
            by_table[i] = Some(file);
        }
        for (i, _) in &frozen {
            self.tables[*i].publish_sealed(by_table[*i].take());
        }
        // The new manifest may not survive a power loss, and the old one
        // would need the old log and state: keep them (the next start
        // removes what no manifest names).
        durable?;
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

    /// Writes `batches` as a new file of `table`, recorded in `manifest`:
    /// synced and in place, its directory synced, before the caller
    /// commits the manifest.
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
        let layout = table.layout();
        let sorted_by_keys = (layout.bloom.iter()).all(|k| layout.sort_by.first() == Some(k));
        let shape = FileShape {
            row_group_rows: if sorted_by_keys {
                self.config.row_group_rows
            } else {
                self.config.row_group_rows.min(UNSORTED_KEYS_ROW_GROUP_ROWS)
            },
            codec: self.config.compression,
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
    /// file. Returns how many files were merged away. A failure leaves the
    /// files and the manifest as they were.
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
                batches.extend(parquet_file::read_as(&file.path, &table.schema())?);
            }
            let mut next = self.manifest.lock().clone();
            let removed: Vec<u64> = group.iter().map(|f| f.id).collect();
            let new = self.write_file(&mut next, table, &batches)?;
            drop(batches);
            if let Some(list) = next.tables.get_mut(table.name()) {
                list.retain(|f| !removed.contains(&f.id));
                list.sort_by_key(|f| f.id);
            }
            let durable = match commit(&next, &self.segments_dir) {
                Ok(durable) => durable,
                Err(e) => {
                    let _ = std::fs::remove_file(&new.path);
                    return Err(e);
                }
            };
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
            // The merged files stay on disk while the manifest that drops
            // them may not survive a power loss (the next start removes
            // them).
            durable?;
            self.bury(group.iter().map(|f| f.path.clone()));
            merged += group.len();
            self.metrics.compactions.inc();
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
        let durable = commit(&next, &self.segments_dir)?;
        *self.manifest.lock() = next;
        for table in &self.tables {
            if let Some(files) = doomed.get(table.name()) {
                let ids: Vec<u64> = files.iter().map(|f| f.id).collect();
                table.replace_sealed(&ids, Vec::new());
                if durable.is_ok() {
                    self.bury(files.iter().map(|f| f.path.clone()));
                }
            }
        }
        durable?;
        self.metrics.retention_deleted(&report);
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

    /// Sizes per table, for `/metrics`: read from counters the tables keep.
    pub fn table_stats(&self) -> Vec<TableStats> {
        self.tables.iter().map(|t| t.stats()).collect()
    }
}

/// Saves `manifest`: `Err` when it did not take effect (the caller undoes
/// its step); `Ok(Err)` when it did but may not survive a power loss (the
/// caller keeps its step, deletes nothing the previous manifest names, and
/// reports the error).
fn commit(manifest: &Manifest, dir: &Path) -> Result<Result<(), SealError>, SealError> {
    match manifest.save(dir) {
        Ok(()) => Ok(Ok(())),
        Err(e @ ManifestError::NotDurable { .. }) => {
            tracing::error!(error = %e, "the new manifest is in place but may not be durable; keeping what the previous one names");
            Ok(Err(e.into()))
        }
        Err(e) => Err(e.into()),
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
