//! `seam serve`: binds the three listeners, wires receivers → pipeline →
//! store ← query engine ← API, and runs until SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use seam_collector::{IngestError, MemoryGauge, Pipeline};
use seam_correlate::Correlator;
use seam_model::tables::{
    self, BOUNDARIES, EDGE_ROLLUPS, FUNCTION_ROLLUPS, OPERATION_ROLLUPS, ORPHANS, SPANS, TRACES,
};
use seam_query::{ApiState, Correlation, QueryEngine, Readiness};
use seam_store::{Opened, Replay, Store, SyncPolicy, Wal};
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::supervise::Tasks;
use crate::tls::Listener;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    if args.print_config {
        print!("{}", config.to_yaml()?);
        return Ok(());
    }
    init_logging();
    crate::allocator::small_pages();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("seam")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, args.demo))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEAM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: the `listening` line must stay parseable
    // when stderr is a pipe or a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

async fn bind(what: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} listener to {addr}"))
}

/// The correlation window in demo mode: short enough that the demo's lost
/// message and broken consumer show up in `orphans` while a new user is
/// still looking, long enough for every hop the demo makes.
const DEMO_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    if demo && config.correlation.window > DEMO_WINDOW {
        info!(
            window = %humantime::format_duration(DEMO_WINDOW),
            "demo: shortening correlation.window so orphans and lost messages show up quickly"
        );
        config.correlation.window = DEMO_WINDOW;
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    let memory = Arc::new(MemoryGauge::default());
    match MemoryGauge::sample_rss() {
        Some(rss) => memory.set(rss),
        None => warn!(
            limit = %config.limits.memory.display().iec(),
            "resident memory cannot be read on this system (/proc/self/status): limits.memory is not enforced"
        ),
    }
    let Opened {
        store,
        replay,
        state,
    } = Store::open(
        &config.data_dir,
        config.storage.clone(),
        config.retention.clone(),
        config.wal.clone(),
        tables::all(),
    )
    .context("opening the store")?;
    let correlator = Arc::new(Correlator::new(config.correlation.clone()));
    if let Some(state) = &state {
        restore(&correlator, state);
    }
    let writer = Arc::new(
        store
            .follow(SPANS, correlator.clone())
            .context("starting the correlation stage")?,
    );
    let pipeline = Arc::new(
        Pipeline::new(writer.clone(), &store.table(SPANS), config.receiver.clone())
            .with_correlation(correlator.extractor().clone())
            .with_limits(config.limits.clone(), memory.clone()),
    );
    let replay_task = {
        let pipeline = pipeline.clone();
        tokio::task::spawn_blocking(move || recover(&pipeline, replay))
    };
    replay_task
        .await
        .context("replaying the write-ahead log")??;
    // Correlation has taken in what the log held before anything new comes.
    store.settle().settled().await;
    let correlation = Correlation {
        boundaries: store.table(BOUNDARIES),
        orphans: store.table(ORPHANS),
        traces: store.table(TRACES),
        edge_rollups: store.table(EDGE_ROLLUPS),
        function_rollups: store.table(FUNCTION_ROLLUPS),
        operation_rollups: store.table(OPERATION_ROLLUPS),
        view: correlator.view(),
        settle: store.settle(),
    };
    let engine = Arc::new(
        QueryEngine::with_correlation(store.table(SPANS), correlation, config.query.clone())
            .context("starting the query engine")?,
    );
    let registry =
        crate::metrics::registry(&pipeline, &correlator, &store, &engine, memory.clone());
    let readiness = Readiness::default();

    let tls = config.tls.load()?;
    let grpc = bind("OTLP/gRPC", &config.grpc_listen).await?;
    let http = bind("OTLP/HTTP", &config.http_listen).await?;
    let api = bind("API", &config.api_listen).await?;
    let target = seam_demo::Target {
        grpc: grpc.local_addr()?,
        http: http.local_addr()?,
    };
    info!(
        grpc = %target.grpc,
        http = %target.http,
        api = %api.local_addr()?,
        data_dir = %config.data_dir.display(),
        "listening"
    );

    let mut tasks = Tasks::default();
    let tls_for = |listener: Listener| tls.as_ref().filter(|t| t.serves(listener));
    let grpc_tls = tls_for(Listener::Grpc).map(|t| t.pem.clone());
    let stopped = tasks.stopped();
    let receiver = pipeline.clone();
    tasks.spawn("the OTLP/gRPC receiver", async move {
        Ok(seam_collector::serve_grpc(grpc, receiver, grpc_tls, stopped).await?)
    });
    let http_tls = tls_for(Listener::Http).map(|t| t.rustls.clone());
    let router = seam_collector::http_router(pipeline.clone());
    tasks.spawn(
        "the OTLP/HTTP receiver",
        serve_router(http, router, http_tls, tasks.stopped()),
    );
    let api_router = seam_query::api_router(
        ApiState::new(engine, readiness.clone())
            .with_metrics(crate::metrics::renderer(registry))
            .with_ui(crate::ui::files()),
    );
    let api_tls = tls_for(Listener::Api).map(|t| t.rustls.clone());
    tasks.spawn(
        "the API",
        serve_router(api, api_router, api_tls, tasks.stopped()),
    );
    tasks.spawn(
        "memory sampling",
        sample_memory(memory.clone(), tasks.stopped()),
    );
    let wal = store.wal().clone();
    if wal.config().sync == SyncPolicy::Interval {
        tasks.spawn("the log's sync", sync_wal(wal.clone(), tasks.stopped()));
    }
    tasks.spawn(
        "upkeep (seals, compaction, retention)",
        crate::storage::upkeep(
            writer.clone(),
            memory.clone(),
            config.limits.memory.as_u64(),
            tasks.stopped(),
        ),
    );
    {
        let writer = writer.clone();
        let stopped = tasks.stopped();
        tasks.spawn("the correlation stage", async move {
            tokio::select! {
                () = stopped => Ok(()),
                () = writer.follower_stopped() => anyhow::bail!("its thread ended"),
            }
        });
    }
    let demo_task = demo.then(|| {
        info!("demo: a simulated hybrid application is exporting to this server");
        tokio::spawn(seam_demo::run(
            target,
            seam_demo::DemoOptions::default(),
            tasks.stopped(),
        ))
    });
    readiness.set_ready();

    let failed = tasks.supervise(shutdown_signal()).await;
    match &failed {
        Some(reason) => readiness.set_failed(reason.clone()),
        None => info!("shutting down"),
    }
    let demo_stopped = async {
        if let Some(demo) = demo_task {
            match demo.await {
                Ok(Ok(stats)) => info!(
                    spans = stats.spans,
                    failures = stats.failures,
                    "demo stopped"
                ),
                Ok(Err(e)) => warn!(error = %e, "demo failed"),
                Err(e) => warn!(error = %e, "demo task failed"),
            }
        }
    };
    let (failures, ()) = tokio::join!(tasks.stop(), demo_stopped);
    for failure in &failures {
        warn!(%failure, "a stage failed while stopping");
    }
    // The receivers are closed: a last seal leaves nothing to replay. Both
    // are tried whatever the other's outcome.
    let synced = wal.sync().context("syncing the write-ahead log");
    let sealed = crate::storage::seal(&store).await;
    synced?;
    sealed?;
    if let Some(reason) = failed {
        anyhow::bail!("stopped because {reason}");
    }
    info!("stopped");
    Ok(())
}

/// Stores what the write-ahead log holds, through the same pipeline as a
/// live export (so correlation state is rebuilt too), before any receiver
/// accepts new data.
fn recover(pipeline: &Pipeline, mut replay: Replay) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (mut requests, mut spans, mut undecodable) = (0u64, 0u64, 0u64);
    for record in replay.by_ref() {
        let record = record.context("reading the write-ahead log")?;
        match pipeline.replay(&record) {
            Ok(outcome) => {
                requests += 1;
                spans += outcome.accepted;
            }
            Err(IngestError::Malformed(e)) => {
                undecodable += 1;
                warn!(error = %e, "skipping an undecodable write-ahead log record");
            }
            Err(e) => return Err(e).context("storing a request from the write-ahead log"),
        }
    }
    if requests + undecodable == 0 && replay.skipped_bytes() == 0 {
        return Ok(());
    }
    info!(
        requests,
        spans,
        undecodable,
        skipped_bytes = replay.skipped_bytes(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered from the write-ahead log"
    );
    Ok(())
}

/// Keeps the resident-memory gauge the receivers check fresh: every
/// 100 ms, so a flood of large requests is refused within a tenth of a
/// second of crossing `limits.memory`.
async fn sample_memory(
    gauge: Arc<MemoryGauge>,
    stopped: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            _ = tick.tick() => {}
        }
        if let Some(rss) = MemoryGauge::sample_rss() {
            gauge.set(rss);
        }
    }
}

/// The `interval` sync policy: syncs the log every `sync_interval`.
async fn sync_wal(wal: Arc<Wal>, stopped: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(wal.config().sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            _ = tick.tick() => {}
        }
        let wal = wal.clone();
        // A failed sync is logged by the log, which moves to a new segment.
        if let Err(e) = tokio::task::spawn_blocking(move || wal.sync()).await? {
            warn!(error = %e, "syncing the write-ahead log");
        }
    }
}

/// Installs the correlation state kept with the last seal; an unreadable
/// one is logged and the server starts with empty correlation state
/// rather than not at all (the spans themselves are unaffected).
fn restore(correlator: &Correlator, state: &[u8]) {
    match correlator.restore_bytes(state, "the correlation state of the last seal") {
        Ok(()) => {
            let stats = correlator.stats();
            info!(
                pending_halves = stats.pending_halves,
                indexed_traces = stats.indexed_traces,
                instances = stats.instances,
                "restored correlation state"
            );
        }
        Err(e) => warn!(error = %e, "ignoring the correlation state; starting with none"),
    }
}

/// Serves an HTTP router (the OTLP/HTTP receiver or the API) until
/// `shutdown`, in plain text or, with `tls`, TLS only.
async fn serve_router(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Some(tls) = tls else {
        return Ok(axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?);
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    Ok(axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(router.into_make_service())
        .await?)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
