//! The endpoints the web explorer reads besides search and lookups, and
//! the explorer itself: its files, and `index.html` for its client-side
//! routes.
//!
//! ```text
//!  GET /api/v1/services?start=&end=                        → {"services": [{name, platform, cloud_platform, spans}]}
//!  GET /api/v1/services/{service}/operations?start=&end=   → {"operations": [{name, kind, spans}]}
//!  GET /api/v1/boundaries/edge?producer_service=&consumer_service=&system=&destination=&start=&end=&limit=
//!                                                          → {"buckets": [{le_ns, count}], "slowest": [boundary...]}
//!  GET /api/v1/cold-starts/timeline?function=&start=&end=  → {"minutes": [{minute_unix_nano, invocations, cold_starts}]}
//!  GET /api/v1/orphans?start=&end=&limit=                  → {"orphans": [...]}
//!  GET /anything-else                                      → the explorer (its file, or index.html)
//! ```

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::api::ApiState;
use crate::error::AppError;
use crate::reports::TimeWindow;
use crate::reports::explorer::{
    EdgeDetailJson, EdgeFilter, MinuteJson, OperationJson, OrphanJson, ServiceJson,
};

/// The explorer's built files by path (`index.html`, `assets/…`); the
/// binary embeds them.
pub type UiFiles = Arc<dyn Fn(&str) -> Option<&'static [u8]> + Send + Sync>;

/// Takes the named parameters out of `pairs`, leaving `start` and `end`
/// (and anything unknown, which [`TimeWindow::parse`] refuses by name).
fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Result<Option<String>, AppError> {
    let mut found = None;
    let mut err = None;
    pairs.retain(|(k, v)| {
        if k != name {
            return true;
        }
        if found.is_some() {
            err = Some(AppError::bad_request(format!(
                "parameter '{name}' is given more than once"
            )));
        }
        found = Some(v.clone());
        false
    });
    match err {
        Some(e) => Err(e),
        None => Ok(found.filter(|v| !v.is_empty())),
    }
}

fn pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, AppError> {
    let Query(pairs) = query.map_err(|e| AppError::bad_request(e.body_text()))?;
    Ok(pairs)
}

fn window(pairs: &[(String, String)]) -> Result<TimeWindow, AppError> {
    TimeWindow::parse(pairs).map_err(|e| AppError::bad_request(e.to_string()))
}

fn limit(raw: Option<String>, default: usize, max: usize) -> Result<usize, AppError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(AppError::bad_request(format!(
            "invalid value '{raw}' for parameter 'limit': expected an integer from 1 to {max}"
        ))),
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct ServicesResponse {
    services: Vec<ServiceJson>,
}

pub(crate) async fn services(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<ServicesResponse>, AppError> {
    let window = window(&pairs(query)?)?;
    Ok(Json(ServicesResponse {
        services: state.engine().services(window).await?,
    }))
}

#[derive(Debug, Serialize)]
pub(crate) struct OperationsResponse {
    operations: Vec<OperationJson>,
}

pub(crate) async fn operations(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<OperationsResponse>, AppError> {
    let Path(service) = path.map_err(|e| AppError::bad_request(e.body_text()))?;
    let window = window(&pairs(query)?)?;
    Ok(Json(OperationsResponse {
        operations: state.engine().operations(&service, window).await?,
    }))
}

pub(crate) async fn edge(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<EdgeDetailJson>, AppError> {
    let mut pairs = pairs(query)?;
    let required = |v: Option<String>, name: &str| {
        v.ok_or_else(|| AppError::bad_request(format!("parameter '{name}' is required")))
    };
    let edge = EdgeFilter {
        producer_service: required(take(&mut pairs, "producer_service")?, "producer_service")?,
        consumer_service: required(take(&mut pairs, "consumer_service")?, "consumer_service")?,
        system: take(&mut pairs, "system")?,
        destination: take(&mut pairs, "destination")?,
    };
    let slowest = limit(take(&mut pairs, "limit")?, 10, 100)?;
    let window = window(&pairs)?;
    Ok(Json(
        state.engine().edge_detail(&edge, window, slowest).await?,
    ))
}

#[derive(Debug, Serialize)]
pub(crate) struct TimelineResponse {
    minutes: Vec<MinuteJson>,
}

pub(crate) async fn cold_start_timeline(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<TimelineResponse>, AppError> {
    let mut pairs = pairs(query)?;
    let function = take(&mut pairs, "function")?;
    let window = window(&pairs)?;
    Ok(Json(TimelineResponse {
        minutes: state
            .engine()
            .cold_start_timeline(function.as_deref(), window)
            .await?,
    }))
}

#[derive(Debug, Serialize)]
pub(crate) struct OrphansResponse {
    orphans: Vec<OrphanJson>,
}

pub(crate) async fn orphans(
    State(state): State<ApiState>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<OrphansResponse>, AppError> {
    let mut pairs = pairs(query)?;
    let limit = limit(take(&mut pairs, "limit")?, 100, 1000)?;
    let window = window(&pairs)?;
    Ok(Json(OrphansResponse {
        orphans: state.engine().orphans(window, limit).await?,
    }))
}

/// Whether `path` belongs to the API (JSON answers, the API's token)
/// rather than to the explorer's files.
pub(crate) fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path == "/metrics"
}

/// The explorer's file at `path`, or its `index.html` for a client-side
/// route (`/traces/…`, `/flows/…`, `/search`); a missing file under
/// `/assets/` is a 404, not the page, so a stale bundle fails loudly.
pub(crate) fn ui_response(files: &UiFiles, method: &Method, uri: &Uri) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = uri.path().trim_start_matches('/');
    if let Some(body) = (!path.is_empty()).then(|| files(path)).flatten() {
        let immutable = path.starts_with("assets/");
        return Some(file(path, body, immutable));
    }
    if path.starts_with("assets/") {
        return Some((StatusCode::NOT_FOUND, "no such file").into_response());
    }
    files("index.html").map(|body| file("index.html", body, false))
}

fn file(path: &str, body: &'static [u8], immutable: bool) -> Response {
    let content_type = match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    };
    // Bundle files carry a content hash in their names: cache them for
    // good. The page itself must be fetched again to find new hashes.
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> UiFiles {
        Arc::new(|path: &str| match path {
            "index.html" => Some(b"<html>app</html>".as_slice()),
            "assets/index-abc.js" => Some(b"js".as_slice()),
            _ => None,
        })
    }

    fn get(path: &str) -> Option<Response> {
        ui_response(&files(), &Method::GET, &path.parse().unwrap())
    }

    #[test]
    fn client_routes_get_the_page_and_assets_their_type() {
        for route in [
            "/",
            "/search",
            "/traces/0af7651916cd43dd8448eb211c80319c",
            "/flows/x?span=1",
        ] {
            let r = get(route).unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{route}");
            assert_eq!(
                r.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        }
        let js = get("/assets/index-abc.js").unwrap();
        assert_eq!(
            js.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            js.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_eq!(
            get("/assets/gone.js").unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert!(ui_response(&files(), &Method::POST, &"/search".parse().unwrap()).is_none());
    }

    #[test]
    fn api_paths_are_told_apart() {
        assert!(is_api("/api/v1/nothing"));
        assert!(is_api("/api/services"));
        assert!(is_api("/metrics"));
        assert!(!is_api("/apis"));
        assert!(!is_api("/traces/abc"));
    }

    #[test]
    fn parameters_are_taken_once() {
        let mut pairs = vec![
            ("function".to_owned(), "f".to_owned()),
            ("start".to_owned(), "1".to_owned()),
        ];
        assert_eq!(take(&mut pairs, "function").unwrap().as_deref(), Some("f"));
        assert_eq!(pairs, vec![("start".to_owned(), "1".to_owned())]);
        let mut twice = vec![
            ("limit".to_owned(), "1".to_owned()),
            ("limit".to_owned(), "2".to_owned()),
        ];
        assert!(take(&mut twice, "limit").is_err());
        assert!(limit(Some("0".into()), 10, 100).is_err());
        assert_eq!(limit(None, 10, 100).unwrap(), 10);
    }
}
