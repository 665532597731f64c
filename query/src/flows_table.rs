//! `flows`: one row per flow, read newest first from the trace summaries
//! rather than aggregated over every span.
//!
//! ```text
//!  traces rows, a window of start times at a time, newest first
//!      │ each new flow: its member traces (the flow index), the summaries of
//!      │ members outside the window (by id), their boundaries (by producer
//!      │ trace id), their on-demand cold starts (spans, only for members whose
//!      │ summary says cold)
//!      ▼
//!  flows waiting to be emitted, by start ─▶ emitted once the walk is past
//!                                          their start: every member is seen
//! ```
//!
//! A flow starts with its earliest member trace, so once the walk has read
//! every summary that starts after `t`, every flow starting after `t` is
//! whole and can be emitted: the rows come out ordered by `start_time`
//! descending, which the plan declares, so `ORDER BY start_time DESC LIMIT
//! n` reads a few windows and stops. Filters on `start_time` bound the
//! walk, and `flow_id = '…'` reads that one flow; anything else is applied
//! to the rows as they stream. With `flagged_boundaries > 0` or
//! `cold_starts > 0` and every flagged (or cold) trace known to
//! correlation, or with `trace_count > 1`, a window reads only the rows of
//! the traces correlation lists (flagged, cold, or joined to another) and
//! of the members being gathered; joined traces are listed
//! by time down to a horizon (what correlation forgot at its cap), below
//! which every row is read again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, Int64Builder, ListBuilder, RecordBatch, StringBuilder, TimestampNanosecondBuilder,
};
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::prelude::{SessionContext, col, lit};
use seam_correlate::CorrelationView;
use seam_model::TraceId;
use seam_model::schema::{boundary_col, col as span_col, timestamp_type, trace_col};
use seam_model::tables::{BOUNDARIES, SPANS, TRACES};
use seam_store::Table;

use crate::columns::{booleans, strings};
use crate::filters;
use crate::reports::search::{self, Density, Summary};
use crate::reports::timestamp;

/// The table's name in SQL.
pub const FLOWS: &str = "flows";

/// Column names of `flows`.
pub mod flow_col {
    pub const FLOW_ID: &str = "flow_id";
    pub const TRACE_COUNT: &str = "trace_count";
    pub const SPAN_COUNT: &str = "span_count";
    pub const SERVICES: &str = "services";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_NS: &str = "duration_ns";
    pub const BOUNDARY_COUNT: &str = "boundary_count";
    pub const FLAGGED_BOUNDARIES: &str = "flagged_boundaries";
    pub const COLD_STARTS: &str = "cold_starts";
    pub const ERRORS: &str = "errors";
}

static FLOWS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use flow_col::*;
    let int = |name| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new(FLOW_ID, DataType::Utf8, false),
        int(TRACE_COUNT),
        int(SPAN_COUNT),
        Field::new(SERVICES, seam_model::schema::string_list_type(), false),
        Field::new(START_TIME, timestamp_type(), false),
        Field::new(END_TIME, timestamp_type(), false),
        int(DURATION_NS),
        int(BOUNDARY_COUNT),
        int(FLAGGED_BOUNDARIES),
        int(COLD_STARTS),
        int(ERRORS),
    ]))
});

/// The schema of `flows`.
pub fn flows_schema() -> SchemaRef {
    FLOWS_SCHEMA.clone()
}

/// Summaries a window of the walk should hold.
const WINDOW_ROWS: usize = 4096;

/// The `flows` table.
pub struct FlowsTable {
    view: CorrelationView,
    /// The `traces` table, for the time ranges that size the windows.
    traces: Arc<Table>,
}

impl fmt::Debug for FlowsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowsTable")
    }
}

impl FlowsTable {
    pub fn new(view: CorrelationView, traces: Arc<Table>) -> Self {
        Self { view, traces }
    }
}

/// What the filters say about which flows a scan needs.
#[derive(Debug, Clone, Default)]
struct Bounds {
    flow_id: Option<String>,
    /// `start_time` bounds, inclusive, ns.
    start: Option<i64>,
    end: Option<i64>,
    /// Only flows of more than one trace (`trace_count > 1`).
    joined: bool,
    /// Only flows with a flagged boundary.
    flagged: bool,
    /// Only flows with a cold start.
    cold: bool,
}

/// Whether `column op value` keeps only rows where the column is at least
/// `at_least`.
fn at_least(op: Operator, value: &ScalarValue, at_least: i64) -> bool {
    let v = match value {
        ScalarValue::Int64(Some(v)) => *v,
        ScalarValue::Int32(Some(v)) => i64::from(*v),
        ScalarValue::UInt64(Some(v)) => i64::try_from(*v).unwrap_or(i64::MAX),
        _ => return false,
    };
    match op {
        Operator::Gt => v >= at_least - 1,
        Operator::GtEq => v >= at_least,
        _ => false,
    }
}

impl Bounds {
    /// Takes in `filter` if it is one the walk can use; whether it was.
    fn add(&mut self, filter: &Expr) -> bool {
        let mut time = filters::TimeBounds {
            start: self.start,
            end: self.end,
        };
        if time.add(filter, flow_col::START_TIME) {
            (self.start, self.end) = (time.start, time.end);
            return true;
        }
        let Some((column, op, value)) = filters::comparison(filter) else {
            return false;
        };
        match (column.name.as_str(), op) {
            (flow_col::FLOW_ID, Operator::Eq) => match value {
                ScalarValue::Utf8(Some(v)) | ScalarValue::Utf8View(Some(v)) => {
                    self.flow_id = Some(v.to_ascii_lowercase());
                    true
                }
                _ => false,
            },
            (flow_col::TRACE_COUNT, op) if at_least(op, value, 2) => {
                self.joined = true;
                true
            }
            (flow_col::FLAGGED_BOUNDARIES, op) if at_least(op, value, 1) => {
                self.flagged = true;
                true
            }
            (flow_col::COLD_STARTS, op) if at_least(op, value, 1) => {
                self.cold = true;
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl TableProvider for FlowsTable {
    fn schema(&self) -> SchemaRef {
        flows_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if Bounds::default().add(f) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("flows needs a SessionState".into()))?
            .clone();
        let mut bounds = Bounds::default();
        for f in filters {
            bounds.add(f);
        }
        Ok(Arc::new(FlowsExec::new(
            state,
            self.view.clone(),
            self.traces.clone(),
            bounds,
            projection.cloned(),
        )))
    }
}

/// The plan node that walks the summaries.
struct FlowsExec {
    state: SessionState,
    view: CorrelationView,
    traces: Arc<Table>,
    bounds: Bounds,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl FlowsExec {
    fn new(
        state: SessionState,
        view: CorrelationView,
        traces: Arc<Table>,
        bounds: Bounds,
        projection: Option<Vec<usize>>,
    ) -> Self {
        let full = flows_schema();
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p).expect("projection of the flows schema")),
            None => full,
        };
        // Newest first, ties by flow id, as the walk emits them.
        let sort = |name: &str, descending: bool| {
            schema.index_of(name).ok().map(|i| PhysicalSortExpr {
                expr: Arc::new(Column::new(name, i)) as Arc<dyn PhysicalExpr>,
                options: SortOptions {
                    descending,
                    nulls_first: false,
                },
            })
        };
        let ordering = sort(flow_col::START_TIME, true).map(|start| {
            let mut ordering = vec![start];
            ordering.extend(sort(flow_col::FLOW_ID, false));
            ordering
        });
        let eq = match ordering {
            Some(o) => EquivalenceProperties::new_with_orderings(schema.clone(), [o]),
            None => EquivalenceProperties::new(schema.clone()),
        };
        let properties = Arc::new(PlanProperties::new(
            eq,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Self {
            state,
            view,
            traces,
            bounds,
            projection,
            schema,
            properties,
        }
    }
}

impl fmt::Debug for FlowsExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowsExec: {:?}", self.bounds)
    }
}

impl DisplayAs for FlowsExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlowsExec: {:?}", self.bounds)
    }
}

impl ExecutionPlan for FlowsExec {
    fn name(&self) -> &str {
        "FlowsExec"
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        _partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let walk = Walk::new(
            SessionContext::new_with_state(self.state.clone()),
            self.view.clone(),
            &self.traces,
            self.bounds.clone(),
            self.projection.clone(),
        );
        let stream = futures::stream::try_unfold(walk, |mut walk| async move {
            Ok(walk.next().await?.map(|batch| (batch, walk)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

/// One flow's row.
#[derive(Debug, Clone, Default)]
struct FlowRow {
    flow_id: String,
    traces: i64,
    spans: i64,
    services: Vec<String>,
    start: i64,
    end: i64,
    boundaries: i64,
    flagged: i64,
    cold_starts: i64,
    errors: i64,
}

/// The walk over the summaries, newest first.
struct Walk {
    ctx: SessionContext,
    view: CorrelationView,
    bounds: Bounds,
    projection: Option<Vec<usize>>,
    density: Option<Density>,
    /// The next window ends here (inclusive).
    hi: i64,
    width: i64,
    /// Every flow starting at or after this has been seen whole.
    threshold: i64,
    done: bool,
    seen: HashSet<String>,
    /// Flows met whose other members are not read yet, by flow id.
    gathering: HashMap<String, Gathering>,
    /// The flow each member not read yet belongs to.
    member_of: HashMap<String, String>,
    /// Windows read so far.
    windows: usize,
    waiting: BTreeMap<(Reverse<i64>, String), FlowRow>,
    /// When only flows with a flagged hop (or a cold start) are asked and
    /// correlation knows every such trace, or only joined flows: the rows a
    /// window reads are those of the listed traces and of the members being
    /// gathered, not every summary.
    listed: Option<Listed>,
}

/// Traces known by id, each with a time no earlier than its start.
struct Listed {
    /// Taken from correlation and not in a window yet, newest time first.
    ahead: VecDeque<(String, i64)>,
    /// Where the joined traces are taken from next, a few at a time (the
    /// flagged and cold ones are all taken at once).
    next: Option<Next>,
    /// A trace that starts at or before this may be missing from the list.
    horizon: i64,
    /// Taken in a window but whose row has not been read: one may start in
    /// any window below its time.
    unread: HashSet<String>,
}

/// Where a listing of joined traces goes on.
enum Next {
    /// After this one (time, id), in correlation's order.
    After(Option<(i64, TraceId)>),
    /// Every one was taken.
    Exhausted,
}

impl Listed {
    /// Every flagged trace, when correlation knows them all.
    fn flagged(view: &CorrelationView) -> Option<Self> {
        Self::all(view.flagged_traces(search::MAX_LISTED)?)
    }

    /// Every trace that may hold a cold start, when correlation knows them
    /// all: a flow with a cold start has one among its members.
    fn cold(view: &CorrelationView) -> Option<Self> {
        Self::all(view.cold_traces(search::MAX_LISTED)?)
    }

    /// Traces taken all at once.
    fn all(mut traces: Vec<(TraceId, i64)>) -> Option<Self> {
        traces.sort_unstable_by_key(|(_, at)| Reverse(*at));
        Some(Self {
            ahead: traces.into_iter().map(|(t, at)| (t.to_hex(), at)).collect(),
            next: None,
            horizon: i64::MIN,
            unread: HashSet::new(),
        })
    }

    /// The traces joined to another, taken as the walk goes (the horizon
    /// comes with them), when a correlator keeps them.
    fn joined(view: &CorrelationView) -> Option<Self> {
        view.followed().then(|| Self {
            ahead: VecDeque::new(),
            next: Some(Next::After(None)),
            horizon: i64::MIN,
            unread: HashSet::new(),
        })
    }

    /// Takes joined traces until more than a window's worth are ahead.
    fn fill(&mut self, view: &CorrelationView) {
        while self.ahead.len() <= LISTED_WINDOW
            && let Some(Next::After(before)) = self.next
        {
            let Some((more, horizon)) = view.joined_newest(before, LISTED_WINDOW + 1) else {
                self.next = Some(Next::Exhausted);
                return;
            };
            self.horizon = self.horizon.max(horizon);
            self.next = Some(match more.last() {
                Some((trace, at)) if more.len() > LISTED_WINDOW => Next::After(Some((*at, *trace))),
                _ => Next::Exhausted,
            });
            self.ahead
                .extend(more.into_iter().map(|(t, at)| (t.to_hex(), at)));
        }
    }
}

/// Listed traces a window takes in at most (by time; more when their
/// times are equal).
const LISTED_WINDOW: usize = 256;

/// A flow whose members are being read.
struct Gathering {
    members: Vec<TraceId>,
    found: HashMap<String, Summary>,
    missing: HashSet<String>,
    /// The window it was met in.
    since: usize,
}

impl Gathering {
    /// The earliest start among the members read: the flow starts no later.
    fn found_start(&self) -> i64 {
        self.found
            .values()
            .map(|s| s.start)
            .min()
            .unwrap_or(i64::MAX)
    }

    fn add(&mut self, summary: Summary) {
        self.missing.remove(&summary.trace_id);
        match self.found.get_mut(&summary.trace_id) {
            Some(known) => known.merge(summary),
            None => {
                self.found.insert(summary.trace_id.clone(), summary);
            }
        }
    }
}

/// Windows a flow waits for a member before it is looked up by id: the
/// members of a flow are usually seconds apart, so they come with the
/// next window or two; one that does not was deleted (retention).
const GATHER_WINDOWS: usize = 3;

fn internal(e: impl fmt::Display) -> DataFusionError {
    DataFusionError::Internal(e.to_string())
}

impl Walk {
    fn new(
        ctx: SessionContext,
        view: CorrelationView,
        traces: &Table,
        bounds: Bounds,
        projection: Option<Vec<usize>>,
    ) -> Self {
        let density = Density::of(traces, &view);
        let hi = density.map_or(i64::MIN, |d| d.latest.min(bounds.end.unwrap_or(i64::MAX)));
        let width = density.map_or(0, |d| d.width_for(WINDOW_ROWS));
        let listed = match &bounds {
            b if b.flow_id.is_some() => None,
            b if b.flagged => Listed::flagged(&view),
            b if b.cold => Listed::cold(&view),
            b if b.joined => Listed::joined(&view),
            _ => None,
        };
        Self {
            ctx,
            view,
            bounds,
            projection,
            density,
            hi,
            width,
            threshold: i64::MAX,
            done: false,
            seen: HashSet::new(),
            gathering: HashMap::new(),
            member_of: HashMap::new(),
            windows: 0,
            waiting: BTreeMap::new(),
            listed,
        }
    }

    async fn next(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(batch) = self.emit()? {
                return Ok(Some(batch));
            }
            if self.done {
                return Ok(None);
            }
            self.step().await?;
        }
    }

    /// The waiting flows that start at or after the threshold, as a batch.
    fn emit(&mut self) -> Result<Option<RecordBatch>> {
        // A flow still gathering starts no later than its members read so
        // far; until it is whole, nothing that may start after it goes out.
        let gathering = (self.gathering.values())
            .map(Gathering::found_start)
            .max()
            .unwrap_or(i64::MIN);
        let threshold = self.threshold.max(gathering.saturating_add(1));
        let mut rows = Vec::new();
        while let Some(entry) = self.waiting.first_entry() {
            if !self.done && entry.key().0.0 < threshold {
                break;
            }
            let row = entry.remove();
            if self.bounds.start.is_none_or(|s| row.start >= s)
                && self.bounds.end.is_none_or(|e| row.start <= e)
            {
                rows.push(row);
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let batch = batch(&rows)?;
        Ok(Some(match &self.projection {
            Some(p) => batch.project(p)?,
            None => batch,
        }))
    }

    /// Reads the next window and takes in the flows it starts.
    async fn step(&mut self) -> Result<()> {
        if let Some(flow) = self.bounds.flow_id.clone() {
            self.done = true;
            let Ok(id) = TraceId::parse_hex(&flow) else {
                return Ok(());
            };
            let members = self.view.flow_members(&id);
            if self.view.flow_id(&id).to_hex() == flow {
                let ids = members.iter().map(|t| lit(t.to_hex())).collect();
                let found = self
                    .summaries(col(trace_col::TRACE_ID).in_list(ids, false))
                    .await?;
                let found = found.into_iter().map(|s| (s.trace_id.clone(), s)).collect();
                self.take(vec![(flow, members, found)]).await?;
            }
            return Ok(());
        }
        let Some(density) = self.density else {
            self.done = true;
            return Ok(());
        };
        let floor = density.earliest;
        if self.hi < floor {
            self.done = true;
            return Ok(());
        }
        let mut lo = self.hi.saturating_sub(self.width).max(floor);
        if let Some(listed) = &mut self.listed {
            listed.fill(&self.view);
            // No summary above the next listed time can belong to a flow
            // asked for, unless a listed trace not read yet or a member
            // being gathered starts there, or the list may miss it (at or
            // below the horizon).
            if listed.unread.is_empty() && self.member_of.is_empty() {
                match listed.ahead.front() {
                    Some((_, at)) => self.hi = self.hi.min((*at).max(listed.horizon)),
                    None if listed.horizon < floor => {
                        if self.gathering.is_empty() {
                            self.done = true;
                            return Ok(());
                        }
                    }
                    None => self.hi = self.hi.min(listed.horizon),
                }
            }
        }
        if self.listed.as_ref().is_some_and(|l| self.hi <= l.horizon) {
            // From here down every summary is read.
            self.listed = None;
            self.width = density.width_for(WINDOW_ROWS);
            lo = self.hi.saturating_sub(self.width).max(floor);
        }
        if let Some(listed) = &mut self.listed {
            let next = (listed.ahead.get(LISTED_WINDOW)).map_or(floor, |(_, at)| *at);
            lo = next
                .max(listed.horizon.saturating_add(1))
                .clamp(floor, self.hi.max(floor));
            while let Some((_, at)) = listed.ahead.front()
                && *at >= lo
            {
                let (trace, _) = listed.ahead.pop_front().expect("a front");
                listed.unread.insert(trace);
            }
        }
        let in_window = col(trace_col::START_TIME)
            .gt_eq(timestamp(lo))
            .and(col(trace_col::START_TIME).lt_eq(timestamp(self.hi)));
        let rows = match &self.listed {
            None => self.summaries(in_window).await?,
            Some(listed) => {
                let ids: Vec<Expr> = (listed.unread.iter())
                    .chain(self.member_of.keys())
                    .map(|t| lit(t.as_str()))
                    .collect();
                if ids.is_empty() {
                    Vec::new()
                } else {
                    let ids = col(trace_col::TRACE_ID).in_list(ids, false);
                    self.summaries(in_window.and(ids)).await?
                }
            }
        };
        if let Some(listed) = &mut self.listed {
            for summary in &rows {
                listed.unread.remove(&summary.trace_id);
            }
        }
        self.width = search::next_width(self.width, rows.len(), WINDOW_ROWS);
        self.hi = lo.saturating_sub(1);
        self.threshold = lo;
        // Flows that start before the range asked cannot match it.
        if lo <= floor || self.bounds.start.is_some_and(|s| lo <= s) {
            self.done = true;
        }
        self.windows += 1;
        let flagged_known = self.view.flagged_known();
        for summary in rows {
            if let Some(flow) = self.member_of.remove(&summary.trace_id) {
                if let Some(g) = self.gathering.get_mut(&flow) {
                    g.add(summary);
                }
                continue;
            }
            // A flow is built once, from the members read when it is met
            // and those read after (a later row of a member met already
            // adds nothing, as in search).
            if !self.seen.insert(summary.flow_id.clone()) {
                continue;
            }
            let Ok(id) = TraceId::parse_hex(&summary.trace_id) else {
                continue;
            };
            // What the filters will reject anyway is not built.
            let joined = self.view.joined(&id);
            if self.bounds.joined && !joined {
                continue;
            }
            let members = if joined {
                self.view.flow_members(&id)
            } else {
                vec![id]
            };
            if self.bounds.flagged
                && flagged_known
                && !members.iter().any(|m| self.view.trace_flagged(m))
            {
                continue;
            }
            if self.bounds.cold && !joined && !summary.cold {
                continue;
            }
            let flow = summary.flow_id.clone();
            let mut g = Gathering {
                missing: members.iter().map(|t| t.to_hex()).collect(),
                members,
                found: HashMap::new(),
                since: self.windows,
            };
            g.add(summary);
            for m in &g.missing {
                self.member_of.insert(m.clone(), flow.clone());
            }
            self.gathering.insert(flow, g);
        }
        // Members not met for a few windows are looked up by id; what that
        // does not find is not stored.
        let stale: Vec<String> = (self.gathering.values())
            .filter(|g| self.done || self.windows - g.since >= GATHER_WINDOWS)
            .flat_map(|g| g.missing.iter().cloned())
            .collect();
        if !stale.is_empty() {
            let ids = stale.iter().map(|t| lit(t.as_str())).collect();
            for summary in self
                .summaries(col(trace_col::TRACE_ID).in_list(ids, false))
                .await?
            {
                if let Some(flow) = self.member_of.remove(&summary.trace_id)
                    && let Some(g) = self.gathering.get_mut(&flow)
                {
                    g.add(summary);
                }
            }
            for trace in &stale {
                if let Some(flow) = self.member_of.remove(trace)
                    && let Some(g) = self.gathering.get_mut(&flow)
                {
                    g.missing.remove(trace);
                }
            }
        }
        let whole: Vec<String> = (self.gathering.iter())
            .filter(|(_, g)| g.missing.is_empty())
            .map(|(f, _)| f.clone())
            .collect();
        let flows = whole
            .into_iter()
            .filter_map(|f| self.gathering.remove(&f).map(|g| (f, g.members, g.found)))
            .collect();
        self.take(flows).await
    }

    /// Whether the scan returns `column` (the filters the walk does not
    /// take in are applied above it, so their columns are returned too).
    fn needs(&self, column: &str) -> bool {
        match (&self.projection, flows_schema().index_of(column)) {
            (Some(p), Ok(i)) => p.contains(&i),
            _ => true,
        }
    }

    /// The merged summaries of the `traces` rows passing `filter`.
    async fn summaries(&self, filter: Expr) -> Result<Vec<Summary>> {
        let batches = self
            .ctx
            .table(TRACES)
            .await?
            .filter(filter)?
            .collect()
            .await?;
        let result = crate::session::QueryResult {
            schema: seam_model::schema::traces_schema(),
            batches,
        };
        search::read_summaries(&result).map_err(internal)
    }

    /// Builds the rows of `flows` (id, member traces, the members' summaries)
    /// and queues them.
    async fn take(
        &mut self,
        flows: Vec<(String, Vec<TraceId>, HashMap<String, Summary>)>,
    ) -> Result<()> {
        if flows.is_empty() {
            return Ok(());
        }
        let members: Vec<String> = flows
            .iter()
            .flat_map(|(_, m, _)| m.iter().map(|t| t.to_hex()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Counts no column asked for are not read (the cold starts are a
        // read of the members' spans).
        let (boundaries, flagged) =
            if self.needs(flow_col::BOUNDARY_COUNT) || self.needs(flow_col::FLAGGED_BOUNDARIES) {
                self.boundaries(&members).await?
            } else {
                Default::default()
            };
        let cold = if self.needs(flow_col::COLD_STARTS) {
            let cold_members: Vec<&str> = (flows.iter())
                .flat_map(|(_, _, found)| found.values())
                .filter(|s| s.cold)
                .map(|s| s.trace_id.as_str())
                .collect();
            self.cold_starts(cold_members).await?
        } else {
            HashMap::new()
        };
        for (flow_id, members, known) in flows {
            let mut row = FlowRow {
                flow_id: flow_id.clone(),
                start: i64::MAX,
                end: i64::MIN,
                ..FlowRow::default()
            };
            let mut services = std::collections::BTreeSet::new();
            for member in members.iter().map(|t| t.to_hex()) {
                row.boundaries += boundaries.get(&member).copied().unwrap_or(0);
                row.flagged += flagged.get(&member).copied().unwrap_or(0);
                let Some(s) = known.get(&member) else {
                    continue;
                };
                row.traces += 1;
                row.spans += s.spans;
                row.errors += s.errors;
                row.start = row.start.min(s.start);
                row.end = row.end.max(s.end);
                row.cold_starts += cold.get(&member).copied().unwrap_or(0);
                services.extend(s.services.iter().cloned());
            }
            if row.traces == 0 {
                continue;
            }
            row.services = services.into_iter().collect();
            self.waiting.insert((Reverse(row.start), flow_id), row);
        }
        Ok(())
    }

    /// Boundaries, and flagged ones, by producer trace, among `traces`:
    /// from what correlation counted, or from the table when it forgot.
    async fn boundaries(
        &self,
        traces: &[String],
    ) -> Result<(HashMap<String, i64>, HashMap<String, i64>)> {
        let (mut all, mut flagged) = (HashMap::new(), HashMap::new());
        let ids: Vec<TraceId> = traces
            .iter()
            .filter_map(|t| TraceId::parse_hex(t).ok())
            .collect();
        if let Some(counts) = self.view.producer_counts(&ids) {
            for (id, (n, slow)) in ids.iter().zip(counts) {
                if n > 0 {
                    all.insert(id.to_hex(), i64::from(n));
                    flagged.insert(id.to_hex(), i64::from(slow));
                }
            }
            return Ok((all, flagged));
        }
        let ids: Vec<Expr> = traces.iter().map(|t| lit(t.as_str())).collect();
        let batches = self
            .ctx
            .table(BOUNDARIES)
            .await?
            .filter(col(boundary_col::PRODUCER_TRACE_ID).in_list(ids, false))?
            .select(vec![
                col(boundary_col::PRODUCER_TRACE_ID),
                col(boundary_col::FLAGGED),
            ])?
            .collect()
            .await?;
        for batch in &batches {
            let producer = strings(batch, boundary_col::PRODUCER_TRACE_ID).map_err(internal)?;
            let slow = booleans(batch, boundary_col::FLAGGED).map_err(internal)?;
            for i in 0..batch.num_rows() {
                *all.entry(producer.value(i).to_owned()).or_default() += 1;
                if slow.value(i) {
                    *flagged.entry(producer.value(i).to_owned()).or_default() += 1;
                }
            }
        }
        Ok((all, flagged))
    }

    /// On-demand cold starts by trace, among `traces`: from what
    /// correlation counted, or from the members' spans when it forgot.
    async fn cold_starts(&self, traces: Vec<&str>) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        if traces.is_empty() {
            return Ok(out);
        }
        let ids: Vec<TraceId> = (traces.iter())
            .filter_map(|t| TraceId::parse_hex(t).ok())
            .collect();
        if ids.len() == traces.len()
            && let Some(counts) = self.view.on_demand_counts(&ids)
        {
            for (id, n) in ids.iter().zip(counts) {
                if n > 0 {
                    out.insert(id.to_hex(), i64::from(n));
                }
            }
            return Ok(out);
        }
        let traces: Vec<Expr> = traces.into_iter().map(lit).collect();
        let on_demand = col(span_col::COLD_START)
            .eq(lit(true))
            .and(col(span_col::COLD_START_TYPE).eq(lit("on_demand")));
        let batches = self
            .ctx
            .table(SPANS)
            .await?
            .filter(col(span_col::TRACE_ID).in_list(traces, false))?
            .select(vec![
                col(span_col::TRACE_ID),
                col(span_col::COLD_START),
                col(span_col::COLD_START_TYPE),
            ])?
            .filter(on_demand)?
            .collect()
            .await?;
        for batch in &batches {
            let ids = strings(batch, span_col::TRACE_ID).map_err(internal)?;
            for id in ids.iter().flatten() {
                *out.entry(id.to_owned()).or_default() += 1;
            }
        }
        Ok(out)
    }
}

/// `flows` rows as a batch of the full schema.
fn batch(rows: &[FlowRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut flow_id = StringBuilder::with_capacity(n, n * 32);
    let mut services = ListBuilder::new(StringBuilder::new());
    let mut start = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut end = TimestampNanosecondBuilder::with_capacity(n).with_timezone("UTC");
    let ints: [fn(&FlowRow) -> i64; 7] = [
        |r| r.traces,
        |r| r.spans,
        |r| r.end.saturating_sub(r.start),
        |r| r.boundaries,
        |r| r.flagged,
        |r| r.cold_starts,
        |r| r.errors,
    ];
    let mut int_columns: Vec<Int64Builder> = (0..ints.len())
        .map(|_| Int64Builder::with_capacity(n))
        .collect();
    for row in rows {
        flow_id.append_value(&row.flow_id);
        for s in &row.services {
            services.values().append_value(s);
        }
        services.append(true);
        start.append_value(row.start);
        end.append_value(row.end);
        for (b, f) in int_columns.iter_mut().zip(ints) {
            b.append_value(f(row));
        }
    }
    let mut ints = int_columns
        .into_iter()
        .map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next = || ints.next().expect("seven integer columns");
    let (traces, spans, duration, boundaries, flagged, cold, errors) =
        (next(), next(), next(), next(), next(), next(), next());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(flow_id.finish()),
        traces,
        spans,
        Arc::new(services.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        duration,
        boundaries,
        flagged,
        cold,
        errors,
    ];
    RecordBatch::try_new(flows_schema(), columns)
        .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
}
