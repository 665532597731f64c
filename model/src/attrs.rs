//! Attribute maps as the `spans` table holds them: each batch keeps every
//! distinct key once (a dictionary) and each entry a 4-byte key id beside
//! its value's text.
//!
//! A span carries ten or so attributes whose keys are the same few dozen
//! names span after span; stored as text they were a fifth of a span's
//! memory, and Parquet had to re-intern them at every seal. Spans of one
//! instrumentation list their attributes in the same order, so the key
//! at each position is checked against the previous span's key at that
//! position before the dictionary is searched at all.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::StructArray;
use arrow::array::{ArrayRef, DictionaryArray, Int32Array, MapArray, StringArray, StringBuilder};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Int32Type};
use arrow::error::ArrowError;

use crate::schema::attributes_type;

/// Builds one attribute map column (`Map<Dictionary<Int32, Utf8>, Utf8>`).
pub(crate) struct AttrsBuilder {
    /// Map offsets, with the leading zero.
    offsets: Vec<i32>,
    keys: Vec<i32>,
    values: StringBuilder,
    dict: KeyDict,
}

/// The distinct keys of the batch being built.
#[derive(Default)]
struct KeyDict {
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, i32, foldhash::fast::FixedState>,
    /// The key id last seen at each position of a map.
    recent: Vec<i32>,
}

impl KeyDict {
    fn id(&mut self, position: usize, key: &str) -> i32 {
        if let Some(&id) = self.recent.get(position)
            && self.names.get(id as usize).is_some_and(|n| **n == *key)
        {
            return id;
        }
        let id = match self.ids.get(key) {
            Some(&id) => id,
            None => {
                let id = i32::try_from(self.names.len()).unwrap_or(i32::MAX);
                self.names.push(key.into());
                self.ids.insert(key.into(), id);
                id
            }
        };
        if position >= self.recent.len() {
            self.recent.resize(position + 1, -1);
        }
        self.recent[position] = id;
        id
    }

    fn finish(&mut self) -> StringArray {
        let names = StringArray::from_iter_values(self.names.iter().map(|n| &**n));
        self.names.clear();
        self.ids.clear();
        self.recent.clear();
        names
    }
}

impl AttrsBuilder {
    /// Room for `maps` maps of `entries` entries in all, with
    /// `value_bytes` of value text.
    pub(crate) fn with_capacity(entries: usize, maps: usize, value_bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(maps + 1);
        offsets.push(0);
        Self {
            offsets,
            keys: Vec::with_capacity(entries),
            values: StringBuilder::with_capacity(entries, value_bytes),
            dict: KeyDict::default(),
        }
    }

    /// Appends one map.
    pub(crate) fn append<K: AsRef<str>, V: AsRef<str>>(&mut self, attrs: &[(K, V)]) {
        for (position, (k, v)) in attrs.iter().enumerate() {
            self.keys.push(self.dict.id(position, k.as_ref()));
            self.values.append_value(v.as_ref());
        }
        self.offsets.push(self.keys.len() as i32);
    }

    /// Whether map `index` of those appended since the last finish holds
    /// exactly `attrs`, in order: read back from the builder, not kept
    /// twice.
    fn map_is<K: AsRef<str>, V: AsRef<str>>(&self, index: usize, attrs: &[(K, V)]) -> bool {
        let (Some(&start), Some(&end)) = (self.offsets.get(index), self.offsets.get(index + 1))
        else {
            return false;
        };
        let (start, end) = (start as usize, end as usize);
        let (offsets, text) = (self.values.offsets_slice(), self.values.values_slice());
        end - start == attrs.len()
            && attrs.iter().zip(start..end).all(|((k, v), e)| {
                let value = &text[offsets[e] as usize..offsets[e + 1] as usize];
                *self.dict.names[self.keys[e] as usize] == *k.as_ref()
                    && value == v.as_ref().as_bytes()
            })
    }

    /// The maps appended since the last finish; the builder starts over
    /// with a new dictionary, keeping its room.
    pub(crate) fn finish(&mut self) -> Result<MapArray, ArrowError> {
        let DataType::Map(entries_field, sorted) = attributes_type() else {
            unreachable!("attributes_type is a map")
        };
        let DataType::Struct(fields) = entries_field.data_type() else {
            unreachable!("a map's entries are structs")
        };
        let rows = self.offsets.len() - 1;
        let entries = self.keys.len();
        let keys = Int32Array::from(std::mem::replace(
            &mut self.keys,
            Vec::with_capacity(entries),
        ));
        let keys = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(self.dict.finish()))?;
        let children: Vec<ArrayRef> = vec![Arc::new(keys), Arc::new(self.values.finish())];
        let entries = StructArray::try_new(fields.clone(), children, None)?;
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        let offsets = std::mem::replace(&mut self.offsets, offsets);
        MapArray::try_new(
            entries_field,
            OffsetBuffer::new(offsets.into()),
            entries,
            None,
            sorted,
        )
    }
}

/// Builds `resource_attributes` as rows in memory hold it: one map per
/// distinct resource of a batch, each span its map's index.
///
/// A request lists its spans resource by resource, so comparing a span's
/// resource with the previous span's finds every run without hashing; a
/// new run's resource is looked up by a hash among the batch's, since a
/// batch gathers many small requests whose resources alternate (a
/// function's invocations between a service's requests).
pub(crate) struct ResourceBuilder {
    keys: Vec<i32>,
    maps: AttrsBuilder,
    /// The map of the current run.
    current: Option<usize>,
    /// The maps by a hash of their attributes.
    seen: HashMap<u64, Vec<usize>, foldhash::fast::FixedState>,
}

impl ResourceBuilder {
    pub(crate) fn with_capacity(rows: usize, entries: usize, value_bytes: usize) -> Self {
        Self {
            keys: Vec::with_capacity(rows),
            maps: AttrsBuilder::with_capacity(entries, 4, value_bytes),
            current: None,
            seen: HashMap::default(),
        }
    }

    pub(crate) fn append<K: AsRef<str>, V: AsRef<str>>(&mut self, attrs: &[(K, V)]) {
        let index = match self.current {
            Some(current) if self.maps.map_is(current, attrs) => current,
            _ => {
                let hash = {
                    use std::hash::{BuildHasher, Hash, Hasher};
                    let mut h = foldhash::fast::FixedState::with_seed(0).build_hasher();
                    for (k, v) in attrs {
                        k.as_ref().hash(&mut h);
                        v.as_ref().hash(&mut h);
                    }
                    h.finish()
                };
                let same = (self.seen.get(&hash).into_iter().flatten())
                    .copied()
                    .find(|&i| self.maps.map_is(i, attrs));
                let index = same.unwrap_or_else(|| {
                    self.maps.append(attrs);
                    let index = self.maps.offsets.len() - 2;
                    self.seen.entry(hash).or_default().push(index);
                    index
                });
                self.current = Some(index);
                index
            }
        };
        self.keys.push(i32::try_from(index).unwrap_or(i32::MAX));
    }

    pub(crate) fn finish(&mut self) -> Result<DictionaryArray<Int32Type>, ArrowError> {
        self.current = None;
        self.seen.clear();
        let rows = self.keys.len();
        let keys = Int32Array::from(std::mem::replace(&mut self.keys, Vec::with_capacity(rows)));
        DictionaryArray::try_new(keys, Arc::new(self.maps.finish()?))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use proptest::prelude::*;

    use super::*;

    /// The maps of `column`, entry by entry, keys resolved.
    fn maps(column: &MapArray) -> Vec<Vec<(String, String)>> {
        (0..column.len())
            .map(|row| {
                let entries = column.value(row);
                let keys = entries.column(0).as_dictionary::<Int32Type>();
                let names = keys.values().as_string::<i32>();
                let values = entries.column(1).as_string::<i32>();
                (0..entries.len())
                    .map(|i| {
                        let id = keys.keys().value(i) as usize;
                        (names.value(id).to_owned(), values.value(i).to_owned())
                    })
                    .collect()
            })
            .collect()
    }

    proptest! {
        /// Keys in the same order span after span, reordered, missing or
        /// new, over two batches: each column holds what was appended,
        /// with every distinct key once in its dictionary.
        #[test]
        fn an_attribute_column_holds_what_was_appended(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::collection::vec((0u8..6, 0u8..3), 0..5), 0..20), 2),
        ) {
            let mut builder = AttrsBuilder::with_capacity(0, 0, 0);
            for batch in batches {
                let want: Vec<Vec<(String, String)>> = batch
                    .iter()
                    .map(|m| m.iter().map(|(k, v)| (format!("key.{k}"), format!("v{v}"))).collect())
                    .collect();
                for m in &want {
                    builder.append(m);
                }
                let column = builder.finish().unwrap();
                prop_assert_eq!(column.data_type(), &attributes_type());
                prop_assert_eq!(maps(&column), want.clone());
                let distinct: std::collections::HashSet<&String> =
                    want.iter().flatten().map(|(k, _)| k).collect();
                let keys = column.entries().column(0).as_dictionary::<Int32Type>();
                prop_assert_eq!(keys.values().len(), distinct.len());
            }
        }

        /// Runs of resources over two batches: each row reads back its
        /// resource, and each distinct resource is one map.
        #[test]
        fn a_resource_column_holds_each_resource_once(
            batches in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..30), 2),
        ) {
            let mut builder = ResourceBuilder::with_capacity(0, 0, 0);
            for batch in batches {
                let want: Vec<Vec<(String, String)>> = batch
                    .iter()
                    .map(|r| (0..*r).map(|i| (format!("k{i}"), format!("resource {r}"))).collect())
                    .collect();
                for r in &want {
                    builder.append(r);
                }
                let column = builder.finish().unwrap();
                prop_assert_eq!(column.data_type(), &crate::schema::resource_type());
                let plain = arrow::compute::cast(&column, &attributes_type()).unwrap();
                prop_assert_eq!(maps(plain.as_map()), want);
                let distinct: std::collections::HashSet<&u8> = batch.iter().collect();
                prop_assert_eq!(column.values().len(), distinct.len());
            }
        }
    }
}
