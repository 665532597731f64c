//! The catalog: the tables SQL sees (`spans`, `boundaries`, `orphans`,
//! `traces`, `edge_rollups`, `function_rollups`, `operation_rollups`, as
//! the model names them)
//! over the store's tables, and `flows`, read from the trace summaries
//! (`flows_table.rs`).

use std::sync::Arc;

use std::collections::HashSet;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;
use datafusion::catalog::TableProvider;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use seam_correlate::CorrelationView;
use seam_correlate::operations::operation_rollups_batch;
use seam_correlate::rollup::{edge_rollups_batch, function_rollups_batch, minute_of};
use seam_correlate::traces::traces_batch;
use seam_model::TraceId;
use seam_model::tables::{
    self, BOUNDARIES, EDGE_ROLLUPS, FUNCTION_ROLLUPS, OPERATION_ROLLUPS, ORPHANS, SPANS, TRACES,
};
use seam_store::{Settle, Snapshot, Table};

use crate::error::QueryError;
use crate::filters::TimeBounds;
use crate::flows_table::{FLOWS, FlowsTable};
use crate::provider::{Live, SegmentTable};
use crate::resolve::{BoundariesResolver, SpansResolver, TracesResolver};

/// The correlation stage's tables and state, as queries read them.
#[derive(Clone)]
pub struct Correlation {
    pub boundaries: Arc<Table>,
    pub orphans: Arc<Table>,
    pub traces: Arc<Table>,
    pub edge_rollups: Arc<Table>,
    pub function_rollups: Arc<Table>,
    pub operation_rollups: Arc<Table>,
    pub view: CorrelationView,
    /// What a query waits on to see everything correlation derived from
    /// the writes acknowledged before it started.
    pub settle: Arc<Settle>,
}

impl Correlation {
    /// No boundaries, no orphans, every trace its own flow.
    pub fn empty() -> Self {
        let table =
            |def: seam_model::tables::TableDef| Arc::new(Table::new(def.schema, def.time_column));
        Self {
            boundaries: table(tables::boundaries()),
            orphans: table(tables::orphans()),
            traces: table(tables::traces()),
            edge_rollups: table(tables::edge_rollups()),
            function_rollups: table(tables::function_rollups()),
            operation_rollups: table(tables::operation_rollups()),
            view: CorrelationView::empty(),
            settle: Arc::default(),
        }
    }
}

/// The summaries of traces still receiving spans, which correlation holds
/// until they settle, read with the `traces` table's snapshot.
pub(crate) struct ActiveTraces(pub CorrelationView);

impl Live for ActiveTraces {
    fn snapshot(
        &self,
        table: &Table,
        time: TimeBounds,
        keys: Option<&HashSet<String>>,
    ) -> (Snapshot, Vec<RecordBatch>) {
        self.0.with_active_traces(|active| {
            let snapshot = table.snapshot();
            // Only what the scan may keep: a search reads a narrow window
            // of start times, a lookup a few trace ids.
            let wanted: Vec<_> = match keys {
                Some(keys) => (keys.iter())
                    .filter_map(|k| TraceId::parse_hex(k).ok())
                    .filter_map(|t| active.get(&t))
                    .filter(|s| time.contains(s.start))
                    .collect(),
                None => (active.summaries())
                    .filter(|s| time.contains(s.start))
                    .collect(),
            };
            let live = if wanted.is_empty() {
                Vec::new()
            } else {
                // The schema's own builder: cannot fail on summaries.
                traces_batch(wanted.into_iter())
                    .map(|b| vec![b])
                    .unwrap_or_default()
            };
            (snapshot, live)
        })
    }
}

/// The minutes a scan's time bounds overlap, as bucket starts.
fn minutes(time: TimeBounds) -> (i64, i64) {
    (
        time.start.map_or(i64::MIN, minute_of),
        time.end.unwrap_or(i64::MAX),
    )
}

/// The table's snapshot and the buckets in memory, taken under
/// correlation's lock so that a bucket written meanwhile is in one or the
/// other, never both. A bucket that cannot be made a row (a schema out of
/// step, a bug) is logged rather than failing every report, which still
/// has the rows written.
fn live_snapshot<R>(
    table: &Table,
    live: &[R],
    build: impl FnOnce(&[R]) -> Result<RecordBatch, ArrowError>,
) -> (Snapshot, Vec<RecordBatch>) {
    let snapshot = table.snapshot();
    if live.is_empty() {
        return (snapshot, Vec::new());
    }
    match build(live) {
        Ok(batch) => (snapshot, vec![batch]),
        Err(error) => {
            tracing::warn!(%error, "rollup buckets in memory could not be read; reports leave them out");
            (snapshot, Vec::new())
        }
    }
}

/// Rollup buckets correlation holds until they go quiet, read with the
/// rollup table's snapshot by `read` (given the minutes asked).
pub(crate) struct LiveRollups {
    view: CorrelationView,
    read: ReadLive,
}

/// Reads the buckets of `[from, to]` with the table's snapshot.
type ReadLive = fn(&CorrelationView, &Table, i64, i64) -> (Snapshot, Vec<RecordBatch>);

impl Live for LiveRollups {
    fn snapshot(
        &self,
        table: &Table,
        time: TimeBounds,
        _keys: Option<&HashSet<String>>,
    ) -> (Snapshot, Vec<RecordBatch>) {
        let (from, to) = minutes(time);
        (self.read)(&self.view, table, from, to)
    }
}

impl LiveRollups {
    fn edges(view: CorrelationView) -> Self {
        Self {
            view,
            read: |view, table, from, to| {
                view.with_live_edges(from, to, |live| {
                    live_snapshot(table, &live, |rows| edge_rollups_batch(rows))
                })
            },
        }
    }

    fn functions(view: CorrelationView) -> Self {
        Self {
            view,
            read: |view, table, from, to| {
                view.with_live_functions(from, to, |live| {
                    live_snapshot(table, &live, |rows| function_rollups_batch(rows))
                })
            },
        }
    }

    fn operations(view: CorrelationView) -> Self {
        Self {
            view,
            read: |view, table, from, to| {
                view.with_live_operations(from, to, |live| {
                    live_snapshot(table, &live, |rows| operation_rollups_batch(rows))
                })
            },
        }
    }
}

/// The providers of the stored tables, by name, and the views over them.
pub struct Catalog {
    providers: Vec<(&'static str, Arc<dyn TableProvider>)>,
    /// The stored tables among them, whose sealed files are read ahead.
    stored: Vec<Arc<SegmentTable>>,
}

impl Catalog {
    /// The tables over `spans` and correlation's tables; the read-time
    /// columns (`flow_id`, cold starts, deliveries) resolved from `view`.
    pub fn new(spans: Arc<Table>, correlation: &Correlation) -> Self {
        let spans_resolver = SpansResolver {
            view: correlation.view.clone(),
            schema: spans.schema(),
        };
        let boundaries_resolver =
            BoundariesResolver::new(correlation.view.clone(), correlation.boundaries.schema());
        let provider = |table: &Arc<Table>, def: seam_model::tables::TableDef| {
            SegmentTable::new(table.clone(), def.time_column)
        };
        let stored: Vec<(&'static str, Arc<SegmentTable>)> = vec![
            (
                SPANS,
                Arc::new(provider(&spans, tables::spans()).with_resolver(Arc::new(spans_resolver))),
            ),
            (
                BOUNDARIES,
                Arc::new(
                    provider(&correlation.boundaries, tables::boundaries())
                        .with_resolver(Arc::new(boundaries_resolver)),
                ),
            ),
            (
                ORPHANS,
                Arc::new(provider(&correlation.orphans, tables::orphans())),
            ),
            (
                TRACES,
                Arc::new(
                    provider(&correlation.traces, tables::traces())
                        .with_resolver(Arc::new(TracesResolver {
                            view: correlation.view.clone(),
                            schema: correlation.traces.schema(),
                        }))
                        .with_live(Arc::new(ActiveTraces(correlation.view.clone()))),
                ),
            ),
            (
                EDGE_ROLLUPS,
                Arc::new(
                    provider(&correlation.edge_rollups, tables::edge_rollups())
                        .with_live(Arc::new(LiveRollups::edges(correlation.view.clone()))),
                ),
            ),
            (
                FUNCTION_ROLLUPS,
                Arc::new(
                    provider(&correlation.function_rollups, tables::function_rollups())
                        .with_live(Arc::new(LiveRollups::functions(correlation.view.clone()))),
                ),
            ),
            (
                OPERATION_ROLLUPS,
                Arc::new(
                    provider(&correlation.operation_rollups, tables::operation_rollups())
                        .with_live(Arc::new(LiveRollups::operations(correlation.view.clone()))),
                ),
            ),
        ];
        let mut providers: Vec<(&'static str, Arc<dyn TableProvider>)> = (stored.iter())
            .map(|(name, t)| (*name, t.clone() as Arc<dyn TableProvider>))
            .collect();
        providers.push((
            FLOWS,
            Arc::new(FlowsTable::new(
                correlation.view.clone(),
                correlation.traces.clone(),
            )),
        ));
        Self {
            providers,
            stored: stored.into_iter().map(|(_, t)| t).collect(),
        }
    }

    /// Reads ahead what lookups in the sealed files not read yet need
    /// (see [`SegmentTable::warm`]).
    pub async fn warm(&self, runtime: &RuntimeEnv) -> Result<(), QueryError> {
        for table in &self.stored {
            table
                .warm(runtime)
                .await
                .map_err(|e| QueryError::Internal(format!("reading sealed files ahead: {e}")))?;
        }
        Ok(())
    }

    /// Registers every table in `ctx`.
    pub async fn register(&self, ctx: &SessionContext) -> Result<(), QueryError> {
        for (name, table) in &self.providers {
            ctx.register_table(*name, table.clone())
                .map_err(|e| QueryError::Internal(format!("registering the {name} table: {e}")))?;
        }
        Ok(())
    }
}
