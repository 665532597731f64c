//! Seam's store: where normalized spans live once they are accepted.
//!
//! ```text
//!  collector ──append──▶ Wal (durable, replayed on start)
//!            ──append──▶ Table: hot Arrow batches ──seal──▶ Parquet files ──retention──▶ gone
//!                              └──────────── snapshot ────────────┘
//!                                              ▼
//!                                      query (DataFusion)
//! ```
//!
//! The query side asks a table for a [`Snapshot`]: the in-memory
//! [`Segment`]s and the [`SealedFile`]s at one instant, each with time
//! statistics for pruning. [`Store`] owns the tables and the log and keeps
//! them consistent across seals, compactions and restarts.

pub mod manifest;
pub mod parquet_file;
pub mod store;
pub mod table;
pub mod wal;

pub use manifest::{ManifestError, write_atomic};
pub use parquet_file::{FileError, FileShape, KeyFilters};
pub use store::{
    CutGate, CutState, Opened, RetentionConfig, RetentionReport, SealError, SealReport,
    StorageConfig, Store, StoreStats, TableSpec, TableStats,
};
pub use table::{Layout, PendingRows, SealedFile, Segment, Snapshot, StoreError, Table};
pub use wal::{Replay, SyncPolicy, Wal, WalConfig, WalError};
