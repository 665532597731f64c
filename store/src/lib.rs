//! Seam's store: where normalized spans live once they are accepted.
//!
//! ```text
//!  collector ──append──▶ HotTable (Arrow batches in memory) ──snapshot──▶ query (DataFusion)
//! ```
//!
//! The query side never sees how data is kept; it asks for a [`Snapshot`]: an
//! immutable list of [`Segment`]s, each with time statistics for pruning.
//! Write-ahead logging and Parquet segments slot in behind the same
//! snapshot, as another kind of segment.

pub mod hot;

pub use hot::{HotTable, Segment, Snapshot, StoreError};
