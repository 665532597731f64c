//! The session every query runs in: one DataFusion context over the
//! catalog, built by the first query, on a runtime of its own, under time,
//! memory and result-size limits.
//!
//! ```text
//!  caller (API, ingest runtime)           query runtime (`threads` workers)
//!  ─────────────────────────────          ────────────────────────────────────────
//!  run() ──settle, spawn──────────────▶   plan ─▶ read-only check ─▶ execute
//!    │                                     │  batches stream in; stop at the caps
//!    └── timeout(config.timeout) ◀─────────┘  result, or abort on timeout
//! ```
//!
//! A CPU-bound query keeps only the query runtime's workers busy, so ingest
//! keeps its threads. Operator memory (joins, sorts, aggregations) comes from
//! one pool of `memory_limit` shared by all running queries; nothing spills
//! to disk, a query that needs more fails instead. What one function call
//! builds is capped apart ([`crate::bounded`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use bytesize::ByteSize;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::GreedyMemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::StreamExt;
use seam_store::Settle;
use tokio::runtime::Runtime;
use tokio::sync::OnceCell;

use crate::bounded;
use crate::catalog::Catalog;
use crate::config::QueryConfig;
use crate::error::QueryError;
use crate::lookup::Lookup;
use crate::metrics::QueryMetrics;
use crate::sandbox;
use crate::yielding::YieldEverywhere;

/// The answer to a query: its schema (known even when there are no rows)
/// and its batches in order.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The DataFusion context, built by the first query, not at start:
/// building it runs much of DataFusion's code once (its function registry,
/// the planner for the `flows` view), which kept 30 MB of the binary
/// resident in a server that only receives (BENCHMARKS.md, build and
/// footprint).
struct LazyContext {
    built: OnceCell<SessionContext>,
    catalog: Catalog,
    threads: usize,
    pool_bytes: usize,
    function_output: usize,
}

impl LazyContext {
    /// The context, built now if no query has built it yet.
    async fn get(&self) -> Result<SessionContext, QueryError> {
        self.built.get_or_try_init(|| self.build()).await.cloned()
    }

    /// The DataFusion context over the catalog, with its limits.
    async fn build(&self) -> Result<SessionContext, QueryError> {
        let session = SessionConfig::new()
            .with_target_partitions(self.threads)
            // The tables already read in as many parts as there are
            // threads; a round-robin exchange above `flows` would pull its
            // newest-first walk to the end before `LIMIT` could stop it.
            .with_round_robin_repartition(false)
            .with_information_schema(true);
        let env = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(GreedyMemoryPool::new(self.pool_bytes)))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()
            .map_err(|e| {
                QueryError::Internal(format!("building the query runtime environment: {e}"))
            })?;
        let cap = self.function_output;
        let state = SessionStateBuilder::new()
            .with_config(session)
            .with_runtime_env(env)
            .with_default_features()
            .with_analyzer_rule(Arc::new(bounded::BoundFunctions { cap }))
            .with_physical_optimizer_rule(Arc::new(YieldEverywhere))
            .with_physical_optimizer_rule(Arc::new(bounded::BoundConstants { cap }))
            .build();
        let ctx = SessionContext::new_with_state(state);
        sandbox::disable_functions(&ctx);
        {
            use datafusion::execution::FunctionRegistry;
            ctx.clone()
                .register_expr_planner(bounded::planner(cap))
                .map_err(|e| QueryError::Internal(format!("planning `||`: {e}")))?;
        }
        self.catalog.register(&ctx).await?;
        Ok(ctx)
    }
}

/// Where queries run: the lazily built context, the runtime, the limits.
pub struct Session {
    ctx: Arc<LazyContext>,
    /// A read-ahead of sealed files is running ([`Session::warm`]).
    warming: Arc<std::sync::atomic::AtomicBool>,
    config: QueryConfig,
    settle: Arc<Settle>,
    metrics: QueryMetrics,
    /// `None` only while dropping; see [`Drop`].
    runtime: Option<Runtime>,
}

impl Session {
    /// Starts the query runtime; the context is built by the first query.
    pub fn new(
        catalog: Catalog,
        settle: Arc<Settle>,
        config: QueryConfig,
    ) -> Result<Self, QueryError> {
        let threads = config.threads.max(1);
        let ctx = LazyContext {
            built: OnceCell::new(),
            catalog,
            threads,
            pool_bytes: usize::try_from(config.memory_limit.as_u64()).unwrap_or(usize::MAX),
            function_output: usize::try_from(config.max_function_output.as_u64())
                .unwrap_or(usize::MAX),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("seam-query")
            .enable_all()
            .build()
            .map_err(|e| QueryError::Internal(format!("starting the query runtime: {e}")))?;
        Ok(Self {
            ctx: Arc::new(ctx),
            warming: Default::default(),
            config,
            settle,
            metrics: QueryMetrics::default(),
            runtime: Some(runtime),
        })
    }

    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    pub fn metrics(&self) -> &QueryMetrics {
        &self.metrics
    }

    /// Waits until correlation has taken in every write acknowledged
    /// before now (at once, unless a seal is capturing its state), within
    /// the query's time limit.
    pub async fn settled(&self) -> Result<(), QueryError> {
        tokio::time::timeout(self.config.timeout, self.settle.settled())
            .await
            .map_err(|_| QueryError::Timeout(self.config.timeout))
    }

    /// Runs one read-only SQL statement.
    pub async fn sql(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let sql = sql.to_owned();
        let limit = self.config.memory_limit;
        self.run(move |ctx| async move {
            let plan = ctx
                .state()
                .create_logical_plan(&sql)
                .await
                .map_err(df_error(limit))?;
            sandbox::check_read_only(&plan)?;
            ctx.execute_logical_plan(plan)
                .await
                .map_err(df_error(limit))
        })
        .await
    }

    /// Runs the frame `plan` builds with DataFusion's API, as [`Session::run`]
    /// does, its errors read the way the API reports them.
    pub async fn frame<F, Fut>(&self, plan: F) -> Result<QueryResult, QueryError>
    where
        F: FnOnce(SessionContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<DataFrame, DataFusionError>> + Send + 'static,
    {
        let limit = self.config.memory_limit;
        self.run(move |ctx| async move { plan(ctx).await.map_err(df_error(limit)) })
            .await
    }

    /// The rows `lookup` names, sorted, within the time limit and the
    /// result caps: one scan of its table, not planned from SQL (see
    /// [`crate::lookup`]).
    pub async fn lookup(&self, lookup: Lookup) -> Result<QueryResult, QueryError> {
        let caps = self.caps();
        self.execute(
            |ctx| async move { Ok(ctx) },
            move |ctx| async move {
                let scan = lookup.start(&ctx).await.map_err(df_error(caps.memory))?;
                let (predicate, stream) = (scan.predicate, scan.stream);
                let found =
                    collect_kept(stream, caps, |b| crate::lookup::keep(&predicate, &b)).await?;
                let sorted = crate::lookup::sorted(&found.schema, &found.batches, lookup.order)
                    .map_err(df_error(caps.memory))?;
                let batches = if sorted.num_rows() == 0 {
                    Vec::new()
                } else {
                    vec![sorted]
                };
                Ok(QueryResult {
                    schema: found.schema,
                    batches,
                })
            },
        )
        .await
    }

    fn caps(&self) -> Caps {
        Caps {
            rows: self.config.max_result_rows,
            bytes: self.config.max_result_bytes,
            memory: self.config.memory_limit,
        }
    }

    /// Once a query has built the context, reads ahead, in the
    /// background, what lookups in sealed files not read yet need (files
    /// sealed or compacted since, or every file after a restart), one
    /// read-ahead at a time. Reading nothing new costs a look at each
    /// table's file list.
    fn warm(&self) {
        use std::sync::atomic::Ordering;
        if self.ctx.built.get().is_none() || self.warming.swap(true, Ordering::AcqRel) {
            return;
        }
        let (lazy, warming) = (self.ctx.clone(), self.warming.clone());
        self.runtime().spawn(async move {
            if let Some(ctx) = lazy.built.get()
                && let Err(e) = lazy.catalog.warm(&ctx.runtime_env()).await
            {
                // A file compacted away meanwhile; a file that cannot be
                // read fails the queries that read it, with its name.
                tracing::debug!(error = %e, "reading sealed files ahead of lookups");
            }
            warming.store(false, Ordering::Release);
        });
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the session")
    }

    /// Plans and executes on the query runtime, within the time limit and
    /// the result caps.
    pub async fn run<F, Fut>(&self, plan: F) -> Result<QueryResult, QueryError>
    where
        F: FnOnce(SessionContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<DataFrame, QueryError>> + Send + 'static,
    {
        let caps = self.caps();
        let result = self.execute(plan, move |frame| collect(frame, caps)).await;
        if let Ok(result) = &result {
            tracing::debug!(rows = result.num_rows(), "query result");
        }
        result
    }

    /// Plans and executes a frame, folding its batches into `init` with
    /// `step` as they stream: what a report merges never has to be held
    /// whole, so the result caps do not apply; the time and memory limits
    /// do.
    pub async fn fold<F, Fut, T, G>(&self, plan: F, init: T, mut step: G) -> Result<T, QueryError>
    where
        F: FnOnce(SessionContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<DataFrame, DataFusionError>> + Send + 'static,
        T: Send + 'static,
        G: FnMut(&mut T, RecordBatch) -> Result<(), QueryError> + Send + 'static,
    {
        let limit = self.config.memory_limit;
        self.execute(
            move |ctx| async move { plan(ctx).await.map_err(df_error(limit)) },
            move |frame| async move {
                let mut stream = frame.execute_stream().await.map_err(df_error(limit))?;
                let mut acc = init;
                while let Some(batch) = stream.next().await {
                    step(&mut acc, batch.map_err(df_error(limit))?)?;
                }
                Ok(acc)
            },
        )
        .await
    }

    /// Runs `plan` and hands its frame to `consume` on the query runtime,
    /// within the time limit.
    async fn execute<F, Fut, P, C, CFut, T>(&self, plan: F, consume: C) -> Result<T, QueryError>
    where
        F: FnOnce(SessionContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<P, QueryError>> + Send + 'static,
        P: Send + 'static,
        C: FnOnce(P) -> CFut + Send + 'static,
        CFut: Future<Output = Result<T, QueryError>> + Send + 'static,
        T: Send + 'static,
    {
        self.settled().await?;
        let ctx = self.ctx.clone();
        let started = Instant::now();
        let mut task = self.runtime().spawn(async move {
            let ctx = ctx.get().await?;
            let frame = plan(ctx).await?;
            consume(frame).await
        });
        let outcome = match tokio::time::timeout(self.config.timeout, &mut task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) if join.is_panic() => {
                let panic = join.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(QueryError::Internal(format!("query panicked: {message}")))
            }
            Ok(Err(_)) => Err(QueryError::Internal("query task was cancelled".into())),
            Err(_) => {
                // Dropping the plan's streams stops its operators at their
                // next yield; DataFusion's own tasks are aborted with them.
                task.abort();
                Err(QueryError::Timeout(self.config.timeout))
            }
        };
        let elapsed = started.elapsed();
        self.warm();
        self.metrics.observe(
            match &outcome {
                Ok(_) => "ok",
                Err(QueryError::Internal(_)) => "failed",
                Err(_) => "refused",
            },
            elapsed.as_secs_f64(),
        );
        let elapsed_ms = elapsed.as_millis() as u64;
        match &outcome {
            Ok(_) => tracing::debug!(elapsed_ms, "query finished"),
            Err(QueryError::Internal(error)) => tracing::error!(elapsed_ms, %error, "query failed"),
            Err(error) => tracing::info!(elapsed_ms, %error, "query refused or stopped"),
        }
        outcome
    }
}

impl Drop for Session {
    /// Shuts the query runtime down without waiting, which is also allowed
    /// when the session is dropped inside another runtime.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

pub(crate) fn df_error(memory_limit: ByteSize) -> impl Fn(DataFusionError) -> QueryError {
    move |err| QueryError::from_datafusion(err, memory_limit)
}

/// What one result may hold, and the memory limit for error messages.
#[derive(Debug, Clone, Copy)]
struct Caps {
    rows: usize,
    bytes: ByteSize,
    memory: ByteSize,
}

/// Streams the frame's batches, stopping (and so cancelling the rest of
/// the plan) as soon as a cap is passed.
async fn collect(frame: DataFrame, caps: Caps) -> Result<QueryResult, QueryError> {
    let stream = frame
        .execute_stream()
        .await
        .map_err(df_error(caps.memory))?;
    collect_kept(stream, caps, Ok).await
}

/// [`collect`] of the rows `keep` keeps of each batch of `stream`.
async fn collect_kept(
    mut stream: SendableRecordBatchStream,
    caps: Caps,
    keep: impl Fn(RecordBatch) -> Result<RecordBatch, DataFusionError>,
) -> Result<QueryResult, QueryError> {
    let schema = stream.schema();
    let mut batches = Vec::new();
    let (mut rows, mut bytes) = (0usize, 0u64);
    while let Some(batch) = stream.next().await {
        let batch = batch.and_then(&keep).map_err(df_error(caps.memory))?;
        rows += batch.num_rows();
        if rows > caps.rows {
            return Err(QueryError::ResultTooLarge(format!("{} rows", caps.rows)));
        }
        bytes += batch_bytes(&batch);
        if bytes > caps.bytes.as_u64() {
            return Err(QueryError::ResultTooLarge(
                caps.bytes.display().iec().to_string(),
            ));
        }
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    Ok(QueryResult { schema, batches })
}

/// Bytes the rows of `batch` occupy; a slice of a larger batch counts only
/// its own rows, so `LIMIT 10` over a large segment stays small.
fn batch_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size()) as u64
        })
        .sum()
}
