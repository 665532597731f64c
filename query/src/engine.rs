//! The query engine the API calls: SQL, a trace by id, and the reports
//! (search, a flow, the edges between services, cold starts), each run in
//! the [`Session`] over the [`Catalog`].

use std::sync::Arc;

use seam_correlate::CorrelationView;
use seam_model::TraceId;
use seam_model::tables::{EDGE_ROLLUPS, FUNCTION_ROLLUPS};
use seam_store::Table;

use crate::catalog::{Catalog, Correlation};
use crate::config::QueryConfig;
use crate::error::QueryError;
use crate::lookup::Lookup;
use crate::metrics::QueryMetrics;
use crate::reports::boundaries::{EdgeJson, EdgeMerge, edges_from, edges_sql};
use crate::reports::cold_starts::{
    FunctionColdStarts, FunctionMerge, cold_starts_from, cold_starts_sql,
};
use crate::reports::explorer::{
    EdgeDetailJson, EdgeFilter, MinuteJson, OperationJson, OrphanJson, ServiceJson, buckets_from,
    cloud_platforms_sql, histogram_sql, operations_from, operations_rolled_sql, operations_sql,
    orphans_from, orphans_sql, services_from, services_rolled_sql, services_sql, slowest_sql,
    timeline_from, timeline_sql,
};
use crate::reports::flows::{
    FlowResult, boundaries_from, flow_boundaries_sql, flow_consumed, produced_within, spans_of,
};
use crate::reports::search::{self, SearchParams, TraceSummary};
use crate::reports::{TimeWindow, rollup_frame};
use crate::session::{QueryResult, Session};

/// The flow around one trace, as a search result shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FlowFacts {
    pub flow_trace_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_boundary_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_flagged_boundaries: Option<u64>,
}

/// Runs SQL and the API's queries over the store.
pub struct QueryEngine {
    session: Session,
    view: CorrelationView,
    /// For the time ranges and row counts that size search's windows.
    traces: Arc<Table>,
}

impl QueryEngine {
    /// `spans` over `spans`, with empty correlation tables.
    pub fn new(spans: Arc<Table>, config: QueryConfig) -> Result<Self, QueryError> {
        Self::with_correlation(spans, Correlation::empty(), config)
    }

    /// `spans`, `boundaries`, `orphans` and the `flows` view; the tables
    /// are registered by the first query.
    pub fn with_correlation(
        spans: Arc<Table>,
        correlation: Correlation,
        config: QueryConfig,
    ) -> Result<Self, QueryError> {
        let catalog = Catalog::new(spans, &correlation);
        Ok(Self {
            session: Session::new(catalog, correlation.settle, config)?,
            view: correlation.view,
            traces: correlation.traces,
        })
    }

    pub fn config(&self) -> &QueryConfig {
        self.session.config()
    }

    pub fn metrics(&self) -> &QueryMetrics {
        self.session.metrics()
    }

    /// Runs one read-only SQL statement.
    pub async fn sql(&self, sql: &str) -> Result<QueryResult, QueryError> {
        self.session.sql(sql).await
    }

    /// The rows `lookup` names, sorted: one scan, not planned from SQL.
    pub async fn lookup(&self, lookup: Lookup) -> Result<QueryResult, QueryError> {
        self.session.lookup(lookup).await
    }

    /// Every span of one trace, earliest first, with all `spans` columns.
    pub async fn trace(&self, trace_id: TraceId) -> Result<QueryResult, QueryError> {
        self.session.lookup(spans_of(&[trace_id])).await
    }

    /// Traces with a span matching `params`, latest first, answered from
    /// the trace summaries (see [`search`] for how).
    pub async fn search(&self, params: &SearchParams) -> Result<Vec<TraceSummary>, QueryError> {
        let timeout = self.config().timeout;
        tokio::time::timeout(timeout, self.search_within(params))
            .await
            .map_err(|_| QueryError::Timeout(timeout))?
            .map_err(|e| e.narrowed(crate::error::SEARCH_HINT))
    }

    async fn search_within(&self, params: &SearchParams) -> Result<Vec<TraceSummary>, QueryError> {
        self.session.settled().await?;
        let now = search::now_unix_nano();
        let lookback = i64::try_from(search::DEFAULT_LOOKBACK.as_nanos()).unwrap_or(i64::MAX);
        let start = params.start.unwrap_or(now.saturating_sub(lookback));
        let range = (start, params.end);
        let mut results = search::Results::new(params.limit);
        let Some(density) = search::Density::of(&self.traces, &self.view) else {
            return Ok(results.into_vec());
        };
        // A range that ends before the first trace starts holds nothing.
        if params.end.is_some_and(|end| end < density.earliest) {
            return Ok(results.into_vec());
        }
        // Flagged and cold traces are few and known by id, each with a
        // time no earlier than its start: read newest first by that time.
        // Not when the range starts after every trace began (the default
        // hour once traffic has stopped): only traces reaching into it can
        // match, and one read of the summaries by end time finds them,
        // where the listed ids would all be read to find none.
        let listed = match (params.flagged, params.cold_start) {
            _ if start > density.latest => None,
            (Some(true), _) => self.view.flagged_traces(search::MAX_LISTED),
            (_, Some(true)) => self.view.cold_traces(search::MAX_LISTED),
            _ => None,
        };
        if let Some(listed) = listed {
            self.search_listed(params, range, &mut results, listed)
                .await?;
            return Ok(results.into_vec());
        }
        let mut hi = params.end.unwrap_or(i64::MAX).min(density.latest);
        let floor = start.max(density.earliest);
        let mut width = density.width_for(search::window_rows(params.limit));
        while hi >= floor && !results.full() {
            let lo = hi.saturating_sub(width).max(floor);
            let (summaries, rows) = self.window(params, range, (lo, hi)).await?;
            self.take(params, range, &mut results, summaries).await?;
            width = search::next_width(width, rows, search::window_rows(params.limit));
            hi = lo - 1;
        }
        // Traces that began before the range and reach into it.
        if !results.full() && density.earliest < start {
            let (summaries, _) = self.window(params, range, (i64::MIN, start - 1)).await?;
            self.take(params, range, &mut results, summaries).await?;
        }
        Ok(results.into_vec())
    }

    /// Search among traces known by id (`listed`, each with a time no
    /// earlier than its start), a page of ids at a time, newest time
    /// first: a trace not read yet started no later than the next time,
    /// so the summaries read that start after it are in order.
    async fn search_listed(
        &self,
        params: &SearchParams,
        range: (i64, Option<i64>),
        results: &mut search::Results,
        mut listed: Vec<(TraceId, i64)>,
    ) -> Result<(), QueryError> {
        listed.sort_unstable_by_key(|(_, at)| std::cmp::Reverse(*at));
        let mut rest = listed.as_slice();
        let mut read: Vec<search::Summary> = Vec::new();
        // Pages grow while they find nothing: matches in the range are
        // rarer than the missing results suggest (none, for a range that
        // holds no listed trace).
        let mut barren = 0u32;
        while !(results.full() || rest.is_empty() && read.is_empty()) {
            let page = (4 * results.missing()).clamp(64, 4096);
            let page = page
                .saturating_mul(1 << barren.min(6))
                .min(4096)
                .min(rest.len());
            let (ids, after) = rest.split_at(page);
            rest = after;
            if !ids.is_empty() {
                let ids: Vec<String> = ids.iter().map(|(t, _)| t.to_hex()).collect();
                let p = params.clone();
                let result = self
                    .session
                    .frame(
                        move |ctx| async move { search::listed_frame(&ctx, &p, range, ids).await },
                    )
                    .await?;
                let found = search::read_summaries(&result)?;
                barren = if found.is_empty() { barren + 1 } else { 0 };
                read.extend(found);
                search::newest_first(&mut read);
            }
            let below = rest.first().map_or(i64::MIN, |(_, at)| *at);
            let ready = read.iter().take_while(|s| s.start > below).count();
            let ready: Vec<_> = read.drain(..ready).collect();
            self.take(params, range, results, ready).await?;
        }
        Ok(())
    }

    /// The merged summaries of one window, newest first, and the rows read.
    async fn window(
        &self,
        params: &SearchParams,
        range: (i64, Option<i64>),
        bounds: (i64, i64),
    ) -> Result<(Vec<search::Summary>, usize), QueryError> {
        let p = params.clone();
        let result = self
            .session
            .frame(move |ctx| async move { search::window_frame(&ctx, &p, range, bounds).await })
            .await?;
        Ok((search::read_summaries(&result)?, result.num_rows()))
    }

    /// Adds the candidates of one window to `results`, in order, looking
    /// up the spans of those the summary cannot decide a page at a time.
    async fn take(
        &self,
        params: &SearchParams,
        range: (i64, Option<i64>),
        results: &mut search::Results,
        summaries: Vec<search::Summary>,
    ) -> Result<(), QueryError> {
        let mut candidates = results.candidates(params, summaries, range).into_iter();
        let (mut looked_up, mut matched_so_far) = (0, 0);
        while !results.full() {
            let page = search::next_page(results.missing(), looked_up, matched_so_far);
            let chunk: Vec<_> = candidates.by_ref().take(page).collect();
            if chunk.is_empty() {
                break;
            }
            let ids: Vec<String> = chunk
                .iter()
                .filter_map(search::candidate_id)
                .map(str::to_owned)
                .collect();
            let matched = if ids.is_empty() {
                Default::default()
            } else {
                let p = params.clone();
                let result =
                    self.session
                        .frame(move |ctx| async move {
                            search::matching_frame(&ctx, &p, range, ids).await
                        })
                        .await?;
                search::matching_ids(&result)?
            };
            looked_up += chunk.iter().filter(|c| c.1.is_none()).count();
            matched_so_far += matched.len();
            results.take(chunk, &matched);
        }
        Ok(())
    }

    /// The whole flow of `trace_id`: every member trace's spans and the
    /// boundaries between them. `None` when no span of the flow is stored.
    pub async fn flow(&self, trace_id: TraceId) -> Result<Option<FlowResult>, QueryError> {
        self.session.settled().await?;
        let trace_ids = self.view.flow_members(&trace_id);
        // Both lookups at once: each mostly waits on its own files, so the
        // answer takes the longer of the two, not both.
        let spans = self.session.lookup(spans_of(&trace_ids));
        let (spans, boundaries) = futures::join!(spans, self.flow_boundaries(&trace_ids));
        let (spans, boundaries) = (spans?, boundaries?);
        if spans.num_rows() == 0 {
            return Ok(None);
        }
        Ok(Some(FlowResult {
            flow_id: self.view.flow_id(&trace_id),
            trace_ids,
            spans,
            boundaries,
        }))
    }

    /// The boundaries of a flow's traces. The boundaries the members
    /// produced, as correlation counted them: when the boundaries they
    /// consumed hold that many, no boundary leaves the flow and the lookup
    /// by producer is not needed.
    async fn flow_boundaries(&self, trace_ids: &[TraceId]) -> Result<QueryResult, QueryError> {
        let Some(produced) = self.produced(trace_ids).map(|(all, _)| all) else {
            return self.sql(&flow_boundaries_sql(trace_ids)).await;
        };
        let consumed = self.session.lookup(flow_consumed(trace_ids)).await?;
        if produced != produced_within(&consumed, trace_ids).unwrap_or(0) {
            return self.sql(&flow_boundaries_sql(trace_ids)).await;
        }
        Ok(consumed)
    }

    /// Boundaries (all, flagged) the traces produced, as correlation
    /// counts them; `None` when it no longer does.
    fn produced(&self, trace_ids: &[TraceId]) -> Option<(u64, u64)> {
        self.view.producer_counts(trace_ids).map(|counts| {
            counts.iter().fold((0, 0), |(all, flagged), (n, f)| {
                (all + u64::from(*n), flagged + u64::from(*f))
            })
        })
    }

    /// A flow's member traces and boundaries without its spans: what a
    /// trace's page shows of the flow around it. Unlike [`Self::flow`] it
    /// does not check that the trace is stored.
    pub async fn flow_outline(&self, trace_id: TraceId) -> Result<FlowResult, QueryError> {
        self.session.settled().await?;
        let trace_ids = self.view.flow_members(&trace_id);
        let boundaries = self.flow_boundaries(&trace_ids).await?;
        Ok(FlowResult {
            flow_id: self.view.flow_id(&trace_id),
            trace_ids,
            spans: QueryResult {
                schema: Arc::new(arrow::datatypes::Schema::empty()),
                batches: Vec::new(),
            },
            boundaries,
        })
    }

    /// How many traces the flow of `trace` has, and (when correlation
    /// still counts them) how many boundaries and flagged boundaries its
    /// traces produced: what a search result says of the flow around it,
    /// from memory, without a read.
    pub fn flow_facts(&self, trace: &TraceId) -> FlowFacts {
        let members = self.view.flow_members(trace);
        let produced = self.produced(&members);
        FlowFacts {
            flow_trace_count: members.len(),
            flow_boundary_count: produced.map(|(all, _)| all),
            flow_flagged_boundaries: produced.map(|(_, flagged)| flagged),
        }
    }

    /// Services with spans starting in `window` (by whole minutes when a
    /// correlator keeps rollups).
    pub async fn services(&self, window: TimeWindow) -> Result<Vec<ServiceJson>, QueryError> {
        if self.view.followed() {
            let rolled = self.sql(&services_rolled_sql(window)).await;
            let rolled = rolled.map_err(|e| e.narrowed(crate::error::RANGE_HINT))?;
            return services_from(&rolled, &rolled);
        }
        self.services_scanned(window).await
    }

    /// [`Self::services`] from every span in `window`.
    pub async fn services_scanned(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<ServiceJson>, QueryError> {
        let (services, clouds) = (services_sql(window), cloud_platforms_sql(window));
        let (services, clouds) = futures::join!(self.sql(&services), self.sql(&clouds));
        let narrow = |e: QueryError| e.narrowed(crate::error::RANGE_HINT);
        services_from(&services.map_err(narrow)?, &clouds.map_err(narrow)?)
    }

    /// A service's operations (span names) in `window`, most frequent
    /// first (by whole minutes when a correlator keeps rollups).
    pub async fn operations(
        &self,
        service: &str,
        window: TimeWindow,
    ) -> Result<Vec<OperationJson>, QueryError> {
        let sql = if self.view.followed() {
            operations_rolled_sql(service, window)
        } else {
            operations_sql(service, window)
        };
        let result = self.sql(&sql).await;
        operations_from(&result.map_err(|e| e.narrowed(crate::error::RANGE_HINT))?)
    }

    /// One edge's dwell histogram and its slowest boundaries in `window`.
    pub async fn edge_detail(
        &self,
        edge: &EdgeFilter,
        window: TimeWindow,
        slowest: usize,
    ) -> Result<EdgeDetailJson, QueryError> {
        let (histogram, examples) = (
            histogram_sql(edge, window),
            slowest_sql(edge, window, slowest),
        );
        let (histogram, examples) = futures::join!(self.sql(&histogram), self.sql(&examples));
        let narrow = |e: QueryError| e.narrowed(crate::error::RANGE_HINT);
        Ok(EdgeDetailJson {
            buckets: buckets_from(&histogram.map_err(narrow)?)?,
            slowest: boundaries_from(&examples.map_err(narrow)?)?,
        })
    }

    /// Invocations and cold starts per minute of `window`, of one function
    /// or all.
    pub async fn cold_start_timeline(
        &self,
        function: Option<&str>,
        window: TimeWindow,
    ) -> Result<Vec<MinuteJson>, QueryError> {
        let result = self.sql(&timeline_sql(function, window)).await;
        timeline_from(&result.map_err(|e| e.narrowed(crate::error::RANGE_HINT))?)
    }

    /// Orphan consumers and unconsumed messages in `window`, newest first.
    pub async fn orphans(
        &self,
        window: TimeWindow,
        limit: usize,
    ) -> Result<Vec<OrphanJson>, QueryError> {
        let result = self.sql(&orphans_sql(window, limit)).await;
        orphans_from(&result.map_err(|e| e.narrowed(crate::error::RANGE_HINT))?)
    }

    /// The boundary map: boundaries grouped by edge within `window` (by
    /// whole minutes when a correlator keeps rollups).
    pub async fn edges(&self, window: TimeWindow) -> Result<Vec<EdgeJson>, QueryError> {
        if !self.view.followed() {
            return self.edges_scanned(window).await;
        }
        let merged = self
            .session
            .fold(
                move |ctx| async move { rollup_frame(&ctx, EDGE_ROLLUPS, window).await },
                EdgeMerge::default(),
                |merge, batch| merge.add(&batch),
            )
            .await
            .map_err(|e| e.narrowed(crate::error::RANGE_HINT))?;
        Ok(merged.finish())
    }

    /// [`Self::edges`] from every boundary in `window`.
    pub async fn edges_scanned(&self, window: TimeWindow) -> Result<Vec<EdgeJson>, QueryError> {
        let result = self.sql(&edges_sql(window)).await;
        edges_from(&result.map_err(|e| e.narrowed(crate::error::RANGE_HINT))?)
    }

    /// Cold starts per function within `window` (by whole minutes when a
    /// correlator keeps rollups).
    pub async fn cold_starts(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<FunctionColdStarts>, QueryError> {
        if !self.view.followed() {
            return self.cold_starts_scanned(window).await;
        }
        let merged = self
            .session
            .fold(
                move |ctx| async move { rollup_frame(&ctx, FUNCTION_ROLLUPS, window).await },
                FunctionMerge::default(),
                |merge, batch| merge.add(&batch),
            )
            .await
            .map_err(|e| e.narrowed(crate::error::RANGE_HINT))?;
        Ok(merged.finish())
    }

    /// [`Self::cold_starts`] from every invocation in `window`.
    pub async fn cold_starts_scanned(
        &self,
        window: TimeWindow,
    ) -> Result<Vec<FunctionColdStarts>, QueryError> {
        let result = self.sql(&cold_starts_sql(window)).await;
        cold_starts_from(&result.map_err(|e| e.narrowed(crate::error::RANGE_HINT))?)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::Int64Type;

    use std::time::Instant;

    use bytesize::ByteSize;

    use super::*;
    use crate::testdata;

    fn engine_with(table: Arc<Table>, config: QueryConfig) -> QueryEngine {
        let correlation = Correlation {
            traces: testdata::traces_table(),
            ..Correlation::empty()
        };
        QueryEngine::with_correlation(table, correlation, config).unwrap()
    }

    fn engine() -> (Arc<Table>, QueryEngine) {
        let table = testdata::table();
        (table.clone(), engine_with(table, QueryConfig::default()))
    }

    fn strings_of(result: &QueryResult, column: usize) -> Vec<String> {
        result
            .batches
            .iter()
            .flat_map(|b| {
                let c = arrow::compute::cast(b.column(column), &arrow::datatypes::DataType::Utf8)
                    .unwrap();
                c.as_string::<i32>()
                    .iter()
                    .map(|v| v.unwrap_or("").to_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn count(result: &QueryResult) -> i64 {
        result.batches[0]
            .column(0)
            .as_primitive::<Int64Type>()
            .value(0)
    }

    #[tokio::test]
    async fn first_queries_at_once_each_find_every_table_and_the_flows_view() {
        let (table, engine) = engine();
        let rows = table.snapshot().num_rows() as i64;
        // No query has built the context yet: whichever comes first does,
        // and the others wait for it.
        let queries = [
            "SELECT count(*) FROM spans",
            "SELECT count(*) FROM flows",
            "SELECT count(*) FROM boundaries",
            "SELECT count(*) FROM spans",
        ];
        let results = futures::future::join_all(queries.iter().map(|q| engine.sql(q))).await;
        let counts: Vec<i64> = results.iter().map(|r| count(r.as_ref().unwrap())).collect();
        assert_eq!(counts[0], rows);
        assert_eq!(counts[3], rows);
        assert!(counts[1] > 0, "flows over the stored spans");
        assert_eq!(counts[2], 0);
    }

    #[tokio::test]
    async fn selects_by_hex_trace_id() {
        let (_, engine) = engine();
        let result = engine
            .sql(&format!(
                "SELECT span_id FROM spans WHERE trace_id = '{}' ORDER BY start_time",
                testdata::CHECKOUT_TRACE
            ))
            .await
            .unwrap();
        assert_eq!(result.num_rows(), 4);
        assert_eq!(strings_of(&result, 0)[0], testdata::CHECKOUT_ROOT_SPAN);
    }

    #[tokio::test]
    async fn indexes_attribute_maps() {
        let (_, engine) = engine();
        let result = engine
            .sql("SELECT attributes['http.route'] AS route FROM spans WHERE attributes['http.route'] IS NOT NULL ORDER BY route")
            .await
            .unwrap();
        assert_eq!(
            strings_of(&result, 0),
            vec!["/checkout", "/healthz", "/payments"]
        );
        let result = engine
            .sql("SELECT count(*) FROM spans WHERE attributes['tenant'] = 'acme' AND resource_attributes['cloud.provider'] = 'aws'")
            .await
            .unwrap();
        assert_eq!(count(&result), 2);
    }

    /// Every span column, every attribute filter, as JSON: what a user
    /// sees of the spans.
    async fn answers(engine: &QueryEngine) -> Vec<String> {
        let queries = [
            "SELECT * FROM spans ORDER BY span_id, trace_id",
            "SELECT span_id, attributes['http.route'] FROM spans WHERE attributes['tenant'] = 'acme' ORDER BY span_id",
            "SELECT span_id FROM spans WHERE resource_attributes['cloud.provider'] = 'aws' ORDER BY span_id",
            "SELECT span_id, map_keys(attributes) FROM spans ORDER BY span_id, trace_id",
        ];
        let mut out = Vec::new();
        for q in queries {
            let result = engine.sql(q).await.unwrap();
            assert!(result.num_rows() > 0, "{q}");
            out.push(String::from_utf8(crate::json::to_json(&result).unwrap()).unwrap());
        }
        out
    }

    /// Ids are bytes in memory and hex in sealed files, and the columns
    /// constant per resource or mostly null are runs in memory: every way
    /// SQL can name them answers the same over either, including text
    /// that is no id (uppercase, short) and comparisons that cannot be
    /// made on bytes.
    #[tokio::test]
    async fn columns_held_otherwise_in_memory_answer_as_in_sealed_files() {
        use seam_store::{Opened, RetentionConfig, StorageConfig, Store, WalConfig};
        use testdata::{CHECKOUT_ROOT_SPAN, CHECKOUT_TRACE, ORDERS_TRACE};
        let dir = tempfile::tempdir().unwrap();
        let Opened { store, .. } = Store::open(
            dir.path(),
            StorageConfig::default(),
            RetentionConfig::default(),
            WalConfig::default(),
            vec![seam_model::tables::spans()],
        )
        .unwrap();
        store.table("spans").append(testdata::batch()).unwrap();
        store.seal().unwrap().unwrap();
        let sealed = engine_with(store.table("spans"), QueryConfig::default());
        let (_, in_memory) = engine();
        let upper = CHECKOUT_TRACE.to_uppercase();
        let select = "SELECT trace_id, span_id, parent_span_id, flow_id, name FROM spans";
        let order = "ORDER BY trace_id, span_id";
        let queries = [
            (
                format!("{select} WHERE trace_id = '{CHECKOUT_TRACE}' {order}"),
                true,
            ),
            (
                format!("{select} WHERE '{ORDERS_TRACE}' = trace_id {order}"),
                true,
            ),
            (
                format!("{select} WHERE trace_id = '{upper}' {order}"),
                false,
            ),
            (
                format!(
                    "{select} WHERE trace_id = '{}' {order}",
                    &CHECKOUT_TRACE[16..]
                ),
                false,
            ),
            (
                format!(
                    "{select} WHERE trace_id IN ('{CHECKOUT_TRACE}', 'nope', '{ORDERS_TRACE}') {order}"
                ),
                true,
            ),
            (
                format!("{select} WHERE trace_id NOT IN ('{CHECKOUT_TRACE}') {order}"),
                true,
            ),
            (
                format!("{select} WHERE trace_id <> '{CHECKOUT_TRACE}' {order}"),
                true,
            ),
            (
                format!(
                    "{select} WHERE trace_id LIKE '{}%' {order}",
                    &CHECKOUT_TRACE[..6]
                ),
                true,
            ),
            (format!("{select} WHERE trace_id > '5' {order}"), true),
            (
                format!("{select} WHERE span_id = '{CHECKOUT_ROOT_SPAN}' {order}"),
                true,
            ),
            (
                format!("{select} WHERE parent_span_id = '{CHECKOUT_ROOT_SPAN}' {order}"),
                true,
            ),
            (
                format!("{select} WHERE parent_span_id IS NULL {order}"),
                true,
            ),
            (
                format!("{select} WHERE trace_id = '{CHECKOUT_TRACE}' OR span_id = 'x' {order}"),
                true,
            ),
            (
                format!("{select} WHERE trace_id = '{CHECKOUT_TRACE}' OR name = 'nothing' {order}"),
                true,
            ),
            (
                "SELECT upper(trace_id), length(span_id), count(*) FROM spans GROUP BY 1, 2 ORDER BY 1, 2".to_owned(),
                true,
            ),
            (format!("SELECT * FROM spans WHERE service_name = 'payments' {order}"), true),
            (format!("{select} WHERE status_code = 'ERROR' AND platform = 'kubernetes' {order}"), true),
            (
                format!("SELECT span_id, messaging_destination FROM spans WHERE messaging_system IS NOT NULL {order}"),
                true,
            ),
            (
                "SELECT span_id, init_duration_ns, cold_start_type FROM spans WHERE init_duration_ns > 0 ORDER BY span_id".to_owned(),
                true,
            ),
            (
                format!("SELECT span_id FROM spans WHERE coalesce(messaging_destination, 'none') = 'none' AND trace_id = '{CHECKOUT_TRACE}' ORDER BY span_id"),
                true,
            ),
            (
                "SELECT service_name, scope_name, status_message, trace_state, count(*) FROM spans GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4".to_owned(),
                true,
            ),
            ("SELECT span_id FROM spans WHERE service_name = 'nobody'".to_owned(), false),
        ];
        for (sql, rows) in queries {
            let hot = in_memory
                .sql(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            let cold = sealed.sql(&sql).await.unwrap();
            assert_eq!(hot.num_rows() > 0, rows, "{sql}");
            let json =
                |r: &QueryResult| String::from_utf8(crate::json::to_json(r).unwrap()).unwrap();
            assert_eq!(json(&hot), json(&cold), "{sql}");
        }
    }

    /// A sealed file's columns as files sealed before attribute keys and
    /// span names were kept once per batch hold them: as text.
    fn with_text_keys(path: &std::path::Path) {
        fn text_keys(t: &arrow::datatypes::DataType, nested: bool) -> arrow::datatypes::DataType {
            use arrow::datatypes::{DataType, Field};
            let field = |f: &Arc<Field>| {
                Arc::new(
                    f.as_ref()
                        .clone()
                        .with_data_type(text_keys(f.data_type(), true)),
                )
            };
            match t {
                DataType::Dictionary(_, v) if nested => v.as_ref().clone(),
                DataType::Map(e, sorted) => DataType::Map(field(e), *sorted),
                DataType::List(i) => DataType::List(field(i)),
                DataType::Struct(fs) => DataType::Struct(fs.iter().map(field).collect()),
                other => other.clone(),
            }
        }
        let batches = seam_store::parquet_file::read(path, None).unwrap();
        let old = batches[0].schema();
        // Span names were plain text too.
        let fields: Vec<_> = (old.fields().iter())
            .map(|f| {
                let top = f.name() == "name";
                f.as_ref()
                    .clone()
                    .with_data_type(text_keys(f.data_type(), top))
            })
            .collect();
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        assert_ne!(schema, old, "the file held dictionary keys");
        let mut out = Vec::new();
        let mut writer =
            datafusion::parquet::arrow::ArrowWriter::try_new(&mut out, schema.clone(), None)
                .unwrap();
        for batch in &batches {
            let columns = (schema.fields().iter().zip(batch.columns()))
                .map(|(f, c)| arrow::compute::cast(c, f.data_type()).unwrap())
                .collect();
            writer
                .write(&arrow::array::RecordBatch::try_new(schema.clone(), columns).unwrap())
                .unwrap();
        }
        writer.close().unwrap();
        std::fs::write(path, out).unwrap();
    }

    #[tokio::test]
    async fn files_sealed_with_text_keys_and_names_answer_and_compact_as_new_ones() {
        use seam_store::{Opened, RetentionConfig, StorageConfig, Store, WalConfig};
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let config = StorageConfig {
                compact_min_files: 2,
                ..StorageConfig::default()
            };
            let Opened { store, .. } = Store::open(
                dir.path(),
                config,
                RetentionConfig::default(),
                WalConfig::default(),
                vec![seam_model::tables::spans()],
            )
            .unwrap();
            store
        };
        let (hot, in_memory) = engine();
        let want = answers(&in_memory).await;

        let store = open();
        store.table("spans").append(testdata::batch()).unwrap();
        store.seal().unwrap().unwrap();
        let file = store.table("spans").sealed()[0].clone();
        drop(store);
        with_text_keys(&file.path);
        // The manifest records each file's size, which the reader trusts.
        let manifest = dir.path().join("segments").join("MANIFEST.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        m["tables"]["spans"][0]["bytes"] = std::fs::metadata(&file.path).unwrap().len().into();
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();

        let store = open();
        let sealed = engine_with(store.table("spans"), QueryConfig::default());
        assert_eq!(
            answers(&sealed).await,
            want,
            "an old file answers as rows in memory"
        );

        // Merged with a file of today's layout, it answers the same again.
        store.table("spans").append(testdata::batch()).unwrap();
        store.seal().unwrap().unwrap();
        assert_eq!(store.compact().unwrap(), 2);
        hot.append(testdata::batch()).unwrap();
        let merged = engine_with(store.table("spans"), QueryConfig::default());
        assert_eq!(answers(&merged).await, answers(&in_memory).await);
    }

    /// Rows in memory keep a resource once per run of its spans and ids as
    /// bytes; SQL reads maps and hex, built only for the rows a filter on
    /// the trace id, compared as bytes, keeps.
    #[tokio::test]
    async fn resources_in_memory_are_read_as_maps_after_the_filters() {
        let (_, engine) = engine();
        let sql = format!(
            "SELECT span_id, resource_attributes['service.name'] AS service FROM spans \
             WHERE trace_id = '{}' ORDER BY span_id",
            testdata::CHECKOUT_TRACE
        );
        let result = engine.sql(&sql).await.unwrap();
        assert_eq!(result.num_rows(), 4);
        let plan = engine.sql(&format!("EXPLAIN {sql}")).await.unwrap();
        let plan = strings_of(&plan, 1).join("\n");
        let at = |what: &str| {
            plan.find(what)
                .unwrap_or_else(|| panic!("no {what} in\n{plan}"))
        };
        // Parents print above their inputs: the conversion to SQL's types
        // reads what the filter on the trace id, compared as bytes, kept
        // from memory, and the query's own filter on the hex runs above.
        let bytes = testdata::CHECKOUT_TRACE[..20].to_uppercase();
        assert!(
            at("ToSqlExec: trace_id, span_id, resource_attributes")
                < at(&format!("FilterExec: trace_id@0 = {bytes}")),
            "{plan}"
        );
        assert!(
            at(&format!("FilterExec: trace_id@0 = {bytes}")) < at("DataSourceExec: partitions"),
            "{plan}"
        );
        assert!(at("FilterExec: trace_id@1 = ") < at("ToSqlExec"), "{plan}");

        // A filter on a column held as runs runs once those are expanded,
        // before the resources are built.
        let sql = "SELECT span_id, resource_attributes['service.name'] AS service FROM spans \
                   WHERE service_name = 'payments'";
        let result = engine.sql(sql).await.unwrap();
        assert_eq!(strings_of(&result, 1), ["payments"]);
        let plan = engine.sql(&format!("EXPLAIN {sql}")).await.unwrap();
        let plan = strings_of(&plan, 1).join("\n");
        let at = |what: &str| {
            plan.find(what)
                .unwrap_or_else(|| panic!("no {what} in\n{plan}"))
        };
        let last = |what: &str| plan.rfind(what).unwrap();
        assert!(
            at("ToSqlExec: span_id, resource_attributes") < last("FilterExec: service_name@"),
            "{plan}"
        );
        assert!(
            last("FilterExec: service_name@") < at("ToSqlExec: service_name"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn groups_by_dictionary_columns() {
        let (_, engine) = engine();
        let result = engine
            .sql("SELECT service_name, count(*) AS n FROM spans GROUP BY service_name ORDER BY n DESC, service_name")
            .await
            .unwrap();
        assert_eq!(
            strings_of(&result, 0),
            vec!["checkout", "order-worker", "payments"]
        );
        let n: Vec<i64> = result
            .batches
            .iter()
            .flat_map(|b| b.column(1).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(n, vec![4, 2, 1]);
    }

    #[tokio::test]
    async fn sees_spans_appended_just_before() {
        let (table, engine) = engine();
        table.append(testdata::bulk(3)).unwrap();
        let result = engine.sql("SELECT count(*) FROM spans").await.unwrap();
        assert_eq!(count(&result), testdata::SPAN_COUNT as i64 + 3);
    }

    #[tokio::test]
    async fn lists_tables_through_information_schema() {
        let (_, engine) = engine();
        let result = engine.sql("SHOW TABLES").await.unwrap();
        assert!(strings_of(&result, 2).contains(&"spans".to_owned()));
    }

    #[tokio::test]
    async fn mistakes_are_invalid_with_datafusion_messages() {
        let (_, engine) = engine();
        let err = engine.sql("SELEC 1").await.unwrap_err();
        assert!(
            matches!(&err, QueryError::Invalid(m) if m.contains("SELEC")),
            "{err}"
        );
        let err = engine.sql("SELECT nope FROM spans").await.unwrap_err();
        assert!(
            matches!(&err, QueryError::Invalid(m) if m.contains("nope")),
            "{err}"
        );
        let err = engine.sql("SELECT * FROM nowhere").await.unwrap_err();
        assert!(
            matches!(&err, QueryError::Invalid(m) if m.contains("nowhere")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refuses_everything_but_reads() {
        let (_, engine) = engine();
        for sql in [
            "CREATE TABLE t AS SELECT 1",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "COPY spans TO '/tmp/spans.parquet'",
            "INSERT INTO spans SELECT * FROM spans",
            "DROP TABLE spans",
            "SET datafusion.execution.target_partitions = 64",
        ] {
            let err = engine.sql(sql).await.unwrap_err();
            assert!(matches!(err, QueryError::Refused(_)), "{sql}: {err}");
            assert!(
                err.to_string()
                    .starts_with("only read-only queries are allowed"),
                "{err}"
            );
        }
        assert_eq!(
            count(&engine.sql("SELECT count(*) FROM spans").await.unwrap()),
            testdata::SPAN_COUNT as i64
        );
    }

    #[tokio::test]
    async fn stops_at_the_row_cap() {
        let table = testdata::table();
        table.append(testdata::bulk(500)).unwrap();
        let engine = engine_with(
            table,
            QueryConfig {
                max_result_rows: 100,
                ..QueryConfig::default()
            },
        );
        let err = engine.sql("SELECT * FROM spans").await.unwrap_err();
        assert!(matches!(err, QueryError::ResultTooLarge(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "result exceeds 100 rows; add a LIMIT or aggregate"
        );
        assert_eq!(
            engine
                .sql("SELECT * FROM spans LIMIT 100")
                .await
                .unwrap()
                .num_rows(),
            100
        );
    }

    #[tokio::test]
    async fn stops_at_the_byte_cap_counting_only_returned_rows() {
        let table = testdata::table();
        table.append(testdata::bulk(2_000)).unwrap();
        let engine = engine_with(
            table,
            QueryConfig {
                max_result_bytes: ByteSize::kib(64),
                ..QueryConfig::default()
            },
        );
        let err = engine.sql("SELECT * FROM spans").await.unwrap_err();
        assert!(
            matches!(&err, QueryError::ResultTooLarge(m) if m.contains("KiB")),
            "{err}"
        );
        assert_eq!(
            engine
                .sql("SELECT trace_id FROM spans LIMIT 10")
                .await
                .unwrap()
                .num_rows(),
            10
        );
    }

    #[tokio::test]
    async fn a_long_query_times_out_and_the_engine_keeps_answering() {
        let table = testdata::table();
        table.append(testdata::bulk(2_000)).unwrap();
        let engine = engine_with(
            table,
            QueryConfig {
                timeout: Duration::from_millis(500),
                ..QueryConfig::default()
            },
        );
        let started = Instant::now();
        let err = engine
            .sql("SELECT count(*) FROM spans a, spans b, spans c WHERE a.duration_ns + b.duration_ns > c.duration_ns")
            .await
            .unwrap_err();
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
        assert_eq!(err.to_string(), "query exceeded the 500ms time limit");
        assert!(started.elapsed() < Duration::from_secs(5));

        let err = engine
            .sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")
            .await
            .unwrap_err();
        assert!(matches!(err, QueryError::Timeout(_)), "{err}");
        assert_eq!(
            count(&engine.sql("SELECT count(*) FROM spans").await.unwrap()),
            2_007
        );
    }

    #[tokio::test]
    async fn a_query_that_needs_too_much_memory_fails_cleanly() {
        let table = testdata::table();
        table.append(testdata::bulk(2_000)).unwrap();
        let engine = engine_with(
            table,
            QueryConfig {
                memory_limit: ByteSize::mib(1),
                ..QueryConfig::default()
            },
        );
        let err = engine
            .sql("SELECT a.span_id, b.span_id FROM spans a, spans b ORDER BY a.attributes['payload'], b.span_id")
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueryError::ResourcesExhausted { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("query needs more than the 1.0 MiB memory limit; narrow it"),
            "{err}"
        );
        assert_eq!(
            count(&engine.sql("SELECT count(*) FROM spans").await.unwrap()),
            2_007
        );
    }

    #[tokio::test]
    async fn disabled_generators_are_refused_before_running() {
        let (_, engine) = engine();
        for sql in [
            "SELECT repeat('x', 1000000000)",
            "SELECT * FROM generate_series(1, 1000000000000)",
            "SELECT array_repeat('x', 1000000000)",
        ] {
            let err = engine.sql(sql).await.unwrap_err();
            assert!(
                matches!(&err, QueryError::Invalid(m) if m.contains("disabled")),
                "{sql}: {err}"
            );
        }
    }

    #[tokio::test]
    async fn correlation_reports_plan_over_the_tables() {
        let (_, engine) = engine();
        let flows = engine
            .sql("SELECT flow_id, trace_count, span_count, services, boundary_count, cold_starts, errors, duration_ns FROM flows ORDER BY flow_id")
            .await
            .unwrap();
        assert_eq!(flows.num_rows(), 3, "every trace is a flow of its own");
        assert_eq!(strings_of(&flows, 0), {
            let mut t = vec![
                testdata::CHECKOUT_TRACE,
                testdata::ORDERS_TRACE,
                testdata::HEALTH_TRACE,
            ];
            t.sort();
            t
        });
        assert!(
            engine
                .edges(TimeWindow::default())
                .await
                .unwrap()
                .is_empty()
        );
        let cold = engine.cold_starts(TimeWindow::default()).await.unwrap();
        assert_eq!(cold.len(), 1, "{cold:?}");
        assert_eq!(
            (
                cold[0].function.as_str(),
                cold[0].invocations,
                cold[0].cold_starts
            ),
            ("order-worker", 1, 1)
        );
        let orphans = engine.sql("SELECT count(*) FROM orphans").await.unwrap();
        let n = orphans.batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0);
        assert_eq!(n, 0, "no orphans in an empty table");
        let id = TraceId::parse_hex(testdata::CHECKOUT_TRACE).unwrap();
        let flow = engine.flow(id).await.unwrap().unwrap();
        assert_eq!(flow.trace_ids, vec![id]);
        assert_eq!(flow.spans.num_rows(), 4);
        assert_eq!(flow.boundaries.num_rows(), 0);
        let unknown = TraceId::parse_hex(testdata::UNKNOWN_TRACE).unwrap();
        assert!(engine.flow(unknown).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn reads_one_trace_in_start_order() {
        let (_, engine) = engine();
        let id = TraceId::parse_hex(testdata::CHECKOUT_TRACE).unwrap();
        let result = engine.trace(id).await.unwrap();
        assert_eq!(result.schema, seam_model::schema::spans_schema());
        let starts: Vec<i64> = result
            .batches
            .iter()
            .flat_map(|b| {
                let c = arrow::compute::cast(
                    b.column_by_name("start_time").unwrap(),
                    &arrow::datatypes::DataType::Int64,
                )
                .unwrap();
                c.as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(starts.len(), 4);
        assert!(starts.is_sorted());
        let unknown = TraceId::parse_hex(testdata::UNKNOWN_TRACE).unwrap();
        assert_eq!(engine.trace(unknown).await.unwrap().num_rows(), 0);
    }

    #[tokio::test]
    async fn summarizes_matching_traces_latest_first() {
        let (_, engine) = engine();
        // The testdata is from 2023: older than the default hour.
        assert!(
            engine
                .search(&SearchParams::default())
                .await
                .unwrap()
                .is_empty()
        );
        let since = SearchParams {
            start: Some(0),
            ..SearchParams::default()
        };
        let all = engine.search(&since).await.unwrap();
        let ids: Vec<&str> = all.iter().map(|t| t.trace_id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                testdata::HEALTH_TRACE,
                testdata::ORDERS_TRACE,
                testdata::CHECKOUT_TRACE
            ]
        );
        let checkout = &all[2];
        assert_eq!(checkout.root_service, "checkout");
        assert_eq!(checkout.root_name, "GET /checkout");
        assert_eq!(checkout.start_unix_nano, testdata::T0.to_string());
        assert_eq!(checkout.duration_ns, 250 * testdata::MS);
        assert_eq!(checkout.span_count, 4);
        assert_eq!(checkout.error_count, 2);
        assert_eq!(checkout.services, vec!["checkout", "payments"]);

        // A filter on one span still summarizes the whole trace.
        let params = SearchParams {
            service: Some("payments".into()),
            ..since
        };
        let found = engine.search(&params).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].span_count, 4);
        assert_eq!(found[0].root_service, "checkout");
    }
}
