//! `seam serve`: binds the three listeners, wires receivers → pipeline →
//! store ← query engine ← API, and runs until SIGINT or SIGTERM.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use seam_collector::Pipeline;
use seam_model::schema::{col, spans_schema};
use seam_query::{ApiState, QueryEngine, Readiness};
use seam_store::HotTable;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::cli::ServeArgs;
use crate::config::Config;

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
    runtime.block_on(serve(config))
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

async fn serve(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;

    let spans = Arc::new(HotTable::new(spans_schema(), col::START_TIME));
    let pipeline = Arc::new(Pipeline::new(spans.clone(), config.receiver.clone()));
    let engine = Arc::new(
        QueryEngine::new(spans.clone(), config.query.clone())
            .context("starting the query engine")?,
    );
    let readiness = Readiness::default();

    let grpc = bind("OTLP/gRPC", &config.grpc_listen).await?;
    let http = bind("OTLP/HTTP", &config.http_listen).await?;
    let api = bind("API", &config.api_listen).await?;
    info!(
        grpc = %grpc.local_addr()?,
        http = %http.local_addr()?,
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

    let grpc_task = tokio::spawn(seam_collector::serve_grpc(
        grpc,
        pipeline.clone(),
        stopped(),
    ));
    let http_task = tokio::spawn(seam_collector::serve_http(
        http,
        seam_collector::http_router(pipeline),
        stopped(),
    ));
    let api_router = seam_query::api_router(ApiState::new(engine, readiness.clone()));
    let api_task = tokio::spawn(serve_api(api, api_router, stopped()));
    readiness.set_ready();

    shutdown_signal().await;
    info!("shutting down");
    let _ = stop_tx.send(true);
    let (g, h, a) = tokio::join!(grpc_task, http_task, api_task);
    g.context("gRPC receiver task")?.context("gRPC receiver")?;
    h.context("HTTP receiver task")?.context("HTTP receiver")?;
    a.context("API task")?.context("API server")?;
    info!("stopped");
    Ok(())
}

async fn serve_api(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
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
