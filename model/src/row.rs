//! One normalized span, ready to be appended as a row.
//!
//! Strings borrow from the decoded request where they can ([`Cow`]), so
//! normalization copies a string once: into the Arrow builder.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::id::{SpanId, TraceId};

/// Attributes flattened to string values, in the order they arrived.
///
/// Non-string OTLP values are rendered as text (integers in decimal, booleans
/// as `true`/`false`, arrays and maps as JSON, bytes as base64) so that
/// `attributes['key']` is one SQL type whatever the sender chose.
pub type Attributes<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// OTLP span kind, stored lowercase as the JSON API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Maps the OTLP enum value; unknown values read as unspecified.
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    /// The OTLP enum value, for answering in OTLP shapes.
    pub fn to_otlp(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Internal => 1,
            Self::Server => 2,
            Self::Client => 3,
            Self::Producer => 4,
            Self::Consumer => 5,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Unspecified,
            Self::Internal,
            Self::Server,
            Self::Client,
            Self::Producer,
            Self::Consumer,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// OTLP status code, stored as `UNSET`, `OK` or `ERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn from_otlp(value: i32) -> Self {
        match value {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "UNSET",
            Self::Ok => "OK",
            Self::Error => "ERROR",
        }
    }
}

/// Where a span ran, derived from its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Platform {
    Kubernetes,
    Faas,
    Container,
    Host,
    #[default]
    Unknown,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kubernetes => "kubernetes",
            Self::Faas => "faas",
            Self::Container => "container",
            Self::Host => "host",
            Self::Unknown => "unknown",
        }
    }
}

/// Why an invocation was cold; only `OnDemand` made a user wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColdStartType {
    OnDemand,
    Proactive,
    Provisioned,
    Snapstart,
}

impl ColdStartType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnDemand => "on_demand",
            Self::Proactive => "proactive",
            Self::Provisioned => "provisioned",
            Self::Snapstart => "snapstart",
        }
    }
}

/// Which rule called an invocation cold: users trust a flag more when they
/// can see whether the span said so or Seam inferred it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColdStartSource {
    /// The span's own `faas.coldstart` attribute.
    Attribute,
    /// An initialisation span ran on the instance just before.
    InitSpan,
    /// Heuristic: the first invocation seen from a new function instance.
    FirstInvocation,
    /// Heuristic: the first request served by a new Kubernetes pod.
    PodFirstRequest,
    /// Not an invocation of its own: the span runs inside an enclosing
    /// invocation of the same instance (a Lambda's SQS `process` span
    /// under its invocation span), which carries the verdict.
    InInvocation,
}

impl ColdStartSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attribute => "attribute",
            Self::InitSpan => "init_span",
            Self::FirstInvocation => "first_invocation",
            Self::PodFirstRequest => "pod_first_request",
            Self::InInvocation => "in_invocation",
        }
    }
}

/// A span link: a reference to another span, often in another trace.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: Cow<'a, str>,
    pub attributes: Attributes<'a>,
}

/// A timestamped event inside a span (exceptions, log-like annotations).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow<'a> {
    pub time_unix_nano: i64,
    pub name: Cow<'a, str>,
    pub attributes: Attributes<'a>,
}

/// One span in Seam's unified model: span, scope and resource in one row.
///
/// Times are nanoseconds since the Unix epoch, as `i64` (Arrow's timestamp
/// type); OTLP's `u64` values past year 2262 are clamped on the way in.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRow<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: Cow<'a, str>,
    pub name: Cow<'a, str>,
    pub kind: SpanKind,
    pub service_name: Cow<'a, str>,
    pub platform: Platform,
    pub instance: Option<Cow<'a, str>>,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub status_code: StatusCode,
    pub status_message: Cow<'a, str>,
    pub cold_start: Option<bool>,
    pub cold_start_type: Option<ColdStartType>,
    pub init_duration_ns: Option<i64>,
    pub cold_start_source: Option<ColdStartSource>,
    /// How the platform started the span's function instance
    /// (provisioned, snapstart), from the span or its resource, whether or
    /// not the span says it was cold. Not a column: correlation types the
    /// instance's first invocation with it.
    pub initialization_type: Option<ColdStartType>,
    /// The span is the wire call beneath a messaging span (an SDK's RPC
    /// under the instrumented send or receive): neither side of a hop
    /// itself. Not a column.
    pub transport: bool,
    pub messaging_system: Option<Cow<'a, str>>,
    pub messaging_operation: Option<Cow<'a, str>>,
    pub messaging_destination: Option<Cow<'a, str>>,
    pub messaging_message_id: Option<Cow<'a, str>>,
    pub faas_trigger: Option<Cow<'a, str>>,
    pub faas_invocation_id: Option<Cow<'a, str>>,
    pub scope_name: Cow<'a, str>,
    pub scope_version: Cow<'a, str>,
    pub attributes: Attributes<'a>,
    /// Shared by every span of one resource; borrowed, not copied per span.
    pub resource_attributes: &'a Attributes<'a>,
    pub links: Vec<LinkRow<'a>>,
    pub events: Vec<EventRow<'a>>,
}

/// Bytes of keys and values of `attributes`.
pub fn attributes_bytes(attributes: &Attributes<'_>) -> usize {
    attributes.iter().map(|(k, v)| k.len() + v.len()).sum()
}

impl<'a> SpanRow<'a> {
    /// Bytes of text the row adds to a batch (ids as hex included): what
    /// bounds a builder before any column's 32-bit offsets could overflow,
    /// and what a request's rows cost in memory, its resource counted with
    /// every span.
    pub fn text_bytes(&self) -> usize {
        let opt = |s: &Option<Cow<'_, str>>| s.as_ref().map_or(0, |s| s.len());
        64 + self.name.len()
            + self.trace_state.len()
            + self.service_name.len()
            + opt(&self.instance)
            + self.status_message.len()
            + opt(&self.messaging_system)
            + opt(&self.messaging_operation)
            + opt(&self.messaging_destination)
            + opt(&self.messaging_message_id)
            + opt(&self.faas_trigger)
            + opt(&self.faas_invocation_id)
            + self.scope_name.len()
            + self.scope_version.len()
            + attributes_bytes(&self.attributes)
            + attributes_bytes(self.resource_attributes)
            + self
                .links
                .iter()
                .map(|l| 48 + l.trace_state.len() + attributes_bytes(&l.attributes))
                .sum::<usize>()
            + self
                .events
                .iter()
                .map(|e| e.name.len() + attributes_bytes(&e.attributes))
                .sum::<usize>()
    }

    /// A span with its identity, times and resource, and every other field
    /// empty: the starting point for generated spans and test fixtures.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        start_time_unix_nano: i64,
        end_time_unix_nano: i64,
        resource_attributes: &'a Attributes<'a>,
    ) -> Self {
        Self {
            trace_id,
            span_id,
            parent_span_id: None,
            trace_state: Cow::Borrowed(""),
            name: Cow::Borrowed(""),
            kind: SpanKind::Unspecified,
            service_name: Cow::Borrowed("unknown_service"),
            platform: Platform::Unknown,
            instance: None,
            start_time_unix_nano,
            end_time_unix_nano,
            status_code: StatusCode::Unset,
            status_message: Cow::Borrowed(""),
            cold_start: None,
            cold_start_type: None,
            init_duration_ns: None,
            cold_start_source: None,
            initialization_type: None,
            transport: false,
            messaging_system: None,
            messaging_operation: None,
            messaging_destination: None,
            messaging_message_id: None,
            faas_trigger: None,
            faas_invocation_id: None,
            scope_name: Cow::Borrowed(""),
            scope_version: Cow::Borrowed(""),
            attributes: Vec::new(),
            resource_attributes,
            links: Vec::new(),
            events: Vec::new(),
        }
    }

    /// End minus start; never negative (a span that ends before it starts
    /// within the accepted tolerance is stored with duration 0).
    pub fn duration_ns(&self) -> i64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
            .max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for v in 0..=5 {
            let k = SpanKind::from_otlp(v);
            assert_eq!(k.to_otlp(), v);
            assert_eq!(SpanKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(SpanKind::from_otlp(42), SpanKind::Unspecified);
        assert_eq!(SpanKind::parse("SERVER"), Some(SpanKind::Server));
    }
}
