//! The write-ahead log: every accepted export is appended here, and made
//! durable, before it is acknowledged; on start the log is replayed.
//!
//! ```text
//!  <data_dir>/wal/00000000000000000001.wal, …00000002.wal, …   (a new segment past `segment_size`)
//!  record: | length u32 LE | crc32 of payload u32 LE | payload (length bytes) |
//! ```
//!
//! # Invariants
//! - `append` returns `Ok` only after the record is written, and, with
//!   [`SyncPolicy::EveryBatch`], synced to disk. Concurrent appends share
//!   one sync (group commit): a sync covers every record written before it.
//! - Nothing is appended after garbage. A write that fails part-way leaves
//!   a partial record; the segment is cut back to its last complete record
//!   (or, if even that fails, the log moves to a new segment) before the
//!   next record is written.
//! - A failed sync is never retried as if it had succeeded. After an
//!   `fsync` error Linux may have dropped the dirty pages and cleared the
//!   error, so a second `fsync` would report success for data that is
//!   gone. Every record of the segment not covered by an earlier good sync
//!   fails (with `EveryBatch` its export is refused and its bytes are cut
//!   off where the file allows), and the log moves to a new segment.
//! - A record is replayed only if its length and checksum hold. A torn or
//!   corrupt record ends its segment: it and everything after it in that
//!   segment are skipped with a warning. By the rules above that can only
//!   be bytes no export was acknowledged for, unless the disk itself
//!   corrupted them.
//! - Replay reads one record at a time, in the order records were
//!   appended; a reopened log appends to a new segment, so replay never
//!   races the writer.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytesize::ByteSize;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::manifest::sync_dir;

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// Sync before acknowledging (concurrent exports share a sync): an
    /// acknowledged span survives a power loss.
    EveryBatch,
    /// Sync in the background every `sync_interval`: an acknowledged span
    /// survives the process being killed (the kernel holds the write), but
    /// a power loss or kernel crash can lose the last interval.
    Interval,
}

/// The `wal:` section of the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// `every_batch` (default) or `interval`; see [`SyncPolicy`].
    pub sync: SyncPolicy,
    /// How often the `interval` policy syncs.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Size at which a new segment file is started.
    pub segment_size: ByteSize,
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::EveryBatch,
            sync_interval: Duration::from_millis(100),
            segment_size: ByteSize::mib(64),
        }
    }
}

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("write-ahead log {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("a record of {0} bytes is larger than the log accepts (4 GiB)")]
    TooLarge(usize),
    /// The sync that was to cover the record failed; the record may not be
    /// on disk and must not be acknowledged.
    #[error("write-ahead log {path}: syncing to disk failed: {source}")]
    SyncFailed { path: String, source: io::Error },
    /// An earlier sync failed for this record (another append's sync
    /// covered it).
    #[error("write-ahead log: syncing to disk failed for this record")]
    SyncLost,
}

const HEADER: usize = 8;
const EXTENSION: &str = "wal";

fn io_err(path: &Path) -> impl Fn(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:020}.{EXTENSION}"))
}

/// Segment numbers in `dir`, ascending.
fn segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        if let Some(n) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
        {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// The file operations the log makes on a segment. Tests put faults
/// between the log and the disk through it.
pub(crate) trait SegmentFile: Send + Sync {
    /// Writes every byte of `parts`, in order, as one record.
    fn write_all(&self, parts: &mut [IoSlice<'_>]) -> io::Result<()>;
    fn sync_data(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

impl SegmentFile for File {
    /// One `writev` for a record's header and payload, so the payload is
    /// written from where the request arrived, not copied behind a header.
    fn write_all(&self, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
        while !parts.is_empty() {
            match (&mut &*self).write_vectored(parts) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut parts, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

/// Opens a segment for appending, creating it.
pub(crate) type Opener = dyn Fn(&Path) -> io::Result<Arc<dyn SegmentFile>> + Send + Sync;

fn open_segment(path: &Path) -> io::Result<Arc<dyn SegmentFile>> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    Ok(Arc::new(file))
}

/// The records of the segments a log was opened with, read one at a time.
pub struct Replay {
    segments: std::vec::IntoIter<PathBuf>,
    reader: Option<SegmentReader>,
    skipped_bytes: u64,
    records: u64,
}

impl Replay {
    fn new(segments: Vec<PathBuf>) -> Self {
        Self {
            segments: segments.into_iter(),
            reader: None,
            skipped_bytes: 0,
            records: 0,
        }
    }

    /// Bytes skipped so far because a record was torn or corrupt.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes
    }

    /// Records read so far.
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// Every intact record, oldest first; an `Err` when a segment cannot be
/// read at all (and then nothing more).
impl Iterator for Replay {
    type Item = Result<Vec<u8>, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.reader.is_none() {
                let path = self.segments.next()?;
                match SegmentReader::open(path) {
                    Ok(reader) => self.reader = Some(reader),
                    Err(e) => {
                        self.segments = Vec::new().into_iter();
                        return Some(Err(e));
                    }
                }
            }
            let reader = self.reader.as_mut().expect("opened above");
            match reader.next_record() {
                Ok(Some(record)) => {
                    self.records += 1;
                    return Some(Ok(record));
                }
                Ok(None) => {
                    let skipped = reader.len - reader.at;
                    if skipped > 0 {
                        warn!(
                            segment = %reader.path.display(),
                            offset = reader.at,
                            skipped_bytes = skipped,
                            "write-ahead log: torn or corrupt record; skipping the rest of the segment"
                        );
                        self.skipped_bytes += skipped;
                    }
                    self.reader = None;
                }
                Err(e) => {
                    self.reader = None;
                    self.segments = Vec::new().into_iter();
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Reads one segment record by record.
struct SegmentReader {
    path: PathBuf,
    file: BufReader<File>,
    /// Where the next record starts, and the file's length.
    at: u64,
    len: u64,
}

impl SegmentReader {
    fn open(path: PathBuf) -> Result<Self, WalError> {
        let file = File::open(&path).map_err(io_err(&path))?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        Ok(Self {
            file: BufReader::with_capacity(1 << 20, file),
            path,
            at: 0,
            len,
        })
    }

    /// The next intact record; `None` at the end of the segment or at the
    /// first torn or corrupt one.
    fn next_record(&mut self) -> Result<Option<Vec<u8>>, WalError> {
        let left = self.len - self.at;
        if left < HEADER as u64 {
            return Ok(None);
        }
        let mut header = [0u8; HEADER];
        self.file
            .read_exact(&mut header)
            .map_err(io_err(&self.path))?;
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as u64;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        // A length past the end is a torn record (or a corrupt length):
        // checked before allocating for it.
        if len > left - HEADER as u64 {
            return Ok(None);
        }
        let mut payload = vec![0u8; len as usize];
        self.file
            .read_exact(&mut payload)
            .map_err(io_err(&self.path))?;
        if crc32fast::hash(&payload) != crc {
            return Ok(None);
        }
        self.at += HEADER as u64 + len;
        Ok(Some(payload))
    }
}

/// A segment the writer left whose records may not be synced yet.
struct Retired {
    file: Arc<dyn SegmentFile>,
    base: u64,
    size: u64,
}

struct Writer {
    file: Arc<dyn SegmentFile>,
    path: PathBuf,
    number: u64,
    /// Bytes of complete records in this segment.
    size: u64,
    /// Where this segment starts in the log's positions: a byte count
    /// over all segments, in which sync progress is kept. Positions of
    /// records that failed are never reused.
    base: u64,
    /// Set when the segment must take no more records: the next append
    /// moves to a new segment first.
    broken: Option<Broken>,
    /// Earlier segments not known synced: the next sync covers them.
    retired: Vec<Retired>,
}

impl Writer {
    fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// Why a segment takes no more records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// A write failed and could not be cut back: the segment may end in
    /// garbage (its complete records are still good, and still synced).
    Garbage,
    /// A sync failed: syncing it again would prove nothing.
    SyncFailed,
}

/// The log. Appends may come from any thread.
///
/// Only [`Wal::sync_through`] syncs, one sync at a time and never while
/// holding the writer, so appends go on during a sync and the next sync
/// covers all of them, and a sync's outcome is never raced by another.
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    open: Box<Opener>,
    writer: Mutex<Writer>,
    /// One sync at a time.
    syncing: Mutex<()>,
    /// Every record ending at or before this position is on disk.
    synced: AtomicU64,
    /// The highest position a failed sync reached: new segments start
    /// past it, so positions of failed records are never reused.
    failed: AtomicU64,
    /// Every failed sync's range of positions, `(synced, end]` when it
    /// failed: a record ending in one is refused even once a later sync,
    /// of later records, has moved `synced` past it. Failures are rare;
    /// the list only grows by one per failure.
    failures: Mutex<Vec<(u64, u64)>>,
    /// Bytes the segment files hold, kept up to date for `/metrics`.
    disk_bytes: AtomicU64,
    /// Whether the last sync failed (cleared by the next good one).
    unhealthy: AtomicBool,
}

impl Wal {
    /// Opens (creating) the log in `dir`; the returned [`Replay`] reads back
    /// every intact record. New records go to a new segment.
    pub fn open(dir: &Path, config: WalConfig) -> Result<(Self, Replay), WalError> {
        Self::open_from(dir, config, 0)
    }

    /// Like [`Wal::open`], for a log whose segments before `start` are
    /// already sealed elsewhere: those are deleted, not replayed.
    pub fn open_from(
        dir: &Path,
        config: WalConfig,
        start: u64,
    ) -> Result<(Self, Replay), WalError> {
        Self::open_with(dir, config, start, Box::new(open_segment))
    }

    pub(crate) fn open_with(
        dir: &Path,
        config: WalConfig,
        start: u64,
        open: Box<Opener>,
    ) -> Result<(Self, Replay), WalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut numbers = segments(dir)?;
        for &n in numbers.iter().filter(|&&n| n < start) {
            let path = segment_path(dir, n);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        numbers.retain(|&n| n >= start);
        let mut disk_bytes = 0;
        let mut paths = Vec::with_capacity(numbers.len());
        for &n in &numbers {
            let path = segment_path(dir, n);
            disk_bytes += std::fs::metadata(&path).map_err(io_err(&path))?.len();
            paths.push(path);
        }
        // Appends go to a new segment, so that replay reads segments no
        // writer touches; an empty last segment is taken as it is.
        let number = match numbers.last() {
            Some(&last)
                if std::fs::metadata(segment_path(dir, last)).is_ok_and(|m| m.len() == 0) =>
            {
                paths.pop();
                last
            }
            Some(&last) => last + 1,
            None => start.max(1),
        };
        let path = segment_path(dir, number);
        let file = open(&path).map_err(io_err(&path))?;
        sync_dir(dir).map_err(io_err(dir))?;
        if !paths.is_empty() {
            info!(
                segments = paths.len(),
                bytes = disk_bytes,
                "write-ahead log to replay"
            );
        }
        let wal = Self {
            dir: dir.to_owned(),
            config,
            open,
            writer: Mutex::new(Writer {
                file,
                path,
                number,
                size: 0,
                base: 0,
                broken: None,
                retired: Vec::new(),
            }),
            syncing: Mutex::new(()),
            synced: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            disk_bytes: AtomicU64::new(disk_bytes),
            unhealthy: AtomicBool::new(false),
        };
        Ok((wal, Replay::new(paths)))
    }

    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Appends one record; durable per the sync policy when this returns
    /// `Ok`. On `Err` the caller refuses the export as retryable: the
    /// record is not in the log, or (where a failed sync's bytes could not
    /// be cut off) is there but was never acknowledged.
    pub fn append(&self, payload: &[u8]) -> Result<(), WalError> {
        let len = u32::try_from(payload.len()).map_err(|_| WalError::TooLarge(payload.len()))?;
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let record_len = (HEADER + payload.len()) as u64;
        let end = {
            let mut w = self.writer.lock();
            if w.broken.is_some() {
                self.rotate(&mut w)?;
            }
            if w.size > 0 && w.size + record_len > self.config.segment_size.as_u64() {
                self.rotate(&mut w)?;
            }
            let mut parts = [IoSlice::new(&header), IoSlice::new(payload)];
            if let Err(source) = w.file.write_all(&mut parts) {
                self.cut_back(&mut w);
                return Err(WalError::Io {
                    path: w.path.display().to_string(),
                    source,
                });
            }
            w.size += record_len;
            self.disk_bytes.fetch_add(record_len, Ordering::Relaxed);
            w.end()
        };
        if self.config.sync == SyncPolicy::EveryBatch {
            self.sync_through(end)?;
        }
        Ok(())
    }

    /// After a failed write: cuts the segment back to its last complete
    /// record, or, if that fails too, marks it so the next append starts
    /// a new segment.
    fn cut_back(&self, w: &mut Writer) {
        match w.file.set_len(w.size) {
            Ok(()) => warn!(
                segment = %w.path.display(),
                "write-ahead log: a write failed; cut the segment back to its last complete record"
            ),
            Err(e) => {
                error!(
                    segment = %w.path.display(),
                    error = %e,
                    "write-ahead log: a write failed and the segment could not be cut back; the next record starts a new segment"
                );
                w.broken = Some(Broken::Garbage);
            }
        }
    }

    /// Returns once every record ending at or before `end` is synced,
    /// syncing unless another append's sync already covered it.
    fn sync_through(&self, end: u64) -> Result<(), WalError> {
        // A failure is checked before success: a good sync after a failed
        // one moves `synced` past records the failure lost.
        if self.lost(end) {
            return Err(WalError::SyncLost);
        }
        if self.synced.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let _one = self.syncing.lock();
        if self.lost(end) {
            return Err(WalError::SyncLost);
        }
        if self.synced.load(Ordering::Acquire) >= end {
            return Ok(());
        }
        let (files, path, covered) = {
            let w = self.writer.lock();
            let mut files: Vec<Arc<dyn SegmentFile>> =
                w.retired.iter().map(|r| r.file.clone()).collect();
            files.push(w.file.clone());
            (files, w.path.clone(), w.end())
        };
        let outcome = files.iter().try_for_each(|f| f.sync_data());
        let mut w = self.writer.lock();
        match outcome {
            Ok(()) => {
                w.retired.retain(|r| r.base + r.size > covered);
                self.synced.fetch_max(covered, Ordering::AcqRel);
                self.unhealthy.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(source) => {
                self.sync_failed(&mut w, &source);
                Err(WalError::SyncFailed {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }

    /// Whether the record ending at `end` was covered by a failed sync.
    fn lost(&self, end: u64) -> bool {
        // Cheap while nothing ever failed: every append asks.
        self.failed.load(Ordering::Acquire) >= end
            && self
                .failures
                .lock()
                .iter()
                .any(|&(from, to)| end > from && end <= to)
    }

    /// After a failed sync: every record not synced before fails, in every
    /// segment; with `EveryBatch` (whose exports are refused) their bytes
    /// are cut off where the file allows, so a replay does not bring back
    /// what was refused; and the log moves to a new segment.
    fn sync_failed(&self, w: &mut Writer, source: &io::Error) {
        let synced = self.synced.load(Ordering::Acquire);
        self.failures.lock().push((synced, w.end()));
        self.failed.fetch_max(w.end(), Ordering::AcqRel);
        self.unhealthy.store(true, Ordering::Relaxed);
        error!(
            segment = %w.path.display(),
            error = %source,
            "write-ahead log: syncing to disk failed; the exports it covered are refused and the log moves to a new segment"
        );
        if self.config.sync == SyncPolicy::EveryBatch {
            let keep = |base: u64, size: u64| synced.saturating_sub(base).min(size);
            for r in &w.retired {
                let kept = keep(r.base, r.size);
                if r.file.set_len(kept).is_ok() {
                    self.disk_bytes.fetch_sub(r.size - kept, Ordering::Relaxed);
                }
            }
            let kept = keep(w.base, w.size);
            if w.file.set_len(kept).is_ok() {
                self.disk_bytes.fetch_sub(w.size - kept, Ordering::Relaxed);
            }
        }
        w.retired.clear();
        w.broken = Some(Broken::SyncFailed);
        if let Err(e) = self.rotate(w) {
            error!(error = %e, "write-ahead log: starting a new segment after a failed sync; the next append tries again");
        }
    }

    /// Syncs everything written so far; the `interval` policy's tick.
    pub fn sync(&self) -> Result<(), WalError> {
        let end = self.writer.lock().end();
        self.sync_through(end)
    }

    /// Whether the last sync failed: the log is not taking records safely.
    pub fn unhealthy(&self) -> bool {
        self.unhealthy.load(Ordering::Relaxed)
    }

    /// Starts a new segment unless the current one is empty, and returns
    /// its number: every record appended before this call is in a segment
    /// numbered below it, every record appended after in it or later.
    pub fn cut(&self) -> Result<u64, WalError> {
        let mut w = self.writer.lock();
        if w.size > 0 || w.broken.is_some() {
            self.rotate(&mut w)?;
        }
        Ok(w.number)
    }

    /// Deletes the segments numbered below `number`, whose records are
    /// kept elsewhere now.
    pub fn remove_before(&self, number: u64) -> Result<(), WalError> {
        for n in segments(&self.dir)?.into_iter().filter(|&n| n < number) {
            let path = segment_path(&self.dir, n);
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            let _ = self
                .disk_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(len))
                });
        }
        Ok(())
    }

    /// Bytes the log's segment files hold now (a counter: no file is read).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    /// Moves to a new segment; the old one's records are synced by the
    /// next sync (unless its sync failed, when there is nothing to prove).
    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        let number = w.number + 1;
        let path = segment_path(&self.dir, number);
        let file = (self.open)(&path).map_err(io_err(&path))?;
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        let base = w.end().max(self.failed.load(Ordering::Acquire));
        let old = std::mem::replace(
            w,
            Writer {
                file,
                path,
                number,
                size: 0,
                base,
                broken: None,
                retired: Vec::new(),
            },
        );
        w.retired = old.retired;
        let unsynced = self.synced.load(Ordering::Acquire) < old.base + old.size;
        if old.size > 0 && unsynced && old.broken != Some(Broken::SyncFailed) {
            w.retired.push(Retired {
                file: old.file,
                base: old.base,
                size: old.size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
