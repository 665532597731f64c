//! Small builders for OTLP protobuf messages, so the scenarios read like
//! the spans they describe rather than like nested struct literals.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// An attribute value as OTLP types it.
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

pub fn kv(key: &str, value: impl Into<Value>) -> KeyValue {
    let value = match value.into() {
        Value::Str(s) => any_value::Value::StringValue(s),
        Value::Int(i) => any_value::Value::IntValue(i),
        Value::Bool(b) => any_value::Value::BoolValue(b),
    };
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// One span, built field by field.
pub struct SpanBuilder {
    span: Span,
}

pub fn span(trace: TraceId, id: SpanId, name: &str, kind: SpanKind) -> SpanBuilder {
    SpanBuilder {
        span: Span {
            trace_id: trace.to_vec(),
            span_id: id.to_vec(),
            name: name.to_owned(),
            kind: kind as i32,
            ..Default::default()
        },
    }
}

impl SpanBuilder {
    pub fn parent(mut self, parent: SpanId) -> Self {
        self.span.parent_span_id = parent.to_vec();
        self
    }

    /// Start and end, in ns since the epoch.
    pub fn time(mut self, start: u64, end: u64) -> Self {
        self.span.start_time_unix_nano = start;
        self.span.end_time_unix_nano = end.max(start);
        self
    }

    pub fn attr(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.span.attributes.push(kv(key, value));
        self
    }

    pub fn link(mut self, trace: TraceId, span: SpanId) -> Self {
        self.span.links.push(Link {
            trace_id: trace.to_vec(),
            span_id: span.to_vec(),
            ..Default::default()
        });
        self
    }

    pub fn error(mut self, message: &str) -> Self {
        self.span.status = Some(Status {
            code: status::StatusCode::Error as i32,
            message: message.to_owned(),
        });
        self
    }

    pub fn build(self) -> Span {
        self.span
    }
}

/// One export request: the spans of one service, as its SDK sends them.
pub fn request(
    resource: Vec<KeyValue>,
    scope: &str,
    spans: Vec<Span>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: scope.to_owned(),
                    version: "1.0.0".to_owned(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
