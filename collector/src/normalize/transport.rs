//! CLIENT spans that are the wire call beneath a messaging span: the AWS
//! SDK's `SQS.SendMessage` under boto3sqs's `<queue> send`, its
//! `SQS.ReceiveMessage` under `<queue> receive`. They carry the same
//! messaging attributes and message id as the span above them, so taken
//! alone each would be a second producer or consumer of one message, and
//! one hop would be stitched up to four times.
//!
//! Looked at per request, like [`super::nesting`]: a process exports a
//! span and the call inside it together.

use std::collections::HashSet;

use super::family::{Family, Position, spans};
use super::{attributes, semconv};
use crate::view::{Export, Span};

/// OTLP span kinds.
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

fn has(span: &Span<'_>, keys: &[&str]) -> bool {
    keys.iter()
        .any(|k| attributes::get(&span.attributes, k).is_some())
}

/// A messaging CLIENT span with a parent: a candidate wire call.
fn wire_call(span: &Span<'_>) -> bool {
    span.kind == CLIENT
        && !span.parent_span_id.is_empty()
        && (has(span, semconv::MESSAGING_SYSTEM)
            || attributes::get(&span.attributes, "rpc.system").as_deref() == Some("aws-api"))
}

/// A PRODUCER or CONSUMER messaging span that sends or receives. Not one
/// that processes: code under `process` makes calls and sends of its own.
fn sends_or_receives(span: &Span<'_>) -> bool {
    matches!(span.kind, PRODUCER | CONSUMER)
        && has(span, semconv::MESSAGING_SYSTEM)
        && !semconv::MESSAGING_OPERATION.iter().any(|k| {
            attributes::get(&span.attributes, k).is_some_and(|op| {
                op.eq_ignore_ascii_case("process") || op.eq_ignore_ascii_case("deliver")
            })
        })
}

/// The messaging CLIENT spans of `request` (a `messaging.system`, or an
/// AWS SDK call) whose parent is a messaging span of the same trace in the
/// same request that sends or receives.
pub fn transport_spans(request: &Export<'_>) -> HashSet<Position> {
    let calls: Vec<_> = spans(request).filter(|(_, s)| wire_call(s)).collect();
    if calls.is_empty() {
        return HashSet::new();
    }
    let parents = Family::new(request, |_, s| sends_or_receives(s));
    calls
        .into_iter()
        .filter(|(_, s)| parents.parent(s).is_some())
        .map(|(position, _)| position)
        .collect()
}
