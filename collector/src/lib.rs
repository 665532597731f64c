//! Seam's collector: OTLP in, normalized Arrow batches out.
//!
//! ```text
//! receive::grpc ─┐           protobuf ─▶ view::wire ─┐
//!                ├─▶ decode ─┤                        ├─▶ view ─▶ Pipeline ─▶ normalize ─▶ SpanBatchBuilder ─▶ Table
//! receive::http ─┘           JSON ─▶ prost structs ───┘
//! ```
//!
//! Receivers only frame and answer; [`Pipeline`] decides what is accepted;
//! [`normalize`] is a pure function per span. The collector depends on the
//! store, never on the query side.

pub mod config;
pub mod decode;
pub mod limits;
pub mod metrics;
pub mod normalize;
pub mod pipeline;
pub mod receive;
pub mod rpc_status;
pub mod view;

pub use config::ReceiverConfig;
pub use limits::{LimitsConfig, MemoryGauge};
pub use metrics::IngestMetrics;
pub use pipeline::{IngestError, IngestOutcome, Pipeline, StatsSnapshot, now_unix_nano};
pub use receive::grpc::{GrpcReceiver, serve_grpc};
pub use receive::http::{http_router, serve_http};
