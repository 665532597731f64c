//! A request's spans by position and id, to find a span's parent within
//! its request: what [`super::nesting`] and [`super::transport`] look at.

use std::collections::HashMap;

use crate::view::{Export, Span};

/// Position of a span in its request: (resource, scope, span) indexes.
pub type Position = (usize, usize, usize);

/// Below this many spans a parent is found by a scan: cheaper than
/// hashing for the few spans a function exports per invocation.
const SCAN_BELOW: usize = 32;

/// Every span of a request with its position.
pub fn spans<'r, 'a>(request: &'r Export<'a>) -> impl Iterator<Item = (Position, &'r Span<'a>)> {
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
}

/// (trace id, span id) → index into [`Family`]'s spans.
type ById<'a> = HashMap<(&'a [u8], &'a [u8]), usize>;

/// Finds spans of one request by trace and span id.
pub struct Family<'r, 'a> {
    all: Vec<(Position, &'r Span<'a>)>,
    by_id: Option<ById<'a>>,
}

impl<'r, 'a> Family<'r, 'a> {
    /// The spans of `request` that `keep` accepts, as possible parents.
    pub fn new(request: &'r Export<'a>, keep: impl Fn(Position, &Span<'a>) -> bool) -> Self {
        let all: Vec<_> = spans(request).filter(|(p, s)| keep(*p, s)).collect();
        let by_id = (all.len() >= SCAN_BELOW).then(|| {
            all.iter()
                .enumerate()
                .map(|(i, (_, s))| ((s.trace_id, s.span_id), i))
                .collect()
        });
        Self { all, by_id }
    }

    /// The parent of `span` among the kept spans, with its position.
    pub fn parent(&self, span: &Span<'a>) -> Option<(Position, &'r Span<'a>)> {
        if span.parent_span_id.is_empty() {
            return None;
        }
        let key = (span.trace_id, span.parent_span_id);
        match &self.by_id {
            Some(map) => map.get(&key).map(|i| self.all[*i]),
            None => self
                .all
                .iter()
                .find(|(_, s)| (s.trace_id, s.span_id) == key)
                .copied(),
        }
    }
}
