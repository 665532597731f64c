use std::sync::atomic::AtomicUsize;

use super::*;

fn config() -> WalConfig {
    WalConfig {
        segment_size: ByteSize::b(64),
        ..WalConfig::default()
    }
}

fn records(replay: Replay) -> Vec<Vec<u8>> {
    replay.map(Result::unwrap).collect()
}

/// Every record of the log in `dir`, and the bytes skipped as torn.
fn read_back(dir: &Path, config: WalConfig) -> (Vec<Vec<u8>>, u64) {
    let (_, mut replay) = Wal::open(dir, config).unwrap();
    let back = replay.by_ref().map(Result::unwrap).collect();
    (back, replay.skipped_bytes())
}

#[test]
fn records_come_back_in_order_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, replay) = Wal::open(dir.path(), config()).unwrap();
    assert!(records(replay).is_empty());
    for i in 0..10u8 {
        wal.append(&[i; 20]).unwrap();
    }
    drop(wal);
    assert!(
        segments(dir.path()).unwrap().len() > 1,
        "rotated past 64 bytes"
    );
    let (wal, replay) = Wal::open(dir.path(), config()).unwrap();
    let back = records(replay);
    assert_eq!(back.len(), 10);
    wal.append(b"eleven").unwrap();
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), config()).unwrap();
    let back = records(replay);
    let firsts: Vec<u8> = back[..10].iter().map(|r| r[0]).collect();
    assert_eq!(firsts, (0..10).collect::<Vec<_>>());
    assert_eq!(back[10], b"eleven");
}

#[test]
fn a_torn_tail_is_skipped_and_appends_continue_in_a_new_segment() {
    let dir = tempfile::tempdir().unwrap();
    let big = WalConfig::default();
    let (wal, _) = Wal::open(dir.path(), big.clone()).unwrap();
    wal.append(b"first").unwrap();
    wal.append(b"second").unwrap();
    drop(wal);
    let path = segment_path(dir.path(), 1);
    // A crash in the middle of a write: a header and half a payload.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    Write::write_all(&mut f, &100u32.to_le_bytes()).unwrap();
    Write::write_all(&mut f, &7u32.to_le_bytes()).unwrap();
    Write::write_all(&mut f, b"half").unwrap();
    drop(f);
    let (wal, mut replay) = Wal::open(dir.path(), big.clone()).unwrap();
    let back: Vec<Vec<u8>> = replay.by_ref().map(Result::unwrap).collect();
    assert_eq!(back, vec![b"first".to_vec(), b"second".to_vec()]);
    assert_eq!(replay.skipped_bytes(), 12);
    wal.append(b"third").unwrap();
    drop(wal);
    assert_eq!(segments(dir.path()).unwrap(), vec![1, 2]);
    let (_, replay) = Wal::open(dir.path(), big).unwrap();
    assert_eq!(
        records(replay).len(),
        3,
        "the torn tail does not hide new records"
    );
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
    let (back, skipped) = read_back(dir.path(), WalConfig::default());
    assert_eq!(back, vec![b"good".to_vec()]);
    assert_eq!(skipped, 8 + 7);
}

#[test]
fn a_length_past_the_end_is_torn_without_allocating_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    wal.append(b"good").unwrap();
    drop(wal);
    let path = segment_path(dir.path(), 1);
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    Write::write_all(&mut f, &u32::MAX.to_le_bytes()).unwrap();
    Write::write_all(&mut f, &[0; 12]).unwrap();
    drop(f);
    let (_, mut replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(replay.next().unwrap().unwrap(), b"good");
    assert!(replay.next().is_none());
    assert_eq!(replay.skipped_bytes(), 16);
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
    assert_eq!(
        records(replay).len(),
        2,
        "both segments are kept until told"
    );
    let (wal, replay) = Wal::open_from(dir.path(), WalConfig::default(), cut).unwrap();
    assert_eq!(records(replay), vec![b"after".to_vec()]);
    assert_eq!(segments(dir.path()).unwrap(), vec![2, 3]);
    wal.append(b"more").unwrap();
    let next = wal.cut().unwrap();
    wal.remove_before(next).unwrap();
    assert_eq!(segments(dir.path()).unwrap(), vec![next]);
    assert_eq!(wal.disk_bytes(), 0, "the counter follows the deletions");
    drop(wal);
    let (_, replay) = Wal::open_from(dir.path(), WalConfig::default(), next).unwrap();
    assert!(records(replay).is_empty());
}

#[test]
fn concurrent_appends_all_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    let wal = Arc::new(wal);
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
    assert_eq!(wal.disk_bytes(), 200 * (8 + 2));
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    let back = records(replay);
    assert_eq!(back.len(), 200);
    for t in 0..4u8 {
        let mine: Vec<u8> = back.iter().filter(|r| r[0] == t).map(|r| r[1]).collect();
        assert_eq!(
            mine,
            (0..50).collect::<Vec<_>>(),
            "each writer's records in its order"
        );
    }
}

/// Faults put between the log and its files, as a full or failing disk
/// would produce them.
#[derive(Default)]
struct Faults {
    /// Bytes the next write gets to the file before it fails (none: no fault).
    short_write: Mutex<Option<usize>>,
    /// Cutting a file back fails.
    refuse_set_len: AtomicBool,
    /// Syncs that fail before syncs succeed again (as Linux reports an
    /// error once, then clears it).
    failing_syncs: AtomicUsize,
    /// Hands each sync a turn: a sync waits for a message, which says
    /// whether it fails.
    gate: Mutex<Option<std::sync::mpsc::Receiver<bool>>>,
    syncs: AtomicUsize,
    segments_opened: AtomicUsize,
}

struct FaultyFile {
    file: File,
    faults: Arc<Faults>,
}

impl SegmentFile for FaultyFile {
    fn write_all(&self, parts: &mut [IoSlice<'_>]) -> io::Result<()> {
        if let Some(n) = self.faults.short_write.lock().take() {
            let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
            let mut written = [IoSlice::new(&bytes[..n.min(bytes.len())])];
            SegmentFile::write_all(&self.file, &mut written)?;
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        SegmentFile::write_all(&self.file, parts)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.syncs.fetch_add(1, Ordering::SeqCst);
        let turn = self
            .faults
            .gate
            .lock()
            .as_ref()
            .map(|rx| rx.recv().unwrap());
        if turn == Some(true) {
            return Err(io::Error::from_raw_os_error(5)); // EIO
        }
        let failing = &self.faults.failing_syncs;
        if failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.file.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.faults.refuse_set_len.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.file.set_len(len)
    }
}

/// A log in a new directory whose files fail as the test says.
fn faulty_log(config: WalConfig) -> (tempfile::TempDir, Wal, Arc<Faults>) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, faults) = faulty(dir.path(), config);
    (dir, wal, faults)
}

fn faulty(dir: &Path, config: WalConfig) -> (Wal, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let f = faults.clone();
    let open: Box<Opener> = Box::new(move |path: &Path| {
        f.segments_opened.fetch_add(1, Ordering::SeqCst);
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Arc::new(FaultyFile {
            file,
            faults: f.clone(),
        }) as Arc<dyn SegmentFile>)
    });
    let (wal, _) = Wal::open_with(dir, config, 0, open).unwrap();
    (wal, faults)
}

#[test]
fn a_short_write_is_cut_back_and_nothing_acknowledged_after_it_is_lost() {
    let (dir, wal, faults) = faulty_log(WalConfig::default());
    wal.append(b"one").unwrap();
    *faults.short_write.lock() = Some(5);
    let err = wal.append(b"refused").unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    // The disk has room again: later records land after the last good
    // one, not after the partial record.
    wal.append(b"two").unwrap();
    wal.append(b"three").unwrap();
    assert_eq!(faults.segments_opened.load(Ordering::SeqCst), 1);
    drop(wal);
    let (back, skipped) = read_back(dir.path(), WalConfig::default());
    assert_eq!(
        back,
        vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert_eq!(skipped, 0, "no garbage left behind");
}

#[test]
fn a_short_write_that_cannot_be_cut_back_moves_to_a_new_segment() {
    let (dir, wal, faults) = faulty_log(WalConfig::default());
    wal.append(b"one").unwrap();
    *faults.short_write.lock() = Some(5);
    faults.refuse_set_len.store(true, Ordering::SeqCst);
    assert!(wal.append(b"refused").is_err());
    wal.append(b"two").unwrap();
    assert_eq!(
        faults.segments_opened.load(Ordering::SeqCst),
        2,
        "garbage is never followed by a record"
    );
    drop(wal);
    let (back, skipped) = read_back(dir.path(), WalConfig::default());
    assert_eq!(back, vec![b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(skipped, 5, "the partial record, skipped");
}

#[test]
fn a_failed_sync_refuses_its_record_cuts_it_off_and_moves_on() {
    let (dir, wal, faults) = faulty_log(WalConfig::default());
    wal.append(b"one").unwrap();
    faults.failing_syncs.store(1, Ordering::SeqCst);
    let err = wal.append(b"refused").unwrap_err();
    assert!(matches!(err, WalError::SyncFailed { .. }), "{err}");
    assert!(wal.unhealthy());
    assert_eq!(
        faults.segments_opened.load(Ordering::SeqCst),
        2,
        "a new segment after a failed sync"
    );
    // Syncs succeed again, as Linux's do once it has reported the error.
    wal.append(b"two").unwrap();
    assert!(!wal.unhealthy());
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(
        records(replay),
        vec![b"one".to_vec(), b"two".to_vec()],
        "the refused record is not brought back"
    );
}

#[test]
fn a_record_covered_by_a_failed_sync_is_refused_even_if_a_later_sync_succeeds() {
    let (dir, wal, faults) = faulty_log(WalConfig::default());
    wal.append(b"one").unwrap();
    let (turns, rx) = std::sync::mpsc::channel();
    *faults.gate.lock() = Some(rx);
    let wal = Arc::new(wal);
    let syncs = faults.syncs.load(Ordering::SeqCst);
    let first = {
        let wal = wal.clone();
        std::thread::spawn(move || wal.append(b"first"))
    };
    // The first append is in its sync; a second writes and waits to sync.
    while faults.syncs.load(Ordering::SeqCst) == syncs {
        std::thread::yield_now();
    }
    let second = {
        let wal = wal.clone();
        std::thread::spawn(move || wal.append(b"second"))
    };
    while wal.writer.lock().size < 2 * (8 + 5) + 8 + 3 {
        std::thread::yield_now();
    }
    turns.send(true).unwrap(); // the sync fails
    assert!(matches!(
        first.join().unwrap(),
        Err(WalError::SyncFailed { .. })
    ));
    // No sync is attempted for the second: the failure covered it.
    let second = second.join().unwrap();
    assert!(matches!(second, Err(WalError::SyncLost)), "{second:?}");
    *faults.gate.lock() = None;
    wal.append(b"third").unwrap();
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), WalConfig::default()).unwrap();
    assert_eq!(records(replay), vec![b"one".to_vec(), b"third".to_vec()]);
}

#[test]
fn a_rotation_leaves_the_old_segment_to_the_next_sync() {
    let (dir, wal, faults) = faulty_log(config());
    wal.append(&[1; 40]).unwrap();
    faults.failing_syncs.store(1, Ordering::SeqCst);
    // Past 64 bytes: a new segment, and the sync covering both fails.
    assert!(wal.append(&[2; 40]).is_err());
    wal.append(&[3; 40]).unwrap();
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), config()).unwrap();
    let firsts: Vec<u8> = records(replay).iter().map(|r| r[0]).collect();
    assert_eq!(firsts, vec![1, 3]);
}

#[test]
fn a_later_good_sync_does_not_make_a_lost_record_durable() {
    let (_dir, wal, faults) = faulty_log(WalConfig {
        sync: SyncPolicy::Interval,
        ..WalConfig::default()
    });
    wal.append(b"one").unwrap();
    let lost = wal.writer.lock().end();
    faults.failing_syncs.store(1, Ordering::SeqCst);
    assert!(wal.sync().is_err(), "the sync covering it fails");
    wal.append(b"two").unwrap();
    wal.sync().unwrap();
    assert!(
        wal.synced.load(Ordering::SeqCst) > lost,
        "a later sync moved past the lost record's position"
    );
    // An appender of the lost record asking only now is still refused.
    assert!(matches!(wal.sync_through(lost), Err(WalError::SyncLost)));
}
