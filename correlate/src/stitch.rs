//! Boundaries (docs/contract.md §5.1): the halves waiting for their other half, and
//! the matching that turns a pair into a boundary.
//!
//! ```text
//!  half arrives ──▶ duplicate? ──yes──▶ ignored
//!                      │no
//!                      ├─▶ partners already waiting: parent/link target, same correlation value
//!                      │       └─▶ one Boundary per (producer, consumer) pair
//!                      ├─▶ traces sharing a correlation value ─▶ flow joins
//!                      └─▶ waits: by span (for its partner's parent/link), by value, in arrival order
//!  tick(now) ──▶ halves older than the window leave; unmatched messaging halves become orphans
//! ```
//!
//! # Invariants
//! - A pair of spans is stitched at most once, however often either span
//!   is re-sent: a span already waiting is a duplicate, and each half
//!   remembers the partners it was paired with.
//! - The set of boundaries does not depend on arrival order within the
//!   window: a pair is found when its later half arrives, and its label
//!   ([`StitchedBy`]) depends only on the two spans.
//! - At most `max_pending` halves wait; past it the oldest is evicted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use seam_model::TraceId;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::config::{CorrelationConfig, nanos};
use crate::half::{Extractor, Half, SpanKey};
use crate::role::Role;
use crate::tables::{Boundary, BoundaryKind, Orphan, OrphanKind, StitchedBy, platform_str};

/// A waiting half and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub half: Half,
    pub arrived: i64,
    /// Partners this half was stitched to.
    pub paired: Vec<SpanKey>,
}

/// What one arrival or one tick produced.
#[derive(Debug, Default)]
pub struct Effects {
    pub boundaries: Vec<Boundary>,
    /// Traces found to be one flow, each with the time of its span
    /// there: no earlier than the trace's start.
    pub joins: Vec<[(TraceId, i64); 2]>,
    pub orphans: Vec<Orphan>,
    pub evicted: u64,
    pub duplicates: u64,
}

/// A correlation value by key index and the hash of its text: the text
/// itself stays in the half, once.
type ValueKey = (u16, u64);

fn value_key((index, value): &(u16, String)) -> ValueKey {
    (
        *index,
        BuildHasherDefault::<DefaultHasher>::default().hash_one(value),
    )
}

/// The halves waiting for a partner.
///
/// Entries are boxed so the map's buckets stay small: a hash map keeps up
/// to twice its length in buckets, and a bucket holding the whole entry
/// made that spare room cost more than the entries themselves.
#[derive(Debug, Default)]
pub struct Pending {
    halves: HashMap<SpanKey, Box<Entry>>,
    /// Consumers and callees by the span they point at (parent, links).
    by_target: HashMap<SpanKey, SmallVec<[SpanKey; 1]>>,
    /// Every half by each of its correlation values.
    by_value: HashMap<ValueKey, SmallVec<[SpanKey; 2]>>,
    /// Service, system and destination names, shared by the halves.
    names: HashSet<Arc<str>>,
    /// Async and role-less halves, in arrival order.
    async_queue: VecDeque<(i64, SpanKey)>,
    /// Sync halves, in arrival order; they wait for `sync_window` only.
    sync_queue: VecDeque<(i64, SpanKey)>,
}

/// How long a half of each kind waits.
fn window_of(half: &Half, config: &CorrelationConfig) -> i64 {
    match half.role {
        Some(role) if !role.is_async() => nanos(config.sync_window.min(config.window)),
        _ => nanos(config.window),
    }
}

fn targets(half: &Half) -> impl Iterator<Item = SpanKey> + '_ {
    let parent = half
        .parent
        .filter(|_| matches!(half.role, Some(Role::Consumer | Role::Callee)))
        .map(|p| SpanKey::new(half.key.trace, p));
    parent.into_iter().chain(half.links.iter().copied())
}

impl Pending {
    pub fn len(&self) -> usize {
        self.halves.len()
    }

    pub fn is_empty(&self) -> bool {
        self.halves.is_empty()
    }

    /// Every waiting entry, oldest first, for the checkpoint.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.async_queue
            .iter()
            .chain(self.sync_queue.iter())
            .filter_map(|(arrived, key)| {
                self.halves
                    .get(key)
                    .map(|e| &**e)
                    .filter(|e| e.arrived == *arrived)
            })
    }

    /// Puts back a checkpointed entry without matching it again.
    pub fn restore(&mut self, mut entry: Entry, config: &CorrelationConfig) {
        if self.halves.contains_key(&entry.half.key) {
            return;
        }
        self.intern(&mut entry.half);
        self.index(&entry.half);
        let queue = if window_of(&entry.half, config) == nanos(config.window) {
            &mut self.async_queue
        } else {
            &mut self.sync_queue
        };
        queue.push_back((entry.arrived, entry.half.key));
        self.halves.insert(entry.half.key, Box::new(entry));
    }

    /// Replaces the half's names with the shared copies.
    fn intern(&mut self, half: &mut Half) {
        let mut shared = |name: &mut Arc<str>| match self.names.get(name) {
            Some(known) => *name = known.clone(),
            None => {
                self.names.insert(name.clone());
            }
        };
        shared(&mut half.service);
        if let Some(system) = &mut half.system {
            shared(system);
        }
        if let Some(destination) = &mut half.destination {
            shared(destination);
        }
    }

    /// Adds a half that arrived at `now`, stitching it to every partner
    /// already waiting.
    pub fn add(
        &mut self,
        mut half: Half,
        now: i64,
        config: &CorrelationConfig,
        extractor: &Extractor,
        effects: &mut Effects,
    ) {
        if self.halves.contains_key(&half.key) {
            effects.duplicates += 1;
            return;
        }
        self.join_by_values(&half, effects);
        let paired = match half.role {
            Some(role) => self.stitch(&half, role, config, extractor, effects),
            None => {
                // A span without a role only carries values for flows; one
                // per trace and value is enough.
                half.values.retain(|v| {
                    !self
                        .by_value
                        .get(&value_key(v))
                        .is_some_and(|keys| keys.iter().any(|k| k.trace == half.key.trace))
                });
                if half.values.is_empty() {
                    return;
                }
                Vec::new()
            }
        };
        self.intern(&mut half);
        self.index(&half);
        let queue = if window_of(&half, config) == nanos(config.window) {
            &mut self.async_queue
        } else {
            &mut self.sync_queue
        };
        queue.push_back((now, half.key));
        self.halves.insert(
            half.key,
            Box::new(Entry {
                half,
                arrived: now,
                paired,
            }),
        );
        while self.halves.len() > config.max_pending {
            if !self.evict_oldest() {
                break;
            }
            effects.evicted += 1;
        }
    }

    /// The waiting half `key` when it carries `value` itself, not only a
    /// value with the same hash.
    fn carrying(&self, key: &SpanKey, value: &(u16, String)) -> Option<&Half> {
        (self.halves.get(key))
            .map(|e| &e.half)
            .filter(|h| h.values.contains(value))
    }

    fn join_by_values(&self, half: &Half, effects: &mut Effects) {
        let mut seen = HashSet::new();
        for value in &half.values {
            for other in self.by_value.get(&value_key(value)).into_iter().flatten() {
                if other.trace != half.key.trace
                    && !seen.contains(&other.trace)
                    && let Some(carrier) = self.carrying(other, value)
                {
                    seen.insert(other.trace);
                    effects
                        .joins
                        .push([(half.key.trace, half.start), (other.trace, carrier.start)]);
                }
            }
        }
    }

    /// Finds the waiting partners of `half` and stitches each pair once.
    fn stitch(
        &mut self,
        half: &Half,
        role: Role,
        config: &CorrelationConfig,
        extractor: &Extractor,
        effects: &mut Effects,
    ) -> Vec<SpanKey> {
        let partner_role = role.partner();
        let mut candidates: Vec<SpanKey> = Vec::new();
        if role.is_upstream() {
            candidates.extend(self.by_target.get(&half.key).into_iter().flatten());
        } else {
            candidates.extend(targets(half).filter(|t| self.halves.contains_key(t)));
        }
        if role.is_async() {
            for value in &half.values {
                let same = self.by_value.get(&value_key(value)).into_iter().flatten();
                candidates.extend(same.filter(|k| self.carrying(k, value).is_some()));
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let mut paired = Vec::new();
        for key in candidates {
            let Some(other) = self.halves.get_mut(&key) else {
                continue;
            };
            if other.half.role != Some(partner_role) || other.paired.contains(&half.key) {
                continue;
            }
            let (producer, consumer) = if role.is_upstream() {
                (half, &other.half)
            } else {
                (&other.half, half)
            };
            let Some(boundary) = boundary(producer, consumer, config, extractor) else {
                continue;
            };
            other.paired.push(half.key);
            paired.push(key);
            if producer.key.trace != consumer.key.trace {
                effects.joins.push([
                    (producer.key.trace, producer.start),
                    (consumer.key.trace, consumer.start),
                ]);
            }
            effects.boundaries.push(boundary);
        }
        paired
    }

    fn index(&mut self, half: &Half) {
        for target in targets(half) {
            self.by_target.entry(target).or_default().push(half.key);
        }
        for value in &half.values {
            self.by_value
                .entry(value_key(value))
                .or_default()
                .push(half.key);
        }
    }

    fn remove(&mut self, key: &SpanKey) -> Option<Entry> {
        let entry = self.halves.remove(key)?;
        for target in targets(&entry.half) {
            remove_from(&mut self.by_target, &target, key);
        }
        for value in &entry.half.values {
            remove_from(&mut self.by_value, &value_key(value), key);
        }
        Some(*entry)
    }

    /// Drops the oldest waiting half, whichever queue holds it.
    fn evict_oldest(&mut self) -> bool {
        loop {
            let queue = match (self.async_queue.front(), self.sync_queue.front()) {
                (None, None) => return false,
                (Some(_), None) => &mut self.async_queue,
                (None, Some(_)) => &mut self.sync_queue,
                (Some(a), Some(s)) if a.0 <= s.0 => &mut self.async_queue,
                _ => &mut self.sync_queue,
            };
            let (arrived, key) = queue.pop_front().expect("front exists");
            if self.halves.get(&key).is_some_and(|e| e.arrived == arrived) {
                self.remove(&key);
                return true;
            }
        }
    }

    /// Lets every half whose window has run out go; unmatched messaging
    /// halves become orphans or unconsumed messages.
    pub fn expire(
        &mut self,
        now: i64,
        config: &CorrelationConfig,
        extractor: &Extractor,
        effects: &mut Effects,
    ) {
        for sync in [false, true] {
            loop {
                let queue = if sync {
                    &mut self.sync_queue
                } else {
                    &mut self.async_queue
                };
                let Some(&(arrived, key)) = queue.front() else {
                    break;
                };
                let live = self.halves.get(&key).filter(|e| e.arrived == arrived);
                if let Some(entry) = live
                    && arrived.saturating_add(window_of(&entry.half, config)) > now
                {
                    break;
                }
                queue.pop_front();
                if live.is_none() {
                    continue;
                }
                let entry = self.remove(&key).expect("entry is live");
                if let Some(orphan) = orphan(&entry, extractor) {
                    effects.orphans.push(orphan);
                }
            }
        }
    }
}

fn remove_from<K: std::hash::Hash + Eq, A: smallvec::Array<Item = SpanKey>>(
    index: &mut HashMap<K, SmallVec<A>>,
    at: &K,
    key: &SpanKey,
) {
    if let Some(keys) = index.get_mut(at) {
        keys.retain(|k| k != key);
        if keys.is_empty() {
            index.remove(at);
        }
    }
}

fn orphan(entry: &Entry, extractor: &Extractor) -> Option<Orphan> {
    let half = &entry.half;
    let kind = match half.role? {
        Role::Producer => OrphanKind::Unconsumed,
        Role::Consumer => OrphanKind::Orphan,
        _ => return None,
    };
    if !entry.paired.is_empty() || !half.is_messaging() {
        return None;
    }
    Some(Orphan {
        kind,
        key: half.key,
        service: half.service.to_string(),
        system: half.system.as_deref().map(str::to_owned),
        destination: half.destination.as_deref().map(str::to_owned),
        correlation: half
            .values
            .first()
            .map(|(i, v)| (extractor.key_name(*i).to_owned(), v.clone())),
        time: half.start,
    })
}

/// The boundary between `p` (producer or caller) and `c` (consumer or
/// callee), or `None` when the pair does not make one.
pub fn boundary(
    p: &Half,
    c: &Half,
    config: &CorrelationConfig,
    extractor: &Extractor,
) -> Option<Boundary> {
    let is_parent = c.key.trace == p.key.trace && c.parent == Some(p.key.span);
    let kind = match (p.role?, c.role?) {
        (Role::Producer, Role::Consumer) => BoundaryKind::Async,
        // A synchronous call is stitched only to its direct child, across
        // platforms.
        (Role::Caller, Role::Callee) if is_parent && p.platform != c.platform => BoundaryKind::Sync,
        _ => return None,
    };
    let shared = || {
        c.values
            .iter()
            .find(|v| p.values.contains(v))
            .map(|(i, v)| (extractor.key_name(*i).to_owned(), v.clone()))
    };
    let (stitched_by, correlation) = if is_parent {
        (StitchedBy::Parent, None)
    } else if c.links.contains(&p.key) {
        (StitchedBy::Link, None)
    } else {
        // Two different message ids of one system are two messages,
        // whatever else they share: a conversation id spans every message
        // of an exchange. Across systems (SNS to SQS) ids differ anyway.
        if let (Some(a), Some(b)) = (extractor.message_id(p), extractor.message_id(c))
            && a != b
            && p.system.is_some()
            && p.system == c.system
        {
            return None;
        }
        (StitchedBy::Correlation, Some(shared()?))
    };
    let producer_time = match kind {
        BoundaryKind::Async => p.end,
        BoundaryKind::Sync => p.start,
    };
    let consumer_time = c.start;
    let raw = consumer_time.saturating_sub(producer_time);
    let latency_ns = raw.max(0);
    let system = c
        .system
        .as_deref()
        .or(p.system.as_deref())
        .map(str::to_owned);
    let destination = c
        .destination
        .as_deref()
        .or(p.destination.as_deref())
        .map(str::to_owned);
    let threshold = config.threshold_ns(&c.service, destination.as_deref());
    Some(Boundary {
        producer: p.key,
        consumer: c.key,
        kind,
        stitched_by,
        correlation,
        producer_service: p.service.to_string(),
        producer_platform: platform_str(p.platform),
        consumer_service: c.service.to_string(),
        consumer_platform: platform_str(c.platform),
        system,
        destination,
        producer_time,
        consumer_time,
        latency_ns,
        flagged: latency_ns > threshold,
        clock_skew: raw < 0,
    })
}
