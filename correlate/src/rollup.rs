//! Per-minute rollups for the reports: per edge (producer service,
//! system, destination, consumer service, kind) the boundaries' count,
//! flags and a latency sketch; per function the invocations by cold-start
//! type and sketches of init, cold and warm durations. A report over any
//! time range merges the minutes it overlaps instead of reading every
//! boundary and invocation in it.
//!
//! ```text
//!  boundary ──▶ open minute of its edge ─┐
//!  invocation ─▶ unsettled ──(trace_idle)─▶ open minute of its function
//!                                         └─(quiet for trace_idle)─▶ edge_rollups / function_rollups rows
//! ```
//!
//! Boundaries never change once found, so they count at once. An
//! invocation's cold-start verdict can: an init span or an earlier
//! invocation of the same instance may arrive after it. So invocations wait
//! `trace_idle` (as trace summaries do) and count with the verdict they
//! have then; until then a report judges them as it is asked. A verdict
//! that changes later than that is not reflected in the rollups.
//!
//! The sketches are DataFusion's t-digest, the one `approx_percentile_cont`
//! builds, so a report merged from rollups estimates a percentile as the
//! same SQL over the rows does: exactly alike while a group holds at most a
//! hundred values, within the digest's error beyond.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hasher;
use std::sync::Arc;

use arrow::array::{
    Array, AsArray, BinaryBuilder, Int64Builder, RecordBatch, StringBuilder,
    TimestampNanosecondBuilder,
};
use arrow::datatypes::{Int64Type, TimestampNanosecondType};
use arrow::error::ArrowError;
use datafusion_functions_aggregate_common::tdigest::{Centroid, TDigest};
use seam_model::schema::{edge_rollups_schema, function_rollups_schema, rollup_col};
use seam_model::{ColdStartSource, ColdStartType, Platform};
use serde::{Deserialize, Serialize};

use crate::coldstart::{Overlay, Verdict};
use crate::half::{Invocation, SpanKey};
use crate::operations::{OpenOperations, OperationRow};
use crate::tables::{Boundary, BoundaryKind};

/// One bucket's width.
pub const MINUTE_NS: i64 = 60_000_000_000;

/// The minute `t` falls in (its start, ns since the epoch).
pub fn minute_of(t: i64) -> i64 {
    t.div_euclid(MINUTE_NS) * MINUTE_NS
}

/// Centroids a digest keeps: `approx_percentile_cont`'s default.
const DIGEST_SIZE: usize = 100;
/// Values gathered before they are folded into the digest: folding one at
/// a time would rebuild the centroids on every value.
const FOLD_AT: usize = 256;

/// A mergeable quantile sketch of nanosecond durations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(into = "SketchParts", try_from = "SketchParts")]
pub struct Sketch {
    digest: TDigest,
    buffer: Vec<f64>,
}

/// How a [`Sketch`] is saved: the digest's parts, then the values not
/// folded yet.
#[derive(Serialize, Deserialize)]
struct SketchParts {
    sum: f64,
    count: f64,
    max: f64,
    min: f64,
    centroids: Vec<(f64, f64)>,
    buffer: Vec<f64>,
}

impl From<Sketch> for SketchParts {
    fn from(s: Sketch) -> Self {
        let d = &s.digest;
        Self {
            sum: d.sum(),
            count: d.count(),
            max: d.max(),
            min: d.min(),
            centroids: d
                .centroids()
                .iter()
                .map(|c| (c.mean(), c.weight()))
                .collect(),
            buffer: s.buffer,
        }
    }
}

impl TryFrom<SketchParts> for Sketch {
    type Error = String;

    fn try_from(p: SketchParts) -> Result<Self, String> {
        let centroids = p
            .centroids
            .iter()
            .map(|(m, w)| Centroid::new(*m, *w))
            .collect();
        let digest = TDigest::try_from_parts(DIGEST_SIZE, p.sum, p.count, p.max, p.min, centroids)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            digest,
            buffer: p.buffer,
        })
    }
}

impl Default for Sketch {
    fn default() -> Self {
        Self {
            digest: TDigest::new(DIGEST_SIZE),
            buffer: Vec::new(),
        }
    }
}

impl Sketch {
    pub fn add(&mut self, value: i64) {
        self.buffer.push(value as f64);
        if self.buffer.len() >= FOLD_AT {
            self.fold();
        }
    }

    fn fold(&mut self) {
        if !self.buffer.is_empty() {
            self.digest = self
                .digest
                .merge_unsorted_f64(std::mem::take(&mut self.buffer));
        }
    }

    fn folded(&self) -> TDigest {
        let mut s = self.clone();
        s.fold();
        s.digest
    }

    /// All of `sketches` in one.
    pub fn merged<'a>(sketches: impl IntoIterator<Item = &'a Sketch>) -> Sketch {
        let digests: Vec<TDigest> = sketches.into_iter().map(Sketch::folded).collect();
        Sketch {
            digest: TDigest::merge_digests(&digests),
            buffer: Vec::new(),
        }
    }

    /// The `q` quantile as `CAST(approx_percentile_cont(q) … AS BIGINT)`
    /// reads it; none when the sketch is empty.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let d = self.folded();
        (d.count() > 0.0).then(|| d.estimate_quantile(q) as i64)
    }

    pub fn count(&self) -> usize {
        self.digest.count() as usize + self.buffer.len()
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a sketch always encodes")
    }

    fn decode(bytes: &[u8]) -> Result<Self, ArrowError> {
        postcard::from_bytes(bytes)
            .map_err(|e| ArrowError::ParseError(format!("a rollup sketch does not read: {e}")))
    }
}

/// One edge of the boundary map.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Edge {
    pub producer_service: String,
    pub system: Option<String>,
    pub destination: Option<String>,
    pub consumer_service: String,
    pub kind: String,
}

/// What an edge's boundaries add up to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EdgeTotals {
    pub count: i64,
    pub latency: Sketch,
    pub max_ns: Option<i64>,
    pub flagged: i64,
    pub redeliveries: i64,
    pub clock_skew: i64,
}

impl EdgeTotals {
    fn add(&mut self, b: &Boundary) {
        self.count += 1;
        self.latency.add(b.latency_ns);
        self.max_ns = Some(self.max_ns.map_or(b.latency_ns, |m| m.max(b.latency_ns)));
        self.flagged += i64::from(b.flagged);
        self.clock_skew += i64::from(b.clock_skew);
    }

    /// All of `parts` in one.
    pub fn merged<'a>(parts: impl IntoIterator<Item = &'a EdgeTotals> + Clone) -> EdgeTotals {
        let mut out = EdgeTotals {
            latency: Sketch::merged(parts.clone().into_iter().map(|p| &p.latency)),
            ..EdgeTotals::default()
        };
        for p in parts {
            out.count += p.count;
            out.max_ns = out.max_ns.max(p.max_ns);
            out.flagged += p.flagged;
            out.redeliveries += p.redeliveries;
            out.clock_skew += p.clock_skew;
        }
        out
    }
}

/// A function: its service name and platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Function {
    pub function: String,
    pub platform: String,
}

/// What a function's invocations add up to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunctionTotals {
    pub invocations: i64,
    /// On-demand cold starts.
    pub cold_starts: i64,
    pub proactive: i64,
    pub provisioned: i64,
    pub snapstart: i64,
    pub init: Sketch,
    /// Durations of on-demand cold starts.
    pub cold: Sketch,
    /// Durations of invocations not cold.
    pub warm: Sketch,
}

impl FunctionTotals {
    fn add(&mut self, duration: i64, judged: Judged) {
        self.invocations += 1;
        if judged.cold == Some(true) {
            match judged.kind {
                Some(ColdStartType::OnDemand) => {
                    self.cold_starts += 1;
                    self.cold.add(duration);
                }
                Some(ColdStartType::Proactive) => self.proactive += 1,
                Some(ColdStartType::Provisioned) => self.provisioned += 1,
                Some(ColdStartType::Snapstart) => self.snapstart += 1,
                None => {}
            }
        } else {
            self.warm.add(duration);
        }
        if let Some(init) = judged.init_duration_ns {
            self.init.add(init);
        }
    }

    /// All of `parts` in one.
    pub fn merged<'a>(
        parts: impl IntoIterator<Item = &'a FunctionTotals> + Clone,
    ) -> FunctionTotals {
        let sketch = |pick: fn(&FunctionTotals) -> &Sketch| {
            Sketch::merged(parts.clone().into_iter().map(pick))
        };
        let mut out = FunctionTotals {
            init: sketch(|p| &p.init),
            cold: sketch(|p| &p.cold),
            warm: sketch(|p| &p.warm),
            ..FunctionTotals::default()
        };
        for p in parts {
            out.invocations += p.invocations;
            out.cold_starts += p.cold_starts;
            out.proactive += p.proactive;
            out.provisioned += p.provisioned;
            out.snapstart += p.snapstart;
        }
        out
    }
}

/// The cold-start columns of an invocation as a query reads them.
#[derive(Debug, Clone, Copy)]
struct Judged {
    cold: Option<bool>,
    kind: Option<ColdStartType>,
    init_duration_ns: Option<i64>,
}

/// An invocation of a function, waiting for its verdict to settle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unsettled {
    key: SpanKey,
    function: Function,
    start: i64,
    duration: i64,
    /// The stored `cold_start` and `cold_start_type`: what a query reads
    /// when no verdict overrides them.
    said_cold: Option<bool>,
    stored_type: Option<ColdStartType>,
    arrived: i64,
}

impl Unsettled {
    /// Functions only: the cold-start report counts their invocations.
    pub fn of(inv: &Invocation, stored_type: Option<ColdStartType>, arrived: i64) -> Option<Self> {
        (inv.instance.platform == Platform::Faas).then(|| Self {
            key: inv.key,
            function: Function {
                function: inv.instance.service.clone(),
                platform: inv.instance.platform.as_str().to_owned(),
            },
            start: inv.start,
            duration: inv.end.saturating_sub(inv.start),
            said_cold: inv.said_cold,
            stored_type,
            arrived,
        })
    }

    /// How a query reads the invocation with the verdicts of `overlay`;
    /// none when it turned out to run inside another invocation.
    fn judge(&self, overlay: &Overlay) -> Option<Judged> {
        match overlay.get(&self.key) {
            Some(Verdict {
                source: Some(ColdStartSource::InInvocation),
                ..
            }) => None,
            Some(v) => Some(Judged {
                cold: Some(v.cold),
                kind: v.kind,
                init_duration_ns: v.init_duration_ns,
            }),
            None => Some(Judged {
                cold: self.said_cold,
                kind: self.stored_type,
                init_duration_ns: None,
            }),
        }
    }
}

/// A bucket still in memory, with when it was last added to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Open<T> {
    pub(crate) totals: T,
    pub(crate) touched: i64,
}

/// An edge's totals in one minute (the minute's start, ns).
pub type EdgeRow = ((i64, Edge), EdgeTotals);
/// A function's totals in one minute (the minute's start, ns).
pub type FunctionRow = ((i64, Function), FunctionTotals);

/// Buckets closed and written as rows.
#[derive(Debug, Default)]
pub struct Closed {
    pub edges: Vec<EdgeRow>,
    pub functions: Vec<FunctionRow>,
    pub operations: Vec<OperationRow>,
}

impl Closed {
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty() && self.functions.is_empty() && self.operations.is_empty()
    }
}

/// The rollups not written yet, with what deciding them needs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Rollups {
    edges: BTreeMap<(i64, Edge), Open<EdgeTotals>>,
    functions: BTreeMap<(i64, Function), Open<FunctionTotals>>,
    unsettled: VecDeque<Unsettled>,
    /// Earliest consumer time of each message delivered to a consumer
    /// service (a hash of producer trace, producer span and consumer
    /// service), remembered for the correlation window: a later delivery
    /// is a redelivery.
    deliveries: HashMap<u64, i64>,
    delivery_order: VecDeque<(i64, u64)>,
    /// Saved apart, after the rest of the state: a checkpoint written
    /// before operations were counted still reads.
    #[serde(skip)]
    pub(crate) operations: OpenOperations,
}

/// Hashes with fixed keys, so a message hashes alike after a restart.
fn delivery_key(b: &Boundary) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(&b.producer.trace.0);
    h.write(&b.producer.span.0);
    h.write(b.consumer_service.as_bytes());
    h.finish()
}

impl Rollups {
    /// Counts `b`, found at `now`; deliveries are remembered for `window`
    /// ns and at most `cap` of them.
    pub fn add_boundary(&mut self, b: &Boundary, now: i64, window: i64, cap: usize) {
        let edge = Edge {
            producer_service: b.producer_service.clone(),
            system: b.system.clone(),
            destination: b.destination.clone(),
            consumer_service: b.consumer_service.clone(),
            kind: b.kind.as_str().to_owned(),
        };
        let redelivered_at = if b.kind == BoundaryKind::Async {
            self.deliver(b, now, window, cap)
        } else {
            None
        };
        if let Some(at) = redelivered_at {
            let bucket = self.edges.entry((minute_of(at), edge.clone())).or_default();
            bucket.totals.redeliveries += 1;
            bucket.touched = now;
        }
        let bucket = self
            .edges
            .entry((minute_of(b.consumer_time), edge))
            .or_default();
        bucket.totals.add(b);
        bucket.touched = now;
    }

    /// Remembers a delivery; the consumer time of the delivery that is a
    /// redelivery now, if any (this one, or the one earliest before it).
    fn deliver(&mut self, b: &Boundary, now: i64, window: i64, cap: usize) -> Option<i64> {
        while let Some(&(at, key)) = self.delivery_order.front() {
            if now.saturating_sub(at) <= window && self.delivery_order.len() < cap {
                break;
            }
            self.delivery_order.pop_front();
            self.deliveries.remove(&key);
        }
        let key = delivery_key(b);
        match self.deliveries.get_mut(&key) {
            None => {
                self.deliveries.insert(key, b.consumer_time);
                self.delivery_order.push_back((now, key));
                None
            }
            Some(earliest) if b.consumer_time < *earliest => {
                Some(std::mem::replace(earliest, b.consumer_time))
            }
            Some(_) => Some(b.consumer_time),
        }
    }

    pub fn add_invocation(&mut self, inv: Unsettled) {
        self.unsettled.push_back(inv);
    }

    /// Counts the invocations that arrived at least `idle` ns before `now`
    /// with the verdicts they have.
    pub fn settle(&mut self, now: i64, idle: i64, overlay: &Overlay) {
        while let Some(inv) = self.unsettled.front() {
            if now.saturating_sub(inv.arrived) < idle {
                break;
            }
            let inv = self.unsettled.pop_front().expect("a front");
            if let Some(judged) = inv.judge(overlay) {
                let bucket = (self.functions)
                    .entry((minute_of(inv.start), inv.function))
                    .or_default();
                bucket.totals.add(inv.duration, judged);
                bucket.touched = now;
            }
        }
    }

    /// Takes the buckets not added to for `idle` ns.
    pub fn take_closed(&mut self, now: i64, idle: i64) -> Closed {
        let quiet = |touched: i64| now.saturating_sub(touched) >= idle;
        Closed {
            edges: take_quiet(&mut self.edges, quiet),
            functions: take_quiet(&mut self.functions, quiet),
            operations: self.operations.take_quiet(quiet),
        }
    }

    /// Puts back buckets that could not be written.
    pub fn put_back(&mut self, closed: Closed, now: i64) {
        put_back(&mut self.edges, closed.edges, now, |a, b| {
            EdgeTotals::merged([a, b])
        });
        put_back(&mut self.functions, closed.functions, now, |a, b| {
            FunctionTotals::merged([a, b])
        });
        self.operations.put_back(closed.operations, now);
    }

    /// Counts a request's spans per operation, arrived at `now`.
    pub fn add_operations(&mut self, rows: Vec<OperationRow>, now: i64) {
        self.operations.add(rows, now);
    }

    /// Operation buckets in memory whose minute lies in `[from, to]`.
    pub fn live_operations(&self, from: i64, to: i64) -> Vec<OperationRow> {
        self.operations.live(from, to)
    }

    /// Edge buckets in memory whose minute lies in `[from, to]`.
    pub fn live_edges(&self, from: i64, to: i64) -> Vec<EdgeRow> {
        (self.edges.iter())
            .filter(|((minute, _), _)| (from..=to).contains(minute))
            .map(|(k, open)| (k.clone(), open.totals.clone()))
            .collect()
    }

    /// Function buckets in memory whose minute lies in `[from, to]`, with
    /// the invocations not settled yet judged by `overlay` as they are now.
    pub fn live_functions(&self, from: i64, to: i64, overlay: &Overlay) -> Vec<FunctionRow> {
        let mut rows: Vec<_> = (self.functions.iter())
            .filter(|((minute, _), _)| (from..=to).contains(minute))
            .map(|(k, open)| (k.clone(), open.totals.clone()))
            .collect();
        // Rows apart from the open buckets': a report merges them anyway.
        let mut fresh: BTreeMap<(i64, Function), FunctionTotals> = BTreeMap::new();
        for inv in &self.unsettled {
            let minute = minute_of(inv.start);
            if !(from..=to).contains(&minute) {
                continue;
            }
            if let Some(judged) = inv.judge(overlay) {
                (fresh.entry((minute, inv.function.clone())).or_default())
                    .add(inv.duration, judged);
            }
        }
        rows.extend(fresh);
        rows
    }

    /// Buckets and invocations held.
    pub fn len(&self) -> usize {
        self.edges.len() + self.functions.len() + self.unsettled.len() + self.operations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the buckets of `open` that `quiet` says of their last touch.
pub(crate) fn take_quiet<K: Ord + Clone, T: Default>(
    open: &mut BTreeMap<K, Open<T>>,
    quiet: impl Fn(i64) -> bool,
) -> Vec<(K, T)> {
    let mut out = Vec::new();
    open.retain(|key, bucket| {
        if !quiet(bucket.touched) {
            return true;
        }
        out.push((key.clone(), std::mem::take(&mut bucket.totals)));
        false
    });
    out
}

/// Merges `rows` back into `open`, touched at `now`.
pub(crate) fn put_back<K: Ord, T: Default>(
    open: &mut BTreeMap<K, Open<T>>,
    rows: Vec<(K, T)>,
    now: i64,
    merge: impl Fn(&T, &T) -> T,
) {
    for (key, totals) in rows {
        let bucket = open.entry(key).or_default();
        bucket.totals = merge(&bucket.totals, &totals);
        bucket.touched = now;
    }
}

/// Rows of `edge_rollups`.
pub fn edge_rollups_batch<'a>(
    rows: impl IntoIterator<Item = &'a EdgeRow>,
) -> Result<RecordBatch, ArrowError> {
    let mut minute = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let (mut ps, mut sys, mut dest, mut cs, mut kind) = (
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut count, mut max, mut flagged, mut redeliveries, mut skew) = (
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
        Int64Builder::new(),
    );
    let mut latency = BinaryBuilder::new();
    for ((m, edge), t) in rows {
        minute.append_value(*m);
        ps.append_value(&edge.producer_service);
        sys.append_option(edge.system.as_deref());
        dest.append_option(edge.destination.as_deref());
        cs.append_value(&edge.consumer_service);
        kind.append_value(&edge.kind);
        count.append_value(t.count);
        max.append_option(t.max_ns);
        flagged.append_value(t.flagged);
        redeliveries.append_value(t.redeliveries);
        skew.append_value(t.clock_skew);
        latency.append_value(t.latency.encode());
    }
    RecordBatch::try_new(
        edge_rollups_schema(),
        vec![
            Arc::new(minute.finish()),
            Arc::new(ps.finish()),
            Arc::new(sys.finish()),
            Arc::new(dest.finish()),
            Arc::new(cs.finish()),
            Arc::new(kind.finish()),
            Arc::new(count.finish()),
            Arc::new(max.finish()),
            Arc::new(flagged.finish()),
            Arc::new(redeliveries.finish()),
            Arc::new(skew.finish()),
            Arc::new(latency.finish()),
        ],
    )
}

/// Rows of `function_rollups`.
pub fn function_rollups_batch<'a>(
    rows: impl IntoIterator<Item = &'a FunctionRow>,
) -> Result<RecordBatch, ArrowError> {
    let mut minute = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let (mut function, mut platform) = (StringBuilder::new(), StringBuilder::new());
    let mut counts: [Int64Builder; 5] = Default::default();
    let mut sketches: [BinaryBuilder; 3] = Default::default();
    for ((m, f), t) in rows {
        minute.append_value(*m);
        function.append_value(&f.function);
        platform.append_value(&f.platform);
        let values = [
            t.invocations,
            t.cold_starts,
            t.proactive,
            t.provisioned,
            t.snapstart,
        ];
        for (b, v) in counts.iter_mut().zip(values) {
            b.append_value(v);
        }
        for (b, s) in sketches.iter_mut().zip([&t.init, &t.cold, &t.warm]) {
            b.append_value(s.encode());
        }
    }
    let mut columns: Vec<arrow::array::ArrayRef> = vec![
        Arc::new(minute.finish()),
        Arc::new(function.finish()),
        Arc::new(platform.finish()),
    ];
    columns.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as _));
    columns.extend(sketches.iter_mut().map(|b| Arc::new(b.finish()) as _));
    RecordBatch::try_new(function_rollups_schema(), columns)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, ArrowError> {
    batch
        .column_by_name(name)
        .map(|c| c.as_ref())
        .ok_or_else(|| ArrowError::SchemaError(format!("no column {name}")))
}

fn text(batch: &RecordBatch, name: &str, i: usize) -> Result<Option<String>, ArrowError> {
    let c = column(batch, name)?
        .as_string_opt::<i32>()
        .ok_or_else(|| ArrowError::SchemaError(format!("{name} is not a string column")))?;
    Ok(c.is_valid(i).then(|| c.value(i).to_owned()))
}

fn int(batch: &RecordBatch, name: &str, i: usize) -> Result<Option<i64>, ArrowError> {
    let c = column(batch, name)?
        .as_primitive_opt::<Int64Type>()
        .ok_or_else(|| ArrowError::SchemaError(format!("{name} is not an Int64 column")))?;
    Ok(c.is_valid(i).then(|| c.value(i)))
}

fn sketch(batch: &RecordBatch, name: &str, i: usize) -> Result<Sketch, ArrowError> {
    let c = column(batch, name)?
        .as_binary_opt::<i32>()
        .ok_or_else(|| ArrowError::SchemaError(format!("{name} is not a binary column")))?;
    Sketch::decode(c.value(i))
}

fn minute_at(batch: &RecordBatch, i: usize) -> Result<i64, ArrowError> {
    column(batch, rollup_col::MINUTE)?
        .as_primitive_opt::<TimestampNanosecondType>()
        .map(|c| c.value(i))
        .ok_or_else(|| ArrowError::SchemaError("minute is not a timestamp column".into()))
}

/// Reads rows of `edge_rollups` back.
pub fn edge_rows(batch: &RecordBatch) -> Result<Vec<EdgeRow>, ArrowError> {
    use rollup_col::*;
    let needed = |v: Option<String>| v.unwrap_or_default();
    (0..batch.num_rows())
        .map(|i| {
            let edge = Edge {
                producer_service: needed(text(batch, PRODUCER_SERVICE, i)?),
                system: text(batch, SYSTEM, i)?,
                destination: text(batch, DESTINATION, i)?,
                consumer_service: needed(text(batch, CONSUMER_SERVICE, i)?),
                kind: needed(text(batch, KIND, i)?),
            };
            let n = |name| int(batch, name, i).map(Option::unwrap_or_default);
            let totals = EdgeTotals {
                count: n(COUNT)?,
                latency: sketch(batch, LATENCY, i)?,
                max_ns: int(batch, MAX_NS, i)?,
                flagged: n(FLAGGED)?,
                redeliveries: n(REDELIVERIES)?,
                clock_skew: n(CLOCK_SKEW)?,
            };
            Ok(((minute_at(batch, i)?, edge), totals))
        })
        .collect()
}

/// Reads rows of `function_rollups` back.
pub fn function_rows(batch: &RecordBatch) -> Result<Vec<FunctionRow>, ArrowError> {
    use rollup_col::*;
    (0..batch.num_rows())
        .map(|i| {
            let function = Function {
                function: text(batch, FUNCTION, i)?.unwrap_or_default(),
                platform: text(batch, PLATFORM, i)?.unwrap_or_default(),
            };
            let n = |name| int(batch, name, i).map(Option::unwrap_or_default);
            let totals = FunctionTotals {
                invocations: n(INVOCATIONS)?,
                cold_starts: n(COLD_STARTS)?,
                proactive: n(PROACTIVE)?,
                provisioned: n(PROVISIONED)?,
                snapstart: n(SNAPSTART)?,
                init: sketch(batch, INIT, i)?,
                cold: sketch(batch, COLD, i)?,
                warm: sketch(batch, WARM, i)?,
            };
            Ok(((minute_at(batch, i)?, function), totals))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use seam_model::{SpanId, TraceId};

    use super::*;
    use crate::tables::StitchedBy;

    fn key(trace: u8, span: u8) -> SpanKey {
        SpanKey {
            trace: TraceId([trace; 16]),
            span: SpanId([span; 8]),
        }
    }

    fn boundary(producer: SpanKey, consumer: SpanKey, consumer_time: i64) -> Boundary {
        Boundary {
            producer,
            consumer,
            kind: BoundaryKind::Async,
            stitched_by: StitchedBy::Correlation,
            correlation: None,
            producer_service: "checkout".into(),
            producer_platform: "kubernetes",
            consumer_service: "worker".into(),
            consumer_platform: "faas",
            system: Some("aws_sqs".into()),
            destination: Some("orders".into()),
            producer_time: consumer_time - 1_000,
            consumer_time,
            latency_ns: 1_000,
            flagged: false,
            clock_skew: false,
        }
    }

    #[test]
    fn a_sketch_reads_back_and_estimates_as_one_digest_of_every_value() {
        let values: Vec<i64> = (0..1_000).map(|i| (i * 7919) % 10_007 * 1_000).collect();
        let mut parts = vec![Sketch::default(); 7];
        for (i, v) in values.iter().enumerate() {
            parts[i % 7].add(*v);
        }
        let parts: Vec<Sketch> = parts
            .iter()
            .map(|s| Sketch::decode(&s.encode()).unwrap())
            .collect();
        let merged = Sketch::merged(&parts);
        assert_eq!(merged.count(), 1_000);
        let mut sorted: Vec<f64> = values.iter().map(|v| *v as f64).collect();
        sorted.sort_by(f64::total_cmp);
        for q in [0.5, 0.95, 0.99] {
            let exact = sorted[(q * 999.0) as usize];
            let got = merged.quantile(q).unwrap() as f64;
            assert!(
                (got - exact).abs() <= exact * 0.02,
                "q{q}: {got} vs {exact}"
            );
        }
        // Few values: every value is its own centroid, as in one digest.
        let mut few = Sketch::default();
        let mut one = TDigest::new(DIGEST_SIZE);
        for v in [5, 1, 9, 3] {
            few.add(v);
        }
        one = one.merge_unsorted_f64(vec![5.0, 1.0, 9.0, 3.0]);
        let few = Sketch::merged([&Sketch::decode(&few.encode()).unwrap()]);
        assert_eq!(few.quantile(0.5), Some(one.estimate_quantile(0.5) as i64));
        assert_eq!(Sketch::default().quantile(0.5), None);
    }

    #[test]
    fn a_later_delivery_is_the_redelivery_and_an_earlier_one_moves_it() {
        let mut r = Rollups::default();
        let producer = key(1, 1);
        let t0 = 10 * MINUTE_NS;
        r.add_boundary(&boundary(producer, key(2, 2), t0 + 5), 0, i64::MAX, 100);
        r.add_boundary(
            &boundary(producer, key(3, 3), t0 + 2 * MINUTE_NS),
            1,
            i64::MAX,
            100,
        );
        // Earlier than the first: the first becomes a redelivery.
        r.add_boundary(
            &boundary(producer, key(4, 4), t0 - MINUTE_NS),
            2,
            i64::MAX,
            100,
        );
        let edges = r.live_edges(i64::MIN, i64::MAX);
        let by_minute: BTreeMap<i64, (i64, i64)> = edges
            .iter()
            .map(|((m, _), t)| (*m, (t.count, t.redeliveries)))
            .collect();
        assert_eq!(
            by_minute,
            BTreeMap::from([
                (t0 - MINUTE_NS, (1, 0)),
                (t0, (1, 1)),
                (t0 + 2 * MINUTE_NS, (1, 1)),
            ])
        );
        // Another message, a sync call: no redeliveries.
        let mut sync = boundary(key(5, 5), key(6, 6), t0);
        sync.kind = BoundaryKind::Sync;
        r.add_boundary(&sync, 3, i64::MAX, 100);
        r.add_boundary(&sync, 3, i64::MAX, 100);
        let total = EdgeTotals::merged(
            r.live_edges(i64::MIN, i64::MAX)
                .iter()
                .filter(|((_, e), _)| e.kind == "sync")
                .map(|(_, t)| t),
        );
        assert_eq!((total.count, total.redeliveries), (2, 0));
    }

    #[test]
    fn invocations_count_with_the_verdict_they_have_once_settled() {
        let mut r = Rollups::default();
        let mut overlay = Overlay::default();
        let inv = |span: u8, said_cold: Option<bool>| Unsettled {
            key: key(9, span),
            function: Function {
                function: "resizer".into(),
                platform: "faas".into(),
            },
            start: 5 * MINUTE_NS + i64::from(span),
            duration: 100 * i64::from(span),
            said_cold,
            stored_type: said_cold.filter(|c| *c).map(|_| ColdStartType::OnDemand),
            arrived: 0,
        };
        r.add_invocation(inv(1, None));
        r.add_invocation(inv(2, Some(true)));
        r.add_invocation(inv(3, None));
        // The first is judged cold by an init span, the third runs inside
        // another invocation, both before they settle.
        overlay.set(
            key(9, 1),
            Verdict {
                cold: true,
                kind: Some(ColdStartType::OnDemand),
                init_duration_ns: Some(40),
                source: Some(ColdStartSource::InitSpan),
            },
            10,
        );
        overlay.mark_nested(key(9, 3), 10);
        let live = r.live_functions(i64::MIN, i64::MAX, &overlay);
        let judged_live = FunctionTotals::merged(live.iter().map(|(_, t)| t));
        r.settle(5, 10, &overlay);
        assert!(r.live_edges(i64::MIN, i64::MAX).is_empty());
        assert_eq!(r.functions.len(), 0, "not settled before trace_idle");
        r.settle(10, 10, &overlay);
        let closed = r.take_closed(10, 10);
        assert!(closed.functions.is_empty(), "just added to");
        let closed = r.take_closed(20, 10);
        assert_eq!(closed.functions.len(), 1);
        for t in [&closed.functions[0].1, &judged_live] {
            assert_eq!((t.invocations, t.cold_starts), (2, 2));
            assert_eq!(t.init.quantile(0.5), Some(40));
            assert_eq!(t.warm.quantile(0.5), None);
        }
        // Rows read back as they were written.
        let batch = function_rollups_batch(&closed.functions).unwrap();
        let back = function_rows(&batch).unwrap();
        assert_eq!(back[0].0, closed.functions[0].0);
        let both = TDigest::new(DIGEST_SIZE).merge_unsorted_f64(vec![100.0, 200.0]);
        assert_eq!(
            back[0].1.cold.quantile(0.5),
            Some(both.estimate_quantile(0.5) as i64)
        );
        assert!(r.is_empty());
    }
}
