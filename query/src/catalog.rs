//! The catalog: the tables SQL sees (`spans`, `boundaries`, `orphans`,
//! `traces`, as the model names them) over the store's tables, and the
//! `flows` view over them.

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use seam_correlate::CorrelationView;
use seam_model::tables::{self, BOUNDARIES, ORPHANS, SPANS, TRACES};
use seam_store::{Settle, Snapshot, Table};

use crate::error::QueryError;
use crate::provider::{Live, SegmentTable};
use crate::resolve::{BoundariesResolver, SpansResolver, TracesResolver};

/// The correlation stage's tables and state, as queries read them.
#[derive(Clone)]
pub struct Correlation {
    pub boundaries: Arc<Table>,
    pub orphans: Arc<Table>,
    pub traces: Arc<Table>,
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
            view: CorrelationView::empty(),
            settle: Arc::default(),
        }
    }
}

/// The summaries of traces still receiving spans, which correlation holds
/// until they settle, read with the `traces` table's snapshot.
pub(crate) struct ActiveTraces(pub CorrelationView);

impl Live for ActiveTraces {
    fn snapshot(&self, table: &Table) -> (Snapshot, Vec<RecordBatch>) {
        self.0.with_active_traces(|active| {
            let snapshot = table.snapshot();
            let live = if active.is_empty() {
                Vec::new()
            } else {
                // The schema's own builder: cannot fail on summaries.
                seam_correlate::traces::traces_batch(
                    active.summaries().collect::<Vec<_>>().into_iter(),
                )
                .map(|b| vec![b])
                .unwrap_or_default()
            };
            (snapshot, live)
        })
    }
}

/// `flows`: one row per flow, over every trace that has spans.
pub const FLOWS_VIEW: &str = "CREATE VIEW flows AS \
WITH s AS ( \
  SELECT flow_id, \
         count(DISTINCT trace_id) AS trace_count, \
         count(*) AS span_count, \
         array_sort(array_agg(DISTINCT CAST(service_name AS VARCHAR))) AS services, \
         min(start_time) AS start_time, \
         max(end_time) AS end_time, \
         sum(CASE WHEN cold_start AND CAST(cold_start_type AS VARCHAR) = 'on_demand' THEN 1 ELSE 0 END) AS cold_starts, \
         sum(CASE WHEN CAST(status_code AS VARCHAR) = 'ERROR' THEN 1 ELSE 0 END) AS errors \
  FROM spans GROUP BY flow_id \
), b AS ( \
  SELECT flow_id, count(*) AS boundary_count, \
         sum(CASE WHEN flagged THEN 1 ELSE 0 END) AS flagged_boundaries \
  FROM boundaries GROUP BY flow_id \
) \
SELECT s.flow_id, s.trace_count, s.span_count, s.services, s.start_time, s.end_time, \
       arrow_cast(s.end_time, 'Int64') - arrow_cast(s.start_time, 'Int64') AS duration_ns, \
       COALESCE(b.boundary_count, 0) AS boundary_count, \
       COALESCE(b.flagged_boundaries, 0) AS flagged_boundaries, \
       s.cold_starts, s.errors \
FROM s LEFT JOIN b ON s.flow_id = b.flow_id";

/// The providers of the stored tables, by name, and the views over them.
pub struct Catalog {
    providers: Vec<(&'static str, Arc<dyn TableProvider>)>,
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
        let providers: Vec<(&'static str, Arc<dyn TableProvider>)> = vec![
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
        ];
        Self { providers }
    }

    /// Registers every table and view in `ctx`.
    pub async fn register(&self, ctx: &SessionContext) -> Result<(), QueryError> {
        for (name, table) in &self.providers {
            ctx.register_table(*name, table.clone())
                .map_err(|e| QueryError::Internal(format!("registering the {name} table: {e}")))?;
        }
        ctx.sql(FLOWS_VIEW)
            .await
            .map_err(|e| QueryError::Internal(format!("creating the flows view: {e}")))?;
        Ok(())
    }
}
