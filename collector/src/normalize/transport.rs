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

use super::{attributes, semconv};
use crate::view::{Export, Span};

/// OTLP span kinds.
const CLIENT: i32 = 3;
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;

/// Position of a span in its request: (resource, scope, span) indexes.
pub type Position = (usize, usize, usize);

/// The messaging CLIENT spans of `request` (a `messaging.system`, or an
/// AWS SDK call) whose parent is a PRODUCER or CONSUMER messaging span of
/// the same trace in the same request that sends or receives, not one that
/// processes: code under `process` makes calls and sends of its own.
pub fn transport_spans(request: &Export<'_>) -> HashSet<Position> {
    let spans = || {
        request
            .resource_spans
            .iter()
            .enumerate()
            .flat_map(|(ri, rs)| {
                rs.scope_spans.iter().enumerate().flat_map(move |(si, ss)| {
                    ss.spans
                        .iter()
                        .enumerate()
                        .map(move |(i, span)| ((ri, si, i), span))
                })
            })
    };
    let has = |s: &Span<'_>, keys: &[&str]| {
        keys.iter()
            .any(|k| attributes::get(&s.attributes, k).is_some())
    };
    let messaging: HashSet<(&[u8], &[u8])> = spans()
        .filter(|(_, s)| {
            matches!(s.kind, PRODUCER | CONSUMER)
                && has(s, semconv::MESSAGING_SYSTEM)
                && !semconv::MESSAGING_OPERATION.iter().any(|k| {
                    attributes::get(&s.attributes, k).is_some_and(|op| {
                        matches!(
                            semconv::canonical_messaging_operation(&op).as_str(),
                            "process"
                        )
                    })
                })
        })
        .map(|(_, s)| (s.trace_id, s.span_id))
        .collect();
    if messaging.is_empty() {
        return HashSet::new();
    }
    spans()
        .filter(|(_, s)| {
            s.kind == CLIENT
                && !s.parent_span_id.is_empty()
                && (has(s, semconv::MESSAGING_SYSTEM)
                    || attributes::get(&s.attributes, "rpc.system").as_deref() == Some("aws-api"))
                && messaging.contains(&(s.trace_id, s.parent_span_id))
        })
        .map(|(position, _)| position)
        .collect()
}
