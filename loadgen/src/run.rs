//! A load run: workers each with their own generator and connection, paced
//! to a share of the target rate (or sending again as soon as an answer
//! comes), a progress line every second, and the merged report at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;

use crate::LoadError;
use crate::generate::{Generator, SpanShape};
use crate::report::{Latency, Report};
use crate::send::{Outcome, Sender, Target};

/// Flat spans, or journeys that cross queues and functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    Flat,
    Hybrid,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub target: Target,
    /// Spans per second in all; `None` sends as fast as answers come.
    pub rate: Option<u64>,
    pub duration: Duration,
    /// Workers, each with one connection and one request in flight.
    pub concurrency: usize,
    pub shape: SpanShape,
    pub topology: Topology,
    /// A progress line on stderr every second.
    pub progress: bool,
    /// Varies the ids between runs; a fixed value repeats a run's ids.
    pub seed: u64,
}

#[derive(Default)]
struct Live {
    acked: AtomicU64,
    failed: AtomicU64,
}

struct WorkerResult {
    requests: u64,
    sent: u64,
    acked: u64,
    rejected: u64,
    latency: Histogram<u64>,
    errors: BTreeMap<String, u64>,
}

fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

async fn worker(
    config: Arc<LoadConfig>,
    index: usize,
    live: Arc<Live>,
    deadline: Instant,
) -> Result<WorkerResult, LoadError> {
    let mut sender = Sender::new(&config.target)?;
    let salt = config
        .seed
        .wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut generator = match config.topology {
        Topology::Flat => Generator::flat(config.shape, salt),
        Topology::Hybrid => Generator::hybrid(salt),
    };
    let share = config.rate.map(|r| r as f64 / config.concurrency as f64);
    let mut result = WorkerResult {
        requests: 0,
        sent: 0,
        acked: 0,
        rejected: 0,
        latency: histogram(),
        errors: BTreeMap::new(),
    };
    let mut scheduled = Instant::now();
    while Instant::now() < deadline {
        let (request, spans) = generator.next_request(now_unix_nano());
        if share.is_some() {
            tokio::time::sleep_until(scheduled.into()).await;
            if Instant::now() >= deadline {
                break;
            }
        }
        let started = if share.is_some() {
            scheduled
        } else {
            Instant::now()
        };
        let outcome = sender.send(request).await;
        let elapsed = started.elapsed();
        result.requests += 1;
        result.sent += spans as u64;
        match outcome {
            Outcome::Acked { rejected } => {
                let acked = (spans as u64).saturating_sub(rejected);
                result.acked += acked;
                result.rejected += rejected;
                live.acked.fetch_add(acked, Ordering::Relaxed);
                let _ = result.latency.record((elapsed.as_micros() as u64).max(1));
            }
            Outcome::Failed(code) => {
                *result.errors.entry(code).or_insert(0) += 1;
                live.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(share) = share {
            scheduled += Duration::from_secs_f64(spans as f64 / share);
        }
    }
    Ok(result)
}

/// Runs the load and returns what it achieved.
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    if config.concurrency == 0 {
        return Err(LoadError::Options("concurrency must be at least 1".into()));
    }
    if config.shape.batch == 0 {
        return Err(LoadError::Options("batch must be at least 1 span".into()));
    }
    if config.rate == Some(0) {
        return Err(LoadError::Options(
            "rate must be positive (leave it out for max throughput)".into(),
        ));
    }
    let config = Arc::new(config);
    let live = Arc::new(Live::default());
    let started = Instant::now();
    let deadline = started + config.duration;
    let progress = config.progress.then(|| {
        let live = live.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let acked = live.acked.load(Ordering::Relaxed);
                eprintln!(
                    "[{:>4.0}s] {acked} spans acked, {} spans/s now, {} failed requests",
                    started.elapsed().as_secs_f64(),
                    acked - last,
                    live.failed.load(Ordering::Relaxed)
                );
                last = acked;
            }
        })
    });
    let workers: Vec<_> = (0..config.concurrency)
        .map(|i| tokio::spawn(worker(config.clone(), i, live.clone(), deadline)))
        .collect();
    let mut latency = histogram();
    let mut report = Report::default();
    for w in workers {
        let r = w
            .await
            .map_err(|e| LoadError::Options(format!("a worker failed: {e}")))??;
        report.requests += r.requests;
        report.spans_sent += r.sent;
        report.spans_acked += r.acked;
        report.spans_rejected += r.rejected;
        let _ = latency.add(&r.latency);
        for (code, n) in r.errors {
            *report.errors.entry(code).or_insert(0) += n;
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    let duration = started.elapsed().as_secs_f64();
    let t = &config.target;
    report.endpoint = t.endpoint.clone();
    report.protocol = format!("{:?}", t.protocol).to_lowercase();
    report.encoding = format!("{:?}", t.encoding).to_lowercase();
    report.gzip = t.gzip;
    report.topology = format!("{:?}", config.topology).to_lowercase();
    report.concurrency = config.concurrency;
    report.batch = config.shape.batch;
    report.attributes = config.shape.attributes;
    report.attribute_size = config.shape.attribute_size;
    report.target_rate = config.rate;
    report.duration_s = duration;
    report.spans_per_sec = report.spans_acked as f64 / duration.max(1e-9);
    report.ack_latency = if latency.is_empty() {
        Latency::default()
    } else {
        Latency::from_histogram(&latency)
    };
    Ok(report)
}
