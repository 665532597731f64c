//! What can go wrong with a query, and how each failure becomes an HTTP
//! answer. This is the one place that decides status codes:
//!
//! | error | status | why |
//! |---|---|---|
//! | [`QueryError::Invalid`] | 400 | syntax, unknown column or function, bad cast: the query must change |
//! | [`QueryError::Refused`] | 400 | DDL, DML, `COPY`, `SET`: the server is read-only |
//! | [`QueryError::Timeout`] | 400 | the query asks for more work than the time limit allows |
//! | [`QueryError::ResourcesExhausted`] | 400 | the query needs more memory than the limit |
//! | [`QueryError::ResultTooLarge`] | 400 | the answer is larger than a client should receive at once |
//! | [`QueryError::OutputTooLarge`] | 400 | one function call would build more than `query.max_function_output` |
//! | [`QueryError::Internal`] | 500 | a fault in Seam or DataFusion; details go to the log only |
//!
//! A limit error is a 400 rather than a 5xx because retrying the same query
//! cannot succeed: the user has to narrow it.

use std::time::Duration;

/// What to narrow in a SQL query that ran out of memory.
const SQL_HINT: &str = "narrow it with a time range (WHERE start_time > now() - INTERVAL '1 hour'), \
     a filter on fewer rows, or fewer groups";

/// What to narrow in a report endpoint's request.
pub const RANGE_HINT: &str = "ask for a shorter time range with 'start' and 'end'";

/// What to narrow in a search.
pub const SEARCH_HINT: &str =
    "ask for a shorter time range with 'start' and 'end', or add a filter such as 'service'";

use arrow::error::ArrowError;
use axum::Json;
use axum::response::{IntoResponse, Response};
use bytesize::ByteSize;
use datafusion::error::DataFusionError;
use http::StatusCode;
use serde_json::json;

/// Why a query produced no result.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query is wrong; the message is DataFusion's, meant for the author.
    #[error("{0}")]
    Invalid(String),
    #[error("only read-only queries are allowed: {0}")]
    Refused(String),
    #[error("query exceeded the {} time limit", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("query needs more than the {} memory limit; {hint}", .limit.display().iec())]
    ResourcesExhausted {
        limit: ByteSize,
        /// What to narrow, in the terms of what was asked (SQL or an
        /// endpoint's parameters).
        hint: &'static str,
        /// DataFusion's account of which operator ran out, for the log.
        detail: String,
    },
    #[error("result exceeds {0}; add a LIMIT or aggregate")]
    ResultTooLarge(String),
    /// A function call would build more than `query.max_function_output`.
    #[error("{0}")]
    OutputTooLarge(String),
    #[error("internal query error: {0}")]
    Internal(String),
}

impl QueryError {
    /// The same error, but for a memory limit, saying what to narrow in
    /// the terms of the request (`hint`).
    pub fn narrowed(self, hint: &'static str) -> Self {
        match self {
            Self::ResourcesExhausted { limit, detail, .. } => Self::ResourcesExhausted {
                limit,
                hint,
                detail,
            },
            other => other,
        }
    }

    /// Sorts a DataFusion error into user mistakes, limits and internal faults.
    pub(crate) fn from_datafusion(err: DataFusionError, memory_limit: ByteSize) -> Self {
        let message = err.strip_backtrace();
        let root = match err.find_root() {
            DataFusionError::Collection(errs) => {
                errs.first().map(DataFusionError::find_root).unwrap_or(&err)
            }
            root => root,
        };
        match root {
            DataFusionError::External(e) if e.is::<crate::bounded::OutputTooLarge>() => {
                Self::OutputTooLarge(e.to_string())
            }
            DataFusionError::ResourcesExhausted(detail) => Self::ResourcesExhausted {
                limit: memory_limit,
                hint: SQL_HINT,
                detail: detail.clone(),
            },
            DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
                ArrowError::MemoryError(detail) => Self::ResourcesExhausted {
                    limit: memory_limit,
                    hint: SQL_HINT,
                    detail: detail.clone(),
                },
                ArrowError::IoError(..) | ArrowError::ExternalError(_) => Self::Internal(message),
                _ => Self::Invalid(message),
            },
            DataFusionError::SQL(..)
            | DataFusionError::Plan(_)
            | DataFusionError::SchemaError(..)
            | DataFusionError::NotImplemented(_)
            | DataFusionError::Configuration(_)
            // Functions report bad arguments (a malformed regex, an
            // impossible date) as execution errors.
            | DataFusionError::Execution(_) => Self::Invalid(message),
            _ => Self::Internal(message),
        }
    }
}

/// An error on its way to the client as `{"error": "..."}`.
#[derive(Debug)]
pub struct AppError {
    status: StatusCode,
    message: String,
}

impl AppError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<QueryError> for AppError {
    fn from(err: QueryError) -> Self {
        let status = match &err {
            QueryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            QueryError::ResourcesExhausted { detail, .. } => {
                tracing::info!(detail = %detail, "query ran out of memory");
                StatusCode::BAD_REQUEST
            }
            QueryError::Invalid(_)
            | QueryError::Refused(_)
            | QueryError::Timeout(_)
            | QueryError::ResultTooLarge(_)
            | QueryError::OutputTooLarge(_) => StatusCode::BAD_REQUEST,
        };
        Self::new(status, err.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let message = if self.status.is_server_error() {
            tracing::error!(status = self.status.as_u16(), error = %self.message, "request failed");
            "internal error; the server log has the details".to_owned()
        } else {
            self.message
        };
        (self.status, Json(json!({ "error": message }))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_datafusion_errors() {
        let limit = ByteSize::mib(512);
        let plan = DataFusionError::Plan("column x not found".into());
        assert!(matches!(
            QueryError::from_datafusion(plan, limit),
            QueryError::Invalid(_)
        ));

        let oom = DataFusionError::ResourcesExhausted("no room".into()).context("while sorting");
        let err = QueryError::from_datafusion(oom, limit);
        assert!(matches!(err, QueryError::ResourcesExhausted { .. }));
        assert_eq!(
            err.to_string(),
            "query needs more than the 512.0 MiB memory limit; narrow it with a time range \
             (WHERE start_time > now() - INTERVAL '1 hour'), a filter on fewer rows, or fewer groups"
        );
        assert_eq!(
            err.narrowed(RANGE_HINT).to_string(),
            "query needs more than the 512.0 MiB memory limit; ask for a shorter time range with 'start' and 'end'"
        );

        let internal = DataFusionError::Internal("bug".into());
        assert!(matches!(
            QueryError::from_datafusion(internal, limit),
            QueryError::Internal(_)
        ));
    }

    #[test]
    fn limits_are_client_errors_and_faults_are_not() {
        let timeout = AppError::from(QueryError::Timeout(Duration::from_secs(30)));
        assert_eq!(timeout.status(), StatusCode::BAD_REQUEST);
        assert_eq!(timeout.message(), "query exceeded the 30s time limit");
        let internal = AppError::from(QueryError::Internal("x".into()));
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
