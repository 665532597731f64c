//! The ingest pipeline behind both receivers: read a request (in place
//! from its protobuf bytes where it can, see [`crate::view`]), normalize
//! every span, build its rows, hand them to the store's write protocol, and
//! say what was accepted.
//!
//! One [`Writer::write`] per request logs it, appends its rows and queues
//! what correlation needs of its spans (taken while the rows are at hand),
//! before it is acknowledged: an acknowledged span survives a crash and is
//! visible to the very next query. The pipeline knows nothing of how the
//! store keeps that promise.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest,
};
use prost::Message;
use seam_correlate::{Extractor, Note, TraceParts};
use seam_model::{BearerTokens, Capacity, SpanBatchBuilder, SpanRow};
use seam_store::{PendingRows, Rows, StoreError, Table, WalError, Write, WriteError, Writer};
use tracing::debug;

use crate::config::ReceiverConfig;
use crate::limits::{Admission, LimitsConfig, MemoryGauge};
use crate::metrics::IngestMetrics;
use crate::normalize::{self, ResourceContext, ScopeContext};
use crate::view::Export;

/// What happened to one export request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestOutcome {
    pub accepted: u64,
    pub rejected: u64,
    /// Why spans were rejected: the first reason and how many more.
    pub message: Option<String>,
}

impl IngestOutcome {
    /// OTLP's `partial_success`: set only when something was rejected, as
    /// the specification asks (an empty one confuses some clients' logs).
    pub fn partial_success(&self) -> Option<ExportTracePartialSuccess> {
        (self.rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(self.rejected).unwrap_or(i64::MAX),
            error_message: self.message.clone().unwrap_or_default(),
        })
    }
}

/// The pipeline failed on data it had accepted as valid; the exporter
/// should retry.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("building the span batch: {0}")]
    Batch(#[from] arrow::error::ArrowError),
    #[error("storing the span batch: {0}")]
    Store(#[from] StoreError),
    /// The log could not take the request: nothing was stored, the
    /// exporter should retry.
    #[error("{0}")]
    Wal(#[from] WalError),
    /// The server is stopping (a stage it needs has stopped).
    #[error("the server is stopping; retry")]
    Stopping,
    /// Seam is above its memory limit; the exporter should retry later.
    #[error("the server is above its {limit} memory limit; retry later")]
    Overloaded { limit: String },
    /// Every turn to store was taken for longer than `limits.queue_wait`.
    #[error("the server is busy storing other exports; retry later")]
    Busy,
    /// The bytes are not an OTLP protobuf request; nothing was stored.
    #[error("malformed OTLP protobuf: {0}")]
    Malformed(#[from] prost::DecodeError),
}

impl From<WriteError> for IngestError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Wal(e) => Self::Wal(e),
            // Logged but not stored: the store stops the server, whose
            // restart replays the log; the exporter retries meanwhile.
            WriteError::Store(_) | WriteError::FollowerStopped => Self::Stopping,
        }
    }
}

impl IngestError {
    /// Whether the exporter should send the same request again: the
    /// write-ahead log failing is a passing condition (a full or slow
    /// disk), and nothing of the request was kept.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Self::Wal(_) | Self::Stopping | Self::Overloaded { .. } | Self::Busy
        )
    }

    /// Whether this is Seam pushing back under load (retry after a pause),
    /// rather than failing.
    pub fn is_pushback(&self) -> bool {
        matches!(self, Self::Overloaded { .. } | Self::Busy)
    }
}

/// A point-in-time copy of the pipeline's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub spans_accepted: u64,
    pub spans_rejected: u64,
    pub links_dropped: u64,
    pub malformed_requests: u64,
    pub attributes_truncated: u64,
    pub strings_truncated: u64,
    pub refused_overloaded: u64,
    pub refused_busy: u64,
}

pub struct Pipeline {
    writer: Arc<Writer<Note>>,
    /// Whether requests are logged: always, but in benchmarks that
    /// measure the rest of ingest.
    logged: bool,
    /// Text one of a request's own batches holds at most.
    batch_bytes: usize,
    config: ReceiverConfig,
    /// Reads what correlation needs of each span; `None` without correlation.
    extractor: Option<Extractor>,
    tokens: BearerTokens,
    limits: LimitsConfig,
    memory: Arc<MemoryGauge>,
    admission: Admission,
    metrics: IngestMetrics,
}

/// What the write-ahead log keeps of a request.
#[derive(Clone, Copy)]
enum Log<'a> {
    /// Nothing: it is being replayed from the log.
    No,
    /// The request, encoded as protobuf.
    Encode(&'a ExportTraceServiceRequest),
    /// The protobuf bytes it was read from.
    Received(&'a [u8]),
}

/// Requests with fewer accepted spans than this, nearly all of them,
/// share one builder ([`Shared`]); larger ones build a batch of their own.
const OWN_BATCH: usize = Table::DEFAULT_MERGE_ROWS;

/// Requests whose rows hold more text than this build batches of their
/// own too, so the shared builder stays far from the 2 GiB its columns'
/// 32-bit offsets can address (it is finished at 256 MiB).
const SHARED_MAX_BYTES: usize = 32 * 1024 * 1024;

/// Text one batch of a request holds at most before another is started:
/// whatever `limits.max_request_memory` says, no column overflows.
const BATCH_BYTES: usize = 256 * 1024 * 1024;

/// The `spans` table's shared builder. It is finished when it holds a
/// merged segment's rows, so rows are copied into Arrow once: building a
/// batch per request and merging those into segments copied every row
/// twice (the merge was a tenth of ingest CPU), and a batch of the spans
/// schema costs tens of microseconds to finish however few rows it has
/// (functions export two or three spans per invocation).
struct Shared {
    builder: SpanBatchBuilder,
    /// Room for the next segment: measured on the last full one.
    room: Capacity,
}

impl Shared {
    fn new() -> Self {
        Self {
            builder: SpanBatchBuilder::with_capacity(gathered()),
            room: gathered(),
        }
    }
}

impl PendingRows for Shared {
    fn rows(&self) -> usize {
        self.builder.len()
    }

    fn bytes(&self) -> usize {
        self.builder.bytes()
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let batch = self.builder.finish()?;
        let rows = batch.num_rows();
        if rows >= OWN_BATCH {
            // The next segment of a steady stream is this one's size.
            self.room = Capacity::measured(&batch);
        }
        self.builder = SpanBatchBuilder::with_capacity(self.room);
        if rows >= OWN_BATCH / 2 {
            return Ok(batch);
        }
        // Finished early for a snapshot: a copy of the rows, so the batch
        // does not hold (and count against the seal size) a segment's room.
        let all = arrow::array::UInt32Array::from_iter_values(0..rows as u32);
        arrow::compute::take_record_batch(&batch, &all)
    }
}

/// The batches of a request built apart from the shared builder, cut
/// where their text reaches `batch_bytes`.
struct Own {
    builder: SpanBatchBuilder,
    done: Vec<RecordBatch>,
    batch_bytes: usize,
}

impl Own {
    fn append(&mut self, row: &SpanRow<'_>) -> Result<(), ArrowError> {
        if !self.builder.is_empty() && self.builder.bytes() + row.text_bytes() > self.batch_bytes {
            self.done.push(self.builder.finish()?);
        }
        self.builder.append(row);
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<RecordBatch>, ArrowError> {
        if !self.builder.is_empty() {
            self.done.push(self.builder.finish()?);
        }
        Ok(self.done)
    }
}

/// Room for the rows [`Shared`] gathers before it is finished.
fn gathered() -> Capacity {
    Capacity {
        rows: OWN_BATCH,
        attributes: OWN_BATCH * 8,
        links: 256,
        events: 256,
        text: None,
    }
}

/// What `request` holds, to size its batch's builders.
fn capacity(request: &Export<'_>) -> Capacity {
    let mut c = Capacity {
        rows: 0,
        attributes: 0,
        links: 0,
        events: 0,
        text: None,
    };
    for span in request.spans() {
        c.rows += 1;
        c.attributes += span.attributes.len();
        c.links += span.links.len();
        c.events += span.events.len();
    }
    c
}

/// Nanoseconds since the epoch on this machine's clock: when a half
/// arrived, for the correlation window.
pub fn now_unix_nano() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl Pipeline {
    /// A pipeline writing through `writer`, whose ingest table is `spans`
    /// (its small requests gather in one shared builder).
    pub fn new(writer: Arc<Writer<Note>>, spans: &Table, config: ReceiverConfig) -> Self {
        spans.gather_in(|| Box::new(Shared::new()));
        Self {
            tokens: BearerTokens::new(config.bearer_tokens.clone()),
            writer,
            logged: true,
            batch_bytes: BATCH_BYTES,
            config,
            extractor: None,
            limits: LimitsConfig::default(),
            memory: Arc::new(MemoryGauge::default()),
            admission: Admission::new(&LimitsConfig::default()),
            metrics: IngestMetrics::default(),
        }
    }

    /// Applies `limits`, reading resident memory from `memory` (which the
    /// server keeps sampled).
    pub fn with_limits(mut self, limits: LimitsConfig, memory: Arc<MemoryGauge>) -> Self {
        self.admission = Admission::new(&limits);
        self.limits = limits;
        self.memory = memory;
        self
    }

    /// Waits for a turn to store an export (see `limits.queue_wait`);
    /// `Err(Busy)` when none came in time. The receivers hold the turn
    /// while the export is stored.
    pub async fn turn(&self) -> Result<tokio::sync::SemaphorePermit<'_>, IngestError> {
        match self.admission.turn().await {
            Some(turn) => Ok(turn),
            None => {
                self.metrics.refused_busy.inc();
                Err(IngestError::Busy)
            }
        }
    }

    /// Stores requests without logging them: only for measuring what the
    /// rest of ingest costs. Nothing stored this way survives a restart.
    pub fn without_log(mut self) -> Self {
        self.logged = false;
        self
    }

    /// Reads what correlation needs of every accepted span with
    /// `extractor`, and hands it on with the span's write.
    pub fn with_correlation(mut self, extractor: Extractor) -> Self {
        self.extractor = Some(extractor);
        self
    }

    pub fn config(&self) -> &ReceiverConfig {
        &self.config
    }

    /// The tokens an export must carry one of (none: no authentication).
    pub fn tokens(&self) -> &BearerTokens {
        &self.tokens
    }

    /// Normalizes, logs and stores every valid span of `request` (decoded
    /// by prost: from OTLP JSON, or built by the caller).
    pub fn ingest(
        &self,
        request: &ExportTraceServiceRequest,
    ) -> Result<IngestOutcome, IngestError> {
        self.admit()?;
        self.process(&Export::from(request), Log::Encode(request))
    }

    /// [`Pipeline::ingest`] for a request's protobuf bytes as they arrived:
    /// read in place, and logged as they are (encoding the request again
    /// cost a fifth of ingest). Bytes that are not a request are counted
    /// as malformed and refused with [`IngestError::Malformed`].
    pub fn ingest_protobuf(&self, received: &[u8]) -> Result<IngestOutcome, IngestError> {
        self.admit()?;
        Export::decode_then(received, |request| {
            self.process(request, Log::Received(received))
        })
        .unwrap_or_else(|e| {
            self.record_malformed();
            Err(IngestError::Malformed(e))
        })
    }

    /// Counts a request and refuses it above the memory limit.
    fn admit(&self) -> Result<(), IngestError> {
        self.metrics.requests.inc();
        if self.memory.get() > self.limits.memory.as_u64() {
            self.metrics.refused_overloaded.inc();
            return Err(IngestError::Overloaded {
                limit: self.limits.memory.display().iec().to_string(),
            });
        }
        Ok(())
    }

    /// Stores a request read back from the write-ahead log at start: the
    /// same path as [`Pipeline::ingest_protobuf`], without logging it again.
    pub fn replay(&self, record: &[u8]) -> Result<IngestOutcome, IngestError> {
        Export::decode_then(record, |request| self.process(request, Log::No))?
    }

    fn process(&self, request: &Export<'_>, log: Log<'_>) -> Result<IngestOutcome, IngestError> {
        let rules = self.config.rules();
        let capacity = capacity(request);
        let mut outcome = IngestOutcome::default();
        let mut first_rejection = None;
        let mut links_dropped = 0;
        let (mut truncated, mut strings_cut) = (0, 0);
        let mut spans_seen = 0usize;
        let mut request_bytes = 0usize;
        let max_request_bytes =
            usize::try_from(self.limits.max_request_memory.as_u64()).unwrap_or(usize::MAX);
        let extractor = self.extractor.as_ref();
        let mut observed = Vec::new();
        let mut traces = TraceParts::default();
        // Rows borrow their resource's attributes, so every resource is
        // read before the first row is made.
        let resources: Vec<ResourceContext> = request
            .resource_spans
            .iter()
            .map(|r| {
                let mut resource = ResourceContext::new(r.resource.as_deref().unwrap_or_default());
                let (attributes, strings) = self.limits.apply_resource(&mut resource);
                truncated += attributes;
                strings_cut += strings;
                resource
            })
            .collect();
        // A request of a segment's spans or more is built into batches of
        // its own as its spans are normalized; the others' rows go to the
        // shared builder in one step.
        let mut own = (capacity.rows >= OWN_BATCH).then(|| Own {
            builder: SpanBatchBuilder::with_capacity(Capacity {
                rows: capacity.rows.min(self.limits.max_spans_per_request),
                ..capacity
            }),
            done: Vec::new(),
            batch_bytes: self.batch_bytes,
        });
        let mut rows = Vec::with_capacity(if own.is_none() { capacity.rows } else { 0 });
        let nested = normalize::nesting::nested_spans(request, &resources);
        let transport = normalize::transport::transport_spans(request);
        let instances = normalize::nesting::span_instances(request, &resources);
        for (ri, (resource_spans, resource)) in
            request.resource_spans.iter().zip(&resources).enumerate()
        {
            for (si, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
                let scope = ScopeContext::new(scope_spans.scope.as_ref());
                for (i, span) in scope_spans.spans.iter().enumerate() {
                    spans_seen += 1;
                    let normalized = if spans_seen > self.limits.max_spans_per_request {
                        Err(normalize::Rejection::TooManySpans(
                            self.limits.max_spans_per_request,
                        ))
                    } else {
                        normalize::normalize(span, resource, &scope, rules, &mut links_dropped)
                    };
                    let normalized = normalized.and_then(|mut row| {
                        // Most requests have none of these: no lookups then.
                        if !nested.is_empty() && nested.contains(&(ri, si, i)) {
                            normalize::mark_nested(&mut row);
                        }
                        row.transport = !transport.is_empty() && transport.contains(&(ri, si, i));
                        if row.instance.is_none() && !instances.is_empty() {
                            row.instance = instances.get(&(ri, span.trace_id)).cloned();
                        }
                        let (attributes, strings) = self.limits.apply_row(&mut row);
                        truncated += attributes;
                        strings_cut += strings;
                        let bytes = row.text_bytes();
                        if request_bytes + bytes > max_request_bytes {
                            return Err(normalize::Rejection::RequestTooLarge(
                                self.limits.max_request_memory,
                            ));
                        }
                        request_bytes += bytes;
                        Ok(row)
                    });
                    match normalized {
                        Ok(row) => {
                            if let Some(extractor) = extractor {
                                let o = extractor.observe(&row);
                                if !o.is_empty() {
                                    observed.push(o);
                                }
                                traces.add(&row);
                            }
                            match &mut own {
                                Some(own) => own.append(&row)?,
                                None => rows.push(row),
                            }
                            outcome.accepted += 1;
                        }
                        Err(why) => {
                            outcome.rejected += 1;
                            first_rejection.get_or_insert_with(|| {
                                let name = &span.name[..span.name.floor_char_boundary(128)];
                                format!(
                                    "span {name:?} (span_id {}): {why}",
                                    const_hex::encode(span.span_id)
                                )
                            });
                        }
                    }
                }
            }
        }
        // Rows with too much text for the shared builder get batches of
        // their own after all.
        if own.is_none() && request_bytes >= SHARED_MAX_BYTES {
            let mut big = Own {
                builder: SpanBatchBuilder::with_capacity(Capacity {
                    rows: rows.len(),
                    ..capacity
                }),
                done: Vec::new(),
                batch_bytes: self.batch_bytes,
            };
            for row in rows.drain(..) {
                big.append(&row)?;
            }
            own = Some(big);
        }
        if let Some(first) = first_rejection {
            let more = outcome.rejected - 1;
            outcome.message = Some(if more == 0 {
                first
            } else {
                format!("{first}; and {more} more")
            });
            debug!(
                rejected = outcome.rejected,
                reason = outcome.message.as_deref(),
                "rejected spans"
            );
        }
        if outcome.accepted > 0 {
            let batches = match own {
                Some(own) => Some(own.finish()?),
                None => None,
            };
            let encoded;
            let log = match log {
                _ if !self.logged => None,
                Log::No => None,
                Log::Received(bytes) => Some(bytes),
                Log::Encode(request) => {
                    encoded = request.encode_to_vec();
                    Some(encoded.as_slice())
                }
            };
            let mut gather = |b: &mut dyn PendingRows| {
                let shared = (b as &mut dyn std::any::Any)
                    .downcast_mut::<Shared>()
                    .expect("the spans table gathers in the pipeline's builder");
                for row in &rows {
                    shared.builder.append(row);
                }
            };
            let rows = match batches {
                Some(batches) => Rows::Batches(batches),
                None => Rows::Gathered(&mut gather),
            };
            let note = (!observed.is_empty() || !traces.is_empty()).then(|| {
                let (traces, said_cold, operations) = traces.into_parts();
                Note {
                    observed,
                    traces,
                    said_cold,
                    operations,
                    arrived: now_unix_nano(),
                }
            });
            self.writer.write(Write { log, rows, note })?;
        }
        self.metrics.spans_accepted.inc_by(outcome.accepted);
        self.metrics.spans_rejected.inc_by(outcome.rejected);
        self.metrics.links_dropped.inc_by(links_dropped);
        self.metrics.attributes_truncated.inc_by(truncated);
        self.metrics.strings_truncated.inc_by(strings_cut);
        Ok(outcome)
    }

    /// Counts a request that could not be decoded at all.
    pub fn record_malformed(&self) {
        self.metrics.malformed_requests.inc();
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    pub fn stats(&self) -> StatsSnapshot {
        let m = &self.metrics;
        StatsSnapshot {
            requests: m.requests.get(),
            spans_accepted: m.spans_accepted.get(),
            spans_rejected: m.spans_rejected.get(),
            links_dropped: m.links_dropped.get(),
            malformed_requests: m.malformed_requests.get(),
            attributes_truncated: m.attributes_truncated.get(),
            strings_truncated: m.strings_truncated.get(),
            refused_overloaded: m.refused_overloaded.get(),
            refused_busy: m.refused_busy.get(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow::array::AsArray;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use seam_model::schema::col;
    use seam_model::tables::SPANS;

    use super::*;

    /// A request with `n` valid spans of one trace, from a Kubernetes service.
    pub fn request(n: u8) -> ExportTraceServiceRequest {
        let spans = (1..=n)
            .map(|i| Span {
                trace_id: vec![0xab; 16],
                span_id: vec![i; 8],
                name: format!("op-{i}"),
                kind: 2,
                start_time_unix_nano: 1_700_000_000_000_000_000,
                end_time_unix_nano: 1_700_000_000_100_000_000,
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(Value::StringValue("checkout".into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// `request(1)` with `n` spans of distinct ids.
    fn spans(n: u64) -> ExportTraceServiceRequest {
        let mut req = request(1);
        let spans = &mut req.resource_spans[0].scope_spans[0].spans;
        let one = spans[0].clone();
        *spans = (1..=n)
            .map(|i| Span {
                span_id: i.to_be_bytes().to_vec(),
                ..one.clone()
            })
            .collect();
        req
    }

    /// A store in a temporary directory, and its spans table.
    pub struct Fixture {
        pub dir: tempfile::TempDir,
        pub store: Arc<seam_store::Store>,
        pub table: Arc<Table>,
    }

    impl Fixture {
        pub fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = seam_store::Store::open_default(dir.path(), seam_model::tables::all())
                .unwrap()
                .store;
            let table = store.table(SPANS);
            Self { dir, store, table }
        }

        pub fn pipeline(&self, config: ReceiverConfig) -> Pipeline {
            Pipeline::new(Arc::new(self.store.writer(SPANS)), &self.table, config)
        }

        /// A pipeline under `limits`, memory never past them.
        pub fn limited(&self, limits: LimitsConfig) -> Pipeline {
            self.pipeline(ReceiverConfig::default())
                .with_limits(limits, Arc::new(MemoryGauge::default()))
        }
    }

    fn pipeline() -> (Arc<Table>, Pipeline, Fixture) {
        let f = Fixture::new();
        (f.table.clone(), f.pipeline(ReceiverConfig::default()), f)
    }

    #[test]
    fn valid_request_is_stored_before_ingest_returns() {
        let (table, p, _f) = pipeline();
        let out = p.ingest(&request(3)).unwrap();
        assert_eq!(
            out,
            IngestOutcome {
                accepted: 3,
                rejected: 0,
                message: None
            }
        );
        assert_eq!(out.partial_success(), None);
        assert_eq!(table.snapshot().num_rows(), 3);
    }

    #[test]
    fn requests_share_a_builder_and_only_a_segment_sized_one_has_its_own() {
        let (table, p, _f) = pipeline();
        for _ in 0..20 {
            p.ingest(&request(2)).unwrap();
        }
        p.ingest(&request(200)).unwrap();
        let snapshot = table.snapshot();
        assert_eq!(snapshot.num_rows(), 240);
        assert_eq!(snapshot.segments.len(), 1, "twenty-one requests, one batch");
        let names = arrow::compute::cast(
            snapshot.segments[0]
                .batch
                .column_by_name(col::NAME)
                .unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        let names = names
            .as_string::<i32>()
            .iter()
            .flatten()
            .filter(|n| *n == "op-2")
            .count();
        assert_eq!(names, 21, "the rows themselves, not only their count");
        // A request of a whole segment's spans is its own batch.
        p.ingest(&spans(OWN_BATCH as u64)).unwrap();
        p.ingest(&request(1)).unwrap();
        let snapshot = table.snapshot();
        assert_eq!(snapshot.num_rows(), 240 + OWN_BATCH + 1);
        let sizes: Vec<usize> = snapshot
            .segments
            .iter()
            .map(|s| s.batch.num_rows())
            .collect();
        assert_eq!(sizes, vec![240, OWN_BATCH, 1]);
    }

    #[test]
    fn a_builder_finished_early_keeps_no_room_for_a_segment() {
        let (table, p, _f) = pipeline();
        p.ingest(&request(3)).unwrap();
        let (hot, _) = table.hot_usage();
        assert_eq!(hot, 0, "gathered rows are counted when finished");
        let snapshot = table.snapshot();
        let (hot, _) = table.hot_usage();
        assert_eq!(hot, snapshot.segments[0].batch.get_array_memory_size());
        // A segment's room would be megabytes; three spans are not.
        assert!(hot < 64 * 1024, "{hot} bytes for three spans");
    }

    #[test]
    fn bytes_that_are_not_a_request_are_refused_counted_and_lose_nothing() {
        let (table, p, _f) = pipeline();
        p.ingest_protobuf(&request(2).encode_to_vec()).unwrap();
        let err = p.ingest_protobuf(&[0x0a, 0x05, 0xff]).unwrap_err();
        assert!(matches!(err, IngestError::Malformed(_)), "{err}");
        assert!(!err.retryable() && !err.is_pushback());
        assert!(err.to_string().contains("malformed OTLP protobuf"), "{err}");
        let stats = p.stats();
        assert_eq!((stats.requests, stats.malformed_requests), (2, 1));
        assert_eq!(table.snapshot().num_rows(), 2, "earlier spans stay");
        // Read back from the log, the same bytes are skipped, not counted.
        assert!(matches!(
            p.replay(&[0x0a, 0x05, 0xff]),
            Err(IngestError::Malformed(_))
        ));
        assert_eq!(p.stats().malformed_requests, 1);
    }

    #[test]
    fn the_log_keeps_received_bytes_as_they_arrived() {
        let (table, p, f) = pipeline();
        // A field this version does not know (number 99, a varint): decoding
        // skips it, encoding again would drop it.
        let mut received = request(2).encode_to_vec();
        received.extend_from_slice(&[0x98, 0x06, 0x01]);
        let decoded = ExportTraceServiceRequest::decode(received.as_slice()).unwrap();
        assert_ne!(decoded.encode_to_vec(), received);
        p.ingest_protobuf(&received).unwrap();
        p.ingest(&request(1)).unwrap();
        assert_eq!(table.snapshot().num_rows(), 3);
        drop((p, f.store));
        let wal = f.dir.path().join("wal");
        let (_, replay) = seam_store::Wal::open(&wal, seam_store::WalConfig::default()).unwrap();
        let records: Vec<Vec<u8>> = replay.map(Result::unwrap).collect();
        assert_eq!(records, vec![received, request(1).encode_to_vec()]);
    }

    #[test]
    fn invalid_spans_are_rejected_and_the_rest_kept() {
        let (table, p, _f) = pipeline();
        let mut req = request(4);
        let spans = &mut req.resource_spans[0].scope_spans[0].spans;
        spans[1].trace_id = vec![1; 8];
        spans[3].span_id = vec![0; 8];
        let out = p.ingest(&req).unwrap();
        assert_eq!((out.accepted, out.rejected), (2, 2));
        let partial = out.partial_success().unwrap();
        assert_eq!(partial.rejected_spans, 2);
        assert!(
            partial.error_message.contains("invalid trace_id"),
            "{}",
            partial.error_message
        );
        assert!(
            partial.error_message.contains("1 more"),
            "{}",
            partial.error_message
        );
        assert_eq!(table.snapshot().num_rows(), 2);
        assert_eq!(p.stats().spans_rejected, 2);
    }

    #[test]
    fn limits_reject_extra_spans_and_cut_attributes_counting_both() {
        let f = Fixture::new();
        let table = f.table.clone();
        let limits = LimitsConfig {
            max_spans_per_request: 3,
            max_attributes_per_span: 1,
            max_attribute_value_length: 4,
            ..LimitsConfig::default()
        };
        let p = f.limited(limits);
        let mut req = request(5);
        for span in &mut req.resource_spans[0].scope_spans[0].spans {
            for (k, v) in [("a", "long value"), ("b", "x")] {
                span.attributes.push(KeyValue {
                    key: k.into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(v.into())),
                    }),
                    ..Default::default()
                });
            }
        }
        let out = p.ingest(&req).unwrap();
        assert_eq!((out.accepted, out.rejected), (3, 2));
        assert!(
            out.message
                .as_deref()
                .unwrap()
                .contains("max_spans_per_request"),
            "{:?}",
            out.message
        );
        // Per kept span "b" dropped and "long value" cut, and the
        // resource's "checkout" cut once.
        assert_eq!(p.stats().attributes_truncated, 7);
        assert_eq!(table.snapshot().num_rows(), 3);
    }

    #[test]
    fn above_the_memory_limit_exports_are_refused_as_retryable() {
        let f = Fixture::new();
        let table = f.table.clone();
        let gauge = Arc::new(MemoryGauge::default());
        let limits = LimitsConfig {
            memory: bytesize::ByteSize::mib(100),
            ..LimitsConfig::default()
        };
        let p = f
            .pipeline(ReceiverConfig::default())
            .with_limits(limits, gauge.clone());
        gauge.set(101 * 1024 * 1024);
        let err = p.ingest(&request(2)).unwrap_err();
        assert!(err.retryable(), "{err}");
        assert!(err.to_string().contains("memory limit"), "{err}");
        assert_eq!(table.snapshot().num_rows(), 0);
        gauge.set(50 * 1024 * 1024);
        assert_eq!(p.ingest(&request(2)).unwrap().accepted, 2);
        assert_eq!(p.stats().refused_overloaded, 1);
    }

    fn text(value: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(Value::StringValue(value.into())),
        })
    }

    #[test]
    fn every_string_from_the_network_is_cut_at_the_limit_and_counted() {
        let f = Fixture::new();
        let limits = LimitsConfig {
            max_attribute_value_length: 1000,
            ..LimitsConfig::default()
        };
        let p = f.limited(limits);
        let long = "é".repeat(50_000);
        let mut req = request(1);
        let resource = req.resource_spans[0].resource.as_mut().unwrap();
        resource.attributes[0].value = text(&long);
        resource.attributes.push(KeyValue {
            key: long.clone(),
            value: text("v"),
            ..Default::default()
        });
        let span = &mut req.resource_spans[0].scope_spans[0].spans[0];
        span.name = long.clone();
        span.trace_state = long.clone();
        span.status = Some(opentelemetry_proto::tonic::trace::v1::Status {
            message: long.clone(),
            code: 2,
        });
        span.events
            .push(opentelemetry_proto::tonic::trace::v1::span::Event {
                name: long.clone(),
                ..Default::default()
            });
        span.attributes.push(KeyValue {
            key: "messaging.destination.name".into(),
            value: text(&long),
            ..Default::default()
        });
        let out = p.ingest(&req).unwrap();
        assert_eq!(out.accepted, 1);
        let snapshot = table_rows(&f.table);
        for column in [col::NAME, col::TRACE_STATE, col::STATUS_MESSAGE] {
            let values = arrow::compute::cast(
                snapshot.column_by_name(column).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let values = values.as_string::<i32>();
            assert_eq!(values.value(0).len(), 1000, "{column}");
            assert!(values.value(0).starts_with("éé"), "cut on a char boundary");
        }
        let service = arrow::compute::cast(
            snapshot.column_by_name(col::SERVICE_NAME).unwrap(),
            &arrow::datatypes::DataType::Utf8,
        )
        .unwrap();
        assert_eq!(service.as_string::<i32>().value(0).len(), 1000);
        let stats = p.stats();
        // Name, trace state, status message, event name, the service and
        // the destination read from the attributes.
        assert_eq!(stats.strings_truncated, 6);
        // The resource's value and key, the span's destination value.
        assert_eq!(stats.attributes_truncated, 3);
    }

    /// Every row the table holds, as one batch.
    fn table_rows(table: &Table) -> RecordBatch {
        let snapshot = table.snapshot();
        let batches: Vec<RecordBatch> = snapshot.segments.iter().map(|s| s.batch.clone()).collect();
        arrow::compute::concat_batches(&snapshot.hot_schema, &batches).unwrap()
    }

    #[test]
    fn a_large_resource_over_many_spans_stops_at_the_request_memory() {
        let f = Fixture::new();
        let limits = LimitsConfig {
            max_request_memory: bytesize::ByteSize::mib(1),
            ..LimitsConfig::default()
        };
        let p = f.limited(limits);
        // 32 KiB of resource, carried by each of 1,000 spans: 32 MiB of
        // rows from a request of 40 KiB.
        let mut req = spans(1000);
        let resource = req.resource_spans[0].resource.as_mut().unwrap();
        resource.attributes.push(KeyValue {
            key: "big".into(),
            value: text(&"x".repeat(32 * 1024)),
            ..Default::default()
        });
        let out = p.ingest(&req).unwrap();
        assert_eq!(out.accepted, 31, "1 MiB of rows of 32 KiB and a little");
        assert_eq!(out.rejected, 969);
        let message = out.message.unwrap();
        assert!(message.contains("limits.max_request_memory"), "{message}");
        assert!(message.contains("1.0 MiB"), "{message}");
        assert_eq!(f.table.num_rows(), 31);
    }

    #[test]
    fn a_request_with_much_text_is_split_into_batches_below_the_offset_limit() {
        let resource = Vec::new();
        let row = |i: u64| {
            let mut row = SpanRow::new(
                seam_model::TraceId([1; 16]),
                seam_model::SpanId(i.to_be_bytes()),
                1,
                2,
                &resource,
            );
            row.name = "n".repeat(1000).into();
            row
        };
        let bytes = row(0).text_bytes();
        let mut own = Own {
            builder: SpanBatchBuilder::new(),
            done: Vec::new(),
            batch_bytes: 10 * bytes,
        };
        for i in 0..95 {
            own.append(&row(i)).unwrap();
        }
        let batches = own.finish().unwrap();
        let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [10, 10, 10, 10, 10, 10, 10, 10, 10, 5]);
        // Through the pipeline, every row is stored.
        let f = Fixture::new();
        let mut p = f.pipeline(ReceiverConfig::default());
        p.batch_bytes = 64 * 1024;
        p.ingest(&spans(OWN_BATCH as u64 + 1)).unwrap();
        assert_eq!(f.table.num_rows(), OWN_BATCH + 1);
    }

    #[test]
    fn empty_request_is_a_full_success() {
        let (table, p, _f) = pipeline();
        let out = p.ingest(&ExportTraceServiceRequest::default()).unwrap();
        assert_eq!(out.partial_success(), None);
        assert_eq!(table.snapshot().num_rows(), 0);
    }
}
