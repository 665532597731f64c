//! What queries read of the correlation state: flow membership and
//! cold-start verdicts, applied to rows as a query scans them.
//!
//! ```text
//!  stored spans row (flow_id null, cold columns as the span said)
//!        │  resolve_spans: flow_id ◀── Flows; cold_* ◀── Overlay
//!        ▼
//!  the row a query sees
//! ```
//!
//! Resolving at read time is what lets a trace stitched an hour after it
//! was stored show up under its flow, without rewriting stored data.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int64Array, Int64Builder, RecordBatch,
    StringArray, StringBuilder, StringDictionaryBuilder,
};
use arrow::datatypes::{Int32Type, TimestampNanosecondType};
use arrow::error::ArrowError;
use parking_lot::RwLock;
use seam_model::schema::col;
use seam_model::{SpanId, TraceId};

use crate::coldstart::{Overlay, Verdict};
use crate::flows::Flows;
use crate::half::SpanKey;
use crate::operations::OperationRow;
use crate::rollup::{EdgeRow, FunctionRow, Rollups};
use crate::tables::boundary_col;
use crate::traces::{ActiveTraces, TraceIndex, TraceSet};

/// Deliveries of one message to one consumer service: the hash of
/// (producer trace, producer span, consumer service) → how many, and the
/// earliest (consumer time, consumer span's hash).
///
/// Hashes, not the strings: the counts over sealed rows are kept for as
/// long as the files are, and owned strings took four allocations a
/// boundary, about 250 bytes by their sizes against 40. Two keys collide
/// with odds of about n²/2¹²⁹ (10⁻²⁶ for a million boundaries). The
/// counts over every sealed row are taken again after each seal, so the
/// hash is XXH3, not SipHash: SipHash took most of that count, which the
/// first flow lookup after a seal waited for.
pub type Deliveries = HashMap<u128, (i64, (i64, u64)), foldhash::fast::RandomState>;

/// The [`Deliveries`] key of one message to one consumer service.
fn delivery_key(producer_trace: &str, producer_span: &str, consumer_service: &str) -> u128 {
    let parts = [producer_trace, producer_span, consumer_service];
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        key.extend_from_slice(part.as_bytes());
        // Never in UTF-8, so no two sets of parts join to the same bytes.
        key.push(0xff);
    }
    twox_hash::XxHash3_128::oneshot(&key)
}

/// A consumer span id's hash, to tell the earliest delivery from the rest.
fn span_hash(span: &str) -> u64 {
    twox_hash::XxHash3_128::oneshot(span.as_bytes()) as u64
}

/// A cheap, cloneable read handle on the correlation state.
#[derive(Debug, Clone)]
pub struct CorrelationView {
    pub(crate) flows: Arc<RwLock<Flows>>,
    pub(crate) overlay: Arc<RwLock<Overlay>>,
    /// Summaries not written to `traces` yet. Correlation holds this lock
    /// while it writes summaries to the table and drops them here, so a
    /// reader that takes the table's snapshot under it sees each summary
    /// once.
    pub(crate) traces: Arc<RwLock<ActiveTraces>>,
    /// Flagged and cold traces, boundaries by producer trace.
    pub(crate) index: Arc<RwLock<TraceIndex>>,
    /// Rollup buckets not written yet. Correlation holds this lock while
    /// it writes buckets and drops them here, as for `traces`.
    pub(crate) rollups: Arc<RwLock<Rollups>>,
    /// A correlator fills this view: without one, the trace sets know
    /// nothing of the stored traces.
    pub(crate) followed: bool,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| ArrowError::SchemaError(format!("no column {name}")))
}

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ArrowError> {
    column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| ArrowError::SchemaError(format!("{name} is not a string column")))
}

fn replace(batch: &RecordBatch, name: &str, array: ArrayRef) -> Result<RecordBatch, ArrowError> {
    let index = batch.schema().index_of(name)?;
    let mut columns = batch.columns().to_vec();
    columns[index] = array;
    RecordBatch::try_new(batch.schema(), columns)
}

/// A dictionary string column with some rows replaced.
fn dict_with(
    original: &ArrayRef,
    overrides: &HashMap<usize, Option<&str>>,
) -> Result<ArrayRef, ArrowError> {
    let as_text = arrow::compute::cast(original, &arrow::datatypes::DataType::Utf8)?;
    let text = as_text.as_string::<i32>();
    let mut b = StringDictionaryBuilder::<Int32Type>::new();
    for i in 0..text.len() {
        let value = match overrides.get(&i) {
            Some(v) => *v,
            None => text.is_valid(i).then(|| text.value(i)),
        };
        b.append_option(value);
    }
    Ok(Arc::new(b.finish()))
}

impl CorrelationView {
    /// A view of empty state, for a query engine without a correlator.
    pub fn empty() -> Self {
        Self {
            flows: Arc::new(RwLock::new(Flows::new(2, 2))),
            overlay: Arc::new(RwLock::new(Overlay::default())),
            traces: Arc::default(),
            index: Arc::default(),
            rollups: Arc::default(),
            followed: false,
        }
    }

    /// Runs `read` with the summaries not written to `traces` yet; `read`
    /// should take the table's snapshot too, so that every summary is in
    /// exactly one of the two.
    pub fn with_active_traces<T>(&self, read: impl FnOnce(&ActiveTraces) -> T) -> T {
        read(&self.traces.read())
    }

    /// Whether a correlator fills this view (a report can read its
    /// rollups); without one, only stored rows know anything.
    pub fn followed(&self) -> bool {
        self.followed
    }

    /// Runs `read` with the edge buckets in memory whose minute lies in
    /// `[from, to]`; `read` should take the rollup table's snapshot too,
    /// so that each bucket is in exactly one of the two.
    pub fn with_live_edges<T>(
        &self,
        from: i64,
        to: i64,
        read: impl FnOnce(Vec<EdgeRow>) -> T,
    ) -> T {
        let rollups = self.rollups.read();
        read(rollups.live_edges(from, to))
    }

    /// As [`Self::with_live_edges`], for functions: invocations not
    /// settled yet are judged with the verdicts known now.
    pub fn with_live_functions<T>(
        &self,
        from: i64,
        to: i64,
        read: impl FnOnce(Vec<FunctionRow>) -> T,
    ) -> T {
        let rollups = self.rollups.read();
        let live = rollups.live_functions(from, to, &self.overlay.read());
        read(live)
    }

    /// As [`Self::with_live_edges`], for operations.
    pub fn with_live_operations<T>(
        &self,
        from: i64,
        to: i64,
        read: impl FnOnce(Vec<OperationRow>) -> T,
    ) -> T {
        let rollups = self.rollups.read();
        read(rollups.live_operations(from, to))
    }

    /// Whether `trace` is on a flagged boundary (as far as remembered).
    pub fn trace_flagged(&self, trace: &TraceId) -> bool {
        self.index.read().flagged.contains(trace)
    }

    /// Whether the flagged traces known are every one there is: a
    /// correlator fills this view and none was forgotten at the cap.
    pub fn flagged_known(&self) -> bool {
        self.followed && self.index.read().flagged.complete()
    }

    /// Whether `trace` was joined to another trace.
    pub fn joined(&self, trace: &TraceId) -> bool {
        self.flows.read().is_indexed(trace)
    }

    /// Boundaries (all, flagged) whose producer is each of `traces`;
    /// `None` when some were forgotten at the cap or no correlator fills
    /// this view.
    pub fn producer_counts(&self, traces: &[TraceId]) -> Option<Vec<(u32, u32)>> {
        let index = self.index.read();
        (self.followed && index.producers.complete())
            .then(|| traces.iter().map(|t| index.producers.get(t)).collect())
    }

    /// On-demand cold starts in each of `traces`, as a read of their
    /// spans counts them: the verdicts reached, and the spans stored as
    /// cold that no verdict overrides. `None` when some stored ones were
    /// forgotten at the cap or no correlator fills this view.
    pub fn on_demand_counts(&self, traces: &[TraceId]) -> Option<Vec<u32>> {
        // The correlator takes the overlay before the index; so does this.
        let overlay = self.overlay.read();
        let index = self.index.read();
        if !(self.followed && index.said_cold.complete()) {
            return None;
        }
        let count = |trace: &TraceId| {
            let said = index.said_cold.spans(trace).iter();
            let unjudged = said.filter(|s| overlay.get(&SpanKey::new(*trace, **s)).is_none());
            overlay.on_demand_in(trace) + u32::try_from(unjudged.count()).unwrap_or(u32::MAX)
        };
        Some(traces.iter().map(count).collect())
    }

    /// Every trace on a flagged boundary with a time no earlier than its
    /// start, unless more than `max`, some were forgotten at the cap, or
    /// no correlator fills this view.
    pub fn flagged_traces(&self, max: usize) -> Option<Vec<(TraceId, i64)>> {
        Self::listed(self.followed, &self.index.read().flagged, max)
    }

    /// Every trace that may hold a cold start (a span said so, or Seam
    /// judged one cold), as [`CorrelationView::flagged_traces`]. A trace
    /// judged cold only by an init span that came after its invocation
    /// has no time known: `i64::MAX`.
    pub fn cold_traces(&self, max: usize) -> Option<Vec<(TraceId, i64)>> {
        let mut out = Self::listed(self.followed, &self.index.read().cold, max)?;
        let known: std::collections::HashSet<TraceId> = out.iter().map(|(t, _)| *t).collect();
        out.extend(
            (self.overlay.read().cold_trace_ids())
                .filter(|t| !known.contains(t))
                .map(|t| (t, i64::MAX)),
        );
        (out.len() <= max).then_some(out)
    }

    /// The `n` newest traces joined to another, ordered before `before`
    /// (by time, then id), newest first, each with a time no earlier than
    /// its start, and the horizon: a trace that starts after it is sure to
    /// be listed. `None` when no correlator fills this view.
    pub fn joined_newest(
        &self,
        before: Option<(i64, TraceId)>,
        n: usize,
    ) -> Option<(Vec<(TraceId, i64)>, i64)> {
        let index = self.index.read();
        self.followed
            .then(|| (index.joined.newest(before, n), index.joined.horizon()))
    }

    fn listed(followed: bool, set: &TraceSet, max: usize) -> Option<Vec<(TraceId, i64)>> {
        (followed && set.complete() && set.len() <= max).then(|| set.iter().collect())
    }

    /// Fills `flow_id`, `cold_start` (what the spans said, or a verdict
    /// reached later) and `flagged` of a `traces` batch.
    pub fn resolve_traces(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        use seam_model::schema::trace_col;
        let traces = strings(batch, trace_col::TRACE_ID)?;
        let ids: Vec<Option<TraceId>> = traces
            .iter()
            .map(|t| t.and_then(|h| TraceId::parse_hex(h).ok()))
            .collect();
        let stored = column(batch, trace_col::COLD_START)?.as_boolean();
        let cold: BooleanArray = {
            let overlay = self.overlay.read();
            (ids.iter().enumerate())
                .map(|(i, t)| {
                    Some(stored.value(i) || t.is_some_and(|t| overlay.trace_had_cold(&t)))
                })
                .collect()
        };
        let flagged: BooleanArray = {
            let index = self.index.read();
            ids.iter()
                .map(|t| Some(t.is_some_and(|t| index.flagged.contains(&t))))
                .collect()
        };
        let mut out = replace(batch, trace_col::FLOW_ID, self.flow_ids(traces))?;
        out = replace(&out, trace_col::COLD_START, Arc::new(cold))?;
        replace(&out, trace_col::FLAGGED, Arc::new(flagged))
    }

    /// The flow id of `trace`.
    pub fn flow_id(&self, trace: &TraceId) -> TraceId {
        self.flows.read().flow_id(trace)
    }

    /// Every trace of `trace`'s flow, sorted.
    pub fn flow_members(&self, trace: &TraceId) -> Vec<TraceId> {
        self.flows.read().members(trace)
    }

    /// The cold-start verdict Seam reached for one span, if any.
    pub fn verdict(&self, key: &SpanKey) -> Option<Verdict> {
        self.overlay.read().get(key).copied()
    }

    /// A `flow_id` column for rows whose trace ids are `traces`.
    fn flow_ids(&self, traces: &StringArray) -> ArrayRef {
        let flows = self.flows.read();
        if flows.is_empty() {
            return Arc::new(traces.clone());
        }
        let mut b = StringBuilder::with_capacity(traces.len(), traces.len() * 32);
        for t in traces.iter() {
            match t {
                Some(hex) => match TraceId::parse_hex(hex) {
                    Ok(id) => b.append_value(flows.flow_id(&id).to_hex()),
                    Err(_) => b.append_value(hex),
                },
                None => b.append_null(),
            }
        }
        Arc::new(b.finish())
    }

    /// Fills `flow_id` and applies cold-start verdicts to a `spans` batch.
    pub fn resolve_spans(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let traces = strings(batch, col::TRACE_ID)?;
        let mut out = replace(batch, col::FLOW_ID, self.flow_ids(traces))?;
        let overlay = self.overlay.read();
        if overlay.is_empty() {
            return Ok(out);
        }
        let spans = strings(batch, col::SPAN_ID)?;
        let mut verdicts: Vec<(usize, Verdict)> = Vec::new();
        for i in 0..batch.num_rows() {
            let (Ok(trace), Ok(span)) = (
                TraceId::parse_hex(traces.value(i)),
                SpanId::parse_hex(spans.value(i)),
            ) else {
                continue;
            };
            if let Some(v) = overlay.get(&SpanKey::new(trace, span)) {
                verdicts.push((i, *v));
            }
        }
        drop(overlay);
        if verdicts.is_empty() {
            return Ok(out);
        }
        let cold = column(batch, col::COLD_START)?.as_boolean();
        let mut cold_b = BooleanBuilder::with_capacity(cold.len());
        let init =
            column(batch, col::INIT_DURATION_NS)?.as_primitive::<arrow::datatypes::Int64Type>();
        let mut init_b = Int64Builder::with_capacity(init.len());
        let by_row: HashMap<usize, Verdict> = verdicts.into_iter().collect();
        for i in 0..batch.num_rows() {
            match by_row.get(&i) {
                Some(v) => {
                    cold_b.append_value(v.cold);
                    init_b.append_option(
                        v.init_duration_ns
                            .or(init.is_valid(i).then(|| init.value(i))),
                    );
                }
                None => {
                    cold_b.append_option(cold.is_valid(i).then(|| cold.value(i)));
                    init_b.append_option(init.is_valid(i).then(|| init.value(i)));
                }
            }
        }
        let types: HashMap<usize, Option<&str>> = by_row
            .iter()
            .map(|(i, v)| (*i, v.kind.map(|k| k.as_str())))
            .collect();
        let sources: HashMap<usize, Option<&str>> = by_row
            .iter()
            .map(|(i, v)| (*i, v.source.map(|s| s.as_str())))
            .collect();
        out = replace(&out, col::COLD_START, Arc::new(cold_b.finish()))?;
        out = replace(&out, col::INIT_DURATION_NS, Arc::new(init_b.finish()))?;
        out = replace(
            &out,
            col::COLD_START_TYPE,
            dict_with(column(batch, col::COLD_START_TYPE)?, &types)?,
        )?;
        replace(
            &out,
            col::COLD_START_SOURCE,
            dict_with(column(batch, col::COLD_START_SOURCE)?, &sources)?,
        )
    }

    /// Resolves `flow_id`, `deliveries`, `redelivery` and
    /// `consumer_cold_start` of the `selected` batches; deliveries are
    /// counted across `all` of the table, not only what a filter kept.
    pub fn resolve_boundaries(
        &self,
        selected: &[RecordBatch],
        all: &[RecordBatch],
    ) -> Result<Vec<RecordBatch>, ArrowError> {
        let groups = Self::deliveries(all)?;
        selected
            .iter()
            .map(|b| self.resolve_boundaries_with(&[&groups], b))
            .collect()
    }

    /// Columns of `boundaries` that [`CorrelationView::deliveries`] reads.
    pub const DELIVERY_COLUMNS: [&str; 6] = [
        boundary_col::KIND,
        boundary_col::PRODUCER_TRACE_ID,
        boundary_col::PRODUCER_SPAN_ID,
        boundary_col::CONSUMER_SPAN_ID,
        boundary_col::CONSUMER_SERVICE,
        boundary_col::CONSUMER_TIME,
    ];

    /// Counts the deliveries of each message to each consumer service in
    /// `all` (batches holding at least [`Self::DELIVERY_COLUMNS`]).
    pub fn deliveries(all: &[RecordBatch]) -> Result<Deliveries, ArrowError> {
        use boundary_col::*;
        let mut groups = Deliveries::default();
        for batch in all {
            let kind = strings(batch, KIND)?;
            let (pt, ps, cs, csvc) = (
                strings(batch, PRODUCER_TRACE_ID)?,
                strings(batch, PRODUCER_SPAN_ID)?,
                strings(batch, CONSUMER_SPAN_ID)?,
                strings(batch, CONSUMER_SERVICE)?,
            );
            let ct = column(batch, CONSUMER_TIME)?.as_primitive::<TimestampNanosecondType>();
            for i in 0..batch.num_rows() {
                if kind.value(i) != "async" {
                    continue;
                }
                let first = (ct.value(i), span_hash(cs.value(i)));
                let key = delivery_key(pt.value(i), ps.value(i), csvc.value(i));
                let group = groups.entry(key).or_insert((0, first));
                group.0 += 1;
                if first < group.1 {
                    group.1 = first;
                }
            }
        }
        Ok(groups)
    }

    /// Resolves one batch of `boundaries` against deliveries counted in
    /// parts of the table: `groups` (sealed rows and rows in memory, say),
    /// whose counts add up and whose earliest delivery is the earliest of
    /// any part.
    pub fn resolve_boundaries_with(
        &self,
        groups: &[&Deliveries],
        batch: &RecordBatch,
    ) -> Result<RecordBatch, ArrowError> {
        use boundary_col::*;
        let overlay = self.overlay.read();
        {
            let (pt, ps, cs, csvc, ctrace) = (
                strings(batch, PRODUCER_TRACE_ID)?,
                strings(batch, PRODUCER_SPAN_ID)?,
                strings(batch, CONSUMER_SPAN_ID)?,
                strings(batch, CONSUMER_SERVICE)?,
                strings(batch, CONSUMER_TRACE_ID)?,
            );
            let ct = column(batch, CONSUMER_TIME)?.as_primitive::<TimestampNanosecondType>();
            let stored_cold = column(batch, CONSUMER_COLD_START)?.as_boolean();
            let n = batch.num_rows();
            let mut deliveries = Vec::with_capacity(n);
            let mut redelivery = Vec::with_capacity(n);
            let mut cold = Vec::with_capacity(n);
            for i in 0..n {
                let key = delivery_key(pt.value(i), ps.value(i), csvc.value(i));
                let found = groups.iter().filter_map(|g| g.get(&key));
                let merged = found.fold(None, |acc: Option<(i64, (i64, u64))>, (n, first)| {
                    Some(match acc {
                        Some((count, earliest)) => (count + n, earliest.min(*first)),
                        None => (*n, *first),
                    })
                });
                match merged {
                    Some((count, earliest)) => {
                        deliveries.push(count);
                        redelivery
                            .push(count > 1 && (ct.value(i), span_hash(cs.value(i))) != earliest);
                    }
                    None => {
                        deliveries.push(1);
                        redelivery.push(false);
                    }
                }
                let trace_cold =
                    TraceId::parse_hex(ctrace.value(i)).is_ok_and(|t| overlay.trace_was_cold(&t));
                cold.push(trace_cold || stored_cold.value(i));
            }
            let mut resolved = replace(batch, FLOW_ID, self.flow_ids(pt))?;
            resolved = replace(
                &resolved,
                DELIVERIES,
                Arc::new(Int64Array::from(deliveries)),
            )?;
            resolved = replace(
                &resolved,
                REDELIVERY,
                Arc::new(BooleanArray::from(redelivery)),
            )?;
            resolved = replace(
                &resolved,
                CONSUMER_COLD_START,
                Arc::new(BooleanArray::from(cold)),
            )?;
            Ok(resolved)
        }
    }
}
