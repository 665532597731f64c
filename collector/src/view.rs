//! OTLP trace requests as views that borrow their strings and ids.
//!
//! prost decodes an export into owned structs: a `String` for every
//! attribute key and value, a `Vec` for every id. For the 10-attribute
//! spans SDKs send, allocating those and freeing them again was 30% of the
//! server's ingest CPU, and normalization only copies each string once more
//! into the Arrow builders. An [`Export`] borrows instead: read in place
//! from the received protobuf bytes ([`wire`]), or from a request prost
//! decoded (OTLP JSON, tests, the demo). Normalization reads only views, so
//! both paths give the same rows.

pub mod wire;

use std::borrow::Cow;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as pb_common;
use opentelemetry_proto::tonic::resource::v1 as pb_resource;
use opentelemetry_proto::tonic::trace::v1 as pb_trace;
use prost::Message;

/// One export request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Export<'a> {
    pub resource_spans: Vec<ResourceSpans<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceSpans<'a> {
    /// The resource's attributes; `None` when the message has no resource.
    pub resource: Option<Vec<KeyValue<'a>>>,
    pub scope_spans: Vec<ScopeSpans<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeSpans<'a> {
    pub scope: Option<Scope<'a>>,
    pub spans: Vec<Span<'a>>,
}

/// The instrumentation scope; its attributes are read (prost would refuse
/// them if malformed) but not stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub parent_span_id: &'a [u8],
    pub name: &'a str,
    pub kind: i32,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue<'a>>,
    pub events: Vec<Event<'a>>,
    pub links: Vec<Link<'a>>,
    pub status: Option<Status<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status<'a> {
    pub message: &'a str,
    pub code: i32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event<'a> {
    pub time_unix_nano: u64,
    pub name: &'a str,
    pub attributes: Vec<KeyValue<'a>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub attributes: Vec<KeyValue<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue<'a> {
    pub key: &'a str,
    pub value: Value<'a>,
}

/// An attribute value. Arrays and maps are rare in traces and are
/// rendered as JSON anyway, so they stay prost's structs.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// No value, or a kind this version does not know (such as the
    /// profiling signal's string-table references).
    Empty,
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    Nested(Cow<'a, pb_common::AnyValue>),
}

impl<'a> Export<'a> {
    /// Reads `bytes` in place when [`wire`] can, and with prost when it
    /// cannot (see [`wire::Unread`]); `then` sees the same view either
    /// way. Errors are prost's, so a malformed request is described the
    /// same whichever path read it.
    pub fn decode_then<R>(
        bytes: &[u8],
        then: impl FnOnce(&Export<'_>) -> R,
    ) -> Result<R, prost::DecodeError> {
        match wire::read(bytes) {
            Ok(export) => Ok(then(&export)),
            Err(wire::Unread) => {
                tracing::debug!(
                    "an export read with prost: it holds what the in-place reader leaves to it"
                );
                let decoded = ExportTraceServiceRequest::decode(bytes)?;
                Ok(then(&Export::from(&decoded)))
            }
        }
    }

    /// Every span of every resource and scope, in order.
    pub fn spans(&self) -> impl Iterator<Item = &Span<'a>> {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
    }
}

impl<'a> From<&'a ExportTraceServiceRequest> for Export<'a> {
    fn from(request: &'a ExportTraceServiceRequest) -> Self {
        Self {
            resource_spans: request.resource_spans.iter().map(Into::into).collect(),
        }
    }
}

impl<'a> From<&'a pb_trace::ResourceSpans> for ResourceSpans<'a> {
    fn from(r: &'a pb_trace::ResourceSpans) -> Self {
        Self {
            resource: r
                .resource
                .as_ref()
                .map(|r: &pb_resource::Resource| key_values(&r.attributes)),
            scope_spans: r.scope_spans.iter().map(Into::into).collect(),
        }
    }
}

impl<'a> From<&'a pb_trace::ScopeSpans> for ScopeSpans<'a> {
    fn from(s: &'a pb_trace::ScopeSpans) -> Self {
        Self {
            scope: s.scope.as_ref().map(|s| Scope {
                name: &s.name,
                version: &s.version,
            }),
            spans: s.spans.iter().map(Into::into).collect(),
        }
    }
}

impl<'a> From<&'a pb_trace::Span> for Span<'a> {
    fn from(s: &'a pb_trace::Span) -> Self {
        Self {
            trace_id: &s.trace_id,
            span_id: &s.span_id,
            trace_state: &s.trace_state,
            parent_span_id: &s.parent_span_id,
            name: &s.name,
            kind: s.kind,
            start_time_unix_nano: s.start_time_unix_nano,
            end_time_unix_nano: s.end_time_unix_nano,
            attributes: key_values(&s.attributes),
            events: s
                .events
                .iter()
                .map(|e| Event {
                    time_unix_nano: e.time_unix_nano,
                    name: &e.name,
                    attributes: key_values(&e.attributes),
                })
                .collect(),
            links: s
                .links
                .iter()
                .map(|l| Link {
                    trace_id: &l.trace_id,
                    span_id: &l.span_id,
                    trace_state: &l.trace_state,
                    attributes: key_values(&l.attributes),
                })
                .collect(),
            status: s.status.as_ref().map(|s| Status {
                message: &s.message,
                code: s.code,
            }),
        }
    }
}

/// Views of prost's key-values.
pub fn key_values(kvs: &[pb_common::KeyValue]) -> Vec<KeyValue<'_>> {
    kvs.iter()
        .map(|kv| KeyValue {
            key: &kv.key,
            value: kv.value.as_ref().map_or(Value::Empty, Value::from),
        })
        .collect()
}

impl<'a> From<&'a pb_common::AnyValue> for Value<'a> {
    fn from(v: &'a pb_common::AnyValue) -> Self {
        use pb_common::any_value::Value as V;
        match &v.value {
            Some(V::StringValue(s)) => Value::String(s),
            Some(V::BoolValue(b)) => Value::Bool(*b),
            Some(V::IntValue(i)) => Value::Int(*i),
            Some(V::DoubleValue(d)) => Value::Double(*d),
            Some(V::BytesValue(b)) => Value::Bytes(b),
            Some(V::ArrayValue(_) | V::KvlistValue(_)) => Value::Nested(Cow::Borrowed(v)),
            _ => Value::Empty,
        }
    }
}
