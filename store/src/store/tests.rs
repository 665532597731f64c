use std::sync::Arc;
use std::sync::mpsc;

use arrow::array::AsArray;
use arrow::datatypes::SchemaRef;

use super::*;
use crate::write::{Derived, Rows, Write, WriteError, Writer};

fn schema() -> SchemaRef {
    crate::testing::schema("t", true)
}

fn specs() -> Vec<TableDef> {
    [("spans", Source::Ingest), ("derived", Source::Derived)]
        .into_iter()
        .map(|(name, source)| TableDef {
            name,
            schema: schema(),
            hot_schema: None,
            source,
            time_column: "t",
            sort_by: &["trace_id", "t"],
            keys: &["trace_id"],
            distinct: &[],
        })
        .collect()
}

fn batch(rows: &[(&str, i64)]) -> RecordBatch {
    let ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.1).collect();
    crate::testing::batch(&schema(), Some(&ids), &times, &times)
}

/// Follows writes by counting their notes and deriving one row per note;
/// its state is the notes seen, as text. A capture can be held until the
/// test lets it go.
#[derive(Default)]
struct Counter {
    seen: Mutex<Vec<i64>>,
    hold: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
    /// Each tick derives a row at this time, when set.
    tick_rows: Mutex<Option<i64>>,
}

impl Follower for Counter {
    type Note = i64;

    fn follow(&self, note: i64, out: &mut Derived) -> Result<(), String> {
        self.seen.lock().push(note);
        out.push("derived", batch(&[("n", note)]));
        Ok(())
    }

    fn tick(&self, _now: i64, out: &mut Derived) -> Result<(), String> {
        if let Some(at) = *self.tick_rows.lock() {
            out.push("derived", batch(&[("t", at)]));
        }
        Ok(())
    }

    fn capture(&self) -> Result<Vec<u8>, String> {
        if let Some((started, go)) = &*self.hold.lock() {
            started.send(()).unwrap();
            go.recv().unwrap();
        }
        Ok(format!("{:?}", self.seen.lock()).into_bytes())
    }
}

fn open(dir: &Path, config: StorageConfig, retention: RetentionConfig) -> Opened {
    Store::open(dir, config, retention, WalConfig::default(), specs()).unwrap()
}

fn open_default(dir: &Path) -> Opened {
    open(dir, StorageConfig::default(), RetentionConfig::default())
}

/// Copies a data directory, as a power loss would leave it.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A start: the store, the log's records to replay, the state to restore.
fn reopen(dir: &Path) -> (Arc<Store>, Vec<Vec<u8>>, Option<Vec<u8>>) {
    let Opened {
        store,
        replay,
        state,
    } = open_default(dir);
    (store, replay.map(Result::unwrap).collect(), state)
}

/// Every value of column `v` the table holds, in memory and sealed, sorted.
fn values(table: &Table) -> Vec<i64> {
    let snapshot = table.snapshot();
    let sealed: Vec<RecordBatch> = snapshot
        .sealed
        .iter()
        .flat_map(|f| parquet_file::read(&f.path, None).unwrap())
        .collect();
    let mut out = crate::testing::values(snapshot.segments.iter().map(|s| &s.batch).chain(&sealed));
    out.sort_unstable();
    out
}

/// Logs and stores a batch the way ingest does, with no note.
fn ingest(store: &Arc<Store>, record: &[u8], rows: &[(&str, i64)]) {
    let writer: Writer<i64> = store.writer("spans");
    write(&writer, record, rows, None);
}

fn write(writer: &Writer<i64>, record: &[u8], rows: &[(&str, i64)], note: Option<i64>) {
    writer
        .write(Write {
            log: Some(record),
            rows: Rows::Batches(vec![batch(rows)]),
            note,
        })
        .unwrap();
}

#[test]
fn a_seal_moves_rows_to_parquet_and_the_replay_point_past_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, replay, state) = reopen(dir.path());
    assert!(replay.is_empty() && state.is_none());
    ingest(&store, b"one", &[("b", 1), ("a", 2)]);
    let report = store.seal().unwrap().unwrap();
    assert_eq!((report.rows, report.files), (2, 1));
    assert!(store.seal().unwrap().is_none(), "nothing new to seal");
    ingest(&store, b"two", &[("c", 3)]);
    let spans = store.table("spans");
    assert_eq!(values(&spans), [1, 2, 3]);
    assert_eq!(spans.snapshot().sealed.len(), 1);
    assert_eq!(store.metrics().seals.get(), 1);
    assert_eq!(store.table_stats()[0].sealed_rows, 2);
    drop((store, spans));

    // A restart: sealed rows from the files, the rest from the log.
    let (store, replay, state) = reopen(dir.path());
    assert_eq!(replay, vec![b"two".to_vec()]);
    assert_eq!(state, None, "no follower, no state");
    assert_eq!(values(&store.table("spans")), [1, 2]);
    assert!(values(&store.table("derived")).is_empty());
    // The sealed file is sorted by trace id.
    let file = &store.table("spans").sealed()[0];
    let back = parquet_file::read(&file.path, Some(&["trace_id"])).unwrap();
    let ids: Vec<&str> = back[0]
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(file.time_range, Some((1, 2)));
}

#[test]
fn leftovers_of_an_unfinished_step_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    ingest(&store, b"one", &[("a", 1)]);
    store.seal().unwrap();
    drop(store);
    let segments = dir.path().join("segments");
    let stray = segments.join("spans").join("00000000000000000099.parquet");
    std::fs::write(&stray, b"half a file").unwrap();
    std::fs::write(
        segments.join("spans/00000000000000000100.parquet.tmp"),
        b"x",
    )
    .unwrap();
    let Opened { store, .. } = open_default(dir.path());
    assert!(!stray.exists());
    assert_eq!(
        std::fs::read_dir(segments.join("spans")).unwrap().count(),
        1
    );
    assert_eq!(values(&store.table("spans")), [1]);
}

#[test]
fn a_failed_seal_keeps_the_rows_in_memory_and_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    ingest(&store, b"one", &[("a", 1)]);
    // The table's directory is gone and a file stands in its way.
    let table_dir = dir.path().join("segments/spans");
    std::fs::remove_dir(&table_dir).unwrap();
    std::fs::write(&table_dir, b"in the way").unwrap();
    assert!(store.seal().is_err());
    assert_eq!(store.metrics().seal_failures.get(), 1);
    assert_eq!(values(&store.table("spans")), [1], "still readable");
    std::fs::remove_file(&table_dir).unwrap();
    std::fs::create_dir(&table_dir).unwrap();
    ingest(&store, b"two", &[("b", 2)]);
    let report = store.seal().unwrap().unwrap();
    assert_eq!(report.rows, 2, "the retry seals both");
    drop(store);
    let (store, replay, _) = reopen(dir.path());
    assert!(replay.is_empty());
    assert_eq!(values(&store.table("spans")), [1, 2]);
}

#[test]
fn small_files_are_compacted_into_one_sorted_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        compact_min_files: 3,
        ..StorageConfig::default()
    };
    let Opened { store, .. } = open(dir.path(), config.clone(), RetentionConfig::default());
    for (i, id) in ["d", "b", "c", "a"].into_iter().enumerate() {
        ingest(&store, b"r", &[(id, i as i64)]);
        store.seal().unwrap();
    }
    let spans = store.table("spans");
    let before = spans.sealed();
    assert_eq!(before.len(), 4);
    assert_eq!(store.compact().unwrap(), 4);
    let after = spans.sealed();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].rows, 4);
    assert_eq!(after[0].time_range, Some((0, 3)));
    assert_eq!(values(&spans), [0, 1, 2, 3]);
    let ids = parquet_file::read(&after[0].path, Some(&["trace_id"])).unwrap();
    let ids: Vec<&str> = ids[0]
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert_eq!(store.compact().unwrap(), 0, "one file is nothing to merge");
    // The merged-away files stay for queries that planned them.
    assert!(before[0].path.exists());
    store.collect_garbage(true);
    assert!(!before[0].path.exists());
    drop((store, spans));
    let Opened { store, .. } = open(dir.path(), config, RetentionConfig::default());
    assert_eq!(values(&store.table("spans")), [0, 1, 2, 3]);
}

#[test]
fn retention_deletes_by_age_then_oldest_first_by_disk() {
    let dir = tempfile::tempdir().unwrap();
    let retention = RetentionConfig {
        max_age: Duration::from_nanos(1_000),
        max_disk: None,
    };
    let Opened { store, .. } = open(dir.path(), StorageConfig::default(), retention.clone());
    for t in [100, 2_000, 3_000] {
        ingest(&store, b"r", &[("a", t)]);
        store.seal().unwrap();
    }
    // Now is 2_500: the file of t=100 is past max_age.
    let report = store.enforce_retention(2_500).unwrap();
    assert_eq!(
        report,
        RetentionReport {
            age_files: 1,
            age_rows: 1,
            ..Default::default()
        }
    );
    assert_eq!(values(&store.table("spans")), [2_000, 3_000]);
    let rows = store
        .metrics()
        .deleted_rows
        .get_or_create(&[("reason", "age")])
        .get();
    assert_eq!(rows, 1);
    drop(store);

    let one_file = {
        let Opened { store, .. } = open(dir.path(), StorageConfig::default(), retention);
        store.table("spans").sealed()[0].bytes
    };
    let by_disk = RetentionConfig {
        max_age: Duration::from_secs(3600),
        max_disk: Some(ByteSize::b(one_file + 1)),
    };
    let Opened { store, .. } = open(dir.path(), StorageConfig::default(), by_disk);
    let report = store.enforce_retention(2_500).unwrap();
    assert_eq!((report.disk_files, report.disk_rows), (1, 1));
    assert_eq!(
        values(&store.table("spans")),
        [3_000],
        "the oldest went first"
    );
    let files = store
        .metrics()
        .deleted_files
        .get_or_create(&[("reason", "disk")])
        .get();
    assert_eq!(files, 1);
}

#[test]
fn seal_is_due_by_size_or_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        seal_size: ByteSize::b(1),
        seal_interval: Duration::from_secs(3600),
        ..StorageConfig::default()
    };
    let Opened { store, .. } = open(dir.path(), config, RetentionConfig::default());
    assert!(!store.seal_due(), "nothing hot");
    ingest(&store, b"r", &[("a", 1)]);
    assert!(store.seal_due(), "past the size");

    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        seal_interval: Duration::ZERO,
        ..StorageConfig::default()
    };
    let Opened { store, .. } = open(dir.path(), config, RetentionConfig::default());
    assert!(!store.seal_due());
    ingest(&store, b"r", &[("a", 1)]);
    assert!(store.seal_due(), "past the interval");
}

#[test]
fn the_follower_captures_its_state_at_the_cut_while_ingest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    let counter = Arc::new(Counter::default());
    let writer = store.follow("spans", counter.clone()).unwrap();
    write(&writer, b"one", &[("a", 1)], Some(1));
    write(&writer, b"two", &[("b", 2)], Some(2));
    let (started, capturing) = mpsc::channel();
    let (go, wait) = mpsc::channel();
    *counter.hold.lock() = Some((started, wait));
    let seal = {
        let store = store.clone();
        std::thread::spawn(move || store.seal())
    };
    capturing.recv().unwrap();
    // The seal is capturing the state: ingest is not held meanwhile.
    write(&writer, b"three", &[("c", 3)], Some(3));
    assert_eq!(values(&store.table("spans")), [1, 2, 3]);
    go.send(()).unwrap();
    let report = seal.join().unwrap().unwrap().unwrap();
    assert_eq!(
        report.rows, 4,
        "two spans and the two rows derived before the cut"
    );
    assert!(report.pause < report.elapsed);
    let sealed: u64 = store.table("derived").sealed().iter().map(|f| f.rows).sum();
    assert_eq!(sealed, 2);
    drop((writer, store));

    let (store, replay, state) = reopen(dir.path());
    assert_eq!(
        state.as_deref(),
        Some(&b"[1, 2]"[..]),
        "the state covers exactly the writes before the cut"
    );
    assert_eq!(
        replay,
        vec![b"three".to_vec()],
        "and the log after it holds the rest"
    );
    assert_eq!(values(&store.table("spans")), [1, 2]);
}

/// A manifest renamed into place whose directory then fails to sync may
/// or may not survive a power loss: either way every row is there once,
/// because nothing the previous manifest names (its files, its state, the
/// log after its cut) was let go.
#[test]
fn a_manifest_not_known_durable_keeps_what_the_previous_one_needs() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    let writer = store.follow("spans", Arc::new(Counter::default())).unwrap();
    write(&writer, b"one", &[("a", 1)], Some(1));
    store.seal().unwrap().unwrap();
    write(&writer, b"two", &[("b", 2)], Some(2));
    let manifest = dir.path().join("segments").join(manifest::NAME);
    let previous = std::fs::read(&manifest).unwrap();
    crate::manifest::injected::fail_sync_after_rename(manifest.clone());
    let failed = store.seal().unwrap_err();
    assert!(
        matches!(
            failed,
            SealError::Manifest(ManifestError::NotDurable { .. })
        ),
        "{failed}"
    );
    assert_eq!(values(&store.table("spans")), [1, 2], "served as before");
    drop((writer, store));

    // The rename did not survive: the previous manifest, its state and the
    // log after its cut are all still there.
    let lost = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), lost.path());
    std::fs::write(lost.path().join("segments").join(manifest::NAME), &previous).unwrap();
    let (store, replay, state) = reopen(lost.path());
    assert_eq!(replay, vec![b"two".to_vec()]);
    assert_eq!(state.as_deref(), Some(&b"[1]"[..]));
    assert_eq!(values(&store.table("spans")), [1], "the rest is replayed");

    // It did survive: the new manifest's files and state.
    let (store, replay, state) = reopen(dir.path());
    assert!(replay.is_empty(), "{replay:?}");
    assert_eq!(state.as_deref(), Some(&b"[1, 2]"[..]));
    assert_eq!(values(&store.table("spans")), [1, 2]);
}

#[test]
fn queries_wait_for_what_the_follower_derives_from_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    let writer = store.follow("spans", Arc::new(Counter::default())).unwrap();
    let settle = store.settle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for n in 0..200 {
        write(&writer, b"r", &[("a", n)], Some(n));
        runtime.block_on(settle.settled());
        assert_eq!(
            store.table("derived").num_rows(),
            n as usize + 1,
            "every derived row of an acknowledged write is visible"
        );
    }
    assert_eq!(settle.backlog(), 0);
}

/// A follower that only follows: no ticks, no state.
struct Following<F>(F);

impl<F> Follower for Following<F>
where
    F: Fn(i64, &mut Derived) -> Result<(), String> + Send + Sync + 'static,
{
    type Note = i64;
    fn follow(&self, note: i64, out: &mut Derived) -> Result<(), String> {
        (self.0)(note, out)
    }
    fn tick(&self, _: i64, _: &mut Derived) -> Result<(), String> {
        Ok(())
    }
    fn capture(&self) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
}

/// A store whose follower stopped on the first write; the second write's
/// answer.
fn follower_stops(
    dir: &std::path::Path,
    follow: impl Fn(i64, &mut Derived) -> Result<(), String> + Send + Sync + 'static,
) -> (Arc<Store>, u64, Result<(), WriteError>) {
    let Opened { store, .. } = open_default(dir);
    let writer = store.follow("spans", Arc::new(Following(follow))).unwrap();
    write(&writer, b"one", &[("a", 1)], Some(1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(writer.follower_stopped());
    runtime.block_on(store.settle().settled());
    let bytes = store.wal().disk_bytes();
    let refused = writer.write(Write {
        log: Some(b"two"),
        rows: Rows::Batches(vec![batch(&[("b", 2)])]),
        note: Some(2),
    });
    (store, bytes, refused)
}

#[test]
fn a_stopped_follower_refuses_writes_and_fails_seals_without_losing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _, refused) = follower_stops(dir.path(), |_, _| panic!("a bug in correlation"));
    assert!(matches!(refused, Err(WriteError::FollowerStopped)));
    assert!(matches!(store.seal(), Err(SealError::FollowerStopped)));
    assert_eq!(
        values(&store.table("spans")),
        [1],
        "nothing is logged or stored that could not be followed"
    );
}

#[test]
fn a_seal_at_the_same_cut_keeps_the_state_the_manifest_names() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    let counter = Arc::new(Counter::default());
    let writer = store.follow("spans", counter.clone()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    write(&writer, b"one", &[("a", 1)], Some(1));
    store.seal().unwrap().unwrap();
    let first = store.manifest.lock().state.clone().unwrap();
    // No export since, but time passes and correlation derives rows (what
    // expired): a seal at the same cut.
    *counter.tick_rows.lock() = Some(5);
    writer.tick(0);
    write_settled(&runtime, &store);
    store.seal().unwrap().expect("derived rows to seal");
    let second = store.manifest.lock().state.clone().unwrap();
    assert_ne!(first, second, "a state file of its own");
    assert!(dir.path().join("segments").join(&second).exists());
    assert!(
        !dir.path().join("segments").join(&first).exists(),
        "the one the manifest no longer names is gone"
    );
    let sealed: u64 = store.table("derived").sealed().iter().map(|f| f.rows).sum();
    assert_eq!(sealed, 2, "the note's row and the tick's");
}

/// Waits until the follower has taken in what was queued (ticks included,
/// which come before the next note).
fn write_settled(runtime: &tokio::runtime::Runtime, store: &Arc<Store>) {
    runtime.block_on(store.settle().settled());
    for _ in 0..200 {
        if store.table("derived").hot_usage().1.is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Rows that cannot be finished.
struct Broken;

impl crate::table::PendingRows for Broken {
    fn rows(&self) -> usize {
        1
    }
    fn bytes(&self) -> usize {
        0
    }
    fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        Err(arrow::error::ArrowError::ComputeError("a bug".into()))
    }
}

#[test]
fn rows_lost_from_memory_stop_every_seal_so_the_log_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let Opened { store, .. } = open_default(dir.path());
    ingest(&store, b"one", &[("a", 1)]);
    let spans = store.table("spans");
    spans.gather_in(|| Box::new(Broken));
    // A snapshot finishes the gathered rows, which fails: they are gone
    // from memory, only the log has them.
    let _ = spans.snapshot();
    assert!(spans.poisoned());
    let refused = store.seal().unwrap_err();
    assert!(
        matches!(refused, SealError::Poisoned(ref t) if t == "spans"),
        "{refused}"
    );
    drop((spans, store));
    let (_, replay, _) = reopen(dir.path());
    assert_eq!(replay, vec![b"one".to_vec()], "the log was not let go");
}

#[test]
fn a_follower_that_cannot_store_what_it_derives_stops_and_nothing_more_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, bytes, refused) = follower_stops(dir.path(), |_, out| {
        out.push("nowhere", batch(&[("a", 1)]));
        Ok(())
    });
    assert!(matches!(refused, Err(WriteError::FollowerStopped)));
    assert_eq!(store.wal().disk_bytes(), bytes, "refused before logging");
    assert_eq!(values(&store.table("spans")), [1]);
}
