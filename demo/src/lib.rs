//! The demo behind `seam serve --demo`: a simulated hybrid application that
//! exports real OTLP, over the network, to Seam's own receivers, so a new
//! user sees stitched flows of every kind within seconds, through exactly
//! the path real SDKs take.
//!
//! ```text
//!  scenario::Generator ──requests──▶ run() ──OTLP/gRPC──────────▶ grpc ┐
//!  (pure, seeded, no IO)              └────OTLP/HTTP protobuf──▶ http ┴─▶ Seam
//! ```
//!
//! Generation and sending are kept apart: [`scenario`] is deterministic
//! given a seed and does no IO, so a load generator can drive it at its own
//! pace and tests can check its shapes; [`run`] only paces and delivers.
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
use tracing::{debug, info, warn};

pub use scenario::{FlowKind, Generator};

/// Where the demo sends its spans: the two OTLP receivers of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// OTLP/gRPC receiver (`TraceService/Export`).
    pub grpc: SocketAddr,
    /// OTLP/HTTP receiver; the demo posts protobuf to `/v1/traces`.
    pub http: SocketAddr,
}

/// How much the demo sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoOptions {
    /// Flows started per second. A handful is enough to fill every view
    /// without drowning a laptop; must be finite and positive.
    pub flows_per_second: f64,
    /// Seed of the generator, so a demo run can be reproduced span for span.
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

/// What the demo delivered before it stopped, so the caller can tell a
/// quiet demo from one whose exports all failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemoStats {
    /// Export requests the server accepted.
    pub requests: u64,
    /// Spans in those accepted requests.
    pub spans: u64,
    /// Export requests given up on (after retries); their spans are lost.
    pub failures: u64,
}

/// Why the demo could not start. Once it runs, it never fails: export
/// errors are counted in [`DemoStats::failures`] instead.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("invalid gRPC target {addr}: {source}")]
    Target {
        addr: SocketAddr,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("flows_per_second must be finite and positive, got {0}")]
    Rate(f64),
}

/// Why one export attempt failed; only used to decide whether to retry and
/// what to log.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("gRPC {}: {}", .0.code(), .0.message())]
    Grpc(Box<tonic::Status>),
    #[error("HTTP: {0}")]
    Http(#[source] reqwest::Error),
    #[error("HTTP status {0}")]
    HttpStatus(reqwest::StatusCode),
}

impl ExportError {
    /// Whether trying again soon may succeed: the server is not listening
    /// yet (the demo starts with it), or asks to be called back later.
    fn retryable(&self) -> bool {
        match self {
            Self::Grpc(status) => matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::ResourceExhausted
            ),
            Self::Http(e) => e.is_connect() || e.is_timeout(),
            Self::HttpStatus(s) => {
                *s == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || *s == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    || *s == reqwest::StatusCode::BAD_GATEWAY
            }
        }
    }
}

/// Attempts per request. With the backoff below a request waits at most
/// about 0.7 s, so a server that comes up a moment after the demo loses
/// nothing, and one that is down does not stall the demo for long.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Bounds every export, so a wedged server cannot hang the demo.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn span_count(request: &ExportTraceServiceRequest) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

struct Exporters {
    grpc: TraceServiceClient<Channel>,
    http: reqwest::Client,
    http_url: String,
}

impl Exporters {
    fn new(target: Target) -> Result<Self, DemoError> {
        // Lazy: the server may not be listening yet. Tonic reconnects on the
        // next call after a failed connection, so a retry is a reconnect.
        let channel = Endpoint::from_shared(format!("http://{}", target.grpc))
            .map_err(|source| DemoError::Target {
                addr: target.grpc,
                source,
            })?
            .connect_timeout(Duration::from_secs(2))
            .timeout(EXPORT_TIMEOUT)
            .connect_lazy();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(DemoError::Client)?;
        Ok(Self {
            grpc: TraceServiceClient::new(channel),
            http,
            http_url: format!("http://{}/v1/traces", target.http),
        })
    }

    async fn send_once(
        &mut self,
        request: &ExportTraceServiceRequest,
        over_grpc: bool,
    ) -> Result<(), ExportError> {
        if over_grpc {
            self.grpc
                .export(request.clone())
                .await
                .map(|_| ())
                .map_err(|s| ExportError::Grpc(Box::new(s)))
        } else {
            let response = self
                .http
                .post(&self.http_url)
                .header("content-type", "application/x-protobuf")
                .body(request.encode_to_vec())
                .send()
                .await
                .map_err(ExportError::Http)?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(ExportError::HttpStatus(response.status()))
            }
        }
    }

    /// Sends one request, retrying with backoff while the failure looks
    /// transient; returns the last error once it gives up.
    async fn send(
        &mut self,
        request: &ExportTraceServiceRequest,
        over_grpc: bool,
    ) -> Result<(), ExportError> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        loop {
            match self.send_once(request, over_grpc).await {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable() && attempt < ATTEMPTS => {
                    debug!(error = %e, attempt, "demo export failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Generates and sends flows to `target` until `stop` resolves, then
/// returns what was delivered.
///
/// Robust by design, since it runs beside the server it feeds: the
/// connection is made lazily and re-made after a failure; each export is
/// retried a few times while the server is unreachable or overloaded, and
/// bounded by a timeout; a request that still fails is logged with
/// `tracing::warn`, counted in [`DemoStats::failures`] and skipped, and the
/// demo goes on with the next one. `stop` is watched during sends and
/// retries too, so stopping is prompt. The only errors are bad options,
/// reported before anything is sent.
pub async fn run(
    target: Target,
    options: DemoOptions,
    stop: impl Future<Output = ()>,
) -> Result<DemoStats, DemoError> {
    let rate = options.flows_per_second;
    if !rate.is_finite() || rate <= 0.0 {
        return Err(DemoError::Rate(rate));
    }
    // Below one flow every 100 s the demo would look dead; above 10,000 a
    // second the timer, not the rate, is the limit.
    let period = Duration::from_secs_f64(1.0 / rate.clamp(0.01, 10_000.0));
    let mut exporters = Exporters::new(target)?;
    let mut generator = Generator::new(options.seed);
    let mut stats = DemoStats::default();
    let mut next_over_grpc = true;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            _ = tick.tick() => {}
        }
        let (kind, requests) = generator.next_flow(now_unix_nano());
        debug!(?kind, requests = requests.len(), "demo flow");
        for request in &requests {
            let over_grpc = next_over_grpc;
            next_over_grpc = !next_over_grpc;
            let result = tokio::select! {
                biased;
                () = &mut stop => {
                    info!(?stats, "demo stopped");
                    return Ok(stats);
                }
                result = exporters.send(request, over_grpc) => result,
            };
            match result {
                Ok(()) => {
                    stats.requests += 1;
                    stats.spans += span_count(request);
                }
                Err(error) => {
                    stats.failures += 1;
                    let transport = if over_grpc { "grpc" } else { "http" };
                    warn!(%error, transport, ?kind, "demo export failed");
                }
            }
        }
    }
    info!(?stats, "demo stopped");
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_rate_is_refused_before_anything_is_sent() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let target = Target {
            grpc: addr,
            http: addr,
        };
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let options = DemoOptions {
                flows_per_second: rate,
                ..DemoOptions::default()
            };
            assert!(matches!(
                run(target, options, std::future::pending()).await,
                Err(DemoError::Rate(_))
            ));
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_counted_not_fatal() {
        // A port that was just free: nothing listens on it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let target = Target {
            grpc: addr,
            http: addr,
        };
        let options = DemoOptions {
            flows_per_second: 50.0,
            seed: 1,
        };
        let stats = run(
            target,
            options,
            tokio::time::sleep(Duration::from_millis(1_500)),
        )
        .await
        .unwrap();
        assert_eq!(stats.requests, 0);
        assert_eq!(stats.spans, 0);
        assert!(stats.failures >= 1, "{stats:?}");
    }
}
