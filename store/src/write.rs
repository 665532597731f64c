//! The write protocol: the one way rows enter the store, and the one place
//! a seal cuts it.
//!
//! ```text
//!   Writer::write ─ one transaction, inside the cut gate ────────────────────┐
//!   │ 1. log    the request's bytes ─▶ Wal::append (written; synced)         │
//!   │ 2. rows   ─▶ the ingest table (hot Arrow; in the next snapshot)         │
//!   │ 3. note   ─▶ the follower's queue, in commit order                      │
//!   └─────────────────────────────────────────────────────────────────────────┘
//!     a failure at 1 keeps nothing and the export is refused as retryable
//!
//!   follower thread (correlation), in queue order:
//!     note   ─▶ Follower::follow ─▶ derived rows ─▶ derived tables (boundaries, orphans)
//!     tick   ─▶ Follower::tick   ─▶ derived rows (what expired)
//!     cut    ─▶ freeze the derived tables, Follower::capture ─▶ back to the seal
//!
//!   Store::seal: the gate is held only to start a log segment, freeze the
//!   ingest tables and queue the cut; the follower captures its state at
//!   that point of the queue while ingest goes on.
//! ```
//!
//! # Invariants
//! - Every row in an ingest table came through [`Writer::write`], after
//!   its request was logged (or while the log is replayed); tables are not
//!   writable from outside this crate.
//! - A seal's cut falls between two transactions, never inside one: the
//!   log before the cut, the rows frozen at the cut and the follower's
//!   state at its marker all cover exactly the same writes. A restart
//!   replays the log after the cut into that state and gets every
//!   acknowledged span, and every row derived from it, exactly once.
//! - A query that starts after a write was acknowledged sees what the
//!   follower derived from it ([`Settle::settled`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

use arrow::array::RecordBatch;
use parking_lot::Mutex;
use tokio::sync::watch;
use tracing::{error, warn};

use crate::store::Store;
use crate::table::{PendingRows, StoreError, Table};
use crate::wal::WalError;

/// What follows committed writes on a thread of its own, in commit order:
/// the correlation stage. It derives rows for the store's derived tables
/// and keeps state that the store captures with every seal.
pub trait Follower: Send + Sync + 'static {
    /// What a write hands on.
    type Note: Send + 'static;

    /// Takes in one committed write's note; rows it derives go to `out`.
    fn follow(&self, note: Self::Note, out: &mut Derived) -> Result<(), String>;

    /// Time has passed (`now`: ns since the epoch): lets expired state go,
    /// with rows for what expired.
    fn tick(&self, now: i64, out: &mut Derived) -> Result<(), String>;

    /// Rows kept back while they could still change (trace summaries),
    /// written once settled: called after each tick, with `append`
    /// storing them. A follower that shows such rows to queries from its
    /// own state keeps that state locked across `append`, so a query sees
    /// each row in one place.
    fn flush(
        &self,
        _now: i64,
        _append: &mut dyn FnMut(Derived) -> Result<(), String>,
    ) -> Result<(), String> {
        Ok(())
    }

    /// Encodes the state as it is after every note queued before a cut;
    /// handed back by [`Store::open`] after a restart.
    fn capture(&self) -> Result<Vec<u8>, String>;
}

/// Rows a follower derived, by table, appended by the store.
#[derive(Debug, Default)]
pub struct Derived {
    rows: Vec<(&'static str, RecordBatch)>,
}

impl Derived {
    /// Rows for the derived table `table`.
    pub fn push(&mut self, table: &'static str, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.rows.push((table, batch));
        }
    }

    /// The rows pushed, by table.
    pub fn into_rows(self) -> Vec<(&'static str, RecordBatch)> {
        self.rows
    }
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The log could not take the request: nothing of it was kept.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The rows could not be appended (the request is in the log).
    #[error("storing the rows: {0}")]
    Store(#[from] StoreError),
    /// The follower's thread has stopped.
    #[error("the correlation stage has stopped")]
    FollowerStopped,
}

/// The rows of one write.
pub enum Rows<'a> {
    /// Batches of the ingest table's schema.
    Batches(Vec<RecordBatch>),
    /// Rows put into the ingest table's shared builder (see
    /// [`Table::gather_in`]) by the closure.
    Gathered(&'a mut dyn FnMut(&mut dyn PendingRows)),
}

/// One transaction: the request as logged, its rows, what follows it.
pub struct Write<'a, N> {
    /// The bytes to log; `None` for a record read back from the log.
    pub log: Option<&'a [u8]>,
    pub rows: Rows<'a>,
    /// For the follower; `None` when there is nothing to follow.
    pub note: Option<N>,
}

/// Lets queries wait for the follower to catch up with every write
/// acknowledged before them.
#[derive(Debug)]
pub struct Settle {
    /// Notes queued so far (the last one's number).
    queued: AtomicU64,
    /// Notes the follower has taken in (the last one's number); the
    /// largest number once it has stopped, so nobody waits on it forever.
    followed: watch::Sender<u64>,
}

impl Default for Settle {
    fn default() -> Self {
        Self {
            queued: AtomicU64::new(0),
            followed: watch::Sender::new(0),
        }
    }
}

impl Settle {
    /// Resolves once every note queued before the call has been followed.
    pub async fn settled(&self) {
        let target = self.queued.load(Ordering::Acquire);
        let mut followed = self.followed.subscribe();
        let _ = followed.wait_for(|n| *n >= target).await;
    }

    /// Notes queued and not followed yet.
    pub fn backlog(&self) -> u64 {
        let followed = *self.followed.borrow();
        self.queued
            .load(Ordering::Acquire)
            .saturating_sub(followed.min(u64::MAX - 1))
    }
}

/// What the follower's thread is told, in order.
enum Message<N> {
    Note(u64, N),
    Tick(i64),
    Cut(mpsc::Sender<Result<Captured, String>>),
}

/// The follower's side of a cut: its tables frozen and its state.
pub(crate) struct Captured {
    /// Frozen rows per derived table, by table index in the store.
    pub frozen: Vec<(usize, Vec<RecordBatch>)>,
    pub state: Vec<u8>,
}

/// The store's handle on the follower's queue, for the seal: the type of
/// the notes does not matter there.
pub(crate) trait CutQueue: Send + Sync {
    /// Queues a cut; the receiver gets the follower's side of it.
    fn cut(&self) -> Result<Receiver<Result<Captured, String>>, WriteError>;
}

/// Notes wait here for the follower's thread. Bounded: a follower that
/// falls behind (a seal capturing a large state) holds writers back
/// rather than growing without limit.
struct Queue<N> {
    /// The sender and the last note's number, under one lock so that
    /// numbers are queued in order.
    tx: Mutex<(SyncSender<Message<N>>, u64)>,
    settle: Arc<Settle>,
}

/// Notes the queue holds before writers wait: a few seconds of ingest,
/// so that capturing a full state at a seal does not hold ingest up.
const QUEUE_NOTES: usize = 16 * 1024;

impl<N: Send + 'static> Queue<N> {
    fn note(&self, note: N) -> Result<(), WriteError> {
        let mut tx = self.tx.lock();
        let number = tx.1 + 1;
        tx.0.send(Message::Note(number, note))
            .map_err(|_| WriteError::FollowerStopped)?;
        tx.1 = number;
        self.settle.queued.store(number, Ordering::Release);
        Ok(())
    }
}

impl<N: Send + 'static> CutQueue for Queue<N> {
    fn cut(&self) -> Result<Receiver<Result<Captured, String>>, WriteError> {
        let (reply, rx) = mpsc::channel();
        let tx = self.tx.lock();
        tx.0.send(Message::Cut(reply))
            .map_err(|_| WriteError::FollowerStopped)?;
        Ok(rx)
    }
}

/// The ingest path's handle on the store: every write goes through
/// [`Writer::write`].
pub struct Writer<N: Send + 'static> {
    store: Arc<Store>,
    ingest: Arc<Table>,
    queue: Option<Arc<Queue<N>>>,
    stopped: watch::Receiver<bool>,
}

impl<N: Send + 'static> Writer<N> {
    /// A writer whose notes go nowhere (no follower).
    pub(crate) fn unfollowed(store: Arc<Store>, ingest: Arc<Table>) -> Self {
        Self {
            store,
            ingest,
            queue: None,
            stopped: watch::Sender::new(false).subscribe(),
        }
    }

    /// Starts `follower` on a thread of its own, fed by this writer.
    pub(crate) fn followed<F: Follower<Note = N>>(
        store: Arc<Store>,
        ingest: Arc<Table>,
        follower: Arc<F>,
        derived: Vec<(usize, Arc<Table>)>,
        settle: Arc<Settle>,
    ) -> std::io::Result<(Self, Arc<dyn CutQueue>)> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_NOTES);
        let queue = Arc::new(Queue {
            tx: Mutex::new((tx, 0)),
            settle: settle.clone(),
        });
        let (stopped_tx, stopped) = watch::channel(false);
        std::thread::Builder::new()
            .name("seam-correlate".into())
            .spawn(move || {
                let _exit = Exit {
                    settle: settle.clone(),
                    stopped: stopped_tx,
                };
                follow(follower.as_ref(), &rx, &derived, &settle);
            })?;
        let cuts: Arc<dyn CutQueue> = queue.clone();
        Ok((
            Self {
                store,
                ingest,
                queue: Some(queue),
                stopped,
            },
            cuts,
        ))
    }

    /// Logs, stores and hands on one write, inside the cut gate. `Ok`
    /// means the request is durable (per the log's sync policy), its rows
    /// are in the next snapshot, and its note is queued.
    pub fn write(&self, write: Write<'_, N>) -> Result<(), WriteError> {
        let _step = self.store.gate().enter();
        // Nothing is logged that could not be followed.
        if self.queue.is_some() && *self.stopped.borrow() {
            return Err(WriteError::FollowerStopped);
        }
        if let Some(bytes) = write.log {
            self.store.wal().append(bytes)?;
        }
        let stored = match write.rows {
            Rows::Batches(batches) => batches
                .into_iter()
                .try_for_each(|batch| self.ingest.append(batch)),
            Rows::Gathered(fill) => self.ingest.append_gathered(fill),
        };
        if let Err(e) = stored {
            // Logged, and not (all) in the table: only a replay can put it
            // right.
            self.ingest.poison(&e);
            return Err(e.into());
        }
        if let (Some(queue), Some(note)) = (&self.queue, write.note) {
            queue.note(note)?;
        }
        Ok(())
    }

    /// Tells the follower that time has passed (`now`: ns since the
    /// epoch). Skipped when its queue is full: the next tick comes soon.
    pub fn tick(&self, now: i64) {
        if let Some(queue) = &self.queue {
            // Never waits: a writer may hold the queue while it waits for
            // room, and the caller is an async task.
            let Some(tx) = queue.tx.try_lock() else {
                return;
            };
            match tx.0.try_send(Message::Tick(now)) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => {
                    warn!("the correlation stage has stopped; not ticking it");
                }
            }
        }
    }

    /// Resolves when the follower's thread has stopped (never, without a
    /// follower); the server treats that as fatal.
    pub async fn follower_stopped(&self) {
        if self.queue.is_none() {
            return std::future::pending().await;
        }
        let mut stopped = self.stopped.clone();
        let _ = stopped.wait_for(|s| *s).await;
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

/// Marks the follower stopped however its thread ends (a panic included),
/// and lets anyone waiting for it go.
struct Exit {
    settle: Arc<Settle>,
    stopped: watch::Sender<bool>,
}

impl Drop for Exit {
    fn drop(&mut self) {
        if std::thread::panicking() {
            error!("the correlation stage failed");
        }
        self.settle.followed.send_replace(u64::MAX);
        self.stopped.send_replace(true);
    }
}

/// The follower's thread: takes what the queue holds, in order, until
/// every writer is gone.
fn follow<F: Follower>(
    follower: &F,
    rx: &Receiver<Message<F::Note>>,
    derived: &[(usize, Arc<Table>)],
    settle: &Settle,
) {
    // Derived rows that cannot be stored would never be derived again (the
    // state has moved on): the follower stops, and a restart rebuilds both
    // from the log.
    let store = |out: Derived| -> Result<(), String> {
        for (name, batch) in out.rows {
            let (_, table) = derived
                .iter()
                .find(|(_, t)| t.name() == name)
                .ok_or_else(|| format!("rows for {name}, which the store does not derive"))?;
            table
                .append(batch)
                .map_err(|e| format!("storing rows of {name}: {e}"))?;
        }
        Ok(())
    };
    while let Ok(message) = rx.recv() {
        match message {
            Message::Note(number, note) => {
                let mut out = Derived::default();
                if let Err(e) = follower.follow(note, &mut out) {
                    error!(error = %e, "correlating a committed write");
                }
                if let Err(e) = store(out) {
                    error!(error = %e, "the correlation stage stops");
                    return;
                }
                settle.followed.send_replace(number);
            }
            Message::Tick(now) => {
                let mut out = Derived::default();
                if let Err(e) = follower.tick(now, &mut out) {
                    warn!(error = %e, "expiring correlation state");
                }
                if let Err(e) = store(out) {
                    error!(error = %e, "the correlation stage stops");
                    return;
                }
                let mut failed = None;
                let flushed = follower.flush(now, &mut |out| {
                    store(out).inspect_err(|e| failed = Some(e.clone()))
                });
                if let Some(e) = failed {
                    error!(error = %e, "the correlation stage stops");
                    return;
                }
                if let Err(e) = flushed {
                    warn!(error = %e, "writing settled correlation rows");
                }
            }
            Message::Cut(reply) => {
                let captured = derived
                    .iter()
                    .map(|(i, t)| t.freeze().map(|rows| (*i, rows)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| e.to_string())
                    .and_then(|frozen| {
                        Ok(Captured {
                            frozen,
                            state: follower.capture()?,
                        })
                    });
                let _ = reply.send(captured);
            }
        }
    }
}
