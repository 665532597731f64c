//! Cold starts (docs/contract.md §5.3): which invocation of a function instance (or
//! request to a pod) was its first, what kind of start it was, and how long
//! initialisation took.
//!
//! The verdicts are an overlay on the `spans` table, keyed by span and
//! applied when a query reads the rows: the init span that decides an
//! invocation was cold often arrives after the invocation was stored.
//!
//! # Invariants
//! - At most one invocation per instance is called cold by the init-span
//!   and first-invocation rules: the earliest-starting one seen. When an
//!   earlier one arrives later, the verdict moves to it.
//! - An instance seen before a restart is known after it (the instances
//!   are part of the checkpoint), so the heuristic does not call it cold
//!   again.
//! - Instances and verdicts are capped; instances unseen for `instance_ttl`
//!   are forgotten.

use std::collections::{HashMap, HashSet, VecDeque};

use seam_model::{ColdStartSource, ColdStartType, Platform, TraceId};
use serde::{Deserialize, Serialize};

use crate::config::{ColdStartConfig, nanos};
use crate::half::{Init, InstanceId, Invocation, SpanKey};

/// The cold-start columns of one span, as a query shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub cold: bool,
    pub kind: Option<ColdStartType>,
    pub init_duration_ns: Option<i64>,
    pub source: Option<ColdStartSource>,
}

impl Verdict {
    /// Whether a user waited: the only cold starts rates and flows count.
    pub fn on_demand(&self) -> bool {
        self.cold && self.kind == Some(ColdStartType::OnDemand)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FirstInvocation {
    key: SpanKey,
    start: i64,
    said_cold: Option<bool>,
    declared_type: Option<ColdStartType>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Instance {
    last_seen: i64,
    first: Option<FirstInvocation>,
    init: Option<(i64, i64)>,
    /// Known before its first invocation arrived here (restored after a
    /// restart with invocations already seen): nothing new is cold.
    settled: bool,
}

/// What a span inside another invocation reads.
const NESTED: Verdict = Verdict {
    cold: false,
    kind: None,
    init_duration_ns: None,
    source: Some(ColdStartSource::InInvocation),
};

/// Spans found to run inside another invocation of their instance, kept
/// apart from the verdicts so that they never push a cold start out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NestedMarkers {
    spans: HashSet<SpanKey>,
    order: VecDeque<SpanKey>,
}

/// Verdicts by span, with the traces that had an on-demand cold start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Overlay {
    by_span: HashMap<SpanKey, Verdict>,
    cold_traces: HashMap<TraceId, u32>,
    order: VecDeque<SpanKey>,
    /// Saved after the rest (a later addition to the saved state).
    #[serde(skip)]
    nested: NestedMarkers,
    /// Traces with a span judged cold of any type: what a trace summary's
    /// `cold_start` adds to what its spans said. Derived from `by_span`,
    /// so rebuilt rather than saved.
    #[serde(skip)]
    any_cold: HashMap<TraceId, u32>,
}

impl Overlay {
    pub fn get(&self, key: &SpanKey) -> Option<&Verdict> {
        self.by_span
            .get(key)
            .or_else(|| self.nested.spans.contains(key).then_some(&NESTED))
    }

    pub fn is_empty(&self) -> bool {
        self.by_span.is_empty() && self.nested.spans.is_empty()
    }

    pub fn is_nested(&self, key: &SpanKey) -> bool {
        self.nested.spans.contains(key)
    }

    pub(crate) fn nested_markers(&self) -> &NestedMarkers {
        &self.nested
    }

    pub(crate) fn set_nested_markers(&mut self, markers: NestedMarkers) {
        self.nested = markers;
    }

    /// Rebuilds what is derived from the verdicts, after they were read
    /// back from a checkpoint.
    pub(crate) fn rebuild(&mut self) {
        self.any_cold.clear();
        for (key, verdict) in &self.by_span {
            if verdict.cold {
                *self.any_cold.entry(key.trace).or_default() += 1;
            }
        }
    }

    /// The traces with a span judged a cold start (of any type).
    pub fn cold_trace_ids(&self) -> impl Iterator<Item = TraceId> + '_ {
        self.any_cold.keys().copied()
    }

    /// Whether a span of `trace` was judged a cold start (of any type).
    pub fn trace_had_cold(&self, trace: &TraceId) -> bool {
        self.any_cold.contains_key(trace)
    }

    /// Whether `trace` holds an on-demand cold start.
    pub fn trace_was_cold(&self, trace: &TraceId) -> bool {
        self.cold_traces.contains_key(trace)
    }

    /// The spans of `trace` judged on-demand cold starts.
    pub fn on_demand_in(&self, trace: &TraceId) -> u32 {
        self.cold_traces.get(trace).copied().unwrap_or(0)
    }

    pub(crate) fn set(&mut self, key: SpanKey, verdict: Verdict, cap: usize) {
        let known = self.remove(&key);
        if verdict.on_demand() {
            *self.cold_traces.entry(key.trace).or_default() += 1;
        }
        if verdict.cold {
            *self.any_cold.entry(key.trace).or_default() += 1;
        }
        self.by_span.insert(key, verdict);
        if !known {
            self.order.push_back(key);
        }
        while self.by_span.len() > cap {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.remove(&old);
        }
    }

    /// Marks `key` as running inside another invocation of its instance:
    /// not an invocation of its own, never cold itself. At most `cap`
    /// markers are kept, the oldest forgotten first.
    pub fn mark_nested(&mut self, key: SpanKey, cap: usize) {
        self.remove(&key);
        if self.nested.spans.insert(key) {
            self.nested.order.push_back(key);
        }
        while self.nested.spans.len() > cap {
            let Some(old) = self.nested.order.pop_front() else {
                break;
            };
            self.nested.spans.remove(&old);
        }
    }

    /// Removes the verdict of `key`; whether it had one.
    fn remove(&mut self, key: &SpanKey) -> bool {
        let Some(old) = self.by_span.remove(key) else {
            return false;
        };
        for (counts, counted) in [
            (&mut self.cold_traces, old.on_demand()),
            (&mut self.any_cold, old.cold),
        ] {
            if counted && let Some(n) = counts.get_mut(&key.trace) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&key.trace);
                }
            }
        }
        true
    }
}

/// Per-instance state that decides the verdicts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ColdStarts {
    instances: HashMap<InstanceId, Instance>,
    last_sweep: i64,
}

impl ColdStarts {
    /// Marks every known instance as settled: after a restart, their first
    /// invocations were judged already.
    pub fn settle(&mut self) {
        for i in self.instances.values_mut() {
            if i.first.is_some() {
                i.settled = true;
            }
        }
    }

    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    pub fn invocation(
        &mut self,
        inv: Invocation,
        now: i64,
        config: &ColdStartConfig,
        overlay: &mut Overlay,
    ) {
        let instance = self.entry(inv.instance.clone(), now, config);
        // Settled instances judged their first invocation before a
        // restart, unless it turned out to run inside another since.
        if instance.settled && instance.first.is_some() {
            return;
        }
        let earlier = instance
            .first
            .as_ref()
            .is_none_or(|f| (inv.start, inv.key) < (f.start, f.key) && f.key != inv.key);
        if !earlier {
            return;
        }
        if let Some(old) = instance.first.take() {
            overlay.remove(&old.key);
        }
        instance.first = Some(FirstInvocation {
            key: inv.key,
            start: inv.start,
            said_cold: inv.said_cold,
            declared_type: inv.declared_type,
        });
        Self::judge(&inv.instance, instance, config, overlay);
    }

    /// `child` runs inside another invocation: if it was `instance`'s
    /// first invocation, it is no longer, and its verdict goes with it.
    /// The enclosing invocation, judged next, takes its place.
    pub fn retract(&mut self, instance: &InstanceId, child: SpanKey, overlay: &mut Overlay) {
        if let Some(i) = self.instances.get_mut(instance)
            && i.first.as_ref().is_some_and(|f| f.key == child)
        {
            i.first = None;
            overlay.remove(&child);
        }
    }

    pub fn init(&mut self, init: Init, now: i64, config: &ColdStartConfig, overlay: &mut Overlay) {
        // The init span is the evidence, not an invocation: a
        // `faas.coldstart` on it does not make it a cold start of its own.
        overlay.set(
            init.key,
            Verdict {
                cold: false,
                kind: None,
                init_duration_ns: None,
                source: None,
            },
            config.max_instances,
        );
        let instance = self.entry(init.instance.clone(), now, config);
        instance.init = Some((init.start, init.end));
        if !instance.settled {
            Self::judge(&init.instance, instance, config, overlay);
        }
    }

    fn entry(&mut self, id: InstanceId, now: i64, config: &ColdStartConfig) -> &mut Instance {
        if !self.instances.contains_key(&id) && self.instances.len() >= config.max_instances {
            // Forget the instance seen longest ago.
            if let Some(oldest) = self
                .instances
                .iter()
                .min_by_key(|(_, i)| i.last_seen)
                .map(|(k, _)| k.clone())
            {
                self.instances.remove(&oldest);
            }
        }
        let instance = self.instances.entry(id).or_insert(Instance {
            last_seen: now,
            first: None,
            init: None,
            settled: false,
        });
        instance.last_seen = instance.last_seen.max(now);
        instance
    }

    /// Decides the verdict of the instance's first invocation.
    fn judge(
        id: &InstanceId,
        instance: &Instance,
        config: &ColdStartConfig,
        overlay: &mut Overlay,
    ) {
        let Some(first) = &instance.first else {
            return;
        };
        // An init span belongs to the invocation that follows it.
        let init = instance.init.filter(|(start, _)| *start <= first.start);
        let source = match (first.said_cold, init) {
            (Some(true), _) => Some(ColdStartSource::Attribute),
            (Some(false), _) => None,
            (None, Some(_)) => Some(ColdStartSource::InitSpan),
            (None, None) if config.first_invocation => Some(match id.platform {
                Platform::Kubernetes => ColdStartSource::PodFirstRequest,
                _ => ColdStartSource::FirstInvocation,
            }),
            (None, None) => None,
        };
        let Some(source) = source else {
            overlay.remove(&first.key);
            return;
        };
        let kind = first.declared_type.unwrap_or(match init {
            Some((_, end)) if first.start.saturating_sub(end) > nanos(config.proactive_gap) => {
                ColdStartType::Proactive
            }
            _ => ColdStartType::OnDemand,
        });
        overlay.set(
            first.key,
            Verdict {
                cold: true,
                kind: Some(kind),
                init_duration_ns: init.map(|(s, e)| e.saturating_sub(s).max(0)),
                source: Some(source),
            },
            config.max_instances,
        );
    }

    /// Forgets instances not seen for the TTL; runs at most once a minute.
    pub fn sweep(&mut self, now: i64, config: &ColdStartConfig) -> usize {
        if now - self.last_sweep < 60_000_000_000 {
            return 0;
        }
        self.last_sweep = now;
        let ttl = nanos(config.instance_ttl);
        let before = self.instances.len();
        self.instances
            .retain(|_, i| now.saturating_sub(i.last_seen) <= ttl);
        before - self.instances.len()
    }
}
