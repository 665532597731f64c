//! The write-ahead log: every accepted export is appended here, and made
//! durable, before it is acknowledged; on start the log is replayed.
//!
//! ```text
//!  <data_dir>/wal/00000000000000000001.wal, …00000002.wal, …   (a new segment past `segment_size`)
//!  record: | length u32 LE | crc32 of payload u32 LE | payload (length bytes) |
//! ```
//!
//! # Invariants
//! - `append` returns only after the record is written, and, with
//!   [`SyncPolicy::EveryBatch`], synced to disk. Concurrent appends share
//!   one sync (group commit): a sync covers every record written before it.
//! - A record is replayed only if its length and checksum hold. A torn or
//!   corrupt record ends its segment: it and everything after it in that
//!   segment are skipped with a warning, and the last segment is cut back
//!   to its last good record so new records never follow garbage.
//! - Replay returns records in the order they were appended.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytesize::ByteSize;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

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

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every intact record, oldest first.
    pub records: Vec<Vec<u8>>,
    /// Bytes skipped because a record was torn or corrupt.
    pub skipped_bytes: u64,
}

/// Reads the good records of one segment; returns them with the offset
/// where good data ends.
fn read_segment(path: &Path) -> Result<(Vec<Vec<u8>>, u64, u64), WalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(io_err(path))?;
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(header) = bytes.get(at..at + HEADER) else {
            break;
        };
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        at += HEADER + len;
    }
    let good = at as u64;
    Ok((records, good, bytes.len() as u64 - good))
}

struct Writer {
    file: File,
    path: PathBuf,
    number: u64,
    size: u64,
}

/// The log. Appends may come from any thread.
pub struct Wal {
    dir: PathBuf,
    config: WalConfig,
    writer: Mutex<Writer>,
    /// Bytes written in total (all segments) and bytes known synced.
    written: AtomicU64,
    synced: Mutex<u64>,
}

impl Wal {
    /// Opens (creating) the log in `dir` and reads back every intact
    /// record. A torn tail is logged, skipped and cut off.
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
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut numbers = segments(dir)?;
        for &n in numbers.iter().filter(|&&n| n < start) {
            let path = segment_path(dir, n);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        numbers.retain(|&n| n >= start);
        let mut replay = Replay::default();
        for &n in &numbers {
            let path = segment_path(dir, n);
            let (records, good, skipped) = read_segment(&path)?;
            if skipped > 0 {
                warn!(
                    segment = %path.display(),
                    offset = good,
                    skipped_bytes = skipped,
                    "write-ahead log: torn or corrupt record; skipping the rest of the segment"
                );
                replay.skipped_bytes += skipped;
                if Some(&n) == numbers.last() {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    file.set_len(good).map_err(io_err(&path))?;
                    file.sync_all().map_err(io_err(&path))?;
                }
            }
            replay.records.extend(records);
        }
        let number = numbers.last().copied().unwrap_or(start.max(1));
        let path = segment_path(dir, number);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let size = file.seek(SeekFrom::End(0)).map_err(io_err(&path))?;
        if !replay.records.is_empty() {
            info!(
                records = replay.records.len(),
                segments = numbers.len(),
                "write-ahead log read"
            );
        }
        let wal = Self {
            dir: dir.to_owned(),
            config,
            writer: Mutex::new(Writer {
                file,
                path,
                number,
                size,
            }),
            written: AtomicU64::new(0),
            synced: Mutex::new(0),
        };
        Ok((wal, replay))
    }

    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Appends one record; durable per the sync policy when this returns.
    pub fn append(&self, payload: &[u8]) -> Result<(), WalError> {
        let len = u32::try_from(payload.len()).map_err(|_| WalError::TooLarge(payload.len()))?;
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&len.to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        record.extend_from_slice(payload);
        let end = {
            let mut w = self.writer.lock();
            if w.size > 0 && w.size + record.len() as u64 > self.config.segment_size.as_u64() {
                self.rotate(&mut w)?;
            }
            w.file.write_all(&record).map_err(io_err(&w.path))?;
            w.size += record.len() as u64;
            self.written
                .fetch_add(record.len() as u64, Ordering::AcqRel)
                + record.len() as u64
        };
        if self.config.sync == SyncPolicy::EveryBatch {
            self.sync_through(end)?;
        }
        Ok(())
    }

    /// Syncs unless another append's sync already covered `end`.
    fn sync_through(&self, end: u64) -> Result<(), WalError> {
        let mut synced = self.synced.lock();
        if *synced >= end {
            return Ok(());
        }
        // Everything written so far is covered by this sync.
        let covered = self.written.load(Ordering::Acquire);
        let file = {
            let w = self.writer.lock();
            w.file.try_clone().map_err(io_err(&w.path))?
        };
        file.sync_data().map_err(io_err(&self.dir))?;
        *synced = covered;
        Ok(())
    }

    /// Syncs everything written so far; the `interval` policy's tick.
    pub fn sync(&self) -> Result<(), WalError> {
        self.sync_through(self.written.load(Ordering::Acquire))
    }

    /// Starts a new segment unless the current one is empty, and returns
    /// its number: every record appended before this call is in a segment
    /// numbered below it, every record appended after in it or later.
    pub fn cut(&self) -> Result<u64, WalError> {
        let mut w = self.writer.lock();
        if w.size > 0 {
            self.rotate(&mut w)?;
        }
        Ok(w.number)
    }

    /// Deletes the segments numbered below `number`, whose records are
    /// kept elsewhere now.
    pub fn remove_before(&self, number: u64) -> Result<(), WalError> {
        for n in segments(&self.dir)?.into_iter().filter(|&n| n < number) {
            let path = segment_path(&self.dir, n);
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Bytes the log's segment files hold now.
    pub fn disk_bytes(&self) -> u64 {
        segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| std::fs::metadata(segment_path(&self.dir, n)).ok())
            .map(|m| m.len())
            .sum()
    }

    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        // The old segment is complete: make it durable before moving on.
        w.file.sync_data().map_err(io_err(&w.path))?;
        let number = w.number + 1;
        let path = segment_path(&self.dir, number);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        *w = Writer {
            file,
            path,
            number,
            size: 0,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WalConfig {
        WalConfig {
            segment_size: ByteSize::b(64),
            ..WalConfig::default()
        }
    }

    #[test]
    fn records_come_back_in_order_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, replay) = Wal::open(dir.path(), config()).unwrap();
        assert!(replay.records.is_empty());
        for i in 0..10u8 {
            wal.append(&[i; 20]).unwrap();
        }
        drop(wal);
        assert!(
            segments(dir.path()).unwrap().len() > 1,
            "rotated past 64 bytes"
        );
        let (wal, replay) = Wal::open(dir.path(), config()).unwrap();
        assert_eq!(replay.records.len(), 10);
        assert_eq!(replay.skipped_bytes, 0);
        wal.append(b"eleven").unwrap();
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), config()).unwrap();
        let firsts: Vec<u8> = replay.records[..10].iter().map(|r| r[0]).collect();
        assert_eq!(firsts, (0..10).collect::<Vec<_>>());
        assert_eq!(replay.records[10], b"eleven");
    }

    #[test]
    fn a_torn_tail_is_skipped_cut_off_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let big = WalConfig::default();
        let (wal, _) = Wal::open(dir.path(), big.clone()).unwrap();
        wal.append(b"first").unwrap();
        wal.append(b"second").unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 1);
        // A crash in the middle of a write: a header and half a payload.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&7u32.to_le_bytes()).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        let (wal, replay) = Wal::open(dir.path(), big.clone()).unwrap();
        assert_eq!(replay.records, vec![b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(replay.skipped_bytes, 12);
        wal.append(b"third").unwrap();
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), big).unwrap();
        assert_eq!(
            replay.records.len(),
            3,
            "the cut-off tail does not hide new records"
        );
        assert_eq!(replay.skipped_bytes, 0);
    }

    #[test]
    fn a_corrupt_record_ends_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        wal.append(b"good").unwrap();
        wal.append(b"flipped").unwrap();
        drop(wal);
        let path = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let (_, replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        assert_eq!(replay.records, vec![b"good".to_vec()]);
        assert_eq!(replay.skipped_bytes, 8 + 7);
    }

    #[test]
    fn a_cut_splits_the_log_and_sealed_segments_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        wal.append(b"before").unwrap();
        let cut = wal.cut().unwrap();
        assert_eq!(cut, 2);
        assert_eq!(wal.cut().unwrap(), 2, "an empty segment is not cut again");
        wal.append(b"after").unwrap();
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        assert_eq!(replay.records.len(), 2, "both segments are kept until told");
        let (wal, replay) = Wal::open_from(dir.path(), WalConfig::default(), cut).unwrap();
        assert_eq!(replay.records, vec![b"after".to_vec()]);
        assert_eq!(segments(dir.path()).unwrap(), vec![2]);
        wal.append(b"more").unwrap();
        let next = wal.cut().unwrap();
        wal.remove_before(next).unwrap();
        assert_eq!(segments(dir.path()).unwrap(), vec![next]);
        drop(wal);
        let (_, replay) = Wal::open_from(dir.path(), WalConfig::default(), next).unwrap();
        assert!(replay.records.is_empty());
    }

    #[test]
    fn concurrent_appends_all_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        let wal = std::sync::Arc::new(wal);
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                let wal = wal.clone();
                std::thread::spawn(move || {
                    for i in 0..50u8 {
                        wal.append(&[t, i]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
        assert_eq!(replay.records.len(), 200);
        for t in 0..4u8 {
            let mine: Vec<u8> = replay
                .records
                .iter()
                .filter(|r| r[0] == t)
                .map(|r| r[1])
                .collect();
            assert_eq!(
                mine,
                (0..50).collect::<Vec<_>>(),
                "each writer's records in its order"
            );
        }
    }
}
