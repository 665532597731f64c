//! Normalization: one OTLP span, with its resource and scope, becomes one
//! [`SpanRow`] of Seam's unified model (docs/contract.md §4).
//!
//! This is a pure function of its inputs, so it is tested with properties
//! rather than fixtures, and fuzzed. Resource-level work (platform, service,
//! instance, attribute flattening) happens once per resource in
//! [`ResourceContext`], not once per span: a request usually carries
//! hundreds of spans of one resource.

pub mod attributes;
pub mod family;
pub mod nesting;
pub mod semconv;
pub mod transport;

use std::borrow::Cow;

use seam_model::id::IdError;
use seam_model::{
    Attributes, ColdStartSource, ColdStartType, EventRow, LinkRow, Platform, SpanId, SpanKind,
    SpanRow, StatusCode, TraceId,
};

use crate::view::{KeyValue, Scope, Span};

/// Why one span was refused; the rest of its request is still accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("invalid trace_id: {0}")]
    TraceId(IdError),
    #[error("invalid span_id: {0}")]
    SpanId(IdError),
    #[error("invalid parent_span_id: {0}")]
    ParentSpanId(IdError),
    #[error("end_time is {by_ns} ns before start_time, beyond the {tolerance_ns} ns tolerance")]
    EndBeforeStart { by_ns: i64, tolerance_ns: i64 },
    #[error("the request has more than {0} spans (limits.max_spans_per_request)")]
    TooManySpans(usize),
    #[error(
        "the request's rows would take more than {} once each span carries its resource (limits.max_request_memory)",
        .0.display().iec()
    )]
    RequestTooLarge(bytesize::ByteSize),
}

/// Knobs of normalization that come from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// How far a span's end may precede its start (clock adjustments inside
    /// one process happen) before the span is refused as corrupt. Within the
    /// tolerance it is kept with duration 0.
    pub end_before_start_tolerance_ns: i64,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            end_before_start_tolerance_ns: 1_000_000_000,
        }
    }
}

/// What every span of one resource shares, derived once.
#[derive(Debug)]
pub struct ResourceContext<'a> {
    pub attributes: Attributes<'a>,
    pub service_name: Cow<'a, str>,
    pub platform: Platform,
    pub instance: Option<Cow<'a, str>>,
    /// How the platform started this function instance, when it says.
    pub initialization_type: Option<Cow<'a, str>>,
}

impl<'a> ResourceContext<'a> {
    /// `raw` is the resource's attributes (empty when it has none).
    pub fn new(raw: &[KeyValue<'a>]) -> Self {
        Self {
            attributes: attributes::flatten(raw),
            service_name: service_name(raw),
            platform: platform(raw),
            instance: first(raw, semconv::INSTANCE),
            initialization_type: first(raw, semconv::INITIALIZATION_TYPE),
        }
    }
}

/// The instrumentation scope's identity, shared by its spans.
#[derive(Debug, Default)]
pub struct ScopeContext<'a> {
    pub name: &'a str,
    pub version: &'a str,
}

impl<'a> ScopeContext<'a> {
    pub fn new(scope: Option<&Scope<'a>>) -> Self {
        scope.map_or_else(Self::default, |s| Self {
            name: s.name,
            version: s.version,
        })
    }
}

/// `service.name`, else `faas.name`, else `unknown_service`. An SDK's
/// placeholder (`unknown_service:python`) loses to a real function name.
fn service_name<'a>(raw: &[KeyValue<'a>]) -> Cow<'a, str> {
    let service = attributes::get(raw, semconv::SERVICE_NAME);
    match service {
        Some(s) if !s.starts_with("unknown_service") => s,
        other => attributes::get(raw, semconv::FAAS_NAME)
            .or(other)
            .unwrap_or(Cow::Borrowed("unknown_service")),
    }
}

/// docs/contract.md §4: an explicit `cloud.platform` decides; otherwise the presence of
/// `k8s.*`, then `faas.*`, then `container.*`, then `host.*` attributes.
fn platform(raw: &[KeyValue<'_>]) -> Platform {
    if let Some(cloud) = attributes::get(raw, semconv::CLOUD_PLATFORM) {
        let cloud = cloud.as_ref();
        if semconv::KUBERNETES_PLATFORMS.contains(&cloud) {
            return Platform::Kubernetes;
        }
        if semconv::FAAS_PLATFORMS.contains(&cloud) {
            return Platform::Faas;
        }
        if semconv::CONTAINER_PLATFORMS.contains(&cloud) {
            return Platform::Container;
        }
        if semconv::HOST_PLATFORMS.contains(&cloud) {
            return Platform::Host;
        }
    }
    let has_prefix = |prefix: &str| raw.iter().any(|kv| kv.key.starts_with(prefix));
    if has_prefix("k8s.") {
        Platform::Kubernetes
    } else if has_prefix("faas.") {
        Platform::Faas
    } else if has_prefix("container.") {
        Platform::Container
    } else if has_prefix("host.") {
        Platform::Host
    } else {
        Platform::Unknown
    }
}

fn first<'a>(raw: &[KeyValue<'a>], keys: &[&str]) -> Option<Cow<'a, str>> {
    keys.iter().find_map(|k| attributes::get(raw, k))
}

/// Nanoseconds as OTLP sends them (u64) to Arrow's i64, clamping the far future.
fn nanos(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// Marks a span that runs inside an invocation of its instance
/// ([`nesting`]): not an invocation of its own, never cold itself.
pub fn mark_nested(row: &mut SpanRow<'_>) {
    row.cold_start = Some(false);
    row.cold_start_type = None;
    row.cold_start_source = Some(ColdStartSource::InInvocation);
}

/// Normalizes one span. Invalid links (bad ids) are dropped from the row
/// and counted in `dropped_links` rather than refusing the whole span: the
/// span itself is still good evidence.
pub fn normalize<'a>(
    span: &Span<'a>,
    resource: &'a ResourceContext<'a>,
    scope: &ScopeContext<'a>,
    rules: Rules,
    dropped_links: &mut u64,
) -> Result<SpanRow<'a>, Rejection> {
    let trace_id = TraceId::from_bytes(span.trace_id).map_err(Rejection::TraceId)?;
    let span_id = SpanId::from_bytes(span.span_id).map_err(Rejection::SpanId)?;
    let parent_span_id = match span.parent_span_id {
        [] => None,
        // All zeroes is how some exporters spell "no parent".
        bytes if bytes.iter().all(|b| *b == 0) && bytes.len() == SpanId::LEN => None,
        bytes => Some(SpanId::from_bytes(bytes).map_err(Rejection::ParentSpanId)?),
    };
    let start = nanos(span.start_time_unix_nano);
    let end = nanos(span.end_time_unix_nano);
    if end < start && start - end > rules.end_before_start_tolerance_ns {
        return Err(Rejection::EndBeforeStart {
            by_ns: start - end,
            tolerance_ns: rules.end_before_start_tolerance_ns,
        });
    }

    let attrs = span.attributes.as_slice();
    // One pass over the keys instead of a dozen lookups that find nothing.
    let conventional = attrs.iter().any(|kv| semconv::may_be_conventional(kv.key));
    let lookup = |keys: &[&str]| {
        if conventional {
            first(attrs, keys)
        } else {
            None
        }
    };
    let (status_code, status_message) = span
        .status
        .as_ref()
        .map_or((StatusCode::Unset, Cow::Borrowed("")), |s| {
            (StatusCode::from_otlp(s.code), Cow::Borrowed(s.message))
        });
    let cold_start = conventional
        .then(|| attributes::get_bool(attrs, semconv::FAAS_COLDSTART))
        .flatten();
    // Only functions have an initialization type; other spans are not
    // searched for one unless they say they were cold.
    let initialization_type = (resource.platform == Platform::Faas || cold_start == Some(true))
        .then(|| {
            lookup(semconv::INITIALIZATION_TYPE)
                .or_else(|| resource.initialization_type.clone())
                .and_then(|t| semconv::initialization_type(&t))
        })
        .flatten();

    let links = span
        .links
        .iter()
        .filter_map(|l| {
            let ids = TraceId::from_bytes(l.trace_id)
                .and_then(|t| SpanId::from_bytes(l.span_id).map(|s| (t, s)));
            match ids {
                Ok((trace_id, span_id)) => Some(LinkRow {
                    trace_id,
                    span_id,
                    trace_state: Cow::Borrowed(l.trace_state),
                    attributes: attributes::flatten(&l.attributes),
                }),
                Err(_) => {
                    *dropped_links += 1;
                    None
                }
            }
        })
        .collect();
    let events = span
        .events
        .iter()
        .map(|e| EventRow {
            time_unix_nano: nanos(e.time_unix_nano),
            name: Cow::Borrowed(e.name),
            attributes: attributes::flatten(&e.attributes),
        })
        .collect();

    Ok(SpanRow {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: Cow::Borrowed(span.trace_state),
        name: Cow::Borrowed(span.name),
        kind: SpanKind::from_otlp(span.kind),
        service_name: resource.service_name.clone(),
        platform: resource.platform,
        instance: resource.instance.clone(),
        start_time_unix_nano: start,
        end_time_unix_nano: end.max(start),
        status_code,
        status_message,
        cold_start,
        // Only the span's own flag is known here; init spans and the
        // first-invocation heuristic need other spans and come later.
        cold_start_type: (cold_start == Some(true))
            .then(|| initialization_type.unwrap_or(ColdStartType::OnDemand)),
        init_duration_ns: None,
        cold_start_source: (cold_start == Some(true)).then_some(ColdStartSource::Attribute),
        initialization_type,
        transport: false,
        messaging_system: lookup(semconv::MESSAGING_SYSTEM)
            .map(|s| Cow::Owned(semconv::canonical_messaging_system(&s))),
        messaging_operation: lookup(semconv::MESSAGING_OPERATION)
            .map(|s| Cow::Owned(semconv::canonical_messaging_operation(&s))),
        messaging_destination: lookup(semconv::MESSAGING_DESTINATION)
            .filter(|d| !semconv::is_event_source(d)),
        messaging_message_id: lookup(semconv::MESSAGING_MESSAGE_ID),
        faas_trigger: lookup(semconv::FAAS_TRIGGER),
        faas_invocation_id: lookup(semconv::FAAS_INVOCATION_ID),
        scope_name: Cow::Borrowed(scope.name),
        scope_version: Cow::Borrowed(scope.version),
        attributes: attributes::flatten(attrs),
        resource_attributes: &resource.attributes,
        links,
        events,
    })
}

#[cfg(test)]
mod tests;
