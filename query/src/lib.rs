//! Seam's query side: SQL over the store (DataFusion), the trace API, and
//! the HTTP server for both.
//!
//! ```text
//!  Table ──snapshot per scan──▶ SegmentTable ──▶ DataFusion (sandboxed, own runtime) ──▶ api (axum)
//!  (seam-store)                     table.rs          engine.rs, sandbox.rs                  api.rs
//!                                                                     │
//!                                            json.rs (rows, Arrow IPC), span_json.rs, search.rs
//! ```
//!
//! - [`table`]: the store's segments and sealed files as a DataFusion table,
//!   pruned by time, trace id and (in Parquet) statistics and bloom filters;
//!   `parquet_reader` keeps each file's footer and page index parsed.
//! - [`engine`]: the DataFusion context, its limits (time, memory, result size) and the
//!   queries the API runs.
//! - [`sandbox`]: what SQL may not do: write, read files, or call functions
//!   whose output size is an argument.
//! - [`json`], [`span_json`], [`search`]: results in the API's shapes.
//! - [`yielding`]: makes every operator yield, so a timed-out query stops.
//! - [`api`], [`error`]: routes, and the one place errors become statuses.

pub mod api;
pub mod bounded;
mod columns;
pub mod config;
pub mod correlation;
pub mod engine;
pub mod error;
pub mod json;
pub mod metrics;
mod parquet_reader;
pub mod resolve;
pub mod resolve_exec;
pub mod sandbox;
pub mod search;
pub mod span_json;
pub mod table;
pub mod yielding;

#[cfg(test)]
#[path = "../tests/testdata/mod.rs"]
mod testdata;

pub use api::{ApiState, Readiness, api_router};
pub use config::QueryConfig;
pub use engine::{Correlation, FlowResult, QueryEngine, QueryResult};
pub use error::{AppError, QueryError};
pub use metrics::QueryMetrics;
pub use search::{SearchError, SearchParams, TraceSummary};
pub use span_json::SpanJson;
pub use table::SegmentTable;
