//! The HTTP API (docs/contract.md §6): SQL, traces, search, health.
//!
//! ```text
//!  POST /api/v1/sql                {"sql": "..."} → {"columns", "rows"} | Arrow IPC stream
//!  GET  /api/v1/traces/{trace_id}  → {"trace_id", "spans": [...]}
//!  GET  /api/v1/traces/{trace_id}/flow → {"flow_id", "trace_ids", "spans", "boundaries"}
//!  GET  /api/v1/search?…           → {"traces": [...]}
//!  GET  /api/v1/boundaries?start=&end=  → {"edges": [...]}
//!  GET  /api/v1/cold-starts?start=&end= → {"functions": [...]}
//!  GET  /api/v1/services, …/operations, /boundaries/edge, /cold-starts/timeline, /orphans
//!                                  → the explorer's lists (see [`crate::explorer_api`])
//!  GET  anything else              → the explorer, when the binary embeds it
//!  GET  /healthz                   → 200 while the process runs
//!  GET  /readyz                    → 200 once the server accepts spans, 503 before
//! ```
//!
//! Handlers only translate between HTTP and the [`QueryEngine`]; every
//! error, including axum's own rejections, leaves as an [`AppError`].

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use seam_model::{BearerTokens, TraceId};
use serde::{Deserialize, Serialize};
use tower_http::trace::TraceLayer;

use crate::engine::{FlowFacts, QueryEngine};
use crate::error::AppError;
use crate::explorer_api::{self, UiFiles};
use crate::json::{ARROW_STREAM, to_arrow_stream, to_json};
use crate::reports::TimeWindow;
use crate::reports::boundaries::EdgeJson;
use crate::reports::cold_starts::FunctionColdStarts;
use crate::reports::flows::{BoundaryJson, boundaries_from};
use crate::reports::search::{SearchParams, TraceSummary};
use crate::session::QueryResult;
use crate::span_json::{SpanJson, spans_from_batches};

/// Whether the server is ready for traffic; cloned handles share one flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<parking_lot::RwLock<Phase>>);

#[derive(Debug, Clone, Default)]
enum Phase {
    #[default]
    Starting,
    Serving,
    /// A stage stopped; the server is shutting down.
    Failed(String),
}

impl Readiness {
    pub fn set_ready(&self) {
        let mut ready = self.0.write();
        if matches!(*ready, Phase::Starting) {
            *ready = Phase::Serving;
        }
    }

    /// Not ready for good: `reason` is what `/readyz` says.
    pub fn set_failed(&self, reason: String) {
        *self.0.write() = Phase::Failed(reason);
    }

    pub fn is_ready(&self) -> bool {
        matches!(*self.0.read(), Phase::Serving)
    }
}

/// Renders the server's metrics in the OpenMetrics text format; the binary
/// supplies it, since the metrics live in stages this crate does not
/// depend on.
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    engine: Arc<QueryEngine>,
    readiness: Readiness,
    metrics: Option<MetricsRenderer>,
    ui: Option<UiFiles>,
    tokens: BearerTokens,
}

impl ApiState {
    pub fn new(engine: Arc<QueryEngine>, readiness: Readiness) -> Self {
        let tokens = BearerTokens::new(engine.config().bearer_tokens.clone());
        Self {
            engine,
            readiness,
            metrics: None,
            ui: None,
            tokens,
        }
    }

    /// Serves the web explorer's files at every path outside the API.
    pub fn with_ui(mut self, files: UiFiles) -> Self {
        self.ui = Some(files);
        self
    }

    pub(crate) fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    /// Serves `GET /metrics` with `render`.
    pub fn with_metrics(mut self, render: MetricsRenderer) -> Self {
        self.metrics = Some(render);
        self
    }
}

/// The API routes with their state applied.
pub fn api_router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/sql", post(sql))
        .route("/api/v1/traces/{trace_id}", get(trace))
        .route("/api/v1/traces/{trace_id}/flow", get(flow))
        .route("/api/v1/search", get(search))
        .route("/api/v1/boundaries", get(boundaries))
        .route("/api/v1/cold-starts", get(cold_starts))
        .route("/api/v1/services", get(explorer_api::services))
        .route(
            "/api/v1/services/{service}/operations",
            get(explorer_api::operations),
        )
        .route("/api/v1/boundaries/edge", get(explorer_api::edge))
        .route(
            "/api/v1/cold-starts/timeline",
            get(explorer_api::cold_start_timeline),
        )
        .route("/api/v1/orphans", get(explorer_api::orphans))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Lets a request in when it carries one of the API's bearer tokens (or
/// none are configured). Health probes never need one: orchestrators
/// cannot be given secrets for them. Nor do the explorer's files: they
/// hold no data, and a browser cannot send a token for a page it opens;
/// the explorer asks for the token and sends it with its API calls.
async fn authenticate(
    State(state): State<ApiState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = request.uri().path();
    let open = path == "/healthz" || path == "/readyz" || !explorer_api::is_api(path);
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if open || state.tokens.allows(presented) {
        return next.run(request).await;
    }
    let mut response = AppError::new(
        StatusCode::UNAUTHORIZED,
        "a bearer token is required: send `Authorization: Bearer <token>`",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer"),
    );
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let ready = state.readiness.0.read().clone();
    match ready {
        Phase::Serving => (StatusCode::OK, "ready").into_response(),
        Phase::Starting => (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response(),
        Phase::Failed(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stopping: {reason}"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<ApiState>) -> Result<Response, AppError> {
    let render = state
        .metrics
        .as_ref()
        .ok_or_else(|| AppError::not_found("no metrics on this server"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(),
    )
        .into_response())
}

/// API paths keep their JSON 404; every other path is the explorer's.
async fn no_route(State(state): State<ApiState>, method: Method, uri: Uri) -> Response {
    if !explorer_api::is_api(uri.path())
        && let Some(files) = &state.ui
        && let Some(response) = explorer_api::ui_response(files, &method, &uri)
    {
        return response;
    }
    AppError::not_found(format!("no route for {method} {}", uri.path())).into_response()
}

async fn wrong_method(method: Method, uri: Uri) -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed for {}", uri.path()),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

/// Runs SQL. The body is read as JSON whatever its content type says, so
/// `curl -d '{"sql": "..."}'` works without a header.
async fn sql(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request(format!(
            "invalid request body: {e}; expected {{\"sql\": \"...\"}}"
        ))
    })?;
    if request.sql.trim().is_empty() {
        return Err(AppError::bad_request("the sql field is empty"));
    }
    let result = state.engine.sql(&request.sql).await?;
    let arrow = wants_arrow(&headers);
    encode(result, arrow).await
}

fn wants_arrow(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().starts_with(ARROW_STREAM)))
}

/// Encodes off the async threads: a result near the size cap takes a
/// while to write.
async fn encode(result: QueryResult, arrow: bool) -> Result<Response, AppError> {
    let (content_type, encoded) = tokio::task::spawn_blocking(move || {
        if arrow {
            (ARROW_STREAM, to_arrow_stream(&result))
        } else {
            ("application/json", to_json(&result))
        }
    })
    .await
    .map_err(|e| {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding task failed: {e}"),
        )
    })?;
    let bytes = encoded.map_err(|e| {
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the result: {e}"),
        )
    })?;
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from(bytes)).into_response())
}

#[derive(Debug, Serialize)]
struct TraceResponse {
    trace_id: String,
    spans: Vec<SpanJson>,
}

async fn trace(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<TraceResponse>, AppError> {
    let Path(raw) = path.map_err(|e| AppError::bad_request(e.body_text()))?;
    let trace_id = parse_trace_id(&raw)?;
    let result = state.engine.trace(trace_id).await?;
    if result.num_rows() == 0 {
        return Err(AppError::not_found(format!("trace {trace_id} not found")));
    }
    let spans = spans_from_batches(&result.batches)?;
    Ok(Json(TraceResponse {
        trace_id: trace_id.to_hex(),
        spans,
    }))
}

#[derive(Debug, Serialize)]
struct FlowResponse {
    flow_id: String,
    trace_ids: Vec<String>,
    spans: Vec<SpanJson>,
    boundaries: Vec<BoundaryJson>,
}

/// The whole flow of any of its traces.
/// With `spans=false`, only its traces and boundaries: what a trace's
/// page shows of the flow around it.
async fn flow(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<FlowResponse>, AppError> {
    let Path(raw) = path.map_err(|e| AppError::bad_request(e.body_text()))?;
    let trace_id = parse_trace_id(&raw)?;
    let Query(pairs) = query.map_err(|e| AppError::bad_request(e.body_text()))?;
    let mut with_spans = true;
    for (name, value) in &pairs {
        match (name.as_str(), value.as_str()) {
            ("spans", "true") => with_spans = true,
            ("spans", "false") => with_spans = false,
            ("spans", _) => {
                return Err(AppError::bad_request(format!(
                    "invalid value '{value}' for parameter 'spans': expected true or false"
                )));
            }
            _ => return Err(AppError::bad_request(format!("unknown parameter '{name}'"))),
        }
    }
    if !with_spans {
        let flow = state.engine.flow_outline(trace_id).await?;
        return Ok(Json(FlowResponse {
            flow_id: flow.flow_id.to_hex(),
            trace_ids: flow.trace_ids.iter().map(|t| t.to_hex()).collect(),
            spans: Vec::new(),
            boundaries: boundaries_from(&flow.boundaries)?,
        }));
    }
    let Some(flow) = state.engine.flow(trace_id).await? else {
        return Err(AppError::not_found(format!("trace {trace_id} not found")));
    };
    Ok(Json(FlowResponse {
        flow_id: flow.flow_id.to_hex(),
        trace_ids: flow.trace_ids.iter().map(|t| t.to_hex()).collect(),
        spans: spans_from_batches(&flow.spans.batches)?,
        boundaries: boundaries_from(&flow.boundaries)?,
    }))
}

fn time_window(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<TimeWindow, AppError> {
    let Query(pairs) = query.map_err(|e| AppError::bad_request(e.body_text()))?;
    TimeWindow::parse(&pairs).map_err(|e| AppError::bad_request(e.to_string()))
}

#[derive(Debug, Serialize)]
struct EdgesResponse {
    edges: Vec<EdgeJson>,
}

/// Boundaries per edge (producer service, system, destination, consumer
/// service) with latency percentiles.
async fn boundaries(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<EdgesResponse>, AppError> {
    let window = time_window(query)?;
    Ok(Json(EdgesResponse {
        edges: state.engine.edges(window).await?,
    }))
}

#[derive(Debug, Serialize)]
struct ColdStartsResponse {
    functions: Vec<FunctionColdStarts>,
}

/// Cold-start rate and penalty per function.
async fn cold_starts(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ColdStartsResponse>, AppError> {
    let window = time_window(query)?;
    Ok(Json(ColdStartsResponse {
        functions: state.engine.cold_starts(window).await?,
    }))
}

/// A trace id as users paste it: 32 hex digits, either case.
fn parse_trace_id(raw: &str) -> Result<TraceId, AppError> {
    let invalid = |why: &str| AppError::bad_request(format!("invalid trace id '{raw}': {why}"));
    if raw.len() != 2 * TraceId::LEN || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("expected 32 hexadecimal characters"));
    }
    TraceId::parse_hex(raw).map_err(|e| invalid(&e.to_string()))
}

#[derive(Debug, Serialize)]
struct SearchResponse {
    traces: Vec<SearchHit>,
}

/// A search result and the flow around it.
#[derive(Debug, Serialize)]
struct SearchHit {
    #[serde(flatten)]
    summary: TraceSummary,
    #[serde(flatten)]
    flow: FlowFacts,
}

async fn search(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<SearchResponse>, AppError> {
    let Query(pairs) = query.map_err(|e| AppError::bad_request(e.body_text()))?;
    let params = SearchParams::parse(&pairs).map_err(|e| AppError::bad_request(e.to_string()))?;
    let traces = state.engine.search(&params).await?;
    let traces = traces
        .into_iter()
        .map(|summary| {
            let flow = TraceId::parse_hex(&summary.trace_id)
                .map(|id| state.engine.flow_facts(&id))
                .unwrap_or(FlowFacts {
                    flow_trace_count: 1,
                    flow_boundary_count: None,
                    flow_flagged_boundaries: None,
                });
            SearchHit { summary, flow }
        })
        .collect();
    Ok(Json(SearchResponse { traces }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_32_hex_digits_and_not_zero() {
        let id = parse_trace_id("0AF7651916CD43DD8448EB211C80319C").unwrap();
        assert_eq!(id.to_hex(), "0af7651916cd43dd8448eb211c80319c");
        for bad in [
            "",
            "0af7651916cd43dd",
            "0af7651916cd43dd8448eb211c80319c00",
            "0af7651916cd43dd8448eb211c80319g",
            "00000000000000000000000000000000",
            " af7651916cd43dd8448eb211c80319c",
        ] {
            let err = parse_trace_id(bad).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn recognizes_arrow_accept_headers() {
        let mut headers = HeaderMap::new();
        assert!(!wants_arrow(&headers));
        headers.insert(
            header::ACCEPT,
            "application/json, application/vnd.apache.arrow.stream"
                .parse()
                .unwrap(),
        );
        assert!(wants_arrow(&headers));
    }
}
