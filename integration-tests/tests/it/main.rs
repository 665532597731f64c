//! Black-box tests: each starts the real `seam` binary on free ports and
//! talks to it only over the network, the way users and their SDKs do.
//!
//! One test binary (modules below) so the workspace links it once.

mod auth;
mod bad_input;
mod cli;
mod common;
mod demo;
mod disk_full;
mod durability;
mod explorer_api;
mod layouts;
mod loadgen;
mod otlp_json;
mod pushback;
mod python_sdk;
mod python_stitching;
mod real_shapes;
mod rust_sdk;
mod rust_stitching;
mod search_answers;
mod sql_api;
mod storage;
mod tls;
