//! Seam's store: where normalized spans live once they are accepted.
//!
//! ```text
//!  collector ──Writer::write──▶ Wal (durable, replayed on start)
//!                           ──▶ ingest Table: hot Arrow ──seal──▶ Parquet files ──retention──▶ gone
//!                           ──▶ follower (correlation) ──▶ derived Tables ─┘
//!                                 └──────────── snapshot ────────────┘
//!                                                 ▼
//!                                         query (DataFusion)
//! ```
//!
//! [`write`] is the protocol every row enters by.
//!
//! The query side asks a table for a [`Snapshot`]: the in-memory
//! [`Segment`]s and the [`SealedFile`]s at one instant, each with time
//! statistics for pruning. [`Store`] owns the tables and the log and keeps
//! them consistent across seals, compactions and restarts.

pub mod manifest;
pub mod metrics;
pub mod parquet_file;
pub mod store;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wal;
pub mod write;

pub use manifest::{AtomicWriteError, ManifestError, write_atomic};
pub use metrics::StoreMetrics;
pub use parquet_file::{Codec, FileError, FileShape, KeyFilters};
pub use store::{
    Opened, RetentionConfig, RetentionReport, SealError, SealReport, StorageConfig, Store,
    TableStats,
};
pub use table::{Layout, PendingRows, SealedFile, Segment, Snapshot, StoreError, Table};
pub use wal::{Replay, SyncPolicy, Wal, WalConfig, WalError};
pub use write::{Derived, Follower, Rows, Settle, Write, WriteError, Writer};
