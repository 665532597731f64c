//! Seam's store: where normalized spans live once they are accepted.
//!
//! ```text
//!  collector ──append──▶ Wal (durable, replayed on start)
//!            ──append──▶ HotTable (Arrow batches in memory) ──snapshot──▶ query (DataFusion)
//! ```
//!
//! The query side never sees how data is kept; it asks for a [`Snapshot`]: an
//! immutable list of [`Segment`]s, each with time statistics for pruning.
//! Parquet segments slot in behind the same snapshot, as another kind of
//! segment; once a batch is sealed there, the log before it can go.

pub mod hot;
pub mod wal;

pub use hot::{HotTable, Segment, Snapshot, StoreError};
pub use wal::{Replay, SyncPolicy, Wal, WalConfig, WalError};
