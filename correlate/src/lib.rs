//! Seam's correlation stage: boundaries across queues, event buses and
//! platforms, flows of traces, orphans, and cold starts (docs/contract.md §5).
//!
//! ```text
//!  normalize ─▶ SpanRow ─▶ Extractor::observe ─▶ Observed ─▶ (a committed write's Note)
//!                                                              │ the store's follower thread
//!                                                              ▼
//!                                                   Correlator::observe
//!        ┌─────────────────────────────────────────────────────┼──────────────────────────┐
//!        ▼                                                     ▼                          ▼
//!  stitch::Pending (halves waiting) ─▶ boundaries rows    flows::Flows           coldstart::ColdStarts
//!        │ tick: window ran out ─▶ orphans rows               └────── view::CorrelationView ◀── queries
//!        └─ capture at each seal's cut (checkpoint.rs)                   (flow_id, cold columns)
//! ```
//!
//! The stage never touches a stored span: what it learns becomes rows of
//! its own tables (`boundaries`, `orphans`), which the store appends, or
//! state that queries apply when they read (`flow_id`, cold-start
//! verdicts). It follows the store's committed writes
//! ([`seam_store::Follower`]), so it sees every acknowledged span once, in
//! commit order, and its state is captured at every seal's cut.

pub mod checkpoint;
pub mod coldstart;
pub mod config;
pub mod flows;
pub mod half;
pub mod metrics;
pub mod nesting;
pub mod operations;
pub mod role;
pub mod rollup;
pub mod stitch;
pub mod tables;
pub mod traces;
pub mod view;

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use seam_model::Platform;
use seam_model::tables::{
    BOUNDARIES, EDGE_ROLLUPS, FUNCTION_ROLLUPS, OPERATION_ROLLUPS, ORPHANS, TRACES,
};
use seam_store::{Derived, Follower, StoreError};
use tracing::{debug, warn};

pub use config::{ColdStartConfig, CorrelationConfig};
pub use half::{Extractor, INVOCATION_SQL, Observed, SpanKey};
pub use metrics::CorrelationMetrics;
pub use tables::{boundaries_schema, boundary_col, orphan_col, orphans_schema};
pub use traces::{TracePart, TraceParts};
pub use view::{CorrelationView, Deliveries};

use crate::coldstart::{ColdStarts, Overlay};
use crate::flows::{Flows, Join};
use crate::half::Invocation;
use crate::nesting::Nesting;
use crate::operations::OperationRow;
use crate::stitch::{Effects, Pending};

/// Why correlation could not record what it found.
#[derive(Debug, thiserror::Error)]
pub enum CorrelateError {
    #[error("building a correlation batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("storing a correlation batch: {0}")]
    Store(#[from] StoreError),
    #[error("correlation checkpoint {path} is unreadable: {why}")]
    Corrupt { path: String, why: String },
    #[error("writing trace summaries: {0}")]
    Flush(String),
}

/// A point-in-time copy of the correlation counters and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CorrelationStats {
    pub pending_halves: usize,
    pub indexed_traces: usize,
    pub instances: usize,
    pub boundaries: u64,
    pub orphans: u64,
    pub unconsumed: u64,
    pub evicted: u64,
    pub duplicates: u64,
    pub merges_refused: u64,
    pub flow_traces_forgotten: u64,
}

struct State {
    pending: Pending,
    cold: ColdStarts,
    nesting: Nesting,
}

/// What one committed write hands to correlation: its spans as
/// correlation sees them, what they add to each trace's summary, and when
/// they arrived (ns since the epoch, on Seam's clock, for the correlation
/// window).
#[derive(Debug, Default)]
pub struct Note {
    pub observed: Vec<Observed>,
    pub traces: Vec<TracePart>,
    /// Spans stored as on-demand cold starts.
    pub said_cold: Vec<SpanKey>,
    /// The spans counted per minute and operation.
    pub operations: Vec<OperationRow>,
    pub arrived: i64,
}

/// The correlation stage. One per server; it follows the store's
/// committed writes on the store's follower thread (`observe` and `tick`
/// may also be called directly, from any thread).
pub struct Correlator {
    config: CorrelationConfig,
    extractor: Extractor,
    state: Mutex<State>,
    view: CorrelationView,
    metrics: CorrelationMetrics,
}

impl Correlator {
    /// A correlator whose rows go to the `boundaries` and `orphans` tables.
    pub fn new(config: CorrelationConfig) -> Self {
        let flows = Flows::new(config.max_flow_traces, config.max_indexed_traces);
        Self {
            extractor: Extractor::new(&config),
            state: Mutex::new(State {
                pending: Pending::default(),
                cold: ColdStarts::default(),
                nesting: Nesting::default(),
            }),
            view: CorrelationView {
                flows: Arc::new(RwLock::new(flows)),
                overlay: Arc::new(RwLock::new(Overlay::default())),
                traces: Arc::default(),
                index: Arc::default(),
                rollups: Arc::default(),
                followed: true,
            },
            metrics: {
                let metrics = CorrelationMetrics::default();
                metrics
                    .max_pending_halves
                    .set(i64::try_from(config.max_pending).unwrap_or(i64::MAX));
                metrics
            },
            config,
        }
    }

    pub fn config(&self) -> &CorrelationConfig {
        &self.config
    }

    /// Reads spans into what correlation keeps; call on the ingest path,
    /// before the rows are dropped.
    pub fn extractor(&self) -> &Extractor {
        &self.extractor
    }

    pub fn view(&self) -> CorrelationView {
        self.view.clone()
    }

    /// Takes in the spans of one request, arrived at `now` (ns since the
    /// epoch on Seam's clock); the rows of every boundary they complete go
    /// to `out`.
    pub fn observe(
        &self,
        observed: Vec<Observed>,
        now: i64,
        out: &mut Derived,
    ) -> Result<(), CorrelateError> {
        if observed.is_empty() {
            return Ok(());
        }
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            let State {
                pending,
                cold,
                nesting,
            } = &mut *state;
            let mut overlay = None;
            let mut invocations = Vec::new();
            for o in observed {
                if let Some(half) = o.half {
                    pending.add(half, now, &self.config, &self.extractor, &mut effects);
                }
                if o.init.is_some() || o.invocation.is_some() {
                    let overlay = overlay.get_or_insert_with(|| self.view.overlay.write());
                    if let Some(init) = o.init {
                        cold.init(init, now, &self.config.cold_start, overlay);
                    }
                    if let Some(inv) = o.invocation {
                        invocations.extend(rollup::Unsettled::of(&inv, inv.stored_type, now));
                        let (trace, start) = (inv.key.trace, inv.start);
                        Self::invocation(inv, now, &self.config, cold, nesting, overlay);
                        // Judged cold: where a cold-start search finds it.
                        if overlay.trace_had_cold(&trace) {
                            let cap = self.config.max_indexed_traces;
                            self.view.index.write().cold.insert(trace, start, cap);
                        }
                    }
                }
            }
            drop(overlay);
            if !invocations.is_empty() {
                let mut rollups = self.view.rollups.write();
                for inv in invocations {
                    rollups.add_invocation(inv);
                }
            }
            self.apply_joins(&effects);
            self.measure(&state);
        }
        self.record(effects, now, out)
    }

    /// Adds the summaries of one request's spans, and the spans of them
    /// stored as on-demand cold starts, arrived at `now`.
    pub fn observe_traces(&self, parts: Vec<TracePart>, said_cold: Vec<SpanKey>, now: i64) {
        if parts.is_empty() {
            return;
        }
        if parts.iter().any(|p| p.cold) {
            let cap = self.config.max_indexed_traces;
            let mut index = self.view.index.write();
            for part in parts.iter().filter(|p| p.cold) {
                index.cold.insert(part.trace, part.start, cap);
            }
            for key in said_cold {
                index.said_cold.add(key, cap);
            }
        }
        let mut active = self.view.traces.write();
        for part in parts {
            active.add(part, now);
        }
        self.metrics
            .active_traces
            .set(i64::try_from(active.len()).unwrap_or(i64::MAX));
    }

    /// Writes the summaries of traces quiet for `trace_idle` (and, past
    /// `max_active_traces`, of the least recently active) through
    /// `append`, and drops them from the active ones in the same step.
    pub fn flush_traces(
        &self,
        now: i64,
        append: &mut dyn FnMut(Derived) -> Result<(), String>,
    ) -> Result<(), CorrelateError> {
        let idle = i64::try_from(self.config.trace_idle.as_nanos()).unwrap_or(i64::MAX);
        let mut active = self.view.traces.write();
        let quiet = active.take_quiet(now, idle, self.config.max_active_traces);
        if quiet.is_empty() {
            return Ok(());
        }
        let mut out = Derived::default();
        out.push(TRACES, traces::traces_batch(quiet.iter())?);
        if let Err(why) = append(out) {
            // Not written: back to the active ones, for the next flush.
            for part in quiet {
                active.add(part, now);
            }
            return Err(CorrelateError::Flush(why));
        }
        self.metrics.traces_written.inc_by(quiet.len() as u64);
        self.metrics
            .active_traces
            .set(i64::try_from(active.len()).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Counts the invocations whose verdicts have settled and writes the
    /// rollup buckets quiet for `trace_idle` through `append`, dropping
    /// them from memory in the same step.
    pub fn flush_rollups(
        &self,
        now: i64,
        append: &mut dyn FnMut(Derived) -> Result<(), String>,
    ) -> Result<(), CorrelateError> {
        let idle = i64::try_from(self.config.trace_idle.as_nanos()).unwrap_or(i64::MAX);
        let mut rollups = self.view.rollups.write();
        rollups.settle(now, idle, &self.view.overlay.read());
        let closed = rollups.take_closed(now, idle);
        if closed.is_empty() {
            return Ok(());
        }
        let mut out = Derived::default();
        if !closed.edges.is_empty() {
            out.push(EDGE_ROLLUPS, rollup::edge_rollups_batch(&closed.edges)?);
        }
        if !closed.functions.is_empty() {
            out.push(
                FUNCTION_ROLLUPS,
                rollup::function_rollups_batch(&closed.functions)?,
            );
        }
        if !closed.operations.is_empty() {
            out.push(
                OPERATION_ROLLUPS,
                operations::operation_rollups_batch(&closed.operations)?,
            );
        }
        if let Err(why) = append(out) {
            rollups.put_back(closed, now);
            return Err(CorrelateError::Flush(why));
        }
        Ok(())
    }

    /// Judges one invocation span, unless it runs inside another; takes
    /// back the verdicts of those found to run inside it.
    fn invocation(
        inv: Invocation,
        now: i64,
        config: &CorrelationConfig,
        cold: &mut ColdStarts,
        nesting: &mut Nesting,
        overlay: &mut Overlay,
    ) {
        let cap = config.cold_start.max_instances;
        if overlay.is_nested(&inv.key) {
            return;
        }
        if inv.instance.platform != Platform::Faas {
            cold.invocation(inv, now, &config.cold_start, overlay);
            return;
        }
        let placed = nesting.place(&inv, now);
        // Before the enclosing invocation is judged, so that it takes the
        // place of a child that was its instance's first.
        for (child, instance) in &placed.children {
            cold.retract(instance, *child, overlay);
        }
        if placed.nested {
            overlay.mark_nested(inv.key, cap);
        } else {
            cold.invocation(inv, now, &config.cold_start, overlay);
        }
        for (child, _) in placed.children {
            overlay.mark_nested(child, cap);
        }
    }

    /// Lets halves whose window ran out go (their orphan rows to `out`)
    /// and forgets instances not seen for their TTL.
    pub fn tick(&self, now: i64, out: &mut Derived) -> Result<(), CorrelateError> {
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            state
                .pending
                .expire(now, &self.config, &self.extractor, &mut effects);
            let forgotten = state.cold.sweep(now, &self.config.cold_start);
            state.nesting.sweep(now);
            if forgotten > 0 {
                debug!(forgotten, "forgot idle function instances");
            }
            self.measure(&state);
        }
        self.record(effects, now, out)
    }

    /// Sets the size gauges from the state just changed.
    fn measure(&self, state: &State) {
        let m = &self.metrics;
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.pending_halves.set(gauge(state.pending.len()));
        m.instances.set(gauge(state.cold.instances()));
        m.indexed_traces
            .set(gauge(self.view.flows.read().indexed_traces()));
    }

    fn apply_joins(&self, effects: &Effects) {
        if effects.joins.is_empty() {
            return;
        }
        let mut flows = self.view.flows.write();
        let mut joined = Vec::with_capacity(effects.joins.len());
        for [a, b] in &effects.joins {
            let (outcome, forgotten) = flows.join(a.0, b.0);
            if outcome == Join::Refused {
                self.metrics.merges_refused.inc();
            } else {
                joined.extend([a, b]);
            }
            if forgotten > 0 {
                self.metrics.flow_traces_forgotten.inc_by(forgotten as u64);
            }
        }
        drop(flows);
        let cap = self.config.max_indexed_traces;
        let mut index = self.view.index.write();
        for (trace, at) in joined {
            index.joined.insert(trace, at, cap);
        }
    }

    fn record(&self, effects: Effects, now: i64, out: &mut Derived) -> Result<(), CorrelateError> {
        let m = &self.metrics;
        m.evicted.inc_by(effects.evicted);
        m.duplicates.inc_by(effects.duplicates);
        if effects.evicted > 0 {
            warn!(
                evicted = effects.evicted,
                cap = self.config.max_pending,
                "correlation state is full; evicted the oldest waiting halves"
            );
        }
        if !effects.boundaries.is_empty() {
            m.boundaries.inc_by(effects.boundaries.len() as u64);
            {
                let window = i64::try_from(self.config.window.as_nanos()).unwrap_or(i64::MAX);
                let mut rollups = self.view.rollups.write();
                for b in &effects.boundaries {
                    rollups.add_boundary(b, now, window, self.config.max_pending);
                }
            }
            let cap = self.config.max_indexed_traces;
            let mut index = self.view.index.write();
            for b in &effects.boundaries {
                index.producers.add(b.producer.trace, b.flagged, cap);
                if b.flagged {
                    // Each end's time is no earlier than its trace's start.
                    index.flagged.insert(b.producer.trace, b.producer_time, cap);
                    index.flagged.insert(b.consumer.trace, b.consumer_time, cap);
                }
            }
            drop(index);
            out.push(BOUNDARIES, tables::boundaries_batch(&effects.boundaries)?);
        }
        if !effects.orphans.is_empty() {
            for o in &effects.orphans {
                match o.kind {
                    tables::OrphanKind::Orphan => m.orphans.inc(),
                    tables::OrphanKind::Unconsumed => m.unconsumed.inc(),
                };
            }
            out.push(ORPHANS, tables::orphans_batch(&effects.orphans)?);
        }
        Ok(())
    }

    pub fn metrics(&self) -> &CorrelationMetrics {
        &self.metrics
    }

    /// The counters and sizes now (sizes as of the last change).
    pub fn stats(&self) -> CorrelationStats {
        let m = &self.metrics;
        let size = |g: &prometheus_client::metrics::gauge::Gauge| g.get().max(0) as usize;
        CorrelationStats {
            pending_halves: size(&m.pending_halves),
            indexed_traces: size(&m.indexed_traces),
            instances: size(&m.instances),
            boundaries: m.boundaries.get(),
            orphans: m.orphans.get(),
            unconsumed: m.unconsumed.get(),
            evicted: m.evicted.get(),
            duplicates: m.duplicates.get(),
            merges_refused: m.merges_refused.get(),
            flow_traces_forgotten: m.flow_traces_forgotten.get(),
        }
    }

    /// Encodes the state (waiting halves, flows, known instances): what a
    /// seal keeps, so a restart replays the log after it into exactly this.
    pub fn capture(&self) -> Result<Vec<u8>, CorrelateError> {
        let state = self.state.lock();
        let flows = self.view.flows.read();
        let overlay = self.view.overlay.read();
        let active = self.view.traces.read();
        let index = self.view.index.read();
        let rollups = self.view.rollups.read();
        checkpoint::encode(
            &self.config,
            &state.pending,
            &state.cold,
            &state.nesting,
            &flows,
            &overlay,
            (&active, &index, &rollups),
        )
    }

    /// Installs state encoded by [`Correlator::capture`]; `source` names
    /// it in errors.
    pub fn restore_bytes(&self, bytes: &[u8], source: &str) -> Result<(), CorrelateError> {
        self.install(checkpoint::decode(bytes, source)?);
        Ok(())
    }

    fn install(&self, saved: checkpoint::Saved) {
        let mut state = self.state.lock();
        let State {
            pending,
            cold,
            nesting,
        } = &mut *state;
        let mut flows = self.view.flows.write();
        let mut overlay = self.view.overlay.write();
        let mut active = self.view.traces.write();
        let mut index = self.view.index.write();
        let mut rollups = self.view.rollups.write();
        checkpoint::apply(
            saved,
            &self.config,
            pending,
            (cold, nesting),
            &mut flows,
            &mut overlay,
            (&mut active, &mut index, &mut rollups),
        );
        drop((active, index, rollups));
        flows.set_caps(self.config.max_flow_traces, self.config.max_indexed_traces);
        cold.settle();
        drop((flows, overlay));
        self.measure(&state);
    }
}

/// Correlation follows the store's committed writes; the store keeps its
/// state with every seal, so a restart replays the log after the seal into
/// exactly the state at it.
impl Follower for Correlator {
    type Note = Note;

    fn follow(&self, note: Note, out: &mut Derived) -> Result<(), String> {
        self.observe_traces(note.traces, note.said_cold, note.arrived);
        if !note.operations.is_empty() {
            (self.view.rollups.write()).add_operations(note.operations, note.arrived);
        }
        self.observe(note.observed, note.arrived, out)
            .map_err(|e| e.to_string())
    }

    fn flush(
        &self,
        now: i64,
        append: &mut dyn FnMut(Derived) -> Result<(), String>,
    ) -> Result<(), String> {
        let traces = self.flush_traces(now, append);
        let rollups = self.flush_rollups(now, append);
        traces.and(rollups).map_err(|e| e.to_string())
    }

    fn tick(&self, now: i64, out: &mut Derived) -> Result<(), String> {
        Correlator::tick(self, now, out).map_err(|e| e.to_string())
    }

    fn capture(&self) -> Result<Vec<u8>, String> {
        Correlator::capture(self).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
