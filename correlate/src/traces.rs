//! Trace summaries kept at ingest: one row of `traces` per trace (root,
//! time range, counts, services, platforms), so that search and the flow
//! listings read one row a trace instead of every span.
//!
//! ```text
//!  a request's rows ─▶ TraceParts (per trace of the request) ─▶ Note
//!        │ follower thread
//!        ▼
//!  ActiveTraces: summaries of traces a span arrived for lately (queries read them here)
//!        │ tick: quiet for `trace_idle` (or the oldest, past `max_active_traces`)
//!        ▼
//!  `traces` rows (hot, then sealed with the other derived tables)
//! ```
//!
//! A trace's spans arrive in a few exports over seconds; its summary is
//! written once it has been quiet for `trace_idle`, so nearly every trace
//! is one row. A span arriving later than that adds a row of its own for
//! the same trace; readers that need one answer a trace merge its rows
//! ([`TracePart::merge`]). Summaries still active are part of the state
//! captured at a seal, so a restart rebuilds exactly the same rows.
//!
//! Columns that can change after a row is written (`flow_id`, a cold-start
//! verdict reached later, a flagged boundary stitched later) are resolved
//! when a query reads the row (see [`crate::view`]).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    StringDictionaryBuilder, TimestampNanosecondBuilder,
};
use arrow::datatypes::Int32Type;
use arrow::error::ArrowError;
use seam_model::schema::traces_schema;
use seam_model::{ColdStartType, Platform, SpanId, SpanRow, StatusCode, TraceId};
use serde::{Deserialize, Serialize};

use crate::half::SpanKey;
use crate::operations::{OperationCounts, OperationRow};

/// The span a trace is named after: its root (no parent), else its
/// earliest span, ties broken by span id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Root {
    /// The span has a parent: the real root has not been seen.
    pub has_parent: bool,
    pub start: i64,
    pub span: SpanId,
    pub service: Arc<str>,
    pub name: Arc<str>,
}

impl Root {
    fn rank(&self) -> (bool, i64, SpanId) {
        (self.has_parent, self.start, self.span)
    }

    fn of(row: &SpanRow<'_>) -> Self {
        Self {
            has_parent: row.parent_span_id.is_some(),
            start: row.start_time_unix_nano,
            span: row.span_id,
            service: Arc::from(row.service_name.as_ref()),
            name: Arc::from(row.name.as_ref()),
        }
    }
}

/// Platforms as bits, in [`PLATFORMS`] order.
const PLATFORMS: [Platform; 5] = [
    Platform::Kubernetes,
    Platform::Faas,
    Platform::Container,
    Platform::Host,
    Platform::Unknown,
];

fn platform_bit(p: Platform) -> u8 {
    1 << PLATFORMS.iter().position(|q| *q == p).unwrap_or(4)
}

/// What some spans of one trace add up to: a request's spans of it, or
/// every span seen so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracePart {
    pub trace: TraceId,
    pub root: Root,
    pub start: i64,
    pub end: i64,
    pub spans: i64,
    pub errors: i64,
    /// Distinct, in the order first seen.
    pub services: Vec<Arc<str>>,
    platforms: u8,
    /// A span said it was a cold start.
    pub cold: bool,
}

impl TracePart {
    fn new(row: &SpanRow<'_>) -> Self {
        Self {
            trace: row.trace_id,
            root: Root::of(row),
            start: row.start_time_unix_nano,
            end: row.end_time_unix_nano,
            spans: 1,
            errors: i64::from(row.status_code == StatusCode::Error),
            services: vec![Arc::from(row.service_name.as_ref())],
            platforms: platform_bit(row.platform),
            cold: row.cold_start == Some(true),
        }
    }

    fn add(&mut self, row: &SpanRow<'_>) {
        self.start = self.start.min(row.start_time_unix_nano);
        self.end = self.end.max(row.end_time_unix_nano);
        self.spans += 1;
        self.errors += i64::from(row.status_code == StatusCode::Error);
        if !self
            .services
            .iter()
            .any(|s| **s == *row.service_name.as_ref())
        {
            self.services.push(Arc::from(row.service_name.as_ref()));
        }
        self.platforms |= platform_bit(row.platform);
        self.cold |= row.cold_start == Some(true);
        let rank = (
            row.parent_span_id.is_some(),
            row.start_time_unix_nano,
            row.span_id,
        );
        if rank < self.root.rank() {
            self.root = Root::of(row);
        }
    }

    /// Adds another part of the same trace.
    pub fn merge(&mut self, other: &TracePart) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.spans += other.spans;
        self.errors += other.errors;
        for s in &other.services {
            if !self.services.contains(s) {
                self.services.push(s.clone());
            }
        }
        self.platforms |= other.platforms;
        self.cold |= other.cold;
        if other.root.rank() < self.root.rank() {
            self.root = other.root.clone();
        }
    }

    /// Platform names, in a fixed order.
    pub fn platforms(&self) -> impl Iterator<Item = &'static str> + '_ {
        PLATFORMS
            .iter()
            .filter(|p| self.platforms & platform_bit(**p) != 0)
            .map(|p| p.as_str())
    }

    /// Services, sorted.
    pub fn sorted_services(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.services.iter().map(|s| s.as_ref()).collect();
        out.sort_unstable();
        out
    }
}

/// Requests with fewer traces than this find a trace's part by scanning.
const SCAN: usize = 16;

/// The parts of one request, one per trace, built as its rows are made.
#[derive(Debug, Default)]
pub struct TraceParts {
    parts: Vec<TracePart>,
    /// Spans stored as on-demand cold starts: what a flow's `cold_starts`
    /// counts where no verdict says otherwise.
    said_cold: Vec<SpanKey>,
    index: HashMap<TraceId, usize>,
    /// The part the last row went to: exporters send a trace's spans
    /// together, so most rows go where the one before went.
    last: usize,
    operations: OperationCounts,
}

impl TraceParts {
    pub fn add(&mut self, row: &SpanRow<'_>) {
        self.operations.add(row);
        if row.cold_start == Some(true) && row.cold_start_type == Some(ColdStartType::OnDemand) {
            self.said_cold.push(SpanKey::new(row.trace_id, row.span_id));
        }
        let found = if self
            .parts
            .get(self.last)
            .is_some_and(|p| p.trace == row.trace_id)
        {
            Some(self.last)
        } else if self.parts.len() < SCAN {
            self.parts.iter().position(|p| p.trace == row.trace_id)
        } else {
            if self.index.is_empty() {
                self.index = (self.parts.iter().enumerate())
                    .map(|(i, p)| (p.trace, i))
                    .collect();
            }
            self.index.get(&row.trace_id).copied()
        };
        self.last = match found {
            Some(i) => {
                self.parts[i].add(row);
                i
            }
            None => {
                if !self.index.is_empty() {
                    self.index.insert(row.trace_id, self.parts.len());
                }
                self.parts.push(TracePart::new(row));
                self.parts.len() - 1
            }
        };
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn into_vec(self) -> Vec<TracePart> {
        self.parts
    }

    /// The parts, the spans stored as on-demand cold starts, and the
    /// spans counted per minute and operation.
    pub fn into_parts(self) -> (Vec<TracePart>, Vec<SpanKey>, Vec<OperationRow>) {
        (self.parts, self.said_cold, self.operations.into_vec())
    }
}

/// A trace's summary while spans of it are still arriving.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Active {
    summary: TracePart,
    /// When its latest part arrived (ns since the epoch, Seam's clock).
    last: i64,
}

/// Summaries of the traces a span arrived for within `trace_idle`, and of
/// the quiet ones not written yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActiveTraces {
    by_trace: HashMap<TraceId, Active>,
}

impl ActiveTraces {
    pub fn len(&self) -> usize {
        self.by_trace.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_trace.is_empty()
    }

    pub(crate) fn add(&mut self, part: TracePart, now: i64) {
        match self.by_trace.get_mut(&part.trace) {
            Some(active) => {
                active.summary.merge(&part);
                active.last = active.last.max(now);
            }
            None => {
                self.by_trace.insert(
                    part.trace,
                    Active {
                        summary: part,
                        last: now,
                    },
                );
            }
        }
    }

    /// Takes the summaries quiet since `now - idle`, and past `cap` the
    /// least recently active, oldest first.
    pub(crate) fn take_quiet(&mut self, now: i64, idle: i64, cap: usize) -> Vec<TracePart> {
        let cutoff = now.saturating_sub(idle);
        let mut quiet: Vec<(i64, TraceId)> = self
            .by_trace
            .iter()
            .filter(|(_, a)| a.last <= cutoff)
            .map(|(t, a)| (a.last, *t))
            .collect();
        let over = self.by_trace.len().saturating_sub(quiet.len() + cap);
        if over > 0 {
            let mut busy: Vec<(i64, TraceId)> = self
                .by_trace
                .iter()
                .filter(|(_, a)| a.last > cutoff)
                .map(|(t, a)| (a.last, *t))
                .collect();
            busy.sort_unstable();
            quiet.extend(busy.into_iter().take(over));
        }
        quiet.sort_unstable();
        quiet
            .into_iter()
            .filter_map(|(_, t)| self.by_trace.remove(&t).map(|a| a.summary))
            .collect()
    }

    /// Every summary held, for a query.
    pub fn summaries(&self) -> impl Iterator<Item = &TracePart> {
        self.by_trace.values().map(|a| &a.summary)
    }

    /// The summary held for `trace`, if any.
    pub fn get(&self, trace: &TraceId) -> Option<&TracePart> {
        self.by_trace.get(trace).map(|a| &a.summary)
    }
}

/// Trace ids with a time no earlier than each trace's start (the
/// earliest of the times it was added at), the oldest forgotten past a
/// cap. Searching newest first reads them by that time, so a search for
/// the twenty newest flagged traces does not read every flagged one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TraceSet {
    at: HashMap<TraceId, i64>,
    order: VecDeque<TraceId>,
    /// Traces forgotten at the cap: once some are, the set no longer
    /// holds every trace that belongs in it.
    forgotten: u64,
}

impl TraceSet {
    /// Adds `trace`, known to have started no later than `at`.
    pub(crate) fn insert(&mut self, trace: TraceId, at: i64, cap: usize) {
        match self.at.get_mut(&trace) {
            Some(known) => *known = (*known).min(at),
            None => {
                self.at.insert(trace, at);
                self.order.push_back(trace);
            }
        }
        while self.at.len() > cap.max(1) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.at.remove(&old);
            self.forgotten += 1;
        }
    }

    /// Whether it still holds every trace ever added.
    pub fn complete(&self) -> bool {
        self.forgotten == 0
    }

    pub fn contains(&self, trace: &TraceId) -> bool {
        self.at.contains_key(trace)
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// Every trace held, with its time.
    pub fn iter(&self) -> impl Iterator<Item = (TraceId, i64)> + '_ {
        self.at.iter().map(|(t, at)| (*t, *at))
    }
}

/// Trace ids ordered by a time no earlier than each trace's start, the
/// oldest by that time forgotten past a cap. Unlike [`TraceSet`] it is
/// read a few at a time, newest first, so a listing of the newest flows
/// of several traces reads a few hundred of them however many are held;
/// and what was forgotten is bounded by time (the horizon), so a reader
/// still trusts it for every trace that starts after the horizon.
#[derive(Debug, Clone)]
pub struct TimedSet {
    at: HashMap<TraceId, i64>,
    by_time: BTreeSet<(i64, TraceId)>,
    /// The latest time of a trace forgotten (or not known, for state kept
    /// before the set was), `i64::MIN` when none.
    horizon: i64,
}

impl Default for TimedSet {
    fn default() -> Self {
        Self::unknown_until(i64::MIN)
    }
}

impl TimedSet {
    /// An empty set that does not know the traces of times up to `horizon`.
    pub(crate) fn unknown_until(horizon: i64) -> Self {
        Self {
            at: HashMap::new(),
            by_time: BTreeSet::new(),
            horizon,
        }
    }

    /// Adds `trace`, known to have started no later than `at`.
    pub(crate) fn insert(&mut self, trace: TraceId, at: i64, cap: usize) {
        match self.at.get_mut(&trace) {
            Some(known) if *known <= at => return,
            Some(known) => {
                self.by_time.remove(&(*known, trace));
                *known = at;
            }
            None => {
                self.at.insert(trace, at);
            }
        }
        self.by_time.insert((at, trace));
        while self.at.len() > cap.max(1) {
            let Some((old, trace)) = self.by_time.pop_first() else {
                break;
            };
            self.at.remove(&trace);
            self.horizon = self.horizon.max(old);
        }
    }

    /// Traces up to the horizon may be missing: only one that starts
    /// after it is sure to be held.
    pub fn horizon(&self) -> i64 {
        self.horizon
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    pub fn contains(&self, trace: &TraceId) -> bool {
        self.at.contains_key(trace)
    }

    /// The `n` newest traces ordered before `before` (all when `None`),
    /// newest first, with every further one of the last one's time, so a
    /// reader that goes on from the last never splits a time.
    pub fn newest(&self, before: Option<(i64, TraceId)>, n: usize) -> Vec<(TraceId, i64)> {
        let mut out: Vec<(TraceId, i64)> = Vec::with_capacity(n.min(self.at.len()));
        let range = match before {
            Some(b) => self.by_time.range(..b),
            None => self.by_time.range(..),
        };
        for &(at, trace) in range.rev() {
            if out.len() >= n && out.last().is_some_and(|(_, last)| *last != at) {
                break;
            }
            out.push((trace, at));
        }
        out
    }
}

/// Kept as the horizon and the traces' times; the order is rebuilt.
impl Serialize for TimedSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (self.horizon, &self.at).serialize(s)
    }
}

impl<'de> Deserialize<'de> for TimedSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (horizon, at): (i64, HashMap<TraceId, i64>) = Deserialize::deserialize(d)?;
        let by_time = at.iter().map(|(t, at)| (*at, *t)).collect();
        Ok(Self {
            at,
            by_time,
            horizon,
        })
    }
}

/// A value per trace, the oldest trace forgotten past a cap, and whether
/// any ever was: what a count kept at ingest needs to stand in for a
/// read of stored rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ByTrace<V> {
    values: HashMap<TraceId, V>,
    order: VecDeque<TraceId>,
    forgotten: u64,
}

impl<V> Default for ByTrace<V> {
    fn default() -> Self {
        Self {
            values: HashMap::new(),
            order: VecDeque::new(),
            forgotten: 0,
        }
    }
}

impl<V: Default> ByTrace<V> {
    /// State that may be missing values: kept before it was.
    pub(crate) fn unknown() -> Self {
        Self {
            forgotten: 1,
            ..Self::default()
        }
    }

    /// Changes the value of `trace` (a default one if new), then forgets
    /// the oldest traces past `cap`.
    fn update(&mut self, trace: TraceId, cap: usize, change: impl FnOnce(&mut V)) {
        let value = self.values.entry(trace).or_insert_with(|| {
            self.order.push_back(trace);
            V::default()
        });
        change(value);
        while self.values.len() > cap.max(1) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.values.remove(&old);
            self.forgotten += 1;
        }
    }

    /// Whether it still holds every trace ever added.
    pub fn complete(&self) -> bool {
        self.forgotten == 0
    }
}

/// Boundaries and flagged boundaries by producer trace.
pub type ProducerCounts = ByTrace<(u32, u32)>;

impl ProducerCounts {
    pub(crate) fn add(&mut self, producer: TraceId, flagged: bool, cap: usize) {
        self.update(producer, cap, |(all, flags)| {
            *all += 1;
            *flags += u32::from(flagged);
        });
    }

    /// Boundaries and flagged ones whose producer is `trace`.
    pub fn get(&self, trace: &TraceId) -> (u32, u32) {
        self.values.get(trace).copied().unwrap_or_default()
    }
}

/// Spans stored as on-demand cold starts, by trace: with the verdicts
/// reached since, what a flow's `cold_starts` adds up, without reading
/// the members' spans.
pub type SaidCold = ByTrace<Vec<SpanId>>;

impl SaidCold {
    pub(crate) fn add(&mut self, key: SpanKey, cap: usize) {
        self.update(key.trace, cap, |spans| {
            // A span sent again is stored again, but is one cold start.
            if !spans.contains(&key.span) {
                spans.push(key.span);
            }
        });
    }

    /// The spans of `trace` stored as on-demand cold starts.
    pub fn spans(&self, trace: &TraceId) -> &[SpanId] {
        self.values.get(trace).map_or(&[], Vec::as_slice)
    }
}

/// What correlation keeps by trace id for the questions asked of traces
/// and flows: which traces are on a flagged boundary (either end), which
/// may hold a cold start, which were joined to another, and how many
/// boundaries each trace produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TraceIndex {
    pub flagged: TraceSet,
    pub cold: TraceSet,
    pub producers: ProducerCounts,
    /// Traces joined to another (the flow index's members), by time: kept
    /// in a part of the checkpoint of its own, after the rollups.
    #[serde(skip)]
    pub joined: TimedSet,
    /// Kept in a part of the checkpoint of its own, after the joined
    /// traces.
    #[serde(skip)]
    pub said_cold: SaidCold,
}

/// Builds a `traces` batch; `flow_id` is left null and `flagged` false,
/// both resolved when read.
pub fn traces_batch<'a>(
    parts: impl ExactSizeIterator<Item = &'a TracePart>,
) -> Result<RecordBatch, ArrowError> {
    let n = parts.len();
    let mut trace_id = StringBuilder::with_capacity(n, n * 32);
    let mut flow_id = StringBuilder::with_capacity(n, 0);
    let mut root_service = StringDictionaryBuilder::<Int32Type>::new();
    let mut root_name = StringBuilder::with_capacity(n, n * 16);
    let mut root_span = StringBuilder::with_capacity(n, n * 16);
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut duration = Int64Builder::with_capacity(n);
    let mut spans = Int64Builder::with_capacity(n);
    let mut errors = Int64Builder::with_capacity(n);
    let mut services = ListBuilder::new(StringBuilder::new());
    let mut platforms = ListBuilder::new(StringBuilder::new());
    let mut cold = BooleanBuilder::with_capacity(n);
    let mut flagged = BooleanBuilder::with_capacity(n);
    for p in parts {
        trace_id.append_value(p.trace.to_hex());
        flow_id.append_null();
        root_service.append_value(&p.root.service);
        root_name.append_value(&p.root.name);
        root_span.append_value(p.root.span.to_hex());
        start.append_value(p.start);
        end.append_value(p.end);
        duration.append_value(p.end.saturating_sub(p.start));
        spans.append_value(p.spans);
        errors.append_value(p.errors);
        for s in p.sorted_services() {
            services.values().append_value(s);
        }
        services.append(true);
        for name in p.platforms() {
            platforms.values().append_value(name);
        }
        platforms.append(true);
        cold.append_value(p.cold);
        flagged.append_value(false);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(trace_id.finish()),
        Arc::new(flow_id.finish()),
        Arc::new(root_service.finish()),
        Arc::new(root_name.finish()),
        Arc::new(root_span.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(duration.finish()),
        Arc::new(spans.finish()),
        Arc::new(errors.finish()),
        Arc::new(services.finish()),
        Arc::new(platforms.finish()),
        Arc::new(cold.finish()),
        Arc::new(flagged.finish()),
    ];
    RecordBatch::try_new(traces_schema(), columns)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    static NO_ATTRS: seam_model::row::Attributes<'static> = Vec::new();

    fn row(trace: u8, span: u8, parent: Option<u8>, service: &str, start: i64) -> SpanRow<'static> {
        let mut row = SpanRow::new(
            TraceId([trace; 16]),
            SpanId([span; 8]),
            start,
            start + 10,
            &NO_ATTRS,
        );
        row.parent_span_id = parent.map(|p| SpanId([p; 8]));
        row.service_name = Cow::Owned(service.to_owned());
        row.name = Cow::Owned(format!("op-{span}"));
        row
    }

    #[test]
    fn a_request_makes_one_part_per_trace_named_by_its_root() {
        let mut parts = TraceParts::default();
        parts.add(&row(1, 2, Some(1), "worker", 5));
        parts.add(&row(2, 9, None, "other", 0));
        parts.add(&row(1, 1, None, "api", 7));
        parts.add(&row(1, 3, Some(1), "worker", 3));
        let parts = parts.into_vec();
        assert_eq!(parts.len(), 2);
        let one = &parts[0];
        assert_eq!((one.start, one.end, one.spans), (3, 17, 3));
        assert_eq!(&*one.root.name, "op-1", "the span without a parent");
        assert_eq!(one.sorted_services(), vec!["api", "worker"]);
    }

    #[test]
    fn parts_merge_into_the_same_summary_in_any_order() {
        let rows = [
            row(1, 2, Some(1), "worker", 5),
            row(1, 1, None, "api", 7),
            row(1, 3, Some(1), "db", 3),
        ];
        let mut whole = TraceParts::default();
        rows.iter().for_each(|r| whole.add(r));
        let whole = whole.into_vec().remove(0);
        let mut pieces: Vec<TracePart> = rows
            .iter()
            .map(|r| {
                let mut p = TraceParts::default();
                p.add(r);
                p.into_vec().remove(0)
            })
            .collect();
        pieces.reverse();
        let mut merged = pieces[0].clone();
        pieces[1..].iter().for_each(|p| merged.merge(p));
        assert_eq!(merged.root, whole.root);
        assert_eq!(
            (merged.start, merged.end, merged.spans),
            (whole.start, whole.end, whole.spans)
        );
        assert_eq!(merged.sorted_services(), whole.sorted_services());
    }

    #[test]
    fn quiet_traces_are_taken_and_past_the_cap_the_least_recent() {
        let mut active = ActiveTraces::default();
        let part = |t: u8| {
            let mut p = TraceParts::default();
            p.add(&row(t, 1, None, "s", 0));
            p.into_vec().remove(0)
        };
        active.add(part(1), 100);
        active.add(part(2), 200);
        active.add(part(3), 300);
        active.add(part(1), 250);
        let taken = active.take_quiet(260, 50, 10);
        assert_eq!(
            taken.iter().map(|p| p.trace).collect::<Vec<_>>(),
            vec![TraceId([2; 16])]
        );
        let taken = active.take_quiet(260, 50, 1);
        assert_eq!(taken.len(), 1, "one over the cap");
        assert_eq!(taken[0].trace, TraceId([1; 16]));
        assert_eq!(taken[0].spans, 2);
        assert_eq!(active.len(), 1);
    }

    #[test]
    fn a_batch_row_holds_the_summary() {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{Int64Type, TimestampNanosecondType};
        let mut p = TraceParts::default();
        p.add(&row(1, 2, Some(1), "b", 4));
        p.add(&row(1, 1, None, "b", 1));
        p.add(&row(1, 3, Some(1), "a", 0));
        let parts = p.into_vec();
        let batch = traces_batch(parts.iter()).unwrap();
        let column = |name| batch.column_by_name(name).unwrap();
        let text = |name| {
            let c = arrow::compute::cast(column(name), &arrow::datatypes::DataType::Utf8).unwrap();
            c.as_string::<i32>().value(0).to_owned()
        };
        assert_eq!(text("root_name"), "op-1", "the span without a parent");
        assert_eq!(text("root_span_id"), SpanId([1; 8]).to_hex());
        assert_eq!(
            column("start_time")
                .as_primitive::<TimestampNanosecondType>()
                .value(0),
            0
        );
        assert_eq!(
            column("duration_ns").as_primitive::<Int64Type>().value(0),
            14
        );
        assert_eq!(column("span_count").as_primitive::<Int64Type>().value(0), 3);
        let services = column("services").as_list::<i32>().value(0);
        let services: Vec<_> = services.as_string::<i32>().iter().flatten().collect();
        assert_eq!(services, ["a", "b"]);
        assert!(column("flow_id").is_null(0), "resolved when read");
    }

    #[test]
    fn a_timed_set_reads_newest_first_a_few_at_a_time_and_forgets_the_oldest() {
        let t = |n: u8| TraceId([n; 16]);
        let mut set = TimedSet::default();
        for (n, at) in [(1, 10), (2, 30), (3, 20), (4, 30), (5, 40)] {
            set.insert(t(n), at, 10);
        }
        // A later, earlier time for a trace held moves it; a later one
        // does not.
        set.insert(t(5), 5, 10);
        set.insert(t(1), 50, 10);
        let all = set.newest(None, 10);
        assert_eq!(
            all,
            [(t(4), 30), (t(2), 30), (t(3), 20), (t(1), 10), (t(5), 5)]
        );
        // One asked, both of its time given; going on after the last.
        let first = set.newest(None, 1);
        assert_eq!(first, [(t(4), 30), (t(2), 30)]);
        let (last, at) = first[1];
        assert_eq!(set.newest(Some((at, last)), 2), [(t(3), 20), (t(1), 10)]);
        assert_eq!(set.horizon(), i64::MIN);

        // Past the cap the oldest by time go, and the horizon says up to
        // when the set may miss a trace.
        set.insert(t(6), 25, 4);
        assert_eq!(set.len(), 4);
        assert!(!set.contains(&t(5)) && !set.contains(&t(1)));
        assert_eq!(set.horizon(), 10);

        let bytes = postcard::to_allocvec(&set).unwrap();
        let back: TimedSet = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.newest(None, 10), set.newest(None, 10));
        assert_eq!(back.horizon(), 10);
    }
}
