//! Per-minute span counts per service operation (service, span name, kind,
//! platform, the resource's `cloud.platform`): what the explorer's lists
//! of services and operations add up, so that listing them for an hour of
//! traffic reads a few thousand rows instead of every span of the hour.
//!
//! ```text
//!  a request's rows ─▶ OperationCounts ─▶ Note ─▶ open minute of each operation
//!                                                 └─(quiet for trace_idle)─▶ operation_rollups rows
//! ```
//!
//! A service whose span names carry ids has unbounded "operations": past
//! [`MAX_NAMES`] names in one minute, a service's further names count
//! under a bucket without a name, so the service's span count stays exact
//! and the table grows with services and minutes, not with spans.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use arrow::array::{Int64Builder, RecordBatch, StringBuilder, TimestampNanosecondBuilder};
use arrow::error::ArrowError;
use foldhash::fast::FixedState;
use seam_model::schema::operation_rollups_schema;
use seam_model::{Platform, SpanKind, SpanRow};
use serde::{Deserialize, Serialize};

use crate::rollup::{Open, minute_of, put_back, take_quiet};

/// Names a service keeps apart in one minute.
pub const MAX_NAMES: usize = 1000;

/// What the spans of one service operation share.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Operation {
    pub service: String,
    /// None for the names past the service's [`MAX_NAMES`] in the minute.
    pub name: Option<String>,
    pub kind: String,
    pub platform: String,
    pub cloud_platform: Option<String>,
}

/// An operation's span count in one minute (the minute's start, ns).
pub type OperationRow = ((i64, Operation), i64);

/// The spans of one request counted per minute and operation. Service
/// and cloud platform are the resource's, so within a request a row is
/// told apart by its resource, minute, kind, platform and name; rows of two
/// resources of one service are merged when the request is counted in.
#[derive(Debug, Default)]
pub struct OperationCounts {
    rows: Vec<OperationRow>,
    /// Each row's resource (its attributes' address), kind and platform.
    keys: Vec<(usize, SpanKind, Platform)>,
    /// A hash of each row's key to the row.
    index: HashMap<u64, usize, FixedState>,
    /// The row the last span went to: a request's spans often come in
    /// runs of one name.
    last: usize,
    /// The last resource's address and its `cloud.platform`, looked up
    /// once per resource.
    resource: Option<(usize, Option<String>)>,
}

impl OperationCounts {
    fn is(&self, i: usize, resource: usize, minute: i64, row: &SpanRow<'_>) -> bool {
        self.keys[i] == (resource, row.kind, row.platform)
            && self.rows[i].0.0 == minute
            && self.rows[i].0.1.name.as_deref() == Some(row.name.as_ref())
    }

    pub fn add(&mut self, row: &SpanRow<'_>) {
        let resource = std::ptr::from_ref(row.resource_attributes) as usize;
        if self.resource.as_ref().is_none_or(|(a, _)| *a != resource) {
            let cloud = (row.resource_attributes.iter())
                .find(|(k, _)| k == "cloud.platform")
                .map(|(_, v)| v.to_string());
            self.resource = Some((resource, cloud));
        }
        let minute = minute_of(row.start_time_unix_nano);
        if self.last < self.rows.len() && self.is(self.last, resource, minute, row) {
            self.rows[self.last].1 += 1;
            return;
        }
        let key = (resource, minute, row.kind, row.platform, row.name.as_ref());
        let hash = FixedState::default().hash_one(key);
        let found = match self.index.get(&hash) {
            Some(&i) if self.is(i, resource, minute, row) => Some(i),
            // Two keys of one hash: rare enough to look through every row.
            Some(_) => (0..self.rows.len()).find(|&i| self.is(i, resource, minute, row)),
            None => None,
        };
        self.last = match found {
            Some(i) => {
                self.rows[i].1 += 1;
                i
            }
            None => {
                self.index.entry(hash).or_insert(self.rows.len());
                let cloud = self.resource.as_ref().and_then(|(_, c)| c.clone());
                let op = Operation {
                    service: row.service_name.to_string(),
                    name: Some(row.name.to_string()),
                    kind: row.kind.as_str().to_owned(),
                    platform: row.platform.as_str().to_owned(),
                    cloud_platform: cloud,
                };
                self.rows.push(((minute, op), 1));
                self.keys.push((resource, row.kind, row.platform));
                self.rows.len() - 1
            }
        };
    }

    pub fn into_vec(self) -> Vec<OperationRow> {
        self.rows
    }
}

/// The operation buckets not written yet.
#[derive(Debug, Default)]
pub struct OpenOperations {
    buckets: BTreeMap<(i64, Operation), Open<i64>>,
    /// Named buckets open per minute and service, for [`MAX_NAMES`].
    names: HashMap<(i64, Arc<str>), usize>,
}

impl OpenOperations {
    /// Counts a request's rows, arrived at `now`.
    pub fn add(&mut self, rows: Vec<OperationRow>, now: i64) {
        for (mut key, spans) in rows {
            if !self.buckets.contains_key(&key) {
                let (minute, op) = &mut key;
                let named = (self.names)
                    .entry((*minute, Arc::from(op.service.as_str())))
                    .or_default();
                if *named >= MAX_NAMES {
                    op.name = None;
                } else {
                    *named += 1;
                }
            }
            let bucket = self.buckets.entry(key).or_default();
            bucket.totals += spans;
            bucket.touched = now;
        }
    }

    /// Takes the buckets `quiet` says of their last touch.
    pub fn take_quiet(&mut self, quiet: impl Fn(i64) -> bool) -> Vec<OperationRow> {
        let taken = take_quiet(&mut self.buckets, quiet);
        for ((minute, op), _) in &taken {
            if op.name.is_some() {
                self.forget_name(*minute, &op.service);
            }
        }
        taken
    }

    fn forget_name(&mut self, minute: i64, service: &str) {
        let key = (minute, Arc::from(service));
        if let Some(n) = self.names.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.names.remove(&key);
            }
        }
    }

    /// Puts back buckets that could not be written.
    pub fn put_back(&mut self, rows: Vec<OperationRow>, now: i64) {
        for key @ ((minute, op), _) in &rows {
            if op.name.is_some() && !self.buckets.contains_key(&key.0) {
                *(self.names)
                    .entry((*minute, Arc::from(op.service.as_str())))
                    .or_default() += 1;
            }
        }
        put_back(&mut self.buckets, rows, now, |a, b| a + b);
    }

    /// Buckets whose minute lies in `[from, to]`.
    pub fn live(&self, from: i64, to: i64) -> Vec<OperationRow> {
        (self.buckets.iter())
            .filter(|((minute, _), _)| (from..=to).contains(minute))
            .map(|(k, open)| (k.clone(), open.totals))
            .collect()
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// Saved with the correlation state as its buckets; the names per service
/// are counted again when read.
impl Serialize for OpenOperations {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.buckets.serialize(s)
    }
}

impl<'de> Deserialize<'de> for OpenOperations {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let buckets: BTreeMap<(i64, Operation), Open<i64>> = BTreeMap::deserialize(d)?;
        let mut names: HashMap<(i64, Arc<str>), usize> = HashMap::new();
        for (minute, op) in buckets.keys() {
            if op.name.is_some() {
                *names
                    .entry((*minute, Arc::from(op.service.as_str())))
                    .or_default() += 1;
            }
        }
        Ok(Self { buckets, names })
    }
}

/// Rows of `operation_rollups`.
pub fn operation_rollups_batch<'a>(
    rows: impl IntoIterator<Item = &'a OperationRow>,
) -> Result<RecordBatch, ArrowError> {
    let mut minute = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut text: [StringBuilder; 5] = Default::default();
    let mut spans = Int64Builder::new();
    for ((m, op), n) in rows {
        minute.append_value(*m);
        let [service, name, kind, platform, cloud] = &mut text;
        service.append_value(&op.service);
        name.append_option(op.name.as_deref());
        kind.append_value(&op.kind);
        platform.append_value(&op.platform);
        cloud.append_option(op.cloud_platform.as_deref());
        spans.append_value(*n);
    }
    let mut columns: Vec<arrow::array::ArrayRef> = vec![Arc::new(minute.finish())];
    columns.extend(text.iter_mut().map(|b| Arc::new(b.finish()) as _));
    columns.push(Arc::new(spans.finish()));
    RecordBatch::try_new(operation_rollups_schema(), columns)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use seam_model::{Attributes, SpanId, TraceId};

    use super::*;

    proptest! {
        /// A request's counts are those of counting every span by its
        /// whole key, however the spans of two resources interleave.
        #[test]
        fn counts_as_a_count_by_the_whole_key(
            spans in prop::collection::vec((0..2usize, 0..3i64, 0..3u8, 0..40u8, any::<bool>()), 0..300)
        ) {
            let pod: Attributes<'static> = vec![(Cow::Borrowed("k8s.pod.name"), Cow::Borrowed("p"))];
            let lambda: Attributes<'static> =
                vec![(Cow::Borrowed("cloud.platform"), Cow::Borrowed("aws_lambda"))];
            let resources = [&pod, &lambda];
            let mut counts = OperationCounts::default();
            let mut want: BTreeMap<(i64, Operation), i64> = BTreeMap::new();
            for (r, minute, kind, name, faas) in spans {
                let start = 1_760_000_000_000_000_000 + minute * crate::rollup::MINUTE_NS + 7;
                let mut row = SpanRow::new(TraceId([1; 16]), SpanId([1; 8]), start, start, resources[r]);
                row.service_name = Cow::Borrowed(["checkout", "resizer"][r]);
                row.name = Cow::Owned(format!("op-{name}"));
                row.kind = SpanKind::from_otlp(i32::from(kind) + 1);
                row.platform = if faas { Platform::Faas } else { Platform::Kubernetes };
                counts.add(&row);
                let op = Operation {
                    service: row.service_name.to_string(),
                    name: Some(row.name.to_string()),
                    kind: row.kind.as_str().to_owned(),
                    platform: row.platform.as_str().to_owned(),
                    cloud_platform: (r == 1).then(|| "aws_lambda".to_owned()),
                };
                *want.entry((minute_of(start), op)).or_default() += 1;
            }
            let mut got: BTreeMap<(i64, Operation), i64> = BTreeMap::new();
            for (key, n) in counts.into_vec() {
                *got.entry(key).or_default() += n;
            }
            prop_assert_eq!(got, want);
        }
    }
}
