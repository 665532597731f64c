//! Invocation spans that run inside another invocation span of the same
//! function instance (a Lambda's SQS `process` span under its invocation
//! span), when the two arrived in different requests. The collector
//! marks the pairs that arrive together; this catches the rest, in either
//! order, so one invocation is counted once whatever the export order.
//!
//! Spans are remembered for [`HORIZON_NS`] after they arrive: an
//! invocation's spans are flushed together at its end, seconds apart at
//! most. At most [`CAP`] spans are remembered, about 100 bytes each.

/// How long an invocation span waits for its parent or children.
pub const HORIZON_NS: i64 = 30_000_000_000;

/// Invocation spans remembered at most, of each sort.
pub const CAP: usize = 200_000;

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::half::{Invocation, SpanKey, TRACE_STAND_IN};

/// Where and when an invocation span ran, and when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    /// Hash of the platform and service.
    service: u64,
    /// Hash of the instance, when the span named one.
    instance: Option<u64>,
    start: i64,
    end: i64,
    arrived: i64,
}

impl Seen {
    /// Whether `self` runs inside `outer`: the same function, the same
    /// instance unless one side does not say (a worker process without
    /// resource detection under its host's span), inside its time.
    fn inside(&self, outer: &Seen) -> bool {
        self.service == outer.service
            && (self.instance.is_none()
                || outer.instance.is_none()
                || self.instance == outer.instance)
            && outer.start <= self.start
            && self.end <= outer.end
    }
}

fn hash(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// What [`Nesting::place`] found out about an invocation span.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// The span runs inside an invocation span seen before.
    pub nested: bool,
    /// Invocation spans seen before that run inside this one.
    pub children: Vec<SpanKey>,
}

/// Invocation spans seen lately, and those still waiting for their parent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Nesting {
    recent: HashMap<SpanKey, Seen>,
    /// Children by the parent they wait for.
    waiting: HashMap<SpanKey, Vec<(SpanKey, Seen)>>,
}

impl Nesting {
    /// Places `inv`, arrived at `now`, among the invocation spans seen
    /// lately.
    pub fn place(&mut self, inv: &Invocation, now: i64) -> Placement {
        let cap = CAP;
        let id = &inv.instance;
        let seen = Seen {
            service: hash((id.platform, &id.service)),
            instance: (!id.instance.starts_with(TRACE_STAND_IN)).then(|| hash(&id.instance)),
            start: inv.start,
            end: inv.end,
            arrived: now,
        };
        let parent = inv.parent.map(|p| SpanKey::new(inv.key.trace, p));
        let nested = parent
            .and_then(|p| self.recent.get(&p))
            .is_some_and(|outer| seen.inside(outer));
        if let Some(p) = parent.filter(|_| !nested)
            && self.waiting.len() < cap
        {
            let children = self.waiting.entry(p).or_default();
            if !children.iter().any(|(k, _)| *k == inv.key) {
                children.push((inv.key, seen));
            }
        }
        if self.recent.len() < cap || self.recent.contains_key(&inv.key) {
            self.recent.insert(inv.key, seen);
        }
        let children = self
            .waiting
            .remove(&inv.key)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, child)| child.inside(&seen))
            .map(|(key, _)| key)
            .collect();
        Placement { nested, children }
    }

    /// Forgets what arrived more than [`HORIZON_NS`] before `now`.
    pub fn sweep(&mut self, now: i64) {
        let fresh = |s: &Seen| now.saturating_sub(s.arrived) <= HORIZON_NS;
        self.recent.retain(|_, s| fresh(s));
        self.waiting.retain(|_, children| {
            children.retain(|(_, s)| fresh(s));
            !children.is_empty()
        });
    }
}
