//! Spans that run inside an invocation already under way: a Lambda's SQS
//! `process` span under its invocation span, a handler's CONSUMER span
//! under the SERVER span of the same request. Instrumentations give these
//! `faas.trigger` or kind CONSUMER, so taken alone they look like
//! invocations of their own and one invocation would count twice.
//!
//! A span is nested when its parent is a span of the same function
//! instance and trace and it lies inside the parent's time. One request
//! is looked at as a whole, before any of its spans is normalized: an
//! instrumentation flushes an invocation's spans together, children first,
//! so the child usually arrives beside its parent but ahead of it.
//! Correlation catches the pairs that arrive in different requests.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use seam_model::Platform;

use super::{ResourceContext, attributes, semconv};
use crate::view::Export;

/// Position of a span in its request: (resource, scope, span) indexes.
pub type Position = (usize, usize, usize);

/// The instance of each trace of a function resource that names none,
/// from `faas.instance` on the trace's own spans (the Azure Functions host
/// sets it on the span it runs a trigger under, not on its resource), by
/// (resource index, trace id). A trace of one function process runs on
/// one instance.
pub fn span_instances<'a>(
    request: &Export<'a>,
    resources: &[ResourceContext<'_>],
) -> HashMap<(usize, &'a [u8]), Cow<'a, str>> {
    let mut out = HashMap::new();
    for (ri, (rs, r)) in request.resource_spans.iter().zip(resources).enumerate() {
        if r.platform != Platform::Faas || r.instance.is_some() {
            continue;
        }
        for span in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
            if let Some(instance) = attributes::get(&span.attributes, "faas.instance") {
                out.entry((ri, span.trace_id)).or_insert(instance);
            }
        }
    }
    out
}

/// Whether a span of a function could be taken for an invocation of its
/// own: a SERVER or CONSUMER span, or one with a trigger or invocation id.
/// Only these are marked; a database call inside an invocation is just a
/// span.
fn could_be_invocation(span: &crate::view::Span<'_>) -> bool {
    const SERVER: i32 = 2;
    const CONSUMER: i32 = 5;
    matches!(span.kind, SERVER | CONSUMER)
        || semconv::FAAS_TRIGGER
            .iter()
            .chain(semconv::FAAS_INVOCATION_ID)
            .any(|k| attributes::get(&span.attributes, k).is_some())
}

/// The spans of `request` nested in another span of the same function
/// instance and trace. `resources` are the request's resources, in order.
pub fn nested_spans(request: &Export<'_>, resources: &[ResourceContext<'_>]) -> HashSet<Position> {
    let functions = |r: &ResourceContext<'_>| r.platform == Platform::Faas;
    if !resources.iter().any(functions) {
        return HashSet::new();
    }
    // (service, instance, trace, span) → (start, end), for every span of
    // a function resource: the parent need not be an invocation span
    // itself (root SERVER → handler INTERNAL → SQS `process`).
    type Key<'k> = (&'k str, Option<&'k str>, &'k [u8], &'k [u8]);
    let mut times: HashMap<Key<'_>, (u64, u64)> = HashMap::new();
    let spans = || {
        request
            .resource_spans
            .iter()
            .zip(resources)
            .enumerate()
            .filter(|(_, (_, r))| functions(r))
            .flat_map(|(ri, (rs, r))| {
                rs.scope_spans.iter().enumerate().flat_map(move |(si, ss)| {
                    ss.spans
                        .iter()
                        .enumerate()
                        .map(move |(i, span)| ((ri, si, i), r, span))
                })
            })
    };
    for (_, r, span) in spans() {
        times.insert(
            (
                r.service_name.as_ref(),
                r.instance.as_deref(),
                span.trace_id,
                span.span_id,
            ),
            (span.start_time_unix_nano, span.end_time_unix_nano),
        );
    }
    spans()
        .filter(|(_, _, span)| could_be_invocation(span))
        .filter(|(_, r, span)| {
            let parent = (
                r.service_name.as_ref(),
                r.instance.as_deref(),
                span.trace_id,
                span.parent_span_id,
            );
            !span.parent_span_id.is_empty()
                && times.get(&parent).is_some_and(|(start, end)| {
                    *start <= span.start_time_unix_nano && span.end_time_unix_nano <= *end
                })
        })
        .map(|(position, _, _)| position)
        .collect()
}
