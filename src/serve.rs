//! `seam serve`: binds the three listeners, wires receivers → pipeline →
//! store ← query engine ← API, and runs until SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use seam_collector::{IngestError, MemoryGauge, Pipeline};
use seam_correlate::Correlator;
use seam_query::{ApiState, Correlation, QueryEngine, Readiness};
use seam_store::{Replay, Store, SyncPolicy, Wal};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::tls::Listener;

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    if args.print_config {
        print!("{}", config.to_yaml()?);
        return Ok(());
    }
    init_logging();
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

    let opened = Store::open(
        &config.data_dir,
        config.storage.clone(),
        config.retention.clone(),
        config.wal.clone(),
        seam_collector::store_tables(),
    )
    .context("opening the store")?;
    let store = Arc::new(opened.store);
    let spans = store.table("spans");
    let correlator = Arc::new(Correlator::new(
        config.correlation.clone(),
        store.table("boundaries"),
        store.table("orphans"),
    ));
    if let Some(state) = &opened.state {
        restore(&correlator, state);
    }
    let correlation = Correlation {
        boundaries: store.table("boundaries"),
        orphans: store.table("orphans"),
        view: correlator.view(),
    };
    let wal = store.wal().clone();
    let memory = Arc::new(MemoryGauge::default());
    memory.set(MemoryGauge::sample_rss().unwrap_or(0));
    let pipeline = Arc::new(
        Pipeline::new(spans.clone(), config.receiver.clone())
            .with_correlator(correlator.clone())
            .with_wal(wal.clone(), store.gate().clone())
            .with_limits(config.limits.clone(), memory.clone()),
    );
    recover(&pipeline, opened.replay)?;
    let engine = Arc::new(
        QueryEngine::with_correlation(spans.clone(), correlation, config.query.clone())
            .context("starting the query engine")?,
    );
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

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let tls_for = |listener: Listener| tls.as_ref().filter(|t| t.serves(listener));
    let grpc_task = tokio::spawn(seam_collector::serve_grpc(
        grpc,
        pipeline.clone(),
        tls_for(Listener::Grpc).map(|t| t.pem.clone()),
        stopped(),
    ));
    let http_task = tokio::spawn(serve_router(
        http,
        seam_collector::http_router(pipeline.clone()),
        tls_for(Listener::Http).map(|t| t.rustls.clone()),
        stopped(),
    ));
    let api_router = seam_query::api_router(ApiState::new(engine, readiness.clone()).with_metrics(
        crate::metrics::renderer(pipeline.clone(), correlator.clone(), store.clone()),
    ));
    let api_task = tokio::spawn(serve_router(
        api,
        api_router,
        tls_for(Listener::Api).map(|t| t.rustls.clone()),
        stopped(),
    ));
    let memory_task = tokio::spawn(sample_memory(memory.clone(), stopped()));
    let wal_task = (wal.config().sync == SyncPolicy::Interval)
        .then(|| tokio::spawn(sync_wal(wal.clone(), stopped())));
    let upkeep_task = tokio::spawn(crate::storage::upkeep(
        store.clone(),
        correlator.clone(),
        memory.clone(),
        config.limits.memory.as_u64(),
        stopped(),
    ));
    let demo_task = demo.then(|| {
        info!("demo: a simulated hybrid application is exporting to this server");
        tokio::spawn(seam_demo::run(
            target,
            seam_demo::DemoOptions::default(),
            stopped(),
        ))
    });
    readiness.set_ready();

    shutdown_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(true);
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
    let (g, h, a) = tokio::join!(grpc_task, http_task, api_task);
    g.context("gRPC receiver task")?.context("gRPC receiver")?;
    h.context("HTTP receiver task")?.context("HTTP receiver")?;
    a.context("API task")?.context("API server")?;
    upkeep_task.await.context("correlation upkeep task")?;
    memory_task.await.context("memory sampling task")?;
    if let Some(task) = wal_task {
        task.await.context("write-ahead log sync task")?;
    }
    wal.sync().context("syncing the write-ahead log")?;
    // The receivers are closed: a last seal leaves nothing to replay.
    crate::storage::seal(&store, &correlator).await;
    info!("stopped");
    Ok(())
}

/// Stores what the write-ahead log holds, through the same pipeline as a
/// live export (so correlation state is rebuilt too), before any receiver
/// accepts new data.
fn recover(pipeline: &Pipeline, replay: Replay) -> anyhow::Result<()> {
    if replay.records.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let (mut requests, mut spans, mut undecodable) = (0u64, 0u64, 0u64);
    for record in &replay.records {
        match pipeline.replay(record) {
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
    info!(
        requests,
        spans,
        undecodable,
        skipped_bytes = replay.skipped_bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered from the write-ahead log"
    );
    Ok(())
}

/// Keeps the resident-memory gauge the receivers check fresh: every
/// 100 ms, so a flood of large requests is refused within a tenth of a
/// second of crossing `limits.memory`.
async fn sample_memory(gauge: Arc<MemoryGauge>, stopped: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        if let Some(rss) = MemoryGauge::sample_rss() {
            gauge.set(rss);
        }
    }
}

/// The `interval` sync policy: syncs the log every `sync_interval`.
async fn sync_wal(wal: Arc<Wal>, stopped: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(wal.config().sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            _ = tick.tick() => {}
        }
        let wal = wal.clone();
        match tokio::task::spawn_blocking(move || wal.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "syncing the write-ahead log"),
            Err(e) => warn!(error = %e, "write-ahead log sync task failed"),
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
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    axum_server::from_tcp_rustls(listener.into_std()?, tls)?
        .handle(handle)
        .serve(router.into_make_service())
        .await
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
