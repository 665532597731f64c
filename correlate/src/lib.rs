//! Seam's correlation stage: boundaries across queues, event buses and
//! platforms, flows of traces, orphans, and cold starts (DESIGN §5).
//!
//! ```text
//!  normalize ─▶ SpanRow ─▶ Extractor::observe ─▶ Observed ─▶ Correlator::observe
//!                                                              │
//!        ┌─────────────────────────────────────────────────────┼──────────────────────────┐
//!        ▼                                                     ▼                          ▼
//!  stitch::Pending (halves waiting) ─▶ boundaries table   flows::Flows           coldstart::ColdStarts
//!        │ tick: window ran out ─▶ orphans table              └────── view::CorrelationView ◀── queries
//!        └─ checkpoint: <data_dir>/correlation.state                    (flow_id, cold columns)
//! ```
//!
//! The stage never touches a stored span: what it learns is appended to
//! its own tables (`boundaries`, `orphans`) or kept as state that queries
//! apply when they read (`flow_id`, cold-start verdicts).

pub mod checkpoint;
pub mod coldstart;
pub mod config;
pub mod flows;
pub mod half;
pub mod role;
pub mod stitch;
pub mod tables;
pub mod view;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use seam_store::{CutState, StoreError, Table};
use tracing::{debug, warn};

pub use config::{ColdStartConfig, CorrelationConfig};
pub use half::{Extractor, INVOCATION_SQL, Observed, SpanKey};
pub use tables::{boundaries_schema, boundary_col, orphan_col, orphans_schema};
pub use view::{CorrelationView, Deliveries};

use crate::coldstart::{ColdStarts, Overlay};
use crate::flows::{Flows, Join};
use crate::stitch::{Effects, Pending};

/// Why correlation could not record what it found.
#[derive(Debug, thiserror::Error)]
pub enum CorrelateError {
    #[error("building a correlation batch: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("storing a correlation batch: {0}")]
    Store(#[from] StoreError),
    #[error("correlation checkpoint {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("correlation checkpoint {path} is unreadable: {why}")]
    Corrupt { path: String, why: String },
}

/// Counters for `/metrics` and the logs.
#[derive(Debug, Default)]
struct Stats {
    boundaries: AtomicU64,
    orphans: AtomicU64,
    unconsumed: AtomicU64,
    evicted: AtomicU64,
    duplicates: AtomicU64,
    merges_refused: AtomicU64,
    flow_traces_forgotten: AtomicU64,
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
}

/// The correlation stage. One per server; `observe` and `tick` may be
/// called from any thread.
pub struct Correlator {
    config: CorrelationConfig,
    extractor: Extractor,
    state: Mutex<State>,
    view: CorrelationView,
    boundaries: Arc<Table>,
    orphans: Arc<Table>,
    stats: Stats,
    /// Set when the state changed since the last checkpoint.
    dirty: AtomicBool,
}

impl Correlator {
    /// A correlator that appends to `boundaries` and `orphans` (tables
    /// under [`boundaries_schema`] and [`orphans_schema`]).
    pub fn new(config: CorrelationConfig, boundaries: Arc<Table>, orphans: Arc<Table>) -> Self {
        let flows = Flows::new(config.max_flow_traces, config.max_indexed_traces);
        Self {
            extractor: Extractor::new(&config),
            state: Mutex::new(State {
                pending: Pending::default(),
                cold: ColdStarts::default(),
            }),
            view: CorrelationView {
                flows: Arc::new(RwLock::new(flows)),
                overlay: Arc::new(RwLock::new(Overlay::default())),
            },
            boundaries,
            orphans,
            stats: Stats::default(),
            dirty: AtomicBool::new(false),
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
    /// epoch on Seam's clock), and records every boundary they complete.
    pub fn observe(&self, observed: Vec<Observed>, now: i64) -> Result<(), CorrelateError> {
        if observed.is_empty() {
            return Ok(());
        }
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            let State { pending, cold } = &mut *state;
            let mut overlay = None;
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
                        cold.invocation(inv, now, &self.config.cold_start, overlay);
                    }
                }
            }
            drop(overlay);
            self.apply_joins(&effects);
        }
        self.dirty.store(true, Ordering::Release);
        self.record(effects)
    }

    /// Lets halves whose window ran out go (recording orphans) and forgets
    /// instances not seen for their TTL.
    pub fn tick(&self, now: i64) -> Result<(), CorrelateError> {
        let mut effects = Effects::default();
        {
            let mut state = self.state.lock();
            state
                .pending
                .expire(now, &self.config, &self.extractor, &mut effects);
            let forgotten = state.cold.sweep(now, &self.config.cold_start);
            if forgotten > 0 {
                debug!(forgotten, "forgot idle function instances");
            }
        }
        if !effects.orphans.is_empty() {
            self.dirty.store(true, Ordering::Release);
        }
        self.record(effects)
    }

    fn apply_joins(&self, effects: &Effects) {
        if effects.joins.is_empty() {
            return;
        }
        let mut flows = self.view.flows.write();
        for (a, b) in &effects.joins {
            let (outcome, forgotten) = flows.join(*a, *b);
            if outcome == Join::Refused {
                self.stats.merges_refused.fetch_add(1, Ordering::Relaxed);
            }
            if forgotten > 0 {
                self.stats
                    .flow_traces_forgotten
                    .fetch_add(forgotten as u64, Ordering::Relaxed);
            }
        }
    }

    fn record(&self, effects: Effects) -> Result<(), CorrelateError> {
        let s = &self.stats;
        s.evicted.fetch_add(effects.evicted, Ordering::Relaxed);
        s.duplicates
            .fetch_add(effects.duplicates, Ordering::Relaxed);
        if effects.evicted > 0 {
            warn!(
                evicted = effects.evicted,
                cap = self.config.max_pending,
                "correlation state is full; evicted the oldest waiting halves"
            );
        }
        if !effects.boundaries.is_empty() {
            s.boundaries
                .fetch_add(effects.boundaries.len() as u64, Ordering::Relaxed);
            self.boundaries
                .append(tables::boundaries_batch(&effects.boundaries)?)?;
        }
        if !effects.orphans.is_empty() {
            for o in &effects.orphans {
                match o.kind {
                    tables::OrphanKind::Orphan => s.orphans.fetch_add(1, Ordering::Relaxed),
                    tables::OrphanKind::Unconsumed => s.unconsumed.fetch_add(1, Ordering::Relaxed),
                };
            }
            self.orphans
                .append(tables::orphans_batch(&effects.orphans)?)?;
        }
        Ok(())
    }

    pub fn stats(&self) -> CorrelationStats {
        let (pending_halves, instances) = {
            let state = self.state.lock();
            (state.pending.len(), state.cold.instances())
        };
        let s = &self.stats;
        CorrelationStats {
            pending_halves,
            indexed_traces: self.view.flows.read().indexed_traces(),
            instances,
            boundaries: s.boundaries.load(Ordering::Relaxed),
            orphans: s.orphans.load(Ordering::Relaxed),
            unconsumed: s.unconsumed.load(Ordering::Relaxed),
            evicted: s.evicted.load(Ordering::Relaxed),
            duplicates: s.duplicates.load(Ordering::Relaxed),
            merges_refused: s.merges_refused.load(Ordering::Relaxed),
            flow_traces_forgotten: s.flow_traces_forgotten.load(Ordering::Relaxed),
        }
    }

    /// Writes the state to `path` if it changed since the last write.
    /// Returns whether it wrote.
    pub fn checkpoint(&self, path: &Path) -> Result<bool, CorrelateError> {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(false);
        }
        let bytes = {
            let state = self.state.lock();
            let flows = self.view.flows.read();
            let overlay = self.view.overlay.read();
            checkpoint::encode(&self.config, &state.pending, &state.cold, &flows, &overlay)
        };
        match bytes.and_then(|b| checkpoint::write(path, &b)) {
            Ok(()) => Ok(true),
            Err(e) => {
                self.dirty.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Reads the state written by [`Correlator::checkpoint`]; a missing
    /// file is a fresh start.
    pub fn restore(&self, path: &Path) -> Result<bool, CorrelateError> {
        let Some(saved) = checkpoint::read(path)? else {
            return Ok(false);
        };
        self.install(saved);
        Ok(true)
    }

    /// Installs state captured by [`CutState::capture`]; `source` names
    /// it in errors.
    pub fn restore_bytes(&self, bytes: &[u8], source: &str) -> Result<(), CorrelateError> {
        self.install(checkpoint::decode(bytes, source)?);
        Ok(())
    }

    fn install(&self, saved: checkpoint::Saved) {
        let mut state = self.state.lock();
        let State { pending, cold } = &mut *state;
        let mut flows = self.view.flows.write();
        let mut overlay = self.view.overlay.write();
        checkpoint::apply(saved, &self.config, pending, cold, &mut flows, &mut overlay);
        flows.set_caps(self.config.max_flow_traces, self.config.max_indexed_traces);
        cold.settle();
    }
}

/// The store keeps the correlation state with every seal: a restart
/// replays the log after the seal into exactly the state at it.
impl CutState for Correlator {
    fn capture(&self) -> Result<Vec<u8>, String> {
        let state = self.state.lock();
        let flows = self.view.flows.read();
        let overlay = self.view.overlay.read();
        checkpoint::encode(&self.config, &state.pending, &state.cold, &flows, &overlay)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests;
