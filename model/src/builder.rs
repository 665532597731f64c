//! Appends [`SpanRow`]s to Arrow builders and finishes them as one
//! [`RecordBatch`] under [`spans_schema`].

use std::sync::Arc;

use arrow::array::NullBufferBuilder;
use arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, BooleanBuilder, FixedSizeBinaryArray, Int32Array,
    Int64Builder, ListArray, RecordBatch, RunArray, StringBuilder, StringDictionaryBuilder,
    StructArray, TimestampNanosecondBuilder,
};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Int32Type};
use arrow::error::ArrowError;

use crate::attrs::{AttrsBuilder, ResourceBuilder};
use crate::row::SpanRow;
use crate::schema::{event_fields, link_fields, spans_hot_schema};

type Dict = StringDictionaryBuilder<Int32Type>;

/// A column of ids as their bytes, `N` to a row: appended without the
/// length check of Arrow's fixed-size builder, which cannot fail here.
struct Ids<const N: usize> {
    bytes: Vec<u8>,
    nulls: NullBufferBuilder,
}

impl<const N: usize> Ids<N> {
    fn with_capacity(rows: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(rows * N),
            nulls: NullBufferBuilder::new(rows),
        }
    }

    fn append(&mut self, id: &[u8; N]) {
        self.bytes.extend_from_slice(id);
        self.nulls.append_non_null();
    }

    fn append_option(&mut self, id: Option<&[u8; N]>) {
        match id {
            Some(id) => self.append(id),
            None => {
                self.bytes.extend_from_slice(&[0; N]);
                self.nulls.append_null();
            }
        }
    }

    fn finish(&mut self) -> Result<FixedSizeBinaryArray, ArrowError> {
        let bytes = std::mem::take(&mut self.bytes);
        FixedSizeBinaryArray::try_new(N as i32, Buffer::from_vec(bytes), self.nulls.finish())
    }
}

/// A dictionary column that looks a value up once a run of equal values
/// rather than once a row: span names and kinds, which repeat within a
/// trace too often to be looked up per row and change too often to be
/// held as runs; hashing and probing per row was most of the Arrow
/// append's dictionary cost (BENCHMARKS.md, ingest under callgrind).
struct RunDict {
    dict: Dict,
    /// The current run: its value (`None` for nulls) and its length.
    value: Option<String>,
    len: usize,
}

impl RunDict {
    fn new(dict: Dict) -> Self {
        Self {
            dict,
            value: None,
            len: 0,
        }
    }

    fn append_value(&mut self, value: &str) {
        self.append_option(Some(value));
    }

    fn append_option(&mut self, value: Option<&str>) {
        if self.len > 0 && self.value.as_deref() == value {
            self.len += 1;
            return;
        }
        self.flush();
        match (&mut self.value, value) {
            (Some(run), Some(v)) => {
                run.clear();
                run.push_str(v);
            }
            (run, v) => *run = v.map(str::to_owned),
        }
        self.len = 1;
    }

    fn flush(&mut self) {
        match &self.value {
            _ if self.len == 0 => {}
            Some(v) => self.dict.append_values(v, self.len),
            None => self.dict.append_nulls(self.len),
        }
        self.len = 0;
    }

    fn finish(&mut self) -> arrow::array::DictionaryArray<Int32Type> {
        self.flush();
        self.dict.finish()
    }
}

/// Where the runs of a column held in Arrow's run-end encoding end: a run
/// costs its end and its value, a row nothing. For what a resource or
/// scope fixes (service, platform, instance, scope), what most spans
/// leave null (the messaging, FaaS and cold-start columns) or empty
/// (status message, trace state): as dictionary keys or offsets they
/// cost 4 bytes a span each, some 70 bytes a span in all.
#[derive(Default)]
struct RunEnds(Vec<i32>);

impl RunEnds {
    /// Counts a row: in the last run when `same`, else in a new run, for
    /// which it returns true.
    fn push(&mut self, same: bool) -> bool {
        match self.0.last_mut() {
            Some(end) if same => {
                *end += 1;
                false
            }
            last => {
                let at = last.map_or(0, |e| *e);
                self.0.push(at + 1);
                true
            }
        }
    }

    fn finish(&mut self) -> Int32Array {
        Int32Array::from(std::mem::take(&mut self.0))
    }
}

/// Text in runs, each run's value a key into the batch's dictionary of
/// the column's values: a run costs 8 bytes however long its text, and a
/// value is looked up once a run, not once a row. The demo's journeys
/// alternate between a few services request by request: runs of one or
/// two spans, which plain text per run made dearer than a dictionary.
#[derive(Default)]
struct TextRuns {
    ends: RunEnds,
    values: Dict,
    /// The last run's value, once there is a run (`Some(None)` for nulls).
    last: Option<Option<String>>,
}

impl TextRuns {
    fn append_option(&mut self, value: Option<&str>) {
        let same = self
            .last
            .as_ref()
            .is_some_and(|last| last.as_deref() == value);
        if !self.ends.push(same) {
            return;
        }
        self.values.append_option(value);
        match (&mut self.last, value) {
            (Some(Some(run)), Some(v)) => {
                run.clear();
                run.push_str(v);
            }
            (last, v) => *last = Some(v.map(str::to_owned)),
        }
    }

    fn append_value(&mut self, value: &str) {
        self.append_option(Some(value));
    }

    fn finish(&mut self) -> Result<RunArray<Int32Type>, ArrowError> {
        self.last = None;
        RunArray::try_new(&self.ends.finish(), &self.values.finish())
    }
}

/// Numbers in runs (the init duration: null but for cold starts).
#[derive(Default)]
struct IntRuns {
    ends: RunEnds,
    values: Int64Builder,
    last: Option<Option<i64>>,
}

impl IntRuns {
    fn append_option(&mut self, value: Option<i64>) {
        if self.ends.push(self.last == Some(value)) {
            self.values.append_option(value);
            self.last = Some(value);
        }
    }

    fn finish(&mut self) -> Result<RunArray<Int32Type>, ArrowError> {
        self.last = None;
        RunArray::try_new(&self.ends.finish(), &self.values.finish())
    }
}

/// List offsets with the leading zero.
fn offsets(rows: usize) -> Vec<i32> {
    let mut v = Vec::with_capacity(rows + 1);
    v.push(0);
    v
}

fn utc(b: TimestampNanosecondBuilder) -> TimestampNanosecondBuilder {
    b.with_timezone("UTC")
}

/// Column builders for `links`: a list of structs, assembled from its
/// children at finish so each child keeps its concrete builder type.
struct LinksBuilder {
    offsets: Vec<i32>,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    trace_state: StringBuilder,
    attributes: AttrsBuilder,
}

/// Column builders for `events`, built the same way as links.
struct EventsBuilder {
    offsets: Vec<i32>,
    time: TimestampNanosecondBuilder,
    name: StringBuilder,
    attributes: AttrsBuilder,
}

/// How many rows, attributes, links and events a builder should expect.
/// Estimates: the builders still grow past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub rows: usize,
    /// Span attributes over all rows.
    pub attributes: usize,
    pub links: usize,
    pub events: usize,
    /// The text the largest columns hold, when a batch of the same stream
    /// measured it ([`Capacity::measured`]); estimated per row otherwise.
    pub text: Option<Text>,
}

/// Text bytes (and resource attribute entries) over all rows; attribute
/// keys are kept once per batch, so only values count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Text {
    pub name: usize,
    pub attribute_values: usize,
    pub resource_attributes: usize,
    pub resource_values: usize,
}

impl Default for Capacity {
    /// Arrow's own default: room for about a thousand rows.
    fn default() -> Self {
        Self {
            rows: 1024,
            attributes: 1024,
            links: 0,
            events: 0,
            text: None,
        }
    }
}

impl Capacity {
    /// What `batch`, a batch of the spans table, holds, with a tenth more:
    /// the room for the next batch of a steady stream, so that its
    /// builders reserve once instead of growing (each growth copies what
    /// the column holds so far).
    pub fn measured(batch: &RecordBatch) -> Self {
        use crate::schema::col;
        let more = |n: usize| n + n / 10;
        // Text of a string column, or of a dictionary column's values.
        let string_bytes = |name: &str| {
            batch
                .column_by_name(name)
                .map(|c| c.as_any_dictionary_opt().map_or(c, |d| d.values()))
                .and_then(|c| c.as_string_opt::<i32>())
                .map_or(0, |s| s.values().len())
        };
        // (entries, value bytes) of a map column, or of the maps of a
        // dictionary of maps.
        let map = |name: &str| {
            batch
                .column_by_name(name)
                .map(|c| c.as_any_dictionary_opt().map_or(c, |d| d.values()))
                .and_then(|c| c.as_map_opt())
                .map_or((0, 0), |m| {
                    let bytes = m
                        .values()
                        .as_string_opt::<i32>()
                        .map_or(0, |s| s.values().len());
                    (m.entries().len(), bytes)
                })
        };
        let list = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_list_opt::<i32>())
                .map_or(0, |l| l.values().len())
        };
        let (attributes, attribute_values) = map(col::ATTRIBUTES);
        let (resource_attributes, resource_values) = map(col::RESOURCE_ATTRIBUTES);
        Self {
            rows: more(batch.num_rows()),
            attributes: more(attributes),
            links: more(list(col::LINKS)),
            events: more(list(col::EVENTS)),
            text: Some(Text {
                name: more(string_bytes(col::NAME)),
                attribute_values: more(attribute_values),
                resource_attributes: more(resource_attributes),
                resource_values: more(resource_values),
            }),
        }
    }
}

/// Accumulates rows of the `spans` table.
pub struct SpanBatchBuilder {
    trace_id: Ids<16>,
    span_id: Ids<8>,
    parent_span_id: Ids<8>,
    flow_id: TextRuns,
    name: RunDict,
    kind: RunDict,
    service_name: TextRuns,
    platform: TextRuns,
    instance: TextRuns,
    start_time: TimestampNanosecondBuilder,
    end_time: TimestampNanosecondBuilder,
    duration_ns: Int64Builder,
    status_code: TextRuns,
    status_message: TextRuns,
    cold_start: BooleanBuilder,
    cold_start_type: TextRuns,
    init_duration_ns: IntRuns,
    messaging_system: TextRuns,
    messaging_operation: TextRuns,
    messaging_destination: TextRuns,
    messaging_message_id: StringBuilder,
    faas_trigger: TextRuns,
    attributes: AttrsBuilder,
    resource_attributes: ResourceBuilder,
    links: LinksBuilder,
    events: EventsBuilder,
    faas_invocation_id: StringBuilder,
    trace_state: TextRuns,
    scope_name: TextRuns,
    scope_version: TextRuns,
    cold_start_source: TextRuns,
    rows: usize,
    /// Text appended since the last finish ([`SpanRow::text_bytes`]).
    bytes: usize,
}

impl Default for SpanBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SpanBatchBuilder {
    pub fn new() -> Self {
        Self::with_capacity(Capacity::default())
    }

    /// Builders sized for `capacity`, so that a request's batch is built
    /// without growing or over-allocating: a default builder reserves
    /// room for a thousand rows in each of some forty columns, which costs
    /// a small request far more than its rows do.
    pub fn with_capacity(capacity: Capacity) -> Self {
        let Capacity {
            rows,
            attributes,
            links,
            events,
            text,
        } = capacity;
        // A typical resource has a handful of attributes; 16 bytes is a
        // typical key or value.
        let text = text.unwrap_or(Text {
            // Distinct span names, each kept once.
            name: 1024,
            attribute_values: attributes * 16,
            // A request's spans come from a resource or a few, each kept
            // once.
            resource_attributes: 16,
            resource_values: 16 * 16,
        });
        let string =
            |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        // Low-cardinality columns: few distinct values per request.
        let dict = || RunDict::new(Dict::with_capacity(rows, 4, 64));
        let time = || utc(TimestampNanosecondBuilder::with_capacity(rows));
        Self {
            trace_id: Ids::with_capacity(rows),
            span_id: Ids::with_capacity(rows),
            parent_span_id: Ids::with_capacity(rows),
            flow_id: TextRuns::default(),
            // Span names are the operation, low in cardinality by the
            // conventions; a run is a span's children named alike.
            name: RunDict::new(Dict::with_capacity(rows, 64, text.name)),
            kind: dict(),
            service_name: TextRuns::default(),
            platform: TextRuns::default(),
            instance: TextRuns::default(),
            start_time: time(),
            end_time: time(),
            duration_ns: Int64Builder::with_capacity(rows),
            status_code: TextRuns::default(),
            status_message: TextRuns::default(),
            cold_start: BooleanBuilder::with_capacity(rows),
            cold_start_type: TextRuns::default(),
            init_duration_ns: IntRuns::default(),
            messaging_system: TextRuns::default(),
            messaging_operation: TextRuns::default(),
            messaging_destination: TextRuns::default(),
            messaging_message_id: string(0),
            faas_trigger: TextRuns::default(),
            attributes: AttrsBuilder::with_capacity(attributes, rows, text.attribute_values),
            resource_attributes: ResourceBuilder::with_capacity(
                rows,
                text.resource_attributes,
                text.resource_values,
            ),
            links: LinksBuilder {
                offsets: offsets(rows),
                trace_id: StringBuilder::with_capacity(links, links * 32),
                span_id: StringBuilder::with_capacity(links, links * 16),
                trace_state: StringBuilder::with_capacity(links, 0),
                attributes: AttrsBuilder::with_capacity(links, links, links * 16),
            },
            events: EventsBuilder {
                offsets: offsets(rows),
                time: utc(TimestampNanosecondBuilder::with_capacity(events)),
                name: StringBuilder::with_capacity(events, events * 16),
                attributes: AttrsBuilder::with_capacity(events, events, events * 16),
            },
            faas_invocation_id: string(0),
            trace_state: TextRuns::default(),
            scope_name: TextRuns::default(),
            scope_version: TextRuns::default(),
            cold_start_source: TextRuns::default(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes of text appended since the last [`finish`](Self::finish):
    /// a column's text is at most this, so a caller that finishes well
    /// below 2 GiB never overflows Arrow's 32-bit offsets.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends one span.
    pub fn append(&mut self, row: &SpanRow<'_>) {
        let (mut trace_hex, mut span_hex) = (const_hex::Buffer::new(), const_hex::Buffer::new());
        self.trace_id.append(&row.trace_id.0);
        self.span_id.append(&row.span_id.0);
        (self.parent_span_id).append_option(row.parent_span_id.as_ref().map(|p| &p.0));
        // Flows are resolved at query time by the correlation engine.
        self.flow_id.append_option(None);
        self.name.append_value(&row.name);
        self.kind.append_value(row.kind.as_str());
        self.service_name.append_value(&row.service_name);
        self.platform.append_value(row.platform.as_str());
        self.instance.append_option(row.instance.as_deref());
        self.start_time.append_value(row.start_time_unix_nano);
        self.end_time.append_value(row.end_time_unix_nano);
        self.duration_ns.append_value(row.duration_ns());
        self.status_code.append_value(row.status_code.as_str());
        self.status_message.append_value(&row.status_message);
        self.cold_start.append_option(row.cold_start);
        self.cold_start_type
            .append_option(row.cold_start_type.map(|t| t.as_str()));
        self.init_duration_ns.append_option(row.init_duration_ns);
        self.cold_start_source
            .append_option(row.cold_start_source.map(|s| s.as_str()));
        self.messaging_system
            .append_option(row.messaging_system.as_deref());
        self.messaging_operation
            .append_option(row.messaging_operation.as_deref());
        self.messaging_destination
            .append_option(row.messaging_destination.as_deref());
        self.messaging_message_id
            .append_option(row.messaging_message_id.as_deref());
        self.faas_trigger.append_option(row.faas_trigger.as_deref());
        self.attributes.append(&row.attributes);
        self.resource_attributes.append(row.resource_attributes);

        let links = &mut self.links;
        for link in &row.links {
            links
                .trace_id
                .append_value(link.trace_id.hex_in(&mut trace_hex));
            links
                .span_id
                .append_value(link.span_id.hex_in(&mut span_hex));
            links.trace_state.append_value(&link.trace_state);
            links.attributes.append(&link.attributes);
        }
        links.offsets.push(links.trace_id.len() as i32);

        let events = &mut self.events;
        for event in &row.events {
            events.time.append_value(event.time_unix_nano);
            events.name.append_value(&event.name);
            events.attributes.append(&event.attributes);
        }
        events.offsets.push(events.name.len() as i32);

        self.faas_invocation_id
            .append_option(row.faas_invocation_id.as_deref());
        self.trace_state.append_value(&row.trace_state);
        self.scope_name.append_value(&row.scope_name);
        self.scope_version.append_value(&row.scope_version);
        self.rows += 1;
        self.bytes += row.text_bytes();
    }

    /// Finishes the rows appended so far into a batch and resets the builder.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let links = {
            let l = &mut self.links;
            let children: Vec<ArrayRef> = vec![
                Arc::new(l.trace_id.finish()),
                Arc::new(l.span_id.finish()),
                Arc::new(l.trace_state.finish()),
                Arc::new(l.attributes.finish()?),
            ];
            list_array(
                link_fields(),
                children,
                std::mem::replace(&mut l.offsets, vec![0]),
            )?
        };
        let events = {
            let e = &mut self.events;
            let children: Vec<ArrayRef> = vec![
                Arc::new(e.time.finish()),
                Arc::new(e.name.finish()),
                Arc::new(e.attributes.finish()?),
            ];
            list_array(
                event_fields(),
                children,
                std::mem::replace(&mut e.offsets, vec![0]),
            )?
        };
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()?),
            Arc::new(self.span_id.finish()?),
            Arc::new(self.parent_span_id.finish()?),
            Arc::new(self.flow_id.finish()?),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.service_name.finish()?),
            Arc::new(self.platform.finish()?),
            Arc::new(self.instance.finish()?),
            Arc::new(self.start_time.finish()),
            Arc::new(self.end_time.finish()),
            Arc::new(self.duration_ns.finish()),
            Arc::new(self.status_code.finish()?),
            Arc::new(self.status_message.finish()?),
            Arc::new(self.cold_start.finish()),
            Arc::new(self.cold_start_type.finish()?),
            Arc::new(self.init_duration_ns.finish()?),
            Arc::new(self.messaging_system.finish()?),
            Arc::new(self.messaging_operation.finish()?),
            Arc::new(self.messaging_destination.finish()?),
            Arc::new(self.messaging_message_id.finish()),
            Arc::new(self.faas_trigger.finish()?),
            Arc::new(self.attributes.finish()?),
            Arc::new(self.resource_attributes.finish()?),
            links,
            events,
            Arc::new(self.faas_invocation_id.finish()),
            Arc::new(self.trace_state.finish()?),
            Arc::new(self.scope_name.finish()?),
            Arc::new(self.scope_version.finish()?),
            Arc::new(self.cold_start_source.finish()?),
        ];
        self.rows = 0;
        self.bytes = 0;
        // Builders allocate for a thousand rows or more; a request's batch
        // stays in memory until it is merged or sealed, so it keeps only
        // what its rows use.
        for column in &mut columns {
            <ArrayRef as arrow::array::Array>::shrink_to_fit(column);
        }
        RecordBatch::try_new(spans_hot_schema(), columns)
    }
}

fn list_array(
    fields: arrow::datatypes::Fields,
    children: Vec<ArrayRef>,
    offsets: Vec<i32>,
) -> Result<ArrayRef, ArrowError> {
    let structs = StructArray::try_new(fields.clone(), children, None)?;
    let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
    let list = ListArray::try_new(
        item,
        OffsetBuffer::new(offsets.into()),
        Arc::new(structs),
        None,
    )?;
    Ok(Arc::new(list))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int32Type;

    use super::*;
    use crate::id::{SpanId, TraceId};
    use crate::row::*;

    fn row<'a>(resource: &'a Attributes<'a>, n: u8) -> SpanRow<'a> {
        SpanRow {
            name: Cow::Borrowed("GET /checkout"),
            kind: SpanKind::Server,
            service_name: Cow::Borrowed("checkout"),
            platform: Platform::Kubernetes,
            instance: Some(Cow::Borrowed("checkout-7d9f")),
            status_code: StatusCode::Error,
            status_message: Cow::Borrowed("boom"),
            scope_name: Cow::Borrowed("test"),
            attributes: vec![(Cow::Borrowed("http.route"), Cow::Borrowed("/checkout"))],
            links: vec![LinkRow {
                trace_id: TraceId([9; 16]),
                span_id: SpanId([9; 8]),
                trace_state: Cow::Borrowed(""),
                attributes: vec![],
            }],
            ..SpanRow::new(TraceId([n; 16]), SpanId([n; 8]), 1_000, 3_500, resource)
        }
    }

    #[test]
    fn builds_a_batch_under_the_schema() {
        let resource: Attributes = vec![(Cow::Borrowed("service.name"), Cow::Borrowed("checkout"))];
        let mut b = SpanBatchBuilder::new();
        b.append(&row(&resource, 1));
        b.append(&row(&resource, 2));
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), spans_hot_schema());
        let ids = batch.column_by_name("trace_id").unwrap();
        assert_eq!(ids.as_fixed_size_binary().value(1), [2; 16]);
        let sql = crate::cast::to_sql(ids, &DataType::Utf8).unwrap();
        assert_eq!(
            sql.as_string::<i32>().value(1),
            "02020202020202020202020202020202"
        );
        let parents = batch.column_by_name("parent_span_id").unwrap();
        assert_eq!(parents.null_count(), 2, "roots have no parent");
        let dur = batch
            .column_by_name("duration_ns")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(dur.value(0), 2_500);
        let kinds = batch
            .column_by_name("kind")
            .unwrap()
            .as_dictionary::<Int32Type>();
        assert_eq!(kinds.values().len(), 1, "one distinct kind stored once");
        let links = batch.column_by_name("links").unwrap().as_list::<i32>();
        assert_eq!(links.value(1).len(), 1);
        // The builder is reusable after finish.
        assert_eq!(b.finish().unwrap().num_rows(), 0);
    }

    #[test]
    fn capacity_is_measured_on_a_finished_batch_with_a_tenth_more() {
        let resource: Attributes = vec![(Cow::Borrowed("service.name"), Cow::Borrowed("checkout"))];
        let mut b = SpanBatchBuilder::new();
        for n in 1..=20 {
            b.append(&row(&resource, n));
        }
        let batch = b.finish().unwrap();
        let c = Capacity::measured(&batch);
        assert_eq!((c.rows, c.attributes, c.links, c.events), (22, 22, 22, 0));
        let text = c.text.unwrap();
        // 20 of "GET /checkout" (13 bytes), "http.route" (10), "/checkout" (9).
        // The name kept once: 13 bytes and a tenth.
        assert_eq!(text.name, 14);
        assert_eq!(text.attribute_values, 198);
        // One resource for every row, "checkout" (8) kept once.
        assert_eq!((text.resource_attributes, text.resource_values), (1, 8));
        // A builder sized so is the same builder: same rows out.
        let mut sized = SpanBatchBuilder::with_capacity(c);
        sized.append(&row(&resource, 1));
        assert_eq!(sized.finish().unwrap().num_rows(), 1);
    }
}

#[cfg(test)]
mod run_dict_tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int32Type;
    use proptest::prelude::*;

    use super::{Dict, RunDict};

    /// The column's values, row by row.
    fn values(array: &arrow::array::DictionaryArray<Int32Type>) -> Vec<Option<String>> {
        let strings = array.values().as_string::<i32>();
        (0..array.len())
            .map(|i| {
                array
                    .is_valid(i)
                    .then(|| strings.value(array.keys().value(i) as usize).to_owned())
            })
            .collect()
    }

    proptest! {
        /// Runs, nulls and changes of value in any order, over two
        /// batches: the column holds what was appended, row for row.
        #[test]
        fn a_run_dictionary_holds_what_was_appended(
            batches in proptest::collection::vec(
                proptest::collection::vec(proptest::option::of(0u8..4), 0..40), 2),
        ) {
            let mut column = RunDict::new(Dict::new());
            for batch in batches {
                let want: Vec<Option<String>> =
                    batch.iter().map(|v| v.map(|v| format!("value {v}"))).collect();
                for v in &want {
                    match v {
                        Some(v) if v.ends_with('0') => column.append_value(v),
                        v => column.append_option(v.as_deref()),
                    }
                }
                let got = column.finish();
                prop_assert_eq!(values(&got), want);
                // One dictionary entry a distinct value: runs looked up once.
                let distinct: std::collections::HashSet<_> = batch.iter().flatten().collect();
                prop_assert_eq!(got.values().len(), distinct.len());
            }
        }
    }
}
