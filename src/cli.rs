//! Command-line flags. Every `serve` flag can also come from a `SEAM_<NAME>`
//! environment variable and from the YAML config file; the flag wins over
//! the variable, the variable over the file, the file over the default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "seam",
    version,
    about = "OpenTelemetry collector and trace correlator for hybrid systems"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `seam` serves.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive OTLP, store spans, answer queries (the default).
    Serve(ServeArgs),
    /// Run SQL against a running Seam and print the result.
    Query(QueryArgs),
    /// Send OTLP load to a receiver and report spans/s, ack latency and errors.
    Loadgen(LoadgenArgs),
}

#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// YAML config file.
    #[arg(long, env = "SEAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// OTLP/gRPC listen address (port 0 picks a free port).
    #[arg(long, env = "SEAM_GRPC_LISTEN", value_name = "ADDR")]
    pub grpc_listen: Option<String>,
    /// OTLP/HTTP listen address.
    #[arg(long, env = "SEAM_HTTP_LISTEN", value_name = "ADDR")]
    pub http_listen: Option<String>,
    /// API, UI and /metrics listen address.
    #[arg(long, env = "SEAM_API_LISTEN", value_name = "ADDR")]
    pub api_listen: Option<String>,
    /// Where Seam keeps its data.
    #[arg(long, env = "SEAM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A bearer token OTLP exports must carry (added to
    /// `receiver.bearer_tokens`). Prefer the variable: flags show in `ps`.
    #[arg(
        long,
        env = "SEAM_INGEST_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub ingest_token: Option<String>,
    /// A bearer token the API, UI and /metrics require (added to
    /// `query.bearer_tokens`).
    #[arg(
        long,
        env = "SEAM_API_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub api_token: Option<String>,
    /// Also run a built-in hybrid application (Kubernetes services, queues,
    /// functions) that exports OTLP to this server, to see stitched flows
    /// at once.
    #[arg(long, env = "SEAM_DEMO")]
    pub demo: bool,
    /// Print the effective configuration as YAML and exit.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL to run, e.g. "SELECT service_name, count(*) FROM spans GROUP BY 1".
    pub sql: String,
    /// Base URL of Seam's API.
    #[arg(long, env = "SEAM_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// The API's JSON answer, as is.
    Json,
}

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Receiver to load: `http://host:port` (gRPC 4317, HTTP 4318).
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    pub endpoint: String,
    #[arg(long, value_enum, default_value_t = LoadProtocol::Grpc)]
    pub protocol: LoadProtocol,
    /// Body encoding over HTTP (gRPC is always protobuf).
    #[arg(long, value_enum, default_value_t = LoadEncoding::Protobuf)]
    pub encoding: LoadEncoding,
    /// Compress requests with gzip.
    #[arg(long)]
    pub gzip: bool,
    /// Spans per second in all; without it, as fast as the receiver answers.
    #[arg(long)]
    pub rate: Option<u64>,
    /// How long to send, e.g. 30s or 2m.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Spans per request (flat topology).
    #[arg(long, default_value_t = 512)]
    pub batch: usize,
    /// Attributes per span (flat topology).
    #[arg(long, default_value_t = 10)]
    pub attributes: usize,
    /// Bytes per attribute value (flat topology).
    #[arg(long, default_value_t = 16)]
    pub attribute_size: usize,
    /// `flat`: independent traces of the shape above; `hybrid`: the demo's
    /// journeys across queues and functions, so stitching carries load.
    #[arg(long, value_enum, default_value_t = LoadTopology::Flat)]
    pub topology: LoadTopology,
    /// Bearer token for a receiver that requires one.
    #[arg(long, env = "SEAM_INGEST_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Print the report as JSON on stdout (the progress line stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Seed of the ids; the default differs on every run.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write one request of the flat shape to FILE as a gRPC message body
    /// (length-prefixed protobuf) and exit, for load tools that replay a
    /// body (`h2load -d FILE`).
    #[arg(long, value_name = "FILE")]
    pub write_grpc_body: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LoadProtocol {
    Grpc,
    Http,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LoadEncoding {
    Protobuf,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LoadTopology {
    Flat,
    Hybrid,
}
