//! Function invocation spans that run inside another invocation span of
//! the same function instance (a Lambda's SQS `process` span under its
//! invocation span; an Azure Functions worker's span under its host's),
//! when the two arrived in different requests. The collector marks the
//! pairs that arrive together; this catches the pairs of invocation spans
//! that do not, in either order, when they arrive within the horizon.
//!
//! Spans are remembered for [`HORIZON_NS`] after they arrive: an
//! invocation's spans are flushed together at its end, seconds apart at
//! most. At most [`CAP`] spans of each sort are remembered, the oldest
//! forgotten first.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use seam_model::SpanId;

use crate::half::{InstanceId, Invocation, SpanKey, TRACE_STAND_IN};

/// How long an invocation span waits for its parent or children.
pub const HORIZON_NS: i64 = 30_000_000_000;

/// Invocation spans remembered at most, of each sort (seen, waiting).
pub const CAP: usize = 200_000;

/// Where and when an invocation span ran, and when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    /// Hash of the platform and service.
    service: u64,
    /// Hash of the instance, when the span named one.
    instance: Option<u64>,
    start: i64,
    end: i64,
}

impl Seen {
    fn of(inv: &Invocation) -> Self {
        let id = &inv.instance;
        Self {
            service: hash(&[
                format!("{:?}", id.platform).as_bytes(),
                id.service.as_bytes(),
            ]),
            instance: (!id.instance.starts_with(TRACE_STAND_IN))
                .then(|| hash(&[id.instance.as_bytes()])),
            start: inv.start,
            end: inv.end,
        }
    }

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

/// A hash that stays the same across builds, since it is saved with the
/// state: two CRC-32s of the parts, with different seeds.
fn hash(parts: &[&[u8]]) -> u64 {
    let crc = |seed: u32| {
        let mut h = crc32fast::Hasher::new_with_initial(seed);
        for part in parts {
            h.update(part);
            h.update(&[0xff]);
        }
        u64::from(h.finalize())
    };
    (crc(0) << 32) | crc(0x9e37_79b9)
}

/// An invocation span waiting for the span it names as its parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Child {
    key: SpanKey,
    seen: Seen,
    /// Where it was judged as an invocation, to take that back.
    instance: InstanceId,
}

/// What [`Nesting::place`] found out about an invocation span.
#[derive(Debug, Default, PartialEq)]
pub struct Placement {
    /// The span runs inside an invocation span seen before.
    pub nested: bool,
    /// Invocation spans seen before that run inside this one, with the
    /// instance each was judged on.
    pub children: Vec<(SpanKey, InstanceId)>,
}

/// Invocation spans seen lately, and those still waiting for their parent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Nesting {
    recent: HashMap<SpanKey, Seen>,
    /// (arrived, span) in arrival order, to forget the oldest first.
    recent_order: VecDeque<(i64, SpanKey)>,
    /// Children by (the parent they wait for, themselves): one ordered
    /// map rather than a list per parent, which would reserve room for
    /// four children where nearly every parent has one.
    waiting: BTreeMap<(SpanKey, SpanKey), Child>,
    /// (arrived, parent, child) in arrival order.
    waiting_order: VecDeque<(i64, SpanKey, SpanKey)>,
}

impl Nesting {
    /// Places `inv`, arrived at `now`, among the invocation spans seen
    /// lately.
    pub fn place(&mut self, inv: &Invocation, now: i64) -> Placement {
        let seen = Seen::of(inv);
        let parent = inv.parent.map(|p| SpanKey::new(inv.key.trace, p));
        let nested = parent
            .and_then(|p| self.recent.get(&p))
            .is_some_and(|outer| seen.inside(outer));
        if let Some(p) = parent.filter(|_| !nested) {
            self.waiting.insert(
                (p, inv.key),
                Child {
                    key: inv.key,
                    seen,
                    instance: inv.instance.clone(),
                },
            );
            self.waiting_order.push_back((now, p, inv.key));
            if self.waiting_order.len() > CAP {
                self.forget_waiting();
            }
        }
        if self.recent.insert(inv.key, seen).is_none() {
            self.recent_order.push_back((now, inv.key));
            if self.recent_order.len() > CAP
                && let Some((_, old)) = self.recent_order.pop_front()
            {
                self.recent.remove(&old);
            }
        }
        let lowest = SpanKey::new(inv.key.trace, SpanId([0; 8]));
        let waiting: Vec<(SpanKey, SpanKey)> = self
            .waiting
            .range((inv.key, lowest)..)
            .take_while(|((parent, _), _)| *parent == inv.key)
            .map(|(k, _)| *k)
            .collect();
        let children = waiting
            .iter()
            .filter_map(|k| self.waiting.remove(k))
            .filter(|child| child.seen.inside(&seen))
            .map(|child| (child.key, child.instance))
            .collect();
        Placement { nested, children }
    }

    /// Forgets the child that has waited longest.
    fn forget_waiting(&mut self) {
        let Some((_, parent, child)) = self.waiting_order.pop_front() else {
            return;
        };
        self.waiting.remove(&(parent, child));
    }

    /// Forgets what arrived more than [`HORIZON_NS`] before `now`; cheap
    /// when nothing is due, so it may run on every tick.
    pub fn sweep(&mut self, now: i64) {
        let due = |arrived: i64| now.saturating_sub(arrived) > HORIZON_NS;
        while let Some(&(arrived, key)) = self.recent_order.front()
            && due(arrived)
        {
            self.recent_order.pop_front();
            self.recent.remove(&key);
        }
        while self.waiting_order.front().is_some_and(|(a, _, _)| due(*a)) {
            self.forget_waiting();
        }
    }
}
