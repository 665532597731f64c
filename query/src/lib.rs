//! Seam's query side: SQL over the store (DataFusion), the trace API, and
//! the HTTP server for both. Split along DataFusion's own lines:
//!
//! ```text
//!  store Table ─▶ provider.rs (TableProvider: the scan) ◀─ pruning.rs (PruningPredicate over
//!                      │                                   time ranges, key sets, bloom filters)
//!                 catalog.rs (spans, boundaries, orphans, the flows view)
//!                      │
//!                 session.rs (lazy context, own runtime, time/memory/result limits;
//!                      │      sandbox.rs, bounded.rs, yielding.rs)
//!                      │
//!  engine.rs ──▶ reports/ (search, flows, boundaries, cold starts; shared time windows)
//!      │
//!  api.rs (axum) ─▶ json.rs, span_json.rs (answers), error.rs (statuses)
//! ```
//!
//! - [`provider`]: a store table as DataFusion sees it, a snapshot per
//!   scan; `pruning` decides what it may skip; [`resolve`] computes the
//!   read-time columns (`flow_id`, cold starts, deliveries).
//! - [`catalog`]: the tables and views SQL sees.
//! - [`session`]: where a query runs and what bounds it.
//! - [`sandbox`], [`bounded`]: what SQL may not do (write, read files,
//!   build unbounded values); [`yielding`]: every operator yields, so a
//!   timed-out query stops.
//! - [`reports`]: the API's queries besides SQL; [`engine`] runs them.
//! - [`api`], [`error`]: routes, and the one place errors become statuses.

pub mod api;
pub mod bounded;
pub mod catalog;
mod columns;
pub mod config;
pub mod engine;
pub mod error;
pub mod explorer_api;
pub mod filters;
pub mod flows_table;
mod hot_types;
pub mod json;
pub mod lookup;
pub mod metrics;
mod parquet_reader;
pub mod provider;
mod pruning;
pub mod reports;
pub mod resolve;
pub mod resolve_exec;
pub mod sandbox;
pub mod session;
pub mod span_json;
pub mod yielding;

#[cfg(test)]
#[path = "../tests/testdata/mod.rs"]
mod testdata;

pub use api::{ApiState, Readiness, api_router};
pub use catalog::{Catalog, Correlation};
pub use config::QueryConfig;
pub use engine::QueryEngine;
pub use error::{AppError, QueryError};
pub use explorer_api::UiFiles;
pub use metrics::QueryMetrics;
pub use provider::SegmentTable;
pub use reports::ParamError;
pub use reports::flows::FlowResult;
pub use reports::search::{SearchParams, TraceSummary};
pub use session::QueryResult;
pub use span_json::SpanJson;
