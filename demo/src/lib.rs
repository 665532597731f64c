//! The demo behind `seam serve --demo`: a simulated hybrid application that
//! exports real OTLP, over the network, to Seam's own receivers, so a new
//! user sees stitched flows of every kind within seconds.
//!
//! ```text
//!  scenario::Generator ──journeys──▶ run() ──OTLP/gRPC──▶ :4317 ┐
//!  (pure, seeded)                      └────OTLP/HTTP──▶ :4318 ┴─▶ Seam
//! ```
//!
//! Requests alternate between gRPC and HTTP/protobuf so both receivers
//! carry the demo's traffic, as an estate with mixed SDKs would.

pub mod otlp;
pub mod scenario;

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, warn};

pub use scenario::{FlowKind, Generator};

/// Where the demo sends its spans.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

/// How much the demo sends.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// Journeys started per second.
    pub flows_per_second: f64,
    /// Seed of the generator: the same seed makes the same journeys.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            flows_per_second: 4.0,
            seed: 0x5ea3,
        }
    }
}

/// What the demo sent before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoStats {
    pub requests: u64,
    pub spans: u64,
    pub failures: u64,
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("invalid gRPC target {0}: {1}")]
    Target(SocketAddr, String),
    #[error("building the HTTP client: {0}")]
    Client(String),
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

struct Exporters {
    grpc: TraceServiceClient<Channel>,
    http: reqwest::Client,
    http_url: String,
}

impl Exporters {
    async fn send(
        &mut self,
        request: ExportTraceServiceRequest,
        over_grpc: bool,
    ) -> Result<(), String> {
        if over_grpc {
            self.grpc
                .export(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("gRPC {}: {}", s.code(), s.message()))
        } else {
            let response = self
                .http
                .post(&self.http_url)
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .map_err(|e| format!("HTTP: {e}"))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", response.status()))
            }
        }
    }
}

/// Sends journeys to `target` until `stop` resolves. A failed export is
/// logged, counted and skipped: the demo keeps going, as an application
/// would.
pub async fn run(
    target: Target,
    options: DemoOptions,
    stop: impl Future<Output = ()>,
) -> Result<DemoStats, DemoError> {
    let channel = Endpoint::from_shared(format!("http://{}", target.grpc))
        .map_err(|e| DemoError::Target(target.grpc, e.to_string()))?
        .connect_lazy();
    let mut exporters = Exporters {
        grpc: TraceServiceClient::new(channel),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| DemoError::Client(e.to_string()))?,
        http_url: format!("http://{}/v1/traces", target.http),
    };
    let mut generator = Generator::new(options.seed);
    let mut stats = DemoStats::default();
    let period = Duration::from_secs_f64(1.0 / options.flows_per_second.clamp(0.01, 10_000.0));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(stats),
            _ = tick.tick() => {}
        }
        let (kind, requests) = generator.next_flow(now_unix_nano());
        debug!(?kind, requests = requests.len(), "demo journey");
        for request in requests {
            let spans: usize = request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            let over_grpc = stats.requests % 2 == 0;
            stats.requests += 1;
            match exporters.send(request, over_grpc).await {
                Ok(()) => stats.spans += spans as u64,
                Err(error) => {
                    stats.failures += 1;
                    warn!(%error, "demo export failed");
                }
            }
        }
    }
}
