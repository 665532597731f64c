//! `seam loadgen`: an OTLP load generator for measuring Seam (or any OTLP
//! receiver).
//!
//! ```text
//!  generate (flat spans of a shape, or the demo's hybrid journeys)
//!     └─▶ run: N workers, paced to a rate or as fast as acks come
//!            └─▶ send (gRPC | HTTP protobuf/JSON, gzip, bearer token)
//!                   └─▶ report: spans/s, ack latency p50/p99, errors by code
//! ```

pub mod generate;
pub mod report;
pub mod run;
pub mod send;

pub use generate::{Generator, SpanShape};
pub use report::Report;
pub use run::{LoadConfig, Topology, run};
pub use send::{Encoding, Outcome, Protocol, Sender, Target};

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("bad endpoint {0}")]
    Endpoint(String),
    #[error("bad options: {0}")]
    Options(String),
}
