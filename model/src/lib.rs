//! Seam's unified span model: one row per span with its resource folded in,
//! and the Arrow schema those rows are stored under.
//!
//! This crate sits at the bottom of the workspace and does no IO. The
//! collector fills [`SpanRow`]s and appends them with a [`SpanBatchBuilder`];
//! the store keeps the resulting record batches; the query side reads them
//! back under [`schema::spans_schema`].

mod attrs;
pub mod auth;
pub mod builder;
pub mod cast;
pub mod id;
pub mod row;
pub mod schema;
pub mod tables;

pub use auth::BearerTokens;
pub use builder::{Capacity, SpanBatchBuilder, Text};
pub use id::{SpanId, TraceId};
pub use row::{
    Attributes, ColdStartSource, ColdStartType, EventRow, LinkRow, Platform, SpanKind, SpanRow,
    StatusCode,
};
