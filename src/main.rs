//! The `seam` binary: parses the command line and wires the stages together.
//!
//! ```text
//! seam [serve]   receivers ─▶ pipeline ─▶ store (log, rows) ─▶ correlation ─▶ store ◀─ query engine ◀─ API
//! seam query     a client of the API that prints a table
//! seam loadgen   an OTLP load generator that reports spans/s, latency, errors
//! ```

mod allocator;
mod cli;
mod config;
mod loadgen_cmd;
mod metrics;
mod query_cmd;
mod serve;
mod storage;
mod supervise;
mod tls;
mod ui;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Query(args)) => query_cmd::run(args),
        Some(Command::Loadgen(args)) => loadgen_cmd::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        None => serve::run(cli.serve),
    }
}
