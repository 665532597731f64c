//! Flows: connected sets of traces (docs/contract.md §5.2), kept as a disjoint-set
//! index of the traces that were joined to another one. A trace that was
//! never joined is a flow of its own and takes no memory here.
//!
//! # Invariants
//! - A flow's id is the smallest trace id among its members, so it does not
//!   depend on the order traces were joined in.
//! - Every indexed trace belongs to exactly one flow, which lists it.
//! - A flow holds at most `max_flow_traces` traces; the index holds at most
//!   `max_indexed_traces` (whole flows are forgotten, oldest first).

use std::collections::{HashMap, VecDeque};

use seam_model::TraceId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Flow {
    id: TraceId,
    members: Vec<TraceId>,
}

/// What happened to a request to join two traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Join {
    /// They were already one flow.
    Already,
    Joined,
    /// The merged flow would pass the size cap.
    Refused,
}

/// The flow index.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flows {
    of_trace: HashMap<TraceId, u64>,
    flows: HashMap<u64, Flow>,
    /// Flow keys in creation order, for forgetting the oldest.
    order: VecDeque<u64>,
    next: u64,
    max_flow_traces: usize,
    max_indexed_traces: usize,
}

impl Flows {
    pub fn new(max_flow_traces: usize, max_indexed_traces: usize) -> Self {
        Self {
            max_flow_traces: max_flow_traces.max(2),
            max_indexed_traces: max_indexed_traces.max(2),
            ..Self::default()
        }
    }

    /// Keeps the caps of the current configuration over restored state.
    pub fn set_caps(&mut self, max_flow_traces: usize, max_indexed_traces: usize) {
        self.max_flow_traces = max_flow_traces.max(2);
        self.max_indexed_traces = max_indexed_traces.max(2);
    }

    /// The flow id of `trace`: its flow's smallest trace id, or itself.
    pub fn flow_id(&self, trace: &TraceId) -> TraceId {
        self.of_trace
            .get(trace)
            .and_then(|k| self.flows.get(k))
            .map_or(*trace, |f| f.id)
    }

    /// Every trace of `trace`'s flow, sorted, `trace` included.
    pub fn members(&self, trace: &TraceId) -> Vec<TraceId> {
        let mut members = self
            .of_trace
            .get(trace)
            .and_then(|k| self.flows.get(k))
            .map_or_else(|| vec![*trace], |f| f.members.clone());
        members.sort_unstable();
        members
    }

    /// Whether `trace` is held in the index (was joined to another).
    pub fn is_indexed(&self, trace: &TraceId) -> bool {
        self.of_trace.contains_key(trace)
    }

    /// Traces held in the index.
    pub fn indexed_traces(&self) -> usize {
        self.of_trace.len()
    }

    pub fn is_empty(&self) -> bool {
        self.of_trace.is_empty()
    }

    /// Puts `a` and `b` in one flow. Returns how many traces were forgotten
    /// to stay under the index cap, with the outcome.
    pub fn join(&mut self, a: TraceId, b: TraceId) -> (Join, usize) {
        if a == b {
            return (Join::Already, 0);
        }
        let outcome = match (
            self.of_trace.get(&a).copied(),
            self.of_trace.get(&b).copied(),
        ) {
            (Some(x), Some(y)) if x == y => return (Join::Already, 0),
            (None, None) => {
                let key = self.next;
                self.next += 1;
                self.flows.insert(
                    key,
                    Flow {
                        id: a.min(b),
                        members: vec![a, b],
                    },
                );
                self.of_trace.insert(a, key);
                self.of_trace.insert(b, key);
                self.order.push_back(key);
                Join::Joined
            }
            (Some(x), None) => self.add(x, b),
            (None, Some(y)) => self.add(y, a),
            (Some(x), Some(y)) => self.merge(x, y),
        };
        let forgotten = if outcome == Join::Joined {
            self.enforce_index_cap()
        } else {
            0
        };
        (outcome, forgotten)
    }

    fn add(&mut self, key: u64, trace: TraceId) -> Join {
        let flow = self
            .flows
            .get_mut(&key)
            .expect("indexed traces have a flow");
        if flow.members.len() >= self.max_flow_traces {
            return Join::Refused;
        }
        flow.members.push(trace);
        flow.id = flow.id.min(trace);
        self.of_trace.insert(trace, key);
        Join::Joined
    }

    /// Moves the smaller flow into the larger, so a trace is relabelled at
    /// most log(n) times over a flow's life.
    fn merge(&mut self, x: u64, y: u64) -> Join {
        let (lx, ly) = (self.flows[&x].members.len(), self.flows[&y].members.len());
        if lx + ly > self.max_flow_traces {
            return Join::Refused;
        }
        let (big, small) = if lx >= ly { (x, y) } else { (y, x) };
        let moved = self.flows.remove(&small).expect("flow exists");
        for t in &moved.members {
            self.of_trace.insert(*t, big);
        }
        let flow = self.flows.get_mut(&big).expect("flow exists");
        flow.members.extend(moved.members);
        flow.id = flow.id.min(moved.id);
        Join::Joined
    }

    fn enforce_index_cap(&mut self) -> usize {
        let mut forgotten = 0;
        while self.of_trace.len() > self.max_indexed_traces {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            // Keys of flows merged away are skipped.
            if let Some(flow) = self.flows.remove(&key) {
                for t in &flow.members {
                    self.of_trace.remove(t);
                }
                forgotten += flow.members.len();
            }
        }
        forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> TraceId {
        TraceId([n; 16])
    }

    #[test]
    fn joins_are_transitive_and_the_id_is_the_smallest_member() {
        let mut f = Flows::new(100, 100);
        assert_eq!(f.flow_id(&t(9)), t(9), "an unjoined trace is its own flow");
        assert_eq!(f.join(t(5), t(9)).0, Join::Joined);
        assert_eq!(f.join(t(7), t(8)).0, Join::Joined);
        assert_eq!(f.join(t(8), t(9)).0, Join::Joined);
        assert_eq!(f.join(t(5), t(7)).0, Join::Already);
        for n in [5, 7, 8, 9] {
            assert_eq!(f.flow_id(&t(n)), t(5));
            assert_eq!(f.members(&t(n)), vec![t(5), t(7), t(8), t(9)]);
        }
        assert_eq!(f.join(t(1), t(2)).0, Join::Joined);
        assert_eq!(f.flow_id(&t(2)), t(1));
    }

    #[test]
    fn flows_stop_growing_at_the_cap() {
        let mut f = Flows::new(3, 100);
        f.join(t(1), t(2));
        f.join(t(2), t(3));
        assert_eq!(f.join(t(3), t(4)).0, Join::Refused);
        assert_eq!(f.flow_id(&t(4)), t(4));
        f.join(t(5), t(6));
        assert_eq!(f.join(t(6), t(1)).0, Join::Refused);
        assert_eq!(f.members(&t(1)).len(), 3);
    }

    #[test]
    fn the_oldest_flows_are_forgotten_past_the_index_cap() {
        let mut f = Flows::new(10, 4);
        f.join(t(1), t(2));
        f.join(t(3), t(4));
        let (_, forgotten) = f.join(t(5), t(6));
        assert_eq!(forgotten, 2);
        assert_eq!(f.flow_id(&t(2)), t(2), "the oldest flow was forgotten");
        assert_eq!(f.flow_id(&t(6)), t(5));
        assert_eq!(f.indexed_traces(), 4);
    }
}
