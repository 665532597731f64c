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

use super::family::{Family, Position, spans};
use super::{ResourceContext, attributes, semconv};
use crate::view::{Export, Span};

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
fn could_be_invocation(span: &Span<'_>) -> bool {
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
    let function = |(ri, _, _): Position| resources[ri].platform == Platform::Faas;
    let children: Vec<_> = spans(request)
        .filter(|(p, s)| function(*p) && !s.parent_span_id.is_empty() && could_be_invocation(s))
        .collect();
    if children.is_empty() {
        return HashSet::new();
    }
    // Any span of a function can be the parent: it need not be an
    // invocation span itself (root SERVER → handler INTERNAL → `process`).
    let parents = Family::new(request, |p, _| function(p));
    let identity = |ri: usize| {
        let r = &resources[ri];
        (r.service_name.as_ref(), r.instance.as_deref())
    };
    children
        .into_iter()
        .filter(|(child, span)| {
            parents.parent(span).is_some_and(|(parent, outer)| {
                identity(parent.0) == identity(child.0)
                    && outer.start_time_unix_nano <= span.start_time_unix_nano
                    && span.end_time_unix_nano <= outer.end_time_unix_nano
            })
        })
        .map(|(position, _)| position)
        .collect()
}
